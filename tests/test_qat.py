"""tf_qdq.keras.quantize_model and calibrate: placement, weights, errors, calibration
methods against NumPy references, QAT with fit, saving, tf_keras."""

import importlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import child_env

import tf_qdq.keras as qk
from tf_qdq.keras.layer import QuantizeDequantize

L = keras.layers
cal = importlib.import_module("tf_qdq.keras.calibrate")  # the module (the package attribute is the function)


def _fed_by_quantizer(qmodel):
    """{layer name: [per call: tuple of bools, input i comes from a QuantizeDequantize layer]}."""
    out = {}
    for layer in qmodel.layers:
        if isinstance(layer, (QuantizeDequantize, L.InputLayer)):
            continue
        calls = []
        for node in layer._inbound_nodes:
            calls.append(tuple(isinstance(t._keras_history.operation, QuantizeDequantize) for t in node.input_tensors))
        out[layer.name] = calls
    return out


def all_kinds_model():
    """Every layer kind the tensorrt recipe has a rule for, in one two-input model."""
    img = keras.Input((16, 16, 3), name="img")
    vol = keras.Input((4, 8, 8, 2), name="vol")
    seq = keras.Input((12, 5), name="seq")
    x = L.Conv2D(8, 3, padding="same", name="stem")(img)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu", name="stem_relu")(x)
    p = L.MaxPooling2D(2, name="stem_pool")(x)  # feeds b1_add's quantized input: quantized
    # residual block, identity shortcut (v1 form)
    y = L.Conv2D(8, 3, padding="same", name="b1_conv")(p)
    y = L.BatchNormalization(name="b1_bn")(y)
    r = L.Add(name="b1_add")([p, y])
    # pre-activation block (v2 form): BN after Add, pooled shortcut
    z = L.BatchNormalization(name="b2_preact_bn")(r)
    z = L.Activation("relu", name="b2_preact_relu")(z)
    s = L.MaxPooling2D(1, strides=2, name="b2_pool_shortcut")(r)
    z = L.Conv2D(8, 3, strides=2, padding="same", name="b2_conv")(z)
    r2 = L.Add(name="b2_add")([s, z])
    # depthwise, separable, squeeze-excite
    d = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(r2)
    d = L.SeparableConv2D(8, 3, padding="same", name="sep")(d)
    se = L.GlobalAveragePooling2D(keepdims=True, name="se_pool")(d)
    se = L.Conv2D(8, 1, activation="sigmoid", name="se_conv")(se)
    d = L.Multiply(name="se_mul")([d, se])
    c = L.Concatenate(name="concat")([d, r2])
    u = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(c)
    u = L.AveragePooling2D(2, name="avg")(u)
    g = L.GlobalAveragePooling2D(name="gap")(u)
    v = L.Conv3D(3, 3, padding="same", name="c3")(vol)
    v = L.Conv3DTranspose(2, 3, padding="same", name="c3t")(v)
    v = L.GlobalAveragePooling3D(name="gap3")(v)
    q = L.Conv1D(4, 3, name="c1")(seq)
    q = L.EinsumDense("abc,cd->abd", output_shape=(None, 6), bias_axes="d", name="ein")(q)
    q = L.GlobalAveragePooling1D(name="gap1")(q)
    h = L.Concatenate(name="heads")([g, v, q])
    out = L.Dense(10, name="logits")(h)
    aux = L.Dense(2, name="aux")(g)
    return keras.Model([img, vol, seq], [out, aux], name="all_kinds")


def _inputs(n=4, seed=0):
    rng = np.random.RandomState(seed)
    return [
        rng.uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32),
        rng.uniform(-1, 1, (n, 4, 8, 8, 2)).astype(np.float32),
        rng.uniform(-1, 1, (n, 12, 5)).astype(np.float32),
    ]


