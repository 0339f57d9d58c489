"""Finds and loads the compiled op library exactly once."""
import os
import re
import threading

import tensorflow as tf

_LIBRARY_NAME = "_tf_qdq_ops.so"
_MARKER = re.compile(rb"TF_QDQ_BUILT_AGAINST_TF=([^;\x00]*);")
_CUDA_MARKER = re.compile(rb"TF_QDQ_BUILT_WITH_CUDA=([^;\x00]*);")
_lock = threading.Lock()
_module = None
_path = None

# The TensorFlow versions this source builds against and is tested with (oldest and
# newest in CI); a build works with the minor version it was compiled against only.
SUPPORTED_TF = ("2.16", "2.21")

REBUILD_HINT = (
    "Rebuild tf_qdq against the installed TensorFlow: from the source tree run "
    "`pip install --no-build-isolation --force-reinstall --no-deps .` "
    "(or install a tf_qdq wheel built for this TensorFlow version)."
)


def library_path():
    """The shared library to load: $TF_QDQ_LIBRARY, else the one in this package."""
    return os.environ.get("TF_QDQ_LIBRARY") or os.path.join(os.path.dirname(__file__), _LIBRARY_NAME)


def built_against(path):
    """The TensorFlow version recorded in the library file, or None."""
    with open(path, "rb") as f:
        m = _MARKER.search(f.read())
    return m.group(1).decode("ascii", "replace") if m else None


def built_with_cuda(path=None):
    """"<CUDA version> <archs>" (e.g. "13.0 sm_75,sm_80,sm_90,compute_90") when
    the library file contains GPU kernels, else None (built without CUDA)."""
    with open(path or library_path(), "rb") as f:
        m = _CUDA_MARKER.search(f.read())
    return m.group(1).decode("ascii", "replace") if m else None


def _minor(version):
    return tuple(version.split(".")[:2])


def load():
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
        try:
            _module = tf.load_op_library(path)
        except tf.errors.NotFoundError as e:
            raise ImportError(
                f"tf_qdq: loading {path} (built against TensorFlow {built or 'unknown'}) "
                f"into TensorFlow {tf.__version__} failed: {e}. " + REBUILD_HINT
            ) from e
        _path = path
        return _module


def loaded_path():
    return _path
