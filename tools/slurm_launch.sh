#!/usr/bin/env bash
# Shared srun launcher of slurm_train.sh / slurm_test.sh:
#   tools/slurm_launch.sh PARTITION JOB_NAME TOOL [TOOL args...]   (TOOL: train or test, direct_pretrain.cli)
# Env: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS, PYTHON.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
# The launcher settings given, for the restart command of a diverged run (with DP_LAUNCH_HEAD
# and DP_LAUNCH_TAIL from slurm_train.sh; srun passes the environment on to the tasks).
DP_LAUNCH_ENV=""
for var in GPUS GPUS_PER_NODE CPUS_PER_TASK SRUN_ARGS PYTHON; do
    if [ -n "${!var:-}" ]; then DP_LAUNCH_ENV+="$var=$(printf '%q' "${!var}") "; fi
done
export DP_LAUNCH_ENV

# shellcheck disable=SC2086
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
    "${PYTHON:-python}" -u -m "direct_pretrain.cli.$TOOL" "${@:4}" --launcher=slurm
