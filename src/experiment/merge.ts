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
 * (ERR_GNN_MERGE_MISSING lists them). Every input is checked field by field
 * first ({@link checkMergeInput}: environment, grid, shard record, data
 * summaries, every row), so a malformed file is ERR_GNN_MERGE_INPUT naming the
 * file, the row index and the field, never a crash; a merged output is never
 * an input. Rows are copied unchanged: each keeps the hardware it was
 * measured on. A force study (`grid.forces`) and an energy study are never
 * merged (ERR_GNN_MERGE_GRID says which input trained what), and every row of
 * an input must have trained what its grid says (ERR_GNN_MERGE_INPUT).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ModelKind } from '../model/config';
import {
  RESULTS_VERSION, StudyError, cellKey, checkStudyRow, firstGridDifference, gridFingerprint, readResults, studyTraining, writeResults,
  type DataSummary, type MergedShard, type StudyResults, type StudyRow,
} from './results';
import { MAX_SHARDS } from './shard';
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

/** Most cells a merged grid may have (data x models x policies x batches x reps): checked before the grid's cells are listed. */
export const MAX_MERGE_CELLS = 1_000_000;

/** Largest `results.json` merge reads (bytes). */
export const MAX_RESULTS_FILE_BYTES = 1 << 30;

const describe = (v: unknown): string => (v === undefined ? 'missing' : v === null ? 'null' : Array.isArray(v) ? 'an array' : `${typeof v} ${JSON.stringify(v)?.slice(0, 60)}`);

/**
 * Checks a parsed results document before merge reads anything from it:
 * the environment's fields, the grid (lists of names and batch sizes, counts
 * within {@link MAX_MERGE_CELLS}), the shard record (index of count <=
 * MAX_SHARDS, its cells and estimates), the data summaries and every row
 * (checkStudyRow). Refuses a merged output (`merged_from`): merge reads
 * shards, not earlier merges. Throws ERR_GNN_MERGE_INPUT naming `file`, the
 * field and, for rows, the row index; returns the document.
 */
export function checkMergeInput(file: string, doc: unknown): StudyResults {
  const fail = (field: string, want: string, v: unknown): never => {
    throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: field ${field} must be ${want}, got ${describe(v)}`);
  };
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(doc)) return fail('(document)', 'an object', doc);
  if (doc.merged_from !== undefined) {
    throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: is the output of an earlier merge (merged_from), not a shard: merge the shard folders themselves`);
  }
  const text = (o: Record<string, unknown>, k: string, where: string): void => {
    if (typeof o[k] !== 'string') fail(`${where}${k}`, 'a string', o[k]);
  };
  const integer = (v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(field, `an integer from ${min} to ${max}`, v);
    return v as number;
  };
  const textList = (v: unknown, field: string): string[] => {
    if (!Array.isArray(v)) return fail(field, 'a list of strings', v);
    v.forEach((x, i) => typeof x !== 'string' && fail(`${field}[${i}]`, 'a string', x));
    return v as string[];
  };
  text(doc, 'created', '');
  text(doc, 'updated', '');
  if (doc.fingerprint !== undefined) text(doc, 'fingerprint', '');
  const env = doc.environment;
  if (!isObject(env)) return fail('environment', 'an object (the machine the shard ran on)', env);
  for (const k of ['cpu_model', 'platform', 'arch', 'node_version', 'gnnbatch_version']) text(env, k, 'environment.');
  for (const k of ['cpu_cores', 'total_memory_gib']) if (typeof env[k] !== 'number') fail(`environment.${k}`, 'a number', env[k]);
  if (!isObject(env.native)) fail('environment.native', 'an object', env.native);

  const grid = doc.grid;
  if (!isObject(grid)) return fail('grid', 'an object', grid);
  const counts = [textList(grid.data, 'grid.data').length, textList(grid.models, 'grid.models').length, textList(grid.policies, 'grid.policies').length];
  if (!Array.isArray(grid.batches)) fail('grid.batches', 'a list of batch sizes', grid.batches);
  (grid.batches as unknown[]).forEach((b, i) => integer(b, `grid.batches[${i}]`, 1));
  counts.push((grid.batches as unknown[]).length, integer(grid.reps, 'grid.reps', 1));
  integer(grid.steps, 'grid.steps', 0);
  integer(grid.base_seed, 'grid.base_seed', Number.MIN_SAFE_INTEGER);
  integer(grid.eval_graphs, 'grid.eval_graphs', 0);
  const cells = counts.reduce((a, b) => a * b, 1);
  if (cells > MAX_MERGE_CELLS) fail('grid', `a grid of at most ${MAX_MERGE_CELLS} cells`, `${counts.join(' x ')} = ${cells} cells`);
  if (grid.load !== undefined && !isObject(grid.load)) fail('grid.load', 'an object', grid.load);
  if (grid.targets !== undefined) {
    if (!isObject(grid.targets)) fail('grid.targets', 'an object of target names', grid.targets);
    for (const [k, v] of Object.entries(grid.targets as Record<string, unknown>)) if (typeof v !== 'string') fail(`grid.targets.${k}`, 'a string', v);
  }
  if (grid.atomref !== undefined) text(grid, 'atomref', 'grid.');
  if (grid.forces !== undefined) {
    const f = grid.forces;
    if (!isObject(f)) fail('grid.forces', 'an object of loss weights (energy, forces, stress)', f);
    for (const k of ['energy', 'forces', 'stress']) {
      const v = (f as Record<string, unknown>)[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`grid.forces.${k}`, 'a finite number >= 0', v);
    }
  }

  if (doc.shard !== undefined) {
    const sh = doc.shard;
    if (!isObject(sh)) return fail('shard', 'an object', sh);
    const count = integer(sh.count, 'shard.count', 1, MAX_SHARDS);
    integer(sh.index, 'shard.index', 1, count);
    text(sh, 'plan_digest', 'shard.');
    text(sh, 'source', 'shard.');
    textList(sh.cells, 'shard.cells');
    const est = sh.estimated_ms;
    if (!Array.isArray(est) || est.length !== count) fail('shard.estimated_ms', `a list of ${count} estimates`, est);
    (est as unknown[]).forEach((x, i) => (typeof x !== 'number' || !Number.isFinite(x) || x < 0) && fail(`shard.estimated_ms[${i}]`, 'a finite number >= 0', x));
  }

  if (!Array.isArray(doc.data)) fail('data', 'a list of data summaries', doc.data);
  (doc.data as unknown[]).forEach((d, i) => {
    if (!isObject(d)) return fail(`data[${i}]`, 'an object (a data summary)', d);
    text(d, 'data', `data[${i}].`);
    if (d.digest !== undefined) text(d, 'digest', `data[${i}].`);
    return undefined;
  });
  if (!Array.isArray(doc.rows)) fail('rows', 'a list of study rows', doc.rows);
  (doc.rows as unknown[]).forEach((r, i) => {
    const row = checkStudyRow(r, `${file}: rows[${i}]`, 'ERR_GNN_MERGE_INPUT');
    // A row trained otherwise than its grid says (an energy row in a force study's file, or the reverse): the file was edited or mixed.
    if ((row.forces === true) !== (grid.forces !== undefined))
      throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: rows[${i}] trained on ${row.forces === true ? 'energy + forces' : 'energy only'}, but the file's grid is ${grid.forces !== undefined ? 'a force study (energy + forces)' : 'an energy-only study'}`);
  });
  return doc as unknown as StudyResults;
}

