/**
 * Verifications of the native models (issue 5): central finite differences in
 * float64 for every parameter block, and padding invariance.
 */
import { nativeModel } from '../../src/native';
import { resolveModelConfig, type ModelConfig, type ModelKind } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { packBatch, randomStore, testRng } from '../helpers/batch';
import { finiteDifferences, gradTolerance } from '../helpers/gradcheck';

function smallConfig(kind: ModelKind, extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind, latent: 6, passes: 2, basis: 10, rbfSpacing: 0.4, rbfGamma: 2, numClasses: 12, readoutHidden: 5, ...extra });
}

const cases: [string, ModelConfig][] = [
  ['mpeu mean', smallConfig('mpeu')],
  ['schnet mean', smallConfig('schnet')],
  ['mpeu sum/sum', smallConfig('mpeu', { aggregation: 'sum', readout: 'sum' })],
  ['schnet sum/mean', smallConfig('schnet', { aggregation: 'sum' })],
];

describe.each(cases)('gradient check (%s, float64)', (_name, config) => {
  const layout = paramLayout(config);
  const store = randomStore([4, 1, 5, 3, 0 + 2], 7);
  const { inputs, shape } = packBatch(store, [0, 1, 2, 3, 4], { nodes: 20, edges: 60, graphs: 8 });
  const api = nativeModel();
  const plan = api.createPlan(config, shape, 'float64');
  const params = initParams(layout, 3, 'float64') as Float64Array;
  // Non-zero biases so that every path is exercised.
  const rnd = testRng(11);
  for (let i = 0; i < params.length; i++) params[i] += (rnd() - 0.5) * 0.2;
  const grads = new Float64Array(layout.total);
  const loss = api.lossAndGrad(plan, inputs, shape, params, grads);

  it('has a positive finite loss', () => {
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(0);
  });

  it.each(layout.entries.map((e) => [e.name, e] as const))('block %s matches finite differences', (_n, entry) => {
    for (const { fd, grad } of finiteDifferences(plan, inputs, shape, params, grads, entry)) expect(Math.abs(fd - grad)).toBeLessThanOrEqual(gradTolerance(fd));
  });
});

describe.each([['mpeu'], ['schnet']] as [ModelKind][])('padding invariance (%s)', (kind) => {
  it('loss and gradients do not change when padding is added', () => {
    const config = smallConfig(kind);
    const layout = paramLayout(config);
    const store = randomStore([5, 3, 4, 2], 21, true);
    const ids = [0, 1, 2, 3];
    const exact = packBatch(store, ids, 'exact');
    const padded = packBatch(store, ids, { nodes: exact.shape.nodes + 9, edges: exact.shape.edges + 40, graphs: 7 });
    const api = nativeModel();
    const params = initParams(layout, 5, 'float64');
    const g1 = new Float64Array(layout.total);
    const g2 = new Float64Array(layout.total);
    const l1 = api.lossAndGrad(api.createPlan(config, exact.shape, 'float64'), exact.inputs, exact.shape, params, g1);
    const l2 = api.lossAndGrad(api.createPlan(config, padded.shape, 'float64'), padded.inputs, padded.shape, params, g2);
    expect(Math.abs(l1 - l2)).toBeLessThanOrEqual(1e-12 * Math.abs(l1));
    for (let i = 0; i < g1.length; i++) expect(Math.abs(g1[i] - g2[i])).toBeLessThanOrEqual(1e-12 + 1e-10 * Math.abs(g1[i]));
  });
});
