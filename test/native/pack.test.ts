/**
 * packGraphs against the TypeScript reference packer and fast-check properties
 * of the Jraph padding convention. Uses src/native.ts, so GNNBATCH_ADDON=gyp
 * runs the same tests against the node-gyp build.
 */
import fc from 'fast-check';
import { native, NativeStoreArrays, PackOutput, PackShape } from '../../src/native';
import {
  GraphSpec, allocPackOutput, buildStore, makeRng, randInt, randomGraph, referencePack, stableArgsort,
  toPlain, totals,
} from '../helpers/store';

const addon = native();
type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;
const DTYPES: [string, FloatCtor][] = [
  ['float32', Float32Array],
  ['float64', Float64Array],
];
const roundFor = (F: FloatCtor) => (F === Float32Array ? Math.fround : (x: number) => x);

function pack(store: NativeStoreArrays, ids: number[], shape: PackShape, F: FloatCtor): PackOutput {
  const out = allocPackOutput(shape, F);
  const st = addon.packGraphs(store, Int32Array.from(ids), shape, out);
  const t = totals(store, ids);
  expect(st).toEqual({ realNodes: t.nodes, realEdges: t.edges, realGraphs: t.graphs });
  return out;
}

/** Checks every guarantee of the packing contract (pack.h) without the reference. */
function checkContract(store: NativeStoreArrays, ids: number[], shape: PackShape, out: PackOutput, F: FloatCtor): void {
  const round = roundFor(F);
  const t = totals(store, ids);
  const exact = shape.nodes === t.nodes && shape.edges === t.edges && shape.graphs === t.graphs;
  const N = shape.nodes;
  const E = shape.edges;
  // Every real node and edge exactly once, at its graph's offset, endpoints shifted.
  let ns = 0;
  let es = 0;
  ids.forEach((g, i) => {
    const n0 = store.nodeOffset[g];
    const n = store.nodeOffset[g + 1] - n0;
    const e0 = store.edgeOffset[g];
    const ne = store.edgeOffset[g + 1] - e0;
    expect(out.nNode[i]).toBe(n);
    expect(out.nEdge[i]).toBe(ne);
    expect(out.mask[i]).toBe(1);
    expect(out.target[i]).toBe(round(store.target[g]));
    for (let j = 0; j < n; j++) {
      expect(out.atomicNumber[ns + j]).toBe(store.atomicNumber[n0 + j]);
      expect(out.nodeGraph[ns + j]).toBe(i);
    }
    for (let k = 0; k < ne; k++) {
      expect(out.senders[es + k]).toBe(store.senders[e0 + k] + ns);
      expect(out.receivers[es + k]).toBe(store.receivers[e0 + k] + ns);
      expect(out.distance[es + k]).toBe(store.distance[e0 + k]);
    }
    ns += n;
    es += ne;
  });
  expect(ns).toBe(t.nodes);
  expect(es).toBe(t.edges);
  // Padding (Jraph): one padding graph owns every padding node and edge; edges
  // point at the first padding node; then empty graphs. Exact: no padding at all.
  if (exact) {
    expect(out.nNode.length).toBe(ids.length);
  } else {
    const k = ids.length;
    expect(out.nNode[k]).toBe(N - t.nodes);
    expect(out.nEdge[k]).toBe(E - t.edges);
    expect(N - t.nodes).toBeGreaterThanOrEqual(1);
    for (let j = t.nodes; j < N; j++) {
      expect(out.nodeGraph[j]).toBe(k);
      expect(out.atomicNumber[j]).toBe(0);
    }
    for (let e = t.edges; e < E; e++) {
      expect(out.senders[e]).toBe(t.nodes);
      expect(out.receivers[e]).toBe(t.nodes);
      expect(out.distance[e]).toBe(0);
    }
    for (let i = k; i < shape.graphs; i++) {
      expect(out.mask[i]).toBe(0);
      expect(out.target[i]).toBe(0);
      if (i > k) {
        expect(out.nNode[i]).toBe(0);
        expect(out.nEdge[i]).toBe(0);
      }
    }
  }
  // Totals and node->graph consistent with n_node.
  expect(Array.from(out.nNode).reduce((a, b) => a + b, 0)).toBe(N);
  expect(Array.from(out.nEdge).reduce((a, b) => a + b, 0)).toBe(E);
  let node = 0;
  out.nNode.forEach((n, g) => {
    for (let j = 0; j < n; j++) expect(out.nodeGraph[node++]).toBe(g);
  });
  // Receiver order preserved: the batch is receiver-sorted; recvPtr is its CSR.
  expect(out.recvPtr[0]).toBe(0);
  expect(out.recvPtr[N]).toBe(E);
  for (let v = 0; v < N; v++) {
    expect(out.recvPtr[v + 1]).toBeGreaterThanOrEqual(out.recvPtr[v]);
    for (let e = out.recvPtr[v]; e < out.recvPtr[v + 1]; e++) expect(out.receivers[e]).toBe(v);
  }
  // sendPerm: the stable sender order of all edges; sendPtr its row pointers.
  expect(Array.from(out.sendPerm)).toEqual(stableArgsort(out.senders));
  expect(out.sendPtr[0]).toBe(0);
  expect(out.sendPtr[N]).toBe(E);
  for (let v = 0; v < N; v++) {
    expect(out.sendPtr[v + 1]).toBeGreaterThanOrEqual(out.sendPtr[v]);
    for (let k = out.sendPtr[v]; k < out.sendPtr[v + 1]; k++) expect(out.senders[out.sendPerm[k]]).toBe(v);
  }
}

