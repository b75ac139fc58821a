/**
 * The study's grid: data sources x models x policies x batch sizes x
 * repetitions, each cell one {@link train} run with seed = base seed +
 * repetition. Rows are saved after every finished cell (atomically), so a
 * study can be interrupted and resumed; finished cells are skipped.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import { POLICY_NAMES, compareBatching, isPolicyName, policyName, sizesOf } from '../batching';
import { DEFAULT_SEED, DEFAULT_SPLIT_SEED, defaultTarget, distribution, targetColumn, formatGraphRule, loadSource, parseGraphRule, splitGraphs, type GraphStore, type LoadSourceOptions, type Split } from '../data';
import { MODEL_KINDS, type ModelKind } from '../model/config';
import { needsDirections } from '../train/plan';
import { train, type TrainProgress } from '../train/trainer';
import { decideAtomrefs, type AtomrefMode } from '../train/atomref';
import { resolveForceWeights, type ForceLossWeights } from '../train/force-training';
import {
  RESULTS_VERSION, StudyError, cellKey, studyTraining, currentEnvironment, firstGridDifference, gridFingerprint, readResults, storeDigest, writeResults,
  type CellCostCoefficients, type DataSummary, type GridLoadOptions, type ShardRecord, type StudyGrid, type StudyResults, type StudyRow,
  trainColumns,
} from './results';
import { REFERENCE_COST_MODELS, estimateCellCosts, planDigest, planStudyShards, type CellCostEstimate, type ResolvedShard, type ShardSpec } from './shard';
import { DEFAULT_TIE_MARGIN, decideStudy, openCells } from './decision';
import { LEARNING_CHECK_LR, LEARNING_CHECK_SEED_OFFSET, learningCheckOf, type LearningCheck, type LearningRun } from './learning-check';
import type { TrainResult } from '../train/result';
import { GnnError } from '../errors';

/** The default data sources: sizes chosen so that generating them takes a second or two. */
export const DEFAULT_DATA = ['qm9-like:20000', 'aflow-like:8000'] as const;
/** The study's models. */
export const DEFAULT_MODELS: readonly ModelKind[] = ['mpeu', 'schnet'];
/** The study's batch sizes. */
export const DEFAULT_BATCHES = [16, 32, 64, 128] as const;
/**
 * Default steps and repetitions, measured on this project's 2-core Xeon
 * (AVX-512, 2 threads), a machine shared with other jobs: with both
 * repetitions, the default grid's 192 cells cost about 23.5 s per training
 * step summed (steady state, quiet machine) plus about 45 s of evaluation
 * (256 val + 256 test graphs per cell) and 10 s of loading and policy
 * simulation. 13 steps took 6.0 min on a quiet machine, 15 steps 10.8 min
 * under load from other jobs; 20 steps is about 9 minutes when quiet. Issue
 * 23 asks the whole default job, with its learning check (about 1.5 min),
 * for at most 10 minutes: 16 steps and 128 evaluation graphs per split.
 * docs/study.md quotes the wall time of the committed run. Compilation is a
 * few percent of the timed training at this length; medians show the
 * steady state.
 */
export const DEFAULT_STEPS = 16;
export const DEFAULT_REPS = 2;
/**
 * Graphs evaluated from each of val and test by default (0 = all): the grid's
 * short runs measure time, and what the policies learn is the learning
 * check's question (learning-check.ts), so the grid evaluates few graphs.
 */
export const DEFAULT_EVAL_GRAPHS = 128;
/** The study's own grid (`--full`). */
export const FULL_STEPS = 100000;
export const FULL_REPS = 10;

