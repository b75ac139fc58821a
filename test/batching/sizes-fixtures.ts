/**
 * Synthetic size distributions for batching tests (no data layer needed).
 *
 * qm9-like: atom counts 3..29, a histogram peaking at 19 atoms with a longer
 * left tail (mean ~17.9, sd ~3), fully connected edges n(n-1) (mean ~312).
 * Sampling is block-stratified: every consecutive block of 1000 graph ids is
 * the histogram (systematic sampling with a random offset per block), shuffled
 * within the block. So the study's estimator, which reads the first 1000 graphs,
 * sees the histogram's moments rather than sampling noise (at B=128 one edge per
 * graph of noise moves the budget by two multiples of 64).
 *
 * aflow-like: atoms per cell 1..96, discretised log-normal (median ~6,
 * long tail: ~2% above 40 atoms), knn:12 edges = 12n; i.i.d. samples.
 */
import { Rng } from '../../src/util/rng';
import { qm9AtomCountHistogram } from '../../src/data/synthetic/qm9-like';
import type { GraphSizes } from '../../src/batching/policy';

/** Number of QM9 molecules. */
export const QM9_COUNT = 133885;

/** QM9-like atom-count probabilities for n = 3..29 (index n-3): the data layer's histogram. */
export const qm9AtomHistogram = qm9AtomCountHistogram;

/** QM9-like sizes (fully connected); see the module comment. */
export function qm9LikeSizes(count = QM9_COUNT, seed = 9): GraphSizes {
  const p = qm9AtomHistogram();
  const rng = new Rng(seed);
  const nodes = new Int32Array(count);
  const block = 1000;
  for (let start = 0; start < count; start += block) {
    const len = Math.min(block, count - start);
    const u = rng.nextFloat();
    let cum = 0;
    let prev = Math.floor(u);
    let k = start;
    for (let i = 0; i < p.length; i++) {
      cum += p[i];
      const upto = i === p.length - 1 ? len : Math.min(len, Math.floor(cum * len + u));
      for (let c = prev; c < upto; c++) nodes[k++] = i + 3;
      prev = Math.max(prev, upto);
    }
    rng.shuffle(nodes.subarray(start, start + len));
  }
  const edges = new Int32Array(count);
  for (let i = 0; i < count; i++) edges[i] = nodes[i] * (nodes[i] - 1);
  return { nodes, edges };
}

/** AFLOW-like sizes (knn:12 edges = 12 per atom); see the module comment. */
export function aflowLikeSizes(count = 60000, seed = 12): GraphSizes {
  const rng = new Rng(seed);
  const nodes = new Int32Array(count);
  const edges = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    // Box-Muller normal -> log-normal atom count, median 6, sigma 0.75.
    const u1 = 1 - rng.nextFloat();
    const u2 = rng.nextFloat();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    const n = Math.min(96, Math.max(1, Math.round(6 * Math.exp(0.75 * z))));
    nodes[i] = n;
    edges[i] = 12 * n;
  }
  return { nodes, edges };
}

/** The first `fraction` of graph ids in id order (the 80% training split of the study). */
export function prefixSplit(count: number, fraction = 0.8): Int32Array {
  const n = Math.floor(count * fraction);
  const s = new Int32Array(n);
  for (let i = 0; i < n; i++) s[i] = i;
  return s;
}
