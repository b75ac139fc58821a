/**
 * Regression tests of issue 14, findings 3, 4 and 6 (native part): aliasing
 * outputs, overflowing index arithmetic, extreme geometry, batches whose row
 * pointers lie, arguments of the wrong JS type, and the flop counter. Every
 * case runs in a child process (a crash or a hang is a failed test).
 */
import { expectCoded, runCleanly, type CodedValue as Coded } from '../helpers/child';

const run = (body: string, timeoutMs = 60_000): unknown => runCleanly(body, timeoutMs);

describe('finding 3: packGraphs outputs that alias inputs are refused', () => {
  const setup = `const store = makeStore(Array.from({ length: 50 }, (_, i) => 5 + (i % 4)));
    const ids = Int32Array.from({ length: 50 }, (_, i) => i);
    const shape = shapeFor(store, ids);
    const out = makeOut(shape);`;

  test('out.senders === store.receivers', () => {
    const v = run(`${setup}
      const ids2 = Int32Array.from({ length: 10 }, (_, i) => i);
      const sh = { nodes: store.nodeOffset[10] + 1, edges: store.receivers.length, graphs: 11 };
      const o = makeOut(sh);
      o.senders = store.receivers;
      return [thrown(() => addon.packGraphs(store, ids2, sh, o)), thrown(() => addon.packGraphs(store, ids, shape, out))];`);
    const [aliased, clean] = v as [Coded, Coded | null];
    expectCoded(aliased, 'RangeError', 'ERR_GNN_ALIAS', /out\.senders overlaps store\.receivers/);
    expect(clean).toBeNull();
  });

  test('overlap by memory range, not identity: a view into the store buffer, an output over the ids, two outputs sharing memory', () => {
    const v = run(`${setup}
      const big = new Int32Array(store.senders.length + 16);
      big.set(store.senders);
      const s2 = { ...store, senders: big.subarray(0, store.senders.length) };
      const o1 = { ...out, receivers: new Int32Array(big.buffer, 8, shape.edges <= big.length - 2 ? shape.edges : 0) };
      const idsBuf = new Int32Array(shape.graphs + ids.length);
      idsBuf.set(ids);
      const o2 = { ...out, nNode: idsBuf.subarray(ids.length - 1, ids.length - 1 + shape.graphs) };
      const ptrs = new Int32Array(2 * (shape.nodes + 1));
      const o3 = { ...out, recvPtr: ptrs.subarray(0, shape.nodes + 1), sendPtr: ptrs.subarray(shape.nodes, 2 * shape.nodes + 1) };
      return [
        thrown(() => addon.packGraphs(s2, ids, shape, o1)),
        thrown(() => addon.packGraphs(store, idsBuf.subarray(0, ids.length), shape, o2)),
        thrown(() => addon.packGraphs(store, ids, shape, o3)),
      ];`);
    const [a, b, c] = v as Coded[];
    expectCoded(a, 'RangeError', 'ERR_GNN_ALIAS', /out\.receivers overlaps store\.senders/);
    expectCoded(b, 'RangeError', 'ERR_GNN_ALIAS', /out\.nNode overlaps ids/);
    expectCoded(c, 'RangeError', 'ERR_GNN_ALIAS', /out\.recvPtr overlaps out\.sendPtr/);
  });

  test('model calls refuse outputs over input memory (grads over inputs.senders, predOut over params)', () => {
    const v = run(`const M = makeModel();
      const grads = new Float32Array(M.P + M.inputs.senders.length);
      const inputs = { ...M.inputs, senders: new Int32Array(grads.buffer, 4 * M.P, M.inputs.senders.length) };
      inputs.senders.set(M.inputs.senders);
      return [
        thrown(() => addon.lossAndGrad(M.plan, inputs, M.shape, M.params, grads.subarray(0, M.P + 1).subarray(1))),
        thrown(() => addon.predict(M.plan, M.inputs, M.shape, M.params, M.params.subarray(0, M.shape.graphs))),
        thrown(() => addon.gatherRows(new Float32Array(8), new Int32Array([0, 1]), 4, new Float32Array(new Int32Array([0, 1]).buffer))),
      ];`);
    const [a, b] = v as Coded[];
    expectCoded(a, 'RangeError', 'ERR_GNN_ALIAS', /grads overlaps inputs\.senders/);
    expectCoded(b, 'RangeError', 'ERR_GNN_ALIAS', /predOut overlaps params/);
  });

  test('store indices near INT32_MAX are a located store error (no overflow before the check)', () => {
    const v = run(`const store = makeStore([4, 5, 6]);
      store.senders[3] = 2147483647; store.receivers[20] = 2147483600; store.senderPerm[25] = 2147483647;
      const ids = Int32Array.from([2, 1, 0]);
      const shape = shapeFor(makeStore([4, 5, 6]), ids);
      return thrown(() => addon.packGraphs(store, ids, shape, makeOut(shape)));`);
    expectCoded(v, 'RangeError', 'ERR_GNN_STORE', /store graph \d/);
  });
});

