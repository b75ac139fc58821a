/**
 * One writer per checkpoint directory (issue 21, item 6): two trainings into
 * one --checkpoint directory used to delete each other's step directories
 * (ERR_GNN_CHECKPOINT_WRITE with ENOENT/EEXIST, or a run's checkpoints
 * silently gone). Now the first run holds DIR/checkpoint.lock for its whole
 * run and the second is refused before its first step with
 * ERR_GNN_CHECKPOINT_LOCKED naming the holder; a lock left by a dead process
 * on this host is taken over (with a warning); the lock is released on every
 * exit path.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, type GraphStore } from '../../src/data';
import { train } from '../../src/train/trainer';
import { readCheckpoint } from '../../src/train/checkpoint';
import { LOCK_NAME, lockCheckpointDir } from '../../src/train/checkpoint-lock';
import { ensureDist, runDistCli, ROOT } from '../cli/dist-cli';

let store: GraphStore;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-lock-'));
const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 8, passes: 2 }, policy: 'dynamic' as const, batchSize: 8, seed: 5, lr: 1e-3, skipEval: true };
const bits = (a: Float32Array | null): Buffer => Buffer.from((a as Float32Array).buffer, (a as Float32Array).byteOffset, (a as Float32Array).byteLength);

/** A pid that was just used and is no longer running. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}
const lockOf = (dir: string) => path.join(dir, LOCK_NAME);
const writeLock = (dir: string, holder: object): void => {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(lockOf(dir), JSON.stringify(holder));
};

beforeAll(async () => {
  store = (await loadSource('qm9-like:96', { graph: 'fc' })).store;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('two concurrent train() calls into one directory: exactly one is refused before step 1, the other\'s checkpoints are intact', async () => {
  const dir = path.join(tmp, 'two');
  const reference = await train({ store, ...base, steps: 12 });
  const runs = await Promise.allSettled([
    train({ store, ...base, steps: 12, checkpointDir: dir, checkpointEvery: 1, asyncSteps: true }),
    train({ store, ...base, steps: 12, checkpointDir: dir, checkpointEvery: 1, asyncSteps: true }),
  ]);
  const refused = runs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  expect(refused).toHaveLength(1);
  expect(refused[0].reason).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_LOCKED', message: expect.stringContaining(`pid ${process.pid} on host ${os.hostname()}`) });
  const ck = readCheckpoint(dir, { optimizer: true });
  expect(ck.step).toBe(12);
  expect(bits(ck.params).equals(bits(reference.model.params))).toBe(true);
  expect(fs.readdirSync(dir).sort()).toEqual(['checkpoint.json', 'step-000012']); // the lock is released
});

test('a lock held by a live process is refused with its pid, host and start time; the directory is untouched', async () => {
  const dir = path.join(tmp, 'live');
  const started = '2026-12-01T10:00:00.000Z';
  writeLock(dir, { pid: process.ppid, host: os.hostname(), started, token: 'x' });
  await expect(train({ store, ...base, steps: 2, checkpointDir: dir })).rejects.toMatchObject({
    code: 'ERR_GNN_CHECKPOINT_LOCKED',
    message: expect.stringContaining(`is locked by another training run (pid ${process.ppid} on host ${os.hostname()}, started ${started})`),
  });
  expect(fs.readdirSync(dir)).toEqual([LOCK_NAME]);
});

test('a lock from another host is never taken over; the message says which file to delete', async () => {
  const dir = path.join(tmp, 'remote');
  writeLock(dir, { pid: deadPid(), host: `not-${os.hostname()}`, started: new Date().toISOString(), token: 'x' });
  await expect(train({ store, ...base, steps: 2, checkpointDir: dir })).rejects.toMatchObject({
    code: 'ERR_GNN_CHECKPOINT_LOCKED',
    message: expect.stringContaining(`if that run is gone, delete ${lockOf(dir)}`),
  });
});

test('an unreadable lock file is refused, not guessed at', () => {
  const dir = path.join(tmp, 'garbage');
  fs.mkdirSync(dir);
  fs.writeFileSync(lockOf(dir), 'not json');
  expect(() => lockCheckpointDir(dir)).toThrow(expect.objectContaining({ code: 'ERR_GNN_CHECKPOINT_LOCKED', message: expect.stringContaining(`delete ${lockOf(dir)}`) }));
});

test('a stale lock (this host, dead pid) is taken over with a warning, and released at the end', async () => {
  const dir = path.join(tmp, 'stale');
  const pid = deadPid();
  writeLock(dir, { pid, host: os.hostname(), started: '2026-12-01T10:00:00.000Z', token: 'old' });
  const { result } = await train({ store, ...base, steps: 3, checkpointDir: dir });
  expect(result.warnings).toContainEqual(expect.stringContaining(`took over a stale checkpoint lock of pid ${pid} on host ${os.hostname()}`));
  expect(readCheckpoint(dir).step).toBe(3);
  expect(fs.existsSync(lockOf(dir))).toBe(false);
});

test('the lock is released when training fails and when it is aborted', async () => {
  const dir = path.join(tmp, 'paths');
  await train({ store, ...base, steps: 2, checkpointDir: dir });
  // A failure after the lock is taken (resume with another seed).
  await expect(train({ store, ...base, seed: 99, steps: 4, resumeDir: dir, checkpointDir: dir })).rejects.toMatchObject({ code: 'ERR_GNN_CHECKPOINT_MISMATCH' });
  expect(fs.existsSync(lockOf(dir))).toBe(false);
  const ac = new AbortController();
  ac.abort();
  const { result } = await train({ store, ...base, steps: 4, resumeDir: dir, checkpointDir: dir, signal: ac.signal });
  expect(result.stopped_early).toBe(true);
  expect(fs.existsSync(lockOf(dir))).toBe(false);
  // Released: the next run takes it without a warning.
  const next = await train({ store, ...base, steps: 4, resumeDir: dir, checkpointDir: dir });
  expect(next.result.warnings.filter((w) => w.includes('lock'))).toEqual([]);
});

test('a released lock is not removed when another holder owns the file now', () => {
  const dir = path.join(tmp, 'owner');
  fs.mkdirSync(dir);
  const lock = lockCheckpointDir(dir);
  fs.unlinkSync(lockOf(dir));
  writeLock(dir, { pid: process.ppid, host: os.hostname(), started: new Date().toISOString(), token: 'someone-else' });
  lock.release();
  expect(JSON.parse(fs.readFileSync(lockOf(dir), 'utf8')).token).toBe('someone-else');
});

describe('child processes (the built CLI)', () => {
  const ARGS = ['train', 'qm9-like:96', '--model', 'mpeu', '--latent', '8', '--passes', '2', '--policy', 'dynamic', '--batch', '8', '--seed', '3', '--lr', '1e-3', '--threads', '1', '--checkpoint-every', '1', '--json'];
  beforeAll(() => ensureDist(), 300_000);

  test('two `gnnbatch train` into one --checkpoint: one exits with ERR_GNN_CHECKPOINT_LOCKED, the other completes intact', async () => {
    const dir = path.join(tmp, 'cli-two');
    const ref = path.join(tmp, 'cli-ref');
    const r0 = await runDistCli([...ARGS, '--steps', '150', '--checkpoint', ref], { timeoutMs: 120_000 });
    expect(r0.status).toBe(0);
    const runs = await Promise.all([0, 1].map(() => runDistCli([...ARGS, '--steps', '150', '--checkpoint', dir], { timeoutMs: 120_000 })));
    const failed = runs.filter((r) => r.status !== 0);
    expect(failed).toHaveLength(1);
    expect(failed[0].stderr).toContain('ERR_GNN_CHECKPOINT_LOCKED');
    expect(failed[0].stderr).toMatch(/is locked by another training run \(pid \d+ on host /);
    const ck = readCheckpoint(dir, { optimizer: true });
    const reference = readCheckpoint(ref, { optimizer: true });
    expect(ck.step).toBe(150);
    expect(bits(ck.params).equals(bits(reference.params))).toBe(true);
    expect(bits(ck.m).equals(bits(reference.m))).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['checkpoint.json', 'step-000150']);
  }, 240_000);

  test('process.exit while holding the lock (a second Ctrl-C) removes it; a SIGKILL leaves a stale lock the next run takes over', async () => {
    const dir = path.join(tmp, 'cli-exit');
    fs.mkdirSync(dir);
    const mod = path.join(ROOT, 'dist/train/checkpoint-lock.js');
    const exited = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(mod)}).lockCheckpointDir(${JSON.stringify(dir)}); process.exit(130)`]);
    expect(exited.status).toBe(130);
    expect(fs.existsSync(lockOf(dir))).toBe(false);
    const killed = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(mod)}).lockCheckpointDir(${JSON.stringify(dir)}); process.kill(process.pid, 'SIGKILL')`]);
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.existsSync(lockOf(dir))).toBe(true);
    const r = await runDistCli([...ARGS, '--steps', '2', '--checkpoint', dir], { timeoutMs: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('took over a stale checkpoint lock');
    expect(fs.existsSync(lockOf(dir))).toBe(false);
  }, 240_000);
});