function mixedStore(seed: number): { store: NativeStoreArrays; graphs: GraphSpec[] } {
  const rng = makeRng(seed);
  const graphs: GraphSpec[] = [];
  graphs.push({ atomicNumber: [], edges: [], target: 1.5 }); // empty graph (no nodes)
  graphs.push({ atomicNumber: [6], edges: [], target: -2.25 }); // single node
  graphs.push({ atomicNumber: [1, 8, 1], edges: [], target: 0.1 }); // no edges
  graphs.push(randomGraph(rng, 5, true)); // fully connected
  for (let i = 0; i < 12; i++) graphs.push(randomGraph(rng, randInt(rng, 1, 12)));
  return { store: buildStore(graphs), graphs };
}

describe.each(DTYPES)('packGraphs (%s outputs)', (_name, F) => {
  const round = roundFor(F);
  const { store } = mixedStore(7);
  const G = store.target.length;

  test('the helper store is valid for the native validator', () => {
    expect(() => addon.validateStore(store)).not.toThrow();
  });

  test('padded batch matches the reference and the contract', () => {
    const ids = [3, 0, 1, 2, 7, 9, 4];
    const t = totals(store, ids);
    const shape = { nodes: t.nodes + 5, edges: t.edges + 11, graphs: ids.length + 3 };
    const out = pack(store, ids, shape, F);
    expect(toPlain(out)).toEqual(referencePack(store, ids, shape, round));
    checkContract(store, ids, shape, out, F);
  });

  test('a batch that exactly fills its shape (unpadded) has no padding graph', () => {
    const ids = Array.from({ length: G }, (_, i) => G - 1 - i);
    const shape = totals(store, ids);
    const out = pack(store, ids, shape, F);
    expect(toPlain(out)).toEqual(referencePack(store, ids, shape, round));
    checkContract(store, ids, shape, out, F);
  });

  test('minimal padding: one padding node, no padding edges, one padding graph', () => {
    const ids = [5, 6];
    const t = totals(store, ids);
    const shape = { nodes: t.nodes + 1, edges: t.edges, graphs: 3 };
    const out = pack(store, ids, shape, F);
    expect(toPlain(out)).toEqual(referencePack(store, ids, shape, round));
    checkContract(store, ids, shape, out, F);
  });

  test('single-node graphs, graphs without edges, and empty graphs', () => {
    for (const ids of [[1], [2], [0], [1, 1, 2, 0, 2]]) {
      const t = totals(store, ids);
      for (const shape of [t, { nodes: t.nodes + 2, edges: t.edges + 3, graphs: t.graphs + 2 }]) {
        const out = pack(store, ids, shape, F);
        expect(toPlain(out)).toEqual(referencePack(store, ids, shape, round));
        checkContract(store, ids, shape, out, F);
      }
    }
  });

  test('an empty id list gives only the padding graph (or an empty exact batch)', () => {
    const shape = { nodes: 3, edges: 4, graphs: 2 };
    const out = pack(store, [], shape, F);
    expect(toPlain(out)).toEqual(referencePack(store, [], shape, round));
    checkContract(store, [], shape, out, F);
    const empty = pack(store, [], { nodes: 0, edges: 0, graphs: 0 }, F);
    expect(Array.from(empty.recvPtr)).toEqual([0]);
    expect(Array.from(empty.sendPtr)).toEqual([0]);
  });

  test('QM9-like batch of 128 fully connected graphs, 1 and 2 threads identical', () => {
    const rng = makeRng(99);
    const graphs = Array.from({ length: 160 }, () => randomGraph(rng, randInt(rng, 3, 29), true));
    const big = buildStore(graphs);
    const ids = Array.from({ length: 128 }, () => randInt(rng, 0, graphs.length - 1));
    const t = totals(big, ids);
    const shape = { nodes: t.nodes + 64, edges: t.edges + 1000, graphs: 130 };
    const before = addon.getThreads();
    try {
      addon.setThreads(1);
      const one = pack(big, ids, shape, F);
      addon.setThreads(2);
      const two = pack(big, ids, shape, F);
      const bytes = (o: PackOutput) => Object.values(o).map((a: ArrayBufferView) => Buffer.from(a.buffer));
      const b1 = bytes(one);
      bytes(two).forEach((b, i) => expect(b.equals(b1[i])).toBe(true));
      expect(toPlain(one)).toEqual(referencePack(big, ids, shape, round));
    } finally {
      addon.setThreads(before);
    }
  });
});

