/**
 * The training loop: policy -> pack -> one native step (forward, backward,
 * Adam) per batch, timed exactly as the study measured (batching, update,
 * combined; compilations counted and timed separately), with evaluation,
 * checkpoints and bitwise-exact resume.
 */
import * as path from 'path';
import type { AdamStepArgs } from '../native';
import type { PolicyName, PolicyOptions, PolicyState } from '../batching';
import type { GraphStore, Split } from '../data';
import type { ModelConfig, ModelKind } from '../model/config';
import type { ParamLayout } from '../model/params';
import { needsDirections } from './plan';
import { adamStepArgs, prepareRun } from './run-setup';
import { learningRate, parseSchedule, studySchedule, type ScheduleSpec, type ScheduleText } from './schedule';
import { StepRecorder } from './recorder';
import { buildTrainResult, type TrainResult } from './result';
import { evaluate } from './evaluate';
import { lockCheckpointDir } from './checkpoint-lock';
import { prepareCheckpointDir, readCheckpoint, removeStaleFiles, writeCheckpoint, type LoadedCheckpoint } from './checkpoint';
import { ArgumentError, CheckpointError, GnnError, TrainingError, isGnnError } from '../errors';
import { CpuEngine, CudaEngine, chooseDevice, type Engine, type StepTiming } from './engine';
import { KernelProfileCollector, type TraceSource } from './profile';
import { accumulationSetup, type Accumulation, type GradientReducer } from './accumulate';
import { withDirections } from '../data/store';
import { ForceEngine, evaluateForces, forceTrainingCheck, resolveForceWeights, FORCE_TRAINING_DTYPE, type ForceLossWeights, type ForceTrainingSummary } from './force-training';

