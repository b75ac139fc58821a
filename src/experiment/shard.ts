/**
 * Splitting the study's grid into N shards that a cluster scheduler runs as
 * separate jobs (a Slurm job array, a Kubernetes Indexed Job), each on its
 * own machine, merged afterwards by `merge.ts`.
 *
 * The assignment rule ({@link planShards}), the same on every machine:
 *
 * 1. The unit of assignment is a *group*: one (data, model, batch size,
 *    repetition) with all its policies. The study compares policies within
 *    such a group, so every comparison is measured on one machine.
 * 2. A group's cost is the sum of its cells' estimated times
 *    ({@link estimateCellCosts}): the policy simulation's mean padded nodes
 *    and edges per step, its distinct shapes (compilations) and the edges of
 *    each, priced by the calibrated cost model of recommend.ts
 *    (`step_ms = a x edges + b x nodes + c`, `compile_ms = k x edges + k0`),
 *    plus the evaluation (a forward pass over the evaluated graphs).
 * 3. Longest processing time first: groups sorted by cost, largest first
 *    (ties: grid order), each to the shard with the least estimated load so
 *    far (ties: the lowest index). Every cell belongs to exactly one shard.
 *
 * The estimate must be identical on every shard, so it reads nothing that is
 * measured at run time: the cost coefficients are fixed ({@link
 * REFERENCE_COST_MODELS}, or the same file given to every shard), the
 * simulation is seeded, and the arithmetic is plain IEEE doubles. Only the
 * ratios between cells matter for the balance, not the machine's speed.
 */
import { createHash } from 'crypto';
import { sizesOf } from '../batching';
import { DEFAULT_SPLIT_SEED, defaultTarget, loadSource, splitGraphs, type LoadSourceOptions } from '../data';
import { ArgumentError, UsageError } from '../errors';
import type { ModelKind } from '../model/config';
import { predictPolicyTimes } from './policy-simulation';
import { StudyError, cellKey, type CellCostCoefficients, type StudyGrid } from './results';

/** A shard: 1-based `index` of `count`. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** A shard and where its index came from. */
export interface ResolvedShard extends ShardSpec {
  source: 'option' | 'slurm' | 'kubernetes';
}

function usage(message: string): UsageError {
  return new UsageError(message);
}

/**
 * Largest shard count accepted from `--shard I/N`, `--shards N` or a
 * scheduler's variables: far beyond any cluster array (Slurm's MaxArraySize
 * defaults to 1001), small enough that the per-shard arrays of a plan stay
 * small. Checked before anything is allocated for the shards.
 */
export const MAX_SHARDS = 100000;

/**
 * A non-negative decimal integer written as digits only (`0x1`, `0b0`, `1e3`,
 * `1.0`, `+1`, ` 1` and empty text are not), at most
 * Number.MAX_SAFE_INTEGER so that it is exact; null otherwise.
 */
