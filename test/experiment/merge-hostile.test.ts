/**
 * Issue 21, item 9: `study merge` against hostile shard folders. Malformed
 * rows and fields are ERR_GNN_MERGE_INPUT naming the file, the row index and
 * the field (never an uncoded crash); inputs and output are compared by real
 * path (an -o through a symbolic link cannot overwrite a shard's files); a
 * previous merge output is never read as an input; symbolically linked shard
 * folders are followed, links to nothing refused; a FIFO is refused, not read.
 * Synthetic shards (no training): two shards of a 4-cell grid.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  cellKey, gridFingerprint, mergeStudyDirs, readResults, studyCells, writeResults, type StudyResults, type StudyRow,
} from '../../src/experiment';
import { checkMergeInput } from '../../src/experiment/merge';
import { syntheticResults, syntheticRow } from './helpers/synthetic-study';

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

/** Shard `index` of 2: repetition index - 1 of the grid's cells. */
function shardDoc(index: number): StudyResults {
  const cells = studyCells({ data: ['qm9-like:300'], models: ['schnet'], policies: ['dynamic', 'static-64'], batches: [16], reps: 2, seed: 42 });
  const mine = cells.filter((c) => c.rep === index - 1);
  const rows: StudyRow[] = mine.map((c) => ({ ...syntheticRow({ policy: c.policy, batch: c.batch, rep: c.rep, ms: 10 + c.rep }), seed: c.seed }));
  const doc = syntheticResults(rows);
  doc.grid = { ...doc.grid, policies: ['dynamic', 'static-64'], reps: 2 };
  doc.fingerprint = gridFingerprint(doc.grid, doc.environment.gnnbatch_version);
  doc.shard = { index, count: 2, source: 'option', plan_digest: 'p'.repeat(16), cells: rows.map(cellKey), estimated_ms: [1, 1], cost_models: {} };
  return doc;
}

let root: string;
let n = 0;
/** A fresh study folder with both shards written (optionally edited first). */
function studyDir(edit?: (doc: Record<string, unknown>, index: number) => void): string {
  const dir = path.join(root, `study-${n++}`);
  for (const i of [1, 2]) {
    const doc = shardDoc(i);
    const sub = path.join(dir, `shard-${i}-of-2`);
    fs.mkdirSync(sub, { recursive: true });
    if (edit) {
      const j = clone(doc) as unknown as Record<string, unknown>;
      edit(j, i);
      fs.writeFileSync(path.join(sub, 'results.json'), JSON.stringify(j));
    } else writeResults(sub, doc);
  }
  return dir;
}

