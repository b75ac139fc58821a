#!/usr/bin/env bash
# Data-parallel training of one model on N nodes with MPI (docs/scale-out.md):
# srun starts one gnnbatch rank per task through its PMIx plugin; gnnbatch
# detects the MPI launch from the PMIx/Open MPI variables, so the command is
# the ordinary `gnnbatch train`. Rank 0 writes the checkpoints, the log and
# the JSON result; the other ranks are quiet. N ranks are bitwise equal to one
# process accumulating the same micro-batches (--micro-batches M, default N;
# M a multiple of N), so a rerun on another node count with the same M, or a
# requeue that resumes, gives the same weights.
#
# Submit (4 nodes, one rank per node, 36 threads per rank):
#   sbatch --nodes=4 examples/slurm/train-mpi.sh
# A failed or requeued job resumes from the last checkpoint (bitwise).
#
# Needs gnnbatch built from source on a node with the cluster's MPI
# (module load openmpi; GNN_MPI=ON npm run build:native): the prebuilt npm
# package has no MPI module. Check the plugin with `srun --mpi=list`.
#
# Environment:
#   DATA        data source (default qm9-like:20000)
#   CK_DIR      checkpoint folder on a file system every node sees (default ./ck-mpi)
#   STEPS       global steps (default 100000)
#   MICRO       micro-batches per step (default: the number of ranks)
#   TRAIN_ARGS  anything else for `gnnbatch train` (model, policy, batch, ...)
#
#SBATCH --job-name=gnnbatch-train-mpi
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=36
#SBATCH --time=1-00:00:00
#SBATCH --requeue
#SBATCH --output=train-mpi-%j.out
set -euo pipefail

DATA="${DATA:-qm9-like:20000}"
CK_DIR="${CK_DIR:-./ck-mpi}"
STEPS="${STEPS:-100000}"
THREADS="${SLURM_CPUS_PER_TASK:-1}"
RANKS="${SLURM_NTASKS:-1}"
MICRO="${MICRO:-$RANKS}"
GNNBATCH="${GNNBATCH:-npx gnnbatch}"

resume=()
[[ -f "$CK_DIR/checkpoint.json" ]] && resume=(--resume "$CK_DIR")

# Bounded failure: a rank that dies or hangs makes the others abort after
# --mpi-timeout seconds (allow for rank 0's evaluations and checkpoints).
export OMP_NUM_THREADS="$THREADS" OMP_PROC_BIND=close OMP_PLACES=cores
# shellcheck disable=SC2086
srun --mpi=pmix --cpu-bind=cores $GNNBATCH train "$DATA" \
  --distributed mpi --micro-batches "$MICRO" --threads "$THREADS" \
  --steps "$STEPS" --policy packed --checkpoint "$CK_DIR" --checkpoint-every 1000 \
  --mpi-timeout 600 "${resume[@]}" ${TRAIN_ARGS:-} --json > "train-mpi-$SLURM_JOB_ID.json"
