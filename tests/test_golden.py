"""Every golden edge case (docs/semantics.md#edge-cases: outputs observed from
TensorFlow 2.21's built-in ops) as an explicit test with literal inputs and
expected outputs.

Expected values are written as observed (7-8 significant digits where not exact). Exact values (dyadic fractions
such as 38/128, 0.296875, the kernel tests' k/128) are compared exactly;
values the table prints with 7-8 significant digits (and the kernel tests' k/127,
k/255 fractions, which are not representable) are compared with float32(the
printed value) within 1 ulp. The sign of zero is always checked ("0" in the
table is +0.0). Where TensorFlow's built-in op runs, the plugin must also equal
its bits.
"""

import ctypes
import re

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import BUILTIN_OPS as BUILTIN
from qdq_testing import PLUGIN_OPS, assert_same_bits, op_kwargs

import tf_qdq
from tf_qdq import reference

nan, inf = float("nan"), float("inf")


def assert_golden(actual, expected, exact, dtype=np.float32, msg=""):
    """actual equals expected: NaN where NaN, same infinities, same sign of zero,
    finite values exactly (exact=True) or within 1 ulp of dtype(expected)."""
    a = actual.numpy() if hasattr(actual, "numpy") else np.asarray(actual)
    e = np.asarray(expected, dtype=np.float64)
    assert a.dtype == dtype, msg
    assert a.shape == e.shape, f"{msg}: shape {a.shape} != {e.shape}"
    a64 = a.astype(np.float64).ravel()
    for i, (got, want) in enumerate(zip(a64, e.ravel())):
        where = f"{msg}: element {i}: got {got!r}, expected {want!r}"
        if np.isnan(want):
            assert np.isnan(got), where
        elif np.isinf(want) or want == 0:
            assert got == want, where
            assert np.signbit(got) == np.signbit(want), where + " (sign of zero)"
        elif exact:
            assert got == want, where
        else:
            w = dtype(want)
            assert abs(dtype(got) - w) <= np.spacing(np.abs(w)), where + " (more than 1 ulp)"


def _run(op, x, mn, mx, dtype=np.float32, num_bits=8, **attrs):
    if op == "V3":
        attrs.pop("round_mode", None)
    kw = op_kwargs(op, x, mn, mx, num_bits=num_bits, convert=lambda v: tf.constant(v, dtype), **attrs)
    if op == "V3":
        kw["num_bits"] = tf.constant(num_bits, tf.int32)
    return PLUGIN_OPS[op](**kw), kw


def check_row(op, x, mn, mx, expected, exact, dtype=np.float32, also=(), builtin=True, **attrs):
    """Runs `op` (and the ops in `also`, which share its forward) on the plugin and
    compares with the golden values and, where TensorFlow runs, with the built-in."""
    outs = []
    for o in (op,) + tuple(also):
        out, kw = _run(o, x, mn, mx, dtype, **attrs)
        assert_golden(out, expected, exact, dtype, msg=f"plugin {o}")
        if builtin:
            ref = reference.builtin(o, **kw)
            assert ref is not None
            assert_same_bits(out, ref, f"plugin {o} vs built-in")
            assert_golden(ref, expected, exact, dtype, msg=f"built-in {o} (the observed value itself)")
        outs.append(out)
    return outs


# ============================================================================ table 1

SEVEN = [-1, -0.5, 0, 0.3, 0.8, 0.555, 0.50390625]


def test_v4_default():
    check_row(
        "V4",
        [-1, -0.5, 0, 0.3, 0.8, 0.555],
        0,
        0,
        [-1, -0.5, 0, 0.296875, 0.796875, 0.5546875],
        exact=True,
        also=("V2", "V3"),
        range_given=False,
    )


def test_v4_half_up():
    check_row(
        "V4",
        SEVEN,
        0,
        0,
        [-1, -0.5, 0, 0.296875, 0.796875, 0.5546875, 0.5078125],
        exact=True,
        also=("V2",),
        range_given=False,
        round_mode="HALF_UP",
    )


