#!/usr/bin/env bash
# Sanitizer run: AddressSanitizer + UndefinedBehaviorSanitizer.
#
# Builds the library with TF_QDQ_SANITIZE=1 into build-asan/ (the normal
# in-place build is left alone), then runs the test suite, the self-check and
# the long fuzz profile against it, with the sanitizer runtimes preloaded into
# Python (which is not built with them) and TF_QDQ_LIBRARY pointing at the
# sanitized library. Child processes started by the tests inherit all of it.
#
#   .ci/sanitize.sh [--subset] [FUZZ_MINUTES]    default 2; 0 skips the fuzz profile
#
# --subset (what CI runs, a few minutes): instead of the whole suite, the tests that
# reach every kernel path: test_kernel_paths.py (per-tensor and per-channel layouts,
# vector bodies and tails, block splits, every instruction-set table in subprocesses,
# V2-V4Grad, every dtype), test_parity.py (V1-V4Grad against the built-ins) and
# test_bad_inputs.py (every validation and error path). The XLA kernels only build HLO
# (XLA's own code runs it) and are left to the full run.
#
# Environment: PYTHON (default python3), CXX (default g++; its libasan and
# libubsan are preloaded), PYTEST_ARGS (default "-q tests", or the subset),
# TF_QDQ_CUDA (as for setup.py; 0: CPU kernels only).
#
# Any report fails the run: ASan and UBSan halt on the first error (a test
# whose child process halts fails and shows its stderr), and the output of
# every step, kept in build-asan/logs/, is searched for sanitizer reports.
# Leak detection is off: TensorFlow and CPython keep global allocations until
# exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CXX=${CXX:-g++}
SUBSET_ARGS="-q tests/test_kernel_paths.py tests/test_parity.py tests/test_bad_inputs.py"
pytest_args="-q tests"
if [[ "${1:-}" == "--subset" ]]; then
  pytest_args="$SUBSET_ARGS"
  shift
fi
pytest_args="${PYTEST_ARGS:-$pytest_args}"
FUZZ_MINUTES=${1:-2}
start=$(date +%s)

echo "== building the sanitized library (build-asan/)"
TF_QDQ_SANITIZE=1 "$PY" setup.py -q build_ext -b build-asan -t build-asan/tmp 2>&1 | grep -E "^tf_qdq:|rror" || true
LIB=$PWD/build-asan/tf_qdq/_tf_qdq_ops.so
test -f "$LIB" || { echo "sanitized build failed"; exit 1; }
build_done=$(date +%s)

LOGS=$PWD/build-asan/logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
san_env=(
  "LD_PRELOAD=$("$CXX" -print-file-name=libasan.so) $("$CXX" -print-file-name=libubsan.so)"
  "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1"
  "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
  "TF_QDQ_LIBRARY=$LIB"
  "PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}"
  "TF_CPP_MIN_LOG_LEVEL=2"
)
status=0
step=0
run() {  # run a step under the sanitizers (output also in build-asan/logs/), remember a failure, go on
  step=$((step + 1))
  echo "== $*"
  local t0
  t0=$(date +%s)
  set +e
  env "${san_env[@]}" "$@" 2>&1 | tee "$LOGS/step$step.log" | grep -vE "^(I0000|W0000|E0000|WARNING: All log)"
  local rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || { echo "   step FAILED (exit status $rc)"; status=1; }
  echo "   ($(( $(date +%s) - t0 )) s)"
}

run "$PY" -c "import tf_qdq, sys; p = tf_qdq.library_path(); print('loaded', p); sys.exit(p != '$LIB')"
# shellcheck disable=SC2086
run "$PY" -m pytest $pytest_args -p no:cacheprovider
run "$PY" -m tf_qdq check
if [ "$FUZZ_MINUTES" != "0" ]; then
  run "$PY" -m tools.fuzz --minutes "$FUZZ_MINUTES" --last-case "$LOGS/last-fuzz-case.txt"
fi

pattern='runtime error:|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer'
if grep -lE "$pattern" "$LOGS"/*.log > /dev/null; then
  echo "== SANITIZER REPORTS:"
  grep -nE -A12 "$pattern" "$LOGS"/*.log | head -200
  status=1
fi
end=$(date +%s)
echo "== sanitize.sh: build $(( build_done - start )) s, runs $(( end - build_done )) s, total $(( end - start )) s;" \
     "$([ $status = 0 ] && echo 'no sanitizer reports, all passed' || echo FAILED)"
exit $status
