/**
 * The manifest of a checkpoint (checkpoint.json): what a checkpoint holds,
 * and one table of its fields ({@link MANIFEST_FIELDS}) with, for each field,
 * what it is (type and bounds), how the writer produces it from the state and
 * how the reader validates it. A field is added, or its bounds changed, in
 * this one place.
 *
 * Every validation failure is CheckpointError ERR_GNN_CHECKPOINT_FIELD naming
 * the field (ERR_GNN_CHECKPOINT_VERSION for the version).
 */
import type { ForceLossWeights, ForceTrainingSummary } from './force-training';
import { constants as bufferConstants } from 'buffer';
import * as path from 'path';
import { defaultModelConfig, resolveModelConfig, type ModelConfig } from '../model/config';
import type { ParamLayout } from '../model/params';
import { parseGraphRule } from '../data/graph-rule';
import { CheckpointError } from '../errors';
import type { ScheduleSpec } from './schedule';

/** Format version of checkpoint.json written now. */
export const CHECKPOINT_VERSION = 2;
/** The versions read (1: the legacy layout, three files side by side). */
export const READABLE_VERSIONS: readonly number[] = [1, 2];
/** The manifest's name inside a checkpoint directory. */
export const MANIFEST_NAME = 'checkpoint.json';
/** The largest data file a manifest may name (what one Buffer can hold). */
export const MAX_DATA_BYTES = bufferConstants.MAX_LENGTH;

/** Everything a checkpoint holds. */
export interface CheckpointState {
  config: ModelConfig;
  layout: ParamLayout;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  step: number;
  seed: number;
  policy: string;
  policyOptions: object;
  policyState: unknown;
  batchSize: number;
  target: string;
  targetMean: number;
  targetStd: number;
  /** Per-element reference values (index = Z), or null. */
  atomRefs: number[] | null;
  graphRule: string;
  schedule: ScheduleSpec;
  clipNorm: number;
  lossCurve: { step: number; loss: number }[];
  evalCurve: { step: number; val_rmse: number; val_mae: number }[];
  /** False when the Adam moments were not saved (CUDA runs keep them on the device). */
  hasOptimizer?: boolean;
  /**
   * The losses of the last (up to 100) steps, oldest first: a resumed run's
   * `final_train_loss` continues from them. Null or absent in checkpoints
   * written before they were kept.
   */
  recentLosses?: number[] | null;
  /** Energy+forces runs: loss weights and the last metrics (docs/forces.md); null or absent otherwise and in older checkpoints. */
  forceTraining?: ForceTrainingSummary | null;
  /**
   * The atomic numbers present in the training split, ascending: a structure
   * with another element is outside what the model has seen (serving flags it).
   * Null or absent in checkpoints written before they were kept.
   */
  elements?: number[] | null;
  /**
   * Batches of the policy per step (gradient accumulation / MPI: the
   * micro-batches of a global step; 1 for the fused step). A resume must keep
   * it (the step, the schedule and the policy's stream count in it). Null or
   * absent in checkpoints written before it was kept.
   */
  microBatches?: number | null;
}

/** What {@link readCheckpoint} returns: the Adam moments only when asked for. */
export interface LoadedCheckpoint extends Omit<CheckpointState, 'm' | 'v'> {
  /** Adam first moments (null unless read with `optimizer: true`). */
  m: Float32Array | null;
  /** Adam second moments (null unless read with `optimizer: true`). */
  v: Float32Array | null;
  /** Whether the checkpoint holds optimizer state (whether or not it was read). */
  hasOptimizer: boolean;
  /** Format version the directory was written in (1 = legacy, unverifiable by checksum). */
  version: number;
  /** The model weights file that was read. */
  modelFile: string;
}

/** A data file named by the manifest (`files.model`, `files.optimizer`). */
export interface FileEntry {
  path: string;
  bytes: number;
  sha256: string;
}

/** The data files of a version 2 manifest (`optimizer` null when the moments were not saved). */
export type ManifestFiles = Record<'model' | 'optimizer', FileEntry | null>;

export type Json = Record<string, unknown>;

