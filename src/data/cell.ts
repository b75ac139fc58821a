/** Geometry of a row-major 3x3 cell (rows = the lattice vectors, Å). */

/** |det| of a row-major 3x3 cell: its volume in Å^3 (0 for a degenerate cell). */
export function cellVolume(c: ArrayLike<number>): number {
  return Math.abs(c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6]) + c[2] * (c[3] * c[7] - c[4] * c[6]));
}
