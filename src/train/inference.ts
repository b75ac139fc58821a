/**
 * Inference for Node services: load a checkpoint directory and predict target
 * values for new structures, batching internally (no Python sidecar).
 */
import { buildStore, buildStoreAsync, packerArrays, parseGraphRule, type GraphStore, type Structure } from '../data';
import type { ModelConfig } from '../model/config';
import { readCheckpoint } from './checkpoint';
import { predictGraphs, predictGraphsAsync, type EvaluateArgs } from './evaluate';
import { PlanCache, needsDirections } from './plan';
import { atomrefOffsets } from './atomref';
import { ArgumentError } from '../errors';
import { ForceEvaluator, propertyList, type PredictedProperties, type PropertyName } from './force-evaluator';

/** A model loaded for inference. */
export interface LoadedModel {
  /** Model configuration. */
  readonly config: ModelConfig;
  /** Name of the predicted target. */
  readonly target: string;
  /** Graph rule the model was trained with (used for new structures). */
  readonly graphRule: string;
  /** Training step of the checkpoint. */
  readonly step: number;
  /** The atomic numbers the model was trained on (ascending), or null for checkpoints written before they were kept. */
  readonly elements: readonly number[] | null;
  /**
   * Predictions in the target's units, one per structure (in order). Batches
   * `batchSize` structures per native call (default 64).
   */
  predict(structures: readonly Structure[], options?: { batchSize?: number }): Float64Array;
  /**
   * Energies with forces and/or stress (docs/forces.md): `properties` names what
   * to return ('energy' always comes). Forces are F = -dE/dx per atom in target
   * units per Å, stress ASE's (1/V) dE/dstrain in Voigt order (null for
   * structures not periodic in 3 dimensions). Every model (MPEU, SchNet,
   * PaiNN). The plan of this path is separate from predict()'s.
   */
  predict(structures: readonly Structure[], options: { batchSize?: number; properties: readonly PropertyName[] }): PredictedProperties;
  /**
   * As {@link predict}, with every native forward pass on a worker thread, so a
   * server's event loop stays free. Concurrent calls are queued (one at a time).
   */
  predictAsync(structures: readonly Structure[], options?: { batchSize?: number }): Promise<Float64Array>;
  /** Frees the model's native plans now (the model stays usable: a later call builds a plan again). */
  close(): void;
}

/**
 * Throws ERR_GNN_STRUCTURE (an ArgumentError, naming the structure) when a
 * structure has no atoms, lacks positions, or has an atomic number outside the
 * model's embedding classes.
 */
export function checkModelClasses(structures: readonly Structure[], numClasses: number): void {
  for (let s = 0; s < structures.length; s++) {
    const z = structures[s]?.numbers;
    if (!z || !structures[s].positions || z.length === 0) throw new ArgumentError(`structure ${s}: needs numbers and positions with at least one atom`, 'ERR_GNN_STRUCTURE');
    for (let i = 0; i < z.length; i++) {
      if (z[i] >= numClasses) {
        throw new ArgumentError(`structure ${s} (${structures[s].id}): atomic number ${z[i]} is outside the model's ${numClasses} classes`, 'ERR_GNN_STRUCTURE');
      }
    }
  }
}

/** Loads a checkpoint directory written by `train` (or `gnnbatch train --checkpoint`). */
export function loadModel(dir: string): LoadedModel {
  const ck = readCheckpoint(dir);
  const rule = parseGraphRule(ck.graphRule);
  // PaiNN reads the edges' direction vectors: build the request stores with them.
  const directions = needsDirections(ck.config);
  // Used by one call at a time (the queue below): a replaced plan is freed at once.
  const asyncCache = new PlanCache(ck.config, 'float32', 1 << 30, true, false, directions, true);
  let queue: Promise<unknown> = Promise.resolve();
  let forceEvaluator: ForceEvaluator | undefined;
  const checkClasses = (structures: readonly Structure[]): void => checkModelClasses(structures, ck.config.numClasses);
  const argsFor = (store: GraphStore, batchSize: number): EvaluateArgs => {
    const arrays = packerArrays(store, new Float64Array(store.numGraphs));
    const ids = Int32Array.from({ length: store.numGraphs }, (_, i) => i);
    const offsets = ck.atomRefs ? atomrefOffsets(store, Float64Array.from(ck.atomRefs)) : undefined;
    return { store, arrays, ids, config: ck.config, params: ck.params, targetMean: ck.targetMean, targetStd: ck.targetStd, offsets, batchSize };
  };
  return {
    config: ck.config,
    target: ck.target,
    graphRule: ck.graphRule,
    step: ck.step,
    elements: ck.elements ? Object.freeze([...ck.elements]) : null,
    predict: ((structures: readonly Structure[], options: { batchSize?: number; properties?: readonly PropertyName[] } = {}) => {
      if (options.properties !== undefined) {
        const properties = propertyList(options.properties);
        checkClasses(structures);
        forceEvaluator ??= new ForceEvaluator(ck);
        return forceEvaluator.compute(structures, properties, options.batchSize ?? 64);
      }
      if (structures.length === 0) return new Float64Array(0);
      checkClasses(structures);
      const { store } = buildStore(structures, { graph: rule, targetNames: [], directions });
      return predictGraphs(argsFor(store, options.batchSize ?? 64));
    }) as LoadedModel['predict'],
    close() {
      forceEvaluator?.release();
      forceEvaluator = undefined;
      asyncCache.releaseAll();
    },
    predictAsync(structures, options = {}) {
      const run = queue.then(async () => {
        if (structures.length === 0) return new Float64Array(0);
        checkClasses(structures);
        // Graph construction on a native worker too: only the per-batch packing
        // (a memcpy-like pass over one batch) runs on the event loop.
        const { store } = await buildStoreAsync(structures, { graph: rule, targetNames: [], directions });
        return predictGraphsAsync(argsFor(store, options.batchSize ?? 64), asyncCache);
      });
      queue = run.then(
        () => undefined,
        () => undefined,
      );
      return run;
    },
  };
}
