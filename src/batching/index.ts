/**
 * Public API of the batching layer (PAPER.md, "Batching algorithms").
 *
 * A {@link Policy} decides which graphs form the next batch and its padded
 * shape; the native packer copies. Policies read only per-graph sizes
 * ({@link sizesOf} derives them from a store), a split, B, a seed and options.
 * The stream loops over the split forever with a fresh seeded shuffle per
 * epoch; every graph is batched exactly once per epoch.
 *
 * | policy | graphs per batch | padded shape |
 * |---|---|---|
 * | `static-2pow` | B-1 + padding graph | nodes: pow2 >= real+1, edges: pow2 >= real, graphs B |
 * | `static-64` | B-1 + padding graph | nodes: mult. of 64 >= real+1, edges: mult. of 64 >= real, graphs B |
 * | `static-constant` | B-1 + padding graph | next mult. of 64 above (largest graph x B), nodes and edges; graphs B |
 * | `dynamic` | greedy in stream order | the budget (study estimator by default), graphs B |
 * | `packed` | bin-packed from a window | the dynamic budget's nodes/edges; graphs ceil(1.25 n_node / mean nodes) + 1 |
 * | `exact` | B | the real totals (no padding graph) |
 *
 * `studyCompat` (static policies, off by default): the study's static reader
 * read B graphs and batched B-1, silently dropping every B-th graph of the
 * stream; the switch reproduces that exactly (then a graph may be skipped in an
 * epoch). Every policy reports its accounting through {@link Policy.summary}
 * and saves/restores its exact position with `getState()/setState()`.
 */
export type { BatchSpec, GraphSizes, Policy, PolicyState, StreamState } from './policy';
export { Rng } from '../util/rng';
export { EpochStream } from './stream';
export {
  nextPowerOfTwo,
  roundUpTo64,
  nextMultipleOf64Above,
  staticPow2Shape,
  static64Shape,
  staticConstantShape,
  fitsPadded,
  shapeKey,
  parseShapeKey,
} from './shapes';
export { sizesOf, validateSizesAndSplit, maxSizes } from './sizes';
export { estimateBudget, type Budget, type BudgetEstimator, type BudgetOptions } from './budget';
export { BatchingStats, type BatchingSummary, type BatchingStatsState } from './stats';
export { GraphTooLargeError, checkEveryGraphFits } from './errors';
export { BasePolicy, type CommonPolicyOptions } from './base';
export { StaticPolicy } from './static';
export { StaticPow2Policy } from './static-2pow';
export { Static64Policy } from './static-64';
export { StaticConstantPolicy } from './static-constant';
export { DynamicPolicy } from './dynamic';
export { PackedPolicy, type PackedOptions } from './packed';
export { ExactPolicy } from './exact';
export { POLICY_NAMES, createPolicy, isPolicyName, policyName, type PolicyName, type PolicyOptions } from './registry';
export { compareBatching, formatCompareTable, type CompareBatchingInput, type CompareRow } from './compare';
