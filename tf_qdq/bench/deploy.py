"""Deploy benchmark: accuracy and int8 speed in onnxruntime, tf_qdq against
onnxruntime's own post-training quantizer, on real data.

    python -m tf_qdq.bench.deploy            full run (minutes)
    python -m tf_qdq.bench.deploy --quick    tiny sizes (a smoke test; numbers mean nothing)
    python -m tf_qdq.bench.deploy --json     rows as JSON on stdout

Accuracy: scikit-learn's digits (1,797 8x8 handwritten digits, shipped inside
scikit-learn, no download), a small ResNet-style Keras 3 CNN, every model run in
onnxruntime (its default optimizations, so the int8 models run on int8 kernels):

- float: the Keras model in TensorFlow, and its float ONNX export in onnxruntime;
- quantize_static: onnxruntime.quantization.quantize_static on the float ONNX
  model (QDQ format, uint8 activations, per-channel int8 weights: its
  recommended x86 form), calibrated on training images;
- tf_qdq PTQ: tf_qdq.keras.quantize_model(recipe="onnxruntime") + calibrate on
  the same images, exported with tf_qdq.export.to_onnx;
- tf_qdq QAT: the PTQ model trained a few more epochs.

Speed: int8 against fp32 latency in onnxruntime (one thread, runs of the models
interleaved, medians) of a wider ResNet-style model (64x64x3 inputs, 64
channels, random weights) at batch 1 and 16, for quantize_static's int8 model
and tf_qdq's (quantize_model + calibrate + to_onnx with int8 weights).

Goals, printed as met/missed: tf_qdq QAT int8 accuracy >= float - 0.5 points
and >= quantize_static's; tf_qdq's int8 speed-up over fp32 >= 0.95x
quantize_static's.

Where tf_qdq.keras has no quantize_model/calibrate, the tf_qdq rows use a model
with QuantizeDequantize layers placed by hand ("hand-placed QDQ" in the row
names) and max calibration.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

GOAL_ACCURACY_DROP = 0.5  # points below float
GOAL_SPEEDUP_RATIO = 0.95  # of quantize_static's speed-up

# quick: tiny sizes for CI; full: the real run.
SIZES = {
    True: dict(train=256, test=128, width=8, epochs=4, qat_epochs=1, calib=64, wide=(16, 8), reps=3, batches=(1, 4)),
    False: dict(
        train=None, test=None, width=16, epochs=60, qat_epochs=3, calib=512, wide=(64, 64), reps=40, batches=(1, 16)
    ),
}


def _say(progress: Optional[Callable[[str], None]], text: str) -> None:
    if progress is not None:
        progress(text)


# ----------------------------------------------------------------------------- data and models


def load_digits_split(train: Optional[int], test: Optional[int], seed: int = 0):
    """scikit-learn's digits as (N, 8, 8, 1) float32 in [0, 1], a stratified split."""
    from sklearn.datasets import load_digits  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    if train:
        x_train, y_train = x_train[:train], y_train[:train]
    if test:
        x_test, y_test = x_test[:test], y_test[:test]
    return x_train, y_train, x_test, y_test