describe('packGraphs properties (fast-check)', () => {
  const edgeArb = (n: number) =>
    fc.tuple(fc.nat(n - 1), fc.nat(n - 1), fc.float({ min: Math.fround(0.1), max: 10, noNaN: true }));
  const graphArb: fc.Arbitrary<GraphSpec> = fc.integer({ min: 0, max: 7 }).chain((n) =>
    fc.record({
      atomicNumber: fc.array(fc.integer({ min: 1, max: 118 }), { minLength: n, maxLength: n }),
      edges: n === 0 ? fc.constant([] as [number, number, number][]) : fc.array(edgeArb(n), { maxLength: 3 * n }),
      target: fc.double({ min: -100, max: 100, noNaN: true }),
    }),
  );
  const caseArb = fc
    .array(graphArb, { minLength: 1, maxLength: 8 })
    .chain((graphs) =>
      fc.record({
        graphs: fc.constant(graphs),
        ids: fc.array(fc.nat(graphs.length - 1), { maxLength: 10 }),
        exact: fc.boolean(),
        extraNodes: fc.nat(5),
        extraEdges: fc.nat(8),
        extraGraphs: fc.nat(3),
        f64: fc.boolean(),
      }),
    );

  test('every real node and edge appears once at its offset; padding and masks follow the convention', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const store = buildStore(c.graphs);
        addon.validateStore(store);
        const t = totals(store, c.ids);
        const shape = c.exact
          ? t
          : { nodes: t.nodes + 1 + c.extraNodes, edges: t.edges + c.extraEdges, graphs: t.graphs + 1 + c.extraGraphs };
        const F = c.f64 ? Float64Array : Float32Array;
        const out = pack(store, c.ids, shape, F);
        checkContract(store, c.ids, shape, out, F);
        expect(toPlain(out)).toEqual(referencePack(store, c.ids, shape, roundFor(F)));
      }),
      { numRuns: 300, seed: 20240602 },
    );
  });

  test('a shape one short in any dimension is a RangeError naming the numbers', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: 2 }), (c, dim) => {
        const store = buildStore(c.graphs);
        const t = totals(store, c.ids);
        const shape = { nodes: t.nodes + 1, edges: t.edges, graphs: t.graphs + 1 };
        if (dim === 0) shape.nodes -= 1;
        if (dim === 1) shape.edges -= 1;
        if (dim === 2) shape.graphs -= 1;
        if (shape.edges < 0 || (dim === 0 && shape.graphs === t.graphs)) return; // not "too small" / exact
        const isExact = shape.nodes === t.nodes && shape.edges === t.edges && shape.graphs === t.graphs;
        if (isExact) return;
        let err: (Error & { code?: string }) | undefined;
        try {
          addon.packGraphs(store, Int32Array.from(c.ids), shape, allocPackOutput(shape));
        } catch (e) {
          err = e as Error & { code?: string };
        }
        expect(err?.name).toBe('RangeError');
        expect(err?.code).toBe('ERR_GNN_SHAPE');
        expect(err?.message).toContain(`nodes: ${shape.nodes}`);
      }),
      { numRuns: 100, seed: 7 },
    );
  });
});
