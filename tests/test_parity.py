"""Differential tests: the plugin against TensorFlow's built-in ops, in the same
process, compared bit for bit (so -0.0 vs +0.0 and NaN payloads count).

The oracle is `tf.raw_ops.QuantizeAndDequantize{V2,V3,V4,V4Grad}` through
`reference.builtin` (which uses built-in V2 for V1, and built-in V3 for the
per-channel given ranges that TensorFlow >= 2.16 rejects in V2/V4; docs/semantics.md#diff-per-channel-given-range).
Where no built-in defines the result (per-channel given range with HALF_UP)
the NumPy implementation of docs/semantics.md#arithmetic is the oracle, and that oracle is
itself cross-checked against the built-in ops on part of the grid.

Every case draws its data from `np.random.default_rng` seeded by a hash of the
case's parameters, so a failing case is reproducible by its test id alone.
"""

import zlib

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import BFLOAT16, PLUGIN_OPS, assert_same_bits, op_kwargs

import tf_qdq
from tf_qdq import reference

DTYPES = [np.float32, np.float64]
NUM_BITS_SIGNED = [1, 2, 4, 8, 16, 23, 32, 61]
NUM_BITS_UNSIGNED = [1, 2, 4, 8, 16, 23, 32, 61, 62]
ROUND_MODES = ["HALF_TO_EVEN", "HALF_UP"]
FORWARD_OPS = ["V2", "V3", "V4"]


def _seed(*parts):
    return zlib.crc32(repr(parts).encode())


def _rng(*parts):
    return np.random.default_rng(_seed(*parts))


# ----------------------------------------------------------------------------- data


def _view(shape, axis):
    """(outer, depth, inner) around axis (-1: per-tensor)."""
    n = int(np.prod(shape, dtype=np.int64))
    if axis == -1:
        return 1, 1, n
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    return outer, shape[axis], inner


def _channel(rng, m, dtype, signed, narrow, num_bits, range_given, kind, specials):
    """Values of one channel (m elements) and its given range (mn, mx).

    The quantization step of the channel is inv = 2^e, so that (j + 0.5) * inv
    are exact ties: with a given range the range is often [qmin, qmax] * inv,
    with a computed range an anchor element (qmax * inv, or qmin * inv for
    all-negative data) makes the data range produce that step."""
    T = dtype
    qmin, qmax = reference.integer_range(num_bits, signed, narrow)
    qminT, qmaxT = T(qmin), T(qmax)
    inv = T(2.0 ** int(rng.integers(-8, 9)))
    top = qmaxT * inv if qmax > 0 else inv  # a positive magnitude of the range
    # Tie values (j + 0.5) * inv with small |j| inside the integer range.
    jlo, jhi = max(qmin, -40), min(qmax, 40) - 1
    ties = []
    if jhi >= jlo:
        js = rng.integers(jlo, jhi + 1, size=8)
        ties = [T((T(j) + T(0.5)) * inv) for j in js]
    pool = []
    mn = mx = T(0)
    if range_given:
        style = rng.choice(["tie", "tie", "random", "zero_side", "degenerate", "wide"])
        if style == "tie":
            mn, mx = qminT * inv, (qmaxT * inv if qmax > 0 else T(0))
            if not signed and rng.random() < 0.5:
                mn = T(-rng.uniform(0, 3)) * top
        elif style == "random":
            a, b = np.sort(rng.standard_normal(2)).astype(T) * top
            mn, mx = T(a), T(b)
        elif style == "zero_side":
            v = T(rng.uniform(0.1, 2)) * top
            mn, mx = (T(0), v) if rng.random() < 0.5 else (-v, T(0))
        elif style == "degenerate":
            v = T(rng.standard_normal()) * top if rng.random() < 0.7 else T(0)
            mn = mx = v
        else:  # wide: much larger than the data
            mn, mx = T(-rng.uniform(1, 1e3)) * top, T(rng.uniform(1, 1e3)) * top
        w = max(float(mx) - float(mn), float(inv))
        base = rng.uniform(float(mn) - 0.3 * w, float(mx) + 0.3 * w, size=m).astype(T)
        pool = ties + [T(0.0), T(-0.0)]
        if specials:
            pool += [T(np.inf), T(-np.inf)]
            # A NaN input times a NaN step (0/0: qmax == 0 and mx == 0) gives a
            # NaN whose sign TensorFlow leaves to its vector/scalar code path
            # (see test_nan_times_nan_step_is_nan): keep NaN out of that case.
            if not (qmax == 0 and mx == 0):
                pool += [T(np.nan), T(-np.nan)]
    else:
        if kind == "negative" and signed and qmin < 0:
            anchor = qminT * inv
            base = -rng.uniform(0, 1, size=m).astype(T) * (-anchor)
            base = np.where(base == 0, anchor, base).astype(T)
            pool = [anchor] + [t for t in ties if t < 0]
        elif kind == "negative":  # unsigned (or 1-bit narrow): no exact step
            base = -rng.uniform(0.01, 1, size=m).astype(T) * top
            pool = []
        elif qmax > 0:
            anchor = qmaxT * inv
            lo = 0.0 if kind == "positive" else -float(anchor)
            base = rng.uniform(lo, float(anchor), size=m).astype(T)
            pool = [anchor] + [t for t in ties if kind != "positive" or t > 0]
            pool += [T(0.0), T(-0.0)]
        else:  # signed 1 bit: qmax = 0, the negative side sets the step
            anchor = qminT * inv if qmin < 0 else -inv
            lo = 0.0 if kind == "positive" else float(anchor)
            base = rng.uniform(lo, 3 * float(inv), size=m).astype(T)
            pool = ([] if kind == "positive" else [anchor]) + ties + [T(0.0), T(-0.0)]
    base = np.asarray(base, dtype=T)
    if m:
        k = min(len(pool), m)
        pos = rng.permutation(m)[:k]
        base[pos] = np.asarray(pool[:k], dtype=T)
    return base, T(mn), T(mx)