describe('finding 4: extreme geometry is a named error in bounded time', () => {
  const mol = (pos: string, rule: string): string => `const b = makeStructures(1, 4);
    b.positions.set(${pos});
    const t0 = Date.now();
    const e = thrown(() => addon.buildNeighbours(b, ${rule}));
    return { e, ms: Date.now() - t0 };`;

  test.each([
    ['+-1.7e308 coordinates, cutoff 5', mol('[1.7e308, 0, 0, -1.7e308, 0, 0]', "{ kind: 'cutoff', cutoff: 5 }"), 'ERR_GNN_POSITION'],
    ['+-1.7e308 coordinates, knn 4', mol('[1.7e308, 0, 0, -1.7e308, 0, 0]', "{ kind: 'knn', k: 4 }"), 'ERR_GNN_POSITION'],
    ['NaN coordinate', mol('[NaN]', "{ kind: 'fc' }"), 'ERR_GNN_POSITION'],
    ['Infinity coordinate', mol('[0, Infinity]', "{ kind: 'knn', k: 2 }"), 'ERR_GNN_POSITION'],
  ])('%s', (_name, body, code) => {
    const v = run(body, 30_000) as { e: Coded; ms: number };
    expectCoded(v.e, 'RangeError', code);
    expect(v.ms).toBeLessThan(5000);
  });

  const periodic = (cellScale: string, rule: string): string => `const b = makeStructures(1, 3, { pbc: true, L: 4 });
    b.cells.set([${cellScale}, 0, 0, 0, ${cellScale}, 0, 0, 0, ${cellScale}]);
    const t0 = Date.now();
    const e = thrown(() => addon.buildNeighbours(b, ${rule}));
    return { e, ms: Date.now() - t0 };`;

  test.each([
    ['a 1e200 Å lattice, cutoff 5', periodic('1e200', "{ kind: 'cutoff', cutoff: 5 }"), 'ERR_GNN_CELL'],
    ['a 1e200 Å lattice, knn 4', periodic('1e200', "{ kind: 'knn', k: 4 }"), 'ERR_GNN_CELL'],
    ['an infinite lattice vector', periodic('Infinity', "{ kind: 'fc' }"), 'ERR_GNN_CELL'],
    ['cutoff 1e300 on a periodic cell', periodic('4', "{ kind: 'cutoff', cutoff: 1e300 }"), 'ERR_GNN_IMAGES'],
    ['cutoff 2^53 on a periodic cell', periodic('4', "{ kind: 'cutoff', cutoff: 2 ** 53 }"), 'ERR_GNN_IMAGES'],
    ['cutoff 1e5 on a periodic cell', periodic('4', "{ kind: 'cutoff', cutoff: 1e5 }"), 'ERR_GNN_IMAGES'],
  ])('%s', (_name, body, code) => {
    const v = run(body, 30_000) as { e: Coded; ms: number };
    expectCoded(v.e, 'RangeError', code);
    expect(v.ms).toBeLessThan(5000);
  });

  test('a huge cutoff on a molecule is every pair (not an error, not a hang); maxEdges bounds a structure before allocating', () => {
    const v = run(`const b = makeStructures(3, 30, { L: 1e7 });
      const fc = addon.buildNeighbours(b, { kind: 'fc' });
      const big = addon.buildNeighbours(b, { kind: 'cutoff', cutoff: 1e300 });
      const capped = thrown(() => addon.buildNeighbours(b, { kind: 'fc', maxEdges: 100 }));
      const cappedCut = thrown(() => addon.buildNeighbours(b, { kind: 'cutoff', cutoff: 1e9, maxEdges: 100 }));
      const cappedKnn = thrown(() => addon.buildNeighbours(b, { kind: 'knn', k: 10, maxEdges: 100 }));
      const asyncBad = thrown(() => addon.buildNeighboursAsync({ ...b, positions: b.positions.map((x, i) => (i === 0 ? -1.7e308 : x)) }, { kind: 'fc' }));
      return { fc: fc.senders.length, big: big.senders.length, capped, cappedCut, cappedKnn, asyncBad };`) as Record<string, unknown>;
    expect(v.big).toBe(v.fc);
    expect(v.fc).toBe(3 * 30 * 29);
    expectCoded(v.capped, 'RangeError', 'ERR_GNN_TOO_MANY_EDGES', /structure 0 .*limit of 100/);
    expectCoded(v.cappedCut, 'RangeError', 'ERR_GNN_TOO_MANY_EDGES');
    expectCoded(v.cappedKnn, 'RangeError', 'ERR_GNN_TOO_MANY_EDGES');
    expectCoded(v.asyncBad, 'RangeError', 'ERR_GNN_POSITION');
  });
});

