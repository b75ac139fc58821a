/**
 * Inference for Node services: load a checkpoint directory and predict target
 * values for new structures, batching internally (no Python sidecar).
 */
import type { GraphStore, Structure } from '../data';
import { packerArrays } from '../data';
import type { ModelConfig } from '../model/config';
import { predictGraphs, predictGraphsAsync, type EvaluateArgs } from '../train/evaluate';
import { PlanCache } from '../train/plan';
import { ForceEvaluator, propertyList, type PredictedProperties, type PropertyName } from './force-evaluator';
import { openModel } from './open-model';

export { checkModelClasses } from './open-model';

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

/** Loads a checkpoint directory written by `train` (or `gnnbatch train --checkpoint`). */
export function loadModel(dir: string): LoadedModel {
  const model = openModel(dir);
  // Used by one call at a time (the queue below): a replaced plan is freed at once.
  const asyncCache = new PlanCache(model.config, 'float32', 1 << 30, true, false, model.directions, true);
  let queue: Promise<unknown> = Promise.resolve();
  let forceEvaluator: ForceEvaluator | undefined;
  const argsFor = (store: GraphStore, batchSize: number): EvaluateArgs => {
    const arrays = packerArrays(store, new Float64Array(store.numGraphs));
    const ids = Int32Array.from({ length: store.numGraphs }, (_, i) => i);
    const offsets = model.offsets(store) ?? undefined;
    return { store, arrays, ids, config: model.config, params: model.params, targetMean: model.targetMean, targetStd: model.targetStd, offsets, batchSize };
  };
  return {
    config: model.config,
    target: model.target,
    graphRule: model.graphRule,
    step: model.step,
    elements: model.elements,
    predict: ((structures: readonly Structure[], options: { batchSize?: number; properties?: readonly PropertyName[] } = {}) => {
      if (options.properties !== undefined) {
        const properties = propertyList(options.properties);
        model.checkStructures(structures);
        forceEvaluator ??= new ForceEvaluator(model);
        return forceEvaluator.compute(structures, properties, options.batchSize ?? 64);
      }
      if (structures.length === 0) return new Float64Array(0);
      model.checkStructures(structures);
      return predictGraphs(argsFor(model.requestStore(structures), options.batchSize ?? 64));
    }) as LoadedModel['predict'],
    close() {
      forceEvaluator?.release();
      forceEvaluator = undefined;
      asyncCache.releaseAll();
    },
    predictAsync(structures, options = {}) {
      const run = queue.then(async () => {
        if (structures.length === 0) return new Float64Array(0);
        model.checkStructures(structures);
        // Graph construction on a native worker too: only the per-batch packing
        // (a memcpy-like pass over one batch) runs on the event loop.
        const store = await model.requestStoreAsync(structures);
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
