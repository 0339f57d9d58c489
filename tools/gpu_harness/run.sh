#!/usr/bin/env bash
# Builds the TensorFlow-free GPU harness (tools/gpu_harness/harness.cu with
# kernels/qdq_gpu.cu.cc, nothing of TensorFlow) with nvcc and runs it: every
# GPU launcher against the host reference, then the timings; then, when
# compute-sanitizer is installed, the quick checks again under its memcheck
# and racecheck tools. Exit status 0 only when everything passed. See
# docs/gpu.md.
#
#   tools/gpu_harness/run.sh                build and run everything
#   tools/gpu_harness/run.sh --build-only   build only (no GPU needed)
#   other arguments go to the harness: --quick, --no-huge, --no-timing
#
# Environment:
#   TF_QDQ_NVCC        nvcc to use (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc)
#   TF_QDQ_CUDA_ARCHS  architectures, e.g. "80,90" (default: the visible GPU's
#                      own, -arch=native; 80 when no GPU is visible)
#   TF_QDQ_HARNESS_DIR build directory (default: build/gpu_harness)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
nvcc="${TF_QDQ_NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
out="${TF_QDQ_HARNESS_DIR:-$root/build/gpu_harness}"
exe="$out/qdq_gpu_harness"

build_only=0
args=()
for a in "$@"; do
  if [[ $a == --build-only ]]; then build_only=1; else args+=("$a"); fi
done

# The bit-exactness flags of setup.py's NVCCFLAGS: no fused multiply-add, IEEE
# division and square root, no flush-to-zero, never fast math.
flags=(-std=c++17 -O3 -lineinfo -Xcompiler -ffp-contract=off
       -fmad=false -ftz=false -prec-div=true -prec-sqrt=true)
if [[ -n ${TF_QDQ_CUDA_ARCHS:-} ]]; then
  gencode=()
  for a in ${TF_QDQ_CUDA_ARCHS//[,;]/ }; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gencode=(-arch=native)
else
  gencode=(-gencode arch=compute_80,code=sm_80)
fi

mkdir -p "$out"
echo "building $exe: $nvcc ${flags[*]} ${gencode[*]}"
"$nvcc" "${flags[@]}" "${gencode[@]}" -I "$root" \
  -x cu "$root/kernels/qdq_gpu.cu.cc" "$root/tools/gpu_harness/harness.cu" -o "$exe"
echo "built $exe"
if [[ $build_only == 1 ]]; then exit 0; fi

status=0
echo "== harness ${args[*]:-}"
"$exe" ${args[@]+"${args[@]}"} || status=1

sanitizer=""
for cand in "$(command -v compute-sanitizer || true)" \
            "$(dirname "$nvcc")/compute-sanitizer" \
            "$(dirname "$(readlink -f "$nvcc")")/compute-sanitizer" \
            /usr/local/cuda/bin/compute-sanitizer \
            /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  if [[ -n $cand && -x $cand ]]; then sanitizer="$cand"; break; fi
done
if [[ -z $sanitizer ]]; then
  echo "== compute-sanitizer not found: memcheck and racecheck not run"
else
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer --tool $tool (quick checks)"
    "$sanitizer" --tool "$tool" --error-exitcode 1 "$exe" --quick || status=1
  done
fi
if [[ $status == 0 ]]; then echo "== all passed"; else echo "== FAILED"; fi
exit $status
