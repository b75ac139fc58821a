/**
 * The predictor's work budget (issue 21, items 1 and 2): per-request edge and
 * store-byte budgets checked before graphs are built, a hard plan byte limit
 * with oversized structures refused by name, admission by queued edges,
 * abandoned calls stop their remaining batches, and every accepted call
 * settles when its batch fails (plan allocation, packing, forward pass).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createPredictor, type Predictor } from '../../src/serve';
import { buildStore, qm9Like, type Structure } from '../../src/data';
import { native } from '../../src/native';
import { GnnError } from '../../src/errors';
import { train } from '../../src/train/trainer';
import { molecules, smallCheckpoint } from './helpers';

let ck: string;
let cutoffCk: string;
beforeAll(async () => {
  ck = await smallCheckpoint();
  // The same model trained on cutoff graphs (edges known only once built).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-serve-cutoff-'));
  const { store } = buildStore([...qm9Like(200, 3)], { graph: { kind: 'cutoff', cutoff: 3 } });
  await train({ store, target: 'U0', model: { kind: 'mpeu', latent: 16, passes: 2, basis: 20 }, policy: 'dynamic', batchSize: 8, steps: 2, seed: 1, skipEval: true, checkpointDir: path.join(dir, 'ck') });
  cutoffCk = path.join(dir, 'ck');
});

/** A compact cluster of `n` carbon atoms (a grid at 1.4 Å), as one structure. */
function cluster(n: number, id = `cluster-${n}`): Structure {
  const side = Math.ceil(Math.cbrt(n));
  const positions = new Float64Array(3 * n);
  for (let i = 0; i < n; i++) {
    positions[3 * i] = 1.4 * (i % side);
    positions[3 * i + 1] = 1.4 * (Math.floor(i / side) % side);
    positions[3 * i + 2] = 1.4 * Math.floor(i / (side * side));
  }
  return { id, numbers: new Uint8Array(n).fill(6), positions, cell: null, pbc: [false, false, false], targets: {} };
}

const fcEdges = (mols: Structure[]): number => mols.reduce((s, m) => s + m.numbers.length * (m.numbers.length - 1), 0);

/** Rejects with a marker when `p` has not settled within `ms` (a hang fails the test instead of timing it out). */
function within<T>(p: Promise<T>, ms = 15_000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms).unref())]);
}

