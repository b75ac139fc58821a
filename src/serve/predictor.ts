/**
 * A predictor for services: concurrent `predict` calls are queued and merged
 * into one native forward pass per batch (the dynamic-batcher model of Triton
 * Inference Server), with the graph construction and the forward pass on
 * native worker threads so the event loop stays free.
 *
 * How a batch forms: a call's structures are turned into graphs on a worker
 * (`buildNeighboursAsync`) and queued. Whenever the executor is idle it takes
 * graphs from the head of the queue, in arrival order, until the next graph
 * would overflow the batch budget (graphs, nodes, edges). If the queue holds
 * less than a full batch while other calls are still being turned into graphs,
 * it waits for them up to `maxQueueDelayMs`; a lone caller never waits. A call
 * larger than the budget is split across batches; a single graph larger than
 * the budget runs alone (and grows the plan once, counted in `stats()`). The
 * queue and these rules live in ./micro-batcher.ts (tested without the
 * addon); this file adds the request budget, the plans and the native passes.
 * The checkpoint is opened by ../inference/open-model.ts, as for loadModel.
 *
 * Every batch runs unpadded through one plan allocated at the budget at
 * creation (reused by capacity), so a changing request mix never rebuilds
 * plans. A graph's prediction does not depend on its batch companions: the
 * kernels compute each row of a graph in the same order wherever it sits in
 * the batch, so results equal (bitwise) predicting each call alone.
 *
 * Forces and stress (`predict(structures, { properties })`, docs/forces.md):
 * calls that ask for forces or stress are built with edge directions and
 * merged into force batches, each one native force pass (`forcesStep`) on a
 * force plan (created with `{ forces: true }`) held besides the energy plan
 * from the first such call on. A batch holds calls of one kind: the oldest
 * queued call decides which, and calls of the other kind wait for the next
 * batch. The force pass runs on the calling thread (there is no asynchronous
 * binding of it yet). Its results equal `loadModel().predict([s], {
 * properties })` of each structure alone, bit for bit.
 */
import { checkEdgeCeilings, edgeBound, packerArrays, type GraphStore, type Structure } from '../data';
import { parseShapeKey } from '../batching/shapes';
import { GnnError } from '../errors';
import { native, nativeModel, setThreads, type NativeStoreArrays, type PackShape } from '../native';
import type { ModelConfig } from '../model/config';
import { PlanCache, inputsFor } from '../train/plan';
import { openModel } from '../inference/open-model';
import { MicroBatcher, type Batch, type BatchBudget, type BatchPart, type QueueItem } from './micro-batcher';
import { buildForcePlan, estimateForcePlanBytes, periodicVolume, propertyList, type PredictedProperties, type PropertyName } from '../inference/force-evaluator';
import { computeForces } from '../model/forces';
import type { Plan } from '../train/plan';

export type { PredictedProperties, PropertyName } from '../inference/force-evaluator';

export type { BatchBudget } from './micro-batcher';

/** Options of {@link createPredictor}. */
export interface PredictorOptions {
  /**
   * How long (ms) a batch that is not full waits for calls whose graphs are
   * still being built (default 2). A call that arrives alone never waits.
   */
  maxQueueDelayMs?: number;
  /** Most graphs per batch (default: the budget of the checkpoint's training batches). */
  maxBatchGraphs?: number;
  /** Most nodes per batch (default: the training budget's, scaled up when maxBatchGraphs exceeds its graphs). */
  maxBatchNodes?: number;
  /** Most edges per batch (default: as maxBatchNodes). */
  maxBatchEdges?: number;
  /** Most calls waiting (queued or having their graphs built); beyond it `predict` rejects with ERR_GNN_QUEUE_FULL (default 1024). */
  maxQueue?: number;
  /**
   * Most edges of all calls accepted and not yet answered (queued, being
   * built or running): admission control by work, not by calls. A call that
   * would take the total beyond it rejects with ERR_GNN_QUEUE_FULL (default
   * 16,000,000; at least maxRequestEdges, so a lone call within the request
   * budget is always accepted). Under `cutoff` rules a call's edges count as
   * its graphs are built.
   */
  maxQueuedEdges?: number;
  /**
   * Most edges of one call (all its structures under the graph rule); beyond
   * it the call rejects with ERR_GNN_REQUEST_TOO_LARGE naming the first
   * structure past it (default 4,000,000). Checked from atom counts before any
   * graph is built under `fc` and `knn`; under `cutoff` after each chunk of
   * structures is built, stopping there.
   */
  maxRequestEdges?: number;
  /**
   * Most bytes of one call's graph store (estimated as 40 per atom + 16 per
   * edge, 28 with PaiNN's directions, + 128 per structure); beyond it
   * ERR_GNN_REQUEST_TOO_LARGE (default 128 MiB).
   */
  maxRequestBytes?: number;
  /** Native threads (process-wide setting; default: leave as is). */
  threads?: number;
  /**
   * Hard byte limit of the serving plan (native and input buffers of the one
   * plan held at a time; the force plan, held besides it once a call asks for
   * forces or stress, has the same limit of its own): the batch budget's plan must fit it
   * (ERR_GNN_PLAN_TOO_LARGE at creation otherwise), and a structure too large
   * for the budget runs alone on a plan of its own size only if that fits,
   * else the call is refused with ERR_GNN_REQUEST_TOO_LARGE naming the
   * structure before its graph is built. The oversized plan is released right
   * after its batch (the budget's plan is rebuilt for the next one), so memory
   * returns to the budget's. Default: the budget plan's bytes + 256 MiB.
   */
  planCacheBytes?: number;
  /** Run one forward pass at creation so the first call does not pay the plan build (default true). */
  warmup?: boolean;
  /** Most edges one structure may have under the graph rule (the data layer's maxEdgesPerGraph ceiling, ERR_GNN_EDGE_LIMIT; default 2,000,000). */
  maxEdgesPerStructure?: number;
  /** Called after every native batch (for metrics). */
  onBatch?: (batch: BatchRecord) => void;
}

