/**
 * Data-parallel training on MPI, for real (issue 25): `mpirun -n 2
 * --oversubscribe gnnbatch train` (the built CLI, one thread per rank) equals
 * one process accumulating the same 2 micro-batches bit for bit; a rank that
 * is killed or hangs ends the job within 30 s with a non-zero exit and a
 * message; resume after that is bitwise. Needs Open MPI (.ci/run installs it):
 * without mpirun or the MPI module these tests FAIL, they never skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CLI, ROOT, ensureDist } from '../cli/dist-cli';
import { mpiModulePath } from '../../src/train/distributed';

const INSTALL = 'install Open MPI (Debian/Ubuntu: apt-get install -y openmpi-bin libopenmpi-dev; .ci/run does it) and rebuild the addon (npm run build:native), which then builds native-build/Release/gnnbatch_mpi.node';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-mpi-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function requireMpi(): void {
  const v = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) throw new Error(`mpirun is not available (${v.error?.message ?? v.stderr}): ${INSTALL}`);
  if (!/Open MPI/i.test(v.stdout + v.stderr)) throw new Error(`these tests drive Open MPI's mpirun (--oversubscribe), found: ${v.stdout.split('\n')[0]}; ${INSTALL}`);
  if (!fs.existsSync(mpiModulePath())) throw new Error(`the MPI module ${mpiModulePath()} is not built: ${INSTALL}`);
}

beforeAll(() => {
  requireMpi();
  ensureDist();
});

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const ENV = { OMP_NUM_THREADS: '1', OMPI_MCA_rmaps_base_oversubscribe: '1' };

function run(cmd: string, args: string[], opts: { timeoutMs?: number; onSpawn?: (c: ChildProcess) => void; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...ENV, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
    opts.onSpawn?.(child);
  });
}

const MPIRUN = ['-n', '2', '--oversubscribe', ...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : []), process.execPath, CLI];
const TRAIN = ['train', 'qm9-like:300', '--graph', 'fc', '--model', 'mpeu', '--latent', '16', '--policy', 'packed', '--batch', '8', '--threads', '1', '--seed', '3', '--lr', '1e-3', '--schedule', 'constant', '--clip', '1'];
const mpirun = (args: string[], o?: Parameters<typeof run>[2]): Promise<Run> => run('mpirun', [...MPIRUN, ...TRAIN, ...args], o);
const single = (args: string[]): Promise<Run> => run(process.execPath, [CLI, ...TRAIN, '--micro-batches', '2', ...args]);

/** The bytes that must agree: weights, Adam moments, the loss curve. */
function state(dir: string): { model: Buffer; optimizer: Buffer; lossCurve: unknown; step: number } {
  const ck = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
  const sub = path.join(dir, `step-${String(ck.step).padStart(6, '0')}`);
  return {
    model: fs.readFileSync(path.join(sub, 'model.safetensors')),
    optimizer: fs.readFileSync(path.join(sub, 'optimizer.safetensors')),
    lossCurve: ck.lossCurve,
    step: ck.step,
  };
}

function expectSame(a: ReturnType<typeof state>, b: ReturnType<typeof state>): void {
  expect(a.step).toBe(b.step);
  expect(a.model.equals(b.model)).toBe(true);
  expect(a.optimizer.equals(b.optimizer)).toBe(true);
  expect(a.lossCurve).toEqual(b.lossCurve);
}

const ok = (r: Run): void => {
  if (r.status !== 0) throw new Error(`exit ${r.status} (signal ${r.signal})\n${r.stderr}`);
};

