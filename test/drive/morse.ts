/**
 * A Morse pair potential with a cosine cutoff, in float64, as a stand-in force engine for the
 * driver tests: analytic energy, forces and stress (ASE's sign and Voigt order), periodic images
 * summed explicitly. Not a model: it checks the protocol, the units and the layouts end to end.
 */
import type { DriverGeometry, DriverResult } from '../../src/drive/ipi';

const D = 0.5, A = 1.6, R0 = 1.0, RC = 4.0;

export function morse(g: DriverGeometry, pbc: boolean): DriverResult {
  const x = g.positions, c = g.cell, n = x.length / 3;
  const forces = new Float64Array(3 * n);
  const virial = new Float64Array(9); // sum over pairs of dE/dr * r_a r_b / r
  let energy = 0;
  const span = pbc ? 2 : 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++)
    for (let a = -span; a <= span; a++) for (let b = -span; b <= span; b++) for (let k = -span; k <= span; k++) {
      if (i === j && a === 0 && b === 0 && k === 0) continue;
      const r = [0, 1, 2].map((d) => x[3 * j + d] + a * c[d] + b * c[3 + d] + k * c[6 + d] - x[3 * i + d]);
      const d = Math.hypot(r[0], r[1], r[2]);
      if (d >= RC) continue;
      const e = Math.exp(-A * (d - R0));
      const phi = D * (1 - e) * (1 - e) - D, dphi = 2 * D * A * (1 - e) * e;
      const fc = 0.5 * (Math.cos((Math.PI * d) / RC) + 1), dfc = (-0.5 * Math.PI * Math.sin((Math.PI * d) / RC)) / RC;
      energy += 0.5 * phi * fc;
      const dEdd = 0.5 * (dphi * fc + phi * dfc);
      for (let p = 0; p < 3; p++) {
        forces[3 * i + p] += (dEdd * r[p]) / d;
        forces[3 * j + p] -= (dEdd * r[p]) / d;
        for (let q = 0; q < 3; q++) virial[3 * p + q] += (dEdd * r[p] * r[q]) / d;
      }
    }
  let stress: Float64Array | null = null;
  if (pbc) {
    const vol = Math.abs(c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6]) + c[2] * (c[3] * c[7] - c[4] * c[6]));
    const s = (p: number, q: number): number => virial[3 * p + q] / vol;
    stress = Float64Array.of(s(0, 0), s(1, 1), s(2, 2), s(1, 2), s(0, 2), s(0, 1));
  }
  return { energy, forces, stress };
}
