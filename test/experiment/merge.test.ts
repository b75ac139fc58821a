/**
 * A study sharded three ways (three separate processes: --shard, a Slurm
 * array's variables, a Kubernetes Indexed Job's index) and merged equals the
 * unsharded run cell for cell, bitwise in every learning column (CPU training
 * is deterministic per seed); merge's refusals; report and recommend --grid
 * read the merged file.
 */
import { codeOf } from '../helpers/codes';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CSV_COLUMNS, ENVIRONMENT_COLUMNS, TIMING_COLUMNS, analyseStudy, cellKey, gridFingerprint, mergeStudyDirs, mergeStudyResults, mixedHardware, readResults, runStudy,
  type MergeInput, type StudyResults, type StudyRow,
} from '../../src/experiment';
import { registerStudyCommand } from '../../src/cli/study';
import { registerReportCommand } from '../../src/cli/report';
import { registerRecommendCommand } from '../../src/cli/recommend';
import { runCli } from '../helpers/cli';
import { runCliProcess } from './helpers/cli-process';

const GRID = ['qm9-like:120', 'aflow-like:60', '--models', 'schnet', '--policies', 'dynamic,static-64', '--batch', '4,8', '--reps', '2', '--steps', '3', '--eval-graphs', '8', '--quiet', '--max-reps', '2', '--learning-steps', '0'];
const CELLS = 2 * 1 * 2 * 2 * 2;

const cli = (args: string[]): Promise<string> =>
  runCli((program) => {
    registerStudyCommand(program);
    registerReportCommand(program);
    registerRecommendCommand(program);
  }, args);

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

let root: string;
let whole: StudyResults;
let shards: MergeInput[];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-shards-'));
  const out = path.join(root, 'study');
  // The three shards as a scheduler runs them: separate processes, each told its index another way.
  const runs = await Promise.all([
    runCliProcess(['study', ...GRID, '-o', out, '--shard', '1/3']),
    runCliProcess(['study', ...GRID, '-o', out], { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '2', SLURM_ARRAY_TASK_COUNT: '3' }),
    runCliProcess(['study', ...GRID, '-o', out, '--shards', '3'], { JOB_COMPLETION_INDEX: '2' }),
  ]);
  for (const r of runs) expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  expect(runs[1].stdout).toContain('shard 2/3 (from slurm)');
  expect(runs[2].stdout).toContain('shard 3/3 (from kubernetes)');
  await cli(['study', ...GRID, '-o', path.join(root, 'whole')]);
  whole = readResults(path.join(root, 'whole', 'results.json'));
  shards = [1, 2, 3].map((i) => {
    const file = path.join(out, `shard-${i}-of-3`, 'results.json');
    return { file, results: readResults(file) };
  });
});

const LEARNING = CSV_COLUMNS.filter((c) => !(TIMING_COLUMNS as readonly string[]).includes(c) && !(ENVIRONMENT_COLUMNS as readonly string[]).includes(c));

