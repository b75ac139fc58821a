/** Serving: a micro-batching predictor, request-payload parsing, and the HTTP server. */
export { createPredictor, type Predictor, type PredictorOptions, type PredictorStats, type PredictCallOptions, type PredictPropertiesOptions, type PredictedProperties, type BatchBudget, type BatchRecord } from './predictor';
export { structureFromJson, structuresFromJson, structuresFromExtxyz, MAX_COORDINATE, type StructureJson, type StructureLimits } from './structures';
export { startServer, type ServeOptions, type RunningServer } from './server';
