/** Built-in generators: `qm9-like[:N]` and `aflow-like[:N]`. */
import type { Structure } from '../types';
import { AFLOW_LIKE_SIZE, aflowLike } from './aflow-like';
import { QM9_SIZE, qm9Like } from './qm9-like';
import { ArgumentError } from '../../errors';

/** A parsed generator spec. */
export interface GeneratorSpec {
  name: 'qm9-like' | 'aflow-like';
  count: number;
}

/** Parses `qm9-like[:N]` / `aflow-like[:N]`, or returns null when `source` is not a generator spec. */
export function parseGeneratorSpec(source: string): GeneratorSpec | null {
  const m = /^(qm9-like|aflow-like)(?::(\d+))?$/.exec(source.trim());
  if (!m) return null;
  const name = m[1] as GeneratorSpec['name'];
  const count = m[2] !== undefined ? Number(m[2]) : name === 'qm9-like' ? QM9_SIZE : AFLOW_LIKE_SIZE;
  if (!Number.isSafeInteger(count) || count < 1) throw new ArgumentError(`generator '${source}': N must be a positive integer`);
  return { name, count };
}

/** The structures of a generator spec, deterministic by seed (default 42). */
export function generate(spec: GeneratorSpec, seed = 42): Generator<Structure> {
  return spec.name === 'qm9-like' ? qm9Like(spec.count, seed) : aflowLike(spec.count, seed);
}

export { qm9Like, qm9LikeMolecule, QM9_SIZE } from './qm9-like';
export { aflowLike, aflowLikeCrystal, AFLOW_LIKE_SIZE } from './aflow-like';
export { pairEnergy, pairEnergyDerivative, moleculePairEnergyForces, atomReferenceEnergy, covalentRadius, PAIR_CUTOFF } from './potential';
export { periodicEnergy, type PeriodicPairEnergy } from './aflow-like';
