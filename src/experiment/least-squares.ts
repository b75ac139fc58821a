/**
 * Small dense least-squares fits for the recommendation's cost models (and
 * the shard planner's reference coefficients): a handful of columns, a few
 * dozen rows, so the normal equations with partial pivoting are enough.
 */
import { ArgumentError } from '../errors';

/** Least squares for y ≈ X w (normal equations, Gaussian elimination; columns are few). */
export function leastSquares(X: readonly number[][], y: readonly number[]): number[] {
  const k = X[0].length;
  const A = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  for (let r = 0; r < X.length; r++) {
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) A[i][j] += X[r][i] * X[r][j];
      A[i][k] += X[r][i] * y[r];
    }
  }
  for (let c = 0; c < k; c++) {
    let p = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    if (Math.abs(A[c][c]) < 1e-300) throw new ArgumentError('least squares: singular system (calibration shapes are not independent)');
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = A[r][c] / A[c][c];
      for (let j = c; j <= k; j++) A[r][j] -= f * A[c][j];
    }
  }
  return A.map((row, i) => row[k] / A[i][i]);
}

/**
 * Non-negative fit: least squares, then drop any term whose coefficient came
 * out negative (measurement noise) and refit the others; dropped terms are 0.
 */
export function nonNegativeFit(X: readonly number[][], y: readonly number[]): number[] {
  let active = X[0].map((_, i) => i);
  for (;;) {
    const w = leastSquares(X.map((r) => active.map((i) => r[i])), y);
    const neg = w.findIndex((v) => v < 0);
    if (neg < 0 || active.length === 1) {
      const out = new Array<number>(X[0].length).fill(0);
      active.forEach((i, j) => (out[i] = Math.max(0, w[j])));
      return out;
    }
    active = active.filter((_, j) => j !== neg);
  }
}
