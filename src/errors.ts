/**
 * The errors of gnnbatch: one class, {@link GnnError}, with a stable string
 * `code` (a member of {@link GnnErrorCode}), and subclasses for the layers
 * that add context (where in a file, which checkpoint, which graph).
 *
 * Every error the library throws on purpose carries a code, the TypeScript
 * layers' and the native addon's alike. Native errors are plain
 * `TypeError`/`RangeError` objects with a `code` (N-API cannot construct a JS
 * subclass); `instanceof GnnError` is nevertheless true for them, because the
 * class tests for "an Error whose code is an ERR_GNN_ code" rather than for
 * its prototype chain. Subclasses test their prototype chain as usual.
 *
 * docs/errors.md is generated from this file (`npm run docs:errors`): the
 * comment after each member of the union is its one-line meaning.
 */

/** Every error code gnnbatch throws (TypeScript and native). */
export type GnnErrorCode =
  // --- arguments and usage ---
  | 'ERR_GNN_ARGUMENT' // an API argument is out of range or of the wrong kind (the message names it)
  | 'ERR_GNN_USAGE' // a command-line usage error: unknown option, missing argument, bad value (exit status 2)
  | 'ERR_GNN_CONFIG' // a model configuration value is invalid
  | 'ERR_GNN_UNSUPPORTED' // the requested feature is not available on this device or engine
  | 'ERR_GNN_INTERNAL' // an internal invariant failed (a bug: please report it)
  // --- native boundary ---
  | 'ERR_GNN_TYPE' // a native argument has the wrong JS type or element type
  | 'ERR_GNN_RANGE' // a native argument or index is out of range
  | 'ERR_GNN_LENGTH' // a native array has the wrong length
  | 'ERR_GNN_SHAPE' // a padded batch shape cannot hold the batch, or exceeds 2^31-1
  | 'ERR_GNN_GRAPH_ID' // a graph id passed to the packer is outside the store
  | 'ERR_GNN_STORE' // the graph store's arrays are inconsistent (offsets, sorting, permutation)
  | 'ERR_GNN_NATIVE' // an unexpected failure inside native code
  | 'ERR_GNN_NOMEM' // native code ran out of memory
  | 'ERR_GNN_BUSY' // a plan is in use by another (async) call
  | 'ERR_GNN_ALIAS' // two native arguments share memory where they must not (an output overlapping an input)
  | 'ERR_GNN_RESIZABLE' // a typed array on a resizable ArrayBuffer was passed to native code (refused)
  | 'ERR_GNN_DETACHED' // a buffer was detached or shrunk while native code used it (nothing was written)
  | 'ERR_GNN_BATCH' // a packed batch's row pointers or sender permutation do not describe its edges
  | 'ERR_GNN_ADDON_MISSING' // the native addon was not built
  | 'ERR_GNN_ADDON_LOAD' // the native addon exists but could not be loaded
  | 'ERR_GNN_ADDON_CPU' // the native addon was compiled for CPU features this machine lacks (rebuild from source)
  | 'ERR_GNN_ADDON_ENV' // an environment variable that steers the addon loader has an invalid value
  | 'ERR_GNN_NO_CUDA' // this build has no CUDA backend
  | 'ERR_GNN_NO_DEVICE' // the CUDA build found no usable GPU
  | 'ERR_GNN_CUDA' // a CUDA call failed
  | 'ERR_GNN_CUDA_UNSUPPORTED' // the CUDA backend does not run this model kind (PaiNN runs on the CPU only)
  // --- geometry and graph construction ---
  | 'ERR_GNN_POSITION' // an atom position is not finite or too large for neighbour search
  | 'ERR_GNN_CELL' // a periodic cell is singular, not finite or absurd
  | 'ERR_GNN_IMAGES' // a cutoff needs more periodic images than the bound allows
  | 'ERR_GNN_KNN' // the k-nearest-neighbour search did not converge
  | 'ERR_GNN_CUTOFF' // a cutoff radius or k is not usable
  | 'ERR_GNN_TOO_MANY_EDGES' // graph construction would exceed 2^31-1 edges
  | 'ERR_GNN_EDGE_LIMIT' // a structure (or the whole source) has more edges than the configured ceiling (maxEdgesPerGraph / maxTotalEdges)
  | 'ERR_GNN_GRAPH_TOO_LARGE' // one graph does not fit a fixed batching budget on its own
  | 'ERR_GNN_NONFINITE' // a training step's loss is not finite (parameters left unchanged)
  // --- data sources ---
  | 'ERR_GNN_DATA_FORMAT' // a data file is malformed (the message names file, line or entry, and field)
  | 'ERR_GNN_DATA_FORMAT_UNKNOWN' // the format of a source cannot be detected
  | 'ERR_GNN_DATA_NOT_FOUND' // a data source does not exist
  | 'ERR_GNN_DATA_EMPTY' // a data source exists but holds no structures (an empty file or a folder without data files)
  | 'ERR_GNN_DATA_OPEN' // a data source cannot be opened
  | 'ERR_GNN_DATA_ARCHIVE' // an archive (tar, bzip2) cannot be read
  | 'ERR_GNN_DATA_TARGET' // a structure lacks the requested target property
  | 'ERR_GNN_DATA_TOO_LARGE' // a file or archive member is larger than the reader's ceiling (maxMemberBytes)
  | 'ERR_GNN_DATA_DIRECTIONS' // edge direction vectors are needed (PaiNN, out.direction) but the store has none, or they cannot be rebuilt for a .gnb cache
  | 'ERR_GNN_FORCES_PLAN' // forcesStep was called on a plan created without { forces: true }
  | 'ERR_GNN_DOWNLOAD_NETWORK' // a data set download failed on the network (refused, DNS, reset, timeout) after its retries; the message names the URL
  | 'ERR_GNN_DOWNLOAD_HTTP' // a data set server answered with an error status (404, or 429/5xx after the retries) or an unusable body
  | 'ERR_GNN_DOWNLOAD_VERIFY' // a downloaded file's size, digest or content count differs from the pinned one (the file was deleted)
  | 'ERR_GNN_DOWNLOAD_WRITE' // a download cannot be written into the cache folder (disk full, permissions)
  | 'ERR_GNN_DOWNLOAD_ABORTED' // a download was aborted through its AbortSignal
  | 'ERR_GNN_DOWNLOAD_LIMIT' // a download exceeded a bound (bytes, pages, total time or a stalled transfer); the message names the bound and its option
  | 'ERR_GNN_DOWNLOAD_REDIRECT' // a download redirect was refused (https -> http downgrade, a scheme other than http(s), an unparsable location, too many hops)
  | 'ERR_GNN_TARGET_NONFINITE' // a target value used for training is infinite or NaN
  | 'ERR_GNN_TARGET_MISSING' // a graph of the train split has no value for the target
  // --- .gnb caches ---
  | 'ERR_GNN_CACHE' // a .gnb cache cannot be used
  | 'ERR_GNN_CACHE_MAGIC' // the file is not a .gnb cache
  | 'ERR_GNN_CACHE_VERSION' // the .gnb cache has another format version
  | 'ERR_GNN_CACHE_TRUNCATED' // the .gnb cache is shorter than its header says
  | 'ERR_GNN_CACHE_CORRUPT' // the .gnb cache's header or arrays are inconsistent (offsets, lengths, checksums, values)
  | 'ERR_GNN_CACHE_WRITE' // a .gnb cache cannot be written (disk full, permissions); the message names the path, no partial file is left
  // --- checkpoints ---
  | 'ERR_GNN_CHECKPOINT_MISSING' // the directory holds no checkpoint (checkpoint.json missing)
  | 'ERR_GNN_CHECKPOINT_JSON' // checkpoint.json is not valid JSON
  | 'ERR_GNN_CHECKPOINT_VERSION' // the checkpoint has an unsupported format version
  | 'ERR_GNN_CHECKPOINT_FIELD' // a field of checkpoint.json is missing, of the wrong type or out of range
  | 'ERR_GNN_CHECKPOINT_INCOMPLETE' // a file the checkpoint names is missing, or its files come from different steps
  | 'ERR_GNN_CHECKPOINT_CHECKSUM' // a checkpoint file's size or SHA-256 differs from the manifest
  | 'ERR_GNN_CHECKPOINT_TENSOR' // a tensor is missing or has the wrong shape for the model
  | 'ERR_GNN_CHECKPOINT_NONFINITE' // a weight or optimizer moment is NaN or infinite
  | 'ERR_GNN_CHECKPOINT_WRITE' // writing a checkpoint failed (disk full, permissions); the previous checkpoint is intact
  | 'ERR_GNN_CHECKPOINT_PATH' // the checkpoint path cannot be used as a directory
  | 'ERR_GNN_CHECKPOINT_MISMATCH' // a resumed run asks for another configuration than the checkpoint's
  | 'ERR_GNN_CHECKPOINT_LOCKED' // another training run holds the checkpoint directory's lock (the message names its pid, host and start time)
  | 'ERR_GNN_CHECKPOINT_NOT_FILE' // a file a checkpoint names (or checkpoint.json) is not a regular file (a FIFO, device or directory), or is larger than allowed
  | 'ERR_GNN_OUTPUT_PATH' // an output file cannot be written where asked (checked before any work)
  // --- safetensors ---
  | 'ERR_GNN_SAFETENSORS_HEADER' // a safetensors header is truncated, not JSON or not an object
  | 'ERR_GNN_SAFETENSORS_TENSOR' // a safetensors entry is not an object with dtype, shape and data_offsets
  | 'ERR_GNN_SAFETENSORS_DTYPE' // a safetensors tensor has a dtype gnnbatch does not read
  | 'ERR_GNN_SAFETENSORS_OFFSETS' // a tensor's data_offsets disagree with its shape or the file size, or leave holes
  | 'ERR_GNN_SAFETENSORS_OVERLAP' // two tensors' data ranges overlap
  // --- training ---
  | 'ERR_GNN_NONFINITE_GRADIENT' // a step's gradient norm is not finite: training stops (that step's update is never saved) instead of freezing the weights silently
  | 'ERR_GNN_PLAN_TOO_LARGE' // one plan needs more bytes than planCacheBytes allows
  | 'ERR_GNN_MPI' // distributed training on MPI cannot start: the optional MPI module is not built (rebuild with MPI installed, GNN_MPI=ON) or the MPI environment is inconsistent
  | 'ERR_GNN_MPI_TIMEOUT' // a distributed training step's gradient exchange did not complete in time: another rank died or hangs (the job is aborted)
  | 'ERR_GNN_RESULTS' // a study results file cannot be read
  | 'ERR_GNN_REPORT' // a report or chart cannot be rendered
  // --- the study's grid, its shards and their merge ---
  | 'ERR_GNN_STUDY_GRID' // a value of the study's grid is invalid (unknown policy or model, batch size, repetitions, steps, seed)
  | 'ERR_GNN_STUDY_DUPLICATE' // a list of the grid names a value twice, which would duplicate cells
  | 'ERR_GNN_STUDY_RESUME' // a study folder holds rows measured with another atomref setting (resuming would mix them)
  | 'ERR_GNN_SHARD_ENV' // the scheduler's shard variables (SLURM_ARRAY_TASK_*, JOB_COMPLETION_INDEX) are missing or inconsistent
  | 'ERR_GNN_SHARD_RESUME' // a shard folder holds another shard or another grid
  | 'ERR_GNN_SHARD_COST_MODEL' // a cost-model file for the shard plan is malformed or lacks a model
  | 'ERR_GNN_MERGE_INPUT' // a merge input holds no results.json, has no grid fingerprint, or was edited
  | 'ERR_GNN_MERGE_GRID' // merge inputs come from different grids (the message names the first difference)
  | 'ERR_GNN_MERGE_PLAN' // merge inputs are shards of different plans (shard counts or cost models)
  | 'ERR_GNN_MERGE_DUPLICATE' // a shard or a cell appears in two merge inputs
  | 'ERR_GNN_MERGE_UNKNOWN_CELL' // a row is not a cell of the grid, or not of its shard
  | 'ERR_GNN_MERGE_DATA' // shards loaded different graphs or targets for one data source
  | 'ERR_GNN_MERGE_MISSING' // cells of the grid have no row (merge lists them; --allow-partial writes anyway)
  | 'ERR_GNN_MERGE_OUTPUT' // the merge output folder is one of its inputs
  // --- inference and serving ---
  | 'ERR_GNN_SQLITE_MISSING' // reading an ASE .db file needs the optional package better-sqlite3
  | 'ERR_GNN_STRUCTURE' // an input structure is malformed (the message names its index and field)
  | 'ERR_GNN_REQUEST' // an HTTP request to `gnnbatch serve` is malformed (not JSON, wrong shape, too large)
  | 'ERR_GNN_QUEUE_FULL' // the predictor's queue is full (maxQueue calls or maxQueuedEdges edges); retry later
  | 'ERR_GNN_REQUEST_TOO_LARGE' // a prediction request or one of its structures exceeds the predictor's work budget (edges, store bytes, plan bytes); the message names the structure
  | 'ERR_GNN_TIMEOUT' // a request to `gnnbatch serve` exceeded one of the server's deadlines (receiving it, or answering it); its work was stopped
  | 'ERR_GNN_ABORTED' // a prediction was aborted through its AbortSignal (before it ran, or between its batches: the rest did not run)
  | 'ERR_GNN_DRIVER_CONNECT' // `gnnbatch drive` cannot reach the i-PI server (refused, no such socket) within the connect timeout
  | 'ERR_GNN_DRIVER_CLOSED' // the i-PI server closed or reset the connection in the middle of a message
  | 'ERR_GNN_DRIVER_PROTOCOL' // the i-PI server sent something the protocol does not allow (unknown header, order, atom count change, non-finite numbers, a stall inside a message)
  | 'ERR_GNN_CLOSED'; // the predictor is closed (or closing) and takes no new requests

