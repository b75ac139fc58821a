/**
 * Training on energies and forces (issue 22 items 3 and 5; docs/forces.md,
 * "Training").
 *
 * Loss, per batch, in the network's standardised units (z = (E - mean -
 * atomrefs) / s, s the energy target's train std):
 *
 *   L = wE * mean over real graphs (z - z_t)^2
 *     + wF * mean over the real atoms' force components (F - F_t / s)^2
 *     + wS * mean over the stressed structures' Voigt components (sigma - sigma_t / s)^2
 *
 * with F = -dz/dx and sigma = (1/V) dz/d strain the native force pass's
 * output. Forces and stress in the data's units are s F and s sigma, so every
 * term is a data-unit MSE (eV^2, (eV/Å)^2, (eV/Å^3)^2 for eV data) divided by
 * the same s^2: the ratios wF / wE and wS / wE mean what they mean in the
 * peers' data-unit losses, and a loss of about 1 keeps the energy-only
 * learning rates usable. Atoms of structures without forces (NaN) weigh 0;
 * the stress term scores the 3-D periodic structures with a stress (the
 * others weigh 0).
 *
 * Gradient: one native `forceLossAndGrad` per batch (forward, force pass,
 * double backward: wE d(energy MSE)/dparams + d(force + stress loss)/dparams,
 * the force and stress terms being d(w . F + q . sigma)/dparams for w =
 * dL/dF, q = dL/dsigma held fixed: one tangent pass along the atoms' moves and
 * the cells' strains together), then one
 * `adamUpdate` on the float32 master weights. The step's precision is one
 * switch, {@link FORCE_TRAINING_DTYPE} (float64 widens the weights per step
 * and narrows the gradient for Adam).
 */
import { native, nativeModel, type AdamStepArgs, type FloatArray, type NativeStoreArrays, type PackOutput, type PackShape, type StressLossArgs } from '../native';
import type { BatchSpec } from '../batching';
import { cellVolume, type GraphStore } from '../data';
import type { ModelConfig } from '../model/config';
import { computeForces } from '../model/forces';
import { buildPlan, inputsFor, type DType, type Plan } from './plan';
import { exactShape } from './evaluate';
import { ArgumentError, GnnError } from '../errors';
import type { Engine, StepTiming } from './engine';
import type { KernelProfileCollector } from './profile';

/**
 * The precision of a force training step: float32, the native double
 * backward's fast path (float64 plans run the same program, for checks).
 */
export const FORCE_TRAINING_DTYPE: DType = 'float32';

/** Weights of the loss terms (see the module comment). */
export interface ForceLossWeights {
  /** wE: the energy MSE (per structure). */
  energy: number;
  /** wF: the MSE of the force components. */
  forces: number;
  /** wS: the stress MSE (Voigt components of the 3-D periodic structures with a stress). */
  stress: number;
}

/**
 * Defaults: schnetpack's 0.01 / 0.99 (energy per structure, like ours; its
 * `rho_tradeoff`), close to MACE's 1 : 100 (MACE's energy term is per atom, so
 * it weighs the energy less still); nequip's 1 : 1 (per-atom energy) puts far
 * more weight on energies than any per-structure loss would. The weights sum
 * to 1, so the loss keeps the energy-only scale. Stress: 0 (not trained unless
 * asked: `stress: wS` needs data with stress).
 */
export const DEFAULT_FORCE_WEIGHTS: Readonly<ForceLossWeights> = Object.freeze({ energy: 0.01, forces: 0.99, stress: 0 });

/** Fills and checks loss weights: finite, >= 0, not all 0 (ERR_GNN_ARGUMENT). */
export function resolveForceWeights(w: Partial<ForceLossWeights> = {}): ForceLossWeights {
  const out: ForceLossWeights = { ...DEFAULT_FORCE_WEIGHTS, ...Object.fromEntries(Object.entries(w).filter(([, v]) => v !== undefined)) };
  for (const k of ['energy', 'forces', 'stress'] as const)
    if (typeof out[k] !== 'number' || !Number.isFinite(out[k]) || out[k] < 0) throw new ArgumentError(`${k} loss weight must be a finite number >= 0, got ${out[k]}`);
  if (out.energy === 0 && out.forces === 0 && out.stress === 0) throw new ArgumentError('energy, force and stress loss weights are all 0: nothing to train');
  return out;
}

