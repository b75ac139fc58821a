/**
 * The recommendation's simulation: each policy's batch stream drawn without
 * training (mean padded nodes and edges per step, graphs per batch, the plans
 * it would build) and priced with a fitted cost model.
 */
import { POLICY_NAMES, createPolicy, type GraphSizes } from '../batching';
import { PlanBuildCounter, plansByCapacity } from '../train/plan';
import { DEFAULT_SEED } from '../data';

/** The cost model's coefficients (ms) the simulation prices with (recommend's CostModel has them). */
export interface StepCostCoefficients {
  ms_per_edge: number;
  ms_per_node: number;
  ms_per_step: number;
  compile_ms_per_edge: number;
  compile_ms_base: number;
}

/** The predicted cost of one policy over the planned run. */
export interface PolicyPrediction {
  policy: string;
  steps: number;
  /** Steps actually simulated (the rest extrapolated: means carry over, no new shapes). */
  simulated_steps: number;
  mean_padded_nodes: number;
  mean_padded_edges: number;
  graphs_per_batch: number;
  /** Compilations (plans built) over the run. */
  compiles: number;
  step_ms: number;
  compile_ms: number;
  total_s: number;
}

/** Simulates each policy and applies the cost model (no training). Sorted fastest first. */
export function predictPolicyTimes(
  sizes: GraphSizes,
  train: Int32Array,
  batchSize: number,
  steps: number,
  cost: StepCostCoefficients,
  policies: readonly string[] = POLICY_NAMES,
  seed = DEFAULT_SEED,
  maxSimulatedSteps = 20000,
): PolicyPrediction[] {
  const sim = Math.max(1, Math.min(steps, maxSimulatedSteps));
  const out: PolicyPrediction[] = [];
  for (const name of policies) {
    const p = createPolicy(name, sizes, train, batchSize, seed);
    let sumN = 0;
    let sumE = 0;
    let graphs = 0;
    let compileMs = 0;
    let compiles = 0;
    // The plans train()'s PlanCache would build for this stream (same rule, nothing built).
    const plans = new PlanBuildCounter(plansByCapacity(name));
    for (let s = 0; s < sim; s++) {
      const spec = p.next();
      const sh = spec.shape;
      sumN += sh.nodes;
      sumE += sh.edges;
      graphs += spec.graphIds.length;
      const built = plans.add(sh);
      if (built) {
        compiles++;
        compileMs += cost.compile_ms_per_edge * built.edges + cost.compile_ms_base;
      }
    }
    const mn = sumN / sim;
    const me = sumE / sim;
    const stepMs = cost.ms_per_edge * me + cost.ms_per_node * mn + cost.ms_per_step;
    out.push({
      policy: name,
      steps,
      simulated_steps: sim,
      mean_padded_nodes: mn,
      mean_padded_edges: me,
      graphs_per_batch: graphs / sim,
      compiles,
      step_ms: stepMs,
      compile_ms: compileMs,
      total_s: (steps * stepMs + compileMs) / 1000,
    });
  }
  return out.sort((x, y) => x.total_s - y.total_s);
}
