/**
 * Per-kernel profile of training steps on the CPU engine: every kernel call
 * site of the native model (each GEMM with its epilogue, each gather/segment
 * reduction, RBF, embedding, loss, Adam) plus the host phases of a step
 * (policy decision, plan build, pack), with calls, time, flops and bytes moved
 * counted from the real shapes of each call, achieved GFLOP/s and GB/s against
 * this machine's limits measured in the same process at the same thread
 * count, the roofline bound, and how much of each kernel's rows (and time) is
 * padding.
 *
 * How bytes are counted (native/core/models/model.h, KernelRecord): each
 * operand is read once and the output written once; rows gathered through an
 * index are read once per gathering row; index arrays count 4 bytes per entry;
 * an accumulated output is read and written. Caches are ignored, so this is
 * the traffic a kernel would move if nothing stayed in cache between
 * operands: a lower bound on achieved GB/s's meaning, not a hardware counter.
 *
 * Flops: matrix-product sites count 2*M*N*K (exactly what the native flop
 * counter adds; their epilogues' bias/activation arithmetic is not counted);
 * the other sites count their own arithmetic with exp as one operation.
 *
 * Padding: each site's rows are nodes, edges, graphs or parameters of the
 * batch, or (`none`) only rows the call computes, none of them padding (PaiNN's
 * edge passes skip padding edges); its padding share is the padded fraction of those rows, and its
 * padding time the call's time times that fraction (time taken as linear in
 * rows). Host phases carry no padding except `pack`, whose padding share is
 * the batch's padded fraction of edges.
 *
 * With `forces` ({@link ProfileOptions.forces}; `gnnbatch profile --forces`)
 * the profiled step is force training's (src/train/force-training.ts,
 * ForceEngine, the step `train --forces` makes): one native
 * `forceLossAndGrad` (forward, force pass, force/stress loss, the tangent
 * forward and the dual backward) and one `adamUpdate`, on one float32 plan
 * created with `{ forces: true, forceTraining: true }` that grows to the
 * largest shape met.
 * The force pass's and the double backward's kernels (sites `force.*`,
 * `dbl.*`) are rows of their own; the host phases add `targets` (packing the
 * force and stress targets) and `adam_update` (the optimiser step, which runs
 * outside the plan).
 */
import { native, nativeModel, getThreads, type AdamStepArgs, type KernelRecords, type NativeStoreArrays, type PackOutput, type PackShape } from '../native';
import { shapeKey } from '../batching';
import type { GraphStore } from '../data';
import type { ModelConfig, ModelKind } from '../model/config';
import { allocPackOutput, buildPlan } from './plan';
import { adamStepArgs, prepareRun, type RunSetupOptions } from './run-setup';
import { CpuEngine, type Engine } from './engine';
import { median } from './metrics';
import { ArgumentError, GnnError } from '../errors';
import { writeFileAtomic } from '../util/atomic';
import { FORCE_TRAINING_DTYPE, ForceEngine, forceBatchLossAndGrad, forceTrainingCheck, forceWork, packedForceTargets, packedStressTargets, resolveForceWeights, checkForceData, type ForceLossWeights, type ForceWork, type PackedStress } from './force-training';
import type { BatchSpec } from '../batching';
import type { Plan } from './plan';

/** Options of {@link profileSteps}: the run's set-up ({@link RunSetupOptions}: the same fields as train()'s) and what to measure. */
export interface ProfileOptions extends Pick<RunSetupOptions, 'store' | 'target' | 'model' | 'policy' | 'policyOptions' | 'batchSize' | 'seed' | 'threads'> {
  /** Measured steps (>= 1). */
  steps: number;
  /** Steps run before measuring (default 0: plan builds of the first steps are part of the profile). */
  warmup?: number;
  /** Keep every event for a Chrome trace (see {@link toChromeTrace}); default false. */
  collectTrace?: boolean;
  /**
   * Profile force-training steps (energies and forces, and stress with a
   * stress weight) instead of energy steps: true for the default loss
   * weights, or the weights. The store needs forces and edge directions (and
   * stress for a stress weight); every model (PaiNN's sites: dbl.painn.*,
   * dbl.bwd.painn.*).
   */
  forces?: boolean | Partial<ForceLossWeights>;
}

/**
 * Measured limits of this machine (same process, same thread count): the
 * references every kernel row is expressed against. Each reference is the best
 * of several samples taken interleaved with the work it judges (before, between
 * and after the steps), so a machine that drifts during the run does not leave
 * a reference measured at a bad moment; the samples and their spread say how
 * much it drifted. A kernel that achieved more than its reference means the
 * reference was measured low: the reference is then raised to that kernel's
 * achieved rate and the kernel named (`*_raised_by`), so no fraction exceeds 1.
 */
