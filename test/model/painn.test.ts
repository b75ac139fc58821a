/**
 * PaiNN (issue 10): native forward against the float64 TypeScript reference,
 * central finite differences in float64 for every parameter block, rotation
 * invariance of the predictions, bitwise determinism across thread counts,
 * padding invariance, and the checks at the boundary (directions required,
 * CUDA refused).
 */
import { native, nativeModel, type PackOutput, type PackShape, type NativeStoreArrays } from '../../src/native';
import { resolveModelConfig, type ModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { type DType } from '../../src/train/plan';
import { packBatch, testRng } from '../helpers/batch';
import { finiteDifferences, gradTolerance } from '../helpers/gradcheck';
import { codeOf } from '../helpers/codes';
import { moleculeStore, painnReferencePredict, randomMolecules, randomRotation, rotateMolecules } from './painn-reference';

function smallConfig(extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind: 'painn', latent: 6, passes: 2, basis: 5, cutoff: 3, numClasses: 12, readoutHidden: 4, ...extra });
}

const pack = (store: NativeStoreArrays, ids: number[], shape: PackShape | 'exact', dtype: DType = 'float64'): { inputs: PackOutput; shape: PackShape } =>
  packBatch(store, ids, shape, dtype, true);

function perturbedParams(config: ModelConfig, seed: number, dtype: DType): Float32Array | Float64Array {
  const params = initParams(paramLayout(config), seed, dtype);
  const rnd = testRng(seed + 100);
  for (let i = 0; i < params.length; i++) params[i] += (rnd() - 0.5) * 0.2; // non-zero biases exercise every path
  return params;
}

// Box 5 Å with a 3 Å cutoff: some edges lie beyond the cutoff (they must contribute zero).
const mols = randomMolecules([4, 2, 5, 3], 7, 5);
const store = moleculeStore(mols);

describe('PaiNN parameter layout', () => {
  it('names every weight as docs/painn.md does, with the paper defaults', () => {
    const c = resolveModelConfig({ kind: 'painn' });
    expect(c).toMatchObject({ latent: 128, passes: 3, basis: 20, cutoff: 5, sharedFilters: false, readoutHidden: 64, aggregation: 'sum', readout: 'sum' });
    const L = paramLayout(c);
    const byName = new Map(L.entries.map((e) => [e.name, e]));
    expect(byName.get('filter/w')).toMatchObject({ rows: 20, cols: 3 * 128 * 3 });
    expect(byName.get('pass2/update/mix')).toMatchObject({ rows: 128, cols: 256 });
    expect(byName.get('pass0/update/w1')).toMatchObject({ rows: 256, cols: 128 });
    expect(byName.get('pass1/message/w2')).toMatchObject({ rows: 128, cols: 384 });
    expect(byName.get('readout/w2')).toMatchObject({ rows: 64, cols: 1 });
    expect(L.entries[L.entries.length - 1].offset + 1).toBe(L.total);
    const shared = paramLayout(resolveModelConfig({ kind: 'painn', sharedFilters: true }));
    expect(shared.entries.find((e) => e.name === 'filter/w')).toMatchObject({ rows: 20, cols: 384 });
  });
});

