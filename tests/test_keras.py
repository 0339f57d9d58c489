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


KERAS2_SCRIPT = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
import tf_keras
from tf_qdq import keras as qk

out = sys.argv[1]
assert qk.LEGACY_KERAS and qk.keras is tf_keras and tf.keras.layers.Layer is tf_keras.layers.Layer
Q = qk.QuantizeDequantize
inp = tf_keras.Input((6,))
h = Q(range_mode="moving_average", momentum=0.5, name="q_in")(inp)
h = tf_keras.layers.Dense(4, kernel_initializer=tf_keras.initializers.GlorotUniform(seed=1))(h)
h = Q(axis=-1, narrow_range=True, range_mode="last", name="q_pc")(h)
h = Q(range_mode="fixed", init_range=0.5, num_bits=4, signed=False, name="q_fixed")(h)
model = tf_keras.Model(inp, h)
model.compile(tf_keras.optimizers.SGD(0.1), "mse")
rng = np.random.RandomState(0)
x = rng.uniform(-2, 2, (16, 6)).astype(np.float32)
hist = model.fit(x, x[:, :4] * 0.1, batch_size=8, epochs=1, verbose=0, shuffle=False)
res = {
       "is_layer": isinstance(model.get_layer("q_in"), tf_keras.layers.Layer),
       "weights": {w.name: w.numpy().tolist() for w in model.weights if "q_" in w.name},
       "amax_second_half": float(np.abs(x[8:]).max()), "amax_first_half": float(np.abs(x[:8]).max())}
want = model.predict(x, verbose=0)
res["loads"] = {}
for fmt, path in (("keras", "m.keras"), ("h5", "m.h5"), ("tf", "m_savedmodel")):
    path = os.path.join(out, path)
    model.save(path, save_format=fmt)
    loaded = tf_keras.models.load_model(path)
    got = loaded.predict(x, verbose=0)
    res["loads"][fmt] = {
        "same_bits": bool(np.array_equal(got.view(np.uint32), want.view(np.uint32))),
        "class": type(loaded.get_layer("q_pc")).__name__,
        "max": loaded.get_layer("q_pc").max.numpy().tolist()}
# Training continues after loading (the range variables are restored as variables).
loaded.compile(tf_keras.optimizers.SGD(0.1), "mse")
loaded.fit(x, x[:, :4] * 0.1, batch_size=16, epochs=1, verbose=0)
res["after_reload_fit_q_in"] = float(loaded.get_layer("q_in").max.numpy())
res["q_in_before"] = float(model.get_layer("q_in").max.numpy())
tf.saved_model.save(model, os.path.join(out, "raw_saved"))
res["want"] = want.tolist()
json.dump(res, open(os.path.join(out, "res.json"), "w"))
"""


def test_keras2_tf_keras(tmp_path):
    """With TF_USE_LEGACY_KERAS=1 the layer is a tf_keras layer: build, fit 2 steps,
    save and load as .keras, .h5 and SavedModel with the same outputs."""
    import json
    import subprocess
    import sys

    from qdq_testing import child_env

    script = tmp_path / "keras2.py"
    script.write_text(KERAS2_SCRIPT)
    env = dict(child_env(), TF_USE_LEGACY_KERAS="1")
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
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
