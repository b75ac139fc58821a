/**
 * The study's results file: one row per (data, model, policy, batch size,
 * repetition), plus the environment it ran on and per-data-set size
 * distributions. Written atomically after every finished cell as
 * `results.json` (everything, curves included) and `results.csv` (scalar
 * columns only), so an interrupted study loses at most the cell in flight.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GnnError, type GnnErrorCode } from '../errors';
import { nativeInfo, type NativeInfo } from '../native';
import type { CompareRow } from '../batching';
import { targetColumn, type GraphStore, type Histogram } from '../data';
import { writeFileAtomic } from '../util/atomic';
import type { TrainResult } from '../train/trainer';
import type { AtomrefDecision, AtomrefMode } from '../train/atomref';
import type { ForceLossWeights } from '../train/force-training';

/** Format version of `results.json`. */
export const RESULTS_VERSION = 1;

/**
 * An error of the study layer (grid, shards, merge, results files). `code` is
 * stable for programs (ERR_GNN_STUDY_*, ERR_GNN_SHARD_*, ERR_GNN_MERGE_*,
 * ERR_GNN_RESULTS); the message names the file, field or cell.
 */
export class StudyError extends GnnError {
  constructor(code: GnnErrorCode, message: string) {
    super(code, message);
    this.name = 'StudyError';
  }
}

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
  'atomref',
  'residual_std',
  'gflops'
] as const satisfies readonly (keyof TrainResult)[];

/** A run's {@link TRAIN_COLUMNS}. */
export function trainColumns(r: TrainResult): Pick<TrainResult, (typeof TRAIN_COLUMNS)[number]> {
  const out: Partial<Pick<TrainResult, (typeof TRAIN_COLUMNS)[number]>> = {};
  for (const k of TRAIN_COLUMNS) (out as Record<string, unknown>)[k] = r[k];
  return out as Pick<TrainResult, (typeof TRAIN_COLUMNS)[number]>;
}

/**
 * Row columns read from clocks: they differ between two runs of the same cell.
 * Every other column of {@link CSV_COLUMNS} except {@link ENVIRONMENT_COLUMNS}
 * (and the loss curve) is a deterministic function of the cell on CPU, so a
 * sharded study merged must equal the unsharded one there, bit for bit.
 */
export const TIMING_COLUMNS = [
  'ms_per_step_median', 'batching_ms_median', 'update_ms_median', 'combined_ms_median', 'batching_ms_mean', 'update_ms_mean',
  'combined_ms_mean', 'compile_ms_total', 'graphs_per_s', 'gflops', 'cell_seconds', 'finished_at',
] as const satisfies readonly (keyof StudyRow)[];

/** Row columns describing the machine a row ran on (each row keeps its own hardware). */
export const ENVIRONMENT_COLUMNS = [
  'threads', 'cpu_model', 'cpu_cores', 'node_version', 'native_build', 'native_simd', 'native_openmp',
] as const satisfies readonly (keyof StudyRow)[];

/**
 * Columns only rows of a force study (`grid.forces`, `study --forces`) have:
 * the row's flag and its force errors in the data's units (energy units per
 * Å, per force component) on the evaluated val/test graphs, and `force_std`,
 * the root mean square of the train split's force components (what
 * predicting zero forces scores). The energy errors stay in `val_rmse`,
 * `val_mae`, `test_rmse`, `test_mae`. Energy-only rows and files lack them.
 */
export const FORCE_COLUMNS = ['forces', 'val_force_mae', 'val_force_rmse', 'test_force_mae', 'test_force_rmse', 'force_std'] as const satisfies readonly (keyof StudyRow)[];

/** One finished cell of the grid. */
export interface StudyRow extends Pick<TrainResult, Exclude<(typeof TRAIN_COLUMNS)[number], 'atomref' | 'residual_std'>> {
  /** The run fitted atomrefs and learned the residual (absent in rows from before atomrefs: false). */
  atomref?: boolean;
  /** Spread of what the network learned: the residual's after atomrefs, else the target's (absent in older rows). */
  residual_std?: number;
  /** True on every row of a force study (energy + forces trained); absent on energy-only rows. */
  forces?: boolean;
  /** Force errors per component (data units, e.g. eV/Å) on the evaluated val/test graphs: force studies only. */
  val_force_mae?: number;
  val_force_rmse?: number;
  test_force_mae?: number;
  test_force_rmse?: number;
  /** Root mean square of the train split's force components (predicting zero forces scores this): force studies only. */
  force_std?: number;
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
  /** The graph rule the store was built with (`fc`, `cutoff:R`, `knn:K`). */
  graph_rule?: string;
  /** {@link storeDigest} of the loaded data: shards merged must have loaded the same graphs and targets. */
  digest?: string;
  /** Whether the runs on this source fitted atomrefs, and the spreads that decided it (absent in files from before atomrefs: none were used). */
  atomref?: AtomrefDecision;
}

