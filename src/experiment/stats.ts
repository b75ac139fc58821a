/**
 * The study's analysis of a results table: per (data, model, batch size,
 * policy) means over repetitions, the study's speedup (slowest method's time
 * / each method's time, per batch size), and two-sample t-tests of test RMSE
 * between every pair of policies (Student with pooled variance, and Welch).
 */
import type { StudyRow } from './results';

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
}

/** One pairwise comparison of test RMSE. */
export interface TTestRow {
  data: string;
  model: string;
  batch: number;
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

/**
 * Aggregates rows per (data, model, batch, policy), computes speedups per
 * (data, model, batch) and t-tests between every pair of policies there.
 * Order follows first appearance in `rows`.
 */
export function analyseStudy(rows: readonly StudyRow[], alpha = 0.05): StudyAnalysis {
  const byCell = new Map<string, StudyRow[]>();
  for (const r of rows) {
    const k = `${groupKey(r)}|${r.policy}`;
    const list = byCell.get(k);
    if (list) list.push(r);
    else byCell.set(k, [r]);
  }
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
    });
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
    for (const s of list) {
      s.speedup = slowest / s.step_ms_mean;
      s.speedup_median = slowestMedian / s.step_ms_median;
    }
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i];
        const b = list[j];
        const xa = rmses(rows, a);
        const xb = rmses(rows, b);
        const student = studentTTest(xa, xb);
        const welch = welchTTest(xa, xb);
        ttests.push({
          data: a.data,
          model: a.model,
          batch: a.batch,
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

function rmses(rows: readonly StudyRow[], s: PolicySummary): number[] {
  return rows
    .filter((r) => r.data === s.data && r.model === s.model && r.batch === s.batch && r.policy === s.policy && Number.isFinite(r.test_rmse))
    .map((r) => r.test_rmse);
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