/** Options of {@link runStudy}. */
export interface StudyOptions {
  /** Output directory (results.json, results.csv). */
  outDir: string;
  /** Data sources (`loadSource` specs); default {@link DEFAULT_DATA}. */
  data?: readonly string[];
  /** Target per source (default: `load.target`, else the source's first numeric property). */
  targets?: Record<string, string>;
  /** Options applied when loading every source (format, graph rule, target, ...). */
  load?: LoadSourceOptions;
  models?: readonly ModelKind[];
  policies?: readonly string[];
  batches?: readonly number[];
  reps?: number;
  steps?: number;
  /** Base seed; repetition r uses base + r (default 42). */
  seed?: number;
  /** Native threads (default: the addon's current setting). */
  threads?: number;
  /** Graphs evaluated from each of val and test (0 = all; default {@link DEFAULT_EVAL_GRAPHS}). */
  evalGraphs?: number;
  /**
   * Per-element reference values (see train/atomref.ts), decided once per
   * data source on its train split: `auto` (the default) fits them where they
   * explain the target (extensive targets such as U0: residual spread at most
   * ATOMREF_AUTO_MAX_RATIO of the target's), `on` everywhere, `off` nowhere.
   * The decision is recorded per source in `results.json` (`data[].atomref`)
   * and per row (`atomref`, `residual_std`).
   */
  atomref?: AtomrefMode;
  /** Steps the policy simulation runs per (data, policy, B) for the compile estimate of long runs (default 20000; cheap, no training). */
  simulateSteps?: number;
  /** Skip finished cells found in `outDir/results.json` (default true). */
  resume?: boolean;
  /** Called before each cell, during it, and after it. */
  onProgress?: (e: StudyProgress) => void;
  /** Checked between steps; when true the cell in flight is abandoned and the study returns. */
  shouldStop?: () => boolean;
  /**
   * Run only this shard's cells (see shard.ts for the assignment rule). The
   * shard's `outDir` is its own: results.json records the shard, its cells
   * and the plan; resuming it with another grid or shard is refused.
   */
  shard?: ShardSpec & { source?: ResolvedShard['source'] };
  /** Cost coefficients per model for the shard plan (default {@link REFERENCE_COST_MODELS}); every shard must get the same. */
  costModels?: Readonly<Record<string, CellCostCoefficients>>;
  /**
   * Adaptive repetitions (not for shards): once every cell of the grid has
   * its `reps` repetitions, (data, model, B) cells whose decision is still
   * open (decision.ts: a policy neither within the tie margin of the fastest
   * nor clearly slower) get one more repetition of every policy, interleaved,
   * until none is open, a cell has `maxReps`, or the study's wall time would
   * pass `timeBudgetSeconds` (judged from the cell's last repetition). Absent
   * or `maxReps <= reps`: a fixed grid.
   */
  adaptive?: { maxReps: number; timeBudgetSeconds: number; margin?: number; plannedSteps?: number };
  /**
   * Cap on the process's memory (bytes): each cell's plan cache is limited to
   * what the cap leaves above the memory in use before the cell less 256 MiB
   * of headroom (at least 256 MiB), and near the cap evicted plans are
   * collected at once (CLI default 2 GiB); a cell whose single largest plan needs more fails with
   * ERR_GNN_PLAN_TOO_LARGE naming the cap. Without it the plan cache keeps
   * its default (4 GiB); plans are released between cells either way.
   */
  maxMemoryBytes?: number;
  /** The cap is a default, not the user's: a cell whose one plan needs more than it leaves runs without it (with a progress message) instead of failing. */
  maxMemorySoft?: boolean;
  /**
   * The learning check (learning-check.ts; not for shards): after the grid,
   * `seeds` runs of `steps` steps (lr {@link LEARNING_CHECK_LR}) of the
   * fastest model at `batch` (default the grid's smallest) on the first data
   * source, for the pick there, the runner-up and static-2pow; stored as
   * `learning_check` in results.json and resumed like cells. Absent or
   * `steps` 0: none.
   */
  learningCheck?: { steps: number; seeds: number; batch?: number };
  /**
   * The batching study on force training (`study --forces`; the README's
   * "The study on force training", docs/forces-study.md): every cell, and the learning check, trains on energies
   * and forces (train()'s `forces`: true for the default loss weights, or the
   * weights). Recorded as `grid.forces` (the resolved weights) in
   * results.json; rows gain the force columns (FORCE_COLUMNS). The data needs
   * forces (qm9-like and aflow-like have exact ones); the default target is
   * `energy` where the data has it (aflow-like), else the usual default (U0
   * on qm9-like, whose forces are -dU0/dx). Every model trains on forces
   * (MPEU, SchNet and PaiNN). Absent or false: the energy-only study.
   */
  forces?: boolean | Partial<ForceLossWeights>;
}

/**
 * The step-cost factor of force training over energy training the study's
 * cost estimates (ETA) use for a force study: the middle of the 2.2-3.3x
 * measured by `npm run bench -- forces` (benchmarks/RESULTS.md, "forces").
 * Only the ETA reads it; the shard plan prices cells with the energy cost
 * models, whose ratios between cells are what balances shards.
 */
export const FORCE_STEP_COST_FACTOR = 2.7;

/** One cell of the grid. */
export interface StudyCell {
  data: string;
  model: ModelKind;
  policy: string;
  batch: number;
  rep: number;
  seed: number;
}

/** A progress event. */
export interface StudyProgress {
  /** `estimate`: a source was loaded and its cells priced (`estimates`, for an ETA); `extra`: adaptive repetitions were added (`cells` grew). */
  kind: 'load' | 'start' | 'step' | 'done' | 'skip' | 'estimate' | 'extra';
  cell?: StudyCell;
  /** 0-based index of the cell among this run's cells (a shard's, or the whole grid's) and their number. */
  index: number;
  cells: number;
  /** Cells finished so far (including skipped ones). */
  finished: number;
  step?: TrainProgress;
  row?: StudyRow;
  message?: string;
  /** With `estimate`: the cost model's estimate of each (data, model, policy, batch) cell of the source just loaded (every repetition costs the same). */
  estimates?: CellCostEstimate[];
}