describe('the request budget', () => {
  test('a request over maxRequestEdges is refused before any graph is built, naming the structure and the numbers', async () => {
    const p = await createPredictor(ck, { maxRequestEdges: 2000 });
    const mols = molecules(40, 5);
    let k = 0;
    while (fcEdges(mols.slice(0, k + 1)) <= 2000) k++;
    const spy = jest.spyOn(native(), 'buildNeighboursAsync');
    const err = await p.predict(mols).then(
      () => null,
      (e: unknown) => e as GnnError,
    );
    expect(err).toMatchObject({ code: 'ERR_GNN_REQUEST_TOO_LARGE' });
    expect(err?.message).toContain(`structure ${k}:`);
    expect(err?.message).toContain('maxRequestEdges = 2,000');
    expect(err?.message).toContain(fcEdges(mols.slice(0, k + 1)).toLocaleString('en-US'));
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    expect(p.stats()).toMatchObject({ requests: 0, tooLarge: 1, queuedEdges: 0 });
    // Within the budget it still works.
    await expect(p.predict(mols.slice(0, k))).resolves.toHaveLength(k);
    await p.close();
  });

  test('the default budget refuses a 10,000-structure fc request (99M edges) at once', async () => {
    const p = await createPredictor(ck, { warmup: false });
    const one = cluster(100);
    const mols = Array.from({ length: 10_000 }, (_, i) => ({ ...one, id: `m${i}` }));
    const t0 = performance.now();
    await expect(p.predict(mols)).rejects.toMatchObject({ code: 'ERR_GNN_REQUEST_TOO_LARGE', message: expect.stringContaining('maxRequestEdges = 4,000,000') });
    expect(performance.now() - t0).toBeLessThan(2000);
    await p.close();
  });

  test('a request over maxRequestBytes is refused, naming the structure', async () => {
    const p = await createPredictor(ck, { maxRequestBytes: 50_000, warmup: false });
    const atom: Structure = { id: 'h', numbers: Uint8Array.of(1), positions: new Float64Array(3), cell: null, pbc: [false, false, false], targets: {} };
    // 168 bytes per one-atom structure: the 298th (index 297) crosses 50,000.
    await expect(p.predict(Array.from({ length: 400 }, () => atom))).rejects.toMatchObject({
      code: 'ERR_GNN_REQUEST_TOO_LARGE',
      message: expect.stringMatching(/^structure 297: .*maxRequestBytes = 50,000/),
    });
    await p.close();
  });

  test('a structure whose plan would exceed planCacheBytes is refused before its graph is built, naming it and the limit', async () => {
    const p = await createPredictor(ck, { planCacheBytes: 64 * 1024 * 1024 });
    const spy = jest.spyOn(native(), 'buildNeighboursAsync');
    // 300 atoms under fc: 89,700 edges, ~95 MB of plan.
    const err = await p.predict([...molecules(1, 2), cluster(300, 'big')]).then(
      () => null,
      (e: unknown) => e as GnnError,
    );
    expect(err).toMatchObject({ code: 'ERR_GNN_REQUEST_TOO_LARGE' });
    expect(err?.message).toMatch(/^structure 1 \('big'\): 300 atoms and 89,700 edges under 'fc' need a plan of \d+ MiB, more than planCacheBytes = 64 MiB/);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    // One that fits the limit but not the budget runs alone.
    await expect(p.predict([cluster(120)])).resolves.toHaveLength(1);
    await p.close();
  });

  test('a planCacheBytes below the batch budget plan is refused at creation', async () => {
    await expect(createPredictor(ck, { planCacheBytes: 1000 })).rejects.toMatchObject({ code: 'ERR_GNN_PLAN_TOO_LARGE', message: expect.stringContaining('planCacheBytes = 1000') });
    await expect(createPredictor(ck, { maxRequestEdges: 10, maxQueuedEdges: 5 })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
  });

  test('under a cutoff rule the graphs are built in chunks and the build stops at the first chunk past the budget', async () => {
    const p = await createPredictor(cutoffCk, { maxRequestEdges: 20_000 });
    const mols = molecules(2000, 8); // ~36,000 atoms: ~9 chunks of 4,096 atoms
    const spy = jest.spyOn(native(), 'buildNeighboursAsync');
    const err = await p.predict(mols).then(
      () => null,
      (e: unknown) => e as GnnError,
    );
    const chunks = spy.mock.calls.length;
    spy.mockRestore();
    expect(err).toMatchObject({ code: 'ERR_GNN_REQUEST_TOO_LARGE' });
    expect(err?.message).toMatch(/^structure \d+: structures 0\.\.\d+ of the request have [\d,]+ edges under 'cutoff:3', more than maxRequestEdges = 20,000/);
    expect(chunks).toBeGreaterThanOrEqual(1);
    expect(chunks).toBeLessThan(4);
    expect(p.stats().queuedEdges).toBe(0);
    await p.close();
    // Results of a chunked build (> 4,096 atoms) equal those of smaller calls.
    const q = await createPredictor(cutoffCk);
    const many = molecules(400, 9);
    const all = await q.predict(many);
    const parts = [await q.predict(many.slice(0, 150)), await q.predict(many.slice(150))];
    expect(Array.from(all)).toEqual([...Array.from(parts[0]), ...Array.from(parts[1])]);
    await q.close();
  });
});

describe('admission by queued edges', () => {
  test('calls beyond maxQueuedEdges are refused with ERR_GNN_QUEUE_FULL; accepted ones finish; the count returns to 0', async () => {
    const p = await createPredictor(ck, { maxQueuedEdges: 20_000, maxRequestEdges: 10_000 });
    const calls = Array.from({ length: 12 }, (_, i) => molecules(20, 300 + i).filter((_, j) => j < 12));
    const results = await Promise.allSettled(calls.map((c) => p.predict(c)));
    const full = results.filter((r) => r.status === 'rejected' && (r.reason as GnnError).code === 'ERR_GNN_QUEUE_FULL');
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    expect(full.length).toBeGreaterThan(0);
    expect((full[0] as PromiseRejectedResult).reason.message).toContain('maxQueuedEdges = 20,000');
    expect(ok + full.length).toBe(12);
    expect(p.stats()).toMatchObject({ rejected: full.length, queuedEdges: 0 });
    await p.close();
  });
});

describe('abandoned calls', () => {
  test('a call aborted between its batches rejects with ERR_GNN_ABORTED and its remaining batches do not run', async () => {
    let batches = 0;
    const ac = new AbortController();
    const p = await createPredictor(ck, {
      maxBatchGraphs: 4,
      onBatch: () => {
        if (++batches === 2) ac.abort();
      },
    });
    const call = p.predict(molecules(200, 4), { signal: ac.signal }); // 50 batches of 4
    await expect(within(call)).rejects.toMatchObject({ code: 'ERR_GNN_ABORTED' });
    await new Promise((r) => setTimeout(r, 50));
    expect(batches).toBeLessThanOrEqual(3);
    expect(p.stats()).toMatchObject({ aborted: 1, queueDepth: 0, queuedEdges: 0 });
    await expect(p.predict(molecules(3))).resolves.toHaveLength(3);
    await p.close();
  });
});

describe('every accepted call settles', () => {
  let p: Predictor;
  beforeAll(async () => {
    p = await createPredictor(ck);
  });
  afterAll(() => p.close());

  test('a plan allocation failing in a batch (ERR_GNN_NOMEM) rejects that batch\'s call, though it has left the queue; later calls work', async () => {
    const api = native();
    const real = api.createPlan.bind(api);
    const spy = jest.spyOn(api, 'createPlan').mockImplementationOnce(() => {
      throw Object.assign(new Error('out of memory allocating the plan'), { code: 'ERR_GNN_NOMEM' });
    });
    // A structure larger than the budget: its batch needs a plan of its own.
    expect(p.budget.edges).toBeLessThan(80 * 79);
    await expect(within(p.predict([cluster(80)]))).rejects.toMatchObject({ code: 'ERR_GNN_NOMEM' });
    spy.mockImplementation(real);
    await expect(within(p.predict([cluster(80)]))).resolves.toHaveLength(1);
    await expect(within(p.predict(molecules(5)))).resolves.toHaveLength(5);
    spy.mockRestore();
    expect(p.stats().queueDepth).toBe(0);
  });

  test('a forward pass failing rejects exactly the calls of its batch; the next batches run', async () => {
    const api = native();
    const spy = jest.spyOn(api, 'predictAsync').mockImplementationOnce(() => Promise.reject(Object.assign(new Error('forward failed'), { code: 'ERR_GNN_NATIVE' })));
    const first = p.predict(molecules(2, 1));
    const later = [p.predict(molecules(3, 2)), p.predict(molecules(4, 3))];
    await expect(within(first)).rejects.toMatchObject({ code: 'ERR_GNN_NATIVE' });
    const rest = await within(Promise.allSettled(later));
    spy.mockRestore();
    // The later calls either shared the failed batch (rejected with its error) or ran after it.
    for (const r of rest) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'ERR_GNN_NATIVE' });
      else expect(r.value.every(Number.isFinite)).toBe(true);
    }
    await expect(within(p.predict(molecules(2)))).resolves.toHaveLength(2);
  });

  test('a packing failure rejects the call of that batch (it had left the queue) instead of leaving it pending', async () => {
    const api = native();
    const spy = jest.spyOn(api, 'packGraphs').mockImplementationOnce(() => {
      throw Object.assign(new Error('packing failed'), { code: 'ERR_GNN_BATCH' });
    });
    await expect(within(p.predict(molecules(3, 21)))).rejects.toMatchObject({ code: 'ERR_GNN_BATCH' });
    spy.mockRestore();
    await expect(within(p.predict(molecules(3, 21)))).resolves.toHaveLength(3);
    expect(p.stats().failed).toBeGreaterThanOrEqual(2);
  });
});