/** True when `x` is an Error carrying an ERR_GNN_ code (native errors included). */
export function isGnnError(x: unknown): x is Error & { code: GnnErrorCode } {
  // Not `instanceof Error`: errors from another realm (vm contexts, jest) count too.
  if (typeof x !== 'object' || x === null || typeof (x as { message?: unknown }).message !== 'string') return false;
  const code = (x as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_GNN_');
}

/** Options of {@link GnnError}. */
export interface GnnErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
}

/** The error class of gnnbatch; `code` is stable for programs, the message is for people. */
export class GnnError extends Error {
  readonly code: GnnErrorCode;
  constructor(code: GnnErrorCode, message: string, options: GnnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GnnError';
    this.code = code;
  }

  /**
   * `x instanceof GnnError` holds for every coded gnnbatch error, including the
   * native addon's TypeErrors/RangeErrors; subclasses keep the ordinary test.
   */
  static [Symbol.hasInstance](x: unknown): boolean {
    if (this === GnnError) return isGnnError(x);
    return Function.prototype[Symbol.hasInstance].call(this, x);
  }
}

/**
 * An API argument out of range. Extends RangeError (as the API threw before
 * codes existed), and is a {@link GnnError} by `instanceof`.
 */
export class ArgumentError extends RangeError {
  readonly code: GnnErrorCode;
  constructor(message: string, code: GnnErrorCode = 'ERR_GNN_ARGUMENT') {
    super(message);
    this.name = 'RangeError';
    this.code = code;
  }
}

