"""The deliberate differences from TensorFlow 2.21 (docs/semantics.md#differences-from-tensorflow), each pinned
with real values: what the plugin returns, what its reference is, and (where it
is safe to run) what TensorFlow's built-in op does instead."""

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import BFLOAT16, PLUGIN_OPS, assert_same_bits, op_kwargs

import tf_qdq
from tf_qdq import reference

ROUND_MODES = ["HALF_TO_EVEN", "HALF_UP"]


def _rng(*parts):
    import zlib

    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def _channel_ranges(rng, depth, dtype):
    lo = (-rng.uniform(0.2, 2.0, depth)).astype(dtype)
    hi = rng.uniform(0.2, 2.0, depth).astype(dtype)
    if depth > 2:
        lo[1], hi[1] = 0, rng.uniform(0.5, 1.5)  # [0, b]
        lo[2] = hi[2] = dtype(0.75)  # degenerate
    return lo, hi


def _with_specials(rng, x):
    flat = x.reshape(-1)
    if flat.size >= 8:
        pos = rng.permutation(flat.size)[:6]
        flat[pos] = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0], x.dtype)
    return x


# ============================================================================ 6.1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((6, 5), 0), ((6, 5), 1), ((3, 4, 5), 1), ((2, 3, 4, 3), 3), ((2, 3, 4, 3), 0)])
@pytest.mark.parametrize("round_mode", ROUND_MODES)
@pytest.mark.parametrize("op", ["V2", "V4"])
@pytest.mark.parametrize(
    "narrow,num_bits,signed", [(False, 8, True), (True, 8, True), (False, 4, False), (False, 16, True)]
)
def test_6_1_per_channel_given_range(dtype, shape, axis, round_mode, op, narrow, num_bits, signed):
    """Per-channel with range_given works for V2/V4: docs/semantics.md#arithmetic per channel (NumPy
    reference), bit-exact with built-in V3 for HALF_TO_EVEN; built-in V2/V4 reject it."""
    rng = _rng(dtype, shape, axis, round_mode, op, narrow, num_bits, signed)
    depth = shape[axis]
    lo, hi = _channel_ranges(rng, depth, dtype)
    x = _with_specials(rng, (rng.standard_normal(shape) * 1.5).astype(dtype))
    kw = dict(
        input=tf.constant(x),
        input_min=tf.constant(lo),
        input_max=tf.constant(hi),
        signed_input=signed,
        num_bits=num_bits,
        range_given=True,
        round_mode=round_mode,
        narrow_range=narrow,
        axis=axis,
    )
    out = PLUGIN_OPS[op](**kw)
    expected = reference.numpy_qdq(
        x,
        lo,
        hi,
        signed_input=signed,
        num_bits=num_bits,
        range_given=True,
        round_mode=round_mode,
        narrow_range=narrow,
        axis=axis,
    )
    assert_same_bits(out, expected, "vs numpy_qdq")
    # Each channel equals a per-tensor call with that channel's range (which
    # the built-in op accepts).
    moved_x = np.moveaxis(x, axis, 0)
    moved_out = np.moveaxis(out.numpy(), axis, 0)
    for c in range(depth):
        per_tensor = getattr(tf.raw_ops, f"QuantizeAndDequantize{op}")(
            input=tf.constant(np.ascontiguousarray(moved_x[c])),
            input_min=tf.constant(lo[c]),
            input_max=tf.constant(hi[c]),
            signed_input=signed,
            num_bits=num_bits,
            range_given=True,
            round_mode=round_mode,
            narrow_range=narrow,
        )
        assert_same_bits(moved_out[c], per_tensor, f"channel {c} vs built-in per-tensor")
    if round_mode == "HALF_TO_EVEN":
        v3 = tf.raw_ops.QuantizeAndDequantizeV3(
            input=kw["input"],
            input_min=kw["input_min"],
            input_max=kw["input_max"],
            num_bits=num_bits,
            signed_input=signed,
            range_given=True,
            narrow_range=narrow,
            axis=axis,
        )
        assert_same_bits(out, v3, "vs built-in V3")
    else:  # the rounding mode matters on this data (so HALF_UP is really applied)
        even = PLUGIN_OPS[op](**{**kw, "round_mode": "HALF_TO_EVEN"})
        assert not reference.same_bits(out, even)
    with pytest.raises(tf.errors.InvalidArgumentError):
        getattr(tf.raw_ops, f"QuantizeAndDequantize{op}")(**kw)


