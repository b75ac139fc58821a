/**
 * The study's decision: one policy per (data, model, batch size) and per
 * (data, model), with the evidence behind it.
 *
 * Policies are compared per graph, not per step (a step of `dynamic` carries
 * fewer graphs than a step of `exact`): a planned run trains on
 * `plannedSteps x B` graphs, and a policy's time for it is those graphs / its
 * graphs per step x its median step time, plus the compilations the run meets
 * x its time per compilation. Each repetition gives one such time; the
 * repetitions of one (data, model, B) ran interleaved (every policy's
 * repetition r back to back), so they are paired: the comparison of a policy
 * with the fastest is the mean log ratio over repetitions, with a Student-t
 * confidence interval.
 *
 * The fastest is the policy that no other beats on the paired ratio (found
 * from the lowest median time; the two can disagree on noisy repetitions),
 * and policies are listed by their ratio to it. Against the fastest a policy is
 * - `slower` when its ratio's interval lies above 1 + margin, or above 1 with
 *   the interval's upper end beyond the margin (clearly slower),
 * - `tied` when the whole interval lies below 1 + margin (at most `margin`
 *   slower: a difference that does not matter),
 * - `open` otherwise (the interval holds both "no difference" and "more than
 *   the margin"): more repetitions would tell; {@link openCells} lists them
 *   for the study's adaptive repetitions.
 * Tied and open policies are the tie. A tie is broken by stated secondary
 * criteria, in order: compilations over the planned run (each new padded
 * shape is a recompilation on an XLA-like backend; fewer is better), padded
 * work (padded edges / real edges: also the padded batch's memory), then the
 * lowest median time. On the CPU every policy is bitwise deterministic for a
 * seed, so determinism does not separate them.
 *
 * The confidence of a pick is its rerun agreement: the share of bootstrap
 * resamples of the repetitions (paired: one draw of repetition indices for
 * all policies) on which the whole decision, tie-break included, picks the
 * same policy.
 */
import { mulberry32 as rng } from '../data/split';
import type { StudyRow } from './results';
import { plansByCapacity } from '../train/plan';
import { sampleMean, sampleMedian, sampleVariance } from './stats';

// jstat ships no types; the t distribution's inverse CDF is the one function used here.
const { jStat } = require('jstat') as { jStat: { studentt: { inv(p: number, dof: number): number } } };

/** Options of {@link decideStudy}. */
export interface DecisionOptions {
  /** Steps of the planned run (default 2,000,000, the study's long run); it trains on plannedSteps x B graphs. */
  plannedSteps?: number;
  /** Compilations a long run meets per (data, policy, batch) (e.g. the policy simulation's shapes); the measured count is the floor. */
  shapesAt?: (data: string, policy: string, batch: number) => number | undefined;
  /** Relative difference that does not matter (default {@link DEFAULT_TIE_MARGIN}). */
  margin?: number;
  /** Confidence of the intervals (default 0.95). */
  confidence?: number;
  /** Bootstrap resamples for the rerun agreement (default 1000; 0: none). */
  resamples?: number;
  /** Seed of the bootstrap (default 1). */
  seed?: number;
}

/** Differences below 3% of the time are called a tie: a few percent is what a shared machine's load moves between runs. */
export const DEFAULT_TIE_MARGIN = 0.03;

/** One repetition of one policy, reduced to what the decision reads. */
export interface RepTime {
  rep: number;
  /** Predicted hours of the planned run from this repetition. */
  hours: number;
  /** Median step time (ms) and real graphs per step of the repetition. */
  step_ms: number;
  graphs_per_step: number;
}

/** A policy's evidence at one (data, model, B). */
export interface PolicyEvidence {
  policy: string;
  reps: number;
  /** Median over repetitions of the predicted hours of the planned run. */
  hours: number;
  /** Graphs per second (median step time, real graphs per step) and ms per 1,000 graphs. */
  graphs_per_s: number;
  ms_per_1000_graphs: number;
  /** Median step time (ms). */
  step_ms: number;
  /** Compilations over the planned run (simulation or measured, the larger). */
  compiles: number;
  /** Padded edges / real edges (1 = no padding). */
  padded_work: number;
  /** Paired ratio of its time to the fastest's (geometric mean over repetitions) and its confidence interval; 1 for the fastest. */
  ratio: number;
  ratio_lo: number;
  ratio_hi: number;
  status: 'fastest' | 'slower' | 'tied' | 'open';
}