/** Load options of the grid as recorded in `results.json` (everything that changes the graphs or the target). */
export interface GridLoadOptions {
  format?: string;
  /** Canonical graph rule text (`fc`, `cutoff:R`, `knn:K`). */
  graph?: string;
  target?: string;
  drop_edgeless?: boolean;
  /** Seed of the built-in generators. */
  data_seed?: number;
}

/** The grid as requested: together with the package version it is what {@link gridFingerprint} digests. */
export interface StudyGrid {
  data: string[];
  models: string[];
  policies: string[];
  batches: number[];
  reps: number;
  steps: number;
  base_seed: number;
  eval_graphs: number;
  /** Load options applied to every source (absent in files from before sharding: read as none). */
  load?: GridLoadOptions;
  /** Target per source, when given per source. */
  targets?: Record<string, string>;
  /** Atomref setting of the study (absent in files from before atomrefs: read as `off`). */
  atomref?: AtomrefMode;
  /**
   * A force study (`study --forces`): every cell trained on energies and
   * forces with these loss weights (train/force-training.ts). Absent: an
   * energy-only study (the plain study, and every file from before).
   */
  forces?: ForceLossWeights;
}

/** A shard's record in its own `results.json` (see `planShards` for the assignment rule). */
export interface ShardRecord {
  /** 1-based shard index and the shard count. */
  index: number;
  count: number;
  /** Where the index came from: `--shard`, Slurm's array variables or Kubernetes' completion index. */
  source: 'option' | 'slurm' | 'kubernetes';
  /** Digest of the assignment inputs (grid fingerprint, shard count, cost models): equal for every shard of one plan. */
  plan_digest: string;
  /** Cell keys ({@link cellKey}) assigned to this shard, in run order. */
  cells: string[];
  /** Estimated cost of every shard of the plan (ms, index 0 = shard 1) and the cost models used. */
  estimated_ms: number[];
  cost_models: Record<string, CellCostCoefficients>;
}

/** The five coefficients of a calibrated cost model (`CostModel` of recommend.ts without its points). */
export interface CellCostCoefficients {
  ms_per_edge: number;
  ms_per_node: number;
  ms_per_step: number;
  compile_ms_per_edge: number;
  compile_ms_base: number;
}

/** One input of a merged file: which shard, from where, on what machine. */
export interface MergedShard {
  /** The input `results.json` as given to merge. */
  file: string;
  /** Null for an unsharded input. */
  index: number | null;
  count: number | null;
  rows: number;
  /** Sum of the rows' cell_seconds (the shard's measured training + evaluation time). */
  cell_seconds: number;
  /** The plan's estimate for this shard (ms), when it was a shard. */
  estimated_ms: number | null;
  created: string;
  updated: string;
  environment: Environment;
}

/** The whole `results.json` document. */
export interface StudyResults {
  version: number;
  created: string;
  updated: string;
  environment: Environment;
  /** The grid as requested (for the report's captions and for resume). */
  grid: StudyGrid;
  /** {@link gridFingerprint} of `grid` and the package version (absent in files from before sharding). */
  fingerprint?: string;
  /** Present when this file is one shard of the grid. */
  shard?: ShardRecord;
  /** Present when this file was merged from shards: one entry per input, in shard order. */
  merged_from?: MergedShard[];
  /** Cells of the grid without a row, when merged with `--allow-partial`. */
  missing_cells?: string[];
  data: DataSummary[];
  rows: StudyRow[];
}

/** Columns of `results.csv`, in order (every scalar of {@link StudyRow}). */
export const CSV_COLUMNS: readonly (keyof StudyRow)[] = [
  'data', 'model', 'policy', 'batch', 'rep', 'seed', 'target', 'steps', 'threads', 'eval_graphs_val', 'eval_graphs_test',
  'budget_estimation_graphs', ...TRAIN_COLUMNS, 'cell_seconds', 'cpu_model', 'cpu_cores',
  'node_version', 'native_build', 'native_simd', 'native_openmp', 'finished_at',
];

/** Row columns that hold text. */
const ROW_TEXT_COLUMNS = ['data', 'model', 'policy', 'target', 'cpu_model', 'node_version', 'native_build', 'native_simd', 'finished_at'] as const satisfies readonly (keyof StudyRow)[];
/** Row columns that hold integers (safe integers; batch >= 1, the others >= 0 except the seed). */
const ROW_INTEGER_COLUMNS = [
  'batch', 'rep', 'seed', 'steps', 'threads', 'eval_graphs_val', 'eval_graphs_test', 'budget_estimation_graphs', 'cpu_cores', 'compile_count',
] as const satisfies readonly (keyof StudyRow)[];
/** Row columns absent from rows written before atomrefs, and the force columns (force studies only). */
const ROW_OPTIONAL_COLUMNS: readonly (keyof StudyRow)[] = ['atomref', 'residual_std', ...FORCE_COLUMNS];

