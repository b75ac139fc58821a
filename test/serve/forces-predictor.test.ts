/**
 * Forces and stress from the serving predictor (issue 24 item 1): concurrent calls asking for
 * forces/stress are merged into native force batches, energy-only calls keep the forward path,
 * and every structure's energy, forces and stress equal loadModel().predict([s], { properties })
 * of that structure alone, bit for bit. PaiNN refuses forces (ERR_GNN_UNSUPPORTED); the force
 * plan stays within planCacheBytes.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { aflowLike, buildStore, qm9Like, type Structure } from '../../src/data';
import { loadSource } from '../../src/data/source';
import { train } from '../../src/train/trainer';
import { loadModel } from '../../src/inference/load-model';
import { createPredictor, type PredictedProperties } from '../../src/serve';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-serve-forces-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const molecule = path.join(tmp, 'mol');
const crystal = path.join(tmp, 'crystal');
let crystals: Structure[] = [];

beforeAll(async () => {
  const mol = await loadSource('qm9-like:400', { graph: 'fc', target: 'U0' });
  await train({ store: mol.store, target: 'U0', model: { kind: 'mpeu', latent: 16, passes: 2 }, policy: 'dynamic', batchSize: 16, steps: 60, atomref: true, checkpointDir: molecule, seed: 3, skipEval: true });
  const cry = await loadSource('aflow-like:60', { graph: 'cutoff:4' });
  crystals = [...aflowLike(8, 21)];
  await train({ store: cry.store, target: cry.store.targetNames[0], model: { kind: 'schnet', latent: 16, passes: 2 }, policy: 'dynamic', batchSize: 8, steps: 10, checkpointDir: crystal, seed: 3, skipEval: true });
}, 300_000);

/** Same bits (NaN-safe, -0 distinguished). */
function sameBits(a: Float64Array | null | undefined, b: Float64Array | null | undefined): boolean {
  if (!a || !b) return a === b;
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function expectEqualAlone(model: ReturnType<typeof loadModel>, s: Structure, got: PredictedProperties, k: number, properties: ('energy' | 'forces' | 'stress')[]): void {
  const ref = model.predict([s], { properties });
  expect(sameBits(got.energy.subarray(k, k + 1), ref.energy)).toBe(true);
  if (properties.includes('forces')) expect(sameBits(got.forces![k], ref.forces![0])).toBe(true);
  else expect(got.forces).toBeUndefined();
  if (properties.includes('stress')) expect(sameBits(got.stress![k], ref.stress![0])).toBe(true);
  else expect(got.stress).toBeUndefined();
}

test('concurrent force calls are merged into force batches; each structure equals loadModel().predict alone, bit for bit', async () => {
  const mols = [...qm9Like(24, 5)];
  const batches: { graphs: number; forces: boolean; requests: number }[] = [];
  const p = await createPredictor(molecule, { maxBatchGraphs: 8, maxQueueDelayMs: 20, onBatch: (b) => batches.push(b) });
  const calls = [mols.slice(0, 3), mols.slice(3, 4), mols.slice(4, 9), mols.slice(9, 12), mols.slice(12, 24)];
  const forceCalls = calls.map((c, i) => p.predict(c, { properties: i % 2 === 0 ? ['energy', 'forces'] : ['forces', 'stress'] }));
  // Energy-only calls in flight at the same time keep the forward path and their answer shape.
  const plain = p.predict(mols.slice(0, 5));
  const named = p.predict(mols.slice(5, 8), { properties: ['energy'] });
  const results = await Promise.all(forceCalls);
  const energies = await plain;
  expect(energies).toBeInstanceOf(Float64Array);
  const namedEnergy = await named;
  expect(namedEnergy.forces).toBeUndefined();
  const s = p.stats();
  expect(s.forceGraphs).toBe(24);
  // Merged: fewer force batches than calls would be without merging (24 graphs, budget 8 graphs).
  expect(s.forceBatches).toBeLessThan(calls.length);
  expect(batches.filter((b) => b.forces).some((b) => b.requests > 1)).toBe(true);
  expect(batches.filter((b) => b.forces).every((b) => b.graphs <= 8)).toBe(true);
  await p.close();
  expect(p.stats().planBytes).toBe(0);

  const model = loadModel(molecule);
  calls.forEach((c, i) => c.forEach((st, k) => expectEqualAlone(model, st, results[i], k, i % 2 === 0 ? ['energy', 'forces'] : ['energy', 'forces', 'stress'])));
  // Molecules: no stress.
  expect(results[1].stress).toEqual([null]);
  // Forces are non-trivial and per atom.
  expect(results[0].forces![0].length).toBe(3 * mols[0].numbers.length);
  expect(Math.max(...results[0].forces![0].map(Math.abs))).toBeGreaterThan(0);
  // The energy-only paths equal the force pass's energies of each structure alone too.
  mols.slice(0, 5).forEach((st, k) => expect(sameBits(energies.subarray(k, k + 1), model.predict([st], { properties: ['energy'] }).energy)).toBe(true));
  mols.slice(5, 8).forEach((st, k) => expect(sameBits(namedEnergy.energy.subarray(k, k + 1), model.predict([st], { properties: ['energy'] }).energy)).toBe(true));
  model.close();
}, 120_000);

test('periodic crystals under a cutoff rule: stress [6] per structure, equal to loadModel().predict alone', async () => {
  expect(crystals.length).toBeGreaterThan(4);
  const picked = crystals.slice(0, 6);
  const p = await createPredictor(crystal, { maxBatchGraphs: 4, maxQueueDelayMs: 20 });
  const [a, b] = await Promise.all([p.predict(picked.slice(0, 2), { properties: ['energy', 'forces', 'stress'] }), p.predict(picked.slice(2), { properties: ['stress'] })]);
  await p.close();
  const model = loadModel(crystal);
  picked.slice(0, 2).forEach((st, k) => expectEqualAlone(model, st, a, k, ['energy', 'forces', 'stress']));
  picked.slice(2).forEach((st, k) => expectEqualAlone(model, st, b, k, ['energy', 'stress']));
  expect(a.stress![0]).toHaveLength(6);
  model.close();
}, 120_000);

test('bad properties lists are ERR_GNN_ARGUMENT; an empty call answers empty lists', async () => {
  const p = await createPredictor(molecule, { warmup: false });
  const s = [...qm9Like(1, 2)];
  await expect(p.predict(s, { properties: ['energy', 'energy'] })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
  await expect(p.predict(s, { properties: [] })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
  await expect(p.predict(s, { properties: ['charge' as 'energy'] })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
  const empty = await p.predict([], { properties: ['forces', 'stress'] });
  expect(empty.energy).toHaveLength(0);
  expect(empty.forces).toEqual([]);
  expect(empty.stress).toEqual([]);
  await p.close();
});

test('the force plan is held within planCacheBytes: a structure whose force plan would not fit is refused before its graph is built', async () => {
  // A limit that holds the energy budget's plan but not a force plan for 29 atoms fully connected (812 edges x (K+1) scalars).
  const probe = await createPredictor(molecule, { maxBatchGraphs: 1, maxBatchNodes: 30, maxBatchEdges: 900, warmup: true });
  const energyBytes = probe.stats().planBytes;
  await probe.close();
  const p = await createPredictor(molecule, { maxBatchGraphs: 1, maxBatchNodes: 30, maxBatchEdges: 900, planCacheBytes: energyBytes + 1024 });
  const big: Structure = { id: 'big', numbers: new Uint8Array(29).fill(6), positions: Float64Array.from({ length: 87 }, (_, k) => (k % 3 === 0 ? 1.5 * Math.floor(k / 3) : 0)), cell: null, pbc: [false, false, false], targets: {} };
  // Energy only: runs on the budget's plan.
  await expect(p.predict([big])).resolves.toHaveLength(1);
  const refused = p.predict([big], { properties: ['forces'] });
  await expect(refused).rejects.toMatchObject({ code: 'ERR_GNN_REQUEST_TOO_LARGE' });
  await expect(refused).rejects.toThrow(/force plan/);
  // A small molecule fits the force budget (scaled down to the limit) and runs.
  const small: Structure[] = [{ id: 'water', numbers: Uint8Array.of(8, 1, 1), positions: Float64Array.of(0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0), cell: null, pbc: [false, false, false], targets: {} }];
  const r = await p.predict(small, { properties: ['forces'] });
  expect(r.forces).toHaveLength(small.length);
  expect(p.stats().planBytes).toBeLessThanOrEqual(2 * (energyBytes + 1024));
  await p.close();
}, 120_000);

test('PaiNN: forces and stress are served by its force pass, equal to loadModel().predict of each structure alone', async () => {
  const ck = path.join(tmp, 'painn');
  const { store } = buildStore([...qm9Like(40, 3)], { graph: { kind: 'fc' }, directions: true });
  await train({ store, target: 'U0', model: { kind: 'painn', latent: 8, passes: 2, basis: 6, readoutHidden: 8 }, policy: 'dynamic', batchSize: 4, steps: 2, seed: 1, skipEval: true, checkpointDir: ck });
  const p = await createPredictor(ck);
  const s = [...qm9Like(2, 9)];
  const r = await p.predict(s, { properties: ['energy', 'forces', 'stress'] });
  const model = loadModel(ck);
  s.forEach((m, k) => {
    const ref = model.predict([m], { properties: ['energy', 'forces', 'stress'] });
    expect(r.energy[k]).toBe(ref.energy[0]);
    expect(Array.from(r.forces![k])).toEqual(Array.from(ref.forces![0]));
    expect(r.stress![k]).toBeNull();
    expect(r.forces![k].some((v) => v !== 0)).toBe(true);
  });
  model.close();
  expect((await p.predict(s, { properties: ['energy'] })).energy).toEqual(r.energy);
  await p.close();
}, 120_000);
