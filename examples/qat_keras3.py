"""Quantization-aware training of a Keras 3 model with tf_qdq.keras.quantize_model.

    python examples/qat_keras3.py [--out DIR] [--epochs N] [--recipe tensorrt|onnxruntime] [--samples N]

1. A small residual CNN on scikit-learn's bundled digits (8x8 images, 10
   classes), trained in float.
2. `quantize_model(model, recipe)`: a copy with QDQ where the recipe places it
   (docs/qat.md), the float weights copied in.
3. `calibrate(qmodel, x, "entropy")`: activation ranges from training images.
4. A short fine-tune with `fit` (QAT): the calibrated ranges stay fixed, the
   kernel ranges follow the kernels.
5. Export: `model.export()` to a SavedModel, `tf_qdq.export.lower_saved_model`
   to TensorFlow's built-in ops, tf2onnx to ONNX (QuantizeLinear/DequantizeLinear),
   and onnxruntime runs it; its accuracy is printed next to TensorFlow's.

Needs scikit-learn and, for step 5, `pip install tf_qdq[export]` (tf2onnx, onnx,
onnxruntime); without them step 5 is skipped.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import tf_qdq  # noqa: F401
from tf_qdq import export
from tf_qdq.keras import calibrate, quantize_model

L = keras.layers


def load_digits(samples):
    from sklearn.datasets import load_digits as digits

    d = digits()
    x = (d.images[..., None] / 16.0).astype(np.float32)  # (n, 8, 8, 1) in [0, 1]
    y = d.target.astype(np.int32)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(x))[:samples]
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    return (x[:split], y[:split]), (x[split:], y[split:])


def build_model():
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inp)
    x = L.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = L.Activation("relu", name="stem_relu")(x)
    y = L.Conv2D(16, 3, padding="same", use_bias=False, name="block_conv")(x)
    y = L.BatchNormalization(momentum=0.9, name="block_bn")(y)
    x = L.Add(name="block_add")([x, y])  # residual: the identity input gets the quantizer
    x = L.Activation("relu", name="block_relu")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = L.Conv2D(32, 1, activation="relu", name="pw")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(10, name="logits")(x), name="digits")


def accuracy(logits, y):
    return float(np.mean(np.argmax(logits, -1) == y))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="directory for the SavedModels and the ONNX file")
    p.add_argument("--epochs", type=int, default=8, help="float training epochs (QAT runs a quarter)")
    p.add_argument("--recipe", default="tensorrt", choices=("tensorrt", "onnxruntime"))
    p.add_argument("--samples", type=int, default=1797, help="digits to use (at most 1797)")
    args = p.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="qat_keras3_")

    (x, y), (xt, yt) = load_digits(args.samples)
    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    print(f"1. float training, {args.epochs} epochs on {len(x)} images", flush=True)
    model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0)
    acc_float = accuracy(model.predict(xt, verbose=0), yt)
    print(f"   float accuracy {acc_float:.3f}")

    print(f"2. quantize_model(recipe={args.recipe!r})", flush=True)
    qmodel = quantize_model(model, args.recipe)
    print("3. calibrate (entropy) on 256 training images", flush=True)
    calibrate(qmodel, x[:256], "entropy", verbose=1)
    acc_ptq = accuracy(qmodel.predict(xt, verbose=0), yt)
    print(f"   calibrated (post-training) accuracy {acc_ptq:.3f}")

    qat_epochs = max(1, args.epochs // 4)
    print(f"4. QAT fine-tune, {qat_epochs} epoch(s)", flush=True)
    qmodel.compile(keras.optimizers.Adam(5e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qmodel.fit(x, y, batch_size=32, epochs=qat_epochs, verbose=0)
    for layer in qmodel.layers:  # kernel ranges from the final kernels
        if hasattr(layer, "refresh_weight_ranges"):
            layer.refresh_weight_ranges()
    want = qmodel.predict(xt, verbose=0)
    acc_qat = accuracy(want, yt)
    print(f"   QAT accuracy {acc_qat:.3f}")

    print("5. export: SavedModel, lowering, tf2onnx, onnxruntime", flush=True)
    try:
        import onnxruntime as ort
        import tf2onnx  # noqa: F401
    except ImportError:
        print("   skipped: pip install tf_qdq[export] for tf2onnx and onnxruntime")
        return {"float": acc_float, "ptq": acc_ptq, "qat": acc_qat}
    sm, lowered, path = (os.path.join(out, n) for n in ("saved_model", "lowered", "digits.onnx"))
    qmodel.export(sm, verbose=False)
    export.lower_saved_model(sm, lowered, overwrite=True)  # built-in QDQ ops, which tf2onnx knows
    export.saved_model_to_onnx(lowered, path, opset=13)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: xt})[0]
    acc_onnx = accuracy(got, yt)
    print(f"   onnxruntime accuracy {acc_onnx:.3f} (TensorFlow {acc_qat:.3f}); {path}")
    return {"float": acc_float, "ptq": acc_ptq, "qat": acc_qat, "onnx": acc_onnx, "onnx_path": path}


if __name__ == "__main__":
    result = main()
    # QAT must stay close to float, and onnxruntime agree with TensorFlow.
    ok = result["qat"] >= result["float"] - 0.1 and abs(result.get("onnx", result["qat"]) - result["qat"]) <= 0.02
    sys.exit(0 if ok else 1)
