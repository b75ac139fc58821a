/** Native training steps are bitwise identical across runs and thread counts. */
import { native, nativeModel } from '../../src/native';
import { resolveModelConfig, type ModelKind } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { packBatch, randomStore } from '../helpers/batch';

function run(kind: ModelKind, threads: number): { losses: number[]; params: Float32Array } {
  native().setThreads(threads);
  const config = resolveModelConfig({ kind, latent: 32, basis: 50 });
  const layout = paramLayout(config);
  // Large enough that every parallel loop is split across threads.
  const store = randomStore(Array.from({ length: 24 }, (_, i) => 6 + (i % 13)), 12, true);
  const { inputs, shape } = packBatch(store, [...Array(24).keys()], { nodes: 400, edges: 4200, graphs: 26 }, 'float32');
  const api = nativeModel();
  const plan = api.createPlan(config, shape, 'float32');
  const params = initParams(layout, 9) as Float32Array;
  const g = new Float32Array(layout.total);
  const m = new Float32Array(layout.total);
  const v = new Float32Array(layout.total);
  const losses: number[] = [];
  for (let s = 0; s < 5; s++) {
    const r = api.trainStep(plan, inputs, shape, params, g, m, v, { lr: 1e-3, bc1: 1 - 0.9 ** (s + 1), bc2: 1 - 0.999 ** (s + 1), clipNorm: 10 });
    losses.push(r.loss);
  }
  return { losses, params };
}

describe.each([['mpeu'], ['schnet']] as [ModelKind][])('determinism (%s)', (kind) => {
  afterAll(() => native().setThreads(2));
  it('1 thread and 2 threads give bitwise identical losses and parameters', () => {
    const a = run(kind, 1);
    const b = run(kind, 2);
    const c = run(kind, 2);
    expect(a.losses).toEqual(b.losses);
    expect(b.losses).toEqual(c.losses);
    expect(Buffer.from(a.params.buffer).equals(Buffer.from(b.params.buffer))).toBe(true);
    expect(a.losses[4]).toBeLessThan(a.losses[0]);
  });
});