/** Options of {@link train}. */
export interface TrainOptions {
  /** The graph store to train on. */
  store: GraphStore;
  /** Target column name. */
  target: string;
  /** Model kind and any overrides of the study's configuration. */
  model?: Partial<ModelConfig> & { kind?: ModelKind };
  /** Batching policy (`static-2pow`, `static-64`, `static-constant`, `dynamic`, `packed`, `exact`). */
  policy: PolicyName;
  /** Policy options (budget estimator, studyCompat, ...). */
  policyOptions?: PolicyOptions;
  /** Batch size B. */
  batchSize: number;
  /** Number of training steps (total, including resumed ones). */
  steps: number;
  /** Seed of initialisation and of the batch stream (default 42). */
  seed?: number;
  /** Split (default: seeded 80/10/10 with `splitSeed`). */
  split?: Split;
  /** Seed of the default split (default 42, as in the study). */
  splitSeed?: number;
  /** Peak learning rate (default 1e-4). */
  lr?: number;
  /** Schedule: spec or text (`constant`, `exponential[:rate:steps]`, `cosine[:minLr]`); default the study's. */
  schedule?: ScheduleSpec | ScheduleText;
  /**
   * Fit per-element reference values on the train split and train on the
   * residual (standard for extensive targets like U0); predictions add them back.
   */
  atomref?: boolean;
  /** Global-norm gradient clipping (0/undefined = off). */
  clipNorm?: number;
  /** Evaluate on the validation split every K steps (0 = only at the end). */
  evalEvery?: number;
  /** Native threads (default: current setting). */
  threads?: number;
  /** Write checkpoints to this directory (at the end and every `checkpointEvery` steps). */
  checkpointDir?: string;
  /** Checkpoint interval in steps (0 = only at the end). */
  checkpointEvery?: number;
  /** Resume from a checkpoint directory. */
  resumeDir?: string;
  /**
   * Compute device: `cpu` (default), `cuda` (the CUDA engine: device-resident
   * store, packing on the GPU, each plan's step captured as a CUDA graph), or
   * `auto` (CUDA when this build has it and a GPU is present). On CUDA,
   * gradient clipping, the kernel profile and resume are not available, and a
   * checkpoint holds the weights only.
   */
  device?: 'cpu' | 'cuda' | 'auto';
  /**
   * Run each native step on a worker thread (Promise) so the event loop stays
   * free between and during steps (for servers); results are identical.
   */
  asyncSteps?: boolean;
  /** Collect a per-kernel profile of the update. */
  profile?: boolean;
  /**
   * With `profile` (CPU engine): also keep the events of a Chrome trace
   * (returned as `trace`; write it with `writeChromeTrace`): each step's
   * policy, plan build, pack and update spans and its kernels, plus the
   * evaluations and checkpoints of the step loop.
   */
  trace?: boolean;
  /**
   * Plan cache byte limit (default 4 GiB, evicting least recently used plans).
   * When given, it is also a hard limit per plan: a batch whose plan alone
   * needs more fails with ERR_GNN_PLAN_TOO_LARGE (the exact policy's plan
   * grows only as far as the limit allows).
   */
  planCacheBytes?: number;
  /** Skip the final test/validation evaluation (timing-only runs). */
  skipEval?: boolean;
  /** Progress callback (about every `progressEvery` steps and at the end). */
  onProgress?: (p: TrainProgress) => void;
  /** Steps between progress callbacks (default 10). */
  progressEvery?: number;
  /** Stop early when this returns true (checked between steps; a checkpoint is still written). */
  shouldStop?: () => boolean;
  /**
   * Stop early once aborted, exactly like `shouldStop`: checked between steps,
   * the run resolves (not rejects) with `stopped_early: true` and writes its
   * checkpoint, so an aborted run can be resumed.
   */
  signal?: AbortSignal;
  /**
   * Gradient accumulation (docs/scale-out.md): one step is this many
   * consecutive batches of the policy (micro-batches); their gradients
   * (native lossAndGrad, each weighted by its share of the real graphs) are
   * summed in a fixed order, then one Adam step clips and updates. Default 1:
   * the fused step, unchanged; with `distributed`, default and multiple of the
   * world size. CPU engine; not with profile or asyncSteps.
   */
  microBatches?: number;
  /**
   * Data-parallel training: the world from `initDistributed()` (MPI). Every
   * rank runs train() with the same options and computes its contiguous share
   * of the micro-batches; one ordered reduction per step makes the ranks
   * bitwise equal to one process accumulating the same micro-batches. Rank 0
   * alone writes checkpoints and evaluates; stops are agreed by every rank.
   */
  distributed?: GradientReducer;
  /**
   * Train on energies and forces (docs/forces.md, "Training"): true for the
   * default loss weights, or the weights (energy, forces, stress). The store
   * needs forces (and gets edge directions if it has none); the target must be
   * the energy whose negative gradient the forces are. CPU, one batch per step.
   */
  forces?: boolean | Partial<ForceLossWeights>;
}

/** A progress report. */
export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  stepsPerSec: number;
  compileCount: number;
}

export type { TrainResult, KernelProfileRow } from './result';

/** A trained model in memory (parameters + what is needed to use them). */
export interface TrainedModel {
  config: ModelConfig;
  layout: ParamLayout;
  params: Float32Array;
  target: string;
  targetMean: number;
  targetStd: number;
  /** Per-element reference values (index = Z) added to predictions, or null. */
  atomRefs: Float64Array | null;
  graphRule: string;
}

/** Trains a model; resolves with the measurements and the trained parameters. */
export async function train(options: TrainOptions): Promise<{ result: TrainResult; model: TrainedModel; trace?: TraceSource }> {
  // Accumulation / distributed: this rank's view of the options (null acc: the fused step).
  const { opts, acc } = accumulationSetup(options);
  const store = opts.store;
  if (!Number.isInteger(opts.steps) || opts.steps < 0) throw new ArgumentError(`steps must be a non-negative integer, got ${opts.steps}`);
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 2) throw new ArgumentError(`batch size must be an integer >= 2, got ${opts.batchSize}`);
  // Output paths are checked before any work, so a bad path fails at once, not after the last step.
  if (opts.checkpointDir) prepareCheckpointDir(opts.checkpointDir);
  // One writer per checkpoint directory, for the whole run (released on every exit path).
  const lock = opts.checkpointDir ? lockCheckpointDir(opts.checkpointDir) : null;
  try {
    return await trainLocked(opts, lock?.tookOver ? [lock.tookOver.message] : [], acc);
  } finally {
    lock?.release();
  }
}