const describeValue = (v: unknown): string => (v === undefined ? 'missing' : v === null ? 'null' : Array.isArray(v) ? 'an array' : `${typeof v} ${JSON.stringify(v)?.slice(0, 60)}`);

/**
 * Checks one row of a results file field by field (as {@link readResults}
 * returns it: null metrics already NaN): every {@link CSV_COLUMNS} column
 * present (except `atomref` and `residual_std`, absent in older rows) with its
 * type (text, integer, boolean, or a number where NaN stands for a missing
 * metric), `cell_seconds` finite and >= 0, and `loss_curve` a list of
 * `{step, loss}` numbers. Throws a {@link StudyError} with `code` whose
 * message names `where` (file and row index) and the field; returns the row.
 */
export function checkStudyRow(row: unknown, where: string, code: GnnErrorCode = 'ERR_GNN_RESULTS'): StudyRow {
  const bad = (field: string, want: string, v: unknown): StudyError => new StudyError(code, `${where}: field ${field} must be ${want}, got ${describeValue(v)}`);
  if (!row || typeof row !== 'object' || Array.isArray(row)) throw new StudyError(code, `${where}: must be an object (a study row), got ${describeValue(row)}`);
  const r = row as Record<string, unknown>;
  for (const k of [...CSV_COLUMNS, ...FORCE_COLUMNS]) {
    const v = r[k];
    if (v === undefined && ROW_OPTIONAL_COLUMNS.includes(k)) continue;
    if ((ROW_TEXT_COLUMNS as readonly string[]).includes(k)) {
      if (typeof v !== 'string') throw bad(k, 'a string', v);
    } else if ((ROW_INTEGER_COLUMNS as readonly string[]).includes(k)) {
      const min = k === 'batch' ? 1 : k === 'seed' ? Number.MIN_SAFE_INTEGER : 0;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(k, `an integer >= ${min === Number.MIN_SAFE_INTEGER ? '-2^53' : min}`, v);
    } else if (k === 'native_openmp' || k === 'atomref' || k === 'forces') {
      if (typeof v !== 'boolean') throw bad(k, 'a boolean', v);
    } else if (k === 'cell_seconds') {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(k, 'a finite number >= 0 (seconds)', v);
    } else if (typeof v !== 'number' && v !== null) {
      throw bad(k, 'a number (or null)', v);
    }
  }
  const curve = r.loss_curve;
  if (!Array.isArray(curve)) throw bad('loss_curve', 'a list of {step, loss}', curve);
  curve.forEach((p: unknown, i) => {
    const q = p as Record<string, unknown> | null;
    if (!q || typeof q !== 'object' || typeof q.step !== 'number' || !(typeof q.loss === 'number' || q.loss === null)) throw bad(`loss_curve[${i}]`, 'an object {step: number, loss: number}', p);
  });
  return row as StudyRow;
}

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

/**
 * The fields a grid fingerprint covers, in the order a difference is reported:
 * data sources, graph rule and the other load options, targets, models,
 * policies, batch sizes, steps, repetitions, seed, evaluation size, atomref setting, version.
 */
export function gridSpec(grid: StudyGrid, gnnbatchVersion: string): [string, unknown][] {
  const load = grid.load ?? {};
  return [
    ['data', grid.data],
    ['load.graph', load.graph ?? null],
    ['load.format', load.format ?? null],
    ['load.drop_edgeless', load.drop_edgeless ?? false],
    ['load.data_seed', load.data_seed ?? null],
    ['load.target', load.target ?? null],
    ['targets', grid.targets ? Object.keys(grid.targets).sort().map((k) => [k, grid.targets?.[k]]) : null],
    ['models', grid.models],
    ['policies', grid.policies],
    ['batches', grid.batches],
    ['steps', grid.steps],
    ['reps', grid.reps],
    ['base_seed', grid.base_seed],
    ['eval_graphs', grid.eval_graphs],
    ['atomref', grid.atomref ?? 'off'],
    ['forces', grid.forces ? { energy: grid.forces.energy, forces: grid.forces.forces, stress: grid.forces.stress } : null],
    ['gnnbatch_version', gnnbatchVersion],
  ];
}

/** What a study trained: `energy + forces` (with the loss weights) or `energy`. */
export function studyTraining(grid: Pick<StudyGrid, 'forces'>): string {
  const f = grid.forces;
  return f ? `energy + forces (loss weights: ${forceWeightsText(f)})` : 'energy';
}