/** What {@link runStudy} returns. */
export interface StudyOutcome {
  results: StudyResults;
  /** Cells run now / skipped because they were already saved. */
  ran: number;
  skipped: number;
  /** True when `shouldStop` ended the study early. */
  interrupted: boolean;
  seconds: number;
}

/** All cells of a grid, in run order (data, model, batch, rep, policy). */
export function studyCells(grid: { data: readonly string[]; models: readonly ModelKind[]; policies: readonly string[]; batches: readonly number[]; reps: number; seed: number }): StudyCell[] {
  const cells: StudyCell[] = [];
  for (const data of grid.data)
    for (const model of grid.models)
      for (const batch of grid.batches)
        for (let rep = 0; rep < grid.reps; rep++)
          for (const policy of grid.policies) cells.push({ data, model, policy, batch, rep, seed: grid.seed + rep });
  return cells;
}


function evalSplit(split: Split, n: number): Split {
  if (n <= 0) return split;
  return { train: split.train, val: split.val.subarray(0, Math.min(n, split.val.length)), test: split.test.subarray(0, Math.min(n, split.test.length)) };
}

/** The grid's record of the load options (canonical graph rule text; only what was given). */
export function gridLoadOptions(load: LoadSourceOptions | undefined): GridLoadOptions {
  const out: GridLoadOptions = {};
  if (!load) return out;
  if (load.format !== undefined) out.format = load.format;
  if (load.graph !== undefined) out.graph = formatGraphRule(typeof load.graph === 'string' ? parseGraphRule(load.graph) : load.graph);
  if (load.target !== undefined) out.target = load.target;
  if (load.dropEdgeless) out.drop_edgeless = true;
  if (load.seed !== undefined) out.data_seed = load.seed;
  return out;
}

function checkDistinct<T>(name: string, values: readonly T[]): void {
  const seen = new Set<T>();
  for (const v of values) {
    if (seen.has(v)) throw new StudyError('ERR_GNN_STUDY_DUPLICATE', `${name} lists ${String(v)} twice (every cell of the grid must be distinct)`);
    seen.add(v);
  }
}

/**
 * The grid of {@link runStudy}'s options with defaults applied, validated.
 * Throws a {@link StudyError} (ERR_GNN_STUDY_*) naming the bad value.
 */
export function studyGrid(options: Omit<StudyOptions, 'outDir'>): StudyGrid {
  const grid: StudyGrid = {
    data: [...(options.data?.length ? options.data : DEFAULT_DATA)],
    models: [...(options.models?.length ? options.models : DEFAULT_MODELS)],
    policies: [...(options.policies?.length ? options.policies : POLICY_NAMES)],
    batches: [...(options.batches?.length ? options.batches : DEFAULT_BATCHES)],
    reps: options.reps ?? DEFAULT_REPS,
    steps: options.steps ?? DEFAULT_STEPS,
    base_seed: options.seed ?? DEFAULT_SEED,
    eval_graphs: options.evalGraphs ?? DEFAULT_EVAL_GRAPHS,
    load: gridLoadOptions(options.load),
    atomref: options.atomref ?? 'auto',
  };
  if (options.targets && Object.keys(options.targets).length) grid.targets = { ...options.targets };
  if (options.forces) {
    try {
      grid.forces = resolveForceWeights(options.forces === true ? {} : options.forces);
    } catch (e) {
      throw new StudyError('ERR_GNN_STUDY_GRID', `force study: ${(e as Error).message}`);
    }
  }
  for (const p of grid.policies) if (!isPolicyName(p)) throw new StudyError('ERR_GNN_STUDY_GRID', `unknown policy '${p}' (expected one of ${POLICY_NAMES.join(', ')})`);
  for (const m of grid.models) if (!(MODEL_KINDS as readonly string[]).includes(m)) throw new StudyError('ERR_GNN_STUDY_GRID', `unknown model '${m}' (expected one of ${MODEL_KINDS.join(', ')})`);
  for (const b of grid.batches) if (!(Number.isInteger(b) && b >= 2)) throw new StudyError('ERR_GNN_STUDY_GRID', `batch size must be an integer >= 2, got ${b}`);
  if (!(Number.isInteger(grid.reps) && grid.reps >= 1)) throw new StudyError('ERR_GNN_STUDY_GRID', `reps must be an integer >= 1, got ${grid.reps}`);
  if (!(Number.isInteger(grid.steps) && grid.steps >= 1)) throw new StudyError('ERR_GNN_STUDY_GRID', `steps must be an integer >= 1, got ${grid.steps}`);
  if (!(Number.isInteger(grid.base_seed) && grid.base_seed >= 0)) throw new StudyError('ERR_GNN_STUDY_GRID', `seed must be an integer >= 0, got ${grid.base_seed}`);
  if (!['auto', 'on', 'off'].includes(grid.atomref as string)) throw new StudyError('ERR_GNN_STUDY_GRID', `atomref must be auto, on or off, got '${String(grid.atomref)}'`);
  if (!(Number.isInteger(grid.eval_graphs) && grid.eval_graphs >= 0)) throw new StudyError('ERR_GNN_STUDY_GRID', `eval graphs must be an integer >= 0, got ${grid.eval_graphs}`);
  checkDistinct('data', grid.data);
  checkDistinct('models', grid.models);
  checkDistinct('policies', grid.policies);
  checkDistinct('batch sizes', grid.batches);
  return grid;
}

