/** The study's recommendation: ranked on medians, ties called inside the repetitions' spread, one overall choice per data set and model. */
import {
  calibrationSpread, measuredLabel, overallRecommendations, overallTable, policyCosts, recommend, recommendPolicies, recommendationTable, tableToText, type CostModel, type StudyRow,
} from '../../src/experiment';
import { loadSource } from '../../src/data';
import { formatRecommendation } from '../../src/cli/recommend';

/** A row whose run had median step `med` ms (mean `mean`), 2 compilations of 5 ms each. */
function row(policy: string, batch: number, rep: number, med: number, mean = med): StudyRow {
  return {
    data: 'd', model: 'mpeu', policy, batch, rep, seed: 42 + rep, target: 'y', steps: 20, threads: 1, eval_graphs_val: 1, eval_graphs_test: 1,
    budget_estimation_graphs: 1000, ms_per_step_median: med, batching_ms_median: 0, update_ms_median: med, combined_ms_median: med,
    batching_ms_mean: 0, update_ms_mean: mean, combined_ms_mean: mean, compile_count: 2, compile_ms_total: 10, graphs_per_s: 1, node_fill: 0.5,
    edge_fill: 0.5, graph_fill: 1, graphs_per_batch_mean: batch - 1, padded_edges_vs_exact: 2, final_train_loss: 1, val_rmse: 1, val_mae: 1,
    test_rmse: 1, test_mae: 1, target_std: 1, gflops: 1, cell_seconds: 1, cpu_model: 'x', cpu_cores: 1, node_version: 'v', native_build: 'b',
    native_simd: 's', native_openmp: true, finished_at: '', loss_curve: [],
  };
}
const H = 3.6e6; // ms per hour

test('a policy costs the median over repetitions of budget x each run\'s median step + compilations x its ms per compilation', () => {
  // b's mean is inflated by stalls (a shared machine) but its median is not; one repetition of a is slow.
  const rows = [row('a', 8, 0, 10), row('a', 8, 1, 10.2), row('a', 8, 2, 30), row('b', 8, 0, 11, 40), row('b', 8, 1, 11, 40), row('b', 8, 2, 11, 40)];
  const costs = policyCosts(rows, 1000, 2, (_d, p) => (p === 'a' ? 4 : undefined));
  const a = costs.find((c) => c.policy === 'a')!;
  expect(a.compiles).toBe(4); // the simulation's shapes when more than measured
  expect(a.hours).toBeCloseTo((1000 * 10.2 + 4 * 5) / H, 12);
  expect(a.hours_min).toBeCloseTo((1000 * 10 + 20) / H, 12);
  expect(a.hours_max).toBeCloseTo((1000 * 30 + 20) / H, 12);
  expect(a.price).toBeCloseTo(2 * a.hours, 12);
  const b = costs.find((c) => c.policy === 'b')!;
  expect(b.hours).toBeCloseTo((1000 * 11 + 2 * 5) / H, 12); // the mean (40 ms) plays no part
  const [rec] = recommendPolicies(costs);
  expect(rec.ranked.map((c) => c.policy)).toEqual(['a', 'b']);
  // b's runs (11 ms) lie inside a's range (10..30 ms): a tie, both listed.
  expect(rec.tie).toBe(true);
  expect(rec.tied).toEqual(['a', 'b']);
  expect(rec.next).toBeNull();
});

test('no tie when the next policy\'s fastest repetition is slower than the fastest policy\'s slowest', () => {
  const rows = [row('a', 8, 0, 10), row('a', 8, 1, 11), row('b', 8, 0, 11.5), row('b', 8, 1, 12), row('c', 8, 0, 20), row('c', 8, 1, 22)];
  const [rec] = recommendPolicies(policyCosts(rows, 1000));
  expect(rec.tie).toBe(false);
  expect(rec.tied).toEqual(['a']);
  expect(rec.next?.policy).toBe('b');
  expect(rec.next_slower).toBeCloseTo((11750 + 10) / (10500 + 10) - 1, 10);
  expect(rec.vs_slowest).toBeCloseTo((21000 + 10) / (10500 + 10), 10);
  const text = tableToText(recommendationTable([rec], 1000));
  expect(text).toMatch(/\ba\s+0\.00 \[0\.00-0\.00\]/);
  expect(text).toContain('b (+11.9%)');
  // Overlapping ranges: the table says "tie" and lists both with their figures.
  const tied = recommendPolicies(policyCosts([row('a', 8, 0, 10), row('a', 8, 1, 12), row('b', 8, 0, 11), row('b', 8, 1, 13)], 1e6));
  const t2 = tableToText(recommendationTable(tied, 1e6));
  expect(t2).toContain('tie: a, b');
  expect(t2).toMatch(/a 3\.06 \[2\.78-3\.33\]; b 3\.33 \[3\.06-3\.61\]/);
});

