/**
 * The run set-up train(), profileSteps() and recommend's calibration share
 * (src/train/run-setup.ts): the split, targets, configuration, parameters,
 * policy and plan cache it derives are the ones each caller used to derive
 * on its own, and a timing run may have graphs without targets.
 */
import { loadSource, splitGraphs, targetColumn, DEFAULT_SEED, DEFAULT_SPLIT_SEED, type GraphStore } from '../../src/data';
import { modelConfigForStore } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { createPolicy, sizesOf } from '../../src/batching';
import { adamStepArgs, prepareRun } from '../../src/train/run-setup';
import { prepareTargets } from '../../src/train/targets';

let store: GraphStore;
beforeAll(async () => {
  store = (await loadSource('qm9-like:80', { graph: 'fc' })).store;
});

describe('prepareRun', () => {
  it('derives the default split, the store\'s configuration, seeded parameters and the policy\'s batches', () => {
    expect(DEFAULT_SEED).toBe(42);
    expect(DEFAULT_SPLIT_SEED).toBe(42);
    const r = prepareRun({ store, model: { kind: 'schnet', latent: 8 }, policy: 'dynamic', batchSize: 4 });
    expect(r.target).toBe(store.targetNames[0]);
    expect(r.seed).toBe(42);
    const split = splitGraphs(store.numGraphs, { seed: 42 });
    expect(Array.from(r.split.train)).toEqual(Array.from(split.train));
    expect(r.config).toEqual(modelConfigForStore(store, { kind: 'schnet', latent: 8 }));
    expect(Array.from(r.state.params)).toEqual(Array.from(initParams(paramLayout(r.config), 42, 'float32')));
    for (const a of [r.state.grads, r.state.m, r.state.v]) expect(a.every((x) => x === 0)).toBe(true);
    const ref = createPolicy('dynamic', sizesOf(store), split.train, 4, 42, {});
    for (let i = 0; i < 5; i++) expect(Array.from(r.policy.next().graphIds)).toEqual(Array.from(ref.next().graphIds));
    // Standardised targets on the train split: mean 0.
    let s = 0;
    for (const g of r.split.train) s += r.arrays.target[g];
    expect(Math.abs(s / r.split.train.length)).toBeLessThan(1e-9);
  });

  it('plan reuse is the policy\'s: exact grows one plan, the others cache per shape', () => {
    const exact = prepareRun({ store, model: { kind: 'schnet', latent: 8 }, policy: 'exact', batchSize: 4 });
    const a = exact.policy.next(), b = exact.policy.next();
    exact.cache.get(a.shape);
    exact.cache.get(b.shape);
    expect(exact.cache.stats().size).toBe(1);
    exact.cache.close();
  });

  it('checks its arguments with codes', () => {
    expect(() => prepareRun({ store, policy: 'dynamic', batchSize: 1, who: 'profile' })).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT', message: expect.stringMatching(/^profile: batch size must be an integer >= 2/) }));
    expect(() => prepareRun({ store, policy: 'dynamic', batchSize: 4, split: { train: new Int32Array(0), val: new Int32Array(0), test: new Int32Array(0) } })).toThrow(/the train split is empty/);
  });

  it('adamStepArgs: bias corrections of the native optimiser (beta1 0.9, beta2 0.999)', () => {
    expect(adamStepArgs(0, 1e-3)).toEqual({ lr: 1e-3, bc1: 1 - 0.9, bc2: 1 - 0.999, clipNorm: 0 });
    const a = adamStepArgs(9, 2e-4, 5);
    expect(a.bc1).toBeCloseTo(1 - 0.9 ** 10, 15);
    expect(a.bc2).toBeCloseTo(1 - 0.999 ** 10, 15);
    expect(a.clipNorm).toBe(5);
  });
});

describe('targets of a timing run (missing: zero)', () => {
  it('train graphs without a finite target train on the mean; training itself refuses them', () => {
    const target = store.targetNames[0];
    const T = store.targetNames.length;
    const t = store.targetNames.indexOf(target);
    const split = splitGraphs(store.numGraphs, { seed: 42 });
    const g0 = split.train[0], g1 = split.train[1];
    const saved = [store.targets[g0 * T + t], store.targets[g1 * T + t]];
    store.targets[g0 * T + t] = NaN;
    store.targets[g1 * T + t] = Infinity;
    try {
      expect(() => prepareTargets(store, target, split)).toThrow(expect.objectContaining({ code: 'ERR_GNN_TARGET_MISSING' }));
      const p = prepareTargets(store, target, split, { missing: 'zero' });
      expect(p.arrays.target[g0]).toBe(0);
      expect(p.arrays.target[g1]).toBe(0);
      const col = targetColumn(store, target);
      const finite = Array.from(split.train).filter((g) => Number.isFinite(col[g]));
      const mean = finite.reduce((s, g) => s + col[g], 0) / finite.length;
      expect(p.stats.mean).toBeCloseTo(mean, 9);
      expect(p.arrays.target[split.train[2]]).toBeCloseTo((col[split.train[2]] - p.stats.mean) / p.stats.std, 12);
      expect(() => prepareTargets(store, target, split, { missing: 'zero', atomref: true })).toThrow(expect.objectContaining({ code: 'ERR_GNN_TARGET_MISSING' }));
    } finally {
      store.targets[g0 * T + t] = saved[0];
      store.targets[g1 * T + t] = saved[1];
    }
  });
});
