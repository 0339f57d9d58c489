"""What differs between the supported TensorFlow versions (2.16 to 2.21) where tests pin a text.

Tests ask this module instead of assuming one TensorFlow version. It never imports
TensorFlow (tests/test_bad_inputs.py keeps TensorFlow out of its parent process).

Numbers in error messages: both TensorFlow's kernels and the plugin (compiled against
the same headers) write them with TensorFlow's StrCat. From the version whose
tsl/platform/strcat.h forwards to absl::StrCat (2.21 does) a float or double has six
significant digits ("%g": 1.23457e+20); before (2.16 does) as many digits as it takes
to read back as the same value (float 1.2345679e+20, double -1.234567891e+73). Which
one the installed TensorFlow has is read from that header.
"""
import functools
import importlib.util
import os

import numpy as np


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
