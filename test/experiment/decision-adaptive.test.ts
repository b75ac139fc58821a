/** Adaptive repetitions: cells whose decision is open get more repetitions (interleaved over policies), within maxReps and the time budget. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runStudy, type StudyProgress } from '../../src/experiment';
import { releaseMemory } from '../../src/experiment/study';

const grid = { data: ['qm9-like:200'], models: ['schnet' as const], policies: ['dynamic', 'static-2pow'], batches: [8], reps: 1, steps: 3, evalGraphs: 8, simulateSteps: 50 };

describe('adaptive repetitions', () => {
  test('one repetition is always open: more are added, every policy of the cell back to back, up to maxReps; estimates are emitted for the ETA', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-adaptive-'));
    const events: StudyProgress[] = [];
    const out = await runStudy({ outDir: dir, ...grid, adaptive: { maxReps: 3, timeBudgetSeconds: 600 }, onProgress: (e) => events.push(e) });
    const reps = out.results.rows.map((r) => r.rep);
    expect(Math.max(...reps)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...reps)).toBeLessThanOrEqual(2);
    // Interleaved: rows come in (rep, policy) order, both policies of a repetition together.
    const order = out.results.rows.map((r) => `${r.rep}:${r.policy}`);
    expect(order.slice(0, 4)).toEqual(['0:dynamic', '0:static-2pow', '1:dynamic', '1:static-2pow']);
    for (const r of out.results.rows) expect(r.seed).toBe(42 + r.rep);
    expect(events.some((e) => e.kind === 'extra' && /^repetition 2 of qm9-like:200 schnet B=8/.test(e.message ?? ''))).toBe(true);
    const est = events.find((e) => e.kind === 'estimate');
    expect(est?.estimates?.length).toBe(2);
    // The progress total grew with the added cells.
    expect(events[events.length - 1].cells).toBe(out.results.rows.length);
  }, 120000);

  test('no time left: no repetition is added; maxReps <= reps: a fixed grid', async () => {
    const a = await runStudy({ outDir: fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-adaptive-')), ...grid, adaptive: { maxReps: 5, timeBudgetSeconds: 0 } });
    expect(a.results.rows).toHaveLength(2);
    const b = await runStudy({ outDir: fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-adaptive-')), ...grid, adaptive: { maxReps: 1, timeBudgetSeconds: 600 }, maxMemoryBytes: 2 * 1024 ** 3 });
    expect(b.results.rows).toHaveLength(2);
  }, 120000);

  test('releaseMemory runs a full collection (callable any number of times)', () => {
    expect(() => {
      releaseMemory();
      releaseMemory();
    }).not.toThrow();
  });
});
