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
#   tools/gpu_harness/run.sh --report [FILE]
#       the first run on a GPU machine: build, then in order and each under
#       its own time limit the correctness grid, compute-sanitizer memcheck
#       and racecheck on the quick grid, the timings, and the tensors of more
#       than 2^31 elements. A failed or timed-out section does not stop the
#       others. Writes one markdown table (pass/fail per section, GB/s of
#       every kernel against a device copy) to FILE (default
#       $TF_QDQ_HARNESS_DIR/report.md) and prints it at the end.
#   other arguments go to the harness: --grid, --huge, --timing, --quick,
#   --no-huge, --no-timing
#
# Environment:
#   TF_QDQ_NVCC        nvcc to use (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc)
#   TF_QDQ_CUDA_ARCHS  architectures, e.g. "80,90" (default: the visible GPU's
#                      own, from nvidia-smi or -arch=native; 80 when no GPU is
#                      visible)
#   TF_QDQ_HARNESS_DIR build directory (default: build/gpu_harness)
#   TF_QDQ_LIMIT_GRID, TF_QDQ_LIMIT_MEMCHECK, TF_QDQ_LIMIT_RACECHECK,
#   TF_QDQ_LIMIT_TIMING, TF_QDQ_LIMIT_HUGE
#                      --report's time limits in seconds (defaults 75, 80,
#                      80, 40, 75: at most 350 s, plus about a minute of build)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
nvcc="${TF_QDQ_NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
out="${TF_QDQ_HARNESS_DIR:-$root/build/gpu_harness}"
exe="$out/qdq_gpu_harness"

build_only=0
report=0
report_file=""
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --report)
      report=1
      if [[ $# -gt 1 && $2 != --* ]]; then report_file="$2"; shift; fi
      ;;
    *) args+=("$1") ;;
  esac
  shift
done

# The bit-exactness flags of setup.py's NVCCFLAGS: no fused multiply-add, IEEE
# division and square root, no flush-to-zero, never fast math.
flags=(-std=c++17 -O3 -lineinfo -Xcompiler -ffp-contract=off
       -fmad=false -ftz=false -prec-div=true -prec-sqrt=true)
if [[ -n ${TF_QDQ_CUDA_ARCHS:-} ]]; then
  gencode=()
  for a in ${TF_QDQ_CUDA_ARCHS//[,;]/ }; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  # The first GPU's compute capability (e.g. "9.0"), else nvcc's -arch=native.
  cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
  if [[ $cc =~ ^[0-9]+$ ]]; then
    gencode=(-gencode "arch=compute_$cc,code=sm_$cc")
  else
    gencode=(-arch=native)
  fi
else
  gencode=(-gencode arch=compute_80,code=sm_80)
fi

# Builds the harness: the two translation units in parallel, then the link.
# Skipped when the executable is newer than every source and was built with
# the same command.
build() {
  mkdir -p "$out" || return 1
  if [[ ! -x $nvcc ]]; then
    echo "nvcc not found (looked for '$nvcc'): set TF_QDQ_NVCC or put nvcc on PATH"
    return 1
  fi
  local command="$nvcc ${flags[*]} ${gencode[*]}"
  if [[ -x $exe && -f $out/build.command && "$(cat "$out/build.command")" == "$command" ]] &&
    [[ -z "$(find "$root/kernels" "$root/tools/gpu_harness" -newer "$exe" \
      \( -name 'qdq_gpu*' -o -name qdq_math.h -o -name qdq_cpu_convert.h -o -name '*.cu' \
      -o -name reference.h \) -print -quit)" ]]; then
    echo "building $exe: $command"
    echo "up to date: $exe"
    return 0
  fi
  rm -f "$exe" "$out/build.command"
  echo "building $exe: $command"
  "$nvcc" "${flags[@]}" "${gencode[@]}" -I "$root" -x cu -c "$root/kernels/qdq_gpu.cu.cc" \
    -o "$out/qdq_gpu.o" &
  local kernels=$!
  "$nvcc" "${flags[@]}" "${gencode[@]}" -I "$root" -x cu -c "$root/tools/gpu_harness/harness.cu" \
    -o "$out/harness.o" &
  local harness=$!
  local ok=0
  wait $kernels || ok=1
  wait $harness || ok=1
  if [[ $ok != 0 ]]; then echo "build FAILED"; return 1; fi
  "$nvcc" "${gencode[@]}" "$out/qdq_gpu.o" "$out/harness.o" -o "$exe" || return 1
  echo "$command" >"$out/build.command"
  echo "built $exe"
}

find_sanitizer() {
  local cand
  for cand in "$(command -v compute-sanitizer || true)" \
              "$(dirname "$nvcc")/compute-sanitizer" \
              "$(dirname "$(readlink -f "$nvcc")")/compute-sanitizer" \
              /usr/local/cuda/bin/compute-sanitizer \
              /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    if [[ -n $cand && -x $cand ]]; then echo "$cand"; return 0; fi
  done
  return 1
}

if [[ $report == 0 ]]; then
  build || exit 1
  if [[ $build_only == 1 ]]; then exit 0; fi
  status=0
  echo "== harness ${args[*]:-}"
  "$exe" ${args[@]+"${args[@]}"} || status=1
  if ! sanitizer="$(find_sanitizer)"; then
    echo "== compute-sanitizer not found: memcheck and racecheck not run"
  else
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer --tool $tool (quick checks)"
      "$sanitizer" --tool "$tool" --error-exitcode 1 "$exe" --grid --quick || status=1
    done
  fi
  if [[ $status == 0 ]]; then echo "== all passed"; else echo "== FAILED"; fi
  exit $status
fi

# --- --report: the first run on a GPU machine ------------------------------------
report_file="${report_file:-$out/report.md}"
mkdir -p "$out" "$(dirname "$report_file")"
rows=()
overall=0
device_ok=1

# Escapes a log line for a table cell.
cell() { printf '%s' "$1" | tr -d '\r' | sed 's/|/\\|/g' | cut -c1-160; }

# section NAME LIMIT COMMAND...: runs COMMAND under `timeout LIMIT`, its output
# into $out/NAME.log (and the terminal), and adds one table row.
section() {
  local name="$1" limit="$2"
  shift 2
  local log="$out/$name.log"
  if [[ $device_ok == 0 ]]; then
    rows+=("| $name | not run | | no usable CUDA device (see the first section) |")
    return
  fi
  echo
  echo "== [$name] (limit ${limit}s): $*"
  local start=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local took=$((SECONDS - start)) result summary
  summary="$(grep -E '^(PASSED|FAILED):|ERROR SUMMARY|RACECHECK SUMMARY|^no CUDA device|^FAIL |^timing done|^CUDA error' "$log" |
    tail -n 1)"
  case $rc in
    0) result="pass" ;;
    124 | 137) result="TIMED OUT"; summary="limit ${limit}s (raise TF_QDQ_LIMIT_*); $summary" ;;
    3) result="FAIL"; device_ok=0 ;;
    *) result="FAIL" ;;
  esac
  [[ $rc == 0 ]] || overall=1
  rows+=("| $name | $result | ${took} s | $(cell "$summary") |")
}

