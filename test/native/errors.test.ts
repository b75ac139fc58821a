/**
 * Bad input at the addon boundary: every case throws a TypeError or RangeError
 * with a string `code` and a message naming the argument, and the process
 * keeps running (a correct call afterwards still works).
 * Errors are matched by `name`, not `instanceof`: native errors come from the
 * main realm, not jest's.
 */
import { native, NativeStoreArrays, PackShape } from '../../src/native';
import { allocPackOutput, buildStore, detach, makeRng, randomGraph, totals } from '../helpers/store';

const addon = native();

interface Expected {
  name: 'TypeError' | 'RangeError';
  code: string | RegExp;
  message: RegExp;
}

function expectNativeError(fn: () => unknown, want: Expected): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) throw new Error(`expected a ${want.name} matching ${want.message}, nothing was thrown`);
  const err = caught as Error & { code?: unknown };
  expect(err.name).toBe(want.name);
  expect(typeof err.code).toBe('string');
  if (typeof want.code === 'string') expect(err.code).toBe(want.code);
  else expect(err.code).toMatch(want.code);
  expect(err.message).toMatch(want.message);
}

const T = (message: RegExp): Expected => ({ name: 'TypeError', code: 'ERR_GNN_TYPE', message });
const R = (message: RegExp, code: string | RegExp = /^ERR_GNN_/): Expected => ({ name: 'RangeError', code, message });

function smallStore(): NativeStoreArrays {
  const rng = makeRng(3);
  return buildStore([randomGraph(rng, 4, true), randomGraph(rng, 3, true), randomGraph(rng, 5)]);
}

function copyStore(s: NativeStoreArrays): NativeStoreArrays {
  return {
    nodeOffset: s.nodeOffset.slice(), edgeOffset: s.edgeOffset.slice(), atomicNumber: s.atomicNumber.slice(),
    senders: s.senders.slice(), receivers: s.receivers.slice(), distance: s.distance.slice(),
    senderPerm: s.senderPerm.slice(), target: s.target.slice(),
  };
}

/** A correct call, run after every bad one: the addon and the process still work. */
function stillWorks(): void {
  const out = new Float32Array(2);
  addon.segmentSumCsr(new Float32Array([1, 2, 3]), new Int32Array([0, 2, 3]), 1, out);
  expect(Array.from(out)).toEqual([3, 3]);
}

afterEach(stillWorks);

