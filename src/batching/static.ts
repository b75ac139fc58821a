/**
 * The study's static batching: exactly B-1 real graphs per batch, taken in
 * stream order (batches cross epoch boundaries, as the endless stream does),
 * plus one padding graph; the padded size follows a per-policy rule.
 */
import type { PackShape } from '../native';
import { BasePolicy, type CommonPolicyOptions } from './base';
import type { BatchSpec, GraphSizes } from './policy';

/** Base of the three static policies. */
export abstract class StaticPolicy extends BasePolicy {
  private readonly studyCompat: boolean;

  constructor(sizes: GraphSizes, split: Int32Array, batchSize: number, seed: number, options: CommonPolicyOptions = {}) {
    super(sizes, split, batchSize, seed, 2);
    this.studyCompat = options.studyCompat ?? false;
  }

  /** Padded shape for the real totals of B-1 graphs. */
  protected abstract shapeFor(realNodes: number, realEdges: number): PackShape;

  protected decide(): BatchSpec {
    const count = this.batchSize - 1;
    const ids = new Int32Array(count);
    let n = 0;
    let e = 0;
    for (let i = 0; i < count; i++) {
      const id = this.stream.nextId();
      ids[i] = id;
      n += this.nodes[id];
      e += this.edges[id];
    }
    // The study's reader took B graphs and batched B-1: the B-th is lost.
    if (this.studyCompat) this.stream.nextId();
    this.realNodes = n;
    this.realEdges = e;
    return { graphIds: ids, shape: this.shapeFor(n, e) };
  }
}
