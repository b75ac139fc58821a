/**
 * The study's analysis of a results table: per (data, model, batch size,
 * policy) means over repetitions, the study's speedup (slowest method's time
 * / each method's time, per batch size), and two-sample t-tests of test RMSE
 * between every pair of policies (Student with pooled variance, and Welch).
 */
import type { StudyRow } from './results';
import { plansByCapacity } from '../train/plan';

// jstat ships no types; this is the one function used (the t distribution's CDF).
const { jStat } = require('jstat') as { jStat: { studentt: { cdf(x: number, dof: number): number } } };

/** Sample mean (NaN for an empty list). */
export function sampleMean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN;
}

/** Unbiased sample variance (n - 1; NaN below two values). */
export function sampleVariance(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = sampleMean(xs);
  return xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
}

/** Median (NaN for an empty list). */
export function sampleMedian(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Result of a two-sample t-test (two-sided). */
export interface TTest {
  t: number;
  df: number;
  p: number;
}

/** Two-sided p-value of t with df degrees of freedom (jstat's Student t CDF). */
export function twoSidedP(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (!Number.isFinite(t)) return 0;
  return Math.min(1, 2 * jStat.studentt.cdf(-Math.abs(t), df));
}

// Equal means with zero spread: no evidence of a difference (p = 1); different
// means with zero spread: certain (p = 0). CPU runs are bitwise deterministic,
// so identical samples do occur.
function degenerate(ma: number, mb: number, df: number): TTest {
  return ma === mb ? { t: 0, df, p: 1 } : { t: ma > mb ? Infinity : -Infinity, df, p: 0 };
}

/** Student's two-sample t-test with pooled variance (df = na + nb - 2). NaN p below two samples each. */
export function studentTTest(a: readonly number[], b: readonly number[]): TTest {
  const na = a.length;
  const nb = b.length;
  if (na < 2 || nb < 2) return { t: NaN, df: NaN, p: NaN };
  const ma = sampleMean(a);
  const mb = sampleMean(b);
  const df = na + nb - 2;
  const sp2 = ((na - 1) * sampleVariance(a) + (nb - 1) * sampleVariance(b)) / df;
  const se = Math.sqrt(sp2 * (1 / na + 1 / nb));
  if (se === 0) return degenerate(ma, mb, df);
  const t = (ma - mb) / se;
  return { t, df, p: twoSidedP(t, df) };
}

/** Welch's t-test (unequal variances, Welch-Satterthwaite df). NaN p below two samples each. */
export function welchTTest(a: readonly number[], b: readonly number[]): TTest {
  const na = a.length;
  const nb = b.length;
  if (na < 2 || nb < 2) return { t: NaN, df: NaN, p: NaN };
  const ma = sampleMean(a);
  const mb = sampleMean(b);
  const va = sampleVariance(a) / na;
  const vb = sampleVariance(b) / nb;
  const se = Math.sqrt(va + vb);
  if (se === 0) return degenerate(ma, mb, na + nb - 2);
  const df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1));
  const t = (ma - mb) / se;
  return { t, df, p: twoSidedP(t, df) };
}

/** Aggregates of one (data, model, batch, policy) over its repetitions. */
export interface PolicySummary {
  data: string;
  model: string;
  batch: number;
  policy: string;
  reps: number;
  steps: number;
  /** Mean over reps of the per-run mean step time (combined; includes compilation) and its sample sd. */
  step_ms_mean: number;
  step_ms_sd: number;
  /** Mean over reps of the per-run median step time (steady state, no compilation). */
  step_ms_median: number;
  batching_ms_mean: number;
  update_ms_mean: number;
  compile_count: number;
  compile_ms_total: number;
  /** Mean ms per compilation (plan build). */
  compile_ms_each: number;
  node_fill: number;
  edge_fill: number;
  graph_fill: number;
  graphs_per_batch: number;
  test_rmse_mean: number;
  test_rmse_sd: number;
  test_mae_mean: number;
  /** The study's speedup at this (data, model, batch): slowest policy's step_ms_mean / this one's. */
  speedup: number;
  /** Same on the medians (steady state). */
  speedup_median: number;
  /** Real graphs per second of the steady state (graphs per step / median step time) and ms per 1,000 graphs. */
  graphs_per_s: number;
  ms_per_1000_graphs: number;
  /** Speedup per graph: the slowest policy's ms per 1,000 graphs / this one's (policies whose steps carry fewer graphs pay for it). */
  speedup_per_graph: number;
}

/** One pairwise comparison of test RMSE (the test force RMSE for the rows of a force study). */
export interface TTestRow {
  data: string;
  model: string;
  batch: number;
  /** Force-study rows: the means and tests are on the test force RMSE (the loss is mostly the force term). */
  forces?: boolean;
  a: string;
  b: string;
  mean_a: number;
  mean_b: number;
  student: TTest;
  welch: TTest;
  /** Either test below alpha. */
  significant: boolean;
}

