#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment with the pinned OpenMMLab stack.
#
# Why a script: mmcv 2.1.0 has no wheel for torch 2.11, so its ops are compiled here
# (~9 min on 2 cores). The compiled wheel is cached outside the repo, keyed by Python
# and torch version, so later set-ups (and CI on the same machine) reuse it, and a
# wheel built against another torch is never picked up.
#
# Usage: tools/setup_env.sh            # prints nothing else when the venv is ready
# Env:   DP_VENV (default <repo>/.venv), DP_PYTHON (default python3.11),
#        DP_WHEEL_CACHE (default ~/.cache/direct_pretrain/wheels)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${DP_VENV:-$ROOT/.venv}
PYTHON=${DP_PYTHON:-python3.11}
WHEEL_CACHE=${DP_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/direct_pretrain/wheels}

TORCH_SPEC="torch==2.11.0 torchvision==0.26.0"
MMCV_VERSION=2.1.0
# seaborn + pandas: mmdet's own analysis tools (analyze_logs.py plot_curve) import them.
STACK_SPEC="mmengine==0.10.7 mmdet==3.3.0 timm pycocotools numpy>=2 tensorboard pytest pytest-xdist pytest-randomly terminaltables seaborn pandas"
# The stamp changes whenever the pinned stack or the package's dependencies change.
STAMP_TEXT="$TORCH_SPEC mmcv==$MMCV_VERSION cuda_ops=${DP_CUDA_OPS:-auto} $STACK_SPEC $(cat "$ROOT/setup.py" 2>/dev/null | md5sum)"

log() { echo "[setup_env] $*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "ERROR: '$PYTHON' not found; install Python 3.11 or set DP_PYTHON to an interpreter."
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.direct_pretrain_stack"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ]; then
    exit 0
fi

PIP=("$PY" -m pip --disable-pip-version-check -q)
log "installing build tools and $TORCH_SPEC"
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install "setuptools<81" wheel ninja psutil packaging
# shellcheck disable=SC2086
"${PIP[@]}" install $TORCH_SPEC

# mmcv's CUDA ops are compiled when nvcc and a CUDA torch that sees a GPU are present, or with
# DP_CUDA_OPS=1 (then TORCH_CUDA_ARCH_LIST names the target, e.g. 9.0); DP_CUDA_OPS=0 never.
# shellcheck source=tools/cuda_build_env.sh
. "$ROOT/tools/cuda_build_env.sh"
CUDA_OPS=$(dp_cuda_ops_wanted "$PY")
MMCV_CHECK="import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'"
if [ "$CUDA_OPS" = 1 ]; then
    MMCV_CHECK="$MMCV_CHECK; assert 'not available' not in mmcv.ops.get_compiling_cuda_version()"
fi
if ! "$PY" -c "$MMCV_CHECK" 2>/dev/null; then
    KEY=$("$PY" -c "import sys, torch; print(f'cp{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__}-cuda{torch.version.cuda}')")
    BUILD_NOTE="about 9 min on 2 cores"
    if [ "$CUDA_OPS" = 1 ]; then
        dp_cuda_build_env "$PY" || exit 1
        # A CPU-only wheel is never reused where CUDA ops are wanted, nor one for another GPU.
        KEY="$KEY-cudaops-$DP_CUDA_ARCH_TAG"
        BUILD_NOTE="with CUDA ops, about 23 min on 2 cores"
    fi
    DEST="$WHEEL_CACHE/$KEY"
    mkdir -p "$DEST"
    WHEEL=$(ls "$DEST"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$WHEEL" ]; then
        log "compiling mmcv $MMCV_VERSION with ops for $KEY ($BUILD_NOTE)"
        BUILD_DIR=$(mktemp -d)
        # --no-build-isolation: with isolation pip builds against a fresh torch and
        # silently drops the ops. --no-cache-dir: pip's cache ignores the torch version.
        MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" wheel \
            --no-build-isolation --no-cache-dir --no-deps "mmcv==$MMCV_VERSION" -w "$BUILD_DIR"
        mv "$BUILD_DIR"/mmcv-"$MMCV_VERSION"-*.whl "$DEST"/
        rm -rf "$BUILD_DIR"
        WHEEL=$(ls "$DEST"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
    else
        log "reusing cached $WHEEL"
    fi
    # A CPU-only mmcv of the same version would otherwise count as installed.
    "${PIP[@]}" uninstall -y mmcv >/dev/null 2>&1 || true
    "${PIP[@]}" install "$WHEEL"
fi

log "installing the OpenMMLab stack and direct_pretrain"
# shellcheck disable=SC2086
"${PIP[@]}" install $STACK_SPEC
"${PIP[@]}" install --no-build-isolation --no-deps -e "$ROOT"
"$PY" -c "import mmcv.ops, mmdet, mmengine, timm, torchvision, pycocotools; import direct_pretrain" \
    || { log "ERROR: the environment at $VENV does not import the stack"; exit 1; }
echo "$STAMP_TEXT" > "$STAMP"
log "environment ready: $VENV"
