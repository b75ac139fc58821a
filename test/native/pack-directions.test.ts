/**
 * Packing edge directions (PaiNN): packGraphs' optional `out.direction`, the
 * store's optional `direction`, the plan's `inputs.direction`, and the
 * data-layer arrays that carry them.
 */
import { native, nativeModel, type NativeStoreArrays, type PackOutput, type PackShape } from '../../src/native';
import { buildStore, packerArrays, storeArraysFor } from '../../src/data/store';
import { loadSource } from '../../src/data/source';
import type { GraphStore } from '../../src/data/types';
import { allocPackOutput as planAlloc, inputsFor, needsDirections, PlanCache } from '../../src/train/plan';
import { resolveModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { allocPackOutput, totals } from '../helpers/store';
import { codeOf } from '../helpers/codes';

const addon = native();
type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

let store: GraphStore;
let arrays: NativeStoreArrays;
beforeAll(async () => {
  store = (await loadSource('qm9-like:30', { directions: true })).store;
  arrays = packerArrays(store, new Float64Array(store.numGraphs).fill(0.5));
});

const withDirection = (shape: PackShape, F: FloatCtor): PackOutput => ({ ...allocPackOutput(shape, F), direction: new F(3 * shape.edges).fill(-777) });
const padded = (ids: number[], extraNodes = 3, extraEdges = 11, extraGraphs = 2): PackShape => {
  const t = totals(arrays, ids);
  return { nodes: t.nodes + extraNodes, edges: t.edges + extraEdges, graphs: t.graphs + extraGraphs };
};
const without = (a: NativeStoreArrays): NativeStoreArrays => {
  const { direction: _d, ...rest } = a;
  return rest;
};

describe('packGraphs with out.direction', () => {
  it.each<[string, FloatCtor]>([['float32', Float32Array], ['float64', Float64Array]])(
    '%s: real edges get their store directions in batch order, padding edges exactly 0, every other output unchanged', (_, F) => {
      const ids = [4, 0, 17, 4, 29];
      const shape = padded(ids);
      const out = withDirection(shape, F);
      addon.packGraphs(arrays, Int32Array.from(ids), shape, out);
      const ref = allocPackOutput(shape, F);
      addon.packGraphs(without(arrays), Int32Array.from(ids), shape, ref);
      for (const k of Object.keys(ref) as (keyof PackOutput)[]) expect(Array.from(out[k] as ArrayLike<number>)).toEqual(Array.from(ref[k] as ArrayLike<number>));
      const u = out.direction as Float32Array | Float64Array;
      let e = 0;
      for (const g of ids)
        for (let k = store.edgeOffset[g]; k < store.edgeOffset[g + 1]; k++, e++)
          for (let c = 0; c < 3; c++) expect(u[3 * e + c]).toBe((store.directions as Float32Array)[3 * k + c]);
      expect(e).toBe(totals(arrays, ids).edges);
      expect(shape.edges - e).toBe(11);
      for (let q = 3 * e; q < u.length; q++) expect(u[q]).toBe(0);
    });

  it('an exact (unpadded) batch and an empty id list', () => {
    const ids = [1, 2];
    const shape = totals(arrays, ids);
    const out = withDirection(shape, Float32Array);
    addon.packGraphs(arrays, Int32Array.from(ids), shape, out);
    const e0 = store.edgeOffset[1], e1 = store.edgeOffset[3];
    expect(Array.from(out.direction as Float32Array)).toEqual(Array.from((store.directions as Float32Array).subarray(3 * e0, 3 * e1)));
    const empty = { nodes: 1, edges: 4, graphs: 1 };
    const o2 = withDirection(empty, Float64Array);
    addon.packGraphs(arrays, new Int32Array(0), empty, o2);
    expect(Array.from(o2.direction as Float64Array)).toEqual(new Array(12).fill(0));
  });

  it('refuses with a code: no store directions, wrong lengths or types, aliasing; the addon works afterwards', () => {
    const ids = Int32Array.from([3, 5]);
    const shape = padded([3, 5]);
    const run = (s: NativeStoreArrays, out: PackOutput) => () => addon.packGraphs(s, ids, shape, out);
    const missing = run(without(arrays), withDirection(shape, Float32Array));
    expect(codeOf(missing)).toBe('ERR_GNN_DATA_DIRECTIONS');
    expect(() => missing()).toThrow(/out\.direction was given but the store has no edge directions/);
    const dir = arrays.direction as Float32Array;
    expect(codeOf(run({ ...arrays, direction: dir.subarray(0, dir.length - 1) }, allocPackOutput(shape)))).toBe('ERR_GNN_LENGTH');
    expect(() => run({ ...arrays, direction: dir.subarray(3) }, allocPackOutput(shape))()).toThrow(/store\.direction has length/);
    expect(codeOf(run({ ...arrays, direction: Float64Array.from(dir) as never }, allocPackOutput(shape)))).toBe('ERR_GNN_TYPE');
    expect(codeOf(run(arrays, { ...allocPackOutput(shape), direction: new Float32Array(3 * shape.edges - 3) }))).toBe('ERR_GNN_LENGTH');
    expect(() => run(arrays, { ...allocPackOutput(shape), direction: new Float32Array(shape.edges) })()).toThrow(/out\.direction has length/);
    expect(codeOf(run(arrays, { ...allocPackOutput(shape, Float32Array), direction: new Float64Array(3 * shape.edges) as never }))).toBe('ERR_GNN_TYPE');
    // Sharing memory with another output or with the store.
    const buf = new Float32Array(4 * shape.edges);
    expect(codeOf(run(arrays, { ...allocPackOutput(shape), distance: buf.subarray(0, shape.edges), direction: buf.subarray(shape.edges - 1, 4 * shape.edges - 1) }))).toBe('ERR_GNN_ALIAS');
    const big = new Float32Array(dir.length + 3 * shape.edges);
    big.set(dir);
    expect(codeOf(run({ ...arrays, direction: big.subarray(0, dir.length) }, { ...allocPackOutput(shape), direction: big.subarray(dir.length - 3, dir.length - 3 + 3 * shape.edges) }))).toBe('ERR_GNN_ALIAS');
    // Store directions without out.direction: ignored.
    const out = allocPackOutput(shape);
    addon.packGraphs(arrays, ids, shape, out);
    expect(out.direction).toBeUndefined();
    const ok = withDirection(shape, Float32Array);
    addon.packGraphs(arrays, ids, shape, ok);
    expect((ok.direction as Float32Array)[0]).toBe((store.directions as Float32Array)[3 * store.edgeOffset[3]]);
  });

  it('copyGraphSlicesBench copies the directions too when both sides have them', () => {
    const ids = Int32Array.from([0, 1, 2, 3]);
    const shape = padded([0, 1, 2, 3]);
    const out = withDirection(shape, Float32Array);
    expect(addon.copyGraphSlicesBench(arrays, ids, shape, out, 2)).toBeGreaterThanOrEqual(0);
    expect(Array.from((out.direction as Float32Array).subarray(0, 3 * store.edgeOffset[4]))).toEqual(Array.from((store.directions as Float32Array).subarray(0, 3 * store.edgeOffset[4])));
  });
});

describe('the data layer and plans carry directions', () => {
  it('packerArrays / storeArraysFor include `direction` exactly when the store has directions (shared, no copy)', () => {
    expect(packerArrays(store, new Float64Array(store.numGraphs)).direction).toBe(store.directions);
    const plain = buildStore([{ id: 'h2', numbers: Uint8Array.of(1, 1), positions: Float64Array.of(0, 0, 0, 0.74, 0, 0), cell: null, pbc: [false, false, false], targets: { y: 1 } }], { graph: { kind: 'fc' } }).store;
    expect('direction' in packerArrays(plain, new Float64Array(1))).toBe(false);
    expect(storeArraysFor(store, store.targetNames[0]).direction).toBe(store.directions);
  });

  it('needsDirections: PaiNN only', () => {
    expect(needsDirections({ kind: 'painn' } as never)).toBe(true);
    expect(needsDirections({ kind: 'mpeu' })).toBe(false);
    expect(needsDirections({ kind: 'schnet' })).toBe(false);
  });

  it('allocPackOutput / inputsFor: direction [3 x edges] of the plan dtype, viewed at the batch shape', () => {
    const cap = { nodes: 20, edges: 50, graphs: 4 };
    const a = planAlloc(cap, 'float64', true);
    expect(Object.prototype.toString.call(a.direction)).toBe('[object Float64Array]');
    expect(a.direction?.length).toBe(150);
    expect(planAlloc(cap, 'float32').direction).toBeUndefined();
    expect(Object.prototype.toString.call(planAlloc(cap, 'float32', true).direction)).toBe('[object Float32Array]');
  });

  it('a plan with directions packs them, and an MPEU model ignores the extra input (same prediction)', () => {
    const config = resolveModelConfig({ kind: 'mpeu', latent: 8, passes: 2 });
    const params = initParams(paramLayout(config), 3, 'float32') as Float32Array;
    const ids = [2, 7, 9];
    const shape = padded(ids, 2, 5, 1);
    const predict = (directions: boolean): Float32Array => {
      const plan = new PlanCache(config, 'float32', undefined, true, false, directions).get(shape);
      const inputs = inputsFor(plan, shape);
      expect(inputs.direction === undefined).toBe(!directions);
      addon.packGraphs(arrays, Int32Array.from(ids), shape, inputs);
      if (directions) {
        expect(inputs.direction?.length).toBe(3 * shape.edges);
        expect(plan.inputs.direction?.length).toBeGreaterThan(3 * shape.edges); // capacity plan: 25% headroom
        expect(Array.from((inputs.direction as Float32Array).subarray(3 * (shape.edges - 5)))).toEqual(new Array(15).fill(0));
      }
      const out = new Float32Array(shape.graphs);
      nativeModel().predict(plan.handle, inputs, shape, params, out);
      return out;
    };
    expect(Array.from(predict(true))).toEqual(Array.from(predict(false)));
    // A plan that wants directions over a store without them: a coded refusal, not garbage.
    const plan = new PlanCache(config, 'float32', undefined, false, false, true).get(shape);
    expect(codeOf(() => addon.packGraphs(without(arrays), Int32Array.from(ids), shape, inputsFor(plan, shape)))).toBe('ERR_GNN_DATA_DIRECTIONS');
  });
});
