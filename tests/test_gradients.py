"""Gradients of the plugin's ops (docs/semantics.md#arithmetic, #python-api and #diff-v4-gradient and #diff-second-order-gradients).

Where TensorFlow's built-in gradient works, the plugin's gradient is compared
bit for bit with it; where the plugin deliberately differs (per-channel given
range, range_given=False for V4, second order, forward mode, half/bfloat16),
the expected values are computed in NumPy from the contract.
"""

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import BFLOAT16, PLUGIN_OPS, assert_same_bits

import tf_qdq

R = tf_qdq.raw_ops

FLOATS = [np.float32, np.float64]


# ----------------------------------------------------------------------------- helpers


def _data(dtype, shape=(6, 5), seed=0):
    """Input covering the inside, the outside and the exact bounds of [-1, 1.5],
    and an upstream gradient with both signs (so a masked position gives -0.0
    where the upstream value is negative)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 1.5).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [-1.0, 1.5, -3.0, 4.0, 0.0, -0.0]
    dy = rng.standard_normal(shape).astype(dtype)
    dy.reshape(-1)[:4] = [-2.0, -3.0, -0.5, -7.0]
    return x, dy


def _mask(x, lo, hi, axis=-1):
    """(lo <= x <= hi) per tensor, or per channel along `axis`."""
    x = np.asarray(x)
    if axis == -1:
        return (x >= lo) & (x <= hi)
    shape = [1] * x.ndim
    shape[axis] = -1
    return (x >= np.reshape(lo, shape)) & (x <= np.reshape(hi, shape))


def _grads(fn, x, lo, hi, dy):
    """Gradients of fn(x, lo, hi) w.r.t. (x, lo, hi) with upstream dy."""
    x, lo, hi, dy = (tf.convert_to_tensor(v) for v in (x, lo, hi, dy))
    with tf.GradientTape() as tape:
        tape.watch([x, lo, hi])
        y = fn(x, lo, hi)
    return tape.gradient(y, [x, lo, hi], output_gradients=dy)


def _zeros_like(a):
    a = np.asarray(a)
    return np.zeros(a.shape, a.dtype)


# ----------------------------------------------------------------------------- V2: straight-through


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("range_given", [True, False])
@pytest.mark.parametrize("round_mode", ["HALF_TO_EVEN", "HALF_UP"])
def test_v2_gradient_straight_through_matches_builtin(dtype, range_given, round_mode):
    x, dy = _data(dtype)
    lo, hi = dtype(-1.0), dtype(1.5)
    kw = dict(range_given=range_given, round_mode=round_mode, num_bits=5)
    ours = _grads(lambda a, b, c: tf_qdq.quantize_and_dequantize(a, b, c, **kw), x, lo, hi, dy)
    theirs = _grads(lambda a, b, c: tf.quantization.quantize_and_dequantize(a, b, c, **kw), x, lo, hi, dy)
    assert_same_bits(ours[0], theirs[0], "d/dx")
    assert_same_bits(ours[0], dy, "straight-through")
    assert theirs[1] is None and theirs[2] is None  # the oracle: TensorFlow gives None
    assert ours[1] is None and ours[2] is None


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_v2_gradient_per_channel_computed_range_matches_builtin(axis):
    x, dy = _data(np.float32)
    c = x.shape[axis]
    lo, hi = np.zeros(c, np.float32), np.zeros(c, np.float32)
    ours = _grads(lambda a, b, d: tf_qdq.quantize_and_dequantize(a, b, d, axis=axis), x, lo, hi, dy)
    theirs = _grads(lambda a, b, d: tf.quantization.quantize_and_dequantize(a, b, d, axis=axis), x, lo, hi, dy)
    assert_same_bits(ours[0], theirs[0], "d/dx")
    assert_same_bits(ours[0], dy, "straight-through")
    assert ours[1] is None and ours[2] is None


# ----------------------------------------------------------------------------- V4: masked


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("narrow_range", [False, True])
def test_v4_gradient_given_range_per_tensor_matches_builtin(dtype, narrow_range):
    x, dy = _data(dtype)
    lo, hi = dtype(-1.0), dtype(1.5)
    kw = dict(range_given=True, narrow_range=narrow_range)
    ours = _grads(lambda a, b, c: tf_qdq.quantize_and_dequantize_v2(a, b, c, **kw), x, lo, hi, dy)
    theirs = _grads(lambda a, b, c: tf.quantization.quantize_and_dequantize_v2(a, b, c, **kw), x, lo, hi, dy)
    for o, t, what in zip(ours, theirs, ("d/dx", "d/dmin", "d/dmax")):
        assert o is not None, what
        assert_same_bits(o, t, what)
    # and the values are what the contract says: the upstream gradient times the mask
    assert_same_bits(ours[0], dy * _mask(x, lo, hi).astype(dtype), "mask")
    assert_same_bits(ours[1], np.zeros((), dtype), "d/dmin")
    assert_same_bits(ours[2], np.zeros((), dtype), "d/dmax")
    # the bounds are inclusive, and a masked negative upstream gives -0.0
    g = ours[0].numpy().reshape(-1)
    assert g[0] == dy.reshape(-1)[0] and g[1] == dy.reshape(-1)[1]
    assert g[2] == 0 and np.signbit(g[2]) and g[3] == 0 and np.signbit(g[3])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_v4_gradient_given_range_per_channel(dtype, axis):
    # TensorFlow >= 2.16 rejects every per-channel given-range V4 call
    # (deliberate difference 6.1), so the expected value is the contract's mask.
    x, dy = _data(dtype)
    pos = axis % x.ndim
    c = x.shape[pos]
    lo = np.linspace(-1.5, -0.2, c).astype(dtype)
    hi = np.linspace(0.3, 2.0, c).astype(dtype)
    lo[0], hi[-1] = x.reshape(-1)[0], x.reshape(-1)[1]  # exact bounds in some channels
    ours = _grads(
        lambda a, b, d: tf_qdq.quantize_and_dequantize_v2(a, b, d, range_given=True, axis=axis), x, lo, hi, dy
    )
    expected = dy * _mask(x, lo, hi, pos).astype(dtype)
    assert_same_bits(ours[0], expected, "d/dx")
    assert_same_bits(ours[1], np.zeros(c, dtype), "d/dmin")
    assert_same_bits(ours[2], np.zeros(c, dtype), "d/dmax")
    # the masks really differ between channels (the test would notice a per-tensor mask)
    assert 0 < np.count_nonzero(expected == 0) < expected.size


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [None, 1])
def test_v4_gradient_computed_range_passes_through(dtype, axis):
    # Deliberate difference 6.5: TensorFlow masks against the unused
    # input_min/input_max (here 0, 0) and returns zeros; the plugin masks
    # against the data range, so the gradient passes through.
    x, dy = _data(dtype)
    c = x.shape[1]
    lo = dtype(0) if axis is None else np.zeros(c, dtype)
    hi = dtype(0) if axis is None else np.zeros(c, dtype)
    ours = _grads(lambda a, b, d: tf_qdq.quantize_and_dequantize_v2(a, b, d, axis=axis), x, lo, hi, dy)
    assert_same_bits(ours[0], dy, "d/dx")
    assert_same_bits(ours[1], _zeros_like(lo), "d/dmin")
    assert_same_bits(ours[2], _zeros_like(hi), "d/dmax")
    if axis is None:
        theirs = _grads(lambda a, b, d: tf.quantization.quantize_and_dequantize_v2(a, b, d), x, lo, hi, dy)
        # TensorFlow: the upstream gradient only where 0 <= x <= 0
        assert_same_bits(theirs[0], dy * _mask(x, lo, hi).astype(dtype), "TensorFlow's gradient")
        assert np.count_nonzero(theirs[0].numpy()) == 2


@pytest.mark.parametrize("grad_api", ["tape", "tf.gradients"])
@pytest.mark.parametrize(
    "axis,shape",
    [(None, [6, 5]), (1, [6, 5]), (1, [None, 5]), (1, [6, None])],
    ids=["per-tensor", "per-channel", "unknown-batch", "unknown-depth"],
)
def test_v4_gradient_computed_range_bounds_are_made_on_the_host(grad_api, axis, shape):
    """V4Grad takes its bounds in host memory: the [-inf, +inf] bounds of range_given=False are
    made on the CPU (not on the forward op's device), and their shape is the depth."""
    depth = 5

    def f(x):
        lo = np.float32(0) if axis is None else np.zeros(depth, np.float32)
        if grad_api == "tape":
            with tf.GradientTape() as t:
                t.watch(x)
                y = tf_qdq.quantize_and_dequantize_v2(x, lo, lo, axis=axis)
            return t.gradient(y, x)
        return tf.gradients(tf_qdq.quantize_and_dequantize_v2(x, lo, lo, axis=axis), x)[0]

    with tf.device("/device:GPU:0"):  # traced only: the placement is recorded, never run
        graph = tf.function(f, autograph=False).get_concrete_function(tf.TensorSpec(shape, tf.float32)).graph
    grads = [op for op in graph.get_operations() if op.type == "TfQdq>QuantizeAndDequantizeV4Grad"]
    assert len(grads) == 1
    bounds = grads[0].inputs[2:]
    for b in bounds:
        assert tf.DeviceSpec.from_string(b.op.device).device_type == "CPU", (b.op.type, b.op.device)
        assert b.shape.as_list() == ([] if axis is None else [shape[1]])
        assert "_class" not in b.op.node_def.attr  # not colocated with the forward op
    if shape[1] is None:  # the depth comes from the data's shape, outside the CPU scope
        shapes = [op for op in graph.get_operations() if op.type == "Shape"]
        assert shapes and all("CPU" not in op.device for op in shapes)
    x, dy = _data(np.float32)
    assert_same_bits(tf.function(f, autograph=False)(tf.constant(x)), np.ones_like(x), "pass-through")


# ----------------------------------------------------------------------------- V1 / V3: straight-through


@pytest.mark.parametrize("dtype", FLOATS)
def test_v3_gradient_straight_through_matches_builtin(dtype):
    x, dy = _data(dtype)
    lo, hi, nb = tf.constant(dtype(-1.0)), tf.constant(dtype(1.5)), tf.constant(4)

    def run(op):
        xt, dyt = tf.constant(x), tf.constant(dy)
        with tf.GradientTape() as tape:
            tape.watch([xt, lo, hi])
            y = op(input=xt, input_min=lo, input_max=hi, num_bits=nb, narrow_range=True)
        return tape.gradient(
            y, [xt, lo, hi, nb], output_gradients=dyt, unconnected_gradients=tf.UnconnectedGradients.NONE
        )

    ours, theirs = run(R.QuantizeAndDequantizeV3), run(tf.raw_ops.QuantizeAndDequantizeV3)
    assert_same_bits(ours[0], theirs[0], "d/dx")
    assert_same_bits(ours[0], dy, "straight-through")
    assert theirs[1] is None and theirs[2] is None
    assert ours[1] is None and ours[2] is None and ours[3] is None


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("range_given", [True, False])
def test_v1_gradient_straight_through(dtype, range_given):
    # TensorFlow's V1 cannot run (removed at GraphDef version 22): the
    # contract's straight-through gradient is the oracle.
    x, dy = _data(dtype)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = R.QuantizeAndDequantize(input=xt, range_given=range_given, input_min=-1.0, input_max=1.5)
    assert_same_bits(tape.gradient(y, xt, output_gradients=tf.constant(dy)), dy, "d/dx")


def test_gradients_inside_tf_function_match_eager():
    x, dy = _data(np.float32)
    lo, hi = np.float32(-1.0), np.float32(1.5)

    def g(a, b, c, d):
        with tf.GradientTape() as tape:
            tape.watch([a, b, c])
            y2 = tf_qdq.quantize_and_dequantize(a, b, c, range_given=True)
            y4 = tf_qdq.quantize_and_dequantize_v2(a, b, c, range_given=True)
        return tape.gradient([y2, y4], [a, b, c], output_gradients=[d, d])

    args = [tf.constant(v) for v in (x, lo, hi, dy)]
    eager = g(*args)
    traced = tf.function(g)(*args)
    expected = dy + dy * _mask(x, lo, hi).astype(np.float32)
    for e, t in zip(eager, traced):
        assert_same_bits(t, e, "tf.function vs eager")
    assert_same_bits(eager[0], expected, "d/dx of V2 + V4")


# ----------------------------------------------------------------------------- V4Grad kernel


SPECIALS = dict(
    gradients=np.array([np.inf, 2, 3, np.nan, np.inf], np.float32),
    input=np.array([-2, -1, np.nan, 2, 0], np.float32),
    input_min=np.float32(-1),
    input_max=np.float32(1),
)


def test_v4grad_specials_row():
    ours = R.QuantizeAndDequantizeV4Grad(**SPECIALS)
    theirs = tf.raw_ops.QuantizeAndDequantizeV4Grad(**SPECIALS)
    for o, t in zip(ours, theirs):
        assert_same_bits(o, t, "V4Grad specials")
    got = ours[0].numpy()
    assert np.isnan(got[0]) and got[1] == 2 and got[2] == 0 and np.isnan(got[3]) and got[4] == np.inf


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
def test_v4grad_kernel_matches_builtin(dtype, axis):
    x, dy = _data(dtype, shape=(4, 3, 5), seed=axis + 3)
    if axis == -1:
        lo, hi = dtype(-1.0), dtype(1.5)
    else:
        c = x.shape[axis]
        lo = np.linspace(-1.5, -0.1, c).astype(dtype)
        hi = np.linspace(0.2, 1.5, c).astype(dtype)
    kw = dict(gradients=dy, input=x, input_min=lo, input_max=hi, axis=axis)
    ours = R.QuantizeAndDequantizeV4Grad(**kw)
    theirs = tf.raw_ops.QuantizeAndDequantizeV4Grad(**kw)
    for o, t, what in zip(ours, theirs, ("input_backprop", "input_min_backprop", "input_max_backprop")):
        assert_same_bits(o, t, what)
    assert_same_bits(ours[0], dy * _mask(x, lo, hi, axis).astype(dtype), "mask")


# ----------------------------------------------------------------------------- second order


@pytest.mark.parametrize("axis", [-1, 1])
def test_v4grad_own_gradient(axis):
    # Deliberate difference 6.6: TensorFlow's V4Grad gradient raises TypeError.
    x, g = _data(np.float32, seed=5)
    u = np.random.default_rng(6).standard_normal(x.shape).astype(np.float32)
    u.reshape(-1)[2:4] = [-1.0, -2.0]  # negative upstream at masked positions -> -0.0
    if axis == -1:
        lo, hi = np.float32(-1.0), np.float32(1.5)
    else:
        lo = np.linspace(-1.5, -0.2, x.shape[1]).astype(np.float32)
        hi = np.linspace(0.3, 2.0, x.shape[1]).astype(np.float32)
    gt, xt, lot, hit = (tf.constant(v) for v in (g, x, lo, hi))
    with tf.GradientTape() as tape:
        tape.watch([gt, xt, lot, hit])
        out = R.QuantizeAndDequantizeV4Grad(gradients=gt, input=xt, input_min=lot, input_max=hit, axis=axis)
    dg, dx, dlo, dhi = tape.gradient(out.input_backprop, [gt, xt, lot, hit], output_gradients=tf.constant(u))
    assert_same_bits(dg, u * _mask(x, lo, hi, axis).astype(np.float32), "d/dgradients")
    assert_same_bits(dx, np.zeros_like(x), "d/dinput")
    assert_same_bits(dlo, _zeros_like(lo), "d/dmin")
    assert_same_bits(dhi, _zeros_like(hi), "d/dmax")


def test_v4grad_gradient_of_all_outputs():
    x, g = _data(np.float32, seed=7)
    lo, hi = np.float32(-1.0), np.float32(1.5)
    gt, xt = tf.constant(g), tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch([gt, xt])
        out = R.QuantizeAndDequantizeV4Grad(gradients=gt, input=xt, input_min=lo, input_max=hi)
        total = tf.reduce_sum(out[0]) + tf.reduce_sum(out[1]) + tf.reduce_sum(out[2])
    dg, dx = tape.gradient(total, [gt, xt])
    assert_same_bits(dg, _mask(x, lo, hi).astype(np.float32), "d/dgradients")
    assert_same_bits(dx, np.zeros_like(x), "d/dinput")


def test_second_order_through_v4_api():
    x, dy = _data(np.float64, seed=8)
    lo, hi = np.float64(-1.0), np.float64(1.5)
    xt, dyt = tf.constant(x), tf.constant(dy)
    with tf.GradientTape(persistent=True) as outer:
        outer.watch([xt, dyt])
        with tf.GradientTape() as inner:
            inner.watch(xt)
            y = tf_qdq.quantize_and_dequantize_v2(xt, lo, hi, range_given=True)
        gx = inner.gradient(y, xt, output_gradients=dyt)
    assert_same_bits(gx, dy * _mask(x, lo, hi).astype(np.float64), "first order")
    assert_same_bits(outer.gradient(gx, dyt), _mask(x, lo, hi).astype(np.float64), "d(gx)/d(dy)")
    assert_same_bits(outer.gradient(gx, xt), np.zeros_like(x), "d(gx)/dx")


def test_second_order_through_v2_api_is_straight_through():
    x, dy = _data(np.float32, seed=9)
    xt, dyt = tf.constant(x), tf.constant(dy)
    with tf.GradientTape() as outer:
        outer.watch(dyt)
        with tf.GradientTape() as inner:
            inner.watch(xt)
            y = tf_qdq.quantize_and_dequantize(xt, -1.0, 1.5, range_given=True)
        gx = inner.gradient(y, xt, output_gradients=dyt)
    assert_same_bits(outer.gradient(gx, dyt), np.ones_like(x), "d(gx)/d(dy)")


# ----------------------------------------------------------------------------- forward mode


def _jvp(fn, primals, tangents):
    primals = [tf.convert_to_tensor(p) for p in primals]
    tangents = [tf.convert_to_tensor(t) for t in tangents]
    with tf.autodiff.ForwardAccumulator(primals, tangents) as acc:
        out = fn(*primals)
    if isinstance(out, (list, tuple)):
        return out, [acc.jvp(o) for o in out]
    return out, acc.jvp(out)


def _check_zero_or_none(jvp, like, what):
    if jvp is not None:
        assert_same_bits(jvp, _zeros_like(like), what)


@pytest.mark.parametrize("dtype", FLOATS)
def test_forward_mode_v1(dtype):
    x, t = _data(dtype, seed=10)
    out, jvp = _jvp(
        lambda a: R.QuantizeAndDequantize(input=a, range_given=True, input_min=-1.0, input_max=1.5), [x], [t]
    )
    assert_same_bits(jvp, t, "jvp V1")
    assert_same_bits(out, PLUGIN_OPS["V1"](input=x, range_given=True, input_min=-1.0, input_max=1.5), "primal")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("range_given", [True, False])
def test_forward_mode_v2(dtype, range_given):
    x, t = _data(dtype, seed=11)
    lo, hi = dtype(-1.0), dtype(1.5)
    _, jvp = _jvp(
        lambda a, b, c: tf_qdq.quantize_and_dequantize(a, b, c, range_given=range_given),
        [x, lo, hi],
        [t, dtype(3.0), dtype(-5.0)],
    )
    assert_same_bits(jvp, t, "jvp V2")


@pytest.mark.parametrize("dtype", FLOATS)
def test_forward_mode_v3(dtype):
    x, t = _data(dtype, seed=12)
    lo, hi = dtype(-1.0), dtype(1.5)
    _, jvp = _jvp(
        lambda a, b, c: R.QuantizeAndDequantizeV3(input=a, input_min=b, input_max=c, num_bits=6),
        [x, lo, hi],
        [t, dtype(3.0), dtype(-5.0)],
    )
    assert_same_bits(jvp, t, "jvp V3")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [None, 1])