/** The value of each manifest field once read and validated (the optional fields of {@link CheckpointState} read as null when absent). */
export interface ManifestValues
  extends Omit<CheckpointState, 'layout' | 'params' | 'm' | 'v' | 'hasOptimizer' | 'recentLosses' | 'forceTraining' | 'elements' | 'microBatches'> {
  version: number;
  /** The raw `files` object (version 2; null for version 1): its entries are checked as their files are read ({@link checkFileEntry}). */
  files: Json | null;
  recentLosses: number[] | null;
  forceTraining: ForceTrainingSummary | null;
  elements: number[] | null;
  microBatches: number | null;
}

/** Field checks on a manifest object; each failure is ERR_GNN_CHECKPOINT_FIELD naming the field. */
export function fieldReader(file: string, j: Json) {
  const bad = (field: string, expected: string): never => {
    const got = j[field];
    const shown = got === undefined ? 'missing' : `${JSON.stringify(got)?.slice(0, 60) ?? String(got)}`;
    throw new CheckpointError(file, `field '${field}' must be ${expected}, found ${shown}`, 'ERR_GNN_CHECKPOINT_FIELD');
  };
  return {
    bad,
    int(field: string, min: number): number {
      const v = j[field];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return bad(field, `an integer >= ${min}`);
      return v;
    },
    num(field: string, min = -Infinity): number {
      const v = j[field];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min) return bad(field, min === -Infinity ? 'a finite number' : `a finite number >= ${min}`);
      return v;
    },
    str(field: string): string {
      const v = j[field];
      if (typeof v !== 'string' || v === '') return bad(field, 'a non-empty string');
      return v;
    },
    obj(field: string, optional = false): Json {
      const v = j[field];
      if (v === undefined && optional) return {};
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad(field, 'an object');
      return v as Json;
    },
  };
}

export type FieldReader = ReturnType<typeof fieldReader>;

/** What a field's reader is given: the manifest (its file, the object, the checks on it) and the fields read before it. */
export interface FieldContext {
  file: string;
  j: Json;
  f: FieldReader;
  got: Partial<ManifestValues>;
}

/** What the writer has besides the state: the data files it wrote (version 2). */
export interface WriteContext {
  files: ManifestFiles;
}

/** One field of checkpoint.json. */
export interface ManifestField<T> {
  /** Its type and bounds, in words (the reader's messages say the same). */
  rule: string;
  /** The value the writer puts into checkpoint.json. */
  write(s: CheckpointState, w: WriteContext): unknown;
  /** The value read from checkpoint.json, validated (throws ERR_GNN_CHECKPOINT_FIELD naming the field). */
  read(c: FieldContext): T;
}

/**
 * Configuration fields added with PaiNN: a checkpoint of another model written
 * before them lacks them, and they do not change that model (the defaults
 * stand); a PaiNN checkpoint must have them.
 */
const PAINN_FIELDS: readonly (keyof ModelConfig)[] = ['cutoff', 'sharedFilters'];

/** Validates a model config from a checkpoint: every field present and in range, nothing extra. */
function checkConfig(file: string, raw: Json): ModelConfig {
  let config: ModelConfig;
  try {
    config = resolveModelConfig(raw as Partial<ModelConfig>);
  } catch (e) {
    throw new CheckpointError(file, `field 'config': ${(e as Error).message}`, 'ERR_GNN_CHECKPOINT_FIELD', { cause: e });
  }
  for (const k of Object.keys(config) as (keyof ModelConfig)[]) {
    if (raw[k] === undefined && !(config.kind !== 'painn' && PAINN_FIELDS.includes(k)))
      throw new CheckpointError(file, `field 'config.${k}' is missing`, 'ERR_GNN_CHECKPOINT_FIELD');
  }
  const known = Object.keys(defaultModelConfig(config.kind));
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) throw new CheckpointError(file, `field 'config.${k}' is not a model configuration field`, 'ERR_GNN_CHECKPOINT_FIELD');
  }
  return config;
}