/** Merges shard results (see the module's contract). Pure: reads and writes no file. */
export function mergeStudyResults(inputs: readonly MergeInput[], o: MergeOptions = {}): MergeOutcome {
  if (inputs.length === 0) throw new StudyError('ERR_GNN_MERGE_INPUT', 'merge: no results to merge');
  for (const { file, results } of inputs) checkMergeInput(file, results);
  for (const { file, results: r } of inputs) {
    if (!r.fingerprint) throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: no grid fingerprint (written by a gnnbatch from before sharding): run the study again`);
    const expected = gridFingerprint(r.grid, r.environment.gnnbatch_version);
    if (r.fingerprint !== expected) throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: fingerprint ${r.fingerprint} does not match its grid (${expected}): the file was edited`);
  }
  const sorted = [...inputs].sort((a, b) => (a.results.shard?.index ?? 0) - (b.results.shard?.index ?? 0) || a.file.localeCompare(b.file));
  const first = sorted[0];
  // Force and energy studies time different steps: refused with what each input trained, before the generic grid comparison.
  for (const x of sorted.slice(1)) {
    if (!!x.results.grid.forces === !!first.results.grid.forces) continue;
    throw new StudyError(
      'ERR_GNN_MERGE_GRID',
      `${x.file} trained on ${studyTraining(x.results.grid)} but ${first.file} on ${studyTraining(first.results.grid)}: a force study (study --forces) and an energy study cannot be merged; merge the shards of one study`,
    );
  }
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
 * `OUT/shard-I-of-N/`). Symbolic links are followed (a shard folder linked
 * in from elsewhere is read); a link to nothing is refused. Merged outputs
 * are never inputs: in a subfolder they are skipped; a folder whose own
 * `results.json` is a merged output stands for its shard subfolders (so
 * `merge OUT -o OUT` merges the shards again, not the old merge); a merged
 * file named directly is refused. Throws ERR_GNN_MERGE_INPUT naming the
 * argument that holds none, ERR_GNN_MERGE_DUPLICATE when two arguments are
 * one file (after resolving links).
 */