def test_6_1_python_api_per_channel_given_range():
    """The Python API accepts what tf.quantization rejects (TF >= 2.16)."""
    x = tf.constant([[1.0, 0.5], [0.25, -1.0], [-0.3, 0.45]])
    lo, hi = tf.constant([-1.0, -0.5]), tf.constant([1.0, 0.5])
    expected = [[1.0, 0.5], [0.2519685, -0.503937], [-0.2992126, 0.4488189]]
    for fn, tf_fn in (
        (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
        (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
    ):
        for axis in (1, -1):
            out = fn(x, lo, hi, range_given=True, axis=axis)
            np.testing.assert_array_max_ulp(out.numpy(), np.array(expected, np.float32), maxulp=1)
            ref = tf.raw_ops.QuantizeAndDequantizeV3(
                input=x, input_min=lo, input_max=hi, num_bits=8, range_given=True, axis=1
            )
            assert_same_bits(out, ref)
        with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
            tf_fn(x, lo, hi, range_given=True, axis=1)


# ============================================================================ 6.2


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (1, 2, 1, 3), (2, 2, 2, 2, 2)])
@pytest.mark.parametrize("range_given", [False, True])
def test_6_2_v3_axis_in_minus_dims_to_minus_2(shape, range_given):
    """TensorFlow aborts the process (CHECK in dim_size); the plugin returns
    InvalidArgument. (Never run through the built-in op.)"""
    dims = len(shape)
    x = tf.ones(shape)
    for axis in range(-dims, -1):
        d = shape[axis]
        kw = dict(
            input=x,
            input_min=tf.fill([d], -1.0),
            input_max=tf.fill([d], 1.0),
            num_bits=tf.constant(8),
            range_given=range_given,
            axis=axis,
        )
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"got {axis}") as err:
            PLUGIN_OPS["V3"](**kw)
        assert f"use {axis + dims}." in err.value.message  # suggests the equivalent axis
    # The equivalent non-negative axis works.
    out = PLUGIN_OPS["V3"](
        input=x,
        input_min=tf.fill([shape[0]], -1.0),
        input_max=tf.fill([shape[0]], 1.0),
        num_bits=tf.constant(8),
        range_given=range_given,
        axis=0,
    )
    assert_same_bits(out, np.ones(shape, np.float32))