/** `energy wE, forces wF` (and `, stress wS` when stress is trained). */
export function forceWeightsText(f: ForceLossWeights): string {
  return `energy ${f.energy}, forces ${f.forces}${f.stress > 0 ? `, stress ${f.stress}` : ''}`;
}

/** A 16-hex-digit digest of {@link gridSpec}: two results files of one grid (and version) have the same fingerprint. */
export function gridFingerprint(grid: StudyGrid, gnnbatchVersion: string): string {
  // `atomref: off` and `forces: null` (an energy study) are left out, so files from before atomrefs and force studies keep their fingerprint.
  const spec = gridSpec(grid, gnnbatchVersion).filter(([k, v]) => !(k === 'atomref' && v === 'off') && !(k === 'forces' && v === null));
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
}

/**
 * The first field where two grids differ (as `[field, a, b]`), or null when
 * their specifications are equal.
 */
export function firstGridDifference(a: StudyGrid, aVersion: string, b: StudyGrid, bVersion: string): [string, unknown, unknown] | null {
  const sa = gridSpec(a, aVersion);
  const sb = gridSpec(b, bVersion);
  for (let i = 0; i < sa.length; i++) {
    if (JSON.stringify(sa[i][1]) !== JSON.stringify(sb[i][1])) return [sa[i][0], sa[i][1], sb[i][1]];
  }
  return null;
}

/**
 * A digest of what training reads from a store for `target`: graph sizes,
 * atomic numbers, edge lists and the target column (not the float32
 * distances, whose last bits may differ between SIMD builds of the same data).
 */
export function storeDigest(store: GraphStore, target: string): string {
  const h = createHash('sha256');
  const put = (a: ArrayBufferView): void => {
    h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  };
  h.update(`${store.numGraphs}|${store.graphRule}|${target}|`);
  put(store.nodeOffset);
  put(store.edgeOffset);
  put(store.atomicNumber);
  put(store.senders);
  put(store.receivers);
  put(targetColumn(store, target));
  return h.digest('hex').slice(0, 16);
}

/** The identity of a cell: rows with the same key are the same measurement. */
export function cellKey(r: Pick<StudyRow, 'data' | 'model' | 'policy' | 'batch' | 'rep' | 'steps'>): string {
  return `${r.data}|${r.model}|${r.policy}|${r.batch}|${r.rep}|${r.steps}`;
}

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return ''; // a column a row from an older file lacks
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `results.csv` text: a header and one line per row ({@link CSV_COLUMNS}, then {@link FORCE_COLUMNS} when a row has them). */
export function resultsToCsv(rows: readonly StudyRow[]): string {
  const cols: readonly (keyof StudyRow)[] = rows.some((r) => r.forces === true) ? [...CSV_COLUMNS, ...FORCE_COLUMNS] : CSV_COLUMNS;
  const lines = [cols.join(',')];
  for (const r of rows) lines.push(cols.map((c) => csvCell(r[c])).join(','));
  return lines.join('\n') + '\n';
}

/**
 * Writes `results.json` and `results.csv` into `dir` (created if needed),
 * each atomically. Throws ERR_GNN_OUTPUT_PATH naming `dir` when it cannot
 * (a file in the way, permissions, a full disk).
 */
export function writeResults(dir: string, results: StudyResults): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    // JSON cannot hold NaN: non-finite numbers become null and read back as NaN.
    writeFileAtomic(path.join(dir, 'results.json'), JSON.stringify(results, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
    writeFileAtomic(path.join(dir, 'results.csv'), resultsToCsv(results.rows));
  } catch (e) {
    throw new StudyError('ERR_GNN_OUTPUT_PATH', `${dir}: cannot write the study results (${(e as Error).message})`);
  }
}

/**
 * Reads a `results.json` (null metrics become NaN). Throws a {@link StudyError}
 * (ERR_GNN_RESULTS) naming the file when it is missing, unreadable or not a
 * results file of this version.
 */
export function readResults(file: string): StudyResults {
  let doc: StudyResults;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8')) as StudyResults;
  } catch (e) {
    throw new StudyError('ERR_GNN_RESULTS', `${file}: cannot read study results (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.rows) || doc.version !== RESULTS_VERSION) {
    throw new StudyError('ERR_GNN_RESULTS', `${file}: not a gnnbatch results.json (version ${RESULTS_VERSION})`);
  }
  doc.rows.forEach((r: unknown, i) => {
    // A row that is not an object is named here; its fields are checked by their readers (merge: checkStudyRow).
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new StudyError('ERR_GNN_RESULTS', `${file}: rows[${i}] must be an object (a study row), got ${describeValue(r)}`);
    const row = r as Record<string, unknown>;
    for (const k of Object.keys(row)) if (row[k] === null) row[k] = NaN;
  });
  return doc;
}