/** Predicted time and price of a long run per policy (`--budget-steps`, `--cost-per-hour`). */
export interface CostRow {
  data: string;
  model: string;
  batch: number;
  policy: string;
  steps: number;
  /** Compilations expected over the run (from the policy simulation when available, else measured). */
  compiles: number;
  hours: number;
  /** Price at the given hourly rate (NaN without one). */
  price: number;
}

/** Everything the study prints and reports. */
export interface StudyAnalysis {
  summaries: PolicySummary[];
  ttests: TTestRow[];
  alpha: number;
}

const groupKey = (r: { data: string; model: string; batch: number }): string => `${r.data}|${r.model}|${r.batch}`;

/** Rows grouped per (data, model, batch, policy), in order of first appearance. */
function rowsByPolicyCell(rows: readonly StudyRow[]): Map<string, StudyRow[]> {
  const byCell = new Map<string, StudyRow[]>();
  for (const r of rows) {
    const k = `${groupKey(r)}|${r.policy}`;
    const list = byCell.get(k);
    if (list) list.push(r);
    else byCell.set(k, [r]);
  }
  return byCell;
}

/**
 * Aggregates rows per (data, model, batch, policy), computes speedups per
 * (data, model, batch) and t-tests between every pair of policies there.
 * Order follows first appearance in `rows`.
 */
export function analyseStudy(rows: readonly StudyRow[], alpha = 0.05): StudyAnalysis {
  const byCell = rowsByPolicyCell(rows);
  const summaries: PolicySummary[] = [];
  for (const list of byCell.values()) {
    const r0 = list[0];
    const col = (f: (r: StudyRow) => number): number[] => list.map(f);
    const compiles = sampleMean(col((r) => r.compile_count));
    const compileMs = sampleMean(col((r) => r.compile_ms_total));
    summaries.push({
      data: r0.data,
      model: r0.model,
      batch: r0.batch,
      policy: r0.policy,
      reps: list.length,
      steps: r0.steps,
      step_ms_mean: sampleMean(col((r) => r.combined_ms_mean)),
      step_ms_sd: sampleVariance(col((r) => r.combined_ms_mean)) ** 0.5,
      step_ms_median: sampleMean(col((r) => r.combined_ms_median)),
      batching_ms_mean: sampleMean(col((r) => r.batching_ms_mean)),
      update_ms_mean: sampleMean(col((r) => r.update_ms_mean)),
      compile_count: compiles,
      compile_ms_total: compileMs,
      compile_ms_each: compiles > 0 ? compileMs / compiles : 0,
      node_fill: sampleMean(col((r) => r.node_fill)),
      edge_fill: sampleMean(col((r) => r.edge_fill)),
      graph_fill: sampleMean(col((r) => r.graph_fill)),
      graphs_per_batch: sampleMean(col((r) => r.graphs_per_batch_mean)),
      test_rmse_mean: sampleMean(col((r) => r.test_rmse)),
      test_rmse_sd: sampleVariance(col((r) => r.test_rmse)) ** 0.5,
      test_mae_mean: sampleMean(col((r) => r.test_mae)),
      speedup: NaN,
      speedup_median: NaN,
      graphs_per_s: NaN,
      ms_per_1000_graphs: NaN,
      speedup_per_graph: NaN,
    });
    const s = summaries[summaries.length - 1];
    // Older rows without graphs per batch: B graphs per step.
    const gpb = s.graphs_per_batch > 0 ? s.graphs_per_batch : s.batch;
    s.graphs_per_s = (1000 * gpb) / s.step_ms_median;
    s.ms_per_1000_graphs = (1000 * s.step_ms_median) / gpb;
  }
  const groups = new Map<string, PolicySummary[]>();
  for (const s of summaries) {
    const list = groups.get(groupKey(s));
    if (list) list.push(s);
    else groups.set(groupKey(s), [s]);
  }
  const ttests: TTestRow[] = [];
  for (const list of groups.values()) {
    const slowest = Math.max(...list.map((s) => s.step_ms_mean));
    const slowestMedian = Math.max(...list.map((s) => s.step_ms_median));
    const slowestPerGraph = Math.max(...list.map((s) => s.ms_per_1000_graphs));
    for (const s of list) {
      s.speedup = slowest / s.step_ms_mean;
      s.speedup_median = slowestMedian / s.step_ms_median;
      s.speedup_per_graph = slowestPerGraph / s.ms_per_1000_graphs;
    }
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i];
        const b = list[j];
        const xa = rmses(rows, a);
        const xb = rmses(rows, b);
        const student = studentTTest(xa, xb);
        const welch = welchTTest(xa, xb);
        const forces = rows.some((r) => r.forces === true && r.data === a.data && r.model === a.model && r.batch === a.batch);
        ttests.push({
          data: a.data,
          model: a.model,
          batch: a.batch,
          ...(forces ? { forces: true } : {}),
          a: a.policy,
          b: b.policy,
          mean_a: sampleMean(xa),
          mean_b: sampleMean(xb),
          student,
          welch,
          significant: student.p < alpha || welch.p < alpha,
        });
      }
    }
  }
  return { summaries, ttests, alpha };
}