/** What one native batch held and cost. */
export interface BatchRecord {
  /** Calls that contributed graphs. */
  requests: number;
  graphs: number;
  nodes: number;
  edges: number;
  /** Wall time of the forward pass on the worker, ms. */
  forwardMs: number;
  /** Time the oldest graph of the batch waited in the queue, ms. */
  queueMs: number;
  /** A force batch (the native force pass, for calls asking for forces or stress) rather than an energy forward pass. */
  forces: boolean;
}

/** Counters of a predictor since creation. */
export interface PredictorStats {
  /** Calls accepted. */
  requests: number;
  /** Calls rejected because the queue was full. */
  rejected: number;
  /** Calls aborted (before they ran, or between their batches). */
  aborted: number;
  /** Calls refused by the request budget (ERR_GNN_REQUEST_TOO_LARGE). */
  tooLarge: number;
  /** Calls whose batch failed (plan, packing, forward pass): each rejected with the batch's error. */
  failed: number;
  /** Native forward passes. */
  batches: number;
  /** Structures predicted. */
  graphs: number;
  /** Calls queued or being prepared now. */
  queueDepth: number;
  /** Edges of the calls accepted and not yet answered (against maxQueuedEdges). */
  queuedEdges: number;
  /** Plans built (1 after warm-up; 2 more for each batch with a graph larger than the budget: its own plan, then the budget's again; force plans included). */
  planBuilds: number;
  /** Bytes of the plans held now: the energy plan and, once a call asked for forces or stress, the force plan (0 after close). */
  planBytes: number;
  /** Total forward time, ms. */
  forwardMs: number;
  /** Force batches (native force passes), included in `batches`. */
  forceBatches: number;
  /** Structures predicted with forces or stress, included in `graphs`. */
  forceGraphs: number;
}

/** Options of one {@link Predictor.predict} call. */
export interface PredictCallOptions {
  /**
   * Aborts the call (rejects with ERR_GNN_ABORTED) while its graphs are built,
   * while it waits, or between its batches: its remaining batches do not run
   * (a batch already in the native forward pass finishes, its results for this
   * call are dropped).
   */
  signal?: AbortSignal;
}

/** Options of a {@link Predictor.predict} call that names the properties to return. */
export interface PredictPropertiesOptions extends PredictCallOptions {
  /**
   * What to return: 'energy' (always returned), 'forces', 'stress'; unique
   * names, at least one. With forces or stress the call runs in force batches
   * (MPEU, SchNet and PaiNN).
   */
  properties: readonly PropertyName[];
}

