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
  const h = 1e-5;
  const out: GradPoint[] = [];
  for (const i of picks) {
    const k = entry.offset + i;
    const orig = params[k];
    params[k] = orig + h;
    const lp = api.lossAndGrad(plan, inputs, shape, params, scratch);
    params[k] = orig - h;
    const lm = api.lossAndGrad(plan, inputs, shape, params, scratch);
    params[k] = orig;
    out.push({ index: k, grad: grads[k], fd: (lp - lm) / (2 * h) });
  }
  return out;
}

/** The tolerance of the model gradchecks: |fd - grad| <= 1e-7 + 1e-5 |fd|. */
export const gradTolerance = (fd: number): number => 1e-7 + 1e-5 * Math.abs(fd);
