"""The tests' one table of truth and shared helpers: the op names (the package's own table), the
dtypes, the plugin's and TensorFlow's ops by short name, op_kwargs (an op's keyword arguments),
bit-pattern checks, and child processes (child_env, run_child; their programs live in
tests/children/).

Test modules import it by name (`from qdq_testing import ...`: pytest puts tests/ on sys.path);
conftest.py re-exports some of it for the modules that still import from there."""

import functools
import importlib
import importlib.util
import os

import numpy as np


def _op_names():
    """tf_qdq/_op_names.py (the package's one table of op names) of the tf_qdq the tests import,
    read without importing tf_qdq (which loads TensorFlow and the library)."""
    spec = importlib.util.find_spec("tf_qdq")
    path = os.path.join(os.path.dirname(spec.origin), "_op_names.py")
    module_spec = importlib.util.spec_from_file_location("_tf_qdq_op_names", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


# Short name -> the raw op's name (the same for the plugin, as tf_qdq.raw_ops.NAME, and for
# TensorFlow, as tf.raw_ops.NAME; the plugin's registered op type is "TfQdq>" + NAME).
RAW_NAMES = dict(_op_names().BUILTIN_BY_VERSION)
# The tensor inputs of each op, in order (the rest are attrs).
INPUT_NAMES = {
    "V1": ["input"],
    "V2": ["input", "input_min", "input_max"],
    "V3": ["input", "input_min", "input_max", "num_bits"],
    "V4": ["input", "input_min", "input_max"],
    "V4Grad": ["gradients", "input", "input_min", "input_max"],
}
# The Python wrappers by short name, and the raw op each runs.
WRAPPER_OPS = {"qdq": "V2", "qdq_v2": "V4"}
WRAPPER_NAMES = {"qdq": "quantize_and_dequantize", "qdq_v2": "quantize_and_dequantize_v2"}


def _tables():
    """The tables that need TensorFlow and tf_qdq, built on first use (so that a child process that
    only needs RAW_NAMES or child_env does not load them)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    import tf_qdq

    bf16 = tf.bfloat16.as_numpy_dtype
    return {
        "BFLOAT16": bf16,
        "ALL_DTYPES": [np.float32, np.float64, np.float16, bf16],
        "PLUGIN_OPS": {short: getattr(tf_qdq.raw_ops, name) for short, name in RAW_NAMES.items()},
        "BUILTIN_OPS": {short: getattr(tf.raw_ops, name) for short, name in RAW_NAMES.items()},
        "WRAPPERS": {short: getattr(tf_qdq, name) for short, name in WRAPPER_NAMES.items()},
    }


_LAZY = None


def __getattr__(name):
    """BFLOAT16 (NumPy's bfloat16 type), ALL_DTYPES (the four float types), PLUGIN_OPS and
    BUILTIN_OPS (raw ops by short name), WRAPPERS (tf_qdq's wrappers by short name)."""
    global _LAZY
    if name in ("BFLOAT16", "ALL_DTYPES", "PLUGIN_OPS", "BUILTIN_OPS", "WRAPPERS"):
        if _LAZY is None:
            _LAZY = _tables()
        return _LAZY[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def bits(a):
    """The bit patterns of a float array (uint16/32/64 view)."""
    a = np.ascontiguousarray(a.numpy() if hasattr(a, "numpy") else np.asarray(a))
    return a.view(_UINT[a.dtype.itemsize])


def assert_same_bits(actual, expected, msg=""):
    """Asserts identical shape, dtype and bit patterns (sign of zero counts)."""
    a = actual.numpy() if hasattr(actual, "numpy") else np.asarray(actual)
    e = expected.numpy() if hasattr(expected, "numpy") else np.asarray(expected)
    assert a.shape == e.shape, f"{msg}: shape {a.shape} != {e.shape}"
    assert a.dtype == e.dtype, f"{msg}: dtype {a.dtype} != {e.dtype}"
    from tf_qdq import reference

    if not reference.same_bits(a, e):
        n = reference.count_differing(a, e)
        idx = np.flatnonzero(bits(a) != bits(e))[:5]
        detail = ", ".join(f"[{i}] {a.flat[i]!r} vs {e.flat[i]!r}" for i in idx)
        raise AssertionError(f"{msg}: {n} of {a.size} elements differ in bits: {detail}")


# The root of the source checkout the tests live in.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def checkout_tools():
    """The checkout's `tools` package (tools/fuzz: a developer tool, not in the installed package).
    The root goes at the end of sys.path, so that an installed tf_qdq still wins over the source."""
    import sys

    if ROOT not in sys.path:
        sys.path.append(ROOT)
    return importlib.import_module("tools")


def child_env(*extra_paths):
    """The parent's environment for a child process, with PYTHONPATH leading to the same tf_qdq
    package the parent imported (source tree or installed) and to extra_paths. Sanitizer settings
    (LD_PRELOAD, ASAN_OPTIONS, TF_QDQ_LIBRARY) are inherited."""
    import tf_qdq

    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(tf_qdq.__file__)))
    paths = [*extra_paths, pkg_parent, os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(p for p in paths if p))


# ---- calls of the ops and of child processes


def op_kwargs(op, x, mn=None, mx=None, num_bits=8, gradients=None, convert=None, **attrs):
    """The keyword arguments of raw op `op` (a short name) for tf.raw_ops and tf_qdq.raw_ops, with
    what differs between the ops' signatures handled once:
      * V1 has no range inputs (its range is the attributes input_min/input_max: pass them in
        attrs) and takes num_bits as an attribute;
      * V3 takes num_bits as a scalar int32 input, V2/V4 as an attribute, V4Grad not at all;
      * V4Grad takes `gradients` (default: x).
    num_bits=None leaves num_bits out. `convert` (for example tf.constant) is applied to every
    tensor argument (x, mn, mx, gradients, V3's num_bits); attrs are added last, as given (a test of
    invalid inputs may pass anything)."""
    conv = convert or (lambda v: v)
    if op == "V1":
        kw = dict(input=conv(x))
        if num_bits is not None:
            kw["num_bits"] = num_bits
    else:
        kw = dict(input=conv(x), input_min=conv(mn), input_max=conv(mx))
        if op == "V4Grad":
            kw = dict(gradients=conv(x if gradients is None else gradients), **kw)
        elif op == "V3":
            if num_bits is not None:
                kw["num_bits"] = conv(np.asarray(num_bits, np.int32))
        elif num_bits is not None:
            kw["num_bits"] = num_bits
    kw.update(attrs)
    return kw


CHILDREN = os.path.join(ROOT, "tests", "children")


def run_child(program, *args, env=None, cwd=None, timeout=600, check=True):
    """Runs a Python child process and returns its CompletedProcess (text, stdout and stderr
    captured). `program`: a file of tests/children/ ("name.py"), a path to a .py file, or "-m" /
    "-c" followed by the module or code in args. `env` defaults to child_env() (the same tf_qdq
    as this process). With check=True a non-zero exit fails the test with the child's output."""
    import subprocess
    import sys

    if program.endswith(".py") and not os.path.dirname(program):
        program = os.path.join(CHILDREN, program)
    proc = subprocess.run(
        [sys.executable, program, *map(str, args)],
        env=child_env() if env is None else env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, (
            f"child {os.path.basename(program)} failed (rc {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


# ---- what differs between the supported TensorFlow versions (2.16 to 2.21) where tests pin a text
#
# Numbers in error messages: both TensorFlow's kernels and the plugin (compiled against the same
# headers) write them with TensorFlow's StrCat. From the version whose tsl/platform/strcat.h
# forwards to absl::StrCat (2.21 does) a float or double has six significant digits ("%g":
# 1.23457e+20); before (2.16 does) as many digits as it takes to read back as the same value
# (float 1.2345679e+20, double -1.234567891e+73). Which one the installed TensorFlow has is read
# from that header, without importing TensorFlow.


@functools.lru_cache(maxsize=None)
def strcat_is_absl() -> bool:
    """True when the installed TensorFlow's StrCat is absl::StrCat (six digits)."""
    spec = importlib.util.find_spec("tensorflow")
    root = os.path.dirname(spec.origin) if spec and spec.origin else ""
    header = os.path.join(root, "include", "tensorflow", "tsl", "platform", "strcat.h")
    try:
        with open(header, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return True  # no headers to read: the current behaviour
    return "FloatToBuffer(" not in text


def tf_number_text(value: float, dtype: type = np.float32) -> str:
    """`value` (as `dtype`, float32 or float64) as the installed TensorFlow writes it into a message."""
    v = dtype(value)
    if strcat_is_absl() or not np.isfinite(v):
        return "%g" % v
    for digits in range(6, 18):
        text = "%.*g" % (digits, v)
        if dtype(float(text)) == v:
            return text
    return "%.17g" % v


@functools.lru_cache(maxsize=None)
def half_cast_keeps_nan_payload() -> bool:
    """True when the installed TensorFlow's float32 -> float16 cast keeps a NaN's payload.

    TensorFlow has no CPU kernel for half QuantizeAndDequantize, so the tests' half reference
    is cast -> float32 built-in -> cast. TensorFlow 2.21's casts keep the payload's top bits
    (float32 0x7fc12345 -> half 0x7e09, as an F16C conversion does) and the plugin does the
    same; TensorFlow 2.16's write every NaN as 0x7e00 or 0xfe00 (sign kept). Where they do
    not keep it, half NaN payloads have no oracle; NaN-ness and sign still do.
    """
    import tensorflow as tf

    probe = np.array([0x7FC12345], np.uint32).view(np.float32)
    return int(tf.cast(probe, tf.float16).numpy().view(np.uint16)[0]) == 0x7E09