/** One batch's loss terms (standardised units). */
export interface ForceBatchLoss {
  /** wE * energy MSE + wF * force MSE + wS * stress MSE. */
  loss: number;
  /** The energy MSE (mean over real graphs). */
  energyMse: number;
  /** The force-component MSE (mean over the real atoms with forces, x 3). */
  forceMse: number;
  /** Real atoms with force targets in the batch. */
  forceAtoms: number;
  /** The stress-component MSE (mean over the stressed structures' 6 Voigt components; 0 without a stress term). */
  stressMse: number;
  /** Structures of the batch scored by the stress term. */
  stressGraphs: number;
}

/** The cell volume (Å^3) of graph g when it is periodic in all three directions, else 0. */
export function volumeOf(store: Pick<GraphStore, 'cells' | 'pbc'>, g: number): number {
  if (!store.cells || !store.pbc || !(store.pbc[3 * g] && store.pbc[3 * g + 1] && store.pbc[3 * g + 2])) return 0;
  return cellVolume(store.cells.subarray(9 * g, 9 * g + 9));
}

/** Structures of the store a stress term can score: 3-D periodic, with a finite stress. */
export function stressGraphCount(store: Pick<GraphStore, 'cells' | 'pbc' | 'stress' | 'numGraphs'>): number {
  if (!store.stress) return 0;
  let n = 0;
  for (let g = 0; g < store.numGraphs; g++) if (volumeOf(store, g) > 0 && Number.isFinite(store.stress[6 * g])) n++;
  return n;
}

/** A batch's stress targets, standardised (sigma / s) [graphs x 6] (NaN: none), and its volumes [graphs] (0: not 3-D periodic). */
export interface PackedStress {
  targets: Float64Array;
  volumes: Float64Array;
}

/**
 * The packed stress targets of a batch (graph k of `ids` is graph k of the
 * batch; padding graphs NaN / volume 0), times `scale` (1 / s).
 */
export function packedStressTargets(store: Pick<GraphStore, 'cells' | 'pbc' | 'stress'>, ids: Int32Array, shape: PackShape, scale: number, out?: PackedStress): PackedStress {
  const t = out && out.targets.length >= 6 * shape.graphs ? out.targets.subarray(0, 6 * shape.graphs) : new Float64Array(6 * shape.graphs);
  const v = out && out.volumes.length >= shape.graphs ? out.volumes.subarray(0, shape.graphs) : new Float64Array(shape.graphs);
  t.fill(NaN);
  v.fill(0);
  ids.forEach((g, k) => {
    v[k] = volumeOf(store, g);
    if (store.stress && v[k] > 0) for (let i = 0; i < 6; i++) t[6 * k + i] = store.stress[6 * g + i] * scale;
  });
  return { targets: t, volumes: v };
}

/**
 * The packed force targets of a batch, standardised (F / s), [shape.nodes x 3],
 * NaN for padding atoms and for atoms without forces. Graph k of `ids` packs
 * its atoms after those of graphs 0..k-1 (the packer's order).
 */
export function packedForceTargets(store: Pick<GraphStore, 'nodeOffset' | 'forces'>, ids: Int32Array, shape: PackShape, scale: number, out?: Float64Array): Float64Array {
  const t = out && out.length >= 3 * shape.nodes ? out.subarray(0, 3 * shape.nodes) : new Float64Array(3 * shape.nodes);
  t.fill(NaN);
  const f = store.forces;
  if (!f) return t;
  let at = 0;
  for (const g of ids) {
    const a0 = store.nodeOffset[g], a1 = store.nodeOffset[g + 1];
    for (let i = 3 * a0; i < 3 * a1; i++) t[at++] = f[i] * scale;
  }
  return t;
}

/** Work arrays of {@link forceBatchLossAndGrad} (reused across steps; the plan's dtype). */
export interface ForceWork {
  targets: FloatArray;
  atomWeights: FloatArray;
  stressTargets: FloatArray;
  graphWeights: FloatArray;
}

/** Work arrays for batches of up to `nodes` atoms and `graphs` graphs in `dtype`. */
export function forceWork(nodes: number, dtype: DType, graphs = 0): ForceWork {
  const F = dtype === 'float64' ? Float64Array : Float32Array;
  return { targets: new F(3 * nodes), atomWeights: new F(nodes), stressTargets: new F(6 * graphs), graphWeights: new F(graphs) };
}

