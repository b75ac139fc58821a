/** Seeded train/validation/test splits and train-only target standardisation. */
import type { TargetStats } from './store';
import type { Split } from './types';
import { ArgumentError } from '../errors';

/** Options of {@link splitGraphs}. */
export interface SplitOptions {
  /** Shuffle seed (default 42, as in the study). */
  seed?: number;
  /** Fractions of train, validation, test (default [0.8, 0.1, 0.1]); normalised to sum 1. */
  ratios?: [number, number, number];
}

/** mulberry32: a small, fast, seedable 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seed of the default 80/10/10 split (the study's): every command that splits a store without a seed uses it. */
export const DEFAULT_SPLIT_SEED = 42;
/** Seed of initialisation and of the batch stream when none is given (the study's). */
export const DEFAULT_SEED = 42;

/**
 * Shuffles graph ids 0..numGraphs-1 with a seeded Fisher-Yates and cuts them
 * into train/val/test (sizes floor(r*G) for val and test, train takes the rest).
 * Each part is returned sorted ascending. Same seed => same split.
 */
export function splitGraphs(numGraphs: number, options: SplitOptions = {}): Split {
  const [r0, r1, r2] = options.ratios ?? [0.8, 0.1, 0.1];
  if (![r0, r1, r2].every((r) => Number.isFinite(r) && r >= 0) || r0 + r1 + r2 <= 0)
    throw new ArgumentError(`split ratios must be non-negative with a positive sum, got ${[r0, r1, r2].join(', ')}`);
  const sum = r0 + r1 + r2;
  const rand = mulberry32(options.seed ?? DEFAULT_SPLIT_SEED);
  const perm = new Int32Array(numGraphs);
  for (let i = 0; i < numGraphs; i++) perm[i] = i;
  for (let i = numGraphs - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  const nVal = Math.floor((r1 / sum) * numGraphs);
  const nTest = Math.floor((r2 / sum) * numGraphs);
  const nTrain = numGraphs - nVal - nTest;
  const part = (a: number, b: number) => perm.slice(a, b).sort();
  return { train: part(0, nTrain), val: part(nTrain, nTrain + nVal), test: part(nTrain + nVal, numGraphs) };
}

/** Mean and (population) standard deviation of `values` over `ids`, ignoring NaN. */
export function targetStats(values: Float64Array, ids: Int32Array): TargetStats {
  let n = 0, mean = 0, m2 = 0;
  for (const g of ids) {
    const v = values[g];
    if (Number.isNaN(v)) continue;
    n++;
    const d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  if (n === 0) throw new ArgumentError('no training graph has a value for the target');
  const std = Math.sqrt(m2 / n);
  return { mean, std: std > 0 ? std : 1 };
}