test('one repetition has no spread: only equal figures tie', () => {
  expect(recommendPolicies(policyCosts([row('a', 8, 0, 10), row('b', 8, 0, 10.01)], 1000))[0].tie).toBe(false);
  expect(recommendPolicies(policyCosts([row('a', 8, 0, 10), row('b', 8, 0, 10)], 1000))[0].tied).toEqual(['a', 'b']);
});

test('overall: the policy fastest or tied at the most batch sizes; equal counts are a tie', () => {
  const rows = [
    // B=8: a fastest alone; B=16: a and b tie; B=32: b fastest alone; c always slow.
    row('a', 8, 0, 10), row('a', 8, 1, 10), row('b', 8, 0, 12), row('b', 8, 1, 12), row('c', 8, 0, 30), row('c', 8, 1, 30),
    row('a', 16, 0, 10), row('a', 16, 1, 12), row('b', 16, 0, 11), row('b', 16, 1, 11), row('c', 16, 0, 30), row('c', 16, 1, 30),
    row('a', 32, 0, 14), row('a', 32, 1, 14), row('b', 32, 0, 10), row('b', 32, 1, 10), row('c', 32, 0, 30), row('c', 32, 1, 30),
  ];
  const recs = recommendPolicies(policyCosts(rows, 1e6));
  const [o] = overallRecommendations(recs);
  expect(o.batches).toEqual([8, 16, 32]);
  expect(o.tie).toBe(true);
  expect(o.tied.sort()).toEqual(['a', 'b']);
  expect(o.standing.find((s) => s.policy === 'c')).toEqual(expect.objectContaining({ wins: 0 }));
  expect(tableToText(overallTable([o]))).toMatch(/tie: [ab], [ab]/);
  // Without B=32, a wins both batch sizes (b only ties at one): a alone.
  const [o2] = overallRecommendations(recommendPolicies(policyCosts(rows.filter((r) => r.batch !== 32), 1e6)));
  expect(o2.tie).toBe(false);
  expect(o2.tied).toEqual(['a']);
  expect(o2.standing[0]).toEqual(expect.objectContaining({ policy: 'a', wins: 2 }));
  expect(o2.standing[0].geomean_vs_best).toBeCloseTo(1, 12);
});

describe('gnnbatch recommend (prediction): ties inside the calibration\'s spread', () => {
  const cost = (spread: number): CostModel => ({
    ms_per_edge: 1e-4, ms_per_node: 0, ms_per_step: 1, compile_ms_per_edge: 0, compile_ms_base: 0, seconds: 0,
    points: [1, 2, 3].map((k) => ({ nodes: 64 * k, edges: 64 * k, graphs: 9, step_ms: 10, step_ms_min: 10 * (1 - spread), step_ms_max: 10 * (1 + spread), compile_ms: 0 })),
  });

  test('the spread is the median half-range of the timed steps relative to their median', () => {
    expect(calibrationSpread(cost(0.2))).toBeCloseTo(0.2, 12);
    expect(calibrationSpread({ points: [] })).toBe(0);
  });

  test('policies predicted within the spread are a tie; outside it, one choice', async () => {
    const { store } = await loadSource('qm9-like:300');
    const base = { store, model: 'mpeu' as const, batchSize: 8, steps: 1000, policies: ['dynamic', 'static-64'] };
    const wide = recommend({ ...base, costModel: cost(10) }); // a 1000% spread: nothing is separated
    expect(wide.tied.sort()).toEqual(['dynamic', 'static-64']);
    expect(wide.reason).toMatch(/^tie: /);
    expect(formatRecommendation(wide)).toMatch(/choice: tie: .* predicted fastest\)/);
    const sharp = recommend({ ...base, costModel: cost(0) });
    const [p0, p1] = sharp.predictions;
    expect(p1.total_s).toBeGreaterThan(p0.total_s); // static-64 pads more per step
    expect(sharp.tied).toEqual([sharp.choice]);
    expect(sharp.reason).not.toMatch(/^tie/);
    expect(formatRecommendation(sharp)).toContain(`choice: ${sharp.choice}\n`);
  });
});

test('hit-rate rows name a measured tie as such', () => {
  expect(measuredLabel({ measured: 'dynamic', measured_tied: ['dynamic'] })).toBe('dynamic');
  expect(measuredLabel({ measured: 'dynamic', measured_tied: ['dynamic', 'packed'] })).toBe('tie: dynamic, packed');
});

test('exact reuses its plan by capacity: the simulation\'s distinct shapes are not its compilations', () => {
  const costs = policyCosts([row('exact', 8, 0, 10), row('dynamic', 8, 0, 10)], 1000, NaN, () => 5000);
  expect(costs.find((c) => c.policy === 'exact')!.compiles).toBe(2); // measured
  expect(costs.find((c) => c.policy === 'dynamic')!.compiles).toBe(5000);
});
