/**
 * gnnbatch: fast GNN training on molecular and materials graphs, and the
 * batching study (static vs dynamic vs packed vs exact) on your own data.
 *
 * The top level is the idiomatic API, in eight groups (see docs/api.md):
 * sources, stores, policies, train, models and predictors, study, report,
 * errors (plus the native build's info and thread count). Everything else
 * lives under two subpaths:
 * - `gnnbatch/native`: the raw 1:1 binding of the addon (`native()`,
 *   `NativeAddon`, plans, kernels, the CUDA engine);
 * - `gnnbatch/internals`: the building blocks (plan cache, packers, policy
 *   classes, formats, statistics, tables, shards, checkpoints, profiles,
 *   file helpers), with no stability promise.
 *
 * Layers (imports only go downwards): experiment -> train -> batching/model ->
 * data -> native.
 */

// ---- sources: structures from files, data sets and generators -----------------------
export { loadSource, readStructures, type LoadSourceOptions, type LoadedSource } from './data/source';
export { getDataset, DATASETS, type DatasetName, type GetDatasetOptions, type GetDatasetResult } from './data/download';
export { qm9Like, aflowLike } from './data/synthetic';
export { SOURCE_FORMATS, type SourceFormat } from './data/formats/detect';
export type { Structure } from './data/types';

// ---- stores: the columnar graph store, its cache file and splits ------------------
export { buildStore, buildStoreAsync, withDirections, type BuildStoreOptions, type BuildStoreResult } from './data/store';
export { saveStore, loadStore, type LoadStoreOptions } from './data/cache';
export { splitGraphs, type SplitOptions } from './data/split';
export { storeStats, type StoreStats } from './data/stats';
export { parseGraphRule, type GraphRule } from './data/graph-rule';
export type { GraphStore, Split } from './data/types';

// ---- policies: which graphs go into the next batch, and its padded shape ------------
export { createPolicy, isPolicyName, POLICY_NAMES, type PolicyName, type PolicyOptions } from './batching/registry';
export { compareBatching, type CompareBatchingInput, type CompareRow } from './batching/compare';
export type { BatchSpec, GraphSizes, Policy } from './batching/policy';
export { sizesOf } from './batching/sizes';

// ---- train ----------------------------------------------------------------------------
export { train, type TrainOptions, type TrainResult, type TrainProgress, type TrainedModel } from './train/trainer';
export { parseSchedule, type ScheduleSpec } from './train/schedule';
export { initDistributed, type DistributedContext } from './train/distributed';
export { profileSteps, writeChromeTrace, type ProfileOptions, type ProfileResult } from './train/profile';

// ---- models and predictors ----------------------------------------------------------
export { resolveModelConfig, MODEL_KINDS, type ModelConfig, type ModelKind } from './model/config';
export { loadModel, type LoadedModel } from './inference/load-model';
export { type PropertyName, type PredictedProperties } from './inference/force-evaluator';
export { createPredictor, type Predictor, type PredictorOptions, type PredictorStats, type PredictCallOptions, type PredictPropertiesOptions } from './serve/predictor';
export { structuresFromJson, structuresFromExtxyz, type StructureJson } from './serve/structures';
export { startServer, type ServeOptions, type RunningServer } from './serve/server';

// ---- the force engine: an i-PI driver for ASE, i-PI, LAMMPS (the rest: gnnbatch/internals) --
export { createDriver } from './drive/driver';

// ---- study: the batching grid, its analysis, shards and the recommendation --------------
export { runStudy, type StudyOptions, type StudyProgress, type StudyOutcome } from './experiment/study';
export { readResults, writeResults, type StudyResults, type StudyRow } from './experiment/results';
export { analyseStudy, type StudyAnalysis } from './experiment/stats';
export { mergeStudyDirs, mergeStudyResults, type MergeOutcome } from './experiment/merge';
export { recommend, type RecommendOptions, type Recommendation } from './experiment/recommend';

// ---- report ---------------------------------------------------------------------------
export { renderReport, renderProfileReport, studyMarkdown, type ReportOptions } from './report';

// ---- errors -----------------------------------------------------------------------------
export {
  GnnError, isGnnError, ArgumentError, UsageError, DataFormatError, DataLimitError, CacheError, CheckpointError, TrainingError,
  type GnnErrorCode, type GnnErrorOptions, type DataLocation,
} from './errors';
export { GraphTooLargeError } from './batching/errors';
export { StudyError } from './experiment/results';

// ---- the native build: what was loaded, and its threads ---------------------------------
export { nativeInfo, addonLocation, setThreads, getThreads, type NativeInfo, type AddonLocation } from './native';
