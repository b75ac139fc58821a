import { createPolicy, estimateBudget, type Budget } from '../../src/batching';
import { aflowLikeSizes, prefixSplit, qm9AtomHistogram, qm9LikeSizes } from './sizes-fixtures';

/** PAPER.md: QM9 (fully connected) dynamic budgets and mean real graphs per dynamic batch. */
const PAPER_QM9: Record<number, { nodes: number; edges: number; graphs: number }> = {
  16: { nodes: 320, edges: 4992, graphs: 14.7 },
  32: { nodes: 576, edges: 9984, graphs: 30.4 },
  64: { nodes: 1152, edges: 19968, graphs: 62.0 },
  128: { nodes: 2304, edges: 39936, graphs: 125.4 },
};

describe('qm9-like fixture', () => {
  const sizes = qm9LikeSizes();
  test('looks like QM9: 3..29 atoms, mean ~18, peak at 18-19, fully connected', () => {
    let sum = 0;
    let min = 99;
    let max = 0;
    for (const n of sizes.nodes) {
      sum += n;
      min = Math.min(min, n);
      max = Math.max(max, n);
    }
    expect(min).toBe(3);
    expect(max).toBe(29);
    expect(Math.abs(sum / sizes.nodes.length - 17.9)).toBeLessThan(0.1);
    const h = qm9AtomHistogram();
    const peak = h.indexOf(Math.max(...h)) + 3;
    expect([18, 19]).toContain(peak);
    for (let i = 0; i < 100; i++) expect(sizes.edges[i]).toBe(sizes.nodes[i] * (sizes.nodes[i] - 1));
  });
});

describe('study budget estimator', () => {
  const sizes = qm9LikeSizes();
  const split = prefixSplit(sizes.nodes.length);
  test.each([16, 32, 64, 128])('B=%i: matches PAPER.md QM9 budgets within one multiple of 64', (b) => {
    const got = estimateBudget(sizes, split, b);
    expect(Math.abs(got.nodes - PAPER_QM9[b].nodes)).toBeLessThanOrEqual(64);
    expect(Math.abs(got.edges - PAPER_QM9[b].edges)).toBeLessThanOrEqual(64);
    expect(got.graphs).toBe(b);
    // And the dynamic policy then holds about as many graphs per batch as the study's.
    const p = createPolicy('dynamic', sizes, split, b, 42);
    for (let i = 0; i < 5000; i++) p.next();
    expect(Math.abs(p.summary().graphsPerBatchMean - PAPER_QM9[b].graphs)).toBeLessThan(0.6);
  });

  test('formula: 64 * (1 + floor(max(mean * B, max) / 64)) over the first estimation graphs', () => {
    const sizes2 = { nodes: Int32Array.from([10, 20, 30, 1000]), edges: Int32Array.from([1, 2, 3, 4000]) };
    const b: Budget = estimateBudget(sizes2, Int32Array.from([0, 1, 2, 3]), 4, { estimationGraphs: 3, fitLargest: false });
    // mean nodes 20 -> 80 -> 128; max 30 < 80. mean edges 2 -> 8 -> 64.
    expect([b.nodes, b.edges, b.graphs]).toEqual([128, 64, 4]);
    // Default: the max term covers the whole split (graph 3: 1000 nodes, 4000 edges).
    const fit: Budget = estimateBudget(sizes2, Int32Array.from([0, 1, 2, 3]), 4, { estimationGraphs: 3 });
    expect([fit.nodes, fit.edges]).toEqual([1024, 4032]);
    const big = estimateBudget(sizes2, Int32Array.from([3, 0]), 2, { estimationGraphs: 2 });
    // mean 505*2 = 1010 > max 1000 -> 1024; edges mean 2000.5*2 = 4001 -> 4032.
    expect([big.nodes, big.edges]).toEqual([1024, 4032]);
  });

  test('quantile estimator: fits every graph and is no looser than the study on qm9/aflow-like at B=128', () => {
    for (const s of [sizes, aflowLikeSizes()]) {
      const sp = prefixSplit(s.nodes.length);
      const q = estimateBudget(s, sp, 128, { estimator: 'quantile', quantile: 0.5 });
      const st = estimateBudget(s, sp, 128);
      expect(q.nodes).toBeLessThanOrEqual(st.nodes);
      expect(q.edges).toBeLessThanOrEqual(st.edges);
      expect(q.nodes % 64).toBe(0);
      expect(() => createPolicy('dynamic', s, sp, 128, 1, { estimator: 'quantile' })).not.toThrow();
    }
    expect(() => estimateBudget(sizes, split, 16, { estimator: 'quantile', quantile: 0 })).toThrow(/quantile must be in/);
  });
});
