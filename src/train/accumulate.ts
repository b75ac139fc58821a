/**
 * Gradient accumulation, in one process or across MPI ranks (docs/scale-out.md).
 *
 * One global step is `microBatches` (N) consecutive batches of the policy:
 * micro-batch k is the policy's k-th draw of that step, so the policy keeps
 * its shapes (the packed policy gives N equal shapes) and the global batch is
 * the same whatever the number of ranks. The gradient of each micro-batch
 * comes from the native `lossAndGrad` (no Adam), is scaled by its share of the
 * global batch's real graphs (the loss is a mean over real graphs), and the N
 * gradients are summed in a fixed order, (((g0 + g1) + g2) + ...), in float32.
 * Then one native Adam step (global-norm clipping after the sum).
 *
 * With W ranks (N a multiple of W), rank r computes the contiguous
 * micro-batches r·N/W ... (r+1)·N/W - 1 and the MPI module sums all N slots
 * in the same order (allgather or reduce-scatter by hand, never MPI's own
 * reduction order), so W ranks are bitwise equal to one process
 * accumulating the same N micro-batches.
 */
import { native, nativeModel, type AdamStepArgs, type NativeStoreArrays } from '../native';
import type { BatchSpec, Policy } from '../batching';
import { inputsFor, type PlanCache } from './plan';
import { ArgumentError, GnnError } from '../errors';
import type { Engine, StepTiming } from './engine';

/** A global batch: the micro-batches of one step (their graphs concatenated in `graphIds`). */
export interface GlobalBatch extends BatchSpec {
  /** The policy's draws of this step, in order. */
  micro: BatchSpec[];
}

/** Draws one global batch: `microBatches` consecutive batches of `policy`. */
export function nextGlobalBatch(policy: Policy, microBatches: number): GlobalBatch {
  const micro: BatchSpec[] = [];
  for (let k = 0; k < microBatches; k++) micro.push(policy.next());
  let total = 0;
  for (const b of micro) total += b.graphIds.length;
  const graphIds = new Int32Array(total);
  let off = 0;
  for (const b of micro) {
    graphIds.set(b.graphIds, off);
    off += b.graphIds.length;
  }
  const shape = { nodes: 0, edges: 0, graphs: 0 };
  for (const b of micro) {
    shape.nodes += b.shape.nodes;
    shape.edges += b.shape.edges;
    shape.graphs += b.shape.graphs;
  }
  return { graphIds, shape, micro };
}

/**
 * Sums the slots of one step in slot order, element by element: the
 * reduction of gradient accumulation. In one process every slot is local; on
 * MPI the slots of every rank (rank 0 first) are gathered and summed in the
 * same order (src/train/distributed.ts).
 */
export interface GradientReducer {
  /** This process's rank (0 in one process). */
  readonly rank: number;
  /** Number of ranks (1 in one process). */
  readonly size: number;
  /**
   * `local` holds this rank's `slots` vectors of `out.length` floats back to
   * back; `out` receives (((s0 + s1) + s2) + ...) over every rank's slots.
   * `step` (0-based) is for messages. Returns the milliseconds it took.
   */
  reduce(local: Float32Array, slots: number, out: Float32Array, step: number): number;
}

/**
 * The ordered float32 sum of `slots` vectors (each `out.length` long) stored
 * back to back in `local`. A JS float32 addition (double sum of two floats,
 * rounded on store) is the IEEE float32 sum, so this equals the native sum of
 * the MPI module bit for bit.
 */
export function orderedSlotSum(local: Float32Array, slots: number, out: Float32Array): void {
  const n = out.length;
  if (local.length !== slots * n) throw new ArgumentError(`orderedSlotSum: local has ${local.length} floats, expected ${slots} x ${n}`);
  out.set(local.subarray(0, n));
  for (let s = 1; s < slots; s++) {
    const o = s * n;
    for (let i = 0; i < n; i++) out[i] = out[i] + local[o + i];
  }
}

/** The reducer of one process: every slot is local. */
export const localReducer: GradientReducer = {
  rank: 0,
  size: 1,
  reduce(local: Float32Array, slots: number, out: Float32Array): number {
    const t = process.hrtime.bigint();
    orderedSlotSum(local, slots, out);
    return Number(process.hrtime.bigint() - t) / 1e6;
  },
};

/** Options of {@link AccumulatingEngine}. */
export interface AccumulatingEngineOptions {
  /** Micro-batches per step (a multiple of the reducer's size). */
  microBatches: number;
  /** Where the slots are summed (default: this process). */
  reducer?: GradientReducer;
  /** Asked before each step's reduction: true when this rank wants to stop after the step (all ranks then stop together). */
  localStop?: () => boolean;
}