def resnet(input_shape, width, classes, blocks=2, seed=0, name="resnet"):
    """A small ResNet-style Keras 3 CNN: a stem Conv, `blocks` residual blocks
    (Conv-ReLU-Conv, identity skip, ReLU), global average pooling, Dense."""
    from tf_qdq.keras import keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inp = keras.Input(input_shape, name="image")
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name="stem")(inp)
    for b in range(blocks):
        y = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{b}_conv1")(x)
        y = layers.Conv2D(width, 3, padding="same", name=f"block{b}_conv2")(y)
        x = layers.ReLU(name=f"block{b}_relu")(layers.Add(name=f"block{b}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    out = layers.Dense(classes, name="logits")(x)
    return keras.Model(inp, out, name=name)


def hand_quantized_resnet(float_model):
    """The fallback when tf_qdq.keras has no quantize_model: the same network
    with QuantizeDequantize layers placed by hand where onnxruntime fuses them
    (every Conv/Dense input and output, per-channel narrow-range weights), the
    float model's weights copied in. Activation ranges start empty ("max")."""
    import tensorflow as tf  # noqa: PLC0415

    from tf_qdq.keras import QuantizeDequantize, keras  # noqa: PLC0415

    class HandQuantizedConv2D(keras.layers.Layer):
        """Conv2D whose kernel goes through a per-channel QuantizeDequantize."""

        def __init__(self, conv, **kw):
            super().__init__(name=conv.name, **kw)
            self.filters, self.activation = conv.filters, conv.activation
            self.source = conv

        def build(self, input_shape):
            kernel, bias = self.source.get_weights()
            self.kernel = self.add_weight(name="kernel", shape=kernel.shape, initializer="zeros")
            self.bias = self.add_weight(name="bias", shape=bias.shape, initializer="zeros")
            self.kernel.assign(kernel)
            self.bias.assign(bias)
            self.wq = QuantizeDequantize(
                axis=-1, narrow_range=True, range_mode="last", init_range=np.abs(kernel).max(axis=(0, 1, 2))
            )
            self.wq.build(kernel.shape)

        def call(self, x, training=None):
            y = tf.nn.bias_add(tf.nn.conv2d(x, self.wq(self.kernel, training=training), 1, "SAME"), self.bias)
            return self.activation(y)

    class HandQuantizedDense(keras.layers.Layer):
        """Dense whose kernel goes through a per-channel QuantizeDequantize."""

        def __init__(self, dense, **kw):
            super().__init__(name=dense.name, **kw)
            self.source = dense

        def build(self, input_shape):
            kernel, bias = self.source.get_weights()
            self.kernel = self.add_weight(name="kernel", shape=kernel.shape, initializer="zeros")
            self.bias = self.add_weight(name="bias", shape=bias.shape, initializer="zeros")
            self.kernel.assign(kernel)
            self.bias.assign(bias)
            self.wq = QuantizeDequantize(
                axis=-1, narrow_range=True, range_mode="last", init_range=np.abs(kernel).max(axis=0)
            )
            self.wq.build(kernel.shape)

        def call(self, x, training=None):
            return tf.nn.bias_add(tf.matmul(x, self.wq(self.kernel, training=training)), self.bias)

    def act(name, signed):
        return QuantizeDequantize(range_mode="max", signed=signed, name=name)

    layer = {lay.name: lay for lay in float_model.layers}
    inp = keras.Input(float_model.input_shape[1:], name="image")
    x = act("q_image", False)(inp)  # the images are in [0, 1]
    x = act("q_stem", False)(HandQuantizedConv2D(layer["stem"])(x))
    b = 0
    while f"block{b}_conv1" in layer:
        y = act(f"q_block{b}_conv1", False)(HandQuantizedConv2D(layer[f"block{b}_conv1"])(x))
        y = act(f"q_block{b}_conv2", True)(HandQuantizedConv2D(layer[f"block{b}_conv2"])(y))
        x = keras.layers.ReLU(name=f"block{b}_relu")(keras.layers.Add(name=f"block{b}_add")([x, y]))
        x = act(f"q_block{b}_out", False)(x)
        b += 1
    x = act("q_pool", False)(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    out = act("q_logits", True)(HandQuantizedDense(layer["logits"])(x))
    return keras.Model(inp, out, name=float_model.name + "_hand_qdq")


def _quantizer():
    """(quantize(model) -> qmodel, calibrate(qmodel, x), how) from tf_qdq.keras,
    or the hand-placed fallback."""
    import tf_qdq.keras as tk  # noqa: PLC0415

    if hasattr(tk, "quantize_model") and hasattr(tk, "calibrate"):

        def quantize(model):
            return tk.quantize_model(model, recipe="onnxruntime")

        def calibrate(qmodel, x):
            return tk.calibrate(qmodel, x, method="max", verbose=0)

        return quantize, calibrate, "quantize_model"

    def calibrate_by_hand(qmodel, x):
        # A training call updates every "max" range and refreshes the weight ranges.
        for i in range(0, len(x), 64):
            qmodel(x[i : i + 64], training=True)
        return qmodel

    return hand_quantized_resnet, calibrate_by_hand, "hand-placed QDQ"


def _refresh_weight_ranges(qmodel) -> None:
    """Weight ranges from the final kernels: a training step sets them before the
    optimizer moves the kernel, so after fit they trail the last step."""
    for layer in qmodel.layers:
        if hasattr(layer, "refresh_weight_ranges"):  # tf_qdq.keras's quantized layer wrappers
            layer.refresh_weight_ranges()
        elif hasattr(layer, "wq") and hasattr(layer, "kernel"):  # the hand-placed fallback
            layer.wq.update_range(layer.kernel)


# ----------------------------------------------------------------------------- ONNX


def _session(path, threads=1):
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _ort_accuracy(path, x, y):
    session = _session(path, threads=0)
    name = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)])
    return 100.0 * float(np.mean(np.argmax(logits, axis=1) == y))


