/**
 * Loads the native addon once and exposes its typed surface.
 *
 * Which build is loaded: `GNNBATCH_ADDON=cmake` (default: `native-build/Release`
 * from cmake-js), `GNNBATCH_ADDON=gyp` (`build/Release` from node-gyp), or a path
 * to a `.node` file.
 */
import { loadAddon, locateAddon, sourceBuildPath, type AddonLocation } from './native-loader';

export { cpuLevel, cpuFlags, DEFAULT_SPIN_COUNT, type CpuLevel, type AddonLocation, type AddonSource } from './native-loader';

/** Float arrays the kernels accept; the element type selects float32 or float64. */
export type FloatArray = Float32Array | Float64Array;

/** The columnar arrays of a graph store, as the native packer reads them. */
export interface NativeStoreArrays {
  /** [graphs+1] node offset of each graph. */
  nodeOffset: Int32Array;
  /** [graphs+1] edge offset of each graph. */
  edgeOffset: Int32Array;
  /** [nodes] atomic number of each node. */
  atomicNumber: Uint8Array;
  /** [edges] graph-local sender of each edge. */
  senders: Int32Array;
  /** [edges] graph-local receiver of each edge; sorted within each graph. */
  receivers: Int32Array;
  /** [edges] edge length (Å, periodic image shift included). */
  distance: Float32Array;
  /** [edges] graph-local edge indices of each graph ordered by sender (stable). */
  senderPerm: Int32Array;
  /** [graphs] the (standardised) training target of each graph. */
  target: Float64Array;
  /**
   * [3 x edges] optional unit edge vectors (xyz per edge, sender image minus
   * receiver over the distance; 0 at distance 0). Needed only when the packer
   * is asked for `out.direction` (PaiNN); any other length is ERR_GNN_LENGTH.
   */
  direction?: Float32Array;
}

/** Many structures in one call to {@link NeighbourAddon.buildNeighbours}. */
export interface NativeStructureBatch {
  /** [structures+1] atom offset of each structure. */
  atomOffset: Int32Array;
  /** [atoms x 3] Cartesian positions in Å. */
  positions: Float64Array;
  /** [structures x 9] lattice vectors as rows (ignored where no pbc flag is set). */
  cells: Float64Array;
  /** [structures x 3] 1 where the axis is periodic. */
  pbc: Uint8Array;
}

/** A graph construction rule as the native layer takes it. */
export type NativeGraphRule = ({ kind: 'fc' } | { kind: 'cutoff'; cutoff: number } | { kind: 'knn'; k: number }) & {
  /** Ceiling on the edges of one structure (default 2^24); more is ERR_GNN_TOO_MANY_EDGES, raised before allocating. */
  maxEdges?: number;
};

/** The edges of many graphs: receiver-sorted, graph-local, with the sender permutation. */
export interface NativeNeighbours {
  /** [structures+1] edge offset of each graph. */
  edgeOffset: Int32Array;
  senders: Int32Array;
  receivers: Int32Array;
  /** [edges] Å, periodic image shift included. */
  distance: Float32Array;
  senderPerm: Int32Array;
  /**
   * [3 x edges] unit vectors u = (x_sender + image shift - x_receiver) / distance,
   * xyz per edge (computed in float64, rounded to float32; 0 when the distance
   * is 0). Only with `{ directions: true }`.
   */
  direction?: Float32Array;
}

/** Options of {@link NeighbourAddon.buildNeighbours}. */
export interface NativeNeighbourOptions {
  /** Also return the unit edge vectors `direction` ([3 x edges] float32; default false). */
  directions?: boolean;
}

