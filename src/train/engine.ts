/**
 * Training engines: one fused step (pack, forward, backward, Adam) of a
 * policy's batch on one device, mirroring the native executors. train()
 * drives either through the {@link Engine} interface: the CPU engine packs
 * on the host into a cached plan and makes one native call; the CUDA engine
 * keeps the store and the weights on the device and replays a captured graph
 * per padded shape.
 */
import { native, nativeCuda, nativeModel, type AdamStepArgs, type CudaModelHandle, type CudaPlanHandle, type CudaStoreHandle, type NativeCudaApi, type NativeStoreArrays, type PackOutput, type PlanHandle, type StepResult } from '../native';
import type { BatchSpec } from '../batching';
import type { ModelConfig } from '../model/config';
import { inputsFor, type Plan, type PlanCache } from './plan';
import { ArgumentError, GnnError } from '../errors';
import type { KernelProfileCollector } from './profile';

/** What one step measured (ms) and its loss. */
export interface StepTiming {
  loss: number;
  /** Global gradient norm before clipping (NaN when the engine does not report it). */
  gradNorm: number;
  /** Policy + packing time (ms), a plan build excluded. */
  batchingMs: number;
  /** The native step (ms), a plan build of this step included (where XLA would compile). */
  updateMs: number;
}

/** The engine of a training run. */
export interface Engine {
  readonly device: 'cpu' | 'cuda';
  /** False when {@link StepTiming.gradNorm} is always NaN (not measured). */
  readonly reportsGradNorm: boolean;
  /** Runs one step of `spec` (`step` is the 0-based global step; `t0` when the policy was asked). */
  step(spec: BatchSpec, step: number, adam: AdamStepArgs, t0: bigint): Promise<StepTiming> | StepTiming;
  /** Plans built (the compile count) and their total time (ms). */
  compileStats(): { builds: number; buildMs: number };
  /** Matrix-product flops of the steps run so far. */
  flops(): number;
  /** Makes the host `params` current (the CUDA engine downloads them; the CPU engine updates them in place). */
  syncParams(): void;
  /** Native phase seconds summed over the profiled plans (CPU engine with `profile`), else empty. */
  profileSeconds(): Record<string, number>;
}

const ms = (from: bigint, to: bigint): number => Number(to - from) / 1e6;

/** Options of {@link CpuEngine}. */
export interface CpuEngineOptions {
  /** Run each native step on a worker (Promise). */
  asyncSteps?: boolean;
  /** Turn the native per-phase profile on for every plan. */
  profile?: boolean;
  /** Collects the kernel records of every step (profile). */
  kernelCollector?: KernelProfileCollector | null;
}

/** The CPU engine: host packing into the shape's cached plan, then one native call. */
export class CpuEngine implements Engine {
  readonly device = 'cpu' as const;
  readonly reportsGradNorm = true;
  private readonly api = nativeModel();
  private readonly profiled = new Set<PlanHandle>();

  constructor(
    private readonly arrays: NativeStoreArrays,
    private readonly cache: PlanCache,
    private readonly state: { params: Float32Array; grads: Float32Array; m: Float32Array; v: Float32Array },
    private readonly o: CpuEngineOptions = {},
  ) {
    this.api.resetFlops();
  }

  /** With `asyncSteps` the native step runs on a worker (a Promise); otherwise see {@link stepSync}. */
  step(spec: BatchSpec, step: number, adam: AdamStepArgs, t0: bigint): Promise<StepTiming> | StepTiming {
    if (!this.o.asyncSteps) return this.stepSync(spec, step, adam, t0);
    const p = this.pack(spec, t0);
    const { params, grads, m, v } = this.state;
    return this.api.trainStepAsync(p.plan.handle, p.inputs, spec.shape, params, grads, m, v, adam).then((res) => this.finish(spec, step, p, res));
  }

  /** One step on the calling thread. */
  stepSync(spec: BatchSpec, step: number, adam: AdamStepArgs, t0: bigint): StepTiming {
    const p = this.pack(spec, t0);
    const { params, grads, m, v } = this.state;
    return this.finish(spec, step, p, this.api.trainStep(p.plan.handle, p.inputs, spec.shape, params, grads, m, v, adam));
  }

  // The shape's plan (built and counted when new) with the batch packed into it.
  private pack(spec: BatchSpec, t0: bigint): { plan: Plan; inputs: PackOutput; compileMs: number; t0: bigint; tb: bigint; tp: bigint; t1: bigint; real: { nodes: number; edges: number; graphs: number } } {
    const tb = process.hrtime.bigint();
    const before = this.cache.stats().buildMs;
    const plan = this.cache.get(spec.shape);
    const compileMs = this.cache.stats().buildMs - before;
    const tp = process.hrtime.bigint();
    if (this.o.profile && !this.profiled.has(plan.handle)) {
      this.api.setProfile(plan.handle, true);
      this.profiled.add(plan.handle);
    }
    const inputs = inputsFor(plan, spec.shape);
    const ps = native().packGraphs(this.arrays, spec.graphIds, spec.shape, inputs);
    return { plan, inputs, compileMs, t0, tb, tp, t1: process.hrtime.bigint(), real: { nodes: ps.realNodes, edges: ps.realEdges, graphs: ps.realGraphs } };
  }

