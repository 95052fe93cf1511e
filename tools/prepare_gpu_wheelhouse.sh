#!/usr/bin/env bash
# Download, on a machine with internet, what an offline CUDA machine lacks to run direct_pretrain.
#
# Why: the lent GPU machines (Python 3.12, torch 2.11.0+cu130, torchvision, timm, numpy, scipy,
# matplotlib, opencv-python-headless, tensorboard preinstalled) reach no package registry and
# have no mmcv / mmengine / mmdet / pycocotools. This script fills a folder with exactly the
# missing distributions - wheels for the target Python and mmcv's source archive (mmcv 2.1.0 has
# no wheel for torch 2.11; tools/setup_gpu_machine.sh compiles it there with CUDA ops) - to be
# carried to that machine with the checkout. Nothing is downloaded there.
#
# Usage: tools/prepare_gpu_wheelhouse.sh            # -> <repo>/wheelhouse (gitignored)
# Env:   DP_WHEELHOUSE (default <repo>/wheelhouse), DP_TARGET_PYTHON (default 3.12),
#        DP_PIP (default: python3 -m pip)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELHOUSE=${DP_WHEELHOUSE:-$ROOT/wheelhouse}
TARGET_PYTHON=${DP_TARGET_PYTHON:-3.12}
read -r -a PIP <<< "${DP_PIP:-python3 -m pip}"
MMCV_VERSION=2.1.0
# What the GPU image lacks, pinned where the project pins it (tools/setup_env.sh). One version
# of each: pip --target stops on two. Dependencies are listed by hand because pip cannot
# resolve them for another interpreter: mmcv needs addict, yapf (-> platformdirs); mmengine
# termcolor; mmdet shapely, terminaltables; mmcv's setup.py and mmengine's `mmdet::` config
# lookup import pkg_resources, which setuptools 81 removed.
WHEELS=(
    "mmengine==0.10.7" "mmdet==3.3.0" "pycocotools" "addict" "yapf" "platformdirs" "termcolor"
    "terminaltables" "shapely" "setuptools<81"
)
# pip matches manylinux tags exactly; these cover the wheels above for x86-64.
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)

log() { echo "[prepare_gpu_wheelhouse] $*" >&2; }

mkdir -p "$WHEELHOUSE"
# Start from a clean set (a prebuilt mmcv under built/ is kept).
find "$WHEELHOUSE" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' \) -delete

PLATFORM_ARGS=()
for platform in "${PLATFORMS[@]}"; do PLATFORM_ARGS+=(--platform "$platform"); done
log "downloading ${#WHEELS[@]} wheels for CPython $TARGET_PYTHON into $WHEELHOUSE"
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: --python-version "$TARGET_PYTHON" --implementation cp \
    "${PLATFORM_ARGS[@]}" -d "$WHEELHOUSE" "${WHEELS[@]}"
log "downloading the mmcv $MMCV_VERSION source archive"
# pip reads the archive's metadata in an isolated build environment; its setup.py imports
# pkg_resources, so that environment's setuptools is held below 81 too.
CONSTRAINTS=$(mktemp)
echo "setuptools<81" > "$CONSTRAINTS"
PIP_CONSTRAINT=$CONSTRAINTS "${PIP[@]}" download --quiet --no-deps --no-binary=:all: -d "$WHEELHOUSE" \
    "mmcv==$MMCV_VERSION"
rm -f "$CONSTRAINTS"

ls "$WHEELHOUSE"/mmcv-"$MMCV_VERSION".tar.gz >/dev/null
for spec in "${WHEELS[@]}"; do
    name=${spec%%[=<>]*}
    pattern=$(echo "$name" | tr '-' '_')
    count=$(find "$WHEELHOUSE" -maxdepth 1 -iname "${pattern}-*.whl" | wc -l)
    if [ "$count" != 1 ]; then
        log "ERROR: expected one wheel of $name in $WHEELHOUSE, found $count"
        exit 1
    fi
done
log "done: $(find "$WHEELHOUSE" -maxdepth 1 -type f | wc -l) files, $(du -sh "$WHEELHOUSE" | cut -f1)" \
    "(carry the folder with the checkout; tools/setup_gpu_machine.sh installs it there)"
