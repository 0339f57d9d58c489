#!/usr/bin/env bash
# CI for one supported TensorFlow minor version other than the newest (2.21 gets the whole
# suite in .ci/run). From a fresh copy of the repository's tracked files (no ./configure.sh,
# no build outputs):
#
#   1. TF_VERSION=X ./build_pip_pkg.sh: its own venv with TensorFlow X (from pip's cache
#      when .ci/run fetched it ahead), the library compiled by setup.py (CPU kernels), a
#      manylinux wheel (auditwheel repair)
#   2. `auditwheel show` and .ci/check_wheel.py: the platform tag is the manylinux tag the
#      symbols allow and at most manylinux_2_27, nothing grafted, it requires tensorflow==X.*
#   3. the wheel installed into that venv; `python -m tf_qdq` from outside the checkout
#   4. tests against the installed wheel (the source tree's tf_qdq/ is not on sys.path):
#      the XLA differential tests (test_xla.py) and the build tests; with --full also the
#      differential, golden, bad-input, Keras, API and message tests
#
#   .ci/tf_version.sh VERSION [--full]      e.g. .ci/tf_version.sh 2.16 --full
#
# The versions CI runs are tf_qdq/_version.py's SUPPORTED_TENSORFLOW (see .ci/run).
#
# Environment: TF_QDQ_VENV (a venv with that TensorFlow to reuse, as build_pip_pkg.sh takes it;
# .ci/run makes them ahead), PYTHON (the interpreter for the venv; default the first of python3.11,
# python3.12, python3.10, python3 that is 3.10 to 3.12: every supported TensorFlow has wheels
# for those), TF_QDQ_CUDA (default 0 here: CPU kernels only; the GPU build is exercised by the
# 2.21 wheel in .ci/bazel_and_wheel.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tf_version="${1:-}"
full=0
[[ "${2:-}" == "--full" ]] && full=1
[[ "$tf_version" =~ ^2\.[0-9]+$ && ( $# -eq 1 || $full -eq 1 ) && $# -le 2 ]] \
  || { echo "usage: .ci/tf_version.sh VERSION [--full]   (VERSION: a TensorFlow minor version such as 2.18)"; exit 2; }
t0=$(date +%s)
t_step=$t0
declare -a timings=()
lap() {
  local now
  now=$(date +%s)
  timings+=("$(printf '%-40s %4d s' "$1" $((now - t_step)))")
  echo "== tf $tf_version: $1: $((now - t_step)) s"
  t_step=$now
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tf_qdq_tf${tf_version}.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- the Python for the venv: every supported TensorFlow has wheels for CPython 3.10 to 3.12 ---
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1 \
        && "$cand" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
      python="$(command -v "$cand")"
      break
    fi
  done
fi
[[ -n "$python" ]] || { echo "== tf $tf_version: no Python 3.10-3.12 found (set PYTHON)"; exit 1; }
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "== tf $tf_version: $python cannot make venvs (Debian: apt-get install python3-venv)"; exit 1
fi
echo "== tf $tf_version: venv from $("$python" --version 2>&1) ($python)"

# --- LLVM's headers: TensorFlow 2.19's wheel has an XLA header that includes llvm/ADT/ArrayRef.h
# without shipping it; setup.py then uses a system LLVM's (llvm_include_flags), and stops with a
# message when there is none. CI installs them where apt can.
if ! compgen -G "/usr/include/llvm-[0-9]*/llvm/ADT/ArrayRef.h" >/dev/null \
    && ! compgen -G "/usr/lib/llvm-[0-9]*/include/llvm/ADT/ArrayRef.h" >/dev/null \
    && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
  echo "== tf $tf_version: installing llvm-dev (LLVM's headers, for TensorFlow 2.19's XLA headers)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends llvm-dev >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends llvm-dev \
         >/dev/null; } || echo "== tf $tf_version: could not install llvm-dev"
fi

# --- a fresh copy: the tracked files, as `git clone` gives them ----------------------------
src="$work/src"
mkdir -p "$src"
git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$src"
test ! -e "$src/.tf_configure.bazelrc" && ! ls "$src"/tf_qdq/*.so >/dev/null 2>&1
lap "fresh copy of the tracked files"

# --- 1. the wheel, from nothing but the script ---------------------------------------------
(cd "$src" && TF_VERSION="$tf_version" PYTHON="$python" TF_QDQ_CUDA="${TF_QDQ_CUDA:-0}" \
   ./build_pip_pkg.sh "$work/dist")
venv="${TF_QDQ_VENV:-$src/build/venv-tf$tf_version}"
wheel="$(ls "$work"/dist/tf_qdq-*.whl)"
lap "TF_VERSION=$tf_version ./build_pip_pkg.sh"

# --- 2. what a package index sees ---------------------------------------------------------
"$venv/bin/python" .ci/check_wheel.py "$wheel" "$tf_version"
lap "auditwheel show + wheel contents"

# --- 3. install, self-check outside the checkout --------------------------------------------
"$venv/bin/pip" install -q "$wheel" pytest hypothesis "tf_keras==$tf_version.*"
cd "$work"
"$venv/bin/python" -c 'import tf_qdq; p = tf_qdq.library_path(); assert "site-packages" in p, p; print("== installed library:", p)'
TF_CPP_MIN_LOG_LEVEL=2 "$venv/bin/python" -m tf_qdq >"$work/selfcheck.txt" 2>&1 || { cat "$work/selfcheck.txt"; exit 1; }
grep -E "^(built against|running on|supported):" "$work/selfcheck.txt"
tail -n 1 "$work/selfcheck.txt"
grep -q "all bit-identical" "$work/selfcheck.txt"
lap "install wheel + python -m tf_qdq"

# --- 4. the version-sensitive tests, against the installed wheel ---------------------------
# Run from outside the source tree, so `import tf_qdq` is the installed package.
# Without --full, the XLA tests' benchmark smoke test and the subprocess that imports after a
# compile are left out (version-independent, and a sixth of test_xla.py's time).
tests=(test_xla.py test_build_smoke.py)
select=(-k "not benchmark_rows_smoke and not import_after_xla_compiled")
if [[ $full -eq 1 ]]; then
  tests+=(test_parity.py test_differences.py test_golden.py test_bad_inputs.py test_keras.py test_api.py
          test_messages.py)
  select=()
fi
"$venv/bin/python" -m pytest -q -p no:cacheprovider -c "$src/pyproject.toml" --rootdir "$src" \
  "${select[@]}" "${tests[@]/#/$src/tests/}"
lap "pytest ${#tests[@]} files"

echo "== tf $tf_version timings"
printf '   %s\n' "${timings[@]}"
echo "   total                                    $(( $(date +%s) - t0 )) s"