def test_v4_narrow_range():
    check_row(
        "V4",
        SEVEN,
        0,
        0,
        [-1, -0.503937, 0, 0.2992126, 0.8031496, 0.5511811, 0.503937],
        exact=False,
        also=("V2", "V3"),
        range_given=False,
        narrow_range=True,
    )


def test_v4_4_bits():
    check_row(
        "V4",
        [-1, -0.5, 0, 0.3125, 0.8, 0.555],
        0,
        0,
        [-1, -0.5, 0, 0.25, 0.75, 0.5],
        exact=True,
        also=("V2", "V3"),
        num_bits=4,
        range_given=False,
    )


def test_v4_4_bits_half_up():
    check_row(
        "V4",
        [-1, -0.5, 0, 0.3125, 0.8, 0.555],
        0,
        0,
        [-1, -0.5, 0, 0.375, 0.75, 0.5],
        exact=True,
        also=("V2",),
        num_bits=4,
        range_given=False,
        round_mode="HALF_UP",
    )


def test_v4_range_given_minus1_1():
    check_row(
        "V4",
        [-0.8, -0.5, 0, 0.3, 0.8, 0.555, -2, 33],
        -1,
        1,
        [-0.8031496, -0.503937, 0, 0.2992126, 0.8031496, 0.5511811, -1.007874, 1],
        exact=False,
        also=("V2", "V3"),
        range_given=True,
    )


def test_v4_range_given_output_outside_range():
    """docs/semantics.md#arithmetic consequence: -2 with range [-1, 1] gives -1.007874 (< -1), and 33 gives exactly 1."""
    (out,) = check_row("V4", [-2, 33], -1, 1, [-1.007874, 1], exact=False, range_given=True)
    assert out.numpy()[0] < -1 and out.numpy()[1] == 1


def test_v4_unsigned_0_1():
    check_row(
        "V4",
        [-0.5, 0, 0.3, 0.8],
        0,
        1,
        [0, 0, 0.29803923, 0.8000001],
        exact=False,
        also=("V2", "V3"),
        range_given=True,
        signed_input=False,
    )


def test_v4_unsigned_0_1_half_up():
    check_row(
        "V4",
        [-0.5, 0, 0.3, 0.8],
        0,
        1,
        [0, 0, 0.3019608, 0.8000001],
        exact=False,
        also=("V2",),
        range_given=True,
        signed_input=False,
        round_mode="HALF_UP",
    )


def test_v4_unsigned_negative_data_no_clamp():
    check_row(
        "V4",
        [1, 0.3, -0.6, -1],
        0,
        0,
        [1, 0.29803923, -0.6, -1],
        exact=False,
        also=("V2", "V3"),
        range_given=False,
        signed_input=False,
    )


def test_v4_signed_all_positive_data():
    check_row("V4", [1, 0.3], 0, 0, [1, 0.2992126], exact=False, also=("V2", "V3"), range_given=False)


def test_v4_all_zeros():
    check_row("V4", [0, 0, 0], 0, 0, [0, 0, 0], exact=True, also=("V2", "V3"), range_given=False)


def test_v4_single_element():
    check_row("V4", [-3.5], 0, 0, [-3.5], exact=True, also=("V2", "V3"), range_given=False)


def test_v4_range_0_0_given():
    """min = max = 0 gives ±0, never NaN."""
    check_row("V4", [1, -1, 0.5], 0, 0, [0, -0.0, 0], exact=True, also=("V2", "V3"), range_given=True)


def test_v4_range_minus1_0_given():
    check_row(
        "V4", [1, -0.5, -0.25, -1], -1, 0, [0.9921875, -0.5, -0.25, -1], exact=True, also=("V2", "V3"), range_given=True
    )


def test_v4_range_half_half_given():
    check_row(
        "V4",
        [1, 0.5, 0.25, -1],
        0.5,
        0.5,
        [0.5, 0.5, 0.2519685, -0.503937],
        exact=False,
        also=("V2", "V3"),
        range_given=True,
    )