function checkSchedule(file: string, s: Json): ScheduleSpec {
  const bad = (msg: string): never => {
    throw new CheckpointError(file, `field 'schedule' ${msg}, found ${JSON.stringify(s).slice(0, 80)}`, 'ERR_GNN_CHECKPOINT_FIELD');
  };
  const pos = (k: string, optional = false): void => {
    if (optional && s[k] === undefined) return;
    if (typeof s[k] !== 'number' || !Number.isFinite(s[k] as number) || (s[k] as number) < 0) bad(`needs a finite number ${k} >= 0`);
  };
  pos('lr');
  if (s.kind === 'constant') return s as ScheduleSpec;
  if (s.kind === 'exponential') {
    pos('decayRate');
    pos('decaySteps');
    if (!((s.decaySteps as number) > 0)) bad('needs decaySteps > 0');
    return s as ScheduleSpec;
  }
  if (s.kind === 'cosine') {
    pos('totalSteps');
    pos('minLr', true);
    pos('warmupSteps', true);
    return s as ScheduleSpec;
  }
  return bad("must have kind 'constant', 'exponential' or 'cosine'");
}

function checkCurve<K extends string>(file: string, field: string, v: unknown, keys: K[]): ({ step: number } & Record<K, number>)[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new CheckpointError(file, `field '${field}' must be an array`, 'ERR_GNN_CHECKPOINT_FIELD');
  return v.map((p, i) => {
    const ok = p && typeof p === 'object' && Number.isSafeInteger((p as Json).step) && keys.every((k) => typeof (p as Json)[k] === 'number' || (p as Json)[k] === null);
    if (!ok) throw new CheckpointError(file, `field '${field}[${i}]' must be {step, ${keys.join(', ')}}, found ${JSON.stringify(p)}`, 'ERR_GNN_CHECKPOINT_FIELD');
    const out: Json = { step: (p as Json).step };
    for (const k of keys) out[k] = (p as Json)[k] === null ? NaN : (p as Json)[k];
    return out as { step: number } & Record<K, number>;
  });
}

/** The `recentLosses` field: null when absent (older checkpoints), else at most 10,000 numbers (null = NaN). */
function checkRecentLosses(file: string, v: unknown): number[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length > 10_000 || !v.every((x) => (typeof x === 'number' && Number.isFinite(x)) || x === null))
    throw new CheckpointError(file, `field 'recentLosses' must be null or an array of at most 10000 finite numbers, found ${JSON.stringify(v).slice(0, 60)}`, 'ERR_GNN_CHECKPOINT_FIELD');
  return v.map((x: number | null) => (x === null ? NaN : x));
}

/** The `forceTraining` field: null when absent (energy-only runs, older checkpoints), else an object with finite, non-negative loss weights. */
function checkForceTraining(file: string, v: unknown): ForceTrainingSummary | null {
  if (v === undefined || v === null) return null;
  const o = v as Partial<ForceTrainingSummary>;
  const w = o.weights as Partial<ForceLossWeights> | undefined;
  const ok = typeof v === 'object' && !Array.isArray(v) && !!w && typeof w === 'object' &&
    (['energy', 'forces', 'stress'] as const).every((k) => typeof w[k] === 'number' && Number.isFinite(w[k]) && (w[k] as number) >= 0);
  if (!ok) throw new CheckpointError(file, `field 'forceTraining' must be null or an object with weights {energy, forces, stress} (finite, >= 0), found ${JSON.stringify(v).slice(0, 80)}`, 'ERR_GNN_CHECKPOINT_FIELD');
  return { weights: { energy: w.energy as number, forces: w.forces as number, stress: w.stress as number }, dtype: o.dtype === 'float32' ? 'float32' : 'float64', val: o.val ?? null, test: o.test ?? null };
}

/** The model configuration read before a field that depends on it. */
const configOf = (c: FieldContext): ModelConfig => c.got.config as ModelConfig;

/**
 * The fields of checkpoint.json, in the order they are written (and
 * validated). `version`, `files` and `config` come before the fields that
 * depend on them.
 */