/**
 * The combined loss of one packed batch and its gradient (into `grad`, the
 * plan's dtype) in one native call (`forceLossAndGrad`: forward, force pass,
 * double backward). `plan` was created with `{ forces: true, forceTraining:
 * true }`; `inputs` hold the standardised energy targets and the directions;
 * `forceTarget` is {@link packedForceTargets}' (NaN = no target: weight 0).
 * The force MSE is sum w_i |F_i - t_i|^2 with w_i = wF / (3 M) over the M
 * real atoms with targets. With `stress` ({@link packedStressTargets}) and
 * wS > 0, the stress MSE is sum_g c_g |sigma_g - t_g|^2 with c_g = wS / (6 S)
 * over the S graphs with a volume and a finite target.
 */
export function forceBatchLossAndGrad(
  plan: Plan, inputs: PackOutput, shape: PackShape, params: FloatArray, forceTarget: Float64Array,
  weights: ForceLossWeights, grad: FloatArray, work?: ForceWork, stress?: PackedStress,
): ForceBatchLoss {
  const dtype: DType = params instanceof Float64Array ? 'float64' : 'float32';
  const w = work && work.graphWeights.length >= shape.graphs ? work : forceWork(shape.nodes, dtype, shape.graphs);
  const t = w.targets.subarray(0, 3 * shape.nodes);
  const aw = w.atomWeights.subarray(0, shape.nodes);
  let atoms = 0;
  for (let i = 0; i < shape.nodes; i++) {
    const has = !Number.isNaN(forceTarget[3 * i]) && !Number.isNaN(forceTarget[3 * i + 1]) && !Number.isNaN(forceTarget[3 * i + 2]);
    aw[i] = has ? 1 : 0;
    if (has) atoms++;
    for (let a = 0; a < 3; a++) t[3 * i + a] = has ? forceTarget[3 * i + a] : 0;
  }
  const k = atoms > 0 ? weights.forces / (3 * atoms) : 0;
  for (let i = 0; i < shape.nodes; i++) aw[i] *= k;
  let stressArgs: StressLossArgs | undefined;
  let sGraphs = 0, c = 0;
  if (stress && weights.stress > 0) {
    const st = w.stressTargets.subarray(0, 6 * shape.graphs);
    const gw = w.graphWeights.subarray(0, shape.graphs);
    for (let g = 0; g < shape.graphs; g++) {
      let has = stress.volumes[g] > 0;
      for (let i = 0; has && i < 6; i++) has = Number.isFinite(stress.targets[6 * g + i]);
      gw[g] = has ? 1 : 0;
      if (has) sGraphs++;
      for (let i = 0; i < 6; i++) st[6 * g + i] = has ? stress.targets[6 * g + i] : 0;
    }
    c = sGraphs > 0 ? weights.stress / (6 * sGraphs) : 0;
    for (let g = 0; g < shape.graphs; g++) gw[g] *= c;
    if (sGraphs > 0) stressArgs = { targets: st, weights: gw, volumes: stress.volumes.subarray(0, shape.graphs) };
  }
  const r = native().forceLossAndGrad(plan.handle, inputs, shape, params, t, aw, weights.energy, grad, null, stressArgs);
  const forceMse = k > 0 ? r.forceLoss / weights.forces : 0;
  const stressMse = c > 0 ? r.stressLoss / weights.stress : 0;
  return { loss: weights.energy * r.energyLoss + r.forceLoss + r.stressLoss, energyMse: r.energyLoss, forceMse, forceAtoms: atoms, stressMse, stressGraphs: sGraphs };
}

/**
 * What force training needs of the data, checked before any step: edge
 * directions in the packer's arrays (ERR_GNN_DATA_DIRECTIONS), forces when
 * the force weight is positive and a 3-D periodic structure with a stress when
 * the stress weight is (ERR_GNN_DATA_TARGET). ForceEngine and the profile's
 * overhead measurement both check through it.
 */
