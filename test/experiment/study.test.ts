/** runStudy end to end on tiny data: files, resume, interruption; recommend on tiny data. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runStudy, readResults, recommend, predictPolicyTimes, CSV_COLUMNS, type CostModel } from '../../src/experiment';
import { loadSource, splitGraphs } from '../../src/data';
import { sizesOf, estimateBudget, maxSizes } from '../../src/batching';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-study-'));
const grid = { data: ['qm9-like:300'], models: ['schnet' as const], policies: ['dynamic', 'static-64'], batches: [8], steps: 3, evalGraphs: 16 };

describe('runStudy', () => {
  test('writes results.json and results.csv, one row per cell, and resumes', async () => {
    const dir = tmp();
    const events: string[] = [];
    const first = await runStudy({ ...grid, outDir: dir, reps: 2, onProgress: (e) => events.push(e.kind) });
    expect(first.ran).toBe(4);
    expect(first.interrupted).toBe(false);
    const res = readResults(path.join(dir, 'results.json'));
    expect(res.rows).toHaveLength(4);
    expect(res.rows.map((r) => `${r.policy}/${r.rep}/${r.seed}`).sort()).toEqual(['dynamic/0/42', 'dynamic/1/43', 'static-64/0/42', 'static-64/1/43']);
    for (const r of res.rows) {
      expect(r.steps).toBe(3);
      expect(r.combined_ms_mean).toBeGreaterThan(0);
      expect(r.compile_count).toBeGreaterThanOrEqual(1);
      expect(r.eval_graphs_test).toBe(16);
      expect(Number.isFinite(r.test_rmse)).toBe(true);
      expect(r.cpu_cores).toBeGreaterThan(0);
      expect(r.loss_curve.length).toBeGreaterThan(0);
    }
    expect(res.environment.native.build).toBeTruthy();
    expect(res.data).toHaveLength(1);
    expect(res.data[0].simulation.length).toBe(2);
    const csv = fs.readFileSync(path.join(dir, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(5);
    expect(csv[0]).toBe(CSV_COLUMNS.join(','));
    expect(events.filter((k) => k === 'done')).toHaveLength(4);

    // same grid again: everything is skipped
    const again = await runStudy({ ...grid, outDir: dir, reps: 2 });
    expect(again.ran).toBe(0);
    expect(again.skipped).toBe(4);
    // one more repetition: only the new cells run, old rows are kept untouched
    const more = await runStudy({ ...grid, outDir: dir, reps: 3 });
    expect(more.ran).toBe(2);
    const res3 = readResults(path.join(dir, 'results.json'));
    expect(res3.rows).toHaveLength(6);
    expect(res3.rows.slice(0, 4).map((r) => r.finished_at)).toEqual(res.rows.map((r) => r.finished_at));
  });

  test('stopping keeps the finished cells; the next run completes the rest', async () => {
    const dir = tmp();
    let done = 0;
    const out = await runStudy({ ...grid, outDir: dir, reps: 2, onProgress: (e) => e.kind === 'done' && done++, shouldStop: () => done >= 1 });
    expect(out.interrupted).toBe(true);
    expect(readResults(path.join(dir, 'results.json')).rows).toHaveLength(1);
    const rest = await runStudy({ ...grid, outDir: dir, reps: 2 });
    expect(rest.skipped).toBe(1);
    expect(rest.ran).toBe(3);
  });

  test('rejects unknown policies and models with a message naming them', async () => {
    await expect(runStudy({ ...grid, outDir: tmp(), policies: ['nope'] })).rejects.toThrow(/unknown policy 'nope'/);
    await expect(runStudy({ ...grid, outDir: tmp(), models: ['gcn' as never] })).rejects.toThrow(/unknown model 'gcn'/);
  });
});

describe('study budgets on heavy-tailed data', () => {
  test('the default budget holds the largest training graph (aflow-like)', async () => {
    const { store } = await loadSource('aflow-like:2000', {});
    const sizes = sizesOf(store);
    const train = splitGraphs(store.numGraphs, { seed: 42 }).train;
    for (const B of [8, 16, 128]) {
      const b = estimateBudget(sizes, train, B);
      const mx = maxSizes(sizes, train);
      expect(b.nodes).toBeGreaterThanOrEqual(mx.nodes + 1);
      expect(b.edges).toBeGreaterThanOrEqual(mx.edges);
    }
  });
});

describe('recommend', () => {
  test('predictions follow the cost model: per-step work and compilations', async () => {
    const { store } = await loadSource('qm9-like:300', {});
    const train = splitGraphs(store.numGraphs, { seed: 42 }).train;
    const cost: CostModel = { ms_per_edge: 0.001, ms_per_node: 0.01, ms_per_step: 1, compile_ms_per_edge: 0.01, compile_ms_base: 5, points: [], seconds: 0 };
    const p = predictPolicyTimes(sizesOf(store), train, 8, 50, cost, ['dynamic', 'static-64', 'static-constant']);
    expect(p.map((x) => x.total_s)).toEqual([...p.map((x) => x.total_s)].sort((a, b) => a - b));
    const dyn = p.find((x) => x.policy === 'dynamic')!;
    expect(dyn.compiles).toBe(1);
    expect(dyn.step_ms).toBeCloseTo(0.001 * dyn.mean_padded_edges + 0.01 * dyn.mean_padded_nodes + 1, 9);
    expect(dyn.total_s).toBeCloseTo((50 * dyn.step_ms + 0.01 * dyn.mean_padded_edges + 5) / 1000, 9);
    expect(p.find((x) => x.policy === 'static-64')!.compiles).toBeGreaterThan(1);
  });

  test('calibrates on the real model and picks the cheapest prediction', async () => {
    const { store } = await loadSource('qm9-like:300', {});
    const rec = recommend({ store, model: 'schnet', batchSize: 8, steps: 1000, stepsPerShape: 1 });
    expect(rec.cost_model.points).toHaveLength(5);
    expect(rec.predictions).toHaveLength(6);
    expect(rec.choice).toBe(rec.predictions[0].policy);
    expect(rec.reason).toContain(rec.choice);
    for (const p of rec.predictions) expect(p.total_s).toBeGreaterThan(0);
  });
});