/** The decision at one (data, model, B). */
export interface CellDecision {
  data: string;
  model: string;
  batch: number;
  planned_steps: number;
  /** Fastest first (median hours). */
  policies: PolicyEvidence[];
  pick: string;
  /** The fastest policy and every policy tied with it or still open (more than one: a tie). */
  tied: string[];
  tie: boolean;
  /** Some policy could not be told apart from the fastest nor called within the margin: more repetitions would help. */
  open: boolean;
  /** Which criterion chose the pick. */
  criterion: 'fastest' | 'compilations' | 'padded work' | 'median time';
  /** One sentence: "P is fastest: ..." or "tie within X%: choose P because ...". */
  reason: string;
  /** Share of bootstrap resamples that pick the same policy (NaN below two paired repetitions). */
  agreement: number;
  /** Repetitions the comparison paired (the fewest any policy had). */
  reps: number;
}

/** The decision across batch sizes for one (data, model). */
export interface PairDecision {
  data: string;
  model: string;
  batches: number[];
  pick: string;
  /** Batch sizes where `pick` is the pick. */
  wins: number;
  /** Geometric mean over batch sizes of the pick's hours / the fastest's there. */
  geomean_vs_fastest: number;
  reason: string;
  agreement: number;
  cells: CellDecision[];
}

const key3 = (r: { data: string; model: string; batch: number }): string => `${r.data}\u0000${r.model}\u0000${r.batch}`;

/** Per-repetition predicted hours of the planned run (see the file comment). */
export function repHours(r: Pick<StudyRow, 'batch' | 'combined_ms_median' | 'graphs_per_batch_mean' | 'compile_count' | 'compile_ms_total'>, plannedSteps: number, compiles: number): number {
  const gps = r.graphs_per_batch_mean > 0 ? r.graphs_per_batch_mean : r.batch;
  const steps = (plannedSteps * r.batch) / gps;
  const perCompile = r.compile_count > 0 ? r.compile_ms_total / r.compile_count : 0;
  return (steps * r.combined_ms_median + compiles * perCompile) / 3.6e6;
}

/** A policy's repetitions at one cell with the cell-level facts. */
interface PolicyTable {
  policy: string;
  reps: RepTime[];
  compiles: number;
  padded_work: number;
}

function tQuantile(confidence: number, df: number): number {
  return jStat.studentt.inv(1 - (1 - confidence) / 2, df);
}

