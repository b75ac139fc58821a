/**
 * Predict the fastest batching policy for a planned run of N steps without
 * running every policy in full (the study left this as future work).
 *
 * 1. Calibrate a cost model of the real model on this machine: time real
 *    steps (pack + forward/backward/Adam) at five padded shapes around the
 *    dynamic budget, varying nodes and edges independently, and fit
 *    `step_ms = a * padded_edges + b * padded_nodes + c` by least squares;
 *    time each shape's plan build and fit `compile_ms = k * padded_edges + k0`.
 * 2. Simulate each policy's batch stream (no training): mean padded nodes and
 *    edges per step and the distinct shapes (compilations) over the run.
 *    The per-compilation cost is the plan build plus the first step's excess
 *    over the steady state (cold buffers).
 * 3. Predict total = N x step prediction + compile cost of every shape; the
 *    cheapest policy is the recommendation.
 *
 * The fits are in least-squares.ts, the simulation in policy-simulation.ts;
 * this file calibrates, recommends, and verifies against real runs.
 */
import { POLICY_NAMES, policyName, sizesOf } from '../batching';
import { defaultTarget, loadSource, type GraphStore, type SourceFormat, type Split } from '../data';
import type { PackShape } from '../native';
import type { ModelKind } from '../model/config';
import { CpuEngine } from '../train/engine';
import { DEFAULT_SEED, adamStepArgs, defaultSplit, prepareRun } from '../train/run-setup';
import { train } from '../train/trainer';
import type { StudyResults } from './results';
import { analyseStudy, policyCosts, recommendPolicies } from './stats';
import { nonNegativeFit } from './least-squares';
import { predictPolicyTimes, type PolicyPrediction, type StepCostCoefficients } from './policy-simulation';
import { ArgumentError } from '../errors';

/** One measured calibration shape. */
export interface CalibrationPoint {
  nodes: number;
  edges: number;
  graphs: number;
  /** Median of the timed steps (pack + update), ms. */
  step_ms: number;
  /** Fastest and slowest of the timed steps (ms): the spread a tie is judged against. */
  step_ms_min: number;
  step_ms_max: number;
  /** Plan build time plus the first step's excess over the median, ms. */
  compile_ms: number;
}

/** The fitted per-step and per-compilation cost model (ms). */
export interface CostModel extends StepCostCoefficients {
  points: CalibrationPoint[];
  /** Seconds the calibration took. */
  seconds: number;
}

/** Options of {@link calibrateCostModel}. */
export interface CalibrateOptions {
  store: GraphStore;
  target: string;
  model: ModelKind;
  batchSize: number;
  split?: Split;
  threads?: number;
  /** Timed steps per shape after one untimed warm-up (default 3). */
  stepsPerShape?: number;
  seed?: number;
}

/** Node and edge scale factors of the calibration shapes relative to the dynamic budget. */
export const CALIBRATION_SCALES: readonly [number, number][] = [[0.5, 0.5], [1, 1], [2, 1], [1, 2], [2, 2]];

const up64 = (x: number): number => Math.max(64, Math.ceil(x / 64) * 64);

