/**
 * Force training (issue 22 items 3 and 5): the combined loss's gradient
 * (lossAndGrad + forceGrad) against central finite differences of the loss
 * on a tiny float64 case, the loss weights, and a short qm9-like run where
 * the force loss falls, with force metrics in the result and the checkpoint.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../../src/native';
import { buildStore, parseGraphRule, qm9Like } from '../../src/data';
import { resolveModelConfig } from '../../src/model/config';
import { nativeModel } from '../../src/native';
import { DEFAULT_FORCE_WEIGHTS, forceBatchLossAndGrad, packedForceTargets, resolveForceWeights } from '../../src/train/force-training';
import { train } from '../../src/train/trainer';
import { readCheckpoint } from '../../src/train/checkpoint';
import { centralDifferences, spreadIndices } from '../helpers/gradcheck';
import { forceTrainingBatch } from '../helpers/force-batch';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-forces-train-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('combined loss gradient vs finite differences (float64)', () => {
  test.each(['schnet', 'mpeu'] as const)('%s: d(wE MSE_E + wF MSE_F)/dparams', (kind) => {
    const { store } = buildStore([...qm9Like(3, 5)], { graph: parseGraphRule('fc'), directions: true });
    const config = resolveModelConfig({ kind, latent: 5, passes: 2, basis: 8, rbfSpacing: 0.6, rbfGamma: 2, numClasses: 20, readoutHidden: 4, readout: 'sum', aggregation: 'sum' });
    const { layout, params, target, ids, nodes, shape, plan, inputs } = forceTrainingBatch(store, config, 7);
    const handle = plan.handle;
    // Forces of the data scaled to the network's size, std 4 (so the scaling is exercised).
    const ft = packedForceTargets(store, ids, shape, 1 / 4);
    for (let i = 0; i < 3 * nodes; i++) expect(Number.isNaN(ft[i])).toBe(false);
    for (let i = 3 * nodes; i < ft.length; i++) expect(Number.isNaN(ft[i])).toBe(true);
    const weights = { energy: 0.3, forces: 0.7, stress: 0 };
    const grad = new Float64Array(params.length);
    // One structure without forces: its atoms weigh 0.
    const n0 = store.nodeOffset[1];
    ft.fill(NaN, 0, 3 * n0);
    const r = forceBatchLossAndGrad(plan, inputs, shape, params, ft, weights, grad);
    expect(r.forceAtoms).toBe(nodes - n0);
    // The loss is wE MSE(energy) + wF MSE(force components), computed here from the force pass.
    const energy = new Float64Array(shape.graphs), forces = new Float64Array(3 * shape.nodes);
    native().forcesStep(handle, inputs, shape, params, energy, forces);
    let se = 0, sf = 0;
    for (let g = 0; g < 3; g++) se += (energy[g] - target[g]) ** 2;
    for (let i = 3 * n0; i < 3 * nodes; i++) sf += (forces[i] - ft[i]) ** 2;
    const expected = 0.3 * (se / 3) + 0.7 * (sf / (3 * (nodes - n0)));
    expect(Math.abs(r.loss - expected)).toBeLessThan(1e-12 * Math.max(1, expected));
    const lossAt = (p: Float64Array) => forceBatchLossAndGrad(plan, inputs, shape, p, ft, weights, new Float64Array(p.length)).loss;
    expect(lossAt(params)).toBe(r.loss);
    let worst = 0, scale = 0;
    // Up to 4 entries of every parameter block.
    for (const { index, fd } of centralDifferences(lossAt, params, spreadIndices(layout.entries, 4), 1e-6)) {
      worst = Math.max(worst, Math.abs(fd - grad[index]));
      scale = Math.max(scale, Math.abs(fd));
    }
    expect(scale).toBeGreaterThan(1e-3);
    expect(worst / scale).toBeLessThan(1e-6);
    nativeModel().releasePlan(handle);
  });
});

describe('loss weights', () => {
  test('defaults and checks', () => {
    expect(resolveForceWeights()).toEqual({ energy: 0.01, forces: 0.99, stress: 0 });
    expect(DEFAULT_FORCE_WEIGHTS.energy + DEFAULT_FORCE_WEIGHTS.forces).toBeCloseTo(1, 12);
    expect(resolveForceWeights({ energy: 1, forces: 100 })).toEqual({ energy: 1, forces: 100, stress: 0 });
    expect(() => resolveForceWeights({ forces: -1 })).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
    expect(() => resolveForceWeights({ energy: 0, forces: 0 })).toThrow(/nothing to train/);
    expect(resolveForceWeights({ stress: 1 })).toEqual({ energy: 0.01, forces: 0.99, stress: 1 }); // stress training: test/model/stress-train*.test.ts
  });
});

describe('training on energies and forces (qm9-like)', () => {
  test('the force loss falls; force metrics in the result and the checkpoint', async () => {
    const { store } = buildStore([...qm9Like(64, 3)], { graph: parseGraphRule('fc'), directions: true });
    const dir = path.join(tmp, 'ck');
    const { result } = await train({
      store, target: 'U0', atomref: true, model: { kind: 'schnet', latent: 16, passes: 2, basis: 24, readout: 'sum', aggregation: 'sum' },
      policy: 'static-64', batchSize: 8, steps: 60, lr: 3e-3, schedule: 'constant', seed: 1,
      forces: { energy: 0.01, forces: 0.99 }, checkpointDir: dir,
    });
    const curve = result.loss_curve.map((p) => p.loss);
    const head = curve.slice(0, 5).reduce((a, b) => a + b, 0) / 5;
    const tail = curve.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(tail).toBeLessThan(0.6 * head);
    const m = result.force_training;
    expect(m).toBeDefined();
    expect(m?.weights).toEqual({ energy: 0.01, forces: 0.99, stress: 0 });
    expect(m?.test?.force_rmse).toBeGreaterThan(0);
    expect(Number.isFinite(m?.test?.energy_mae_per_atom)).toBe(true);
    expect(Number.isNaN(m?.test?.stress_rmse)).toBe(true);
    const ck = readCheckpoint(dir);
    expect(ck.forceTraining?.weights).toEqual({ energy: 0.01, forces: 0.99, stress: 0 });
    expect(ck.forceTraining?.test?.force_rmse).toBe(m?.test?.force_rmse);
  }, 120_000);
});
