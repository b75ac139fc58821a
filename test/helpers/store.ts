/**
 * Test helpers: seeded random numbers, small graph stores built the way the
 * real store is (edges sorted by receiver inside each graph, senderPerm a
 * stable sort by sender), output buffers for packGraphs, and a plain
 * TypeScript reference packer (the oracle for the native one).
 */
import type { FloatArray, NativeStoreArrays, PackOutput, PackShape } from '../../src/native';

import { mulberry32 } from '../../src/data/split';

/** A deterministic PRNG (mulberry32) returning floats in [0, 1). */
export const makeRng = mulberry32;

/** A uniform integer in [lo, hi]. */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** One graph before it enters a store; edges in any order, graph-local endpoints. */
export interface GraphSpec {
  atomicNumber: number[];
  /** [sender, receiver, distance] */
  edges: [number, number, number][];
  target: number;
}

/** A random graph with `nodes` nodes; `fullyConnected` gives all n(n-1) edges. */
export function randomGraph(rng: () => number, nodes: number, fullyConnected = false, edgeProb = 0.3): GraphSpec {
  const atomicNumber = Array.from({ length: nodes }, () => randInt(rng, 1, 9));
  const edges: [number, number, number][] = [];
  for (let s = 0; s < nodes; s++)
    for (let r = 0; r < nodes; r++)
      if (s !== r && (fullyConnected || rng() < edgeProb)) edges.push([s, r, 0.5 + 3 * rng()]);
  // Shuffle so that buildStore's sorting is exercised.
  for (let i = edges.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [edges[i], edges[j]] = [edges[j], edges[i]];
  }
  return { atomicNumber, edges, target: rng() * 10 - 5 };
}

/** Stable argsort of `keys` (ties keep index order). */
export function stableArgsort(keys: ArrayLike<number>): number[] {
  return Array.from({ length: keys.length }, (_, i) => i).sort((a, b) => keys[a] - keys[b] || a - b);
}

/** Builds the columnar store arrays of `graphs` (edges sorted by receiver, stable). */
export function buildStore(graphs: GraphSpec[]): NativeStoreArrays {
  const numNodes = graphs.reduce((t, g) => t + g.atomicNumber.length, 0);
  const numEdges = graphs.reduce((t, g) => t + g.edges.length, 0);
  const s: NativeStoreArrays = {
    nodeOffset: new Int32Array(graphs.length + 1),
    edgeOffset: new Int32Array(graphs.length + 1),
    atomicNumber: new Uint8Array(numNodes),
    senders: new Int32Array(numEdges),
    receivers: new Int32Array(numEdges),
    distance: new Float32Array(numEdges),
    senderPerm: new Int32Array(numEdges),
    target: new Float64Array(graphs.length),
  };
  let n0 = 0;
  let e0 = 0;
  graphs.forEach((g, gi) => {
    s.nodeOffset[gi] = n0;
    s.edgeOffset[gi] = e0;
    s.atomicNumber.set(g.atomicNumber, n0);
    const byReceiver = stableArgsort(g.edges.map((e) => e[1])).map((i) => g.edges[i]);
    byReceiver.forEach(([snd, rcv, d], k) => {
      s.senders[e0 + k] = snd;
      s.receivers[e0 + k] = rcv;
      s.distance[e0 + k] = d;
    });
    stableArgsort(byReceiver.map((e) => e[0])).forEach((p, k) => (s.senderPerm[e0 + k] = p));
    s.target[gi] = g.target;
    n0 += g.atomicNumber.length;
    e0 += g.edges.length;
  });
  s.nodeOffset[graphs.length] = n0;
  s.edgeOffset[graphs.length] = e0;
  return s;
}

/** Real totals of a list of graph ids. */
export function totals(store: NativeStoreArrays, ids: ArrayLike<number>): PackShape {
  let nodes = 0;
  let edges = 0;
  for (let i = 0; i < ids.length; i++) {
    const g = ids[i];
    nodes += store.nodeOffset[g + 1] - store.nodeOffset[g];
    edges += store.edgeOffset[g + 1] - store.edgeOffset[g];
  }
  return { nodes, edges, graphs: ids.length };
}

type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

/** Output buffers for `shape`, pre-filled with garbage so unwritten slots show. */
export function allocPackOutput(shape: PackShape, F: FloatCtor = Float32Array): PackOutput {
  const i32 = (n: number) => new Int32Array(n).fill(-777);
  const f = (n: number): FloatArray => new F(n).fill(-777);
  return {
    atomicNumber: i32(shape.nodes),
    nodeGraph: i32(shape.nodes),
    senders: i32(shape.edges),
    receivers: i32(shape.edges),
    distance: f(shape.edges),
    nNode: i32(shape.graphs),
    nEdge: i32(shape.graphs),
    target: f(shape.graphs),
    mask: f(shape.graphs),
    recvPtr: i32(shape.nodes + 1),
    sendPerm: i32(shape.edges),
    sendPtr: i32(shape.nodes + 1),
  };
}

