#!/bin/bash
# A scheduled dkmeans fit as a SLURM batch job that survives preemption.
#
#   DKMEANS_INPUT=s3://bucket/X.zarr DKMEANS_MODEL=s3://bucket/models/km \
#   DKMEANS_ARGS="-k 16 --checkpoint-every 5 --cluster slurm.yaml" \
#       sbatch cluster_configs/slurm_job.sh
#
# Preemption, `scontrol requeue`, `scancel` and the walltime (60 s ahead,
# --signal below) send SIGTERM. dkmeans then writes its last finished
# iteration as a checkpoint, shuts its cluster down and exits 143; SLURM
# requeues the job (--requeue), this script runs again, and --resume goes
# on from the checkpoint to exactly the centers of an uninterrupted run. A
# finished model is kept as it is: rerunning the job does nothing.
#
# Exit status: 0 done; 2 bad input or options (fix them; a rerun fails the
# same way); 3 no workers within the cluster file's timeout (try later);
# 143 stopped by SIGTERM (requeued or cancelled); 1 anything else.
#SBATCH --job-name=dkmeans-fit
#SBATCH --requeue
#SBATCH --signal=B:TERM@60
#SBATCH --open-mode=append
#SBATCH --time=02:00:00
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
set -u
: "${DKMEANS_INPUT:?set DKMEANS_INPUT to the data (a path or URL)}"
: "${DKMEANS_MODEL:?set DKMEANS_MODEL to the model directory (a path or URL)}"
DKMEANS=${DKMEANS:-dkmeans}
echo "dkmeans job ${SLURM_JOB_ID:-?}, run ${SLURM_RESTART_COUNT:-0}, on $(hostname)"
# word splitting of DKMEANS and DKMEANS_ARGS is wanted: they are lists of words
# shellcheck disable=SC2086
$DKMEANS fit "$DKMEANS_INPUT" -o "$DKMEANS_MODEL" ${DKMEANS_ARGS:-} --resume &
pid=$!
# --signal=B:TERM reaches this shell only: pass it on (when SLURM signals
# every process of the job, dkmeans takes the two as one stop)
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid"
status=$?
while kill -0 "$pid" 2>/dev/null; do  # wait returned for the trap: dkmeans is stopping
    wait "$pid"
    status=$?
done
exit "$status"
