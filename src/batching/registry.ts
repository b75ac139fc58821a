/** Policy registry: names and one factory. */
import type { CommonPolicyOptions } from './base';
import type { PackedOptions } from './packed';
import type { GraphSizes, Policy } from './policy';
import { DynamicPolicy } from './dynamic';
import { ExactPolicy } from './exact';
import { PackedPolicy } from './packed';
import { Static64Policy } from './static-64';
import { StaticConstantPolicy } from './static-constant';
import { StaticPow2Policy } from './static-2pow';
import { ArgumentError } from '../errors';

/** Every registered policy name. */
export const POLICY_NAMES = ['static-2pow', 'static-64', 'static-constant', 'dynamic', 'packed', 'exact'] as const;

/** A registered policy name. */
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Options of {@link createPolicy}; each policy reads the ones it knows. */
export interface PolicyOptions extends CommonPolicyOptions, PackedOptions {}

/** True when `name` is a registered policy name. */
export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

/**
 * `name` as a {@link PolicyName}, for names read from files, flags or other
 * strings; throws ArgumentError (ERR_GNN_ARGUMENT) listing the registered
 * names when it is not one.
 */
export function policyName(name: string): PolicyName {
  if (!isPolicyName(name)) throw new ArgumentError(`unknown batching policy '${name}' (expected one of ${POLICY_NAMES.join(', ')})`);
  return name;
}

/**
 * Create a policy by name over `split` (graph ids into `sizes`) with batch size
 * `batchSize` and `seed` (the stream's shuffle seed; the study used 42).
 */
export function createPolicy(
  name: PolicyName | string,
  sizes: GraphSizes,
  split: Int32Array,
  batchSize: number,
  seed: number,
  options: PolicyOptions = {},
): Policy {
  switch (name) {
    case 'static-2pow':
      return new StaticPow2Policy(sizes, split, batchSize, seed, options);
    case 'static-64':
      return new Static64Policy(sizes, split, batchSize, seed, options);
    case 'static-constant':
      return new StaticConstantPolicy(sizes, split, batchSize, seed, options);
    case 'dynamic':
      return new DynamicPolicy(sizes, split, batchSize, seed, options);
    case 'packed':
      return new PackedPolicy(sizes, split, batchSize, seed, options);
    case 'exact':
      return new ExactPolicy(sizes, split, batchSize, seed);
    default:
      throw new ArgumentError(`unknown batching policy '${name}' (expected one of ${POLICY_NAMES.join(', ')})`);
  }
}
