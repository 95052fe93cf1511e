#!/usr/bin/env bash
# Distributed training on torchrun: ./dist_train.sh CONFIG GPUS [tools/train.py args...]
# Honours NNODES, NODE_RANK, MASTER_ADDR, PORT. Without CUDA, GPUS processes run on gloo.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py args...]" >&2
    exit 2
fi
exec "$(dirname "${BASH_SOURCE[0]}")/tools/dist_launch.sh" train "$2" "$1" "${@:3}"