def test_forward_mode_v4_given_range(dtype, axis):
    x, t = _data(dtype, seed=13)
    if axis is None:
        lo, hi = dtype(-1.0), dtype(1.5)
    else:
        lo = np.linspace(-1.5, -0.2, x.shape[1]).astype(dtype)
        hi = np.linspace(0.3, 2.0, x.shape[1]).astype(dtype)
    _, jvp = _jvp(
        lambda a, b, c: tf_qdq.quantize_and_dequantize_v2(a, b, c, range_given=True, axis=axis),
        [x, lo, hi],
        [t, np.full_like(lo, 3.0), np.full_like(hi, -5.0)],
    )
    assert_same_bits(jvp, t * _mask(x, lo, hi, -1 if axis is None else axis).astype(dtype), "jvp V4")


def test_forward_mode_v4_computed_range():
    x, t = _data(np.float32, seed=14)
    _, jvp = _jvp(lambda a: tf_qdq.quantize_and_dequantize_v2(a, 0.0, 0.0), [x], [t])
    assert_same_bits(jvp, t, "jvp V4 computed range")


@pytest.mark.parametrize("dtype", FLOATS)
def test_forward_mode_v4grad(dtype):
    x, g = _data(dtype, seed=15)
    tg = np.random.default_rng(16).standard_normal(x.shape).astype(dtype)
    tg.reshape(-1)[2] = -1.0
    tx = np.ones_like(x)
    lo, hi = dtype(-1.0), dtype(1.5)

    def f(gg, xx, a, b):
        return R.QuantizeAndDequantizeV4Grad(gradients=gg, input=xx, input_min=a, input_max=b)

    out, jvps = _jvp(f, [g, x, lo, hi], [tg, tx, dtype(2.0), dtype(-2.0)])
    assert_same_bits(out[0], g * _mask(x, lo, hi).astype(dtype), "primal")
    assert_same_bits(jvps[0], tg * _mask(x, lo, hi).astype(dtype), "jvp input_backprop")
    _check_zero_or_none(jvps[1], lo, "jvp input_min_backprop")
    _check_zero_or_none(jvps[2], hi, "jvp input_max_backprop")