# Which inputs of each call come from a quantizer, recipe "tensorrt".
ALL_KINDS_TENSORRT = {
    "stem": [(True,)],
    "stem_bn": [(False,)],
    "stem_relu": [(False,)],
    "stem_pool": [(True,)],
    "b1_conv": [(True,)],
    "b1_bn": [(False,)],
    "b1_add": [(True, False)],  # the identity branch; BN<-Conv stays float
    "b2_preact_bn": [(True,)],  # BN after an Add
    "b2_preact_relu": [(False,)],
    "b2_pool_shortcut": [(True,)],  # feeds a quantized Add input
    "b2_conv": [(True,)],
    "b2_add": [(True, False)],  # Conv branch (last conv-like input) float
    "dw": [(True,)],
    "sep": [(True,)],
    "se_pool": [(True,)],
    "se_conv": [(True,)],
    "se_mul": [(True, True)],
    "concat": [(False, False)],
    "up": [(True,)],
    "avg": [(True,)],
    "gap": [(True,)],
    "c3": [(True,)],
    "c3t": [(True,)],
    "gap3": [(True,)],
    "c1": [(True,)],
    "ein": [(True,)],
    "gap1": [(True,)],
    "heads": [(False, False, False)],
    "logits": [(True,)],
    "aux": [(True,)],
}


@pytest.fixture(scope="module")
def all_kinds():
    model = all_kinds_model()
    qmodel = qk.quantize_model(model, "tensorrt")
    return model, qmodel


def test_tensorrt_placement_every_layer_kind(all_kinds):
    model, qmodel = all_kinds
    assert qmodel.tf_qdq_recipe == "tensorrt"
    assert _fed_by_quantizer(qmodel) == ALL_KINDS_TENSORRT
    # One quantizer per tensor: b1_conv's and b1_add's shared input p has one.
    acts = qk.quantizers(qmodel)
    assert all(q.axis is None and q.signed and not q.narrow_range and q.num_bits == 8 for q in acts)
    names = sorted(q.name for q in acts)
    assert len(names) == len(set(names))
    assert len([q for q in acts if q.name == "depthwise_output_quantizer"]) == 1  # sep's middle tensor
    # the input model is untouched
    assert not any(isinstance(layer, QuantizeDequantize) for layer in model.layers)
    assert type(model.get_layer("stem")) is L.Conv2D


def test_weight_quantizers_and_axes(all_kinds):
    model, qmodel = all_kinds
    want_shapes = {
        "stem": {"kernel_quantizer": (8,)},
        "dw": {"kernel_quantizer": (16,)},  # 8 channels x multiplier 2, via the reshape
        "sep": {"depthwise_kernel_quantizer": (16,), "pointwise_kernel_quantizer": (8,)},  # sep: 16 -> 8
        "up": {"kernel_quantizer": (4,)},  # transpose: axis -2 of (3, 3, 4, 16)
        "c3t": {"kernel_quantizer": (2,)},
        "ein": {"kernel_quantizer": (6,)},
        "logits": {"kernel_quantizer": (10,)},
    }
    for name, quantizers in want_shapes.items():
        layer = qmodel.get_layer(name)
        for attr, shape in quantizers.items():
            q = getattr(layer, attr)
            assert tuple(q.max.shape) == shape, (name, attr)
            assert q.narrow_range and q.num_bits == 8 and q.range_mode == "last"
    # weights copied; kernel ranges are the kernels' per-channel absolute maxima
    for layer in model.layers:
        qlayer = qmodel.get_layer(layer.name)
        for a, b in zip(layer.weights, qlayer.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    k = model.get_layer("up").kernel.numpy()
    np.testing.assert_array_equal(qmodel.get_layer("up").kernel_quantizer.max.numpy(), np.abs(k).max(axis=(0, 1, 3)))
    k = model.get_layer("dw").kernel.numpy()  # (3, 3, 8, 2): channel c*2+m
    np.testing.assert_array_equal(
        qmodel.get_layer("dw").kernel_quantizer.max.numpy(), np.abs(k).max(axis=(0, 1)).reshape(-1)
    )
    assert qk.wrappers.einsum_kernel_axis("abc,cd->abd") == 1
    assert qk.wrappers.einsum_kernel_axis("abc,cde->abde") == 2


def test_calibrated_model_is_close_to_float(all_kinds):
    model, qmodel = all_kinds
    x = _inputs(8)
    qk.calibrate(qmodel, [[v[:4] for v in x], [v[4:] for v in x]], verbose=0)  # a list of batches
    acts = qk.quantizers(qmodel)
    assert all(q.range_mode == "fixed" and q.max.numpy() > 0 for q in acts)
    want = model(x)
    got = qmodel(x)
    for w, g in zip(want, got):
        scale = np.abs(w.numpy()).max()
        err = np.abs(w.numpy() - g.numpy()).max()
        assert 0 < err < 0.1 * scale  # quantized (not equal), but close


def test_onnxruntime_recipe_quantizes_outputs():
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", name="c")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    y = L.Conv2D(4, 1, name="c2")(x)
    x = L.Add(name="add")([x, y])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, name="d")(x)
    q = qk.quantize_model(keras.Model(inp, out), "onnxruntime")
    fed = _fed_by_quantizer(q)
    assert fed["c"] == [(True,)] and fed["c2"] == [(True,)] and fed["add"] == [(True, True)]
    assert fed["gap"] == [(True,)] and fed["d"] == [(True,)]
    # c's output is quantized before the BN (onnxruntime cannot fold a BN into a
    # convolution with dequantized weights); the ReLU output, shared by c2 and add,
    # is unsigned; add's output (c2 has no activation) is signed.
    assert _fed_by_quantizer(q)["bn"] == [(True,)] and q.get_layer("c_output_quantizer").signed
    relu_q = q.get_layer("c2_input_quantizer")
    assert not relu_q.signed and len(relu_q._inbound_nodes) == 1
    assert q.get_layer("add_output_quantizer").signed
    assert q.tf_qdq_recipe == "onnxruntime"