export interface MachineLimits {
  threads: number;
  /** Dense float32 matrix-product reference (GFLOP/s): the best gemmBench(9984, 64, 128) sample, or the best kernel rate when higher. */
  gemm_gflops: number;
  /** Streaming bandwidth reference (bytes read + written per second, GB/s): the best parallel float copy sample (4 MiB and 64 MiB moved), or the best kernel rate when higher. */
  stream_gbps: number;
  /** Ridge point of the roofline: gemm_gflops / stream_gbps (flop per byte). */
  ridge_flop_per_byte: number;
  /** Every GEMM reference sample of the run (GFLOP/s), in the order taken. */
  gemm_samples: number[];
  /** (best - worst) / best of gemm_samples: how much the machine drifted within the run. */
  gemm_spread: number;
  /** Every bandwidth reference sample (GB/s; the best of the cache-sized and the DRAM-sized copy at each moment). */
  stream_samples: number[];
  /** (best - worst) / best of stream_samples. */
  stream_spread: number;
  /** Best 64 MiB copy (GB/s): memory bandwidth beyond the caches. */
  dram_gbps: number;
  /** The kernel whose achieved GFLOP/s exceeded every GEMM sample (the reference was raised to it), else null. */
  gemm_raised_by: string | null;
  /** The kernel whose achieved GB/s exceeded every bandwidth sample, else null. */
  stream_raised_by: string | null;
}

/** One interleaved sample of the references (see {@link ReferenceSampler}). */
interface ReferenceSample {
  gemm: number;
  stream: number;
  dram: number;
}

const GEMM_REF = [9984, 64, 128] as const;

function sampleReferences(reps: number): ReferenceSample {
  const api = nativeModel();
  const [M, N, K] = GEMM_REF;
  api.gemmBench(M, N, K, 1);
  const g = api.gemmBench(M, N, K, reps);
  api.streamBench(2, 2);
  const c = api.streamBench(2, reps * 4);
  const d = api.streamBench(64, Math.max(2, reps >> 1));
  const dram = (2 * 64 * 2 ** 20) / d / 1e9;
  return { gemm: (2 * M * N * K) / g / 1e9, stream: Math.max(dram, (2 * 2 * 2 ** 20) / c / 1e9), dram };
}

/**
 * Collects reference samples interleaved with measured work: call
 * {@link sample} before, between and after the steps, then {@link limits}.
 */
export class ReferenceSampler {
  private readonly samples: ReferenceSample[] = [];
  constructor(private readonly reps = 8) {}
  /** Takes one sample now (~50-150 ms). */
  sample(): void {
    this.samples.push(sampleReferences(this.reps));
  }
  /** Samples taken so far. */
  get count(): number {
    return this.samples.length;
  }
  /** The references: best of the samples (one is taken if there is none). */
  limits(): MachineLimits {
    if (this.samples.length === 0) this.sample();
    return limitsFromSamples(this.samples.map((x) => x.gemm), this.samples.map((x) => x.stream), Math.max(...this.samples.map((x) => x.dram)));
  }
}

function spread(xs: readonly number[]): number {
  const hi = Math.max(...xs);
  return hi > 0 ? (hi - Math.min(...xs)) / hi : 0;
}

function limitsFromSamples(gemm: number[], stream: number[], dram: number): MachineLimits {
  const g = Math.max(...gemm);
  const s = Math.max(...stream);
  return {
    threads: getThreads(),
    gemm_gflops: g,
    stream_gbps: s,
    ridge_flop_per_byte: g / s,
    gemm_samples: gemm,
    gemm_spread: spread(gemm),
    stream_samples: stream,
    stream_spread: spread(stream),
    dram_gbps: dram,
    gemm_raised_by: null,
    stream_raised_by: null,
  };
}

/** The union of two sets of samples (e.g. a collector's interleaved samples and one taken after the run). */
export function mergeLimits(a: MachineLimits, b: MachineLimits): MachineLimits {
  return limitsFromSamples([...a.gemm_samples, ...b.gemm_samples], [...a.stream_samples, ...b.stream_samples], Math.max(a.dram_gbps, b.dram_gbps));
}

/**
 * Makes the references hold for `kernels`: where a native kernel achieved more
 * GFLOP/s (GB/s) than the reference, the reference was measured low, so it is
 * raised to the best kernel's rate and that kernel named; every row's
 * fractions and bound are then recomputed against the result. Returns new
 * limits and rows (the inputs are not changed).
 */
export function settleLimits(limits: MachineLimits, kernels: readonly KernelProfileEntry[]): { limits: MachineLimits; kernels: KernelProfileEntry[] } {
  const out: MachineLimits = { ...limits };
  for (const k of kernels) {
    if (k.where !== 'native') continue;
    if (k.gflops > out.gemm_gflops) (out.gemm_gflops = k.gflops), (out.gemm_raised_by = k.kernel);
    if (k.gbps > out.stream_gbps) (out.stream_gbps = k.gbps), (out.stream_raised_by = k.kernel);
  }
  out.ridge_flop_per_byte = out.stream_gbps > 0 ? out.gemm_gflops / out.stream_gbps : 0;
  const rows = kernels.map((k) => ({
    ...k,
    peak_fraction: out.gemm_gflops > 0 ? k.gflops / out.gemm_gflops : 0,
    bandwidth_fraction: out.stream_gbps > 0 ? k.gbps / out.stream_gbps : 0,
    bound: (k.gb > 0 ? (k.intensity >= out.ridge_flop_per_byte ? 'compute' : 'memory') : 'none') as KernelProfileEntry['bound'],
  }));
  return { limits: out, kernels: rows };
}