/** A model served for concurrent callers. */
export interface Predictor {
  /** Name of the predicted target (the checkpoint's). */
  readonly target: string;
  /** Model configuration. */
  readonly config: ModelConfig;
  /** Graph rule new structures are built with. */
  readonly graphRule: string;
  /** Training step of the checkpoint. */
  readonly step: number;
  /**
   * The atomic numbers the model was trained on (ascending), or null for
   * checkpoints written before they were kept. A structure with another element
   * is outside the training domain: its prediction is an extrapolation.
   */
  readonly elements: readonly number[] | null;
  /** The batch budget in use. */
  readonly budget: Readonly<BatchBudget>;
  /**
   * Predictions in the target's units, one per structure, in order. Resolves
   * when every structure of the call has been through a batch.
   * Every accepted call settles: a batch that fails (plan allocation such as
   * ERR_GNN_NOMEM, packing, forward pass) rejects the calls it held with its error.
   * Errors: ERR_GNN_STRUCTURE (bad input, names the structure), ERR_GNN_EDGE_LIMIT,
   * ERR_GNN_REQUEST_TOO_LARGE, ERR_GNN_QUEUE_FULL, ERR_GNN_ABORTED, ERR_GNN_CLOSED,
   * and a failed batch's error.
   */
  predict(structures: readonly Structure[], options?: PredictCallOptions): Promise<Float64Array>;
  /**
   * Energies with forces and/or stress, in the model's units: forces per
   * structure [atoms x 3] (xyz per atom, F = -dE/dx, target units per Å),
   * stress per structure [6] (Voigt xx yy zz yz xz xy, target units per Å^3;
   * null for structures not periodic in 3 dimensions). Equal, bit for bit, to
   * `loadModel(dir).predict([s], { properties })` of each structure alone.
   * Errors: those of the call above, ERR_GNN_ARGUMENT for a bad `properties`
   * list.
   */
  predict(structures: readonly Structure[], options: PredictPropertiesOptions): Promise<PredictedProperties>;
  /** Counters since creation. */
  stats(): PredictorStats;
  /** Stops taking calls, finishes every accepted one, then frees the plan's native memory (at once, not at garbage collection). */
  close(): Promise<void>;
}

/** One accepted call. */
interface Call {
  /** Energies (predictions), in order. */
  out: Float64Array;
  /** Runs in force batches (asks for forces or stress). */
  force: boolean;
  /** The properties asked for (null: a plain call answered with the energies array). */
  properties: PropertyName[] | null;
  /** Forces per structure, when asked for. */
  forces?: Float64Array[];
  /** Stress per structure, when asked for. */
  stress?: (Float64Array | null)[];
  /** Graphs not yet predicted. */
  remaining: number;
  /** Edges counted against maxQueuedEdges until the call settles. */
  edges: number;
  settled: boolean;
  resolve: (v: Float64Array | PredictedProperties) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A queued part of a call: the graphs of one built store (a call has one, or one per chunk under cutoff rules). */
interface Item extends QueueItem<Call, GraphStore> {
  offsets: Float64Array | null;
  /** Cell volumes of the store's graphs (null: not 3-D periodic), for force calls asking for stress. */
  volumes: (number | null)[] | null;
  /** Index in the call's results of the store's first graph. */
  base: number;
}

type Part = BatchPart<Item>;

/**
 * The budget of the checkpoint's training batches: its policy's largest padded
 * shape (the dynamic/packed budget; static-2pow's largest), less the padding graph.
 */
function trainingBudget(policyState: unknown, batchSize: number): BatchBudget {
  const shapes = (policyState as { stats?: { shapes?: unknown } } | null)?.stats?.shapes;
  let best: BatchBudget | null = null;
  if (Array.isArray(shapes)) {
    for (const k of shapes) {
      const s = typeof k === 'string' ? parseShapeKey(k) : null;
      if (s && (!best || s.edges > best.edges)) best = s;
    }
  }
  if (best) return { graphs: Math.max(1, best.graphs - 1), nodes: Math.max(1, best.nodes - 1), edges: best.edges };
  // No recorded shape: room for batchSize QM9-sized fully connected molecules.
  return { graphs: batchSize, nodes: 32 * batchSize, edges: 32 * 31 * batchSize };
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1) throw new GnnError('ERR_GNN_ARGUMENT', `${name} must be a positive integer, got ${v}`);
  return v;
}

/** Estimated bytes of a request's graph store (see {@link PredictorOptions.maxRequestBytes}). */
function requestStoreBytes(nodes: number, edges: number, graphs: number, directions: boolean): number {
  return 40 * nodes + (directions ? 28 : 16) * edges + 128 * graphs;
}

/** Under `cutoff` rules a call's graphs are built in chunks of about this many atoms, each checked before the next. */
const CHUNK_ATOMS = 4096;

const MiB = 1024 * 1024;

/**
 * Loads a checkpoint directory for serving. Resolves after the warm-up forward
 * pass (unless `warmup: false`).
 */