function dataSummary(data: string, target: string, store: GraphStore, train: Int32Array, batches: readonly number[], policies: readonly string[], simSteps: number): DataSummary {
  const sizes = sizesOf(store);
  const nodes = Array.from(train, (g) => sizes.nodes[g]);
  const edges = Array.from(train, (g) => sizes.edges[g]);
  const dn = distribution(nodes, 30);
  const de = distribution(edges, 30);
  const simulation = [];
  for (const b of batches) {
    simulation.push(...compareBatching({ sizes, split: train, batchSizes: [b], policies, steps: simSteps }));
  }
  return {
    data,
    target,
    graphs: store.numGraphs,
    train_graphs: train.length,
    nodes_histogram: dn.histogram,
    edges_histogram: de.histogram,
    nodes_mean: dn.mean,
    edges_mean: de.mean,
    nodes_max: dn.max,
    edges_max: de.max,
    simulated_steps: simSteps,
    simulation,
    graph_rule: store.graphRule,
    digest: storeDigest(store, target),
  };
}

/** Runs (or resumes) the study's grid, or one shard of it; see {@link StudyOptions}. */
export async function runStudy(options: StudyOptions): Promise<StudyOutcome> {
  const t0 = Date.now();
  const grid = studyGrid(options);
  const simSteps = options.simulateSteps ?? 20000;
  const environment = currentEnvironment();
  const fingerprint = gridFingerprint(grid, environment.gnnbatch_version);

  try {
    fs.mkdirSync(options.outDir, { recursive: true });
  } catch (e) {
    throw new StudyError('ERR_GNN_OUTPUT_PATH', `${options.outDir}: cannot be used as the study's output folder (${(e as Error).message})`);
  }
  const file = path.join(options.outDir, 'results.json');
  const now = new Date().toISOString();
  let results: StudyResults = { version: RESULTS_VERSION, created: now, updated: now, environment, grid, fingerprint, data: [], rows: [] };
  let old: StudyResults | null = null;
  if (options.resume !== false && fs.existsSync(file)) old = readResults(file);
  const cells = studyCells({ ...grid, models: grid.models as ModelKind[], seed: grid.base_seed });
  let mine = cells;
  const shard = options.shard;
  if (shard) {
    const costModels: Readonly<Record<string, CellCostCoefficients>> = options.costModels ?? REFERENCE_COST_MODELS;
    const digest = planDigest(fingerprint, shard.count, costModels);
    if (old) checkShardResume(file, old, grid, environment.gnnbatch_version, shard, digest);
    options.onProgress?.({ kind: 'load', index: 0, cells: cells.length, finished: 0, message: `planning ${shard.count} shards over ${cells.length} cells` });
    const { plan } = await planStudyShards({
      grid, cells: cells.map((c) => ({ ...c, steps: grid.steps })), count: shard.count, load: options.load, targets: options.targets, costModels,
      onSource: (d) => options.onProgress?.({ kind: 'load', index: 0, cells: cells.length, finished: 0, message: `planning: loading ${d}` }),
    });
    mine = cells.filter((c) => plan.shardOf.get(cellKey({ ...c, steps: grid.steps })) === shard.index);
    const record: ShardRecord = {
      index: shard.index,
      count: shard.count,
      source: shard.source ?? 'option',
      plan_digest: digest,
      cells: mine.map((c) => cellKey({ ...c, steps: grid.steps })),
      estimated_ms: plan.loads_ms,
      cost_models: Object.fromEntries(grid.models.map((m) => [m, costModels[m]])),
    };
    results.shard = record;
  }
  if (old) {
    // Atomrefs change what every cell learns: rows measured with another setting cannot be resumed into this grid.
    const was = old.grid?.atomref ?? 'off';
    if (was !== grid.atomref)
      throw new StudyError('ERR_GNN_STUDY_RESUME', `${file} was measured with atomref '${was}', this run asks for '${grid.atomref}': run with --fresh to start over, give it another --out folder, or ${was === 'off' ? 'add --no-atomref' : was === 'on' ? 'add --atomref' : 'drop --atomref/--no-atomref'} to continue it`);
    // Rows of an energy study and a force study time different steps: never resumed into each other.
    const wasForces = JSON.stringify(old.grid?.forces ?? null);
    if (wasForces !== JSON.stringify(grid.forces ?? null))
      throw new StudyError('ERR_GNN_STUDY_RESUME', `${file} holds a study trained on ${studyTraining(old.grid ?? {})}, this run trains on ${studyTraining(grid)}: run with --fresh to start over, or give it another --out folder`);
    results = { ...results, created: old.created, data: old.data, rows: old.rows };
    const lc = learningCheckOf(old);
    if (lc) (results as StudyResults & { learning_check?: LearningCheck }).learning_check = lc;
  }
  const done = new Set(results.rows.map(cellKey));
  let finished = 0;
  let ran = 0;
  let skipped = 0;
  let interrupted = false;
  // Progress counts this run's cells (a shard's own, or the whole grid; adaptive repetitions add to it).
  let total = mine.length;
  const costModels = options.costModels ?? REFERENCE_COST_MODELS;
  const emit = (e: Omit<StudyProgress, 'cells' | 'finished'>): void => options.onProgress?.({ ...e, cells: total, finished });

  interface Loaded { store: GraphStore; target: string; split: Split; evSplit: Split; atomref: ReturnType<typeof decideAtomrefs>; forceStd?: number }
  const load = async (data: string, index: number): Promise<Loaded> => {
    emit({ kind: 'load', index, message: `loading ${data}` });
    // PaiNN reads the edges' direction vectors; the other models do not need them.
    // Force training reads them too.
    const directions = !!grid.forces || grid.models.some((kind) => needsDirections({ kind: kind as ModelKind })) || options.load?.directions;
    const { store } = await loadSource(data, { ...options.load, directions });
    if (grid.forces && !store.forces)
      throw new StudyError('ERR_GNN_DATA_TARGET', `${data}: the force study needs forces, and this data has none (extxyz forces:R:3, ASE .db, rmd17, qm9-like and aflow-like have them)`);
    // A force study's energy is the one the forces are the gradient of: `energy` where the data has it.
    const target = options.targets?.[data] ?? options.load?.target ?? (grid.forces && store.targetNames.includes('energy') ? 'energy' : defaultTarget(store));
    if (!target) throw new StudyError('ERR_GNN_DATA_TARGET', `${data}: the data has no numeric target property`);
    const split = splitGraphs(store.numGraphs, { seed: DEFAULT_SPLIT_SEED });
    const evSplit = evalSplit(split, grid.eval_graphs);
    const atomref = decideAtomrefs(store, targetColumn(store, target), split.train, grid.atomref ?? 'auto');
    const summary = results.data.find((d) => d.data === data);
    if (!summary) results.data.push({ ...dataSummary(data, target, store, split.train, grid.batches, grid.policies, simSteps), atomref });
    else summary.atomref = atomref;
    const forceStd = grid.forces ? forceRms(store, split.train) : undefined;
    // The cost model's price of this source's cells (what the shard planner uses): the ETA of the cells left.
    let estimates: CellCostEstimate[] | undefined;
    try {
      estimates = estimateCellCosts({ data, sizes: sizesOf(store), train: split.train, evalGraphs: evSplit.val.length + evSplit.test.length }, grid, costModels);
    } catch {
      estimates = undefined; // a model without coefficients: no estimate, the ETA falls back to measured cells
    }
    if (estimates && grid.forces) estimates = estimates.map((x) => scaleEstimate(x, FORCE_STEP_COST_FACTOR));
    if (estimates) emit({ kind: 'estimate', index, estimates });
    return { store, target, split, evSplit, atomref, forceStd };
  };

  /** Trains one cell and saves its row; false when the study was asked to stop. */
  const runCell = async (c: StudyCell, L: Loaded, index: number): Promise<boolean> => {
    emit({ kind: 'start', cell: c, index });
    const tc = Date.now();
    await settleMemory();
    const cap = options.maxMemoryBytes;
    const planCacheBytes = cap !== undefined ? Math.max(256 * 1024 ** 2, cap - process.memoryUsage.rss() - CAP_HEADROOM_BYTES) : undefined;
    let r: Awaited<ReturnType<typeof train>>['result'];
    // A soft cap (the CLI's default) gives way to a cell whose one plan needs more: that cell runs with the plan cache's own limit.
    let capBytes = planCacheBytes;
    for (;;) try {
      ({ result: r } = await train({
        store: L.store,
        target: L.target,
        model: { kind: c.model },
        policy: policyName(c.policy),
        batchSize: c.batch,
        steps: grid.steps,
        seed: c.seed,
        split: L.evSplit,
        atomref: L.atomref.used,
        threads: options.threads,
        progressEvery: 1,
        planCacheBytes: capBytes,
        forces: grid.forces,
        onProgress: (p) => {
          // Plans the cache evicted are freed only by a collection (V8 does not see their native size): near the cap, collect.
          if (cap !== undefined && process.memoryUsage.rss() > 0.8 * cap) releaseMemory();
          emit({ kind: 'step', cell: c, index, step: p });
        },
        shouldStop: options.shouldStop,
      }));
      break;
    } catch (e) {
      if (e instanceof GnnError && e.code === 'ERR_GNN_PLAN_TOO_LARGE' && capBytes !== undefined && options.maxMemorySoft) {
        emit({ kind: 'load', index, message: `${c.data} ${c.model} ${c.policy} B=${c.batch}: one plan needs more than the memory cap leaves; this cell runs without the cap` });
        capBytes = undefined;
        await settleMemory();
        continue;
      }
      if (e instanceof GnnError && e.code === 'ERR_GNN_PLAN_TOO_LARGE' && options.maxMemoryBytes !== undefined) {
        throw new StudyError('ERR_GNN_PLAN_TOO_LARGE', `${c.data} ${c.model} ${c.policy} B=${c.batch}: one plan needs more than the ${(planCacheBytes! / 1024 ** 3).toFixed(2)} GiB that --max-memory ${(options.maxMemoryBytes / 1024 ** 3).toFixed(2)} GiB leaves (${e.message}); raise --max-memory or leave this batch size out`);
      }
      throw e;
    }
    if (r.stopped_early) return false;
    const env = results.environment;
    const row: StudyRow = {
      data: c.data,
      model: c.model,
      policy: c.policy,
      batch: c.batch,
      rep: c.rep,
      seed: c.seed,
      target: L.target,
      steps: r.steps,
      threads: r.threads,
      eval_graphs_val: L.evSplit.val.length,
      eval_graphs_test: L.evSplit.test.length,
      budget_estimation_graphs: Math.min(1000, L.split.train.length),
      ...trainColumns(r),
      ...forceColumns(r, L.forceStd),
      cell_seconds: (Date.now() - tc) / 1000,
      cpu_model: env.cpu_model,
      cpu_cores: env.cpu_cores,
      node_version: env.node_version,
      native_build: env.native.build,
      native_simd: env.native.simd,
      native_openmp: env.native.openmp,
      finished_at: new Date().toISOString(),
      loss_curve: r.loss_curve,
    };
    results.rows.push(row);
    results.updated = row.finished_at;
    writeResults(options.outDir, results);
    done.add(cellKey(row));
    ran++;
    finished++;
    emit({ kind: 'done', cell: c, index, row });
    return true;
  };

  for (const data of grid.data) {
    const dataCells = mine.filter((c) => c.data === data);
    const todo = dataCells.filter((c) => !done.has(cellKey({ ...c, steps: grid.steps })));
    const base = mine.indexOf(dataCells[0]);
    for (const c of dataCells) {
      if (todo.includes(c)) continue;
      skipped++;
      finished++;
      emit({ kind: 'skip', cell: c, index: mine.indexOf(c) });
    }
    if (todo.length === 0) continue;
    const L = await load(data, base);
    for (const c of todo) {
      if (!(await runCell(c, L, mine.indexOf(c)))) {
        interrupted = true;
        break;
      }
    }
    if (interrupted) break;
  }

  // Adaptive repetitions: more of the cells whose decision is open, within the time budget (not for shards: their plan is fixed).
  const adaptive = options.adaptive;
  if (!interrupted && !shard && adaptive && adaptive.maxReps > grid.reps) {
    const shapes = (d: string, policy: string, batch: number): number | undefined =>
      results.data.find((x) => x.data === d)?.simulation.find((r) => r.policy === policy && r.batch === batch)?.shapes;
    // The learning check runs after these repetitions, inside the same budget: its time is kept free.
    const reserve = learningCheckSeconds();
    for (const data of grid.data) {
      let L: Loaded | null = null;
      for (let progressed = true; progressed && !interrupted; ) {
        progressed = false;
        const rows = results.rows.filter((r) => r.data === data && r.steps === grid.steps);
        const open = openCells(rows, { margin: adaptive.margin ?? DEFAULT_TIE_MARGIN, plannedSteps: adaptive.plannedSteps, shapesAt: shapes });
        for (const o of open) {
          const group = rows.filter((r) => r.model === o.model && r.batch === o.batch);
          const reps = [...new Set(group.map((r) => r.rep))];
          if (reps.length >= adaptive.maxReps) continue;
          const next = Math.max(...reps) + 1;
          // What one more repetition of this cell costs: its last repetition's wall time.
          const last = group.filter((r) => r.rep === next - 1).reduce((sum, r) => sum + r.cell_seconds, 0);
          if ((Date.now() - t0) / 1000 + last + reserve > adaptive.timeBudgetSeconds) continue;
          const extra: StudyCell[] = grid.policies.map((policy) => ({ data, model: o.model as ModelKind, policy, batch: o.batch, rep: next, seed: grid.base_seed + next }));
          total += extra.length;
          emit({ kind: 'extra', index: finished, message: `repetition ${next + 1} of ${data} ${o.model} B=${o.batch}: its ranking is still open` });
          L ??= await load(data, finished);
          for (const c of extra) {
            if (done.has(cellKey({ ...c, steps: grid.steps }))) continue;
            if (!(await runCell(c, L, finished))) {
              interrupted = true;
              break;
            }
          }
          progressed = true;
          if (interrupted) break;
        }
      }
      if (interrupted) break;
    }
  }
  const check = options.learningCheck;
  if (!interrupted && !shard && check && check.steps > 0 && check.seeds > 0 && results.rows.length) {
    interrupted = !(await runLearningCheck(check));
  }
  releaseMemory();
  if (!interrupted) {
    results.updated = new Date().toISOString();
    writeResults(options.outDir, results);
  }
  return { results, ran, skipped, interrupted, seconds: (Date.now() - t0) / 1000 };

  /** Estimated seconds of the learning check: its runs x (steps x the fastest measured median step at its B + 3 s of loading and evaluation). */
  function learningCheckSeconds(): number {
    const o = options.learningCheck;
    if (!o || !(o.steps > 0) || !(o.seeds > 0)) return 0;
    const batch = o.batch ?? Math.min(...grid.batches);
    const ms = results.rows.filter((r) => r.data === grid.data[0] && r.batch === batch).map((r) => r.combined_ms_median).filter((x) => Number.isFinite(x));
    const step = ms.length ? Math.min(...ms) : 0;
    return Math.min(grid.policies.length, 3) * o.seeds * ((o.steps * step) / 1000 + 3);
  }

  /** Runs the learning check's missing runs; false when the study was asked to stop. */
  async function runLearningCheck(o: { steps: number; seeds: number; batch?: number }): Promise<boolean> {
    const data = grid.data[0];
    const here = results.rows.filter((r) => r.data === data && r.steps === grid.steps);
    // The fastest model: the lowest mean median step time over its cells.
    const speed = grid.models.map((m) => {
      const xs = here.filter((r) => r.model === m).map((r) => r.combined_ms_median).filter((x) => Number.isFinite(x));
      return { m, ms: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Infinity };
    }).sort((a, b) => a.ms - b.ms);
    const model = speed[0].m;
    const batch = o.batch ?? Math.min(...grid.batches);
    const shapes = (d: string, policy: string, b: number): number | undefined =>
      results.data.find((x) => x.data === d)?.simulation.find((r) => r.policy === policy && r.batch === b)?.shapes;
    const cell = decideStudy(here.filter((r) => r.model === model && r.batch === batch), { resamples: 0, shapesAt: shapes }).cells[0];
    if (!cell) return true;
    const runner = cell.policies.find((p) => p.policy !== cell.pick)?.policy;
    const policies = [...new Set([cell.pick, ...(runner ? [runner] : []), ...(grid.policies.includes('static-2pow') ? ['static-2pow'] : [])])];
    const seeds = Array.from({ length: o.seeds }, (_, s) => grid.base_seed + LEARNING_CHECK_SEED_OFFSET + s);
    const doc = results as StudyResults & { learning_check?: LearningCheck };
    const prev = doc.learning_check;
    const same = prev && prev.data === data && prev.model === model && prev.batch === batch && prev.steps === o.steps && prev.lr === LEARNING_CHECK_LR && !!prev.forces === !!grid.forces;
    const lc: LearningCheck = { data, model, batch, policies, seeds, steps: o.steps, lr: LEARNING_CHECK_LR, runs: same ? prev.runs.filter((r) => policies.includes(r.policy) && seeds.includes(r.seed)) : [] };
    if (grid.forces) lc.forces = true;
    doc.learning_check = lc;
    const todo = seeds.flatMap((seed) => policies.map((policy) => ({ policy, seed }))).filter((x) => !lc.runs.some((r) => r.policy === x.policy && r.seed === x.seed));
    if (!todo.length) return true;
    total += todo.length;
    const L = await load(data, finished);
    for (const x of todo) {
      const c: StudyCell = { data, model: model as ModelKind, policy: x.policy, batch, rep: x.seed - grid.base_seed, seed: x.seed };
      emit({ kind: 'start', cell: c, index: finished, message: 'learning check' });
      const tc = Date.now();
      await settleMemory();
      const { result: r } = await train({
        store: L.store, target: L.target, model: { kind: c.model }, policy: policyName(c.policy), batchSize: batch, steps: o.steps, seed: x.seed,
        lr: LEARNING_CHECK_LR, split: L.evSplit, atomref: L.atomref.used, threads: options.threads, progressEvery: 10, forces: grid.forces,
        onProgress: (p) => emit({ kind: 'step', cell: c, index: finished, step: p }),
        shouldStop: options.shouldStop,
      });
      if (r.stopped_early) return false;
      lc.runs.push({
        policy: x.policy, seed: x.seed, steps: r.steps, test_rmse: r.test_rmse, test_mae: r.test_mae, final_train_loss: r.final_train_loss,
        baseline_std: r.atomref ? (r.residual_std ?? r.target_std) : r.target_std, seconds: (Date.now() - tc) / 1000,
        ...learningForceColumns(r, L.forceStd),
      });
      writeResults(options.outDir, results);
      finished++;
      emit({ kind: 'done', cell: c, index: finished, message: 'learning check' });
    }
    return true;
  }
}

