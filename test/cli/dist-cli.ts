/**
 * Test helper: the built CLI (dist/cli/main.js) for tests that must run
 * `gnnbatch` as a real child process (signals, SIGKILL fault injection).
 * Rebuilds dist with `tsc -p tsconfig.build.json` when any source file is
 * newer than it (serialised with flock where available), so the child always
 * runs the code under test.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');

function newestSource(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

/** Builds dist when it is missing or older than src/ (tsc emits even when another file has type errors). */
export function ensureDist(): void {
  const fresh = (): boolean => fs.existsSync(CLI) && fs.statSync(CLI).mtimeMs >= newestSource(path.join(ROOT, 'src'));
  if (fresh()) return;
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const hasFlock = spawnSync('flock', ['--version']).status === 0;
  const cmd = hasFlock ? 'flock' : process.execPath;
  const args = hasFlock ? ['/tmp/gnn-dist.lock', process.execPath, tsc, '-p', 'tsconfig.build.json'] : [tsc, '-p', 'tsconfig.build.json'];
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (!fs.existsSync(CLI)) throw new Error(`building dist failed: ${r.stdout}${r.stderr}`);
  // tsc keeps the mtime of unchanged outputs; touch so the check above holds next time.
  const now = new Date();
  fs.utimesSync(CLI, now, now);
}

/** What a finished child reported. */
export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Spawns `node dist/cli/main.js ...args`; `onSpawn` may signal the child. */
export function runDistCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; onSpawn?: (c: ChildProcess) => void } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
    opts.onSpawn?.(child);
  });
}
