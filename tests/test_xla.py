"""The XLA kernels (kernels/qdq_xla.cc, docs/xla.md): under tf.function(jit_compile=True)
on XLA_CPU every op gives the bits of the plugin's own CPU kernel, for every dtype and
mode; bad inputs fail at compile time with the kernels' messages; gradients compile;
a process that used XLA before importing tf_qdq still compiles the ops."""

import itertools
import re

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import ALL_DTYPES, assert_same_bits, run_child, strcat_is_absl

import tf_qdq
from tf_qdq import reference

raw = tf_qdq.raw_ops
SHAPE = (3, 4, 5)  # per-channel along axis 1: 4 channels
AXES = (-1, 1)

# Where an older TensorFlow's XLA does not give the CPU kernel's bits (docs/xla.md#older-tensorflow-versions):
# per TensorFlow minor version, the tests that fail there and why. They are expected to fail (strictly:
# one that passes on its version fails the run, so no entry outlives the difference).
_GIVEN = "per-tensor given range: one ulp in some outputs"
_SUBNORMAL = "subnormal data and results are not flushed as on the CPU kernel"
XLA_INEXACT = {
    "2.16": {
        "test_forward_grid_matches_cpu_kernel[-1-float32]": _GIVEN,
        "test_forward_grid_matches_cpu_kernel[-1-float64]": _GIVEN,
        "test_subnormals_flush_as_on_the_cpu_kernel[float32]": _SUBNORMAL,
        "test_subnormals_flush_as_on_the_cpu_kernel[float64]": _SUBNORMAL,
        "test_subnormals_flush_as_on_the_cpu_kernel[bfloat16]": _SUBNORMAL,
        "test_v4grad_matches_cpu_kernel[bfloat16]": _SUBNORMAL,
    },
    "2.17": {
        "test_forward_grid_matches_cpu_kernel[-1-float32]": _GIVEN,
        "test_forward_grid_matches_cpu_kernel[-1-float64]": _GIVEN,
        "test_subnormals_flush_as_on_the_cpu_kernel[float32]": _SUBNORMAL,
        "test_subnormals_flush_as_on_the_cpu_kernel[float64]": _SUBNORMAL,
    },
    "2.18": {
        "test_forward_grid_matches_cpu_kernel[-1-float32]": _GIVEN,
        "test_forward_grid_matches_cpu_kernel[-1-float64]": _GIVEN,
    },
    "2.19": {
        "test_forward_grid_matches_cpu_kernel[-1-float32]": _GIVEN,
        "test_forward_grid_matches_cpu_kernel[-1-float64]": _GIVEN,
    },
    "2.20": {
        "test_forward_grid_matches_cpu_kernel[-1-float32]": _GIVEN,
        "test_forward_grid_matches_cpu_kernel[-1-float64]": _GIVEN,
    },
}


@pytest.fixture(autouse=True)
def _xla_inexact_on_this_version(request):
    minor = ".".join(tf.__version__.split(".")[:2])
    reason = XLA_INEXACT.get(minor, {}).get(request.node.name)
    if reason:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=f"TensorFlow {minor}: {reason}"))


