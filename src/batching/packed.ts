/**
 * `packed` (goes past the study): one fixed shape filled by bin packing.
 *
 * Shape: the dynamic budget's nodes and edges (same estimator), with a graph
 * count that does not bind: `ceil(graphSlack * n_node / mean_nodes) + 1`
 * (a padding graph slot costs almost nothing; capping at B-1 graphs would make
 * high fill impossible, since the budget is about B mean graphs plus up to 64
 * nodes).
 *
 * Packing: a window of the next `window` graphs of the epoch's shuffled order.
 * Each batch first takes the oldest window graphs in stream order while a
 * reserve of `reserveGraphs` mean-sized graphs stays free (so the oldest graph
 * always goes first and no graph waits long), then fills the rest best-fit:
 * repeatedly the window graph that fits and leaves the smaller maximum of the
 * node and edge residual fractions (balancing both dimensions). Batches never
 * cross an epoch boundary, so every graph of the split is in exactly one batch
 * per epoch; the last batches of an epoch drain the window and may be less full.
 */
import type { PackShape } from '../native';
import { BasePolicy } from './base';
import { estimateBudget, type Budget, type BudgetOptions } from './budget';
import { checkEveryGraphFits } from './errors';
import type { BatchSpec, GraphSizes } from './policy';
import { ArgumentError } from '../errors';

/** Larger than any residual fraction (a local constant: global lookups are slow under vm contexts). */
const NO_SCORE = 1e300;

/** Options of the `packed` policy. */
export interface PackedOptions extends BudgetOptions {
  /** Look-ahead window in graphs (default max(64, 2B)). Larger: fuller batches, more drift from stream order. */
  window?: number;
  /** Mean-sized graphs kept free for the best-fit phase (default 3). */
  reserveGraphs?: number;
  /** Graph-count slack over n_node / mean nodes (default 1.25). */
  graphSlack?: number;
}

/** Fixed-shape bin-packing policy; see the module comment. */
export class PackedPolicy extends BasePolicy {
  readonly name = 'packed';
  readonly fixedShape: PackShape;
  readonly budget: Budget;
  private readonly windowSize: number;
  private readonly window: Int32Array;
  private readonly taken: Uint8Array;
  private wlen = 0;
  private readonly reserveN: number;
  private readonly reserveE: number;
  private readonly buf: Int32Array;

  constructor(sizes: GraphSizes, split: Int32Array, batchSize: number, seed: number, options: PackedOptions = {}) {
    super(sizes, split, batchSize, seed, 2);
    this.budget = estimateBudget(sizes, split, batchSize, options);
    const slack = options.graphSlack ?? 1.25;
    if (!(slack >= 1)) throw new ArgumentError(`packed: graphSlack must be >= 1, got ${slack}`);
    const graphs = Math.max(batchSize, Math.ceil((slack * this.budget.nodes) / Math.max(1, this.budget.meanNodes)) + 1);
    this.fixedShape = Object.freeze({ nodes: this.budget.nodes, edges: this.budget.edges, graphs });
    checkEveryGraphFits(this.name, sizes.nodes, sizes.edges, split, this.fixedShape);
    this.windowSize = options.window ?? Math.max(64, 2 * batchSize);
    if (!(Number.isInteger(this.windowSize) && this.windowSize >= 1)) throw new ArgumentError(`packed: window must be an integer >= 1, got ${options.window}`);
    const reserve = options.reserveGraphs ?? 3;
    if (!(reserve >= 0)) throw new ArgumentError(`packed: reserveGraphs must be >= 0, got ${reserve}`);
    this.reserveN = reserve * this.budget.meanNodes;
    this.reserveE = reserve * this.budget.meanEdges;
    this.window = new Int32Array(this.windowSize);
    this.taken = new Uint8Array(this.windowSize);
    this.buf = new Int32Array(graphs - 1);
  }

  private refill(): void {
    while (this.wlen < this.windowSize) {
      const id = this.stream.nextInEpoch();
      if (id < 0) break;
      this.window[this.wlen++] = id;
    }
  }

  protected decide(): BatchSpec {
    this.refill();
    if (this.wlen === 0) {
      this.stream.advanceEpoch();
      this.refill();
    }
    const nodes = this.nodes;
    const edges = this.edges;
    const win = this.window;
    const taken = this.taken;
    const wlen = this.wlen;
    const capN = this.fixedShape.nodes - 1;
    const capE = this.fixedShape.edges;
    const capG = this.fixedShape.graphs - 1;
    const buf = this.buf;
    let n = 0;
    let e = 0;
    let g = 0;
    // Phase A: oldest first, in stream order, keeping the reserve free.
    let i = 0;
    const softN = capN - this.reserveN;
    const softE = capE - this.reserveE;
    for (; i < wlen && g < capG; i++) {
      const id = win[i];
      const nn = nodes[id];
      const ee = edges[id];
      if (g > 0 && (n + nn > softN || e + ee > softE)) break;
      taken[i] = 1;
      buf[g++] = id;
      n += nn;
      e += ee;
    }
    // Phase B: best fit over the rest of the window.
    const invN = 1 / capN;
    const invE = capE > 0 ? 1 / capE : 0;
    while (g < capG) {
      const rn = capN - n;
      const re = capE - e;
      let best = -1;
      let bestScore = NO_SCORE;
      for (let j = i; j < wlen; j++) {
        if (taken[j] !== 0) continue;
        const id = win[j];
        const nn = nodes[id];
        const ee = edges[id];
        if (nn > rn || ee > re) continue;
        const sn = (rn - nn) * invN;
        const se = (re - ee) * invE;
        const s = sn > se ? sn : se;
        if (s < bestScore) {
          bestScore = s;
          best = j;
        }
      }
      if (best < 0) break;
      taken[best] = 1;
      const id = win[best];
      buf[g++] = id;
      n += nodes[id];
      e += edges[id];
    }
    // Compact the window, keeping stream order.
    let w = 0;
    for (let j = 0; j < wlen; j++) {
      if (taken[j] === 0) win[w++] = win[j];
      else taken[j] = 0;
    }
    this.wlen = w;
    this.realNodes = n;
    this.realEdges = e;
    return { graphIds: buf.slice(0, g), shape: this.fixedShape };
  }

  protected getCarry(): number[] {
    return Array.from(this.window.subarray(0, this.wlen));
  }

  protected setCarry(carry: number[]): void {
    if (carry.length > this.windowSize) throw new ArgumentError(`packed: carry window of ${carry.length} exceeds window size ${this.windowSize}`);
    const g = this.nodes.length;
    for (let j = 0; j < carry.length; j++) {
      if (!Number.isInteger(carry[j]) || carry[j] < 0 || carry[j] >= g) throw new ArgumentError(`packed: carry[${j}] = ${carry[j]} is not a graph id`);
      this.window[j] = carry[j];
    }
    this.wlen = carry.length;
    this.taken.fill(0);
  }
}
