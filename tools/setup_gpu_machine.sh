#!/usr/bin/env bash
# Set up an offline CUDA machine (the lent GPU machine) for direct_pretrain from a carried wheelhouse.
#
# Why: that machine has Python 3.12 with a CUDA torch preinstalled system-wide but no mmcv,
# mmengine, mmdet or pycocotools, and reaches no registry. tools/prepare_gpu_wheelhouse.sh
# fills <repo>/wheelhouse on a machine with internet; here the wheels are installed into a
# separate folder (--target: the system install is left alone) and mmcv 2.1.0 is compiled from
# its source archive WITH its CUDA ops for the local GPU (tools/cuda_build_env.sh), using all
# cores. A compiled wheel can be kept (DP_MMCV_WHEEL_OUT) and carried back in
# wheelhouse/built/<key>/ next time, which skips the compile.
#
# Usage, from the repo root (the script prints the exports the shell needs):
#   eval "$(bash tools/setup_gpu_machine.sh)"
#   python3 tools/gpu_check.py --out "$OUT/gpu_check.json"
# Env:  DP_PYTHON (default python3), DP_WHEELHOUSE (default <repo>/wheelhouse),
#       DP_SITE (default /tmp/dp_site), TORCH_CUDA_ARCH_LIST (default: the visible GPUs'),
#       MAX_JOBS (default: nproc), DP_MMCV_WHEEL_OUT (copy the compiled mmcv wheel there,
#       e.g. $OUT/built, to carry it back), DP_CUDA_OPS=0 (build mmcv's CPU ops only).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${DP_PYTHON:-python3}
WHEELHOUSE=${DP_WHEELHOUSE:-$ROOT/wheelhouse}
SITE=${DP_SITE:-/tmp/dp_site}
MMCV_VERSION=2.1.0

log() { echo "[setup_gpu_machine] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "'$PY' not found; set DP_PYTHON to the interpreter that has torch"
"$PY" -c "import torch" 2>/dev/null || die "$PY has no torch; this script adds the OpenMMLab stack to an existing torch"
[ -d "$WHEELHOUSE" ] || die "no wheelhouse at $WHEELHOUSE: run tools/prepare_gpu_wheelhouse.sh where pip reaches PyPI and carry the folder"
[ -f "$WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz" ] || die "$WHEELHOUSE lacks mmcv-$MMCV_VERSION.tar.gz; rerun tools/prepare_gpu_wheelhouse.sh"
INCLUDE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
[ -f "$INCLUDE/Python.h" ] || die "no Python.h under $INCLUDE: mmcv's ops cannot be compiled for $PY (install its dev headers)"

START=$(date +%s)
mkdir -p "$SITE"
log "installing $(find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' | wc -l) wheels into $SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$WHEELHOUSE"/*.whl
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# shellcheck source=tools/cuda_build_env.sh
. "$ROOT/tools/cuda_build_env.sh"
CUDA_OPS=$(dp_cuda_ops_wanted "$PY")
KEY=$("$PY" -c "import sys, torch; print(f'cp{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__}-cuda{torch.version.cuda}')")
if [ "$CUDA_OPS" = 1 ]; then
    dp_cuda_build_env "$PY" || exit 1
    KEY="$KEY-cudaops-$DP_CUDA_ARCH_TAG"
else
    log "no GPU / nvcc (or DP_CUDA_OPS=0): mmcv gets its CPU ops only"
fi
WHEEL=$(ls "$WHEELHOUSE/built/$KEY"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$WHEEL" ]; then
    log "using the carried $WHEEL"
else
    "$PY" -c "from torch.utils.cpp_extension import verify_ninja_availability as v; v()" 2>/dev/null \
        || log "WARNING: ninja is not importable by $PY: the compile runs one file at a time"
    BUILD_DIR=$(mktemp -d)
    log "compiling mmcv $MMCV_VERSION for $KEY with MAX_JOBS=${MAX_JOBS:-$(nproc)}"
    # --no-build-isolation: build against the installed torch (and the carried setuptools<81).
    MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel -q --no-build-isolation --no-index --no-deps --no-cache-dir \
        "$WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz" -w "$BUILD_DIR" >&2
    WHEEL=$(ls "$BUILD_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
    log "compiled in $(( $(date +%s) - START )) s"
    if [ -n "${DP_MMCV_WHEEL_OUT:-}" ]; then
        mkdir -p "$DP_MMCV_WHEEL_OUT/$KEY"
        cp "$WHEEL" "$DP_MMCV_WHEEL_OUT/$KEY/"
        log "kept a copy in $DP_MMCV_WHEEL_OUT/$KEY (carry it as wheelhouse/built/$KEY)"
    fi
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEEL"

"$PY" - <<EOF >&2 || die "the stack does not import; see the traceback above"
import mmcv, mmcv.ops, mmdet, mmengine, pycocotools, direct_pretrain
cuda = mmcv.ops.get_compiling_cuda_version()
print(f'[setup_gpu_machine] mmcv {mmcv.__version__} (CUDA ops: {cuda}), mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}, direct_pretrain from {direct_pretrain.__file__}')
if '$CUDA_OPS' == '1':
    assert 'not available' not in cuda, 'mmcv was built without its CUDA ops'
EOF
log "ready in $(( $(date +%s) - START )) s"
echo "export PYTHONPATH=\"$PYTHONPATH\""