/** Graph construction entry points (native/addon/neighbours_binding.cpp). */
export interface NeighbourAddon {
  /**
   * Builds the edges of every structure (parallel over structures, deterministic).
   * Throws RangeError/TypeError with a `code` on invalid input.
   */
  buildNeighbours(batch: NativeStructureBatch, rule: NativeGraphRule, options?: NativeNeighbourOptions): NativeNeighbours;
  /**
   * The same on a worker thread (the event loop stays free). The worker reads
   * private copies of the batch arrays, so the caller may reuse, transfer or
   * detach them at once. Argument errors throw synchronously.
   */
  buildNeighboursAsync(batch: NativeStructureBatch, rule: NativeGraphRule, options?: NativeNeighbourOptions): Promise<NativeNeighbours>;
}

/** A padded batch shape: totals including the padding graph. */
export interface PackShape {
  nodes: number;
  edges: number;
  graphs: number;
}

/** Caller-owned output buffers of {@link NativeAddon.packGraphs}. */
export interface PackOutput<F extends FloatArray = FloatArray> {
  atomicNumber: Int32Array;
  nodeGraph: Int32Array;
  senders: Int32Array;
  receivers: Int32Array;
  distance: F;
  nNode: Int32Array;
  nEdge: Int32Array;
  target: F;
  mask: F;
  recvPtr: Int32Array;
  sendPerm: Int32Array;
  sendPtr: Int32Array;
  /**
   * [3 x edges] optional: the packed graphs' unit edge vectors (padding edges
   * exactly 0), written when present; the store must then have `direction`
   * (else ERR_GNN_DATA_DIRECTIONS).
   */
  direction?: F;
}

/** Totals of the real (non-padding) part of a packed batch. */
export interface PackStats {
  realNodes: number;
  realEdges: number;
  realGraphs: number;
}

/** What the loaded addon was built with and can use. */
export interface NativeInfo {
  /**
   * Where the addon's general kernels (packing, segments, models, Adam) run:
   * always the CPU. The separate CUDA engine (`cudaTrainStep` and the other
   * cuda* entry points) is described by `cuda`.
   */
  backend: 'cpu';
  cuda: { compiled: boolean; devices: number };
  threads: number;
  openmp: boolean;
  build: string;
  simd: string;
  /** Instruction-set level the binary was compiled for ('native' = the building machine's). */
  isa: 'native' | 'x86-64-v2' | 'x86-64-v3' | 'x86-64-v4' | 'none';
  /** CPU features the compiler was allowed to use (/proc/cpuinfo names). */
  features: string[];
}

/** Build information, threads and the memory baseline (native/addon/addon.cpp). */
export interface CoreAddon {
  info(): NativeInfo;
  setThreads(n: number): void;
  getThreads(): number;
  /** Median seconds of one memcpy of src into dst (the benchmarks' bandwidth baseline). */
  memcpyBench(dst: Uint8Array, src: Uint8Array, reps: number): number;
}

/** Packing and store validation (native/addon/pack_binding.cpp). */
export interface PackAddon {
  packGraphs(store: NativeStoreArrays, ids: Int32Array, shape: PackShape, out: PackOutput): PackStats;
  /**
   * Median seconds of copying exactly the store slices packGraphs reads into
   * `out` (no shifting, row pointers or checks): the pack benchmark's baseline.
   */
  copyGraphSlicesBench(store: NativeStoreArrays, ids: Int32Array, shape: PackShape, out: PackOutput, reps: number): number;
  /** O(E) full check of a store (ranges, receiver order, sender permutation); throws ERR_GNN_STORE-style RangeErrors. */
  validateStore(store: NativeStoreArrays): void;
}

/** Segment reductions and gathers (native/addon/segment_binding.cpp). */
export interface SegmentAddon {
  segmentSumCsr(src: FloatArray, rowPtr: Int32Array, width: number, out: FloatArray): void;
  segmentMeanCsr(src: FloatArray, rowPtr: Int32Array, width: number, out: FloatArray): void;
  segmentSum(src: FloatArray, segmentIds: Int32Array, numSegments: number, width: number, out: FloatArray): void;
  gatherRows(src: FloatArray, indices: Int32Array, width: number, out: FloatArray): void;
  segmentCsrBackward(gradOut: FloatArray, rowPtr: Int32Array, width: number, mean: boolean, gradSrc: FloatArray): void;
  gatherRowsBackward(gradOut: FloatArray, perm: Int32Array | null, rowPtr: Int32Array, width: number, gradSrc: FloatArray): void;
}