def test_onnxruntime_recipe_quantizes_before_a_sigmoid(tmp_path):
    inp = keras.Input((4, 4, 2))
    model = keras.Model(inp, L.Conv2D(2, 1, activation="sigmoid", name="gate")(inp))
    q = qk.quantize_model(model, "onnxruntime")
    gate = q.get_layer("gate")
    assert gate.output_quantizer is not None and gate.output_quantizer.signed
    assert gate.output_quantizer in qk.quantizers(q)
    xs = np.random.RandomState(0).uniform(-1, 1, (8, 4, 4, 2)).astype(np.float32)
    qk.calibrate(q, xs, verbose=0)
    pre = (
        keras.ops.convert_to_numpy(keras.ops.conv(xs, model.get_layer("gate").kernel))
        + model.get_layer("gate").bias.numpy()
    )
    assert float(gate.output_quantizer.max.numpy()) == np.float32(np.abs(pre).max())
    assert gate.get_config()["output_quantization"]["range_mode"] == "fixed"
    q.save(str(tmp_path / "g.keras"))
    loaded = keras.models.load_model(str(tmp_path / "g.keras"))
    np.testing.assert_array_equal(loaded(xs).numpy().view(np.uint32), q(xs).numpy().view(np.uint32))
    assert qk.quantize_model(model, "tensorrt").get_layer("gate").output_quantizer is None


def test_exclude_and_overrides():
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="first")(inp)
    x = L.Conv2D(4, 3, name="second")(x)
    x = L.Flatten()(x)
    out = L.Dense(2, name="head")(x)
    model = keras.Model(inp, out)
    q = qk.quantize_model(
        model,
        exclude=["fir*"],
        overrides={"head": {"num_bits": 4, "per_channel": False}, L.Conv2D: {"range_mode": "moving_average"}},
    )
    assert type(q.get_layer("first")) is L.Conv2D
    fed = _fed_by_quantizer(q)
    assert fed["first"] == [(False,)] and fed["second"] == [(True,)]
    assert q.get_layer("head").kernel_quantizer.num_bits == 4 and q.get_layer("head").kernel_quantizer.axis is None
    assert q.get_layer("second_input_quantizer").range_mode == "moving_average"
    assert q.get_layer("head_input_quantizer").num_bits == 4
    q = qk.quantize_model(model, overrides={"second": {"quantize_input": False}})
    assert _fed_by_quantizer(q)["second"] == [(False,)]
    with pytest.warns(UserWarning, match="'nothing\\*' matches no layer"):
        qk.quantize_model(model, exclude=["nothing*"])
    with pytest.raises(ValueError, match="unknown keys \\['bitz'\\]"):
        qk.quantize_model(model, overrides={"head": {"bitz": 4}})


