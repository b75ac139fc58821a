/**
 * Statistics of the study: t-test p-values against independent references
 * (textbook critical values, and numerical integration of the t density),
 * speedups and aggregates on known inputs.
 */
import { analyseStudy, studentTTest, welchTTest, twoSidedP, predictCosts, cheapestPolicies, leastSquares, nonNegativeFit } from '../../src/experiment';
import { speedupTables, tableToMarkdown, tableToText } from '../../src/experiment/tables';
import type { StudyRow } from '../../src/experiment';

// Lanczos approximation (g = 7, n = 9) of ln Gamma: independent of jstat.
function lnGamma(z: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  z -= 1;
  let x = c[0];
  for (let i = 1; i < 9; i++) x += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

/** Two-sided p of Student's t by Simpson's rule on the density over [0, |t|]. */
function referenceP(t: number, df: number): number {
  const k = Math.exp(lnGamma((df + 1) / 2) - lnGamma(df / 2)) / Math.sqrt(df * Math.PI);
  const f = (x: number): number => k * Math.pow(1 + (x * x) / df, -(df + 1) / 2);
  const n = 20000;
  const h = Math.abs(t) / n;
  let s = f(0) + f(Math.abs(t));
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(i * h);
  return 1 - 2 * (s * h) / 3;
}

describe('t-tests', () => {
  test('two-sided p at textbook critical values', () => {
    // t tables: t(0.975; 10) = 2.228139, t(0.975; 5) = 2.570582, t(0.995; 20) = 2.845340, t(0.95; 30) = 1.697261
    expect(twoSidedP(2.228139, 10)).toBeCloseTo(0.05, 5);
    expect(twoSidedP(-2.570582, 5)).toBeCloseTo(0.05, 5);
    expect(twoSidedP(2.84534, 20)).toBeCloseTo(0.01, 5);
    expect(twoSidedP(1.697261, 30)).toBeCloseTo(0.1, 5);
    expect(twoSidedP(0, 7)).toBeCloseTo(1, 7); // jstat is accurate to ~1e-8
  });

  test('the numerical reference agrees with the tables (checks the oracle)', () => {
    expect(referenceP(2.228139, 10)).toBeCloseTo(0.05, 5);
    expect(referenceP(2.84534, 20)).toBeCloseTo(0.01, 5);
  });

  test('Student (pooled): [1..5] vs [3..7] gives t = -2, df = 8, p = 0.0805', () => {
    const r = studentTTest([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]);
    expect(r.t).toBeCloseTo(-2, 12);
    expect(r.df).toBe(8);
    expect(r.p).toBeCloseTo(referenceP(2, 8), 8);
    expect(r.p).toBeCloseTo(0.080516, 5);
  });

  test('Welch: unequal variances and sizes (Welch-Satterthwaite df)', () => {
    const a = [1, 2, 3, 4, 5];
    const b = [2, 4, 6, 8, 10, 12, 14];
    const r = welchTTest(a, b);
    // va/na = 2.5/5 = 0.5, vb/nb = (112/6)/7 = 8/3; t = -5 / sqrt(0.5 + 8/3)
    const se2 = 0.5 + 8 / 3;
    expect(r.t).toBeCloseTo(-5 / Math.sqrt(se2), 12);
    expect(r.df).toBeCloseTo(se2 ** 2 / (0.25 / 4 + (8 / 3) ** 2 / 6), 10);
    expect(r.p).toBeCloseTo(referenceP(r.t, r.df), 7);
    // Student on the same data pools the variances: df = 10
    const s = studentTTest(a, b);
    expect(s.df).toBe(10);
    const sp2 = (4 * 2.5 + 6 * (112 / 6)) / 10;
    expect(s.t).toBeCloseTo(-5 / Math.sqrt(sp2 * (1 / 5 + 1 / 7)), 12);
    expect(s.p).toBeCloseTo(referenceP(s.t, 10), 7);
  });

  test('degenerate samples: too few values give NaN; zero spread gives p = 1 or 0', () => {
    expect(studentTTest([1], [2, 3]).p).toBeNaN();
    expect(welchTTest([1, 2], [3]).p).toBeNaN();
    expect(studentTTest([2, 2], [2, 2]).p).toBe(1);
    expect(welchTTest([2, 2], [3, 3]).p).toBe(0);
  });
});

function row(policy: string, batch: number, rep: number, ms: number, rmse: number, extra: Partial<StudyRow> = {}): StudyRow {
  return {
    data: 'd', model: 'mpeu', policy, batch, rep, seed: 42 + rep, target: 'y', steps: 10, threads: 1, eval_graphs_val: 1, eval_graphs_test: 1,
    budget_estimation_graphs: 1000, ms_per_step_median: ms / 2, batching_ms_median: 0, update_ms_median: ms / 2, combined_ms_median: ms / 2,
    batching_ms_mean: 0, update_ms_mean: ms, combined_ms_mean: ms, compile_count: 2, compile_ms_total: 10, graphs_per_s: 1, node_fill: 0.5,
    edge_fill: 0.5, graph_fill: 1, graphs_per_batch_mean: batch - 1, padded_edges_vs_exact: 2, final_train_loss: 1, val_rmse: rmse, val_mae: rmse,
    test_rmse: rmse, test_mae: rmse, target_std: 1, gflops: 1, cell_seconds: 1, cpu_model: 'x', cpu_cores: 1, node_version: 'v', native_build: 'b',
    native_simd: 's', native_openmp: true, finished_at: '', loss_curve: [], ...extra,
  };
}

describe('analyseStudy', () => {
  const rows = [
    row('a', 16, 0, 10, 1), row('a', 16, 1, 14, 2), // mean 12
    row('b', 16, 0, 24, 1), row('b', 16, 1, 24, 2), // mean 24: slowest
    row('c', 16, 0, 6, 10), row('c', 16, 1, 6, 11), // mean 6
    row('a', 32, 0, 30, 1), row('b', 32, 0, 20, 1),
  ];
  const a = analyseStudy(rows);

  test('speedup = slowest mean step time / each, per batch size', () => {
    const sp = (p: string, b: number): number => a.summaries.find((s) => s.policy === p && s.batch === b)!.speedup;
    expect(sp('a', 16)).toBeCloseTo(2, 12);
    expect(sp('b', 16)).toBeCloseTo(1, 12);
    expect(sp('c', 16)).toBeCloseTo(4, 12);
    expect(sp('a', 32)).toBeCloseTo(1, 12);
    expect(sp('b', 32)).toBeCloseTo(1.5, 12);
    const s = a.summaries.find((x) => x.policy === 'a' && x.batch === 16)!;
    expect(s.step_ms_mean).toBe(12);
    expect(s.step_ms_sd).toBeCloseTo(Math.sqrt(8), 12);
    expect(s.reps).toBe(2);
    expect(s.compile_ms_each).toBe(5);
  });

  test('t-tests for every pair per (data, model, B); flags p < 0.05', () => {
    const at16 = a.ttests.filter((t) => t.batch === 16);
    expect(at16.map((t) => `${t.a}-${t.b}`)).toEqual(['a-b', 'a-c', 'b-c']);
    expect(at16[0].student.p).toBeCloseTo(1, 12); // identical samples
    const ac = at16[1];
    expect(ac.student.p).toBeCloseTo(studentTTest([1, 2], [10, 11]).p, 12);
    expect(ac.significant).toBe(true);
    // one repetition at B=32: no test possible
    expect(a.ttests.find((t) => t.batch === 32)!.student.p).toBeNaN();
  });

  test('tables and cost predictions', () => {
    const t = speedupTables(a)[0];
    expect(t.header).toEqual(['policy', 'B=16', 'B=32']);
    expect(t.rows.find((r) => r[0] === 'c')).toEqual(['c', '4.00x [4.00x]', '-']);
    expect(tableToText(t)).toContain('4.00x');
    expect(tableToMarkdown(t)).toContain('| c | 4.00x [4.00x] | - |');
    const costs = predictCosts(a.summaries, 1000, 2, (_d, p) => (p === 'a' ? 100 : undefined));
    const ca = costs.find((c) => c.policy === 'a' && c.batch === 16)!;
    // 1000 steps x median 6 ms + 100 compilations x 5 ms = 6.5 s
    expect(ca.compiles).toBe(100);
    expect(ca.hours * 3600).toBeCloseTo(6.5, 9);
    expect(ca.price).toBeCloseTo((2 * 6.5) / 3600, 12);
    expect(cheapestPolicies(costs).find((c) => c.batch === 16)!.policy).toBe('c');
  });
});

describe('least squares', () => {
  test('recovers an exact linear model', () => {
    const X = [[1, 2, 1], [3, 1, 1], [5, 7, 1], [2, 2, 1], [8, 1, 1]];
    const y = X.map((r) => 0.5 * r[0] + 2 * r[1] + 3);
    const w = leastSquares(X, y);
    expect(w[0]).toBeCloseTo(0.5, 10);
    expect(w[1]).toBeCloseTo(2, 10);
    expect(w[2]).toBeCloseTo(3, 10);
  });
  test('non-negative fit drops a negative term', () => {
    const X = [[1, 1], [2, 1], [3, 1]];
    const w = nonNegativeFit(X, [3, 2, 1]);
    expect(w[0]).toBe(0);
    expect(w[1]).toBeCloseTo(2, 10);
  });
});