/**
 * The raw addon surface: exactly the exports of the `.node` file, one member
 * per export and nothing else (no index signature, so a misspelt call does not
 * compile; test/types/native-surface.test.ts keeps the type, the list and the
 * binary in step). It is the union of the per-binding parts,
 * which are views of the same object. Idiomatic wrappers live above it.
 */
export interface NativeAddon extends CoreAddon, NeighbourAddon, PackAddon, SegmentAddon, NativeModelApi, NativeCudaApi, ForcesAddon {}

let cached: NativeAddon | undefined;
let cachedLocation: AddonLocation | undefined;

/** The `.node` file {@link native} loads (see `src/native-loader.ts` for the rule). */
export function addonPath(): string {
  return cachedLocation?.file ?? locateAddon()?.file ?? sourceBuildPath();
}

/** Where the loaded addon came from (source build or prebuilt binary, and its CPU level). */
export function addonLocation(): AddonLocation {
  native();
  return cachedLocation as AddonLocation;
}

/**
 * The native addon, loaded on first use. Throws an Error with code
 * `ERR_GNN_ADDON_MISSING`, `ERR_GNN_ADDON_LOAD` or `ERR_GNN_ADDON_CPU` and the
 * possible solutions when no binary for this machine can be loaded.
 */
export function native(): NativeAddon {
  if (cached) return cached;
  const { addon, location } = loadAddon<NativeAddon>();
  cached = addon;
  cachedLocation = location;
  return cached;
}

/** Build and backend information of the loaded addon. */
export function nativeInfo(): NativeInfo {
  return native().info();
}

/** Sets the number of threads every native kernel uses. */
export function setThreads(n: number): void {
  native().setThreads(n);
}

/** The number of threads native kernels use. */
export function getThreads(): number {
  return native().getThreads();
}

/** Options of one fused Adam update (bias corrections computed by the caller). */
export interface AdamStepArgs {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** 1 - beta1^t */
  bc1: number;
  /** 1 - beta2^t */
  bc2: number;
  /** Global-norm clipping threshold; 0 or absent disables clipping. */
  clipNorm?: number;
  /** Decoupled weight decay (AdamW); 0 by default. */
  weightDecay?: number;
}

/** Result of one native training step. */
export interface StepResult {
  /** Masked MSE loss on standardised targets, before the update. */
  loss: number;
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  /** Native wall time of forward + backward + Adam, in seconds. */
  seconds: number;
  /** Matrix-product flops of this step (counted by this call alone). */
  flops: number;
}

/** Kernel calls of a profiled plan, as columns (see native/core/models/model.h KernelRecord). */
export interface KernelRecords {
  count: number;
  /** Calls not recorded because the record buffer was full. */
  dropped: number;
  site: Int32Array;
  pass: Int32Array;
  m: Float64Array;
  n: Float64Array;
  k: Float64Array;
  rows: Float64Array;
  realRows: Float64Array;
  t0Ns: Float64Array;
  durNs: Float64Array;
  flops: Float64Array;
  bytes: Float64Array;
}

/**
 * A model configuration as the native layer reads it (native/addon/model_args.cpp):
 * `kind` is required, every other field falls back to the study's default and
 * is range-checked natively (ERR_GNN_CONFIG). `ModelConfig` (src/model/config.ts)
 * is one; `resolveModelConfig` fills and checks it in TypeScript first.
 */