export function checkForceData(store: GraphStore, arrays: NativeStoreArrays, weights: ForceLossWeights): void {
  if (!arrays.direction) throw new GnnError('ERR_GNN_DATA_DIRECTIONS', 'force training needs the edge direction vectors: build the store with directions: true (or withDirections)');
  if (!store.forces && weights.forces > 0) throw new GnnError('ERR_GNN_DATA_TARGET', 'force training: the store has no forces (build it from data with forces: extxyz forces:R:3, ASE .db, rmd17, qm9-like, aflow-like)');
  if (weights.stress > 0 && stressGraphCount(store) === 0)
    throw new GnnError(
      'ERR_GNN_DATA_TARGET',
      `stress weight ${weights.stress}: the data has no stress to train on (${store.stress ? 'no structure is 3-D periodic with a finite stress' : 'no stress column'}); stress needs periodic structures with a stress: extxyz stress/virial, ASE .db, aflow-like`,
    );
}

/** Options of {@link ForceEngine}. */
export interface ForceEngineOptions {
  weights: ForceLossWeights;
  /** The energy target's standard deviation s (0: unscaled). */
  targetStd: number;
  /** Step precision (default {@link FORCE_TRAINING_DTYPE}). */
  dtype?: DType;
  /** Collects each step's kernel records and host phases (the kernel profile: `gnnbatch profile --forces`, `train --forces --profile`). */
  kernelCollector?: KernelProfileCollector | null;
}

/**
 * The CPU engine of force training: per step, one packed batch through
 * {@link forceLossAndGrad} and one Adam update of the float32 weights. One
 * growing plan with the force pass's buffers (capacity = the largest shape so
 * far). The store's arrays must carry directions.
 */
export class ForceEngine implements Engine {
  readonly device = 'cpu' as const;
  readonly reportsGradNorm = true;
  private plan: Plan | null = null;
  private builds = 0;
  private buildMs = 0;
  private readonly dtype: DType;
  private readonly stepParams: FloatArray;
  private readonly grad: FloatArray;
  private readonly grad32: Float32Array;
  private targets = new Float64Array(0);
  private stress: PackedStress = { targets: new Float64Array(0), volumes: new Float64Array(0) };
  private work: ForceWork | null = null;
  /** The last step's loss terms. */
  last: ForceBatchLoss | null = null;

  constructor(
    private readonly store: GraphStore,
    private readonly arrays: NativeStoreArrays,
    private readonly config: ModelConfig,
    private readonly state: { params: Float32Array; m: Float32Array; v: Float32Array },
    private readonly o: ForceEngineOptions,
  ) {
    checkForceData(store, arrays, o.weights);
    this.dtype = o.dtype ?? FORCE_TRAINING_DTYPE;
    const P = state.params.length;
    this.stepParams = this.dtype === 'float64' ? new Float64Array(P) : state.params;
    this.grad32 = new Float32Array(P);
    this.grad = this.dtype === 'float64' ? new Float64Array(P) : this.grad32;
    nativeModel().resetFlops();
  }

  private planFor(shape: PackShape): Plan {
    const c = this.plan?.capacity;
    if (this.plan && c && shape.nodes <= c.nodes && shape.edges <= c.edges && shape.graphs <= c.graphs) return this.plan;
    const capacity = { nodes: Math.max(shape.nodes, c?.nodes ?? 0), edges: Math.max(shape.edges, c?.edges ?? 0), graphs: Math.max(shape.graphs, c?.graphs ?? 0) };
    this.release();
    this.plan = buildPlan(this.config, capacity, this.dtype, true, { forces: true, forceTraining: true });
    if (this.o.kernelCollector) nativeModel().setProfile(this.plan.handle, true);
    this.builds++;
    this.buildMs += this.plan.buildMs;
    this.work = forceWork(capacity.nodes, this.dtype, capacity.graphs);
    this.targets = new Float64Array(3 * capacity.nodes);
    this.stress = { targets: new Float64Array(6 * capacity.graphs), volumes: new Float64Array(capacity.graphs) };
    return this.plan;
  }

  /** Frees the plan's native buffers. */
  release(): void {
    if (this.plan) nativeModel().releasePlan(this.plan.handle);
    this.plan = null;
  }

