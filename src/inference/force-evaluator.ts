/**
 * Energies, forces and stress of new structures from a trained model, in the
 * data's units: the part of inference that `loadModel().predict(..., {
 * properties })` and the i-PI driver share.
 *
 * Contract: structures are built into graphs with the checkpoint's graph rule
 * and with edge directions (the force pass reads them), packed exactly
 * (unpadded) into one plan created with the force pass's buffers, which grows
 * by capacity and is otherwise reused (a driver's steps allocate no native
 * memory). Forces are F = -dE/dx per atom (xyz), stress is ASE's (1/V)
 * dE/dstrain in Voigt order xx yy zz yz xz xy, computed only for structures
 * periodic along all three cell vectors (null for the others).
 */
import { cellVolume, packerArrays, type Structure } from '../data';
import { native, nativeModel, type PackShape } from '../native';
import type { ModelConfig } from '../model/config';
import { computeForces } from '../model/forces';
import { exactShape } from '../train/evaluate';
import { buildPlan, inputsFor, planBytesModel, type Plan, type PlanBytesModel } from '../train/plan';
import { ArgumentError } from '../errors';
import type { OpenedModel } from './open-model';

/** What a prediction can return. */
export type PropertyName = 'energy' | 'forces' | 'stress';

/** Predicted properties of a list of structures, in order. */
export interface PredictedProperties {
  /** Energy (the model's target) per structure, in the target's units. */
  energy: Float64Array;
  /** Per structure: F = -dE/dx, [atoms x 3] xyz per atom, in target units per Å. Present when asked for. */
  forces?: Float64Array[];
  /** Per structure: stress [6] (Voigt xx yy zz yz xz xy, target units per Å^3), or null when the structure is not periodic in 3 dimensions. Present when asked for. */
  stress?: (Float64Array | null)[];
}

/** What the evaluator needs of a checkpoint. */
export type ForceModel = Pick<OpenedModel, 'config' | 'params' | 'targetMean' | 'targetStd' | 'requestStore' | 'offsets'>;

/** Checks a `properties` list: known names, no duplicates, not empty. */
export function propertyList(properties: readonly string[]): PropertyName[] {
  const known: readonly string[] = ['energy', 'forces', 'stress'];
  if (!Array.isArray(properties) || properties.length === 0) throw new ArgumentError("properties must be a non-empty list of 'energy', 'forces', 'stress'");
  const seen = new Set<string>();
  for (const p of properties) {
    if (typeof p !== 'string' || !known.includes(p)) throw new ArgumentError(`properties: unknown property ${JSON.stringify(p)} (known: energy, forces, stress)`);
    if (seen.has(p)) throw new ArgumentError(`properties: ${p} is named twice`);
    seen.add(p);
  }
  return [...seen] as PropertyName[];
}

/** The cell volume (Å^3) of a structure periodic along all three cell vectors, else null (no stress for it). */
export function periodicVolume(s: Structure): number | null {
  if (!s.cell || !s.pbc.every((p) => p)) return null;
  const v = cellVolume(s.cell);
  return v > 0 ? v : null;
}

/**
 * Bytes of a force-pass plan (created with `{ forces: true }`, float32, inputs
 * with directions) as base + perNode N + perEdge E + perGraph G, measured once
 * per configuration from four small probe plans, as `planBytesModel` does for
 * energy plans: the force pass adds (K + 1) scalars per edge (docs/forces.md).
 */
export function forcePlanBytesModel(config: ModelConfig): PlanBytesModel {
  return planBytesModel(config, 'float32', true, { forces: true });
}

/** Estimated bytes of a force-pass plan of this capacity ({@link forcePlanBytesModel}). */
export function estimateForcePlanBytes(config: ModelConfig, shape: PackShape): number {
  const m = forcePlanBytesModel(config);
  return Math.ceil(m.base + m.perNode * shape.nodes + m.perEdge * shape.edges + m.perGraph * shape.graphs);
}

/** Builds a force-pass plan of exactly `capacity` (native buffers with `{ forces: true }`, inputs with directions). */
export function buildForcePlan(config: ModelConfig, capacity: PackShape): Plan {
  return buildPlan(config, capacity, 'float32', true, { forces: true });
}

/** Energies, forces and stress with one growing force-pass plan (see the module comment). Not for concurrent use. */
export class ForceEvaluator {
  private plan: Plan | null = null;

  constructor(private readonly model: ForceModel) {}

  /** Frees the plan's native buffers now. */
  release(): void {
    if (this.plan) nativeModel().releasePlan(this.plan.handle);
    this.plan = null;
  }

  private planFor(shape: PackShape): Plan {
    const c = this.plan?.capacity;
    if (this.plan && c && shape.nodes <= c.nodes && shape.edges <= c.edges && shape.graphs <= c.graphs) return this.plan;
    // Grow by capacity, with headroom for edges (cutoff graphs change as atoms move).
    const capacity = {
      nodes: Math.max(shape.nodes, c?.nodes ?? 0),
      edges: Math.max(Math.ceil(shape.edges * 1.25) + 16, c?.edges ?? 0),
      graphs: Math.max(shape.graphs, c?.graphs ?? 0),
    };
    this.release();
    this.plan = buildForcePlan(this.model.config, capacity);
    return this.plan;
  }

  /** The properties asked for, for `structures` in batches of `batchSize` (default 64). */
  compute(structures: readonly Structure[], properties: readonly PropertyName[], batchSize = 64): PredictedProperties {
    const wantForces = properties.includes('forces');
    const wantStress = properties.includes('stress');
    const out: PredictedProperties = { energy: new Float64Array(structures.length) };
    if (wantForces) out.forces = [];
    if (wantStress) out.stress = [];
    if (structures.length === 0) return out;
    const store = this.model.requestStore(structures, { directions: true });
    const arrays = packerArrays(store, new Float64Array(store.numGraphs));
    const offsets = this.model.offsets(store) ?? undefined;
    const volumes = structures.map(periodicVolume);
    const B = Math.max(1, batchSize);
    for (let start = 0; start < structures.length; start += B) {
      const ids = Int32Array.from({ length: Math.min(B, structures.length - start) }, (_, k) => start + k);
      const shape = exactShape(store, ids);
      const plan = this.planFor(shape);
      const inputs = inputsFor(plan, shape);
      native().packGraphs(arrays, ids, shape, inputs);
      const vol = wantStress ? Float64Array.from(ids, (g) => volumes[g] ?? 1) : undefined;
      const r = computeForces(plan.handle, inputs, shape, this.model.params, {
        targetMean: this.model.targetMean, targetStd: this.model.targetStd, offsets: offsets ? Array.from(ids, (g) => offsets[g]) : undefined,
      }, vol);
      let node = 0;
      ids.forEach((g, k) => {
        out.energy[g] = r.energy[k];
        const atoms = store.nodeOffset[g + 1] - store.nodeOffset[g];
        if (out.forces) out.forces.push(r.forces.slice(3 * node, 3 * (node + atoms)));
        if (out.stress) out.stress.push(volumes[g] !== null && r.stress ? r.stress.slice(6 * k, 6 * k + 6) : null);
        node += atoms;
      });
    }
    return out;
  }
}
