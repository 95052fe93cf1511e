#!/usr/bin/env bash
# Shared torchrun launcher of dist_train.sh / dist_test.sh: tools/dist_launch.sh TOOL GPUS [TOOL args...]
# TOOL is a module of direct_pretrain.cli (train, test), run from the installed package.
# Honours NNODES, NODE_RANK, MASTER_ADDR, PORT, and PYTHON (default: the repo's .venv when
# no virtual environment is active). Without CUDA, GPUS processes run on gloo.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOL=$1
GPUS=$2
if [ -z "${PYTHON:-}" ]; then
    if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi

# The inputs are checked once, before torchrun starts any worker: bad input is one error: line
# and exit 2 (not one per rank and torchrun's failure report), and nothing is written. The
# workers skip what this check already reported (the batch-size warning).
WORLD_SIZE=$(( ${NNODES:-1} * GPUS )) RANK=0 "$PYTHON" -m "direct_pretrain.cli.$TOOL" "${@:3}" \
    --launcher pytorch --check-only || exit $?
export DP_INPUTS_CHECKED=1

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$GPUS" \
    --master_port="${PORT:-29500}" \
    --module "direct_pretrain.cli.$TOOL" \
    "${@:3}" \
    --launcher pytorch