describe('finding 6: entry points check what they trust', () => {
  test('receivers that recvPtr cannot describe, a sendPerm that repeats an edge, a sendPtr that lies', () => {
    const v = run(`const M = makeModel();
      const run = (patch) => thrown(() => addon.lossAndGrad(M.plan, { ...M.inputs, ...patch }, M.shape, M.params, M.grads));
      const r = M.inputs.receivers.slice(); [r[0], r[r.length - 2]] = [r[r.length - 2], r[0]];
      const sp = M.inputs.sendPerm.slice(); sp[1] = sp[0];
      const sptr = M.inputs.sendPtr.slice(); sptr[1] += 1;
      const ok = thrown(() => addon.lossAndGrad(M.plan, M.inputs, M.shape, M.params, M.grads));
      const step = thrown(() => addon.trainStep(M.plan, { ...M.inputs, receivers: r }, M.shape, M.params, M.grads, M.m, M.v, M.adam));
      return { ok, unsorted: run({ receivers: r }), repeat: run({ sendPerm: sp }), ptr: run({ sendPtr: sptr }), step };`) as Record<string, unknown>;
    expect(v.ok).toBeNull();
    expectCoded(v.unsorted, 'RangeError', 'ERR_GNN_BATCH', /recvPtr does not describe receivers/);
    expectCoded(v.repeat, 'RangeError', 'ERR_GNN_BATCH', /sendPerm\/sendPtr do not describe senders/);
    expectCoded(v.ptr, 'RangeError', 'ERR_GNN_BATCH', /sendPerm\/sendPtr do not describe senders/);
    expectCoded(v.step, 'RangeError', 'ERR_GNN_BATCH');
  });

  test('a plan capacity whose buffers cannot exist is refused before allocating (graphs = 2^31-1 was an OOM kill)', () => {
    const v = run(`return [
        thrown(() => addon.createPlan(SMALL_CONFIG, { nodes: 4, edges: 4, graphs: 2147483647 }, 'float64')),
        thrown(() => addon.createPlan(SMALL_CONFIG, { nodes: 2147483646, edges: 4, graphs: 2 })),
        thrown(() => addon.createPlan(SMALL_CONFIG, { nodes: 4, edges: 2147483647, graphs: 2 })),
      ];`) as Coded[];
    for (const e of v) expectCoded(e, 'RangeError', 'ERR_GNN_PLAN_TOO_LARGE', /MiB limit/);
  });

  test('BigInt, string and object arguments are TypeErrors with a code, never coerced', () => {
    const v = run(`const store = makeStore([3, 4]);
      const M = makeModel();
      return [
        thrown(() => addon.cudaUploadStore(store, 1n)),
        thrown(() => addon.cudaUploadStore(store, 'abc')),
        thrown(() => addon.cudaUploadStore(store, 0, {})),
        thrown(() => addon.setThreads(2n)),
        thrown(() => addon.segmentSumCsr(new Float32Array(3), new Int32Array([0, 3]), '1', new Float32Array(1))),
        thrown(() => addon.createPlan(SMALL_CONFIG, { nodes: '10', edges: 10, graphs: 2 })),
        thrown(() => addon.trainStep(M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, { ...M.adam, lr: '0.1' })),
        thrown(() => addon.createPlan({ ...SMALL_CONFIG, latent: 10n }, M.shape)),
        thrown(() => addon.buildNeighbours(makeStructures(1, 3), { kind: 'cutoff', cutoff: '5' })),
        thrown(() => addon.buildNeighbours(makeStructures(1, 3), { kind: 'knn', k: { valueOf: () => 3 } })),
        thrown(() => addon.gemmBench(1e9, 4096, 4096, 1)),
      ];`) as Coded[];
    for (const e of v.slice(0, 10)) {
      expect(e).not.toBeNull();
      expect(e.name).toBe('TypeError');
      expect(e.code).toBe('ERR_GNN_TYPE');
      expect(e.message).toMatch(/must be a number, got (a BigInt|a string|an object)/);
    }
    expect(v[10]).toMatchObject({ name: 'RangeError', code: /^ERR_GNN_/ });
  });

  test('the flop counter is per thread: 4 worker threads each report their own work; a step returns its flops', () => {
    const v = run(`const { Worker } = require('worker_threads');
      const M = makeModel();
      addon.resetFlops();
      const r = addon.trainStep(M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, M.adam);
      const one = addon.flopsCount();
      addon.resetFlops();
      const ra = await addon.trainStepAsync(M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, M.adam);
      const oneAsync = addon.flopsCount();
      const src = 'const { parentPort } = require("worker_threads"); const addon = require(process.env.GNN_CHILD_ADDON);' +
        CHILD_PRELUDE_SRC +
        'const M = makeModel(); addon.resetFlops();' +
        'for (let i = 0; i < 10; i++) addon.trainStep(M.plan, M.inputs, M.shape, M.params, M.grads, M.m, M.v, M.adam);' +
        'parentPort.postMessage(addon.flopsCount());';
      const workers = Array.from({ length: 4 }, () => new Worker(src, { eval: true }));
      const per = await Promise.all(workers.map((w) => new Promise((res, rej) => { w.on('message', res); w.on('error', rej); })));
      await Promise.all(workers.map((w) => w.terminate()));
      return { stepFlops: r.flops, one, asyncFlops: ra.flops, oneAsync, per };`) as {
      stepFlops: number; one: number; asyncFlops: number; oneAsync: number; per: number[];
    };
    expect(v.one).toBeGreaterThan(0);
    expect(v.stepFlops).toBe(v.one);
    expect(v.asyncFlops).toBe(v.one);
    expect(v.oneAsync).toBe(v.one);
    // Each worker runs 10 steps of the same batch: exactly 10x one step, whatever the others do.
    expect(v.per).toEqual([10 * v.one, 10 * v.one, 10 * v.one, 10 * v.one]);
  });
});
