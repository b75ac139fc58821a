/**
 * Building the columnar {@link GraphStore} from parsed structures (graph
 * construction runs natively, in parallel), and the arrays the packer reads.
 */
import { native, type NativeNeighbours, type NativeStoreArrays, type NativeStructureBatch } from '../native';
import { formatGraphRule, parseGraphRule, type GraphRule } from './graph-rule';
import type { GraphStore, Structure } from './types';
import { ArgumentError, GnnError } from '../errors';
import { checkBuiltEdges, checkEdgeCeilings, type DataLimits } from './limits';

/** Options of {@link buildStore} (with the edge ceilings of {@link DataLimits}). */
export interface BuildStoreOptions extends Pick<DataLimits, 'maxEdgesPerGraph' | 'maxTotalEdges'> {
  /** Graph construction rule. */
  graph: GraphRule;
  /** Free-form source description stored with the graphs. */
  source?: string;
  /** Drop structures that get no edge under the rule (default: keep them as edgeless graphs). */
  dropEdgeless?: boolean;
  /** Target columns to keep, in this order (default: every name seen, in first-seen order). */
  targetNames?: string[];
  /** Also store the unit edge vectors {@link GraphStore.directions} (default false; PaiNN needs them). */
  directions?: boolean;
}

/** A built store and what happened on the way. */
export interface BuildStoreResult {
  store: GraphStore;
  /** Structures without any edge under the rule (kept or dropped). */
  edgeless: number;
  /** Structures dropped because they had no edge (0 unless `dropEdgeless`). */
  dropped: number;
}

/** Packs structures into the native batch layout (float64 positions, cells, pbc flags). */
export function structureBatch(structures: readonly Structure[]): NativeStructureBatch {
  const S = structures.length;
  const atomOffset = new Int32Array(S + 1);
  let n = 0;
  for (let s = 0; s < S; s++) {
    n += structures[s].numbers.length;
    if (n > 0x7fffffff) throw new ArgumentError('more than 2^31-1 atoms in one store');
    atomOffset[s + 1] = n;
  }
  const positions = new Float64Array(n * 3);
  const cells = new Float64Array(S * 9);
  const pbc = new Uint8Array(S * 3);
  for (let s = 0; s < S; s++) {
    const st = structures[s];
    if (st.positions.length !== st.numbers.length * 3)
      throw new ArgumentError(`structure ${s} ('${st.id}'): ${st.positions.length} coordinates for ${st.numbers.length} atoms`);
    positions.set(st.positions, atomOffset[s] * 3);
    const periodic = st.pbc.some((p) => p);
    if (periodic) {
      if (!st.cell || st.cell.length !== 9) throw new ArgumentError(`structure ${s} ('${st.id}') is periodic but has no 3x3 cell`, 'ERR_GNN_CELL');
      cells.set(st.cell, s * 9);
    }
    for (let a = 0; a < 3; a++) pbc[s * 3 + a] = st.pbc[a] ? 1 : 0;
  }
  return { atomOffset, positions, cells, pbc };
}

/** The target names of a set of structures, in first-seen order. */
export function collectTargetNames(structures: readonly Structure[]): string[] {
  const seen = new Set<string>();
  for (const s of structures) for (const k of Object.keys(s.targets)) seen.add(k);
  return [...seen];
}

/**
 * Builds a graph store: edges of every structure under `options.graph`
 * (receiver-sorted, with the sender permutation), float32 positions and
 * distances, the targets as a [graphs x targets] float64 table (NaN = missing).
 */
export function buildStore(structures: readonly Structure[], options: BuildStoreOptions): BuildStoreResult {
  checkEdgeCeilings(structures, options.graph, options, options.source);
  const batch = structureBatch(structures);
  return assembleStore(structures, batch, native().buildNeighbours(batch, options.graph, { directions: options.directions === true }), options);
}

/** {@link buildStore} with graph construction on a native worker thread (same result). */
export async function buildStoreAsync(structures: readonly Structure[], options: BuildStoreOptions): Promise<BuildStoreResult> {
  checkEdgeCeilings(structures, options.graph, options, options.source);
  const batch = structureBatch(structures);
  const nb = await native().buildNeighboursAsync(batch, options.graph, { directions: options.directions === true });
  return assembleStore(structures, batch, nb, options);
}