def make_case(
    seed_parts, dtype, shape, axis, signed=True, narrow=False, num_bits=8, range_given=False, kind=None, specials=None
):
    """Input x of `shape` and the range tensors (scalars per-tensor, vectors per
    channel). With a computed range the range tensors hold arbitrary values,
    which both implementations must ignore."""
    rng = _rng(*seed_parts)
    if kind is None:
        kind = rng.choice(["mixed", "mixed", "positive", "negative"])
    if specials is None:
        specials = bool(range_given and rng.random() < 0.5)
    outer, depth, inner = _view(shape, axis)
    view = np.empty((outer, max(depth, 0), inner), dtype=dtype)
    mns, mxs = [], []
    for c in range(depth):
        vals, mn, mx = _channel(rng, outer * inner, dtype, signed, narrow, num_bits, range_given, kind, specials)
        view[:, c, :] = vals.reshape(outer, inner)
        mns.append(mn)
        mxs.append(mx)
    x = view.reshape(shape)
    if not range_given:  # ignored values, sometimes even min > max
        mns = list(rng.standard_normal(depth).astype(dtype))
        mxs = list(rng.standard_normal(depth).astype(dtype))
    if axis == -1:
        mn, mx = np.asarray(mns[0], dtype), np.asarray(mxs[0], dtype)
    else:
        mn, mx = np.asarray(mns, dtype).reshape(depth), np.asarray(mxs, dtype).reshape(depth)
    return x, mn, mx


# ----------------------------------------------------------------------------- calls


def parity_kwargs(
    op, x, mn, mx, signed=True, num_bits=8, range_given=False, round_mode="HALF_TO_EVEN", narrow=False, axis=-1
):
    """op_kwargs with this file's attribute names, every input a tensor (V3 has no round_mode)."""
    extra = {} if op == "V3" else dict(round_mode=round_mode)
    return op_kwargs(
        op,
        x,
        mn,
        mx,
        num_bits=num_bits,
        convert=tf.constant,
        signed_input=signed,
        range_given=range_given,
        narrow_range=narrow,
        axis=axis,
        **extra,
    )


def expected_forward(op, kw):
    """The built-in op's result; the NumPy oracle where no built-in defines it."""
    out = reference.builtin(op, **kw)
    if out is None:
        nb = kw["num_bits"]
        out = numpy_oracle(
            kw["input"].numpy(),
            kw["input_min"].numpy(),
            kw["input_max"].numpy(),
            signed_input=kw["signed_input"],
            num_bits=int(nb.numpy()) if tf.is_tensor(nb) else nb,
            range_given=kw["range_given"],
            round_mode=kw.get("round_mode", "HALF_TO_EVEN"),
            narrow_range=kw["narrow_range"],
            axis=kw["axis"],
        )
    return out


def numpy_oracle(x, *args, **kwargs):
    """reference.numpy_qdq, which cannot reshape empty tensors: an empty input
    gives an empty output of the same shape and dtype."""
    x = np.asarray(x)
    if x.size == 0:
        return np.empty_like(x)
    return reference.numpy_qdq(x, *args, **kwargs)


def check_forward(op, x, mn, mx, msg="", **attrs):
    kw = parity_kwargs(op, x, mn, mx, **attrs)
    expected = expected_forward(op, kw)
    actual = PLUGIN_OPS[op](**kw)
    assert_same_bits(actual, expected, msg or f"{op} {attrs}")
    return actual, expected


def _bit_configs():
    """(signed, narrow, num_bits): num_bits up to 61 signed, 62 unsigned."""
    out = []
    for signed in (True, False):
        for narrow in (False, True):
            for nb in NUM_BITS_SIGNED if signed else NUM_BITS_UNSIGNED:
                out.append((signed, narrow, nb))
    return out


# ----------------------------------------------------------------------------- attribute grid

