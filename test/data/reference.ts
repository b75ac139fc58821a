/** Brute-force float64 references for graph construction (the oracle for the native code). */
import type { Structure } from '../../src/data/types';

export interface RefEdge {
  receiver: number;
  sender: number;
  distance: number;
}

function spacing(c: ArrayLike<number>): number[] {
  const det = c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6]) + c[2] * (c[3] * c[7] - c[4] * c[6]);
  const out: number[] = [];
  for (let a = 0; a < 3; a++) {
    const u = [0, 1, 2].map((k) => c[((a + 1) % 3) * 3 + k]);
    const v = [0, 1, 2].map((k) => c[((a + 2) % 3) * 3 + k]);
    const cr = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
    out.push(Math.abs(det) / Math.hypot(cr[0], cr[1], cr[2]));
  }
  return out;
}

/** Every (receiver, sender, image) pair within radius, all images enumerated. */
export function bruteCutoff(s: Structure, radius: number): RefEdge[] {
  const n = s.numbers.length;
  const p = s.positions;
  const range = [0, 0, 0];
  if (s.cell) {
    const sp = spacing(s.cell);
    // Positions are not wrapped here, so allow for atoms outside the cell.
    for (let a = 0; a < 3; a++) if (s.pbc[a]) range[a] = Math.ceil(radius / sp[a]) + 3;
  }
  const c = s.cell ?? new Float64Array(9);
  const out: RefEdge[] = [];
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      for (let t0 = -range[0]; t0 <= range[0]; t0++)
        for (let t1 = -range[1]; t1 <= range[1]; t1++)
          for (let t2 = -range[2]; t2 <= range[2]; t2++) {
            if (i === j && t0 === 0 && t1 === 0 && t2 === 0) continue;
            const d = [0, 1, 2].map((a) => p[j * 3 + a] + t0 * c[a] + t1 * c[3 + a] + t2 * c[6 + a] - p[i * 3 + a]);
            const r = Math.hypot(d[0], d[1], d[2]);
            if (r <= radius) out.push({ receiver: i, sender: j, distance: r });
          }
  return sortEdges(out);
}

export function sortEdges(e: RefEdge[]): RefEdge[] {
  return e.sort((a, b) => a.receiver - b.receiver || a.sender - b.sender || a.distance - b.distance);
}

/** Sorted distance list per receiver of the K nearest (by brute force with a generous radius). */
export function bruteKnnDistances(s: Structure, k: number, radius: number): number[][] {
  const all = bruteCutoff(s, radius);
  const n = s.numbers.length;
  const periodic = s.pbc.some((x) => x);
  const want = periodic ? k : Math.min(k, n - 1);
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const d = all.filter((e) => e.receiver === i).map((e) => e.distance).sort((a, b) => a - b);
    if (d.length < want) throw new Error('reference radius too small');
    out.push(d.slice(0, want));
  }
  return out;
}

/** Minimum-image distance over all images within +-3 cells. */
export function bruteMinImage(s: Structure, i: number, j: number): number {
  const c = s.cell ?? new Float64Array(9);
  const p = s.positions;
  let best = Infinity;
  const r = s.pbc.map((x) => (x ? 3 : 0));
  for (let t0 = -r[0]; t0 <= r[0]; t0++)
    for (let t1 = -r[1]; t1 <= r[1]; t1++)
      for (let t2 = -r[2]; t2 <= r[2]; t2++) {
        const d = [0, 1, 2].map((a) => p[j * 3 + a] + t0 * c[a] + t1 * c[3 + a] + t2 * c[6 + a] - p[i * 3 + a]);
        best = Math.min(best, Math.hypot(d[0], d[1], d[2]));
      }
  return best;
}
