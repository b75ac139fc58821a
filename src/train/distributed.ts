/**
 * Data-parallel training on MPI (docs/scale-out.md): the launch environment,
 * the optional native MPI module (gnnbatch_mpi.node, built from source only
 * when an MPI is installed) and the reducer that sums each step's gradients
 * across ranks in a fixed order, with a deadline.
 *
 * Every rank runs train() with the same options: the same policy stream, the
 * same initial weights, the same Adam. Rank 0 alone writes checkpoints (under
 * the checkpoint lock), evaluates and reports; the others are quiet.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GnnError } from '../errors';
import type { GradientReducer } from './accumulate';

/** How the slots move between ranks (same bits either way). */
export type MpiAlgorithm = 'allgather' | 'alltoall';

/** The native MPI module (native/mpi/mpi_binding.cpp). */
export interface NativeMpiApi {
  init(): { rank: number; size: number; library: string; promoted: string };
  rank(): number;
  size(): number;
  /** Ordered sum of every rank's slots; `ok` false when the deadline passed (abort the job then). */
  orderedSum(local: Float32Array, slots: number, out: Float32Array, timeoutMs: number, algorithm: MpiAlgorithm): { ok: boolean; ms: number };
  /** MPI_Ibarrier polled against the deadline; false when it passed. */
  barrier(timeoutMs: number): boolean;
  /** MPI_Abort on the world communicator: every rank ends. */
  abort(code: number): never;
  finalize(): void;
  /** The libmpi the module was built against. */
  library: string;
}

/** Environment variables set by Open MPI's mpirun, PMIx (srun --mpi=pmix, the MPI Operator's launcher) or MPICH's hydra. */
const RANK_VARS = ['OMPI_COMM_WORLD_RANK', 'PMIX_RANK', 'PMI_RANK'] as const;
const SIZE_VARS = ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'SLURM_NTASKS'] as const;

/**
 * Whether this process was started by an MPI launcher (mpirun/mpiexec, srun
 * with an MPI plugin) as one of several ranks: a rank variable is set and the
 * world size (when known) is above 1.
 */
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  const hasRank = RANK_VARS.some((v) => env[v] !== undefined && env[v] !== '');
  if (!hasRank) return false;
  for (const v of SIZE_VARS) {
    const s = env[v];
    if (s !== undefined && s !== '') return Number(s) > 1;
  }
  return true;
}

/** Where the MPI module is looked for: GNNBATCH_MPI_ADDON, else the source build beside gnnbatch.node. */
export function mpiModulePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GNNBATCH_MPI_ADDON) return path.resolve(env.GNNBATCH_MPI_ADDON);
  return path.resolve(__dirname, '..', '..', 'native-build', 'Release', 'gnnbatch_mpi.node');
}

const HOW_TO_BUILD =
  'install an MPI with its headers (Debian/Ubuntu: apt install openmpi-bin libopenmpi-dev) and build gnnbatch from source ' +
  '(in a checkout: npm run build:native; an installed package: GNNBATCH_BUILD_FROM_SOURCE=1 GNN_MPI=ON npm rebuild gnnbatch); ' +
  'the prebuilt package has no MPI module';

let loaded: NativeMpiApi | null = null;

/** Loads the MPI module; GnnError ERR_GNN_MPI (saying how to build it) when it is missing or cannot load. */
export function loadMpi(env: NodeJS.ProcessEnv = process.env): NativeMpiApi {
  if (loaded) return loaded;
  const file = mpiModulePath(env);
  if (!fs.existsSync(file)) throw new GnnError('ERR_GNN_MPI', `distributed training needs the MPI module, which this build does not have (${file} is missing): ${HOW_TO_BUILD}`);
  try {
    loaded = require(file) as NativeMpiApi;
  } catch (e) {
    throw new GnnError('ERR_GNN_MPI', `the MPI module ${file} does not load (${(e as Error).message.split('\n')[0]}): is the MPI it was built against still installed? Otherwise ${HOW_TO_BUILD}`, { cause: e });
  }
  return loaded;
}

/** Options of {@link initDistributed}. */
export interface DistributedOptions {
  /**
   * Deadline of one step's gradient exchange, in ms, counted from when this
   * rank enters it (default: GNN_MPI_TIMEOUT_S seconds, else 300 s). A rank
   * that died or hangs makes the others print why and abort the job
   * (MPI_Abort, exit status non-zero) once it passes. Allow for rank 0's
   * evaluations and checkpoint writes, which the others wait for.
   */
  timeoutMs?: number;
  /** How the slots move (default `alltoall`: ~2n floats per rank; `allgather`: W n). Same bits. */
  algorithm?: MpiAlgorithm;
  /** Where messages go (default process.stderr). */
  log?: (line: string) => void;
}

/** A started MPI world: the reducer of train()'s `distributed` option, plus rank, size and shutdown. */
export interface DistributedContext extends GradientReducer {
  readonly kind: 'mpi';
  /** The MPI library's version line. */
  readonly library: string;
  readonly timeoutMs: number;
  readonly algorithm: MpiAlgorithm;
  /** Waits for every rank (with the deadline); false when it passed. */
  barrier(): boolean;
  /** MPI_Finalize (every rank, at the end of a successful run). */
  finalize(): void;
  /** MPI_Abort: ends every rank with `code`. */
  abort(code: number): never;
}

/** Exit status of a job aborted because a rank died or hangs. */
export const MPI_TIMEOUT_EXIT = 75;

/**
 * Initialises MPI (once per process) and returns the world. Throws
 * ERR_GNN_MPI when the module is missing (with how to build it).
 */
export function initDistributed(o: DistributedOptions = {}): DistributedContext {
  const api = loadMpi();
  const info = api.init();
  const envS = Number(process.env.GNN_MPI_TIMEOUT_S);
  const timeoutMs = o.timeoutMs ?? (Number.isFinite(envS) && envS > 0 ? envS * 1000 : 300_000);
  const algorithm = o.algorithm ?? 'alltoall';
  if (algorithm !== 'allgather' && algorithm !== 'alltoall') throw new GnnError('ERR_GNN_ARGUMENT', `MPI algorithm must be allgather or alltoall, got '${String(algorithm)}'`);
  const log = o.log ?? ((s: string) => void process.stderr.write(s + '\n'));
  return {
    kind: 'mpi',
    rank: info.rank,
    size: info.size,
    library: info.library,
    timeoutMs,
    algorithm,
    reduce(local: Float32Array, slots: number, out: Float32Array, step: number): number {
      const r = api.orderedSum(local, slots, out, timeoutMs, algorithm);
      if (!r.ok) {
        log(
          `gnnbatch: rank ${info.rank} of ${info.size}: step ${step + 1}: the gradient exchange did not complete within ${(timeoutMs / 1000).toFixed(0)} s ` +
            `(ERR_GNN_MPI_TIMEOUT): another rank died, hangs, or is far slower; aborting all ${info.size} ranks. ` +
            'Resume from the last checkpoint with --resume (bitwise identical).',
        );
        api.abort(MPI_TIMEOUT_EXIT);
      }
      return r.ms;
    },
    barrier: () => api.barrier(timeoutMs),
    finalize: () => api.finalize(),
    abort: (code: number) => api.abort(code),
  };
}
