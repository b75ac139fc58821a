/**
 * The study's results file: one row per (data, model, policy, batch size,
 * repetition), plus the environment it ran on and per-data-set size
 * distributions. Written atomically after every finished cell as
 * `results.json` (everything, curves included) and `results.csv` (scalar
 * columns only), so an interrupted study loses at most the cell in flight.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nativeInfo, type NativeInfo } from '../native';
import type { CompareRow } from '../batching';
import type { Histogram } from '../data';
import { writeFileAtomic } from '../util/atomic';
import type { TrainResult } from '../train/trainer';

/** Format version of `results.json`. */
export const RESULTS_VERSION = 1;

/** Hardware and software a row was measured on (no git, no hostnames). */
export interface Environment {
  cpu_model: string;
  cpu_cores: number;
  total_memory_gib: number;
  platform: string;
  arch: string;
  node_version: string;
  gnnbatch_version: string;
  native: NativeInfo;
}

/** The columns a study row takes over from the run's {@link TrainResult}, in CSV order. */
export const TRAIN_COLUMNS = [
  'ms_per_step_median',
  'batching_ms_median',
  'update_ms_median',
  'combined_ms_median',
  'batching_ms_mean',
  'update_ms_mean',
  'combined_ms_mean',
  'compile_count',
  'compile_ms_total',
  'graphs_per_s',
  'node_fill',
  'edge_fill',
  'graph_fill',
  'graphs_per_batch_mean',
  'padded_edges_vs_exact',
  'final_train_loss',
  'val_rmse',
  'val_mae',
  'test_rmse',
  'test_mae',
  'target_std',
  'gflops'
] as const satisfies readonly (keyof TrainResult)[];

/** A run's {@link TRAIN_COLUMNS}. */
export function trainColumns(r: TrainResult): Pick<TrainResult, (typeof TRAIN_COLUMNS)[number]> {
  const out: Partial<Pick<TrainResult, (typeof TRAIN_COLUMNS)[number]>> = {};
  for (const k of TRAIN_COLUMNS) out[k] = r[k];
  return out as Pick<TrainResult, (typeof TRAIN_COLUMNS)[number]>;
}

/** One finished cell of the grid. */
export interface StudyRow extends Pick<TrainResult, (typeof TRAIN_COLUMNS)[number]> {
  data: string;
  model: string;
  policy: string;
  batch: number;
  rep: number;
  seed: number;
  target: string;
  steps: number;
  threads: number;
  /** Graphs evaluated from each of the validation and test splits (subsample of the seeded split). */
  eval_graphs_val: number;
  eval_graphs_test: number;
  /** Leading train graphs the dynamic/packed budget's mean was estimated over (the study's 1000; the budget always holds the largest graph). */
  budget_estimation_graphs: number;
  /** Wall time of the whole cell including evaluation (s). */
  cell_seconds: number;
  cpu_model: string;
  cpu_cores: number;
  node_version: string;
  native_build: string;
  native_simd: string;
  native_openmp: boolean;
  finished_at: string;
  loss_curve: { step: number; loss: number }[];
}

/** Per data set: what the report shows about its graphs. */
export interface DataSummary {
  data: string;
  target: string;
  graphs: number;
  train_graphs: number;
  nodes_histogram: Histogram;
  edges_histogram: Histogram;
  nodes_mean: number;
  edges_mean: number;
  nodes_max: number;
  edges_max: number;
  /**
   * Policy simulation without training (`compareBatching`) at the study's
   * batch sizes over `simulated_steps` steps: distinct shapes (compilations)
   * and fills a longer run would see.
   */
  simulated_steps: number;
  simulation: CompareRow[];
}

/** The whole `results.json` document. */
export interface StudyResults {
  version: number;
  created: string;
  updated: string;
  environment: Environment;
  /** The grid as requested (for the report's captions and for resume). */
  grid: {
    data: string[];
    models: string[];
    policies: string[];
    batches: number[];
    reps: number;
    steps: number;
    base_seed: number;
    eval_graphs: number;
  };
  data: DataSummary[];
  rows: StudyRow[];
}

/** Columns of `results.csv`, in order (every scalar of {@link StudyRow}). */
export const CSV_COLUMNS: readonly (keyof StudyRow)[] = [
  'data', 'model', 'policy', 'batch', 'rep', 'seed', 'target', 'steps', 'threads', 'eval_graphs_val', 'eval_graphs_test',
  'budget_estimation_graphs', ...TRAIN_COLUMNS, 'cell_seconds', 'cpu_model', 'cpu_cores',
  'node_version', 'native_build', 'native_simd', 'native_openmp', 'finished_at',
];

/** The environment of this process. */
export function currentEnvironment(): Environment {
  const cpus = os.cpus();
  let version = 'unknown';
  try {
    version = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* running from an unusual layout: leave it unknown */
  }
  return {
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    cpu_cores: cpus.length,
    total_memory_gib: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    platform: os.platform(),
    arch: os.arch(),
    node_version: process.version,
    gnnbatch_version: version,
    native: nativeInfo(),
  };
}

/** The identity of a cell: rows with the same key are the same measurement. */
export function cellKey(r: Pick<StudyRow, 'data' | 'model' | 'policy' | 'batch' | 'rep' | 'steps'>): string {
  return `${r.data}|${r.model}|${r.policy}|${r.batch}|${r.rep}|${r.steps}`;
}

function csvCell(v: unknown): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `results.csv` text: a header and one line per row. */
export function resultsToCsv(rows: readonly StudyRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) lines.push(CSV_COLUMNS.map((c) => csvCell(r[c])).join(','));
  return lines.join('\n') + '\n';
}

/** Writes `results.json` and `results.csv` into `dir`, each atomically. */
export function writeResults(dir: string, results: StudyResults): void {
  // JSON cannot hold NaN: non-finite numbers become null and read back as NaN.
  writeFileAtomic(path.join(dir, 'results.json'), JSON.stringify(results, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
  writeFileAtomic(path.join(dir, 'results.csv'), resultsToCsv(results.rows));
}

/** Reads a `results.json` (null metrics become NaN). Throws a RangeError naming the file when it is not one. */
export function readResults(file: string): StudyResults {
  let doc: StudyResults;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8')) as StudyResults;
  } catch (e) {
    throw new RangeError(`${file}: cannot read study results (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.rows) || doc.version !== RESULTS_VERSION) {
    throw new RangeError(`${file}: not a gnnbatch results.json (version ${RESULTS_VERSION})`);
  }
  for (const r of doc.rows) {
    for (const k of Object.keys(r) as (keyof StudyRow)[]) if (r[k] === null) (r as unknown as Record<string, unknown>)[k] = NaN;
  }
  return doc;
}
