"""tf_qdq.keras.QuantizeDequantize: ranges, arithmetic, gradients, serialization, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import assert_same_bits

from tf_qdq import export, reference
from tf_qdq.keras import QuantizeDequantize


def _data(shape=(8, 5), scale=1.5, seed=0):
    return tf.constant(np.random.RandomState(seed).uniform(-scale, scale, shape).astype(np.float32))


def test_fixed_range_is_the_v4_op_with_the_given_range():
    x = _data()
    layer = QuantizeDequantize(range_mode="fixed", init_range=1.0, num_bits=6, narrow_range=True)
    for training in (False, True):
        got = layer(x, training=training)
        want = reference.builtin(
            "V4", input=x, input_min=-1.0, input_max=1.0, range_given=True, num_bits=6, narrow_range=True
        )
        assert_same_bits(got, want, f"training={training}")
    assert float(layer.max.numpy()) == 1.0 and float(layer.min.numpy()) == -1.0
    assert not layer.trainable_weights and len(layer.non_trainable_weights) == 2


def test_per_channel_unsigned_last_range():
    x = _data((4, 3, 6))
    layer = QuantizeDequantize(axis=-1, signed=False, range_mode="last")
    got = layer(x, training=True)
    amax = np.max(np.maximum(x.numpy(), 0), axis=(0, 1))
    np.testing.assert_array_equal(layer.max.numpy(), amax)
    np.testing.assert_array_equal(layer.min.numpy(), np.zeros(6, np.float32))
    want = reference.builtin(
        "V4", input=x, input_min=np.zeros(6, np.float32), input_max=amax, range_given=True, signed_input=False, axis=2
    )  # via V3
    assert_same_bits(got, want, "per channel")
    # Inference keeps the stored range.
    layer(x * 3.0, training=False)
    np.testing.assert_array_equal(layer.max.numpy(), amax)


def test_max_and_moving_average_tracking():
    a, b = _data(seed=1), _data(seed=2, scale=0.5)
    amax_a, amax_b = float(tf.reduce_max(tf.abs(a))), float(tf.reduce_max(tf.abs(b)))
    running = QuantizeDequantize(range_mode="max")
    ema = QuantizeDequantize(range_mode="moving_average", momentum=0.75)
    for layer in (running, ema):
        layer(a, training=True)
        np.testing.assert_allclose(layer.max.numpy(), amax_a)  # first batch initializes
        layer(b, training=True)
    np.testing.assert_allclose(running.max.numpy(), amax_a)
    np.testing.assert_allclose(ema.max.numpy(), 0.75 * amax_a + 0.25 * amax_b, rtol=1e-6)
    np.testing.assert_array_equal(ema.min.numpy(), -ema.max.numpy())
    ema.update_range(a * 0.0)  # update_range by hand
    assert float(ema.max.numpy()) < 0.76 * amax_a


def test_gradient_passes_inside_the_range_only():
    x = tf.constant([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    layer = QuantizeDequantize(range_mode="fixed", init_range=1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[0.0, 1.0, 1.0, 1.0, 0.0]])


def test_half_inputs_with_mixed_precision():
    layer = QuantizeDequantize(range_mode="max", dtype="mixed_float16")
    x = _data()
    y = layer(x, training=True)
    assert y.dtype == tf.float16
    want = reference.builtin(
        "V4", input=tf.cast(x, tf.float16), input_min=-layer.max.numpy(), input_max=layer.max.numpy(), range_given=True
    )
    assert_same_bits(y, want, "half")


def test_validation():
    with pytest.raises(ValueError, match="range_mode"):
        QuantizeDequantize(range_mode="ema")
    with pytest.raises(ValueError, match="init_range"):
        QuantizeDequantize(range_mode="fixed")
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        QuantizeDequantize(axis=3)(_data())
    with pytest.raises(ValueError, match="one value per channel"):
        QuantizeDequantize(axis=1, init_range=[1.0, 2.0])(_data())


def _model():
    inp = keras.Input((5,))
    x = QuantizeDequantize(range_mode="moving_average", name="q_in")(inp)
    x = keras.layers.Dense(3)(x)
    out = QuantizeDequantize(axis=-1, narrow_range=True, range_mode="last", init_range=[1.0, 2.0, 3.0], name="q_out")(x)
    return keras.Model(inp, out)


def test_config_save_load_export_and_lower(tmp_path):
    layer = QuantizeDequantize(
        num_bits=4,
        axis=1,
        narrow_range=True,
        signed=False,
        range_mode="fixed",
        init_range=np.array([1.0, 2.0]),
        name="q",
    )
    config = layer.get_config()
    assert config["init_range"] == [1.0, 2.0]
    clone = QuantizeDequantize.from_config(config)
    assert clone.get_config() == config
    assert keras.saving.get_registered_name(QuantizeDequantize) == "tf_qdq>QuantizeDequantize"

    model = _model()
    model.compile("sgd", "mse")
    x = np.random.RandomState(0).randn(32, 5).astype(np.float32)
    model.fit(x, x[:, :3], batch_size=8, epochs=1, verbose=0)
    assert float(model.get_layer("q_in").max.numpy()) > 0
    want = model(x).numpy()

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.get_layer("q_out"), QuantizeDequantize)
    assert_same_bits(loaded(x), want, ".keras reload")
    np.testing.assert_array_equal(loaded.get_layer("q_out").max.numpy(), model.get_layer("q_out").max.numpy())

    model.export(str(tmp_path / "exported"), verbose=False)
    assert export.count_ops(tmp_path / "exported") == {"TfQdq>QuantizeAndDequantizeV4": 2}
    stats = export.lower_saved_model(tmp_path / "exported", tmp_path / "lowered")
    assert stats == {
        "TfQdq>QuantizeAndDequantizeV4 -> QuantizeAndDequantizeV4": 1,
        "TfQdq>QuantizeAndDequantizeV4 -> QuantizeAndDequantizeV3": 1,
    }
    lowered = tf.saved_model.load(str(tmp_path / "lowered"))
    assert_same_bits(lowered.serve(tf.constant(x)), want, "exported and lowered")


def test_keras2_tf_keras(tmp_path):
    """With TF_USE_LEGACY_KERAS=1 the layer is a tf_keras layer: build, fit 2 steps,
    save and load as .keras, .h5 and SavedModel with the same outputs."""
    import json

    from qdq_testing import child_env, run_child

    run_child("keras2_layer.py", tmp_path, env=dict(child_env(), TF_USE_LEGACY_KERAS="1"), timeout=180)
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["is_layer"]
    w = res["weights"]
    q_in_max = [v for k, v in w.items() if k.startswith("q_in/max")]
    # Moving average (momentum 0.5) over the two batches' absolute maxima.
    want = 0.5 * np.float32(res["amax_first_half"]) + 0.5 * np.float32(res["amax_second_half"])
    np.testing.assert_allclose(q_in_max, [want], rtol=1e-6)
    assert [v for k, v in w.items() if k.startswith("q_fixed/max")] == [0.5]
    for fmt in ("keras", "h5", "tf"):
        load = res["loads"][fmt]
        assert load["same_bits"], (fmt, load)
        assert load["class"] == "QuantizeDequantize", (fmt, load)
        assert load["max"] == [v for k, v in w.items() if k.startswith("q_pc/max")][0], fmt
    assert res["after_reload_fit_q_in"] != res["q_in_before"]
    # The plain SavedModel holds the plugin's op and runs with tf_qdq imported.
    loaded = tf.saved_model.load(str(tmp_path / "raw_saved"))
    x = np.random.RandomState(0).uniform(-2, 2, (16, 6)).astype(np.float32)
    assert_same_bits(
        loaded(tf.constant(x), training=False),
        np.asarray(res["want"], np.float32),
        "tf.saved_model.save of a tf_keras model",
    )
