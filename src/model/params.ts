/**
 * The flat parameter vector: its named layout (from the native model) and the
 * study's initialisation (Haiku defaults: weights from a normal truncated at
 * two standard deviations with stddev 1/sqrt(fan_in), zero biases).
 */
import { nativeModel } from '../native';
import type { ModelConfig } from './config';
import { Rng } from '../util/rng';

/** One named tensor inside the flat parameter vector. */
export interface ParamEntry {
  /** Tensor name, e.g. `pass0/edge/w1`. */
  name: string;
  /** Element offset into the flat vector. */
  offset: number;
  /** Row count (input features for weights; 1 for biases). */
  rows: number;
  /** Column count (output features). */
  cols: number;
}

/** The layout of every parameter of a model. */
export interface ParamLayout {
  /** Total number of parameters. */
  total: number;
  /** Tensors in storage order. */
  entries: ParamEntry[];
}

/** The parameter layout the native model uses for a configuration. */
export function paramLayout(config: ModelConfig): ParamLayout {
  return nativeModel().modelLayout(config);
}

/** True for bias tensors (stored as 1-D tensors in checkpoints). */
export function isBias(e: ParamEntry): boolean {
  return /\/b\d?$/.test(e.name);
}

/**
 * Fresh parameters with the study's initialisation, deterministic by seed.
 * Returns float32 (training) or float64 (gradient checks) storage.
 */
export function initParams(layout: ParamLayout, seed: number, dtype: 'float32' | 'float64' = 'float32'): Float32Array | Float64Array {
  const out = dtype === 'float64' ? new Float64Array(layout.total) : new Float32Array(layout.total);
  const rng = new Rng(seed);
  for (const e of layout.entries) {
    if (isBias(e)) continue; // zeros
    const std = 1 / Math.sqrt(e.rows);
    for (let i = 0; i < e.rows * e.cols; i++) {
      let z = rng.normal();
      while (Math.abs(z) > 2) z = rng.normal();
      out[e.offset + i] = z * std;
    }
  }
  return out;
}
