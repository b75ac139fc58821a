/**
 * Merging the shards of one study (shard.ts) into one `results.json` /
 * `results.csv` that `report` and `recommend --grid` read exactly as an
 * unsharded run's: the same grid, the rows in the grid's run order.
 *
 * Contract: every input must carry the same grid fingerprint (else
 * ERR_GNN_MERGE_GRID naming the first differing field), every shard of one
 * plan the same plan digest (ERR_GNN_MERGE_PLAN), no shard or cell may appear
 * twice (ERR_GNN_MERGE_DUPLICATE), every row must be a cell of the grid
 * (ERR_GNN_MERGE_UNKNOWN_CELL), every data source must have loaded the same
 * graphs and targets everywhere (ERR_GNN_MERGE_DATA), and every cell of the
 * grid must have a row unless partial results are allowed
 * (ERR_GNN_MERGE_MISSING lists them). Rows are copied unchanged: each keeps
 * the hardware it was measured on.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ModelKind } from '../model/config';
import {
  RESULTS_VERSION, StudyError, cellKey, firstGridDifference, gridFingerprint, readResults, writeResults,
  type DataSummary, type MergedShard, type StudyResults, type StudyRow,
} from './results';
import { studyCells } from './study';

/** One `results.json` to merge. */
export interface MergeInput {
  /** Where it was read from (named in errors). */
  file: string;
  results: StudyResults;
}

/** A (data, model, batch) whose rows were measured on more than one kind of machine. */
export interface MixedHardware {
  data: string;
  model: string;
  batch: number;
  /** Distinct machine descriptions (CPU, cores, native build and SIMD, threads). */
  machines: string[];
}

/** What {@link mergeStudyResults} returns. */
export interface MergeOutcome {
  results: StudyResults;
  /** Cell keys of the grid without a row (empty unless partial results were allowed). */
  missing: string[];
  /** Max / mean of the shards' summed cell seconds when every shard of one plan was given, else null. */
  balance: number | null;
  /** Max / mean of the plan's estimated shard loads (same condition), else null. */
  estimated_balance: number | null;
  mixed_hardware: MixedHardware[];
}

/** Options of {@link mergeStudyResults}. */
export interface MergeOptions {
  /** Write the merge even when cells are missing (they are listed in `missing_cells`). */
  allowPartial?: boolean;
}

const machineOf = (r: StudyRow): string => `${r.cpu_model}, ${r.cpu_cores} cores, ${r.native_build} ${r.native_simd}, ${r.threads} threads`;

/**
 * The (data, model, batch) groups of `rows` measured on more than one kind of
 * machine: their speedups and t-tests compare times taken on different
 * hardware (the shard rule keeps each repetition's policies together, so
 * this only happens across repetitions).
 */