/** One row of the profile (a kernel call site or a host phase), over the measured steps. */
export interface KernelProfileEntry {
  kernel: string;
  /** 'native' kernel of the model, or 'host' phase of the step loop. */
  where: 'native' | 'host';
  /** What the kernel's rows are (its padding share is that dimension's padding). */
  rows: 'node' | 'edge' | 'graph' | 'param' | 'none';
  gemm: boolean;
  calls: number;
  total_ms: number;
  /** Median over measured steps of this kernel's time in the step. */
  median_ms_per_step: number;
  ms_per_step: number;
  /** Share of the measured step time (sum of steps). */
  share: number;
  gflop: number;
  gb: number;
  gflops: number;
  gbps: number;
  /** flops / bytes. */
  intensity: number;
  /** gflops / the machine's GEMM peak. */
  peak_fraction: number;
  /** gbps / the machine's streaming bandwidth. */
  bandwidth_fraction: number;
  bound: 'compute' | 'memory' | 'none';
  /** Padded fraction of the rows the kernel processed. */
  padding_share: number;
  /** Time attributed to padding rows, per step. */
  padding_ms_per_step: number;
}

/** One event of the trace (times in microseconds on the process.hrtime clock). */
export interface ProfileEvent {
  track: 'step' | 'kernels';
  name: string;
  tsUs: number;
  durUs: number;
  args: Record<string, number | string>;
}

/** Everything {@link profileSteps} measured. */
export interface ProfileResult {
  model: ModelKind;
  policy: string;
  batch: number;
  steps: number;
  warmup: number;
  threads: number;
  limits: MachineLimits;
  step_ms_median: number;
  step_ms_mean: number;
  /** Kernel and host rows, native kernels in call-site order then host phases. */
  kernels: KernelProfileEntry[];
  /** Matrix-product flops per step from the native counter (trainStep's `flops`). */
  counter_gflop_per_step: number;
  /** The same summed over the GEMM rows (equal to the counter by construction of the call sites). */
  gemm_gflop_per_step: number;
  /** GFLOP/s of the matrix work: GEMM rows' flops over GEMM rows' time. */
  matrix_gflops: number;
  /** matrix_gflops / limits.gemm_gflops. */
  matrix_peak_fraction: number;
  /** GFLOP/s of the whole step: the native counter's flops over the median step time (policy, pack, update). */
  step_gflops: number;
  /** step_gflops / limits.gemm_gflops. */
  step_peak_fraction: number;
  /** Sum of the padding time of all rows, per step: what the policy's padding cost. */
  padding_ms_per_step: number;
  padding_share_of_step: number;
  node_fill: number;
  edge_fill: number;
  graph_fill: number;
  plan_builds: number;
  /** Kernel calls the native buffer could not hold (0 normally). */
  dropped_records: number;
  /** The loss weights of profiled force-training steps ({@link ProfileOptions.forces}); null for energy steps. */
  forces?: ForceLossWeights | null;
  events?: ProfileEvent[];
}

/**
 * The profile expressed against a higher GEMM reference measured elsewhere in
 * the run (e.g. a BLAS on the same cores, `gnnbatch profile --blas`): when
 * `gflops` exceeds the profile's reference, the reference becomes `gflops`,
 * `gemm_raised_by` names `by`, and every fraction is recomputed. Returns a new
 * result (unchanged when `gflops` is not higher).
 */
export function withGemmReference(r: ProfileResult, gflops: number, by: string): ProfileResult {
  if (!(gflops > r.limits.gemm_gflops)) return r;
  const settled = settleLimits({ ...r.limits, gemm_gflops: gflops, gemm_raised_by: by }, r.kernels);
  const g = settled.limits.gemm_gflops;
  return { ...r, limits: settled.limits, kernels: settled.kernels, matrix_peak_fraction: r.matrix_gflops / g, step_peak_fraction: r.step_gflops / g };
}

/** Measures the machine's limits at the current thread count: one sample of each reference (see {@link ReferenceSampler} for interleaved ones). */
export function measureLimits(): MachineLimits {
  const r = new ReferenceSampler(15);
  r.sample();
  return r.limits();
}

interface Acc {
  calls: number;
  ms: number;
  flops: number;
  bytes: number;
  rows: number;
  realRows: number;
  padMs: number;
  perStep: Float64Array;
}

const hrUs = (t: bigint): number => Number(t) / 1e3;

function checkSteps(opts: ProfileOptions): number {
  if (!Number.isInteger(opts.steps) || opts.steps < 1) throw new ArgumentError(`profile: steps must be an integer >= 1, got ${opts.steps}`);
  const warmup = opts.warmup ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) throw new ArgumentError(`profile: warmup must be a non-negative integer, got ${warmup}`);
  return warmup;
}

/**
 * The profile's run: train()'s set-up ({@link prepareRun}; graphs without a
 * target train on the mean: timing is what is measured) and, for force
 * steps, the force checks and loss weights.
 */