describe('segment kernels reject bad input', () => {
  const src = new Float32Array(12);
  const ptr = new Int32Array([0, 1, 3, 4]);
  const w = 3;

  test('wrong element types', () => {
    expectNativeError(() => addon.segmentSumCsr(new Int32Array(12) as never, ptr, w, new Float32Array(9)), T(/src must be a Float32Array or Float64Array/));
    expectNativeError(() => addon.segmentSumCsr([1, 2, 3] as never, ptr, w, new Float32Array(9)), T(/src/));
    expectNativeError(() => addon.segmentSumCsr(src, new Float32Array(4) as never, w, new Float32Array(9)), T(/rowPtr must be a Int32Array/));
    expectNativeError(() => addon.segmentSumCsr(src, ptr, w, new Float64Array(9)), T(/out must be a Float32Array/));
    expectNativeError(() => addon.segmentMeanCsr(new Float64Array(12), ptr, w, new Float32Array(9)), T(/out must be a Float64Array/));
    expectNativeError(() => addon.gatherRows(src, new Uint32Array(2) as never, w, new Float32Array(6)), T(/indices must be a Int32Array/));
    expectNativeError(() => addon.segmentSum(src, new Int32Array(4), 2, w, new Uint8Array(6) as never), T(/out must be a Float32Array/));
    expectNativeError(() => addon.segmentCsrBackward(new Float32Array(9), ptr, w, 1 as never, src), T(/mean must be a boolean/));
    expectNativeError(() => addon.segmentSumCsr(src, ptr, '3' as never, new Float32Array(9)), T(/width must be a number/));
    expectNativeError(() => addon.segmentSumCsr(src, ptr, 1.5, new Float32Array(9)), T(/width must be an integer/));
    expectNativeError(() => (addon.segmentSumCsr as (...a: unknown[]) => void)(), T(/src must be/));
  });

  test('wrong lengths', () => {
    expectNativeError(() => addon.segmentSumCsr(src, ptr, w, new Float32Array(8)), R(/out has length 8, expected 9/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => addon.segmentSumCsr(new Float32Array(11), ptr, w, new Float32Array(9)), R(/src length 11 is not a multiple of width 3/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => addon.segmentSumCsr(src, new Int32Array([0, 1, 3]), w, new Float32Array(6)), R(/rowPtr\[2\]=3 must equal the number of source rows 4/));
    expectNativeError(() => addon.segmentSumCsr(src, new Int32Array(0), w, new Float32Array(0)), R(/rowPtr must have at least one element/));
    expectNativeError(() => addon.segmentSum(src, new Int32Array(3), 2, w, new Float32Array(6)), R(/segmentIds has length 3, expected 4/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => addon.segmentCsrBackward(new Float32Array(8), ptr, w, false, src), R(/gradOut has length 8, expected 9/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => addon.gatherRowsBackward(new Float32Array(12), new Int32Array(3), ptr, w, new Float32Array(9)), R(/perm has length 3, expected 4/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => addon.gatherRowsBackward(new Float32Array(12), null, ptr, w, new Float32Array(10)), R(/gradSrc has length 10, expected 9/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => addon.segmentSumCsr(src, ptr, 0, new Float32Array(9)), R(/width must be in \[1, /));
  });

  test('out-of-range indices and row pointers', () => {
    expectNativeError(() => addon.segmentSumCsr(src, new Int32Array([0, 3, 1, 4]), w, new Float32Array(9)), R(/rowPtr decreases at index 2 \(3 > 1\)/));
    expectNativeError(() => addon.segmentSumCsr(src, new Int32Array([1, 1, 3, 4]), w, new Float32Array(9)), R(/rowPtr\[0\] must be 0, got 1/));
    expectNativeError(() => addon.segmentSumCsr(src, new Int32Array([0, 1, 3, 9]), w, new Float32Array(9)), R(/rowPtr\[3\]=9/));
    expectNativeError(() => addon.gatherRows(src, new Int32Array([0, 4]), w, new Float32Array(6)), R(/indices\[1\]=4 is out of range \[0, 4\)/));
    expectNativeError(() => addon.gatherRows(src, new Int32Array([-1, 0]), w, new Float32Array(6)), R(/indices\[0\]=-1 is out of range/));
    expectNativeError(() => addon.segmentSum(src, new Int32Array([0, 1, 2, 1]), 2, w, new Float32Array(6)), R(/segmentIds\[2\]=2 is out of range \[0, 2\)/));
    expectNativeError(() => addon.segmentSum(src, new Int32Array([0, 1, -5, 1]), 2, w, new Float32Array(6)), R(/segmentIds\[2\]=-5/));
    expectNativeError(() => addon.gatherRowsBackward(new Float32Array(12), new Int32Array([0, 1, 2, 7]), ptr, w, new Float32Array(9)), R(/perm\[3\]=7 is out of range/));
    expectNativeError(() => addon.segmentCsrBackward(new Float32Array(9), new Int32Array([0, 2, 1, 4]), w, true, src), R(/rowPtr decreases/));
    expectNativeError(() => addon.segmentSum(src, new Int32Array(4), -1, w, new Float32Array(0)), R(/numSegments must be in \[0, /));
  });

  test('detached buffers', () => {
    const s = new Float32Array(12);
    detach(s);
    expectNativeError(() => addon.segmentSumCsr(s, ptr, w, new Float32Array(9)), T(/src is backed by a detached ArrayBuffer/));
    const p = new Int32Array([0, 1, 3, 4]);
    detach(p);
    expectNativeError(() => addon.segmentSumCsr(src, p, w, new Float32Array(9)), T(/rowPtr is backed by a detached ArrayBuffer/));
    const o = new Float32Array(9);
    detach(o);
    expectNativeError(() => addon.segmentSumCsr(src, ptr, w, o), T(/out is backed by a detached ArrayBuffer/));
    const idx = new Int32Array([0, 1]);
    detach(idx);
    expectNativeError(() => addon.gatherRows(src, idx, w, new Float32Array(6)), T(/indices is backed by a detached/));
  });
});

describe('packGraphs and validateStore reject bad input', () => {
  const store = smallStore();
  const ids = [2, 0];
  const t = totals(store, ids);
  const shape: PackShape = { nodes: t.nodes + 2, edges: t.edges + 2, graphs: 4 };
  const run = (s: NativeStoreArrays, i: number[] | Int32Array, sh: PackShape, out = allocPackOutput(sh)) =>
    addon.packGraphs(s, i instanceof Int32Array ? i : Int32Array.from(i), sh, out);

  test('the unmodified inputs pack', () => {
    expect(run(store, ids, shape)).toEqual({ realNodes: t.nodes, realEdges: t.edges, realGraphs: 2 });
  });

  test('out-of-range graph ids', () => {
    expectNativeError(() => run(store, [0, 3], shape), R(/graph id 3 at position 1 is out of range \(store has 3 graphs\)/, 'ERR_GNN_GRAPH_ID'));
    expectNativeError(() => run(store, [-1], shape), R(/graph id -1 at position 0/, 'ERR_GNN_GRAPH_ID'));
  });

  test('a shape too small names the numbers', () => {
    expectNativeError(() => run(store, ids, { ...shape, nodes: t.nodes }), R(new RegExp(`nodes: ${t.nodes}.*too small.*nodes >= ${t.nodes + 1}`), 'ERR_GNN_SHAPE'));
    expectNativeError(() => run(store, ids, { ...shape, edges: t.edges - 1 }), R(/too small.*edges >= /, 'ERR_GNN_SHAPE'));
    expectNativeError(() => run(store, ids, { ...shape, graphs: 2 }), R(/graphs: 2\}.*graphs >= 3/, 'ERR_GNN_SHAPE'));
    expectNativeError(() => run(store, ids, { nodes: -1, edges: 0, graphs: 0 }, allocPackOutput(shape)), R(/shape.nodes must be in/));
    expectNativeError(() => run(store, ids, { nodes: 1, edges: 0 } as PackShape, allocPackOutput(shape)), T(/shape.graphs is missing/));
  });

  test('wrong element types and lengths in the store and the output', () => {
    const bad = (patch: Partial<Record<keyof NativeStoreArrays, unknown>>) => ({ ...store, ...patch }) as NativeStoreArrays;
    expectNativeError(() => run(bad({ distance: new Float64Array(store.distance) }), ids, shape), T(/store.distance must be a Float32Array/));
    expectNativeError(() => run(bad({ atomicNumber: new Int32Array(store.atomicNumber) }), ids, shape), T(/store.atomicNumber must be a Uint8Array/));
    expectNativeError(() => run(bad({ target: new Float32Array(3) }), ids, shape), T(/store.target must be a Float64Array/));
    expectNativeError(() => run(bad({ senderPerm: undefined }), ids, shape), T(/store.senderPerm/));
    expectNativeError(() => run(bad({ receivers: store.receivers.subarray(1) }), ids, shape), R(/store.receivers has length/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => run(bad({ edgeOffset: store.edgeOffset.subarray(1) }), ids, shape), R(/store.edgeOffset has length 3, expected 4/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => run(bad({ atomicNumber: store.atomicNumber.subarray(1) }), ids, shape), R(/store: nodeOffset\[last\]=/));
    expectNativeError(() => addon.packGraphs(store, new Float64Array([0]) as never, shape, allocPackOutput(shape)), T(/ids must be a Int32Array/));
    expectNativeError(() => run(store, ids, shape, { ...allocPackOutput(shape), recvPtr: new Int32Array(shape.nodes) }), R(/out.recvPtr has length/, 'ERR_GNN_LENGTH'));
    expectNativeError(() => run(store, ids, shape, { ...allocPackOutput(shape), mask: new Float64Array(shape.graphs) }), T(/out.mask must be a Float32Array/));
    expectNativeError(() => run(store, ids, shape, { ...allocPackOutput(shape), nodeGraph: new Uint8Array(shape.nodes) as never }), T(/out.nodeGraph must be a Int32Array/));
    expectNativeError(() => addon.packGraphs(store, Int32Array.from(ids), shape, undefined as never), T(/out must be an object/));
    expectNativeError(() => addon.packGraphs(null as never, Int32Array.from(ids), shape, allocPackOutput(shape)), T(/store must be an object/));
  });

  test('corrupt stores: unsorted edges, endpoints and permutations out of range, bad offsets', () => {
    const unsorted = copyStore(store);
    const e0 = unsorted.edgeOffset[0];
    [unsorted.receivers[e0], unsorted.receivers[e0 + 5]] = [unsorted.receivers[e0 + 5], unsorted.receivers[e0]];
    expectNativeError(() => run(unsorted, [0], { nodes: 5, edges: 20, graphs: 2 }), R(/store graph 0 .*not sorted by receiver/, 'ERR_GNN_STORE'));
    expectNativeError(() => addon.validateStore(unsorted), R(/store: graph 0 edges not sorted by receiver at edge/));

    const far = copyStore(store);
    far.senders[far.edgeOffset[1]] = 99;
    expectNativeError(() => run(far, [1], { nodes: 4, edges: 6, graphs: 2 }), R(/store graph 1 has an edge endpoint out of range/, 'ERR_GNN_STORE'));
    expectNativeError(() => addon.validateStore(far), R(/store: graph 1 edge 0 has endpoint out of range/));
    const neg = copyStore(store);
    neg.receivers[neg.edgeOffset[2]] = -1;
    expectNativeError(() => run(neg, [2], { nodes: 6, edges: 30, graphs: 2 }), R(/store graph 2/, 'ERR_GNN_STORE'));

    const perm = copyStore(store);
    perm.senderPerm[3] = 1000;
    expectNativeError(() => run(perm, [0], { nodes: 5, edges: 20, graphs: 2 }), R(/store graph 0 has a senderPerm entry/, 'ERR_GNN_STORE'));
    expectNativeError(() => addon.validateStore(perm), R(/senderPerm is not a permutation/));
    const dup = copyStore(store);
    dup.senderPerm[1] = dup.senderPerm[0];
    expectNativeError(() => addon.validateStore(dup), R(/senderPerm is not a permutation/));
    const unsortedPerm = copyStore(store);
    unsortedPerm.senderPerm.subarray(0, 12).reverse();
    // The permutation's order is a store invariant checked once by validateStore
    // (packing range-checks every index but trusts the order).
    expectNativeError(() => addon.validateStore(unsortedPerm), R(/senderPerm not sorted by sender/));

    const offs = copyStore(store);
    offs.nodeOffset[1] = offs.nodeOffset[2] + 1;
    expectNativeError(() => run(offs, [0], shape), R(/store: nodeOffset decreases at graph 1/));
    const offs2 = copyStore(store);
    offs2.edgeOffset[0] = 1;
    expectNativeError(() => run(offs2, [0], shape), R(/edgeOffset\[0\] must be 0/));
  });

  test('detached store, ids and output buffers', () => {
    for (const key of ['senders', 'distance', 'nodeOffset', 'target'] as const) {
      const s = copyStore(store);
      detach(s[key]);
      expectNativeError(() => run(s, ids, shape), T(new RegExp(`store.${key} is backed by a detached ArrayBuffer`)));
    }
    const i = Int32Array.from(ids);
    detach(i);
    expectNativeError(() => run(store, i, shape), T(/ids is backed by a detached ArrayBuffer/));
    const out = allocPackOutput(shape);
    detach(out.sendPerm);
    expectNativeError(() => run(store, ids, shape, out), T(/out.sendPerm is backed by a detached ArrayBuffer/));
  });
});

describe('thread control rejects bad counts', () => {
  test('setThreads(0), setThreads(2000), setThreads("2")', () => {
    const before = addon.getThreads();
    expectNativeError(() => addon.setThreads(0), R(/threads must be in \[1, 1024\], got 0/));
    expectNativeError(() => addon.setThreads(2000), R(/threads must be in/));
    expectNativeError(() => addon.setThreads('2' as never), T(/threads must be a number/));
    expect(addon.getThreads()).toBe(before);
  });
});
