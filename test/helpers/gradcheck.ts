/** Test helper: central finite differences in float64 for one parameter block of a native model. */
import type { PlanHandle, PackOutput, PackShape } from '../../src/native';
import { nativeModel } from '../../src/native';
import type { ParamEntry } from '../../src/model/params';
import { testRng } from './batch';

/** One checked element: the native gradient and the central difference (step 1e-5). */
export interface GradPoint {
  index: number;
  grad: number;
  fd: number;
}

/**
 * Central differences of the loss for up to `count` elements of `entry`
 * (picked with a seed derived from its offset), against `grads` (the native
 * gradient at `params`). `params` is restored.
 */
export function finiteDifferences(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: Float64Array, grads: Float64Array, entry: ParamEntry, count = 6): GradPoint[] {
  const api = nativeModel();
  const size = entry.rows * entry.cols;
  const picks = new Set<number>();
  const r = testRng(entry.offset + 1);
  while (picks.size < Math.min(count, size)) picks.add(Math.floor(r() * size));
  const scratch = new Float64Array(grads.length);
  const loss = (p: Float64Array): number => api.lossAndGrad(plan, inputs, shape, p, scratch);
  return centralDifferences(loss, params, [...picks].map((i) => entry.offset + i)).map(({ index, fd }) => ({ index, grad: grads[index], fd }));
}

/**
 * Central differences (f(p + h e_k) - f(p - h e_k)) / 2h of `f` for each index
 * k, changing `params` in place and restoring it after each.
 */
export function centralDifferences(f: (p: Float64Array) => number, params: Float64Array, indices: Iterable<number>, h = 1e-5): { index: number; fd: number }[] {
  const out: { index: number; fd: number }[] = [];
  for (const k of indices) {
    const orig = params[k];
    params[k] = orig + h;
    const lp = f(params);
    params[k] = orig - h;
    const lm = f(params);
    params[k] = orig;
    out.push({ index: k, fd: (lp - lm) / (2 * h) });
  }
  return out;
}

/** Up to `n` indices of every parameter block, evenly spread over the block (deterministic). */
export function spreadIndices(entries: readonly Pick<ParamEntry, 'offset' | 'rows' | 'cols'>[], n: number): number[] {
  const out: number[] = [];
  for (const e of entries) {
    const count = e.rows * e.cols;
    const m = Math.min(n, count);
    for (let k = 0; k < m; k++) out.push(e.offset + Math.floor((k * count) / m));
  }
  return out;
}

/** The tolerance of the model gradchecks: |fd - grad| <= 1e-7 + 1e-5 |fd|. */
export const gradTolerance = (fd: number): number => 1e-7 + 1e-5 * Math.abs(fd);
