/**
 * Writing a .gnb cache that cannot be written (issue 21, item 9): `data build
 * -o` on a full disk failed with a raw ENOSPC and no code. Now saveStore (used
 * by `data build`, `data get` and the downloaders) throws CacheError
 * ERR_GNN_CACHE_WRITE naming the path and the reason, leaves no temporary
 * file, and leaves an existing cache under that name as it was. The full disk
 * is a real one: a small tmpfs (needs CAP_SYS_ADMIN; skipped visibly
 * elsewhere, like test/train/checkpoint-enospc.test.ts).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, type GraphStore } from '../../src/data';
import { loadStore, saveStore } from '../../src/data/cache';
import { runCli } from '../../src/cli/main';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-cachew-'));
const mnt = path.join(tmp, 'small');
let store: GraphStore;
/** A two-graph store that fits the 64 kB disk. */
let few: GraphStore;
let mounted = false;

function canMountTmpfs(): boolean {
  if (process.platform !== 'linux') return false;
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-mount-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d]).status === 0;
  if (ok) spawnSync('umount', [d]);
  fs.rmSync(d, { recursive: true, force: true });
  return ok;
}
const CAN_MOUNT = canMountTmpfs();
if (!CAN_MOUNT) process.stderr.write('cache-write: cannot mount a tmpfs here (needs CAP_SYS_ADMIN); the real-ENOSPC tests are skipped\n');

beforeAll(async () => {
  store = (await loadSource('qm9-like:200', { graph: 'fc' })).store;
  few = (await loadSource('qm9-like:2', { graph: 'fc' })).store;
  if (!CAN_MOUNT) return;
  fs.mkdirSync(mnt);
  mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]).status === 0;
  if (!mounted) throw new Error(`mounting a 64 kB tmpfs at ${mnt} failed`);
});
afterAll(() => {
  if (mounted) spawnSync('umount', [mnt]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs the CLI in-process; resolves with its status and what it wrote to stderr. */
async function cli(args: string[]): Promise<{ status: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const status = await runCli(['node', 'gnnbatch', ...args], { err: (t) => (err += t), out: (t) => (out += t) });
  return { status, err, out };
}

test('saveStore into a folder that does not exist: ERR_GNN_CACHE_WRITE naming the path', () => {
  const file = path.join(tmp, 'no-such-folder', 'x.gnb');
  expect(() => saveStore(store, file)).toThrow(expect.objectContaining({ code: 'ERR_GNN_CACHE_WRITE', message: expect.stringContaining(`${file}: cannot be written: its folder does not exist (ENOENT)`) }));
});

test('saveStore onto a directory: ERR_GNN_CACHE_WRITE, no temporary file left', () => {
  const file = path.join(tmp, 'is-a-dir.gnb');
  fs.mkdirSync(file);
  expect(() => saveStore(store, file)).toThrow(expect.objectContaining({ code: 'ERR_GNN_CACHE_WRITE', message: expect.stringContaining(file) }));
  expect(fs.readdirSync(tmp).filter((e) => e.endsWith('.tmp'))).toEqual([]);
});

(CAN_MOUNT ? test : test.skip)('saveStore on a full disk: ERR_GNN_CACHE_WRITE (disk full), no temporary file, an existing cache intact', () => {
  const file = path.join(mnt, 'kept.gnb');
  saveStore(few, file);
  const before = fs.readFileSync(file);
  expect(() => saveStore(store, file)).toThrow(expect.objectContaining({
    code: 'ERR_GNN_CACHE_WRITE',
    message: expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot be written: the disk is full \\(ENOSPC\\)`)),
  }));
  expect(fs.readdirSync(mnt)).toEqual(['kept.gnb']);
  expect(fs.readFileSync(file).equals(before)).toBe(true);
  expect(loadStore(file).numGraphs).toBe(2);
});

(CAN_MOUNT ? test : test.skip)('`gnnbatch data build -o` on a full disk: exit 1 with ERR_GNN_CACHE_WRITE naming the path, not a raw ENOSPC', async () => {
  const file = path.join(mnt, 'qm9.gnb');
  const r = await cli(['data', 'build', 'qm9-like:200', '-o', file]);
  expect(r.status).toBe(1);
  expect(r.err).toContain(`${file}: cannot be written: the disk is full (ENOSPC)`);
  expect(r.err).toContain('(ERR_GNN_CACHE_WRITE)');
  expect(r.err).not.toMatch(/^gnnbatch: ENOSPC/);
  expect(fs.readdirSync(mnt).filter((e) => e.endsWith('.tmp'))).toEqual([]);
  expect(fs.existsSync(file)).toBe(false);
});
