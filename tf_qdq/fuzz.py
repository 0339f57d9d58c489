"""Property-based fuzzing of the tf_qdq ops with hypothesis (docs/semantics.md#validation and #bad-inputs).

    TF_CPP_MIN_LOG_LEVEL=2 python -m tf_qdq fuzz [--minutes N] [--seed S] [--graph-fraction F]
                                                 [--last-case PATH]

Every generated case (op, dtype, shape incl. empty dims, attrs, axis, min/max
shapes and values, num_bits, data with NaN/inf/subnormal/huge values, eager or
`tf.function` with known shapes) is first classified by an independent model of
the validation rules (`expected_errors`), then run through the plugin:

- an invalid case must raise the expected clean exception (InvalidArgumentError
  from a kernel, ValueError from a shape function or the wrapper, TypeError from
  the wrapper) whose message names the problem;
- a valid case must be bit-identical with TensorFlow's built-in op, through
  `tf_qdq.reference.builtin` (which applies the docs/semantics.md#differences-from-tensorflow references for
  half/bfloat16, V1 and per-channel given ranges), or, where TensorFlow has no
  answer, with the built-in op applied per channel slice (HALF_UP per-channel
  given ranges; NaN in the data with a computed range, docs/semantics.md#differences-from-tensorflow, item 4);
- the process never crashes (a crash ends the run; --last-case names the input).

The built-in op is only called on inputs that are valid for the plugin with
correctly shaped min/max, so never on the inputs that abort TensorFlow (V3 with
axis in [-dims, -2], V3 with a multi-element min and axis -1, V2/V4Grad with
wrong-rank min/max).

Arithmetic note: TensorFlow runs every kernel with denormals-are-zero and
flush-to-zero set (tsl::port::ScopedFlushDenormal), so do the plugin and the
built-in op; the validity model therefore compares ranges with subnormals read
as zero, and the references are TensorFlow ops, not NumPy.

The strategies live here (not in tests/) so that the installed package can run
the long profile; tests/test_fuzz.py runs the quick profile.
"""
import argparse
import dataclasses
import os
import sys
import time
import traceback

try:
    import hypothesis
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised without hypothesis installed
    hypothesis = None

import numpy as np
import tensorflow as tf

from tf_qdq import raw_ops, reference
from tf_qdq import ops as _api

MISSING_HYPOTHESIS = (
    "tf_qdq fuzz needs the 'hypothesis' package, an optional dependency: "
    "pip install hypothesis  (or pip install 'tf_qdq[test]')"
)

BFLOAT16 = tf.bfloat16.as_numpy_dtype
FLOAT_DTYPES = (np.float32, np.float64, np.float16, BFLOAT16)
NON_FLOAT_DTYPES = (np.int32, np.int64, np.uint8, np.bool_, np.complex64)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

OPS = {
    "V1": raw_ops.QuantizeAndDequantize,
    "V2": raw_ops.QuantizeAndDequantizeV2,
    "V3": raw_ops.QuantizeAndDequantizeV3,
    "V4": raw_ops.QuantizeAndDequantizeV4,
    "V4Grad": raw_ops.QuantizeAndDequantizeV4Grad,
    "qdq": _api.quantize_and_dequantize,  # wrapper, V2 op
    "qdq_v2": _api.quantize_and_dequantize_v2,  # wrapper, V4 op
}
WRAPPERS = {"qdq": "V2", "qdq_v2": "V4"}

# Values that stress the arithmetic: signed zeros, NaN, infinities, subnormals
# of every type (float32 1e-45, float64 5e-324, half 6e-8, bfloat16 1e-39),
# extreme magnitudes (1e-282 and 1e73 in float64; they overflow or flush in the
# narrower types), rounding ties and the integer-range boundaries.
SPECIAL_VALUES = (
    0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5,
    127.0, -128.0, 255.0, 0.49999997, 0.50390625,
    1e-45, -1e-45, 1e-40, 1e-39, 5e-324, -5e-324, 6e-8, -6e-8,
    1e-282, -1e-282, 1e73, -1e73, 3.4e38, -3.4e38, 1.7e308, 65504.0, -65504.0,
)


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


# ----------------------------------------------------------------------------- strategies


def _values(rng, n, dtype, p_special, scale):
    """n values: random normals times `scale`, a fraction replaced by specials."""
    v = rng.standard_normal(n) * scale
    if p_special > 0 and n:
        mask = rng.random(n) < p_special
        v[mask] = rng.choice(np.array(SPECIAL_VALUES), size=int(mask.sum()))
    with np.errstate(over="ignore", invalid="ignore"):
        return v.astype(dtype)


