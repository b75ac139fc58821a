/**
 * `aflow-like[:N]`: periodic crystals shaped like AFLOW's inorganic entries
 * (Curtarolo et al., Comput. Mater. Sci. 58, 218 (2012); AFLOW ICSD-derived
 * prototypes). Distributions reproduced (approximate, a modelling choice where
 * the study gives no figure):
 * - atoms per cell: 1 + a log-normal (median ~5, sigma 0.85) capped at 120:
 *   most cells hold 1-12 atoms, with a long tail past 60 as in AFLOW;
 * - cells: 40% orthogonal (cubic/tetragonal/orthorhombic), 25% hexagonal
 *   (gamma = 120 deg), 35% monoclinic/triclinic (angles 60-120 deg);
 *   volume per atom that of a close packing at the mean bonding distance
 *   (2 x mean covalent radius), x1.2-1.7 (about 10-70 Å^3 per atom, as in
 *   inorganic crystals from light anions to heavy metals);
 * - 1-4 species per cell from common metals, metalloids and anions;
 * - positions: random fractional coordinates kept >= 0.9 x the bonding
 *   distance (sum of covalent radii) from every periodic image when possible
 *   (else the farthest of the trials), re-drawn when a pair still ends up far
 *   inside its bonding distance (per-atom energy >= 10 eV), so the target
 *   stays in a physical range.
 * Target (eV/atom): `enthalpy_formation_atom` = (1/n) x the Morse pair energy
 * ({@link pairEnergy}) over every pair within 5 Å, periodic images included;
 * `Egap` = a smooth function of the mean nearest-neighbour distance;
 * `energy` (eV) = the cell's total pair energy, whose exact forces (eV/Å) and
 * stress (ASE's convention, eV/Å^3) the crystal carries: train forces on
 * `energy`, not on the per-atom target.
 * Default N = 20,000 (a choice; the study does not state its AFLOW count).
 */
import { cellFromParameters } from '../formats/aflow-json';
import { mulberry32 } from '../split';
import type { Structure } from '../types';
import { cellVolume } from '../cell';
import { covalentRadius, pairEnergy, pairEnergyDerivative, PAIR_CUTOFF } from './potential';

/** Default number of aflow-like crystals. */
export const AFLOW_LIKE_SIZE = 20000;

const ELEMENTS = [3, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 20, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 38, 40, 41, 42, 44, 46, 47, 48, 49, 50, 51, 52, 56, 72, 73, 74, 78, 79, 82];

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12), v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** The periodic pair energy of a crystal and what comes with it. */
export interface PeriodicPairEnergy {
  /** Energy per atom (eV/atom). */
  perAtom: number;
  /** Mean nearest-neighbour distance (Å). */
  meanNn: number;
  /** Total energy of the cell (eV). */
  energy: number;
  /** F = -dE/dx, [atoms x 3] (eV/Å). */
  forces: Float64Array;
  /** ASE's stress (1/V) dE/dstrain, Voigt xx yy zz yz xz xy (eV/Å^3). */
  stress: Float64Array;
}

/**
 * Per-atom pair energy and mean nearest-neighbour distance with periodic
 * images, with the exact forces and stress of the same sum: each image pair
 * term 0.5 phi(r), r = |x_j + T - x_i|, adds 0.5 phi'(r) d/r to dE/dx_j, takes
 * it from dE/dx_i, and adds 0.5 phi'(r) d d^T / r to dE/dstrain.
 */
