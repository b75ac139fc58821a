/**
 * The set-up every run over a store shares: `train()`, `profileSteps()` and
 * recommend's calibration each train the same model on the same batches, so
 * they derive them in one place.
 *
 * {@link prepareRun} fixes, in order: the native thread count, the split
 * (seeded 80/10/10 with {@link DEFAULT_SPLIT_SEED} unless given), the target
 * column and its standardisation (src/train/targets.ts, with its guarantees),
 * the store's structural check (native validateStore),
 * the model configuration (`modelConfigForStore`: the class-count rule), the
 * parameter layout and its seeded initialisation, Adam's moment buffers, the
 * batching policy and the plan cache (plans reused by capacity when the
 * policy says so: {@link plansByCapacity}). What differs between the callers
 * (resume, evaluation, checkpoints, the engine's options) stays with them.
 */
import { native, setThreads, type AdamStepArgs, type NativeStoreArrays } from '../native';
import { createPolicy, sizesOf, type Policy, type PolicyOptions } from '../batching';
import { DEFAULT_SEED, DEFAULT_SPLIT_SEED, splitGraphs, type GraphStore, type Split } from '../data';
import { modelConfigForStore, type ModelConfig, type ModelKind } from '../model/config';
import { initParams, paramLayout, type ParamLayout } from '../model/params';
import { ArgumentError } from '../errors';
import { PlanCache, plansByCapacity } from './plan';
import { prepareTargets, type PreparedTargets } from './targets';

export { DEFAULT_SEED, DEFAULT_SPLIT_SEED };

/** The default split of `store` (seeded with {@link DEFAULT_SPLIT_SEED} unless `seed` is given). */
export function defaultSplit(store: Pick<GraphStore, 'numGraphs'>, seed: number = DEFAULT_SPLIT_SEED): Split {
  return splitGraphs(store.numGraphs, { seed });
}

/** Options of {@link prepareRun}. */
export interface RunSetupOptions {
  store: GraphStore;
  /** Target column (default: the store's first). */
  target?: string;
  model?: Partial<ModelConfig> & { kind?: ModelKind };
  policy: string;
  policyOptions?: PolicyOptions;
  batchSize: number;
  /** Seed of initialisation and of the batch stream (default {@link DEFAULT_SEED}). */
  seed?: number;
  /** The split (default: {@link defaultSplit} with `splitSeed`). */
  split?: Split;
  splitSeed?: number;
  /** Native threads (default: the current setting). */
  threads?: number;
  /** Fit per-element reference values and train on the residual. */
  atomref?: boolean;
  /** No warnings about validation/test graphs without a target. */
  skipEval?: boolean;
  /**
   * Train graphs without a finite target: `error` (default; what training
   * needs) or `zero` (they train on the standardised mean: timing runs such
   * as a profile, where the values do not matter).
   */
  missingTargets?: 'error' | 'zero';
  /** Plan cache byte limit (default the cache's); a hard limit per plan when `planCacheHard`. */
  planCacheBytes?: number;
  planCacheHard?: boolean;
  /** Names the caller in argument errors (`profile: ...`); default none. */
  who?: string;
}

/** The parameters and Adam's state of a run (float32, the engines' layout). */
export interface RunState {
  params: Float32Array;
  grads: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** What {@link prepareRun} derives. */
export interface PreparedRun {
  store: GraphStore;
  target: string;
  seed: number;
  split: Split;
  targets: PreparedTargets;
  /** The packer's view of the store with the standardised target (targets.arrays). */
  arrays: NativeStoreArrays;
  config: ModelConfig;
  layout: ParamLayout;
  policy: Policy;
  state: RunState;
  cache: PlanCache;
}

/** Prepares a run (see the file comment); throws ArgumentError / TrainingError with a code on bad options or data. */
export function prepareRun(o: RunSetupOptions): PreparedRun {
  const who = o.who ? `${o.who}: ` : '';
  if (!Number.isInteger(o.batchSize) || o.batchSize < 2) throw new ArgumentError(`${who}batch size must be an integer >= 2, got ${o.batchSize}`);
  if (o.threads !== undefined) setThreads(o.threads);
  const store = o.store;
  const target = o.target ?? store.targetNames[0];
  if (target === undefined) throw new ArgumentError(`${who}the store has no target column`);
  const seed = o.seed ?? DEFAULT_SEED;
  const split = o.split ?? defaultSplit(store, o.splitSeed);
  if (split.train.length === 0) throw new ArgumentError(`${who}the train split is empty`);
  const targets = prepareTargets(store, target, split, { atomref: o.atomref, skipEval: o.skipEval, missing: o.missingTargets });
  // Full structural check once per run (O(edges)), before anything reads the
  // store's sizes: every index in range, edges sorted by receiver, senderPerm a
  // sender-sorted permutation. Packing then range-checks every call and relies
  // on the permutation's order.
  native().validateStore(targets.arrays);
  const config = modelConfigForStore(store, o.model);
  const layout = paramLayout(config);
  const policy = createPolicy(o.policy, sizesOf(store), split.train, o.batchSize, seed, o.policyOptions ?? {});
  const state: RunState = {
    params: initParams(layout, seed, 'float32') as Float32Array,
    grads: new Float32Array(layout.total),
    m: new Float32Array(layout.total),
    v: new Float32Array(layout.total),
  };
  const cache = new PlanCache(config, 'float32', o.planCacheBytes, plansByCapacity(o.policy), o.planCacheHard ?? false);
  return { store, target, seed, split, targets, arrays: targets.arrays, config, layout, policy, state, cache };
}

/**
 * Adam's arguments for 0-based `step`: the learning rate, the bias
 * corrections 1 - beta^(step+1) (beta1 0.9, beta2 0.999, the native
 * optimiser's) and the clipping norm (0: off).
 */
export function adamStepArgs(step: number, lr: number, clipNorm = 0): AdamStepArgs {
  return { lr, bc1: 1 - Math.pow(0.9, step + 1), bc2: 1 - Math.pow(0.999, step + 1), clipNorm };
}
