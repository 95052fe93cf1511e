#!/usr/bin/env bash
# Distributed training on torchrun: ./dist_train.sh CONFIG GPUS [tools/train.py args...]
# Honours NNODES, NODE_RANK, MASTER_ADDR, PORT. Without CUDA, GPUS processes run on gloo.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py args...]" >&2
    exit 2
fi
# This command line, for the restart command a diverged run prints (direct_pretrain/runtime/run_command.py).
# (run as "bash dist_train.sh", $0 has no folder: the restart runs ./dist_train.sh)
case $0 in */*) SELF=$0 ;; *) SELF=./$0 ;; esac
DP_LAUNCH_HEAD=$(printf '%q ' "$SELF" "$1" "$2")
DP_LAUNCH_TAIL=""
if [ $# -gt 2 ]; then DP_LAUNCH_TAIL=$(printf '%q ' "${@:3}"); fi
export DP_LAUNCH_HEAD DP_LAUNCH_TAIL
exec "$(dirname "${BASH_SOURCE[0]}")/tools/dist_launch.sh" train "$2" "$1" "${@:3}"
