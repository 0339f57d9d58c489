"""Child of tests/test_toolkit.py: a Keras 2 (tf_keras) QAT toolkit that calls
tf.quantization.quantize_and_dequantize(_v2), with tf_qdq.install(): training, SavedModel,
lowering, tf2onnx (in-process, its command line, the lowered twin), saved_model_cli, uninstall.
`python toolkit_keras2.py DIR`; prints one JSON object."""

import json
import os
import subprocess
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
import tf_keras as keras

import tf_qdq
from tf_qdq import export

d = sys.argv[1]
builtin = (tf.quantization.quantize_and_dequantize, tf.quantization.quantize_and_dequantize_v2)
tf_qdq.install()
assert tf.quantization.quantize_and_dequantize_v2 is tf_qdq.quantize_and_dequantize_v2
assert tf.compat.v1.quantization.quantize_and_dequantize is tf_qdq.quantize_and_dequantize


class QuantWrapper(keras.layers.Wrapper):
    # As a toolkit does it: QDQ on the layer's input (per tensor) and on its kernel
    # (per output channel), narrow range, ranges given from variables.
    def build(self, input_shape):
        super().build(input_shape)
        n = self.layer.kernel.shape[-1]
        self.amax = self.add_weight("amax", shape=[], trainable=False, initializer=keras.initializers.Constant(1.5))
        self.kmax = self.add_weight("kmax", shape=[n], trainable=False, initializer="ones")

    def call(self, x, training=None):
        x = tf.quantization.quantize_and_dequantize_v2(x, -self.amax, self.amax, range_given=True, narrow_range=True)
        kernel = self.layer.kernel
        if training:
            self.kmax.assign(tf.reduce_max(tf.abs(tf.reshape(kernel, [-1, kernel.shape[-1]])), 0))
        q = tf.quantization.quantize_and_dequantize_v2(
            kernel, -self.kmax, self.kmax, range_given=True, narrow_range=True, axis=-1
        )
        self.layer.kernel = q
        try:
            return self.layer.call(x)
        finally:
            self.layer.kernel = kernel


class OutputQuant(keras.layers.Layer):
    def build(self, input_shape):
        self.amax = self.add_weight("amax", shape=[], trainable=False, initializer=keras.initializers.Constant(2.0))

    def call(self, x):
        return tf.quantization.quantize_and_dequantize_v2(x, -self.amax, self.amax, range_given=True, narrow_range=True)


inp = keras.Input([8, 8, 3], name="x")
y = QuantWrapper(keras.layers.Conv2D(4, 3, activation="relu"))(inp)
y = QuantWrapper(keras.layers.Dense(5))(keras.layers.Flatten()(y))
model = keras.Model(inp, OutputQuant()(y))
model.compile("adam", "mse")
rng = np.random.RandomState(0)
x = rng.uniform(-1.2, 1.2, (6, 8, 8, 3)).astype(np.float32)
model.fit(x, rng.normal(size=(6, 5)).astype(np.float32), batch_size=3, epochs=1, verbose=0)  # 2 steps
want = model(x, training=False).numpy()
quantum = 2.0 / 127
tf.saved_model.save(model, d + "/sm")
export.lower_saved_model(d + "/sm", d + "/lowered")
result = {"saved_ops": export.count_ops(d + "/sm"), "onnx": {}}

import onnx
import onnxruntime as ort
import tf2onnx


def describe(proto):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    scales = sorted(
        int(np.size(inits[n.input[1]]))
        for n in proto.graph.node
        if n.op_type == "QuantizeLinear" and n.input[1] in inits
    )
    return {
        "ops": sorted(n.op_type for n in proto.graph.node),
        "plugin": [n.op_type for n in proto.graph.node if "TfQdq" in n.op_type],
        "scale_sizes": scales,
        "max_err_quanta": float(np.abs(got - want).max() / quantum),
    }


spec = (tf.TensorSpec([None, 8, 8, 3], tf.float32, name="x"),)
proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=13)
result["onnx"]["from_keras"] = describe(proto)
result["hooked"] = export.tf2onnx_patched()  # by `import tf_qdq`, before tf2onnx loaded
proto, _ = tf2onnx.convert.from_function(
    tf.function(lambda t: model(t, training=False)), input_signature=spec, opset=13
)
result["onnx"]["from_function"] = describe(proto)


def cli(label, *args):
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=240)
    result.setdefault("cli", {})[label] = {"rc": p.returncode, "tail": p.stderr[-3000:], "stdout": p.stdout[-2000:]}
    return p.returncode


common = ["--opset", "13", "--signature_def", "serving_default"]
if (
    cli("tf_qdq tf2onnx", "-m", "tf_qdq", "tf2onnx", "--saved-model", d + "/sm", "--output", d + "/cli.onnx", *common)
    == 0
):
    result["onnx"]["cli"] = describe(onnx.load(d + "/cli.onnx"))
# The lowered twin, converted by tf2onnx in a process that never loads tf_qdq.
if cli("twin", "-m", "tf2onnx.convert", "--saved-model", d + "/lowered", "--output", d + "/twin.onnx", *common) == 0:
    result["onnx"]["twin"] = describe(onnx.load(d + "/twin.onnx"))
cli("plain", "-m", "tf2onnx.convert", "--saved-model", d + "/sm", "--output", d + "/plain.onnx", *common)
result["plain_onnx_written"] = os.path.exists(d + "/plain.onnx")
np.save(d + "/x1.npy", x[:1])
cli(
    "saved_model_cli",
    "-m",
    "tf_qdq",
    "saved_model_cli",
    "run",
    "--dir",
    d + "/sm",
    "--tag_set",
    "serve",
    "--signature_def",
    "serving_default",
    "--inputs",
    "x=" + d + "/x1.npy",
)
result["want0"] = want[0].tolist()

tf_qdq.uninstall()
result["restored"] = (tf.quantization.quantize_and_dequantize, tf.quantization.quantize_and_dequantize_v2) == builtin
result["restored_compat"] = (
    tf.compat.v1.quantization.quantize_and_dequantize_v2 is builtin[1]
    and tf.compat.v2.quantization.quantize_and_dequantize_v2 is builtin[1]
)
# A model built after uninstall() holds TensorFlow's own ops, and still exports.
inp = keras.Input([6], name="x")
m2 = keras.Model(inp, OutputQuant()(keras.layers.Dense(3)(inp)))
tf.saved_model.save(m2, d + "/after")
result["after_ops"] = export.count_ops(d + "/after")
proto, _ = tf2onnx.convert.from_keras(m2, input_signature=(tf.TensorSpec([None, 6], tf.float32, name="x"),), opset=13)
result["after_ql"] = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
print(json.dumps(result))