@pytest.mark.parametrize(
    "min_shape,max_shape", [([2], []), ([], [3]), ([2], [2]), ([1], [1]), ([0], [0]), ([2, 2], [2, 2]), ([12], [12])]
)
def test_6_2_v3_non_scalar_range_with_axis_minus_1(min_shape, max_shape):
    """V3's default range_given=True with axis -1 and a non-scalar min or max: a
    CHECK failure (scalar<T>()) in TensorFlow, InvalidArgument in the plugin."""
    x = tf.constant([[0.5, -1.0, 2.0], [0.25, 1.5, -0.125]])
    lo = tf.fill(min_shape, -1.0)
    hi = tf.fill(max_shape, 1.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be a scalar"):
        PLUGIN_OPS["V3"](input=x, input_min=lo, input_max=hi, num_bits=tf.constant(8), axis=-1)
    # Scalars give the per-tensor result.
    out = PLUGIN_OPS["V3"](
        input=x, input_min=tf.constant(-1.0), input_max=tf.constant(1.0), num_bits=tf.constant(8), axis=-1
    )
    ref = tf.raw_ops.QuantizeAndDequantizeV3(
        input=x, input_min=tf.constant(-1.0), input_max=tf.constant(1.0), num_bits=8, axis=-1
    )
    assert_same_bits(out, ref)


# ============================================================================ 6.3

LOW_PRECISION = [np.float16, BFLOAT16]


def assert_same_bits_lp(actual, expected, msg=""):
    """assert_same_bits, except that for bfloat16 a NaN only has to be a NaN: the
    reference's float32 -> bfloat16 cast turns -NaN into +NaN in its 8-wide
    vector loop but not in its scalar tail (tf.cast of 7 -NaNs keeps the sign,
    of 8 does not), so the sign of a NaN is not defined by the reference."""
    a = actual.numpy() if hasattr(actual, "numpy") else np.asarray(actual)
    e = expected.numpy() if hasattr(expected, "numpy") else np.asarray(expected)
    if a.dtype == BFLOAT16 and e.dtype == BFLOAT16:
        a32, e32 = a.astype(np.float32), e.astype(np.float32)
        assert np.array_equal(np.isnan(a32), np.isnan(e32)), f"{msg}: NaN positions differ"
        keep = ~np.isnan(a32)
        assert_same_bits(a[keep], e[keep], msg)
    else:
        assert_same_bits(a, e, msg)


def _lp_case(rng, dtype, shape, axis, range_given, specials):
    x = (rng.standard_normal(shape) * 2.0).astype(np.float32)
    depth = 1 if axis == -1 else shape[axis]
    if range_given:
        lo, hi = _channel_ranges(rng, depth, np.float32)
        if specials:
            x = _with_specials(rng, x)
    else:
        lo = hi = np.zeros(depth, np.float32)
    if axis == -1:
        lo, hi = lo[0], hi[0]
    return x.astype(dtype), np.asarray(lo).astype(dtype), np.asarray(hi).astype(dtype)


_LP_GRID = [
    (dt, op, rg, rm, layout)
    for dt in LOW_PRECISION
    for op in ("V1", "V2", "V3", "V4")
    for rg in (False, True)
    for rm in ROUND_MODES
    for layout in ("pt", "pc")
    if not (op in ("V1", "V3") and rm == "HALF_UP") and not (op == "V1" and layout == "pc")
]


@pytest.mark.parametrize(
    "p", _LP_GRID, ids=[f"{np.dtype(p[0]).name}-{p[1]}-{'rg' if p[2] else 'data'}-{p[3]}-{p[4]}" for p in _LP_GRID]
)
def test_6_3_half_and_bfloat16_forward(p):
    """half/bfloat16 = cast(builtin(cast(x, f32), cast(min, f32), cast(max, f32)), T), bit-exact."""
    dtype, op, rg, rm, layout = p
    rng = _rng(*p)
    shape, axis = ((40,), -1) if layout == "pt" else ((4, 6, 5), 1)
    x, lo, hi = _lp_case(rng, dtype, shape, axis, rg, specials=True)
    if op == "V1":
        kw = op_kwargs(
            op, tf.constant(x), num_bits=5, signed_input=True, range_given=rg, input_min=float(lo), input_max=float(hi)
        )
    else:
        extra = {} if op == "V3" else dict(round_mode=rm)
        kw = op_kwargs(
            op,
            x,
            lo,
            hi,
            num_bits=6,
            convert=tf.constant,
            signed_input=True,
            range_given=rg,
            narrow_range=False,
            axis=axis,
            **extra,
        )
    out = PLUGIN_OPS[op](**kw)
    assert out.dtype == tf.as_dtype(dtype)
    expected = reference.builtin(op, **kw)
    if expected is None:  # per-channel given range with HALF_UP: no built-in
        expected = reference.numpy_qdq(x, lo, hi, num_bits=6, range_given=True, round_mode=rm, axis=axis)
        # Spelled out: docs/semantics.md#arithmetic in float32, then rounded to T.
        f32 = reference.numpy_qdq(
            x.astype(np.float32),
            lo.astype(np.float32),
            hi.astype(np.float32),
            num_bits=6,
            range_given=True,
            round_mode=rm,
            axis=axis,
        )
        assert_same_bits_lp(expected, f32.astype(dtype))
    assert_same_bits_lp(out, expected, f"{p}")
    # NaN exactly where the input is NaN (given ranges clamp the infinities).
    assert np.all(np.isnan(out.numpy().astype(np.float32)) == np.isnan(x.astype(np.float32)))


@pytest.mark.parametrize("dtype", LOW_PRECISION)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_6_3_half_and_bfloat16_v4grad(dtype, axis):
    rng = _rng("grad", dtype, axis)
    shape = (5, 7)
    x = (rng.standard_normal(shape) * 1.5).astype(dtype)
    g = (rng.standard_normal(shape)).astype(dtype)
    g[0, 0], g[1, 1], x[2, 2] = np.inf, np.nan, np.nan
    depth = 1 if axis == -1 else shape[axis]
    lo = (-rng.uniform(0.3, 1.5, depth)).astype(dtype)
    hi = rng.uniform(0.3, 1.5, depth).astype(dtype)
    if axis == -1:
        lo, hi = lo[0], hi[0]
    ch3 = {-1: 0, 0: 0, 1: 3}[axis]  # the channel of flat element 3 = x[0, 3]
    x[0, 3] = np.asarray(lo).reshape(-1)[ch3]  # exactly at a bound
    kw = dict(
        gradients=tf.constant(g), input=tf.constant(x), input_min=tf.constant(lo), input_max=tf.constant(hi), axis=axis
    )
    out = PLUGIN_OPS["V4Grad"](**kw)
    expected = reference.builtin("V4Grad", **kw)
    for o, e in zip(out, expected):
        assert o.dtype == tf.as_dtype(dtype)
        assert_same_bits_lp(o, e)
    assert out[0].numpy().reshape(-1)[3] == g.reshape(-1)[3]  # inclusive bound


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_6_3_builtin_has_no_low_precision_kernel(dtype):
    x = tf.constant([0.3, -1.0, 0.7], dtype)
    z = tf.constant(0.0, dtype)
    with pytest.raises(tf.errors.NotFoundError):
        tf.raw_ops.QuantizeAndDequantizeV2(input=x, input_min=z, input_max=z)
    with pytest.raises(tf.errors.NotFoundError):
        tf.raw_ops.QuantizeAndDequantizeV3(input=x, input_min=z, input_max=z, num_bits=8, range_given=False)
    with pytest.raises(tf.errors.NotFoundError):
        tf.raw_ops.QuantizeAndDequantizeV4(input=x, input_min=z, input_max=z)
    with pytest.raises(tf.errors.NotFoundError):
        tf.raw_ops.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=z, input_max=z)
    # The plugin runs, with the documented value: -1 -> -1, 0.3 -> 38/127-ish rounded to T.
    out = PLUGIN_OPS["V2"](input=x, input_min=z, input_max=z)
    f32 = tf.raw_ops.QuantizeAndDequantizeV2(input=tf.cast(x, tf.float32), input_min=0.0, input_max=0.0)
    assert_same_bits(out, tf.cast(f32, dtype))
    assert out.numpy()[1] == -1


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_6_3_double_rounding_is_the_reference(dtype):
    """The float32 result is rounded to T once more: the plugin equals that, not an
    arithmetic done in T."""
    rng = _rng("double-rounding", dtype)
    x = rng.uniform(-3, 3, 4096).astype(dtype)
    out = PLUGIN_OPS["V2"](
        input=x, input_min=tf.constant(-2.5, dtype), input_max=tf.constant(2.9, dtype), range_given=True, num_bits=10
    )
    f32 = tf.raw_ops.QuantizeAndDequantizeV2(
        input=x.astype(np.float32),
        input_min=np.float32(dtype(-2.5)),
        input_max=np.float32(dtype(2.9)),
        range_given=True,
        num_bits=10,
    )
    assert_same_bits(out, f32.numpy().astype(dtype))
    # With 10 bits, T cannot represent every float32 level: rounding really happens.
    assert np.any(f32.numpy() != out.numpy().astype(np.float32))