/** Paired geometric-mean ratio a/b over common repetitions with its t interval (NaN bounds below two pairs, unless equal). */
export function pairedRatio(a: readonly RepTime[], b: readonly RepTime[], confidence = 0.95): { ratio: number; lo: number; hi: number; pairs: number } {
  const byRep = new Map(b.map((x) => [x.rep, x.hours]));
  const logs: number[] = [];
  for (const x of a) {
    const y = byRep.get(x.rep);
    if (y !== undefined && x.hours > 0 && y > 0) logs.push(Math.log(x.hours / y));
  }
  const n = logs.length;
  if (n === 0) return { ratio: NaN, lo: NaN, hi: NaN, pairs: 0 };
  const m = sampleMean(logs);
  if (n < 2) return { ratio: Math.exp(m), lo: NaN, hi: NaN, pairs: 1 };
  const se = Math.sqrt(sampleVariance(logs) / n);
  const h = se === 0 ? 0 : tQuantile(confidence, n - 1) * se;
  return { ratio: Math.exp(m), lo: Math.exp(m - h), hi: Math.exp(m + h), pairs: n };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** Decides one cell from its per-policy tables (see the file comment); agreement left NaN. */
function decideTables(cell: { data: string; model: string; batch: number }, tables: readonly PolicyTable[], plannedSteps: number, margin: number, confidence: number): CellDecision {
  const ev = tables
    .filter((t) => t.reps.length > 0)
    .map((t) => {
      const hours = sampleMedian(t.reps.map((r) => r.hours));
      const stepMs = sampleMedian(t.reps.map((r) => r.step_ms));
      const gps = sampleMedian(t.reps.map((r) => r.graphs_per_step));
      return { t, hours, stepMs, gps };
    })
    .filter((x) => Number.isFinite(x.hours))
    .sort((x, y) => x.hours - y.hours || x.t.policy.localeCompare(y.t.policy));
  // The fastest is the policy the paired comparison puts first. Start from the
  // lowest median time and move to any policy whose paired ratio to it is
  // below 1 (median and geometric mean can disagree on noisy repetitions):
  // every other policy's ratio is then >= 1, and the order below is by ratio.
  // Ratios over different repetition sets (a failed repetition, a partial
  // shard) need not be transitive: on a cycle, the lowest median of the
  // policies visited is the fastest.
  let best = ev[0];
  const visited = new Set(best ? [best] : []);
  while (best) {
    let next = best;
    let min = 1;
    for (const x of ev) {
      if (x === best) continue;
      const r = pairedRatio(x.t.reps, best.t.reps, confidence).ratio;
      if (Number.isFinite(r) && r < min) (min = r), (next = x);
    }
    if (next === best) break;
    if (visited.has(next)) {
      best = [...visited].reduce((a, b) => (b.hours < a.hours || (b.hours === a.hours && b.t.policy < a.t.policy) ? b : a));
      break;
    }
    visited.add(next);
    best = next;
  }
  let minPairs = Infinity;
  let unpaired = false;
  const policies: PolicyEvidence[] = ev.map((x) => {
    let status: PolicyEvidence['status'] = 'fastest';
    let ratio = 1;
    let lo = 1;
    let hi = 1;
    if (x !== best) {
      const p = pairedRatio(x.t.reps, best.t.reps, confidence);
      minPairs = Math.min(minPairs, p.pairs);
      ratio = Number.isFinite(p.ratio) ? p.ratio : x.hours / best.hours;
      lo = p.lo;
      hi = p.hi;
      // One pair has no spread: judged on the point estimate, and the cell stays open (more repetitions would tell).
      if (!Number.isFinite(lo) || !Number.isFinite(hi)) (status = ratio <= 1 + margin ? 'tied' : 'slower'), (unpaired = true);
      else if (hi <= 1 + margin) status = 'tied';
      else if (lo > 1) status = 'slower';
      else status = 'open';
    }
    return {
      policy: x.t.policy,
      reps: x.t.reps.length,
      hours: x.hours,
      graphs_per_s: (1000 * x.gps) / x.stepMs,
      ms_per_1000_graphs: (1000 * x.stepMs) / x.gps,
      step_ms: x.stepMs,
      compiles: x.t.compiles,
      padded_work: x.t.padded_work,
      ratio, ratio_lo: lo, ratio_hi: hi, status,
    };
  });
  // Fastest first, then by ratio to it (ties of ratio: median time, then name, as before).
  const order = new Map(policies.map((p, i) => [p, i]));
  policies.sort((a, b) => (a.status === 'fastest' ? -1 : b.status === 'fastest' ? 1 : a.ratio - b.ratio || order.get(a)! - order.get(b)!));
  const tiedEv = policies.filter((p) => p.status !== 'slower');
  const tied = tiedEv.map((p) => p.policy);
  const open = unpaired || policies.some((p) => p.status === 'open');
  let pick = policies[0];
  let criterion: CellDecision['criterion'] = 'fastest';
  let reason: string;
  if (tiedEv.length <= 1) {
    const next = policies[1];
    reason = next
      ? `${pick.policy} is fastest: ${next.policy}, the runner-up, takes ${pct(next.ratio - 1)} longer per graph (${Math.round(100 * confidence)}% CI ${pct(next.ratio_lo - 1)} to ${pct(next.ratio_hi - 1)})`
      : `${pick.policy} is the only policy measured`;
  } else {
    const within = Math.max(...tiedEv.map((p) => Math.max(p.ratio, Number.isFinite(p.ratio_hi) ? p.ratio_hi : p.ratio))) - 1;
    const head = `tie within ${pct(within)} (${tied.join(', ')}${open ? '; not separated by the repetitions' : ''})`;
    // Secondary criteria in order; each keeps the candidates within its tolerance of the best value.
    let cands = tiedEv;
    const minC = Math.min(...cands.map((p) => p.compiles));
    const byC = cands.filter((p) => p.compiles <= Math.max(minC * 1.1, minC + 1));
    if (byC.length < cands.length) {
      const worst = cands.filter((p) => !byC.includes(p)).sort((a, b) => a.compiles - b.compiles)[0];
      if (byC.length === 1) {
        pick = byC[0];
        criterion = 'compilations';
        reason = `${head}: choose ${pick.policy} because it compiles ${pick.compiles.toFixed(0)} time(s) over the planned run vs ${worst.compiles.toFixed(0)} for ${worst.policy} (each new padded shape is a recompilation on an XLA-like backend)`;
      }
      cands = byC;
    }
    if (criterion === 'fastest') {
      const minW = Math.min(...cands.map((p) => p.padded_work));
      const byW = Number.isFinite(minW) ? cands.filter((p) => p.padded_work <= minW * 1.02) : cands;
      if (byW.length === 1 && cands.length > 1) {
        pick = byW[0];
        criterion = 'padded work';
        const worst = cands.filter((p) => p !== pick).sort((a, b) => a.padded_work - b.padded_work)[0];
        reason = `${head}: choose ${pick.policy} because it does the least padded work (${pick.padded_work.toFixed(2)}x the real edges vs ${worst.padded_work.toFixed(2)}x for ${worst.policy}; padding is also the padded batch's memory)`;
      } else {
        if (byW.length > 0) cands = byW;
        pick = cands.reduce((a, b) => (b.hours < a.hours ? b : a));
        criterion = 'median time';
        reason = `${head}: choose ${pick.policy} because it has the lowest median time; compilations and padded work do not separate ${cands.map((p) => p.policy).join(', ')}`;
      }
    }
  }
  return {
    data: cell.data, model: cell.model, batch: cell.batch, planned_steps: plannedSteps, policies, pick: pick.policy, tied, tie: tiedEv.length > 1, open,
    criterion, reason: reason!, agreement: NaN, reps: Number.isFinite(minPairs) ? minPairs : policies.length === 1 ? policies[0].reps : 0,
  };
}

/** The tables resampled: repetition indices drawn with replacement (one draw for every policy, keeping pairs). */
function resample(tables: readonly PolicyTable[], reps: readonly number[], rand: () => number): PolicyTable[] {
  const draw = reps.map(() => reps[Math.floor(rand() * reps.length)]);
  return tables.map((t) => {
    const byRep = new Map(t.reps.map((r) => [r.rep, r]));
    const out: RepTime[] = [];
    draw.forEach((r, i) => {
      const x = byRep.get(r);
      if (x) out.push({ ...x, rep: i });
    });
    return { ...t, reps: out };
  });
}

/** Per (data, model, B): the policies' tables from study rows. */
function cellTables(rows: readonly StudyRow[], plannedSteps: number, shapesAt: DecisionOptions['shapesAt']): Map<string, { cell: { data: string; model: string; batch: number }; tables: PolicyTable[] }> {
  const cells = new Map<string, { cell: { data: string; model: string; batch: number }; byPolicy: Map<string, StudyRow[]> }>();
  for (const r of rows) {
    const k = key3(r);
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { cell: { data: r.data, model: r.model, batch: r.batch }, byPolicy: new Map() }));
    const list = c.byPolicy.get(r.policy);
    if (list) list.push(r);
    else c.byPolicy.set(r.policy, [r]);
  }
  const out = new Map<string, { cell: { data: string; model: string; batch: number }; tables: PolicyTable[] }>();
  for (const [k, c] of cells) {
    const tables: PolicyTable[] = [];
    for (const [policy, list] of c.byPolicy) {
      // `exact` reuses one plan by capacity: its distinct shapes are not compilations (as policyCosts).
      const simulated = plansByCapacity(policy) ? 0 : (shapesAt?.(c.cell.data, policy, c.cell.batch) ?? 0);
      const compiles = Math.max(sampleMean(list.map((r) => r.compile_count)), simulated);
      const padded = sampleMean(list.map((r) => r.padded_edges_vs_exact).filter((x) => Number.isFinite(x)));
      tables.push({
        policy,
        compiles,
        padded_work: padded,
        reps: list
          .map((r) => ({ rep: r.rep, hours: repHours(r, plannedSteps, compiles), step_ms: r.combined_ms_median, graphs_per_step: r.graphs_per_batch_mean > 0 ? r.graphs_per_batch_mean : r.batch }))
          .filter((x) => Number.isFinite(x.hours)),
      });
    }
    out.set(k, { cell: c.cell, tables });
  }
  return out;
}

