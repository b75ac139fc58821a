/**
 * Checkpoint fault injection (issue 14, finding 1): `gnnbatch train
 * --checkpoint DIR --checkpoint-every 1` is SIGKILLed as a child process,
 * at each write point of a checkpoint (the GNNBATCH_FAULT_AFTER test hook)
 * and at random moments, then resumed from DIR until it completes; the final
 * weights, Adam moments and loss curve must equal an uninterrupted run's bit
 * for bit. A short budget runs in `npm test`; `GNN_FUZZ=long` (npm run fuzz)
 * runs every write point at several steps and >= 20 random kills.
 *
 * Reproduce: GNN_FUZZ=long GNN_FUZZ_SEED=<seed> npx jest test/fuzz/checkpoint-kill.test.ts
 */
import { mulberry32 } from '../../src/data';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ensureDist, runDistCli, type CliRun } from '../cli/dist-cli';
import { readCheckpoint, FAULT_POINTS } from '../../src/train/checkpoint';

const LONG = process.env.GNN_FUZZ === 'long';
const SEED = Number(process.env.GNN_FUZZ_SEED ?? (LONG ? Date.now() % 1_000_000 : 20261201));
const STEPS = LONG ? 40 : 10;
const ARGS = ['train', 'qm9-like:96', '--model', 'mpeu', '--latent', '8', '--passes', '2', '--policy', 'dynamic', '--batch', '8', '--seed', '7', '--lr', '1e-3', '--threads', '1', '--steps', String(STEPS), '--checkpoint-every', '1', '--json'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-kill-'));
let reference: ReturnType<typeof readCheckpoint>;
let referenceMs = 1000;
let kills = 0;
/** Kills that landed after a checkpoint had been committed (mid-training, not during start-up). */
let midRun = 0;

const rng = mulberry32;

/** One invocation on `dir`: resumes when a checkpoint is there. */
function invoke(dir: string, opts: Parameters<typeof runDistCli>[1] = {}): Promise<CliRun> {
  const resume = fs.existsSync(path.join(dir, 'checkpoint.json')) ? ['--resume', dir] : [];
  return runDistCli([...ARGS, '--checkpoint', dir, ...resume], { timeoutMs: 120_000, ...opts });
}

const bits = (a: Float32Array | null): Buffer => Buffer.from((a as Float32Array).buffer, (a as Float32Array).byteOffset, (a as Float32Array).byteLength);

/** Resumes `dir` until a run completes, then compares with the uninterrupted run. */
async function finishAndCompare(dir: string, history: string[]): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await invoke(dir);
    history.push(`resume: status ${r.status} signal ${r.signal}`);
    if (r.status === 0) break;
    throw new Error(`resume after a kill failed (${history.join('; ')}):\n${r.stderr}`);
  }
  const ck = readCheckpoint(dir, { optimizer: true });
  expect(ck.step).toBe(STEPS);
  const same = bits(ck.params).equals(bits(reference.params)) && bits(ck.m).equals(bits(reference.m)) && bits(ck.v).equals(bits(reference.v));
  if (!same) throw new Error(`weights differ from the uninterrupted run after: ${history.join('; ')}`);
  expect(ck.lossCurve).toEqual(reference.lossCurve);
  expect(fs.readdirSync(dir).filter((e) => e.startsWith('step-'))).toEqual([`step-${String(STEPS).padStart(6, '0')}`]);
}

beforeAll(async () => {
  ensureDist();
  const dir = path.join(tmp, 'reference');
  const r = await runDistCli([...ARGS, '--checkpoint', dir], { timeoutMs: 120_000 });
  if (r.status !== 0) throw new Error(`reference run failed: ${r.stderr}`);
  referenceMs = r.ms;
  reference = readCheckpoint(dir, { optimizer: true });
}, 300_000);

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  process.stderr.write(`checkpoint-kill: ${kills} SIGKILLs survived, ${midRun} of them during training (seed ${SEED}, ${LONG ? 'long' : 'short'} budget)\n`);
});

// Every write point at an early and a late step (long), or a spread of them (short).
const deterministic: [string, number][] = LONG
  ? FAULT_POINTS.flatMap((p) => [1, 5, STEPS].map((s) => [p, s] as [string, number]))
  : [['model', 3], ['optimizer', 4], ['manifest-tmp', 5], ['manifest', STEPS]];

describe('SIGKILL between the writes of a checkpoint', () => {
  test.each(deterministic)('after %s of step %i', async (point, step) => {
    const dir = path.join(tmp, `at-${point}-${step}`);
    const r = await invoke(dir, { env: { GNNBATCH_FAULT_AFTER: point, GNNBATCH_FAULT_STEP: String(step) } });
    expect(r.signal).toBe('SIGKILL');
    kills++;
    midRun++;
    await finishAndCompare(dir, [`killed after ${point} of step ${step}`]);
  });
});

describe('SIGKILL at random moments', () => {
  const trials = LONG ? 24 : 2;
  test(`${trials} trials, each killed up to 3 times before it may finish`, async () => {
    const random = rng(SEED);
    for (let t = 0; t < trials; t++) {
      const dir = path.join(tmp, `random-${t}`);
      const history: string[] = [];
      for (let k = 0; k < 3; k++) {
        const delay = Math.floor(referenceMs * (0.15 + 0.85 * random()));
        const r = await invoke(dir, { onSpawn: (c) => setTimeout(() => c.kill('SIGKILL'), delay) });
        history.push(`run ${k}: kill at ${delay} ms -> ${r.signal ?? `status ${r.status}`}`);
        if (r.signal === 'SIGKILL') {
          kills++;
          if (fs.existsSync(path.join(dir, 'checkpoint.json'))) midRun++;
        }
        else if (r.status !== 0) throw new Error(`run failed (${history.join('; ')}):\n${r.stderr}`);
        else break;
      }
      await finishAndCompare(dir, history);
    }
  }, LONG ? 1_200_000 : 120_000);
});
