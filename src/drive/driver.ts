/**
 * gnnbatch as a force engine for simulation codes: a trained checkpoint behind
 * the i-PI socket protocol (src/drive/ipi.ts), so ASE's SocketIOCalculator,
 * i-PI and LAMMPS `fix ipi` can run molecular dynamics, relaxations and phonons
 * with it.
 *
 * The protocol sends positions and the cell only, never the species: the
 * driver is given the system (atomic numbers, periodicity) once, and every
 * POSDATA is that system at new coordinates. One force-pass plan serves every
 * step (grown only if a cutoff graph gains edges beyond its headroom).
 */
import { loadModel } from '../inference/load-model';
import type { Structure } from '../data';
import { ArgumentError } from '../errors';
import { HARTREE_IN_EV, runIpiDriver, type DriverAddress, type DriverGeometry, type DriverResult, type IpiDriverOptions, type IpiDriverSummary } from './ipi';

/** Energy units a model's target may be in, and their value in eV (ASE's constants). */
export const ENERGY_UNITS_IN_EV = {
  eV: 1,
  meV: 1e-3,
  Hartree: HARTREE_IN_EV,
  'kcal/mol': 0.04336410390059322,
  'kJ/mol': 0.010364269574711572,
} as const;

/** A name of {@link ENERGY_UNITS_IN_EV}. */
export type EnergyUnit = keyof typeof ENERGY_UNITS_IN_EV;

/** The system a driver serves: what i-PI does not send. */
export interface DriverSystem {
  /** Atomic numbers, in the server's atom order. */
  numbers: ArrayLike<number>;
  /** Periodicity along the three cell vectors; default: periodic in all three when the server sends a non-zero cell. */
  pbc?: [boolean, boolean, boolean];
}

/** Options of {@link createDriver}. */
export interface DriverOptions extends IpiDriverOptions {
  /** The unit of the model's energy target (default eV); energies and forces are converted to eV for the wire. */
  energyUnit?: EnergyUnit;
  /** Send the virial (stress) for periodic systems; default true. */
  stress?: boolean;
}

/** A driver ready to connect. */
export interface Driver {
  /** The energy engine itself (one geometry at a time), in eV and Å: also usable without a socket. */
  readonly compute: (geometry: DriverGeometry) => DriverResult;
  /** Connects to the server and serves it until EXIT, a hang-up or `signal`. */
  run(address: DriverAddress): Promise<IpiDriverSummary>;
  /** Frees the native plan. */
  close(): void;
}

/**
 * Opens a checkpoint as an i-PI force engine for `system`. Throws
 * ERR_GNN_ARGUMENT for an unknown energy unit or an empty system,
 * ERR_GNN_STRUCTURE for elements outside the model.
 */
export function createDriver(checkpointDir: string, system: DriverSystem, options: DriverOptions = {}): Driver {
  const unit = options.energyUnit ?? 'eV';
  const toEv = ENERGY_UNITS_IN_EV[unit];
  if (toEv === undefined) throw new ArgumentError(`energyUnit must be one of ${Object.keys(ENERGY_UNITS_IN_EV).join(', ')}, got ${JSON.stringify(unit)}`);
  const numbers = Uint8Array.from(system.numbers);
  if (numbers.length === 0) throw new ArgumentError('the driven system needs at least one atom');
  const model = loadModel(checkpointDir);
  const wantStress = options.stress !== false;
  const structure = (g: DriverGeometry): Structure => {
    if (g.positions.length !== 3 * numbers.length)
      throw new ArgumentError(`the server sent ${g.positions.length / 3} atoms; the driven system has ${numbers.length}`, 'ERR_GNN_DRIVER_PROTOCOL');
    const hasCell = g.cell.some((x) => x !== 0);
    const pbc = system.pbc ?? [hasCell, hasCell, hasCell];
    return { id: `step ${g.step}`, numbers, positions: g.positions, cell: hasCell ? g.cell : null, pbc: hasCell ? pbc : [false, false, false], targets: {} };
  };
  const compute = (g: DriverGeometry): DriverResult => {
    const s = structure(g);
    const periodic = s.pbc.every((p) => p);
    const r = model.predict([s], { properties: periodic && wantStress ? ['energy', 'forces', 'stress'] : ['energy', 'forces'], batchSize: 1 });
    return {
      energy: r.energy[0] * toEv,
      forces: Float64Array.from(r.forces![0], (f) => f * toEv),
      stress: r.stress?.[0] ? Float64Array.from(r.stress[0], (x) => x * toEv) : null,
    };
  };
  // Validate the species once, before any connection (a bad system fails here, not at step 1).
  compute({ step: -1, positions: new Float64Array(3 * numbers.length).map((_, k) => (k % 3 === 0 ? 3 * Math.floor(k / 3) : 0)), cell: new Float64Array(9) });
  return {
    compute,
    run: (address) => runIpiDriver(address, compute, options),
    close: () => model.close(),
  };
}
