/** Typed errors of the batching layer. */
import type { PackShape } from '../native';
import { ArgumentError, GnnError } from '../errors';

/**
 * A graph of the split does not fit a fixed budget on its own (Jraph's
 * `dynamically_batch` raises here too). The message names the graph, its size
 * and the budget, and what to change. Code `ERR_GNN_GRAPH_TOO_LARGE`.
 */
export class GraphTooLargeError extends GnnError {
  constructor(
    readonly policy: string,
    readonly graphId: number,
    readonly graphNodes: number,
    readonly graphEdges: number,
    readonly budget: PackShape,
  ) {
    super(
      'ERR_GNN_GRAPH_TOO_LARGE',
      `${policy}: graph ${graphId} (${graphNodes} nodes, ${graphEdges} edges) is larger than the budget ` +
        `(${budget.nodes} nodes incl. 1 padding node, ${budget.edges} edges); ` +
        `estimate the budget over more graphs (estimationGraphs) or use the 'quantile' estimator`,
    );
    this.name = 'GraphTooLargeError';
  }
}

/** Throw {@link GraphTooLargeError} for the first graph of `split` that cannot fit `budget` alone. */
export function checkEveryGraphFits(policy: string, nodes: Int32Array, edges: Int32Array, split: Int32Array, budget: PackShape): void {
  const capN = budget.nodes - 1;
  const capE = budget.edges;
  if (budget.graphs < 2) throw new ArgumentError(`${policy}: budget graphs must be >= 2 (one real + one padding graph), got ${budget.graphs}`);
  for (let i = 0; i < split.length; i++) {
    const id = split[i];
    if (nodes[id] > capN || edges[id] > capE) throw new GraphTooLargeError(policy, id, nodes[id], edges[id], budget);
  }
}
