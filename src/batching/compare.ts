/**
 * Simulate policies without training: run each policy for `steps` batches at
 * each batch size and report its accounting side by side.
 */
import type { GraphSizes } from './policy';
import { createPolicy, POLICY_NAMES, type PolicyOptions } from './registry';
import { ArgumentError } from '../errors';
import { DEFAULT_SEED } from '../data/split';

/** Input of {@link compareBatching}. */
export interface CompareBatchingInput {
  sizes: GraphSizes;
  /** Graph ids of the (training) split. */
  split: Int32Array;
  batchSizes: readonly number[];
  /** Policy names (default: all of {@link POLICY_NAMES}). */
  policies?: readonly string[];
  /** Batches per policy and batch size (default 100000, the study's short runs). */
  steps?: number;
  /** Stream seed (default 42, the study's). */
  seed?: number;
  /** Options passed to every policy. */
  options?: PolicyOptions;
  /** Called after each (policy, batch size) run. */
  onProgress?: (done: number, total: number, row: CompareRow) => void;
}

/** One row per (policy, batch size). Ratios are totals over the simulated steps. */
export interface CompareRow {
  policy: string;
  batch: number;
  steps: number;
  /** Batches per pass over the split (split size / stream graphs per batch). */
  batches_per_epoch: number;
  graphs_per_batch_mean: number;
  graphs_per_batch_min: number;
  graphs_per_batch_max: number;
  node_fill: number;
  edge_fill: number;
  graph_fill: number;
  /** Distinct padded shapes over the steps (compilations / plans). */
  shapes: number;
  /** Padded edges / real edges: work relative to `exact` per graph trained on. */
  padded_edges_vs_exact: number;
  padded_nodes_vs_exact: number;
  /** The fixed shape, or null for policies whose shape varies. */
  budget_nodes: number | null;
  budget_edges: number | null;
  budget_graphs: number | null;
  /** Mean nodes per graph inside a batch: mean and standard deviation over batches (size mix). */
  batch_mean_nodes: number;
  batch_mean_nodes_sd: number;
  /**
   * Drift from `dynamic` at the same batch size (null when dynamic was not run):
   * graphs per batch / dynamic's, and the size-mix spread / dynamic's.
   */
  graphs_per_batch_vs_dynamic: number | null;
  batch_mean_nodes_sd_vs_dynamic: number | null;
  /** Decision time per real graph (ns) and wall time of the whole run (s). */
  decision_ns_per_graph: number;
  seconds: number;
}

/** Run every policy at every batch size; rows ordered by batch size, then policy. */
export function compareBatching(input: CompareBatchingInput): CompareRow[] {
  const steps = input.steps ?? 100000;
  if (!(Number.isInteger(steps) && steps >= 1)) throw new ArgumentError(`steps must be an integer >= 1, got ${steps}`);
  const policies = input.policies ?? POLICY_NAMES;
  const seed = input.seed ?? DEFAULT_SEED;
  const rows: CompareRow[] = [];
  const total = policies.length * input.batchSizes.length;
  for (const batch of input.batchSizes) {
    for (const name of policies) {
      const t0 = performance.now();
      const policy = createPolicy(name, input.sizes, input.split, batch, seed, input.options);
      for (let s = 0; s < steps; s++) policy.next();
      const seconds = (performance.now() - t0) / 1000;
      const sm = policy.summary();
      const fixed = policy.fixedShape;
      const row: CompareRow = {
        policy: name,
        batch,
        steps,
        batches_per_epoch: (steps * input.split.length) / sm.streamGraphs,
        graphs_per_batch_mean: sm.graphsPerBatchMean,
        graphs_per_batch_min: sm.graphsPerBatchMin,
        graphs_per_batch_max: sm.graphsPerBatchMax,
        node_fill: sm.nodeFill,
        edge_fill: sm.edgeFill,
        graph_fill: sm.graphFill,
        shapes: sm.shapes,
        padded_edges_vs_exact: sm.paddedEdgesVsExact,
        padded_nodes_vs_exact: sm.paddedNodesVsExact,
        budget_nodes: fixed ? fixed.nodes : null,
        budget_edges: fixed ? fixed.edges : null,
        budget_graphs: fixed ? fixed.graphs : null,
        batch_mean_nodes: sm.batchMeanNodesMean,
        batch_mean_nodes_sd: sm.batchMeanNodesSd,
        graphs_per_batch_vs_dynamic: null,
        batch_mean_nodes_sd_vs_dynamic: null,
        decision_ns_per_graph: sm.decisionNsPerGraph,
        seconds,
      };
      rows.push(row);
      input.onProgress?.(rows.length, total, row);
    }
    const here = rows.filter((r) => r.batch === batch);
    const dyn = here.find((r) => r.policy === 'dynamic');
    if (dyn) {
      for (const r of here) {
        r.graphs_per_batch_vs_dynamic = r.graphs_per_batch_mean / dyn.graphs_per_batch_mean;
        r.batch_mean_nodes_sd_vs_dynamic = dyn.batch_mean_nodes_sd > 0 ? r.batch_mean_nodes_sd / dyn.batch_mean_nodes_sd : null;
      }
    }
  }
  return rows;
}

/** Format rows as a fixed-width text table (one line per row). */
export function formatCompareTable(rows: readonly CompareRow[]): string {
  const head = ['policy', 'B', 'batches/ep', 'graphs/batch (min-max)', 'node fill', 'edge fill', 'graph fill', 'shapes', 'edges vs exact', 'budget (n/e/g)', 'mix sd', 'ns/graph'];
  const body = rows.map((r) => [
    r.policy,
    String(r.batch),
    r.batches_per_epoch.toFixed(0),
    `${r.graphs_per_batch_mean.toFixed(1)} (${r.graphs_per_batch_min}-${r.graphs_per_batch_max})`,
    pct(r.node_fill),
    pct(r.edge_fill),
    pct(r.graph_fill),
    String(r.shapes),
    `${r.padded_edges_vs_exact.toFixed(3)}x`,
    r.budget_nodes === null ? '-' : `${r.budget_nodes}/${r.budget_edges}/${r.budget_graphs}`,
    r.batch_mean_nodes_sd.toFixed(2),
    r.decision_ns_per_graph.toFixed(0),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]): string => cells.map((x, c) => (c < 1 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
