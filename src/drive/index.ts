/** The force engine: the i-PI socket client and the checkpoint driver built on it. */
export * from './ipi';
export * from './driver';
export { ForceEvaluator, propertyList, type PropertyName, type ForceModel } from '../inference/force-evaluator';
