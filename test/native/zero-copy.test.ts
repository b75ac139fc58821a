/**
 * Zero-copy views cannot be turned into use-after-free from legal JavaScript
 * (issue 14, finding 2). Each case runs in a child process: a segfault is a
 * failed test, not a dead jest worker.
 *
 * The adversary: property getters and Proxy traps that run while the addon
 * reads its arguments (transferring or shrinking a buffer the addon already
 * looked at), getters that return a fresh array on every read, resizable
 * ArrayBuffers, and buffers transferred away (structuredClone) while an async
 * worker runs. The contract: every argument property is read exactly once,
 * pointers are taken after all JavaScript has run, resizable buffers are
 * refused (ERR_GNN_RESIZABLE), and async calls work on private copies of
 * their inputs and copy results back only into buffers that are still
 * attached (else ERR_GNN_DETACHED, nothing written).
 */
import { expectCoded, runCleanly, type CodedValue as Coded } from '../helpers/child';

const run = (body: string, timeoutMs = 90_000): unknown => runCleanly(body, timeoutMs);

// A store large enough that its arrays live in their own mappings (freed
// memory is unmapped, so a read through a dangling pointer faults).
const BIG_STORE = 'const store = makeStore(Array.from({ length: 400 }, (_, i) => 10 + (i % 7)));';
// A model whose step takes tens of milliseconds (time for JS to run while a worker reads).
const BIG_MODEL =
  "const M = makeModel({ sizes: Array.from({ length: 120 }, (_, i) => 12 + (i % 9)), config: { kind: 'mpeu', latent: 64, passes: 3, basis: 150 } });";