function setup(opts: ProfileOptions) {
  const warmup = checkSteps(opts);
  const weights = opts.forces ? resolveForceWeights(opts.forces === true ? {} : opts.forces) : null;
  if (weights) forceTrainingCheck({ model: opts.model }, false);
  const run = prepareRun({ store: opts.store, target: opts.target, model: opts.model, policy: opts.policy, policyOptions: opts.policyOptions, batchSize: opts.batchSize, seed: opts.seed, threads: opts.threads, skipEval: true, missingTargets: 'zero', who: 'profile' });
  return { warmup, run, weights };
}

/**
 * The force-training step of {@link measureProfileOverhead} (which times the
 * native call alone, on batches packed once): plans with the double
 * backward's buffers (one per shape, float32), the batch's force (and stress)
 * targets, one `forceLossAndGrad` and one `adamUpdate` (ForceEngine's step
 * without its packing; profiles run ForceEngine itself).
 */
class ForceStepper {
  private readonly plans = new Map<string, Plan>();
  private readonly work = new Map<string, { work: ForceWork; targets: Float64Array; stress: PackedStress }>();

  constructor(
    private readonly store: GraphStore,
    arrays: NativeStoreArrays,
    private readonly config: ModelConfig,
    readonly weights: ForceLossWeights,
    private readonly std: number,
  ) {
    checkForceData(store, arrays, weights);
  }

  /** The plan of `shape` (built on first use). */
  plan(shape: PackShape): { plan: Plan; built: boolean } {
    const key = shapeKey(shape);
    const have = this.plans.get(key);
    if (have) return { plan: have, built: false };
    const plan = buildPlan(this.config, shape, FORCE_TRAINING_DTYPE, true, { forces: true, forceTraining: true });
    this.plans.set(key, plan);
    this.work.set(key, { work: forceWork(shape.nodes, FORCE_TRAINING_DTYPE, shape.graphs), targets: new Float64Array(3 * shape.nodes), stress: { targets: new Float64Array(6 * shape.graphs), volumes: new Float64Array(shape.graphs) } });
    return { plan, built: true };
  }

  /** The batch's standardised force (and stress) targets: the step's host-side preparation. */
  targets(spec: BatchSpec): { targets: Float64Array; stress?: PackedStress; work: ForceWork } {
    const w = this.work.get(shapeKey(spec.shape));
    if (!w) throw new GnnError('ERR_GNN_INTERNAL', 'profile: targets asked before the plan of the shape');
    const inv = this.std > 0 ? 1 / this.std : 1;
    const targets = packedForceTargets(this.store, spec.graphIds, spec.shape, inv, w.targets);
    const stress = this.weights.stress > 0 ? packedStressTargets(this.store, spec.graphIds, spec.shape, inv, w.stress) : undefined;
    return { targets, stress, work: w.work };
  }

  /** The native loss and gradient (profiled on the plan); returns the loss and the matrix-product flops it counted. */
  lossAndGrad(plan: Plan, inputs: PackOutput, spec: BatchSpec, t: ReturnType<ForceStepper['targets']>, params: Float32Array, grads: Float32Array): { loss: number; flops: number } {
    const api = nativeModel();
    api.resetFlops();
    const r = forceBatchLossAndGrad(plan, inputs, spec.shape, params, t.targets, this.weights, grads, t.work, t.stress);
    return { loss: r.loss, flops: api.flopsCount() };
  }

  release(): void {
    for (const p of this.plans.values()) nativeModel().releasePlan(p.handle);
    this.plans.clear();
  }
}

const adamFor = (i: number): AdamStepArgs => adamStepArgs(i, 1e-4);

/** Result of {@link measureProfileOverhead}. */
export interface ProfileOverhead {
  /** Native update calls timed per mode. */
  samples: number;
  update_ms_off_median: number;
  update_ms_on_median: number;
  /** Median over batches and rounds of (on / off - 1) of the same batch back to back: robust to drift on a shared machine. */
  overhead_fraction: number;
  /** on / off - 1 of the two medians. */
  overhead_fraction_of_medians: number;
}

/**
 * Cost of profiling: the same batches (the policy's first `opts.steps`,
 * packed once each) run through the native step with profiling off and on,
 * interleaved (off/on or on/off, alternating over batches and rounds) in one process, so
 * machine noise hits both modes alike. Times the native step call only; the
 * records' hand-over to JS (outside the step) is not included.
 */