def test_sign_of_zero_half_to_even():
    check_row(
        "V4", [-0.001, -0.0, 0.001, 1], 0, 0, [-0.0, -0.0, 0, 1], exact=True, also=("V2", "V3"), range_given=False
    )


def test_sign_of_zero_half_up():
    check_row(
        "V4",
        [-0.001, -0.0, 0.001, 1],
        0,
        0,
        [0.0, 0.0, 0.0, 1],
        exact=True,
        also=("V2",),
        range_given=False,
        round_mode="HALF_UP",
    )


def test_ties_half_to_even():
    check_row(
        "V4",
        [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 127],
        0,
        0,
        [-2, -2, -0.0, 0, 2, 2, 127],
        exact=True,
        also=("V2", "V3"),
        range_given=False,
    )


def test_ties_half_up():
    check_row(
        "V4",
        [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 127],
        0,
        0,
        [-2, -1, 0, 1, 2, 3, 127],
        exact=True,
        also=("V2",),
        range_given=False,
        round_mode="HALF_UP",
    )


def test_half_up_artifact():
    """floor(0.49999997f + 0.5f) = 1: the sum rounds to 1 first."""
    assert np.float32(0.49999997) < np.float32(0.5)
    check_row(
        "V4", [0.49999997, 127], 0, 0, [1, 127], exact=True, also=("V2",), range_given=False, round_mode="HALF_UP"
    )


def test_num_bits_1_signed():
    check_row(
        "V4", [1, 0.3, -0.6, -1], 0, 0, [1, 0, -1, -1], exact=True, also=("V2", "V3"), num_bits=1, range_given=False
    )


def test_num_bits_1_signed_narrow():
    check_row(
        "V4",
        [1, 0.3, -0.6, -1],
        0,
        0,
        [inf, inf, -inf, -inf],
        exact=True,
        also=("V2", "V3"),
        num_bits=1,
        range_given=False,
        narrow_range=True,
    )


def test_nan_inf_with_range_given():
    outs = check_row(
        "V4",
        [1, nan, 0.5, inf, -inf],
        -1,
        1,
        [1, nan, 0.503937, 1, -1.007874],
        exact=False,
        also=("V2", "V3"),
        range_given=True,
    )
    for out in outs:  # the input NaN propagates as is
        assert out.numpy().view(np.uint32)[1] == np.float32(nan).view(np.uint32)


def test_plus_inf_in_data_range_not_given():
    check_row("V4", [1, inf, 0.5], 0, 0, [nan, nan, nan], exact=True, also=("V2", "V3"), range_given=False)


def test_negative_only_data_unsigned():
    check_row(
        "V4",
        [-1, -0.5],
        0,
        0,
        [6.6722029e35, 3.3361014e35],
        exact=False,
        also=("V2", "V3"),
        range_given=False,
        signed_input=False,
    )


def test_per_channel_axis1_data_range():
    check_row(
        "V4",
        [[1, 0.5], [0.25, -1]],
        [0, 0],
        [0, 0],
        [[1, 0.5], [0.2519685, -1]],
        exact=False,
        also=("V2", "V3"),
        range_given=False,
        axis=1,
    )


def test_v3_per_channel_range_given():
    check_row(
        "V3",
        [[1, 0.5], [0.25, -1]],
        [-1, -0.5],
        [1, 0.5],
        [[1, 0.5], [0.2519685, -0.503937]],
        exact=False,
        range_given=True,
        axis=1,
    )
    # The plugin's V2/V4 accept the same call (docs/semantics.md#diff-per-channel-given-range; the built-ins reject it).
    check_row(
        "V2",
        [[1, 0.5], [0.25, -1]],
        [-1, -0.5],
        [1, 0.5],
        [[1, 0.5], [0.2519685, -0.503937]],
        exact=False,
        also=("V4",),
        range_given=True,
        axis=1,
    )


