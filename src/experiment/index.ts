/** Public API of the experiment layer: the study's grid, its statistics and the policy recommendation. */
export {
  runStudy, studyCells, studyGrid, gridLoadOptions, DEFAULT_DATA, DEFAULT_MODELS, DEFAULT_BATCHES, DEFAULT_STEPS, DEFAULT_REPS,
  DEFAULT_EVAL_GRAPHS, FULL_STEPS, FULL_REPS, FORCE_STEP_COST_FACTOR, forceRms,
  type StudyOptions, type StudyCell, type StudyProgress, type StudyOutcome,
} from './study';
export {
  RESULTS_VERSION, CSV_COLUMNS, FORCE_COLUMNS, TIMING_COLUMNS, ENVIRONMENT_COLUMNS, StudyError, studyTraining, forceWeightsText, cellKey, currentEnvironment, resultsToCsv, writeResults, readResults,
  gridSpec, gridFingerprint, firstGridDifference, storeDigest,
  type Environment, type StudyRow, type DataSummary, type StudyResults, type StudyGrid, type GridLoadOptions, type ShardRecord,
  type CellCostCoefficients, type MergedShard,
} from './results';
export {
  parseShardSpec, shardFromEnvironment, resolveShard, shardDirName, estimateCellCosts, planShards, planDigest, planStudyShards, parseCostModels,
  REFERENCE_COST_MODELS, EVAL_FORWARD_FRACTION, PLAN_SIMULATE_STEPS,
  type ShardSpec, type ResolvedShard, type SourceCostInput, type CellCostEstimate, type ShardGroup, type ShardPlan, type PlannedCell, type PlanStudyOptions,
} from './shard';
export { mergeStudyResults, mergeStudyDirs, findResultsFiles, mixedHardware, type MergeInput, type MergeOutcome, type MergeOptions, type MixedHardware } from './merge';
export {
  analyseStudy, studentTTest, welchTTest, twoSidedP, sampleMean, sampleVariance, sampleMedian, predictCosts, cheapestPolicies,
  policyCosts, recommendPolicies, overallRecommendations,
  type TTest, type PolicySummary, type TTestRow, type CostRow, type StudyAnalysis, type PolicyCost, type CellRecommendation, type OverallRecommendation,
} from './stats';
export { learnedCells, LEARNED_RMSE_FRACTION, type LearnedCell } from './learned';
export { studyTables, speedupTables, stepTimeTables, ttestTable, costTables, recommendationTable, overallTable, RANKING_STATISTIC, tableToText, tableToMarkdown, type Table } from './tables';
export {
  recommend, calibrateCostModel, calibrationSpread, measuredLabel, verifyRecommendation, studyHitRate, CALIBRATION_SCALES,
  type CalibrationPoint, type CostModel, type CalibrateOptions, type RecommendOptions, type Recommendation,
  type VerifyRow, type Verification, type HitRow, type HitRate,
} from './recommend';
export { predictPolicyTimes, type PolicyPrediction, type StepCostCoefficients } from './policy-simulation';
export { leastSquares, nonNegativeFit } from './least-squares';
export {
  compareForceStudy, comparisonProblem, forceComparisonTables, forceComparisonSentences, forceStudyMarkdown,
  type ForceComparison, type ComparedCell, type ComparedPair, type SideDecision, type PolicyStanding,
} from './force-compare';