def _export_float(model, path):
    from tf_qdq.export import to_onnx  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no quantize/dequantize op": a float model, on purpose
        to_onnx(model, path, check=False, verbose=False)


def _quantize_static(float_path, out_path, calib):
    from onnxruntime.quantization import (  # noqa: PLC0415
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    session = _session(float_path)
    name = session.get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: calib[i : i + 32]} for i in range(0, len(calib), 32)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        float_path,
        out_path,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )


def _latency(paths: Dict[str, str], shape, reps, seed=0) -> Dict[str, float]:
    """Median seconds per run of each model, one thread, runs interleaved."""
    x = np.random.RandomState(seed).uniform(0, 1, shape).astype(np.float32)
    sessions = {k: _session(p) for k, p in paths.items()}
    names = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    times: Dict[str, List[float]] = {k: [] for k in paths}
    for k, s in sessions.items():  # warm-up
        s.run(None, {names[k]: x})
    for _ in range(reps):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, {names[k]: x})
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


# ----------------------------------------------------------------------------- the benchmark


def run(*, quick: bool, progress: Optional[Callable[[str], None]] = None) -> Dict[str, Dict[str, Any]]:
    """Runs the benchmark; returns {row name: row}: accuracy rows (`accuracy`,
    in percent), latency rows (`batch`, `fp32_ms`, `int8_ms`, `speedup`) and goal
    rows (`met`, `value`, `target`)."""
    from tf_qdq.export import to_onnx  # noqa: PLC0415
    from tf_qdq.keras import keras  # noqa: PLC0415

    s = SIZES[bool(quick)]
    rows: Dict[str, Dict[str, Any]] = {}
    quantize, calibrate, how = _quantizer()
    suffix = "" if how == "quantize_model" else f" ({how})"
    t0 = time.perf_counter()

    def step(text):
        _say(progress, f"deploy [{time.perf_counter() - t0:6.1f} s] {text}")

    with tempfile.TemporaryDirectory(prefix="tf_qdq_deploy_") as tmp:
        # ---- accuracy on digits
        x_train, y_train, x_test, y_test = load_digits_split(s["train"], s["test"])
        calib = x_train[: s["calib"]]
        step(f"digits: {len(x_train)} training, {len(x_test)} test images; training the float CNN")
        model = resnet((8, 8, 1), s["width"], 10, name="digits_resnet")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(keras.optimizers.Adam(2e-3), loss, metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=32, epochs=s["epochs"], verbose=0, shuffle=True)
        tf_acc = 100.0 * float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))
        rows["float (TF)"] = dict(kind="accuracy", accuracy=tf_acc)

        float_path = os.path.join(tmp, "float.onnx")
        _export_float(model, float_path)
        rows["float (onnxruntime fp32)"] = dict(kind="accuracy", accuracy=_ort_accuracy(float_path, x_test, y_test))
        step(f"float: TF {tf_acc:.2f} %, onnxruntime {rows['float (onnxruntime fp32)']['accuracy']:.2f} %")

        static_path = os.path.join(tmp, "static.onnx")
        _quantize_static(float_path, static_path, calib)
        rows["quantize_static int8"] = dict(kind="accuracy", accuracy=_ort_accuracy(static_path, x_test, y_test))
        step(f"quantize_static: {rows['quantize_static int8']['accuracy']:.2f} %")

        qmodel = calibrate(quantize(model), calib)
        ptq_path = os.path.join(tmp, "ptq.onnx")
        to_onnx(qmodel, ptq_path, recipe="onnxruntime", verbose=False, check=False)
        rows["tf_qdq PTQ int8" + suffix] = dict(kind="accuracy", accuracy=_ort_accuracy(ptq_path, x_test, y_test))
        step(f"tf_qdq PTQ{suffix}: {rows['tf_qdq PTQ int8' + suffix]['accuracy']:.2f} %; QAT training")

        qmodel.compile(keras.optimizers.Adam(2e-4), loss, metrics=["accuracy"])
        qmodel.fit(x_train, y_train, batch_size=32, epochs=s["qat_epochs"], verbose=0, shuffle=True)
        _refresh_weight_ranges(qmodel)
        qat_path = os.path.join(tmp, "qat.onnx")
        to_onnx(qmodel, qat_path, recipe="onnxruntime", weights="int8", verbose=False, check=False)
        qat_name = "tf_qdq QAT int8" + suffix
        rows[qat_name] = dict(kind="accuracy", accuracy=_ort_accuracy(qat_path, x_test, y_test))
        step(f"tf_qdq QAT{suffix}: {rows[qat_name]['accuracy']:.2f} %")

        # ---- int8 speed on the wider model
        size, width = s["wide"]
        step(f"latency: ResNet-style {size}x{size}x3, {width} channels, random weights")
        wide = resnet((size, size, 3), width, 10, seed=1, name="wide_resnet")
        rng = np.random.RandomState(1)
        wide_calib = rng.uniform(0, 1, (64, size, size, 3)).astype(np.float32)
        wide_float = os.path.join(tmp, "wide_float.onnx")
        _export_float(wide, wide_float)
        wide_static = os.path.join(tmp, "wide_static.onnx")
        _quantize_static(wide_float, wide_static, wide_calib)
        wide_q = calibrate(quantize(wide), wide_calib)
        wide_tf_qdq = os.path.join(tmp, "wide_tf_qdq.onnx")
        to_onnx(wide_q, wide_tf_qdq, recipe="onnxruntime", weights="int8", verbose=False, check=False)
        speedups = {}
        for batch in s["batches"]:
            t = _latency(
                {"fp32": wide_float, "static": wide_static, "tf_qdq": wide_tf_qdq},
                (batch, size, size, 3),
                s["reps"],
            )
            for label, key in (("quantize_static", "static"), ("tf_qdq" + suffix, "tf_qdq")):
                row = dict(
                    kind="latency",
                    batch=batch,
                    fp32_ms=1e3 * t["fp32"],
                    int8_ms=1e3 * t[key],
                    speedup=t["fp32"] / t[key],
                )
                rows[f"{label} latency batch {batch}"] = row
                speedups[label.split(" ")[0], batch] = row["speedup"]
            step(
                f"batch {batch}: fp32 {1e3 * t['fp32']:.2f} ms, quantize_static {1e3 * t['static']:.2f} ms, "
                f"tf_qdq {1e3 * t['tf_qdq']:.2f} ms"
            )

    # ---- goals
    float_acc = rows["float (onnxruntime fp32)"]["accuracy"]
    qat = rows[qat_name]["accuracy"]
    static = rows["quantize_static int8"]["accuracy"]
    rows["goal: QAT accuracy >= float - 0.5"] = dict(
        kind="goal", value=qat, target=float_acc - GOAL_ACCURACY_DROP, met=qat >= float_acc - GOAL_ACCURACY_DROP
    )
    rows["goal: QAT accuracy >= quantize_static"] = dict(kind="goal", value=qat, target=static, met=qat >= static)
    for batch in s["batches"]:
        ratio = speedups["tf_qdq", batch] / speedups["quantize_static", batch]
        rows[f"goal: speed-up >= 0.95x quantize_static's, batch {batch}"] = dict(
            kind="goal", value=ratio, target=GOAL_SPEEDUP_RATIO, met=ratio >= GOAL_SPEEDUP_RATIO
        )
    return rows