/**
 * Root mean square of the force components of `ids`' atoms (atoms without
 * forces, NaN, are skipped): what predicting zero forces scores, the
 * spread force errors are read against.
 */
export function forceRms(store: Pick<GraphStore, 'forces' | 'nodeOffset'>, ids: Int32Array): number {
  const f = store.forces;
  if (!f) return NaN;
  let ss = 0;
  let n = 0;
  for (const g of ids)
    for (let i = 3 * store.nodeOffset[g]; i < 3 * store.nodeOffset[g + 1]; i++) {
      const x = f[i];
      if (!Number.isNaN(x)) (ss += x * x), n++;
    }
  return n ? Math.sqrt(ss / n) : NaN;
}

/** A force study row's force columns (results.ts FORCE_COLUMNS) from its run; none for an energy run. */
function forceColumns(r: TrainResult, forceStd: number | undefined): Partial<StudyRow> {
  const f = r.force_training;
  if (!f) return {};
  return {
    forces: true,
    val_force_mae: f.val?.force_mae ?? NaN,
    val_force_rmse: f.val?.force_rmse ?? NaN,
    test_force_mae: f.test?.force_mae ?? NaN,
    test_force_rmse: f.test?.force_rmse ?? NaN,
    force_std: forceStd ?? NaN,
  };
}