export function measureProfileOverhead(opts: ProfileOptions & { rounds?: number }): ProfileOverhead {
  const { run, weights } = setup(opts);
  const force = weights ? new ForceStepper(run.store, run.arrays, run.config, weights, run.targets.stats.std) : null;
  const { arrays, policy, cache } = run;
  const { params, m, v, grads } = run.state;
  const api = nativeModel();
  const rounds = opts.rounds ?? 6;
  const batches = Array.from({ length: opts.steps }, () => {
    const spec = policy.next();
    const plan = force ? force.plan(spec.shape).plan : cache.get(spec.shape);
    // Own input buffers per batch (plans are shared between batches of one shape).
    const inputs = allocPackOutput(spec.shape, 'float32', force !== null);
    native().packGraphs(arrays, spec.graphIds, spec.shape, inputs);
    // Force targets copied per batch (the stepper's buffers are per shape).
    const t = force ? force.targets(spec) : null;
    const targets = t ? { ...t, targets: t.targets.slice(), stress: t.stress && { targets: t.stress.targets.slice(), volumes: t.stress.volumes.slice() } } : null;
    return { spec, plan, inputs, targets };
  });
  const off: number[] = [];
  const on: number[] = [];
  const ratio: number[] = [];
  let i = 0;
  const once = (b: (typeof batches)[number], prof: boolean): number => {
    api.setProfile(b.plan.handle, prof);
    const t0 = process.hrtime.bigint();
    if (force && b.targets) {
      force.lossAndGrad(b.plan, b.inputs, b.spec, b.targets, params, grads);
      api.adamUpdate(params, grads, m, v, adamFor(i++));
    } else api.trainStep(b.plan.handle, b.inputs, b.spec.shape, params, grads, m, v, adamFor(i++));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (prof) api.takeProfileRecords(b.plan.handle);
    return ms;
  };
  for (const b of batches) once(b, false); // warm caches and pages
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < batches.length; j++) {
      const b = batches[j];
      let a: number, c: number;
      // Which mode runs first alternates over batches and rounds: the second of a pair is often faster (warm caches).
      if ((r + j) % 2 === 0) (a = once(b, false), c = once(b, true));
      else (c = once(b, true), a = once(b, false));
      off.push(a);
      on.push(c);
      if (a > 0) ratio.push(c / a - 1);
    }
  }
  for (const b of batches) api.setProfile(b.plan.handle, false);
  force?.release();
  const mOff = median(off);
  const mOn = median(on);
  return {
    samples: off.length,
    update_ms_off_median: mOff,
    update_ms_on_median: mOn,
    overhead_fraction: ratio.length ? median(ratio) : 0,
    overhead_fraction_of_medians: mOff > 0 ? mOn / mOff - 1 : 0,
  };
}

/**
 * Runs `steps` profiled training steps (after `warmup`) and returns the
 * per-kernel rows. The steps are train()'s: the CPU engine (or, with
 * `forces`, the force engine) on train()'s set-up, with a
 * {@link KernelProfileCollector} taking each step's kernel records and host
 * phases; machine references are sampled before, between (about every
 * quarter of the steps) and after them.
 */
export async function profileSteps(opts: ProfileOptions): Promise<ProfileResult> {
  const { warmup, run, weights } = setup(opts);
  const { config, policy, arrays, cache } = run;
  const S = opts.steps;
  const collector = new KernelProfileCollector(S, opts.collectTrace === true, warmup);
  const refs = new ReferenceSampler();
  const engine: Engine = weights
    ? new ForceEngine(run.store, arrays, config, run.state, { weights, targetStd: run.targets.stats.std, kernelCollector: collector })
    : new CpuEngine(arrays, cache, run.state, { profile: true, kernelCollector: collector });
  let counterFlops = 0;
  try {
    for (let i = 0; i < warmup + S; i++) {
      const si = i - warmup;
      const t0 = process.hrtime.bigint();
      const spec = policy.next();
      const f0 = engine.flops();
      await engine.step(spec, i, adamFor(i), t0);
      if (si >= 0) counterFlops += engine.flops() - f0;
      if (si > 0 && si < S - 1 && (si + 1) % Math.max(1, Math.ceil(S / 4)) === 0) refs.sample();
    }
  } finally {
    if (engine instanceof ForceEngine) engine.release();
    cache.close();
  }
  refs.sample();
  const stepMs = collector.stepTimesMs();
  const totalStepMs = stepMs.reduce((s, x) => s + x, 0);
  const measured = collector.mergedLimits(refs.limits());
  // Force steps add two host phases: the force/stress targets and the optimiser step (outside the plan).
  const hostNames: readonly HostPhase[] = weights ? HOST_PHASES : HOST_PHASES.filter((h) => h !== 'targets' && h !== 'adam_update');
  const { limits, kernels } = settleLimits(measured, [...collector.nativeRows(measured), ...collector.hostRows(hostNames, measured)]);
  const padMs = kernels.reduce((s, k) => s + k.padding_ms_per_step, 0);
  const gemm = collector.gemmTotals();
  const matrixGflops = gemm.ms > 0 ? gemm.flops / 1e9 / (gemm.ms / 1e3) : 0;
  const stepMedian = median(Array.from(stepMs));
  const stepGflops = stepMedian > 0 ? counterFlops / S / 1e9 / (stepMedian / 1e3) : 0;
  const fills = collector.fills();
  return {
    model: config.kind,
    policy: opts.policy,
    batch: opts.batchSize,
    steps: S,
    warmup,
    threads: limits.threads,
    limits,
    step_ms_median: stepMedian,
    step_ms_mean: totalStepMs / S,
    matrix_gflops: matrixGflops,
    matrix_peak_fraction: limits.gemm_gflops > 0 ? matrixGflops / limits.gemm_gflops : 0,
    step_gflops: stepGflops,
    step_peak_fraction: limits.gemm_gflops > 0 ? stepGflops / limits.gemm_gflops : 0,
    kernels,
    counter_gflop_per_step: counterFlops / S / 1e9,
    gemm_gflop_per_step: gemm.flops / S / 1e9,
    padding_ms_per_step: padMs,
    padding_share_of_step: totalStepMs > 0 ? padMs / (totalStepMs / S) : 0,
    node_fill: fills.node,
    edge_fill: fills.edge,
    graph_fill: fills.graph,
    plan_builds: kernels.find((k) => k.kernel === 'plan_build')?.calls ?? 0,
    dropped_records: collector.dropped,
    forces: weights,
    events: collector.events,
  };
}

