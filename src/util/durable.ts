/**
 * Durable files: the one way gnnbatch puts a file on disk.
 *
 * {@link writeFileDurable} (a whole file) and {@link openDurable} (the same,
 * streamed) write `file` so that a reader, and the file system after a crash
 * or a power loss, sees either the previous file or the complete new one,
 * never a mix, a truncation or an empty file:
 *
 *   1. a temporary file is created next to `file` (the same directory, so the
 *      rename cannot cross file systems) under a name no other writer uses:
 *      `.<name>.<pid>.<random>.tmp`, created exclusively (O_EXCL);
 *   2. the bytes are written, fsynced, and the file is closed;
 *   3. it is renamed over `file`: the commit point;
 *   4. the directory is fsynced, so that the rename itself is durable
 *      (skipped, as {@link fsyncDir} says, where a platform cannot sync a
 *      directory).
 *
 * A failure in steps 1 to 3 removes the temporary file and leaves an existing
 * `file` as it was; a failure in step 4 leaves the new `file` in place
 * (`committed` in the {@link WriteFailure}). Either way the thrown error is
 * the caller's, with its code: each writer builds it from the failure
 * (`error`), as a {@link DurableWriteError} with its code
 * (`<file>: cannot be written: <reason> (<errno>)`) or in its own class and
 * words (ERR_GNN_CACHE_WRITE, ERR_GNN_CHECKPOINT_WRITE,
 * ERR_GNN_DOWNLOAD_WRITE, ERR_GNN_OUTPUT_PATH...).
 *
 * A destination that exists and is not a regular file or a directory (a
 * character device such as /dev/stdout or /dev/null, a FIFO, a socket) cannot
 * be replaced by a rename: it is written in place (no temporary file, no
 * fsync). A symbolic link is replaced by the new file, as a rename does; it
 * is not written through.
 *
 * The pieces, for writers that need them:
 * - {@link commitFile}: steps 2 (fsync) to 4 for a file the caller already
 *   wrote (a download's part file). The caller owns that file: it is not
 *   removed when the commit fails (a verified part stays for the next run).
 * - {@link writeNewFile} and {@link fsyncDir}: a new file written and
 *   fsynced, and a directory synced, for writers that assemble a directory
 *   whose commit point is a durable write of its own (a checkpoint's step
 *   directory, committed by its manifest).
 *
 * docs/architecture.md states the rule: every file the library writes goes
 * through this module.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { GnnError, isGnnError, type GnnErrorCode } from '../errors';

/** Where a durable write failed. */
export type WriteStage = 'mkdir' | 'open' | 'write' | 'fsync' | 'rename' | 'fsync-dir';

/** What the caller's `error` builder is given when a durable write fails. */
export interface WriteFailure {
  /** The destination (as the caller named it). */
  file: string;
  /** The step that failed. */
  stage: WriteStage;
  /** The underlying error: an errno error from the file system, or whatever a hook threw. */
  cause: NodeJS.ErrnoException;
  /** The cause in words a user can act on, with its errno code: `the disk is full (ENOSPC)`. */
  reason: string;
  /**
   * True when `file` already holds the new content and only the directory
   * sync failed (the new file may not survive a power loss); false when
   * nothing was written under `file` (an existing file is intact).
   */
  committed: boolean;
}

/** Options of {@link writeFileDurable}, {@link openDurable} and {@link commitFile}. */
export interface DurableOptions {
  /**
   * Builds the error a failure throws, with the caller's code: the default
   * class, `(f) => new DurableWriteError('ERR_GNN_OUTPUT_PATH', f)`, or the
   * caller's own (a CacheError, a CheckpointError with its own words).
   */
  error: (failure: WriteFailure) => Error;
  /** Create the destination's missing parent directories first (default false). */
  mkdir?: boolean;
}

/** Options of {@link writeFileDurable}. */
export interface WriteFileDurableOptions extends DurableOptions {
  /**
   * Writes the temporary file (a new file: create, write, fsync, close);
   * default {@link writeNewFile}. Tests inject failures here (a full disk).
   */
  writeNew?: (file: string, data: Uint8Array) => void;
  /** Runs when the temporary file is complete and synced, just before the rename (fault-injection tests). */
  beforeRename?: (tmp: string) => void;
}

/** The error class of a failed durable write for callers without their own; `code` is the caller's. */
export class DurableWriteError extends GnnError {
  /** The destination. */
  readonly file: string;
  /** The step that failed. */
  readonly stage: WriteStage;
  /** Whether the new content is already in place (only the directory sync failed). */
  readonly committed: boolean;
  constructor(code: GnnErrorCode, f: WriteFailure) {
    super(
      code,
      f.committed
        ? `${f.file}: was written, but syncing its folder failed: ${f.reason}; it may not survive a power loss`
        : `${f.file}: cannot be written: ${f.reason}`,
      { cause: f.cause },
    );
    this.name = 'DurableWriteError';
    this.file = f.file;
    this.stage = f.stage;
    this.committed = f.committed;
  }
}

