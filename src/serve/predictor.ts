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
 * the budget runs alone (and grows the plan once, counted in `stats()`).
 *
 * Every batch runs unpadded through one plan allocated at the budget at
 * creation (reused by capacity), so a changing request mix never rebuilds
 * plans. A graph's prediction does not depend on its batch companions: the
 * kernels compute each row of a graph in the same order wherever it sits in
 * the batch, so results equal (bitwise) predicting each call alone.
 */
import { buildStoreAsync, packerArrays, parseGraphRule, type GraphStore, type Structure } from '../data';
import { parseShapeKey } from '../batching/shapes';
import { GnnError } from '../errors';
import { native, nativeModel, setThreads, type NativeStoreArrays, type PackShape } from '../native';
import type { ModelConfig } from '../model/config';
import { readCheckpoint } from '../train/checkpoint';
import { PlanCache, inputsFor, needsDirections } from '../train/plan';
import { atomrefOffsets } from '../train/atomref';
import { checkModelClasses } from '../train/inference';

/** A batch budget: the most graphs, nodes and edges one native forward pass takes. */
export interface BatchBudget {
  graphs: number;
  nodes: number;
  edges: number;
}

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
  /** Native threads (process-wide setting; default: leave as is). */
  threads?: number;
  /** Byte limit of the plan cache (default 1 GiB). */
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
}

/** Counters of a predictor since creation. */
export interface PredictorStats {
  /** Calls accepted. */
  requests: number;
  /** Calls rejected because the queue was full. */
  rejected: number;
  /** Calls aborted before they ran. */
  aborted: number;
  /** Native forward passes. */
  batches: number;
  /** Structures predicted. */
  graphs: number;
  /** Calls queued or being prepared now. */
  queueDepth: number;
  /** Plans built (1 after warm-up, unless a graph larger than the budget arrived). */
  planBuilds: number;
  /** Total forward time, ms. */
  forwardMs: number;
}

/** Options of one {@link Predictor.predict} call. */
export interface PredictCallOptions {
  /** Aborts the call while it waits (rejects with ERR_GNN_ABORTED). */
  signal?: AbortSignal;
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
  /** The batch budget in use. */
  readonly budget: Readonly<BatchBudget>;
  /**
   * Predictions in the target's units, one per structure, in order. Resolves
   * when every structure of the call has been through a batch.
   * Errors: ERR_GNN_STRUCTURE (bad input, names the structure), ERR_GNN_QUEUE_FULL,
   * ERR_GNN_ABORTED, ERR_GNN_CLOSED.
   */
  predict(structures: readonly Structure[], options?: PredictCallOptions): Promise<Float64Array>;
  /** Counters since creation. */
  stats(): PredictorStats;
  /** Stops taking calls, finishes every accepted one, then releases the plans. */
  close(): Promise<void>;
}

