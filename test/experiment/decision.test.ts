/** The study's decision on synthetic timing tables with known answers: clear winner, true tie, tie broken by compilations, rerun agreement. */
import { decideStudy, openCells, pairedRatio, repHours } from '../../src/experiment/decision';
import { syntheticRow } from './helpers/synthetic-study';

// Paired repetitions with a shared load drift (rep r's machine is (1 + 0.04 r) slow for every policy): pairing removes it.
const drift = (rep: number): number => 1 + 0.04 * rep;
const noise = (policy: string, rep: number): number => 1 + 0.002 * Math.sin(7 * rep + policy.length);

function table(ms: Record<string, number>, reps: number, extra: Record<string, { compiles?: number; padded?: number; graphs?: number }> = {}) {
  const rows = [];
  for (let rep = 0; rep < reps; rep++) for (const [policy, t] of Object.entries(ms)) rows.push(syntheticRow({ policy, rep, ms: t * drift(rep) * noise(policy, rep), ...extra[policy] }));
  return rows;
}

describe('decision per (data, model, B)', () => {
  test('clear winner: dynamic 20% faster than every other policy, sure of it, and a rerun agrees', () => {
    const d = decideStudy(table({ dynamic: 10, 'static-2pow': 12, 'static-64': 12.5 }, 5), { resamples: 400 });
    const c = d.cells[0];
    expect(c.pick).toBe('dynamic');
    expect(c.tie).toBe(false);
    expect(c.open).toBe(false);
    expect(c.criterion).toBe('fastest');
    expect(c.reason).toMatch(/^dynamic is fastest: static-2pow, the runner-up, takes (19|20)\.\d% longer per graph \(95% CI/);
    expect(c.policies.map((p) => p.status)).toEqual(['fastest', 'slower', 'slower']);
    expect(c.agreement).toBe(1);
    expect(d.pairs[0].pick).toBe('dynamic');
    expect(d.pairs[0].agreement).toBe(1);
  });

  test('true tie: two policies within 0.5%, same compilations and padding: tie within the margin, chosen by median time, agreement below 1', () => {
    const rows = [];
    for (let rep = 0; rep < 6; rep++) {
      // Which one is faster flips between repetitions: no real difference.
      rows.push(syntheticRow({ policy: 'dynamic', rep, ms: 10 * (rep % 2 ? 1.004 : 0.997) }), syntheticRow({ policy: 'exact', rep, ms: 10 * (rep % 2 ? 0.997 : 1.004) }));
    }
    const c = decideStudy(rows, { resamples: 400 }).cells[0];
    expect(c.tie).toBe(true);
    expect(c.tied.sort()).toEqual(['dynamic', 'exact']);
    expect(c.open).toBe(false);
    expect(c.criterion).toBe('median time');
    expect(c.reason).toMatch(/^tie within \d\.\d% \(.*\): choose (dynamic|exact) because it has the lowest median time/);
    expect(c.agreement).toBeGreaterThan(0.2);
    expect(c.agreement).toBeLessThan(1);
  });

  test('tie broken by compilations: within 1%, static-64 compiles 190 times, static-2pow 4: choose static-2pow', () => {
    const rows = table({ 'static-64': 10, 'static-2pow': 10.08 }, 6, { 'static-64': { compiles: 190 }, 'static-2pow': { compiles: 4 } });
    const c = decideStudy(rows, { resamples: 200 }).cells[0];
    expect(c.tie).toBe(true);
    expect(c.policies[0].policy).toBe('static-64');
    expect(c.pick).toBe('static-2pow');
    expect(c.criterion).toBe('compilations');
    expect(c.reason).toMatch(/^tie within \d\.\d% \(static-64, static-2pow\): choose static-2pow because it compiles 4 time\(s\) over the planned run vs 190 for static-64/);
    expect(c.agreement).toBeGreaterThan(0.9);
  });

  test('tie broken by padded work when compilations are equal', () => {
    const rows = table({ dynamic: 10, 'static-constant': 10.05 }, 6, { dynamic: { padded: 1.3 }, 'static-constant': { padded: 2.1 } });
    const c = decideStudy(rows, { resamples: 0 }).cells[0];
    expect(c.pick).toBe('dynamic');
    expect(c.criterion).toBe('padded work');
    expect(c.reason).toContain('least padded work (1.30x the real edges vs 2.10x for static-constant');
  });

  test('open: two repetitions that disagree by 10% cannot separate the policies; more repetitions are asked for', () => {
    const rows = [
      syntheticRow({ policy: 'dynamic', rep: 0, ms: 10 }), syntheticRow({ policy: 'exact', rep: 0, ms: 11 }),
      syntheticRow({ policy: 'dynamic', rep: 1, ms: 10 }), syntheticRow({ policy: 'exact', rep: 1, ms: 9.9 }),
    ];
    const d = decideStudy(rows, { resamples: 0 });
    expect(d.cells[0].open).toBe(true);
    expect(d.cells[0].tie).toBe(true);
    expect(d.cells[0].reason).toContain('not separated by the repetitions');
    expect(openCells(rows)).toEqual([{ data: 'qm9-like:300', model: 'schnet', batch: 16, reps: 2 }]);
    // One repetition: judged on the point estimate, still open.
    expect(openCells(rows.filter((r) => r.rep === 0))).toHaveLength(1);
    expect(Number.isNaN(decideStudy(rows.filter((r) => r.rep === 0)).cells[0].agreement)).toBe(true);
  });

  test('per graph, not per step: a policy whose steps carry fewer graphs pays for them', () => {
    // Same step time, but dynamic carries 14.7 graphs per step against exact's 16: exact is 8.8% cheaper per graph.
    const rows = table({ dynamic: 10, exact: 10 }, 5, { dynamic: { graphs: 14.7 }, exact: { graphs: 16 } });
    const c = decideStudy(rows, { resamples: 0 }).cells[0];
    expect(c.pick).toBe('exact');
    const dyn = c.policies.find((p) => p.policy === 'dynamic')!;
    expect(dyn.ratio).toBeCloseTo(16 / 14.7, 2);
    const exact = c.policies.find((p) => p.policy === 'exact')!;
    expect(exact.graphs_per_s / dyn.graphs_per_s).toBeCloseTo(16 / 14.7, 2);
    expect(exact.graphs_per_s * exact.ms_per_1000_graphs).toBeCloseTo(1e6, 3);
    expect(exact.graphs_per_s).toBeCloseTo((1000 * 16) / exact.step_ms, 9);
  });

  test('planned-run hours: steps for plannedSteps x B graphs x median step time + compilations x time per compilation', () => {
    const r = syntheticRow({ policy: 'dynamic', rep: 0, ms: 36, graphs: 8, batch: 16, compiles: 2, compileMs: 1800 });
    // 1000 steps x 16 graphs = 16000 graphs / 8 per step = 2000 steps x 36 ms = 72 s; 10 compilations x 1.8 s = 18 s: 90 s.
    expect(repHours(r, 1000, 10)).toBeCloseTo(90 / 3600, 12);
  });

  test('median and paired ratio disagree: the policy the paired ratio puts first is the fastest, and no ratio is below 1', () => {
    // exact has the lower median (10 vs 10.1) but pays 30% at one repetition; its paired ratio to dynamic is above 1.
    const ms: Record<string, number[]> = { exact: [9.9, 10, 13], dynamic: [10.1, 10.1, 10.1] };
    const rows = [];
    for (let rep = 0; rep < 3; rep++) for (const policy of Object.keys(ms)) rows.push(syntheticRow({ policy, rep, ms: ms[policy][rep] }));
    const c = decideStudy(rows, { resamples: 0 }).cells[0];
    expect(c.policies[0].policy).toBe('dynamic');
    expect(c.policies[0].status).toBe('fastest');
    expect(c.policies[1].policy).toBe('exact');
    expect(c.policies[1].ratio).toBeGreaterThan(1);
    for (const p of c.policies) expect(p.ratio).toBeGreaterThanOrEqual(1);
  });

  test('paired ratios that cycle (different repetitions per policy) still give one fastest: the lowest median of the cycle', () => {
    // B beats A on r1, C beats B on r3, A beats C on r2: the paired comparison cycles.
    const rows = [
      syntheticRow({ policy: 'A', rep: 1, ms: 1.0 }), syntheticRow({ policy: 'A', rep: 2, ms: 0.9 }),
      syntheticRow({ policy: 'B', rep: 1, ms: 0.95 }), syntheticRow({ policy: 'B', rep: 3, ms: 1.0 }),
      syntheticRow({ policy: 'C', rep: 2, ms: 1.0 }), syntheticRow({ policy: 'C', rep: 3, ms: 0.95 }),
    ];
    const c = decideStudy(rows, { resamples: 0 }).cells[0];
    expect(c.policies.map((p) => p.policy).sort()).toEqual(['A', 'B', 'C']);
    expect(c.policies[0].status).toBe('fastest');
    // Medians: A 0.95, B 0.975, C 0.975: A.
    expect(c.policies[0].policy).toBe('A');
  });

  test('paired ratio: the shared drift cancels', () => {
    const a = [0, 1, 2, 3].map((rep) => ({ rep, hours: 1.1 * drift(rep), step_ms: 1, graphs_per_step: 1 }));
    const b = [0, 1, 2, 3].map((rep) => ({ rep, hours: drift(rep), step_ms: 1, graphs_per_step: 1 }));
    const p = pairedRatio(a, b);
    expect(p.ratio).toBeCloseTo(1.1, 12);
    expect(p.hi - p.lo).toBeLessThan(1e-9);
  });

  test('per (data, model): the policy picked at most batch sizes', () => {
    const rows = [16, 32, 64].flatMap((batch) =>
      [0, 1, 2, 3].flatMap((rep) => [
        syntheticRow({ policy: 'dynamic', batch, rep, ms: (batch === 64 ? 13 : 10) * drift(rep) }),
        syntheticRow({ policy: 'exact', batch, rep, ms: 12 * drift(rep) }),
      ]),
    );
    const p = decideStudy(rows, { resamples: 100 }).pairs[0];
    expect(p.pick).toBe('dynamic');
    expect(p.wins).toBe(2);
    expect(p.reason).toMatch(/^dynamic is the pick at 2 of 3 batch size\(s\)/);
    expect(p.agreement).toBe(1);
  });
});
