"""tf_qdq.install()/uninstall(), and the export paths they keep correct: Grappler's
constant folding of QDQ ops on constants, tf2onnx's tf_optimize, the TFLite
converter. (The Keras 2 toolkit end to end is tests/test_toolkit.py.)"""

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from tf_qdq import export

API_MODULES = (tf.quantization, tf.compat.v1.quantization, tf.compat.v2.quantization)
NAMES = ("quantize_and_dequantize", "quantize_and_dequantize_v2")


def _functions():
    return [getattr(m, n) for m in API_MODULES for n in NAMES]


def test_install_patches_and_uninstall_restores():
    builtin = _functions()
    tflite = vars(tf.lite.TFLiteConverter)["from_saved_model"]
    assert not tf_qdq.installed()
    with tf_qdq.install():
        assert tf_qdq.installed()
        assert _functions() == [tf_qdq.quantize_and_dequantize, tf_qdq.quantize_and_dequantize_v2] * 3
        assert vars(tf.lite.TFLiteConverter)["from_saved_model"] is not tflite
        tf_qdq.install()  # idempotent: one uninstall still restores everything
        graph = (
            tf.function(lambda x: tf.quantization.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True))
            .get_concrete_function(tf.TensorSpec([3]))
            .graph
        )
        assert "TfQdq>QuantizeAndDequantizeV4" in {op.type for op in graph.get_operations()}
    assert not tf_qdq.installed()
    assert _functions() == builtin
    assert vars(tf.lite.TFLiteConverter)["from_saved_model"] is tflite
    tf_qdq.uninstall()  # no-op


def test_commands_registered():
    from tf_qdq.__main__ import COMMANDS

    assert COMMANDS["tf2onnx"][0] == "tf_qdq._cli:tf2onnx_main"
    assert COMMANDS["saved_model_cli"][0] == "tf_qdq._cli:saved_model_cli_main"
    # The command lines are not part of the library API.
    assert not [name for name in export.__all__ if name.endswith("main")]


def test_import_does_not_load_export_until_tf2onnx_is_imported():
    """`import tf_qdq` loads the runtime only (not tf_qdq.export, the bench or the Keras layer);
    importing tf2onnx afterwards loads tf_qdq.export and patches tf2onnx (the import hook), and
    `tf_qdq.export` still resolves as an attribute."""
    import json

    from qdq_testing import run_child

    out = json.loads(run_child("import_direction.py", timeout=240).stdout.splitlines()[-1])
    loaded = out["loaded_by_import"]
    assert "tf_qdq.ops" in loaded and "tf_qdq.raw_ops" in loaded, loaded
    # Neither the export package nor the bench nor the Keras layer.
    assert not [m for m in loaded if m.startswith(("tf_qdq.export", "tf_qdq.bench", "tf_qdq.keras"))], loaded
    assert out["export_loaded_by_tf2onnx"] == out["patched"] == out["has_tf2onnx"]
    assert out["attribute"] is True


# ----------------------------------------------------------------------------- Grappler


def _graph():
    """Weights (a Const) through a plugin QDQ and through the built-in one, and an
    activation (a placeholder) through a plugin QDQ."""
    g = tf.Graph()
    with g.as_default():
        w = tf.constant(np.linspace(-1.3, 1.3, 12, dtype=np.float32).reshape(3, 4), name="w")
        x = tf.compat.v1.placeholder(tf.float32, [3, 4], name="x")
        pw = tf_qdq.quantize_and_dequantize_v2(w, -1.0, 1.0, range_given=True, name="plugin_w")
        bw = tf.raw_ops.QuantizeAndDequantizeV4(
            input=w, input_min=-1.0, input_max=1.0, range_given=True, name="builtin_w"
        )
        px = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True, name="plugin_x")
        tf.identity(pw + px, name="out1")
        tf.identity(bw + x, name="out2")
    return g.as_graph_def()


def _qdq_nodes(graph_def):
    return sorted((n.name, n.op) for n in graph_def.node if "QuantizeAndDequantize" in n.op)


def _grappler(graph_def, disable_folding_quantization_emulation):
    """Constant folding as tf2onnx and TF-TRT run it (a fetch list, optimizers named)."""
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers[:] = ["constfold"]
    rewrite.experimental_disable_folding_quantization_emulation = disable_folding_quantization_emulation
    with tf.Graph().as_default():
        meta = tf.compat.v1.train.export_meta_graph(graph_def=graph_def)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.extend(["x:0", "out1:0", "out2:0"])
    meta.collection_def["train_op"].CopyFrom(fetch)
    return tf_optimizer.OptimizeGraph(config, meta)