  step(spec: BatchSpec, step: number, adam: AdamStepArgs, t0: bigint): StepTiming {
    const tb = process.hrtime.bigint();
    const before = this.buildMs;
    const plan = this.planFor(spec.shape);
    const built = this.buildMs - before;
    const tPlan = process.hrtime.bigint();
    const inputs = inputsFor(plan, spec.shape);
    const ps = native().packGraphs(this.arrays, spec.graphIds, spec.shape, inputs);
    const targetsAt = process.hrtime.bigint();
    const s = this.o.targetStd > 0 ? this.o.targetStd : 1;
    const target = packedForceTargets(this.store, spec.graphIds, spec.shape, 1 / s, this.targets);
    const stress = this.o.weights.stress > 0 ? packedStressTargets(this.store, spec.graphIds, spec.shape, 1 / s, this.stress) : undefined;
    const tp = process.hrtime.bigint();
    if (this.stepParams !== this.state.params) (this.stepParams as Float64Array).set(this.state.params);
    const r = forceBatchLossAndGrad(plan, inputs, spec.shape, this.stepParams, target, this.o.weights, this.grad, this.work ?? undefined, stress);
    const adamAt = process.hrtime.bigint();
    if (!Number.isFinite(r.loss)) {
      if (this.o.kernelCollector) nativeModel().takeProfileRecords(plan.handle); // drained: the failed step is not counted
      throw new GnnError('ERR_GNN_NONFINITE', `loss is not finite (${r.loss}; energy MSE ${r.energyMse}, force MSE ${r.forceMse}, stress MSE ${r.stressMse}): training diverged; parameters were left unchanged`);
    }
    if (this.grad !== this.grad32) this.grad32.set(this.grad);
    const gradNorm = nativeModel().adamUpdate(this.state.params, this.grad32, this.state.m, this.state.v, adam);
    this.last = r;
    const t2 = process.hrtime.bigint();
    // Taken after t2, as the CPU engine does: handing the records over is not part of the step.
    if (this.o.kernelCollector)
      this.o.kernelCollector.add(nativeModel().takeProfileRecords(plan.handle), Number(t2 - t0) / 1e6, {
        step: step + 1, t0, tb, tp: tPlan, t1: tp, t2, shape: spec.shape, graphs: spec.graphIds.length, built: built > 0,
        real: { nodes: ps.realNodes, edges: ps.realEdges, graphs: ps.realGraphs }, targetsAt, adamAt,
      });
    return { loss: r.loss, gradNorm, batchingMs: Number(tp - t0) / 1e6 - built, updateMs: Number(t2 - tp) / 1e6 + built };
  }

  compileStats(): { builds: number; buildMs: number } {
    return { builds: this.builds, buildMs: this.buildMs };
  }

  flops(): number {
    return nativeModel().flopsCount();
  }

  syncParams(): void {}

  profileSeconds(): Record<string, number> {
    return {};
  }
}

/** Energy, force and stress errors in the data's units (see {@link evaluateForces}). */
export interface ForceMetrics {
  /** Per structure (energy units). */
  energy_mae: number;
  energy_rmse: number;
  /** Per atom: the structure's error divided by its atom count. */
  energy_mae_per_atom: number;
  energy_rmse_per_atom: number;
  /** Per force component (energy units per Å). */
  force_mae: number;
  force_rmse: number;
  /** Per stress component of 3-D periodic structures with a stress (energy units per Å^3); NaN when none. */
  stress_rmse: number;
  /** Structures, atoms with forces and structures with stress that were scored. */
  structures: number;
  force_atoms: number;
  stress_structures: number;
}

/** What {@link evaluateForces} needs. */
export interface EvaluateForcesArgs {
  store: GraphStore;
  arrays: NativeStoreArrays;
  ids: Int32Array;
  config: ModelConfig;
  params: Float32Array;
  targetMean: number;
  targetStd: number;
  /** Atomref sum per graph (index = graph id), if any. */
  offsets?: Float64Array;
  /** Raw energy target per graph (index = graph id; NaN = none). */
  energy: Float64Array;
  batchSize: number;
}

/**
 * Energy MAE/RMSE (per structure and per atom), force MAE/RMSE per component
 * and stress RMSE of `ids`, in the data's units, from the native force pass
 * (float32, exact batches of up to `batchSize` graphs, one growing plan).
 */
