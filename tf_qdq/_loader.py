"""Finds and loads the compiled op library exactly once."""

import ctypes
import os
import re
import threading
import types
from typing import List, Optional

import tensorflow as tf

from tf_qdq._version import SUPPORTED_TENSORFLOW

_LIBRARY_NAME = "_tf_qdq_ops.so"
_MARKER = re.compile(rb"TF_QDQ_BUILT_AGAINST_TF=([^;\x00]*);")
_CUDA_MARKER = re.compile(rb"TF_QDQ_BUILT_WITH_CUDA=([^;\x00]*);")
# An op of the library: registered in TensorFlow's op registry once any copy was loaded.
_PROBE_OP = "TfQdq>QuantizeAndDequantizeV4"
_lock = threading.Lock()
_module = None
_path = None

# The oldest and newest TensorFlow this source builds against and CI tests (the whole list:
# _version.SUPPORTED_TENSORFLOW); a build works with the minor version it was compiled against only.
SUPPORTED_TF = (SUPPORTED_TENSORFLOW[0], SUPPORTED_TENSORFLOW[-1])

REBUILD_HINT = (
    "Rebuild tf_qdq against the installed TensorFlow: from the source tree run "
    "`pip install --no-build-isolation --force-reinstall --no-deps .` "
    "(or install a tf_qdq wheel built for this TensorFlow version)."
)


def library_path() -> str:
    """The shared library to load: $TF_QDQ_LIBRARY, else the one in this package."""
    return os.environ.get("TF_QDQ_LIBRARY") or os.path.join(os.path.dirname(__file__), _LIBRARY_NAME)


def built_against(path: str) -> Optional[str]:
    """The TensorFlow version recorded in the library file, or None."""
    with open(path, "rb") as f:
        m = _MARKER.search(f.read())
    return m.group(1).decode("ascii", "replace") if m else None


def built_with_cuda(path: Optional[str] = None) -> Optional[str]:
    """ "<CUDA version> <archs>" (e.g. "13.0 sm_75,sm_80,sm_90,compute_90") when
    the library file contains GPU kernels, else None (built without CUDA)."""
    with open(path or library_path(), "rb") as f:
        m = _CUDA_MARKER.search(f.read())
    return m.group(1).decode("ascii", "replace") if m else None


def _minor(version):
    return tuple(version.split(".")[:2])


def _ops_registered():
    """True when TensorFlow's op registry already holds the library's ops."""
    from tensorflow.python.framework import op_def_registry

    return op_def_registry.get(_PROBE_OP) is not None


def _has_marker(path):
    """True when the file is a tf_qdq op library (it carries the build marker)."""
    try:
        if os.path.getsize(path) > (512 << 20):
            return False
        with open(path, "rb") as f:
            return b"TF_QDQ_BUILT_AGAINST_TF=" in f.read()
    except OSError:
        return False


def loaded_copies() -> List[str]:
    """Real paths of the tf_qdq op libraries mapped into this process (Linux: /proc/self/maps;
    elsewhere an empty list)."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    tf_dir = os.path.dirname(os.path.realpath(tf.__file__))
    seen, out = set(), []
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/") or ".so" not in os.path.basename(parts[5]):
            continue
        path = os.path.realpath(parts[5].strip())
        if path in seen or path.startswith(tf_dir + os.sep):
            continue
        seen.add(path)
        if _has_marker(path):
            out.append(path)
    return out


def _check_no_other_copy(path):
    """Raises ImportError when another copy of the op library was loaded before this one: its
    kernels are registered under the same op names, so loading ours would leave the module empty
    (or register every kernel twice)."""
    if not _ops_registered():
        return
    ours = os.path.realpath(path)
    others = [p for p in loaded_copies() if p != ours]
    if not others and ours in loaded_copies():
        return  # this very file was loaded before (tf.load_op_library(path)): TensorFlow reuses it
    other = others[0] if others else "an unknown file (not found among the process's mapped libraries)"
    raise ImportError(
        f"tf_qdq: another copy of the op library is already loaded in this process ({other}), "
        f"so the ops of {path} cannot be registered: TensorFlow allows one library per op name. "
        "Load only one copy: remove the other build (e.g. a Bazel output or a stale in-place build "
        "on PYTHONPATH), or point TF_QDQ_LIBRARY at the file that is already loaded, "
        "and import tf_qdq before any tf.load_op_library of it."
    )


def load() -> types.ModuleType:
    """Loads the library (once) and returns the generated op module."""
    global _module, _path
    with _lock:
        if _module is not None:
            return _module
        path = library_path()
        if not os.path.exists(path):
            raise ImportError(
                f"tf_qdq: the compiled op library is missing ({path}). "
                "The package was installed without building its kernels. " + REBUILD_HINT
            )
        built = built_against(path)
        if built is not None and built != "unknown" and _minor(built) != _minor(tf.__version__):
            raise ImportError(
                f"tf_qdq: {path} was built against TensorFlow {built}, but TensorFlow "
                f"{tf.__version__} is installed; the C++ ABI differs between TensorFlow "
                f"versions (tf_qdq supports TensorFlow {SUPPORTED_TF[0]} to {SUPPORTED_TF[1]}, "
                "one build per minor version). " + REBUILD_HINT
            )
        _check_no_other_copy(path)
        try:
            _module = tf.load_op_library(path)
        except tf.errors.NotFoundError as e:
            raise ImportError(
                f"tf_qdq: loading {path} (built against TensorFlow {built or 'unknown'}) "
                f"into TensorFlow {tf.__version__} failed: {e}. " + REBUILD_HINT
            ) from e
        _check_cpu_isa(path)
        _path = path
        return _module


def _cpu_isa_functions(path):
    """TfQdqCpuIsa and TfQdqCpuIsaError of the loaded library (dlopen hands back the copy that
    TensorFlow loaded)."""
    lib = ctypes.CDLL(path)
    try:
        isa, error = lib.TfQdqCpuIsa, lib.TfQdqCpuIsaError
    except AttributeError as e:
        raise ImportError(
            f"tf_qdq: {path} is older than this package (it does not report its CPU instruction set). " + REBUILD_HINT
        ) from e
    isa.restype = error.restype = ctypes.c_char_p
    isa.argtypes = error.argtypes = []
    return isa, error


def _check_cpu_isa(path):
    """Raises ImportError when TF_QDQ_CPU_ISA names no instruction set of the CPU kernels (they
    would fail on every run)."""
    isa, error = _cpu_isa_functions(path)
    if isa() is None:
        raise ImportError(error().decode("utf-8", "replace"))


def cpu_isa() -> str:
    """The instruction set of the CPU kernels' loops in use: "sse2", "avx2" or "avx512" (the
    default is avx2 where the CPU has it; TF_QDQ_CPU_ISA picks another, and one the CPU lacks
    falls back to the best it has). Loads the library if needed."""
    load()
    isa, _ = _cpu_isa_functions(_path)
    return isa().decode("ascii")


def loaded_path() -> Optional[str]:
    """Path of the loaded library (None before `load()`)."""
    return _path