/** What {@link decideStudy} returns. */
export interface StudyDecisions {
  cells: CellDecision[];
  pairs: PairDecision[];
  margin: number;
  confidence: number;
  resamples: number;
  planned_steps: number;
}

function overall(data: string, model: string, cells: readonly CellDecision[]): Omit<PairDecision, 'agreement' | 'cells'> {
  const policies = [...new Set(cells.flatMap((c) => c.policies.map((p) => p.policy)))];
  const standing = policies.map((policy) => {
    let wins = 0;
    let logSum = 0;
    let n = 0;
    for (const c of cells) {
      if (c.pick === policy) wins++;
      const p = c.policies.find((x) => x.policy === policy);
      // Its paired ratio to the cell's fastest (the decision's own comparison; 1 for the fastest).
      if (p) (logSum += Math.log(p.ratio), n++);
    }
    return { policy, wins, geo: n ? Math.exp(logSum / n) : NaN, covered: n === cells.length };
  });
  standing.sort((a, b) => Number(b.covered) - Number(a.covered) || b.wins - a.wins || a.geo - b.geo || a.policy.localeCompare(b.policy));
  const s = standing[0];
  const second = standing[1];
  const tiedOnWins = second && second.covered === s.covered && second.wins === s.wins;
  const reason =
    `${s.policy} is the pick at ${s.wins} of ${cells.length} batch size(s)` +
    (tiedOnWins ? `, as is ${second.policy}: choose ${s.policy} because its time is ${s.geo.toFixed(3)}x the fastest's across batch sizes (geometric mean) vs ${second.geo.toFixed(3)}x` : `; its time is ${s.geo.toFixed(3)}x the fastest's across batch sizes (geometric mean)`);
  return { data, model, batches: cells.map((c) => c.batch).sort((a, b) => a - b), pick: s.policy, wins: s.wins, geomean_vs_fastest: s.geo, reason };
}

