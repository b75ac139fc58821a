/**
 * Energies, forces and stress of a packed batch in the data's units
 * (docs/forces.md). The native force pass (`forcesStep`) differentiates the
 * network's output, which is in standardised units: energy = z * s + mean +
 * atomref sum, with s the residual target's standard deviation (1 when it is
 * 0, as in training). The mean and the atomrefs are constants per structure
 * (one per element for atomrefs), so they add nothing to forces or stress;
 * forces and stress scale by s.
 */
import { native, type FloatArray, type PackOutput, type PackShape, type PlanHandle } from '../native';

/** How the network's output maps to the data's energy units. */
export interface EnergyUnits {
  /** Mean of the (residual) training target. */
  targetMean: number;
  /** Standard deviation of the (residual) training target (0: unscaled). */
  targetStd: number;
  /** Atomref sum of each graph of the batch, in batch order (absent: none). */
  offsets?: ArrayLike<number>;
}

/** Energies (per graph), forces ([nodes x 3], xyz per atom) and stress ([graphs x 6], Voigt; eV/Å^3 for eV data). */
export interface ForceResult {
  energy: Float64Array;
  forces: Float64Array;
  /** Only when volumes were given. */
  stress?: Float64Array;
}

/**
 * A standardised model output z in the target's units: z std + mean + the
 * graph's atom-reference sum (std 0: z + mean). Every prediction path converts through this one
 * expression (same operations, same order), so their results agree bit for bit.
 */
export function toTargetUnits(z: number, mean: number, std: number, offset = 0): number {
  // std 0 (a constant target) scales by 1, as training standardised it (and as energyScale does).
  return z * (std > 0 ? std : 1) + mean + offset;
}

/** The factor from standardised to data units: the target's std, or 1 where it is 0. */
export function energyScale(u: EnergyUnits): number {
  return u.targetStd > 0 ? u.targetStd : 1;
}

/**
 * Runs the native force pass on `plan` (created with `{ forces: true }`) and
 * returns the real graphs' energies, the real atoms' forces and, with
 * `volumes` (Å^3 per graph of the batch), their stress, in the data's units.
 * Throws the native pass's errors (ERR_GNN_FORCES_PLAN, ERR_GNN_DATA_DIRECTIONS,
 * ERR_GNN_UNSUPPORTED, ERR_GNN_LENGTH).
 */
export function computeForces(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: FloatArray, units: EnergyUnits, volumes?: Float64Array): ForceResult {
  const f32 = params.BYTES_PER_ELEMENT === 4; // not instanceof: typed arrays from another realm (jest, vm) count too
  const make = (n: number): FloatArray => (f32 ? new Float32Array(n) : new Float64Array(n));
  const energy = make(shape.graphs);
  const forces = make(3 * shape.nodes);
  const stress = volumes ? make(6 * shape.graphs) : undefined;
  native().forcesStep(plan, inputs, shape, params, energy, forces, stress, volumes);
  let graphs = 0;
  let nodes = 0;
  while (graphs < shape.graphs && inputs.mask[graphs] > 0) nodes += inputs.nNode[graphs++];
  const s = energyScale(units);
  const out: ForceResult = {
    energy: Float64Array.from(energy.subarray(0, graphs), (z, g) => toTargetUnits(z, units.targetMean, s, units.offsets ? units.offsets[g] : 0)),
    forces: Float64Array.from(forces.subarray(0, 3 * nodes), (f) => f * s),
  };
  if (stress) out.stress = Float64Array.from(stress.subarray(0, 6 * graphs), (x) => x * s);
  return out;
}
