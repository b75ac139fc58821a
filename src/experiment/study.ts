/**
 * The study's grid: data sources x models x policies x batch sizes x
 * repetitions, each cell one {@link train} run with seed = base seed +
 * repetition. Rows are saved after every finished cell (atomically), so a
 * study can be interrupted and resumed; finished cells are skipped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { POLICY_NAMES, compareBatching, isPolicyName, sizesOf } from '../batching';
import { defaultTarget, distribution, loadSource, splitGraphs, type GraphStore, type LoadSourceOptions, type Split } from '../data';
import type { ModelKind } from '../model/config';
import { train, type TrainProgress } from '../train/trainer';
import {
  RESULTS_VERSION, cellKey, currentEnvironment, readResults, writeResults,
  type DataSummary, type StudyResults, type StudyRow,
  trainColumns,
} from './results';

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
 * under load from other jobs; 20 steps is about 9 minutes when quiet.
 * docs/study.md quotes the wall time of the committed run. Compilation is a
 * few percent of the timed training at this length; medians show the
 * steady state.
 */
export const DEFAULT_STEPS = 20;
export const DEFAULT_REPS = 2;
/** Graphs evaluated from each of val and test by default (0 = all). */
export const DEFAULT_EVAL_GRAPHS = 256;
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
  /** Steps the policy simulation runs per (data, policy, B) for the compile estimate of long runs (default 20000; cheap, no training). */
  simulateSteps?: number;
  /** Skip finished cells found in `outDir/results.json` (default true). */
  resume?: boolean;
  /** Called before each cell, during it, and after it. */
  onProgress?: (e: StudyProgress) => void;
  /** Checked between steps; when true the cell in flight is abandoned and the study returns. */
  shouldStop?: () => boolean;
}

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
  kind: 'load' | 'start' | 'step' | 'done' | 'skip';
  cell?: StudyCell;
  /** 0-based index of the cell and the number of cells. */
  index: number;
  cells: number;
  /** Cells finished so far (including skipped ones). */
  finished: number;
  step?: TrainProgress;
  row?: StudyRow;
  message?: string;
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

/** All cells of a grid, in run order (data, model, batch, policy, rep). */
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
  };
}

/** Runs (or resumes) the study's grid; see {@link StudyOptions}. */
export async function runStudy(options: StudyOptions): Promise<StudyOutcome> {
  const t0 = Date.now();
  const grid = {
    data: [...(options.data?.length ? options.data : DEFAULT_DATA)],
    models: [...(options.models?.length ? options.models : DEFAULT_MODELS)],
    policies: [...(options.policies?.length ? options.policies : POLICY_NAMES)],
    batches: [...(options.batches?.length ? options.batches : DEFAULT_BATCHES)],
    reps: options.reps ?? DEFAULT_REPS,
    steps: options.steps ?? DEFAULT_STEPS,
    base_seed: options.seed ?? 42,
    eval_graphs: options.evalGraphs ?? DEFAULT_EVAL_GRAPHS,
  };
  for (const p of grid.policies) if (!isPolicyName(p)) throw new RangeError(`unknown policy '${p}' (expected one of ${POLICY_NAMES.join(', ')})`);
  for (const m of grid.models) if (m !== 'mpeu' && m !== 'schnet') throw new RangeError(`unknown model '${m}' (expected mpeu or schnet)`);
  for (const b of grid.batches) if (!(Number.isInteger(b) && b >= 2)) throw new RangeError(`batch size must be an integer >= 2, got ${b}`);
  if (!(Number.isInteger(grid.reps) && grid.reps >= 1)) throw new RangeError(`reps must be an integer >= 1, got ${grid.reps}`);
  if (!(Number.isInteger(grid.steps) && grid.steps >= 1)) throw new RangeError(`steps must be an integer >= 1, got ${grid.steps}`);
  const simSteps = options.simulateSteps ?? 20000;

  fs.mkdirSync(options.outDir, { recursive: true });
  const file = path.join(options.outDir, 'results.json');
  const now = new Date().toISOString();
  let results: StudyResults = { version: RESULTS_VERSION, created: now, updated: now, environment: currentEnvironment(), grid, data: [], rows: [] };
  if (options.resume !== false && fs.existsSync(file)) {
    const old = readResults(file);
    results = { ...results, created: old.created, data: old.data, rows: old.rows };
  }
  const done = new Set(results.rows.map(cellKey));
  const cells = studyCells({ ...grid, seed: grid.base_seed });
  let finished = 0;
  let ran = 0;
  let skipped = 0;
  let interrupted = false;

  for (const data of grid.data) {
    const dataCells = cells.filter((c) => c.data === data);
    const todo = dataCells.filter((c) => !done.has(cellKey({ ...c, steps: grid.steps })));
    const base = cells.indexOf(dataCells[0]);
    for (const c of dataCells) {
      if (todo.includes(c)) continue;
      skipped++;
      finished++;
      options.onProgress?.({ kind: 'skip', cell: c, index: cells.indexOf(c), cells: cells.length, finished });
    }
    if (todo.length === 0) continue;
    options.onProgress?.({ kind: 'load', index: base, cells: cells.length, finished, message: `loading ${data}` });
    const { store } = await loadSource(data, options.load ?? {});
    const target = options.targets?.[data] ?? options.load?.target ?? defaultTarget(store);
    if (!target) throw new RangeError(`${data}: the data has no numeric target property`);
    const split = splitGraphs(store.numGraphs, { seed: 42 });
    const evSplit = evalSplit(split, grid.eval_graphs);
    if (!results.data.some((d) => d.data === data)) {
      results.data.push(dataSummary(data, target, store, split.train, grid.batches, grid.policies, simSteps));
    }
    for (const c of todo) {
      const index = cells.indexOf(c);
      options.onProgress?.({ kind: 'start', cell: c, index, cells: cells.length, finished });
      const tc = Date.now();
      const { result: r } = await train({
        store,
        target,
        model: { kind: c.model },
        policy: c.policy,
        batchSize: c.batch,
        steps: grid.steps,
        seed: c.seed,
        split: evSplit,
        threads: options.threads,
        progressEvery: 1,
        onProgress: (p) => options.onProgress?.({ kind: 'step', cell: c, index, cells: cells.length, finished, step: p }),
        shouldStop: options.shouldStop,
      });
      if (r.stopped_early) {
        interrupted = true;
        break;
      }
      const env = results.environment;
      const row: StudyRow = {
        data: c.data,
        model: c.model,
        policy: c.policy,
        batch: c.batch,
        rep: c.rep,
        seed: c.seed,
        target,
        steps: r.steps,
        threads: r.threads,
        eval_graphs_val: evSplit.val.length,
        eval_graphs_test: evSplit.test.length,
        budget_estimation_graphs: Math.min(1000, split.train.length),
        ...trainColumns(r),
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
      options.onProgress?.({ kind: 'done', cell: c, index, cells: cells.length, finished, row });
    }
    if (interrupted) break;
  }
  if (!interrupted) {
    results.updated = new Date().toISOString();
    writeResults(options.outDir, results);
  }
  return { results, ran, skipped, interrupted, seconds: (Date.now() - t0) / 1000 };
}
