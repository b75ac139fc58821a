/**
 * Core data types shared by every layer above the native addon.
 *
 * A {@link Structure} is one parsed molecule or crystal; a {@link GraphStore}
 * is the columnar, native-ready form of many structures turned into graphs.
 */

/** One atomic structure as read from a file or produced by a generator. */
export interface Structure {
  /** Identifier from the source (molecule id, auid, frame index, ...). */
  id: string;
  /** Atomic numbers, one per atom. */
  numbers: Uint8Array;
  /** Cartesian positions in Å, row-major [atoms x 3]. */
  positions: Float64Array;
  /** Lattice vectors as rows, row-major [3 x 3] in Å, or null for a molecule. */
  cell: Float64Array | null;
  /** Periodicity along each lattice vector. */
  pbc: [boolean, boolean, boolean];
  /** Numeric properties usable as regression targets, by name. */
  targets: Record<string, number>;
  /** Other metadata (SMILES, compound name, ...). */
  info?: Record<string, string | number | boolean>;
  /**
   * Optional per-atom forces F = -dE/dx, row-major [atoms x 3] (xyz per atom),
   * in the energy target's units per Å (eV/Å for eV data), of the energy whose
   * value is the structure's energy target (docs/forces.md).
   */
  forces?: Float64Array;
  /**
   * Optional stress [6] in Voigt order xx yy zz yz xz xy, ASE's sign convention
   * (stress = (1/V) dE/dstrain: positive when the energy rises on stretching),
   * in energy units per Å^3 (eV/Å^3 for eV data). Periodic structures only.
   */
  stress?: Float64Array;
}

/**
 * Columnar graph store. Per-graph arrays are indexed by graph id; node and edge
 * arrays are concatenated over graphs with `nodeOffset`/`edgeOffset`.
 * Invariants (checked natively by `validateStore`): within each graph, edges are
 * sorted by receiver; `senders`/`receivers` are graph-local; `senderPerm` lists
 * each graph's local edge indices ordered by sender (stable).
 */
export interface GraphStore {
  /** Number of graphs. */
  numGraphs: number;
  /** [numGraphs+1] node offsets. */
  nodeOffset: Int32Array;
  /** [numGraphs+1] edge offsets. */
  edgeOffset: Int32Array;
  /** [nodes] atomic numbers. */
  atomicNumber: Uint8Array;
  /** [nodes x 3] positions in Å (float32), kept for export and inspection. */
  positions: Float32Array;
  /** [edges] graph-local sender of each edge. */
  senders: Int32Array;
  /** [edges] graph-local receiver of each edge, sorted within each graph. */
  receivers: Int32Array;
  /** [edges] distance in Å including the periodic image shift. */
  distance: Float32Array;
  /** [edges] graph-local edge index permutation ordering each graph's edges by sender. */
  senderPerm: Int32Array;
  /**
   * [edges x 3] optional unit edge vectors, xyz per edge: u = (x_sender +
   * periodic image shift - x_receiver) / distance, the displacement whose length
   * is `distance` (for periodic fc, the minimum image's); computed in float64 and
   * rounded to float32; the zero vector when the distance is 0. Present only when
   * the store was built with `directions: true` (PaiNN needs them; 12 bytes per
   * edge, so other models go without).
   */
  directions?: Float32Array;
  /**
   * [nodes x 3] optional per-atom forces (xyz per atom, float32, source units;
   * NaN for the atoms of structures that have none). Present only when some
   * structure of the store has forces.
   */
  forces?: Float32Array;
  /**
   * [numGraphs x 6] optional stress, Voigt xx yy zz yz xz xy, ASE's sign
   * (float32, source units; NaN rows for structures that have none). Present
   * only when some structure of the store has a stress.
   */
  stress?: Float32Array;
  /** Target names, the columns of `targets`. */
  targetNames: string[];
  /** [numGraphs x targetNames.length] row-major target values in source units (NaN = missing). */
  targets: Float64Array;
  /** Source identifier of each graph. */
  ids: string[];
  /** [numGraphs x 9] lattice vectors as rows (zeros for molecules); optional, kept for export. */
  cells?: Float64Array;
  /** [numGraphs x 3] 1 where the axis is periodic; optional, kept for export. */
  pbc?: Uint8Array;
  /** The graph rule used to build edges (`fc`, `cutoff:R`, `knn:K`). */
  graphRule: string;
  /** Free-form description of where the data came from. */
  source: string;
}

/** Index sets of a train/validation/test split (graph ids into a store). */
export interface Split {
  train: Int32Array;
  val: Int32Array;
  test: Int32Array;
}
