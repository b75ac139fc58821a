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
 *
 * The code, by concern (this module re-exports their public names):
 * - ./checkpoint-manifest.ts: what a checkpoint holds and the table of
 *   checkpoint.json's fields (type, bounds, how each is written and read),
 *   used by both the writer and the reader;
 * - ./checkpoint-write.ts: writeCheckpoint, prepareCheckpointDir,
 *   removeStaleFiles and the fault-injection points; its files go through
 *   src/util/durable.ts;
 * - ./checkpoint-read.ts: readCheckpoint and the verification of every file;
 * - ./checkpoint-lock.ts: the one-writer lock of a directory.
 */
import type { GnnErrorCode } from '../errors';

export { CHECKPOINT_VERSION, MANIFEST_NAME, type CheckpointState, type LoadedCheckpoint } from './checkpoint-manifest';
export { FAULT_POINTS, fsCheckpointIo, prepareCheckpointDir, removeStaleFiles, writeCheckpoint, type CheckpointIo, type FaultPoint, type WriteCheckpointOptions } from './checkpoint-write';
export { MAX_MANIFEST_BYTES, readCheckpoint, type ReadCheckpointOptions } from './checkpoint-read';

/** The code of a checkpoint error, for callers that branch on it. */
export type CheckpointErrorCode = Extract<GnnErrorCode, `ERR_GNN_CHECKPOINT_${string}` | `ERR_GNN_SAFETENSORS_${string}`>;
