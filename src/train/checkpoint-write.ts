/**
 * Writing checkpoints (the format and the commit protocol: ./checkpoint.ts).
 * The files go through src/util/durable.ts: the data files are new files in
 * a new step directory (written, fsynced; then the directory is fsynced), and
 * checkpoint.json is one durable write (temporary file, fsync, rename, fsync
 * of DIR) whose rename is the commit point. Its fields come from the manifest
 * table (./checkpoint-manifest.ts), whose rules the reader checks.
 */
import * as fs from 'fs';
import * as path from 'path';
import { isBias, type ParamLayout } from '../model/params';
import { CheckpointError, isGnnError } from '../errors';
import { encodeSafetensors, type Tensor } from './safetensors';
import { fsyncDir, writeFileDurable, writeNewFile } from '../util/durable';
import { CHECKPOINT_VERSION, MANIFEST_NAME, manifestOf, type CheckpointState, type ManifestFiles } from './checkpoint-manifest';
import { currentManifest, sha256 } from './checkpoint-read';

/** Points of a checkpoint write after which GNNBATCH_FAULT_AFTER can kill the process. */
export const FAULT_POINTS = ['model', 'optimizer', 'step-dir', 'manifest-tmp', 'manifest', 'cleanup'] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

/** How a checkpoint writes its files (injectable, so tests can simulate a full disk). */
export interface CheckpointIo {
  /** Writes `data` to a new file `file` durably (written, fsynced, closed). */
  writeFileDurable(file: string, data: Uint8Array): void;
}

/** The default {@link CheckpointIo}: write, fsync, close (src/util/durable.ts writeNewFile). */
export const fsCheckpointIo: CheckpointIo = {
  writeFileDurable(file: string, data: Uint8Array): void {
    writeNewFile(file, data);
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

function tensorsOf(layout: ParamLayout, flat: Float32Array, prefix = ''): Map<string, Tensor> {
  const t = new Map<string, Tensor>();
  for (const e of layout.entries) {
    const data = flat.slice(e.offset, e.offset + e.rows * e.cols);
    t.set(prefix + e.name, { dtype: 'F32', shape: isBias(e) ? [e.cols] : [e.rows, e.cols], data });
  }
  return t;
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
      // A probe of the permission, deleted at once (not a file the library keeps).
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

const stepDirName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

/**
 * Writes a checkpoint into `dir` (created when missing) as one atomic unit
 * (see ./checkpoint.ts). Throws CheckpointError ERR_GNN_CHECKPOINT_WRITE,
 * leaving the previous checkpoint intact, when a write fails.
 */
export function writeCheckpoint(dir: string, s: CheckpointState, options: WriteCheckpointOptions = {}): void {
  const io = options.io ?? fsCheckpointIo;
  const files: ManifestFiles = { model: null, optimizer: null };
  const manifest = manifestOf(s, { files });
  prepareCheckpointDir(dir, false);
  const prev = currentManifest(dir);
  const referenced = new Set<string>();
  for (const f of Object.values(prev?.files ?? {})) if (f && typeof f.path === 'string') referenced.add(f.path.split('/')[0]);
  // A fresh step directory: never one the committed manifest names.
  let name = stepDirName(s.step);
  for (let k = 1; referenced.has(name); k++) name = `${stepDirName(s.step)}-${k}`;
  const stepDir = path.join(dir, name);
  const previous = prev && Number.isInteger(prev.step) ? `the previous checkpoint (step ${prev.step}) is intact` : 'no earlier checkpoint was there';
  const failure = (e: unknown, committed: boolean): CheckpointError => {
    const err = e as NodeJS.ErrnoException;
    return committed
      // The manifest already names the new step directory: it is kept.
      ? new CheckpointError(dir, `the checkpoint of step ${s.step} was committed but syncing the directory failed (${err.message}); it may not survive a power loss`, 'ERR_GNN_CHECKPOINT_WRITE', { cause: e })
      : new CheckpointError(dir, `writing the checkpoint of step ${s.step} failed (${err.code === 'ENOSPC' ? 'disk full' : err.message}); ${previous}`, 'ERR_GNN_CHECKPOINT_WRITE', { cause: e });
  };
  let committed = false;
  try {
    fs.rmSync(stepDir, { recursive: true, force: true }); // leftover of an interrupted write
    fs.mkdirSync(stepDir);
    const put = (key: keyof ManifestFiles, fileName: string, data: Uint8Array, point: 'model' | 'optimizer'): void => {
      io.writeFileDurable(path.join(stepDir, fileName), data);
      files[key] = { path: `${name}/${fileName}`, bytes: data.byteLength, sha256: sha256(data) };
      faultPoint(point, s.step);
    };
    put('model', 'model.safetensors', encodeSafetensors(tensorsOf(s.layout, s.params), { format: 'gnnbatch', model: s.config.kind, step: String(s.step) }), 'model');
    if (s.hasOptimizer !== false) {
      const opt = tensorsOf(s.layout, s.m, 'adam_m/');
      for (const [k, t] of tensorsOf(s.layout, s.v, 'adam_v/')) opt.set(k, t);
      put('optimizer', 'optimizer.safetensors', encodeSafetensors(opt, { step: String(s.step) }), 'optimizer');
    }
    fsyncDir(stepDir);
    fsyncDir(dir);
    faultPoint('step-dir', s.step);
    // The commit point: checkpoint.json replaced by one durable write (temporary file, fsync, rename, fsync of DIR).
    writeFileDurable(path.join(dir, MANIFEST_NAME), JSON.stringify(manifest, null, 1), {
      writeNew: (file, data) => io.writeFileDurable(file, data),
      beforeRename: () => faultPoint('manifest-tmp', s.step),
      error: (f) => {
        committed = f.committed;
        return failure(f.cause, f.committed);
      },
    });
    faultPoint('manifest', s.step);
  } catch (e) {
    if (committed) throw e;
    try {
      fs.rmSync(stepDir, { recursive: true, force: true });
    } catch {
      /* best effort: the manifest does not name it */
    }
    if (isGnnError(e)) throw e;
    throw failure(e, false);
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
