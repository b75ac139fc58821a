/**
 * Reading and verifying checkpoints (the format: ./checkpoint.ts).
 *
 * Reading trusts no file: each (checkpoint.json included) is opened without
 * blocking, symlinks followed, and checked on the open descriptor to be a
 * regular file (a FIFO, device or directory is ERR_GNN_CHECKPOINT_NOT_FILE)
 * of the manifest's size (checkpoint.json: at most MAX_MANIFEST_BYTES) before
 * exactly that many bytes are read. Every named file must have the manifest's
 * size and SHA-256, each safetensors file's metadata must name the manifest's
 * step, every tensor must have the model's shape and finite values, and every
 * field of the manifest must pass its rule in ./checkpoint-manifest.ts.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { isBias, paramLayout, type ParamLayout } from '../model/params';
import { CheckpointError } from '../errors';
import { decodeSafetensors, type Tensor } from './safetensors';
import { checkFileEntry, fieldReader, MANIFEST_NAME, MAX_DATA_BYTES, readManifestFields, type Json, type LoadedCheckpoint } from './checkpoint-manifest';

/** The largest checkpoint.json read (a manifest is kilobytes; this bounds a hostile one). */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/** Options of {@link readCheckpoint}. */
export interface ReadCheckpointOptions {
  /** Read and verify the Adam moments too (needed to resume; default false, so inference never reads them). */
  optimizer?: boolean;
}

export const sha256 = (data: Uint8Array): string => crypto.createHash('sha256').update(data).digest('hex');

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

/**
 * The manifest currently committed in `dir`, parsed but not validated (null
 * when there is none or it is unreadable): what the writer keeps and cleans
 * up around.
 */
export function currentManifest(dir: string): { version?: unknown; step?: unknown; files?: Record<string, { path?: unknown } | null> } | null {
  try {
    const file = path.join(dir, MANIFEST_NAME);
    const j = JSON.parse(readCheckpointFile(file, { max: MAX_MANIFEST_BYTES }, (e) => new CheckpointError(file, String(e.code), 'ERR_GNN_CHECKPOINT_MISSING')).toString('utf8'));
    return j && typeof j === 'object' ? j : null;
  } catch {
    return null;
  }
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

/** Reads a file the manifest names, checking its size and SHA-256. */
function readVerified(dir: string, manifestFile: string, key: string, entry: unknown): { file: string; data: Buffer } {
  const e = checkFileEntry(manifestFile, key, entry);
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
 * Reads and verifies a checkpoint written by writeCheckpoint (or a version 1
 * directory); every error is a CheckpointError naming the file and field. The
 * optimizer file is read only with `options.optimizer`.
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
  const { version, files, ...fields } = readManifestFields(jf, j);
  const { step, config } = fields;
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
  if (version === 2 && files) {
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
      return fieldReader(jf, j).bad('files', "an object with 'model' and 'optimizer' (null when there is none)");
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
  return { ...fields, version, modelFile, layout, params, m, v, hasOptimizer };
}