function makeRow(kernel: string, where: 'native' | 'host', rows: KernelProfileEntry['rows'], gemm: boolean, a: Acc, S: number, totalStepMs: number, limits: MachineLimits): KernelProfileEntry {
  const sec = a.ms / 1e3;
  const gflops = sec > 0 ? a.flops / 1e9 / sec : 0;
  const gbps = sec > 0 ? a.bytes / 1e9 / sec : 0;
  const intensity = a.bytes > 0 ? a.flops / a.bytes : 0;
  return {
    kernel,
    where,
    rows,
    gemm,
    calls: a.calls,
    total_ms: a.ms,
    median_ms_per_step: median(Array.from(a.perStep.subarray(0, S))),
    ms_per_step: S > 0 ? a.ms / S : 0,
    share: totalStepMs > 0 ? a.ms / totalStepMs : 0,
    gflop: a.flops / 1e9,
    gb: a.bytes / 1e9,
    gflops,
    gbps,
    intensity,
    peak_fraction: limits.gemm_gflops > 0 ? gflops / limits.gemm_gflops : 0,
    bandwidth_fraction: limits.stream_gbps > 0 ? gbps / limits.stream_gbps : 0,
    bound: a.bytes > 0 ? (intensity >= limits.ridge_flop_per_byte ? 'compute' : 'memory') : 'none',
    padding_share: a.rows > 0 ? (a.rows - a.realRows) / a.rows : 0,
    padding_ms_per_step: S > 0 ? a.padMs / S : 0,
  };
}

/**
 * Clock marks (process.hrtime.bigint, ns) of one training step of the
 * trainer, for the trace's step-loop track: t0 step start (before the
 * policy's decision), tb policy decided (plan lookup, and build, begins),
 * tp plan ready (packing begins), t1 packed (the native step begins), t2 the
 * native step returned.
 */
export interface StepMarks {
  /** 1-based number of the step in the run. */
  step: number;
  t0: bigint;
  tb: bigint;
  tp: bigint;
  t1: bigint;
  t2: bigint;
  shape: PackShape;
  graphs: number;
  /** A plan was built for this step (a compilation). */
  built: boolean;
  /** Real nodes, edges and graphs packed (the batch's fill); default: all rows real. */
  real?: { nodes: number; edges: number; graphs: number };
  /** Force steps: when packing ended and the force/stress targets began (they end at t1). */
  targetsAt?: bigint;
  /** Force steps: when the native loss and gradient returned and the optimiser step began (it ends at t2). */
  adamAt?: bigint;
}

/** The host phases of a step, in order ({@link StepMarks}: policy t0..tb, plan_build tb..tp, pack, targets, adam_update). */
export const HOST_PHASES = ['policy', 'plan_build', 'pack', 'targets', 'adam_update'] as const;
/** One host phase of a step. */
export type HostPhase = (typeof HOST_PHASES)[number];

/**
 * Collects the native kernel records of profiled steps run elsewhere (the
 * trainer's `profile` option): call {@link add} once per step with the plan's
 * records (`takeProfileRecords`, which also clears them, so the native buffer
 * never fills) and the step's time, then {@link rows}. With `collectTrace`,
 * it also keeps the events of a Chrome trace ({@link events}): each step's
 * phases from its {@link StepMarks}, its kernels, and the spans the caller
 * adds with {@link span} (evaluation, checkpoints).
 */
export class KernelProfileCollector {
  private readonly sites = nativeModel().kernelSites();
  private readonly acc: Acc[];
  private readonly host: Acc[];
  private readonly refs = new ReferenceSampler();
  private steps = 0;
  private seen = 0;
  private stepMs = 0;
  private readonly stepTimes: Float64Array;
  private readonly fill = { realN: 0, realE: 0, realG: 0, padN: 0, padE: 0, padG: 0 };
  /** Calls the native buffer could not hold. */
  dropped = 0;
  /** Trace events, oldest first (undefined unless collecting a trace). */
  readonly events: ProfileEvent[] | undefined;

  /**
   * `maxSteps` steps are collected after the first `skip` (warm-up steps: their
   * records are taken and dropped); steps beyond are ignored.
   */
  constructor(private readonly maxSteps: number, collectTrace = false, private readonly skip = 0) {
    const newAcc = (): Acc => ({ calls: 0, ms: 0, flops: 0, bytes: 0, rows: 0, realRows: 0, padMs: 0, perStep: new Float64Array(Math.max(0, maxSteps)) });
    this.acc = this.sites.map(newAcc);
    this.host = HOST_PHASES.map(newAcc);
    this.stepTimes = new Float64Array(Math.max(0, maxSteps));
    this.events = collectTrace ? [] : undefined;
    // A reference sample before the run (the caller takes one after it). None between steps: the
    // benchmark's products would add to the native flop counter the trainer reads once per run.
    if (maxSteps > 0) this.refs.sample();
  }