# ----------------------------------------------------------------------------- half / bfloat16


@pytest.mark.parametrize("dtype", [np.float16, BFLOAT16], ids=["half", "bfloat16"])
@pytest.mark.parametrize("axis", [None, 0])
def test_low_precision_v4_gradient_is_float32_gradient_cast(dtype, axis):
    x, dy = _data(dtype, seed=17)
    if axis is None:
        lo, hi = np.asarray(-1.0, dtype), np.asarray(1.5, dtype)
    else:
        lo = np.linspace(-1.5, -0.2, x.shape[0]).astype(dtype)
        hi = np.linspace(0.3, 2.0, x.shape[0]).astype(dtype)
        lo[0], hi[1] = x.reshape(-1)[0], x[1, 0]  # exact bounds
    ours = _grads(
        lambda a, b, c: tf_qdq.quantize_and_dequantize_v2(a, b, c, range_given=True, axis=axis), x, lo, hi, dy
    )
    f32 = [v.astype(np.float32) for v in (x, lo, hi, dy)]
    if axis is None:
        ref = _grads(lambda a, b, c: tf.quantization.quantize_and_dequantize_v2(a, b, c, range_given=True), *f32)[
            0
        ].numpy()
    else:
        ref = tf.raw_ops.QuantizeAndDequantizeV4Grad(
            gradients=f32[3], input=f32[0], input_min=f32[1], input_max=f32[2], axis=axis
        )[0].numpy()
    assert_same_bits(ours[0], ref.astype(dtype), "d/dx")
    assert_same_bits(ours[1], _zeros_like(lo), "d/dmin")
    assert_same_bits(ours[2], _zeros_like(hi), "d/dmax")
    assert 0 < np.count_nonzero(ref == 0) < ref.size


