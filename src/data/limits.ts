/**
 * Size ceilings of the data layer, checked before memory is allocated so that
 * a small hostile file (12,000 atoms under `fc` = 144M edges; an archive
 * member of 500 MB of zeros) fails with a named error instead of exhausting
 * memory.
 *
 * | ceiling | default | option | environment variable |
 * |---|---|---|---|
 * | edges of one graph | 2,000,000 | `maxEdgesPerGraph` | `GNNBATCH_MAX_EDGES_PER_GRAPH` |
 * | edges of a whole source | 400,000,000 | `maxTotalEdges` | `GNNBATCH_MAX_TOTAL_EDGES` |
 * | bytes of one archive member or molecule file | 16 MiB | `maxMemberBytes` | `GNNBATCH_MAX_MEMBER_BYTES` |
 *
 * (A graph store costs 16 bytes per edge plus the builder's scratch: the
 * total-edge default is ~6.4 GB of arrays.) Edge counts are exact before
 * building under `fc` (n(n-1) per structure) and `knn:K` (at most K n); under
 * `cutoff:R` they are known only after building, and are checked then.
 */
import { DataLimitError } from './errors';
import type { GraphRule } from './graph-rule';
import type { Structure } from './types';

/** The ceilings (every field optional; defaults above). */
export interface DataLimits {
  /** Most edges one graph may have. */
  maxEdgesPerGraph?: number;
  /** Most edges all graphs of one source together may have. */
  maxTotalEdges?: number;
  /** Most bytes one archive member (or one single-molecule file) may have. */
  maxMemberBytes?: number;
}

function fromEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

/** The effective ceilings: explicit options, else the environment, else the defaults. */
export function resolveLimits(l: DataLimits = {}): Required<DataLimits> {
  return {
    maxEdgesPerGraph: l.maxEdgesPerGraph ?? fromEnv('GNNBATCH_MAX_EDGES_PER_GRAPH', 2_000_000),
    maxTotalEdges: l.maxTotalEdges ?? fromEnv('GNNBATCH_MAX_TOTAL_EDGES', 400_000_000),
    maxMemberBytes: l.maxMemberBytes ?? fromEnv('GNNBATCH_MAX_MEMBER_BYTES', 16 * 1024 * 1024),
  };
}

/** Edges a structure of `n` atoms gets under `rule` at most, or null when unknown before building (cutoff). */
export function edgeBound(n: number, rule: GraphRule): number | null {
  if (rule.kind === 'fc') return n * (n - 1);
  if (rule.kind === 'knn') return n * rule.k;
  return null;
}

const tooMany = (what: string, count: number, limit: number, option: string, env: string, file: string, entry?: number): DataLimitError =>
  new DataLimitError(
    { file, entry },
    `${what} ${count.toLocaleString('en-US')} edges, more than the ceiling of ${limit.toLocaleString('en-US')} (raise it with ${option} or ${env}, or use a sparser graph rule such as cutoff:R or knn:K)`,
    'ERR_GNN_EDGE_LIMIT',
  );

/**
 * Throws DataLimitError ERR_GNN_EDGE_LIMIT, naming the structure, when a
 * structure or the whole set would exceed the edge ceilings under `rule`
 * (checked from atom counts, before any edge is allocated; `cutoff` rules are
 * checked by {@link checkBuiltEdges}).
 */
export function checkEdgeCeilings(structures: readonly Structure[], rule: GraphRule, limits: DataLimits = {}, source = '<structures>'): void {
  const l = resolveLimits(limits);
  let total = 0;
  for (let s = 0; s < structures.length; s++) {
    const n = structures[s].numbers.length;
    const e = edgeBound(n, rule);
    if (e === null) return;
    if (e > l.maxEdgesPerGraph)
      throw tooMany(`structure ${s} ('${structures[s].id}'): ${n} atoms under '${rule.kind === 'fc' ? 'fc' : `knn:${(rule as { k: number }).k}`}' give`, e, l.maxEdgesPerGraph, 'maxEdgesPerGraph', 'GNNBATCH_MAX_EDGES_PER_GRAPH', source, s);
    total += e;
    if (total > l.maxTotalEdges)
      throw tooMany(`structures 0..${s} together have`, total, l.maxTotalEdges, 'maxTotalEdges', 'GNNBATCH_MAX_TOTAL_EDGES', source, s);
  }
}

/** The same ceilings on built graphs (for rules whose edge count is only known after building). */
export function checkBuiltEdges(edgeOffset: Int32Array, ids: readonly string[] | null, limits: DataLimits = {}, source = '<structures>'): void {
  const l = resolveLimits(limits);
  const G = edgeOffset.length - 1;
  for (let g = 0; g < G; g++) {
    const e = edgeOffset[g + 1] - edgeOffset[g];
    if (e > l.maxEdgesPerGraph)
      throw tooMany(`structure ${g}${ids ? ` ('${ids[g]}')` : ''} has`, e, l.maxEdgesPerGraph, 'maxEdgesPerGraph', 'GNNBATCH_MAX_EDGES_PER_GRAPH', source, g);
  }
  if (G >= 0 && edgeOffset[G] > l.maxTotalEdges)
    throw tooMany('the structures together have', edgeOffset[G], l.maxTotalEdges, 'maxTotalEdges', 'GNNBATCH_MAX_TOTAL_EDGES', source);
}
