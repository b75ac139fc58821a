/**
 * Training on stress (issue 22; docs/forces.md "Training on energies and
 * forces"): the batch loss of the training path (forceBatchLossAndGrad with
 * packedStressTargets) is wE MSE(energy) + wF MSE(forces) + wS MSE(stress
 * components) computed from the force pass, its gradient equals central
 * finite differences (float64), data without stress is refused with a code,
 * and a short aflow-like run with a stress weight ends with a lower stress
 * error than the same run without it.
 */
import { native, nativeModel } from '../../src/native';
import { aflowLike, buildStore, packerArrays, parseGraphRule, qm9Like, targetColumn } from '../../src/data';
import type { BatchSpec } from '../../src/batching';
import { resolveModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { ForceEngine, evaluateForces, forceBatchLossAndGrad, packedForceTargets, packedStressTargets, resolveForceWeights, stressGraphCount, volumeOf } from '../../src/train/force-training';
import { train } from '../../src/train/trainer';
import { centralDifferences, spreadIndices } from '../helpers/gradcheck';
import { forceTrainingBatch } from '../helpers/force-batch';

describe('the stress term of the training loss (float64)', () => {
  test.each(['schnet', 'mpeu'] as const)('%s: loss = wE MSE_E + wF MSE_F + wS MSE_S, gradient = finite differences', (kind) => {
    const { store } = buildStore([...aflowLike(3, 11)], { graph: parseGraphRule('cutoff:3.5'), directions: true });
    expect(stressGraphCount(store)).toBe(3);
    const config = resolveModelConfig({ kind, latent: 5, passes: 2, basis: 8, rbfSpacing: 0.45, rbfGamma: 2, numClasses: 90, readoutHidden: 4 });
    const { layout, params, target, ids, nodes, shape, plan, inputs } = forceTrainingBatch(store, config, 9);
    const handle = plan.handle;
    const s = 4; // the energy std: data forces and stress scaled by 1/s
    const ft = packedForceTargets(store, ids, shape, 1 / s);
    const st = packedStressTargets(store, ids, shape, 1 / s);
    for (let k = 0; k < 3; k++) {
      expect(st.volumes[k]).toBeCloseTo(volumeOf(store, ids[k]), 12);
      expect(st.volumes[k]).toBeGreaterThan(0);
      expect(st.targets[6 * k + 3]).toBeCloseTo((store.stress as Float32Array)[6 * ids[k] + 3] / s, 12);
    }
    expect(Number.isNaN(st.targets[18])).toBe(true);
    // Graph 1 without stress: it weighs 0 in the stress term.
    st.targets.fill(NaN, 6, 12);
    const weights = { energy: 0.2, forces: 0.5, stress: 30 }; // stress in std units is small (sigma / s): a weight that makes it count
    const grad = new Float64Array(params.length);
    const r = forceBatchLossAndGrad(plan, inputs, shape, params, ft, weights, grad, undefined, st);
    expect(r.stressGraphs).toBe(2);
    const energy = new Float64Array(shape.graphs), forces = new Float64Array(3 * shape.nodes), stress = new Float64Array(6 * shape.graphs);
    native().forcesStep(handle, inputs, shape, params, energy, forces, stress, Float64Array.from(st.volumes, (v) => v || 1));
    let se = 0, sf = 0, ss = 0;
    for (let g = 0; g < 3; g++) se += (energy[g] - target[g]) ** 2;
    for (let i = 0; i < 3 * nodes; i++) sf += (forces[i] - ft[i]) ** 2;
    for (const g of [0, 2]) for (let v = 0; v < 6; v++) ss += (stress[6 * g + v] - st.targets[6 * g + v]) ** 2;
    const expected = 0.2 * (se / 3) + 0.5 * (sf / (3 * nodes)) + 30 * (ss / 12);
    expect(Math.abs(r.loss - expected)).toBeLessThan(1e-12 * Math.max(1, expected));
    expect(Math.abs(r.stressMse - ss / 12)).toBeLessThan(1e-12 * Math.max(1e-6, ss / 12));
    const lossAt = (p: Float64Array) => forceBatchLossAndGrad(plan, inputs, shape, p, ft, weights, new Float64Array(p.length), undefined, st).loss;
    expect(lossAt(params)).toBe(r.loss);
    // The stress term's own gradient must matter: it changes the gradient.
    const gNoStress = new Float64Array(params.length);
    forceBatchLossAndGrad(plan, inputs, shape, params, ft, { ...weights, stress: 0 }, gNoStress);
    let diff = 0;
    for (let i = 0; i < grad.length; i++) diff = Math.max(diff, Math.abs(grad[i] - gNoStress[i]));
    expect(diff).toBeGreaterThan(1e-6);
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

describe('stress weights and data', () => {
  test('a stress weight is accepted; all-zero weights are refused', () => {
    expect(resolveForceWeights({ stress: 1 })).toEqual({ energy: 0.01, forces: 0.99, stress: 1 });
    expect(resolveForceWeights({ energy: 0, forces: 0, stress: 1 })).toEqual({ energy: 0, forces: 0, stress: 1 });
    expect(() => resolveForceWeights({ energy: 0, forces: 0, stress: 0 })).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
    expect(() => resolveForceWeights({ stress: -1 })).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
  });

  test('data without stress is refused with ERR_GNN_DATA_TARGET naming the problem', async () => {
    const { store } = buildStore([...qm9Like(8, 2)], { graph: parseGraphRule('fc'), directions: true });
    expect(stressGraphCount(store)).toBe(0);
    await expect(
      train({ store, target: 'U0', model: { kind: 'schnet', latent: 8, passes: 1, basis: 8 }, policy: 'static-64', batchSize: 4, steps: 2, seed: 1, forces: { stress: 0.5 } }),
    ).rejects.toMatchObject({ code: 'ERR_GNN_DATA_TARGET', message: expect.stringMatching(/no stress/) });
    const config = resolveModelConfig({ kind: 'schnet', latent: 8, passes: 1, basis: 8 });
    const P = paramLayout(config).total;
    const state = { params: new Float32Array(P), m: new Float32Array(P), v: new Float32Array(P) };
    expect(() => new ForceEngine(store, packerArrays(store, new Float64Array(store.numGraphs)), config, state, { weights: { energy: 0, forces: 1, stress: 1 }, targetStd: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_GNN_DATA_TARGET' }),
    );
  });
});

describe('training on stress (aflow-like)', () => {
  test('the stress term drives the stress error down: the same run without it ends 2x higher', () => {
    // Eight crystals fitted by the production engine (ForceEngine: float32 forceLossAndGrad + Adam) for
    // 300 steps, with and without a stress weight; errors in eV/Å^3 from evaluateForces (the force pass).
    const { store } = buildStore([...aflowLike(8, 5)], { graph: parseGraphRule('cutoff:4'), directions: true });
    const energy = targetColumn(store, 'energy');
    const mean = energy.reduce((a, b) => a + b, 0) / energy.length;
    const std = Math.sqrt(energy.reduce((a, b) => a + (b - mean) ** 2, 0) / energy.length);
    const arrays = packerArrays(store, energy.map((y) => (y - mean) / std));
    const ids = Int32Array.from({ length: store.numGraphs }, (_, i) => i);
    const shape = { nodes: store.nodeOffset[store.numGraphs], edges: store.edgeOffset[store.numGraphs], graphs: store.numGraphs };
    const config = resolveModelConfig({ kind: 'schnet', latent: 16, passes: 2, basis: 24, numClasses: 100 });
    const P = paramLayout(config).total;
    const fit = (stress: number): { before: number; after: number; force: number } => {
      const state = { params: initParams(paramLayout(config), 1, 'float32') as Float32Array, m: new Float32Array(P), v: new Float32Array(P) };
      const evalStress = () => evaluateForces({ store, arrays, ids, config, params: state.params, targetMean: mean, targetStd: std, energy, batchSize: 8 });
      const before = evalStress().stress_rmse;
      const engine = new ForceEngine(store, arrays, config, state, { weights: { energy: 0.1, forces: 0.9, stress }, targetStd: std });
      for (let i = 0; i < 300; i++)
        engine.step({ graphIds: ids, shape } as BatchSpec, i, { lr: 3e-3, bc1: 1 - 0.9 ** (i + 1), bc2: 1 - 0.999 ** (i + 1), clipNorm: 0 }, process.hrtime.bigint());
      if (stress > 0) expect(engine.last?.stressGraphs).toBe(8);
      engine.release();
      const m = evalStress();
      return { before, after: m.stress_rmse, force: m.force_rmse };
    };
    const without = fit(0);
    const withStress = fit(1000);
    // eslint-disable-next-line no-console
    console.log(`aflow-like:8 stress RMSE (eV/Å^3): init ${without.before}, 300 steps without the stress term ${without.after}, with wS = 1000 ${withStress.after}; force RMSE ${without.force} / ${withStress.force}`);
    expect(withStress.before).toBe(without.before);
    expect(withStress.after).toBeLessThan(0.5 * without.after);
    expect(withStress.after).toBeLessThan(0.2 * withStress.before);
  }, 120_000);
});
