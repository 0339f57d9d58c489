"""Quantization-aware training with tf_qdq, then export to ONNX.

    python examples/qat_to_onnx.py [--out DIR] [--epochs N]

1. A small Keras CNN on synthetic images, with QDQ layers on the activations
   (per tensor, range tracked by a moving average) and on the convolution and
   dense kernels (per output channel, narrow range, range of the current
   weights), trained for a few steps with the plugin's op.
2. `model.export()` writes a SavedModel holding the plugin's ops.
3. `tf_qdq.export.lower_saved_model` rewrites them to TensorFlow's built-in ops
   (the per-channel weight QDQs with a given range become QuantizeAndDequantizeV3).
4. tf2onnx converts the lowered model: QuantizeLinear/DequantizeLinear pairs,
   per tensor for activations, per channel (axis) for weights. (In a process
   that imported tf_qdq, tf2onnx also converts the unlowered model to the same
   ONNX, and `python -m tf_qdq tf2onnx` is its command line: docs/export.md.)
5. onnxruntime runs it and its outputs are compared with TensorFlow's.

Needs `pip install tf_qdq[export]` (tf2onnx, onnx, onnxruntime). Runs in well
under two minutes on 2 CPU cores.
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import tf_qdq  # noqa: F401
from tf_qdq import export
from tf_qdq.keras import QuantizeDequantize

NUM_CLASSES = 4
SHAPE = (16, 16, 3)


def weight_quantizer():
    # TensorRT's convention for weights: signed 8 bit, narrow range [-127, 127],
    # symmetric, one scale per output channel (the kernel's last axis).
    return QuantizeDequantize(axis=-1, narrow_range=True, range_mode="last")


@keras.saving.register_keras_serializable(package="qat_example")
class QConv2D(keras.layers.Conv2D):
    """Conv2D whose kernel goes through a per-channel QDQ."""

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel_qdq = weight_quantizer()
        self.kernel_qdq.build(tuple(self.kernel.shape))

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, self.kernel_qdq(kernel))


@keras.saving.register_keras_serializable(package="qat_example")
class QDense(keras.layers.Dense):
    """Dense whose kernel goes through a per-channel QDQ."""

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel_qdq = weight_quantizer()
        self.kernel_qdq.build(tuple(self.kernel.shape))

    def call(self, inputs, training=None):
        x = tf.matmul(inputs, self.kernel_qdq(self.kernel, training=training))
        return self.activation(tf.nn.bias_add(x, self.bias))


def act_qdq(name):
    return QuantizeDequantize(range_mode="moving_average", momentum=0.9, name=name)


def build_model():
    inp = keras.Input(SHAPE, name="image")
    x = act_qdq("q_input")(inp)
    x = QConv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = act_qdq("q_conv1")(x)
    x = QConv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = act_qdq("q_conv2")(x)
    out = QDense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inp, out, name="qat_cnn")


def synthetic_data(n, seed):
    """Images = a class template (a bright stripe at a class-specific place) + noise."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, NUM_CLASSES, n)
    x = rng.normal(0.0, 0.6, (n,) + SHAPE).astype(np.float32)
    for c in range(NUM_CLASSES):
        idx = y == c
        x[idx, 4 * c : 4 * c + 3, :, c % 3] += 2.0
    return x, y.astype(np.int32)


def refresh_weight_ranges(model):
    """The "last" range was computed before the last optimizer step: take the
    final weights' range, so that no weight is clamped."""
    for layer in model.layers:
        if hasattr(layer, "kernel_qdq"):
            layer.kernel_qdq.update_range(layer.kernel)


def run_onnx(path, x, optimized):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not optimized:
        # onnxruntime's graph optimizations rewrite QDQ patterns into integer
        # kernels (different arithmetic); without them it computes what the
        # ONNX graph says.
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="output directory (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="tf_qdq_qat_")
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    keras.utils.set_random_seed(0)

    x_train, y_train = synthetic_data(1024, seed=1)
    x_test, y_test = synthetic_data(256, seed=2)
    model = build_model()
    model.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=0)
    refresh_weight_ranges(model)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    print(
        f"1. trained {args.epochs} epochs: test accuracy {acc:.3f} "
        f"(input range +-{float(model.get_layer('q_input').max.numpy()):.3f})  [{time.time() - t0:.1f} s]"
    )

    saved = os.path.join(out, "saved_model")
    model.export(saved, verbose=False)
    print(f"2. exported {saved}: {export.count_ops(saved)}")

    lowered = os.path.join(out, "lowered")
    stats = export.lower_saved_model(saved, lowered, overwrite=True)
    print(f"3. lowered {lowered}: {stats}")

    onnx_path = os.path.join(out, "model.onnx")
    proto = export.saved_model_to_onnx(lowered, onnx_path, opset=13)
    qls = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    per_channel = sum(any(a.name == "axis" for a in n.attribute) for n in qls)
    print(
        f"4. converted {onnx_path}: {len(qls)} QuantizeLinear "
        f"({len(qls) - per_channel} per tensor, {per_channel} per channel), "
        f"{sum(n.op_type == 'DequantizeLinear' for n in proto.graph.node)} DequantizeLinear  "
        f"[{time.time() - t0:.1f} s]"
    )

    tf_logits = model.predict(x_test, verbose=0)
    loaded = tf.saved_model.load(lowered)
    low_logits = loaded.serve(tf.constant(x_test)).numpy()
    ok = np.array_equal(tf_logits.view(np.uint32), low_logits.view(np.uint32))
    print(f"5. lowered SavedModel vs Keras model: {'bit-identical' if ok else 'DIFFERENT'}")
    failures = 0 if ok else 1
    for optimized in (False, True):
        ort_logits = run_onnx(onnx_path, x_test, optimized)
        diff = np.abs(ort_logits - tf_logits)
        agree = np.mean(ort_logits.argmax(1) == tf_logits.argmax(1))
        label = "default graph optimizations" if optimized else "graph optimizations off"
        print(
            f"   onnxruntime ({label}) vs TensorFlow: max |diff| {diff.max():.3g}, "
            f"{np.count_nonzero(diff)} of {diff.size} logits differ, "
            f"argmax agreement {agree:.4f}"
        )
        if agree < 0.98:
            failures += 1
    print(f"done in {time.time() - t0:.1f} s; files in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