export function mixedHardware(rows: readonly StudyRow[]): MixedHardware[] {
  const groups = new Map<string, MixedHardware>();
  for (const r of rows) {
    const key = `${r.data}\u0000${r.model}\u0000${r.batch}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { data: r.data, model: r.model, batch: r.batch, machines: [] }));
    const m = machineOf(r);
    if (!g.machines.includes(m)) g.machines.push(m);
  }
  return [...groups.values()].filter((g) => g.machines.length > 1);
}

const show = (v: unknown): string => JSON.stringify(v);

/** Merges shard results (see the module's contract). Pure: reads and writes no file. */
export function mergeStudyResults(inputs: readonly MergeInput[], o: MergeOptions = {}): MergeOutcome {
  if (inputs.length === 0) throw new StudyError('ERR_GNN_MERGE_INPUT', 'merge: no results to merge');
  for (const { file, results: r } of inputs) {
    if (!r.fingerprint) throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: no grid fingerprint (written by a gnnbatch from before sharding): run the study again`);
    const expected = gridFingerprint(r.grid, r.environment.gnnbatch_version);
    if (r.fingerprint !== expected) throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: fingerprint ${r.fingerprint} does not match its grid (${expected}): the file was edited`);
  }
  const sorted = [...inputs].sort((a, b) => (a.results.shard?.index ?? 0) - (b.results.shard?.index ?? 0) || a.file.localeCompare(b.file));
  const first = sorted[0];
  for (const x of sorted.slice(1)) {
    if (x.results.fingerprint === first.results.fingerprint) continue;
    const d = firstGridDifference(first.results.grid, first.results.environment.gnnbatch_version, x.results.grid, x.results.environment.gnnbatch_version);
    const what = d ? `${d[0]}: ${show(d[1])} in ${first.file}, ${show(d[2])} in ${x.file}` : `fingerprint ${first.results.fingerprint} vs ${x.results.fingerprint}`;
    throw new StudyError('ERR_GNN_MERGE_GRID', `${x.file} is from another grid than ${first.file} (first difference: ${what})`);
  }

  // Shards: each index once, one plan.
  const shardFiles = new Map<number, string>();
  let plan: { digest: string; file: string; count: number } | null = null;
  for (const { file, results: r } of sorted) {
    const s = r.shard;
    if (!s) continue;
    if (plan && plan.digest !== s.plan_digest) {
      const why = plan.count !== s.count ? `${plan.count} vs ${s.count} shards` : 'other cost models';
      throw new StudyError('ERR_GNN_MERGE_PLAN', `${file} was planned differently from ${plan.file} (${why}): its cells overlap theirs; merge shards of one plan`);
    }
    plan ??= { digest: s.plan_digest, file, count: s.count };
    const seen = shardFiles.get(s.index);
    if (seen !== undefined) throw new StudyError('ERR_GNN_MERGE_DUPLICATE', `shard ${s.index}/${s.count} is given twice: ${seen} and ${file}`);
    shardFiles.set(s.index, file);
  }

  const grid = first.results.grid;
  const cells = studyCells({ ...grid, models: grid.models as ModelKind[], seed: grid.base_seed }).map((c) => cellKey({ ...c, steps: grid.steps }));
  const order = new Map(cells.map((k, i) => [k, i]));
  const owner = new Map<string, string>();
  const rows: StudyRow[] = [];
  for (const { file, results: r } of sorted) {
    const mine = r.shard ? new Set(r.shard.cells) : null;
    for (const row of r.rows) {
      const k = cellKey(row);
      if (!order.has(k)) throw new StudyError('ERR_GNN_MERGE_UNKNOWN_CELL', `${file}: row ${k} is not a cell of the grid`);
      if (mine && !mine.has(k)) throw new StudyError('ERR_GNN_MERGE_UNKNOWN_CELL', `${file}: row ${k} is not one of shard ${r.shard?.index}/${r.shard?.count}'s cells`);
      const prev = owner.get(k);
      if (prev !== undefined) throw new StudyError('ERR_GNN_MERGE_DUPLICATE', `cell ${k} is in both ${prev} and ${file}`);
      owner.set(k, file);
      rows.push(row);
    }
  }
  rows.sort((a, b) => (order.get(cellKey(a)) as number) - (order.get(cellKey(b)) as number));

  // Data summaries: one per source, the same graphs everywhere.
  const data: DataSummary[] = [];
  const dataFile = new Map<string, string>();
  for (const { file, results: r } of sorted) {
    for (const d of r.data) {
      const have = data.find((x) => x.data === d.data);
      if (!have) {
        data.push(d);
        dataFile.set(d.data, file);
      } else if (have.digest && d.digest && have.digest !== d.digest) {
        throw new StudyError('ERR_GNN_MERGE_DATA', `${d.data}: ${file} loaded other graphs or targets than ${dataFile.get(d.data)} (data digest ${d.digest} vs ${have.digest}): the source differs between the machines`);
      }
    }
  }
  data.sort((a, b) => grid.data.indexOf(a.data) - grid.data.indexOf(b.data));

  const missing = cells.filter((k) => !owner.has(k));
  if (missing.length && !o.allowPartial) {
    const notGiven = plan ? Array.from({ length: plan.count }, (_, i) => i + 1).filter((i) => !shardFiles.has(i)).map((i) => `${i}/${plan?.count}`) : [];
    const unfinished = sorted.filter((x) => x.results.shard && x.results.rows.length < x.results.shard.cells.length).map((x) => `${x.file} (${(x.results.shard?.cells.length ?? 0) - x.results.rows.length} unfinished)`);
    const why = [notGiven.length ? `shard(s) not given: ${notGiven.join(', ')}` : '', unfinished.length ? `unfinished: ${unfinished.join(', ')}` : ''].filter(Boolean).join('; ');
    throw new StudyError(
      'ERR_GNN_MERGE_MISSING',
      `${missing.length} of ${cells.length} cells have no row${why ? ` (${why})` : ''}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}; finish them (rerun the shard: it resumes) or pass --allow-partial`,
    );
  }

  const merged_from: MergedShard[] = sorted.map(({ file, results: r }) => ({
    file,
    index: r.shard?.index ?? null,
    count: r.shard?.count ?? null,
    rows: r.rows.length,
    cell_seconds: r.rows.reduce((s, x) => s + x.cell_seconds, 0),
    estimated_ms: r.shard ? r.shard.estimated_ms[r.shard.index - 1] : null,
    created: r.created,
    updated: r.updated,
    environment: r.environment,
  }));
  const complete = plan !== null && shardFiles.size === plan.count && sorted.every((x) => x.results.shard);
  const ratio = (xs: number[]): number => Math.max(...xs) / (xs.reduce((s, x) => s + x, 0) / xs.length);
  const balance = complete ? ratio(merged_from.map((m) => m.cell_seconds)) : null;
  const estimatedBalance = complete ? ratio(sorted[0].results.shard?.estimated_ms ?? []) : null;

  const results: StudyResults = {
    version: RESULTS_VERSION,
    created: sorted.map((x) => x.results.created).sort()[0],
    updated: sorted.map((x) => x.results.updated).sort().slice(-1)[0],
    environment: first.results.environment,
    grid,
    fingerprint: first.results.fingerprint,
    merged_from,
    data,
    rows,
  };
  if (missing.length) results.missing_cells = missing;
  return { results, missing, balance, estimated_balance: estimatedBalance, mixed_hardware: mixedHardware(rows) };
}

