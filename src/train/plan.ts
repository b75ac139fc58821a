/**
 * Plans: the compile-equivalent. A plan owns every buffer of one batch
 * capacity for one model (the packed inputs here, activations and gradients
 * natively). Plans are cached by shape in an LRU with a byte limit; building
 * one is counted and timed as a "compilation", where XLA would recompile.
 */
import { nativeModel, type FloatArray, type PackOutput, type PackShape, type PlanHandle } from '../native';
import type { ModelConfig } from '../model/config';
import { ArgumentError, GnnError } from '../errors';

/** Element type of a plan's floating-point buffers. */
export type DType = 'float32' | 'float64';

/**
 * Whether a model reads the packed edge directions (`inputs.direction`, unit
 * vectors [3 x edges]): PaiNN does; MPEU and SchNet use distances only.
 */
export function needsDirections(config: Pick<ModelConfig, 'kind'>): boolean {
  return config.kind === 'painn';
}

/**
 * Allocates the packed-batch buffers of a shape; with `directions` also
 * `direction` ([3 x edges], the float type of the other float inputs), which
 * the packer then fills from the store (it must have directions).
 */
export function allocPackOutput(shape: PackShape, dtype: DType = 'float32', directions = false): PackOutput {
  const F = dtype === 'float64' ? Float64Array : Float32Array;
  const out: PackOutput = {
    atomicNumber: new Int32Array(shape.nodes),
    nodeGraph: new Int32Array(shape.nodes),
    senders: new Int32Array(shape.edges),
    receivers: new Int32Array(shape.edges),
    distance: new F(shape.edges) as FloatArray,
    nNode: new Int32Array(shape.graphs),
    nEdge: new Int32Array(shape.graphs),
    target: new F(shape.graphs) as FloatArray,
    mask: new F(shape.graphs) as FloatArray,
    recvPtr: new Int32Array(shape.nodes + 1),
    sendPerm: new Int32Array(shape.edges),
    sendPtr: new Int32Array(shape.nodes + 1),
  };
  if (directions) out.direction = new F(3 * shape.edges) as FloatArray;
  return out;
}

/** One plan: native handle + its packed input buffers. */
export interface Plan {
  /** The capacity this plan was built for. */
  capacity: PackShape;
  /** Native plan handle. */
  handle: PlanHandle;
  /** Packed-batch buffers the packer writes and the model reads. */
  inputs: PackOutput;
  /** Total bytes owned (native + input buffers). */
  bytes: number;
  /** Milliseconds it took to build. */
  buildMs: number;
}

/**
 * The plan's input buffers viewed at exactly `shape` (which may be smaller
 * than the capacity for plans reused by capacity). No copy.
 */
export function inputsFor(plan: Plan, shape: PackShape): PackOutput {
  const c = plan.capacity;
  if (shape.nodes === c.nodes && shape.edges === c.edges && shape.graphs === c.graphs) return plan.inputs;
  if (shape.nodes > c.nodes || shape.edges > c.edges || shape.graphs > c.graphs) {
    throw new ArgumentError(`shape ${JSON.stringify(shape)} exceeds plan capacity ${JSON.stringify(c)}`, 'ERR_GNN_SHAPE');
  }
  const i = plan.inputs;
  const N = shape.nodes;
  const E = shape.edges;
  const G = shape.graphs;
  const view: PackOutput = {
    atomicNumber: i.atomicNumber.subarray(0, N),
    nodeGraph: i.nodeGraph.subarray(0, N),
    senders: i.senders.subarray(0, E),
    receivers: i.receivers.subarray(0, E),
    distance: i.distance.subarray(0, E),
    nNode: i.nNode.subarray(0, G),
    nEdge: i.nEdge.subarray(0, G),
    target: i.target.subarray(0, G),
    mask: i.mask.subarray(0, G),
    recvPtr: i.recvPtr.subarray(0, N + 1),
    sendPerm: i.sendPerm.subarray(0, E),
    sendPtr: i.sendPtr.subarray(0, N + 1),
  };
  if (i.direction) view.direction = i.direction.subarray(0, 3 * E);
  return view;
}