def _require_hypothesis():
    if hypothesis is None:
        raise ImportError(MISSING_HYPOTHESIS)


if hypothesis is not None:

    @st.composite
    def shapes(draw):
        """Rank 0..4, dims 0..6 (empty dims included), rarely one big tensor that
        spans several blocks of the CPU loops."""
        if draw(st.integers(0, 29)) == 0:
            return draw(st.sampled_from([(70000, 3), (3, 70000), (2, 40000, 2), (140001,), (5, 30011)]))
        rank = draw(st.integers(0, 4))
        return tuple(draw(st.lists(st.integers(0, 6) | st.just(1), min_size=rank, max_size=rank)))

    def _axis_choices(op, rank):
        valid = [-1] + list(range(rank))
        invalid = [-2, -100, INT32_MIN, INT32_MAX, rank, rank + 1, 10, 2**31]
        if op == "V3":
            invalid += [-d for d in range(2, rank + 1)]  # aborts TensorFlow
        if op in WRAPPERS:
            valid = [None] + list(range(-rank, rank))
            invalid = [-rank - 1, rank, 10, 2**31, 2**70]
        return valid, invalid

    @st.composite
    def cases(draw, graph_fraction=0.15):
        """A random Case: usually valid, often invalid in one way."""
        op = draw(st.sampled_from(["V2", "V2", "V3", "V4", "V4Grad", "V1", "qdq", "qdq_v2"]))
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
        if op in WRAPPERS and draw(st.integers(0, 19)) == 0:
            dtype = draw(st.sampled_from(NON_FLOAT_DTYPES))
        shape = draw(shapes())
        rank = len(shape)
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        p_special = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3, 1.0]))
        scale = draw(st.sampled_from([1.0, 1.0, 100.0, 1e-3, 1e-40, 1e30, 1e-300, 1e200]))
        n = int(np.prod(shape, dtype=np.int64))
        if dtype in NON_FLOAT_DTYPES:
            x = (rng.standard_normal(n) * 10).astype(dtype).reshape(shape)
        else:
            x = _values(rng, n, dtype, p_special, scale).reshape(shape)
        case = Case(op=op, dtype=dtype, x=x)
        case.graph = draw(st.floats(0, 1)) < graph_fraction

        attrs = case.attrs
        # axis
        if op != "V1":
            valid, invalid = _axis_choices(op, rank)
            if draw(st.integers(0, 9)) < 8:
                axis = draw(st.sampled_from(valid))
            else:
                axis = draw(st.sampled_from(invalid))
            attrs["axis"] = axis
        axis = attrs.get("axis", -1)
        eff_axis = -1 if axis is None else axis
        if op in WRAPPERS and axis is not None and -rank <= axis < 0:
            eff_axis = axis + rank
        depth = shape[eff_axis] if 0 <= eff_axis < rank else None

        # num_bits, signedness, rounding
        if op != "V4Grad":
            signed = draw(st.booleans())
            attrs["signed_input"] = signed
            if draw(st.integers(0, 9)) < 8:
                num_bits = draw(st.sampled_from([1, 2, 3, 4, 7, 8, 8, 8, 16, 23, 24, 32, 52, 53, 60, 61]
                                                + ([] if signed else [62])))
            else:
                num_bits = draw(st.sampled_from([0, -1, 62, 63, 64, 2**30, INT32_MIN, INT32_MAX]
                                                + ([2**31] if op != "V3" else [])))
            if op == "V3":
                nb_shape = draw(st.sampled_from([(), (), (), (), (0,), (2,), (1,), (1, 1)]))
                case.num_bits_tensor = np.full(nb_shape, num_bits, np.int32)
            else:
                attrs["num_bits"] = num_bits
            attrs["range_given"] = draw(st.booleans())
            if op != "V1":
                attrs["narrow_range"] = draw(st.booleans())
            if op in ("V2", "V4") or op in WRAPPERS:
                attrs["round_mode"] = draw(st.sampled_from(["HALF_TO_EVEN", "HALF_UP"]))

        # the range: V1 from float attrs, the others from tensors
        mm_dtype = dtype if dtype in FLOAT_DTYPES else np.float32

        def pair(k):
            style = draw(st.sampled_from(["sorted", "sorted", "sorted", "raw", "equal", "special"]))
            if style == "special":
                a = np.array([draw(st.sampled_from(SPECIAL_VALUES)) for _ in range(k)])
                b = np.array([draw(st.sampled_from(SPECIAL_VALUES)) for _ in range(k)])
                if draw(st.booleans()):
                    with np.errstate(invalid="ignore"):
                        a, b = np.fmin(a, b), np.fmax(a, b)
            else:
                a = rng.standard_normal(k) * scale
                b = rng.standard_normal(k) * scale
                if style == "sorted":
                    a, b = np.minimum(a, b), np.maximum(a, b)
                elif style == "equal":
                    b = a.copy()
            with np.errstate(over="ignore", invalid="ignore"):
                return a, b

        if op == "V1":
            a, b = pair(1)
            attrs["input_min"], attrs["input_max"] = float(a[0]), float(b[0])
        else:
            good = () if eff_axis == -1 or depth is None else (depth,)
            if draw(st.integers(0, 9)) < 8:
                mn_shape = mx_shape = good
            else:
                wrong = [(), (0,), (1,), (2,), (12,), (1, 1), ((depth or 0) + 1,), (1, depth or 1)]
                mn_shape = draw(st.sampled_from(wrong))
                mx_shape = mn_shape if draw(st.booleans()) else draw(st.sampled_from(wrong + [good]))
            k = max(int(np.prod(mn_shape, dtype=np.int64)), int(np.prod(mx_shape, dtype=np.int64)))
            a, b = pair(k)
            with np.errstate(over="ignore", invalid="ignore"):
                case.mn = a[: int(np.prod(mn_shape, dtype=np.int64))].astype(mm_dtype).reshape(mn_shape)
                case.mx = b[: int(np.prod(mx_shape, dtype=np.int64))].astype(mm_dtype).reshape(mx_shape)
            if op in WRAPPERS and draw(st.integers(0, 19)) == 0:
                case.minmax_as_tensor_dtype = draw(st.sampled_from(FLOAT_DTYPES))
        if op == "V4Grad":
            g_shape = shape if draw(st.integers(0, 9)) < 9 else draw(shapes())
            gn = int(np.prod(g_shape, dtype=np.int64))
            case.grads = _values(rng, gn, dtype, p_special, 1.0).reshape(g_shape)
        return case