describe.each([
  ['per-block filters, sum/sum', smallConfig()],
  ['shared filters, mean/mean', smallConfig({ sharedFilters: true, aggregation: 'mean', readout: 'mean' })],
])('PaiNN (%s)', (_name, config) => {
  const layout = paramLayout(config);
  const api = nativeModel();

  it('forward matches the float64 TypeScript reference (float64 to 1e-10, float32 to 1e-4)', () => {
    const { inputs, shape } = pack(store, [0, 1, 2, 3], { nodes: 18, edges: 50, graphs: 6 });
    const params = perturbedParams(config, 3, 'float64') as Float64Array;
    const ref = painnReferencePredict(config, layout, params, inputs, shape);
    const plan = api.createPlan(config, shape, 'float64');
    const pred = new Float64Array(shape.graphs);
    api.predict(plan, inputs, shape, params, pred);
    for (let g = 0; g < 4; g++) expect(Math.abs(pred[g] - ref[g])).toBeLessThanOrEqual(1e-10 * (1 + Math.abs(ref[g])));
    const p32 = pack(store, [0, 1, 2, 3], { nodes: 18, edges: 50, graphs: 6 }, 'float32');
    const plan32 = api.createPlan(config, p32.shape, 'float32');
    const pred32 = new Float32Array(shape.graphs);
    api.predict(plan32, p32.inputs, p32.shape, Float32Array.from(params), pred32);
    for (let g = 0; g < 4; g++) expect(Math.abs(pred32[g] - ref[g])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(ref[g])));
  });

  describe('gradient check (float64, central differences)', () => {
    const { inputs, shape } = pack(store, [0, 1, 2, 3], { nodes: 18, edges: 50, graphs: 6 });
    const plan = api.createPlan(config, shape, 'float64');
    const params = perturbedParams(config, 5, 'float64') as Float64Array;
    const grads = new Float64Array(layout.total);
    const loss = api.lossAndGrad(plan, inputs, shape, params, grads);
    it('has a positive finite loss', () => {
      expect(Number.isFinite(loss)).toBe(true);
      expect(loss).toBeGreaterThan(0);
    });
    it.each(layout.entries.map((e) => [e.name, e] as const))('block %s matches finite differences', (_n, entry) => {
      const points = finiteDifferences(plan, inputs, shape, params, grads, entry);
      for (const { fd, grad } of points) expect(Math.abs(fd - grad)).toBeLessThanOrEqual(gradTolerance(fd));
      // Embedding rows of absent elements have zero gradient; every other block must be exercised.
      if (entry.name !== 'embed/w') expect(points.some((q) => Math.abs(q.fd) > 1e-9)).toBe(true);
    });
  });
});

