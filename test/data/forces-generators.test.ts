/**
 * The built-in generators' forces and stress (issue 22 item 4) against
 * central finite differences of the generators' own energies: qm9-like's
 * forces of U0, aflow-like's forces and ASE stress of `energy` (finite strain).
 */
import { aflowLikeCrystal, pairEnergy, qm9LikeMolecule } from '../../src/data/synthetic';
import { periodicEnergy } from '../../src/data/synthetic/aflow-like';

function moleculeEnergy(z: Uint8Array, p: Float64Array): number {
  let e = 0;
  for (let i = 0; i < z.length; i++)
    for (let j = i + 1; j < z.length; j++)
      e += pairEnergy(z[i], z[j], Math.hypot(p[3 * i] - p[3 * j], p[3 * i + 1] - p[3 * j + 1], p[3 * i + 2] - p[3 * j + 2]));
  return e;
}

/** Central differences of -E along every coordinate. */
function fdForces(energy: (p: Float64Array) => number, pos: Float64Array, h: number): Float64Array {
  const out = new Float64Array(pos.length);
  for (let k = 0; k < pos.length; k++) {
    const p = pos.slice();
    p[k] += h;
    const ep = energy(p);
    p[k] -= 2 * h;
    out[k] = -(ep - energy(p)) / (2 * h);
  }
  return out;
}

function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-12);
}

describe('generator forces and stress vs finite differences', () => {
  test.each([0, 1, 7, 123])('qm9-like molecule %i: forces = -dU0/dx, summing to zero', (index) => {
    const s = qm9LikeMolecule(42, index);
    expect(s.forces).toBeInstanceOf(Float64Array);
    expect(s.forces?.length).toBe(3 * s.numbers.length);
    // U0 is the Morse energy plus constants: its forces are the Morse energy's.
    expect(Math.abs(s.targets.pair_energy - moleculeEnergy(s.numbers, s.positions))).toBeLessThan(1e-9);
    const fd = fdForces((p) => moleculeEnergy(s.numbers, p), s.positions, 1e-5);
    expect(maxRelError(s.forces as Float64Array, fd)).toBeLessThan(1e-7);
    for (let a = 0; a < 3; a++) {
      let sum = 0;
      for (let i = 0; i < s.numbers.length; i++) sum += (s.forces as Float64Array)[3 * i + a];
      expect(Math.abs(sum)).toBeLessThan(1e-9);
    }
  });

  test.each([0, 3, 11])('aflow-like crystal %i: forces = -d energy/dx, stress = (1/V) d energy/d strain (ASE)', (index) => {
    const s = aflowLikeCrystal(42, index);
    const cell = s.cell as Float64Array;
    const n = s.numbers.length;
    const energy = (p: Float64Array, c = cell) => periodicEnergy(s.numbers, p, c).energy;
    expect(s.targets.energy).toBeCloseTo(s.targets.enthalpy_formation_atom * n, 9);
    expect(energy(s.positions)).toBe(s.targets.energy);
    const fd = fdForces((p) => energy(p), s.positions, 1e-5);
    expect(maxRelError(s.forces as Float64Array, fd)).toBeLessThan(1e-6);
    // ASE's recipe (ase.calculators.calculator.Calculator.calculate_numerical_stress):
    // strain x = I, x[i][j] += d and x[j][i] += d, positions and cell scaled; (E+ - E-) / (4 d V).
    const V = Math.abs(cell[0] * (cell[4] * cell[8] - cell[5] * cell[7]) - cell[1] * (cell[3] * cell[8] - cell[5] * cell[6]) + cell[2] * (cell[3] * cell[7] - cell[4] * cell[6]));
    const strained = (i: number, j: number, d: number): number => {
      const x = [1, 0, 0, 0, 1, 0, 0, 0, 1];
      x[3 * i + j] += d;
      x[3 * j + i] += d;
      const apply = (v: Float64Array): Float64Array => {
        const o = new Float64Array(v.length);
        for (let r = 0; r < v.length / 3; r++)
          for (let b = 0; b < 3; b++) o[3 * r + b] = v[3 * r] * x[b] + v[3 * r + 1] * x[3 + b] + v[3 * r + 2] * x[6 + b];
        return o;
      };
      return energy(apply(s.positions), apply(cell));
    };
    const d = 1e-5;
    const voigt: Array<[number, number]> = [[0, 0], [1, 1], [2, 2], [1, 2], [0, 2], [0, 1]];
    // Diagonal: eps_ii = 2d; off-diagonal: eps_ij = eps_ji = d; either way E+ - E- = 4 d V sigma.
    const fdStress = voigt.map(([i, j]) => (strained(i, j, d) - strained(i, j, -d)) / (4 * d * V));
    expect(maxRelError(s.stress as Float64Array, fdStress)).toBeLessThan(1e-6);
    expect(s.stress?.length).toBe(6);
  });
});