/** Plain arrays of a packed batch (numbers; floats as float64). */
export interface PlainPack {
  atomicNumber: number[];
  nodeGraph: number[];
  senders: number[];
  receivers: number[];
  distance: number[];
  nNode: number[];
  nEdge: number[];
  target: number[];
  mask: number[];
  recvPtr: number[];
  sendPerm: number[];
  sendPtr: number[];
}

/** Converts typed output buffers to plain arrays for comparisons. */
export function toPlain(out: PackOutput): PlainPack {
  const a = (x: ArrayLike<number>) => Array.from(x);
  return {
    atomicNumber: a(out.atomicNumber), nodeGraph: a(out.nodeGraph), senders: a(out.senders),
    receivers: a(out.receivers), distance: a(out.distance), nNode: a(out.nNode), nEdge: a(out.nEdge),
    target: a(out.target), mask: a(out.mask), recvPtr: a(out.recvPtr), sendPerm: a(out.sendPerm),
    sendPtr: a(out.sendPtr),
  };
}

/** CSR row pointers of a sorted key list over `rows` rows. */
function rowPtrOf(sortedKeys: number[], rows: number): number[] {
  const ptr = new Array<number>(rows + 1).fill(0);
  for (const k of sortedKeys) ptr[k + 1]++;
  for (let r = 0; r < rows; r++) ptr[r + 1] += ptr[r];
  return ptr;
}

/**
 * Reference packer, straight from the contract in native/core/pack.h (Jraph's
 * padding convention). `round` maps float values to the output precision.
 */
export function referencePack(
  store: NativeStoreArrays,
  ids: ArrayLike<number>,
  shape: PackShape,
  round: (x: number) => number = Math.fround,
): PlainPack {
  const t = totals(store, ids);
  const exact = shape.nodes === t.nodes && shape.edges === t.edges && shape.graphs === t.graphs;
  const p: PlainPack = {
    atomicNumber: [], nodeGraph: [], senders: [], receivers: [], distance: [], nNode: [], nEdge: [],
    target: [], mask: [], recvPtr: [], sendPerm: [], sendPtr: [],
  };
  let ns = 0;
  for (let i = 0; i < ids.length; i++) {
    const g = ids[i];
    const n0 = store.nodeOffset[g];
    const n = store.nodeOffset[g + 1] - n0;
    const e0 = store.edgeOffset[g];
    const ne = store.edgeOffset[g + 1] - e0;
    for (let j = 0; j < n; j++) {
      p.atomicNumber.push(store.atomicNumber[n0 + j]);
      p.nodeGraph.push(i);
    }
    for (let k = 0; k < ne; k++) {
      p.senders.push(store.senders[e0 + k] + ns);
      p.receivers.push(store.receivers[e0 + k] + ns);
      p.distance.push(round(store.distance[e0 + k]));
    }
    p.nNode.push(n);
    p.nEdge.push(ne);
    p.target.push(round(store.target[g]));
    p.mask.push(1);
    ns += n;
  }
  if (!exact) {
    const padNodes = shape.nodes - t.nodes;
    const padEdges = shape.edges - t.edges;
    for (let j = 0; j < padNodes; j++) {
      p.atomicNumber.push(0);
      p.nodeGraph.push(ids.length);
    }
    for (let k = 0; k < padEdges; k++) {
      p.senders.push(t.nodes);
      p.receivers.push(t.nodes);
      p.distance.push(0);
    }
    for (let i = ids.length; i < shape.graphs; i++) {
      const pad = i === ids.length;
      p.nNode.push(pad ? padNodes : 0);
      p.nEdge.push(pad ? padEdges : 0);
      p.target.push(0);
      p.mask.push(0);
    }
  }
  p.recvPtr = rowPtrOf(p.receivers, shape.nodes);
  p.sendPerm = stableArgsort(p.senders);
  p.sendPtr = rowPtrOf(p.sendPerm.map((e) => p.senders[e]), shape.nodes);
  return p;
}

/** Detaches `a`'s ArrayBuffer (its length becomes 0), as a transfer would. */
export function detach(a: ArrayBufferView): void {
  const buf = a.buffer as ArrayBuffer & { transfer?: () => ArrayBuffer };
  if (typeof buf.transfer === 'function') buf.transfer();
  else structuredClone(buf, { transfer: [buf] });
  if (buf.byteLength !== 0) throw new Error('detach failed');
}