/**
 * The CPU engine with gradient accumulation: per step, this rank's
 * micro-batches through `lossAndGrad`, one ordered reduction, one Adam step.
 *
 * Slot layout (n = parameter count, N micro-batches): each slot is
 * n gradient floats, then 2N loss floats (micro-batch k's loss as a float32
 * pair hi + lo at n + 2k, zero elsewhere, so the sum carries every loss
 * exactly), then one stop flag. The gradient part of slot k is already
 * scaled by fround(realGraphs_k / realGraphs_total).
 */
export class AccumulatingEngine implements Engine {
  readonly device = 'cpu' as const;
  readonly reportsGradNorm = true;
  private readonly api = nativeModel();
  private readonly reducer: GradientReducer;
  private readonly n: number;
  private readonly slotLen: number;
  private readonly perRank: number;
  private readonly local: Float32Array;
  private readonly out: Float32Array;
  private stopAgreed = false;
  private reduceMsTotal = 0;
  private reduceSteps = 0;

  constructor(
    private readonly arrays: NativeStoreArrays,
    private readonly cache: PlanCache,
    private readonly state: { params: Float32Array; m: Float32Array; v: Float32Array },
    private readonly o: AccumulatingEngineOptions,
  ) {
    this.reducer = o.reducer ?? localReducer;
    const N = o.microBatches;
    const W = this.reducer.size;
    if (!Number.isInteger(N) || N < 1) throw new ArgumentError(`microBatches must be a positive integer, got ${N}`);
    if (N % W !== 0) throw new ArgumentError(`microBatches (${N}) must be a multiple of the number of ranks (${W})`);
    this.n = state.params.length;
    this.slotLen = this.n + 2 * N + 1;
    this.perRank = N / W;
    this.local = new Float32Array(this.perRank * this.slotLen);
    this.out = new Float32Array(this.slotLen);
    this.api.resetFlops();
  }

  /** True once some rank asked to stop: every rank stops after the same step. */
  get stopRequested(): boolean {
    return this.stopAgreed;
  }

  /** Time spent in the reduction (ms, summed) and the steps it covers. */
  reduceStats(): { ms: number; steps: number } {
    return { ms: this.reduceMsTotal, steps: this.reduceSteps };
  }

  step(spec: BatchSpec, step: number, adam: AdamStepArgs, t0: bigint): StepTiming {
    const micro = (spec as Partial<GlobalBatch>).micro;
    const N = this.o.microBatches;
    if (!micro || micro.length !== N) throw new GnnError('ERR_GNN_INTERNAL', `the accumulating engine needs a global batch of ${N} micro-batches (nextGlobalBatch)`);
    const ts = process.hrtime.bigint();
    const n = this.n;
    const L = this.slotLen;
    let total = 0;
    for (const b of micro) total += b.graphIds.length;
    const first = this.reducer.rank * this.perRank;
    this.local.fill(0);
    let compileMs = 0;
    let packMs = 0;
    let gradMs = 0;
    for (let j = 0; j < this.perRank; j++) {
      const k = first + j;
      const b = micro[k];
      const tb = process.hrtime.bigint();
      const before = this.cache.stats().buildMs;
      const plan = this.cache.get(b.shape);
      const built = this.cache.stats().buildMs - before;
      compileMs += built;
      const inputs = inputsFor(plan, b.shape);
      native().packGraphs(this.arrays, b.graphIds, b.shape, inputs);
      const tp = process.hrtime.bigint();
      packMs += Number(tp - tb) / 1e6 - built;
      const slot = this.local.subarray(j * L, j * L + n);
      const loss = this.api.lossAndGrad(plan.handle, inputs, b.shape, this.state.params, slot);
      gradMs += Number(process.hrtime.bigint() - tp) / 1e6;
      if (!Number.isFinite(loss))
        throw new GnnError('ERR_GNN_NONFINITE', `loss is not finite (${loss}) on micro-batch ${k} of ${N}: training diverged; parameters were left unchanged`);
      // The loss is the mean over real graphs: micro-batch k weighs n_k / n of the global batch.
      const w = Math.fround(b.graphIds.length / total);
      if (w !== 1) for (let i = 0; i < n; i++) slot[i] = slot[i] * w;
      const hi = Math.fround(loss);
      this.local[j * L + n + 2 * k] = hi;
      this.local[j * L + n + 2 * k + 1] = Math.fround(loss - hi);
    }
    this.local[n + 2 * N] = this.o.localStop?.() ? 1 : 0;
    const rms = this.reducer.reduce(this.local, this.perRank, this.out, step);
    this.reduceMsTotal += rms;
    this.reduceSteps++;
    if (this.out[n + 2 * N] > 0) this.stopAgreed = true;
    let loss = 0;
    for (let k = 0; k < N; k++) loss += (micro[k].graphIds.length / total) * (this.out[n + 2 * k] + this.out[n + 2 * k + 1]);
    const ta = process.hrtime.bigint();
    const gradNorm = this.api.adamUpdate(this.state.params, this.out.subarray(0, n), this.state.m, this.state.v, adam);
    const t2 = process.hrtime.bigint();
    // Batching: the policy's draws (t0 -> ts) and the packing; update: gradients, reduction, Adam (+ plan builds).
    return { loss, gradNorm, batchingMs: Number(ts - t0) / 1e6 + packMs, updateMs: gradMs + rms + Number(t2 - ta) / 1e6 + compileMs };
  }

