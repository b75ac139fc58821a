/**
 * Evaluation: predictions for a list of graphs in unpadded (exact) batches,
 * outside the timed region, with RMSE and MAE in the target's own units.
 */
import { native, nativeModel, type NativeStoreArrays, type PackOutput, type PackShape } from '../native';
import type { GraphStore } from '../data';
import type { ModelConfig } from '../model/config';
import { toTargetUnits } from '../model/forces';
import { PlanCache, inputsFor, type Plan } from './plan';
import { regressionErrors } from './metrics';

/** Arguments of {@link evaluate} and {@link predictGraphs}. */
export interface EvaluateArgs {
  store: Pick<GraphStore, 'nodeOffset' | 'edgeOffset'>;
  /** Native arrays with the standardised target column. */
  arrays: NativeStoreArrays;
  ids: Int32Array;
  config: ModelConfig;
  params: Float32Array;
  targetMean: number;
  targetStd: number;
  /** Per-graph-id values added to predictions and truth (atomrefs), if any. */
  offsets?: Float64Array;
  batchSize: number;
}

const evalCaches = new Map<string, PlanCache>();

function cacheFor(config: ModelConfig): PlanCache {
  const key = JSON.stringify(config);
  let c = evalCaches.get(key);
  if (!c) {
    // Evaluation plans are reused by capacity and not counted as compilations of the run.
    c = new PlanCache(config, 'float32', 1 << 30, true);
    if (evalCaches.size > 8) evalCaches.clear();
    evalCaches.set(key, c);
  }
  return c;
}

/** The exact (unpadded) shape of a list of graphs. */
export function exactShape(store: EvaluateArgs['store'], ids: Int32Array): PackShape {
  let nodes = 0;
  let edges = 0;
  for (const g of ids) {
    nodes += store.nodeOffset[g + 1] - store.nodeOffset[g];
    edges += store.edgeOffset[g + 1] - store.edgeOffset[g];
  }
  return { nodes, edges, graphs: ids.length };
}

/** A value in standardised units of graph g, back in the target's units. */
function toUnits(a: EvaluateArgs, g: number, z: number): number {
  return toTargetUnits(z, a.targetMean, a.targetStd, a.offsets ? a.offsets[g] : 0);
}

/**
 * The graphs of `a.ids` in exact (unpadded) batches of `a.batchSize`, each
 * packed into a capacity plan of `cache` when the caller asks for it.
 */
function* packedBatches(a: EvaluateArgs, cache: PlanCache): Generator<{ start: number; ids: Int32Array; shape: PackShape; plan: Plan; inputs: PackOutput }> {
  const B = Math.max(1, a.batchSize);
  for (let start = 0; start < a.ids.length; start += B) {
    const ids = a.ids.subarray(start, Math.min(a.ids.length, start + B));
    const shape = exactShape(a.store, ids);
    const plan = cache.get(shape);
    const inputs = inputsFor(plan, shape);
    native().packGraphs(a.arrays, ids, shape, inputs);
    yield { start, ids, shape, plan, inputs };
  }
}

/**
 * Predictions like {@link predictGraphs}, each native forward pass run on a
 * worker thread so the event loop stays free (for servers). `cache` must not be
 * used by another call at the same time (callers serialise).
 */
export async function predictGraphsAsync(a: EvaluateArgs, cache: PlanCache): Promise<Float64Array> {
  const out = new Float64Array(a.ids.length);
  const pred = new Float32Array(Math.max(1, a.batchSize));
  for (const b of packedBatches(a, cache)) {
    await nativeModel().predictAsync(b.plan.handle, b.inputs, b.shape, a.params, pred);
    b.ids.forEach((g, k) => (out[b.start + k] = toUnits(a, g, pred[k])));
  }
  return out;
}

/** Predictions in target units for `ids`, in order. */
export function predictGraphs(a: EvaluateArgs): Float64Array {
  const out = new Float64Array(a.ids.length);
  const pred = new Float32Array(Math.max(1, a.batchSize));
  for (const b of packedBatches(a, cacheFor(a.config))) {
    nativeModel().predict(b.plan.handle, b.inputs, b.shape, a.params, pred);
    b.ids.forEach((g, k) => (out[b.start + k] = toUnits(a, g, pred[k])));
  }
  return out;
}

/** RMSE and MAE (target units) of the model on `ids`. */
export function evaluate(a: EvaluateArgs): { rmse: number; mae: number } {
  const pred = predictGraphs(a);
  const truth = new Float64Array(a.ids.length);
  a.ids.forEach((g, k) => (truth[k] = toUnits(a, g, a.arrays.target[g])));
  return regressionErrors(pred, truth);
}