def test_errors():
    inp = keras.Input((4,))
    model = keras.Model(inp, L.Dense(2)(inp))
    with pytest.raises(ValueError, match="unknown recipe 'tflite'.*onnxruntime.*tensorrt"):
        qk.quantize_model(model, "tflite")

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    with pytest.raises(TypeError, match="subclassed model.*Functional API"):
        qk.quantize_model(Sub())
    q = qk.quantize_model(model)
    with pytest.raises(ValueError, match="already quantized"):
        qk.quantize_model(q)

    @keras.saving.register_keras_serializable(package="test_qat")
    class MyDense(L.Layer):
        def build(self, shape):
            self.kernel = self.add_weight(shape=(shape[-1], 2), name="kernel")

        def call(self, x):
            return x @ self.kernel

    m2 = keras.Model(inp, MyDense(name="mine")(inp))
    with pytest.raises(ValueError, match="'mine' \\(MyDense\\) has a kernel.*exclude=\\['mine'\\]"):
        qk.quantize_model(m2)
    assert qk.quantize_model(m2, exclude=["mine"]) is not None
    with pytest.raises(ValueError, match="unknown calibration method 'kl'"):
        qk.calibrate(q, np.zeros((2, 4), np.float32), "kl")
    with pytest.raises(ValueError, match="empty"):
        qk.calibrate(q, np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="empty"):
        qk.calibrate(q, iter([]))
    with pytest.raises(ValueError, match="no QuantizeDequantize layers"):
        qk.calibrate(model, np.zeros((2, 4), np.float32))


def test_shared_nested_multi_io():
    keras.utils.set_random_seed(0)
    backbone_in = keras.Input((6,))
    backbone = keras.Model(backbone_in, L.Dense(5, activation="relu", name="bb_dense")(backbone_in), name="bb")
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    shared = L.Dense(6, name="shared")
    ha, hb = backbone(shared(a)), backbone(shared(b))
    model = keras.Model([a, b], [L.Dense(1, name="oa")(ha), L.Add(name="sum")([ha, hb])])
    q = qk.quantize_model(model)
    fed = _fed_by_quantizer(q)
    assert fed["shared"] == [(True,), (True,)]  # one layer, two calls
    assert fed["bb_dense"] == [(True,), (True,)]  # nested model inlined
    assert fed["sum"] == [(True, True)]  # inputs from Dense(relu), not conv-like
    assert len(q.get_layer("shared").kernel_quantizer.max.shape) == 1
    x = [np.ones((2, 6), np.float32), -np.ones((2, 6), np.float32)]
    qk.calibrate(q, [x], verbose=0)
    for w, g in zip(model(x), q(x)):
        # within a few 8-bit quanta of the float model (the calls wired as in the original)
        np.testing.assert_allclose(w.numpy(), g.numpy(), atol=0.1 * np.abs(w.numpy()).max())


# ---------------------------------------------------------------- calibration


def _hist(values):
    h = cal.Histogram()
    for v in values:
        h.add(np.abs(v))
    return h


def _ref_fake_quant(x, amax, num_bits, unsigned):
    qmax = (1 << num_bits) - 1 if unsigned else (1 << (num_bits - 1)) - 1
    s = amax / qmax
    return np.array([min(max(round(v / s), 0), qmax) * s for v in x])