def _data(dtype, seed=0, shape=SHAPE):
    """Normal data with NaN, both zeros, subnormals (of float32 and of half), near-ties."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 2).astype(np.float32)
    specials = [
        np.nan,
        -0.0,
        0.0,
        1e-40,
        -1e-40,
        3e-6,
        -3e-6,
        0.5 / 127,
        1.5 / 127,
        -0.5 / 127,
        1.0,
        -1.0,
        3.0,
        -3.0,
        0.25,
        1e-8,
        2.5,
        -2.5,
        0.49999997,
        -0.5,
    ]
    x.reshape(-1)[: len(specials)] = specials
    return x.astype(dtype)


def _ranges(dtype, axis):
    """A given range: per tensor, or one per channel (equal bounds, a zero-width channel, both branches of
    the scale choice)."""
    if axis == -1:
        return np.asarray(-1.3, dtype), np.asarray(2.1, dtype)
    return (np.asarray([-1.0, -2.0, 0.0, -0.5], dtype), np.asarray([1.0, 0.5, 0.0, 3.0], dtype))


def _forward_cases():
    """(name, fn(x, lo, hi)) for every op and mode."""
    cases = []
    for axis, given, signed, bits in itertools.product(AXES, (True, False), (True, False), (8, 3)):
        common = dict(signed_input=signed, range_given=given, axis=axis)
        for narrow in (False, True):
            for op in ("V2", "V4"):
                fn = raw.QuantizeAndDequantizeV2 if op == "V2" else raw.QuantizeAndDequantizeV4
                for rm in ("HALF_TO_EVEN", "HALF_UP"):
                    cases.append(
                        (
                            f"{op} axis={axis} given={given} signed={signed} bits={bits} narrow={narrow} {rm}",
                            lambda x, lo, hi, fn=fn, kw=dict(common, num_bits=bits, narrow_range=narrow, round_mode=rm): (
                                fn(input=x, input_min=lo, input_max=hi, **kw)
                            ),
                        )
                    )
            cases.append(
                (
                    f"V3 axis={axis} given={given} signed={signed} bits={bits} narrow={narrow}",
                    lambda x, lo, hi, kw=dict(common, narrow_range=narrow), bits=bits: raw.QuantizeAndDequantizeV3(
                        input=x, input_min=lo, input_max=hi, num_bits=tf.constant(bits), **kw
                    ),
                )
            )
        if axis == -1:
            cases.append(
                (
                    f"V1 given={given} signed={signed} bits={bits}",
                    lambda x, lo, hi, kw=dict(signed_input=signed, num_bits=bits, range_given=given): (
                        raw.QuantizeAndDequantize(input=x, input_min=-1.3, input_max=2.1, **kw)
                    ),
                )
            )
    return cases


FORWARD_CASES = _forward_cases()


def _run_all(fn_list, args, jit):
    f = tf.function(lambda *a: [fn(*a) for fn in fn_list], jit_compile=jit)
    return f(*args)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", AXES)
def test_forward_grid_matches_cpu_kernel(dtype, axis):
    """Every forward op x mode, range given (as run-time arguments) and computed, in one compiled function."""
    cases = [(n, f) for n, f in FORWARD_CASES if f"axis={axis}" in n or (axis == -1 and n.startswith("V1"))]
    x = _data(dtype)
    lo, hi = _ranges(dtype, axis)
    got = _run_all([f for _, f in cases], (x, lo, hi), jit=True)
    want = [f(tf.constant(x), tf.constant(lo), tf.constant(hi)) for _, f in cases]
    for (name, _), g, w in zip(cases, got, want):
        assert_same_bits(g, w, f"{np.dtype(dtype).name} {name}")


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_v4grad_matches_cpu_kernel(dtype):
    x = _data(dtype, seed=1)
    g = _data(dtype, seed=2)
    g.reshape(-1)[-4:] = [np.inf, -np.inf, np.nan, 1e-40]  # masked inf/NaN give NaN
    cases = []
    for axis in AXES:
        lo, hi = _ranges(dtype, axis)
        cases.append((axis, lo, hi))
        cases.append((axis, np.full_like(lo, -np.inf), hi))  # the computed-range gradient's bounds

    def fn(g, x):
        outs = []
        for axis, lo, hi in cases:
            outs.extend(raw.QuantizeAndDequantizeV4Grad(gradients=g, input=x, input_min=lo, input_max=hi, axis=axis))
        return outs

    got = tf.function(fn, jit_compile=True)(g, x)
    want = fn(tf.constant(g), tf.constant(x))
    for i, (a, b) in enumerate(zip(got, want)):
        assert_same_bits(a, b, f"{np.dtype(dtype).name} V4Grad case {i // 3} output {i % 3}")


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_constant_ranges_and_special_data(dtype):
    """Ranges that XLA sees as constants (folded at compile time), an inf in the data (computed range: all
    NaN), channels of only zeros of either sign, an all-NaN channel, an empty tensor."""
    x = _data(dtype, seed=3)
    with_inf = x.copy()
    with_inf.reshape(-1)[7] = np.inf
    zeros = np.zeros((2, 4, 3), dtype)
    zeros[:, 0] = -0.0  # only -0.0: max is -0.0
    zeros[0, 1, 0] = -0.0  # both signs: max +0.0, min -0.0
    zeros[:, 2] = np.nan  # all NaN
    zeros[1, 3, 2] = 5.0
    zeros[0, 3, 1] = -0.0
    empty = np.zeros((0, 4), dtype)
    lo, hi = _ranges(dtype, 1)
    kw = dict(signed_input=True, num_bits=8)

    def fn(x, with_inf, zeros, empty):
        out = []
        for rm in ("HALF_TO_EVEN", "HALF_UP"):
            out.append(
                raw.QuantizeAndDequantizeV4(
                    input=x, input_min=lo, input_max=hi, range_given=True, axis=1, round_mode=rm, **kw
                )
            )
            out.append(
                raw.QuantizeAndDequantizeV4(
                    input=x, input_min=dtype(-0.7), input_max=dtype(0.9), range_given=True, round_mode=rm, **kw
                )
            )
            for axis in (-1, 1):
                z = np.zeros([] if axis == -1 else [4], dtype)
                for data in (with_inf, zeros):
                    out.append(
                        raw.QuantizeAndDequantizeV2(
                            input=data, input_min=z, input_max=z, axis=axis, round_mode=rm, **kw
                        )
                    )
                out.append(
                    raw.QuantizeAndDequantizeV2(input=empty, input_min=z, input_max=z, axis=axis, round_mode=rm, **kw)
                )
        return out

    args = (x, with_inf, zeros, empty)
    got = tf.function(fn, jit_compile=True)(*args)
    want = fn(*[tf.constant(a) for a in args])
    for i, (a, b) in enumerate(zip(got, want)):
        assert_same_bits(a, b, f"{np.dtype(dtype).name} case {i}")


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_subnormals_flush_as_on_the_cpu_kernel(dtype):
    """Tiny ranges whose scale, inverse scale or outputs are subnormal, and subnormal data: TensorFlow runs
    the CPU kernels with subnormals flushed to zero, XLA's CPU code does not by itself."""
    tiny = float(np.finfo(np.float64 if dtype == np.float64 else np.float32).tiny)
    rng = np.random.default_rng(9)
    x = (rng.normal(size=(4, 16)) * tiny * 40).astype(dtype)
    x[0, :4] = np.asarray([tiny / 3, -tiny / 3, tiny * 2, -0.0]).astype(dtype)
    x[3] = (rng.normal(size=16) * tiny / 8).astype(dtype)  # a channel of subnormals only
    lo = np.asarray([-tiny * 50, -tiny * 3, -1e-3, -tiny / 2]).astype(dtype)
    hi = np.asarray([tiny * 50, tiny * 300, 1e-3, tiny / 2]).astype(dtype)

    def fn(x, lo, hi):
        out = []
        for rm in ("HALF_TO_EVEN", "HALF_UP"):
            for given in (True, False):
                for bits, signed in ((8, True), (1, False), (16, True)):
                    out.append(
                        raw.QuantizeAndDequantizeV4(
                            input=x,
                            input_min=lo,
                            input_max=hi,
                            axis=0,
                            range_given=given,
                            num_bits=bits,
                            signed_input=signed,
                            round_mode=rm,
                        )
                    )
        out.append(raw.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=lo, input_max=hi, axis=0)[0])
        return out

    got = tf.function(fn, jit_compile=True)(x, lo, hi)
    want = fn(tf.constant(x), tf.constant(lo), tf.constant(hi))
    for i, (a, b) in enumerate(zip(got, want)):
        assert_same_bits(a, b, f"{np.dtype(dtype).name} case {i}")


