/** Small statistics used by the trainer's timing and learning metrics. */
import { ArgumentError } from '../errors';

/** Median of a numeric array (NaN when empty). */
export function median(xs: ArrayLike<number>): number {
  const a = Array.from(xs).sort((x, y) => x - y);
  if (a.length === 0) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : 0.5 * (a[m - 1] + a[m]);
}

/** Arithmetic mean (NaN when empty). */
export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Sample standard deviation (n-1; 0 for fewer than two values). */
export function std(xs: ArrayLike<number>): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** Root mean squared error and mean absolute error of predictions. */
export function regressionErrors(pred: ArrayLike<number>, truth: ArrayLike<number>): { rmse: number; mae: number } {
  if (pred.length !== truth.length) throw new ArgumentError(`prediction count ${pred.length} != target count ${truth.length}`);
  let se = 0;
  let ae = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i] - truth[i];
    se += d * d;
    ae += Math.abs(d);
  }
  const n = Math.max(1, pred.length);
  return { rmse: Math.sqrt(se / n), mae: ae / n };
}