interface Pending {
  store: GraphStore;
  offsets: Float64Array | null;
  out: Float64Array;
  /** Next graph of this call to schedule. */
  next: number;
  /** Graphs not yet predicted. */
  remaining: number;
  enqueuedAt: number;
  settled: boolean;
  resolve: (v: Float64Array) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

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

/**
 * Loads a checkpoint directory for serving. Resolves after the warm-up forward
 * pass (unless `warmup: false`).
 */
export async function createPredictor(checkpointDir: string, options: PredictorOptions = {}): Promise<Predictor> {
  const ck = readCheckpoint(checkpointDir);
  const rule = parseGraphRule(ck.graphRule);
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
  const delay = options.maxQueueDelayMs ?? 2;
  if (!(delay >= 0 && Number.isFinite(delay))) throw new GnnError('ERR_GNN_ARGUMENT', `maxQueueDelayMs must be a finite number >= 0, got ${delay}`);
  if (options.threads !== undefined) setThreads(options.threads);
  // PaiNN reads edge directions: request stores are built with them and the plans pack them.
  const directions = needsDirections(ck.config);
  const cache = new PlanCache(ck.config, 'float32', options.planCacheBytes ?? 1 << 30, true, false, directions);
  const refs = ck.atomRefs ? Float64Array.from(ck.atomRefs) : null;
  const params = ck.params;
  const numClasses = ck.config.numClasses;
  const api = nativeModel();
  const pred = new Float32Array(budget.graphs);

  const queue: Pending[] = [];
  let preparing = 0;
  let running = false;
  let closing = false;
  let timer: NodeJS.Timeout | null = null;
  let drained: (() => void) | null = null;
  const stats: Omit<PredictorStats, 'queueDepth'> = { requests: 0, rejected: 0, aborted: 0, batches: 0, graphs: 0, planBuilds: 0, forwardMs: 0 };

  const depth = (): number => queue.length + preparing;

  const settle = (p: Pending, err: unknown, value?: Float64Array): void => {
    if (p.settled) return;
    p.settled = true;
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    if (err !== undefined) p.reject(err);
    else p.resolve(value as Float64Array);
  };

  /** Takes graphs from the head of the queue up to the budget; a lone oversize graph goes alone. */
  const takeBatch = (): { parts: { p: Pending; from: number; to: number }[]; shape: PackShape } => {
    const parts: { p: Pending; from: number; to: number }[] = [];
    let graphs = 0, nodes = 0, edges = 0;
    for (let qi = 0; qi < queue.length; qi++) {
      const p = queue[qi];
      const s = p.store;
      const from = p.next;
      let g = from;
      while (g < s.numGraphs && graphs < budget.graphs) {
        const n = s.nodeOffset[g + 1] - s.nodeOffset[g];
        const e = s.edgeOffset[g + 1] - s.edgeOffset[g];
        const fits = nodes + n <= budget.nodes && edges + e <= budget.edges;
        if (!fits && graphs > 0) break;
        graphs++;
        nodes += n;
        edges += e;
        g++;
        if (!fits) break; // an oversize graph alone
      }
      if (g > from) parts.push({ p, from, to: g });
      if (g < s.numGraphs) break; // the batch is full
    }
    return { parts, shape: { nodes, edges, graphs } };
  };

  /** The batch's graphs as one contiguous store view (graph-local indices need no rebasing). */
  const batchArrays = (parts: { p: Pending; from: number; to: number }[], shape: PackShape): NativeStoreArrays => {
    const nodeOffset = new Int32Array(shape.graphs + 1);
    const edgeOffset = new Int32Array(shape.graphs + 1);
    const atomicNumber = new Uint8Array(shape.nodes);
    const senders = new Int32Array(shape.edges);
    const receivers = new Int32Array(shape.edges);
    const distance = new Float32Array(shape.edges);
    const senderPerm = new Int32Array(shape.edges);
    const direction = directions ? new Float32Array(3 * shape.edges) : undefined;
    let g = 0, n = 0, e = 0;
    for (const { p, from, to } of parts) {
      const s = p.store;
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

  const runBatch = async (): Promise<void> => {
    // Calls aborted while queued leave the queue first.
    for (let i = queue.length - 1; i >= 0; i--) if (queue[i].settled) queue.splice(i, 1);
    if (queue.length === 0) return;
    const { parts, shape } = takeBatch();
    const queueMs = performance.now() - parts[0].p.enqueuedAt;
    for (const part of parts) part.p.next = part.to;
    while (queue.length > 0 && queue[0].next >= queue[0].store.numGraphs) queue.shift();
    const arrays = batchArrays(parts, shape);
    const buildsBefore = cache.stats().builds;
    const plan = cache.get(shape);
    stats.planBuilds += cache.stats().builds - buildsBefore;
    const inputs = inputsFor(plan, shape);
    const ids = Int32Array.from({ length: shape.graphs }, (_, i) => i);
    native().packGraphs(arrays, ids, shape, inputs);
    const out = shape.graphs <= pred.length ? pred : new Float32Array(shape.graphs);
    const t0 = performance.now();
    try {
      await api.predictAsync(plan.handle, inputs, shape, params, out);
    } catch (e) {
      for (const { p } of parts) settle(p, e);
      return;
    }
    const forwardMs = performance.now() - t0;
    let k = 0;
    for (const { p, from, to } of parts) {
      for (let g = from; g < to; g++, k++) {
        p.out[g] = out[k] * ck.targetStd + ck.targetMean + (p.offsets ? p.offsets[g] : 0);
      }
      p.remaining -= to - from;
      if (p.remaining === 0) settle(p, undefined, p.out);
    }
    stats.batches++;
    stats.graphs += shape.graphs;
    stats.forwardMs += forwardMs;
    options.onBatch?.({ requests: parts.length, graphs: shape.graphs, nodes: shape.nodes, edges: shape.edges, forwardMs, queueMs });
  };

  const queuedGraphs = (): number => queue.reduce((s, p) => s + (p.settled ? 0 : p.store.numGraphs - p.next), 0);

  /** Starts a batch when the executor is idle and the queue is ready (full, nobody else coming, or waited enough). */
  const pump = (): void => {
    if (running || queue.length === 0) {
      if (!running && queue.length === 0 && preparing === 0 && drained) drained();
      return;
    }
    const waited = performance.now() - queue[0].enqueuedAt;
    if (preparing > 0 && queuedGraphs() < budget.graphs && waited < delay && !closing) {
      if (!timer) {
        timer = setTimeout(() => {
          timer = null;
          pump();
        }, Math.max(0, delay - waited));
      }
      return;
    }
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    running = true;
    runBatch()
      .catch((e: unknown) => {
        // A failure outside the forward pass (packing): fail the affected calls, keep serving.
        for (const p of queue) if (p.next > 0) settle(p, e);
      })
      .finally(() => {
        running = false;
        pump();
      });
  };

  const warmup = async (): Promise<void> => {
    // A two-atom molecule through the budget-sized plan: builds the plan, touches its memory, starts the threads.
    const s: Structure = { id: 'warmup', numbers: Uint8Array.from([1, 1]), positions: Float64Array.from([0, 0, 0, 0.74, 0, 0]), cell: null, pbc: [false, false, false], targets: {} };
    cache.get({ graphs: budget.graphs, nodes: budget.nodes, edges: budget.edges });
    stats.planBuilds = cache.stats().builds;
    const { store } = await buildStoreAsync([s], { graph: rule, targetNames: [], directions });
    const shape = { graphs: 1, nodes: 2, edges: store.edgeOffset[1] };
    const plan = cache.get(shape);
    const inputs = inputsFor(plan, shape);
    native().packGraphs(packerArrays(store, new Float64Array(1)), Int32Array.of(0), shape, inputs);
    await api.predictAsync(plan.handle, inputs, shape, params, pred);
  };
  if (options.warmup !== false) await warmup();

  const predictor: Predictor = {
    target: ck.target,
    config: ck.config,
    graphRule: ck.graphRule,
    step: ck.step,
    budget: Object.freeze({ ...budget }),
    async predict(structures, callOptions = {}) {
      if (closing) throw new GnnError('ERR_GNN_CLOSED', 'the predictor is closed');
      const signal = callOptions.signal;
      if (signal?.aborted) {
        stats.aborted++;
        throw new GnnError('ERR_GNN_ABORTED', 'the prediction was aborted before it started', { cause: signal.reason });
      }
      if (depth() >= maxQueue) {
        stats.rejected++;
        throw new GnnError('ERR_GNN_QUEUE_FULL', `the predictor's queue is full (${maxQueue} calls waiting); retry later`);
      }
      if (!Array.isArray(structures)) throw new GnnError('ERR_GNN_STRUCTURE', 'structures must be an array');
      if (structures.length === 0) return new Float64Array(0);
      checkModelClasses(structures, numClasses);
      stats.requests++;
      preparing++;
      let store: GraphStore;
      try {
        // Graph construction on a native worker (the event loop stays free).
        // The data layer's edge ceilings apply (from atom counts before building where the rule allows): ERR_GNN_EDGE_LIMIT.
        store = (await buildStoreAsync(structures, { graph: rule, targetNames: [], maxEdgesPerGraph: maxEdges, source: 'request', directions })).store;
      } catch (e) {
        preparing--;
        pump();
        throw e;
      }
      preparing--;
      return new Promise<Float64Array>((resolve, reject) => {
        const p: Pending = {
          store,
          offsets: refs ? atomrefOffsets(store, refs) : null,
          out: new Float64Array(store.numGraphs),
          next: 0,
          remaining: store.numGraphs,
          enqueuedAt: performance.now(),
          settled: false,
          resolve,
          reject,
          signal,
        };
        if (signal) {
          if (signal.aborted) {
            stats.aborted++;
            reject(new GnnError('ERR_GNN_ABORTED', 'the prediction was aborted before it ran', { cause: signal.reason }));
            pump();
            return;
          }
          p.onAbort = () => {
            // Only a call none of whose graphs has been scheduled can leave cleanly.
            if (p.next === 0 && !p.settled) {
              stats.aborted++;
              settle(p, new GnnError('ERR_GNN_ABORTED', 'the prediction was aborted before it ran', { cause: signal.reason }));
              const i = queue.indexOf(p);
              if (i >= 0) queue.splice(i, 1);
            }
          };
          signal.addEventListener('abort', p.onAbort, { once: true });
        }
        queue.push(p);
        pump();
      });
    },
    stats() {
      return { ...stats, queueDepth: depth() };
    },
    async close() {
      closing = true;
      if (queue.length > 0 || preparing > 0 || running) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          pump();
        });
      }
      if (timer) clearTimeout(timer);
    },
  };
  return predictor;
}
