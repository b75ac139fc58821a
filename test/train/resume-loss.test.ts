/**
 * final_train_loss after --resume (issue 21, item 9): the mean loss of the
 * last (up to) 100 steps of the run, the same number as the uninterrupted
 * run's, also when the resumed invocation has nothing left to do. The window
 * of recent losses travels in the checkpoint (`recentLosses`); a checkpoint
 * written before it still resumes (the figure then covers only the steps run
 * after the resume, as before).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, type GraphStore } from '../../src/data';
import { train } from '../../src/train/trainer';
import { readCheckpoint } from '../../src/train/checkpoint';

let store: GraphStore;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-resume-loss-'));
const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 8, passes: 2 }, policy: 'dynamic' as const, batchSize: 8, seed: 11, lr: 1e-3, skipEval: true };
const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

beforeAll(async () => {
  store = (await loadSource('qm9-like:96', { graph: 'fc' })).store;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// 130 steps: the 100-step window spans the resume point for k = 70, and lies before it for k = 120.
const N = 130;

describe('final_train_loss after a resume equals the uninterrupted run\'s', () => {
  let reference: { loss: number; params: Float32Array };
  beforeAll(async () => {
    const { result, model } = await train({ store, ...base, steps: N });
    reference = { loss: result.final_train_loss, params: model.params };
    expect(Number.isFinite(reference.loss)).toBe(true);
  });

  test.each([10, 70, 120])('train %i steps, resume to the end', async (k) => {
    const dir = path.join(tmp, `k${k}`);
    const first = await train({ store, ...base, steps: k, checkpointDir: dir });
    expect(first.result.steps_run).toBe(k);
    const { result, model } = await train({ store, ...base, steps: N, resumeDir: dir, checkpointDir: dir });
    expect(result.steps_run).toBe(N - k);
    expect(bits(model.params).equals(bits(reference.params))).toBe(true);
    expect(result.final_train_loss).toBe(reference.loss);
  });

  test('a resume with nothing left to do reports the checkpoint\'s figure, not null', async () => {
    const dir = path.join(tmp, 'done');
    await train({ store, ...base, steps: N, checkpointDir: dir });
    const { result } = await train({ store, ...base, steps: N, resumeDir: dir });
    expect(result.steps_run).toBe(0);
    expect(result.final_train_loss).toBe(reference.loss);
    expect(JSON.parse(JSON.stringify(result)).final_train_loss).toBe(reference.loss);
  });

  test('a checkpoint without the loss window (written before it) still resumes', async () => {
    const dir = path.join(tmp, 'old');
    await train({ store, ...base, steps: 120, checkpointDir: dir });
    const file = path.join(dir, 'checkpoint.json');
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(Array.isArray(j.recentLosses)).toBe(true);
    delete j.recentLosses;
    fs.writeFileSync(file, JSON.stringify(j));
    expect(readCheckpoint(dir).step).toBe(120);
    const { result, model } = await train({ store, ...base, steps: N, resumeDir: dir });
    expect(bits(model.params).equals(bits(reference.params))).toBe(true);
    expect(result.steps_run).toBe(10);
    expect(Number.isFinite(result.final_train_loss)).toBe(true);
  });
});
