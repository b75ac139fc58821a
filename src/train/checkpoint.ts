/**
 * Checkpoints, crash-consistent.
 *
 * Layout of a checkpoint directory DIR (format version 2):
 *
 *   DIR/checkpoint.json                 the manifest: configuration, step, policy
 *                                       and RNG state, curves, and for each data
 *                                       file its path, byte size and SHA-256
 *   DIR/step-000014/model.safetensors   weights (one named tensor per weight,
 *                                       loadable by other frameworks)
 *   DIR/step-000014/optimizer.safetensors  Adam moments (absent for CUDA runs)
 *
 * A checkpoint is one atomic unit: the data files go into a new step
 * directory and are fsynced (files, then the directory), and only then is the
 * manifest written to a temporary file, fsynced and renamed over
 * checkpoint.json (then DIR is fsynced). The rename is the commit point: a
 * reader sees either the previous complete checkpoint or the new one, never a
 * mix. Older step directories are deleted after the commit. If a write fails
 * (disk full, permissions), the new step directory is removed, the manifest
 * still names the previous checkpoint, and a CheckpointError with code
 * ERR_GNN_CHECKPOINT_WRITE says so.
 *
 * Reading trusts no file: each (checkpoint.json included) is opened without
 * blocking, symlinks followed, and checked on the open descriptor to be a
 * regular file (a FIFO, device or directory is ERR_GNN_CHECKPOINT_NOT_FILE)
 * of the manifest's size (checkpoint.json: at most MAX_MANIFEST_BYTES) before
 * exactly that many bytes are read.
 *
 * One training run writes a directory at a time: train() holds its lock
 * (./checkpoint-lock) for the whole run.
 *
 * Reading verifies the set: every named file exists with the manifest's size
 * and SHA-256, each safetensors file's metadata names the manifest's step,
 * every tensor has the model's shape and finite values, and every field of the
 * manifest has the right type and range. Each kind of problem has its own
 * code (ERR_GNN_CHECKPOINT_*, ERR_GNN_SAFETENSORS_*), all as CheckpointError.
 *
 * Version 1 directories (model.safetensors, optimizer.safetensors and
 * checkpoint.json side by side, each replaced separately) are still read,
 * verified as far as they can be: the step recorded in each safetensors file
 * must equal checkpoint.json's, which catches the mixed-step state a crash
 * between the three writes could leave (ERR_GNN_CHECKPOINT_INCOMPLETE).
 *
 * Test hook (for fault-injection tests only): with GNNBATCH_FAULT_AFTER set to
 * one of {@link FAULT_POINTS}, the process SIGKILLs itself right after that
 * point of the first checkpoint write (or of the write of step
 * GNNBATCH_FAULT_STEP when that is set too).
 */
import type { ForceLossWeights, ForceTrainingSummary } from './force-training';
import { constants as bufferConstants } from 'buffer';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { defaultModelConfig, resolveModelConfig, type ModelConfig } from '../model/config';
import { isBias, paramLayout, type ParamLayout } from '../model/params';
import { parseGraphRule } from '../data/graph-rule';
import { CheckpointError, isGnnError, type GnnErrorCode } from '../errors';
import { decodeSafetensors, encodeSafetensors, type Tensor } from './safetensors';
import type { ScheduleSpec } from './schedule';

/** Format version of checkpoint.json written now. */
export const CHECKPOINT_VERSION = 2;
/** The manifest's name inside a checkpoint directory. */
export const MANIFEST_NAME = 'checkpoint.json';

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

/** A data file named by the manifest. */
interface FileEntry {
  path: string;
  bytes: number;
  sha256: string;
}

/** Points of a checkpoint write after which GNNBATCH_FAULT_AFTER can kill the process. */
export const FAULT_POINTS = ['model', 'optimizer', 'step-dir', 'manifest-tmp', 'manifest', 'cleanup'] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