function assembleStore(structures: readonly Structure[], batch: NativeStructureBatch, nb: NativeNeighbours, options: BuildStoreOptions): BuildStoreResult {
  const S = structures.length;
  checkBuiltEdges(nb.edgeOffset, structures.map((s) => s.id), options, options.source);
  let edgeless = 0;
  for (let s = 0; s < S; s++) if (nb.edgeOffset[s + 1] === nb.edgeOffset[s]) edgeless++;
  let keep: number[] | null = null;
  if (options.dropEdgeless && edgeless > 0) {
    keep = [];
    for (let s = 0; s < S; s++) if (nb.edgeOffset[s + 1] > nb.edgeOffset[s]) keep.push(s);
  }
  const targetNames = options.targetNames ?? collectTargetNames(structures);
  const ids = keep ?? Array.from({ length: S }, (_, i) => i);
  const G = ids.length;
  const T = targetNames.length;
  const targets = new Float64Array(G * T);
  const idStrings: string[] = new Array<string>(G);
  for (let g = 0; g < G; g++) {
    const st = structures[ids[g]];
    idStrings[g] = st.id;
    for (let t = 0; t < T; t++) {
      const v = st.targets[targetNames[t]];
      targets[g * T + t] = v === undefined ? NaN : v;
    }
  }
  let nodeOffset = batch.atomOffset;
  let edgeOffset = nb.edgeOffset;
  let senders = nb.senders, receivers = nb.receivers, distance = nb.distance, senderPerm = nb.senderPerm;
  let positions64 = batch.positions;
  let cells = batch.cells, pbc = batch.pbc;
  const atomicNumber0 = new Uint8Array(batch.atomOffset[S]);
  for (let s = 0; s < S; s++) atomicNumber0.set(structures[s].numbers, batch.atomOffset[s]);
  let atomicNumber = atomicNumber0;
  if (keep) {
    // Compact: only edgeless graphs go, so every kept graph's slices are copied as they are.
    nodeOffset = new Int32Array(G + 1);
    edgeOffset = new Int32Array(G + 1);
    for (let g = 0; g < G; g++) {
      const s = keep[g];
      nodeOffset[g + 1] = nodeOffset[g] + batch.atomOffset[s + 1] - batch.atomOffset[s];
      edgeOffset[g + 1] = edgeOffset[g] + nb.edgeOffset[s + 1] - nb.edgeOffset[s];
    }
    atomicNumber = new Uint8Array(nodeOffset[G]);
    positions64 = new Float64Array(nodeOffset[G] * 3);
    for (let g = 0; g < G; g++) {
      const s = keep[g];
      atomicNumber.set(atomicNumber0.subarray(batch.atomOffset[s], batch.atomOffset[s + 1]), nodeOffset[g]);
      positions64.set(batch.positions.subarray(batch.atomOffset[s] * 3, batch.atomOffset[s + 1] * 3), nodeOffset[g] * 3);
    }
    cells = new Float64Array(G * 9);
    pbc = new Uint8Array(G * 3);
    for (let g = 0; g < G; g++) {
      cells.set(batch.cells.subarray(keep[g] * 9, keep[g] * 9 + 9), g * 9);
      pbc.set(batch.pbc.subarray(keep[g] * 3, keep[g] * 3 + 3), g * 3);
    }
    // Edges (and their directions) are unchanged because dropped graphs have none.
  }
  const store: GraphStore = {
    numGraphs: G,
    nodeOffset,
    edgeOffset,
    atomicNumber,
    positions: Float32Array.from(positions64),
    senders,
    receivers,
    distance,
    senderPerm,
    targetNames,
    targets,
    ids: idStrings,
    cells,
    pbc,
    graphRule: formatGraphRule(options.graph),
    source: options.source ?? '',
  };
  if (nb.direction) store.directions = nb.direction;
  addForceColumns(store, structures, ids);
  return { store, edgeless, dropped: keep ? S - G : 0 };
}

/**
 * Adds the {@link GraphStore.forces} and {@link GraphStore.stress} columns when
 * some of the structures (`ids`: the kept ones, in store order) have them; the
 * graphs of the others get NaN. A forces array that is not [atoms x 3] or a
 * stress that is not [6] is ERR_GNN_DATA_FORMAT naming the structure.
 */