def test_v3_per_channel_min_above_max_is_invalid_argument():
    """The "unchecked" golden row is a deliberate difference (docs/semantics.md#diff-min-above-max): TensorFlow's V3
    returns ±inf garbage, the plugin returns InvalidArgument naming the channel."""
    x = tf.constant([[1, 0.5], [0.25, -1]], tf.float32)
    lo, hi = tf.constant([1.0, -1.0]), tf.constant([-1.0, 1.0])
    garbage = BUILTIN["V3"](input=x, input_min=lo, input_max=hi, num_bits=8, range_given=True, axis=1)
    assert_golden(garbage, [[-inf, 0.503937], [-inf, -1]], exact=False, msg="built-in V3 garbage")
    for op in ("V3", "V2", "V4"):
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=r"Invalid range: input_min 1 > input_max -1 for channel 0"
        ):
            _run(op, [[1, 0.5], [0.25, -1]], [1.0, -1.0], [-1.0, 1.0], range_given=True, axis=1)


def test_v2_float64():
    # The table prints the third value truncated (-0.700787402...): compared below to
    # 1e-9, and to 1 ulp of the full -89/127.
    (out,) = check_row(
        "V2",
        [1, 0.3, -0.7],
        0,
        0,
        [1, 0.2992125984251969, -89 / 127],
        exact=False,
        dtype=np.float64,
        also=(),
        range_given=False,
    )
    inv = np.float64(1) / np.float64(127)
    assert out.numpy()[1] == np.float64(38) * inv
    assert out.numpy()[2] == np.float64(-89) * inv
    assert abs(out.numpy()[2] - -0.700787402) < 1e-9


def _v4grad(grads, x, lo, hi, axis=-1, dtype=np.float32):
    kw = dict(
        gradients=tf.constant(grads, dtype),
        input=tf.constant(x, dtype),
        input_min=tf.constant(lo, dtype),
        input_max=tf.constant(hi, dtype),
        axis=axis,
    )
    out = PLUGIN_OPS["V4Grad"](**kw)
    ref = BUILTIN["V4Grad"](**kw)
    for o, r in zip(out, ref):
        assert_same_bits(o, r, "V4Grad vs built-in")
    return out


def test_v4grad():
    dx, dmin, dmax = _v4grad([1, 2, 3, 4], [-2, -1, 1, 2], -1.0, 1.0)
    assert_golden(dx, [0, 2, 3, 0], exact=True)
    assert_golden(dmin, 0.0, exact=True)
    assert_golden(dmax, 0.0, exact=True)


def test_v4grad_specials():
    dx, dmin, dmax = _v4grad([inf, 2, 3, nan, inf], [-2, -1, nan, 2, 0], -1.0, 1.0)
    assert_golden(dx, [nan, 2, 0, nan, inf], exact=True)
    assert_golden(dmin, 0.0, exact=True)
    assert_golden(dmax, 0.0, exact=True)


# ---------------------------------------------------------------------------- worked examples of a given range


@pytest.mark.parametrize("op", ["V2", "V3", "V4"])
def test_seed_example_range_minus10_5(op):
    """Signed 8 bit, range [-10, 5] given: the min side decides, scale = 128/10 = 12.8,
    step 10/128 = 0.078125, adjusted max 127 * 0.078125 = 9.921875."""
    (out,) = check_row(
        op, [20, 5, 1, -10, -20], -10, 5, [9.921875, 5.0, 1.015625, -10, -10], exact=True, range_given=True
    )
    assert out.numpy()[0] == np.float32(127 * 0.078125)


@pytest.mark.parametrize("op", ["V2", "V3", "V4"])
def test_seed_example_range_minus10_10(op):
    """Range [-10, 10]: the max side decides (scale 12.7), adjusted min -128 * 10/127 = -10.07874."""
    (out,) = check_row(op, [-20, 20, 10, -10], -10, 10, [-10.07874, 10, 10, -10], exact=False, range_given=True)
    step = np.float32(10) / np.float32(127)
    assert out.numpy()[0] == np.float32(-128) * step
    assert out.numpy()[1] == np.float32(127) * step


def test_seed_examples_through_python_api():
    x = tf.constant([20.0, -20.0])
    for fn in (tf_qdq.quantize_and_dequantize, tf_qdq.quantize_and_dequantize_v2):
        out = fn(x, -10.0, 5.0, range_given=True)
        assert_golden(out, [9.921875, -10], exact=True)
        out = fn(x, -10.0, 10.0, range_given=True)
        assert_golden(out, [10, -10.07874], exact=False)


