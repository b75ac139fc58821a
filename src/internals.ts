/**
 * `gnnbatch/internals`: every building block below the idiomatic top level
 * (`gnnbatch`), for tools, benchmarks and experiments that need the pieces:
 * plans and the plan cache, packers, policies' classes and shape rules, data
 * formats and downloads, the study's statistics, tables, shards and the
 * recommendation's calibration, checkpoints and safetensors, kernel profiles,
 * file helpers. These names follow the code, not semver: they may change in
 * any minor release. The raw addon binding is `gnnbatch/native`.
 */
export * from './errors';
export * from './data';
export * from './batching';
export { resolveModelConfig, defaultModelConfig, MODEL_KINDS, type ModelConfig, type ModelKind } from './model/config';
export { paramLayout, initParams, isBias, type ParamLayout, type ParamEntry } from './model/params';
export { Rng } from './util/rng';
export { writeFileAtomic } from './util/atomic';
export { train, type TrainOptions, type TrainResult, type TrainProgress, type TrainedModel, type KernelProfileRow } from './train/trainer';
export { PlanCache, buildPlan, allocPackOutput, type Plan, type PlanCacheStats, type DType } from './train/plan';
export { evaluate, predictGraphs, type EvaluateArgs } from './train/evaluate';
export { loadModel, type LoadedModel } from './inference/load-model';
export { writeCheckpoint, readCheckpoint, CHECKPOINT_VERSION, type CheckpointState } from './train/checkpoint';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, type Tensor } from './train/safetensors';
export { learningRate, parseSchedule, studySchedule, type ScheduleSpec } from './train/schedule';
export { initDistributed, launchedByMpi, loadMpi, mpiModulePath, type DistributedContext, type DistributedOptions, type MpiAlgorithm, type NativeMpiApi } from './train/distributed';
export { AccumulatingEngine, Accumulation, accumulationSetup, nextGlobalBatch, orderedSlotSum, localReducer, type GradientReducer, type GlobalBatch } from './train/accumulate';
export { median, mean, std, regressionErrors } from './train/metrics';
export {
  profileSteps,
  measureProfileOverhead,
  measureLimits,
  toChromeTrace,
  writeChromeTrace,
  type ProfileOptions,
  type ProfileResult,
  type KernelProfileEntry,
  type MachineLimits,
  type ProfileOverhead,
  type ChromeTrace,
} from './train/profile';
export * from './experiment';
export * from './report';
export * from './serve';
export * from './drive';
