/**
 * The batching policy interface. A policy only decides which graphs go into the
 * next batch and its padded shape; the native packer copies.
 */
import type { PackShape } from '../native';
import type { BatchingSummary, BatchingStatsState } from './stats';

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

/**
 * Serialisable state of a policy: enough to continue the exact same batch
 * sequence after a checkpoint resume (`JSON.stringify` round-trips it).
 */
export interface PolicyState {
  /** Name of the policy that wrote the state (checked on restore). */
  policy: string;
  /** Stream position: epoch, position inside it and the RNG state before its shuffle. */
  stream: StreamState;
  /** Policy-specific carry-over (a pending graph, a packing window); empty when none. */
  carry: number[];
  /** Accounting so far, so resumed runs report totals over the whole run. */
  stats: BatchingStatsState;
}

/** Serialisable position of an {@link EpochStream}-like stream. */
export interface StreamState {
  /** Epoch index (0-based) of the graph at `pos`. */
  epoch: number;
  /** Number of graphs of the current epoch already handed out. */
  pos: number;
  /** RNG state right before the current epoch's shuffle. */
  epochRng: number[];
}

/** A stream of batches over one split, epoch after epoch. */
export interface Policy {
  /** The policy's registered name (e.g. `static-2pow`, `dynamic`). */
  readonly name: string;
  /** The next batch. Never ends: epochs reshuffle with the policy's seed. */
  next(): BatchSpec;
  /** The one padded shape every batch has, or null when shapes vary per batch. */
  readonly fixedShape: PackShape | null;
  /**
   * Epoch (0-based) of the most recently drawn graph. `packed` batches never
   * cross epochs, so for it this is the epoch of the last batch; `dynamic` may
   * already have drawn its look-ahead graph from the next epoch.
   */
  readonly epoch: number;
  /** Accounting over every batch produced so far (including restored state). */
  summary(): BatchingSummary;
  /** State to save in a checkpoint. */
  getState(): PolicyState;
  /** Restore a state from {@link getState}; the next batches are then identical. */
  setState(state: PolicyState): void;
}