export function findResultsFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Map<string, string>();
  for (const p of paths) {
    let found: string[];
    try {
      found = resultsFilesAt(p);
    } catch (e) {
      if (e instanceof StudyError) throw e;
      throw new StudyError('ERR_GNN_MERGE_INPUT', `${p}: cannot be read (${(e as Error).message})`);
    }
    for (const f of found) {
      const real = fs.realpathSync(f);
      const prev = seen.get(real);
      if (prev !== undefined) throw new StudyError('ERR_GNN_MERGE_DUPLICATE', `${f} and ${prev} are the same file (${real}): give each shard once`);
      seen.set(real, f);
      out.push(f);
    }
  }
  return out;
}

/** stat that follows links, with a link to nothing named as such. */
function statFollowing(p: string): fs.Stats {
  try {
    return fs.statSync(p);
  } catch (e) {
    const link = fs.lstatSync(p, { throwIfNoEntry: false });
    if (link?.isSymbolicLink()) throw new StudyError('ERR_GNN_MERGE_INPUT', `${p}: is a symbolic link to ${fs.readlinkSync(p)}, which does not exist`);
    throw e;
  }
}

function resultsFilesAt(p: string): string[] {
  if (!fs.lstatSync(p, { throwIfNoEntry: false })) throw new StudyError('ERR_GNN_MERGE_INPUT', `${p}: no such file or folder`);
  const st = statFollowing(p);
  if (!st.isDirectory()) {
    if (isMergedFile(p)) throw new StudyError('ERR_GNN_MERGE_INPUT', `${p}: is the output of an earlier merge (merged_from), not a shard: merge the shard folders themselves`);
    return [p];
  }
  const direct = path.join(p, 'results.json');
  const directMerged = fs.existsSync(direct) && isMergedFile(direct);
  if (fs.existsSync(direct) && !directMerged) return [direct];
  const subs: string[] = [];
  for (const e of fs.readdirSync(p, { withFileTypes: true })) {
    const sub = path.join(p, e.name);
    if (!(e.isDirectory() || e.isSymbolicLink())) continue;
    // A linked shard folder is followed like a real one; a link to nothing is refused, not skipped.
    if (e.isSymbolicLink() && !statFollowing(sub).isDirectory()) continue;
    const f = path.join(sub, 'results.json');
    if (fs.existsSync(f) && !isMergedFile(f)) subs.push(f);
  }
  subs.sort();
  if (!subs.length) {
    throw new StudyError(
      'ERR_GNN_MERGE_INPUT',
      directMerged ? `${p}: holds only a merged results.json (merged_from) and no shard folders: give the shard folders` : `${p}: holds no results.json, nor do its subfolders`,
    );
  }
  return subs;
}

function isMergedFile(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_RESULTS_FILE_BYTES) return false; // readMergeInput names it
    return Array.isArray((JSON.parse(fs.readFileSync(file, 'utf8')) as { merged_from?: unknown } | null)?.merged_from);
  } catch {
    return false; // unreadable: readMergeInput names it later
  }
}

/** Reads one merge input: a regular file of at most MAX_RESULTS_FILE_BYTES, a results file, every field checked. */
function readMergeInput(file: string): StudyResults {
  const st = fs.statSync(file);
  if (!st.isFile()) throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: is not a regular file`);
  if (st.size > MAX_RESULTS_FILE_BYTES) throw new StudyError('ERR_GNN_MERGE_INPUT', `${file}: ${st.size} bytes, more than the ${MAX_RESULTS_FILE_BYTES} a results file may have`);
  let doc: StudyResults;
  try {
    doc = readResults(file);
  } catch (e) {
    if (e instanceof StudyError) throw new StudyError('ERR_GNN_MERGE_INPUT', e.message);
    throw e;
  }
  return checkMergeInput(file, doc);
}

/** The real path `p` will have: links resolved in its longest existing prefix, the rest appended. */
function realPathOf(p: string): string {
  const abs = path.resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail);
    } catch {
      const up = path.dirname(head);
      if (up === head) return abs;
      tail.unshift(path.basename(head));
      head = up;
    }
  }
}

/**
 * Reads the inputs ({@link findResultsFiles}), merges them and writes
 * `outDir/results.json` and `outDir/results.csv` (atomically). Refuses
 * (ERR_GNN_MERGE_OUTPUT) an output folder that is, once symbolic links are
 * resolved, the folder of one of the inputs (writing there would replace a
 * shard's files); ERR_GNN_OUTPUT_PATH when the folder cannot be written.
 */
export function mergeStudyDirs(paths: readonly string[], outDir: string, o: MergeOptions = {}): MergeOutcome & { files: string[] } {
  const files = findResultsFiles(paths);
  const realOut = realPathOf(outDir);
  for (const f of files) {
    if (path.dirname(fs.realpathSync(f)) === realOut) throw new StudyError('ERR_GNN_MERGE_OUTPUT', `-o ${outDir}: would overwrite the input ${f} (${realOut} is its folder); merge into another folder`);
  }
  const outcome = mergeStudyResults(files.map((file) => ({ file, results: readMergeInput(file) })), o);
  writeResults(outDir, outcome.results);
  return { ...outcome, files };
}
