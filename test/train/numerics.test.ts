/**
 * Numerical failure modes of training (issue 14, finding 6): an infinite
 * gradient norm stops the run with a coded error instead of freezing the
 * weights; an infinite target names the right graph and cause; NaN metrics
 * come with a warning; planCacheBytes bounds the exact policy's plan.
 */
import { buildStore, parseGraphRule, qm9Like, type GraphStore, type Structure } from '../../src/data';
import { nativeModel } from '../../src/native';
import { train } from '../../src/train/trainer';
import { PlanCache, buildPlan } from '../../src/train/plan';
import { resolveModelConfig } from '../../src/model/config';

const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 8 }, policy: 'dynamic' as const, batchSize: 8, seed: 2, skipEval: true };
const molecules = (): Structure[] => [...qm9Like(60, 9)];
const storeOf = (s: Structure[]): GraphStore => buildStore(s, { graph: parseGraphRule('fc') }).store;

test('an infinite gradient norm with a finite loss stops training with ERR_GNN_NONFINITE_GRADIENT naming the step and the batch', async () => {
  const api = nativeModel();
  const real = api.trainStep.bind(api);
  let calls = 0;
  const spy = jest.spyOn(api, 'trainStep').mockImplementation((...args: Parameters<typeof api.trainStep>) => {
    const r = real(...args);
    return ++calls === 3 ? { ...r, gradNorm: Infinity } : r;
  });
  try {
    await expect(train({ store: storeOf(molecules()), ...base, steps: 10 })).rejects.toMatchObject({
      name: 'TrainingError',
      code: 'ERR_GNN_NONFINITE_GRADIENT',
      message: expect.stringMatching(/^step 3: the gradient norm is Infinity \(loss [0-9.e+-]+\) on the batch of graphs \d+.*no checkpoint directory was given$/),
    });
    expect(calls).toBe(3); // stopped at once, no further step
  } finally {
    spy.mockRestore();
  }
});

describe('targets', () => {
  test('one infinite train target names that graph and the cause', async () => {
    const s = molecules();
    s[17] = { ...s[17], targets: { ...s[17].targets, U0: Infinity } };
    const split = { train: Int32Array.from({ length: 50 }, (_, i) => i), val: Int32Array.from([50, 51]), test: Int32Array.from([52]) };
    await expect(train({ store: storeOf(s), ...base, steps: 2, split })).rejects.toMatchObject({
      code: 'ERR_GNN_TARGET_NONFINITE',
      message: expect.stringContaining(`graph 17 (${s[17].id}) of the train split has target 'U0' = Infinity`),
    });
  });

  test('a missing train target is ERR_GNN_TARGET_MISSING for that graph', async () => {
    const s = molecules();
    const { U0: _drop, ...rest } = s[5].targets;
    s[5] = { ...s[5], targets: rest };
    const split = { train: Int32Array.from({ length: 50 }, (_, i) => i), val: Int32Array.from([50]), test: Int32Array.from([51]) };
    await expect(train({ store: storeOf(s), ...base, steps: 2, split })).rejects.toMatchObject({ code: 'ERR_GNN_TARGET_MISSING', message: expect.stringContaining('graph 5 ') });
  });

  test('a validation graph without a finite target gives NaN RMSE with a warning, not silently', async () => {
    const s = molecules();
    s[55] = { ...s[55], targets: { ...s[55].targets, U0: NaN } };
    const split = { train: Int32Array.from({ length: 50 }, (_, i) => i), val: Int32Array.from([54, 55]), test: Int32Array.from([56]) };
    const { result } = await train({ store: storeOf(s), ...base, skipEval: false, steps: 2, split });
    expect(Number.isNaN(result.val_rmse)).toBe(true);
    expect(Number.isFinite(result.test_rmse)).toBe(true);
    expect(result.warnings).toEqual([expect.stringContaining(`1 graph(s) of the validation split have no finite value for 'U0' (first: graph 55`)]);
  });
});

describe('planCacheBytes', () => {
  const config = resolveModelConfig({ kind: 'schnet', latent: 8 });
  const shape = { nodes: 200, edges: 3000, graphs: 8 };

  test('the exact policy grows its capacity plan only as far as the limit allows', () => {
    const exactBytes = buildPlan(config, shape).bytes;
    const cache = new PlanCache(config, 'float32', exactBytes, true, true);
    const plan = cache.get(shape);
    expect(plan.capacity).toEqual(shape); // no 25% headroom: it would not fit
    expect(cache.stats().bytes).toBeLessThanOrEqual(exactBytes);
  });

  test('a plan that alone exceeds the limit is ERR_GNN_PLAN_TOO_LARGE, in the cache and in train()', async () => {
    const cache = new PlanCache(config, 'float32', 1000, true, true);
    expect(() => cache.get(shape)).toThrow(expect.objectContaining({ code: 'ERR_GNN_PLAN_TOO_LARGE' }));
    await expect(train({ store: storeOf(molecules()), ...base, policy: 'exact', steps: 2, planCacheBytes: 1000 })).rejects.toMatchObject({
      code: 'ERR_GNN_PLAN_TOO_LARGE',
      message: expect.stringMatching(/more than planCacheBytes = 1000/),
    });
  });
});
