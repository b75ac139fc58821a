/**
 * One writer per checkpoint directory.
 *
 * A training run that writes checkpoints into DIR holds DIR/checkpoint.lock
 * for its whole run. The lock file is created atomically and complete: its
 * content (JSON: pid, host, start time, a random token) is written to a
 * private temporary file which is then hard-linked to the lock's name; the
 * link fails with EEXIST when the lock exists (the O_EXCL create of a file
 * that is never seen half-written).
 *
 * A second run is refused before its first step with CheckpointError
 * ERR_GNN_CHECKPOINT_LOCKED naming the holder. A lock whose holder is gone
 * (same host, and its pid is no longer running: a SIGKILL, a crash, a power
 * loss) is stale and is taken over, and the caller is told so. Taking over is
 * race-free against a holder that acquires at the same moment: the stale file
 * is renamed to a private name, and deleted only if it is still the very file
 * (device and inode) that was judged stale; otherwise it is put back.
 * A lock held from another host cannot be checked and is never taken over
 * (the message says which file to delete once that run is known to be gone).
 *
 * The lock is released by {@link CheckpointLock.release} (training calls it on
 * every exit path: return, throw, abort) and, as a last resort, when the
 * process exits (`process.exit` after a second Ctrl-C). It is removed only
 * while it still carries this holder's token.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CheckpointError } from '../errors';

/** The lock's name inside a checkpoint directory. */
export const LOCK_NAME = 'checkpoint.lock';

/** Who holds a checkpoint directory (the lock file's content). */
export interface CheckpointLockHolder {
  pid: number;
  host: string;
  /** When the holder took the lock (ISO 8601). */
  started: string;
  /** Random id of this acquisition (a released lock is removed only by its own holder). */
  token: string;
}

/** A held lock of a checkpoint directory. */
export interface CheckpointLock {
  /** The lock file. */
  readonly file: string;
  /** This run's entry in the lock file. */
  readonly holder: CheckpointLockHolder;
  /** The stale holder that was taken over, with a sentence saying so (null when the lock was free). */
  readonly tookOver: { holder: CheckpointLockHolder; message: string } | null;
  /** Removes the lock (idempotent; leaves a lock that is no longer this holder's alone). */
  release(): void;
}

/** Whether process `pid` runs on this host (EPERM: it exists, owned by someone else). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie (exited, not reaped: e.g. an MPI rank whose launcher ended first under a
    // container init that does not reap) still answers kill(0) but holds nothing.
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    } catch {
      // no /proc (not Linux): trust kill(0)
    }
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads the lock file: its holder (null when unparsable) and identity, or null when there is none. */
function readLock(file: string): { holder: CheckpointLockHolder | null; dev: number; ino: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    let holder: CheckpointLockHolder | null = null;
    if (st.isFile() && st.size <= 4096) {
      const buf = Buffer.alloc(st.size);
      const n = fs.readSync(fd, buf, 0, st.size, 0);
      try {
        const j = JSON.parse(buf.toString('utf8', 0, n)) as Partial<CheckpointLockHolder>;
        if (j && Number.isSafeInteger(j.pid) && typeof j.host === 'string' && typeof j.started === 'string' && typeof j.token === 'string')
          holder = j as CheckpointLockHolder;
      } catch {
        /* unparsable: reported as an unknown holder */
      }
    }
    return { holder, dev: st.dev, ino: st.ino };
  } finally {
    fs.closeSync(fd);
  }
}

const describeHolder = (h: CheckpointLockHolder): string => `pid ${h.pid} on host ${h.host}, started ${h.started}`;

/** Processes that hold locks now, removed at exit if still held (a second Ctrl-C exits with process.exit). */
const held = new Set<CheckpointLock>();
let exitHookInstalled = false;

/**
 * Takes the lock of checkpoint directory `dir` (which must exist) for this
 * run. Throws CheckpointError ERR_GNN_CHECKPOINT_LOCKED, naming the holder,
 * when another live run holds it; takes over a stale lock (same host, dead
 * pid) and reports it in `tookOver`.
 */
export function lockCheckpointDir(dir: string): CheckpointLock {
  const file = path.join(dir, LOCK_NAME);
  const holder: CheckpointLockHolder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), token: crypto.randomBytes(8).toString('hex') };
  const tmp = path.join(dir, `.${LOCK_NAME}.${process.pid}.${holder.token}.tmp`);
  let tookOver: CheckpointLock['tookOver'] = null;
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      fs.writeSync(fd, JSON.stringify(holder) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const cur = readLock(file);
      if (cur === null && attempt < 16) continue; // released meanwhile: try again
      const h = cur?.holder ?? null;
      const stale = cur !== null && h !== null && h.host === holder.host && h.pid !== process.pid && !pidAlive(h.pid);
      if (!stale || attempt >= 16) {
        const who = h ? describeHolder(h) : 'an unreadable lock file';
        const hint = h && h.host !== holder.host
          ? `it is held from another host; if that run is gone, delete ${file}`
          : h && h.pid === process.pid ? 'another training run in this process is writing it'
          : `wait for that run to finish, or write checkpoints elsewhere${h ? '' : `; if no run is writing it, delete ${file}`}`;
        throw new CheckpointError(dir, `is locked by another training run (${who}): a checkpoint directory has one writer; ${hint}`, 'ERR_GNN_CHECKPOINT_LOCKED');
      }
      // Take the stale lock over: move it aside, and delete it only if it is still the file judged stale.
      const grave = `${tmp}.stale`;
      try {
        fs.renameSync(file, grave);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const moved = fs.statSync(grave);
      if (moved.dev === cur?.dev && moved.ino === cur.ino) {
        fs.unlinkSync(grave);
        tookOver = {
          holder: h as CheckpointLockHolder,
          message: `${dir}: took over a stale checkpoint lock of ${describeHolder(h as CheckpointLockHolder)} (that process is no longer running)`,
        };
      } else {
        // Another run acquired the lock in between: give it back.
        try {
          fs.linkSync(grave, file);
        } catch {
          /* a third run holds it now; it will be seen on the next attempt */
        }
        fs.unlinkSync(grave);
      }
    }
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new CheckpointError(dir, `cannot take the checkpoint lock ${file} (${err.code ?? err.message})`, 'ERR_GNN_CHECKPOINT_PATH', { cause: e });
  } finally {
    fs.rmSync(tmp, { force: true });
  }

  const lock: CheckpointLock = {
    file,
    holder,
    tookOver,
    release(): void {
      if (!held.delete(lock)) return;
      try {
        const cur = readLock(file);
        if (cur?.holder?.token === holder.token) fs.unlinkSync(file);
      } catch {
        /* best effort: a lock left behind is stale once this process is gone */
      }
    },
  };
  held.add(lock);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const l of [...held]) l.release();
    });
  }
  return lock;
}
