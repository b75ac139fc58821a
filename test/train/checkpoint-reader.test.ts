/**
 * The checkpoint reader trusts no file (issue 21, item 9): it used to read
 * each file whole before checking its size, so a FIFO in place of a weights
 * file hung `serve` at start and a link to /dev/zero crashed it. Now every
 * file is opened without blocking, checked on the descriptor to be a regular
 * file of the manifest's size, and exactly those bytes are read.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource } from '../../src/data';
import { train } from '../../src/train/trainer';
import { readCheckpoint } from '../../src/train/checkpoint';
import { loadModel } from '../../src/inference/load-model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-ckread-'));
const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 8, passes: 2 }, policy: 'dynamic' as const, batchSize: 8, seed: 2, skipEval: true };
let good: string;
const rescuers: ChildProcess[] = [];

beforeAll(async () => {
  const store = (await loadSource('qm9-like:32', { graph: 'fc' })).store;
  good = path.join(tmp, 'good');
  await train({ store, ...base, steps: 2, checkpointDir: good });
});
afterAll(() => {
  for (const c of rescuers) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A copy of the good checkpoint; returns the directory and the manifest's path of `key`'s file. */
function copy(name: string, key: 'model' | 'optimizer' = 'model'): { dir: string; file: string } {
  const dir = path.join(tmp, name);
  fs.cpSync(good, dir, { recursive: true });
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
  return { dir, file: path.join(dir, j.files[key].path) };
}

/**
 * Puts a FIFO at `file`. Should a reader block on it (the old reader did), a
 * helper process opens it for writing after 3 s and closes it, so the reader
 * sees end-of-file instead of hanging the test run forever.
 */
function fifoAt(file: string): void {
  fs.rmSync(file, { force: true });
  expect(spawnSync('mkfifo', [file]).status).toBe(0);
  rescuers.push(spawn('sh', ['-c', `sleep 3; : > '${file}'`], { stdio: 'ignore' }));
}

/** Runs `f`, returning its error and how long it took. */
function timed(f: () => unknown): { error: unknown; ms: number } {
  const t0 = Date.now();
  try {
    f();
  } catch (error) {
    return { error, ms: Date.now() - t0 };
  }
  return { error: undefined, ms: Date.now() - t0 };
}

test('a FIFO in place of the weights file: ERR_GNN_CHECKPOINT_NOT_FILE at once, no hang', () => {
  const { dir, file } = copy('fifo-model');
  fifoAt(file);
  const r = timed(() => loadModel(dir));
  expect(r.error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_NOT_FILE', message: expect.stringContaining(`${file}: is a FIFO (named pipe), not a regular file`) });
  expect(r.ms).toBeLessThan(1000);
});

test('a FIFO in place of the optimizer file or of checkpoint.json: the same', () => {
  const opt = copy('fifo-opt', 'optimizer');
  fifoAt(opt.file);
  let r = timed(() => readCheckpoint(opt.dir, { optimizer: true }));
  expect(r.error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_NOT_FILE' });
  expect(r.ms).toBeLessThan(1000);
  const man = copy('fifo-manifest');
  fifoAt(path.join(man.dir, 'checkpoint.json'));
  r = timed(() => readCheckpoint(man.dir));
  expect(r.error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_NOT_FILE', message: expect.stringContaining('checkpoint.json: is a FIFO') });
  expect(r.ms).toBeLessThan(1000);
});

test('a symlink to /dev/zero in place of the weights file: a coded error, nothing read', () => {
  const { dir, file } = copy('devzero');
  fs.rmSync(file);
  fs.symlinkSync('/dev/zero', file);
  const r = timed(() => loadModel(dir));
  expect(r.error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_NOT_FILE', message: expect.stringContaining('is a character device, not a regular file') });
  expect(r.ms).toBeLessThan(1000);
});

test('a symlink to /dev/zero as checkpoint.json, and a directory in place of a file', () => {
  const a = copy('devzero-manifest');
  fs.rmSync(path.join(a.dir, 'checkpoint.json'));
  fs.symlinkSync('/dev/zero', path.join(a.dir, 'checkpoint.json'));
  expect(timed(() => readCheckpoint(a.dir)).error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_NOT_FILE' });
  const b = copy('dir-model');
  fs.rmSync(b.file);
  fs.mkdirSync(b.file);
  expect(timed(() => readCheckpoint(b.dir)).error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_NOT_FILE', message: expect.stringContaining('is a directory') });
});

test('a symlink to a regular file is followed and then checked like the file itself', () => {
  const { dir, file } = copy('link-ok');
  const real = path.join(tmp, 'elsewhere.safetensors');
  fs.renameSync(file, real);
  fs.symlinkSync(real, file);
  expect(readCheckpoint(dir).step).toBe(2);
});

test('a file larger than the manifest says is refused before it is read; absurd sizes in the manifest are field errors', () => {
  const { dir, file } = copy('grown');
  fs.appendFileSync(file, Buffer.alloc(16));
  expect(timed(() => readCheckpoint(dir)).error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_CHECKSUM', message: expect.stringContaining('checkpoint.json says') });
  const big = copy('sparse');
  const mf = path.join(big.dir, 'checkpoint.json');
  const j = JSON.parse(fs.readFileSync(mf, 'utf8'));
  j.files.model.bytes = 2 ** 40;
  fs.writeFileSync(mf, JSON.stringify(j));
  fs.truncateSync(big.file, 2 ** 40); // sparse: no disk used, and never read
  expect(timed(() => readCheckpoint(big.dir)).error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_FIELD', message: expect.stringContaining("files.model.bytes") });
});

test('a hostile checkpoint.json larger than the manifest limit is refused unread', () => {
  const { dir } = copy('huge-manifest');
  const mf = path.join(dir, 'checkpoint.json');
  fs.truncateSync(mf, 300 * 1024 * 1024); // sparse
  expect(timed(() => readCheckpoint(dir)).error).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_NOT_FILE', message: expect.stringContaining('more than the') });
});
