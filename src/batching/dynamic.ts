/** `dynamic`: Jraph's `dynamically_batch` with the study's budget estimator. */
import type { PackShape } from '../native';
import { BasePolicy } from './base';
import { estimateBudget, type Budget, type BudgetOptions } from './budget';
import { checkEveryGraphFits } from './errors';
import type { BatchSpec, GraphSizes } from './policy';
import { ArgumentError } from '../errors';

/**
 * Greedy fill in stream order against a fixed budget `(n_node, n_edge, n_graph)`:
 * graphs are added while nodes <= n_node-1, edges <= n_edge and graphs <=
 * n_graph-1; the graph that does not fit starts the next batch (batches cross
 * epoch boundaries, like the study's endless stream). Every batch has the
 * budget's shape. A split graph larger than the budget is a
 * {@link GraphTooLargeError} at construction.
 */
export class DynamicPolicy extends BasePolicy {
  readonly name = 'dynamic';
  readonly fixedShape: PackShape;
  readonly budget: Budget;
  private pending = -1;
  private readonly buf: Int32Array;

  constructor(sizes: GraphSizes, split: Int32Array, batchSize: number, seed: number, options: BudgetOptions = {}) {
    super(sizes, split, batchSize, seed, 2);
    this.budget = estimateBudget(sizes, split, batchSize, options);
    this.fixedShape = Object.freeze({ nodes: this.budget.nodes, edges: this.budget.edges, graphs: this.budget.graphs });
    checkEveryGraphFits(this.name, sizes.nodes, sizes.edges, split, this.fixedShape);
    this.buf = new Int32Array(this.fixedShape.graphs - 1);
  }

  protected decide(): BatchSpec {
    const capN = this.fixedShape.nodes - 1;
    const capE = this.fixedShape.edges;
    const capG = this.fixedShape.graphs - 1;
    const buf = this.buf;
    let n = 0;
    let e = 0;
    let g = 0;
    for (;;) {
      const id = this.pending >= 0 ? this.pending : this.stream.nextId();
      this.pending = -1;
      const nn = this.nodes[id];
      const ee = this.edges[id];
      if (g + 1 > capG || n + nn > capN || e + ee > capE) {
        this.pending = id;
        break;
      }
      buf[g++] = id;
      n += nn;
      e += ee;
    }
    this.realNodes = n;
    this.realEdges = e;
    return { graphIds: buf.slice(0, g), shape: this.fixedShape };
  }

  protected getCarry(): number[] {
    return [this.pending];
  }

  protected setCarry(carry: number[]): void {
    if (carry.length !== 1) throw new ArgumentError(`dynamic: expected carry [pending], got length ${carry.length}`);
    this.pending = carry[0];
  }
}