export interface NativeModelConfig {
  kind: 'mpeu' | 'schnet' | 'painn';
  latent?: number;
  passes?: number;
  basis?: number;
  rbfSpacing?: number;
  rbfGamma?: number;
  cutoff?: number;
  sharedFilters?: boolean;
  numClasses?: number;
  readoutHidden?: number;
  aggregation?: 'mean' | 'sum';
  readout?: 'mean' | 'sum';
}

/** Opaque native plan handle (type-tagged External). */
export type PlanHandle = { readonly __gnnPlan: unique symbol };

/** Native model/plan/step entry points (native/addon/model_binding.cpp). */
export interface NativeModelApi {
  modelLayout(config: NativeModelConfig): { total: number; entries: { name: string; offset: number; rows: number; cols: number }[] };
  /**
   * `options.forces`: also allocate the force pass's buffers ({@link ForcesAddon.forcesStep}; every model).
   * `options.forceTraining` (implies forces): and the double backward's ({@link ForcesAddon.forceGrad},
   * {@link ForcesAddon.forceLossAndGrad}; about as many bytes again as the energy plan).
   */
  createPlan(config: NativeModelConfig, capacity: PackShape, dtype?: 'float32' | 'float64', options?: { forces?: boolean; forceTraining?: boolean }): PlanHandle;
  planInfo(plan: PlanHandle): { bytes: number; dtype: 'float32' | 'float64'; capacity: PackShape; params: number };
  /**
   * Frees the plan's native buffers now instead of at garbage collection (their
   * bytes, reported to V8 by createPlan, are un-reported). Idempotent;
   * ERR_GNN_BUSY while an async call runs on the plan; any later use of the
   * handle is ERR_GNN_ARGUMENT.
   */
  releasePlan(plan: PlanHandle): void;
  trainStep(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, grads: FloatArray, m: FloatArray, v: FloatArray, adam: AdamStepArgs): StepResult;
  /**
   * trainStep on a worker. Inputs are copied at the call; params, grads, m and v
   * are written back when the step ends, or not at all (rejecting with
   * ERR_GNN_DETACHED) if one of them was detached or transferred meanwhile.
   */
  trainStepAsync(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, grads: FloatArray, m: FloatArray, v: FloatArray, adam: AdamStepArgs): Promise<StepResult>;
  lossAndGrad(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, grads: FloatArray): number;
  predict(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, predOut: FloatArray): number;
  /** predict on a worker: inputs and params copied at the call, predOut written when it ends (ERR_GNN_DETACHED if detached meanwhile). */
  predictAsync(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, predOut: FloatArray): Promise<number>;
  setProfile(plan: PlanHandle, on: boolean): void;
  getProfile(plan: PlanHandle): Record<string, number>;
  /**
   * The kernel calls recorded while profiling since the last take (then
   * cleared): one entry per call in each column; `site` indexes kernelSites().
   * Times are steady_clock nanoseconds (on Linux the clock of process.hrtime).
   */
  takeProfileRecords(plan: PlanHandle): KernelRecords;
  /** The kernel call sites of the per-kernel profile, in site order. */
  kernelSites(): { name: string; rows: 'node' | 'edge' | 'graph' | 'param' | 'none'; gemm: boolean }[];
  /** One fused Adam step (clipping included); returns the gradient's global L2 norm before clipping. */
  adamUpdate(params: FloatArray, grads: FloatArray, m: FloatArray, v: FloatArray, adam: AdamStepArgs): number;
  /**
   * Matrix-product flops counted for the calling thread (each worker_thread has
   * its own counter; an async call's flops are added when its promise settles).
   */
  flopsCount(): number;
  /** Resets the calling thread's flop counter. */
  resetFlops(): void;
  gemmBench(M: number, N: number, K: number, reps: number): number;
  /** Median seconds of one parallel float copy of `mib` MiB (2*mib MiB moved) at the native thread count. */
  streamBench(mib: number, reps: number): number;
}

