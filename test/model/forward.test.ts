/** The native forward pass against the plain TypeScript reference (issue 5). */
import { nativeModel } from '../../src/native';
import { resolveModelConfig, type ModelKind } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { packBatch, randomStore, testRng } from '../helpers/batch';
import { referencePredict } from './reference';

describe.each([
  ['mpeu', 'mean', 'mean'],
  ['schnet', 'mean', 'mean'],
  ['mpeu', 'sum', 'sum'],
] as [ModelKind, 'mean' | 'sum', 'mean' | 'sum'][])('native forward vs TS reference (%s, agg %s, readout %s)', (kind, aggregation, readout) => {
  const config = resolveModelConfig({ kind, latent: 16, passes: 3, basis: 20, rbfSpacing: 0.25, rbfGamma: 4, numClasses: 12, readoutHidden: 8, aggregation, readout });
  const layout = paramLayout(config);
  const store = randomStore([3, 1, 6, 4], 99);
  const ids = [0, 1, 2, 3];
  const rnd = testRng(5);

  it.each(['float64', 'float32'] as const)('predictions agree in %s', (dtype) => {
    const { inputs, shape } = packBatch(store, ids, { nodes: 20, edges: 64, graphs: 6 }, dtype);
    const p64 = initParams(layout, 17, 'float64');
    for (let i = 0; i < p64.length; i++) p64[i] += (rnd() - 0.5) * 0.1;
    const params = dtype === 'float64' ? p64 : Float32Array.from(p64);
    const plan = nativeModel().createPlan(config, shape, dtype);
    const pred = dtype === 'float64' ? new Float64Array(shape.graphs) : new Float32Array(shape.graphs);
    nativeModel().predict(plan, inputs, shape, params, pred);
    const ref = referencePredict(config, layout, params, inputs, shape);
    const tol = dtype === 'float64' ? 1e-10 : 2e-5;
    for (let g = 0; g < ids.length; g++) {
      expect(Math.abs(pred[g] - ref[g])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(ref[g])));
    }
  });
});

describe('study-size model in float32', () => {
  it('C=64, 150 basis functions: float32 forward matches float64 to ~1e-5', () => {
    for (const kind of ['mpeu', 'schnet'] as ModelKind[]) {
      const config = resolveModelConfig({ kind });
      const layout = paramLayout(config);
      const store = randomStore([9, 12, 5, 18], 3, true);
      const b64 = packBatch(store, [0, 1, 2, 3], { nodes: 64, edges: 640, graphs: 5 }, 'float64');
      const b32 = packBatch(store, [0, 1, 2, 3], { nodes: 64, edges: 640, graphs: 5 }, 'float32');
      const p64 = initParams(layout, 1, 'float64');
      const api = nativeModel();
      const out64 = new Float64Array(5);
      const out32 = new Float32Array(5);
      api.predict(api.createPlan(config, b64.shape, 'float64'), b64.inputs, b64.shape, p64, out64);
      api.predict(api.createPlan(config, b32.shape, 'float32'), b32.inputs, b32.shape, Float32Array.from(p64), out32);
      for (let g = 0; g < 4; g++) expect(Math.abs(out32[g] - out64[g])).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(out64[g])));
    }
  });
});
