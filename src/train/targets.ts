/**
 * Target preparation for a training run: the column, the checks that every
 * train graph has a finite value, optional per-element reference values
 * (atomrefs), and the standardised targets the native packer reads.
 */
import { packerArrays, targetColumn, targetStats, type GraphStore, type Split, type TargetStats } from '../data';
import type { NativeStoreArrays } from '../native';
import { TrainingError } from '../errors';
import { atomrefOffsets, fitAtomRefs } from './atomref';

/** What {@link prepareTargets} derives from a store, a target and a split. */
export interface PreparedTargets {
  /** The raw target column (one value per graph; NaN where a graph has none). */
  column: Float64Array;
  /** Mean and standard deviation of the raw target over the train split. */
  rawStats: TargetStats;
  /** The same of what the network learns: the residual after atomrefs, else the target. */
  stats: TargetStats;
  /** Per-graph atomref sums subtracted from the target (with `atomref`), else undefined. */
  offsets: Float64Array | undefined;
  /** Fitted per-element reference values (index = Z; with `atomref`), else undefined. */
  atomRefs: Float64Array | undefined;
  /** The packer's view of the store with target = (residual - mean) / std (std 0: unscaled), computed once. */
  arrays: NativeStoreArrays;
  /** Validation/test graphs without a finite target (their RMSE and MAE will be NaN). */
  warnings: string[];
}

/**
 * Prepares `target` of `store` for training on `split.train`.
 *
 * Guarantees: every train graph has a finite raw target (else TrainingError
 * ERR_GNN_TARGET_MISSING for NaN, ERR_GNN_TARGET_NONFINITE for +-Inf) and a
 * finite standardised target after atomrefs (ERR_GNN_TARGET_NONFINITE).
 * Validation and test graphs without a finite value only add a warning
 * (none when `skipEval`). With `missing: 'zero'` (timing runs: a profile,
 * a calibration) graphs without a finite value are allowed and train on the
 * standardised mean (0); the statistics are those of the finite values.
 */
export function prepareTargets(store: GraphStore, target: string, split: Split, o: { atomref?: boolean; skipEval?: boolean; missing?: 'error' | 'zero' } = {}): PreparedTargets {
  const lenient = o.missing === 'zero';
  // With missing 'zero' (timing runs), non-finite values count as missing: the
  // statistics use the finite ones and those graphs train on the mean.
  const column = lenient ? targetColumn(store, target).map((y) => (Number.isFinite(y) ? y : NaN)) : targetColumn(store, target);
  // Every train graph needs a finite target: one Inf would make the mean and
  // standard deviation (and so every standardised target) NaN.
  if (!lenient) for (const g of split.train) {
    const y = column[g];
    if (Number.isNaN(y)) throw new TrainingError('ERR_GNN_TARGET_MISSING', `graph ${g} (${store.ids[g] ?? g}) of the train split has no value for target '${target}'`);
    if (!Number.isFinite(y)) throw new TrainingError('ERR_GNN_TARGET_NONFINITE', `graph ${g} (${store.ids[g] ?? g}) of the train split has target '${target}' = ${y}; training needs finite targets`);
  }
  const warnings: string[] = [];
  for (const [name, ids] of [['validation', split.val], ['test', split.test]] as const) {
    let bad = 0;
    let first = -1;
    for (const g of ids) if (!Number.isFinite(column[g])) (bad++, first < 0 && (first = g));
    if (bad > 0 && !o.skipEval)
      warnings.push(`${bad} graph(s) of the ${name} split have no finite value for '${target}' (first: graph ${first}, ${store.ids[first] ?? first}); its RMSE and MAE are NaN`);
  }
  const rawStats = targetStats(column, split.train);
  let offsets: Float64Array | undefined;
  let atomRefs: Float64Array | undefined;
  let residual = column;
  if (o.atomref) {
    if (lenient) throw new TrainingError('ERR_GNN_TARGET_MISSING', `target '${target}': atom references need every train graph's value (missing 'zero' is for timing runs)`);
    atomRefs = fitAtomRefs(store, column, split.train);
    offsets = atomrefOffsets(store, atomRefs);
    residual = column.map((y, g) => y - (offsets as Float64Array)[g]);
  }
  const stats = targetStats(residual, split.train);
  const inv = stats.std > 0 ? 1 / stats.std : 1;
  const arrays = packerArrays(store, residual.map((y) => (lenient && !Number.isFinite(y) ? 0 : (y - stats.mean) * inv)));
  if (!lenient) for (const g of split.train) {
    if (!Number.isFinite(arrays.target[g]))
      throw new TrainingError('ERR_GNN_TARGET_NONFINITE', `graph ${g} (${store.ids[g] ?? g}): the residual of target '${target}' after atom references is ${arrays.target[g]}`);
  }
  return { column, rawStats, stats, offsets, atomRefs, arrays, warnings };
}
