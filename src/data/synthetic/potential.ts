/**
 * The smooth physical function behind the synthetic targets: a Morse pair
 * potential with a cosine cutoff, parameterised per element pair from
 * covalent radii, so a message-passing model can learn it from distances and
 * atomic numbers alone.
 */

/** Covalent radii in Å (Cordero et al. 2008) for the elements the generators use. */
const COVALENT_RADIUS: Record<number, number> = {
  1: 0.31, 3: 1.28, 5: 0.84, 6: 0.76, 7: 0.71, 8: 0.66, 9: 0.57, 11: 1.66, 12: 1.41, 13: 1.21, 14: 1.11, 15: 1.07,
  16: 1.05, 17: 1.02, 19: 2.03, 20: 1.76, 22: 1.6, 23: 1.53, 24: 1.39, 25: 1.39, 26: 1.32, 27: 1.26, 28: 1.24,
  29: 1.32, 30: 1.22, 31: 1.22, 32: 1.2, 33: 1.19, 34: 1.2, 38: 1.95, 40: 1.75, 41: 1.64, 42: 1.54, 44: 1.46,
  46: 1.39, 47: 1.45, 48: 1.44, 49: 1.42, 50: 1.39, 51: 1.39, 52: 1.38, 56: 2.15, 72: 1.75, 73: 1.7, 74: 1.62,
  78: 1.36, 79: 1.36, 82: 1.46,
};

/** Covalent radius of an element (1.5 Å when not tabulated). */
export function covalentRadius(z: number): number {
  return COVALENT_RADIUS[z] ?? 1.5;
}

/** Atomic reference energies (eV), loosely shaped like isolated-atom energies. */
export function atomReferenceEnergy(z: number): number {
  return -13.6 * Math.pow(z, 2.1) / (1 + 0.02 * z * z);
}

/** Cutoff radius (Å) of the pair potential. */
export const PAIR_CUTOFF = 5.0;

/**
 * Morse pair energy (eV) at distance r (Å) between elements zi and zj, times a
 * cosine cutoff that takes it smoothly to 0 at {@link PAIR_CUTOFF}.
 */
export function pairEnergy(zi: number, zj: number, r: number): number {
  if (r >= PAIR_CUTOFF) return 0;
  const r0 = covalentRadius(zi) + covalentRadius(zj);
  const depth = 0.5 + 0.05 * Math.abs(zi - zj) ** 0.5;
  const x = Math.exp(-1.8 * (r - r0));
  const fc = 0.5 * (Math.cos((Math.PI * r) / PAIR_CUTOFF) + 1);
  return depth * (x * x - 2 * x) * fc;
}

/** d{@link pairEnergy}/dr (eV/Å): 0 at and beyond {@link PAIR_CUTOFF}, continuous there (the cosine cutoff's slope is 0 at the cutoff). */
export function pairEnergyDerivative(zi: number, zj: number, r: number): number {
  if (r >= PAIR_CUTOFF) return 0;
  const r0 = covalentRadius(zi) + covalentRadius(zj);
  const depth = 0.5 + 0.05 * Math.abs(zi - zj) ** 0.5;
  const x = Math.exp(-1.8 * (r - r0));
  const a = (Math.PI * r) / PAIR_CUTOFF;
  const fc = 0.5 * (Math.cos(a) + 1);
  const dfc = (-0.5 * Math.PI * Math.sin(a)) / PAIR_CUTOFF;
  return depth * ((2 * x - 2) * (-1.8 * x) * fc + (x * x - 2 * x) * dfc);
}

/**
 * Morse pair energy of a molecule (every pair, no periodic images) and its
 * exact forces F_i = -dE/dx_i, [atoms x 3] (eV/Å).
 */
export function moleculePairEnergyForces(numbers: Uint8Array, pos: Float64Array): { energy: number; forces: Float64Array } {
  const n = numbers.length;
  const forces = new Float64Array(3 * n);
  let energy = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const dx = pos[i * 3] - pos[j * 3], dy = pos[i * 3 + 1] - pos[j * 3 + 1], dz = pos[i * 3 + 2] - pos[j * 3 + 2];
      const r = Math.sqrt(dx * dx + dy * dy + dz * dz);
      energy += pairEnergy(numbers[i], numbers[j], r);
      const g = r > 0 ? pairEnergyDerivative(numbers[i], numbers[j], r) / r : 0;
      // dE/dx_i = g (x_i - x_j), dE/dx_j = -g (x_i - x_j).
      forces[i * 3] -= g * dx; forces[i * 3 + 1] -= g * dy; forces[i * 3 + 2] -= g * dz;
      forces[j * 3] += g * dx; forces[j * 3 + 1] += g * dy; forces[j * 3 + 2] += g * dz;
    }
  return { energy, forces };
}