@pytest.mark.parametrize("dtype", [np.float16, BFLOAT16], ids=["half", "bfloat16"])
def test_low_precision_straight_through_gradients(dtype):
    x, dy = _data(dtype, seed=18)
    lo, hi = np.asarray(-1.0, dtype), np.asarray(1.5, dtype)
    g2 = _grads(lambda a, b, c: tf_qdq.quantize_and_dequantize(a, b, c, range_given=True), x, lo, hi, dy)
    assert_same_bits(g2[0], dy, "V2")
    g4 = _grads(lambda a, b, c: tf_qdq.quantize_and_dequantize_v2(a, b, c), x, lo, hi, dy)
    assert_same_bits(g4[0], dy, "V4 computed range")
    g3 = _grads(lambda a, b, c: R.QuantizeAndDequantizeV3(input=a, input_min=b, input_max=c, num_bits=8), x, lo, hi, dy)
    assert_same_bits(g3[0], dy, "V3")


@pytest.mark.parametrize("dtype", [np.float16, BFLOAT16], ids=["half", "bfloat16"])
def test_low_precision_v4grad_kernel_and_second_order(dtype):
    x, g = _data(dtype, seed=19)
    lo, hi = np.asarray(-1.0, dtype), np.asarray(1.5, dtype)
    gt, xt = tf.constant(g), tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(gt)
        out = R.QuantizeAndDequantizeV4Grad(gradients=gt, input=xt, input_min=lo, input_max=hi)
    ref = tf.raw_ops.QuantizeAndDequantizeV4Grad(
        gradients=g.astype(np.float32),
        input=x.astype(np.float32),
        input_min=np.float32(-1.0),
        input_max=np.float32(1.5),
    )
    assert_same_bits(out[0], ref[0].numpy().astype(dtype), "input_backprop")
    assert_same_bits(out[1], np.zeros((), dtype), "input_min_backprop")
    assert_same_bits(tape.gradient(out[0], gt), _mask(x, lo, hi).astype(dtype), "d/dgradients")


@pytest.mark.parametrize("dtype", [np.float16, BFLOAT16], ids=["half", "bfloat16"])
def test_low_precision_forward_mode(dtype):
    x, t = _data(dtype, seed=20)
    lo, hi = np.asarray(-1.0, dtype), np.asarray(1.5, dtype)
    _, jvp = _jvp(
        lambda a, b, c: tf_qdq.quantize_and_dequantize_v2(a, b, c, range_given=True),
        [x, lo, hi],
        [t, np.asarray(1.0, dtype), np.asarray(1.0, dtype)],
    )
    assert_same_bits(jvp, t * _mask(x, lo, hi).astype(dtype), "jvp V4")