  /** Steps collected so far (warm-up excluded). */
  get collected(): number {
    return this.steps;
  }

  /**
   * Adds one step's records and its measured time (ms); `marks` give its host
   * phases and fill and place it on the trace. Warm-up steps and steps beyond
   * maxSteps are ignored.
   */
  add(records: KernelRecords, stepMs: number, marks?: StepMarks): void {
    if (this.seen++ < this.skip || this.steps >= this.maxSteps) return;
    const si = this.steps;
    addRecords(records, this.acc, si);
    this.dropped += records.dropped;
    this.stepMs += stepMs;
    this.stepTimes[si] = stepMs;
    this.steps++;
    if (!marks) return;
    const m = marks;
    const packEnd = m.targetsAt ?? m.t1;
    const updateEnd = m.adamAt ?? m.t2;
    const spans: [HostPhase, bigint, bigint][] = [['policy', m.t0, m.tb], ['pack', m.tp, packEnd]];
    if (m.built) spans.push(['plan_build', m.tb, m.tp]);
    if (m.targetsAt !== undefined) spans.push(['targets', m.targetsAt, m.t1]);
    if (m.adamAt !== undefined) spans.push(['adam_update', m.adamAt, m.t2]);
    const sh = m.shape;
    const real = m.real ?? { nodes: sh.nodes, edges: sh.edges, graphs: sh.graphs };
    for (const [name, from, to] of spans) {
      const a = this.host[HOST_PHASES.indexOf(name)];
      const ms = Number(to - from) / 1e6;
      a.calls++;
      a.ms += ms;
      a.perStep[si] += ms;
      if (name === 'pack') {
        // Packing writes every padded row: its padding is the batch's padded edges (the bulk of its bytes).
        a.rows += sh.edges;
        a.realRows += real.edges;
        a.padMs += sh.edges > 0 ? (ms * (sh.edges - real.edges)) / sh.edges : 0;
      }
    }
    const f = this.fill;
    f.realN += real.nodes; f.realE += real.edges; f.realG += real.graphs;
    f.padN += sh.nodes; f.padE += sh.edges; f.padG += sh.graphs;
    if (this.events) {
      const shape = shapeKey(sh);
      this.span(`step ${m.step}`, m.t0, m.t2, { shape, graphs: m.graphs, real: `${real.nodes}x${real.edges}x${real.graphs}` });
      for (const [name, from, to] of spans) this.span(name, from, to, name === 'policy' ? { graphs: m.graphs } : name === 'pack' ? { shape, edge_fill: sh.edges > 0 ? real.edges / sh.edges : 1 } : { shape });
      this.span('update', m.t1, updateEnd, { shape });
      pushKernelEvents(this.events, records, this.sites, m.t1, updateEnd);
    }
  }

  /** The collected steps' times (ms), in order. */
  stepTimesMs(): Float64Array {
    return this.stepTimes.slice(0, this.steps);
  }

  /** Real over padded nodes, edges and graphs of the collected steps (1 without marks). */
  fills(): { node: number; edge: number; graph: number } {
    const f = this.fill;
    return { node: f.padN > 0 ? f.realN / f.padN : 1, edge: f.padE > 0 ? f.realE / f.padE : 1, graph: f.padG > 0 ? f.realG / f.padG : 1 };
  }

  /**
   * Rows of the host phases `names` (a phase with no call still gets its row:
   * a plan_build row with 0 calls says no plan was built), against `limits`.
   */
  hostRows(names: readonly HostPhase[], limits: MachineLimits): KernelProfileEntry[] {
    return names.map((n) => makeRow(n, 'host', n === 'pack' ? 'edge' : 'none', false, this.host[HOST_PHASES.indexOf(n)], this.steps, this.stepMs, limits));
  }

  /** The native kernel rows before settling (see {@link rows}). */
  nativeRows(limits: MachineLimits): KernelProfileEntry[] {
    const out: KernelProfileEntry[] = [];
    this.sites.forEach((s, k) => {
      if (this.acc[k].calls > 0) out.push(makeRow(s.name, 'native', s.rows, s.gemm, this.acc[k], this.steps, this.stepMs, limits));
    });
    return out;
  }

  /** GEMM flops and time (ms) summed over the native rows. */
  gemmTotals(): { flops: number; ms: number } {
    let flops = 0, ms = 0;
    this.sites.forEach((site, k) => {
      if (site.gemm) (flops += this.acc[k].flops), (ms += this.acc[k].ms);
    });
    return { flops, ms };
  }

  /** The collector's own reference samples merged with `limits`. */
  mergedLimits(limits: MachineLimits): MachineLimits {
    return this.refs.count > 0 ? mergeLimits(this.refs.limits(), limits) : limits;
  }

  /** Adds a span of the step loop (e.g. `eval`, `checkpoint`) to the trace; a no-op unless collecting one. */
  span(name: string, from: bigint, to: bigint, args: Record<string, number | string> = {}): void {
    this.events?.push({ track: 'step', name, tsUs: hrUs(from), durUs: hrUs(to) - hrUs(from), args });
  }

