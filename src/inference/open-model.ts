/**
 * One model opener for every inference path (issue 26 item 2): `loadModel`
 * (library calls and the i-PI driver) and `createPredictor` (services) open a
 * checkpoint here, so what a checkpoint means for a prediction is written
 * once: which graph rule new structures get, whether their stores carry edge
 * directions, which atomic numbers the embedding accepts, the atom references
 * added back and the conversion from the model's standardised output to the
 * target's units.
 *
 * Guarantees: the opened model is read once and never changes (the weights
 * are the checkpoint's Float32Array, not copied); {@link OpenedModel.toTarget}
 * converts with the model layer's toTargetUnits, as evaluation and the force
 * pass do, so two paths that predict the same structure agree bit for bit.
 */
import { buildStore, buildStoreAsync, parseGraphRule, type BuildStoreOptions, type GraphRule, type GraphStore, type Structure } from '../data';
import { ArgumentError } from '../errors';
import type { ModelConfig } from '../model/config';
import { toTargetUnits } from '../model/forces';
import { atomrefOffsets } from '../train/atomref';
import { readCheckpoint, type LoadedCheckpoint } from '../train/checkpoint';
import { needsDirections } from '../train/plan';

/** Options of {@link OpenedModel.requestStore}: what a request's store needs beyond the model's own rule. */
export interface RequestStoreOptions {
  /** Build edge directions even when the model does not read them (the force pass needs them). */
  directions?: boolean;
  /** Edges one structure may have (the data layer's ceiling when absent). */
  maxEdgesPerGraph?: number;
  /** Edges all structures may have together. */
  maxTotalEdges?: number;
  /** Where the structures come from, for error messages (e.g. 'request'). */
  source?: string;
}

/** A checkpoint opened for inference (see the module comment). */
export interface OpenedModel {
  /** The checkpoint as read (the batch budget of serving comes from its policy state). */
  readonly checkpoint: LoadedCheckpoint;
  readonly config: ModelConfig;
  /** Name of the predicted target. */
  readonly target: string;
  /** The graph rule's text, as trained. */
  readonly graphRule: string;
  /** The graph rule new structures are built with. */
  readonly rule: GraphRule;
  /** Training step of the checkpoint. */
  readonly step: number;
  /** The atomic numbers the model was trained on (ascending), or null for older checkpoints. */
  readonly elements: readonly number[] | null;
  /** Whether the model reads edge directions (PaiNN), so every request store carries them. */
  readonly directions: boolean;
  /** The weights (float32, the model's layout). */
  readonly params: Float32Array;
  readonly targetMean: number;
  readonly targetStd: number;
  /** Per-element atom references (index = atomic number), or null when the model was trained without. */
  readonly atomRefs: number[] | null;
  /**
   * Throws ERR_GNN_STRUCTURE (an ArgumentError, naming the structure) when a
   * structure has no atoms, lacks positions, or has an atomic number outside
   * the model's embedding classes.
   */
  checkStructures(structures: readonly Structure[]): void;
  /** A request's graph store under the model's rule (no targets). */
  requestStore(structures: readonly Structure[], options?: RequestStoreOptions): GraphStore;
  /** {@link requestStore} with the neighbour search on a native worker. */
  requestStoreAsync(structures: readonly Structure[], options?: RequestStoreOptions): Promise<GraphStore>;
  /** The atom-reference sum of each graph of `store` (target units), or null when the model has none. */
  offsets(store: Pick<GraphStore, 'numGraphs' | 'nodeOffset' | 'atomicNumber'>): Float64Array | null;
  /** A standardised model output in target units, plus the graph's atom-reference sum. */
  toTarget(standardised: number, offset?: number): number;
}

/**
 * Throws ERR_GNN_STRUCTURE (an ArgumentError, naming the structure) when a
 * structure has no atoms, lacks positions, or has an atomic number outside the
 * model's embedding classes.
 */
export function checkModelClasses(structures: readonly Structure[], numClasses: number): void {
  for (let s = 0; s < structures.length; s++) {
    const z = structures[s]?.numbers;
    if (!z || !structures[s].positions || z.length === 0) throw new ArgumentError(`structure ${s}: needs numbers and positions with at least one atom`, 'ERR_GNN_STRUCTURE');
    for (let i = 0; i < z.length; i++) {
      if (z[i] >= numClasses) {
        throw new ArgumentError(`structure ${s} (${structures[s].id}): atomic number ${z[i]} is outside the model's ${numClasses} classes`, 'ERR_GNN_STRUCTURE');
      }
    }
  }
}

/** Opens a checkpoint directory written by `train` for inference (errors: those of readCheckpoint). */
export function openModel(dir: string): OpenedModel {
  const ck = readCheckpoint(dir);
  const rule = parseGraphRule(ck.graphRule);
  const directions = needsDirections(ck.config);
  const refs = ck.atomRefs ? Float64Array.from(ck.atomRefs) : null;
  const { targetMean, targetStd } = ck;
  const storeOptions = (o: RequestStoreOptions): BuildStoreOptions => ({
    graph: rule,
    targetNames: [],
    directions: directions || o.directions === true,
    ...(o.source !== undefined ? { source: o.source } : {}),
    ...(o.maxEdgesPerGraph !== undefined ? { maxEdgesPerGraph: o.maxEdgesPerGraph } : {}),
    ...(o.maxTotalEdges !== undefined ? { maxTotalEdges: o.maxTotalEdges } : {}),
  });
  return {
    checkpoint: ck,
    config: ck.config,
    target: ck.target,
    graphRule: ck.graphRule,
    rule,
    step: ck.step,
    elements: ck.elements ? Object.freeze([...ck.elements]) : null,
    directions,
    params: ck.params,
    targetMean,
    targetStd,
    atomRefs: ck.atomRefs,
    checkStructures: (structures) => checkModelClasses(structures, ck.config.numClasses),
    requestStore: (structures, o = {}) => buildStore(structures, storeOptions(o)).store,
    requestStoreAsync: async (structures, o = {}) => (await buildStoreAsync(structures, storeOptions(o))).store,
    offsets: (store) => (refs ? atomrefOffsets(store, refs) : null),
    toTarget: (v, offset = 0) => toTargetUnits(v, targetMean, targetStd, offset),
  };
}
