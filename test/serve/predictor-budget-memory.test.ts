/**
 * Serving memory (issue 21, items 1 and 9): the plan grown for an oversized
 * structure is freed after its batch (memory returns to the budget's), plans
 * are freed by close() without waiting for the garbage collector, and native
 * plan memory is reported to V8 so that dropped plans are collected under
 * pressure. RSS is measured in this process: the plans are hundreds of MB,
 * far above the noise of the test runner.
 */
import { createPredictor } from '../../src/serve';
import { nativeModel } from '../../src/native';
import { resolveModelConfig } from '../../src/model/config';
import { type Structure } from '../../src/data';
import { molecules, smallCheckpoint } from './helpers';

const MB = 1024 * 1024;
const rss = (): number => process.memoryUsage().rss;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

let ck: string;
beforeAll(async () => {
  ck = await smallCheckpoint();
});

function cluster(n: number): Structure {
  const side = Math.ceil(Math.cbrt(n));
  const positions = new Float64Array(3 * n);
  for (let i = 0; i < n; i++) {
    positions[3 * i] = 1.4 * (i % side);
    positions[3 * i + 1] = 1.4 * (Math.floor(i / side) % side);
    positions[3 * i + 2] = 1.4 * Math.floor(i / (side * side));
  }
  return { id: `cluster-${n}`, numbers: new Uint8Array(n).fill(6), positions, cell: null, pbc: [false, false, false], targets: {} };
}

test('after an oversized structure the plan shrinks back to the budget, and RSS comes back down', async () => {
  const p = await createPredictor(ck, { planCacheBytes: 1024 * MB });
  const budgetBytes = p.stats().planBytes;
  expect(budgetBytes).toBeGreaterThan(0);
  await p.predict(molecules(8));
  const before = rss();
  // 550 atoms under fc: 301,950 edges, a plan of ~320 MB.
  const [big] = await p.predict([cluster(550)]);
  expect(Number.isFinite(big)).toBe(true);
  // Not kept as the new high-water mark: freed after its batch, the budget's plan is rebuilt at the next one.
  expect(p.stats().planBytes).toBe(0);
  expect(p.stats().planBuilds).toBe(2);
  await p.predict(molecules(8));
  expect(p.stats().planBuilds).toBe(3);
  expect(p.stats().planBytes).toBe(budgetBytes);
  const after = rss();
  expect((after - before) / MB).toBeLessThan(100);
  await p.close();
  expect(p.stats().planBytes).toBe(0);
});

test('close() frees the plans at once: 14 create/predict/close cycles do not grow RSS', async () => {
  // A large batch budget: a budget plan of ~150 MB.
  const opts = { maxBatchGraphs: 512 };
  const first = await createPredictor(ck, opts);
  const planMB = first.stats().planBytes / MB;
  expect(planMB).toBeGreaterThan(80);
  await first.predict(molecules(20));
  const open = rss();
  await first.close();
  const closed = rss();
  expect((open - closed) / MB).toBeGreaterThan(planMB * 0.5); // freed now, not at some later GC
  let peak = 0;
  for (let i = 0; i < 14; i++) {
    const p = await createPredictor(ck, opts);
    await p.predict(molecules(20, i));
    peak = Math.max(peak, rss());
    await p.close();
  }
  const end = rss();
  expect((end - closed) / MB).toBeLessThan(planMB * 0.5);
  expect((peak - closed) / MB).toBeLessThan(planMB * 1.6);
});

test('native plan memory is reported to V8: plans dropped without release are collected under pressure', async () => {
  const api = nativeModel();
  const config = resolveModelConfig({ kind: 'mpeu', latent: 64 });
  const shape = { nodes: 1000, edges: 10_000, graphs: 100 };
  const first = api.createPlan(config, shape);
  const planMB = api.planInfo(first).bytes / MB;
  api.releasePlan(first);
  expect(planMB).toBeGreaterThan(40);
  const start = rss();
  let peak = start;
  for (let i = 0; i < 20; i++) {
    let h: ReturnType<typeof api.createPlan> | null = api.createPlan(config, shape);
    expect(api.planInfo(h).bytes).toBeGreaterThan(0);
    h = null;
    await tick();
    peak = Math.max(peak, rss());
  }
  // Unreported, 20 dropped plans of ~60 MB stay resident until a GC the heap alone would not trigger.
  expect((peak - start) / MB).toBeLessThan(planMB * 14);
});

test('releasePlan frees once; a released handle is refused with a code, never dereferenced', () => {
  const api = nativeModel();
  const config = resolveModelConfig({ kind: 'schnet', latent: 8 });
  const h = api.createPlan(config, { nodes: 10, edges: 20, graphs: 2 });
  api.releasePlan(h);
  expect(() => api.releasePlan(h)).not.toThrow();
  expect(() => api.planInfo(h)).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT', message: expect.stringContaining('released') }));
  expect(() => api.setProfile(h, true)).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
});
