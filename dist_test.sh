#!/usr/bin/env bash
# Distributed testing on torchrun: ./dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py args...]
# Honours NNODES, NODE_RANK, MASTER_ADDR, PORT. Without CUDA, GPUS processes run on gloo.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py args...]" >&2
    exit 2
fi
exec "$(dirname "${BASH_SOURCE[0]}")/tools/dist_launch.sh" test "$3" "$1" "$2" "${@:4}"
