/**
 * PaiNN through the library and the CLI (issue 10): every batching policy
 * trains it, checkpoints name each weight and round-trip into loadModel and
 * the predictor (bitwise), resume is bitwise, the study grid takes it, and the
 * refusals are coded (CUDA, a store without directions).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, structuresFromStore, type GraphStore } from '../../src/data';
import { POLICY_NAMES } from '../../src/batching';
import { train } from '../../src/train/trainer';
import { readCheckpoint } from '../../src/train/checkpoint';
import { loadModel } from '../../src/inference/load-model';
import { createPredictor } from '../../src/serve';
import { runStudy } from '../../src/experiment/study';
import { registerTrainCommand } from '../../src/cli/train';
import { runCli } from '../helpers/cli';

const small = { kind: 'painn' as const, latent: 16, basis: 8 };
let store: GraphStore;
let plain: GraphStore;
const tmp: string[] = [];
const mkdtemp = (tag: string): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `gnnbatch-painn-${tag}-`));
  tmp.push(d);
  return d;
};

beforeAll(async () => {
  store = (await loadSource('qm9-like:160', { graph: 'fc', directions: true })).store;
  plain = (await loadSource('qm9-like:40', { graph: 'fc' })).store;
});
afterAll(() => {
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

test.each(POLICY_NAMES.map((p) => [p]))('policy %s trains PaiNN (finite loss, plans built, fill reported)', async (policy) => {
  const { result } = await train({ store, target: 'U0', model: small, policy, batchSize: 8, steps: 4, seed: 1, skipEval: true });
  expect(result.model).toBe('painn');
  expect(result.loss_curve).toHaveLength(4);
  for (const p of result.loss_curve) expect(Number.isFinite(p.loss)).toBe(true);
  expect(result.compile_count).toBeGreaterThanOrEqual(1);
  expect(result.gflop_per_step).toBeGreaterThan(0);
});

test('PaiNN learns: the training loss falls over 60 steps with atom references', async () => {
  const { result } = await train({ store, target: 'U0', model: small, policy: 'dynamic', batchSize: 16, steps: 60, seed: 2, lr: 1e-3, atomref: true, skipEval: true });
  const first = result.loss_curve.slice(0, 5).reduce((a, p) => a + p.loss, 0) / 5;
  const last = result.loss_curve.slice(-5).reduce((a, p) => a + p.loss, 0) / 5;
  expect(last).toBeLessThan(0.7 * first);
});

test('checkpoint: one safetensors tensor per weight; loadModel, predictAsync and the predictor agree bitwise; resume is bitwise', async () => {
  const dir = mkdtemp('ck');
  const base = { store, target: 'U0', model: small, policy: 'dynamic', batchSize: 8, seed: 5, skipEval: true } as const;
  await train({ ...base, steps: 6, checkpointDir: dir, checkpointEvery: 3 });
  const ck = readCheckpoint(dir);
  expect(ck.config.kind).toBe('painn');
  const names = ck.layout.entries.map((e) => e.name);
  for (const n of ['embed/w', 'filter/w', 'filter/b', 'pass0/message/w1', 'pass2/update/mix', 'pass1/update/w2', 'readout/w2']) expect(names).toContain(n);
  const structures = [...structuresFromStore(store)].slice(0, 12);
  const model = loadModel(dir);
  const a = model.predict(structures);
  const b = await model.predictAsync(structures);
  expect(Array.from(b)).toEqual(Array.from(a));
  const predictor = await createPredictor(dir, { threads: 1 });
  try {
    const c = await Promise.all(structures.map((s) => predictor.predict([s])));
    expect(c.map((x) => x[0])).toEqual(Array.from(a));
  } finally {
    await predictor.close();
  }
  // Resume from step 6 to 10 equals an uninterrupted run of 10 steps.
  const resumed = await train({ ...base, steps: 10, resumeDir: dir });
  const full = await train({ ...base, steps: 10 });
  expect(resumed.result.loss_curve).toEqual(full.result.loss_curve);
});

test('the study grid takes painn beside the other models', async () => {
  const out = mkdtemp('study');
  const outcome = await runStudy({ outDir: out, data: ['qm9-like:120'], models: ['schnet', 'painn'], policies: ['dynamic', 'static-2pow'], batches: [8], reps: 1, steps: 3, evalGraphs: 16, atomref: 'off' });
  const rows = outcome.results.rows;
  expect(rows.filter((r) => r.model === 'painn')).toHaveLength(2);
  for (const r of rows) expect(r.ms_per_step_median).toBeGreaterThan(0);
});

test('refusals are coded: CUDA, and a store built without directions', async () => {
  await expect(train({ store, target: 'U0', model: small, policy: 'dynamic', batchSize: 8, steps: 1, device: 'cuda' })).rejects.toMatchObject({ code: 'ERR_GNN_CUDA_UNSUPPORTED' });
  await expect(train({ store: plain, target: 'U0', model: small, policy: 'dynamic', batchSize: 8, steps: 1 })).rejects.toMatchObject({ code: 'ERR_GNN_DATA_DIRECTIONS' });
});

test('gnnbatch train --model painn builds the store with directions and reports the model', async () => {
  const doc = JSON.parse(await runCli(registerTrainCommand, ['train', 'qm9-like:80', '--model', 'painn', '--latent', '8', '--cutoff', '4', '--shared-filters', '--batch', '8', '--steps', '3', '--json']));
  expect(doc.model).toBe('painn');
  expect(doc.steps_run).toBe(3);
  await expect(runCli(registerTrainCommand, ['train', 'qm9-like:40', '--model', 'painn', '--steps', '1', '--device', 'cuda'])).rejects.toMatchObject({ code: 'ERR_GNN_CUDA_UNSUPPORTED' });
});