def ref_entropy(counts, edges, num_bits=8, unsigned=False, start=128):
    """Loop-by-loop TensorRT KL calibration."""
    counts = [float(c) for c in counts]
    counts[0] = counts[1]
    nlevels = 1 << (num_bits - 1 + int(unsigned))
    best = (None, float("inf"))
    for i in range(start, len(counts) + 1):
        p = counts[:i]
        p[-1] += sum(counts[i:])
        level = [j * nlevels // i for j in range(i)]
        total, nonzero = [0.0] * nlevels, [0] * nlevels
        for j in range(i):
            if counts[j] != 0:
                total[level[j]] += counts[j]
                nonzero[level[j]] += 1
        q = [total[level[j]] / nonzero[level[j]] if counts[j] != 0 else 0.0 for j in range(i)]
        ps, qs = sum(p), sum(q)
        kl = 0.0
        for pj, qj in zip(p, q):
            if pj > 0:
                kl = kl + pj / ps * np.log((pj / ps) / (qj / qs)) if qj > 0 else float("inf")
        if kl <= best[1]:
            best = (i, kl)
    return edges[best[0]]


def test_calibration_methods_match_references():
    rng = np.random.RandomState(3)
    batches = [rng.laplace(0, 1, 3000), rng.laplace(0, 1.3, 3000)]  # the second extends the histogram
    h = _hist(batches)
    allv = np.abs(np.concatenate(batches))
    assert h.amax == allv.max() and h.counts.sum() == allv.size and len(h.counts) > cal.BINS
    edges = h.edges
    # percentile: first edge where the cumulative share reaches p
    i = next(k for k in range(len(h.counts)) if h.counts[: k + 1].sum() * 1000 >= 999 * allv.size)
    assert cal.amax_percentile(h, 99.9) == edges[i + 1]
    # mse on bin centres
    centres = (edges[:-1] + edges[1:]) / 2
    errs = [
        np.sum((_ref_fake_quant(centres, centres[k], 8, False) - centres) ** 2 * h.counts)
        for k in range(128, len(centres))
    ]
    assert cal.amax_mse(h, 8, False) == centres[128 + int(np.argmin(errs))]
    # entropy (coarser histogram to keep the loop reference quick)
    h2 = cal.Histogram(bins=256)
    for v in batches:
        h2.add(np.abs(v))
    want = ref_entropy(h2.counts, h2.edges)
    assert cal.amax_entropy(h2, 8, False) == want
    assert 0 < want < h2.amax
    want_u = ref_entropy(h2.counts, h2.edges, unsigned=True, start=256)
    assert cal.amax_entropy(h2, 8, True, start=256) == want_u


def test_calibrate_sets_ranges_per_method():
    inp = keras.Input((4,))
    out = L.Dense(3, kernel_initializer="ones", name="d")(inp)
    model = keras.Model(inp, out)
    rng = np.random.RandomState(0)
    x = rng.laplace(0, 1, (512, 4)).astype(np.float32)
    got = {}
    for method in qk.CALIBRATION_METHODS:
        q = qk.quantize_model(model)
        qk.calibrate(q, x, method, verbose=0)
        got[method] = float(q.get_layer("d_input_quantizer").max.numpy())
        assert float(q.get_layer("d_input_quantizer").min.numpy()) == -got[method]
    assert got["max"] == np.float32(np.abs(x).max())
    h = _hist([x[k : k + 32] for k in range(0, 512, 32)])  # calibrate runs arrays in batches of 32
    assert got["percentile"] == np.float32(cal.amax_percentile(h, 99.99))
    assert got["entropy"] == np.float32(cal.amax_entropy(h, 8, False))
    assert got["mse"] == np.float32(cal.amax_mse(h, 8, False))
    assert got["mse"] < got["max"] and got["entropy"] < got["max"]
    # steps limits the batches; a generator of (x, y) works
    q = qk.quantize_model(model)
    qk.calibrate(q, ((x[k : k + 8], x[k : k + 8]) for k in range(0, 512, 8)), steps=1, verbose=0)
    assert float(q.get_layer("d_input_quantizer").max.numpy()) == np.float32(np.abs(x[:8]).max())


# ---------------------------------------------------------------- training and saving


def _small():
    inp = keras.Input((8, 8, 2))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(3, name="out")(x))


def _ranges(model):
    return {v.path: v.numpy() for q in qk.quantizers(model) + qk.quantizers(model, "weight") for v in (q.min, q.max)}


@pytest.mark.parametrize("jit", [False, True])
def test_qat_fit(jit):
    rng = np.random.RandomState(1)
    x = rng.uniform(-1, 1, (32, 8, 8, 2)).astype(np.float32)
    y = rng.uniform(-1, 1, (32, 3)).astype(np.float32)
    q = qk.quantize_model(_small())
    qk.calibrate(q, x, verbose=0)
    before = _ranges(q)
    kernel = q.get_layer("conv").kernel.numpy().copy()
    q.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=jit)
    hist = q.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert not np.array_equal(kernel, q.get_layer("conv").kernel.numpy())  # gradients reach the kernels
    after = _ranges(q)
    for k in before:
        if "input_quantizer" in k:  # calibrated, fixed
            np.testing.assert_array_equal(before[k], after[k])
    # kernel ranges track the kernel (range_mode "last": set by each training call from
    # the kernel it uses; calibrate/refresh_weight_ranges takes the kernel after the last step)
    wq = q.get_layer("conv").kernel_quantizer
    assert not np.array_equal(before["conv/kernel_quantizer/max"], wq.max.numpy())
    q.get_layer("conv").refresh_weight_ranges()
    np.testing.assert_array_equal(wq.max.numpy(), np.abs(q.get_layer("conv").kernel.numpy()).max(axis=(0, 1, 2)))