/** {@link train} once the checkpoint directory (if any) is locked; `notes` become warnings of the result. */
async function trainLocked(opts: TrainOptions, notes: string[], acc: Accumulation | null): Promise<{ result: TrainResult; model: TrainedModel; trace?: TraceSource }> {
  const forceWeights = opts.forces ? resolveForceWeights(opts.forces === true ? {} : opts.forces) : null;
  if (forceWeights) forceTrainingCheck(opts, acc !== null);
  const store = forceWeights ? await withDirections(opts.store) : opts.store;
  const run = prepareRun({
    store, target: opts.target, model: opts.model, policy: opts.policy, policyOptions: opts.policyOptions, batchSize: opts.batchSize,
    seed: opts.seed, split: opts.split, splitSeed: opts.splitSeed, threads: opts.threads, atomref: opts.atomref, skipEval: opts.skipEval,
    // A planCacheBytes the caller sets is a hard limit (also on the exact policy's single growing plan).
    planCacheBytes: opts.planCacheBytes, planCacheHard: opts.planCacheBytes !== undefined,
  });
  const { seed, split, config, layout, policy, cache } = run;
  const { rawStats, stats, offsets, atomRefs, arrays, warnings } = run.targets;
  // The elements the model is trained on (the checkpoint keeps them: serving flags structures with others).
  const trainElements = elementsOf(store, split.train);
  warnings.unshift(...notes);
  const lr = opts.lr ?? 1e-4;
  const schedule: ScheduleSpec =
    typeof opts.schedule === 'string' ? parseSchedule(opts.schedule, lr, opts.steps) : opts.schedule ?? studySchedule(lr);
  const device = chooseDevice(config, opts);
  if (needsDirections(config) && !store.directions)
    throw new GnnError('ERR_GNN_DATA_DIRECTIONS', 'PaiNN needs the edge direction vectors, but the store was built without them: build it with directions: true (buildStore, loadSource)');

  let { params, m, v } = run.state;
  const grads = run.state.grads;
  let startStep = 0;
  let savedStep: number | null = null;
  const lossCurve: { step: number; loss: number }[] = [];
  let recentLosses: number[] = [];
  const evalCurve: { step: number; val_rmse: number; val_mae: number }[] = [];
  if (opts.resumeDir) {
    const ck = readCheckpoint(opts.resumeDir, { optimizer: true });
    checkResumeCompatible(ck, config, opts, seed, { target: run.target, graphRule: store.graphRule, targetMean: stats.mean, targetStd: stats.std, microBatches: acc ? acc.microBatches : 1 });
    params = ck.params;
    m = ck.m as Float32Array;
    v = ck.v as Float32Array;
    startStep = ck.step;
    // Resuming into the directory resumed from: its checkpoint already is this step's.
    if (opts.checkpointDir && path.resolve(opts.checkpointDir) === path.resolve(opts.resumeDir)) {
      savedStep = startStep;
      removeStaleFiles(opts.checkpointDir);
    }
    try {
      policy.setState(ck.policyState as PolicyState);
    } catch (e) {
      throw new CheckpointError(opts.resumeDir, `field 'policyState' cannot restore the ${opts.policy} policy: ${(e as Error).message}`, 'ERR_GNN_CHECKPOINT_FIELD', { cause: e });
    }
    lossCurve.push(...ck.lossCurve);
    evalCurve.push(...ck.evalCurve);
    recentLosses = ck.recentLosses ?? [];
  }

  const n = opts.steps - startStep;
  const recorder = new StepRecorder(n, opts.steps, lossCurve, recentLosses);
  let stopped = false;
  let lastYield = Date.now();
  const forceSummary: ForceTrainingSummary | null = forceWeights ? { weights: forceWeights, dtype: FORCE_TRAINING_DTYPE, val: null, test: null } : null;
  const forceEnergyColumn = (): Float64Array => {
    const T = store.targetNames.length, t = store.targetNames.indexOf(run.target);
    return Float64Array.from({ length: store.numGraphs }, (_, g) => store.targets[g * T + t]);
  };
  let tStart = Date.now();
  const progressEvery = opts.progressEvery ?? 10;
  const ckEvery = opts.checkpointEvery ?? 0;
  if (opts.trace && (!opts.profile || device === 'cuda')) throw new ArgumentError('trace needs profile: true on the CPU engine (device cpu)');
  const kernelCollector = opts.profile && device !== 'cuda' ? new KernelProfileCollector(Math.max(0, n), opts.trace === true) : null;

  const save = (step: number): void => {
    if (!opts.checkpointDir || savedStep === step) return;
    const tc = process.hrtime.bigint();
    writeCheckpoint(opts.checkpointDir, {
      config,
      layout,
      params,
      m,
      v,
      step,
      seed,
      policy: opts.policy,
      policyOptions: opts.policyOptions ?? {},
      policyState: policy.getState(),
      batchSize: opts.batchSize,
      target: run.target,
      targetMean: stats.mean,
      targetStd: stats.std,
      atomRefs: atomRefs ? Array.from(atomRefs) : null,
      graphRule: store.graphRule,
      schedule,
      clipNorm: opts.clipNorm ?? 0,
      lossCurve,
      evalCurve,
      hasOptimizer: device !== 'cuda',
      recentLosses: recorder.recentLosses(),
      forceTraining: forceSummary,
      elements: trainElements,
      microBatches: acc ? acc.microBatches : 1,
    });
    kernelCollector?.span('checkpoint', tc, process.hrtime.bigint(), { step });
    savedStep = step;
  };
  // Where a failed step leaves the user (for error messages).
  const lastCheckpoint = (): string =>
    !opts.checkpointDir ? 'no checkpoint directory was given'
    : savedStep !== null ? `the last checkpoint (step ${savedStep}) is in ${opts.checkpointDir}`
    : opts.resumeDir ? `the last checkpoint is the one resumed from (step ${startStep}, ${opts.resumeDir})`
    : 'no checkpoint was written yet';

  // The engine (CPU or CUDA, one interface): the weights live in `params`
  // (the CPU engine updates them in place; the CUDA engine on syncParams()).
  const engine: Engine = forceWeights
    ? new ForceEngine(store, arrays, config, { params, m, v }, { weights: forceWeights, targetStd: stats.std, kernelCollector })
    : device === 'cuda'
    ? new CudaEngine(arrays, config, params)
    : acc ? acc.createEngine(arrays, cache, { params, m, v })
    : new CpuEngine(arrays, cache, { params, grads, m, v }, { asyncSteps: opts.asyncSteps, profile: opts.profile, kernelCollector });

  const adamArgs = (step: number): AdamStepArgs => adamStepArgs(step, learningRate(schedule, step), opts.clipNorm ?? 0);
  const ms = (from: bigint, to: bigint): number => Number(to - from) / 1e6;
  // RMSE and MAE in the target's units (host params must be current: engine.syncParams()).
  const evaluateOn = (ids: Int32Array) => evaluate({ store, arrays, ids, config, params, targetMean: stats.mean, targetStd: stats.std, offsets, batchSize: opts.batchSize });

  let i = 0;
  for (; i < n; i++) {
    const step = startStep + i;
    if (opts.signal?.aborted || opts.shouldStop?.()) {
      stopped = true;
      break;
    }
    const t0 = process.hrtime.bigint();
    const spec = acc ? acc.nextBatch(policy) : policy.next();
    let r: StepTiming;
    try {
      r = await engine.step(spec, step, adamArgs(step), t0);
    } catch (e) {
      if (isGnnError(e) && e.code === 'ERR_GNN_NONFINITE')
        throw new TrainingError('ERR_GNN_NONFINITE', `step ${step + 1}: ${e.message} (batch of graphs ${describeIds(spec.graphIds)}); ${lastCheckpoint()}`, { cause: e });
      throw e;
    }
    // An infinite gradient with a finite loss would make Adam's second moment
    // infinite and freeze every weight it touches without any error: stop here.
    // (NaN = not reported by the engine.)
    if (r.gradNorm === Infinity || r.gradNorm === -Infinity || (Number.isNaN(r.gradNorm) && engine.reportsGradNorm))
      throw new TrainingError(
        'ERR_GNN_NONFINITE_GRADIENT',
        `step ${step + 1}: the gradient norm is ${r.gradNorm} (loss ${r.loss}) on the batch of graphs ${describeIds(spec.graphIds)}; ` +
          `training stopped, since Adam's moments are now infinite and would freeze the weights; this step's update is not saved (try clipNorm, a lower lr, or check these graphs' distances and targets); ${lastCheckpoint()}`,
      );
    recorder.record(step, spec.graphIds.length, r, ms(t0, process.hrtime.bigint()));
    if (opts.evalEvery && (step + 1) % opts.evalEvery === 0 && step + 1 < opts.steps && split.val.length > 0) {
      engine.syncParams();
      const te = process.hrtime.bigint();
      const e = evaluateOn(split.val);
      kernelCollector?.span('eval', te, process.hrtime.bigint(), { split: 'val', graphs: split.val.length, step: step + 1 });
      evalCurve.push({ step: step + 1, val_rmse: e.rmse, val_mae: e.mae });
    }
    if (ckEvery > 0 && (step + 1) % ckEvery === 0) {
      engine.syncParams();
      save(step + 1);
    }
    if (opts.onProgress && ((i + 1) % progressEvery === 0 || i === n - 1)) {
      const el = (Date.now() - tStart) / 1000;
      const compileCount = engine.compileStats().builds;
      opts.onProgress({ step: step + 1, steps: opts.steps, loss: r.loss, stepsPerSec: (i + 1) / Math.max(el, 1e-9), compileCount });
    }
    if (Date.now() - lastYield > 100) {
      await new Promise((res) => setImmediate(res));
      lastYield = Date.now();
    }
  }
  const flops = engine.flops();
  const ran = i;
  engine.syncParams();
  const profileSeconds = engine.profileSeconds();
  if (forceWeights && forceSummary) {
    // Force metrics first, so that the final checkpoint carries them.
    const evalForces = (ids: Int32Array) => evaluateForces({ store, arrays, ids, config, params, targetMean: stats.mean, targetStd: stats.std, offsets, energy: forceEnergyColumn(), batchSize: opts.batchSize });
    if (!opts.skipEval) {
      if (split.val.length) forceSummary.val = evalForces(split.val);
      if (split.test.length) forceSummary.test = evalForces(split.test);
    }
  }
  save(startStep + ran);

  let val = { rmse: NaN, mae: NaN };
  let test = { rmse: NaN, mae: NaN };
  if (!opts.skipEval) {
    const te = process.hrtime.bigint();
    if (split.val.length) val = evaluateOn(split.val);
    const tt = process.hrtime.bigint();
    if (split.test.length) test = evaluateOn(split.test);
    kernelCollector?.span('eval', te, tt, { split: 'val', graphs: split.val.length, step: startStep + ran });
    kernelCollector?.span('eval', tt, process.hrtime.bigint(), { split: 'test', graphs: split.test.length, step: startStep + ran });
    evalCurve.push({ step: startStep + ran, val_rmse: val.rmse, val_mae: val.mae });
    for (const [name, ids, e] of [['validation', split.val, val], ['test', split.test, test]] as const) {
      if (ids.length > 0 && Number.isNaN(e.rmse) && !warnings.some((w) => w.includes(`of the ${name} split`)))
        warnings.push(`the ${name} RMSE is NaN although every ${name} target is finite: the model's predictions are not finite`);
    }
  }

  const result = buildTrainResult({
    config, paramCount: layout.total, policy: opts.policy, batch: opts.batchSize, seed, target: run.target, device,
    startStep, ran, timings: recorder.timings(), compile: engine.compileStats(), flops, batching: policy.summary(),
    val, test, rawStats, stats, atomref: !!opts.atomref, lossCurve, evalCurve,
    profileSeconds: opts.profile ? profileSeconds : null, kernelCollector, stopped, savedStep, warnings,
  });
  if (forceSummary) result.force_training = forceSummary;
  return {
    result,
    model: { config, layout, params, target: run.target, targetMean: stats.mean, targetStd: stats.std, atomRefs: atomRefs ?? null, graphRule: store.graphRule },
    trace: kernelCollector?.events ? { label: 'gnnbatch train', model: config.kind, policy: opts.policy, batch: opts.batchSize, events: kernelCollector.events } : undefined,
  };
}