def test_zero_signs_follow_the_rule():
    """Explicit values: a channel holding only -0.0 has max -0.0, so -0.0 * (-0.0/qmax) gives +0.0; a
    channel with both zeros has max +0.0 and keeps each zero's sign; min's sign never reaches the output
    (a zero min never selects the min branch)."""
    x = np.array([[-0.0, -0.0], [-0.0, 0.0], [0.0, -0.0], [0.0, 0.0]], np.float32)
    f = tf.function(
        lambda x: raw.QuantizeAndDequantizeV4(
            input=x, input_min=np.zeros(4, np.float32), input_max=np.zeros(4, np.float32), axis=0
        ),
        jit_compile=True,
    )
    expected = np.array([[0.0, 0.0], [-0.0, 0.0], [0.0, -0.0], [0.0, 0.0]], np.float32)
    assert_same_bits(f(x), expected, "zero signs")
    assert_same_bits(f(x), reference.numpy_qdq(x, axis=0), "zero signs vs NumPy reference")


def _fma_sensitive_inputs(n=32):
    """(y, m): float32 y and ranges [-m, m] (8 bits: scale = 127/m) where y*scale rounds to 0.49999997
    while the exact product is below it: floor(fl(y*scale) + 0.5) is 1, and a fused multiply-add
    (rounding y*scale + 0.5 once) gives 0."""
    rng = np.random.default_rng(11)
    m = rng.uniform(0.5, 4.0, size=200000).astype(np.float32)
    scale = np.float32(127) / m
    target = np.float32(0.5 - 2.0**-25)
    y0 = (0.5 / scale.astype(np.float64)).astype(np.float32)
    ys, ms = [], []
    for d in range(-4, 5):
        y = y0 + np.float32(d) * np.spacing(y0)
        exact = y.astype(np.float64) * scale.astype(np.float64)
        hit = (exact.astype(np.float32) == target) & (exact < np.float64(target))
        ys.append(y[hit])
        ms.append(m[hit])
    y, m = np.concatenate(ys)[:n], np.concatenate(ms)[:n]
    assert y.size == n, "too few FMA-sensitive inputs"
    return y, m


