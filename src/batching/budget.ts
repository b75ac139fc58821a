/**
 * Budget estimators for fixed-shape policies (`dynamic`, `packed`).
 *
 * `study` (default): the study's / Jraph's estimator over the first
 * `estimationGraphs` graphs of the split (in split order):
 * `n_node = 64 * (1 + floor(max(mean_nodes * B, max_nodes) / 64))`, the same for
 * edges, `n_graph = B`.
 *
 * `quantile` (tighter, ours): the `quantile` of the node (edge) total of B-1
 * graphs drawn at random from the estimation graphs (2000 draws, fixed seed),
 * +1 spare node, at least the largest graph of the whole split (+1), rounded up
 * to a multiple of 64; `n_graph = B`.
 */
import type { PackShape } from '../native';
import type { GraphSizes } from './policy';
import { Rng } from '../util/rng';
import { maxSizes } from './sizes';
import { nextMultipleOf64Above, roundUpTo64 } from './shapes';
import { ArgumentError } from '../errors';

/** Which budget estimator a fixed-shape policy uses. */
export type BudgetEstimator = 'study' | 'quantile';

/** Options of {@link estimateBudget}. */
export interface BudgetOptions {
  /** Estimator (default `study`). */
  estimator?: BudgetEstimator;
  /** Number of leading split graphs the estimate looks at (default 1000, the study's). */
  estimationGraphs?: number;
  /**
   * Make the budget hold the largest graph of the whole split, not only of the
   * estimation graphs (default true). The study's estimator looked at the first
   * 1000 graphs only, so on heavy-tailed data (AFLOW-like crystals of 100+ atoms)
   * a later graph could exceed the budget and stop training with an error, as
   * Jraph does; `false` reproduces that exactly (the mean still comes from the
   * estimation graphs either way, so budgets of data without such a tail are
   * unchanged).
   */
  fitLargest?: boolean;
  /** Quantile of the `quantile` estimator, in (0, 1] (default 0.9). */
  quantile?: number;
}

/** A padded batch budget plus the statistics it came from. */
export interface Budget extends PackShape {
  estimator: BudgetEstimator;
  /** Mean nodes / edges per graph over the estimation graphs. */
  meanNodes: number;
  meanEdges: number;
  /** Largest graph seen by the estimator. */
  maxNodes: number;
  maxEdges: number;
}

/** Estimate the budget of a fixed-shape policy for batch size `B`. */
export function estimateBudget(sizes: GraphSizes, split: Int32Array, batchSize: number, opts: BudgetOptions = {}): Budget {
  const estimator = opts.estimator ?? 'study';
  const k = Math.min(split.length, opts.estimationGraphs ?? 1000);
  if (!(k >= 1)) throw new ArgumentError(`estimationGraphs must be >= 1, got ${opts.estimationGraphs}`);
  if (!(Number.isInteger(batchSize) && batchSize >= 2)) throw new ArgumentError(`batch size must be an integer >= 2, got ${batchSize}`);
  const head = split.subarray(0, k);
  let sumN = 0;
  let sumE = 0;
  for (let i = 0; i < k; i++) {
    sumN += sizes.nodes[head[i]];
    sumE += sizes.edges[head[i]];
  }
  const meanNodes = sumN / k;
  const meanEdges = sumE / k;
  if (estimator === 'study') {
    const mx = maxSizes(sizes, opts.fitLargest === false ? head : split);
    return {
      estimator,
      nodes: nextMultipleOf64Above(Math.max(meanNodes * batchSize, mx.nodes)),
      edges: nextMultipleOf64Above(Math.max(meanEdges * batchSize, mx.edges)),
      graphs: batchSize,
      meanNodes,
      meanEdges,
      maxNodes: mx.nodes,
      maxEdges: mx.edges,
    };
  }
  if (estimator !== 'quantile') throw new ArgumentError(`unknown budget estimator '${String(estimator)}' (expected study or quantile)`);
  const q = opts.quantile ?? 0.9;
  if (!(q > 0 && q <= 1)) throw new ArgumentError(`quantile must be in (0, 1], got ${q}`);
  const draws = 2000;
  const rng = new Rng(0x5eed);
  const tn = new Float64Array(draws);
  const te = new Float64Array(draws);
  for (let d = 0; d < draws; d++) {
    let n = 0;
    let e = 0;
    for (let j = 0; j < batchSize - 1; j++) {
      const id = head[rng.below(k)];
      n += sizes.nodes[id];
      e += sizes.edges[id];
    }
    tn[d] = n;
    te[d] = e;
  }
  tn.sort();
  te.sort();
  const at = Math.min(draws - 1, Math.ceil(q * draws) - 1);
  const mx = maxSizes(sizes, split);
  return {
    estimator,
    nodes: Math.max(64, roundUpTo64(Math.max(tn[at], mx.nodes) + 1)),
    edges: Math.max(64, roundUpTo64(Math.max(te[at], mx.edges))),
    graphs: batchSize,
    meanNodes,
    meanEdges,
    maxNodes: mx.nodes,
    maxEdges: mx.edges,
  };
}