/** A force learning-check run's force errors and their baselines; none for an energy run. */
function learningForceColumns(r: TrainResult, forceStd: number | undefined): Partial<LearningRun> {
  const f = r.force_training;
  if (!f) return {};
  return { test_force_rmse: f.test?.force_rmse ?? NaN, test_force_mae: f.test?.force_mae ?? NaN, force_baseline: forceStd ?? NaN, force_weights: { energy: f.weights.energy, forces: f.weights.forces } };
}

/** An energy cell's estimate with its step and evaluation costs times k (total = steps x step + compilations + evaluation). */
function scaleEstimate(x: CellCostEstimate, k: number): CellCostEstimate {
  const training = x.total_ms - x.compile_ms - x.eval_ms;
  return { ...x, step_ms: x.step_ms * k, eval_ms: x.eval_ms * k, total_ms: training * k + x.compile_ms + x.eval_ms * k };
}

/** What a cell needs beside its plans (packing buffers, evaluation, the heap's growth): kept out of the plan cache's share of the cap. */
const CAP_HEADROOM_BYTES = 256 * 1024 ** 2;

let collect: (() => void) | null | undefined;
/**
 * Releases what the last cell left: its plans are native memory held by JS
 * handles that only the garbage collector frees, and V8 does not see their
 * size, so without a collection they pile up across cells (issue 23: 6 GiB
 * peak for a 1.2 GiB cell). A full collection between cells costs a few ms.
 */