def test_half_up_is_not_contracted_into_fma():
    y, m = _fma_sensitive_inputs()
    x = y.reshape(-1, 1)
    f = tf.function(
        lambda x, lo, hi: raw.QuantizeAndDequantizeV4(
            input=x, input_min=lo, input_max=hi, axis=0, range_given=True, round_mode="HALF_UP"
        ),
        jit_compile=True,
    )
    got = f(x, -m, m)
    expected = reference.numpy_qdq(x, -m, m, range_given=True, round_mode="HALF_UP", axis=0)
    assert np.all(expected != 0), "every case rounds to 1 (not 0) before dequantizing"
    assert_same_bits(got, expected, "HALF_UP vs NumPy")
    assert_same_bits(
        got,
        raw.QuantizeAndDequantizeV4(input=x, input_min=-m, input_max=m, axis=0, range_given=True, round_mode="HALF_UP"),
        "HALF_UP vs CPU kernel",
    )


def test_random_cases():
    rng = np.random.default_rng(123)
    for i in range(12):
        dtype = ALL_DTYPES[i % 4]
        rank = int(rng.integers(1, 4))
        shape = tuple(int(d) for d in rng.integers(1, 7, size=rank))
        axis = int(rng.integers(-1, rank))
        x = (rng.standard_cauchy(size=shape)).astype(dtype)
        depth = 1 if axis == -1 else shape[axis]
        a = rng.uniform(0, 3, size=depth).astype(dtype)
        b = rng.uniform(-3, 0, size=depth).astype(dtype)
        lo, hi = (b, a) if axis != -1 else (b[0], a[0])
        kw = dict(
            signed_input=bool(rng.integers(2)),
            num_bits=int(rng.integers(1, 17)),
            range_given=bool(rng.integers(2)),
            narrow_range=bool(rng.integers(2)),
            axis=axis,
            round_mode=["HALF_TO_EVEN", "HALF_UP"][int(rng.integers(2))],
        )
        fn = lambda x, lo, hi: raw.QuantizeAndDequantizeV4(input=x, input_min=lo, input_max=hi, **kw)  # noqa: E731
        assert_same_bits(tf.function(fn, jit_compile=True)(x, lo, hi), fn(x, lo, hi), f"case {i}: {shape} {kw}")


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", (-1, 1))
def test_nan_in_data_without_zeros_is_ignored_by_the_range(dtype, axis):
    """A computed range ignores NaN wherever it sits (docs/semantics.md#diff-nan-in-data),
    also on the fast reduction path that data without zeros takes."""
    rng = np.random.default_rng(7)
    fn = lambda x, lo, hi: raw.QuantizeAndDequantizeV4(input=x, input_min=lo, input_max=hi, axis=axis)  # noqa: E731
    jitted = tf.function(fn, jit_compile=True)  # one shape and dtype: compiled once
    zeros = np.zeros(7, dtype) if axis != -1 else dtype(0)
    for k in range(24):
        x = rng.uniform(0.25, 3.0, size=(5, 7)) * rng.choice([-1.0, 1.0], size=(5, 7))
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, size=1 + k % 4, replace=False)] = np.nan
        x = x.astype(dtype)
        assert_same_bits(jitted(x, zeros, zeros), fn(x, zeros, zeros), f"NaN case {k} axis={axis}")


# ----------------------------------------------------------------------------- bad inputs


def _errors(fn, args, signature=None):
    """(CPU kernel message, XLA compile message)."""
    with pytest.raises(tf.errors.InvalidArgumentError) as cpu:
        fn(*args)
    with pytest.raises(tf.errors.InvalidArgumentError) as xla:
        tf.function(fn, jit_compile=True, input_signature=signature)(*args)
    return cpu.value.message, xla.value.message