/** The test RMSEs of a policy's runs: the force RMSE on force-study rows, else the (energy) test RMSE. */
function rmses(rows: readonly StudyRow[], s: PolicySummary): number[] {
  const metric = (r: StudyRow): number => (r.forces === true ? r.test_force_rmse ?? NaN : r.test_rmse);
  return rows
    .filter((r) => r.data === s.data && r.model === s.model && r.batch === s.batch && r.policy === s.policy && Number.isFinite(metric(r)))
    .map(metric);
}

/**
 * Time and price of training `budgetSteps` steps with each policy: steps x the
 * steady-state step time (median) + compilations x the measured time per
 * compilation. `shapesAt(data, policy, batch)` gives the compilations expected
 * over the long run (e.g. from a policy simulation); without it the measured
 * count is used (a lower bound for `static-64`, whose shapes keep appearing).
 */
export function predictCosts(
  summaries: readonly PolicySummary[],
  budgetSteps: number,
  costPerHour = NaN,
  shapesAt?: (data: string, policy: string, batch: number) => number | undefined,
): CostRow[] {
  return summaries.map((s) => {
    const compiles = Math.max(s.compile_count, shapesAt?.(s.data, s.policy, s.batch) ?? 0);
    const ms = budgetSteps * s.step_ms_median + compiles * s.compile_ms_each;
    const hours = ms / 3.6e6;
    return { data: s.data, model: s.model, batch: s.batch, policy: s.policy, steps: budgetSteps, compiles, hours, price: hours * costPerHour };
  });
}

/** The cheapest policy per (data, model, batch) among cost rows. */
export function cheapestPolicies(costs: readonly CostRow[]): CostRow[] {
  const best = new Map<string, CostRow>();
  for (const c of costs) {
    const k = groupKey(c);
    const cur = best.get(k);
    if (!cur || c.hours < cur.hours) best.set(k, c);
  }
  return [...best.values()];
}

/**
 * One policy's predicted cost of a long run at one (data, model, batch),
 * computed per repetition and ranked on a statistic a shared machine does not
 * distort: each run's *median* step time (steady state: a stall of a few
 * steps from another job moves a mean, not a median) times the planned steps,
 * plus the expected compilations times that run's measured time per
 * compilation; the policy's figure is the median of that over repetitions
 * (one slow repetition does not move it either). `hours_min`/`hours_max` are
 * the range over repetitions: the spread a tie is judged against.
 */
export interface PolicyCost {
  data: string;
  model: string;
  batch: number;
  policy: string;
  steps: number;
  reps: number;
  /** Median over repetitions of each run's predicted hours. */
  hours: number;
  hours_min: number;
  hours_max: number;
  compiles: number;
  /** hours x the hourly price (NaN without one). */
  price: number;
}

/** The recommendation at one (data, model, batch). */
export interface CellRecommendation {
  data: string;
  model: string;
  batch: number;
  steps: number;
  /** Fastest first (by {@link PolicyCost.hours}). */
  ranked: PolicyCost[];
  /**
   * The fastest policy and every other whose range over repetitions overlaps
   * the fastest's (its fastest repetition is not slower than the fastest
   * policy's slowest): more than one is a tie, since the measured difference
   * is inside the repetitions' spread. With one repetition there is no spread
   * and only equal figures tie.
   */
  tied: string[];
  tie: boolean;
  /** The fastest policy not tied with the best (null when every policy ties), and how much slower it is (fraction). */
  next: PolicyCost | null;
  next_slower: number;
  /** Slowest policy's hours / the fastest's. */
  vs_slowest: number;
}

/** One recommendation per (data, model) across its batch sizes. */
export interface OverallRecommendation {
  data: string;
  model: string;
  batches: number[];
  /** The choice first, then the policies tied with it (same number of batch sizes won). */
  tied: string[];
  tie: boolean;
  /** Per policy: batch sizes where it is the fastest or tied with it, and the geometric mean over batch sizes of its hours / the fastest's there. */
  standing: { policy: string; wins: number; geomean_vs_best: number }[];
}

/**
 * Predicted cost of `budgetSteps` steps per policy and repetition, and the
 * ranking of {@link PolicyCost}. `shapesAt` gives the compilations a long run
 * meets (e.g. the policy simulation's distinct shapes; not used for `exact`,
 * whose plan is reused by capacity); the measured count is the floor.
 */