export function periodicEnergy(numbers: Uint8Array, pos: Float64Array, cell: Float64Array): PeriodicPairEnergy {
  const n = numbers.length;
  const c = cell;
  const volume = cellVolume(c);
  const range: number[] = [];
  for (let a = 0; a < 3; a++) {
    const u = c.subarray(((a + 1) % 3) * 3, ((a + 1) % 3) * 3 + 3), v = c.subarray(((a + 2) % 3) * 3, ((a + 2) % 3) * 3 + 3);
    const cr = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
    range.push(Math.ceil(PAIR_CUTOFF / (volume / Math.hypot(cr[0], cr[1], cr[2]))) + 1);
  }
  const shifts: number[] = [];
  for (let t0 = -range[0]; t0 <= range[0]; t0++)
    for (let t1 = -range[1]; t1 <= range[1]; t1++)
      for (let t2 = -range[2]; t2 <= range[2]; t2++)
        shifts.push(t0 * c[0] + t1 * c[3] + t2 * c[6], t0 * c[1] + t1 * c[4] + t2 * c[7], t0 * c[2] + t1 * c[5] + t2 * c[8]);
  const zero = (shifts.length / 3 - 1) / 2; // the middle shift is (0, 0, 0)
  let e = 0, nn = 0;
  const grad = new Float64Array(3 * n);
  const w = new Float64Array(6);
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    for (let j = 0; j < n; j++) {
      const bx = pos[j * 3] - pos[i * 3], by = pos[j * 3 + 1] - pos[i * 3 + 1], bz = pos[j * 3 + 2] - pos[i * 3 + 2];
      for (let q = 0; q < shifts.length; q += 3) {
        if (i === j && q === zero * 3) continue;
        const dx = bx + shifts[q], dy = by + shifts[q + 1], dz = bz + shifts[q + 2];
        const r2 = dx * dx + dy * dy + dz * dz;
        if (r2 >= PAIR_CUTOFF * PAIR_CUTOFF) continue;
        const r = Math.sqrt(r2);
        if (r < best) best = r;
        e += 0.5 * pairEnergy(numbers[i], numbers[j], r);
        const g = (0.5 * pairEnergyDerivative(numbers[i], numbers[j], r)) / r;
        grad[j * 3] += g * dx; grad[j * 3 + 1] += g * dy; grad[j * 3 + 2] += g * dz;
        grad[i * 3] -= g * dx; grad[i * 3 + 1] -= g * dy; grad[i * 3 + 2] -= g * dz;
        w[0] += g * dx * dx; w[1] += g * dy * dy; w[2] += g * dz * dz;
        w[3] += g * dy * dz; w[4] += g * dx * dz; w[5] += g * dx * dy;
      }
    }
    nn += best;
  }
  return { perAtom: e / n, meanNn: nn / n, energy: e, forces: grad.map((x) => (x === 0 ? 0 : -x)), stress: w.map((x) => x / volume) };
}

