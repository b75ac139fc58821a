/**
 * The result of a training run: every figure of the `--json` document of
 * `gnnbatch train` (and of a study row), assembled from the run's named parts
 * by {@link buildTrainResult}.
 */
import type { ForceTrainingSummary } from './force-training';
import { getThreads } from '../native';
import type { BatchingSummary } from '../batching';
import type { TargetStats } from '../data';
import type { ModelConfig, ModelKind } from '../model/config';
import { measureLimits, type KernelProfileCollector, type KernelProfileEntry, type MachineLimits } from './profile';
import type { StepTimings } from './recorder';

/** Per-kernel share of the update time (opt-in profile). */
export interface KernelProfileRow {
  kernel: string;
  ms_per_step: number;
  share: number;
}

/** Everything a run measured (the `--json` document of `gnnbatch train`); the step timings are {@link StepTimings}. */
export interface TrainResult extends StepTimings {
  /** Energy+forces runs only (train option `forces`): the loss weights and the energy, force and stress metrics (docs/forces.md). */
  force_training?: ForceTrainingSummary;
  model: ModelKind;
  policy: string;
  batch: number;
  seed: number;
  target: string;
  steps: number;
  /** Compute device the run used. */
  device: 'cpu' | 'cuda';
  /** Steps run in this invocation (less than `steps` after a resume). */
  steps_run: number;
  threads: number;
  /**
   * The headline time of one step (ms): by definition the same number as
   * `combined_ms_median` (the median wall time of batching + update, plan
   * builds included where they happen), under the name the study's results,
   * the CLI and the README report.
   */
  ms_per_step_median: number;
  compile_count: number;
  compile_ms_total: number;
  node_fill: number;
  edge_fill: number;
  graph_fill: number;
  graphs_per_batch_mean: number;
  padded_edges_vs_exact: number;
  val_rmse: number;
  val_mae: number;
  test_rmse: number;
  test_mae: number;
  /** Mean and standard deviation of the raw target over the train split. */
  target_mean: number;
  target_std: number;
  /** Whether per-element reference values were fitted and subtracted. */
  atomref: boolean;
  /** Standard deviation of what the network learns (the residual after atomrefs, else the target). */
  residual_std: number;
  params: number;
  gflop_per_step: number;
  gflops: number;
  loss_curve: { step: number; loss: number }[];
  eval_curve: { step: number; val_rmse: number; val_mae: number }[];
  profile?: KernelProfileRow[];
  /** Per kernel call site (CPU engine, `profile`): calls, time, flops, bytes, roofline bound, padding share (see ./profile). */
  kernel_profile?: { limits: MachineLimits; kernels: KernelProfileEntry[]; dropped_records: number };
  stopped_early: boolean;
  /** Step of the last checkpoint written by this run (null when none was written). */
  checkpoint_step: number | null;
  /**
   * Problems that did not stop the run but make a figure unusable, e.g. a
   * validation RMSE that is NaN because a validation graph has no finite target.
   */
  warnings: string[];
}

/** What {@link buildTrainResult} assembles. */
export interface TrainResultParts {
  config: ModelConfig;
  paramCount: number;
  policy: string;
  batch: number;
  seed: number;
  target: string;
  device: 'cpu' | 'cuda';
  /** The step this invocation started at (0, or the resumed checkpoint's) and the steps it ran. */
  startStep: number;
  ran: number;
  timings: StepTimings;
  compile: { builds: number; buildMs: number };
  /** Matrix-product flops of the steps run. */
  flops: number;
  batching: BatchingSummary;
  val: { rmse: number; mae: number };
  test: { rmse: number; mae: number };
  rawStats: TargetStats;
  stats: TargetStats;
  atomref: boolean;
  lossCurve: { step: number; loss: number }[];
  evalCurve: { step: number; val_rmse: number; val_mae: number }[];
  /** Native phase seconds of the run (with `profile`), else null. */
  profileSeconds: Record<string, number> | null;
  kernelCollector: KernelProfileCollector | null;
  stopped: boolean;
  savedStep: number | null;
  warnings: string[];
}

/** The run's {@link TrainResult}: per-step figures from the recorder, the rest from the run's parts. */
export function buildTrainResult(p: TrainResultParts): TrainResult {
  const { ran, timings } = p;
  const flopsPerStep = ran > 0 ? p.flops / ran : 0;
  let profile: KernelProfileRow[] | undefined;
  if (p.profileSeconds && ran > 0) {
    const secs = p.profileSeconds;
    const total = Object.values(secs).reduce((s, x) => s + x, 0);
    profile = Object.entries(secs)
      .map(([kernel, s]) => ({ kernel, ms_per_step: (s * 1000) / ran, share: total > 0 ? s / total : 0 }))
      .sort((x, y) => y.ms_per_step - x.ms_per_step);
  }
  const collector = p.kernelCollector;
  const kernelProfile = collector && ran > 0 ? (() => {
    const limits = measureLimits();
    return { limits, kernels: collector.rows(limits), dropped_records: collector.dropped };
  })() : undefined;
  return {
    model: p.config.kind,
    policy: p.policy,
    batch: p.batch,
    seed: p.seed,
    target: p.target,
    steps: p.startStep + ran,
    steps_run: ran,
    threads: getThreads(),
    device: p.device,
    ms_per_step_median: timings.combined_ms_median,
    batching_ms_median: timings.batching_ms_median,
    update_ms_median: timings.update_ms_median,
    combined_ms_median: timings.combined_ms_median,
    batching_ms_mean: timings.batching_ms_mean,
    update_ms_mean: timings.update_ms_mean,
    combined_ms_mean: timings.combined_ms_mean,
    compile_count: p.compile.builds,
    compile_ms_total: p.compile.buildMs,
    graphs_per_s: timings.graphs_per_s,
    node_fill: p.batching.nodeFill,
    edge_fill: p.batching.edgeFill,
    graph_fill: p.batching.graphFill,
    graphs_per_batch_mean: p.batching.graphsPerBatchMean,
    padded_edges_vs_exact: p.batching.paddedEdgesVsExact,
    final_train_loss: timings.final_train_loss,
    val_rmse: p.val.rmse,
    val_mae: p.val.mae,
    test_rmse: p.test.rmse,
    test_mae: p.test.mae,
    target_mean: p.rawStats.mean,
    target_std: p.rawStats.std,
    atomref: p.atomref,
    residual_std: p.stats.std,
    params: p.paramCount,
    gflop_per_step: flopsPerStep / 1e9,
    gflops: timings.update_ms_median > 0 ? flopsPerStep / 1e9 / (timings.update_ms_median / 1000) : 0,
    loss_curve: p.lossCurve,
    eval_curve: p.evalCurve,
    profile,
    kernel_profile: kernelProfile,
    stopped_early: p.stopped,
    checkpoint_step: p.savedStep,
    warnings: p.warnings,
  };
}