# ----------------------------------------------------------------------------- validity model


def _compute_dtype(dtype):
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _daz(values, dtype):
    """Values as the kernel sees them: in the compute type, subnormals read as
    (signed) zero, as under TensorFlow's denormals-are-zero mode."""
    c = _compute_dtype(dtype)
    v = np.asarray(values).astype(c)
    tiny = np.finfo(c).tiny
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(v) < tiny, np.copysign(c(0), v), v)


def _range_ok(mn, mx, dtype):
    with np.errstate(invalid="ignore"):
        return bool(np.all(_daz(mn, dtype) <= _daz(mx, dtype)))


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
        if not _range_ok(lo, hi, np.float32):
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
        if not _range_ok(mn, mx, dtype):
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


def _kwargs(case):
    """(positional tensors, names, attrs, callable) for the plugin call."""
    op = case.op
    attrs = dict(case.attrs)
    if op in WRAPPERS:
        if case.minmax_as_tensor_dtype is not None:
            mn = tf.constant(np.asarray(case.mn).astype(case.minmax_as_tensor_dtype))
            mx = tf.constant(np.asarray(case.mx).astype(case.minmax_as_tensor_dtype))
            tensors = {"input": case.x, "input_min": mn, "input_max": mx}
        else:
            tensors = {"input": case.x, "input_min": case.mn, "input_max": case.mx}
        return tensors, attrs
    tensors = {"input": case.x}
    if op == "V4Grad":
        tensors = {"gradients": case.grads, "input": case.x}
    if op != "V1":
        tensors["input_min"] = case.mn
        tensors["input_max"] = case.mx
    if op == "V3":
        tensors["num_bits"] = case.num_bits_tensor
    return tensors, attrs


def run_plugin(case):
    """Runs the plugin on the case, eagerly or in a tf.function with known shapes."""
    tensors, attrs = _kwargs(case)
    fn = OPS[case.op]
    if case.op in WRAPPERS:
        call = lambda t: fn(t["input"], t["input_min"], t["input_max"], **attrs)  # noqa: E731
    else:
        call = lambda t: fn(**t, **attrs)  # noqa: E731
    if not case.graph:
        return call(tensors)
    names = list(tensors)
    as_tensors = [tf.convert_to_tensor(tensors[k]) if not tf.is_tensor(tensors[k]) else tensors[k] for k in names]
    if case.op in WRAPPERS and not tf.is_tensor(tensors["input_min"]):
        # The wrapper converts NumPy min/max itself (to the input's dtype).
        names, as_tensors = names[:1], as_tensors[:1]
        rest = {k: tensors[k] for k in ("input_min", "input_max")}
        graph_fn = tf.function(lambda *ts: call({**dict(zip(names, ts)), **rest}), autograph=False)
    else:
        graph_fn = tf.function(lambda *ts: call(dict(zip(names, ts))), autograph=False)
    return graph_fn(*as_tensors)