function addForceColumns(store: GraphStore, structures: readonly Structure[], ids: readonly number[]): void {
  const anyForces = ids.some((s) => structures[s].forces !== undefined);
  const anyStress = ids.some((s) => structures[s].stress !== undefined);
  if (!anyForces && !anyStress) return;
  const bad = (s: number, what: string): never => {
    throw new ArgumentError(`structure ${s} ('${structures[s].id}'): ${what}`, 'ERR_GNN_DATA_FORMAT');
  };
  if (anyForces) {
    const forces = new Float32Array(3 * store.atomicNumber.length).fill(NaN);
    ids.forEach((s, g) => {
      const f = structures[s].forces;
      if (!f) return;
      const atoms = store.nodeOffset[g + 1] - store.nodeOffset[g];
      if (f.length !== 3 * atoms) bad(s, `${f.length} force components for ${atoms} atoms (expected ${3 * atoms}: [atoms x 3])`);
      forces.set(f, 3 * store.nodeOffset[g]);
    });
    store.forces = forces;
  }
  if (anyStress) {
    const stress = new Float32Array(6 * store.numGraphs).fill(NaN);
    ids.forEach((s, g) => {
      const v = structures[s].stress;
      if (!v) return;
      if (v.length !== 6) bad(s, `stress has ${v.length} components, expected 6 (Voigt xx yy zz yz xz xy)`);
      stress.set(v, 6 * g);
    });
    store.stress = stress;
  }
}

/**
 * A store with {@link GraphStore.directions} (the same object when it has them):
 * for a store built without them (a `.gnb` cache), the graphs are rebuilt from
 * the store's own float32 positions, cells and rule, with directions, on a
 * native worker, and the rebuilt edges must be the stored ones (same endpoints
 * in the same order, distances equal to within the float32 rounding of the
 * positions); only the directions are taken from the rebuild. Where they are
 * not (an edge at the cutoff or a knn tie that the rounding of the positions
 * moves), it throws ERR_GNN_DATA_DIRECTIONS: rebuild the store from its source
 * with directions. Molecules get the directions a build from the source gives
 * (to float32 rounding of the positions); in a crystal, where images of one
 * sender tie in distance (an atom's own images at +T and -T), an edge may get
 * the other tied image's direction, which is equally the direction of an image
 * at exactly its distance. `what` names the store in messages.
 */
export async function withDirections(store: GraphStore, what = store.source || 'the store'): Promise<GraphStore> {
  if (store.directions) return store;
  const G = store.numGraphs;
  const refuse = (why: string, cause?: unknown): never => {
    throw new GnnError('ERR_GNN_DATA_DIRECTIONS',
      `${what} has no edge directions and they cannot be recomputed from its float32 positions (${why}); rebuild it from its source with directions (buildStore option directions: true)`,
      cause === undefined ? {} : { cause });
  };
  let maxEdges = 0, maxAbs = 0;
  for (let g = 0; g < G; g++) maxEdges = Math.max(maxEdges, store.edgeOffset[g + 1] - store.edgeOffset[g]);
  for (let i = 0; i < store.positions.length; i++) maxAbs = Math.max(maxAbs, Math.abs(store.positions[i]));
  const batch: NativeStructureBatch = {
    atomOffset: store.nodeOffset,
    positions: Float64Array.from(store.positions),
    cells: store.cells ?? new Float64Array(G * 9),
    pbc: store.pbc ?? new Uint8Array(G * 3),
  };
  let nb: NativeNeighbours;
  try {
    nb = await native().buildNeighboursAsync(batch, { ...parseGraphRule(store.graphRule), maxEdges }, { directions: true });
  } catch (e) {
    return refuse(`rebuilding its graphs failed: ${(e as Error).message}`, e);
  }
  const E = store.senders.length;
  if (nb.senders.length !== E) refuse(`the rebuild has ${nb.senders.length} edges, the store ${E}`);
  for (let g = 0; g <= G; g++)
    if (nb.edgeOffset[g] !== store.edgeOffset[g]) refuse(`graph ${g - 1} has another edge count in the rebuild`);
  // Float32 positions move a distance by at most a few ulps of the coordinates.
  const tol = 1e-6 * (1 + 2 * maxAbs);
  for (let e = 0; e < E; e++)
    if (nb.senders[e] !== store.senders[e] || nb.receivers[e] !== store.receivers[e] || !(Math.abs(nb.distance[e] - store.distance[e]) <= tol + 1e-6 * store.distance[e]))
      refuse(`edge ${e} differs in the rebuild`);
  return { ...store, directions: nb.direction };
}

