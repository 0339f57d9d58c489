"""The independent model of the validation rules (docs/semantics.md#validation and #bad-inputs).

`expected_errors(case)` says, from the rules alone and without running anything, whether the
plugin must accept a `Case` or which clean exception it must raise, and `REASON_PATTERNS` what its
message must name. TensorFlow runs every kernel with denormals-are-zero set, so the range checks
compare with subnormals read as zero.
"""

import dataclasses

import numpy as np
import tensorflow as tf

BFLOAT16 = tf.bfloat16.as_numpy_dtype
FLOAT_DTYPES = (np.float32, np.float64, np.float16, BFLOAT16)
NON_FLOAT_DTYPES = (np.int32, np.int64, np.uint8, np.bool_, np.complex64)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# The Python wrappers and the raw op each runs.
WRAPPERS = {"qdq": "V2", "qdq_v2": "V4"}


@dataclasses.dataclass
class Case:
    """One fuzz input. Arrays are NumPy; `None` min/max means "not passed"."""

    op: str
    dtype: object
    x: np.ndarray
    grads: object = None  # V4Grad
    mn: object = None  # V2/V3/V4/V4Grad input_min (array), V1/wrapper: see attrs
    mx: object = None
    num_bits_tensor: object = None  # V3
    attrs: dict = dataclasses.field(default_factory=dict)
    minmax_as_tensor_dtype: object = None  # wrapper: pass min/max as tensors of this dtype
    graph: bool = False  # inside tf.function with fully known shapes

    def describe(self):
        def arr(a):
            if a is None:
                return "None"
            a = np.asarray(a)
            if a.size <= 16:
                return f"{a.dtype.name}{list(a.shape)} {a.ravel().tolist()}"
            return f"{a.dtype.name}{list(a.shape)} (first {a.ravel()[:6].tolist()})"

        parts = [f"op={self.op}", f"graph={self.graph}", f"x={arr(self.x)}"]
        if self.grads is not None:
            parts.append(f"gradients={arr(self.grads)}")
        if self.mn is not None or self.mx is not None:
            parts += [f"input_min={arr(self.mn)}", f"input_max={arr(self.mx)}"]
        if self.num_bits_tensor is not None:
            parts.append(f"num_bits={arr(self.num_bits_tensor)}")
        if self.minmax_as_tensor_dtype is not None:
            parts.append(f"min/max as {np.dtype(self.minmax_as_tensor_dtype).name} tensors")
        parts.append(f"attrs={self.attrs}")
        return "Case(" + ", ".join(parts) + ")"


def _compute_dtype(dtype):
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def flush_denormals(values, dtype):
    """Values as the kernel sees them: in the compute type, subnormals read as
    (signed) zero, as under TensorFlow's denormals-are-zero mode."""
    c = _compute_dtype(dtype)
    v = np.asarray(values).astype(c)
    tiny = np.finfo(c).tiny
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(v) < tiny, np.copysign(c(0), v), v)


def range_is_valid(mn, mx, dtype):
    """min <= max everywhere, compared as the kernel compares them (subnormals as zero)."""
    with np.errstate(invalid="ignore"):
        return bool(np.all(flush_denormals(mn, dtype) <= flush_denormals(mx, dtype)))


def _num_bits_ok(nb, signed):
    return 0 < nb < (62 if signed else 63)


REASON_PATTERNS = {
    "dtype": r"bfloat16, float16, float32 or float64|has dtype|DataType|allowed values",
    "attr_int32": r"out of range for an int32|must fit in int32",
    "num_bits": r"num_bits|Shape must be rank 0 but is rank",
    "axis": r"(?i)axis|rank",
    "range": r"Invalid range",
    "minmax_shape": r"input_min|input_max|min has|max has|Input min|Input max|rank|Dimension|Shapes",
    "grad_shape": r"gradient and input must be the same size|Dimension|rank|Shapes",
}


def effective(case):
    """(raw op name, axis as the kernel sees it) after the wrapper's
    normalization, or raises the wrapper's error as ("TypeError"|"ValueError", reason)."""
    op, attrs, rank = case.op, case.attrs, case.x.ndim
    if op not in WRAPPERS:
        return op, attrs.get("axis", -1)
    if np.dtype(case.dtype) not in [np.dtype(d) for d in FLOAT_DTYPES]:
        raise _Expect("TypeError", "dtype")
    if case.minmax_as_tensor_dtype is not None and np.dtype(case.minmax_as_tensor_dtype) != np.dtype(case.dtype):
        raise _Expect("TypeError", "dtype")
    axis = attrs.get("axis")
    if axis is None:
        return WRAPPERS[op], -1
    if not INT32_MIN <= axis <= INT32_MAX:
        raise _Expect("ValueError", "attr_int32")
    if axis < 0:
        if axis < -rank:
            raise _Expect("ValueError", "axis")
        axis += rank
    return WRAPPERS[op], axis