  private finish(spec: BatchSpec, step: number, p: ReturnType<CpuEngine['pack']>, res: StepResult): StepTiming {
    const t2 = process.hrtime.bigint();
    const { t0, tb, tp, t1, compileMs } = p;
    // Taken each step: the native buffer never fills.
    this.o.kernelCollector?.add(this.api.takeProfileRecords(p.plan.handle), ms(t0, t2), { step: step + 1, t0, tb, tp, t1, t2, shape: spec.shape, graphs: spec.graphIds.length, built: compileMs > 0, real: p.real });
    // A plan build is charged to the update of the step that first meets the shape (in the means, not the medians).
    return { loss: res.loss, gradNorm: res.gradNorm, batchingMs: ms(t0, t1) - compileMs, updateMs: ms(t1, t2) + compileMs };
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
    const out: Record<string, number> = {};
    for (const h of this.profiled) for (const [k, sec] of Object.entries(this.api.getProfile(h))) out[k] = (out[k] ?? 0) + sec;
    return out;
  }
}

/** The CUDA engine: device-resident store and weights, packing on the GPU, one captured graph per padded shape. */
export class CudaEngine implements Engine {
  readonly device = 'cuda' as const;
  readonly reportsGradNorm = false;
  private readonly cuda: NativeCudaApi = nativeCuda();
  private readonly store: CudaStoreHandle;
  private readonly model: CudaModelHandle;
  private readonly plans = new Map<string, CudaPlanHandle>();
  private builds = 0;
  private buildMs = 0;
  private flopCount = 0;

  /** Uploads the (already standardised) store and `params`; `params` receives the weights on {@link syncParams}. */
  constructor(arrays: NativeStoreArrays, config: ModelConfig, private readonly params: Float32Array) {
    this.store = this.cuda.cudaUploadStore(arrays, 0, 1);
    this.model = this.cuda.cudaCreateModel(config, params);
  }

  step(spec: BatchSpec, _step: number, adam: AdamStepArgs, t0: bigint): StepTiming {
    const key = `${spec.shape.nodes}/${spec.shape.edges}/${spec.shape.graphs}`;
    const tb = process.hrtime.bigint();
    let plan = this.plans.get(key);
    if (!plan) {
      plan = this.cuda.cudaCreatePlan(this.store, this.model, spec.shape);
      this.plans.set(key, plan);
    }
    const t1 = process.hrtime.bigint();
    const res = this.cuda.cudaTrainStep(plan, spec.graphIds, adam);
    // A plan's first step captures its graph: plan creation + capture is its compilation.
    if (res.steps === 1) {
      this.builds++;
      this.buildMs += ms(tb, t1) + res.captureSeconds * 1000;
    }
    this.flopCount += res.flopsPerStep;
    return { loss: res.loss, gradNorm: NaN, batchingMs: ms(t0, tb), updateMs: ms(tb, process.hrtime.bigint()) };
  }

  compileStats(): { builds: number; buildMs: number } {
    return { builds: this.builds, buildMs: this.buildMs };
  }

  flops(): number {
    return this.flopCount;
  }

  syncParams(): void {
    this.cuda.cudaDownloadParams(this.model, this.params);
  }

  profileSeconds(): Record<string, number> {
    return {};
  }
}

/**
 * The device a run uses: `cpu` (the default), `cuda`, or `auto` (CUDA when
 * this build has it and a GPU is present; PaiNN always the CPU). Throws
 * GnnError ERR_GNN_CUDA_UNSUPPORTED for PaiNN on 'cuda', ERR_GNN_UNSUPPORTED
 * for an option the CUDA engine lacks (clipNorm, resume, asyncSteps), and
 * ERR_GNN_NO_CUDA / ERR_GNN_NO_DEVICE when 'cuda' cannot run here.
 */
export function chooseDevice(config: Pick<ModelConfig, 'kind'>, o: { device?: 'cpu' | 'cuda' | 'auto'; clipNorm?: number; resumeDir?: string; asyncSteps?: boolean }): 'cpu' | 'cuda' {
  if (config.kind === 'painn') {
    if (o.device === 'cuda')
      throw new GnnError('ERR_GNN_CUDA_UNSUPPORTED', "the CUDA engine does not run PaiNN yet (its kernels have not been run on a GPU); train PaiNN with device 'cpu'");
    // PaiNN runs on the CPU only: `auto` picks the CPU for it.
    if (o.device === 'auto') return 'cpu';
  }
  const device = resolveDevice(o.device ?? 'cpu');
  if (device === 'cuda') {
    const unsupported = (what: string): never => {
      throw new GnnError('ERR_GNN_UNSUPPORTED', `device 'cuda': ${what} is not supported on the CUDA engine (use device 'cpu')`);
    };
    if (o.clipNorm) unsupported('gradient clipping');
    if (o.resumeDir) unsupported('resume');
    if (o.asyncSteps) unsupported('asyncSteps');
  }
  return device;
}

/** Resolves `auto` and checks that CUDA can run when asked for. */
export function resolveDevice(d: 'cpu' | 'cuda' | 'auto'): 'cpu' | 'cuda' {
  if (d !== 'cpu' && d !== 'cuda' && d !== 'auto') throw new ArgumentError(`device must be cpu, cuda or auto, got '${String(d)}'`);
  if (d === 'cpu') return 'cpu';
  const info = native().info();
  const usable = info.cuda.compiled && info.cuda.devices > 0;
  if (d === 'auto') return usable ? 'cuda' : 'cpu';
  if (!usable) {
    throw new GnnError(
      info.cuda.compiled ? 'ERR_GNN_NO_DEVICE' : 'ERR_GNN_NO_CUDA',
      info.cuda.compiled
        ? "device 'cuda': this build has the CUDA backend but no usable GPU was found (driver or device missing); use device 'cpu' or 'auto'"
        : "device 'cuda': this build was compiled without CUDA (no nvcc at install time, or GNN_CUDA=OFF); rebuild with GNN_CUDA=ON or use device 'cpu'",
    );
  }
  return 'cuda';
}