describe('PaiNN invariances', () => {
  const config = smallConfig({ latent: 8, passes: 3 });
  const api = nativeModel();

  it('predictions are invariant under rotation of the input (float32, 1e-5)', () => {
    const params = perturbedParams(config, 9, 'float32') as Float32Array;
    const predict = (st: NativeStoreArrays): Float32Array => {
      const { inputs, shape } = pack(st, [0, 1, 2, 3], 'exact', 'float32');
      const plan = api.createPlan(config, shape, 'float32');
      const out = new Float32Array(shape.graphs);
      api.predict(plan, inputs, shape, params, out);
      return out;
    };
    const base = predict(store);
    let spread = 0;
    for (const seed of [1, 2, 3]) {
      const rotated = predict(moleculeStore(rotateMolecules(mols, randomRotation(seed))));
      for (let g = 0; g < 4; g++) {
        expect(Math.abs(rotated[g] - base[g])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(base[g])));
        spread = Math.max(spread, Math.abs(base[g] - base[0]));
      }
    }
    expect(spread).toBeGreaterThan(1e-3); // the predictions differ between molecules: not a constant model
  });

  it('a reflection of one direction component changes the prediction (the directions are used)', () => {
    const params = perturbedParams(config, 9, 'float64') as Float64Array;
    const { inputs, shape } = pack(store, [0, 1, 2, 3], 'exact');
    const plan = api.createPlan(config, shape, 'float64');
    const a = new Float64Array(shape.graphs);
    api.predict(plan, inputs, shape, params, a);
    const dir = inputs.direction as Float64Array;
    // Flip one edge's direction only (an edge inside the cutoff): no longer a
    // rigid motion, so the prediction of its graph must move.
    const k = Array.from(inputs.distance).findIndex((d) => d > 0 && d < config.cutoff);
    expect(inputs.nodeGraph[inputs.receivers[k]]).toBe(0);
    dir[3 * k] = -dir[3 * k];
    const b = new Float64Array(shape.graphs);
    api.predict(plan, inputs, shape, params, b);
    expect(Math.abs(a[0] - b[0])).toBeGreaterThan(1e-9);
    for (let g = 1; g < shape.graphs; g++) expect(b[g]).toBe(a[g]);
  });

  it('padding does not change the real graphs\' predictions or loss, and padding edges contribute exactly zero', () => {
    const params = perturbedParams(config, 4, 'float64') as Float64Array;
    const exact = pack(store, [2, 0, 3], 'exact');
    const padded = pack(store, [2, 0, 3], { nodes: 40, edges: 120, graphs: 7 });
    const run = (p: { inputs: PackOutput; shape: PackShape }): { loss: number; pred: Float64Array } => {
      const plan = api.createPlan(config, p.shape, 'float64');
      const pred = new Float64Array(p.shape.graphs);
      const loss = api.predict(plan, p.inputs, p.shape, params, pred);
      return { loss, pred };
    };
    const a = run(exact);
    const b = run(padded);
    expect(b.loss).toBe(a.loss);
    for (let g = 0; g < 3; g++) expect(b.pred[g]).toBe(a.pred[g]);
    const d = padded.inputs.direction as Float64Array;
    for (let e = exact.shape.edges * 3; e < d.length; e++) expect(d[e]).toBe(0);
  });

  it('1 thread and 2 threads give bitwise identical training steps', () => {
    const big = moleculeStore(randomMolecules(Array.from({ length: 16 }, (_, i) => 6 + (i % 9)), 21, 6), 3);
    const cfg = resolveModelConfig({ kind: 'painn', latent: 32, basis: 20 });
    const runSteps = (threads: number): { losses: number[]; params: Float32Array } => {
      native().setThreads(threads);
      const { inputs, shape } = pack(big, [...Array(16).keys()], { nodes: 200, edges: 1600, graphs: 18 }, 'float32');
      const plan = api.createPlan(cfg, shape, 'float32');
      const L = paramLayout(cfg);
      const params = initParams(L, 9) as Float32Array;
      const g = new Float32Array(L.total);
      const m = new Float32Array(L.total);
      const v = new Float32Array(L.total);
      const losses: number[] = [];
      for (let s = 0; s < 4; s++) {
        losses.push(api.trainStep(plan, inputs, shape, params, g, m, v, { lr: 1e-3, bc1: 1 - 0.9 ** (s + 1), bc2: 1 - 0.999 ** (s + 1), clipNorm: 10 }).loss);
      }
      return { losses, params };
    };
    try {
      const one = runSteps(1);
      const two = runSteps(2);
      expect(one.losses).toEqual(two.losses);
      expect(Buffer.from(one.params.buffer).equals(Buffer.from(two.params.buffer))).toBe(true);
      expect(one.losses[3]).toBeLessThan(one.losses[0]);
    } finally {
      native().setThreads(2);
    }
  });
});

describe('PaiNN at the boundary', () => {
  const config = smallConfig();
  const api = nativeModel();
  it('refuses a batch without directions with ERR_GNN_DATA_DIRECTIONS', () => {
    const { inputs, shape } = pack(store, [0, 1], 'exact');
    delete inputs.direction;
    const plan = api.createPlan(config, shape, 'float64');
    const params = initParams(paramLayout(config), 1, 'float64');
    expect(codeOf(() => api.predict(plan, inputs, shape, params, new Float64Array(shape.graphs)))).toBe('ERR_GNN_DATA_DIRECTIONS');
  });
  it('refuses a direction array shorter than 3 x edges', () => {
    const { inputs, shape } = pack(store, [0, 1], 'exact');
    inputs.direction = (inputs.direction as Float64Array).subarray(0, 3 * shape.edges - 1);
    const plan = api.createPlan(config, shape, 'float64');
    const params = initParams(paramLayout(config), 1, 'float64');
    expect(codeOf(() => api.predict(plan, inputs, shape, params, new Float64Array(shape.graphs)))).toBe('ERR_GNN_LENGTH');
  });
  it('rejects a bad cutoff with ERR_GNN_CONFIG', () => {
    expect(codeOf(() => resolveModelConfig({ kind: 'painn', cutoff: 0 }))).toBe('ERR_GNN_CONFIG');
    expect(codeOf(() => api.modelLayout({ ...config, cutoff: -1 }))).toBe('ERR_GNN_CONFIG');
  });
});