/**
 * The decision for every (data, model, B) and every (data, model) of a
 * study's rows, with rerun agreements from `resamples` bootstrap draws.
 */
export function decideStudy(rows: readonly StudyRow[], options: DecisionOptions = {}): StudyDecisions {
  const plannedSteps = options.plannedSteps ?? 2000000;
  const margin = options.margin ?? DEFAULT_TIE_MARGIN;
  const confidence = options.confidence ?? 0.95;
  const resamples = options.resamples ?? 1000;
  const rand = rng(options.seed ?? 1);
  const tables = cellTables(rows, plannedSteps, options.shapesAt);
  const cells: CellDecision[] = [];
  const repsOf = new Map<string, number[]>();
  for (const [k, { cell, tables: t }] of tables) {
    const d = decideTables(cell, t, plannedSteps, margin, confidence);
    if (d.policies.length === 0) continue;
    cells.push(d);
    repsOf.set(k, [...new Set(t.flatMap((x) => x.reps.map((r) => r.rep)))].sort((a, b) => a - b));
  }
  const pairKeys = [...new Set(cells.map((c) => `${c.data}\u0000${c.model}`))];
  const pairs: PairDecision[] = pairKeys.map((pk) => {
    const [data, model] = pk.split('\u0000');
    const here = cells.filter((c) => c.data === data && c.model === model);
    return { ...overall(data, model, here), agreement: NaN, cells: here };
  });
  if (resamples > 0) {
    const cellAgree = new Map<CellDecision, number>();
    const pairAgree = new Map<PairDecision, number>();
    for (let i = 0; i < resamples; i++) {
      const picks = new Map<string, CellDecision>();
      for (const c of cells) {
        const k = key3(c);
        const reps = repsOf.get(k) ?? [];
        if (reps.length < 2) continue;
        const d = decideTables(c, resample((tables.get(k) as { tables: PolicyTable[] }).tables, reps, rand), plannedSteps, margin, confidence);
        picks.set(k, d);
        if (d.pick === c.pick) cellAgree.set(c, (cellAgree.get(c) ?? 0) + 1);
      }
      for (const p of pairs) {
        const ds = p.cells.map((c) => picks.get(key3(c)));
        if (ds.some((d) => !d)) continue;
        if (overall(p.data, p.model, ds as CellDecision[]).pick === p.pick) pairAgree.set(p, (pairAgree.get(p) ?? 0) + 1);
      }
    }
    for (const c of cells) if ((repsOf.get(key3(c)) ?? []).length >= 2) c.agreement = (cellAgree.get(c) ?? 0) / resamples;
    for (const p of pairs) if (p.cells.every((c) => Number.isFinite(c.agreement))) p.agreement = (pairAgree.get(p) ?? 0) / resamples;
  }
  return { cells, pairs, margin, confidence, resamples, planned_steps: plannedSteps };
}

/** The (data, model, B) cells whose ranking is still open (see {@link CellDecision.open}), for adaptive repetitions. */
export function openCells(rows: readonly StudyRow[], options: Omit<DecisionOptions, 'resamples'> = {}): { data: string; model: string; batch: number; reps: number }[] {
  return decideStudy(rows, { ...options, resamples: 0 }).cells.filter((c) => c.open).map((c) => ({ data: c.data, model: c.model, batch: c.batch, reps: c.reps }));
}
