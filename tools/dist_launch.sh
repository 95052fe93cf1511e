#!/usr/bin/env bash
# Shared torchrun launcher of dist_train.sh / dist_test.sh: tools/dist_launch.sh TOOL GPUS [TOOL args...]
# TOOL is a module of direct_pretrain.cli (train, test), run from the installed package.
# Honours NNODES, NODE_RANK, MASTER_ADDR, PORT, and PYTHON (default: the repo's .venv when
# no virtual environment is active). Without CUDA, GPUS processes run on gloo.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOL=$1
GPUS=$2
# The launcher settings given (PYTHON as given, before its default), for the restart command of
# a diverged run (with DP_LAUNCH_HEAD and DP_LAUNCH_TAIL from dist_train.sh;
# direct_pretrain/runtime/run_command.py).
DP_LAUNCH_ENV=""
for var in NNODES NODE_RANK MASTER_ADDR PORT PYTHON; do
    if [ -n "${!var:-}" ]; then DP_LAUNCH_ENV+="$var=$(printf '%q' "${!var}") "; fi
done
export DP_LAUNCH_ENV
if [ -z "${PYTHON:-}" ]; then
    if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi

# The inputs are checked once, before torchrun starts any worker: bad input is one error: line
# and exit 2 (not one per rank and torchrun's failure report), and nothing is written. The
# workers skip what this check already reported (the batch-size warning). With --check-only
# (as argparse reads it, abbreviations included) that check is all there is.
CHECK_ONLY=0
for arg in "${@:3}"; do  # any prefix argparse could read as --check-only (an ambiguous one fails the check)
    if [[ ${#arg} -ge 4 && --check-only == "$arg"* ]]; then CHECK_ONLY=1; fi
done
WORLD_SIZE=$(( ${NNODES:-1} * GPUS )) RANK=0 "$PYTHON" -m "direct_pretrain.cli.$TOOL" "${@:3}" \
    --launcher pytorch --check-only || exit $?
if [ "$CHECK_ONLY" = 1 ]; then exit 0; fi
export DP_INPUTS_CHECKED=1

# torchrun through tools/dist_run.py: ranks that end with their own error: line and exit code
# 2 or 3 end the job with that code, without torchrun's failure report.
exec "$PYTHON" "$ROOT/tools/dist_run.py" \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$GPUS" \
    --master_port="${PORT:-29500}" \
    --module "direct_pretrain.cli.$TOOL" \
    "${@:3}" \
    --launcher pytorch
