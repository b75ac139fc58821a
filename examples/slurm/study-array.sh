#!/usr/bin/env bash
# The gnnbatch study as a Slurm job array: one array task per shard, then one
# merge. Every task runs the same command; gnnbatch reads its shard from
# SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_MIN/MAX (or _COUNT), so the array
# size is the shard count. Shards write STUDY_DIR/shard-I-of-N/ on a file
# system every node sees; a shard that is requeued or rerun resumes.
#
# Submit (8 shards, then the merge once every task succeeded):
#   jobid=$(sbatch --parsable --array=0-7 examples/slurm/study-array.sh)
#   sbatch --dependency=afterok:"$jobid" --array=0 examples/slurm/study-array.sh merge
#
# Try it without Slurm (three shards of a small grid, then the merge):
#   export STUDY_DIR=/tmp/study STUDY_ARGS="qm9-like:2000 --steps 10 --reps 2 --batch 16,32"
#   for i in 0 1 2; do
#     SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=2 bash examples/slurm/study-array.sh
#   done
#   bash examples/slurm/study-array.sh merge
#
# Environment:
#   STUDY_DIR   shared output folder (default: ./study-results)
#   STUDY_ARGS  the grid, exactly as for `gnnbatch study` (unset: --full, the
#               study's own 10 repetitions x 100k steps; empty: the default
#               short grid); every task must get the same value
#   SLURM_CPUS_PER_TASK  native threads per shard (set by Slurm)
#
#SBATCH --job-name=gnnbatch-study
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --time=2-00:00:00
#SBATCH --requeue
#SBATCH --output=gnnbatch-study-%A_%a.log
set -euo pipefail

STUDY_DIR=${STUDY_DIR:-$PWD/study-results}
read -r -a grid <<< "${STUDY_ARGS---full}"
threads=${SLURM_CPUS_PER_TASK:-$(nproc)}

case "${1:-shard}" in
  shard)
    # No --shard: the index and count come from SLURM_ARRAY_TASK_*.
    npx gnnbatch study "${grid[@]}" --threads "$threads" --quiet -o "$STUDY_DIR"
    ;;
  merge)
    # Fails (non-zero, listing the cells) if a shard is missing or unfinished.
    npx gnnbatch study merge "$STUDY_DIR" -o "$STUDY_DIR/merged"
    npx gnnbatch report "$STUDY_DIR/merged/results.json" -o "$STUDY_DIR/merged/report.html"
    ;;
  *)
    echo "usage: study-array.sh [shard|merge]" >&2
    exit 2
    ;;
esac
