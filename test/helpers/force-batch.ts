/**
 * A float64 force-training batch for gradient checks of the training loss:
 * graphs 0..2 of `store` packed with a padding graph (2 nodes, 3 edges more)
 * on a plan with the force pass's and the double backward's buffers, and
 * seeded parameters (initial values moved by up to 0.1) and energy targets.
 */
import { native } from '../../src/native';
import { packerArrays, type GraphStore } from '../../src/data';
import type { ModelConfig } from '../../src/model/config';
import { initParams, paramLayout, type ParamLayout } from '../../src/model/params';
import { buildPlan, inputsFor, type Plan } from '../../src/train/plan';
import type { PackOutput, PackShape } from '../../src/native';
import { testRng } from './batch';

export interface ForceTrainingBatch {
  layout: ParamLayout;
  params: Float64Array;
  /** Standardised energy targets of graphs 0..2. */
  target: Float64Array;
  ids: Int32Array;
  /** Real nodes of the three graphs. */
  nodes: number;
  shape: PackShape;
  plan: Plan;
  inputs: PackOutput;
}

/** See the module comment; `seed` seeds the parameters' perturbation and then the targets (in that order). */
export function forceTrainingBatch(store: GraphStore, config: ModelConfig, seed: number): ForceTrainingBatch {
  const layout = paramLayout(config);
  const params = initParams(layout, 3, 'float64') as Float64Array;
  const rnd = testRng(seed);
  for (let i = 0; i < params.length; i++) params[i] += (rnd() - 0.5) * 0.2;
  const target = Float64Array.from({ length: 3 }, () => rnd() - 0.5);
  const ids = Int32Array.of(0, 1, 2);
  let nodes = 0, edges = 0;
  for (const g of ids) (nodes += store.nodeOffset[g + 1] - store.nodeOffset[g]), (edges += store.edgeOffset[g + 1] - store.edgeOffset[g]);
  const shape = { nodes: nodes + 2, edges: edges + 3, graphs: 4 }; // a padding graph
  const plan = buildPlan(config, shape, 'float64', true, { forces: true, forceTraining: true });
  const inputs = inputsFor(plan, shape);
  native().packGraphs(packerArrays(store, target), ids, shape, inputs);
  return { layout, params, target, ids, nodes, shape, plan, inputs };
}