export function policyCosts(
  rows: readonly StudyRow[],
  budgetSteps: number,
  costPerHour = NaN,
  shapesAt?: (data: string, policy: string, batch: number) => number | undefined,
): PolicyCost[] {
  const byCell = rowsByPolicyCell(rows);
  const out: PolicyCost[] = [];
  for (const list of byCell.values()) {
    const r0 = list[0];
    // `exact` reuses one plan by capacity (grown by 25% when a batch does not fit): its distinct
    // shapes are not compilations, so its measured plan builds stand.
    const simulated = plansByCapacity(r0.policy) ? 0 : (shapesAt?.(r0.data, r0.policy, r0.batch) ?? 0);
    const compiles = Math.max(sampleMean(list.map((r) => r.compile_count)), simulated);
    const perRep = list
      .map((r) => (budgetSteps * r.combined_ms_median + compiles * (r.compile_count > 0 ? r.compile_ms_total / r.compile_count : 0)) / 3.6e6)
      .filter((h) => Number.isFinite(h));
    const hours = sampleMedian(perRep);
    out.push({
      data: r0.data, model: r0.model, batch: r0.batch, policy: r0.policy, steps: budgetSteps, reps: perRep.length,
      hours, hours_min: perRep.length ? Math.min(...perRep) : NaN, hours_max: perRep.length ? Math.max(...perRep) : NaN,
      compiles, price: hours * costPerHour,
    });
  }
  return out;
}

/** Per (data, model, batch): the ranking, the fastest policy and those tied with it (see {@link CellRecommendation}). */
export function recommendPolicies(costs: readonly PolicyCost[]): CellRecommendation[] {
  const groups = new Map<string, PolicyCost[]>();
  for (const c of costs) {
    if (!Number.isFinite(c.hours)) continue;
    const list = groups.get(groupKey(c));
    if (list) list.push(c);
    else groups.set(groupKey(c), [c]);
  }
  const out: CellRecommendation[] = [];
  for (const list of groups.values()) {
    const ranked = [...list].sort((a, b) => a.hours - b.hours || a.policy.localeCompare(b.policy));
    const best = ranked[0];
    const tiedWith = (c: PolicyCost): boolean => c === best || c.hours === best.hours || c.hours_min <= best.hours_max;
    const tied = ranked.filter(tiedWith).map((c) => c.policy);
    const next = ranked.find((c) => !tiedWith(c)) ?? null;
    out.push({
      data: best.data, model: best.model, batch: best.batch, steps: best.steps, ranked, tied, tie: tied.length > 1,
      next, next_slower: next ? next.hours / best.hours - 1 : NaN,
      vs_slowest: ranked[ranked.length - 1].hours / best.hours,
    });
  }
  return out;
}

/**
 * One recommendation per (data, model) across batch sizes: the policy that is
 * the fastest or tied with it at the most batch sizes; among equals, the
 * lowest geometric mean of hours / the fastest's hours over the batch sizes.
 * Policies with as many batch sizes won as the choice are listed as tied.
 */
export function overallRecommendations(cells: readonly CellRecommendation[]): OverallRecommendation[] {
  const pairs = new Map<string, CellRecommendation[]>();
  for (const c of cells) {
    const k = `${c.data}|${c.model}`;
    const list = pairs.get(k);
    if (list) list.push(c);
    else pairs.set(k, [c]);
  }
  const out: OverallRecommendation[] = [];
  for (const list of pairs.values()) {
    const policies = [...new Set(list.flatMap((c) => c.ranked.map((r) => r.policy)))];
    const standing = policies.map((p) => {
      let wins = 0;
      let logSum = 0;
      let n = 0;
      for (const c of list) {
        if (c.tied.includes(p)) wins++;
        const r = c.ranked.find((x) => x.policy === p);
        if (r) (logSum += Math.log(r.hours / c.ranked[0].hours), n++);
      }
      return { policy: p, wins, geomean_vs_best: n ? Math.exp(logSum / n) : NaN, covered: n === list.length };
    });
    // A policy missing at some batch size cannot be recommended across them.
    standing.sort((a, b) => Number(b.covered) - Number(a.covered) || b.wins - a.wins || a.geomean_vs_best - b.geomean_vs_best || a.policy.localeCompare(b.policy));
    const choice = standing[0];
    const tied = standing.filter((s) => s.covered === choice.covered && s.wins === choice.wins && s.wins > 0).map((s) => s.policy);
    out.push({
      data: list[0].data, model: list[0].model, batches: list.map((c) => c.batch).sort((a, b) => a - b),
      tied: tied.length ? tied : [choice.policy], tie: tied.length > 1,
      standing: standing.map(({ policy, wins, geomean_vs_best }) => ({ policy, wins, geomean_vs_best })),
    });
  }
  return out;
}
