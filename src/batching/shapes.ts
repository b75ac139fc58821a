/**
 * Padded-shape rules of the study (PAPER.md, batching table), as pure
 * functions of the real totals. Jraph convention: a padded batch holds one
 * padding graph that takes every padding node and edge, so it needs at least
 * one spare node and one spare graph; edges need no spare.
 */
import type { PackShape } from '../native';

/** Smallest power of two >= x (1 for x <= 1). */
export function nextPowerOfTwo(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

/** Smallest multiple of 64 >= x (0 for x <= 0). */
export function roundUpTo64(x: number): number {
  return x <= 0 ? 0 : Math.ceil(x / 64) * 64;
}

/** The study's "next multiple of 64 above x": 64 * (1 + floor(x / 64)), always > x. */
export function nextMultipleOf64Above(x: number): number {
  return 64 * (1 + Math.floor(x / 64));
}

/**
 * static-2^N shape of a batch of `B-1` real graphs: nodes = smallest power of
 * two >= real nodes + 1, edges = smallest power of two >= real edges, graphs = B.
 */
export function staticPow2Shape(realNodes: number, realEdges: number, batchSize: number): PackShape {
  return { nodes: nextPowerOfTwo(realNodes + 1), edges: nextPowerOfTwo(realEdges), graphs: batchSize };
}

/**
 * static-64 shape: nodes = smallest multiple of 64 >= real nodes + 1, edges =
 * smallest multiple of 64 >= real edges (0 when there are none), graphs = B.
 */
export function static64Shape(realNodes: number, realEdges: number, batchSize: number): PackShape {
  return { nodes: roundUpTo64(realNodes + 1), edges: roundUpTo64(realEdges), graphs: batchSize };
}

/**
 * static-constant shape: the next multiple of 64 above (largest training graph
 * x B), separately for nodes and edges (strictly above, so the node count has
 * its spare padding node); graphs = B. Any B-1 training graphs fit.
 */
export function staticConstantShape(maxNodes: number, maxEdges: number, batchSize: number): PackShape {
  return {
    nodes: nextMultipleOf64Above(maxNodes * batchSize),
    edges: nextMultipleOf64Above(maxEdges * batchSize),
    graphs: batchSize,
  };
}

/** True when real totals fit a padded shape under the padding-graph convention. */
export function fitsPadded(realNodes: number, realEdges: number, realGraphs: number, shape: PackShape): boolean {
  return realNodes <= shape.nodes - 1 && realEdges <= shape.edges && realGraphs <= shape.graphs - 1;
}

/** Shape key used to count distinct shapes (compilations / plans). */
export function shapeKey(shape: PackShape): string {
  return `${shape.nodes}x${shape.edges}x${shape.graphs}`;
}

/** The shape a {@link shapeKey} names, or null when `key` is not one. */
export function parseShapeKey(key: string): PackShape | null {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(key);
  return m ? { nodes: Number(m[1]), edges: Number(m[2]), graphs: Number(m[3]) } : null;
}
