/** `exact`: no padding at all (PyTorch Geometric's way). */
import { BasePolicy } from './base';
import type { BatchSpec, GraphSizes } from './policy';

/**
 * B real graphs in stream order; the shape is exactly their totals (nodes,
 * edges, graphs = B), so there is no padding graph and every batch may have a
 * new shape. The reference for "padded work vs exact".
 */
export class ExactPolicy extends BasePolicy {
  readonly name = 'exact';
  readonly fixedShape = null;

  constructor(sizes: GraphSizes, split: Int32Array, batchSize: number, seed: number) {
    super(sizes, split, batchSize, seed, 1);
  }

  protected decide(): BatchSpec {
    const b = this.batchSize;
    const ids = new Int32Array(b);
    let n = 0;
    let e = 0;
    for (let i = 0; i < b; i++) {
      const id = this.stream.nextId();
      ids[i] = id;
      n += this.nodes[id];
      e += this.edges[id];
    }
    this.realNodes = n;
    this.realEdges = e;
    return { graphIds: ids, shape: { nodes: n, edges: e, graphs: b } };
  }
}
