"""The reference side of the fuzzer: runs a `Case` through the plugin (eagerly or in a
`tf.function` with known shapes) and checks it against the validity model (the expected clean
error) or, for a valid case, bit for bit against TensorFlow's built-in op through
`tf_qdq.reference.builtin`, or the built-in op applied per channel slice where TensorFlow has no
answer. `check(case)` raises AssertionError on any contract violation."""

import re

import numpy as np
import tensorflow as tf

from tf_qdq import ops as _api
from tf_qdq import raw_ops, reference
from tools.fuzz.model import (
    BFLOAT16,
    REASON_PATTERNS,
    WRAPPERS,
    effective,
    expected_errors,
    flush_denormals,
    range_is_valid,
)

OPS = {
    **raw_ops.BY_VERSION,
    "qdq": _api.quantize_and_dequantize,  # wrapper, V2 op
    "qdq_v2": _api.quantize_and_dequantize_v2,  # wrapper, V4 op
}


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
    d = flush_denormals(v, dtype)
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

    if op == "V1" and range_given and not range_is_valid(mn, mx, dtype):
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
        compare[:, 8 : depth - 8, :] = False
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
            # NaN is ignored by the range (docs/semantics.md#diff-nan-in-data): replacing it by a value of
            # the channel leaves the range, hence every other output, unchanged.
            s[nan_mask[:, c, :]] = finite_or_inf.min()
        r = reference.builtin(
            "V2",
            input=s,
            input_min=np.asarray(lo, dtype),
            input_max=np.asarray(hi, dtype),
            signed_input=kw["signed_input"],
            range_given=range_given,
            num_bits=nb,
            narrow_range=narrow,
            round_mode=rm,
        )
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
        pats = [REASON_PATTERNS[r] for r in reasons]
        assert msg.strip() and any(re.search(p, msg) for p in pats), (
            f"{name} message does not name the problem ({sorted(reasons)}): {msg[:600]}\n{case.describe()}"
        )
        return "error"
    if expect is not None:
        raise AssertionError(f"expected {expect[0]} ({sorted(expect[1])}) but the call succeeded\n{case.describe()}")
    op, axis = effective(case)
    x = case.x
    if op == "V4Grad":
        outs = [t.numpy() for t in result]
        assert outs[0].shape == x.shape and outs[0].dtype == x.dtype, case.describe()
        assert outs[1].shape == np.asarray(case.mn).shape and outs[2].shape == np.asarray(case.mx).shape, (
            case.describe()
        )
        assert not np.any(_bits(outs[1])) and not np.any(_bits(outs[2])), (
            "min/max backprops must be +0\n" + case.describe()
        )
        if x.size == 0:
            return "ok"
        ref = reference.builtin(
            "V4Grad", gradients=case.grads, input=x, input_min=case.mn, input_max=case.mx, axis=axis
        )
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
        # docs/semantics.md#diff-half-bfloat16) drops the sign of NaN in its vectorized path (8 at a time)
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