/**
 * Builds one plan (counted by the cache, not here). With `directions` (by
 * default when the model needs them) its inputs include `direction`, so the
 * store it packs from must have directions (else ERR_GNN_DATA_DIRECTIONS).
 * `planOptions` are createPlan's: the force pass's buffers (`forces`) and the
 * double backward's (`forceTraining`); force plans need `directions`.
 */
export function buildPlan(
  config: ModelConfig,
  capacity: PackShape,
  dtype: DType = 'float32',
  directions = needsDirections(config),
  planOptions: { forces?: boolean; forceTraining?: boolean } = {},
): Plan {
  const t0 = process.hrtime.bigint();
  const handle = nativeModel().createPlan(config, capacity, dtype, planOptions);
  const inputs = allocPackOutput(capacity, dtype, directions);
  const inputBytes = Object.values(inputs).reduce((s, a) => s + (a as ArrayBufferView).byteLength, 0);
  const bytes = nativeModel().planInfo(handle).bytes + inputBytes;
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { capacity: { ...capacity }, handle, inputs, bytes, buildMs };
}

/**
 * Whether a policy's plans are reused by capacity (one plan that grows) rather
 * than cached by exact padded shape: true for the unpadded `exact` policy,
 * whose every batch has its own shape.
 */
export function plansByCapacity(policy: string): boolean {
  return policy === 'exact';
}

/**
 * The growth rule of a by-capacity plan: null when `current` holds `shape`,
 * else the capacity to rebuild at, 25% headroom over the larger of the old
 * capacity and the request in each dimension (grow, never shrink).
 */
export function grownCapacity(current: PackShape | null, shape: PackShape): PackShape | null {
  if (current && current.nodes >= shape.nodes && current.edges >= shape.edges && current.graphs >= shape.graphs) return null;
  const grow = (a: number, b: number): number => Math.ceil(Math.max(a, b) * 1.25);
  const c = current ?? { nodes: 0, edges: 0, graphs: 0 };
  return { nodes: grow(c.nodes, shape.nodes), edges: grow(c.edges, shape.edges), graphs: grow(c.graphs, shape.graphs) };
}

/**
 * The plans a {@link PlanCache} without a byte limit would build for a stream
 * of shapes, without building any (the recommendation's simulation): one per
 * distinct shape, or with `byCapacity` one per growth of the single plan.
 */
export class PlanBuildCounter {
  private readonly seen = new Set<string>();
  private capacity: PackShape | null = null;
  constructor(private readonly byCapacity: boolean) {}

  /** The shape of the plan this batch would build, or null when a held plan serves it. */
  add(shape: PackShape): PackShape | null {
    if (this.byCapacity) {
      const cap = grownCapacity(this.capacity, shape);
      if (cap) this.capacity = cap;
      return cap;
    }
    const key = `${shape.nodes}/${shape.edges}/${shape.graphs}`;
    if (this.seen.has(key)) return null;
    this.seen.add(key);
    return shape;
  }
}

/** Statistics of a plan cache ("compilations"). */
export interface PlanCacheStats {
  /** Plans built (the compile count). */
  builds: number;
  /** Total build time in ms. */
  buildMs: number;
  /** Plans evicted by the byte limit. */
  evictions: number;
  /** Bytes held now. */
  bytes: number;
  /** Plans held now. */
  size: number;
}

/** Bytes of a plan as a linear function of its capacity (see {@link planBytesModel}). */
export interface PlanBytesModel {
  base: number;
  perNode: number;
  perEdge: number;
  perGraph: number;
}

const bytesModels = new Map<string, PlanBytesModel>();

/**
 * The bytes a plan of `config` needs (native buffers plus the packed input
 * buffers) as base + perNode N + perEdge E + perGraph G, measured once per
 * configuration from four small probe plans (built, measured, released). An
 * upper bound in practice: every buffer is a fixed multiple of one dimension,
 * and the few sized by a maximum of them (PaiNN) are over-counted, not under.
 * `planOptions` are createPlan's (the force pass's buffers).
 */