/** Why a write failed, in words a user can act on, with the errno code: `the disk is full (ENOSPC)`. */
export function describeWriteFailure(e: NodeJS.ErrnoException): string {
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const why = code === 'ENOSPC' ? 'the disk is full'
    : code === 'EDQUOT' ? 'the disk quota is exhausted'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EROFS' ? 'the file system is read-only'
    : code === 'ENOENT' ? 'its folder does not exist'
    : code === 'ENOTDIR' ? 'a part of the path is a file, not a folder'
    : code === 'EISDIR' ? 'it is a directory'
    : code === 'EIO' ? 'an input/output error'
    : typeof e?.message === 'string' ? e.message : String(e);
  return code && !why.includes(code) ? `${why} (${code})` : why;
}

/** The temporary file a durable write of `file` uses: next to it, unique to this process and call. */
export function tempPathFor(file: string): string {
  const base = path.basename(file);
  // A name stays under the usual 255-byte limit however long `file`'s is.
  const short = Buffer.byteLength(base) > 200 ? base.slice(0, 60) : base;
  return path.join(path.dirname(file), `.${short}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
}

/** Writes all of `data` at the descriptor's position. */
function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += fs.writeSync(fd, data, done, data.byteLength - done);
}

/**
 * Creates `file` (which must not exist: O_EXCL), writes `data`, fsyncs and
 * closes it; on a failure the descriptor is closed and the error (a raw errno
 * error) thrown, the partial file left to the caller. The file is durable once
 * its directory is synced ({@link fsyncDir}) or it is renamed by
 * {@link writeFileDurable}.
 */
export function writeNewFile(file: string, data: Uint8Array): void {
  const fd = fs.openSync(file, 'wx');
  try {
    writeAll(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The errno codes with which opening or syncing a directory fails on
 * platforms that cannot sync one (Windows: EISDIR, EPERM; some file systems:
 * EINVAL, EBADF). Only these are ignored.
 */
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EBADF']);

/**
 * fsyncs directory `dir`, so that the files created in it and the renames into
 * it survive a power loss. Where the platform cannot sync a directory
 * ({@link DIR_SYNC_UNSUPPORTED}) this does nothing; any other failure (EIO,
 * ENOENT) is thrown as the raw errno error.
 */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Removes a temporary file, ignoring every failure (it may not exist). */
function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    /* not created, or already gone */
  }
}

/** The thrown error for a failure: a GnnError a hook threw passes unchanged; anything else is the caller's coded error. */
function failureError(options: DurableOptions, file: string, stage: WriteStage, e: unknown, committed: boolean): Error {
  if (isGnnError(e)) return e as Error;
  const cause = e as NodeJS.ErrnoException;
  // mkdir -p meets a file where a folder should be: EEXIST.
  const reason = stage === 'mkdir' && cause?.code === 'EEXIST' ? 'a part of the path is a file, not a folder (EEXIST)' : describeWriteFailure(cause);
  const f: WriteFailure = { file, stage, cause, reason, committed };
  return options.error(f);
}

/** Runs one step, turning its failure into the caller's error (the temporary file, if any, removed first). */
function step<T>(options: DurableOptions, file: string, stage: WriteStage, tmp: string | null, run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (tmp !== null) removeQuietly(tmp);
    throw failureError(options, file, stage, e, false);
  }
}

/** True when `file` exists and can only be written in place (a device, FIFO or socket: a rename would replace it). */
function isSpecialFile(file: string): boolean {
  try {
    const st = fs.statSync(file);
    return !st.isFile() && !st.isDirectory();
  } catch {
    return false;
  }
}

/** Renames the complete, synced `tmp` over `file` and syncs the directory (steps 3 and 4). */
function renameAndSync(options: DurableOptions, file: string, tmp: string, removeTmpOnFailure: boolean): void {
  step(options, file, 'rename', removeTmpOnFailure ? tmp : null, () => fs.renameSync(tmp, file));
  try {
    fsyncDir(path.dirname(path.resolve(file)));
  } catch (e) {
    throw failureError(options, file, 'fsync-dir', e, true);
  }
}

/**
 * Writes `data` (a string is UTF-8) to `file` durably: temporary file, fsync,
 * rename, directory fsync (see the file comment). On failure throws the
 * caller's coded error; nothing is left behind and an existing `file` is
 * intact unless only the directory sync failed (`committed`).
 */
export function writeFileDurable(file: string, data: string | Uint8Array, options: WriteFileDurableOptions): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (options.mkdir) step(options, file, 'mkdir', null, () => fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true }));
  if (isSpecialFile(file)) {
    writeInPlace(options, file, bytes);
    return;
  }
  const tmp = tempPathFor(file);
  if (options.writeNew) {
    step(options, file, 'write', tmp, () => (options.writeNew as (f: string, d: Uint8Array) => void)(tmp, bytes));
  } else {
    const fd = step(options, file, 'open', tmp, () => fs.openSync(tmp, 'wx'));
    let open = true;
    const close = (): void => {
      if (open) fs.closeSync(fd);
      open = false;
    };
    try {
      step(options, file, 'write', tmp, () => writeAll(fd, bytes));
      step(options, file, 'fsync', tmp, () => {
        fs.fsyncSync(fd);
        close();
      });
    } finally {
      try {
        close();
      } catch {
        /* the failure being thrown is the one to report */
      }
    }
  }
  if (options.beforeRename) step(options, file, 'rename', tmp, () => (options.beforeRename as (t: string) => void)(tmp));
  renameAndSync(options, file, tmp, true);
}

/** Writes a device, FIFO or socket destination in place. */
function writeInPlace(options: DurableOptions, file: string, bytes: Uint8Array): void {
  const fd = step(options, file, 'open', null, () => fs.openSync(file, 'w'));
  try {
    step(options, file, 'write', null, () => writeAll(fd, bytes));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes the file `tmp`, which the caller wrote, durable as `dest`: fsyncs it,
 * renames it over `dest`, fsyncs the directory. Unlike
 * {@link writeFileDurable}, `tmp` is not removed when this fails (a download
 * keeps its verified part for the next run); the error carries the caller's code.
 */
export function commitFile(tmp: string, dest: string, options: DurableOptions): void {
  step(options, dest, 'fsync', null, () => {
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
  renameAndSync(options, dest, tmp, false);
}

/** A durable file being written piece by piece ({@link openDurable}). */
export interface DurableFile {
  /** The destination. */
  readonly file: string;
  /** Bytes written so far. */
  readonly bytesWritten: number;
  /** Appends `chunk` (a string is UTF-8). A failure removes the temporary file and throws the caller's coded error. */
  write(chunk: string | Uint8Array): void;
  /** fsyncs, renames over the destination and syncs the directory; after it the file is durable. */
  commit(): void;
  /** Gives up: closes and removes the temporary file (the destination is untouched). Never throws; a no-op once committed or failed. */
  abort(): void;
}

class DurableFileImpl implements DurableFile {
  bytesWritten = 0;
  private fd: number | null;
  private readonly tmp: string | null;
  private state: 'open' | 'done' = 'open';

  constructor(readonly file: string, private readonly options: DurableOptions) {
    if (options.mkdir) step(options, file, 'mkdir', null, () => fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true }));
    if (isSpecialFile(file)) {
      this.tmp = null;
      this.fd = step(options, file, 'open', null, () => fs.openSync(file, 'w'));
    } else {
      const tmp = tempPathFor(file);
      this.tmp = tmp;
      this.fd = step(options, file, 'open', tmp, () => fs.openSync(tmp, 'wx'));
    }
  }

  private fail(stage: WriteStage, e: unknown): never {
    this.abort();
    throw failureError(this.options, this.file, stage, e, false);
  }

  private live(what: string): number {
    if (this.state !== 'open' || this.fd === null) throw new GnnError('ERR_GNN_INTERNAL', `${this.file}: ${what} after the durable write was committed, aborted or failed`);
    return this.fd;
  }

  write(chunk: string | Uint8Array): void {
    const fd = this.live('write');
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    try {
      writeAll(fd, bytes);
    } catch (e) {
      this.fail('write', e);
    }
    this.bytesWritten += bytes.byteLength;
  }

  commit(): void {
    const fd = this.live('commit');
    if (this.tmp === null) {
      // A device or FIFO: written in place, nothing to sync or rename.
      this.fd = null;
      this.state = 'done';
      try {
        fs.closeSync(fd);
      } catch (e) {
        throw failureError(this.options, this.file, 'write', e, false);
      }
      return;
    }
    try {
      fs.fsyncSync(fd);
      this.fd = null;
      fs.closeSync(fd);
    } catch (e) {
      this.fail('fsync', e);
    }
    this.state = 'done';
    renameAndSync(this.options, this.file, this.tmp, true);
  }

  abort(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* closing is all that is left to do */
      }
      this.fd = null;
    }
    if (this.tmp !== null) removeQuietly(this.tmp);
  }
}

/**
 * Opens `file` for a durable write in pieces: write() appends to the
 * temporary file, commit() makes it `file` (as {@link writeFileDurable}),
 * abort() removes it. The caller must call commit() or abort(); a failure of
 * any call removes the temporary file itself and throws the caller's coded error.
 */
export function openDurable(file: string, options: DurableOptions): DurableFile {
  return new DurableFileImpl(file, options);
}