# ============================================================================ 6.4


def _replace_nan_in_channel(x, axis):
    """x with each NaN replaced by a non-NaN value of its own channel (which leaves
    the channel's min and max unchanged)."""
    y = np.array(x, copy=True)
    moved = np.moveaxis(y, axis, 0) if axis != -1 else y.reshape(1, -1)
    for c in range(moved.shape[0]):
        ch = moved[c]
        nan = np.isnan(ch)
        if nan.any():
            ch[nan] = ch[~nan][0]
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize(
    "op,round_mode",
    [("V2", "HALF_TO_EVEN"), ("V2", "HALF_UP"), ("V4", "HALF_TO_EVEN"), ("V4", "HALF_UP"), ("V3", "HALF_TO_EVEN")],
)
def test_6_4_nan_per_tensor_range_ignores_nan(dtype, round_mode, signed, op):
    rng = _rng("nan-pt", dtype, round_mode, signed, op)
    for n, nan_pos in ((9, [0]), (9, [8]), (9, [3, 4]), (131, [0, 64, 130]), (70001, [1, 40000, 70000])):
        x = (rng.standard_normal(n) * 3).astype(dtype)
        x[nan_pos] = np.nan
        attrs = dict(signed_input=signed, range_given=False)
        if op == "V3":
            attrs["num_bits"] = tf.constant(7)
        else:
            attrs.update(num_bits=7, round_mode=round_mode)
        z = tf.constant(0, dtype)
        out = PLUGIN_OPS[op](input=tf.constant(x), input_min=z, input_max=z, **attrs).numpy()
        clean = x[~np.isnan(x)]
        out_clean = PLUGIN_OPS[op](input=tf.constant(clean), input_min=z, input_max=z, **attrs)
        builtin_clean = getattr(tf.raw_ops, f"QuantizeAndDequantize{op}")(
            input=tf.constant(clean), input_min=z, input_max=z, **attrs
        )
        assert_same_bits(out_clean, builtin_clean)
        assert np.isnan(out[nan_pos]).all()
        assert_same_bits(out[~np.isnan(x)], builtin_clean, f"n={n} NaN at {nan_pos}")
        assert not np.isnan(out[~np.isnan(x)]).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,axis", [((4, 9), 0), ((4, 9), 1), ((3, 5, 4), 1), ((2, 3, 70), 2), ((3, 40000), 0), ((300, 257), 1)]
)
def test_6_4_nan_per_channel_range_ignores_nan(dtype, shape, axis):
    rng = _rng("nan-pc", dtype, shape, axis)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    flat = x.reshape(-1)
    nan_pos = rng.permutation(flat.size)[: max(3, flat.size // 50)]
    flat[nan_pos] = np.nan
    x.flat[0] = np.nan  # the first element (of channel 0, for any axis)
    depth = shape[axis]
    z = tf.zeros([depth], dtype)
    nan = np.isnan(x)
    for op, rm in (("V2", "HALF_TO_EVEN"), ("V4", "HALF_UP"), ("V3", None)):
        attrs = dict(range_given=False, axis=axis)
        if op == "V3":
            attrs["num_bits"] = tf.constant(8)
        else:
            attrs.update(num_bits=8, round_mode=rm)
        out = PLUGIN_OPS[op](input=tf.constant(x), input_min=z, input_max=z, **attrs).numpy()
        filled = _replace_nan_in_channel(x, axis)
        ref = getattr(tf.raw_ops, f"QuantizeAndDequantize{op}")(
            input=tf.constant(filled), input_min=z, input_max=z, **attrs
        ).numpy()
        assert np.isnan(out[nan]).all()
        assert_same_bits(out[~nan], ref[~nan], f"{op} non-NaN elements")
        np_ref = reference.numpy_qdq(x, range_given=False, round_mode=rm or "HALF_TO_EVEN", axis=axis)
        assert_same_bits(out, np_ref, f"{op} vs numpy_qdq")


def test_6_4_all_nan_channel_stays_nan():
    x = np.array([[np.nan, 1.0], [np.nan, -0.5], [np.nan, 0.25]], np.float32)
    out = PLUGIN_OPS["V2"](input=x, input_min=tf.zeros([2]), input_max=tf.zeros([2]), axis=1).numpy()
    assert np.isnan(out[:, 0]).all()
    ref = tf.raw_ops.QuantizeAndDequantizeV2(input=x[:, 1:], input_min=tf.zeros([1]), input_max=tf.zeros([1]), axis=1)
    assert_same_bits(out[:, 1:], ref)
    out = PLUGIN_OPS["V2"](input=np.full(5, np.nan, np.float32), input_min=0.0, input_max=0.0).numpy()
    assert np.isnan(out).all()


# ============================================================================ 6.5


def _grads(fn, x, lo, hi, upstream, **kw):
    with tf.GradientTape() as tape:
        tape.watch([x, lo, hi])
        y = fn(x, lo, hi, **kw)
    return y, tape.gradient(y, [x, lo, hi], output_gradients=upstream)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_6_5_v4_gradient_range_not_given_passes_through(dtype):
    rng = _rng("6.5", dtype.name)
    x_np = (rng.standard_normal(50) * 2 + 0.1).astype(dtype.as_numpy_dtype)
    x_np = x_np[x_np != 0]  # an exact 0 would pass TF's [0, 0] mask
    x_np[7] = np.nan
    x = tf.constant(x_np)
    up = tf.constant(rng.standard_normal(x_np.size).astype(dtype.as_numpy_dtype))
    lo, hi = tf.constant(0, dtype), tf.constant(0, dtype)
    y, (dx, dlo, dhi) = _grads(tf_qdq.quantize_and_dequantize_v2, x, lo, hi, up)
    ok = ~np.isnan(x_np)
    assert_same_bits(dx.numpy()[ok], up.numpy()[ok], "passes through")
    assert dlo is not None and dhi is not None
    assert_same_bits(dlo, np.zeros((), dtype.as_numpy_dtype))
    assert_same_bits(dhi, np.zeros((), dtype.as_numpy_dtype))
    # TensorFlow masks against the placeholder [0, 0]: zero gradients.
    x_clean = tf.constant(np.where(ok, x_np, 1.0).astype(dtype.as_numpy_dtype))
    _, (tf_dx, _, _) = _grads(tf.quantization.quantize_and_dequantize_v2, x_clean, lo, hi, up)
    assert np.all(tf_dx.numpy() == 0)


def test_6_5_v4_gradient_range_not_given_per_channel():
    rng = _rng("6.5pc")
    x_np = (rng.standard_normal((6, 4)) + 0.05).astype(np.float32)
    x = tf.constant(x_np)
    up = tf.constant(rng.standard_normal((6, 4)).astype(np.float32))
    lo = hi = tf.zeros([4])
    _, (dx, dlo, dhi) = _grads(tf_qdq.quantize_and_dequantize_v2, x, lo, hi, up, axis=1)
    assert_same_bits(dx, up)
    assert_same_bits(dlo, np.zeros(4, np.float32))
    _, (tf_dx, _, _) = _grads(tf.quantization.quantize_and_dequantize_v2, x, lo, hi, up, axis=1)
    assert np.all(tf_dx.numpy() == 0)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("round_mode", ROUND_MODES)
def test_6_5_v4_gradient_range_given_bit_exact(dtype, round_mode):
    rng = _rng("6.5rg", dtype.name, round_mode)
    x_np = (rng.standard_normal(64) * 1.5).astype(dtype.as_numpy_dtype)
    x_np[:4] = [-1.25, 0.75, np.nan, -0.0]  # both bounds exactly, NaN, -0
    x = tf.constant(x_np)
    up = rng.standard_normal(64).astype(dtype.as_numpy_dtype)
    up[4:7] = [np.inf, -np.inf, np.nan]
    up = tf.constant(up)
    lo, hi = tf.constant(-1.25, dtype), tf.constant(0.75, dtype)
    y, grads = _grads(tf_qdq.quantize_and_dequantize_v2, x, lo, hi, up, range_given=True, round_mode=round_mode)
    y_tf, grads_tf = _grads(
        tf.quantization.quantize_and_dequantize_v2, x, lo, hi, up, range_given=True, round_mode=round_mode
    )
    assert_same_bits(y, y_tf)
    for g, g_tf, name in zip(grads, grads_tf, ("input", "input_min", "input_max")):
        assert g_tf is not None
        assert_same_bits(g, g_tf, f"d{name}")
    dx = grads[0].numpy()
    assert dx[0] == up.numpy()[0] and dx[1] == up.numpy()[1]  # inclusive bounds
    inside = (x_np >= -1.25) & (x_np <= 0.75)
    assert np.all(dx[~inside & np.isfinite(up.numpy())] == 0)


# ============================================================================ 6.6


def _second_derivative(fn, x):
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            f = fn(x)
        g = inner.gradient(f, x)
    return g, outer.gradient(g, x)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_6_6_second_order_gradients(dtype):
    x = tf.constant([-2.0, -1.0, -0.5, 0.3, 1.0, 1.5], dtype)
    lo, hi = tf.constant(-1.0, dtype), tf.constant(1.0, dtype)
    mask = np.array([0, 1, 1, 1, 1, 0], dtype.as_numpy_dtype)

    def f_v4(x):
        return tf.reduce_sum(tf_qdq.quantize_and_dequantize_v2(x, lo, hi, range_given=True) * x)

    g, h = _second_derivative(f_v4, x)
    q = tf_qdq.quantize_and_dequantize_v2(x, lo, hi, range_given=True)
    # d/dx sum(q(x) x) = mask * x + q(x);  d2/dx2 (diagonal sum) = 2 * mask.
    assert_same_bits(g, (mask * x.numpy() + q.numpy()).astype(dtype.as_numpy_dtype))
    assert_same_bits(h, (2 * mask).astype(dtype.as_numpy_dtype))

    def f_sq(x):
        return tf.reduce_sum(tf.square(tf_qdq.quantize_and_dequantize_v2(x, lo, hi, range_given=True)))

    g, h = _second_derivative(f_sq, x)
    assert_same_bits(g, (2 * q.numpy() * mask).astype(dtype.as_numpy_dtype))
    assert_same_bits(h, (2 * mask).astype(dtype.as_numpy_dtype))

    # Straight-through V2 API: d2/dx2 sum(q(x) x) = 2 everywhere.
    def f_v2(x):
        return tf.reduce_sum(tf_qdq.quantize_and_dequantize(x, lo, hi, range_given=True) * x)

    _, h = _second_derivative(f_v2, x)
    assert_same_bits(h, np.full(6, 2, dtype.as_numpy_dtype))

    # Range computed from the data: the V4 mask passes everything.
    def f_data(x):
        return tf.reduce_sum(tf_qdq.quantize_and_dequantize_v2(x, lo, hi) * x)

    _, h = _second_derivative(f_data, x)
    assert_same_bits(h, np.full(6, 2, dtype.as_numpy_dtype))

    # TensorFlow's own V4Grad gradient raises.
    def f_tf(x):
        return tf.reduce_sum(tf.quantization.quantize_and_dequantize_v2(x, lo, hi, range_given=True) * x)

    with pytest.raises(TypeError):
        _second_derivative(f_tf, x)


def test_6_6_v4grad_gradient_direct():
    """The gradient of V4Grad itself: linear in `gradients` (masked), zero elsewhere."""
    g = tf.constant([1.0, 2.0, 3.0, 4.0])
    x = tf.constant([-2.0, -1.0, 1.0, 2.0])
    lo, hi = tf.constant(-1.0), tf.constant(1.0)
    w = tf.constant([10.0, 20.0, 30.0, 40.0])
    with tf.GradientTape() as tape:
        tape.watch([g, x, lo, hi])
        dx, _, _ = PLUGIN_OPS["V4Grad"](gradients=g, input=x, input_min=lo, input_max=hi)
        loss = tf.reduce_sum(dx * w)
    dg, dxx, dlo, dhi = tape.gradient(loss, [g, x, lo, hi])
    assert_same_bits(dg, np.array([0, 20, 30, 0], np.float32))
    assert_same_bits(dxx, np.zeros(4, np.float32))
    assert_same_bits(dlo, np.float32(0))
    assert_same_bits(dhi, np.float32(0))


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_6_6_forward_accumulator_jvp(dtype, axis):
    """JVP of V4 = tangent * mask (= the VJP of ones times the tangent)."""
    rng = _rng("jvp", dtype.name, axis)
    x_np = (rng.standard_normal((5, 4)) * 1.5).astype(dtype.as_numpy_dtype)
    t_np = rng.standard_normal((5, 4)).astype(dtype.as_numpy_dtype)
    if axis is None:
        lo_np, hi_np = np.asarray(-1.0, x_np.dtype), np.asarray(0.8, x_np.dtype)
        mask = (x_np >= lo_np) & (x_np <= hi_np)
    else:
        d = x_np.shape[axis]
        lo_np = (-rng.uniform(0.5, 1.5, d)).astype(x_np.dtype)
        hi_np = rng.uniform(0.5, 1.5, d).astype(x_np.dtype)
        shape = [1, 1]
        shape[axis] = d
        mask = (x_np >= lo_np.reshape(shape)) & (x_np <= hi_np.reshape(shape))
    assert 0 < mask.sum() < mask.size
    x, t = tf.constant(x_np), tf.constant(t_np)
    lo, hi = tf.constant(lo_np), tf.constant(hi_np)
    with tf.autodiff.ForwardAccumulator(x, t) as acc:
        y = tf_qdq.quantize_and_dequantize_v2(x, lo, hi, range_given=True, axis=axis)
    jvp = acc.jvp(y)
    assert_same_bits(jvp, t_np * mask.astype(x_np.dtype))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y2 = tf_qdq.quantize_and_dequantize_v2(x, lo, hi, range_given=True, axis=axis)
    vjp = tape.gradient(y2, x)
    assert_same_bits(jvp, vjp.numpy() * t_np)
    # Straight-through API: JVP = tangent.
    with tf.autodiff.ForwardAccumulator(x, t) as acc:
        y = tf_qdq.quantize_and_dequantize(x, lo, hi, range_given=True, axis=axis)
    assert_same_bits(acc.jvp(y), t_np)
    if axis is None:  # TensorFlow's V4 forward-mode raises
        with pytest.raises(TypeError):
            with tf.autodiff.ForwardAccumulator(x, t) as acc:
                y = tf.quantization.quantize_and_dequantize_v2(x, lo, hi, range_given=True)
            acc.jvp(y)


# ============================================================================ 6.7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "signed,num_bits,range_given,lo,hi",
    [
        (True, 8, False, 0.0, 0.0),
        (True, 8, True, -1.0, 1.0),
        (False, 8, True, 0.0, 1.0),
        (True, 4, True, -10.0, 5.0),
        (True, 1, False, 0.0, 0.0),
        (False, 62, False, 0.0, 0.0),
        (True, 61, True, -0.3, 0.1),
        (True, 8, True, 0.0, 0.0),
    ],
)
def test_6_7_v1_runs_and_equals_builtin_v2(dtype, signed, num_bits, range_given, lo, hi):
    rng = _rng("v1", dtype, signed, num_bits, range_given)
    x = tf.constant(
        _with_specials(rng, (rng.standard_normal(30) * 2).astype(dtype))
        if range_given
        else (rng.standard_normal(30) * 2).astype(dtype)
    )
    out = PLUGIN_OPS["V1"](
        input=x, signed_input=signed, num_bits=num_bits, range_given=range_given, input_min=lo, input_max=hi
    )
    # V1's attrs are float32: the reference range is float32(attr) cast to T.
    lo_t = tf.cast(tf.constant(lo, tf.float32), dtype)
    hi_t = tf.cast(tf.constant(hi, tf.float32), dtype)
    ref = tf.raw_ops.QuantizeAndDequantizeV2(
        input=x, input_min=lo_t, input_max=hi_t, signed_input=signed, num_bits=num_bits, range_given=range_given
    )
    assert_same_bits(out, ref)


def test_6_7_builtin_v1_is_removed():
    x = tf.constant([0.3, -1.0])
    with pytest.raises(tf.errors.UnimplementedError, match="removed in version 22"):
        tf.raw_ops.QuantizeAndDequantize(input=x)
    out = PLUGIN_OPS["V1"](input=x)
    np.testing.assert_array_equal(out.numpy(), np.float32([38, -128]) * (np.float32(1) / np.float32(128)))


def test_6_7_v1_attr_range_checked():
    with pytest.raises(tf.errors.InvalidArgumentError, match="Invalid range: input_min 1 > input_max 0"):
        PLUGIN_OPS["V1"](input=tf.constant([0.5]), range_given=True, input_min=1.0, input_max=0.0)


# ============================================================================ 6.8


@pytest.mark.parametrize("op", ["V2", "V3", "V4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BFLOAT16])
@pytest.mark.parametrize("axis,bad", [(0, 2), (1, 0), (1, 4)])
def test_6_8_per_channel_min_above_max_is_invalid_argument(op, dtype, axis, bad):
    shape = (3, 5)
    depth = shape[axis]
    lo = np.full(depth, -1.0, dtype)
    hi = np.full(depth, 1.0, dtype)
    lo[bad], hi[bad] = 0.5, 0.25
    x = tf.constant(np.linspace(-1, 1, 15).reshape(shape).astype(dtype))
    kw = dict(input=x, input_min=tf.constant(lo), input_max=tf.constant(hi), range_given=True, axis=axis)
    kw["num_bits"] = tf.constant(8) if op == "V3" else 8
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=rf"Invalid range: input_min 0\.5 > input_max 0\.25 for channel {bad}\b"
    ) as err:
        PLUGIN_OPS[op](**kw)
    assert f"axis {axis}" in err.value.message
    # Fixing that channel makes the call valid.
    hi[bad] = 0.75
    out = PLUGIN_OPS[op](**{**kw, "input_max": tf.constant(hi)})
    assert out.shape == shape


@pytest.mark.parametrize("op", ["V2", "V3", "V4"])
def test_6_8_nan_channel_bound_is_invalid_argument(op):
    x = tf.constant([[0.5, -1.0], [0.25, 1.5]])
    lo, hi = tf.constant([-1.0, np.nan]), tf.constant([1.0, 1.0])
    kw = dict(input=x, input_min=lo, input_max=hi, range_given=True, axis=1)
    kw["num_bits"] = tf.constant(8) if op == "V3" else 8
    with pytest.raises(tf.errors.InvalidArgumentError, match="for channel 1"):
        PLUGIN_OPS[op](**kw)


def test_6_8_builtin_v3_returns_garbage_instead():
    """What TensorFlow does for the same call (documents the gap)."""
    x = tf.constant([[1, 0.5], [0.25, -1]])
    lo, hi = tf.constant([1.0, -1.0]), tf.constant([-1.0, 1.0])
    out = tf.raw_ops.QuantizeAndDequantizeV3(
        input=x, input_min=lo, input_max=hi, num_bits=8, range_given=True, axis=1
    ).numpy()
    assert np.isneginf(out[:, 0]).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="for channel 0"):
        PLUGIN_OPS["V3"](input=x, input_min=lo, input_max=hi, num_bits=tf.constant(8), range_given=True, axis=1)