def _first_line(msg):
    """The kernel's own text: without TensorFlow's node prefix and op suffix."""
    msg = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", msg)
    return msg.split("\n")[0].split(" [Op:")[0].strip()


BAD_INPUTS = {
    "constant range min > max": (
        lambda x: raw.QuantizeAndDequantizeV4(
            input=x, input_min=np.float32(2), input_max=np.float32(1), range_given=True
        ),
        [np.ones(4, np.float32)],
        None,
    ),
    "per-channel constant range min > max": (
        lambda x: raw.QuantizeAndDequantizeV2(
            input=x,
            input_min=np.array([0, 2], np.float32),
            input_max=np.array([1, 1], np.float32),
            range_given=True,
            axis=0,
        ),
        [np.ones((2, 3), np.float32)],
        None,
    ),
    "axis beyond the rank": (
        lambda x: raw.QuantizeAndDequantizeV4(
            input=x, input_min=np.zeros(3, np.float32), input_max=np.zeros(3, np.float32), axis=2
        ),
        [np.ones((2, 3), np.float32)],
        [tf.TensorSpec(None, tf.float32)],
    ),
    "per-channel range of the wrong size": (
        lambda x: raw.QuantizeAndDequantizeV4(
            input=x, input_min=np.zeros(2, np.float32), input_max=np.zeros(2, np.float32), axis=1, range_given=True
        ),
        [np.ones((2, 3), np.float32)],
        [tf.TensorSpec([2, None], tf.float32)],
    ),
    "V3 num_bits out of range": (
        lambda x: raw.QuantizeAndDequantizeV3(input=x, input_min=np.float32(0), input_max=np.float32(1), num_bits=70),
        [np.ones(4, np.float32)],
        None,
    ),
    # (axis < -1 never reaches a kernel in a graph: the shape function rejects it while tracing.)
    "V3 axis beyond the rank": (
        lambda x: raw.QuantizeAndDequantizeV3(
            input=x, input_min=np.zeros(2, np.float32), input_max=np.zeros(2, np.float32), num_bits=8, axis=3
        ),
        [np.ones((2, 2), np.float32)],
        [tf.TensorSpec(None, tf.float32)],
    ),
    "V4Grad shapes differ": (
        lambda g, x: raw.QuantizeAndDequantizeV4Grad(
            gradients=g, input=x, input_min=np.float32(0), input_max=np.float32(1)
        )[0],
        [np.ones(4, np.float32), np.ones(5, np.float32)],
        [tf.TensorSpec(None, tf.float32)] * 2,
    ),
    "V1 range attrs min > max": (
        lambda x: raw.QuantizeAndDequantize(input=x, input_min=2.0, input_max=1.0, range_given=True),
        [np.ones(4, np.float32)],
        None,
    ),
    "num_bits 0": (
        lambda x: raw.QuantizeAndDequantizeV2(input=x, input_min=np.float32(0), input_max=np.float32(1), num_bits=0),
        [np.ones(4, np.float32)],
        None,
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_at_compile_time_with_the_kernel_message(case):
    fn, args, signature = BAD_INPUTS[case]
    cpu, xla = _errors(fn, args, signature)
    assert _first_line(cpu) in xla, f"{case}: CPU kernel says {cpu!r}, XLA says {xla!r}"


def test_v3_num_bits_must_be_a_compile_time_constant():
    x = np.array([0.3, -0.7, 0.55], np.float32)

    def v3(x, n):
        return raw.QuantizeAndDequantizeV3(input=x, input_min=np.float32(-1), input_max=np.float32(1), num_bits=n)

    # A function argument is fine: TensorFlow compiles once per value.
    assert_same_bits(tf.function(v3, jit_compile=True)(x, tf.constant(3)), v3(x, tf.constant(3)), "num_bits arg")
    # (So is a value computed from the arguments: TensorFlow then treats those as constants too.) A value
    # from a stateful op is not.
    f = tf.function(lambda x: v3(x, tf.random.uniform([], 3, 9, dtype=tf.int32)), jit_compile=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="compile-time constant"):
        f(x)


# The kernels' texts (docs/semantics.md#validation), each the first failing check of its input, from the
# CPU kernel and from the XLA kernel, which share one copy of the checks (kernels/qdq_validate.h). Shapes
# unknown while tracing (input_signature of TensorSpec(None)), so that the kernels, not the shape functions,
# decide; XLA compiles for the concrete shapes and checks them then. (An axis < -1 never gets that far: the
# shape function rejects it while tracing.)
_F32 = np.float32
_ANY = tf.TensorSpec(None, tf.float32)
_ANY_I32 = tf.TensorSpec(None, tf.int32)


def _v4grad(axis):
    return lambda g, x, lo, hi: raw.QuantizeAndDequantizeV4Grad(
        gradients=g, input=x, input_min=lo, input_max=hi, axis=axis
    )[0]


def _v3(axis):
    return lambda x, lo, hi, n: raw.QuantizeAndDequantizeV3(
        input=x, input_min=lo, input_max=hi, num_bits=n, axis=axis, range_given=True
    )


def _v2(op, axis):
    return lambda x, lo, hi: getattr(raw, op)(input=x, input_min=lo, input_max=hi, axis=axis, range_given=True)


X23 = np.ones((2, 3), _F32)
VALIDATION_TEXTS = {
    "V4Grad min of rank 2": (
        _v4grad(-1),
        [X23, X23, np.zeros((1, 1), _F32), _F32(1)],
        "Input min tensor must have dimension 0 or 1. Received 2.",
    ),
    "V4Grad max of rank 3": (
        _v4grad(-1),
        [X23, X23, _F32(0), np.ones((1, 1, 1), _F32)],
        "Input max tensor must have dimension 0 or 1. Received 3.",
    ),
    "V4Grad vector min per tensor": (
        _v4grad(-1),
        [X23, X23, np.zeros(1, _F32), _F32(1)],
        "input_min must be a scalar if axis is unspecified",
    ),
    "V4Grad vector max per tensor": (
        _v4grad(-1),
        [X23, X23, _F32(0), np.ones(1, _F32)],
        "input_max must be a scalar if axis is unspecified",
    ),
    "V4Grad scalar min per channel": (
        _v4grad(1),
        [X23, X23, _F32(0), np.ones(3, _F32)],
        "Shape must be rank 1 for input_min_tensor when the axis is specified: got shape [], expected [3]",
    ),
    "V4Grad scalar max per channel": (
        _v4grad(1),
        [X23, X23, np.zeros(3, _F32), _F32(1)],
        "Shape must be rank 1 for input_max_tensor when the axis is specified: got shape [], expected [3]",
    ),
    "V4Grad min of the wrong size": (
        _v4grad(1),
        [X23, X23, np.zeros(2, _F32), np.ones(3, _F32)],
        "min has incorrect size, expected 3 was 2",
    ),
    "V4Grad max of the wrong size": (
        _v4grad(1),
        [X23, X23, np.zeros(3, _F32), np.ones(4, _F32)],
        "max has incorrect size, expected 3 was 4",
    ),
    "V4Grad axis beyond the rank": (
        _v4grad(2),
        [X23, X23, np.zeros(3, _F32), np.ones(3, _F32)],
        "Axis should be -1 or 0 or a positive value less than 2but given axis value was 2",
    ),
    # order: the shapes of gradient and input, then the axis, then min/max
    "V4Grad sizes before the axis": (
        _v4grad(5),
        [np.ones(3, _F32), np.ones(4, _F32), np.zeros((2, 2), _F32), _F32(1)],
        "gradient and input must be the same size",
    ),
    "V4Grad axis before min/max": (
        _v4grad(2),
        [X23, X23, np.zeros((2, 2), _F32), _F32(1)],
        "Axis should be -1 or 0 or a positive value less than 2but given axis value was 2",
    ),
    "V4Grad min rank before max rank": (
        _v4grad(-1),
        [X23, X23, np.zeros((1, 1), _F32), np.ones((1, 1, 1), _F32)],
        "Input min tensor must have dimension 0 or 1. Received 2.",
    ),
    "V3 num_bits not a scalar": (
        _v3(-1),
        [X23, _F32(0), _F32(1), np.array([8], np.int32)],
        "Invalid shape. The `num_bits` tensor should be a scalar. Got dimensions: 1",
    ),
    "V3 axis before num_bits": (
        _v3(2),
        [X23, _F32(0), _F32(1), np.array([8], np.int32)],
        "Axis requested is larger than input dimensions. Axis: 2 Input Dimensions: 2",
    ),
    "V3 num_bits shape before its value": (
        _v3(-1),
        [X23, _F32(0), _F32(1), np.array([99], np.int32)],
        "Invalid shape. The `num_bits` tensor should be a scalar. Got dimensions: 1",
    ),
    "V3 num_bits before the range": (
        _v3(1),
        [X23, _F32(0), _F32(1), np.int32(0)],
        "num_bits is out of range: 0 with `signed_input_` 1",
    ),
    "V3 vector min per tensor": (
        _v3(-1),
        [X23, np.zeros(2, _F32), _F32(1), np.int32(8)],
        "input_min must be a scalar.",
    ),
    "V3 max of the wrong size": (
        _v3(1),
        [X23, np.zeros(3, _F32), np.ones(4, _F32), np.int32(8)],
        "input_max_tensor has incorrect size, was 4 expected 3 to match dim 1 of the input [4]",
    ),
    "V2 vector max per tensor": (
        _v2("QuantizeAndDequantizeV2", -1),
        [X23, _F32(0), np.ones(2, _F32)],
        "input_max must be a scalar.",
    ),
    "V4 min of rank 2 per channel": (
        _v2("QuantizeAndDequantizeV4", 1),
        [X23, np.zeros((3, 1), _F32), np.ones(3, _F32)],
        "Shape must be rank 1 for input_min_tensor when the axis is specified: got shape [3,1], expected [3] "
        "(one value per channel along axis 1 of the input [2,3])",
    ),
    "V2 min size before max rank": (
        _v2("QuantizeAndDequantizeV2", 1),
        [X23, np.zeros(2, _F32), _F32(1)],
        "input_min_tensor has incorrect size, was 2 expected 3 to match dim 1 of the input [2]",
    ),
    "V2 axis before the range": (
        _v2("QuantizeAndDequantizeV2", 2),
        [X23, np.zeros((3, 1), _F32), np.ones(3, _F32)],
        "Shape must be at least rank 3 but is rank 2",
    ),
}


@pytest.mark.parametrize("case", list(VALIDATION_TEXTS))
def test_validation_texts_of_the_cpu_and_xla_kernels(case):
    fn, args, expected = VALIDATION_TEXTS[case]
    signature = [_ANY_I32 if np.asarray(a).dtype == np.int32 else _ANY for a in args]
    cpu, xla = _errors(fn, args, signature)
    assert _first_line(cpu) == expected, f"{case}: CPU kernel says {cpu!r}"
    assert _first_line(xla) == expected, f"{case}: XLA says {xla!r}"


# Values of a constant range, in each dtype: the numbers print as the compute type (float for
# bfloat16, half and float; double for double).
RANGE_VALUE_TEXTS = {
    "float16": ("0.0999756", "0.0499878"),
    "bfloat16": ("0.100098", "0.0500488"),
    "float32": ("0.1", "0.05"),
    "float64": ("0.1", "0.05"),
}


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", (-1, 0))
def test_constant_range_values_text_of_the_cpu_and_xla_kernels(dtype, axis):
    lo_text, hi_text = RANGE_VALUE_TEXTS[np.dtype(dtype).name]
    if axis == -1:
        lo, hi = np.asarray(0.1, dtype), np.asarray(0.05, dtype)
        expected = f"Invalid range: input_min {lo_text} > input_max {hi_text}"
    else:
        lo, hi = np.asarray([0, 0.1], dtype), np.asarray([1, 0.05], dtype)
        expected = (
            f"Invalid range: input_min {lo_text} > input_max {hi_text} for channel 1 along axis 0. "
            "Every channel needs input_min <= input_max."
        )

    def fn(x):
        return raw.QuantizeAndDequantizeV4(input=x, input_min=lo, input_max=hi, axis=axis, range_given=True)

    cpu, xla = _errors(fn, [np.ones((2, 3), dtype)])
    if strcat_is_absl():
        assert _first_line(cpu) == expected, f"CPU kernel says {cpu!r}"
    else:
        # An older StrCat writes as many digits as the value takes (qdq_testing.strcat_is_absl):
        # the numbers must read back as the range, the rest of the text is the same.
        number = r"(input_(?:min|max)) ([-+]?\d[\w.+-]*)"
        numbers = [t for _, t in re.findall(number, _first_line(cpu))]
        assert [dtype(float(t)) for t in numbers] == [dtype(0.1), dtype(0.05)], f"CPU kernel says {cpu!r}"
        assert re.sub(number, r"\1 N", _first_line(cpu)) == re.sub(number, r"\1 N", expected), (
            f"CPU kernel says {cpu!r}"
        )
    assert _first_line(xla) == _first_line(cpu), f"XLA says {xla!r}"


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("given", (True, False))
def test_v4_gradient_inside_a_compiled_function(axis, given):
    x = _data(np.float32, seed=5)
    x.reshape(-1)[0] = 2.5  # outside [-1.3, 2.1]: masked when the range is given
    lo, hi = _ranges(np.float32, axis)

    def grad(x, lo, hi):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf_qdq.quantize_and_dequantize_v2(x, lo, hi, range_given=given, axis=None if axis == -1 else axis)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, x)

    got = tf.function(grad, jit_compile=True)(tf.constant(x), tf.constant(lo), tf.constant(hi))
    want = grad(tf.constant(x), tf.constant(lo), tf.constant(hi))
    assert_same_bits(got, want, f"axis={axis} given={given}")
    if given and axis == -1:
        assert got.numpy().reshape(-1)[0] == 0.0  # the mask was applied


def test_v4grad_own_gradient_inside_a_compiled_function():
    x = _data(np.float32, seed=6)
    g = _data(np.float32, seed=7)
    lo, hi = _ranges(np.float32, 1)

    def second(g, x):
        with tf.GradientTape() as tape:
            tape.watch(g)
            dx = raw.QuantizeAndDequantizeV4Grad(gradients=g, input=x, input_min=lo, input_max=hi, axis=1)[0]
            loss = tf.reduce_sum(tf.where(tf.math.is_nan(dx), 0.0, dx) * 3.0)
        return tape.gradient(loss, g)

    got = tf.function(second, jit_compile=True)(g, x)
    assert_same_bits(got, second(tf.constant(g), tf.constant(x)), "d(V4Grad)/d(gradients)")


# ----------------------------------------------------------------------------- registration


def test_registered_for_the_cpu_and_gpu_jit_devices():
    from tensorflow.python.framework import kernels

    tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))  # XLA creates its JIT kernels
    for op in (
        "QuantizeAndDequantize",
        "QuantizeAndDequantizeV2",
        "QuantizeAndDequantizeV3",
        "QuantizeAndDequantizeV4",
        "QuantizeAndDequantizeV4Grad",
    ):
        devices = {k.device_type for k in kernels.get_registered_kernels_for_op("TfQdq>" + op).kernel}
        assert {"XLA_CPU_JIT", "XLA_GPU_JIT"} <= devices, (op, devices)


