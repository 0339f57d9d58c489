"""tf_qdq.keras.QuantizeDequantize in Keras models compiled with XLA (docs/xla.md#keras):
jit_compile=True, and jit_compile="auto", which Keras turns on when it sees a GPU."""

import numpy as np
import pytest
import tensorflow as tf

keras = pytest.importorskip("keras")
from qdq_testing import assert_same_bits

import tf_qdq.keras


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(64, 8)).astype(np.float32), rng.normal(size=(64, 4)).astype(np.float32)


def _model(jit_compile):
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,))
    h = tf_qdq.keras.QuantizeDequantize(range_mode="moving_average", name="act")(inp)
    h = keras.layers.Dense(4)(h)
    out = tf_qdq.keras.QuantizeDequantize(axis=-1, range_mode="last", round_mode="HALF_UP", name="out")(h)
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    return model


def test_fit_evaluate_predict_with_jit_compile():
    x, y = _data()
    model = _model(True)
    assert model.jit_compile is True
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # The ranges were updated inside the compiled train step.
    act, out = model.get_layer("act"), model.get_layer("out")
    assert float(act.max.numpy()) > 0 and np.all(out.max.numpy() > 0)
    # The input range only depends on the data: the same training without XLA gives the same range, up to
    # the rounding of the layer's moving average (XLA may contract momentum * old + (1 - momentum) * batch).
    eager = _model(False)
    eager.fit(x, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_allclose(act.max.numpy(), eager.get_layer("act").max.numpy(), rtol=1e-6)
    assert np.isfinite(model.evaluate(x, y, verbose=0))
    pred = model.predict(x, verbose=0)
    # predict under XLA = the layers applied by hand with the trained weights (Dense on the CPU kernels).
    h = act(tf.constant(x), training=False)
    h = model.layers[2](h)
    assert_same_bits(pred, out(h, training=False).numpy(), "predict")


def test_quantize_only_model_predict_is_bit_exact_under_jit():
    x, _ = _data(1)
    inp = keras.Input((8,))
    layer = tf_qdq.keras.QuantizeDequantize(axis=-1, init_range=[1.5] * 8, range_mode="fixed")
    model = keras.Model(inp, layer(inp))
    model.compile(jit_compile=True)
    assert_same_bits(model.predict(x, verbose=0), layer(tf.constant(x)).numpy(), "predict")


def test_auto_compiles_with_xla_when_a_gpu_is_visible(monkeypatch):
    """Keras resolves jit_compile="auto" from tf.config.list_physical_devices(): with a GPU listed, the
    model compiles with XLA (then on XLA_CPU here), and the QDQ layers allow it (supports_jit)."""
    real = tf.config.list_physical_devices

    def with_gpu(device_type=None):
        devices = real(device_type) if device_type in (None, "CPU") else []
        if device_type in (None, "GPU"):
            devices = devices + [tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")]
        return devices

    x, y = _data(2)
    assert _model("auto").jit_compile is False  # CPU only: Keras leaves XLA off
    monkeypatch.setattr(tf.config, "list_physical_devices", with_gpu)
    model = _model("auto")
    assert model.jit_compile is True
    assert all(layer.supports_jit for layer in model.layers)
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert float(model.get_layer("act").max.numpy()) > 0
