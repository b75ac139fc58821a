/** The training engine end to end (issue 5): every policy, resume, determinism, checkpoints, inference. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, qm9Like, type GraphStore } from '../../src/data';
import { POLICY_NAMES } from '../../src/batching';
import { train } from '../../src/train/trainer';
import { readSafetensors } from '../../src/train/safetensors';
import { loadModel } from '../../src/inference/load-model';
import { readCheckpoint } from '../../src/train/checkpoint';
import { predictGraphs } from '../../src/train/evaluate';
import { storeArraysFor } from '../../src/data';

let store: GraphStore;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-train-'));

beforeAll(async () => {
  store = (await loadSource('qm9-like:400', { graph: 'fc' })).store;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('every policy trains both models', () => {
  it.each(POLICY_NAMES.flatMap((p) => (['mpeu', 'schnet'] as const).map((m) => [p, m] as const)))('%s / %s', async (policy, kind) => {
    const { result } = await train({ store, target: 'U0', model: { kind, latent: 16 }, policy, batchSize: 8, steps: 6, seed: 1 });
    expect(result.steps).toBe(6);
    expect(result.loss_curve.length).toBeGreaterThan(0);
    for (const p of result.loss_curve) expect(Number.isFinite(p.loss)).toBe(true);
    expect(Number.isFinite(result.test_rmse)).toBe(true);
    expect(result.compile_count).toBeGreaterThanOrEqual(1);
    if (policy === 'dynamic' || policy === 'packed' || policy === 'static-constant') expect(result.compile_count).toBe(1);
    expect(result.node_fill).toBeGreaterThan(0);
    expect(result.node_fill).toBeLessThanOrEqual(1);
    expect(result.ms_per_step_median).toBeGreaterThan(0);
  });
});

describe('determinism and resume', () => {
  const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 16 }, policy: 'static-64' as const, batchSize: 8, seed: 3, lr: 1e-3 };

  it('same seed gives bitwise identical loss curves', async () => {
    const a = await train({ store, ...base, steps: 12 });
    const b = await train({ store, ...base, steps: 12 });
    expect(a.result.loss_curve).toEqual(b.result.loss_curve);
    expect(Buffer.from(a.model.params.buffer).equals(Buffer.from(b.model.params.buffer))).toBe(true);
  });

  it('resume continues bitwise identically to an uninterrupted run', async () => {
    const full = await train({ store, ...base, steps: 16 });
    const dir = path.join(tmp, 'ck');
    await train({ store, ...base, steps: 7, checkpointDir: dir });
    const resumed = await train({ store, ...base, steps: 16, resumeDir: dir });
    expect(resumed.result.steps_run).toBe(9);
    expect(resumed.result.loss_curve).toEqual(full.result.loss_curve);
    expect(Buffer.from(resumed.model.params.buffer).equals(Buffer.from(full.model.params.buffer))).toBe(true);
  });

  it('async steps (worker thread) give the same bits as sync steps', async () => {
    const a = await train({ store, ...base, steps: 8 });
    const b = await train({ store, ...base, steps: 8, asyncSteps: true });
    expect(b.result.loss_curve).toEqual(a.result.loss_curve);
    expect(Buffer.from(a.model.params.buffer).equals(Buffer.from(b.model.params.buffer))).toBe(true);
  });

  it('refuses to resume with another configuration', async () => {
    const dir = path.join(tmp, 'ck2');
    await train({ store, ...base, steps: 3, checkpointDir: dir });
    await expect(train({ store, ...base, batchSize: 16, steps: 6, resumeDir: dir })).rejects.toThrow(/batch size/);
  });
});

describe('device selection', () => {
  it('auto falls back to the CPU; cuda without a GPU fails with a clear code', async () => {
    const { native } = await import('../../src/native');
    const info = native().info();
    const { result } = await train({ store, target: 'U0', model: { kind: 'schnet', latent: 8 }, policy: 'dynamic', batchSize: 8, steps: 2, device: 'auto', skipEval: true });
    expect(result.device).toBe(info.cuda.devices > 0 ? 'cuda' : 'cpu');
    if (info.cuda.devices === 0) {
      await expect(train({ store, target: 'U0', policy: 'dynamic', batchSize: 8, steps: 2, device: 'cuda' })).rejects.toMatchObject({
        code: info.cuda.compiled ? 'ERR_GNN_NO_DEVICE' : 'ERR_GNN_NO_CUDA',
      });
    }
  });
});

describe('checkpoints and inference', () => {
  it('writes named safetensors tensors and predicts new structures like evaluation does', async () => {
    const dir = path.join(tmp, 'model');
    const { model } = await train({ store, target: 'U0', model: { kind: 'schnet', latent: 16 }, policy: 'dynamic', batchSize: 8, steps: 5, seed: 2, checkpointDir: dir });
    const st = readSafetensors(readCheckpoint(dir).modelFile);
    expect(st.tensors.get('embed/w')?.shape).toEqual([model.config.numClasses, 16]);
    expect(st.tensors.get('readout/b2')?.shape).toEqual([1]);
    expect(st.tensors.size).toBe(model.layout.entries.length);
    const loaded = loadModel(dir);
    const structures = [...qm9Like(400, 42)].slice(0, 10);
    const pred = loaded.predict(structures, { batchSize: 4 });
    const arrays = storeArraysFor(store, 'U0', { mean: model.targetMean, std: model.targetStd });
    const ids = Int32Array.from({ length: 10 }, (_, i) => i);
    const ref = predictGraphs({ store, arrays, ids, config: model.config, params: model.params, targetMean: model.targetMean, targetStd: model.targetStd, batchSize: 4 });
    for (let i = 0; i < 10; i++) expect(pred[i]).toBeCloseTo(ref[i], 3);
    // The async path (worker threads, queued) gives the same numbers, concurrently called.
    const [p1, p2] = await Promise.all([loaded.predictAsync(structures, { batchSize: 4 }), loaded.predictAsync(structures.slice(0, 3))]);
    for (let i = 0; i < 10; i++) expect(p1[i]).toBe(pred[i]);
    for (let i = 0; i < 3; i++) expect(p2[i]).toBeCloseTo(pred[i], 4);
  });

  it('rejects a missing checkpoint directory with a clear error', () => {
    expect(() => loadModel(path.join(tmp, 'nope'))).toThrow(/checkpoint\.json missing/);
  });
});

describe('it learns', () => {
  it('MPEU on qm9-like: validation error far below the target std, and the network learns the residual', async () => {
    const { result } = await train({ store, target: 'U0', model: { kind: 'mpeu', latent: 32 }, policy: 'dynamic', batchSize: 16, steps: 300, seed: 5, lr: 1e-3, schedule: 'cosine', atomref: true });
    expect(result.atomref).toBe(true);
    expect(result.val_rmse).toBeLessThan(0.05 * result.target_std);
    const first = result.loss_curve.slice(0, 10).reduce((s, p) => s + p.loss, 0) / 10;
    expect(result.final_train_loss).toBeLessThan(0.8 * first);
  });
});