export function planBytesModel(
  config: ModelConfig,
  dtype: DType = 'float32',
  directions = needsDirections(config),
  planOptions: { forces?: boolean; forceTraining?: boolean } = {},
): PlanBytesModel {
  const key = `${JSON.stringify(config)}/${dtype}/${directions}/${planOptions.forces === true}/${planOptions.forceTraining === true}`;
  const hit = bytesModels.get(key);
  if (hit) return hit;
  const api = nativeModel();
  const probe = (nodes: number, edges: number, graphs: number): number => {
    const h = api.createPlan(config, { nodes, edges, graphs }, dtype, planOptions);
    try {
      return api.planInfo(h).bytes;
    } finally {
      api.releasePlan(h);
    }
  };
  const k = 1024;
  const base = probe(0, 0, 0);
  const f = dtype === 'float64' ? 8 : 4;
  // Input buffers (allocPackOutput): per node atomicNumber, nodeGraph, recvPtr, sendPtr;
  // per edge senders, receivers, sendPerm, distance (+ direction); per graph nNode, nEdge, target, mask.
  const model: PlanBytesModel = {
    base: base + 8,
    perNode: (probe(k, 0, 0) - base) / k + 16,
    perEdge: (probe(0, k, 0) - base) / k + 12 + f * (directions ? 4 : 1),
    perGraph: (probe(0, 0, k) - base) / k + 8 + 2 * f,
  };
  bytesModels.set(key, model);
  return model;
}

/**
 * LRU cache of plans keyed by padded shape. With `byCapacity` (the `exact`
 * policy) a single plan is reused for any shape it can hold and rebuilt larger
 * (grow, never shrink) when a batch does not fit; each rebuild counts.
 *
 * `maxBytes` bounds the bytes held: the LRU evicts down to it (always keeping
 * the plan in use). With `hardLimit` it is also a bound on any one plan: a
 * capacity plan grows with 25% headroom only while that fits, else to the
 * exact shape, and a plan that alone needs more than `maxBytes` is a
 * GnnError ERR_GNN_PLAN_TOO_LARGE naming the shape and the bytes (refused from
 * {@link estimateBytes} before any buffer is allocated).
 *
 * With `releaseDropped`, a plan the cache drops (replaced, evicted, resized,
 * {@link close}) has its native buffers freed at once (`releasePlan`) instead
 * of at garbage collection: only for owners that never keep a plan past the
 * next `get` (the serving predictor, loadModel).
 */
export class PlanCache {
  private readonly plans = new Map<string, Plan>();
  private statsValue: PlanCacheStats = { builds: 0, buildMs: 0, evictions: 0, bytes: 0, size: 0 };

  constructor(
    private readonly config: ModelConfig,
    private readonly dtype: DType = 'float32',
    private readonly maxBytes = 4 * 1024 ** 3,
    private readonly byCapacity = false,
    private readonly hardLimit = false,
    /** Plans' inputs include `direction` (default: when the model needs them, {@link needsDirections}). */
    private readonly directions = needsDirections(config),
    /** Free dropped plans' native buffers at once (see the class comment). */
    private readonly releaseDropped = false,
  ) {}

  /** Estimated bytes of a plan of this capacity (native and input buffers), from {@link planBytesModel}; builds nothing. */
  estimateBytes(shape: PackShape): number {
    const m = planBytesModel(this.config, this.dtype, this.directions);
    return Math.ceil(m.base + m.perNode * shape.nodes + m.perEdge * shape.edges + m.perGraph * shape.graphs);
  }

  /** The byte limit (with `hardLimit`, of any one plan). */
  get limitBytes(): number {
    return this.maxBytes;
  }

  /** The single plan of a by-capacity cache, or null when none is held. */
  current(): Plan | null {
    return this.plans.get('cap') ?? null;
  }