  compileStats(): { builds: number; buildMs: number } {
    const s = this.cache.stats();
    return { builds: s.builds, buildMs: s.buildMs };
  }

  flops(): number {
    return this.api.flopsCount();
  }

  syncParams(): void {}

  profileSeconds(): Record<string, number> {
    return {};
  }
}

/** What {@link accumulationSetup} reads of train()'s options. */
export interface AccumulationInput {
  microBatches?: number;
  distributed?: GradientReducer;
  device?: 'cpu' | 'cuda' | 'auto';
  profile?: boolean;
  trace?: boolean;
  asyncSteps?: boolean;
  checkpointDir?: string;
  checkpointEvery?: number;
  evalEvery?: number;
  skipEval?: boolean;
  onProgress?: unknown;
  shouldStop?: () => boolean;
  signal?: AbortSignal;
}

/**
 * train()'s accumulation of one run: the micro-batch count, the reducer, the
 * engine, and the stop that every rank agrees on.
 */
export class Accumulation {
  private engine: AccumulatingEngine | null = null;

  constructor(
    /** Micro-batches per step. */
    readonly microBatches: number,
    /** Where the slots are summed. */
    readonly reducer: GradientReducer,
    private readonly localStop: () => boolean,
  ) {}

  /** The next global batch (`microBatches` draws of the policy). */
  nextBatch(policy: Policy): GlobalBatch {
    return nextGlobalBatch(policy, this.microBatches);
  }

  /** The engine of the run (once). */
  createEngine(arrays: NativeStoreArrays, cache: PlanCache, state: { params: Float32Array; m: Float32Array; v: Float32Array }): AccumulatingEngine {
    // One process stops between steps (shouldStop); ranks send their wish with each reduction.
    const localStop = this.reducer.size > 1 ? this.localStop : undefined;
    this.engine = new AccumulatingEngine(arrays, cache, state, { microBatches: this.microBatches, reducer: this.reducer, localStop });
    return this.engine;
  }

  /** True when the run must stop before its next step (on every rank alike when distributed). */
  shouldStop(): boolean {
    if (this.engine?.stopRequested) return true;
    // One process stops at once, as train() always did; ranks only on the agreed flag.
    return this.reducer.size === 1 && this.localStop();
  }
}

/**
 * The options as this rank runs them, and its {@link Accumulation} (null for
 * the fused one-batch step: `microBatches` 1 and no `distributed`, unchanged).
 * Ranks other than 0 write no checkpoint, evaluate nothing and report no
 * progress. Throws ERR_GNN_ARGUMENT for a micro-batch count that is not a
 * positive multiple of the world size, ERR_GNN_UNSUPPORTED with the CUDA
 * engine, profile, trace or asyncSteps.
 */
export function accumulationSetup<O extends AccumulationInput>(opts: O): { opts: O; acc: Accumulation | null } {
  const reducer = opts.distributed ?? localReducer;
  const N = opts.microBatches ?? reducer.size;
  if (!Number.isInteger(N) || N < 1) throw new ArgumentError(`microBatches must be a positive integer, got ${N}`);
  if (N === 1 && !opts.distributed) return { opts, acc: null };
  if (N % reducer.size !== 0)
    throw new ArgumentError(`microBatches (${N}) must be a multiple of the number of ranks (${reducer.size}): each rank computes microBatches / ranks of them`);
  const unsupported = (what: string): never => {
    throw new GnnError('ERR_GNN_UNSUPPORTED', `gradient accumulation (microBatches ${N}${opts.distributed ? `, ${reducer.size} ranks` : ''}): ${what} is not supported`);
  };
  if (opts.device === 'cuda') unsupported("device 'cuda' (it runs on the CPU engine; the NCCL design is in docs/scale-out.md)");
  if (opts.profile || opts.trace) unsupported('the kernel profile');
  if (opts.asyncSteps) unsupported('asyncSteps');
  const localStop = (): boolean => !!(opts.signal?.aborted || opts.shouldStop?.());
  const acc = new Accumulation(N, reducer, localStop);
  const view: O = { ...opts, device: 'cpu', signal: undefined, shouldStop: () => acc.shouldStop() };
  if (reducer.rank !== 0) Object.assign(view, { checkpointDir: undefined, checkpointEvery: 0, evalEvery: 0, skipEval: true, onProgress: undefined });
  return { opts: view, acc };
}