# ============================================================================ table 2: TF kernel tests
# TensorFlow's C++ kernel tests of this op family (quantize_and_dequantize_op_test.cc), one
# test_tf_kernel_case_* per case, named after the original test.


def _rand_r_sequence(n, seed=123):
    """glibc rand_r(&seed) values, as the kernel test's ScalePerSliceAlongAxis draws them."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - non-glibc: any choice that covers every slice works
        return None
    s = ctypes.c_uint(seed)
    libc.rand_r.restype = ctypes.c_int
    return [libc.rand_r(ctypes.byref(s)) for _ in range(n)]


def scale_per_slice_along_axis(dims, axis, data):
    """The kernel test's tensor: values drawn from data (rand_r with seed 123),
    multiplied by (1 + index along axis), computed in float32."""
    out_size = int(np.prod(dims))
    minor = int(np.prod(dims[axis + 1 :])) if axis != -1 else out_size
    num_slices = 1 if axis == -1 else dims[axis]
    draws = _rand_r_sequence(out_size)
    data = np.asarray(data, np.float32)
    out = np.empty(out_size, np.float32)
    for i in range(out_size):
        k = (draws[i] if draws is not None else i) % len(data)
        out[i] = data[k] * np.float32((i // minor) % num_slices + 1)
    return out.reshape(dims)


def _kernel_test(op, dims, axis, expected_values, exact, **attrs):
    x = scale_per_slice_along_axis(dims, axis, SEVEN)
    expected = scale_per_slice_along_axis(dims, axis, expected_values)
    slices = 1 if axis == -1 else dims[axis]
    zeros = np.zeros(() if axis == -1 else (slices,), np.float32)
    min_t, max_t = tf.constant(zeros), tf.constant(zeros)
    kw = op_kwargs(op, tf.constant(x), min_t, max_t, signed_input=True, range_given=False, axis=axis, **attrs)
    out = PLUGIN_OPS[op](**kw)
    assert_golden(out, expected, exact, msg=f"{op} axis {axis}")
    assert_same_bits(out, BUILTIN[op](**kw), f"{op} axis {axis} vs built-in")
    # Inputs 1 and 2 unchanged.
    assert_same_bits(min_t, zeros)
    assert_same_bits(max_t, zeros)
    # Every slice holds -1 * (slice + 1), so each slice's step is (slice + 1) / 128 or / 127.
    moved = np.moveaxis(x, axis, 0).reshape(slices, -1) if axis != -1 else x.reshape(1, -1)
    assert [row.min() for row in moved] == [-(s + 1) for s in range(slices)]
    return out


def _f32_fractions(num, den):
    return [float(np.float64(n) / den) for n in num]


@pytest.mark.parametrize("op", ["V2", "V3"])
def test_tf_kernel_case_convert_scalar_tensor(op):
    min_t, max_t = tf.constant(0.0), tf.constant(0.0)
    kw = op_kwargs(op, tf.constant([-3.5]), min_t, max_t, signed_input=True, range_given=False)
    out = PLUGIN_OPS[op](**kw)
    assert_golden(out, [-3.5], exact=True)
    assert_same_bits(out, BUILTIN[op](**kw))
    assert min_t.numpy() == 0.0 and max_t.numpy() == 0.0


@pytest.mark.parametrize("axis", [-1, 1, 3])
def test_tf_kernel_case_convert_4d_tensor_with_int8(axis):
    _kernel_test("V2", [2, 3, 4, 5], axis, [-1, -0.5, 0, 38 / 128, 102 / 128, 71 / 128, 0.5], exact=True)


@pytest.mark.parametrize("axis", [-1, 1, 3])
def test_tf_kernel_case_convert_4d_tensor_with_int8_round_half_up(axis):
    _kernel_test(
        "V2",
        [5, 7, 11, 13],
        axis,
        [-1, -0.5, 0, 38 / 128, 102 / 128, 71 / 128, 65 / 128],
        exact=True,
        round_mode="HALF_UP",
    )


@pytest.mark.parametrize("axis", [-1, 1, 3])
def test_tf_kernel_case_convert_4d_tensor_with_int8_round_half_up_narrow_range(axis):
    _kernel_test(
        "V2",
        [2, 3, 4, 5],
        axis,
        [-1] + _f32_fractions([-63, 0, 38, 102, 70, 64], 127),
        exact=False,
        round_mode="HALF_UP",
        narrow_range=True,
    )


def test_tf_kernel_case_convert_1d_tensor_with_int8_v3():
    check_row(
        "V3",
        [-1, -0.5, 0, 0.3, 0.8, 0.555],
        0,
        0,
        [-1, -0.5, 0, 38 / 128, 102 / 128, 71 / 128],
        exact=True,
        range_given=False,
    )


@pytest.mark.parametrize("axis", [-1, 1, 3])
def test_tf_kernel_case_convert_4d_tensor_with_int8_narrow_range_v3(axis):
    _kernel_test(
        "V3", [2, 3, 4, 5], axis, [-1] + _f32_fractions([-64, 0, 38, 102, 70, 64], 127), exact=False, narrow_range=True
    )


@pytest.mark.parametrize("axis", [-1, 1, 3])
def test_tf_kernel_case_gradient_v4_op(axis):
    dims = [2, 3, 4, 5]
    grads = scale_per_slice_along_axis(dims, axis, [1, -2, -3, 4, 5, 6, -7, -8, -9, -10, 11])
    x = scale_per_slice_along_axis(dims, axis, [-1, -0.5, 0, 0.3, 0.8, 0.55, 0.6])
    slices = 1 if axis == -1 else dims[axis]
    hi = np.array([np.float32(0.8) + np.float32(i) * np.float32(0.4) for i in range(slices)], np.float32)
    lo = -hi
    minor = int(np.prod(dims[axis + 1 :])) if axis != -1 else int(np.prod(dims))
    flat_x, flat_g = x.ravel(), grads.ravel()
    expected = np.empty_like(flat_x)
    for i in range(flat_x.size):
        s = (i // minor) % slices
        # "grad where min <= x <= max, else 0"; the kernel computes a product
        # (docs/semantics.md#arithmetic), so a negative gradient masked out gives -0.0.
        expected[i] = flat_g[i] * np.float32(lo[s] <= flat_x[i] <= hi[s])
    if axis == -1:
        lo, hi = lo.reshape(()), hi.reshape(())
    dx, dmin, dmax = _v4grad(grads, x, lo, hi, axis=axis)
    assert_golden(dx, expected.reshape(dims), exact=True)
    assert 0 < np.count_nonzero(dx.numpy() == 0) < dx.numpy().size  # the mask does something
    assert_golden(dmin, np.zeros(lo.shape), exact=True)
    assert_golden(dmax, np.zeros(hi.shape), exact=True)


def test_tf_kernel_case_convert_1d_tensor_with_int4():
    check_row(
        "V2",
        [-1, -0.5, 0, 0.3125, 0.8, 0.555],
        0,
        0,
        [-1, -0.5, 0, 0.25, 0.75, 0.5],
        exact=True,
        num_bits=4,
        range_given=False,
    )


def test_tf_kernel_case_convert_1d_tensor_with_int4_round_half_up():
    check_row(
        "V2",
        [-1, -0.5, 0, 0.3125, 0.8, 0.555],
        0,
        0,
        [-1, -0.5, 0, 0.375, 0.75, 0.5],
        exact=True,
        num_bits=4,
        range_given=False,
        round_mode="HALF_UP",
    )


def test_tf_kernel_case_convert_1d_tensor_with_int4_v3():
    check_row(
        "V3",
        [-1, -0.5, 0, 0.3, 0.8, 0.555],
        0,
        0,
        [-1, -0.5, 0, 0.25, 0.75, 0.5],
        exact=True,
        num_bits=4,
        range_given=False,
    )


@pytest.mark.parametrize("op", ["V2", "V3"])
def test_tf_kernel_case_convert_2d_tensor_with_int8_range_given(op):
    x = np.array([-0.8, -0.5, 0, 0.3, 0.8, 0.555, -2, 33], np.float32).reshape(2, 4)
    exp = np.array(_f32_fractions([-102, -64, 0, 38, 102, 70, -128], 127) + [1.0]).reshape(2, 4)
    (out,) = check_row(op, x, -1, 1, exp, exact=False, range_given=True)
    assert out.numpy()[1, 3] == 1.0  # exactly 1


def test_tf_kernel_case_convert_2d_tensor_with_int8_range_given_round_half_up():
    x = np.array([-0.8, -0.5, 0, 0.3, 0.8, 0.555, -2, 33], np.float32).reshape(2, 4)
    exp = np.array(_f32_fractions([-102, -63, 0, 38, 102, 70, -128], 127) + [1.0]).reshape(2, 4)
    (out,) = check_row("V2", x, -1, 1, exp, exact=False, range_given=True, round_mode="HALF_UP")
    assert out.numpy()[1, 3] == 1.0


@pytest.mark.parametrize("op", ["V2", "V3"])
def test_tf_kernel_case_convert_4d_tensor_with_uint8_range_given(op):
    x = np.array([-0.5, 0, 0.3, 0.8], np.float32).reshape(2, 2, 1, 1)
    exp = np.array([0, 0] + _f32_fractions([76, 204], 255)).reshape(2, 2, 1, 1)
    check_row(op, x, 0, 1, exp, exact=False, range_given=True, signed_input=False)


def test_tf_kernel_case_convert_4d_tensor_with_uint8_range_given_round_half_up():
    x = np.array([-0.5, 0, 0.3, 0.8], np.float32).reshape(2, 2, 1, 1)
    exp = np.array([0, 0] + _f32_fractions([77, 204], 255)).reshape(2, 2, 1, 1)
    check_row("V2", x, 0, 1, exp, exact=False, range_given=True, signed_input=False, round_mode="HALF_UP")


@pytest.mark.parametrize("op", ["V2", "V3"])
def test_tf_kernel_case_convert_tensor_with_all_0(op):
    check_row(
        op,
        np.zeros((2, 2, 1, 1), np.float32),
        0,
        0,
        np.zeros((2, 2, 1, 1)),
        exact=True,
        range_given=False,
        signed_input=False,
    )


@pytest.mark.parametrize("op", ["V2", "V3", "V4"])
def test_tf_kernel_case_invalid_range_given(op):
    x = np.array([-0.5, 0, 0.3, 0.8], np.float32).reshape(2, 2, 1, 1)
    msg = "Invalid range: input_min 1 > input_max 0"
    with pytest.raises(tf.errors.InvalidArgumentError) as plugin_err:
        _run(op, x, 1.0, 0.0, range_given=True)
    assert msg in str(plugin_err.value)
    with pytest.raises(tf.errors.InvalidArgumentError) as builtin_err:
        kw = dict(
            input=tf.constant(x),
            input_min=tf.constant(1.0),
            input_max=tf.constant(0.0),
            range_given=True,
            num_bits=tf.constant(8) if op == "V3" else 8,
        )
        BUILTIN[op](**kw)
    assert msg in str(builtin_err.value)


def test_tf_kernel_case_invalid_axis_given_v3():
    x = np.array([-0.5, 0, 0.3, 0.8], np.float32).reshape(2, 2, 1, 1)
    kw = dict(
        input=tf.constant(x),
        input_min=tf.constant(1.0),
        input_max=tf.constant(0.0),
        num_bits=tf.constant(8),
        range_given=False,
        axis=-2147483648,
    )
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        PLUGIN_OPS["V3"](**kw)
    assert err.value.error_code == tf.errors.INVALID_ARGUMENT
    text = err.value.message
    assert re.search(r"Axis requested is larger than input dimensions.*", text), text
    assert "Axis: -2147483648 Input Dimensions: 4" in text
