/** Synthetic study rows and results (no training): timing tables with known answers for the decision, price and report tests. */
import type { StudyResults, StudyRow } from '../../../src/experiment';

/** One row; `ms` is the run's median step time, the rest defaults to a plain 20-step CPU run. */
export function syntheticRow(o: { data?: string; model?: string; policy: string; batch?: number; rep: number; ms: number; compiles?: number; compileMs?: number; graphs?: number; padded?: number }): StudyRow {
  const batch = o.batch ?? 16;
  const compiles = o.compiles ?? 1;
  return {
    data: o.data ?? 'qm9-like:300', model: o.model ?? 'schnet', policy: o.policy, batch, rep: o.rep, seed: 42 + o.rep, target: 'U0', steps: 20, threads: 2,
    eval_graphs_val: 16, eval_graphs_test: 16, budget_estimation_graphs: 240,
    ms_per_step_median: o.ms, batching_ms_median: 0.1 * o.ms, update_ms_median: 0.9 * o.ms, combined_ms_median: o.ms,
    batching_ms_mean: 0.1 * o.ms, update_ms_mean: 0.9 * o.ms, combined_ms_mean: o.ms * 1.05,
    compile_count: compiles, compile_ms_total: compiles * (o.compileMs ?? 5), graphs_per_s: ((o.graphs ?? batch) * 1000) / o.ms,
    node_fill: 0.8, edge_fill: 1 / (o.padded ?? 1.25), graph_fill: 0.95, graphs_per_batch_mean: o.graphs ?? batch, padded_edges_vs_exact: o.padded ?? 1.25,
    final_train_loss: 0.9, val_rmse: 1, val_mae: 0.8, test_rmse: 1, test_mae: 0.8, target_std: 1, atomref: false, residual_std: 1, gflops: 1,
    cell_seconds: 1, cpu_model: 'Test CPU', cpu_cores: 2, node_version: 'v20.0.0', native_build: 'Release', native_simd: 'avx2', native_openmp: true,
    finished_at: '2026-01-01T00:00:00.000Z', loss_curve: [{ step: 1, loss: 1 }, { step: 20, loss: 0.9 }],
  };
}

/** A results document around rows (one data summary per data set, a 2-core environment). */
export function syntheticResults(rows: StudyRow[]): StudyResults {
  const data = [...new Set(rows.map((r) => r.data))];
  const hist = { edges: [1, 10, 100, 1000], counts: [5, 50, 2] };
  return {
    version: 1, created: '2026-01-01T00:00:00.000Z', updated: '2026-01-01T00:00:00.000Z',
    environment: { cpu_model: 'Test CPU', cpu_cores: 2, total_memory_gib: 8, platform: 'linux', arch: 'x64', node_version: 'v20.0.0', gnnbatch_version: '0.0.0', native: { backend: 'cpu', cuda: { compiled: false, devices: 0 }, threads: 2, openmp: true, build: 'Release', simd: 'avx2', isa: 'native', features: [] } },
    grid: { data, models: [...new Set(rows.map((r) => r.model))], policies: [...new Set(rows.map((r) => r.policy))], batches: [...new Set(rows.map((r) => r.batch))], reps: 2, steps: 20, base_seed: 42, eval_graphs: 16, atomref: 'off' },
    data: data.map((d) => ({ data: d, target: 'U0', graphs: 300, train_graphs: 240, nodes_histogram: hist, edges_histogram: hist, nodes_mean: 18, edges_mean: 300, nodes_max: 29, edges_max: 812, simulated_steps: 50, simulation: [] })),
    rows,
  };
}