/** Measures real steps at the calibration shapes and fits the cost model. */
export function calibrateCostModel(o: CalibrateOptions): CostModel {
  const t0 = Date.now();
  // train()'s set-up, CPU engine and plan cache: the calibration times the very step a run makes.
  const run = prepareRun({ store: o.store, target: o.target, model: { kind: o.model }, policy: 'dynamic', batchSize: o.batchSize, seed: o.seed, split: o.split, threads: o.threads, skipEval: true, missingTargets: 'zero', who: 'calibration' });
  const sizes = sizesOf(run.store);
  const dyn = run.policy;
  const budget = dyn.fixedShape as PackShape;
  const first = dyn.next().graphIds;
  const steps = o.stepsPerShape ?? 3;
  const cache = run.cache;
  const engine = new CpuEngine(run.arrays, cache, run.state);
  const points: CalibrationPoint[] = [];
  let t = 0;
  for (const [sn, se] of CALIBRATION_SCALES) {
    const shape: PackShape = { nodes: up64(budget.nodes * sn), edges: up64(budget.edges * se), graphs: budget.graphs };
    // Real graphs that fit the shape (prefix of the first dynamic batch).
    let n = 0;
    let e = 0;
    let k = 0;
    for (; k < first.length; k++) {
      const g = first[k];
      const gn = sizes.nodes[g];
      const ge = sizes.edges[g];
      if (n + gn > shape.nodes - 1 || e + ge > shape.edges || k + 1 > shape.graphs - 1) break;
      n += gn;
      e += ge;
    }
    const spec = { graphIds: first.subarray(0, Math.max(1, k)), shape };
    const times: number[] = [];
    let firstMs = 0;
    let buildMs = 0;
    for (let s = 0; s <= steps; s++) {
      const before = cache.stats().buildMs;
      const r = engine.stepSync(spec, t, adamStepArgs(t, 1e-4), process.hrtime.bigint());
      t++;
      // Pack + step without the plan build (the first step of a shape builds its plan).
      const build = cache.stats().buildMs - before;
      const ms = r.batchingMs + r.updateMs - build;
      if (s > 0) times.push(ms);
      else (firstMs = ms), (buildMs = build);
    }
    times.sort((x, y) => x - y);
    const median = times[times.length >> 1];
    // A new shape costs its plan build plus a slower first step (cold buffers,
    // page faults): both are what a run pays per compilation.
    points.push({ ...shape, step_ms: median, step_ms_min: times[0], step_ms_max: times[times.length - 1], compile_ms: buildMs + Math.max(0, firstMs - median) });
  }
  const [a, b, c] = nonNegativeFit(points.map((p) => [p.edges, p.nodes, 1]), points.map((p) => p.step_ms));
  const [k, k0] = nonNegativeFit(points.map((p) => [p.edges, 1]), points.map((p) => p.compile_ms));
  return { ms_per_edge: a, ms_per_node: b, ms_per_step: c, compile_ms_per_edge: k, compile_ms_base: k0, points, seconds: (Date.now() - t0) / 1000 };
}

/** Options of {@link recommend}. */
export interface RecommendOptions {
  store: GraphStore;
  /** Target (default: the store's first property). */
  target?: string;
  model: ModelKind;
  batchSize: number;
  /** Planned training steps N. */
  steps: number;
  policies?: readonly string[];
  threads?: number;
  seed?: number;
  /** Reuse a calibration instead of measuring one. */
  costModel?: CostModel;
  stepsPerShape?: number;
}

/** What {@link recommend} returns. */
export interface Recommendation {
  model: ModelKind;
  batch: number;
  steps: number;
  cost_model: CostModel;
  /** Fastest first. */
  predictions: PolicyPrediction[];
  choice: string;
  /**
   * The choice and every policy predicted within {@link Recommendation.spread}
   * of it: more than one is a tie (the predicted difference is inside the
   * calibration's measured noise), and the reason says so.
   */
  tied: string[];
  /**
   * Relative spread of the calibration's timed steps: the median over its
   * shapes of (slowest - fastest) / (2 x median). A predicted difference below
   * it is not a measured one.
   */
  spread: number;
  reason: string;
}

/** Predicts every policy's time for the planned run and picks the fastest. */
export function recommend(o: RecommendOptions): Recommendation {
  const target = o.target ?? defaultTarget(o.store);
  if (!target) throw new ArgumentError('the data has no numeric target property');
  const split = defaultSplit(o.store);
  const cost = o.costModel ?? calibrateCostModel({ store: o.store, target, model: o.model, batchSize: o.batchSize, split, threads: o.threads, seed: o.seed, stepsPerShape: o.stepsPerShape });
  const predictions = predictPolicyTimes(sizesOf(o.store), split.train, o.batchSize, o.steps, cost, o.policies ?? POLICY_NAMES, o.seed ?? DEFAULT_SEED);
  const best = predictions[0];
  const spread = calibrationSpread(cost);
  const tied = predictions.filter((p) => p === best || p.total_s - best.total_s <= spread * best.total_s).map((p) => p.policy);
  const next = predictions.find((p) => !tied.includes(p.policy)) ?? predictions[1];
  let reason = explain(best, next);
  if (tied.length > 1) {
    const others = predictions.filter((p) => p !== best && tied.includes(p.policy));
    reason = `tie: ${tied.join(', ')} are predicted within ${(100 * spread).toFixed(1)}% of each other (the calibration's step-time spread), so the data do not separate them (${others.map((p) => `${p.policy} +${((100 * (p.total_s - best.total_s)) / best.total_s).toFixed(1)}%`).join(', ')}); ${reason}`;
  }
  return { model: o.model, batch: o.batchSize, steps: o.steps, cost_model: cost, predictions, choice: best.policy, tied, spread, reason };
}