def _ambiguous_channels(v, dtype):
    """Per channel of the [outer, depth, inner] view v: True where the computed
    maximum is a zero-like value (zero, or subnormal read as zero) and the
    channel holds zero-like values of both signs, so that TensorFlow's choice
    of its sign (which decides the sign of zero outputs) depends on positions."""
    d = _daz(v, dtype)
    zero = d == 0  # False for NaN
    pos = np.any(zero & ~np.signbit(d), axis=(0, 2))
    neg = np.any(zero & np.signbit(d), axis=(0, 2))
    positive = np.any(d > 0, axis=(0, 2))
    return pos & neg & ~positive


def _channels(x, axis):
    """x viewed as [outer, depth, inner]."""
    if axis == -1:
        return x.reshape(1, 1, -1)
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(outer, x.shape[axis], -1)


def _reference_forward(case, op, axis):
    """(expected array or None, mask of elements to compare, NaN positions that
    must be NaN). None: the result is implementation-defined (a computed range
    whose maximum is a zero of either sign, TensorFlow picks one by position)."""
    a = case.attrs
    x = case.x
    dtype = case.dtype
    range_given = a.get("range_given", op == "V3")
    v = _channels(x, axis)
    depth = v.shape[1]
    compare = np.ones(v.shape, bool)
    if not range_given:
        compare[:, _ambiguous_channels(v, dtype), :] = False  # implementation-defined
    with np.errstate(over="ignore", invalid="ignore"):
        has_nan = bool(np.any(np.isnan(x.astype(np.float32))))
    kw = {"signed_input": a.get("signed_input", True), "range_given": range_given}
    if op == "V1":
        nb = a.get("num_bits", 8)
        kw.update(num_bits=nb, input_min=a["input_min"], input_max=a["input_max"])
        rm = "HALF_TO_EVEN"
        narrow = False
    else:
        nb = int(np.asarray(case.num_bits_tensor)) if op == "V3" else a.get("num_bits", 8)
        rm = a.get("round_mode", "HALF_TO_EVEN")
        narrow = a.get("narrow_range", False)
    shape_mm = () if axis == -1 else (depth,)
    if range_given:
        with np.errstate(over="ignore", invalid="ignore"):
            mn = np.asarray(case.mn if op != "V1" else np.float32(a["input_min"])).astype(dtype)
            mx = np.asarray(case.mx if op != "V1" else np.float32(a["input_max"])).astype(dtype)
    else:
        mn = np.zeros(shape_mm, dtype)
        mx = np.zeros(shape_mm, dtype)

    if op == "V1" and range_given and not _range_ok(mn, mx, dtype):
        # Valid in float32 (subnormals read as zero) but inverted in T: the
        # reference (V2 in T) rejects it. Only "no crash" is checked.
        return None, None, None
    per_slice = (has_nan and not range_given) or (range_given and axis != -1 and rm == "HALF_UP")
    if not per_slice:
        if op == "V1":
            ref = reference.builtin("V1", input=x, **kw)
        else:
            kw.update(input_min=mn, input_max=mx, num_bits=nb, narrow_range=narrow)
            if op != "V3":
                kw["round_mode"] = rm
            ref = reference.builtin(op, input=x, axis=axis, **kw)
        return _np(ref), compare.reshape(x.shape), None
    # Per channel slice with the per-tensor built-in V2 (same arithmetic, docs/semantics.md#arithmetic).
    out = np.zeros(v.shape, dtype)
    nan_mask = np.isnan(v.astype(np.float32))
    # At most 16 channels (the first and last 8) are checked: one built-in call each.
    checked = list(range(depth)) if depth <= 16 else list(range(8)) + list(range(depth - 8, depth))
    if depth > 16:
        compare[:, 8:depth - 8, :] = False
    for c in checked:
        s = v[:, c, :].copy()
        if s.size == 0:
            continue
        lo = np.asarray(mn).reshape(-1)[c] if axis != -1 else np.asarray(mn).reshape(())
        hi = np.asarray(mx).reshape(-1)[c] if axis != -1 else np.asarray(mx).reshape(())
        if not range_given:
            finite_or_inf = s[~nan_mask[:, c, :]]
            if finite_or_inf.size == 0:
                continue  # all NaN: only the NaN check applies
            # NaN is ignored by the range (docs/semantics.md#differences-from-tensorflow, item 4): replacing it by a value of
            # the channel leaves the range, hence every other output, unchanged.
            s[nan_mask[:, c, :]] = finite_or_inf.min()
        r = reference.builtin("V2", input=s, input_min=np.asarray(lo, dtype), input_max=np.asarray(hi, dtype),
                              signed_input=kw["signed_input"], range_given=range_given, num_bits=nb,
                              narrow_range=narrow, round_mode=rm)
        out[:, c, :] = _np(r)
    if not range_given:
        compare &= ~nan_mask
    return out.reshape(x.shape), compare.reshape(x.shape), nan_mask.reshape(x.shape) if not range_given else None


