/** Per-graph sizes: derived from a graph store and validated for policies. */
import type { GraphStore } from '../data/types';
import type { GraphSizes } from './policy';
import { ArgumentError } from '../errors';

/** Node and edge count of every graph of a store, from its offset arrays. */
export function sizesOf(store: Pick<GraphStore, 'nodeOffset' | 'edgeOffset' | 'numGraphs'>): GraphSizes {
  const g = store.numGraphs;
  if (store.nodeOffset.length !== g + 1 || store.edgeOffset.length !== g + 1) {
    throw new ArgumentError(`sizesOf: nodeOffset/edgeOffset must have numGraphs+1 = ${g + 1} entries`);
  }
  const nodes = new Int32Array(g);
  const edges = new Int32Array(g);
  for (let i = 0; i < g; i++) {
    nodes[i] = store.nodeOffset[i + 1] - store.nodeOffset[i];
    edges[i] = store.edgeOffset[i + 1] - store.edgeOffset[i];
    if (nodes[i] < 0 || edges[i] < 0) throw new ArgumentError(`sizesOf: offsets decrease at graph ${i}`);
  }
  return { nodes, edges };
}

/**
 * Check that `split` indexes `sizes` and that every size is a non-negative
 * count with at least one node; throws a RangeError naming the position.
 */
export function validateSizesAndSplit(sizes: GraphSizes, split: Int32Array): void {
  const g = sizes.nodes.length;
  if (sizes.edges.length !== g) throw new ArgumentError(`sizes: nodes has ${g} entries but edges has ${sizes.edges.length}`);
  if (split.length === 0) throw new ArgumentError('split: is empty');
  for (let i = 0; i < split.length; i++) {
    const id = split[i];
    if (id < 0 || id >= g) throw new ArgumentError(`split[${i}] = ${id} is outside [0, ${g})`);
    if (sizes.nodes[id] < 1) throw new ArgumentError(`sizes.nodes[${id}] = ${sizes.nodes[id]}: a graph needs at least one node`);
    if (sizes.edges[id] < 0) throw new ArgumentError(`sizes.edges[${id}] = ${sizes.edges[id]} is negative`);
  }
}

/** Largest node and edge count over the graphs of a split. */
export function maxSizes(sizes: GraphSizes, split: Int32Array): { nodes: number; edges: number } {
  let n = 0;
  let e = 0;
  for (let i = 0; i < split.length; i++) {
    const id = split[i];
    if (sizes.nodes[id] > n) n = sizes.nodes[id];
    if (sizes.edges[id] > e) e = sizes.edges[id];
  }
  return { nodes: n, edges: e };
}