/** How a checkpoint writes its files (injectable, so tests can simulate a full disk). */
export interface CheckpointIo {
  /** Writes `data` to a new file `file` durably (written, fsynced, closed). */
  writeFileDurable(file: string, data: Uint8Array): void;
}

/** The default {@link CheckpointIo}: write, fsync, close. */
export const fsCheckpointIo: CheckpointIo = {
  writeFileDurable(file: string, data: Uint8Array): void {
    const fd = fs.openSync(file, 'wx');
    try {
      let done = 0;
      while (done < data.byteLength) done += fs.writeSync(fd, data, done, data.byteLength - done);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
};

/** Options of {@link writeCheckpoint}. */
export interface WriteCheckpointOptions {
  /** File writer (default {@link fsCheckpointIo}). */
  io?: CheckpointIo;
}

let faultArmed = true;
/** The GNNBATCH_FAULT_AFTER test hook: SIGKILL this process after `point` of the write of `step`. */
function faultPoint(point: FaultPoint, step: number): void {
  const want = process.env.GNNBATCH_FAULT_AFTER;
  if (!want || want !== point || !faultArmed) return;
  const atStep = process.env.GNNBATCH_FAULT_STEP;
  if (atStep !== undefined && atStep !== '' && Number(atStep) !== step) return;
  faultArmed = false;
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is delivered before kill() returns for the calling process; wait in case it is not.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
}

const sha256 = (data: Uint8Array): string => crypto.createHash('sha256').update(data).digest('hex');

/** The largest checkpoint.json read (a manifest is kilobytes; this bounds a hostile one). */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
/** The largest data file read (what one Buffer can hold). */
const MAX_DATA_BYTES = bufferConstants.MAX_LENGTH;

/** What a file descriptor's stat says the file is, for messages (null for a regular file). */
function notRegular(st: fs.Stats): string | null {
  return st.isFile() ? null
    : st.isFIFO() ? 'a FIFO (named pipe)'
    : st.isCharacterDevice() ? 'a character device'
    : st.isBlockDevice() ? 'a block device'
    : st.isDirectory() ? 'a directory'
    : st.isSocket() ? 'a socket'
    : 'not a regular file';
}

/**
 * Reads a file of a checkpoint without trusting it: opened without blocking
 * (a FIFO does not hang the open) with symlinks followed, its type and size
 * checked on the open descriptor (regular file; exactly `size.exact` bytes,
 * or at most `size.max`), then exactly that many bytes are read. A FIFO,
 * device or directory is ERR_GNN_CHECKPOINT_NOT_FILE; a size other than the
 * manifest's is ERR_GNN_CHECKPOINT_CHECKSUM; a file that cannot be opened is
 * the caller's `missing` error.
 */
function readCheckpointFile(file: string, size: { exact: number } | { max: number }, missing: (e: NodeJS.ErrnoException) => CheckpointError): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw missing(e as NodeJS.ErrnoException);
  }
  try {
    const st = fs.fstatSync(fd);
    const kind = notRegular(st);
    if (kind) throw new CheckpointError(file, `is ${kind}, not a regular file: a checkpoint's files are read only from regular files`, 'ERR_GNN_CHECKPOINT_NOT_FILE');
    if ('exact' in size && st.size !== size.exact)
      throw new CheckpointError(file, `has ${st.size} bytes, ${MANIFEST_NAME} says ${size.exact}: the file was truncated or replaced`, 'ERR_GNN_CHECKPOINT_CHECKSUM');
    if ('max' in size && st.size > size.max)
      throw new CheckpointError(file, `has ${st.size} bytes, more than the ${size.max} a checkpoint file may have`, 'ERR_GNN_CHECKPOINT_NOT_FILE');
    const buf = Buffer.alloc(st.size);
    let done = 0;
    while (done < buf.byteLength) {
      const n = fs.readSync(fd, buf, done, buf.byteLength - done, done);
      if (n === 0) throw new CheckpointError(file, `ended after ${done} of ${buf.byteLength} bytes while being read: the file was truncated`, 'ERR_GNN_CHECKPOINT_CHECKSUM');
      done += n;
    }
    return buf;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw missing(e as NodeJS.ErrnoException);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory so that renames and new entries in it are durable (best effort where unsupported). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function tensorsOf(layout: ParamLayout, flat: Float32Array, prefix = ''): Map<string, Tensor> {
  const t = new Map<string, Tensor>();
  for (const e of layout.entries) {
    const data = flat.slice(e.offset, e.offset + e.rows * e.cols);
    t.set(prefix + e.name, { dtype: 'F32', shape: isBias(e) ? [e.cols] : [e.rows, e.cols], data });
  }
  return t;
}

/**
 * The flat vector of `layout` from named tensors: every tensor present with
 * exactly the model's shape, no extra tensor, every value finite (and >= 0
 * for Adam's second moments).
 */
function flatOf(layout: ParamLayout, tensors: Map<string, Tensor>, file: string, prefixes: string[], prefix: string, nonNegative = false): Float32Array {
  const out = new Float32Array(layout.total);
  for (const e of layout.entries) {
    const name = prefix + e.name;
    const t = tensors.get(name);
    if (!t) throw new CheckpointError(file, `tensor '${name}' is missing`, 'ERR_GNN_CHECKPOINT_TENSOR');
    const shape = isBias(e) ? [e.cols] : [e.rows, e.cols];
    if (t.shape.length !== shape.length || t.shape.some((x, k) => x !== shape[k]))
      throw new CheckpointError(file, `tensor '${name}' has shape [${t.shape}], the model needs [${shape}]`, 'ERR_GNN_CHECKPOINT_TENSOR');
    for (let k = 0; k < t.data.length; k++) {
      const x = t.data[k];
      if (!Number.isFinite(x) || (nonNegative && x < 0))
        throw new CheckpointError(file, `tensor '${name}' value ${k} is ${x}${nonNegative && x < 0 ? ' (a second moment must be >= 0)' : ''}`, 'ERR_GNN_CHECKPOINT_NONFINITE');
    }
    out.set(t.data, e.offset);
  }
  for (const name of tensors.keys()) {
    if (!prefixes.some((p) => name.startsWith(p)) || !layout.entries.some((e) => prefixes.some((p) => p + e.name === name)))
      throw new CheckpointError(file, `tensor '${name}' is not a weight of this ${layout.entries.length}-tensor model`, 'ERR_GNN_CHECKPOINT_TENSOR');
  }
  return out;
}

/**
 * Checks that `dir` can hold checkpoints, creating it: call before training so
 * that a bad path fails at once, not after the last step
 * (ERR_GNN_CHECKPOINT_PATH names the path and the reason).
 */
export function prepareCheckpointDir(dir: string, probe = true): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
    throw new CheckpointError(dir, 'cannot be used as a checkpoint directory: it exists and is a file (ENOTDIR)', 'ERR_GNN_CHECKPOINT_PATH');
  try {
    fs.mkdirSync(dir, { recursive: true });
    if (probe) {
      const file = path.join(dir, `.write-probe.${process.pid}.tmp`);
      fs.writeFileSync(file, '');
      fs.unlinkSync(file);
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOTDIR' ? 'a part of the path is a file, not a directory'
      : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied'
      : err.code === 'EROFS' ? 'read-only file system'
      : err.message;
    throw new CheckpointError(dir, `cannot be used as a checkpoint directory: ${why}${err.code ? ` (${err.code})` : ''}`, 'ERR_GNN_CHECKPOINT_PATH', { cause: e });
  }
}

/** The manifest currently committed in `dir` (null when there is none or it is unreadable). */
function currentManifest(dir: string): { step: number; files: Record<string, FileEntry | null> } | null {
  try {
    const file = path.join(dir, MANIFEST_NAME);
    const j = JSON.parse(readCheckpointFile(file, { max: MAX_MANIFEST_BYTES }, (e) => new CheckpointError(file, String(e.code), 'ERR_GNN_CHECKPOINT_MISSING')).toString('utf8'));
    return j && typeof j === 'object' ? j : null;
  } catch {
    return null;
  }
}

const stepDirName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

/**
 * Writes a checkpoint into `dir` (created when missing) as one atomic unit
 * (see the file comment). Throws CheckpointError ERR_GNN_CHECKPOINT_WRITE,
 * leaving the previous checkpoint intact, when a write fails.
 */
export function writeCheckpoint(dir: string, s: CheckpointState, options: WriteCheckpointOptions = {}): void {
  const io = options.io ?? fsCheckpointIo;
  prepareCheckpointDir(dir, false);
  const prev = currentManifest(dir);
  const referenced = new Set<string>();
  for (const f of Object.values(prev?.files ?? {})) if (f && typeof f.path === 'string') referenced.add(f.path.split('/')[0]);
  // A fresh step directory: never one the committed manifest names.
  let name = stepDirName(s.step);
  for (let k = 1; referenced.has(name); k++) name = `${stepDirName(s.step)}-${k}`;
  const stepDir = path.join(dir, name);
  const previous = prev && Number.isInteger(prev.step) ? `the previous checkpoint (step ${prev.step}) is intact` : 'no earlier checkpoint was there';
  const files: Record<string, FileEntry | null> = {};
  let tmp: string | null = null;
  let committed = false;
  try {
    fs.rmSync(stepDir, { recursive: true, force: true }); // leftover of an interrupted write
    fs.mkdirSync(stepDir);
    const put = (key: string, fileName: string, data: Uint8Array, point: FaultPoint): void => {
      io.writeFileDurable(path.join(stepDir, fileName), data);
      files[key] = { path: `${name}/${fileName}`, bytes: data.byteLength, sha256: sha256(data) };
      faultPoint(point, s.step);
    };
    put('model', 'model.safetensors', encodeSafetensors(tensorsOf(s.layout, s.params), { format: 'gnnbatch', model: s.config.kind, step: String(s.step) }), 'model');
    if (s.hasOptimizer === false) {
      files.optimizer = null;
    } else {
      const opt = tensorsOf(s.layout, s.m, 'adam_m/');
      for (const [k, t] of tensorsOf(s.layout, s.v, 'adam_v/')) opt.set(k, t);
      put('optimizer', 'optimizer.safetensors', encodeSafetensors(opt, { step: String(s.step) }), 'optimizer');
    }
    fsyncDir(stepDir);
    fsyncDir(dir);
    faultPoint('step-dir', s.step);
    const manifest = {
      version: CHECKPOINT_VERSION,
      step: s.step,
      files,
      seed: s.seed,
      config: s.config,
      policy: s.policy,
      policyOptions: s.policyOptions,
      policyState: s.policyState,
      batchSize: s.batchSize,
      target: s.target,
      targetMean: s.targetMean,
      targetStd: s.targetStd,
      atomRefs: s.atomRefs,
      graphRule: s.graphRule,
      schedule: s.schedule,
      clipNorm: s.clipNorm,
      lossCurve: s.lossCurve,
      evalCurve: s.evalCurve,
      recentLosses: s.recentLosses ?? null,
      forceTraining: s.forceTraining ?? null,
      elements: s.elements ?? null,
    };
    tmp = path.join(dir, `.${MANIFEST_NAME}.${process.pid}.tmp`);
    fs.rmSync(tmp, { force: true });
    io.writeFileDurable(tmp, Buffer.from(JSON.stringify(manifest, null, 1), 'utf8'));
    faultPoint('manifest-tmp', s.step);
    fs.renameSync(tmp, path.join(dir, MANIFEST_NAME)); // the commit point
    tmp = null;
    committed = true;
    fsyncDir(dir);
    faultPoint('manifest', s.step);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (committed) {
      // The manifest already names the new step directory: keep it.
      throw new CheckpointError(dir, `the checkpoint of step ${s.step} was committed but syncing the directory failed (${err.message}); it may not survive a power loss`, 'ERR_GNN_CHECKPOINT_WRITE', { cause: e });
    }
    if (tmp) fs.rmSync(tmp, { force: true });
    try {
      fs.rmSync(stepDir, { recursive: true, force: true });
    } catch {
      /* best effort: the manifest does not name it */
    }
    if (isGnnError(e)) throw e;
    throw new CheckpointError(
      dir,
      `writing the checkpoint of step ${s.step} failed (${err.code === 'ENOSPC' ? 'disk full' : err.message}); ${previous}`,
      'ERR_GNN_CHECKPOINT_WRITE',
      { cause: e },
    );
  }
  removeStaleFiles(dir, name);
  faultPoint('cleanup', s.step);
}

/**
 * Deletes what the committed manifest of `dir` does not name: older step
 * directories, temporary files and legacy (v1) data files. Run after each
 * commit, and by a run that resumes in place (a kill between a commit and its
 * clean-up leaves the previous step directory behind). `keep` is the step
 * directory of the committed manifest (read from it when omitted; nothing is
 * deleted when the manifest is not a version 2 one).
 */
export function removeStaleFiles(dir: string, keep?: string): void {
  if (keep === undefined) {
    const m = currentManifest(dir) as { version?: number; files?: { model?: { path?: unknown } } } | null;
    const p = m?.version === CHECKPOINT_VERSION ? m.files?.model?.path : undefined;
    if (typeof p !== 'string') return;
    keep = p.split('/')[0];
  }
  for (const entry of fs.readdirSync(dir)) {
    const legacy = entry === 'model.safetensors' || entry === 'optimizer.safetensors';
    const oldStep = /^step-\d+(-\d+)?$/.test(entry) && entry !== keep;
    const stale = entry.endsWith('.tmp') && (entry.startsWith(`.${MANIFEST_NAME}.`) || entry.startsWith('.write-probe.'));
    if (legacy || oldStep || stale) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}

/** Options of {@link readCheckpoint}. */
export interface ReadCheckpointOptions {
  /** Read and verify the Adam moments too (needed to resume; default false, so inference never reads them). */
  optimizer?: boolean;
}

type Json = Record<string, unknown>;

/** Field checks of a manifest; each failure is ERR_GNN_CHECKPOINT_FIELD naming the field. */
function fieldReader(file: string, j: Json) {
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

/** Reads a file the manifest names, checking its size and SHA-256. */
function readVerified(dir: string, manifestFile: string, key: string, entry: unknown): { file: string; data: Buffer } {
  const e = entry as FileEntry;
  if (!e || typeof e !== 'object' || typeof e.path !== 'string' || !Number.isSafeInteger(e.bytes) || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256))
    throw new CheckpointError(manifestFile, `field 'files.${key}' must be {path, bytes, sha256}, found ${JSON.stringify(entry)}`, 'ERR_GNN_CHECKPOINT_FIELD');
  if (e.bytes < 0 || e.bytes > MAX_DATA_BYTES)
    throw new CheckpointError(manifestFile, `field 'files.${key}.bytes' must be between 0 and ${MAX_DATA_BYTES}, found ${e.bytes}`, 'ERR_GNN_CHECKPOINT_FIELD');
  if (path.isAbsolute(e.path) || e.path.split(/[\\/]/).some((p) => p === '..' || p === ''))
    throw new CheckpointError(manifestFile, `field 'files.${key}.path' '${e.path}' must be a relative path inside the checkpoint directory`, 'ERR_GNN_CHECKPOINT_FIELD');
  const file = path.join(dir, e.path);
  const data = readCheckpointFile(file, { exact: e.bytes }, (err) =>
    new CheckpointError(file, `named by ${MANIFEST_NAME} but cannot be read (${err.code ?? err.message}): the checkpoint is incomplete`, 'ERR_GNN_CHECKPOINT_INCOMPLETE', { cause: err }));
  if (sha256(data) !== e.sha256)
    throw new CheckpointError(file, `SHA-256 differs from the one in ${MANIFEST_NAME}: the file is corrupt or from another checkpoint`, 'ERR_GNN_CHECKPOINT_CHECKSUM');
  return { file, data };
}

/** Decodes a safetensors file of a checkpoint and checks that it was written for `step`. */
function decodeAt(file: string, data: Buffer, step: number): Map<string, Tensor> {
  const { tensors, metadata } = decodeSafetensors(data, file);
  if (metadata.step !== String(step))
    throw new CheckpointError(file, `holds step ${metadata.step ?? '(none)'} but ${MANIFEST_NAME} is at step ${step}: the files come from different steps (an interrupted write); resume from another checkpoint or start again`, 'ERR_GNN_CHECKPOINT_INCOMPLETE');
  return tensors;
}

/**
 * Reads and verifies a checkpoint written by {@link writeCheckpoint} (or a
 * version 1 directory); every error is a CheckpointError naming the file and
 * field. The optimizer file is read only with `options.optimizer`.
 */
export function readCheckpoint(dir: string, options: ReadCheckpointOptions = {}): LoadedCheckpoint {
  const jf = path.join(dir, MANIFEST_NAME);
  const text = readCheckpointFile(jf, { max: MAX_MANIFEST_BYTES }, (e) => {
    const why = e.code === 'ENOENT' ? `not a checkpoint directory (${MANIFEST_NAME} missing)` : `cannot read ${MANIFEST_NAME} (${e.code ?? e.message})`;
    return new CheckpointError(dir, why, 'ERR_GNN_CHECKPOINT_MISSING', { cause: e });
  }).toString('utf8');
  let j: Json;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(jf, `invalid JSON (${(e as Error).message})`, 'ERR_GNN_CHECKPOINT_JSON', { cause: e });
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new CheckpointError(jf, 'is not a JSON object', 'ERR_GNN_CHECKPOINT_JSON');
  const version = j.version;
  if (version !== 1 && version !== 2)
    throw new CheckpointError(jf, `checkpoint version ${JSON.stringify(version)} is not supported (this gnnbatch reads 1 and 2)`, 'ERR_GNN_CHECKPOINT_VERSION');
  const f = fieldReader(jf, j);
  const step = f.int('step', 0);
  const seed = f.num('seed');
  const config = checkConfig(jf, f.obj('config'));
  const policy = f.str('policy');
  const policyOptions = f.obj('policyOptions', true);
  const batchSize = f.int('batchSize', 2);
  const target = f.str('target');
  const targetMean = f.num('targetMean');
  const targetStd = f.num('targetStd', 0);
  const atomRefsRaw = j.atomRefs;
  let atomRefs: number[] | null = null;
  if (atomRefsRaw !== null && atomRefsRaw !== undefined) {
    if (!Array.isArray(atomRefsRaw) || atomRefsRaw.length < config.numClasses || !atomRefsRaw.every((x) => typeof x === 'number' && Number.isFinite(x)))
      f.bad('atomRefs', `null or an array of at least numClasses = ${config.numClasses} finite numbers (one per atomic number)`);
    atomRefs = atomRefsRaw as number[];
  }
  const elementsRaw = j.elements;
  let elements: number[] | null = null;
  if (elementsRaw !== null && elementsRaw !== undefined) {
    const ok = Array.isArray(elementsRaw) && elementsRaw.length <= config.numClasses &&
      elementsRaw.every((z, i) => Number.isInteger(z) && z >= 0 && z < config.numClasses && (i === 0 || z > (elementsRaw[i - 1] as number)));
    if (!ok) f.bad('elements', `null or an ascending list of distinct atomic numbers below numClasses = ${config.numClasses}`);
    elements = elementsRaw as number[];
  }
  const graphRule = f.str('graphRule');
  try {
    parseGraphRule(graphRule);
  } catch {
    f.bad('graphRule', 'fc, cutoff:R or knn:K');
  }
  const schedule = checkSchedule(jf, f.obj('schedule'));
  const clipNorm = j.clipNorm === undefined ? 0 : f.num('clipNorm', 0);
  const lossCurve = checkCurve(jf, 'lossCurve', j.lossCurve, ['loss']);
  const evalCurve = checkCurve(jf, 'evalCurve', j.evalCurve, ['val_rmse', 'val_mae']);
  const recentLosses = checkRecentLosses(jf, j.recentLosses);
  const forceTraining = checkForceTraining(jf, j.forceTraining);
  const layout = paramLayout(config);

  let modelFile: string;
  let params: Float32Array;
  let hasOptimizer: boolean;
  let m: Float32Array | null = null;
  let v: Float32Array | null = null;
  const readMoments = (file: string, data: Buffer): void => {
    const t = decodeAt(file, data, step);
    const prefixes = ['adam_m/', 'adam_v/'];
    m = flatOf(layout, new Map([...t].filter(([k]) => k.startsWith('adam_m/'))), file, prefixes, 'adam_m/');
    v = flatOf(layout, new Map([...t].filter(([k]) => k.startsWith('adam_v/'))), file, prefixes, 'adam_v/', true);
    for (const k of t.keys()) if (!prefixes.some((p) => k.startsWith(p))) throw new CheckpointError(file, `tensor '${k}' is not an Adam moment`, 'ERR_GNN_CHECKPOINT_TENSOR');
  };
  if (version === 2) {
    const files = f.obj('files');
    const model = readVerified(dir, jf, 'model', files.model);
    modelFile = model.file;
    params = flatOf(layout, decodeAt(model.file, model.data, step), model.file, [''], '');
    if (files.optimizer !== null && files.optimizer !== undefined) {
      hasOptimizer = true;
      if (options.optimizer) {
        const opt = readVerified(dir, jf, 'optimizer', files.optimizer);
        readMoments(opt.file, opt.data);
      }
    } else if (files.optimizer === null) {
      hasOptimizer = false;
    } else {
      return f.bad('files', "an object with 'model' and 'optimizer' (null when there is none)");
    }
  } else {
    modelFile = path.join(dir, 'model.safetensors');
    const read = (file: string): Buffer =>
      readCheckpointFile(file, { max: MAX_DATA_BYTES }, (e) =>
        new CheckpointError(file, `cannot be read (${e.code ?? e.message}): the checkpoint is incomplete`, 'ERR_GNN_CHECKPOINT_INCOMPLETE', { cause: e }));
    params = flatOf(layout, decodeAt(modelFile, read(modelFile), step), modelFile, [''], '');
    const of = path.join(dir, 'optimizer.safetensors');
    hasOptimizer = fs.existsSync(of);
    if (hasOptimizer && options.optimizer) readMoments(of, read(of));
  }
  return {
    version,
    modelFile,
    config,
    layout,
    params,
    m,
    v,
    step,
    seed,
    policy,
    policyOptions,
    policyState: j.policyState,
    batchSize,
    target,
    targetMean,
    targetStd,
    atomRefs,
    graphRule,
    schedule,
    clipNorm,
    lossCurve,
    evalCurve,
    hasOptimizer,
    recentLosses,
    forceTraining,
    elements,
  };
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

/** The code of a checkpoint error, for callers that branch on it. */
export type CheckpointErrorCode = Extract<GnnErrorCode, `ERR_GNN_CHECKPOINT_${string}` | `ERR_GNN_SAFETENSORS_${string}`>;