/** Mean and standard deviation used to standardise a target. */
export interface TargetStats {
  mean: number;
  std: number;
}

/** Targets preferred as the default, in order: the study's (QM9's U0, AFLOW's formation enthalpy). */
const PREFERRED_TARGETS = ['U0', 'enthalpy_formation_atom'];

/**
 * The target a run uses when none is named: the study's target when the store
 * has it (U0 for QM9, enthalpy_formation_atom for AFLOW), else the first
 * numeric property; undefined when there is none.
 */
export function defaultTarget(store: Pick<GraphStore, 'targetNames'>): string | undefined {
  return PREFERRED_TARGETS.find((t) => store.targetNames.includes(t)) ?? store.targetNames[0];
}

/** Column index of a target name, or a RangeError listing the names there are. */
export function targetIndex(store: GraphStore, targetName: string): number {
  const t = store.targetNames.indexOf(targetName);
  if (t < 0)
    throw new ArgumentError(`target '${targetName}' is not in the store; it has: ${store.targetNames.join(', ') || '(none)'}`, 'ERR_GNN_DATA_TARGET');
  return t;
}

/** One target column of a store as a [graphs] Float64Array (source units). */
export function targetColumn(store: GraphStore, targetName: string): Float64Array {
  const t = targetIndex(store, targetName);
  const T = store.targetNames.length;
  const out = new Float64Array(store.numGraphs);
  for (let g = 0; g < store.numGraphs; g++) out[g] = store.targets[g * T + t];
  return out;
}

/**
 * The arrays the native packer reads, sharing the store's buffers, with the
 * `target` column selected and standardised as (y - mean) / std when `stats` is given.
 */
export function storeArraysFor(store: GraphStore, targetName: string, stats?: TargetStats): NativeStoreArrays {
  const target = targetColumn(store, targetName);
  if (stats) {
    const inv = stats.std > 0 ? 1 / stats.std : 1;
    for (let g = 0; g < target.length; g++) target[g] = (target[g] - stats.mean) * inv;
  }
  return packerArrays(store, target);
}

/**
 * The store's arrays the native packer reads, with a given per-graph `target`
 * column (shared, no copy); `direction` when the store has directions.
 */
export function packerArrays(store: GraphStore, target: Float64Array): NativeStoreArrays {
  const arrays: NativeStoreArrays = {
    nodeOffset: store.nodeOffset,
    edgeOffset: store.edgeOffset,
    atomicNumber: store.atomicNumber,
    senders: store.senders,
    receivers: store.receivers,
    distance: store.distance,
    senderPerm: store.senderPerm,
    target,
  };
  if (store.directions) arrays.direction = store.directions;
  return arrays;
}

/**
 * The structures of a store (float32 positions widened to float64), e.g. to
 * export it as extended XYZ. Targets that are NaN are left out.
 */
export function* structuresFromStore(store: GraphStore): Generator<Structure> {
  const T = store.targetNames.length;
  for (let g = 0; g < store.numGraphs; g++) {
    const a0 = store.nodeOffset[g], a1 = store.nodeOffset[g + 1];
    const targets: Record<string, number> = {};
    for (let t = 0; t < T; t++) {
      const v = store.targets[g * T + t];
      if (!Number.isNaN(v)) targets[store.targetNames[t]] = v;
    }
    const pbc: [boolean, boolean, boolean] = store.pbc
      ? [store.pbc[g * 3] !== 0, store.pbc[g * 3 + 1] !== 0, store.pbc[g * 3 + 2] !== 0]
      : [false, false, false];
    const periodic = pbc.some((p) => p);
    const s: Structure = {
      id: store.ids[g],
      numbers: store.atomicNumber.slice(a0, a1),
      positions: Float64Array.from(store.positions.subarray(a0 * 3, a1 * 3)),
      cell: store.cells && periodic ? store.cells.slice(g * 9, g * 9 + 9) : null,
      pbc,
      targets,
    };
    const f = store.forces?.subarray(a0 * 3, a1 * 3);
    if (f && f.length > 0 && !Number.isNaN(f[0])) s.forces = Float64Array.from(f);
    const st = store.stress?.subarray(6 * g, 6 * g + 6);
    if (st && !Number.isNaN(st[0])) s.stress = Float64Array.from(st);
    yield s;
  }
}