export const MANIFEST_FIELDS: { readonly [K in keyof ManifestValues]: ManifestField<ManifestValues[K]> } = {
  version: {
    rule: `the format version: ${READABLE_VERSIONS.join(' or ')} (ERR_GNN_CHECKPOINT_VERSION otherwise)`,
    write: () => CHECKPOINT_VERSION,
    read: ({ file, j }) => {
      const v = j.version;
      if (typeof v !== 'number' || !READABLE_VERSIONS.includes(v))
        throw new CheckpointError(file, `checkpoint version ${JSON.stringify(v)} is not supported (this gnnbatch reads ${READABLE_VERSIONS.join(' and ')})`, 'ERR_GNN_CHECKPOINT_VERSION');
      return v;
    },
  },
  step: { rule: 'an integer >= 0: the steps taken', write: (s) => s.step, read: ({ f }) => f.int('step', 0) },
  files: {
    rule: "version 2: an object {model, optimizer}, each {path, bytes, sha256} (optimizer null when not saved); path relative inside the directory, bytes 0..buffer.constants.MAX_LENGTH, sha256 64 hex digits",
    write: (_s, w) => w.files,
    read: ({ f, got }) => (got.version === 2 ? f.obj('files') : null),
  },
  seed: { rule: 'a finite number', write: (s) => s.seed, read: ({ f }) => f.num('seed') },
  config: {
    rule: 'an object: every model configuration field, in range, nothing else (PaiNN-only fields may be absent for other models)',
    write: (s) => s.config,
    read: ({ file, f }) => checkConfig(file, f.obj('config')),
  },
  policy: { rule: 'a non-empty string', write: (s) => s.policy, read: ({ f }) => f.str('policy') },
  policyOptions: { rule: 'an object (absent: {})', write: (s) => s.policyOptions, read: ({ f }) => f.obj('policyOptions', true) },
  policyState: { rule: "anything: the policy's own state, checked by the policy", write: (s) => s.policyState, read: ({ j }) => j.policyState },
  batchSize: { rule: 'an integer >= 2', write: (s) => s.batchSize, read: ({ f }) => f.int('batchSize', 2) },
  target: { rule: 'a non-empty string', write: (s) => s.target, read: ({ f }) => f.str('target') },
  targetMean: { rule: 'a finite number', write: (s) => s.targetMean, read: ({ f }) => f.num('targetMean') },
  targetStd: { rule: 'a finite number >= 0', write: (s) => s.targetStd, read: ({ f }) => f.num('targetStd', 0) },
  atomRefs: {
    rule: 'null, or an array of at least numClasses finite numbers (one per atomic number)',
    write: (s) => s.atomRefs,
    read: (c) => {
      const v = c.j.atomRefs;
      if (v === null || v === undefined) return null;
      const config = configOf(c);
      if (!Array.isArray(v) || v.length < config.numClasses || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
        c.f.bad('atomRefs', `null or an array of at least numClasses = ${config.numClasses} finite numbers (one per atomic number)`);
      return v as number[];
    },
  },
  graphRule: {
    rule: 'fc, cutoff:R or knn:K',
    write: (s) => s.graphRule,
    read: ({ f }) => {
      const rule = f.str('graphRule');
      try {
        parseGraphRule(rule);
      } catch {
        f.bad('graphRule', 'fc, cutoff:R or knn:K');
      }
      return rule;
    },
  },
  schedule: {
    rule: "{kind: 'constant' | 'exponential' | 'cosine', lr >= 0, ...}: exponential needs decayRate >= 0 and decaySteps > 0, cosine totalSteps >= 0 (minLr, warmupSteps >= 0 when present)",
    write: (s) => s.schedule,
    read: ({ file, f }) => checkSchedule(file, f.obj('schedule')),
  },
  clipNorm: { rule: 'a finite number >= 0 (absent: 0)', write: (s) => s.clipNorm, read: ({ j, f }) => (j.clipNorm === undefined ? 0 : f.num('clipNorm', 0)) },
  lossCurve: { rule: 'an array of {step, loss} (null = NaN; absent: [])', write: (s) => s.lossCurve, read: ({ file, j }) => checkCurve(file, 'lossCurve', j.lossCurve, ['loss']) },
  evalCurve: {
    rule: 'an array of {step, val_rmse, val_mae} (null = NaN; absent: [])',
    write: (s) => s.evalCurve,
    read: ({ file, j }) => checkCurve(file, 'evalCurve', j.evalCurve, ['val_rmse', 'val_mae']),
  },
  recentLosses: {
    rule: 'null, or an array of at most 10000 finite numbers (null = NaN)',
    write: (s) => s.recentLosses ?? null,
    read: ({ file, j }) => checkRecentLosses(file, j.recentLosses),
  },
  forceTraining: {
    rule: 'null, or {weights: {energy, forces, stress} finite >= 0, dtype, val, test}',
    write: (s) => s.forceTraining ?? null,
    read: ({ file, j }) => checkForceTraining(file, j.forceTraining),
  },
  elements: {
    rule: 'null, or an ascending list of distinct atomic numbers below numClasses',
    write: (s) => s.elements ?? null,
    read: (c) => {
      const v = c.j.elements;
      if (v === null || v === undefined) return null;
      const config = configOf(c);
      const ok = Array.isArray(v) && v.length <= config.numClasses &&
        v.every((z, i) => Number.isInteger(z) && z >= 0 && z < config.numClasses && (i === 0 || z > (v[i - 1] as number)));
      if (!ok) c.f.bad('elements', `null or an ascending list of distinct atomic numbers below numClasses = ${config.numClasses}`);
      return v as number[];
    },
  },
  microBatches: {
    rule: 'null, or an integer >= 1 (batches of the policy per step)',
    write: (s) => s.microBatches ?? null,
    read: ({ j, f }) => (j.microBatches === null || j.microBatches === undefined ? null : f.int('microBatches', 1)),
  },
};

const FIELD_NAMES = Object.keys(MANIFEST_FIELDS) as (keyof ManifestValues)[];

/** The manifest object the writer puts into checkpoint.json for state `s` and its data files. */
export function manifestOf(s: CheckpointState, w: WriteContext): Json {
  const m: Json = {};
  for (const k of FIELD_NAMES) m[k] = MANIFEST_FIELDS[k].write(s, w);
  return m;
}

/**
 * Reads and validates every field of a parsed manifest `j` of `file`, in
 * table order (the version first). Throws CheckpointError
 * ERR_GNN_CHECKPOINT_VERSION or ERR_GNN_CHECKPOINT_FIELD naming the field.
 */
export function readManifestFields(file: string, j: Json): ManifestValues {
  const c: FieldContext = { file, j, f: fieldReader(file, j), got: {} };
  const got = c.got as Record<string, unknown>;
  for (const k of FIELD_NAMES) got[k] = MANIFEST_FIELDS[k].read(c);
  return c.got as ManifestValues;
}

/** Checks a `files.<key>` entry (the `files` rule): {path, bytes, sha256}, bytes within 0..MAX_DATA_BYTES, path relative and inside the directory. */
export function checkFileEntry(manifestFile: string, key: string, entry: unknown): FileEntry {
  const e = entry as FileEntry;
  if (!e || typeof e !== 'object' || typeof e.path !== 'string' || !Number.isSafeInteger(e.bytes) || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256))
    throw new CheckpointError(manifestFile, `field 'files.${key}' must be {path, bytes, sha256}, found ${JSON.stringify(entry)}`, 'ERR_GNN_CHECKPOINT_FIELD');
  if (e.bytes < 0 || e.bytes > MAX_DATA_BYTES)
    throw new CheckpointError(manifestFile, `field 'files.${key}.bytes' must be between 0 and ${MAX_DATA_BYTES}, found ${e.bytes}`, 'ERR_GNN_CHECKPOINT_FIELD');
  if (path.isAbsolute(e.path) || e.path.split(/[\\/]/).some((p) => p === '..' || p === ''))
    throw new CheckpointError(manifestFile, `field 'files.${key}.path' '${e.path}' must be a relative path inside the checkpoint directory`, 'ERR_GNN_CHECKPOINT_FIELD');
  return e;
}
