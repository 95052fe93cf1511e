# shellcheck shell=bash
# Sourced by tools/setup_env.sh and tools/setup_gpu_machine.sh: the environment under which
# mmcv 2.1.0 compiles WITH its CUDA ops against the installed torch.
#
# Why a shared file: the settings below were found the hard way (issue 16) and must be the same
# wherever mmcv is compiled:
#   FORCE_CUDA=1 MMCV_WITH_OPS=1   compile the CUDA kernels even where no GPU is visible;
#   TORCH_CUDA_ARCH_LIST           the local GPU's architecture (e.g. 9.0 for H100/H200): code
#                                  for other chips, or PTX only, costs compile time or runs slower;
#   CUDA_HOME                      the *versioned* toolkit folder (bin/nvcc + include/), e.g.
#                                  /usr/local/cuda-13.0; a folder above it (a wrapper script's
#                                  /usr/local) makes the host files fail on crt/host_defines.h;
#   CPATH                          $CUDA_HOME/include first, then torch's
#                                  <site-packages>/nvidia/cu<major>/include (cusparse / cublas
#                                  headers that the toolkit install may lack).
#
# dp_cuda_build_env PYTHON
#   exports FORCE_CUDA, MMCV_WITH_OPS, TORCH_CUDA_ARCH_LIST, CUDA_HOME, CPATH and sets
#   DP_CUDA_ARCH_TAG (e.g. sm90, used in wheel cache keys); returns 1 with a message on stderr
#   when nvcc, the toolkit or the architecture cannot be found.
# dp_cuda_ops_wanted PYTHON
#   prints 1 when mmcv's CUDA ops should be compiled: DP_CUDA_OPS=1, or (DP_CUDA_OPS unset or
#   'auto') nvcc on PATH and a CUDA build of torch that sees a GPU; 0 otherwise (DP_CUDA_OPS=0).

dp_cuda_ops_wanted() {
    local py=$1
    case "${DP_CUDA_OPS:-auto}" in
        1) echo 1 ;;
        0) echo 0 ;;
        auto)
            if command -v nvcc >/dev/null 2>&1 && "$py" -c \
                "import sys, torch; sys.exit(0 if torch.version.cuda and torch.cuda.is_available() else 1)" \
                2>/dev/null; then
                echo 1
            else
                echo 0
            fi ;;
        *) echo "[cuda_build_env] ERROR: DP_CUDA_OPS=${DP_CUDA_OPS} must be 1, 0 or auto" >&2; return 1 ;;
    esac
}

_dp_cuda_home_candidates() {
    local torch_cuda=$1 nvcc_path
    [ -n "${CUDA_HOME:-}" ] && echo "$CUDA_HOME"
    [ -n "$torch_cuda" ] && echo "/usr/local/cuda-$torch_cuda"
    [ -e /usr/local/cuda ] && readlink -f /usr/local/cuda
    nvcc_path=$(command -v nvcc 2>/dev/null || true)
    if [ -n "$nvcc_path" ]; then
        dirname "$(dirname "$(readlink -f "$nvcc_path")")"
        # a wrapper script (`exec /usr/local/cuda-13.0/bin/nvcc "$@"`) names the real one
        sed -n 's|^exec \([^ ]*\)/bin/nvcc .*|\1|p' "$nvcc_path" 2>/dev/null | head -n 1
    fi
}

dp_cuda_build_env() {
    local py=$1 torch_cuda home="" cand arch site_include major include_path
    torch_cuda=$("$py" -c "import torch; print(torch.version.cuda or '')")
    if [ -z "$torch_cuda" ]; then
        echo "[cuda_build_env] ERROR: $py's torch is a CPU build; install a CUDA build of torch or set DP_CUDA_OPS=0" >&2
        return 1
    fi
    while IFS= read -r cand; do
        if [ -n "$cand" ] && [ -x "$cand/bin/nvcc" ] && [ -f "$cand/include/cuda_runtime.h" ]; then
            home=$(readlink -f "$cand")
            break
        fi
    done < <(_dp_cuda_home_candidates "$torch_cuda")
    if [ -z "$home" ]; then
        echo "[cuda_build_env] ERROR: no CUDA toolkit folder with bin/nvcc and include/cuda_runtime.h found" \
             "(tried \$CUDA_HOME, /usr/local/cuda-$torch_cuda, /usr/local/cuda, nvcc's folder);" \
             "set CUDA_HOME to the versioned toolkit folder, e.g. /usr/local/cuda-$torch_cuda" >&2
        return 1
    fi
    arch=${TORCH_CUDA_ARCH_LIST:-}
    if [ -z "$arch" ]; then
        arch=$("$py" -c "
import torch
if torch.cuda.is_available():
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    print(';'.join(f'{a}.{b}' for a, b in caps))" 2>/dev/null || true)
    fi
    if [ -z "$arch" ]; then
        echo "[cuda_build_env] ERROR: no GPU visible to choose the CUDA architecture; set TORCH_CUDA_ARCH_LIST" \
             "to the target GPU's compute capability (e.g. 9.0 for H100/H200, 8.0 for A100)" >&2
        return 1
    fi
    major=${torch_cuda%%.*}
    site_include=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/nvidia/cu$major/include
    export FORCE_CUDA=1 MMCV_WITH_OPS=1 TORCH_CUDA_ARCH_LIST="$arch" CUDA_HOME="$home"
    include_path="$home/include"
    if [ -d "$site_include" ]; then include_path="$include_path:$site_include"; fi
    export CPATH="$include_path${CPATH:+:$CPATH}"
    # 9.0 -> sm90; "8.0;9.0+PTX" -> sm80-90ptx
    DP_CUDA_ARCH_TAG=sm$(echo "$arch" | tr ' ;' '--' | tr -d '.' | sed 's/+PTX/ptx/g')
    export DP_CUDA_ARCH_TAG
    echo "[cuda_build_env] CUDA ops for $DP_CUDA_ARCH_TAG with nvcc $("$home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')" \
         "(torch built for CUDA $torch_cuda), CUDA_HOME=$home" >&2
}
