"""Child of tests/test_keras.py: tf_qdq.keras.QuantizeDequantize under Keras 2 (tf_keras,
TF_USE_LEGACY_KERAS=1). `python keras2_layer.py DIR` writes DIR/res.json."""

import json
import os
import sys

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
    "amax_second_half": float(np.abs(x[8:]).max()),
    "amax_first_half": float(np.abs(x[:8]).max()),
}
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
        "max": loaded.get_layer("q_pc").max.numpy().tolist(),
    }
# Training continues after loading (the range variables are restored as variables).
loaded.compile(tf_keras.optimizers.SGD(0.1), "mse")
loaded.fit(x, x[:, :4] * 0.1, batch_size=16, epochs=1, verbose=0)
res["after_reload_fit_q_in"] = float(loaded.get_layer("q_in").max.numpy())
res["q_in_before"] = float(model.get_layer("q_in").max.numpy())
tf.saved_model.save(model, os.path.join(out, "raw_saved"))
res["want"] = want.tolist()
json.dump(res, open(os.path.join(out, "res.json"), "w"))
