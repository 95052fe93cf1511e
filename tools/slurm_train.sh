#!/usr/bin/env bash
# Slurm training: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Env: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args...]" >&2
    exit 2
fi
# This command line, for the restart command a diverged run prints (direct_pretrain/runtime/run_command.py).
# (run as "bash slurm_train.sh", $0 has no folder: the restart runs ./slurm_train.sh)
case $0 in */*) SELF=$0 ;; *) SELF=./$0 ;; esac
DP_LAUNCH_HEAD=$(printf '%q ' "$SELF" "$1" "$2" "$3" "$4")
DP_LAUNCH_TAIL=""
if [ $# -gt 4 ]; then DP_LAUNCH_TAIL=$(printf '%q ' "${@:5}"); fi
export DP_LAUNCH_HEAD DP_LAUNCH_TAIL
exec "$(dirname "${BASH_SOURCE[0]}")/slurm_launch.sh" "$1" "$2" train "$3" --work-dir="$4" "${@:5}"