def test_grappler_folds_plugin_qdq_on_constants_whatever_the_flag():
    gd = _graph()
    # The flag keeps the built-in QDQ on the Const, but not the plugin's: Grappler
    # recognizes quantization emulation by op name ("QuantizeAndDequantize*").
    assert _qdq_nodes(_grappler(gd, True)) == [
        ("builtin_w", "QuantizeAndDequantizeV4"),
        ("plugin_x", "TfQdq>QuantizeAndDequantizeV4"),
    ]
    # Without it (the default), every QDQ whose inputs are all constant is folded.
    assert _qdq_nodes(_grappler(gd, False)) == [("plugin_x", "TfQdq>QuantizeAndDequantizeV4")]
    # Lowered first, the weight QDQ survives like the built-in one.
    assert _qdq_nodes(_grappler(export.lower_graph_def(gd), True)) == [
        ("builtin_w", "QuantizeAndDequantizeV4"),
        ("plugin_w", "QuantizeAndDequantizeV4"),
        ("plugin_x", "QuantizeAndDequantizeV4"),
    ]


def test_tf2onnx_tf_optimize_lowers_before_folding():
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed")
    from tf2onnx import tf_loader

    gd = _graph()
    args = (["x:0"], ["out1:0", "out2:0"])

    def tf_optimize(*args):
        with tf.Graph().as_default():  # as tf2onnx calls it
            return tf_loader.tf_optimize(*args)

    assert export.tf2onnx_patched()  # by `import tf_qdq`
    assert _qdq_nodes(tf_optimize(*args, gd)) == [
        ("builtin_w", "QuantizeAndDequantizeV4"),
        ("plugin_w", "QuantizeAndDequantizeV4"),
        ("plugin_x", "QuantizeAndDequantizeV4"),
    ]
    export.unpatch_tf2onnx()
    try:
        assert not export.tf2onnx_patched()
        # What tf2onnx does without the hook: the weight QDQ is gone.
        assert _qdq_nodes(tf_optimize(*args, gd)) == [
            ("builtin_w", "QuantizeAndDequantizeV4"),
            ("plugin_x", "TfQdq>QuantizeAndDequantizeV4"),
        ]
    finally:
        export.patch_tf2onnx()
    assert export.tf2onnx_patched()


@pytest.mark.parametrize("large_model", [False, True])  # True: frozen differently, no Grappler
def test_tf2onnx_from_function_keeps_weight_qdq(large_model):
    tf2onnx = pytest.importorskip("tf2onnx", reason="tf2onnx not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    w = tf.Variable(np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4))
    wmax = tf.Variable([1.0, 0.5, 0.8, 1.0])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def f(x):
        x = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True)
        k = tf_qdq.quantize_and_dequantize_v2(w, -wmax, wmax, range_given=True, narrow_range=True, axis=1)
        return tf.matmul(x, k)

    if large_model:
        # tf2onnx cannot finish a large model with NumPy 2 (np.product in its ONNX
        # writer): check the frozen graph it would convert.
        from tf2onnx import tf_loader

        cf = f.get_concrete_function()
        gd = tf_loader.from_function(
            cf, [t.name for t in cf.inputs if t.dtype != tf.resource], [t.name for t in cf.outputs], large_model=True
        )
        ops = export.graph.used_ops(gd)
        assert "QuantizeAndDequantizeV3" in ops and "QuantizeAndDequantizeV4" in ops, ops
        assert not any(op.startswith("TfQdq>") for op in ops), ops
        return
    proto, _ = tf2onnx.convert.from_function(f, input_signature=f.input_signature, opset=13)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") == 2 and not any("TfQdq" in op for op in ops), ops
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.array([[0.3, -0.7, 0.11], [1.2, 0.5, -0.2]], np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], f(x).numpy(), atol=2e-2)


def test_tf2onnx_refuses_what_cannot_be_lowered(tmp_path):
    tf2onnx = pytest.importorskip("tf2onnx", reason="tf2onnx not installed")
    r = tf.constant([1.0, 0.5, 2.0])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def f(x):
        return tf_qdq.quantize_and_dequantize_v2(
            x, -r, r, range_given=True, axis=1, round_mode="HALF_UP", name="my_qdq"
        )

    out = tmp_path / "m.onnx"
    with pytest.raises(export.LoweringError, match=r"my_qdq.*HALF_UP"):
        tf2onnx.convert.from_function(f, input_signature=f.input_signature, output_path=str(out))
    assert not out.exists()


# ----------------------------------------------------------------------------- TFLite


class _Model(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def serve(self, x):
        return tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True)


def test_tflite_converter_lowers_first_when_installed(tmp_path):
    m = _Model()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures=m.serve)
    with pytest.raises(Exception, match="QuantizeAndDequantizeV4"):
        tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm")).convert()
    with tf_qdq.install():
        flat = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm")).convert()
    interpreter = tf.lite.Interpreter(model_content=flat)
    interpreter.allocate_tensors()
    x = np.array([[-1.2, -0.3, 0.004, 0.9]], np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    want = m.serve(x).numpy()
    assert np.abs(got - want).max() <= 1 / 127 + 1e-6
    assert "QUANTIZE" in {op["op_name"] for op in interpreter._get_ops_details()}


def test_tf2onnx_imported_before_tf_qdq_is_patched_too():
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed")
    from qdq_testing import run_child

    assert run_child("tf2onnx_first.py", timeout=240).stdout.split()[-1] == "True"