describe('sync calls: JS that runs while arguments are read cannot invalidate a view', () => {
  test('1 validateStore: a Proxy trap shrinks a resizable store array', () => {
    const v = run(`${BIG_STORE}
      const s = { ...store, senders: resizableCopy(store.senders) };
      const p = new Proxy(s, { get(t, k) { if (k === 'target') s.senders.buffer.resize(0); return t[k]; } });
      return thrown(() => addon.validateStore(p));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_RESIZABLE', /store\.senders/);
  });

  test('2 validateStore: a getter transfers an array read before it', () => {
    const v = run(`${BIG_STORE}
      const s = withGetter(store, 'target', () => { transferAway(store.senders); gc(); return store.target; });
      return thrown(() => addon.validateStore(s));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_TYPE', /store\.senders is backed by a detached ArrayBuffer/);
  });

  test('3 packGraphs: an output getter transfers a store array', () => {
    const v = run(`${BIG_STORE}
      const ids = Int32Array.from({ length: 400 }, (_, i) => i);
      const shape = shapeFor(store, ids);
      const out = withGetter(makeOut(shape), 'sendPtr', () => { transferAway(store.receivers); gc(); return new Int32Array(shape.nodes + 1); });
      return thrown(() => addon.packGraphs(store, ids, shape, out));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_TYPE', /store\.receivers is backed by a detached ArrayBuffer/);
  });

  test('4 packGraphs: an output getter shrinks a resizable output array', () => {
    const v = run(`${BIG_STORE}
      const ids = Int32Array.from({ length: 400 }, (_, i) => i);
      const shape = shapeFor(store, ids);
      const base = makeOut(shape);
      base.senders = resizableCopy(base.senders);
      const out = withGetter(base, 'sendPtr', () => { base.senders.buffer.resize(0); return new Int32Array(shape.nodes + 1); });
      return thrown(() => addon.packGraphs(store, ids, shape, out));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_RESIZABLE', /out\.senders/);
  });

  test('5 packGraphs: a shape getter transfers the ids', () => {
    const v = run(`${BIG_STORE}
      const ids = Int32Array.from({ length: 400 }, (_, i) => i);
      const sh = shapeFor(store, ids);
      const shape = withGetter(sh, 'graphs', () => { transferAway(ids); gc(); return sh.graphs; });
      return thrown(() => addon.packGraphs(store, ids, shape, makeOut(sh)));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_TYPE', /ids is backed by a detached ArrayBuffer/);
  });

  test('6 buildNeighbours: a batch getter transfers the positions', () => {
    const v = run(`const b = makeStructures(200, 40);
      const batch = withGetter(b, 'pbc', () => { transferAway(b.positions); gc(); return b.pbc; });
      return thrown(() => addon.buildNeighbours(batch, { kind: 'fc' }));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_TYPE', /batch\.positions is backed by a detached ArrayBuffer/);
  });

  test('7 buildNeighbours: a rule getter (read after the batch) transfers the positions', () => {
    const v = run(`const b = makeStructures(200, 40);
      const rule = withGetter({ kind: 'cutoff', cutoff: 4 }, 'cutoff', () => { transferAway(b.positions); gc(); return 4; });
      return thrown(() => addon.buildNeighbours(b, rule));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_TYPE', /batch\.positions is backed by a detached ArrayBuffer/);
  });

  test('8 predict: an inputs getter transfers an input array read before it', () => {
    const v = run(`${BIG_MODEL}
      const inputs = withGetter(M.inputs, 'sendPtr', () => { transferAway(M.inputs.receivers); gc(); return M.inputs.sendPtr; });
      return thrown(() => addon.predict(M.plan, inputs, M.shape, M.params, M.pred));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_TYPE', /inputs\.receivers is backed by a detached ArrayBuffer/);
  });

  test('9 trainStep: an Adam option getter transfers the params', () => {
    const v = run(`${BIG_MODEL}
      const adam = withGetter(M.adam, 'lr', () => { transferAway(M.params); gc(); return 1e-3; });
      return thrown(() => addon.trainStep(M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, adam));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_TYPE', /params is backed by a detached ArrayBuffer/);
  });

  test('10 lossAndGrad: a Proxy trap shrinks resizable grads', () => {
    const v = run(`${BIG_MODEL}
      const grads = resizableCopy(M.grads);
      const inputs = new Proxy(M.inputs, { get(t, k) { if (k === 'sendPtr') grads.buffer.resize(0); return t[k]; } });
      return thrown(() => addon.lossAndGrad(M.plan, inputs, M.shape, M.params, grads));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_RESIZABLE', /grads/);
  });

  test('11 trainStep: a shape getter shrinks a resizable input array', () => {
    const v = run(`${BIG_MODEL}
      const inputs = { ...M.inputs, receivers: resizableCopy(M.inputs.receivers) };
      const shape = withGetter(M.shape, 'graphs', () => { inputs.receivers.buffer.resize(0); return M.shape.graphs; });
      return thrown(() => addon.trainStep(M.plan, inputs, shape, M.params, M.grads, M.m, M.v, M.adam));`);
    expectCoded(v, 'TypeError', 'ERR_GNN_RESIZABLE', /inputs\.receivers/);
  });
});

describe('async calls: JS that runs while a worker computes cannot invalidate its memory', () => {
  test('12 buildNeighboursAsync: positions transferred away right after the call', () => {
    const v = run(`const b = makeStructures(400, 60, { pbc: true, L: 9 });
      const copy = { ...b, positions: b.positions.slice() };
      const want = addon.buildNeighbours(copy, { kind: 'cutoff', cutoff: 5 });
      const p = addon.buildNeighboursAsync(b, { kind: 'cutoff', cutoff: 5 });
      transferAway(b.positions); gc();
      const got = await p;
      return { same: Buffer.compare(Buffer.from(got.distance.buffer), Buffer.from(want.distance.buffer)) === 0 &&
                     got.senders.length === want.senders.length, edges: got.senders.length };`);
    expect(v).toMatchObject({ same: true });
  });

  test('13 buildNeighboursAsync: getters return a fresh array on every read', () => {
    const v = run(`const b = makeStructures(400, 60, { pbc: true, L: 9 });
      const want = addon.buildNeighbours(b, { kind: 'cutoff', cutoff: 5 });
      const batch = {};
      for (const k of ['atomOffset', 'positions', 'cells', 'pbc']) Object.defineProperty(batch, k, { get: () => b[k].slice() });
      const p = addon.buildNeighboursAsync(batch, { kind: 'cutoff', cutoff: 5 });
      for (let i = 0; i < 3; i++) { gc(); new Float64Array(1 << 20).fill(1); }
      const got = await p;
      return { same: Buffer.compare(Buffer.from(got.distance.buffer), Buffer.from(want.distance.buffer)) === 0 };`);
    expect(v).toEqual({ same: true });
  });

  test('14 buildNeighboursAsync: a resizable positions buffer is refused', () => {
    const v = run(`const b = makeStructures(400, 60);
      const batch = { ...b, positions: resizableCopy(b.positions) };
      const e = thrown(() => { const p = addon.buildNeighboursAsync(batch, { kind: 'fc' }); batch.positions.buffer.resize(0); return p; });
      return e;`);
    expectCoded(v, 'TypeError', 'ERR_GNN_RESIZABLE', /batch\.positions/);
  });

  test('15 predictAsync: params transferred away right after the call', () => {
    const v = run(`${BIG_MODEL}
      const want = addon.predict(M.plan, M.inputs, M.shape, M.params.slice(), M.pred);
      const p = addon.predictAsync(M.plan, M.inputs, M.shape, M.params, M.pred);
      transferAway(M.params); gc();
      const got = await p;
      return { got, want };`);
    const { got, want } = v as { got: number; want: number };
    expect(got).toBe(want);
  });

  test('16 predictAsync: getters return a fresh array on every read', () => {
    const v = run(`${BIG_MODEL}
      const want = addon.predict(M.plan, M.inputs, M.shape, M.params, M.pred);
      const inputs = {};
      for (const k of OUT_KEYS) Object.defineProperty(inputs, k, { get: () => M.inputs[k].slice() });
      const p = addon.predictAsync(M.plan, inputs, M.shape, M.params, M.pred);
      for (let i = 0; i < 3; i++) { gc(); new Float64Array(1 << 20).fill(1); }
      return { got: await p, want };`);
    const { got, want } = v as { got: number; want: number };
    expect(got).toBe(want);
  });

  test('17 trainStepAsync: params transferred away mid-step -> ERR_GNN_DETACHED, nothing written', () => {
    const v = run(`${BIG_MODEL}
      const p = addon.trainStepAsync(M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, M.adam);
      transferAway(M.params); gc();
      const e = await rejected(p);
      return { e, mUntouched: M.m.every((x) => x === 0), gradsUntouched: M.grads.every((x) => x === 0) };`);
    const r = v as { e: Coded; mUntouched: boolean; gradsUntouched: boolean };
    expectCoded(r.e, 'Error', 'ERR_GNN_DETACHED', /params/);
    expect(r.mUntouched).toBe(true);
    expect(r.gradsUntouched).toBe(true);
  });

  test('18 trainStepAsync: getters return a fresh array on every read', () => {
    const v = run(`${BIG_MODEL}
      const want = addon.lossAndGrad(M.plan, M.inputs, M.shape, M.params, new M.F(M.P));
      const inputs = {};
      for (const k of OUT_KEYS) Object.defineProperty(inputs, k, { get: () => M.inputs[k].slice() });
      const p = addon.trainStepAsync(M.plan, inputs, M.shape, M.params, M.grads, M.m, M.v, M.adam);
      for (let i = 0; i < 3; i++) { gc(); new Float64Array(1 << 20).fill(1); }
      const r = await p;
      return { got: r.loss, want };`);
    const { got, want } = v as { got: number; want: number };
    expect(got).toBe(want);
  });

  test('19 trainStepAsync: a resizable Adam moment buffer is refused', () => {
    const v = run(`${BIG_MODEL}
      const m = resizableCopy(M.m);
      return thrown(() => { const p = addon.trainStepAsync(M.plan, M.inputs, M.shape, M.params, M.grads, m, M.v, M.adam); m.buffer.resize(0); return p; });`);
    expectCoded(v, 'TypeError', 'ERR_GNN_RESIZABLE', /adamM/);
  });
});