# The full product of op x dtype x signed/narrow/num_bits x round mode x range
# given/computed x {per-tensor, per-channel}. The per-channel shape (middle axis,
# or last axis with one element per channel row: a different CPU loop) and the
# data kind are drawn from the case's seed.
_GRID = []
for _op in FORWARD_OPS:
    for _dt in DTYPES:
        for _s, _nr, _nb in _bit_configs():
            for _rm in ROUND_MODES if _op != "V3" else ["HALF_TO_EVEN"]:
                for _rg in (False, True):
                    for _pc in (False, True):
                        _GRID.append((_op, _dt, _s, _nr, _nb, _rm, _rg, _pc))


def _grid_id(p):
    op, dt, s, nr, nb, rm, rg, pc = p
    return (
        f"{op}-{np.dtype(dt).name}-{'s' if s else 'u'}{nb}{'n' if nr else ''}-{rm}-"
        f"{'rg' if rg else 'data'}-{'pc' if pc else 'pt'}"
    )


def _grid_case(p):
    op, dt, s, nr, nb, rm, rg, pc = p
    if pc:
        shape, axis = ((3, 5, 4), 1) if _seed(*p) % 2 else ((6, 9), 1)
    else:
        shape, axis = (37,), -1
    x, mn, mx = make_case(p, dt, shape, axis, s, nr, nb, rg)
    attrs = dict(signed=s, num_bits=nb, range_given=rg, round_mode=rm, narrow=nr, axis=axis)
    return x, mn, mx, attrs


@pytest.mark.parametrize("p", _GRID, ids=[_grid_id(p) for p in _GRID])
def test_attribute_grid(p):
    x, mn, mx, attrs = _grid_case(p)
    check_forward(p[0], x, mn, mx, msg=_grid_id(p), **attrs)


# ----------------------------------------------------------------------------- layouts

SHAPES = [
    (),
    (1,),
    (7,),
    (0,),
    (4, 3),
    (1, 1),
    (3, 0),
    (0, 5),
    (2, 3, 4),
    (3, 0, 2),
    (2, 2, 3, 3),
    (1, 3, 1, 4),
    (2, 0, 1, 3),
    (3, 1, 2, 0),
]
_LAYOUTS = [(shape, axis) for shape in SHAPES for axis in [-1] + list(range(len(shape)))]
_LAYOUT_GRID = [
    (op, dt, shape, axis, rg)
    for (shape, axis) in _LAYOUTS
    for op in FORWARD_OPS
    for dt in DTYPES
    for rg in (False, True)
]


def _layout_id(p):
    op, dt, shape, axis, rg = p
    return f"{op}-{np.dtype(dt).name}-{'x'.join(map(str, shape)) or 'scalar'}-ax{axis}-{'rg' if rg else 'data'}"


@pytest.mark.parametrize("p", _LAYOUT_GRID, ids=[_layout_id(p) for p in _LAYOUT_GRID])
def test_layouts(p):
    """Per-tensor and per-channel along every axis of rank 0..4 shapes, including
    empty tensors and zero-size channel dimensions; the other attributes are
    drawn from the case's seed."""
    op, dt, shape, axis, rg = p
    rng = _rng("attrs", *p)
    signed, narrow, nb = _bit_configs()[rng.integers(len(_bit_configs()))]
    rm = ROUND_MODES[rng.integers(2)] if op != "V3" else "HALF_TO_EVEN"
    x, mn, mx = make_case(p, dt, shape, axis, signed, narrow, nb, rg)
    attrs = dict(signed=signed, num_bits=nb, range_given=rg, round_mode=rm, narrow=narrow, axis=axis)
    if op == "V3" and len(shape) == 0:
        # V3 requires -dims <= axis < dims, so a scalar input is an error in both.
        kw = parity_kwargs(op, x, mn, mx, **attrs)
        with pytest.raises(tf.errors.InvalidArgumentError) as builtin_err:
            tf.raw_ops.QuantizeAndDequantizeV3(**kw)
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match="Axis requested is larger than input dimensions. Axis: -1 Input Dimensions: 0",
        ):
            PLUGIN_OPS[op](**kw)
        assert "Axis requested is larger than input dimensions" in str(builtin_err.value)
        return
    actual, _ = check_forward(op, x, mn, mx, msg=_layout_id(p), **attrs)
    assert actual.shape == tuple(shape)