/** The coded error merging `dirs` into `out` gives (an uncoded one fails the test). */
function mergeError(dirs: string[], out: string): { code?: string; message: string } {
  try {
    mergeStudyDirs(dirs, out);
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  return { message: 'no error' };
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-merge-hostile-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('the clean shards merge (the baseline every hostile case departs from)', () => {
  const dir = studyDir();
  const m = mergeStudyDirs([dir], path.join(root, 'clean-out'));
  expect(m.results.rows).toHaveLength(4);
  expect(m.missing).toEqual([]);
});

describe('malformed rows and fields: ERR_GNN_MERGE_INPUT naming file, row and field', () => {
  const row0 = (f: (r: Record<string, unknown>) => void) => (d: Record<string, unknown>, i: number): void => {
    if (i === 2) f((d.rows as Record<string, unknown>[])[0]);
  };
  const cases: [string, (d: Record<string, unknown>, i: number) => void, RegExp][] = [
    ['rows: [null]', (d, i) => { if (i === 2) d.rows = [null]; }, /rows\[0\] must be an object/],
    ['rows[1] a number', (d, i) => { if (i === 2) (d.rows as unknown[])[1] = 7; }, /rows\[1\] must be an object/],
    ['rows not a list', (d, i) => { if (i === 2) d.rows = { a: 1 }; }, /not a gnnbatch results\.json/],
    ['cell_seconds: "abc"', row0((r) => { r.cell_seconds = 'abc'; }), /rows\[0\]: field cell_seconds must be a finite number >= 0/],
    ['cell_seconds: null', row0((r) => { r.cell_seconds = null; }), /rows\[0\]: field cell_seconds/],
    ['batch: "16"', row0((r) => { r.batch = '16'; }), /rows\[0\]: field batch must be an integer/],
    ['rep: 0.5', row0((r) => { r.rep = 0.5; }), /rows\[0\]: field rep must be an integer/],
    ['data: 7', row0((r) => { r.data = 7; }), /rows\[0\]: field data must be a string/],
    ['cpu_model missing', row0((r) => { delete r.cpu_model; }), /rows\[0\]: field cpu_model must be a string, got missing/],
    ['val_rmse: "x"', row0((r) => { r.val_rmse = 'x'; }), /rows\[0\]: field val_rmse must be a number/],
    ['native_openmp: "yes"', row0((r) => { r.native_openmp = 'yes'; }), /rows\[0\]: field native_openmp must be a boolean/],
    ['loss_curve: 5', row0((r) => { r.loss_curve = 5; }), /rows\[0\]: field loss_curve/],
    ['loss_curve: [null]', row0((r) => { r.loss_curve = [null]; }), /rows\[0\]: field loss_curve\[0\]/],
    ['no environment', (d, i) => { if (i === 2) delete d.environment; }, /field environment must be an object/],
    ['environment: "x"', (d, i) => { if (i === 2) d.environment = 'x'; }, /field environment must be an object/],
    ['environment.gnnbatch_version: 5', (d, i) => { if (i === 2) (d.environment as Record<string, unknown>).gnnbatch_version = 5; }, /field environment\.gnnbatch_version must be a string/],
    ['no grid', (d, i) => { if (i === 2) delete d.grid; }, /field grid must be an object/],
    ['grid.batches: "16"', (d, i) => { if (i === 2) (d.grid as Record<string, unknown>).batches = '16'; }, /field grid\.batches/],
    ['grid.reps: 1e9', (d, i) => { if (i === 2) (d.grid as Record<string, unknown>).reps = 1e9; }, /field grid must be a grid of at most/],
    ['shard.count: 1e12', (d, i) => { if (i === 2) (d.shard as Record<string, unknown>).count = 1e12; }, /field shard\.count must be an integer from 1 to 100000/],
    ['shard.index: "2"', (d, i) => { if (i === 2) (d.shard as Record<string, unknown>).index = '2'; }, /field shard\.index/],
    ['shard.cells: null', (d, i) => { if (i === 2) (d.shard as Record<string, unknown>).cells = null; }, /field shard\.cells/],
    ['shard.estimated_ms: [1]', (d, i) => { if (i === 2) (d.shard as Record<string, unknown>).estimated_ms = [1]; }, /field shard\.estimated_ms must be a list of 2 estimates/],
    ['data: [null]', (d, i) => { if (i === 2) d.data = [null]; }, /field data\[0\] must be an object/],
    ['data[0].digest: 3', (d, i) => { if (i === 2) (d.data as Record<string, unknown>[])[0].digest = 3; }, /field data\[0\]\.digest must be a string/],
    ['document: {}', (d, i) => { if (i === 2) { for (const k of Object.keys(d)) delete d[k]; } }, /not a gnnbatch results\.json/],
  ];
  test.each(cases)('%s', (_, edit, message) => {
    const dir = studyDir(edit);
    const e = mergeError([dir], path.join(root, `out-${n}`));
    expect(e.code).toBe('ERR_GNN_MERGE_INPUT');
    expect(e.message).toMatch(message);
    expect(e.message).toContain(path.join(dir, 'shard-2-of-2', 'results.json'));
  });

  test('checkMergeInput on a parsed document names the row index and field too', () => {
    const doc = clone(shardDoc(1)) as unknown as Record<string, unknown>;
    (doc.rows as Record<string, unknown>[])[1].policy = null;
    expect(() => checkMergeInput('x.json', doc)).toThrow('x.json: rows[1]: field policy must be a string, got null');
  });
});

describe('paths: real paths compared, merged outputs never inputs, links followed', () => {
  test('-o through a symbolic link to a shard folder is refused and the shard is untouched', () => {
    const dir = studyDir();
    const shard = path.join(dir, 'shard-1-of-2', 'results.json');
    const before = fs.readFileSync(shard, 'utf8');
    const link = path.join(root, `link-${n++}`);
    fs.symlinkSync(path.join(dir, 'shard-1-of-2'), link);
    const e = mergeError([dir], link);
    expect(e.code).toBe('ERR_GNN_MERGE_OUTPUT');
    expect(e.message).toContain('would overwrite the input');
    // Through a linked parent folder too.
    const parentLink = path.join(root, `plink-${n++}`);
    fs.symlinkSync(dir, parentLink);
    expect(mergeError([dir], path.join(parentLink, 'shard-2-of-2')).code).toBe('ERR_GNN_MERGE_OUTPUT');
    expect(fs.readFileSync(shard, 'utf8')).toBe(before);
  });

  test('merge OUT -o OUT twice: the second merge reads the updated shards, not the first merge', () => {
    const dir = studyDir();
    mergeStudyDirs([dir], dir);
    expect(readResults(path.join(dir, 'results.json')).merged_from).toHaveLength(2);
    // A shard is rerun: its rows change.
    const f = path.join(dir, 'shard-2-of-2', 'results.json');
    const doc = readResults(f);
    doc.rows[0].val_rmse = 0.123;
    writeResults(path.dirname(f), doc);
    const m = mergeStudyDirs([dir], dir);
    expect(m.files.sort()).toEqual([path.join(dir, 'shard-1-of-2', 'results.json'), f]);
    const merged = readResults(path.join(dir, 'results.json'));
    expect(merged.rows.find((r) => cellKey(r) === cellKey(doc.rows[0]))?.val_rmse).toBe(0.123);
    // Into another folder: the shards again, never the merged file in OUT.
    const other = mergeStudyDirs([dir], path.join(root, `other-${n++}`));
    expect(other.files).not.toContain(path.join(dir, 'results.json'));
    expect(other.results.rows.find((r) => cellKey(r) === cellKey(doc.rows[0]))?.val_rmse).toBe(0.123);
    // A merged file named directly is refused, explicitly.
    const e = mergeError([path.join(dir, 'results.json')], path.join(root, `x-${n++}`));
    expect(e.code).toBe('ERR_GNN_MERGE_INPUT');
    expect(e.message).toContain('output of an earlier merge');
  });

  test('a symbolically linked shard folder is followed; a link to nothing is refused, not skipped', () => {
    const dir = studyDir();
    const elsewhere = path.join(root, `moved-${n++}`);
    fs.renameSync(path.join(dir, 'shard-2-of-2'), elsewhere);
    fs.symlinkSync(elsewhere, path.join(dir, 'shard-2-of-2'));
    const m = mergeStudyDirs([dir], path.join(root, `linked-out-${n++}`));
    expect(m.results.rows).toHaveLength(4);
    expect(m.files).toContain(path.join(dir, 'shard-2-of-2', 'results.json'));
    fs.symlinkSync(path.join(root, 'no-such-folder'), path.join(dir, 'shard-3-of-2'));
    const e = mergeError([dir], path.join(root, `dangling-out-${n++}`));
    expect(e.code).toBe('ERR_GNN_MERGE_INPUT');
    expect(e.message).toContain('shard-3-of-2');
    expect(e.message).toContain('does not exist');
  });

  test('one shard given twice through a link is ERR_GNN_MERGE_DUPLICATE naming both paths', () => {
    const dir = studyDir();
    const link = path.join(root, `dup-${n++}`);
    fs.symlinkSync(path.join(dir, 'shard-1-of-2'), link);
    const e = mergeError([dir, link], path.join(root, `dup-out-${n++}`));
    expect(e.code).toBe('ERR_GNN_MERGE_DUPLICATE');
    expect(e.message).toContain('same file');
  });

  test('a FIFO in place of results.json is refused, not read (no hang)', () => {
    const dir = studyDir();
    const f = path.join(dir, 'shard-2-of-2', 'results.json');
    fs.rmSync(f);
    execFileSync('mkfifo', [f]);
    const e = mergeError([dir], path.join(root, `fifo-out-${n++}`));
    expect(e.code).toBe('ERR_GNN_MERGE_INPUT');
    expect(e.message).toContain('not a regular file');
  });
});
