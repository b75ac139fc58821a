import { compareBatching, formatCompareTable, type CompareRow } from '../../src/batching';
import { aflowLikeSizes, prefixSplit, qm9LikeSizes } from './sizes-fixtures';

const BATCHES = [16, 32, 64, 128];

function byPolicy(rows: CompareRow[], policy: string): CompareRow[] {
  return rows.filter((r) => r.policy === policy).sort((a, b) => a.batch - b.batch);
}

function checkStudyPattern(rows: CompareRow[]): void {
  const s2 = byPolicy(rows, 'static-2pow');
  const s64 = byPolicy(rows, 'static-64');
  for (let i = 0; i < BATCHES.length; i++) {
    expect(s2[i].shapes).toBeLessThanOrEqual(8);
    expect(s64[i].shapes).toBeGreaterThanOrEqual(40);
    expect(s64[i].shapes).toBeGreaterThanOrEqual(5 * s2[i].shapes);
  }
  // static-64's shape count grows with B (the study's pattern).
  for (let i = 1; i < BATCHES.length; i++) expect(s64[i].shapes).toBeGreaterThan(s64[i - 1].shapes);
  for (const p of ['dynamic', 'packed', 'static-constant']) for (const r of byPolicy(rows, p)) expect(r.shapes).toBe(1);
  for (const r of byPolicy(rows, 'exact')) {
    expect(r.node_fill).toBe(1);
    expect(r.padded_edges_vs_exact).toBe(1);
  }
}

describe('compareBatching at 100k steps', () => {
  test('qm9-like: the study pattern, packed >= 98% fill at B >= 32, well under a minute', () => {
    const sizes = qm9LikeSizes();
    const split = prefixSplit(sizes.nodes.length);
    const t0 = performance.now();
    const rows = compareBatching({ sizes, split, batchSizes: BATCHES, steps: 100000 });
    const seconds = (performance.now() - t0) / 1000;
    expect(rows).toHaveLength(6 * BATCHES.length);
    checkStudyPattern(rows);
    for (const r of byPolicy(rows, 'packed').filter((x) => x.batch >= 32)) {
      expect(r.node_fill).toBeGreaterThanOrEqual(0.98);
      expect(r.edge_fill).toBeGreaterThanOrEqual(0.98);
    }
    expect(byPolicy(rows, 'dynamic').map((r) => [r.budget_nodes, r.budget_edges])).toEqual([
      [320, 4992],
      [576, 9984],
      [1152, 19968],
      [2304, 39936],
    ]);
    // Packed keeps batch composition close to dynamic's.
    for (const r of byPolicy(rows, 'packed')) {
      expect(Math.abs(r.graphs_per_batch_vs_dynamic! - 1)).toBeLessThan(0.15);
      expect(Math.abs(r.batch_mean_nodes_sd_vs_dynamic! - 1)).toBeLessThan(0.2);
    }
    // Static-2^N at B=128 pads QM9 to 4096 nodes / 65536 edges: ~1.65x the edges of exact.
    expect(byPolicy(rows, 'static-2pow')[3].padded_edges_vs_exact).toBeGreaterThan(1.5);
    expect(seconds).toBeLessThan(60);
    expect(formatCompareTable(rows).split('\n')).toHaveLength(2 + rows.length);
  });

  test('aflow-like: the study pattern; packed >= 98% edge fill and >= 96% node fill at every B', () => {
    const sizes = aflowLikeSizes();
    const split = prefixSplit(sizes.nodes.length);
    const rows = compareBatching({ sizes, split, batchSizes: BATCHES, steps: 100000 });
    checkStudyPattern(rows);
    for (const r of byPolicy(rows, 'packed')) {
      // knn:12 makes edges = 12 x nodes; the budget's edges are < 12 x its nodes, so
      // edges bind and node fill is capped at n_edge / (12 n_node) (96.9% at B=128).
      expect(r.edge_fill).toBeGreaterThanOrEqual(0.98);
      expect(r.node_fill).toBeGreaterThanOrEqual(0.96);
    }
  });

  test('studyCompat: static batches per epoch = split / B instead of split / (B-1)', () => {
    const sizes = qm9LikeSizes(20000);
    const split = prefixSplit(20000);
    const [plain] = compareBatching({ sizes, split, batchSizes: [32], policies: ['static-64'], steps: 2000 });
    const [compat] = compareBatching({ sizes, split, batchSizes: [32], policies: ['static-64'], steps: 2000, options: { studyCompat: true } });
    expect(plain.batches_per_epoch).toBeCloseTo(16000 / 31, 6);
    expect(compat.batches_per_epoch).toBeCloseTo(16000 / 32, 6);
  });
});