  /**
   * By-capacity caches: makes the single plan exactly `capacity` (the held
   * plan, if any other, is dropped first, so the two never coexist), within
   * the hard limit. A shrink is how an owner gives back an oversized plan.
   */
  resize(capacity: PackShape): Plan {
    const cur = this.plans.get('cap');
    if (cur && cur.capacity.nodes === capacity.nodes && cur.capacity.edges === capacity.edges && cur.capacity.graphs === capacity.graphs) return cur;
    this.releaseAll();
    const plan = this.build(capacity);
    this.plans.set('cap', plan);
    return plan;
  }

  /** Drops every plan (freeing their native buffers now with `releaseDropped`); the cache stays usable. */
  releaseAll(): void {
    for (const p of this.plans.values()) this.drop(p);
    this.plans.clear();
  }

  /** Drops every plan; the owner is done with the cache (same as {@link releaseAll}). */
  close(): void {
    this.releaseAll();
  }

  private drop(p: Plan): void {
    this.statsValue.bytes -= p.bytes;
    if (!this.releaseDropped) return;
    try {
      nativeModel().releasePlan(p.handle);
    } catch {
      // ERR_GNN_BUSY: an async call still runs on it; the GC frees it after (its bytes are reported to V8).
    }
  }

  /** The plan for a shape, building (and counting) it when missing. */
  get(shape: PackShape): Plan {
    if (this.byCapacity) return this.getByCapacity(shape);
    const key = `${shape.nodes}/${shape.edges}/${shape.graphs}`;
    const hit = this.plans.get(key);
    if (hit) {
      this.plans.delete(key);
      this.plans.set(key, hit);
      return hit;
    }
    const plan = this.build(shape);
    this.plans.set(key, plan);
    this.evict(key);
    return plan;
  }

  private getByCapacity(shape: PackShape): Plan {
    const cur = this.plans.get('cap');
    const cap = grownCapacity(cur?.capacity ?? null, shape);
    if (!cap) return cur as Plan; // null only when the current plan holds the shape
    if (cur) {
      this.plans.delete('cap');
      this.drop(cur);
    }
    // The headroom does not fit the limit: hold exactly this batch's shape.
    const exact = { nodes: Math.max(shape.nodes, 1), edges: shape.edges, graphs: Math.max(shape.graphs, 1) };
    const plan = this.build(this.hardLimit && this.estimateBytes(cap) > this.maxBytes ? exact : cap);
    this.plans.set('cap', plan);
    return plan;
  }

  private build(shape: PackShape): Plan {
    const tooLarge = (bytes: number): GnnError =>
      new GnnError(
        'ERR_GNN_PLAN_TOO_LARGE',
        `a plan for ${shape.nodes} nodes, ${shape.edges} edges, ${shape.graphs} graphs needs ${bytes} bytes, more than planCacheBytes = ${this.maxBytes}; ` +
          'raise planCacheBytes or use smaller batches',
      );
    // Refused before any buffer is allocated (value-initialising them would touch the memory).
    if (this.hardLimit) {
      const estimate = this.estimateBytes(shape);
      if (estimate > this.maxBytes) {
        this.statsValue.builds++;
        throw tooLarge(estimate);
      }
    }
    const plan = buildPlan(this.config, shape, this.dtype, this.directions);
    if (this.hardLimit && plan.bytes > this.maxBytes) {
      this.statsValue.builds++;
      if (this.releaseDropped) nativeModel().releasePlan(plan.handle);
      throw tooLarge(plan.bytes);
    }
    this.statsValue.builds++;
    this.statsValue.buildMs += plan.buildMs;
    this.statsValue.bytes += plan.bytes;
    return plan;
  }

  private evict(keep: string): void {
    for (const [k, p] of this.plans) {
      if (this.statsValue.bytes <= this.maxBytes) break;
      if (k === keep) continue;
      this.plans.delete(k);
      this.drop(p);
      this.statsValue.evictions++;
    }
  }

  /** Build/eviction counters. */
  stats(): PlanCacheStats {
    return { ...this.statsValue, size: this.plans.size };
  }
}
