/**
 * Plain-JavaScript helpers every child snippet of {@link runInChild} can call
 * (the child has no TypeScript): seeded random numbers, valid graph stores,
 * packed batches, structure batches and a small model with its plan. Kept
 * deliberately small and self-contained; the TS helpers remain the oracle.
 */
import { mulberry32 } from '../../src/data/split';

export const CHILD_PRELUDE = String.raw`
const rng = ${mulberry32.toString()};
// A valid store: graph g has sizes[g] nodes, fully connected, receiver-sorted,
// senderPerm the stable sort by sender.
function makeStore(sizes, seed = 1) {
  const r = rng(seed);
  const nodeOffset = [0], edgeOffset = [0], z = [], snd = [], rcv = [], dist = [], perm = [], target = [];
  for (const n of sizes) {
    for (let i = 0; i < n; i++) z.push(1 + Math.floor(r() * 8));
    const local = [];
    for (let q = 0; q < n; q++) for (let s = 0; s < n; s++) if (s !== q) local.push([s, q]);
    for (const [s, q] of local) { snd.push(s); rcv.push(q); dist.push(0.8 + 3 * r()); }
    const order = local.map((_, i) => i).sort((a, b) => local[a][0] - local[b][0] || a - b);
    perm.push(...order);
    nodeOffset.push(nodeOffset[nodeOffset.length - 1] + n);
    edgeOffset.push(edgeOffset[edgeOffset.length - 1] + local.length);
    target.push(r() * 2 - 1);
  }
  return {
    nodeOffset: Int32Array.from(nodeOffset), edgeOffset: Int32Array.from(edgeOffset),
    atomicNumber: Uint8Array.from(z), senders: Int32Array.from(snd), receivers: Int32Array.from(rcv),
    distance: Float32Array.from(dist), senderPerm: Int32Array.from(perm), target: Float64Array.from(target),
  };
}
const STORE_KEYS = ['nodeOffset', 'edgeOffset', 'atomicNumber', 'senders', 'receivers', 'distance', 'senderPerm', 'target'];
const OUT_KEYS = ['atomicNumber', 'nodeGraph', 'senders', 'receivers', 'distance', 'nNode', 'nEdge', 'target', 'mask', 'recvPtr', 'sendPerm', 'sendPtr'];
// The padded shape (one padding graph, one padding node) of graph ids.
function shapeFor(store, ids) {
  let nodes = 0, edges = 0;
  for (const g of ids) { nodes += store.nodeOffset[g + 1] - store.nodeOffset[g]; edges += store.edgeOffset[g + 1] - store.edgeOffset[g]; }
  return { nodes: nodes + 1, edges, graphs: ids.length + 1 };
}
function makeOut(shape, F = Float32Array) {
  const N = shape.nodes, E = shape.edges, G = shape.graphs;
  return {
    atomicNumber: new Int32Array(N), nodeGraph: new Int32Array(N), senders: new Int32Array(E), receivers: new Int32Array(E),
    distance: new F(E), nNode: new Int32Array(G), nEdge: new Int32Array(G), target: new F(G), mask: new F(G),
    recvPtr: new Int32Array(N + 1), sendPerm: new Int32Array(E), sendPtr: new Int32Array(N + 1),
  };
}
// A copy of obj whose property key is defined by a getter.
function withGetter(obj, key, get) {
  const o = { ...obj };
  delete o[key];
  Object.defineProperty(o, key, { get, enumerable: true, configurable: true });
  return o;
}
// A typed array of n elements on a resizable ArrayBuffer (filled from src when given).
function resizableCopy(src) {
  const T = src.constructor;
  const buf = new ArrayBuffer(src.byteLength, { maxByteLength: Math.max(8, src.byteLength * 2) });
  const a = new T(buf);
  a.set(src);
  return a;
}
function transferAway(typed) {
  structuredClone(typed.buffer, { transfer: [typed.buffer] });
}
// Random structures: S structures of n atoms in a box of side L (Å); periodic when pbc.
function makeStructures(S, n, { seed = 7, L = 8, pbc = false } = {}) {
  const r = rng(seed);
  const atomOffset = new Int32Array(S + 1);
  for (let s = 0; s < S; s++) atomOffset[s + 1] = atomOffset[s] + n;
  const positions = new Float64Array(S * n * 3);
  for (let i = 0; i < positions.length; i++) positions[i] = r() * L;
  const cells = new Float64Array(S * 9);
  const flags = new Uint8Array(S * 3);
  for (let s = 0; s < S; s++) {
    cells[s * 9] = L; cells[s * 9 + 4] = L; cells[s * 9 + 8] = L;
    if (pbc) flags.fill(1, s * 3, s * 3 + 3);
  }
  return { atomOffset, positions, cells, pbc: flags };
}
const SMALL_CONFIG = { kind: 'mpeu', latent: 8, passes: 1, basis: 8, numClasses: 10, readoutHidden: 4 };
// A plan, parameters and a packed batch of the given store.
function makeModel({ sizes = [4, 5, 3, 6], dtype = 'float32', config = SMALL_CONFIG, seed = 3 } = {}) {
  const F = dtype === 'float64' ? Float64Array : Float32Array;
  const store = makeStore(sizes, seed);
  const ids = Int32Array.from(sizes.map((_, i) => i));
  const shape = shapeFor(store, ids);
  const inputs = makeOut(shape, F);
  addon.packGraphs(store, ids, shape, inputs);
  const plan = addon.createPlan(config, shape, dtype);
  const P = addon.modelLayout(config).total;
  const r = rng(seed + 1);
  const params = new F(P);
  for (let i = 0; i < P; i++) params[i] = (r() - 0.5) * 0.2;
  return { store, ids, shape, inputs, plan, P, F, params, grads: new F(P), m: new F(P), v: new F(P),
           adam: { lr: 1e-3, bc1: 0.1, bc2: 0.001 }, pred: new F(shape.graphs), config, dtype };
}
// {name, code, message} of what fn throws (synchronously), or null.
function thrown(fn) {
  try { fn(); return null; } catch (e) { return { name: e && e.name, code: e && e.code, message: String(e && e.message) }; }
}
async function rejected(p) {
  try { await p; return null; } catch (e) { return { name: e && e.name, code: e && e.code, message: String(e && e.message) }; }
}
`;