/** Median over calibration shapes of (slowest - fastest timed step) / (2 x median step); 0 without timed spread. */
export function calibrationSpread(cost: Pick<CostModel, 'points'>): number {
  const rel = cost.points
    .filter((p) => p.step_ms > 0 && Number.isFinite(p.step_ms_min) && Number.isFinite(p.step_ms_max))
    .map((p) => (p.step_ms_max - p.step_ms_min) / (2 * p.step_ms))
    .sort((a, b) => a - b);
  if (!rel.length) return 0;
  const h = rel.length >> 1;
  return rel.length % 2 ? rel[h] : (rel[h - 1] + rel[h]) / 2;
}

function explain(best: PolicyPrediction, next: PolicyPrediction | undefined): string {
  const s = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
  let r = `${best.policy}: ${s(best.total_s)} s = ${best.steps} steps x ${s(best.step_ms)} ms (${best.mean_padded_edges.toFixed(0)} padded edges, ${best.mean_padded_nodes.toFixed(0)} nodes per step) + ${best.compiles} compilation(s) (${s(best.compile_ms / 1000)} s)`;
  if (next) {
    const pct = (100 * (next.total_s - best.total_s)) / best.total_s;
    const stepDiff = next.step_ms - best.step_ms;
    const compDiff = next.compile_ms - best.compile_ms;
    const why = stepDiff * next.steps >= compDiff ? `less padded work per step (${s(next.mean_padded_edges / best.mean_padded_edges)}x the edges for ${next.policy})` : `fewer compilations (${next.compiles} for ${next.policy})`;
    r += `; next best ${next.policy} is ${pct.toFixed(1)}% slower, mainly from ${why}`;
  }
  return r;
}

/** One policy's predicted vs measured time. */
export interface VerifyRow {
  policy: string;
  steps: number;
  predicted_s: number;
  measured_s: number;
  /** measured / predicted. */
  ratio: number;
}

/** Result of {@link verifyRecommendation}. */
export interface Verification {
  rows: VerifyRow[];
  predicted_choice: string;
  measured_fastest: string;
  hit: boolean;
  /** Measured time of the predicted choice / the measured fastest's (1 = hit). */
  regret: number;
}

/**
 * Runs the candidate policies for real (`steps` steps each, evaluation
 * skipped) and compares with the predictions for that many steps.
 */
export async function verifyRecommendation(
  o: RecommendOptions & { verifySteps: number; onPolicy?: (policy: string) => void },
  rec: Recommendation,
): Promise<Verification> {
  const target = o.target ?? defaultTarget(o.store);
  if (!target) throw new ArgumentError('the data has no numeric target property');
  const split = defaultSplit(o.store);
  const sizes = sizesOf(o.store);
  const policies = rec.predictions.map((p) => p.policy);
  const pred = predictPolicyTimes(sizes, split.train, o.batchSize, o.verifySteps, rec.cost_model, policies, o.seed ?? DEFAULT_SEED);
  const rows: VerifyRow[] = [];
  for (const p of pred) {
    o.onPolicy?.(p.policy);
    const { result } = await train({
      store: o.store,
      target,
      model: { kind: o.model },
      policy: policyName(p.policy),
      batchSize: o.batchSize,
      steps: o.verifySteps,
      seed: o.seed ?? DEFAULT_SEED,
      split,
      threads: o.threads,
      skipEval: true,
    });
    const measured = (result.combined_ms_mean * result.steps_run) / 1000;
    rows.push({ policy: p.policy, steps: o.verifySteps, predicted_s: p.total_s, measured_s: measured, ratio: measured / p.total_s });
  }
  const fastest = rows.reduce((a, b) => (b.measured_s < a.measured_s ? b : a));
  const chosen = rows.find((r) => r.policy === pred[0].policy) as VerifyRow;
  return { rows, predicted_choice: pred[0].policy, measured_fastest: fastest.policy, hit: fastest.policy === pred[0].policy, regret: chosen.measured_s / fastest.measured_s };
}