/** The stress term of {@link ForcesAddon.forceLossAndGrad} (arrays of the plan's dtype, volumes Float64Array). */
export interface StressLossArgs {
  /** [graphs x 6] target stress (Voigt xx yy zz yz xz xy), the model's units per Å^3; finite where the weight is > 0. */
  targets: FloatArray;
  /** [graphs] weight of each graph's squared stress error (0: not scored). */
  weights: FloatArray;
  /** [graphs] cell volumes (Å^3). */
  volumes: Float64Array;
  /** [graphs x 6] receives the predicted stress (optional). */
  out?: FloatArray;
}

/** The force pass (native/addon/forces_binding.cpp; docs/forces.md). */
export interface ForcesAddon {
  /**
   * Forward + force pass on a plan created with `{ forces: true }` and a batch
   * packed with `direction`. Writes per-graph energies (the model's
   * standardised units) into `energyOut` [graphs], F = -dE/dx into `forcesOut`
   * [nodes x 3] (xyz per atom; padding atoms 0), and with `volumes` [graphs]
   * (Å^3, > 0 for every real graph) the stress (1/V) dE/dstrain into
   * `stressOut` [graphs x 6] (Voigt xx yy zz yz xz xy; ASE's convention).
   * Returns the forward's masked MSE loss. Arrays are of the plan's dtype
   * (volumes: Float64Array). ERR_GNN_FORCES_PLAN, ERR_GNN_DATA_DIRECTIONS.
   */
  forcesStep(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, energyOut: FloatArray, forcesOut: FloatArray, stressOut?: FloatArray, volumes?: Float64Array): number;
  /**
   * The double backward of the force pass (docs/forces.md), on a plan created
   * with `{ forces: true, forceTraining: true }` (float32 or float64; arrays of
   * the plan's dtype): for per-atom weights `forceWeights` [nodes x 3] (dL/dF
   * of a force loss) and, when given, per-graph `stressWeights` [graphs x 6]
   * (dL/dsigma, Voigt xx yy zz yz xz xy) with the cells' `volumes` [graphs]
   * (Float64Array, Å^3, > 0 where a real graph's stress weights are not all
   * 0), writes d(w . F + s . sigma)/d params into `gradOut` and, when given,
   * d(sum of the real graphs' energies)/d params into `energyGradOut`.
   * Returns w . F + s . sigma over the real graphs (sigma = (1/V) dE/d
   * strain). ERR_GNN_FORCES_PLAN (plan without forceTraining),
   * ERR_GNN_DATA_DIRECTIONS, ERR_GNN_UNSUPPORTED (PaiNN), ERR_GNN_RANGE (a
   * volume), ERR_GNN_ARGUMENT (stressWeights without volumes).
   */
  forceGrad(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, forceWeights: FloatArray, gradOut: FloatArray, energyGradOut?: FloatArray | null, stressWeights?: FloatArray, volumes?: Float64Array): number;
  /**
   * Everything a training step on energies, forces and stress needs, in one
   * native call (forward, force pass, force and stress losses, one double
   * backward along the force weights and the strains together; no optimiser
   * step), on a plan created with `{ forces: true, forceTraining: true }`, in
   * the model's standardised units: `gradOut` = energyWeight d(energyLoss)/d
   * params + d(forceLoss + stressLoss)/d params, where energyLoss is
   * lossAndGrad's masked MSE, forceLoss = sum over the real atoms i of
   * atomWeights[i] |F_i - targetForces_i|^2 (`targetForces` [nodes x 3],
   * `atomWeights` [nodes]; padding atoms are ignored) and, with `stress`,
   * stressLoss = sum over the real graphs g of stress.weights[g] |sigma_g -
   * stress.targets_g|^2 over the 6 Voigt components (sigma = (1/V) dE/d
   * strain; `volumes` > 0 where the weight is > 0; a graph without stress
   * takes weight 0 and any finite target). Writes the forces to `forcesOut`
   * [nodes x 3] and sigma to `stress.out` [graphs x 6] when given. Arrays of
   * the plan's dtype (volumes: Float64Array).
   */
  forceLossAndGrad(
    plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, targetForces: FloatArray, atomWeights: FloatArray, energyWeight: number, gradOut: FloatArray,
    forcesOut?: FloatArray | null, stress?: StressLossArgs,
  ): { energyLoss: number; forceLoss: number; stressLoss: number };
}