/** A command-line usage error: printed as one line plus a hint, exit status 2. */
export class UsageError extends GnnError {
  constructor(message: string, code: GnnErrorCode = 'ERR_GNN_USAGE') {
    super(code, message);
    this.name = 'UsageError';
  }
}

/** Where in a source a problem was found. */
export interface DataLocation {
  /** File (or archive member, as `archive.tar.bz2:member.xyz`). */
  file: string;
  /** 1-based line number, for text formats. */
  line?: number;
  /** 0-based entry / frame / row index, for record formats. */
  entry?: number;
  /** The field that is missing or malformed. */
  field?: string;
}

function describeLocation(location: DataLocation): string {
  const where = [location.file];
  if (location.line !== undefined) where.push(`line ${location.line}`);
  if (location.entry !== undefined) where.push(`entry ${location.entry}`);
  if (location.field !== undefined) where.push(`field '${location.field}'`);
  return where.join(', ');
}

/** Malformed or unreadable input data; the message starts with where (file, line or entry, field). */
export class DataFormatError extends GnnError {
  readonly location: DataLocation;
  constructor(location: DataLocation, message: string, code: GnnErrorCode = 'ERR_GNN_DATA_FORMAT') {
    super(code, `${describeLocation(location)}: ${message}`);
    this.name = 'DataFormatError';
    this.location = location;
  }
}

