"""Recipe "tensorrt" on keras.applications models equals NVIDIA's TensorFlow 2
Quantization Toolkit's placement, compared on the exported ONNX graph: for each
compute node, how many of its data inputs come from a DequantizeLinear.

Expected values are NVIDIA's toolkit's rules on each architecture (its layer
table plus the special case it ships for that family: residual Add for
ResNet-v1/MobileNet, residual Add + BN-not-after-Conv + MaxPool for the
pre-activation ResNet-v2 and DenseNet, residual Add + squeeze-excite Multiply for
EfficientNet). Keys of each dict: ONNX op -> {(inputs from DQ, data inputs):
node count}; "Mul_const" is a BatchNormalization left as x * scale + shift;
"dq_per_tensor"/"dq_per_channel": DequantizeLinear nodes by scale size."""

import keras
import numpy as np
import pytest
from qat_onnx import placement, to_onnx

import tf_qdq.keras as qk

pytest.importorskip("tf2onnx", reason="tf2onnx not installed (pip install tf_qdq[export])")

EXPECTED = {
    # 53 Conv with quantized input and weights; 16 residual Add with exactly one
    # quantized input (identity branch, or the projection shortcut); the stem MaxPool
    # float; GlobalAveragePool and the classifier MatMul quantized; 53 BN after Conv float.
    ("ResNet50", 64): {
        "Add": {(1, 2): 16},
        "Conv": {(2, 2): 53},
        "GlobalAveragePool": {(1, 1): 1},
        "MatMul": {(2, 2): 1},
        "MaxPool": {(0, 1): 1},
        "Mul_const": {(0, 1): 53},
        "dq_per_channel": 54,
        "dq_per_tensor": 55,
    },
    # pre-activation: the stem MaxPool and the 3 pooled shortcuts quantized; BNs after an
    # Add or MaxPool quantized, the 32 BNs after a Conv float.
    ("ResNet50V2", 32): {
        "Add": {(1, 2): 16},
        "Conv": {(2, 2): 53},
        "GlobalAveragePool": {(1, 1): 1},
        "MatMul": {(2, 2): 1},
        "MaxPool": {(1, 1): 4},
        "Mul_const": {(0, 1): 32, (1, 1): 17},  # 16 pre-activation BNs and post_bn quantized
        "dq_per_channel": 54,
        "dq_per_tensor": 78,
    },
    ("MobileNetV2", 32): {
        "Add": {(1, 2): 10},
        "Conv": {(2, 2): 52},
        "GlobalAveragePool": {(1, 1): 1},
        "MatMul": {(2, 2): 1},
        "Mul_const": {(0, 1): 52},
        "dq_per_channel": 53,
        "dq_per_tensor": 55,
    },
    # 9 residual Add: one input quantized where the block input comes from a BN<-Conv,
    # both where it comes from the previous Add; 16 squeeze-excite Mul with both inputs
    # quantized; swish's x * sigmoid(x) float; 17 GlobalAveragePool (16 squeezes + head).
    ("EfficientNetB0", 32): {
        "Add": {(1, 2): 5, (2, 2): 4},
        "Add_const": {(0, 1): 1},
        "Conv": {(2, 2): 81},
        "GlobalAveragePool": {(1, 1): 17},
        "MatMul": {(2, 2): 1},
        "Mul": {(0, 2): 49, (2, 2): 16},
        "Mul_const": {(0, 1): 51},
        "dq_per_channel": 82,
        "dq_per_tensor": 124,
    },
    # Concatenate float; 62 BN not after a Conv quantized, 59 after one float; the stem
    # MaxPool (feeding a BN) and the 3 transition AveragePools quantized.
    ("DenseNet121", 32): {
        "AveragePool": {(1, 1): 3},
        "Concat": {(0, 2): 58},
        "Conv": {(2, 2): 120},
        "GlobalAveragePool": {(1, 1): 1},
        "MatMul": {(2, 2): 1},
        "MaxPool": {(1, 1): 1},
        "Mul_const": {(0, 1): 59, (1, 1): 62},
        "dq_per_channel": 121,
        "dq_per_tensor": 188,
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("name,size", list(EXPECTED), ids=[n for n, _ in EXPECTED])
def test_tensorrt_placement_equals_nvidia_toolkit(name, size):
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)
    qmodel = qk.quantize_model(model, "tensorrt")
    x = np.random.RandomState(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    qk.calibrate(qmodel, x, verbose=0)  # nonzero ranges: tf2onnx needs a scale > 0
    got = placement(to_onnx(qmodel, (size, size, 3)))
    assert got.pop("zero_points") == {0, "int8"}  # symmetric int8, zero point 0 everywhere
    assert got == EXPECTED[(name, size)]


def optimized_op_types(qmodel, tmp_path):
    """The node types of the graph onnxruntime's CPU optimizer makes of the model
    exported in the onnxruntime form (uint8 activations, int8 weights)."""
    import collections

    import onnx
    import onnxruntime as ort

    from tf_qdq import export

    to_onnx = getattr(export, "to_onnx", None)
    if to_onnx is None:
        pytest.skip("needs tf_qdq.export.to_onnx (the onnxruntime zero-point form), not on this branch yet")
    path, opt = str(tmp_path / "m.onnx"), str(tmp_path / "opt.onnx")
    to_onnx(qmodel, path, opset=13, recipe="onnxruntime", verbose=False)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = opt
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(opt).graph.node)


@pytest.mark.slow
@pytest.mark.parametrize("name,size", list(EXPECTED), ids=[n for n, _ in EXPECTED])
def test_onnxruntime_recipe_leaves_no_float_conv_or_matmul(name, size, tmp_path):
    pytest.importorskip("onnxruntime")
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)
    qmodel = qk.quantize_model(model, "onnxruntime")
    x = np.random.RandomState(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    qk.calibrate(qmodel, x, verbose=0)
    ops = optimized_op_types(qmodel, tmp_path)
    assert not {"Conv", "MatMul", "Gemm", "FusedConv", "FusedMatMul"} & set(ops), ops
    n_conv = EXPECTED[(name, size)]["Conv"][(2, 2)]
    assert ops["QLinearConv"] == n_conv, ops