export async function createPredictor(checkpointDir: string, options: PredictorOptions = {}): Promise<Predictor> {
  const model = openModel(checkpointDir);
  const ck = model.checkpoint;
  const trained = trainingBudget(ck.policyState, ck.batchSize);
  const maxGraphs = positiveInt('maxBatchGraphs', options.maxBatchGraphs, trained.graphs);
  // Batches run unpadded inside the plan, so a node/edge budget above what the
  // graph count needs costs memory only, never time: a smaller graph count keeps
  // the training budget's nodes/edges (a request of that many graphs is never
  // split), a larger one scales them up.
  const scale = Math.max(1, maxGraphs / trained.graphs);
  const budget: BatchBudget = {
    graphs: maxGraphs,
    nodes: positiveInt('maxBatchNodes', options.maxBatchNodes, Math.max(1, Math.ceil(trained.nodes * scale))),
    edges: positiveInt('maxBatchEdges', options.maxBatchEdges, Math.max(1, Math.ceil(trained.edges * scale))),
  };
  const maxQueue = positiveInt('maxQueue', options.maxQueue, 1024);
  const maxEdges = positiveInt('maxEdgesPerStructure', options.maxEdgesPerStructure, 2_000_000);
  const maxRequestEdges = positiveInt('maxRequestEdges', options.maxRequestEdges, 4_000_000);
  const maxRequestBytes = positiveInt('maxRequestBytes', options.maxRequestBytes, 128 * MiB);
  const maxQueuedEdges = positiveInt('maxQueuedEdges', options.maxQueuedEdges, Math.max(16_000_000, maxRequestEdges));
  if (maxQueuedEdges < maxRequestEdges) {
    throw new GnnError('ERR_GNN_ARGUMENT', `maxQueuedEdges (${maxQueuedEdges}) must be at least maxRequestEdges (${maxRequestEdges}), else a lone call within the request budget could never run`);
  }
  const delay = options.maxQueueDelayMs ?? 2;
  if (!(delay >= 0 && Number.isFinite(delay))) throw new GnnError('ERR_GNN_ARGUMENT', `maxQueueDelayMs must be a finite number >= 0, got ${delay}`);
  if (options.threads !== undefined) setThreads(options.threads);
  // PaiNN reads edge directions: request stores are built with them and the plans pack them.
  const directions = model.directions;
  const budgetShape: PackShape = { graphs: budget.graphs, nodes: budget.nodes, edges: budget.edges };
  const probe = new PlanCache(model.config, 'float32', Infinity, true, true, directions);
  const budgetBytes = probe.estimateBytes(budgetShape);
  const planLimit = positiveInt('planCacheBytes', options.planCacheBytes, budgetBytes + 256 * MiB);
  if (budgetBytes > planLimit) {
    throw new GnnError(
      'ERR_GNN_PLAN_TOO_LARGE',
      `the batch budget's plan (${budget.graphs} graphs, ${budget.nodes} nodes, ${budget.edges} edges) needs ${budgetBytes} bytes, more than planCacheBytes = ${planLimit}; ` +
        'raise planCacheBytes or lower maxBatchGraphs/maxBatchNodes/maxBatchEdges',
    );
  }
  // One plan at a time, hard-limited, freed at once when dropped.
  const cache = new PlanCache(model.config, 'float32', planLimit, true, true, directions, true);
  // Force batches: their own plan, built at the first force batch, within the same limit.
  // Its budget is the energy budget, scaled down (all three dimensions alike) when that plan would not fit.
  const forceBudget: BatchBudget = { ...budget };
  {
    const full = estimateForcePlanBytes(model.config, budget);
    if (full > planLimit) {
      const base = estimateForcePlanBytes(model.config, { nodes: 0, edges: 0, graphs: 0 });
      const f = Math.max(0, (planLimit - base) / (full - base));
      forceBudget.graphs = Math.max(1, Math.floor(budget.graphs * f));
      forceBudget.nodes = Math.max(1, Math.floor(budget.nodes * f));
      forceBudget.edges = Math.max(1, Math.floor(budget.edges * f));
    }
  }
  let forcePlan: Plan | null = null;
  let forcePlanBuilds = 0;
  const releaseForcePlan = (): void => {
    if (forcePlan) nativeModel().releasePlan(forcePlan.handle);
    forcePlan = null;
  };
  /** The force plan for a batch of `shape`: the force budget's, or one of exactly `shape` for an oversize structure (within planLimit). */
  const forcePlanFor = (shape: PackShape, oversize: boolean): Plan => {
    if (forcePlan && fitsIn(forcePlan.capacity, shape)) return forcePlan;
    const want = oversize ? shape : forceBudget;
    releaseForcePlan();
    const estimate = estimateForcePlanBytes(model.config, want);
    forcePlanBuilds++;
    if (estimate > planLimit) {
      throw new GnnError('ERR_GNN_PLAN_TOO_LARGE', `a force plan for ${want.nodes} nodes, ${want.edges} edges, ${want.graphs} graphs needs ${estimate} bytes, more than planCacheBytes = ${planLimit}`);
    }
    forcePlan = buildForcePlan(model.config, want);
    return forcePlan;
  };
  const params = model.params;
  const api = nativeModel();
  const pred = new Float32Array(budget.graphs);

  let closing = false;
  let closed = false;
  let queuedEdges = 0;
  const stats: Omit<PredictorStats, 'queueDepth' | 'queuedEdges' | 'planBuilds' | 'planBytes'> = {
    requests: 0,
    rejected: 0,
    aborted: 0,
    tooLarge: 0,
    failed: 0,
    batches: 0,
    graphs: 0,
    forwardMs: 0,
    forceBatches: 0,
    forceGraphs: 0,
  };

  const settle = (c: Call, err: unknown, value?: Float64Array | PredictedProperties): void => {
    if (c.settled) return;
    c.settled = true;
    queuedEdges -= c.edges;
    c.edges = 0;
    if (c.signal && c.onAbort) c.signal.removeEventListener('abort', c.onAbort);
    // Its remaining graphs leave the queue (they will not run).
    batcher.remove(c);
    if (err !== undefined) c.reject(err);
    else c.resolve(value as Float64Array | PredictedProperties);
  };
  /** A finished call's answer: the energies, or the properties asked for. */
  const answer = (c: Call): Float64Array | PredictedProperties => {
    if (!c.properties) return c.out;
    const r: PredictedProperties = { energy: c.out };
    if (c.forces) r.forces = c.forces;
    if (c.stress) r.stress = c.stress;
    return r;
  };

  const tooLarge = (message: string): GnnError => {
    stats.tooLarge++;
    return new GnnError('ERR_GNN_REQUEST_TOO_LARGE', message);
  };

  const ruleName = model.graphRule;
  /** Refuses structure `s` of `n` atoms and `e` edges when it needs a plan (a force plan for force calls) beyond planCacheBytes. */
  const checkStructurePlan = (s: number, id: string, n: number, e: number, force: boolean): void => {
    const b = force ? forceBudget : budget;
    if (n <= b.nodes && e <= b.edges) return; // runs on the budget's plan
    const shape = { nodes: n, edges: e, graphs: 1 };
    const bytes = force ? estimateForcePlanBytes(model.config, shape) : cache.estimateBytes(shape);
    if (bytes > planLimit) {
      throw tooLarge(
        `structure ${s} ('${id}'): ${n} atoms and ${e.toLocaleString('en-US')} edges under '${ruleName}' need a ${force ? 'force ' : ''}plan of ${(bytes / MiB).toFixed(0)} MiB, ` +
          `more than planCacheBytes = ${(planLimit / MiB).toFixed(0)} MiB (${planLimit} bytes); send it to a predictor with a larger planCacheBytes, or use a sparser graph rule`,
      );
    }
  };
  /** Refuses the request once structures 0..s hold more than its edge or byte budget. */
  const checkRequestTotals = (s: number, nodes: number, edges: number, force: boolean): void => {
    if (edges > maxRequestEdges) {
      throw tooLarge(
        `structure ${s}: structures 0..${s} of the request have ${edges.toLocaleString('en-US')} edges under '${ruleName}', more than maxRequestEdges = ${maxRequestEdges.toLocaleString('en-US')}; split the request`,
      );
    }
    const bytes = requestStoreBytes(nodes, edges, s + 1, directions || force);
    if (bytes > maxRequestBytes) {
      throw tooLarge(
        `structure ${s}: structures 0..${s} of the request need a graph store of about ${bytes.toLocaleString('en-US')} bytes ` +
          `(${nodes.toLocaleString('en-US')} atoms, ${edges.toLocaleString('en-US')} edges), more than maxRequestBytes = ${maxRequestBytes.toLocaleString('en-US')}; split the request`,
      );
    }
  };

  /** The batch's graphs as one contiguous store view (graph-local indices need no rebasing). */
  const batchArrays = (parts: Part[], shape: PackShape, directions: boolean): NativeStoreArrays => {
    const nodeOffset = new Int32Array(shape.graphs + 1);
    const edgeOffset = new Int32Array(shape.graphs + 1);
    const atomicNumber = new Uint8Array(shape.nodes);
    const senders = new Int32Array(shape.edges);
    const receivers = new Int32Array(shape.edges);
    const distance = new Float32Array(shape.edges);
    const senderPerm = new Int32Array(shape.edges);
    const direction = directions ? new Float32Array(3 * shape.edges) : undefined;
    let g = 0, n = 0, e = 0;
    for (const { item, from, to } of parts) {
      const s = item.store;
      const n0 = s.nodeOffset[from], n1 = s.nodeOffset[to];
      const e0 = s.edgeOffset[from], e1 = s.edgeOffset[to];
      atomicNumber.set(s.atomicNumber.subarray(n0, n1), n);
      senders.set(s.senders.subarray(e0, e1), e);
      receivers.set(s.receivers.subarray(e0, e1), e);
      distance.set(s.distance.subarray(e0, e1), e);
      senderPerm.set(s.senderPerm.subarray(e0, e1), e);
      if (direction && s.directions) direction.set(s.directions.subarray(3 * e0, 3 * e1), 3 * e);
      for (let k = from; k < to; k++) {
        nodeOffset[g + 1] = nodeOffset[g] + (s.nodeOffset[k + 1] - s.nodeOffset[k]);
        edgeOffset[g + 1] = edgeOffset[g] + (s.edgeOffset[k + 1] - s.edgeOffset[k]);
        g++;
      }
      n += n1 - n0;
      e += e1 - e0;
    }
    const arrays: NativeStoreArrays = { nodeOffset, edgeOffset, atomicNumber, senders, receivers, distance, senderPerm, target: new Float64Array(shape.graphs) };
    if (direction) arrays.direction = direction;
    return arrays;
  };

  const fitsIn = (c: PackShape, s: PackShape): boolean => s.nodes <= c.nodes && s.edges <= c.edges && s.graphs <= c.graphs;

  /** Runs one batch; any failure rejects exactly the calls it held (with the error) and is not rethrown. */
  const runBatch = async ({ parts, shape, force, queueMs }: Batch<Item>): Promise<void> => {
    if (force) return runForceBatch(parts, shape, queueMs);
    const oversize = !fitsIn(budgetShape, shape);
    const calls = new Set(parts.map((p) => p.item.call));
    try {
      const arrays = batchArrays(parts, shape, directions);
      // The budget's plan serves every batch within the budget; a larger graph
      // gets a plan of exactly its size (the budget's is freed first), freed after.
      const held = cache.current();
      const plan = held && fitsIn(held.capacity, shape) ? held : cache.resize(oversize ? shape : budgetShape);
      const inputs = inputsFor(plan, shape);
      const ids = Int32Array.from({ length: shape.graphs }, (_, i) => i);
      native().packGraphs(arrays, ids, shape, inputs);
      const out = shape.graphs <= pred.length ? pred : new Float32Array(shape.graphs);
      const t0 = performance.now();
      await api.predictAsync(plan.handle, inputs, shape, params, out);
      const forwardMs = performance.now() - t0;
      let k = 0;
      for (const { item, from, to } of parts) {
        const c = item.call;
        if (c.settled) {
          k += to - from; // aborted meanwhile: its results are dropped
          continue;
        }
        for (let g = from; g < to; g++, k++) {
          c.out[item.base + g] = model.toTarget(out[k], item.offsets ? item.offsets[g] : 0);
        }
        c.remaining -= to - from;
        if (c.remaining === 0) settle(c, undefined, answer(c));
      }
      stats.batches++;
      stats.graphs += shape.graphs;
      stats.forwardMs += forwardMs;
      options.onBatch?.({ requests: calls.size, graphs: shape.graphs, nodes: shape.nodes, edges: shape.edges, forwardMs, queueMs, forces: false });
    } catch (e) {
      for (const c of calls) {
        if (!c.settled) stats.failed++;
        settle(c, e);
      }
    } finally {
      // An oversized plan is not kept as the new high-water mark.
      if (oversize) cache.releaseAll();
    }
  };

  /** Runs one force batch (the native force pass on the force plan); failures reject exactly its calls. */
  const runForceBatch = async (parts: Part[], shape: PackShape, queueMs: number): Promise<void> => {
    const oversize = !fitsIn(forceBudget, shape);
    const calls = new Set(parts.map((p) => p.item.call));
    try {
      // The force pass runs on this thread: let pending I/O (and calls to abort) through first.
      await new Promise<void>((r) => setImmediate(r));
      const live = parts.filter((p) => !p.item.call.settled);
      if (live.length === 0) return;
      const arrays = batchArrays(parts, shape, true);
      const plan = forcePlanFor(shape, oversize);
      const inputs = inputsFor(plan, shape);
      const ids = Int32Array.from({ length: shape.graphs }, (_, i) => i);
      native().packGraphs(arrays, ids, shape, inputs);
      const offsets = model.atomRefs ? new Float64Array(shape.graphs) : undefined;
      const wantStress = parts.some((p) => p.item.call.stress !== undefined);
      const volumes = wantStress ? new Float64Array(shape.graphs).fill(1) : undefined;
      let k = 0;
      for (const { item, from, to } of parts) {
        for (let g = from; g < to; g++, k++) {
          if (offsets && item.offsets) offsets[k] = item.offsets[g];
          if (volumes && item.volumes) volumes[k] = item.volumes[g] ?? 1;
        }
      }
      const t0 = performance.now();
      const r = computeForces(plan.handle, inputs, shape, params, { targetMean: model.targetMean, targetStd: model.targetStd, offsets }, volumes);
      const forwardMs = performance.now() - t0;
      k = 0;
      let node = 0;
      for (const { item, from, to } of parts) {
        const c = item.call;
        const s = item.store;
        for (let g = from; g < to; g++, k++) {
          const atoms = s.nodeOffset[g + 1] - s.nodeOffset[g];
          if (!c.settled) {
            const at = item.base + g;
            c.out[at] = r.energy[k];
            if (c.forces) c.forces[at] = r.forces.slice(3 * node, 3 * (node + atoms));
            if (c.stress) c.stress[at] = item.volumes && item.volumes[g] !== null && r.stress ? r.stress.slice(6 * k, 6 * k + 6) : null;
          }
          node += atoms;
        }
        if (c.settled) continue; // aborted meanwhile: its results are dropped
        c.remaining -= to - from;
        if (c.remaining === 0) settle(c, undefined, answer(c));
      }
      stats.batches++;
      stats.forceBatches++;
      stats.graphs += shape.graphs;
      stats.forceGraphs += shape.graphs;
      stats.forwardMs += forwardMs;
      options.onBatch?.({ requests: calls.size, graphs: shape.graphs, nodes: shape.nodes, edges: shape.edges, forwardMs, queueMs, forces: true });
    } catch (e) {
      for (const c of calls) {
        if (!c.settled) stats.failed++;
        settle(c, e);
      }
    } finally {
      if (oversize) releaseForcePlan();
    }
  };

  const batcher: MicroBatcher<Call, Item> = new MicroBatcher<Call, Item>({ budget, forceBudget, delayMs: delay, run: runBatch });

  /** Builds a call's graphs (on native workers), checking the request budget as it goes; returns its queue items. */
  const prepare = async (c: Call, structures: readonly Structure[], knownEdges: boolean): Promise<Item[]> => {
    const build = (part: readonly Structure[]): Promise<GraphStore> =>
      model.requestStoreAsync(part, { maxEdgesPerGraph: maxEdges, maxTotalEdges: Number.MAX_SAFE_INTEGER, source: 'request', directions: c.force });
    const itemOf = (store: GraphStore, base: number): Item => ({
      call: c,
      store,
      offsets: model.offsets(store),
      volumes: c.stress ? structures.slice(base, base + store.numGraphs).map(periodicVolume) : null,
      base,
      next: 0,
      enqueuedAt: 0,
    });
    // Exact edge counts before building (fc, knn): checked in predict(); one store.
    if (knownEdges) return [itemOf(await build(structures), 0)];
    // Cutoff: edges are known only once built; chunks of ~CHUNK_ATOMS atoms, each checked before the next is built.
    const items: Item[] = [];
    let nodes = 0, edges = 0;
    for (let from = 0; from < structures.length; ) {
      let to = from, atoms = 0;
      while (to < structures.length && (to === from || atoms + structures[to].numbers.length <= CHUNK_ATOMS)) atoms += structures[to++].numbers.length;
      let store: GraphStore;
      try {
        store = await build(structures.slice(from, to));
      } catch (e) {
        // The data layer names structures by their index in the chunk: name them in the request.
        if (e instanceof Error && from > 0) e.message = `${e.message} (in structures ${from}..${to - 1} of the request: add ${from} to the index)`;
        throw e;
      }
      if (c.settled) return [];
      for (let g = 0; g < store.numGraphs; g++) {
        const s = from + g;
        const n = store.nodeOffset[g + 1] - store.nodeOffset[g];
        const e = store.edgeOffset[g + 1] - store.edgeOffset[g];
        checkStructurePlan(s, structures[s].id, n, e, c.force);
        nodes += n;
        edges += e;
        checkRequestTotals(s, nodes, edges, c.force);
      }
      // Admission by work: the call's edges count as they are built.
      const chunkEdges = store.edgeOffset[store.numGraphs];
      c.edges += chunkEdges;
      queuedEdges += chunkEdges;
      if (queuedEdges > maxQueuedEdges && queuedEdges > c.edges) {
        stats.rejected++;
        throw new GnnError('ERR_GNN_QUEUE_FULL', `the predictor's queue is full (${queuedEdges.toLocaleString('en-US')} edges queued, maxQueuedEdges = ${maxQueuedEdges.toLocaleString('en-US')}); retry later`);
      }
      items.push(itemOf(store, from));
      from = to;
    }
    return items;
  };

  const warmup = async (): Promise<void> => {
    // A two-atom molecule through the budget-sized plan: builds the plan, touches its memory, starts the threads.
    const s: Structure = { id: 'warmup', numbers: Uint8Array.from([1, 1]), positions: Float64Array.from([0, 0, 0, 0.74, 0, 0]), cell: null, pbc: [false, false, false], targets: {} };
    const plan = cache.resize(budgetShape);
    const store = await model.requestStoreAsync([s]);
    const shape = { graphs: 1, nodes: 2, edges: store.edgeOffset[1] };
    const inputs = inputsFor(plan, shape);
    native().packGraphs(packerArrays(store, new Float64Array(1)), Int32Array.of(0), shape, inputs);
    await api.predictAsync(plan.handle, inputs, shape, params, pred);
  };
  if (options.warmup !== false) {
    try {
      await warmup();
    } catch (e) {
      cache.close();
      throw e;
    }
  }

  const predictor: Predictor = {
    target: model.target,
    config: model.config,
    graphRule: model.graphRule,
    step: model.step,
    elements: model.elements,
    budget: Object.freeze({ ...budget }),
    predict: (async (structures: readonly Structure[], callOptions: PredictCallOptions & { properties?: readonly PropertyName[] } = {}): Promise<Float64Array | PredictedProperties> => {
      if (closing) throw new GnnError('ERR_GNN_CLOSED', 'the predictor is closed');
      // What to return: a plain call gets the energies; named properties get an object.
      let properties: PropertyName[] | null = null;
      if (callOptions.properties !== undefined) {
        try {
          properties = propertyList(callOptions.properties);
        } catch (e) {
          throw new GnnError('ERR_GNN_ARGUMENT', (e as Error).message);
        }
      }
      const force = properties !== null && (properties.includes('forces') || properties.includes('stress'));
      const empty = (): Float64Array | PredictedProperties => {
        if (!properties) return new Float64Array(0);
        const r: PredictedProperties = { energy: new Float64Array(0) };
        if (properties.includes('forces')) r.forces = [];
        if (properties.includes('stress')) r.stress = [];
        return r;
      };
      const signal = callOptions.signal;
      if (signal?.aborted) {
        stats.aborted++;
        throw new GnnError('ERR_GNN_ABORTED', 'the prediction was aborted before it started', { cause: signal.reason });
      }
      if (batcher.depth() >= maxQueue) {
        stats.rejected++;
        throw new GnnError('ERR_GNN_QUEUE_FULL', `the predictor's queue is full (${maxQueue} calls waiting); retry later`);
      }
      if (!Array.isArray(structures)) throw new GnnError('ERR_GNN_STRUCTURE', 'structures must be an array');
      if (structures.length === 0) return empty();
      model.checkStructures(structures);
      // The data layer's per-structure ceiling first (ERR_GNN_EDGE_LIMIT, as before), then the request budget,
      // from atom counts where the rule gives exact edge counts: nothing is built for a refused call.
      checkEdgeCeilings(structures, model.rule, { maxEdgesPerGraph: maxEdges, maxTotalEdges: Number.MAX_SAFE_INTEGER }, 'request');
      let knownEdges = true;
      let nodes = 0, edges = 0;
      for (let s = 0; s < structures.length; s++) {
        const n = structures[s].numbers.length;
        const e = edgeBound(n, model.rule);
        nodes += n;
        if (e === null) {
          knownEdges = false;
          checkRequestTotals(s, nodes, 0, force);
          continue;
        }
        checkStructurePlan(s, structures[s].id, n, e, force);
        edges += e;
        checkRequestTotals(s, nodes, edges, force);
      }
      if (queuedEdges + edges > maxQueuedEdges) {
        stats.rejected++;
        throw new GnnError(
          'ERR_GNN_QUEUE_FULL',
          `the predictor's queue is full (${queuedEdges.toLocaleString('en-US')} edges queued, this call has ${edges.toLocaleString('en-US')}, maxQueuedEdges = ${maxQueuedEdges.toLocaleString('en-US')}); retry later`,
        );
      }
      stats.requests++;
      batcher.preparingCall();
      queuedEdges += edges;
      let resolveCall!: (v: Float64Array | PredictedProperties) => void;
      let rejectCall!: (e: unknown) => void;
      const result = new Promise<Float64Array | PredictedProperties>((resolve, reject) => {
        resolveCall = resolve;
        rejectCall = reject;
      });
      const n = structures.length;
      const c: Call = { out: new Float64Array(n), force, properties, remaining: n, edges, settled: false, resolve: resolveCall, reject: rejectCall, signal };
      if (properties?.includes('forces')) c.forces = new Array<Float64Array>(n);
      if (properties?.includes('stress')) c.stress = new Array<Float64Array | null>(n).fill(null);
      if (signal) {
        c.onAbort = () => {
          if (c.settled) return;
          stats.aborted++;
          settle(c, new GnnError('ERR_GNN_ABORTED', 'the prediction was aborted; its remaining batches do not run', { cause: signal.reason }));
          batcher.pump();
        };
        signal.addEventListener('abort', c.onAbort, { once: true });
      }
      let items: Item[] = [];
      try {
        // Graph construction on native workers (the event loop stays free).
        items = await prepare(c, structures, knownEdges);
      } catch (e) {
        settle(c, e);
      }
      batcher.prepared(c.settled ? [] : items);
      return result;
    }) as Predictor['predict'],
    stats() {
      const cs = cache.stats();
      return { ...stats, queueDepth: batcher.depth(), queuedEdges, planBuilds: cs.builds + forcePlanBuilds, planBytes: cs.bytes + (forcePlan?.bytes ?? 0) };
    },
    async close() {
      closing = true;
      await batcher.drain();
      if (!closed) {
        closed = true;
        cache.close();
        releaseForcePlan();
      }
    },
  };
  return predictor;
}
