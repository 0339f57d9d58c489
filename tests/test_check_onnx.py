"""python -m tf_qdq check-onnx: one deliberately broken ONNX file per finding."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper

from tf_qdq.__main__ import main as tf_qdq_main
from tf_qdq._cli import check_onnx_main as main
from tf_qdq.export.check import Finding, check_onnx

RNG = np.random.RandomState(0)


def init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def qdq(prefix, x, scale, zp, axis=None):
    """QuantizeLinear + DequantizeLinear nodes and their initializers."""
    kw = {} if axis is None else {"axis": axis}
    nodes = [
        helper.make_node(
            "QuantizeLinear", [x, prefix + "_s", prefix + "_z"], [prefix + "_q"], name=prefix + "_Q", **kw
        ),
        helper.make_node(
            "DequantizeLinear",
            [prefix + "_q", prefix + "_s", prefix + "_z"],
            [prefix + "_dq"],
            name=prefix + "_DQ",
            **kw,
        ),
    ]
    return nodes, [init(prefix + "_s", np.asarray(scale, np.float32)), init(prefix + "_z", zp)]


def conv_model(
    act_zp=np.int8(0),
    out_zp=None,
    w_zp=None,
    w_axis=0,
    w_scale=None,
    quantize_input=True,
    mismatch=False,
    plugin=False,
    quantize_output=True,
):
    """x -> Q/DQ -> Conv(DQ(W), b) -> Q/DQ -> y, NCHW, 4 -> 6 channels."""
    w = RNG.uniform(-1, 1, (6, 4, 3, 3)).astype(np.float32)
    nodes, inits = [], [init("W", w), init("b", np.zeros(6, np.float32))]
    x = "x"
    if quantize_input:
        n, i = qdq("in", "x", 0.02, act_zp)
        nodes += n
        inits += i
        x = "in_dq"
    scale = w_scale if w_scale is not None else np.abs(w).max(axis=(1, 2, 3)) / 127
    n, i = qdq("w", "W", scale, w_zp if w_zp is not None else np.zeros(len(scale), np.int8), axis=w_axis)
    nodes += n
    inits += i
    nodes.append(helper.make_node("Conv", [x, "w_dq", "b"], ["conv"], name="the_conv", pads=[1, 1, 1, 1]))
    n, i = qdq("out", "conv", 0.05, out_zp if out_zp is not None else act_zp)
    if mismatch:
        n[1].input[1] = "out_s2"
        i.append(init("out_s2", np.float32(0.06)))
    last = "conv"
    if quantize_output:
        nodes += n
        inits += i
        last = "out_dq"
    if plugin:
        nodes.append(helper.make_node("TfQdq>QuantizeAndDequantizeV4", [last], ["p"], name="left_over"))
        last = "p"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, 6, 8, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def kinds(findings):
    return sorted(f.kind for f in findings)


def test_clean_models_for_both_recipes():
    assert check_onnx(conv_model(), "tensorrt") == []
    assert check_onnx(conv_model(act_zp=np.uint8(128)), "onnxruntime") == []


def test_float_input():
    found = check_onnx(conv_model(quantize_input=False), "tensorrt")
    assert kinds(found) == ["float-input"]
    assert found[0].node == "the_conv" and "data input 'x' is float" in found[0].message


def test_non_zero_zero_point():
    found = check_onnx(conv_model(act_zp=np.uint8(128)), "tensorrt")  # activations: fine for onnxruntime only
    assert kinds(found) == ["dtype"] * 4 + ["zero-point"] * 4
    assert "activation zero point [128]" in next(f for f in found if f.kind == "zero-point").message
    zp = np.zeros(6, np.int8)
    zp[2] = 3
    found = check_onnx(conv_model(act_zp=np.uint8(128), w_zp=zp), "onnxruntime", runtime=False)
    assert kinds(found) == ["zero-point"] * 2 and {f.node for f in found} == {"w_Q", "w_DQ"}
    assert "weight zero point [0, 3]" in found[0].message


def test_uint8_for_tensorrt():
    found = check_onnx(conv_model(act_zp=np.uint8(0)), "tensorrt")
    assert kinds(found) == ["dtype"] * 4 and {f.node for f in found} == {"in_Q", "in_DQ", "out_Q", "out_DQ"}
    assert "TensorRT takes int8" in found[0].message
    assert check_onnx(conv_model(act_zp=np.uint8(0)), "onnxruntime", runtime=False) == []


def test_concat_inputs_with_different_scales():
    nodes, inits = [], []
    for name, scale in (("a", 0.1), ("b", 0.2)):
        n, i = qdq(name, name, scale, np.int8(0))
        nodes += n
        inits += i
    nodes.append(helper.make_node("Concat", ["a_dq", "b_dq"], ["y"], name="the_concat", axis=1))
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2]) for n in ("a", "b")]
    graph = helper.make_graph(nodes, "g", vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    found = check_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), "tensorrt")
    assert kinds(found) == ["concat-scales"] and found[0].node == "the_concat"
    assert "a_dq: [0.10000000149011612]" in found[0].message


def test_mismatched_qdq_pair():
    found = check_onnx(conv_model(mismatch=True), "tensorrt")
    assert kinds(found) == ["qdq-mismatch"] and found[0].node == "out_DQ" and "'out_Q'" in found[0].message


def test_per_channel_axis_not_the_output_channels():
    w_scale = np.full(4, 0.01, np.float32)  # one per input channel, on axis 1
    found = check_onnx(conv_model(w_axis=1, w_scale=w_scale), "tensorrt")
    assert kinds(found) == ["axis"] and found[0].node == "w_DQ"
    assert "axis 1 (4 values)" in found[0].message and "axis 0 of the weight, shape [6, 4, 3, 3]" in found[0].message


def test_plugin_op_left_in_the_model():
    found = check_onnx(conv_model(plugin=True), "onnxruntime")
    assert kinds(found) == ["plugin-op", "runtime"]
    assert found[0].node == "left_over" and "--load_op_libraries" in found[0].message


def test_onnxruntime_leaves_a_conv_without_output_quantizer_in_float():
    """Both inputs quantized, so the static checks pass, but onnxruntime fuses a
    Conv into QLinearConv only when a QuantizeLinear takes its output."""
    model = conv_model(act_zp=np.uint8(128), quantize_output=False)
    assert check_onnx(model, "onnxruntime", runtime=False) == []
    found = check_onnx(model, "onnxruntime")
    assert [(f.kind, f.node) for f in found] == [("runtime", "the_conv")]
    assert "left this Conv in float" in found[0].message


def test_command_line_exit_status(tmp_path, capsys):
    onnx.save(conv_model(), str(tmp_path / "good.onnx"))
    onnx.save(conv_model(quantize_input=False), str(tmp_path / "bad.onnx"))
    assert main([str(tmp_path / "good.onnx"), "--recipe", "tensorrt"]) == 0
    assert "is clean for recipe tensorrt" in capsys.readouterr().out
    assert tf_qdq_main(["check-onnx", str(tmp_path / "bad.onnx")]) == 1
    out = capsys.readouterr().out
    assert "[float-input] the_conv:" in out and "1 finding(s)" in out
    assert main([str(tmp_path / "missing.onnx")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert isinstance(check_onnx(str(tmp_path / "bad.onnx"))[0], Finding)
    with pytest.raises(ValueError, match="recipe must be one of"):
        check_onnx(str(tmp_path / "good.onnx"), "tflite")


@pytest.mark.slow
def test_flags_what_tf2onnx_cli_with_load_op_libraries_writes(tmp_path):
    """The known hole: tf2onnx's own command line loads the ops but not the
    lowering hook, and writes a file that holds the plugin op."""
    import os
    import subprocess
    import sys

    import tf_qdq
    from tf_qdq.keras import QuantizeDequantize, keras

    inp = keras.Input((4,))
    x = QuantizeDequantize(range_mode="fixed", init_range=2.0)(inp)
    m = keras.Model(inp, keras.layers.Dense(3)(x))
    m.export(str(tmp_path / "sm"), verbose=False)
    library = os.path.join(os.path.dirname(tf_qdq.__file__), "_tf_qdq_ops.so")
    out = tmp_path / "cli.onnx"
    args = ["--saved-model", str(tmp_path / "sm"), "--output", str(out), "--load_op_libraries", library]
    r = subprocess.run([sys.executable, "-m", "tf2onnx.convert", *args], capture_output=True, text=True, timeout=600)
    assert out.exists(), r.stderr[-2000:]
    found = check_onnx(str(out), "onnxruntime")
    assert "plugin-op" in kinds(found)
    assert any("TfQdq>" in f.message and "--load_op_libraries" in f.message for f in found)