/**
 * A configured size ceiling was hit before allocating (edges per graph,
 * total edges, atoms per structure, bytes of an archive member). The message
 * names the structure and the option that raises the ceiling.
 */
export class DataLimitError extends DataFormatError {
  constructor(location: DataLocation, message: string, code: 'ERR_GNN_EDGE_LIMIT' | 'ERR_GNN_DATA_TOO_LARGE') {
    super(location, message, code);
    this.name = 'DataLimitError';
  }
}

/** A problem with a `.gnb` cache file (truncated, corrupt, other version). */
export class CacheError extends GnnError {
  constructor(file: string, message: string, code: GnnErrorCode = 'ERR_GNN_CACHE') {
    super(code, `${file}: ${message}`);
    this.name = 'CacheError';
  }
}

/** A checkpoint that cannot be read, verified or written; the message names the file and field. */
export class CheckpointError extends GnnError {
  /** The file (or directory) concerned. */
  readonly file: string;
  constructor(file: string, message: string, code: GnnErrorCode, options: GnnErrorOptions = {}) {
    super(code, `${file}: ${message}`, options);
    this.name = 'CheckpointError';
    this.file = file;
  }
}

/** A training run that cannot go on (non-finite gradient, unusable target). */
export class TrainingError extends GnnError {
  constructor(code: GnnErrorCode, message: string, options: GnnErrorOptions = {}) {
    super(code, message, options);
    this.name = 'TrainingError';
  }
}