class _Expect(Exception):
    def __init__(self, exc, reason):
        super().__init__(exc, reason)
        self.exc, self.reason = exc, reason


def _shape_fn_errors(case, op, axis):
    """Reasons the shape function rejects a graph with these static shapes."""
    if op == "V1":
        return set()
    if not INT32_MIN <= axis <= INT32_MAX:
        return {"attr_int32"}
    errs = set()
    mn, mx = np.asarray(case.mn), np.asarray(case.mx)
    data = case.x
    minmax_rank = 0 if axis == -1 else 1
    if mn.ndim != minmax_rank:
        return {"minmax_shape"}
    if mx.shape != mn.shape:
        return {"minmax_shape"}
    if axis < -1:
        return {"axis"}
    if axis != -1:
        if axis >= INT32_MAX or data.ndim < axis + 1:
            return {"axis"}
        if mn.shape[0] != data.shape[axis]:
            return {"minmax_shape"}
    if op == "V3" and np.asarray(case.num_bits_tensor).ndim != 0:
        errs.add("num_bits")
    if op == "V4Grad" and case.grads.shape != data.shape:
        errs.add("grad_shape")
    return errs


def _kernel_errors(case, op, axis):
    """Reasons the kernel rejects the case (constructor or Compute)."""
    a, x, dtype = case.attrs, case.x, case.dtype
    dims = x.ndim
    # Constructor: attrs (an int attr beyond int32 fails GetAttr), num_bits.
    errs = set()
    if not INT32_MIN <= axis <= INT32_MAX:
        errs.add("attr_int32")
    if op != "V3" and op != "V4Grad":
        nb = a.get("num_bits", 8)
        if not INT32_MIN <= nb <= INT32_MAX:
            errs.add("attr_int32")
        elif not _num_bits_ok(nb, a.get("signed_input", True)):
            errs.add("num_bits")
    if op == "V1" and not errs and a.get("range_given"):
        # V1 compares its float attrs (in float32, under denormals-are-zero).
        with np.errstate(over="ignore"):
            lo, hi = np.float32(a["input_min"]), np.float32(a["input_max"])
        if not range_is_valid(lo, hi, np.float32):
            errs.add("range")
    if errs or op == "V1":
        return errs
    if op == "V3":
        if not (-dims <= axis < dims) or axis < -1:
            return {"axis"}
        nbt = np.asarray(case.num_bits_tensor)
        if nbt.ndim != 0:
            return {"num_bits"}
        if not _num_bits_ok(int(nbt), a.get("signed_input", True)):
            return {"num_bits"}
    elif op != "V4Grad" and (axis < -1 or (axis != -1 and axis >= dims)):
        return {"axis"}
    mn, mx = np.asarray(case.mn), np.asarray(case.mx)
    if op == "V4Grad":
        if case.grads.shape != x.shape:
            return {"grad_shape"}
        if axis < -1 or (axis != -1 and axis >= dims):
            return {"axis"}
        if mn.ndim > 1 or mx.ndim > 1:
            return {"minmax_shape"}
        if axis == -1:
            return set() if mn.ndim == 0 and mx.ndim == 0 else {"minmax_shape"}
        depth = x.shape[axis]
        ok = mn.shape == (depth,) and mx.shape == (depth,)
        return set() if ok else {"minmax_shape"}
    if a.get("range_given", op == "V3"):
        if axis == -1:
            if mn.ndim != 0 or mx.ndim != 0:
                return {"minmax_shape"}
        else:
            depth = x.shape[axis]
            if mn.shape != (depth,) or mx.shape != (depth,):
                return {"minmax_shape"}
        if not range_is_valid(mn, mx, dtype):
            return {"range"}
    return set()


def expected_errors(case):
    """None if the plugin must accept the case, else (exception class name,
    set of reasons, one of whose REASON_PATTERNS the message must match)."""
    try:
        op, axis = effective(case)
    except _Expect as e:
        return e.exc, {e.reason}
    if case.graph:
        errs = _shape_fn_errors(case, op, axis)
        if errs:
            return "ValueError", errs
    errs = _kernel_errors(case, op, axis)
    if errs:
        return "InvalidArgumentError", errs
    return None


# ----------------------------------------------------------------------------- running
