/**
 * The batching policy interface. A policy only decides which graphs go into the
 * next batch and its padded shape; the native packer copies.
 */
import type { PackShape } from '../native';

/** What a policy yields for each training step. */
export interface BatchSpec {
  /** Store graph ids of the real graphs, in batch order. */
  graphIds: Int32Array;
  /** The padded shape; equal to the real totals for unpadded (`exact`) batches. */
  shape: PackShape;
}

/** Per-graph sizes a policy decides from (node and edge counts per graph id). */
export interface GraphSizes {
  nodes: Int32Array;
  edges: Int32Array;
}

/** A stream of batches over one split, epoch after epoch. */
export interface Policy {
  /** The policy's registered name (e.g. `static-2pow`, `dynamic`). */
  readonly name: string;
  /** The next batch. Never ends: epochs reshuffle with the policy's seed. */
  next(): BatchSpec;
}
