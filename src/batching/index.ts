/** Public API of the batching layer. */
export type { BatchSpec, GraphSizes, Policy, PolicyState, StreamState } from './policy';
export { Rng } from './rng';
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
export { POLICY_NAMES, createPolicy, isPolicyName, type PolicyName, type PolicyOptions } from './registry';
export { compareBatching, formatCompareTable, type CompareBatchingInput, type CompareRow } from './compare';