  /**
   * Per-kernel rows of the native kernels over the steps added, against
   * `limits` (e.g. {@link measureLimits} after the run) merged with the
   * reference sample the collector took before the first step, then settled ({@link settleLimits}). `limits` is updated in
   * place to the references the rows are expressed against.
   */
  rows(limits: MachineLimits): KernelProfileEntry[] {
    const merged = this.mergedLimits(limits);
    const settled = settleLimits(merged, this.nativeRows(merged));
    Object.assign(limits, settled.limits);
    return settled.kernels;
  }
}

function addRecords(r: KernelRecords, acc: Acc[], si: number): void {
  for (let i = 0; i < r.count; i++) {
    const a = acc[r.site[i]];
    const ms = r.durNs[i] / 1e6;
    a.calls++;
    a.ms += ms;
    a.perStep[si] += ms;
    a.flops += r.flops[i];
    a.bytes += r.bytes[i];
    a.rows += r.rows[i];
    a.realRows += r.realRows[i];
    if (r.rows[i] > 0) a.padMs += (ms * (r.rows[i] - r.realRows[i])) / r.rows[i];
  }
}

/**
 * Appends the kernel records of one native step as trace events on the
 * kernel track. Native timestamps are steady_clock ns, on Linux the clock of
 * process.hrtime; elsewhere they are shifted into the step's update span
 * [`from`, `to`] (hrtime ns).
 */
function pushKernelEvents(events: ProfileEvent[], recs: KernelRecords, sites: readonly { name: string }[], from: bigint, to: bigint): void {
  let minT = Infinity;
  for (let r = 0; r < recs.count; r++) minT = Math.min(minT, recs.t0Ns[r]);
  const off = recs.count > 0 && (minT < Number(from) || minT > Number(to)) ? Number(from) - minT : 0;
  for (let r = 0; r < recs.count; r++) {
    const rows = recs.rows[r];
    events.push({
      track: 'kernels',
      name: sites[recs.site[r]].name,
      tsUs: (recs.t0Ns[r] + off) / 1e3,
      durUs: Math.max(0, recs.durNs[r]) / 1e3,
      args: {
        shape: `${recs.m[r]}x${recs.n[r]}x${recs.k[r]}`,
        pass: recs.pass[r],
        flops: recs.flops[r],
        bytes: recs.bytes[r],
        fill: rows > 0 ? recs.realRows[r] / rows : 1,
      },
    });
  }
}

/** What a trace is drawn from: a profile, or a training run's collected events (`label` names the process, default `gnnbatch profile`). */
export type TraceSource = Pick<ProfileResult, 'model' | 'policy' | 'batch' | 'events'> & { label?: string };

/** A Chrome trace-event document (Perfetto / chrome://tracing JSON). */
export interface ChromeTrace {
  traceEvents: Record<string, unknown>[];
  displayTimeUnit: 'ms';
}

/**
 * The events of profiles as Chrome trace events: complete events (`ph: "X"`,
 * `ts`/`dur` in microseconds from the first event) on two tracks per profile,
 * `tid` 1 the step loop and `tid` 2 the kernels, one process (`pid` 1, 2, ...)
 * per profile, each named by metadata events.
 */
export function toChromeTrace(results: TraceSource | readonly TraceSource[]): ChromeTrace {
  const list: readonly TraceSource[] = Array.isArray(results) ? results : [results as TraceSource];
  let base = Infinity;
  for (const r of list) for (const e of r.events ?? []) base = Math.min(base, e.tsUs);
  if (!Number.isFinite(base)) base = 0;
  const r3 = (x: number): number => Math.round(x * 1000) / 1000; // fractional microseconds (allowed) at ns resolution
  const out: Record<string, unknown>[] = [];
  list.forEach((result, i) => {
    const pid = i + 1;
    out.push(
      { name: 'process_name', ph: 'M', pid, tid: 0, args: { name: `${result.label ?? 'gnnbatch profile'} ${result.model} ${result.policy} B=${result.batch}` } },
      { name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } },
      { name: 'thread_name', ph: 'M', pid, tid: 1, args: { name: 'step loop' } },
      { name: 'thread_name', ph: 'M', pid, tid: 2, args: { name: 'kernels' } },
      { name: 'thread_sort_index', ph: 'M', pid, tid: 1, args: { sort_index: 1 } },
      { name: 'thread_sort_index', ph: 'M', pid, tid: 2, args: { sort_index: 2 } },
    );
    for (const e of result.events ?? []) {
      // Start and end rounded (monotone), so a child inside its parent stays inside.
      const ts = r3(e.tsUs - base);
      const end = r3(e.tsUs - base + Math.max(0, e.durUs));
      out.push({ name: e.name, cat: e.track === 'step' ? 'step' : 'kernel', ph: 'X', pid, tid: e.track === 'step' ? 1 : 2, ts, dur: Math.max(0, end - ts), args: e.args });
    }
  });
  return { traceEvents: out, displayTimeUnit: 'ms' };
}

/** Writes the profiles' trace to `file` atomically. */
export function writeChromeTrace(file: string, results: TraceSource | readonly TraceSource[]): void {
  writeFileAtomic(file, JSON.stringify(toChromeTrace(results)));
}