export function evaluateForces(a: EvaluateForcesArgs): ForceMetrics {
  const { store } = a;
  let eAe = 0, eSe = 0, pAe = 0, pSe = 0, nE = 0, fAe = 0, fSe = 0, nF = 0, sSe = 0, nS = 0;
  let plan: Plan | null = null;
  const B = Math.max(1, a.batchSize);
  try {
    for (let start = 0; start < a.ids.length; start += B) {
      const ids = a.ids.subarray(start, Math.min(a.ids.length, start + B));
      const shape = exactShape(store, ids);
      const c: PackShape | undefined = plan?.capacity;
      if (!plan || !c || shape.nodes > c.nodes || shape.edges > c.edges || shape.graphs > c.graphs) {
        if (plan) nativeModel().releasePlan(plan.handle);
        const capacity: PackShape = { nodes: Math.max(shape.nodes, c?.nodes ?? 0), edges: Math.max(shape.edges, c?.edges ?? 0), graphs: Math.max(shape.graphs, c?.graphs ?? 0) };
        plan = buildPlan(a.config, capacity, 'float32', true, { forces: true });
      }
      const inputs = inputsFor(plan, shape);
      native().packGraphs(a.arrays, ids, shape, inputs);
      const vol = store.stress ? Float64Array.from(ids, (g) => volumeOf(store, g) || 1) : undefined;
      const r = computeForces(plan.handle, inputs, shape, a.params, { targetMean: a.targetMean, targetStd: a.targetStd, offsets: a.offsets ? Array.from(ids, (g) => (a.offsets as Float64Array)[g]) : undefined }, vol);
      let node = 0;
      ids.forEach((g, k) => {
        const atoms = store.nodeOffset[g + 1] - store.nodeOffset[g];
        const y = a.energy[g];
        if (Number.isFinite(y)) {
          const d = r.energy[k] - y;
          eAe += Math.abs(d); eSe += d * d; pAe += Math.abs(d) / atoms; pSe += (d / atoms) ** 2; nE++;
        }
        if (store.forces && !Number.isNaN(store.forces[3 * store.nodeOffset[g]]))
          for (let i = 0; i < 3 * atoms; i++) {
            const d = r.forces[3 * node + i] - store.forces[3 * store.nodeOffset[g] + i];
            fAe += Math.abs(d); fSe += d * d; nF++;
          }
        if (store.stress && r.stress && volumeOf(store, g) > 0 && !Number.isNaN(store.stress[6 * g]))
          for (let i = 0; i < 6; i++) {
            const d = r.stress[6 * k + i] - store.stress[6 * g + i];
            sSe += d * d; nS++;
          }
        node += atoms;
      });
    }
  } finally {
    if (plan) nativeModel().releasePlan(plan.handle);
  }
  const mean = (x: number, n: number) => (n > 0 ? x / n : NaN);
  return {
    energy_mae: mean(eAe, nE), energy_rmse: Math.sqrt(mean(eSe, nE)),
    energy_mae_per_atom: mean(pAe, nE), energy_rmse_per_atom: Math.sqrt(mean(pSe, nE)),
    force_mae: mean(fAe, nF), force_rmse: Math.sqrt(mean(fSe, nF)),
    stress_rmse: Math.sqrt(mean(sSe, nS)),
    structures: nE, force_atoms: nF / 3, stress_structures: nS / 6,
  };
}

/** What a force training run reports (train results and checkpoints). */
export interface ForceTrainingSummary {
  /** The loss weights. */
  weights: ForceLossWeights;
  /** The step's precision. */
  dtype: DType;
  /** Validation and test metrics (null when not evaluated). */
  val: ForceMetrics | null;
  test: ForceMetrics | null;
}

/**
 * Refuses what force training does not run with: gradient accumulation or
 * MPI, the CUDA engine, asyncSteps, all ERR_GNN_UNSUPPORTED. (Every model
 * trains on forces: MPEU, SchNet and PaiNN have the native double backward.)
 */
export function forceTrainingCheck(o: { device?: string; profile?: boolean; trace?: boolean; asyncSteps?: boolean; model?: { kind?: string } }, accumulating: boolean): void {
  const no = (what: string): never => {
    throw new GnnError('ERR_GNN_UNSUPPORTED', `training on forces: ${what} is not supported yet (docs/forces.md, "Training")`);
  };
  if (accumulating) no('gradient accumulation (microBatches > 1) or distributed training');
  if (o.device === 'cuda') no("device 'cuda' (the force pass runs on the CPU executor)");
  if (o.asyncSteps) no('asyncSteps');
}