def test_quantize_concat_shares_one_range():
    a = keras.Input((4, 4, 2))
    x = L.Conv2D(2, 1, name="c1")(a)
    y = L.Conv2D(3, 1, name="c2")(a)
    cat = L.Concatenate(name="cat")([x, y])
    model = keras.Model(a, L.Conv2D(2, 1, name="c3")(cat))
    q = qk.quantize_model(model, quantize_concat=True)
    assert _fed_by_quantizer(q)["cat"] == [(True, True)]
    shared = q.get_layer("cat_inputs_quantizer")
    assert len(shared._inbound_nodes) == 2  # one layer (one range) on both inputs
    xs = np.random.RandomState(0).uniform(-1, 1, (4, 4, 4, 2)).astype(np.float32)
    qk.calibrate(q, xs, verbose=0)
    c1, c2 = (keras.Model(model.input, model.get_layer(n).output)(xs).numpy() for n in ("c1", "c2"))
    assert float(shared.max.numpy()) == np.float32(max(np.abs(c1).max(), np.abs(c2).max()))
    assert _fed_by_quantizer(qk.quantize_model(model))["cat"] == [(False, False)]


def test_sequential():
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), L.Conv2D(2, 3, name="c"), L.Flatten(name="f"), L.Dense(2, name="d")]
    )
    q = qk.quantize_model(model)
    assert _fed_by_quantizer(q) == {"c": [(True,)], "f": [(False,)], "d": [(True,)]}
    with pytest.raises(ValueError, match="no defined input"):
        qk.quantize_model(keras.Sequential([L.Dense(2)]))


def test_save_load_keras_and_savedmodel(tmp_path):
    rng = np.random.RandomState(2)
    x = rng.uniform(-1, 1, (8, 8, 8, 2)).astype(np.float32)
    q = qk.quantize_model(_small())
    qk.calibrate(q, x, "percentile", verbose=0)
    want = q(x).numpy()
    path = str(tmp_path / "q.keras")
    q.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.get_layer("conv")).__name__ == "QuantizedConv2D"
    a, b = _ranges(q), _ranges(loaded)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].view(np.uint32), b[k].view(np.uint32), err_msg=k)
    assert loaded.get_layer("conv_input_quantizer").range_mode == "fixed"
    np.testing.assert_array_equal(loaded(x).numpy().view(np.uint32), want.view(np.uint32))
    sm = str(tmp_path / "sm")
    q.export(sm, verbose=False)
    restored = tf.saved_model.load(sm)
    np.testing.assert_array_equal(restored.serve(x).numpy().view(np.uint32), want.view(np.uint32))


TF_KERAS = r"""
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tensorflow as tf, tf_keras
import tf_qdq.keras as qk
assert qk.LEGACY_KERAS
L = tf_keras.layers
inp = tf_keras.Input((8, 8, 2))
x = L.Conv2D(4, 3, padding="same", name="conv")(inp)
x = L.BatchNormalization(name="bn")(x)
y = L.Conv2D(4, 1, name="conv2")(x)
x = L.Add(name="add")([x, y])
x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
x = L.GlobalAveragePooling2D(name="gap")(x)
model = tf_keras.Model(inp, L.Dense(3, name="out")(x))
q = qk.quantize_model(model)
rng = np.random.RandomState(0)
xs = rng.uniform(-1, 1, (16, 8, 8, 2)).astype(np.float32)
qk.calibrate(q, xs, "entropy", verbose=0)
fed = {}
for layer in q.layers:
    fed[layer.name] = [isinstance(t._keras_history.layer, qk.QuantizeDequantize) for t in tf.nest.flatten(layer.input)] if layer._inbound_nodes and not isinstance(layer, (qk.QuantizeDequantize, L.InputLayer)) else None
q.compile("sgd", "mse")
loss = q.fit(xs, rng.uniform(size=(16, 3)).astype(np.float32), epochs=1, batch_size=8, verbose=0).history["loss"]
want = q.predict(xs, verbose=0)
q.save(os.path.join(sys.argv[1], "m.keras"))
loaded = tf_keras.models.load_model(os.path.join(sys.argv[1], "m.keras"))
same = bool(np.array_equal(loaded.predict(xs, verbose=0).view(np.uint32), want.view(np.uint32)))
err = float(np.abs(model.predict(xs, verbose=0) - q.predict(xs, verbose=0)).max())
print(json.dumps({"fed": fed, "loss": loss, "same": same, "classes": sorted({type(l).__name__ for l in q.layers})}))
"""


