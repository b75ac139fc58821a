import { createPredictor, type Predictor } from '../../src/serve';
import { loadModel } from '../../src/inference/load-model';
import { molecules, smallCheckpoint } from './helpers';

let ck: string;
beforeAll(async () => {
  ck = await smallCheckpoint({ atomref: true });
});

function bitsEqual(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

describe('createPredictor', () => {
  let p: Predictor;
  beforeAll(async () => {
    p = await createPredictor(ck, { maxBatchGraphs: 16 });
  });
  afterAll(() => p.close());

  test('warm-up builds the one plan before the first call, and calls never build more', async () => {
    expect(p.stats().planBuilds).toBe(1);
    expect(p.budget.graphs).toBe(16);
    await Promise.all(Array.from({ length: 20 }, (_, i) => p.predict(molecules(1 + (i % 7), 100 + i))));
    expect(p.stats().planBuilds).toBe(1);
  });

  test('1,000 concurrent calls each get their own answer, bitwise equal to predicting the call alone', async () => {
    const calls = Array.from({ length: 1000 }, (_, i) => molecules(1 + (i % 5), 1000 + i));
    const alone: Float64Array[] = [];
    const single = await createPredictor(ck, { maxBatchGraphs: 16 });
    for (const c of calls.slice(0, 1000)) alone.push(await single.predict(c));
    await single.close();
    const before = p.stats();
    const together = await Promise.all(calls.map((c) => p.predict(c)));
    const after = p.stats();
    let mismatches = 0;
    together.forEach((r, i) => {
      if (!bitsEqual(r, alone[i])) mismatches++;
    });
    expect(mismatches).toBe(0);
    // They were batched: far fewer forward passes than calls, batches near the budget.
    const batches = after.batches - before.batches;
    expect(batches).toBeLessThan(500);
    expect((after.graphs - before.graphs) / batches).toBeGreaterThan(5);
  });

  test('results equal loadModel().predict of the same structures (same kernels, same units)', async () => {
    const mols = molecules(40, 7);
    const viaPredictor = await p.predict(mols);
    const viaModel = loadModel(ck).predict(mols);
    expect(bitsEqual(viaPredictor, viaModel)).toBe(true);
  });

  test('a call larger than the budget is split across batches, not rejected', async () => {
    const before = p.stats().batches;
    const mols = molecules(50, 3);
    const r = await p.predict(mols);
    expect(r).toHaveLength(50);
    expect(p.stats().batches - before).toBeGreaterThanOrEqual(4);
    expect(bitsEqual(r, loadModel(ck).predict(mols))).toBe(true);
  });

  test('bad structures are rejected with the structure named', async () => {
    const bad = molecules(3, 1);
    bad[2] = { ...bad[2], numbers: Uint8Array.from([200]), positions: new Float64Array(3) };
    await expect(p.predict(bad)).rejects.toMatchObject({ code: 'ERR_GNN_STRUCTURE', message: expect.stringContaining('structure 2 ') });
    await expect(p.predict([])).resolves.toHaveLength(0);
  });

  test('a structure over the edge ceiling is refused before its graph is built, naming it', async () => {
    const small = await createPredictor(ck, { maxEdgesPerStructure: 100, warmup: false });
    const mols = molecules(3, 1).filter((m) => m.numbers.length * (m.numbers.length - 1) > 100);
    await expect(small.predict(mols)).rejects.toMatchObject({ code: 'ERR_GNN_EDGE_LIMIT', message: expect.stringContaining('structure 0') });
    await small.close();
  });

  test('an aborted call rejects with ERR_GNN_ABORTED and the others still resolve', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(p.predict(molecules(2), { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_GNN_ABORTED' });
    // Aborted while its graphs are being built: it never enters the queue.
    const ac1 = new AbortController();
    const during = p.predict(molecules(2, 5), { signal: ac1.signal });
    ac1.abort();
    await expect(during).rejects.toMatchObject({ code: 'ERR_GNN_ABORTED' });
    // Abort while queued behind a busy executor.
    const ac2 = new AbortController();
    const busy = Array.from({ length: 30 }, (_, i) => p.predict(molecules(8, 50 + i)));
    const victim = p.predict(molecules(2, 99), { signal: ac2.signal });
    setImmediate(() => ac2.abort());
    const outcome = await victim.then(
      () => 'resolved',
      (e: { code?: string }) => e.code,
    );
    // Either it was already running (resolved) or it left the queue (aborted); never hangs.
    expect(['resolved', 'ERR_GNN_ABORTED']).toContain(outcome);
    await expect(Promise.all(busy)).resolves.toHaveLength(30);
  });
});

describe('queue limits and shutdown', () => {
  test('beyond maxQueue calls reject with ERR_GNN_QUEUE_FULL; accepted ones finish', async () => {
    const p = await createPredictor(ck, { maxQueue: 4 });
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => p.predict(molecules(3, i))));
    const full = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'ERR_GNN_QUEUE_FULL').length;
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    expect(full).toBeGreaterThan(0);
    expect(ok + full).toBe(12);
    expect(p.stats().rejected).toBe(full);
    await p.close();
  });

  test('close() drains accepted calls, then refuses new ones', async () => {
    const p = await createPredictor(ck);
    const inflight = Array.from({ length: 10 }, (_, i) => p.predict(molecules(4, i)));
    const closed = p.close();
    await expect(p.predict(molecules(1))).rejects.toMatchObject({ code: 'ERR_GNN_CLOSED' });
    await closed;
    const r = await Promise.all(inflight);
    expect(r.every((x) => x.length === 4 && x.every(Number.isFinite))).toBe(true);
  });

  test('options are checked', async () => {
    await expect(createPredictor(ck, { maxBatchGraphs: 0 })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
    await expect(createPredictor(ck, { maxQueueDelayMs: -1 })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
  });
});
