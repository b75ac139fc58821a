/**
 * The body of one native fuzz child (see test/fuzz/native-fuzz.test.ts), run
 * by {@link runInChild}: fast-check drives every export of the addon with
 * calls built as "a valid call, then up to four mutations" (a replaced
 * argument or property, a deleted property, an element set to an extreme
 * value, a wrong-length / byteOffset / SharedArrayBuffer / resizable /
 * detached array, a getter returning a fresh array, a buffer transferred away
 * after an async call starts, an absurd shape field) or with wholly random
 * arguments. The property: the call returns (or resolves), or it throws (or
 * rejects) an error whose `code` is a string starting with ERR_GNN_; and a
 * correct call afterwards still works. A crash or a hang ends the child: the
 * case being run is in GNN_FUZZ_CASE_FILE, so the parent can report it.
 *
 * Inputs (environment): GNN_FUZZ_SEED, GNN_FUZZ_MS (time budget),
 * GNN_FUZZ_EXPORTS (comma-separated export names; all when empty),
 * GNN_FUZZ_CASE_FILE. Returns {calls, runs, perExport, violation}.
 */
export const FUZZ_CHILD_BODY = String.raw`
const fc = require('fast-check');
const fs = require('fs');
const seed = Number(process.env.GNN_FUZZ_SEED || 1);
const budgetMs = Number(process.env.GNN_FUZZ_MS || 5000);
const caseFile = process.env.GNN_FUZZ_CASE_FILE;
const only = (process.env.GNN_FUZZ_EXPORTS || '').split(',').filter(Boolean);

const INTS = [-1, 0, 1, 2, 3, 7, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -(2 ** 31), 2 ** 53, 1e300, NaN, Infinity, -Infinity, -0, 0.5];
const FLOATS = [NaN, Infinity, -Infinity, 1.7e308, -1.7e308, 1e200, 5e-324, -0, 0, 1, -1, 1e8, 1e9, 2 ** 53];
const TYPED = ['Int32Array', 'Float32Array', 'Float64Array', 'Uint8Array', 'Uint32Array', 'Int8Array', 'BigInt64Array'];

// ---- recipes: JSON values that describe an argument, materialised in the child ----
const recipeArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('typed'), ctor: fc.constantFrom(...TYPED), len: fc.oneof(fc.nat(12), fc.constantFrom(0, 1, 64, 1000)),
      fill: fc.constantFrom('zero', 'small', 'extreme'), mem: fc.constantFrom('plain', 'plain', 'shared', 'offset', 'resizable', 'detached') }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('num'), v: fc.constantFrom(...INTS, ...FLOATS) }) },
  { weight: 1, arbitrary: fc.constantFrom({ t: 'undef' }, { t: 'null' }, { t: 'str' }, { t: 'bigint' }, { t: 'obj' }, { t: 'arr' }, { t: 'proxy' },
      { t: 'bool' }, { t: 'sym' }, { t: 'fn' }, { t: 'plan' }, { t: 'numstr' }) },
);

function fillTyped(a, fill, r) {
  const big = a instanceof BigInt64Array;
  for (let i = 0; i < a.length; i++) {
    let v = fill === 'zero' ? 0 : fill === 'small' ? Math.floor(r() * 8) : [0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 255, NaN, Infinity, 1e308][Math.floor(r() * 9)];
    if (big) a[i] = BigInt(Number.isFinite(v) ? Math.trunc(v) : 0); else a[i] = v;
  }
  return a;
}
function memOf(src, mem) {
  if (mem === 'plain') return src;
  const T = src.constructor, n = src.length, B = src.BYTES_PER_ELEMENT;
  let a;
  if (mem === 'shared') a = new T(new SharedArrayBuffer(Math.max(1, n) * B), 0, n);
  else if (mem === 'offset') a = new T(new ArrayBuffer((n + 3) * B), 3 * B, n);
  else if (mem === 'resizable') a = new T(new ArrayBuffer(n * B, { maxByteLength: 2 * n * B + 8 }));
  else { a = new T(n); a.set(src); structuredClone(a.buffer, { transfer: [a.buffer] }); return a; }
  a.set(src);
  return a;
}
let spare = null;  // a plan handle of another model (a wrong-but-valid External)
function materialise(rc, r) {
  switch (rc.t) {
    case 'typed': { const T = globalThis[rc.ctor]; return memOf(fillTyped(new T(rc.len), rc.fill, r), rc.mem); }
    case 'num': return rc.v;
    case 'undef': return undefined;
    case 'null': return null;
    case 'str': return 'abc';
    case 'numstr': return '3';
    case 'bigint': return 3n;
    case 'obj': return { nodes: 1, edges: 1, graphs: 1 };
    case 'arr': return [1, 2, 3];
    case 'proxy': return new Proxy({}, { get: () => 1 });
    case 'bool': return true;
    case 'sym': return Symbol('x');
    case 'fn': return () => 1;
    case 'plan': return spare || (spare = addon.createPlan(SMALL_CONFIG, { nodes: 4, edges: 4, graphs: 2 }));
  }
}

// ---- valid base calls, one per export ----
function smallStore(r, k) { return makeStore(Array.from({ length: k }, () => 1 + Math.floor(r() * 6)), Math.floor(r() * 1e6)); }
function packedArgs(r) {
  const store = smallStore(r, 1 + Math.floor(r() * 5));
  const G = store.nodeOffset.length - 1;
  const ids = Int32Array.from(Array.from({ length: 1 + Math.floor(r() * G) }, () => Math.floor(r() * G)));
  const shape = shapeFor(store, ids);
  const F = r() < 0.5 ? Float32Array : Float64Array;
  const out = makeOut(shape, F);
  // Half the calls carry edge directions (PaiNN): unit x vectors in the store, a [3 x edges] output.
  if (r() < 0.5) {
    store.direction = new Float32Array(3 * store.senders.length);
    for (let e = 0; e < store.senders.length; e++) store.direction[3 * e] = 1;
    out.direction = new F(3 * shape.edges);
  }
  return [store, ids, shape, out];
}
function modelArgs(r) {
  const M = makeModel({ sizes: Array.from({ length: 1 + Math.floor(r() * 4) }, () => 1 + Math.floor(r() * 5)), dtype: r() < 0.5 ? 'float32' : 'float64', seed: Math.floor(r() * 1e6) });
  return M;
}
// A model whose plan has the force pass's buffers (mostly) and whose inputs carry unit edge directions.
function forceArgs(r) {
  const M = modelArgs(r);
  M.plan = addon.createPlan(M.config, M.shape, M.dtype, { forces: r() < 0.8, forceTraining: r() < 0.6 });
  M.inputs.direction = new M.F(3 * M.shape.edges);
  for (let k = 0; k < M.shape.edges; k++) M.inputs.direction[3 * k + Math.floor(r() * 3)] = 1;
  return M;
}
function structArgs(r) {
  const b = makeStructures(1 + Math.floor(r() * 4), 1 + Math.floor(r() * 6), { seed: Math.floor(r() * 1e6), L: 2 + r() * 6, pbc: r() < 0.5 });
  const rule = [{ kind: 'fc' }, { kind: 'cutoff', cutoff: 1 + r() * 4 }, { kind: 'knn', k: 1 + Math.floor(r() * 6) }][Math.floor(r() * 3)];
  return r() < 0.5 ? [b, rule] : [b, rule, { directions: r() < 0.7 }];
}
function segArgs(r, kind) {
  const F = r() < 0.5 ? Float32Array : Float64Array, w = 1 + Math.floor(r() * 3), rows = Math.floor(r() * 5), srcRows = Math.floor(r() * 6);
  const ptr = new Int32Array(rows + 1);
  for (let i = 1; i <= rows; i++) ptr[i] = Math.min(srcRows, ptr[i - 1] + Math.floor(r() * 3));
  ptr[rows] = srcRows;
  if (rows === 0) ptr[0] = 0;
  const ids = Int32Array.from({ length: srcRows }, () => Math.floor(r() * Math.max(1, rows)));
  switch (kind) {
    case 'csr': return [new F(srcRows * w).fill(1), rows === 0 && srcRows ? Int32Array.from([0]) : ptr, w, new F(rows * w)];
    case 'sum': return [new F(srcRows * w).fill(1), ids, Math.max(1, rows), w, new F(Math.max(1, rows) * w)];
    case 'gather': return [new F(Math.max(1, rows) * w).fill(1), ids, w, new F(srcRows * w)];
    case 'csrBwd': return [new F(rows * w), ptr, w, r() < 0.5, new F(srcRows * w)];
    case 'gatherBwd': return [new F(srcRows * w), r() < 0.5 ? null : Int32Array.from({ length: srcRows }, (_, i) => srcRows - 1 - i), ptr, w, new F(rows * w)];
  }
}
const BASES = {
  info: () => [],
  setThreads: (r) => [1 + Math.floor(r() * 2)],
  getThreads: () => [],
  memcpyBench: (r) => { const n = Math.floor(r() * 64); return [new Uint8Array(n), new Uint8Array(n), 1 + Math.floor(r() * 3)]; },
  packGraphs: packedArgs,
  copyGraphSlicesBench: (r) => { const a = packedArgs(r); a[3] = makeOut(a[2], Float32Array); return [...a, 1 + Math.floor(r() * 2)]; },
  validateStore: (r) => [smallStore(r, 1 + Math.floor(r() * 5))],
  segmentSumCsr: (r) => segArgs(r, 'csr'),
  segmentMeanCsr: (r) => segArgs(r, 'csr'),
  segmentSum: (r) => segArgs(r, 'sum'),
  gatherRows: (r) => segArgs(r, 'gather'),
  segmentCsrBackward: (r) => segArgs(r, 'csrBwd'),
  gatherRowsBackward: (r) => segArgs(r, 'gatherBwd'),
  buildNeighbours: structArgs,
  buildNeighboursAsync: structArgs,
  modelLayout: () => [{ ...SMALL_CONFIG }],
  createPlan: (r) => [{ ...SMALL_CONFIG }, { nodes: Math.floor(r() * 20), edges: Math.floor(r() * 40), graphs: Math.floor(r() * 4) }, r() < 0.5 ? 'float32' : 'float64'],
  planInfo: (r) => [modelArgs(r).plan],
  releasePlan: (r) => [modelArgs(r).plan],
  forcesStep: (r) => {
    const M = forceArgs(r);
    const stress = r() < 0.5;
    return [M.plan, M.inputs, M.shape, M.params, new M.F(M.shape.graphs), new M.F(3 * M.shape.nodes),
      ...(stress ? [new M.F(6 * M.shape.graphs), new Float64Array(M.shape.graphs).fill(10)] : [])];
  },
  forceGrad: (r) => {
    const M = forceArgs(r);
    return [M.plan, M.inputs, M.shape, M.params, new Float64Array(3 * M.shape.nodes).fill(0.1), new Float64Array(M.P), ...(r() < 0.5 ? [new Float64Array(M.P)] : [])];
  },
  forceLossAndGrad: (r) => {
    const M = forceArgs(r);
    const G = M.shape.graphs;
    const stress = r() < 0.5 ? [{ targets: new M.F(6 * G), weights: new M.F(G).fill(1), volumes: new Float64Array(G).fill(10), ...(r() < 0.5 ? { out: new M.F(6 * G) } : {}) }] : [];
    return [M.plan, M.inputs, M.shape, M.params, new M.F(3 * M.shape.nodes).fill(0.1), new M.F(M.shape.nodes).fill(1), r(), new M.F(M.P),
      ...(stress.length || r() < 0.5 ? [r() < 0.5 ? null : new M.F(3 * M.shape.nodes)] : []), ...stress];
  },
  trainStep: (r) => { const M = modelArgs(r); return [M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, { ...M.adam }]; },
  trainStepAsync: (r) => { const M = modelArgs(r); return [M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, { ...M.adam, clipNorm: 1 }]; },
  lossAndGrad: (r) => { const M = modelArgs(r); return [M.plan, M.inputs, M.shape, M.params, M.grads]; },
  predict: (r) => { const M = modelArgs(r); return [M.plan, M.inputs, M.shape, M.params, M.pred]; },
  predictAsync: (r) => { const M = modelArgs(r); return [M.plan, M.inputs, M.shape, M.params, M.pred]; },
  setProfile: (r) => [modelArgs(r).plan, r() < 0.5],
  getProfile: (r) => [modelArgs(r).plan],
  takeProfileRecords: (r) => [modelArgs(r).plan],
  kernelSites: () => [],
  streamBench: (r) => [1 + Math.floor(r() * 2), 1 + Math.floor(r() * 2)],
  adamUpdate: (r) => { const F = r() < 0.5 ? Float32Array : Float64Array, n = Math.floor(r() * 20); return [new F(n).fill(0.5), new F(n).fill(0.1), new F(n), new F(n), { lr: 1e-3, bc1: 0.1, bc2: 0.01 }]; },
  flopsCount: () => [],
  resetFlops: () => [],
  gemmBench: (r) => [1 + Math.floor(r() * 32), 1 + Math.floor(r() * 16), 1 + Math.floor(r() * 16), 1],
  cudaUploadStore: (r) => [smallStore(r, 3), 0, 1],
  cudaCreateModel: (r) => [{ ...SMALL_CONFIG }, new Float32Array(addon.modelLayout(SMALL_CONFIG).total)],
  cudaCreatePlan: (r) => [materialise({ t: 'plan' }), materialise({ t: 'plan' }), { nodes: 8, edges: 8, graphs: 2 }, false],
  cudaTrainStep: (r) => [materialise({ t: 'plan' }), new Int32Array([0]), { lr: 1e-3, bc1: 0.1, bc2: 0.01 }],
  cudaPredict: (r) => [materialise({ t: 'plan' }), new Int32Array([0]), new Float32Array(2)],
  cudaDownloadParams: (r) => [materialise({ t: 'plan' }), new Float32Array(4)],
  cudaPlanInfo: (r) => [materialise({ t: 'plan' })],
};
const names = Object.keys(addon).filter((k) => typeof addon[k] === 'function');
const missing = names.filter((k) => !(k in BASES));
if (missing.length) return { missing };
const targets = only.length ? names.filter((k) => only.includes(k)) : names;

// ---- mutations ----
const mutationArb = fc.record({
  kind: fc.constantFrom('arg', 'prop', 'delete', 'elem', 'fresh', 'len', 'mem', 'shapeField', 'detachAfter', 'alias', 'alias'),
  slot: fc.nat(), key: fc.nat(), index: fc.nat(), recipe: recipeArb,
  value: fc.constantFrom(...INTS, ...FLOATS), mem: fc.constantFrom('shared', 'offset', 'resizable', 'detached'), delta: fc.constantFrom(-1, 1, 5),
});
const caseArb = fc.record({
  name: fc.constantFrom(...targets), base: fc.nat(), random: fc.boolean(),
  mutations: fc.array(mutationArb, { minLength: 0, maxLength: 4 }), randomArgs: fc.array(recipeArb, { maxLength: 9 }),
});
const isPlainObj = (v) => v !== null && typeof v === 'object' && !ArrayBuffer.isView(v) && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

// A getter returning a fresh copy on every read. An exception it throws (e.g.
// slicing an array another mutation detached) is the caller's own and must
// reach the caller unchanged: it is tagged so checkError accepts it.
function freshGetter(cur) {
  return () => {
    try { return cur.slice(); } catch (e) { e.fromGetter = true; throw e; }
  };
}
function applyMutations(args, muts, r) {
  const after = [];
  for (const m of muts) {
    if (!args.length) break;
    const i = m.slot % args.length;
    const holder = isPlainObj(args[i]) ? args[i] : null;
    const keys = holder ? Object.keys(holder) : [];
    const key = keys.length ? keys[m.key % keys.length] : null;
    const get = () => (holder && key !== null ? holder[key] : args[i]);
    const set = (v) => { if (holder && key !== null) holder[key] = v; else args[i] = v; };
    const cur = get();
    switch (m.kind) {
      case 'arg': args[i] = materialise(m.recipe, r); break;
      case 'prop': if (holder && key !== null) holder[key] = materialise(m.recipe, r); break;
      case 'delete': if (holder && key !== null) delete holder[key]; break;
      case 'elem': if (ArrayBuffer.isView(cur) && cur.length && !(cur instanceof BigInt64Array)) cur[m.index % cur.length] = m.value; break;
      case 'fresh': if (holder && key !== null && ArrayBuffer.isView(cur)) Object.defineProperty(holder, key, { get: freshGetter(cur), enumerable: true }); break;
      case 'len': if (ArrayBuffer.isView(cur)) { const T = cur.constructor; const n = Math.max(0, cur.length + m.delta); const a = new T(n); a.set(cur.subarray(0, Math.min(n, cur.length))); set(a); } break;
      case 'mem': if (ArrayBuffer.isView(cur)) set(memOf(cur.slice(), m.mem)); break;
      case 'shapeField': if (holder && key !== null && typeof cur === 'number') holder[key] = m.value; break;
      case 'alias': {
        // Make this array share memory with another typed array of the call.
        if (!ArrayBuffer.isView(cur)) break;
        const all = [];
        for (const a of args) {
          if (ArrayBuffer.isView(a)) all.push(a);
          else if (isPlainObj(a)) for (const v of Object.values(a)) if (ArrayBuffer.isView(v)) all.push(v);
        }
        const src = all[m.index % all.length];
        if (!src || src === cur || src.byteLength < cur.byteLength) break;
        const T = cur.constructor;
        const off = src.byteOffset + (m.delta > 0 ? 0 : Math.floor((src.byteLength - cur.byteLength) / T.BYTES_PER_ELEMENT) * T.BYTES_PER_ELEMENT);
        if (off % T.BYTES_PER_ELEMENT) break;
        set(new T(src.buffer, off, cur.length));
        break;
      }
      case 'detachAfter': if (ArrayBuffer.isView(cur) && !(cur.buffer instanceof SharedArrayBuffer)) after.push(cur); break;
    }
  }
  return after;
}

function stillWorks() {
  const out = new Float32Array(2);
  addon.segmentSumCsr(new Float32Array([1, 2, 3]), new Int32Array([0, 2, 3]), 1, out);
  if (out[0] !== 3 || out[1] !== 3) throw new Error('the addon no longer computes correctly after a bad call');
}
let detail = '';
function checkError(e, where) {
  if (e && e.fromGetter) return;  // the caller's own exception, passed through unchanged
  if (!e || typeof e.code !== 'string' || !e.code.startsWith('ERR_GNN_')) {
    detail = where + ' threw without an ERR_GNN_ code: ' + (e && e.name) + ': ' + (e && e.message);
    throw new Error(detail);
  }
}

let calls = 0, runs = 0;
const perExport = {};
const prop = fc.asyncProperty(caseArb, async (c) => {
  runs++;
  const r = rng(c.base + 1);
  let args;
  try {
    args = c.random ? c.randomArgs.map((rc) => materialise(rc, r)) : BASES[c.name](r);
  } catch (e) {
    return true;  // a base that could not be built (e.g. makeModel on a degenerate draw) is not a finding
  }
  let after;
  try {
    after = c.random ? [] : applyMutations(args, c.mutations, r);
  } catch (e) {
    return true;  // a mutation the harness itself cannot apply (e.g. slicing a detached array)
  }
  if (caseFile) fs.writeFileSync(caseFile, JSON.stringify({ seed, case: c }));
  calls++;
  perExport[c.name] = (perExport[c.name] || 0) + 1;
  let res;
  try {
    res = addon[c.name](...args);
  } catch (e) {
    checkError(e, c.name);
    try { stillWorks(); } catch (e2) { detail = 'after ' + c.name + ': ' + e2.message; throw e2; }
    return true;
  }
  if (res && typeof res.then === 'function') {
    for (const a of after) { try { structuredClone(a.buffer, { transfer: [a.buffer] }); } catch {} }
    if (after.length) gc();
    try { await res; } catch (e) { checkError(e, c.name + ' (rejected)'); }
  }
  if (c.name === 'setThreads') addon.setThreads(2);
  try { stillWorks(); } catch (e) { detail = 'after ' + c.name + ': ' + e.message; throw e; }
  return true;
});
try {
  await fc.assert(prop, { seed, numRuns: 1e9, interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false, endOnFailure: true });
} catch (e) {
  return { calls, runs, perExport, violation: (detail ? detail + '\n' : '') + String(e && e.message).slice(0, 4000) };
}
return { calls, runs, perExport, violation: null };
`;