/** The native model API (the same addon object, seen through its model part). */
export function nativeModel(): NativeModelApi {
  return native();
}

/** Opaque handle of a device-resident graph store (type-tagged External). */
export type CudaStoreHandle = { readonly __gnnCudaStore: unique symbol };
/** Opaque handle of a device-resident model: params, grads, Adam m and v. */
export type CudaModelHandle = { readonly __gnnCudaModel: unique symbol };
/** Opaque handle of a CUDA plan (one padded shape; its step is a captured CUDA graph). */
export type CudaPlanHandle = { readonly __gnnCudaPlan: unique symbol };

/** Counters of a CUDA plan. */
export interface CudaPlanInfo {
  /** CUDA graph captures (the compile-equivalent; 1 per plan). */
  captures: number;
  /** Total capture + instantiation time, seconds. */
  captureSeconds: number;
  steps: number;
  /** Device memory owned by the plan. */
  bytes: number;
  /** Matrix-product flops of one training step. */
  flopsPerStep: number;
  /** Lower bound of device-memory bytes moved per step. */
  bytesPerStep: number;
  /** Device time of the last step's ids upload + pack (ms; plans created with timing). */
  lastBatchMs: number;
  /** Device time of the last step's forward + backward + Adam (ms; plans created with timing). */
  lastStepMs: number;
}

/** Result of {@link NativeCudaApi.cudaTrainStep}. */
export interface CudaStepResult extends CudaPlanInfo {
  /** Masked MSE loss on standardised targets, before the update. */
  loss: number;
  /** Host wall time of the call (ids upload, graph replays, loss copy), seconds. */
  seconds: number;
}

/**
 * The CUDA engine. Every call throws `ERR_GNN_NO_CUDA` in a build without CUDA
 * and `ERR_GNN_NO_DEVICE` where no GPU is usable (check `info().cuda.devices`).
 * Per step only the graph ids go to the device and only the loss comes back.
 */
export interface NativeCudaApi {
  /** Validates the store fully and uploads it once; targets become (t - mean) / scale. */
  cudaUploadStore(store: NativeStoreArrays, targetMean?: number, targetScale?: number): CudaStoreHandle;
  /** Copies float32 params (layout of `modelLayout(config)`) to the device; Adam state starts at zero. */
  cudaCreateModel(config: NativeModelConfig, params: Float32Array): CudaModelHandle;
  /** Allocates every device buffer of one padded shape; `timing` records CUDA events per step. */
  cudaCreatePlan(store: CudaStoreHandle, model: CudaModelHandle, shape: PackShape, timing?: boolean): CudaPlanHandle;
  /** Packs `ids` on the device into the plan's shape, runs forward + backward + Adam (captured on first use). */
  cudaTrainStep(plan: CudaPlanHandle, ids: Int32Array, adam: AdamStepArgs): CudaStepResult;
  /** Forward only; per-graph predictions (standardised) into predOut (>= shape.graphs); returns the loss. */
  cudaPredict(plan: CudaPlanHandle, ids: Int32Array, predOut?: Float32Array): number;
  /** Copies the device params into `out` (length = layout total). */
  cudaDownloadParams(model: CudaModelHandle, out: Float32Array): void;
  cudaPlanInfo(plan: CudaPlanHandle): CudaPlanInfo;
}

/** The native CUDA API (the same addon object, seen through its CUDA part). */
export function nativeCuda(): NativeCudaApi {
  return native();
}
