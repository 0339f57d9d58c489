"""Test oracles, never used by the ops: what the plugin's output must equal.

`builtin(...)` runs TensorFlow's built-in op where it defines the result, with
the references of docs/semantics.md#differences-from-tensorflow where the plugin deliberately differs (half
and bfloat16 through float32; V1 through V2; per-channel given ranges through
V3). `numpy_qdq(...)` is an independent NumPy implementation of docs/semantics.md#arithmetic.
"""

import numpy as np
import tensorflow as tf

_FLOAT32_COMPUTED = (tf.bfloat16, tf.float16)


def _np(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _constant(v, dtype):
    """v as a tensor of dtype. Python numbers go through NumPy: TensorFlow's
    eager cache of scalar constants is keyed by value, so tf.constant(-0.0)
    after tf.constant(0.0) returns +0.0."""
    if tf.is_tensor(v):
        return tf.convert_to_tensor(v, dtype)
    return tf.convert_to_tensor(np.asarray(v, dtype.as_numpy_dtype))


def builtin(op, **kw):
    """The built-in op's (or, where the plugin deliberately differs, the documented reference's) result for plugin raw op `op`
    ('V1', 'V2', 'V3', 'V4', 'V4Grad') called with raw-op keywords `kw`.
    Returns None where no built-in defines the result (per-channel given range
    with HALF_UP: use numpy_qdq)."""
    kw = dict(kw)
    if op == "V4Grad":
        dtype = tf.as_dtype(kw["input"].dtype)
        if dtype in _FLOAT32_COMPUTED:
            cast = {k: tf.cast(kw[k], tf.float32) for k in ("gradients", "input", "input_min", "input_max")}
            out = tf.raw_ops.QuantizeAndDequantizeV4Grad(axis=kw.get("axis", -1), **cast)
            return [tf.cast(o, dtype) for o in out]
        return list(tf.raw_ops.QuantizeAndDequantizeV4Grad(**kw))
    x = tf.convert_to_tensor(kw.pop("input"))
    dtype = x.dtype
    if op == "V1":
        lo = tf.cast(_constant(kw.pop("input_min", 0.0), tf.float32), dtype)
        hi = tf.cast(_constant(kw.pop("input_max", 0.0), tf.float32), dtype)
        kw.update(input_min=lo, input_max=hi)
        op = "V2"
    lo = _constant(kw.pop("input_min"), dtype)
    hi = _constant(kw.pop("input_max"), dtype)
    if dtype in _FLOAT32_COMPUTED:
        x, lo, hi = (tf.cast(t, tf.float32) for t in (x, lo, hi))
    axis = kw.get("axis", -1)
    range_given = kw.get("range_given", op == "V3")
    if op in ("V2", "V4") and range_given and axis != -1:
        if kw.pop("round_mode", "HALF_TO_EVEN") != "HALF_TO_EVEN":
            return None
        num_bits = kw.pop("num_bits", 8)
        out = tf.raw_ops.QuantizeAndDequantizeV3(input=x, input_min=lo, input_max=hi, num_bits=num_bits, **kw)
    else:
        fn = {
            "V2": tf.raw_ops.QuantizeAndDequantizeV2,
            "V3": tf.raw_ops.QuantizeAndDequantizeV3,
            "V4": tf.raw_ops.QuantizeAndDequantizeV4,
        }[op]
        out = fn(input=x, input_min=lo, input_max=hi, **kw)
    return tf.cast(out, dtype) if dtype in _FLOAT32_COMPUTED else out


def integer_range(num_bits, signed_input, narrow_range):
    if signed_input:
        return -(1 << (num_bits - 1)) + (1 if narrow_range else 0), (1 << (num_bits - 1)) - 1
    return 0, (1 << num_bits) - 1


def numpy_qdq(
    x,
    input_min=0.0,
    input_max=0.0,
    signed_input=True,
    num_bits=8,
    range_given=False,
    round_mode="HALF_TO_EVEN",
    narrow_range=False,
    axis=-1,
):
    """docs/semantics.md#arithmetic in NumPy (one IEEE operation at a time, no FMA).

    x is a NumPy array of float16/bfloat16/float32/float64; half and bfloat16
    compute in float32 and round the result to their type (docs/semantics.md#diff-half-bfloat16)."""
    x = np.asarray(x)
    if x.size == 0:
        return x.copy()
    c = np.float64 if x.dtype == np.float64 else np.float32
    shape = x.shape
    if axis == -1:
        v = x.reshape(1, 1, -1)
    else:
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        v = x.reshape(outer, shape[axis], -1)
    v = v.astype(c)
    depth = v.shape[1]
    qmin, qmax = (c(q) for q in integer_range(num_bits, signed_input, narrow_range))
    if range_given:
        mn = np.broadcast_to(np.asarray(input_min).astype(x.dtype).astype(c), (depth,))
        mx = np.broadcast_to(np.asarray(input_max).astype(x.dtype).astype(c), (depth,))
    else:
        mn = np.empty(depth, c)
        mx = np.empty(depth, c)
        for ch in range(depth):
            d = v[:, ch, :].ravel()
            d = d[~np.isnan(d)]
            mn[ch] = d.min() if d.size else c(np.inf)
            mx[ch] = d.max() if d.size else c(-np.inf)
            if mn[ch] == 0:  # sign of a zero minimum: -0.0 if the channel holds one
                mn[ch] = c(-0.0) if np.any((d == 0) & np.signbit(d)) else c(0.0)
            if mx[ch] == 0:  # sign of a zero maximum: +0.0 if the channel holds one
                mx[ch] = c(0.0) if np.any((d == 0) & ~np.signbit(d)) else c(-0.0)
    out = np.empty_like(v)
    big = np.finfo(c).max
    with np.errstate(all="ignore"):
        for ch in range(depth):
            lo, hi = c(mn[ch]), c(mx[ch])
            s_min = qmin / lo if qmin * lo > 0 else c(big)
            s_max = qmax / hi if qmax * hi > 0 else c(big)
            if s_min < s_max:
                scale, inv = c(s_min), c(lo / qmin)
                hi = c(qmax * inv)
            else:
                scale, inv = c(s_max), c(hi / qmax)
                lo = c(qmin * inv)
            y = v[:, ch, :]
            if range_given:
                y = np.where(hi < y, hi, y)
                y = np.where(y < lo, lo, y)
            y = (y * scale).astype(c)
            r = np.rint(y) if round_mode == "HALF_TO_EVEN" else np.floor((y + c(0.5)).astype(c))
            out[:, ch, :] = (r * inv).astype(c)
    return out.astype(x.dtype).reshape(shape)


def same_bits(a, b):
    """True when a and b have the same shape and bit patterns (so -0.0 != +0.0,
    and NaN payloads count)."""
    a, b = _np(a), _np(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.array_equal(np.ascontiguousarray(a).view(u), np.ascontiguousarray(b).view(u))


def count_differing(a, b):
    a, b = _np(a), _np(b)
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return int(np.count_nonzero(np.ascontiguousarray(a).view(u) != np.ascontiguousarray(b).view(u)))
