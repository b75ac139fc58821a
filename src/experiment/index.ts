/** Public API of the experiment layer: the study's grid, its statistics and the policy recommendation. */
export {
  runStudy, studyCells, DEFAULT_DATA, DEFAULT_MODELS, DEFAULT_BATCHES, DEFAULT_STEPS, DEFAULT_REPS,
  DEFAULT_EVAL_GRAPHS, FULL_STEPS, FULL_REPS,
  type StudyOptions, type StudyCell, type StudyProgress, type StudyOutcome,
} from './study';
export {
  RESULTS_VERSION, CSV_COLUMNS, cellKey, currentEnvironment, resultsToCsv, writeResults, readResults,
  type Environment, type StudyRow, type DataSummary, type StudyResults,
} from './results';
export {
  analyseStudy, studentTTest, welchTTest, twoSidedP, sampleMean, sampleVariance, sampleMedian, predictCosts, cheapestPolicies,
  type TTest, type PolicySummary, type TTestRow, type CostRow, type StudyAnalysis,
} from './stats';
export { studyTables, speedupTables, stepTimeTables, ttestTable, costTables, tableToText, tableToMarkdown, type Table } from './tables';
export {
  recommend, calibrateCostModel, predictPolicyTimes, verifyRecommendation, studyHitRate, leastSquares, nonNegativeFit, CALIBRATION_SCALES,
  type CalibrationPoint, type CostModel, type CalibrateOptions, type PolicyPrediction, type RecommendOptions, type Recommendation,
  type VerifyRow, type Verification, type HitRow, type HitRate,
} from './recommend';