def test_import_after_xla_compiled_something():
    r = run_child("import_after_xla.py", timeout=300)
    assert r.stdout.strip().endswith("OK"), r.stdout + r.stderr


def test_benchmark_rows_smoke():
    from tf_qdq.bench import xla as bench_xla

    rows = bench_xla.xla_rows(size=1 << 12, reps=1)
    assert [r["row"] for r in rows] == list(bench_xla.ROWS)
    assert all(r["plugin_ms"] > 0 and r["builtin_ms"] > 0 for r in rows)
    fused = rows[-1]
    # The scale-shift and our QDQ are one loop feeding the dot, as with the built-in op.
    assert fused["plugin_fusions"] == fused["builtin_fusions"] == 1
    assert "fusions: plugin 1" in bench_xla.format_rows(rows)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_scalar_input_and_extreme_bit_widths(dtype):
    x = _data(dtype, seed=4)
    s = np.asarray(-0.3, dtype)

    def fn(x, s):
        out = [raw.QuantizeAndDequantizeV4(input=s, input_min=s, input_max=s)]
        for bits, signed, narrow in (
            (61, True, False),
            (62, False, False),
            (1, True, True),
            (1, True, False),
            (2, False, False),
        ):
            for given in (True, False):
                out.append(
                    raw.QuantizeAndDequantizeV2(
                        input=x,
                        input_min=np.asarray(-1.5, dtype),
                        input_max=np.asarray(0.25, dtype),
                        num_bits=bits,
                        signed_input=signed,
                        narrow_range=narrow,
                        range_given=given,
                    )
                )
        return out

    got = tf.function(fn, jit_compile=True)(x, s)
    want = fn(tf.constant(x), tf.constant(s))
    for i, (a, b) in enumerate(zip(got, want)):
        assert_same_bits(a, b, f"{np.dtype(dtype).name} case {i}")