/** One aflow-like crystal from a seeded stream. */
export function aflowLikeCrystal(seed: number, index: number): Structure {
  const rand = mulberry32((Math.imul(seed ^ 0x27d4eb2d, 0x9e3779b1) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0);
  const n = Math.min(120, 1 + Math.floor(Math.exp(Math.log(4) + 0.85 * gaussian(rand))));
  const kinds = 1 + Math.min(3, Math.floor(rand() * 4));
  const species: number[] = [];
  for (let k = 0; k < kinds; k++) species.push(ELEMENTS[Math.floor(rand() * ELEMENTS.length)]);
  let rSum = 0;
  for (let i = 0; i < n; i++) rSum += covalentRadius(species[i % kinds]);
  const bond = (2 * rSum) / n;
  const volume = n * ((bond * bond * bond) / Math.SQRT2) * (1.2 + 0.5 * rand());
  const u = rand();
  let alpha = 90, beta = 90, gamma = 90;
  if (u >= 0.4 && u < 0.65) gamma = 120;
  else if (u >= 0.65) {
    beta = 60 + 60 * rand();
    if (rand() < 0.6) { alpha = 60 + 60 * rand(); gamma = 60 + 60 * rand(); }
  }
  const ra = 0.8 + 0.45 * rand(), rb = 0.8 + 0.45 * rand();
  const unit = cellFromParameters(ra, rb, 1, alpha, beta, gamma);
  const v1 = Math.abs(unit[0] * (unit[4] * unit[8] - unit[5] * unit[7]) - unit[1] * (unit[3] * unit[8] - unit[5] * unit[6]) + unit[2] * (unit[3] * unit[7] - unit[4] * unit[6]));
  const s = Math.cbrt(volume / v1);
  const cell = cellFromParameters(ra * s, rb * s, s, alpha, beta, gamma);
  // Small, skewed cells can bring an atom's own periodic images too close:
  // grow the cell until the shortest lattice translation clears 0.85 x the
  // largest bonding distance of its species.
  let maxR = 0;
  for (const z of species) maxR = Math.max(maxR, covalentRadius(z));
  let minLat = Infinity;
  for (let i = -1; i <= 1; i++)
    for (let j = -1; j <= 1; j++)
      for (let k = -1; k <= 1; k++) {
        if (i === 0 && j === 0 && k === 0) continue;
        const x = i * cell[0] + j * cell[3] + k * cell[6];
        const y = i * cell[1] + j * cell[4] + k * cell[7];
        const z = i * cell[2] + j * cell[5] + k * cell[8];
        minLat = Math.min(minLat, Math.sqrt(x * x + y * y + z * z));
      }
  const needLat = 0.85 * 2 * maxR;
  if (minLat < needLat) for (let a = 0; a < 9; a++) cell[a] *= needLat / minLat;
  const numbers = new Uint8Array(n);
  const pos = new Float64Array(n * 3);
  const frac = new Float64Array(n * 3);
  // Random placement can still leave two atoms far inside their bonding
  // distance in skewed cells (the fractional-rounding image is not always the
  // nearest); such a crystal is re-drawn (up to 8 times) so the targets stay
  // in a physical range (per-atom energy below 10 eV).
  let energy: PeriodicPairEnergy | null = null;
  for (let draw = 0; draw < 8; draw++) {
    for (let i = 0; i < n; i++) {
      numbers[i] = species[i % kinds];
      const ri = covalentRadius(numbers[i]);
      let best = [0, 0, 0];
      let bestScore = -Infinity;
      for (let attempt = 0; attempt < 60; attempt++) {
        const f = [rand(), rand(), rand()];
        // Smallest distance / required distance to the atoms placed so far (minimum image).
        let score = Infinity;
        for (let j = 0; j < i; j++) {
          const d = [0, 1, 2].map((a) => { const x = f[a] - frac[j * 3 + a]; return x - Math.round(x); });
          const x = d[0] * cell[0] + d[1] * cell[3] + d[2] * cell[6];
          const y = d[0] * cell[1] + d[1] * cell[4] + d[2] * cell[7];
          const z = d[0] * cell[2] + d[1] * cell[5] + d[2] * cell[8];
          const need = 0.9 * (ri + covalentRadius(numbers[j]));
          const r = Math.sqrt(x * x + y * y + z * z) / need;
          if (r < score) score = r;
        }
        if (score > bestScore) {
          bestScore = score;
          best = f;
        }
        if (score >= 1) break;
      }
      frac.set(best, i * 3);
      for (let a = 0; a < 3; a++) pos[i * 3 + a] = frac[i * 3] * cell[a] + frac[i * 3 + 1] * cell[3 + a] + frac[i * 3 + 2] * cell[6 + a];
    }
    energy = periodicEnergy(numbers, pos, cell);
    if (energy.perAtom < 10) break;
  }
  const { perAtom, meanNn, energy: total, forces, stress } = energy as PeriodicPairEnergy;
  return {
    id: `aflow-like-${index + 1}`,
    numbers,
    positions: pos,
    cell,
    pbc: [true, true, true],
    targets: { enthalpy_formation_atom: perAtom, Egap: Math.max(0, 4 * Math.tanh(meanNn - 2.2)), energy: total },
    info: { compound: [...new Set(species)].map(String).join('-') },
    forces,
    stress,
  };
}

/** `count` aflow-like crystals (default 20,000) for a seed (default 42). */
export function* aflowLike(count = AFLOW_LIKE_SIZE, seed = 42): Generator<Structure> {
  for (let i = 0; i < count; i++) yield aflowLikeCrystal(seed, i);
}