/**
 * The `results.json` files behind merge's arguments: a `results.json` file,
 * a folder holding one, or a folder whose subfolders hold them (the CLI's
 * `OUT/shard-I-of-N/`; merged outputs among them are skipped). Throws
 * ERR_GNN_MERGE_INPUT naming an argument that holds none.
 */
export function findResultsFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    try {
      out.push(...resultsFilesAt(p));
    } catch (e) {
      if (e instanceof StudyError) throw e;
      throw new StudyError('ERR_GNN_MERGE_INPUT', `${p}: cannot be read (${(e as Error).message})`);
    }
  }
  return out;
}

function resultsFilesAt(p: string): string[] {
  if (!fs.existsSync(p)) throw new StudyError('ERR_GNN_MERGE_INPUT', `${p}: no such file or folder`);
  if (fs.statSync(p).isFile()) return [p];
  const direct = path.join(p, 'results.json');
  if (fs.existsSync(direct)) return [direct];
  const subs = fs.readdirSync(p, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(p, e.name, 'results.json')))
    .map((e) => path.join(p, e.name, 'results.json'))
    .filter((f) => !isMergedFile(f))
    .sort();
  if (!subs.length) throw new StudyError('ERR_GNN_MERGE_INPUT', `${p}: holds no results.json, nor do its subfolders`);
  return subs;
}

function isMergedFile(file: string): boolean {
  try {
    return Array.isArray((JSON.parse(fs.readFileSync(file, 'utf8')) as { merged_from?: unknown }).merged_from);
  } catch {
    return false; // unreadable: readResults names it later
  }
}

/**
 * Reads the inputs ({@link findResultsFiles}), merges them and writes
 * `outDir/results.json` and `outDir/results.csv` (atomically). Refuses
 * (ERR_GNN_MERGE_OUTPUT) an output folder that is one of the inputs;
 * ERR_GNN_OUTPUT_PATH when the folder cannot be written.
 */
export function mergeStudyDirs(paths: readonly string[], outDir: string, o: MergeOptions = {}): MergeOutcome & { files: string[] } {
  const files = findResultsFiles(paths);
  const outFile = path.resolve(outDir, 'results.json');
  for (const f of files) {
    if (path.resolve(f) === outFile) throw new StudyError('ERR_GNN_MERGE_OUTPUT', `-o ${outDir}: would overwrite the input ${f}; merge into another folder`);
  }
  const outcome = mergeStudyResults(files.map((file) => ({ file, results: readResults(file) })), o);
  writeResults(outDir, outcome.results);
  return { ...outcome, files };
}