export function releaseMemory(): void {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  collect?.();
}

/**
 * {@link releaseMemory}, then a turn of the event loop: N-API runs the
 * finalizers that free native plans after the collection, from the loop, so
 * the memory is back only once it turns (measured: 2.25 GiB peak over the six
 * policies of mpeu at B=128 when the next cell started before that).
 */
export async function settleMemory(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    releaseMemory();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * A shard folder may only be resumed by the same shard of the same grid and
 * plan: otherwise its rows would mix plans. Throws ERR_GNN_SHARD_RESUME naming the
 * first difference.
 */
function checkShardResume(file: string, old: StudyResults, grid: StudyGrid, version: string, shard: ShardSpec, planDigest: string): void {
  const fix = 'run it with --fresh to start over, or give this shard its own --out folder';
  if (!old.shard) throw new StudyError('ERR_GNN_SHARD_RESUME', `${file} holds an unsharded study, not shard ${shard.index}/${shard.count}: ${fix}`);
  if (old.shard.index !== shard.index || old.shard.count !== shard.count) {
    throw new StudyError('ERR_GNN_SHARD_RESUME', `${file} holds shard ${old.shard.index}/${old.shard.count}, not ${shard.index}/${shard.count}: ${fix}`);
  }
  const diff = firstGridDifference(old.grid, old.environment.gnnbatch_version, grid, version);
  if (diff) throw new StudyError('ERR_GNN_SHARD_RESUME', `${file} holds another grid (${diff[0]}: ${JSON.stringify(diff[1])} there, ${JSON.stringify(diff[2])} now): ${fix}`);
  if (old.shard.plan_digest !== planDigest) throw new StudyError('ERR_GNN_SHARD_RESUME', `${file} was planned with other cost models (plan ${old.shard.plan_digest}, now ${planDigest}): ${fix}`);
}