def format_rows(rows: Dict[str, Dict[str, Any]]) -> str:
    lines = ["| model | onnxruntime accuracy (%) |", "|---|---|"]
    lines += [f"| {k} | {r['accuracy']:.2f} |" for k, r in rows.items() if r["kind"] == "accuracy"]
    lines += ["", "| int8 model | batch | fp32 (ms) | int8 (ms) | speed-up |", "|---|---|---|---|---|"]
    lines += [
        f"| {k.split(' latency')[0]} | {r['batch']} | {r['fp32_ms']:.2f} | {r['int8_ms']:.2f} | {r['speedup']:.2f}x |"
        for k, r in rows.items()
        if r["kind"] == "latency"
    ]
    lines += ["", "| goal | value | target | |", "|---|---|---|---|"]
    lines += [
        f"| {k[6:]} | {r['value']:.2f} | {r['target']:.2f} | {'met' if r['met'] else 'MISSED'} |"
        for k, r in rows.items()
        if r["kind"] == "goal"
    ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tf_qdq.bench.deploy",
        description="Accuracy (digits) and int8 latency in onnxruntime: tf_qdq PTQ/QAT against quantize_static.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test; the numbers mean nothing)")
    parser.add_argument("--json", action="store_true", help="rows as JSON on stdout")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        import onnxruntime  # noqa: F401,PLC0415
        import sklearn  # noqa: F401,PLC0415
        import tf2onnx  # noqa: F401,PLC0415
    except ImportError as e:
        print(f"deploy bench: error: {e.name} is missing: pip install 'tf_qdq[export]' scikit-learn", file=sys.stderr)
        return 1
    rows = run(quick=args.quick, progress=lambda text: print(text, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_rows(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
