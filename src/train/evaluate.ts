/**
 * Evaluation: predictions for a list of graphs in unpadded (exact) batches,
 * outside the timed region, with RMSE and MAE in the target's own units.
 */
import { native, nativeModel, type NativeStoreArrays } from '../native';
import type { GraphStore } from '../data';
import type { ModelConfig } from '../model/config';
import { PlanCache, inputsFor } from './plan';
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
function exactShape(store: EvaluateArgs['store'], ids: Int32Array): { nodes: number; edges: number; graphs: number } {
  let nodes = 0;
  let edges = 0;
  for (const g of ids) {
    nodes += store.nodeOffset[g + 1] - store.nodeOffset[g];
    edges += store.edgeOffset[g + 1] - store.edgeOffset[g];
  }
  return { nodes, edges, graphs: ids.length };
}

/**
 * Predictions like {@link predictGraphs}, each native forward pass run on a
 * worker thread so the event loop stays free (for servers). `cache` must not be
 * used by another call at the same time (callers serialise).
 */
export async function predictGraphsAsync(a: EvaluateArgs, cache: PlanCache): Promise<Float64Array> {
  const out = new Float64Array(a.ids.length);
  const api = nativeModel();
  const B = Math.max(1, a.batchSize);
  const pred = new Float32Array(B);
  for (let s = 0; s < a.ids.length; s += B) {
    const ids = a.ids.subarray(s, Math.min(a.ids.length, s + B));
    const shape = exactShape(a.store, ids);
    const plan = cache.get(shape);
    const inputs = inputsFor(plan, shape);
    native().packGraphs(a.arrays, ids, shape, inputs);
    await api.predictAsync(plan.handle, inputs, shape, a.params, pred);
    for (let k = 0; k < ids.length; k++) out[s + k] = pred[k] * a.targetStd + a.targetMean + (a.offsets ? a.offsets[ids[k]] : 0);
  }
  return out;
}

/** Predictions in target units for `ids`, in order. */
export function predictGraphs(a: EvaluateArgs): Float64Array {
  const out = new Float64Array(a.ids.length);
  const api = nativeModel();
  const cache = cacheFor(a.config);
  const B = Math.max(1, a.batchSize);
  const pred = new Float32Array(B);
  for (let s = 0; s < a.ids.length; s += B) {
    const ids = a.ids.subarray(s, Math.min(a.ids.length, s + B));
    const shape = exactShape(a.store, ids);
    const plan = cache.get(shape);
    const inputs = inputsFor(plan, shape);
    native().packGraphs(a.arrays, ids, shape, inputs);
    api.predict(plan.handle, inputs, shape, a.params, pred);
    for (let k = 0; k < ids.length; k++) out[s + k] = pred[k] * a.targetStd + a.targetMean + (a.offsets ? a.offsets[ids[k]] : 0);
  }
  return out;
}

/** RMSE and MAE (target units) of the model on `ids`. */
export function evaluate(a: EvaluateArgs): { rmse: number; mae: number } {
  const pred = predictGraphs(a);
  const truth = new Float64Array(a.ids.length);
  for (let k = 0; k < a.ids.length; k++) truth[k] = a.arrays.target[a.ids[k]] * a.targetStd + a.targetMean + (a.offsets ? a.offsets[a.ids[k]] : 0);
  return regressionErrors(pred, truth);
}