def test_tf_keras_functional(tmp_path):
    pytest.importorskip("tf_keras")
    p = subprocess.run(
        [sys.executable, "-c", TF_KERAS, str(tmp_path)], capture_output=True, text=True, env=child_env(), timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    fed = {k: v for k, v in res["fed"].items() if v is not None}
    assert fed["conv"] == [True] and fed["conv2"] == [True] and fed["dw"] == [True] and fed["out"] == [True]
    assert fed["add"] == [True, False]  # both conv-like: the last stays float
    assert fed["gap"] == [True] and fed["bn"] == [False]
    assert np.isfinite(res["loss"]).all() and res["same"]
    assert {"QuantizedConv2D", "QuantizedDepthwiseConv2D", "QuantizedDense", "QuantizeDequantize"} <= set(
        res["classes"]
    )


@pytest.mark.slow
def test_qat_keras3_example(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed (pip install tf_qdq[export])")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install tf_qdq[export])")
    example = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "qat_keras3.py")
    p = subprocess.run(
        [sys.executable, example, "--epochs", "2", "--samples", "300", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert "onnxruntime int8 accuracy" in p.stdout and (tmp_path / "digits_int8.onnx").exists()


def test_nested_application_backbone():
    backbone = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    inp = keras.Input((32, 32, 3))
    x = L.GlobalAveragePooling2D(name="head_pool")(backbone(inp))
    model = keras.Model(inp, L.Dense(4, name="head")(x))
    q = qk.quantize_model(model)
    assert not any(isinstance(layer, keras.Model) for layer in q.layers)  # inlined
    convs = [layer for layer in q.layers if type(layer).__name__ in ("QuantizedConv2D", "QuantizedDepthwiseConv2D")]
    assert len(convs) == 52
    fed = _fed_by_quantizer(q)
    assert all(fed[layer.name] == [(True,)] for layer in convs)
    assert fed["head_pool"] == [(True,)] and fed["head"] == [(True,)]
    adds = [name for name in fed if name.endswith("_add")]
    assert len(adds) == 10 and all(sorted(fed[a][0]) == [False, True] for a in adds)
    assert type(backbone.get_layer("Conv1")) is L.Conv2D  # the backbone is not modified


DISTRIBUTED = r"""
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import tf_qdq.keras as qk
L = keras.layers
keras.utils.set_random_seed(0)
inp = keras.Input((6, 6, 2))
x = L.Conv2D(3, 3, name="conv")(inp)
model = keras.Model(inp, L.Dense(2, name="out")(L.Flatten()(x)))
rng = np.random.RandomState(0)
xs = rng.uniform(-1, 1, (16, 6, 6, 2)).astype(np.float32)
ys = rng.uniform(-1, 1, (16, 2)).astype(np.float32)
res = {}
for label, strategy in (("one", tf.distribute.get_strategy()),
                        ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
    with strategy.scope():
        q = qk.quantize_model(model)  # ranges tracked during fit (not calibrated)
        q.compile(keras.optimizers.SGD(0.05), "mse")
    q.fit(xs, ys, batch_size=8, epochs=1, shuffle=False, verbose=0)
    res[label] = {v.path: v.numpy().tolist() for v in q.weights}
    res[label + "_replicas"] = strategy.num_replicas_in_sync
print(json.dumps(res))
"""


@pytest.mark.slow
def test_fit_under_mirrored_strategy():
    p = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True, env=child_env(), timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["mirrored_replicas"] == 2
    one, mirrored = res["one"], res["mirrored"]
    assert one.keys() == mirrored.keys()
    ranges = [k for k in one if k.endswith(("/min", "/max"))]
    assert any("input_quantizer" in k for k in ranges) and any("kernel_quantizer" in k for k in ranges)
    for k in ranges:  # the global batch's statistics: the same ranges as on one device
        np.testing.assert_allclose(mirrored[k], one[k], rtol=1e-6, err_msg=k)
    for k in one:
        np.testing.assert_allclose(mirrored[k], one[k], rtol=1e-4, atol=1e-6, err_msg=k)