/** The rank processes mpirun started (children carrying OMPI_COMM_WORLD_RANK), by rank. */
function ranksOf(mpirunPid: number): Map<number, number> {
  const out = new Map<number, number>();
  const walk = (pid: number): void => {
    let kids: string[] = [];
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      return;
    }
    for (const k of kids.map(Number)) {
      try {
        const env = fs.readFileSync(`/proc/${k}/environ`, 'utf8');
        const m = /(?:^|\0)OMPI_COMM_WORLD_RANK=(\d+)/.exec(env);
        if (m && fs.readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('main.js')) out.set(Number(m[1]), k);
      } catch {
        // gone already
      }
      walk(k);
    }
  };
  walk(mpirunPid);
  return out;
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('mpirun -n 2 gnnbatch train', () => {
  const STEPS = 60;
  let reference: ReturnType<typeof state>;

  beforeAll(async () => {
    const dir = path.join(tmp, 'reference');
    ok(await single(['--steps', String(STEPS), '--checkpoint', dir, '--json']));
    reference = state(dir);
  }, 120_000);

  it('2 ranks equal one process accumulating 2 micro-batches, bit for bit (weights, Adam moments, loss curve)', async () => {
    const dir1 = path.join(tmp, 'one');
    const dir2 = path.join(tmp, 'two');
    ok(await single(['--steps', '8', '--checkpoint', dir1, '--json']));
    const r = await mpirun(['--steps', '8', '--checkpoint', dir2, '--json']);
    ok(r);
    expectSame(state(dir2), state(dir1));
    // Rank 0 alone reports: one JSON document on stdout.
    const doc = JSON.parse(r.stdout);
    expect(doc.steps).toBe(8);
    expect(r.stdout.trim().startsWith('{') && r.stdout.trim().endsWith('}')).toBe(true);
  }, 120_000);

  it('killing one rank ends the job within 30 s with a non-zero exit and a message; resume is bitwise', async () => {
    const dir = path.join(tmp, 'killed');
    let killedAt = 0;
    const r = await mpirun(['--steps', '900', '--checkpoint', dir, '--checkpoint-every', '3', '--mpi-timeout', '10'], {
      timeoutMs: 90_000,
      onSpawn: (c) => {
        void (async () => {
          await waitFor(() => fs.existsSync(path.join(dir, 'checkpoint.json')), 60_000);
          const ranks = ranksOf(c.pid as number);
          const victim = ranks.get(1);
          if (!victim) throw new Error(`rank 1 not found among mpirun's children (${JSON.stringify([...ranks])})`);
          killedAt = Date.now();
          process.kill(victim, 'SIGKILL');
        })().catch((e) => {
          process.stderr.write(`mpi test: ${(e as Error).message}\n`);
          c.kill('SIGKILL');
        });
      },
    });
    expect(killedAt).toBeGreaterThan(0);
    expect(r.status).not.toBe(0);
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    expect(r.stderr + r.stdout).toMatch(/rank 1|process rank|exited on signal|gradient exchange/i);
    const at = state(dir).step;
    expect(at).toBeLessThan(STEPS);
    // Resume on 2 ranks into the same directory: bitwise the uninterrupted run's.
    ok(await mpirun(['--steps', String(STEPS), '--checkpoint', dir, '--resume', dir, '--json']));
    expectSame(state(dir), reference);
  }, 180_000);

  it('a rank that hangs makes the others abort after --mpi-timeout, saying why; resume across world sizes (1 process, same micro-batches) is bitwise', async () => {
    const dir = path.join(tmp, 'hung');
    let stoppedAt = 0;
    let victim = 0;
    const r = await mpirun(['--steps', '900', '--checkpoint', dir, '--checkpoint-every', '3', '--mpi-timeout', '4'], {
      timeoutMs: 90_000,
      onSpawn: (c) => {
        void (async () => {
          await waitFor(() => fs.existsSync(path.join(dir, 'checkpoint.json')), 60_000);
          victim = ranksOf(c.pid as number).get(1) ?? 0;
          if (!victim) throw new Error('rank 1 not found among mpirun\'s children');
          stoppedAt = Date.now();
          process.kill(victim, 'SIGSTOP');
        })().catch((e) => {
          process.stderr.write(`mpi test: ${(e as Error).message}\n`);
          c.kill('SIGKILL');
        });
      },
    });
    try {
      if (victim) process.kill(victim, 'SIGKILL');
    } catch {
      // mpirun ended it
    }
    expect(stoppedAt).toBeGreaterThan(0);
    expect(r.status).not.toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(30_000);
    expect(r.stderr).toMatch(/rank 0 of 2: step \d+: the gradient exchange did not complete within 4 s \(ERR_GNN_MPI_TIMEOUT\)/);
    expect(state(dir).step).toBeLessThan(STEPS);
    ok(await single(['--steps', String(STEPS), '--checkpoint', dir, '--resume', dir, '--json']));
    expectSame(state(dir), reference);
  }, 180_000);
});
