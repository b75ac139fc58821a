/**
 * PaiNN trains on forces (docs/painn.md, docs/forces.md; its double backward
 * is program_painn.h's painnForwardTangent / painnBackwardDual): the training
 * path's batch loss (forceBatchLossAndGrad, energy + forces + stress) equals
 * central differences in float64, and short train() runs on generated data
 * lower the force loss (qm9-like) and, with a stress weight, the stress error
 * (aflow-like, the production ForceEngine), with force metrics in the result;
 * `gnnbatch train --model painn --forces --stress-weight` end to end.
 */
import { nativeModel } from '../../src/native';
import { aflowLike, buildStore, packerArrays, parseGraphRule, qm9Like, targetColumn } from '../../src/data';
import type { BatchSpec } from '../../src/batching';
import { resolveModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { ForceEngine, evaluateForces, forceBatchLossAndGrad, packedForceTargets, packedStressTargets } from '../../src/train/force-training';
import { train } from '../../src/train/trainer';
import { centralDifferences, spreadIndices } from '../helpers/gradcheck';
import { registerTrainCommand } from '../../src/cli/train';
import { runCli } from '../helpers/cli';
import { forceTrainingBatch } from '../helpers/force-batch';

describe('PaiNN: the training loss on energies, forces and stress (float64)', () => {
  test('its gradient equals central differences for every parameter block', () => {
    const { store } = buildStore([...aflowLike(3, 11)], { graph: parseGraphRule('cutoff:3.5'), directions: true });
    const config = resolveModelConfig({ kind: 'painn', latent: 5, passes: 2, basis: 6, cutoff: 3.2, numClasses: 90, readoutHidden: 4 });
    const { layout, params, target, ids, nodes, shape, plan, inputs } = forceTrainingBatch(store, config, 9);
    const handle = plan.handle;
    const s = 4;
    const ft = packedForceTargets(store, ids, shape, 1 / s);
    const st = packedStressTargets(store, ids, shape, 1 / s);
    const weights = { energy: 0.2, forces: 0.5, stress: 30 };
    const grad = new Float64Array(params.length);
    const r = forceBatchLossAndGrad(plan, inputs, shape, params, ft, weights, grad, undefined, st);
    expect(r.stressGraphs).toBe(3);
    expect(r.loss).toBeGreaterThan(0);
    const loss = (p: Float64Array): number => forceBatchLossAndGrad(plan, inputs, shape, p, ft, weights, new Float64Array(p.length), undefined, st).loss;
    let scale = 0;
    for (const g of grad) scale = Math.max(scale, Math.abs(g));
    const bad: string[] = [];
    for (const { index, fd } of centralDifferences(loss, params, spreadIndices(layout.entries, 3)))
      if (!(Math.abs(fd - grad[index]) <= 1e-6 * scale + 1e-6 * Math.abs(fd))) bad.push(`${index}: fd ${fd} grad ${grad[index]}`);
    expect(bad).toEqual([]);
    nativeModel().releasePlan(handle);
  });
});

describe('PaiNN train() on forces', () => {
  const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;

  test('the force loss falls on qm9-like; force metrics in the result', async () => {
    const { store } = buildStore([...qm9Like(48, 3)], { graph: parseGraphRule('fc'), directions: true });
    const { result } = await train({
      store, target: 'U0', atomref: true, model: { kind: 'painn', latent: 16, passes: 2, basis: 12 },
      policy: 'static-64', batchSize: 8, steps: 60, lr: 3e-3, schedule: 'constant', seed: 1, forces: { energy: 0.01, forces: 0.99 },
    });
    const curve = result.loss_curve.map((p) => p.loss);
    expect(curve.every(Number.isFinite)).toBe(true);
    expect(mean(curve.slice(-5))).toBeLessThan(0.6 * mean(curve.slice(0, 5)));
    const m = result.force_training;
    expect(m?.weights).toEqual({ energy: 0.01, forces: 0.99, stress: 0 });
    expect(m?.test?.force_rmse).toBeGreaterThan(0);
    expect(Number.isFinite(m?.test?.energy_mae_per_atom)).toBe(true);
  }, 60_000);

  test('with a stress weight on aflow-like, the stress error ends lower than without it (ForceEngine)', () => {
    const { store } = buildStore([...aflowLike(8, 5)], { graph: parseGraphRule('cutoff:4'), directions: true });
    const energy = targetColumn(store, 'energy');
    const mu = energy.reduce((a, b) => a + b, 0) / energy.length;
    const std = Math.sqrt(energy.reduce((a, b) => a + (b - mu) ** 2, 0) / energy.length);
    const arrays = packerArrays(store, energy.map((y) => (y - mu) / std));
    const ids = Int32Array.from({ length: store.numGraphs }, (_, i) => i);
    const shape = { nodes: store.nodeOffset[store.numGraphs], edges: store.edgeOffset[store.numGraphs], graphs: store.numGraphs };
    const config = resolveModelConfig({ kind: 'painn', latent: 12, passes: 2, basis: 10, cutoff: 4, numClasses: 100 });
    const P = paramLayout(config).total;
    const fit = (stress: number): { before: number; after: number } => {
      const state = { params: initParams(paramLayout(config), 1, 'float32') as Float32Array, m: new Float32Array(P), v: new Float32Array(P) };
      const evalStress = () => evaluateForces({ store, arrays, ids, config, params: state.params, targetMean: mu, targetStd: std, energy, batchSize: 8 });
      const before = evalStress().stress_rmse;
      const engine = new ForceEngine(store, arrays, config, state, { weights: { energy: 0.1, forces: 0.9, stress }, targetStd: std });
      for (let i = 0; i < 150; i++)
        engine.step({ graphIds: ids, shape } as BatchSpec, i, { lr: 3e-3, bc1: 1 - 0.9 ** (i + 1), bc2: 1 - 0.999 ** (i + 1), clipNorm: 0 }, process.hrtime.bigint());
      if (stress > 0) expect(engine.last?.stressGraphs).toBe(8);
      engine.release();
      return { before, after: evalStress().stress_rmse };
    };
    const without = fit(0);
    const withStress = fit(1000);
    expect(withStress.before).toBe(without.before);
    expect(withStress.after).toBeLessThan(0.7 * without.after);
    expect(withStress.after).toBeLessThan(0.5 * withStress.before);
  }, 60_000);
});

test('gnnbatch train --model painn --forces --stress-weight: force and stress metrics in the JSON document', async () => {
  const doc = JSON.parse(
    await runCli(registerTrainCommand, ['train', 'aflow-like:40', '--model', 'painn', '--latent', '8', '--policy', 'static-64', '--batch', '8', '--steps', '6', '--graph', 'cutoff:4', '--forces', '--stress-weight', '100', '--json']),
  );
  expect(doc.force_training.weights).toEqual({ energy: 0.01, forces: 0.99, stress: 100 });
  expect(doc.force_training.test.stress_structures).toBeGreaterThan(0);
  for (const k of ['energy_mae', 'force_mae', 'force_rmse', 'stress_rmse']) expect(Number.isFinite(doc.force_training.test[k])).toBe(true);
}, 60_000);