echo "== [build]"
build_start=$SECONDS
build 2>&1 | tee "$out/build.log"
build_rc=${PIPESTATUS[0]}
nvcc_version="$("$nvcc" --version 2>/dev/null | grep -o 'release [0-9.]*' | head -n 1)"
if [[ $build_rc == 0 ]]; then
  rows+=("| build (nvcc ${nvcc_version#release }, ${gencode[*]}) | pass | $((SECONDS - build_start)) s | |")
else
  rows+=("| build (nvcc ${nvcc_version#release }, ${gencode[*]}) | FAIL | $((SECONDS - build_start)) s | $(cell "$(grep -m1 -i error "$out/build.log")") |")
  overall=1
  device_ok=0
fi

section "correctness grid" "${TF_QDQ_LIMIT_GRID:-75}" "$exe" --grid
if sanitizer="$(find_sanitizer)"; then
  section "memcheck, quick grid" "${TF_QDQ_LIMIT_MEMCHECK:-80}" \
    "$sanitizer" --tool memcheck --error-exitcode 1 --print-limit 20 "$exe" --grid --quick
  section "racecheck, quick grid" "${TF_QDQ_LIMIT_RACECHECK:-80}" \
    "$sanitizer" --tool racecheck --error-exitcode 1 --print-limit 20 "$exe" --grid --quick
else
  rows+=("| memcheck, quick grid | not run | | compute-sanitizer not found |")
  rows+=("| racecheck, quick grid | not run | | compute-sanitizer not found |")
fi
section "timing" "${TF_QDQ_LIMIT_TIMING:-40}" "$exe" --timing
section "more than 2^31 elements" "${TF_QDQ_LIMIT_HUGE:-75}" "$exe" --huge

device_line="$(grep -h -m1 '^device ' "$out/correctness grid.log" "$out/timing.log" 2>/dev/null | head -n 1)"
smi="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
  head -n 1)"
{
  echo "GPU harness report: ${device_line:-device unknown}"
  [[ -z $smi ]] || echo "nvidia-smi: $smi"
  echo
  echo "| check | result | time | notes |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  # The timing rows, as the harness printed them ("| timing: ... |").
  grep -h '^| timing: ' "$out/timing.log" 2>/dev/null || true
} >"$report_file"
echo
echo "== report ($report_file)"
cat "$report_file"
if [[ $overall == 0 ]]; then echo "== all passed"; else echo "== FAILED (see the table and $out/*.log)"; fi
exit $overall