def _np(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _bits(a):
    a = np.ascontiguousarray(np.asarray(a))
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def check(case):
    """Runs one case and raises AssertionError on any contract violation.
    Returns 'ok' or 'error' (what the plugin did)."""
    with np.errstate(all="ignore"):
        return _check(case)


def _check(case):
    expect = expected_errors(case)
    try:
        result = run_plugin(case)
    except (tf.errors.OpError, ValueError, TypeError) as e:
        name = type(e).__name__
        msg = str(e)
        if expect is None:
            raise AssertionError(f"valid case raised {name}: {msg[:600]}\n{case.describe()}") from None
        exc, reasons = expect
        assert name == exc, f"expected {exc} ({sorted(reasons)}), got {name}: {msg[:600]}\n{case.describe()}"
        import re

        pats = [REASON_PATTERNS[r] for r in reasons]
        assert msg.strip() and any(re.search(p, msg) for p in pats), (
            f"{name} message does not name the problem ({sorted(reasons)}): {msg[:600]}\n{case.describe()}")
        return "error"
    if expect is not None:
        raise AssertionError(f"expected {expect[0]} ({sorted(expect[1])}) but the call succeeded\n{case.describe()}")
    op, axis = effective(case)
    x = case.x
    if op == "V4Grad":
        outs = [t.numpy() for t in result]
        assert outs[0].shape == x.shape and outs[0].dtype == x.dtype, case.describe()
        assert outs[1].shape == np.asarray(case.mn).shape and outs[2].shape == np.asarray(case.mx).shape, case.describe()
        assert not np.any(_bits(outs[1])) and not np.any(_bits(outs[2])), "min/max backprops must be +0\n" + case.describe()
        if x.size == 0:
            return "ok"
        ref = reference.builtin("V4Grad", gradients=case.grads, input=x, input_min=case.mn, input_max=case.mx,
                                axis=axis)
        _assert_same(outs[0], _np(ref[0]), None, None, case)
        return "ok"
    out = result.numpy()
    assert out.shape == x.shape and out.dtype == x.dtype, f"shape/dtype {out.shape} {out.dtype}\n{case.describe()}"
    if x.size == 0:
        return "ok"
    ref, compare, nan_mask = _reference_forward(case, op, axis)
    if ref is not None:
        _assert_same(out, ref, compare, nan_mask, case, nan_in=np.isnan(x.astype(np.float32)))
    return "ok"


def _assert_same(out, ref, compare, nan_mask, case, nan_in=None):
    ob, rb = _bits(out), _bits(ref.astype(out.dtype))
    diff = ob != rb
    # A NaN input meets a second NaN when the range makes the inverse scale NaN
    # (1-bit signed, maximum read as zero: 0/0): which payload and sign survive
    # a NaN-NaN multiply depends on the operand order the compiler picked, in
    # TensorFlow as here. docs/semantics.md#arithmetic, step 4 only says a NaN input stays NaN.
    if nan_in is not None:
        diff &= ~(nan_in & np.isnan(out.astype(np.float32)))
    if out.dtype == BFLOAT16:
        # TensorFlow's float32 -> bfloat16 cast (in the half/bfloat16 reference,
        # docs/semantics.md#differences-from-tensorflow, item 3) drops the sign of NaN in its vectorized path (8 at a time)
        # and keeps it in the scalar tail, so the reference's NaN bits depend on
        # the position. The plugin keeps the sign everywhere; NaN must match NaN.
        o32, r32 = out.astype(np.float32), ref.astype(np.float32)
        diff &= ~(np.isnan(o32) & np.isnan(r32))
    if compare is not None:
        diff &= compare
    if nan_mask is not None:
        assert np.all(np.isnan(out.astype(np.float32))[nan_mask]), "NaN input must give NaN\n" + case.describe()
    if np.any(diff):
        idx = np.flatnonzero(diff)[:5]
        detail = ", ".join(f"[{i}] x={case.x.flat[i]!r} got {out.flat[i]!r} want {ref.flat[i]!r}" for i in idx)
        raise AssertionError(f"{int(diff.sum())} of {out.size} elements differ in bits: {detail}\n{case.describe()}")


# ----------------------------------------------------------------------------- profiles


def quick_settings(max_examples=1000):
    """The profile of the normal test suite (1000 cases, ~15-30 s on 2 cores).

    Random cases on every local run (new inputs each time); the same cases in CI
    (environment variable CI set), so that a landing never depends on luck. The
    long profile (`python -m tf_qdq fuzz`) is where new inputs are explored."""
    _require_hypothesis()
    derandomize = os.environ.get("CI", "").lower() not in ("", "0", "false")
    return settings(max_examples=max_examples, deadline=None, derandomize=derandomize, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    print_blob=True)


def _fmt(seconds):
    m, s = divmod(int(seconds), 60)
    return f"{m:02d}:{s:02d}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tf_qdq fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first chunk (default random)")
    parser.add_argument("--chunk", type=int, default=200, help="cases per hypothesis run (default 200)")
    parser.add_argument("--graph-fraction", type=float, default=0.15,
                        help="fraction of cases run inside tf.function (default 0.15)")
    parser.add_argument("--last-case", default=None,
                        help="write each case here before running it, to name the input after a crash")
    parser.add_argument("--max-failures", type=int, default=20, help="stop after this many failures")
    args = parser.parse_args(argv)
    if hypothesis is None:
        print(MISSING_HYPOTHESIS, file=sys.stderr)
        return 2
    import faulthandler
    import random

    try:  # a crash prints the Python stack (and --last-case names the input)
        faulthandler.enable()
    except (ValueError, OSError, AttributeError):  # stderr without a file descriptor (captured)
        pass
    deadline = time.monotonic() + args.minutes * 60
    start = time.monotonic()
    stats = {"cases": 0, "ok": 0, "error": 0}
    failures = []
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    last_report = [start]

    def progress(force=False):
        now = time.monotonic()
        if force or now - last_report[0] >= 10:
            last_report[0] = now
            print(f"[fuzz {_fmt(now - start)}] {stats['cases']} cases ({stats['ok']} valid, "
                  f"{stats['error']} rejected cleanly), {len(failures)} failures", flush=True)

    @settings(max_examples=args.chunk, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=True)
    @hypothesis.given(case=cases(graph_fraction=args.graph_fraction))
    def one(case):
        if time.monotonic() > deadline:
            return
        if args.last_case:
            with open(args.last_case, "w") as f:
                f.write(case.describe() + "\n")
        what = check(case)
        stats["cases"] += 1
        stats[what] += 1
        progress()

    print(f"tf_qdq fuzz: {args.minutes:g} min, chunks of {args.chunk} cases, first seed {seed}", flush=True)
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        print("  (TensorFlow logs a warning for every rejected input: run with TF_CPP_MIN_LOG_LEVEL=2 to "
              "silence them)", flush=True)
    chunk = 0
    while time.monotonic() < deadline and len(failures) < args.max_failures:
        chunk_seed = seed + chunk
        chunk += 1
        try:
            hypothesis.seed(chunk_seed)(one)()
        except Exception as e:  # a contract violation, shrunk by hypothesis
            failures.append((chunk_seed, e))
            print(f"\n[fuzz] FAILURE #{len(failures)} (chunk seed {chunk_seed}):", flush=True)
            traceback.print_exception(type(e), e, e.__traceback__, limit=3)
            print(flush=True)
    progress(force=True)
    elapsed = time.monotonic() - start
    print(f"\ntf_qdq fuzz summary: {stats['cases']} cases in {_fmt(elapsed)} "
          f"({stats['cases'] / max(elapsed, 1e-9):.1f}/s): {stats['ok']} valid and bit-identical with the "
          f"reference, {stats['error']} rejected with the expected clean error, {len(failures)} failures.")
    for s, e in failures:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"  seed {s}: {first[:200]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