export function parseDecimalInteger(text: string): number | null {
  if (!/^[0-9]{1,16}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Parses a shard count given on the command line (`--shards N`): a decimal
 * integer in 1..{@link MAX_SHARDS}. Throws ERR_GNN_USAGE naming `name` and
 * the value otherwise. Usable as a commander option parser.
 */
export function parseShardCount(text: string, name = '--shards'): number {
  const n = parseDecimalInteger(text);
  if (n === null || n < 1 || n > MAX_SHARDS) throw usage(`${name} ${text}: expected a decimal integer from 1 to ${MAX_SHARDS}`);
  return n;
}

/** Parses `I/N` (decimal integers, 1 <= I <= N <= {@link MAX_SHARDS}, no spaces); throws ERR_GNN_USAGE naming the value otherwise. */
export function parseShardSpec(text: string): ShardSpec {
  const m = /^([0-9]+)\/([0-9]+)$/.exec(text);
  const index = m ? parseDecimalInteger(m[1]) : null;
  const count = m ? parseDecimalInteger(m[2]) : null;
  if (index === null || count === null || !(count >= 1 && count <= MAX_SHARDS) || !(index >= 1 && index <= count)) {
    throw usage(`--shard ${text}: expected I/N with 1 <= I <= N <= ${MAX_SHARDS} (shard I of N, 1-based, decimal), e.g. --shard 2/3`);
  }
  return { index, count };
}

function envInt(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = parseDecimalInteger(v);
  if (n === null) throw new StudyError('ERR_GNN_SHARD_ENV', `${name}=${v}: expected an integer written in decimal digits only, 0 to ${Number.MAX_SAFE_INTEGER} (got ${JSON.stringify(v)})`);
  return n;
}

function checkShardCount(count: number, what: string): void {
  if (count > MAX_SHARDS) throw new StudyError('ERR_GNN_SHARD_ENV', `${what}: ${count} shards, more than the maximum of ${MAX_SHARDS}`);
}

/**
 * The shard a scheduler's environment names, or null when none does.
 *
 * - Slurm job arrays: `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_MIN`,
 *   `SLURM_ARRAY_TASK_MAX` (and `SLURM_ARRAY_TASK_STEP`, default 1): shard
 *   (ID - MIN) / STEP + 1 of (MAX - MIN) / STEP + 1. With only
 *   `SLURM_ARRAY_TASK_COUNT`, the IDs are taken as 0..COUNT-1. A sparse
 *   array (`--array=1,4,9`) is refused: its COUNT disagrees with MIN..MAX.
 * - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` (0-based) is shard
 *   index + 1 of `shards` (the Job's `completions`, passed as `--shards N`).
 *
 * `shards`, when given with Slurm, must equal the array's size. Every
 * variable must be a decimal integer (digits only: no `0x1`, `1e3`, spaces,
 * nothing beyond 2^53) and the count at most {@link MAX_SHARDS}. Throws
 * ERR_GNN_SHARD_ENV naming the variables when they are malformed or inconsistent.
 */
export function shardFromEnvironment(env: Readonly<Record<string, string | undefined>>, shards?: number): ResolvedShard | null {
  const id = envInt(env, 'SLURM_ARRAY_TASK_ID');
  const k8s = envInt(env, 'JOB_COMPLETION_INDEX');
  if (id !== undefined && k8s !== undefined) {
    throw new StudyError('ERR_GNN_SHARD_ENV', `both SLURM_ARRAY_TASK_ID (${id}) and JOB_COMPLETION_INDEX (${k8s}) are set: pass --shard I/N to say which shard this is`);
  }
  if (id !== undefined) {
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN');
    const max = envInt(env, 'SLURM_ARRAY_TASK_MAX');
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    const countVar = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    if (!(step >= 1)) throw new StudyError('ERR_GNN_SHARD_ENV', `SLURM_ARRAY_TASK_STEP=${step}: expected an integer >= 1`);
    let lo: number;
    let count: number;
    if (min !== undefined && max !== undefined) {
      if (max < min || (max - min) % step !== 0) throw new StudyError('ERR_GNN_SHARD_ENV', `SLURM_ARRAY_TASK_MIN=${min}, SLURM_ARRAY_TASK_MAX=${max}, SLURM_ARRAY_TASK_STEP=${step} do not describe an array`);
      lo = min;
      count = (max - min) / step + 1;
      checkShardCount(count, `SLURM_ARRAY_TASK_MIN=${min}..SLURM_ARRAY_TASK_MAX=${max} step ${step}`);
      if (countVar !== undefined && countVar !== count) {
        throw new StudyError('ERR_GNN_SHARD_ENV', `SLURM_ARRAY_TASK_COUNT=${countVar} but MIN..MAX step ${step} has ${count} tasks (a sparse --array list?): use a range --array=A-B, or pass --shard I/N`);
      }
    } else if (countVar !== undefined) {
      lo = 0;
      count = countVar;
      checkShardCount(count, `SLURM_ARRAY_TASK_COUNT=${countVar}`);
    } else {
      throw new StudyError('ERR_GNN_SHARD_ENV', `SLURM_ARRAY_TASK_ID=${id} is set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN/MAX`);
    }
    const offset = id - lo;
    if (!(count >= 1) || offset < 0 || offset % step !== 0 || offset / step >= count) {
      throw new StudyError('ERR_GNN_SHARD_ENV', `SLURM_ARRAY_TASK_ID=${id} is not one of the array's ${count} task(s) from ${lo} in steps of ${step}`);
    }
    if (shards !== undefined && shards !== count) {
      throw new StudyError('ERR_GNN_SHARD_ENV', `--shards ${shards} but the Slurm array has ${count} task(s) (SLURM_ARRAY_TASK_*)`);
    }
    return { index: offset / step + 1, count, source: 'slurm' };
  }
  if (k8s !== undefined) {
    if (shards === undefined) throw new StudyError('ERR_GNN_SHARD_ENV', `JOB_COMPLETION_INDEX=${k8s} is set but the shard count is not: pass --shards N (the Job's completions)`);
    if (!Number.isSafeInteger(shards) || shards < 1) throw new StudyError('ERR_GNN_SHARD_ENV', `--shards ${shards}: expected an integer from 1 to ${MAX_SHARDS}`);
    checkShardCount(shards, `--shards ${shards}`);
    if (k8s < 0 || k8s >= shards) throw new StudyError('ERR_GNN_SHARD_ENV', `JOB_COMPLETION_INDEX=${k8s} is outside 0..${shards - 1} (--shards ${shards})`);
    return { index: k8s + 1, count: shards, source: 'kubernetes' };
  }
  return null;
}

/**
 * The shard to run: `--shard I/N` when given, else the scheduler's
 * environment ({@link shardFromEnvironment}), else null (the whole grid).
 * `--shards N` without a scheduler index is a usage error.
 */
export function resolveShard(o: { shard?: string; shards?: number; env?: Readonly<Record<string, string | undefined>> }): ResolvedShard | null {
  if (o.shards !== undefined && !(Number.isInteger(o.shards) && o.shards >= 1 && o.shards <= MAX_SHARDS)) throw usage(`--shards ${o.shards}: expected an integer from 1 to ${MAX_SHARDS}`);
  if (o.shard !== undefined) {
    const s = parseShardSpec(o.shard);
    if (o.shards !== undefined && o.shards !== s.count) throw usage(`--shard ${o.shard} and --shards ${o.shards} disagree on the shard count`);
    return { ...s, source: 'option' };
  }
  const fromEnv = shardFromEnvironment(o.env ?? {}, o.shards);
  if (!fromEnv && o.shards !== undefined) throw usage(`--shards ${o.shards} needs a shard index: JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment, or --shard I/N`);
  return fromEnv;
}

/** The folder name the CLI gives shard I of N under its `--out` folder. */
export function shardDirName(s: ShardSpec): string {
  return `shard-${s.index}-of-${s.count}`;
}

/**
 * Cost coefficients per model (ms), fitted by `nonNegativeFit` to the
 * committed default study (docs/study-results.csv: 96 cells per model, 2-core
 * Xeon, AVX-512): steady-state step time on the simulated mean padded edges
 * and nodes (R^2 0.98 for mpeu, 0.99 for schnet; the intercept came out
 * negative and was dropped), compile time on the simulated shapes' edges.
 * Another machine scales all cells alike, which leaves the assignment as good;
 * a GPU changes the ratios (a larger per-step constant): give its own
 * coefficients (`recommend --json` prints a calibrated `cost_model`).
 */
export const REFERENCE_COST_MODELS: Readonly<Record<ModelKind, CellCostCoefficients>> = {
  mpeu: { ms_per_edge: 5.2e-3, ms_per_node: 3.8e-3, ms_per_step: 0, compile_ms_per_edge: 2.8e-3, compile_ms_base: 0 },
  schnet: { ms_per_edge: 1.8e-3, ms_per_node: 1.16e-2, ms_per_step: 0, compile_ms_per_edge: 7.5e-4, compile_ms_base: 0 },
  // PaiNN has no committed study yet: from its step-benchmark rows (B=16 and
  // 128, same machine), the step split into edge and node parts by the kernel
  // profile's edge share (0.38), Adam as the per-step constant; compile time
  // per padded edge from the same runs' plan builds.
  painn: { ms_per_edge: 1.4e-3, ms_per_node: 3.8e-2, ms_per_step: 3.2, compile_ms_per_edge: 2.0e-3, compile_ms_base: 0 },
};

/**
 * Evaluation cost per evaluated graph relative to a training step's per-graph
 * cost (forward only, no backward or Adam): fitted to the same run's cell
 * times minus their training time (0.37 for mpeu, 0.39 for schnet).
 */
export const EVAL_FORWARD_FRACTION = 0.38;

/** Steps of the policy simulation behind the estimate (fewer when the grid has fewer); later steps are extrapolated. */
export const PLAN_SIMULATE_STEPS = 2000;

/** What the estimate needs from one data source: graph sizes of the split, and how many graphs a cell evaluates. */
export interface SourceCostInput {
  data: string;
  sizes: ReturnType<typeof sizesOf>;
  train: Int32Array;
  /** Graphs evaluated per cell (val + test, after the grid's eval_graphs cap). */
  evalGraphs: number;
}

/** Estimated cost of one (data, model, policy, batch) cell (ms; all repetitions cost the same). */
export interface CellCostEstimate {
  data: string;
  model: string;
  policy: string;
  batch: number;
  step_ms: number;
  compiles: number;
  compile_ms: number;
  eval_ms: number;
  total_ms: number;
}

const UNIT_COMPILE_EDGES = { ms_per_edge: 0, ms_per_node: 0, ms_per_step: 0, compile_ms_per_edge: 1, compile_ms_base: 0, points: [], seconds: 0 };

/**
 * Prices every (model, policy, batch) of one source: one seeded policy
 * simulation per (policy, batch) (its mean padded edges and nodes, its
 * compilations and their summed edges), then each model's coefficients.
 * Throws ERR_GNN_SHARD_COST_MODEL when a model has no coefficients.
 */
export function estimateCellCosts(
  input: SourceCostInput,
  grid: Pick<StudyGrid, 'models' | 'policies' | 'batches' | 'steps' | 'base_seed'>,
  costModels: Readonly<Record<string, CellCostCoefficients>> = REFERENCE_COST_MODELS,
): CellCostEstimate[] {
  for (const m of grid.models) if (!costModels[m]) throw new StudyError('ERR_GNN_SHARD_COST_MODEL', `cost model: no coefficients for model '${m}'`);
  let sumE = 0;
  let sumN = 0;
  for (const g of input.train) {
    sumE += input.sizes.edges[g];
    sumN += input.sizes.nodes[g];
  }
  const meanE = input.train.length ? sumE / input.train.length : 0;
  const meanN = input.train.length ? sumN / input.train.length : 0;
  const out: CellCostEstimate[] = [];
  for (const batch of grid.batches) {
    // compile_ms under the unit model is the summed edges of the shapes compiled.
    const sims = predictPolicyTimes(input.sizes, input.train, batch, grid.steps, UNIT_COMPILE_EDGES, grid.policies, grid.base_seed, PLAN_SIMULATE_STEPS);
    for (const model of grid.models) {
      const c = costModels[model];
      for (const policy of grid.policies) {
        const s = sims.find((p) => p.policy === policy) as (typeof sims)[number];
        const stepMs = c.ms_per_edge * s.mean_padded_edges + c.ms_per_node * s.mean_padded_nodes + c.ms_per_step;
        const compileMs = c.compile_ms_per_edge * s.compile_ms + c.compile_ms_base * s.compiles;
        const evalMs = EVAL_FORWARD_FRACTION * input.evalGraphs * (c.ms_per_edge * meanE + c.ms_per_node * meanN);
        out.push({ data: input.data, model, policy, batch, step_ms: stepMs, compiles: s.compiles, compile_ms: compileMs, eval_ms: evalMs, total_ms: grid.steps * stepMs + compileMs + evalMs });
      }
    }
  }
  return out;
}

/** One group of the plan: a (data, model, batch, rep) with all its policies. */
export interface ShardGroup {
  data: string;
  model: string;
  batch: number;
  rep: number;
  /** Cell keys of the group, in run order. */
  cells: string[];
  cost_ms: number;
  /** 1-based shard. */
  shard: number;
}

/** The assignment of every cell to one shard. */
export interface ShardPlan {
  count: number;
  groups: ShardGroup[];
  /** Estimated load per shard (ms; index 0 = shard 1). */
  loads_ms: number[];
  /** Cell key -> 1-based shard. */
  shardOf: Map<string, number>;
}

/** The cells {@link planShards} assigns: what cellKey needs plus the group fields. */
export interface PlannedCell {
  data: string;
  model: string;
  policy: string;
  batch: number;
  rep: number;
  steps: number;
}

/**
 * Longest-processing-time-first assignment of groups to `count` shards (the
 * module's rule). `cells` in grid order; `cost(cell)` in ms, >= 0. Pure and
 * deterministic: equal inputs give equal plans on every machine.
 */
export function planShards(cells: readonly PlannedCell[], cost: (cell: PlannedCell) => number, count: number): ShardPlan {
  if (!(Number.isInteger(count) && count >= 1 && count <= MAX_SHARDS)) throw new ArgumentError(`shard count must be an integer from 1 to ${MAX_SHARDS}, got ${count}`);
  const byKey = new Map<string, ShardGroup>();
  const groups: ShardGroup[] = [];
  for (const c of cells) {
    const key = `${c.data}\u0000${c.model}\u0000${c.batch}\u0000${c.rep}`;
    let g = byKey.get(key);
    if (!g) {
      g = { data: c.data, model: c.model, batch: c.batch, rep: c.rep, cells: [], cost_ms: 0, shard: 0 };
      byKey.set(key, g);
      groups.push(g);
    }
    const ms = cost(c);
    if (!(Number.isFinite(ms) && ms >= 0)) throw new ArgumentError(`cost estimate of ${cellKey(c)} is ${ms} (expected a finite number >= 0)`);
    g.cells.push(cellKey(c));
    g.cost_ms += ms;
  }
  const order = groups.map((_, i) => i).sort((i, j) => groups[j].cost_ms - groups[i].cost_ms || i - j);
  const loads = new Array<number>(count).fill(0);
  const shardOf = new Map<string, number>();
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (loads[s] < loads[best]) best = s;
    loads[best] += groups[i].cost_ms;
    groups[i].shard = best + 1;
    for (const k of groups[i].cells) shardOf.set(k, best + 1);
  }
  return { count, groups, loads_ms: loads, shardOf };
}

/** Digest of what a plan depends on: every shard of one plan records the same. */
export function planDigest(fingerprint: string, count: number, costModels: Readonly<Record<string, CellCostCoefficients>>): string {
  const models = Object.keys(costModels).sort().map((k) => [k, costModels[k]]);
  return createHash('sha256').update(JSON.stringify([fingerprint, count, models, EVAL_FORWARD_FRACTION, PLAN_SIMULATE_STEPS])).digest('hex').slice(0, 16);
}

/** Options of {@link planStudyShards}. */
export interface PlanStudyOptions {
  grid: StudyGrid;
  cells: readonly PlannedCell[];
  count: number;
  load?: LoadSourceOptions;
  targets?: Record<string, string>;
  costModels?: Readonly<Record<string, CellCostCoefficients>>;
  onSource?: (data: string) => void;
}

/**
 * Loads every source of the grid (each shard must price the whole grid to
 * know its part), estimates every cell and plans the shards. Sources are
 * loaded one at a time and released, so memory holds one store.
 */
export async function planStudyShards(o: PlanStudyOptions): Promise<{ plan: ShardPlan; estimates: CellCostEstimate[] }> {
  const estimates: CellCostEstimate[] = [];
  for (const data of o.grid.data) {
    o.onSource?.(data);
    const { store } = await loadSource(data, o.load ?? {});
    const target = o.targets?.[data] ?? o.load?.target ?? defaultTarget(store);
    if (!target) throw new StudyError('ERR_GNN_DATA_TARGET', `${data}: the data has no numeric target property`);
    const split = splitGraphs(store.numGraphs, { seed: DEFAULT_SPLIT_SEED });
    const cap = (n: number): number => (o.grid.eval_graphs > 0 ? Math.min(o.grid.eval_graphs, n) : n);
    estimates.push(...estimateCellCosts({ data, sizes: sizesOf(store), train: split.train, evalGraphs: cap(split.val.length) + cap(split.test.length) }, o.grid, o.costModels));
  }
  const costOf = new Map(estimates.map((e) => [`${e.data}|${e.model}|${e.policy}|${e.batch}`, e.total_ms]));
  const plan = planShards(o.cells, (c) => costOf.get(`${c.data}|${c.model}|${c.policy}|${c.batch}`) ?? NaN, o.count);
  return { plan, estimates };
}

const COEFFICIENTS = ['ms_per_edge', 'ms_per_node', 'ms_per_step', 'compile_ms_per_edge', 'compile_ms_base'] as const;

/**
 * Reads cost coefficients per model from a parsed JSON document
 * `{ "mpeu": { ms_per_edge, ms_per_node, ms_per_step, compile_ms_per_edge,
 * compile_ms_base }, "schnet": {...} }` (each value as in the `cost_model`
 * that `recommend --json` prints; extra fields are ignored). Throws
 * ERR_GNN_SHARD_COST_MODEL naming `where` and the field.
 */
export function parseCostModels(doc: unknown, where: string): Record<string, CellCostCoefficients> {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new StudyError('ERR_GNN_SHARD_COST_MODEL', `${where}: expected an object of cost coefficients per model, e.g. {"mpeu": {"ms_per_edge": ...}}`);
  const out: Record<string, CellCostCoefficients> = {};
  for (const [model, value] of Object.entries(doc as Record<string, unknown>)) {
    const v = value as Record<string, unknown> | null;
    const c = {} as CellCostCoefficients;
    for (const k of COEFFICIENTS) {
      const x = v && typeof v === 'object' ? v[k] : undefined;
      if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new StudyError('ERR_GNN_SHARD_COST_MODEL', `${where}: ${model}.${k} must be a finite number >= 0, got ${JSON.stringify(x)}`);
      c[k] = x;
    }
    out[model] = c;
  }
  return out;
}