describe('sharded study merged = unsharded study', () => {
  test('each shard records its part, the plan and the grid fingerprint', () => {
    const all = shards.flatMap((s) => s.results.shard?.cells ?? []);
    expect(all).toHaveLength(CELLS);
    expect(new Set(all).size).toBe(CELLS);
    for (const s of shards) {
      expect(s.results.fingerprint).toBe(whole.fingerprint);
      expect(s.results.shard?.plan_digest).toBe(shards[0].results.shard?.plan_digest);
      expect(s.results.rows.map(cellKey)).toEqual(s.results.shard?.cells);
      // all policies of a (data, model, B, rep) on one shard
      const groups = new Set(s.results.rows.map((r) => `${r.data}|${r.batch}|${r.rep}`));
      expect(s.results.rows).toHaveLength(groups.size * 2);
    }
    expect(shards.map((s) => s.results.shard?.source)).toEqual(['option', 'slurm', 'kubernetes']);
  });

  test('merge: the same cells in the same order, learning columns bitwise equal, timing columns present', async () => {
    const text = await cli(['study', 'merge', path.join(root, 'study'), '-o', path.join(root, 'merged')]);
    expect(text).toMatch(/balance \(max shard \/ mean\): measured \d\.\d{3}/);
    const merged = readResults(path.join(root, 'merged', 'results.json'));
    expect(merged.rows.map(cellKey)).toEqual(whole.rows.map(cellKey));
    expect(merged.rows).toHaveLength(CELLS);
    expect(merged.grid).toEqual(whole.grid);
    expect(merged.fingerprint).toBe(whole.fingerprint);
    expect(LEARNING).toEqual(expect.arrayContaining(['test_rmse', 'val_mae', 'final_train_loss', 'compile_count', 'edge_fill']));
    merged.rows.forEach((m, i) => {
      const w = whole.rows[i];
      for (const c of LEARNING) expect([cellKey(m), c, Object.is(m[c], w[c])]).toEqual([cellKey(m), c, true]);
      expect(m.loss_curve.map((p) => p.loss)).toEqual(w.loss_curve.map((p) => p.loss));
      for (const c of TIMING_COLUMNS) expect(m[c]).not.toBeUndefined();
      expect(m.combined_ms_mean).toBeGreaterThan(0);
    });
    expect(merged.data.map((d) => [d.data, d.digest, d.graphs, d.nodes_histogram])).toEqual(whole.data.map((d) => [d.data, d.digest, d.graphs, d.nodes_histogram]));
    expect(merged.merged_from?.map((s) => s.index)).toEqual([1, 2, 3]);
    // the CSV is the unsharded run's, but for the clocks
    const csv = (dir: string): string[][] => fs.readFileSync(path.join(root, dir, 'results.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    const keep = LEARNING.map((c) => CSV_COLUMNS.indexOf(c));
    expect(csv('merged').map((r) => keep.map((i) => r[i]))).toEqual(csv('whole').map((r) => keep.map((i) => r[i])));
  });

  test('report and recommend --grid read the merged file', async () => {
    const file = path.join(root, 'merged', 'results.json');
    if (!fs.existsSync(file)) mergeStudyDirs([path.join(root, 'study')], path.join(root, 'merged'));
    const html = path.join(root, 'report.html');
    expect(await cli(['report', file, '-o', html])).toContain(`${CELLS} runs`);
    expect(fs.readFileSync(html, 'utf8')).toContain('<svg');
    const hit = JSON.parse(await cli(['recommend', '--grid', file, '--json'])) as { total: number };
    expect(hit.total).toBe(4); // (data, model, B) cells: 2 x 1 x 2
    // the study's learning statistics are the unsharded run's
    expect(analyseStudy(readResults(file).rows).ttests).toEqual(analyseStudy(whole.rows).ttests);
  });

  test('merging into a folder among the shards: a second merge skips the first one\'s output', async () => {
    const study = path.join(root, 'study');
    await cli(['study', 'merge', study, '-o', path.join(study, 'merged')]);
    expect(await cli(['study', 'merge', study, '-o', path.join(study, 'merged')])).toContain(`${CELLS} rows`);
    expect(readResults(path.join(study, 'merged', 'results.json')).merged_from).toHaveLength(3);
  });

  test('a shard reruns as a resume (nothing to do); another shard or grid in its folder is refused', async () => {
    const dir = path.dirname(shards[0].file);
    const again = await runStudy({ outDir: dir, data: ['qm9-like:120', 'aflow-like:60'], models: ['schnet'], policies: ['dynamic', 'static-64'], batches: [4, 8], reps: 2, steps: 3, evalGraphs: 8, load: { seed: 42 }, shard: { index: 1, count: 3 } });
    expect(again.ran).toBe(0);
    expect(again.skipped).toBe(shards[0].results.rows.length);
    await expect(runStudy({ outDir: dir, data: ['qm9-like:120', 'aflow-like:60'], models: ['schnet'], policies: ['dynamic', 'static-64'], batches: [4, 8], reps: 2, steps: 3, evalGraphs: 8, load: { seed: 42 }, shard: { index: 2, count: 3 } }))
      .rejects.toMatchObject({ code: 'ERR_GNN_SHARD_RESUME', message: expect.stringContaining('holds shard 1/3, not 2/3') });
    await expect(runStudy({ outDir: dir, data: ['qm9-like:120', 'aflow-like:60'], models: ['schnet'], policies: ['dynamic', 'static-64'], batches: [4, 8], reps: 2, steps: 4, evalGraphs: 8, load: { seed: 42 }, shard: { index: 1, count: 3 } }))
      .rejects.toMatchObject({ code: 'ERR_GNN_SHARD_RESUME', message: expect.stringContaining('steps: 3 there, 4 now') });
    const slower = { mpeu: { ms_per_edge: 1, ms_per_node: 1, ms_per_step: 1, compile_ms_per_edge: 1, compile_ms_base: 1 }, schnet: { ms_per_edge: 1, ms_per_node: 1, ms_per_step: 1, compile_ms_per_edge: 1, compile_ms_base: 1 } };
    await expect(runStudy({ outDir: dir, data: ['qm9-like:120', 'aflow-like:60'], models: ['schnet'], policies: ['dynamic', 'static-64'], batches: [4, 8], reps: 2, steps: 3, evalGraphs: 8, load: { seed: 42 }, shard: { index: 1, count: 3 }, costModels: slower }))
      .rejects.toMatchObject({ code: 'ERR_GNN_SHARD_RESUME', message: expect.stringContaining('planned with other cost models') });
  });
});

describe('merge refuses what would not be one study', () => {
  const refit = (r: StudyResults): StudyResults => ({ ...r, fingerprint: gridFingerprint(r.grid, r.environment.gnnbatch_version) });

  test('another grid: ERR_GNN_MERGE_GRID naming the first difference', () => {
    const other = clone(shards[1]);
    other.results.grid.steps = 30;
    other.results = refit(other.results);
    expect(() => mergeStudyResults([shards[0], other, shards[2]])).toThrow(/is from another grid than .*shard-1-of-3.*\(first difference: steps: 3 in .*, 30 in /);
    expect(codeOf(() => mergeStudyResults([shards[0], other, shards[2]]))).toBe('ERR_GNN_MERGE_GRID');
    const rule = clone(shards[2]);
    rule.results.grid.load = { ...rule.results.grid.load, graph: 'cutoff:5' };
    rule.results = refit(rule.results);
    expect(() => mergeStudyResults([shards[0], rule])).toThrow(/first difference: load\.graph: null in .*, "cutoff:5" in/);
    const version = clone(shards[2]);
    version.results.environment.gnnbatch_version = '9.9.9';
    version.results = refit(version.results);
    expect(() => mergeStudyResults([shards[0], version])).toThrow(/first difference: gnnbatch_version: "0\.\d+\.\d+" in .*, "9\.9\.9" in/);
  });

  test('an edited fingerprint, a file from before sharding: ERR_GNN_MERGE_INPUT', () => {
    const edited = clone(shards[0]);
    edited.results.grid.reps = 5;
    expect(() => mergeStudyResults([edited])).toThrow(/does not match its grid .*edited/);
    const old = clone(shards[0]);
    delete old.results.fingerprint;
    expect(codeOf(() => mergeStudyResults([old]))).toBe('ERR_GNN_MERGE_INPUT');
    expect(codeOf(() => mergeStudyResults([]))).toBe('ERR_GNN_MERGE_INPUT');
  });

  test('a shard twice, a cell twice: ERR_GNN_MERGE_DUPLICATE', () => {
    const twice = { ...shards[1], file: 'copy/results.json' };
    expect(() => mergeStudyResults([...shards, twice])).toThrow(/shard 2\/3 is given twice: .*shard-2-of-3\/results\.json and copy\/results\.json/);
    // an unsharded run of the same grid overlaps every shard
    const unsharded = { file: 'whole/results.json', results: whole };
    expect(() => mergeStudyResults([shards[0], unsharded])).toThrow(/^cell qm9-like:120\|schnet\|\S+ is in both whole\/results\.json and \S+shard-1-of-3\/results\.json$/);
    expect(codeOf(() => mergeStudyResults([shards[0], unsharded]))).toBe('ERR_GNN_MERGE_DUPLICATE');
  });

  test('rows outside the grid or the shard, other data, another plan', () => {
    const extra = clone(shards[0]);
    extra.results.rows.push({ ...extra.results.rows[0], rep: 7 });
    expect(() => mergeStudyResults([extra])).toThrow(/row qm9-like:120\|schnet\|dynamic\|\d\|7\|3 is not a cell of the grid/);
    const stolen = clone(shards[0]);
    const foreign = shards[1].results.rows[0];
    stolen.results.rows.push(foreign);
    expect(() => mergeStudyResults([stolen])).toThrow(`row ${cellKey(foreign)} is not one of shard 1/3's cells`);
    expect(codeOf(() => mergeStudyResults([stolen]))).toBe('ERR_GNN_MERGE_UNKNOWN_CELL');
    const data = clone(shards[2]);
    const shared = data.results.data.find((d) => shards[0].results.data.some((x) => x.data === d.data));
    expect(shared).toBeDefined();
    if (shared) shared.digest = '0000000000000000';
    expect(() => mergeStudyResults([shards[0], data])).toThrow(/loaded other graphs or targets than/);
    expect(codeOf(() => mergeStudyResults([shards[0], data]))).toBe('ERR_GNN_MERGE_DATA');
    const replanned = clone(shards[1]);
    if (replanned.results.shard) replanned.results.shard.plan_digest = 'ffffffffffffffff';
    expect(codeOf(() => mergeStudyResults([shards[0], replanned, shards[2]]))).toBe('ERR_GNN_MERGE_PLAN');
  });

  test('missing cells: listed, refused unless partial results are allowed', () => {
    expect(() => mergeStudyResults([shards[0], shards[2]])).toThrow(/^\d+ of 16 cells have no row \(shard\(s\) not given: 2\/3\): .*--allow-partial$/);
    expect(codeOf(() => mergeStudyResults([shards[0], shards[2]]))).toBe('ERR_GNN_MERGE_MISSING');
    const unfinished = clone(shards[0]);
    unfinished.results.rows.pop();
    expect(() => mergeStudyResults([unfinished, shards[1], shards[2]])).toThrow(/1 of 16 cells have no row \(unfinished: .*shard-1-of-3\/results\.json \(1 unfinished\)\)/);
    const partial = mergeStudyResults([shards[0], shards[2]], { allowPartial: true });
    expect(partial.missing).toEqual(shards[1].results.shard?.cells);
    expect(partial.results.missing_cells).toEqual(partial.missing);
    expect(partial.balance).toBeNull();
  });

  test('the CLI: missing cells exit non-zero with one coded line; -o onto an input is refused', async () => {
    const out = path.join(root, 'partial');
    const r = await runCliProcess(['study', 'merge', path.dirname(shards[0].file), path.dirname(shards[2].file), '-o', out]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cells have no row .*ERR_GNN_MERGE_MISSING/);
    expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
    await cli(['study', 'merge', path.dirname(shards[0].file), path.dirname(shards[2].file), '-o', out, '--allow-partial']);
    expect(readResults(path.join(out, 'results.json')).missing_cells?.length).toBe(shards[1].results.rows.length);
    await expect(cli(['study', 'merge', path.dirname(shards[0].file), '-o', path.dirname(shards[0].file)])).rejects.toMatchObject({ code: 'ERR_GNN_MERGE_OUTPUT' });
    const blocker = path.join(root, 'a-file');
    fs.writeFileSync(blocker, 'x');
    await expect(cli(['study', 'merge', path.join(root, 'study'), '-o', path.join(blocker, 'merged')])).rejects.toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH', message: expect.stringContaining(`${path.join(blocker, 'merged')}: cannot write the study results`) });
    await expect(runStudy({ outDir: path.join(blocker, 'study'), data: ['qm9-like:50'] })).rejects.toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH' });
  });
});

describe('mixedHardware', () => {
  test('flags a (data, model, B) whose repetitions ran on different machines', () => {
    const rows = clone(whole.rows);
    expect(mixedHardware(rows)).toEqual([]);
    const r1 = rows.filter((r: StudyRow) => r.data === 'qm9-like:120' && r.batch === 8 && r.rep === 1);
    for (const r of r1) r.cpu_model = 'Other CPU';
    const m = mixedHardware(rows);
    expect(m).toHaveLength(1);
    expect(m[0]).toMatchObject({ data: 'qm9-like:120', model: 'schnet', batch: 8 });
    expect(m[0].machines).toHaveLength(2);
  });
});