/** The first few ids of a batch, for messages. */
function describeIds(ids: Int32Array): string {
  const shown = Array.from(ids.subarray(0, 8)).join(', ');
  return ids.length > 8 ? `${shown}, ... (${ids.length} graphs)` : shown;
}

function checkResumeCompatible(
  ck: LoadedCheckpoint,
  config: ModelConfig,
  opts: TrainOptions,
  seed: number,
  data: { target: string; graphRule: string; targetMean: number; targetStd: number; microBatches: number },
): void {
  const dir = opts.resumeDir as string;
  const mismatch = (what: string, a: unknown, b: unknown): never => {
    throw new CheckpointError(dir, `cannot resume: checkpoint ${what} is ${JSON.stringify(a)} but this run asks for ${JSON.stringify(b)}`, 'ERR_GNN_CHECKPOINT_MISMATCH');
  };
  if (JSON.stringify(ck.config) !== JSON.stringify(config)) mismatch('model config', ck.config, config);
  if (ck.policy !== opts.policy) mismatch('policy', ck.policy, opts.policy);
  if (ck.batchSize !== opts.batchSize) mismatch('batch size', ck.batchSize, opts.batchSize);
  if (ck.target !== data.target) mismatch('target', ck.target, data.target);
  if (ck.seed !== seed) mismatch('seed', ck.seed, seed);
  if (ck.step > opts.steps) mismatch('step', ck.step, `at most ${opts.steps} steps`);
  if (ck.graphRule !== data.graphRule) mismatch('graph rule', ck.graphRule, data.graphRule);
  // The step, the schedule and the policy's stream count in micro-batches: any world size, the same count.
  if (ck.microBatches !== null && ck.microBatches !== undefined && ck.microBatches !== data.microBatches)
    mismatch('micro-batches per step (gradient accumulation / MPI; any number of ranks resumes, with the same count)', ck.microBatches, data.microBatches);
  if (ck.targetMean !== data.targetMean || ck.targetStd !== data.targetStd)
    mismatch('target standardisation (other data or split?)', [ck.targetMean, ck.targetStd], [data.targetMean, data.targetStd]);
  if (!ck.hasOptimizer || !ck.m || !ck.v) {
    throw new CheckpointError(dir, 'cannot resume: the checkpoint has no optimizer state (it was written by a CUDA run, which keeps Adam moments on the device)', 'ERR_GNN_CHECKPOINT_MISMATCH');
  }
}

/** The atomic numbers present in the graphs `ids` of `store`, ascending. */
export function elementsOf(store: Pick<GraphStore, 'nodeOffset' | 'atomicNumber'>, ids: ArrayLike<number>): number[] {
  const seen = new Uint8Array(256);
  for (let k = 0; k < ids.length; k++) {
    const g = ids[k];
    for (let n = store.nodeOffset[g]; n < store.nodeOffset[g + 1]; n++) seen[store.atomicNumber[n]] = 1;
  }
  const out: number[] = [];
  seen.forEach((v, z) => v && out.push(z));
  return out;
}
