"""Test helper: export a Keras model to ONNX with tf2onnx in process and read off
where the Q/DQ pairs sit (which inputs of each compute node come from a
DequantizeLinear)."""

import collections

import numpy as np

# Nodes whose inputs the placement tests look at.
COMPUTE_OPS = (
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "Concat",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "BatchNormalization",
)
# Nodes a DequantizeLinear output may pass through on its way to a compute node.
PASS_THROUGH = ("Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten")


def to_onnx(model, shape, opset=13):
    import tensorflow as tf
    import tf2onnx

    import tf_qdq  # noqa: F401  (hooks tf2onnx to lower the plugin's ops)

    spec = (tf.TensorSpec((None,) + tuple(shape), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    return proto


def placement(proto):
    """{op_type: Counter of (number of DQ-fed data inputs, number of data inputs)} plus
    totals: 'dq_per_tensor', 'dq_per_channel', 'zero_points' (set of values)."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    for n in proto.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    inits[n.output[0]] = numpy_helper.to_array(a.t)

    def from_dq(name):
        seen = 0
        while name in producer and seen < 8:
            p = producer[name]
            if p.op_type == "DequantizeLinear":
                return True
            if p.op_type not in PASS_THROUGH:
                return False
            name = p.input[0]
            seen += 1
        return False

    out = collections.defaultdict(collections.Counter)
    for n in proto.graph.node:
        if n.op_type not in COMPUTE_OPS:
            continue
        data = [i for i in n.input if i and i not in inits]
        if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            data = [i for i in n.input[:2] if i]  # input and weight (bias is float)
        elif n.op_type == "BatchNormalization":
            data = n.input[:1]
        op = n.op_type
        if op in ("Add", "Mul") and len(data) < 2:
            op += "_const"  # arithmetic with a constant: an unfolded BatchNormalization, a rescaling
        out[op][(sum(from_dq(i) for i in data), len(data))] += 1
    per_tensor = per_channel = 0
    zero_points = set()
    for n in proto.graph.node:
        if n.op_type != "DequantizeLinear":
            continue
        scale = inits.get(n.input[1])
        if scale is not None and np.size(scale) > 1:
            per_channel += 1
        else:
            per_tensor += 1
        if len(n.input) > 2 and n.input[2] in inits:
            zp = inits[n.input[2]]
            zero_points.update(np.unique(zp).tolist())
            zero_points.add(str(zp.dtype))
    result = {k: dict(v) for k, v in out.items()}
    result["dq_per_tensor"] = per_tensor
    result["dq_per_channel"] = per_channel
    result["zero_points"] = zero_points
    return result