# ----------------------------------------------------------------------------- exact ties


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_bits", [2, 4, 8, 16, 23])
@pytest.mark.parametrize("range_given", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
def test_ties_round_as_documented(dtype, num_bits, range_given, per_channel):
    """Values exactly at .5 quanta: HALF_TO_EVEN goes to the even neighbour (and
    keeps -0.0 for -0.5), HALF_UP is floor(v + 0.5); both equal the built-in."""
    T = dtype
    qmin, qmax = reference.integer_range(num_bits, True, False)
    step = T(2.0**-3)
    js = np.array([j for j in (-3, -2, -1, 0, 1, 2, 5) if qmin <= j < qmax], dtype=np.float64)
    ties = ((js + 0.5) * float(step)).astype(T)
    anchor = T(qmax) * step
    x = np.concatenate([ties, [anchor]]).astype(T)
    expect_even = (np.rint(js + 0.5) * float(step)).astype(T)
    expect_up = (np.floor(js + 1.0) * float(step)).astype(T)
    lo, hi = T(qmin) * step, anchor
    axis = -1
    if per_channel:  # two identical channels along axis 0
        x = np.stack([x, x])
        axis = 0
        lo, hi = np.array([lo, lo], T), np.array([hi, hi], T)
    else:
        lo, hi = np.asarray(lo, T), np.asarray(hi, T)
    for op, rm, exp in (
        ("V2", "HALF_TO_EVEN", expect_even),
        ("V4", "HALF_UP", expect_up),
        ("V3", "HALF_TO_EVEN", expect_even),
    ):
        actual, _ = check_forward(
            op, x, lo, hi, signed=True, num_bits=num_bits, range_given=range_given, round_mode=rm, axis=axis
        )
        got = actual.numpy().reshape(-1, x.shape[-1])
        for row in got:
            assert_same_bits(row[: len(js)], exp, f"{op} {rm} ties")
            assert row[-1] == anchor
    # -0.5 quanta: HALF_TO_EVEN keeps the sign of zero, HALF_UP gives +0.0.
    if qmin <= -1:
        i = list(js).index(-1)
        assert np.signbit(expect_even[i]) and expect_even[i] == 0
        assert not np.signbit(expect_up[i]) and expect_up[i] == 0


# ----------------------------------------------------------------------------- special values


def _special_cases():
    f32, f64 = np.float32, np.float64
    cases = []
    x = [1.0, -2.0, 3.0, 0.5, -0.0, 0.0, 0.125, -7.75]
    # Given ranges with infinite, degenerate, zero-free and tiny/huge bounds.
    for T in (f32, f64):
        for lo, hi in [
            (-np.inf, np.inf),
            (-np.inf, 1.0),
            (-1.0, np.inf),
            (0.0, np.inf),
            (-np.inf, 0.0),
            (3.0, 3.0),
            (-3.0, -3.0),
            (0.0, 0.0),
            (-0.0, 0.0),
            (0.25, 4.0),
            (-4.0, -0.25),
            (-1.0, 1.0),
            (-10.0, 5.0),
        ]:
            cases.append((f"{np.dtype(T).name}[{lo},{hi}]", T, x, lo, hi, True))
    cases.append(("f64 tiny range", f64, [1e-282, -3e-282, 5e-283, 1.0, 0.0], -1e-282, 2e-282, True))
    cases.append(("f64 huge range", f64, [1e73, -3e73, 5e72, 1.0, -0.0], -1e73, 2e73, True))
    cases.append(("f64 tiny data", f64, [1e-282, -3e-282, 5e-283, -0.0, 0.0], 0, 0, False))
    cases.append(("f64 huge data", f64, [1e73, -3e73, 5e72, 1.0], 0, 0, False))
    cases.append(("f64 near max", f64, [1.7e308, -1.7e308, 1.0], 0, 0, False))
    cases.append(("f32 near max", f32, [3.4e38, -3.4e38, 1.0], 0, 0, False))
    cases.append(("f32 near max given", f32, [3.4e38, -3.4e38, 1.0], -3.4e38, 3.4e38, True))
    # Subnormal ranges and data: TensorFlow's CPU kernels run with denormals
    # flushed; the plugin, run by the same executor, must agree.
    cases.append(("f32 subnormal range", f32, [5e-39, 1e-38, -3e-39, 1.0], -1e-38, 1e-38, True))
    cases.append(("f32 subnormal data", f32, [5e-39, 1e-39, -3e-39, 0.0], 0, 0, False))
    cases.append(("f64 subnormal range", f64, [5e-309, 1e-308, -3e-309, 1.0], -1e-308, 1e-308, True))
    cases.append(("f32 min normal range", f32, [1.2e-38, -1.0, 3e-38], -1.1754944e-38, 1.1754944e-38, True))
    # Infinities in the data with a computed range (no NaN): +inf or -inf makes
    # the step infinite or zero.
    for T in (f32, f64):
        cases.append((f"{np.dtype(T).name} +inf data", T, [1.0, np.inf, 0.5, -0.25], 0, 0, False))
        cases.append((f"{np.dtype(T).name} -inf data", T, [1.0, -np.inf, 0.5, -0.25], 0, 0, False))
        cases.append((f"{np.dtype(T).name} +-inf data", T, [np.inf, -np.inf, 0.5], 0, 0, False))
        cases.append((f"{np.dtype(T).name} all zeros", T, [0.0, 0.0, 0.0], 0, 0, False))
        cases.append((f"{np.dtype(T).name} all -0", T, [-0.0, -0.0], 0, 0, False))
        cases.append((f"{np.dtype(T).name} zero max, neg data", T, [-1.0, 0.0, -0.5], 0, 0, False))
        cases.append((f"{np.dtype(T).name} NaN/inf given", T, [1, np.nan, 0.5, np.inf, -np.inf], -1, 1, True))
    return cases


_SPECIAL = _special_cases()


@pytest.mark.parametrize("case", _SPECIAL, ids=[c[0] for c in _SPECIAL])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("op,round_mode", [("V2", "HALF_TO_EVEN"), ("V3", "HALF_TO_EVEN"), ("V4", "HALF_UP")])
@pytest.mark.parametrize("num_bits", [1, 8, 32])
def test_special_values(case, signed, op, round_mode, num_bits):
    name, T, x, lo, hi, rg = case
    x = np.asarray(x, T)
    check_forward(
        op,
        x,
        np.asarray(lo, T),
        np.asarray(hi, T),
        msg=name,
        signed=signed,
        num_bits=num_bits,
        range_given=rg,
        round_mode=round_mode,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_in_data_computed_range_per_channel(dtype):
    """+inf (or -inf) in one channel makes that channel NaN, not the others."""
    T = dtype
    x = np.array([[1.0, -2.0, 0.5], [np.inf, 0.25, -np.inf], [3.0, -0.0, 0.75]], T)
    mn = mx = np.zeros(3, T)
    for axis in (0, 1):
        for rm in ROUND_MODES:
            actual, _ = check_forward("V2", x, mn, mx, axis=axis, round_mode=rm)
            out = actual.numpy()
            nan_rows = np.isnan(out).all(axis=1 - axis)
            if axis == 0:
                assert list(nan_rows) == [False, True, False]
            else:
                assert list(nan_rows) == [True, False, True]
        check_forward("V3", x, mn, mx, axis=axis, range_given=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("signed", [True, False])
def test_zero_signs(dtype, signed):
    """±0 inputs with positive data present (data range) and with a given range."""
    T = dtype
    x = np.array([-0.0, 0.0, 1.0, -0.001, 0.001, -0.0, 0.75], T)
    for rm in ROUND_MODES:
        actual, _ = check_forward("V2", x, np.asarray(0, T), np.asarray(0, T), signed=signed, round_mode=rm)
        if rm == "HALF_TO_EVEN":
            assert np.signbit(actual.numpy()[[0, 3, 5]]).all()
        if rm == "HALF_UP":
            assert not np.signbit(actual.numpy()[[0, 1, 3, 4, 5]]).any()
        check_forward("V4", x, np.asarray(-1, T), np.asarray(1, T), signed=signed, range_given=True, round_mode=rm)


# ----------------------------------------------------------------------------- V1


_V1_GRID = [
    (dt, s, nb, rg)
    for dt in DTYPES
    for s in (True, False)
    for nb in (NUM_BITS_SIGNED if s else NUM_BITS_UNSIGNED)
    for rg in (False, True)
]


@pytest.mark.parametrize(
    "p",
    _V1_GRID,
    ids=[f"{np.dtype(p[0]).name}-{'s' if p[1] else 'u'}{p[2]}-{'rg' if p[3] else 'data'}" for p in _V1_GRID],
)
def test_v1_equals_builtin_v2_with_attr_range(p):
    """V1 takes its range from float attrs; its reference is built-in V2 with the
    attr range cast to T."""
    dt, s, nb, rg = p
    x, mn, mx = make_case(("V1",) + p, dt, (23,), -1, s, False, nb, rg)
    # The attrs are float32: TensorFlow rounds these (float64) values, and the
    # reference casts float32(attr) to T.
    lo, hi = float(mn), float(mx)
    kw = dict(input=tf.constant(x), signed_input=s, num_bits=nb, range_given=rg, input_min=lo, input_max=hi)
    expected = reference.builtin("V1", **kw)
    assert_same_bits(PLUGIN_OPS["V1"](**kw), expected, f"V1 {p}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_v1_explicit_values(dtype):
    x = tf.constant([-0.8, -0.5, 0.0, 0.3, 0.8, 0.555, -2.0, 33.0], dtype)
    out = PLUGIN_OPS["V1"](input=x, signed_input=True, num_bits=8, range_given=True, input_min=-1.0, input_max=1.0)
    exp = np.array([-102, -64, 0, 38, 102, 70, -128, 127], np.float64) / 127
    np.testing.assert_allclose(out.numpy(), exp.astype(dtype), rtol=2e-7 if dtype == np.float32 else 1e-15)
    assert_same_bits(
        out,
        reference.builtin(
            "V1", input=x, signed_input=True, num_bits=8, range_given=True, input_min=-1.0, input_max=1.0
        ),
    )


# ----------------------------------------------------------------------------- V4Grad


def _grad_case(seed_parts, dtype, shape, axis):
    rng = _rng(*seed_parts)
    T = dtype
    depth = 1 if axis == -1 else shape[axis]
    hi = rng.uniform(0.1, 2.0, size=depth).astype(T)
    lo = (-rng.uniform(0.1, 2.0, size=depth)).astype(T)
    if depth:
        lo[0] = hi[0]  # a degenerate channel
    n = int(np.prod(shape, dtype=np.int64))
    x = rng.uniform(-2.5, 2.5, size=n).astype(T)
    g = rng.standard_normal(n).astype(T)
    # Put exact bounds, NaN and infinite gradients at random places.
    outer, _, inner = _view(shape, axis)
    ch = (np.arange(n) // inner) % depth if depth else np.zeros(n, int)
    if n:
        k = max(1, n // 5)
        pos = rng.permutation(n)[:k]
        x[pos[0::4]] = lo[ch[pos[0::4]]]
        x[pos[1::4]] = hi[ch[pos[1::4]]]
        x[pos[2::4]] = T(np.nan)
        g[pos[3::4]] = rng.choice(np.array([np.inf, -np.inf, np.nan], T), size=len(pos[3::4]))
        g[pos[0::8]] = T(-0.0)
    x, g = x.reshape(shape), g.reshape(shape)
    if axis == -1:
        lo, hi = lo.reshape(()), hi.reshape(())
    return g, x, lo, hi


_GRAD_GRID = [
    (dt, shape, axis)
    for dt in DTYPES
    for shape in [(), (9,), (0,), (4, 5), (3, 0), (2, 3, 4), (2, 1, 3, 2)]
    for axis in [-1] + list(range(len(shape)))
]


@pytest.mark.parametrize(
    "p", _GRAD_GRID, ids=[f"{np.dtype(p[0]).name}-{'x'.join(map(str, p[1])) or 'scalar'}-ax{p[2]}" for p in _GRAD_GRID]
)
def test_v4grad_parity(p):
    dt, shape, axis = p
    g, x, lo, hi = _grad_case(("grad",) + p, dt, shape, axis)
    kw = dict(
        gradients=tf.constant(g), input=tf.constant(x), input_min=tf.constant(lo), input_max=tf.constant(hi), axis=axis
    )
    expected = reference.builtin("V4Grad", **kw)
    actual = PLUGIN_OPS["V4Grad"](**kw)
    assert len(actual) == 3
    for a, e, name in zip(actual, expected, ("input_backprop", "input_min_backprop", "input_max_backprop")):
        assert_same_bits(a, e, f"V4Grad {p} {name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_v4grad_min_above_max_per_tensor(dtype):
    """V4Grad does not check the range (neither does TensorFlow): min > max masks all."""
    x = tf.constant([-1.0, 0.0, 0.5, 1.0], dtype)
    g = tf.constant([1.0, -2.0, 3.0, 4.0], dtype)
    kw = dict(gradients=g, input=x, input_min=tf.constant(1.0, dtype), input_max=tf.constant(-1.0, dtype))
    actual = PLUGIN_OPS["V4Grad"](**kw)
    assert_same_bits(actual[0], reference.builtin("V4Grad", **kw)[0])
    assert np.all(actual[0].numpy() == 0)


# ----------------------------------------------------------------------------- large tensors
# The CPU kernel splits passes into blocks on the thread pool above 32K elements:
# block boundaries must not change the range or the results.


def _large(seed, shape, dtype=np.float32, spikes_axis=None):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 2.0)).astype(dtype)
    if spikes_axis is not None:  # each channel's extreme in a different place
        moved = np.moveaxis(x, spikes_axis, 0).reshape(x.shape[spikes_axis], -1)
        for c in range(moved.shape[0]):
            moved[c, rng.integers(moved.shape[1])] = dtype(9.0 + c)
            moved[c, rng.integers(moved.shape[1])] = dtype(-11.0 - c)
        x = np.moveaxis(moved.reshape(np.moveaxis(x, spikes_axis, 0).shape), 0, spikes_axis)
        x = np.ascontiguousarray(x)
    return x


@pytest.mark.parametrize("round_mode", ROUND_MODES)
@pytest.mark.parametrize("range_given", [False, True])
def test_large_per_tensor(round_mode, range_given):
    x = _large(1, (1 << 20,))
    x[-3] = np.float32(7.5)  # the maximum in the last block
    x[5] = np.float32(-0.0)
    x[600000] = np.float32(0.0)
    lo, hi = (np.float32(-2.5), np.float32(3.0)) if range_given else (np.float32(0), np.float32(0))
    for op in ("V2", "V4"):
        check_forward(op, x, lo, hi, range_given=range_given, round_mode=round_mode, msg=f"{op} 1M")
    if round_mode == "HALF_TO_EVEN":
        check_forward("V3", x, lo, hi, range_given=range_given, msg="V3 1M")


def test_large_per_tensor_float64_unsigned_narrow():
    x = _large(2, (200003,), np.float64)
    for rg, lo, hi in ((False, 0.0, 0.0), (True, -0.5, 4.0)):
        check_forward(
            "V2",
            x,
            np.float64(lo),
            np.float64(hi),
            signed=False,
            num_bits=5,
            range_given=rg,
            round_mode="HALF_UP",
            msg="f64 200003 unsigned",
        )
        check_forward(
            "V3", x, np.float64(lo), np.float64(hi), num_bits=7, narrow=True, range_given=rg, msg="f64 200003 narrow"
        )


@pytest.mark.parametrize(
    "case",
    [((300, 257), 1), ((4, 70000), 0), ((3, 7, 2000), 1), ((70, 3, 400), 2)],
    ids=["300x257-ax1", "4x70000-ax0", "3x7x2000-ax1", "70x3x400-ax2"],
)
@pytest.mark.parametrize("round_mode", ROUND_MODES)
def test_large_per_channel(case, round_mode):
    shape, axis = case
    x = _large(_seed(shape), shape, spikes_axis=axis)
    depth = shape[axis]
    rng = _rng("large-range", shape)
    zeros = np.zeros(depth, np.float32)
    # Data range (the built-in V2/V4 accept it per channel).
    check_forward("V2", x, zeros, zeros, axis=axis, round_mode=round_mode, msg=f"{shape} data")
    check_forward("V4", x, zeros, zeros, axis=axis, round_mode=round_mode, msg=f"{shape} data")
    if round_mode == "HALF_TO_EVEN":
        check_forward("V3", x, zeros, zeros, axis=axis, range_given=False, msg=f"{shape} V3 data")
    # Given range (reference: built-in V3, or NumPy for HALF_UP).
    lo = (-rng.uniform(0.5, 3.0, depth)).astype(np.float32)
    hi = rng.uniform(0.5, 3.0, depth).astype(np.float32)
    check_forward("V2", x, lo, hi, axis=axis, range_given=True, round_mode=round_mode, msg=f"{shape} given")
    if round_mode == "HALF_TO_EVEN":
        check_forward("V3", x, lo, hi, axis=axis, range_given=True, msg=f"{shape} V3 given")


def test_large_v4grad():
    for shape, axis in (((1 << 20,), -1), ((300, 257), 1), ((4, 70000), 0)):
        x = _large(_seed("g", shape), shape)
        g = _large(_seed("gg", shape), shape)
        x.flat[::1001] = np.nan
        g.flat[::997] = np.inf
        depth = 1 if axis == -1 else shape[axis]
        lo = np.full(depth, -1.0, np.float32) if axis != -1 else np.float32(-1.0)
        hi = np.full(depth, 1.5, np.float32) if axis != -1 else np.float32(1.5)
        kw = dict(
            gradients=tf.constant(g),
            input=tf.constant(x),
            input_min=tf.constant(lo),
            input_max=tf.constant(hi),
            axis=axis,
        )
        actual = PLUGIN_OPS["V4Grad"](**kw)
        expected = reference.builtin("V4Grad", **kw)
        for a, e in zip(actual, expected):
            assert_same_bits(a, e, f"V4Grad large {shape}")


def test_large_subnormal_data_matches_builtin():
    """Subnormal data between normal extremes, over many thread-pool blocks:
    TensorFlow's CPU kernels run with denormals flushed (and so does the plugin,
    run by the same executor), which must not depend on the block. (The extremes
    are normal numbers: with denormals treated as zero, the minimum of several
    subnormals is order-dependent in TensorFlow.)"""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(100000) * 1e-39).astype(np.float32)
    x[77777] = np.float32(1e-30)
    x[3] = np.float32(-2e-30)
    for rm in ROUND_MODES:
        out, _ = check_forward("V2", x, np.float32(0), np.float32(0), round_mode=rm, msg="subnormal data")
        check_forward(
            "V2",
            x,
            np.float32(-1e-30),
            np.float32(1e-30),
            range_given=True,
            round_mode=rm,
            msg="subnormal data, given range",
        )
    assert out.numpy()[77777] != 0 and out.numpy()[3] == np.float32(-2e-30)


# ----------------------------------------------------------------------------- API wrappers


@pytest.mark.parametrize("axis", [None, 0, 1, -1, -2])
@pytest.mark.parametrize("range_given", [False, True])
def test_python_api_matches_tf_quantization(axis, range_given):
    """tf_qdq.quantize_and_dequantize(_v2) against tf.quantization's, wherever
    TensorFlow accepts the call (it rejects per-channel given ranges)."""
    x, _, _ = make_case(("api", axis, range_given), np.float32, (5, 6), -1, range_given=False)
    x = tf.constant(x)
    if axis is None:
        lo, hi = tf.constant(-1.0), tf.constant(1.5)
    else:
        d = x.shape[axis]
        lo, hi = (
            tf.constant(np.linspace(-1.0, -0.2, d, dtype=np.float32)),
            tf.constant(np.linspace(0.3, 1.5, d, dtype=np.float32)),
        )
    for ours, theirs in (
        (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
        (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
    ):
        for rm in ROUND_MODES:
            kw = dict(range_given=range_given, round_mode=rm, axis=axis)
            got = ours(x, lo, hi, **kw)
            if axis is not None and range_given:
                pos_axis = axis % 2
                exp = reference.numpy_qdq(
                    x.numpy(), lo.numpy(), hi.numpy(), range_given=True, round_mode=rm, axis=pos_axis
                )
            else:
                exp = theirs(x, lo, hi, **kw)
            assert_same_bits(got, exp, f"{ours.__name__} {kw}")


# ----------------------------------------------------------------------------- the NumPy oracle


def _oracle_sample():
    rng = np.random.default_rng(20240601)
    idx = rng.choice(len(_GRID), size=260, replace=False)
    return [_GRID[i] for i in sorted(idx)]


# (Per-channel given ranges with HALF_UP have no built-in result: left out.)
_ORACLE = [p for p in _oracle_sample() if not (p[6] and p[7] and p[5] == "HALF_UP")]


@pytest.mark.parametrize("p", _ORACLE, ids=[_grid_id(p) for p in _ORACLE])
def test_numpy_oracle_matches_builtin(p):
    """reference.numpy_qdq (used where no built-in defines the result) agrees with
    the built-in ops on the grid, so it is a trustworthy oracle."""
    op = p[0]
    x, mn, mx, attrs = _grid_case(p)
    expected = reference.builtin(op, **parity_kwargs(op, x, mn, mx, **attrs))
    got = reference.numpy_qdq(
        x,
        mn,
        mx,
        signed_input=attrs["signed"],
        num_bits=attrs["num_bits"],
        range_given=attrs["range_given"],
        round_mode=attrs["round_mode"],
        narrow_range=attrs["narrow"],
        axis=attrs["axis"],
    )
    assert_same_bits(got, expected, f"numpy_qdq {_grid_id(p)}")


_ORACLE_LAYOUTS = [p for p in _LAYOUT_GRID if p[0] == "V3" and len(p[2]) > 0 and 0 not in p[2]]


@pytest.mark.parametrize("p", _ORACLE_LAYOUTS, ids=[_layout_id(p) for p in _ORACLE_LAYOUTS])
def test_numpy_oracle_layouts(p):
    op, dt, shape, axis, rg = p
    x, mn, mx = make_case(("oracle",) + p, dt, shape, axis, True, False, 8, rg)
    expected = reference.builtin(op, **parity_kwargs(op, x, mn, mx, range_given=rg, axis=axis))
    got = reference.numpy_qdq(x, mn, mx, range_given=rg, axis=axis)
    assert_same_bits(got, expected, f"numpy_qdq {_layout_id(p)}")


@pytest.mark.parametrize("n", [7, 64, 1000, 70001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_v4grad_subnormal_gradients_flush_like_tensorflow(dtype, n):
    """TensorFlow runs kernels with denormals-are-zero, so `g * 1` turns a
    subnormal gradient into 0. A vectorized select that the compiler folds to
    `g` keeps it (a bug the fuzzer found): the multiply must stay real."""
    rng = np.random.default_rng(n)
    tiny = np.finfo(dtype).tiny
    g = (rng.standard_normal(n) * tiny * 0.5).astype(dtype)  # mostly subnormal
    g[::5] = rng.standard_normal(g[::5].shape).astype(dtype)
    x = rng.uniform(-2, 2, n).astype(dtype)
    lo, hi = dtype(-1), dtype(1)
    for axis, mn, mx in ((-1, lo, hi), (0, np.full(n, lo), np.full(n, hi))):
        kw = dict(gradients=g, input=x, input_min=mn, input_max=mx, axis=axis)
        ours = tf_qdq.raw_ops.QuantizeAndDequantizeV4Grad(**kw)[0]
        want = tf.raw_ops.QuantizeAndDequantizeV4Grad(**kw)[0]
        assert_same_bits(ours, want, f"V4Grad subnormal gradients axis={axis}")


@pytest.mark.parametrize("dtype", [np.float16, BFLOAT16, np.float32])
def test_negative_zero_clamp_bound_in_vector_loops(dtype):
    """Unsigned with an all-negative given range: the adjusted lower bound is
    qmin * inv = -0.0, so every clamped output is -0.0 * scale * inv = +0.0. The
    half vector loops once broadcast -0.0 as +0.0 (`VF{} + v`) and gave -0.0."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1000).astype(dtype)
    kw = dict(
        input=x,
        input_min=dtype(-0.265625),
        input_max=dtype(-0.263427734375),
        signed_input=False,
        num_bits=1,
        range_given=True,
    )
    assert_same_bits(PLUGIN_OPS["V2"](**kw), reference.builtin("V2", **kw), "unsigned negative range")