/** One (data, model, batch) of a study: predicted vs measured fastest. */
export interface HitRow {
  data: string;
  model: string;
  batch: number;
  steps: number;
  predicted: string;
  /** The measured fastest, and every policy tied with it (see `recommendPolicies`: ranges over repetitions overlap). */
  measured: string;
  measured_tied: string[];
  /** The predicted choice is the measured fastest or tied with it. */
  hit: boolean;
  /** Measured time of the predicted choice / the measured fastest's (the ranking's medians). */
  regret: number;
  predictions: PolicyPrediction[];
}

/** The measured side of a hit-rate row for tables: the fastest, or `tie: a, b`. */
export function measuredLabel(r: Pick<HitRow, 'measured' | 'measured_tied'>): string {
  return r.measured_tied && r.measured_tied.length > 1 ? `tie: ${r.measured_tied.join(', ')}` : r.measured;
}

/** Hit rate of {@link recommend} over a study's grid. */
export interface HitRate {
  rows: HitRow[];
  hits: number;
  total: number;
  rate: number;
  /** Choices within 5% of the measured fastest. */
  within5: number;
  calibration_seconds: number;
}

/**
 * For every (data, model, batch) of a study: calibrate, predict the fastest
 * policy for the study's step count, and compare with the measured ranking of
 * the same run length (`recommendPolicies` over the study's rows: the median
 * over repetitions of steps x each run's median step time + its
 * compilations' time). A hit is a prediction equal to the measured fastest
 * or to a policy tied with it (inside the repetitions' spread).
 */
export async function studyHitRate(results: StudyResults, o: { threads?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<HitRate> {
  const a = analyseStudy(results.rows);
  const groups = [...new Set(a.summaries.map((s) => `${s.data}\u0000${s.model}\u0000${s.batch}`))];
  const rows: HitRow[] = [];
  let calib = 0;
  const stores = new Map<string, GraphStore>();
  for (const g of groups) {
    o.onProgress?.(rows.length, groups.length);
    const [data, model, batchText] = g.split('\u0000');
    const batch = Number(batchText);
    const here = a.summaries.filter((s) => s.data === data && s.model === model && s.batch === batch);
    let store = stores.get(data);
    if (!store) {
      // The load options the study itself used (graph rule, format, generator seed), as recorded in its grid.
      const load = results.grid.load ?? {};
      store = (
        await loadSource(data, {
          format: load.format as SourceFormat | undefined,
          graph: load.graph,
          target: load.target,
          dropEdgeless: load.drop_edgeless,
          seed: load.data_seed,
        })
      ).store;
      stores.clear();
      stores.set(data, store);
    }
    const target = results.rows.find((r) => r.data === data)?.target;
    const rec = recommend({ store, target, model: model as ModelKind, batchSize: batch, steps: here[0].steps, policies: here.map((s) => s.policy), threads: o.threads });
    calib += rec.cost_model.seconds;
    const cellRows = results.rows.filter((r) => r.data === data && r.model === model && r.batch === batch);
    const [measured] = recommendPolicies(policyCosts(cellRows, here[0].steps));
    const best = measured.ranked[0];
    const chosen = measured.ranked.find((c) => c.policy === rec.choice) ?? best;
    rows.push({
      data, model, batch, steps: here[0].steps, predicted: rec.choice, measured: best.policy, measured_tied: measured.tied,
      hit: measured.tied.includes(rec.choice), regret: chosen.hours / best.hours, predictions: rec.predictions,
    });
    await new Promise((r) => setImmediate(r));
  }
  o.onProgress?.(rows.length, groups.length);
  const hits = rows.filter((r) => r.hit).length;
  return { rows, hits, total: rows.length, rate: rows.length ? hits / rows.length : NaN, within5: rows.filter((r) => r.regret <= 1.05).length, calibration_seconds: calib };
}
