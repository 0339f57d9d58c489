"""tf_qdq.export.to_onnx: one call from a quantized model to an ONNX file."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

import onnx_models as om
from onnx import numpy_helper

from tf_qdq import export
from tf_qdq.export.check import check_onnx
from tf_qdq.export.convert import ExportError

OUT_STEP = 8.0 / 127  # one quantum of all_kinds_model's output quantizer
X = np.random.RandomState(0).uniform(-2.5, 2.5, (4, 8, 8, 3)).astype(np.float32)


def run_ort(path_or_proto, x, optimize=False):
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    data = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def op_types(proto):
    return [n.op_type for n in proto.graph.node]


def zero_points(proto):
    """{node name: (is a weight, zero point array)} of every Q/DQ node."""
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    out = {}
    for n in proto.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            producer = next((p for p in proto.graph.node if n.input[0] in p.output), None)
            weight = n.input[0] in inits or (producer is not None and producer.input[0] in inits)
            out[n.name] = (weight, inits[n.input[2]])
    return out


@pytest.fixture(scope="module")
def model():
    return om.all_kinds_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    d = tmp_path_factory.mktemp("to_onnx")
    out = {}
    for recipe in ("tensorrt", "onnxruntime"):
        for weights in ("qdq", "int8"):
            path = str(d / f"{recipe}_{weights}.onnx")
            out[recipe, weights] = (path, export.to_onnx(model, path, recipe=recipe, weights=weights, verbose=False))
    return out


def test_keras3_model_runs_in_onnxruntime_within_one_step(model, exported):
    ref = model(X).numpy()
    for (recipe, weights), (path, proto) in exported.items():
        assert os.path.exists(path)
        assert not any("TfQdq" in t or t.startswith("QuantizeAndDequantize") for t in op_types(proto))
        got = run_ort(path, X)
        assert got.shape == ref.shape
        assert np.max(np.abs(got - ref)) <= OUT_STEP * 1.0001, (recipe, weights)
        assert op_types(proto).count("DequantizeLinear") >= 10


def test_per_channel_axes_match_every_weight_layout(exported):
    _, proto = exported["tensorrt", "qdq"]
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    expected = {"Conv": 0, "ConvTranspose": 1, "MatMul": 1, "Gemm": 1}
    seen = []
    for node in proto.graph.node:
        if node.op_type not in expected:
            continue
        dq = producer[node.input[1]]
        assert dq.op_type == "DequantizeLinear", node.name  # no Transpose/Reshape in between
        q = producer[dq.input[0]]
        w, scale = inits[q.input[0]], inits[dq.input[1]]
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        assert axis == expected[node.op_type], node.name
        assert scale.shape == (w.shape[axis],)
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        seen.append((node.op_type, group > 1))
    assert sorted(seen) == [("Conv", False), ("Conv", True), ("ConvTranspose", False), ("MatMul", False)]


def test_zero_points_per_recipe(exported):
    for weight, zp in zero_points(exported["tensorrt", "qdq"][1]).values():
        assert not np.any(zp != 0)
    rewritten = 0
    for weight, zp in zero_points(exported["onnxruntime", "qdq"][1]).values():
        if weight:
            assert zp.dtype == np.int8 and not np.any(zp != 0)
        elif zp.dtype == np.uint8 and zp.item() == 128:
            rewritten += 1
        else:
            assert zp.dtype == np.uint8 and zp.item() == 0  # an unsigned range (after the ReLU)
    assert rewritten >= 8


def test_onnxruntime_recipe_gives_identical_values(exported):
    for weights in ("qdq", "int8"):
        a = run_ort(exported["tensorrt", weights][0], X)
        b = run_ort(exported["onnxruntime", weights][0], X)
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


def test_int8_weights_equal_tensorflow_fake_quantized_weights(model, exported):
    path, proto = exported["tensorrt", "int8"]
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in inits for n in proto.graph.node)
    dequantized = []
    for n in proto.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            q, scale = inits[n.input[0]], inits[n.input[1]]
            assert q.dtype == np.int8
            axis = next(a.i for a in n.attribute if a.name == "axis")
            shape = [1] * q.ndim
            shape[axis] = scale.size
            dequantized.append((q.astype(np.float32) * scale.reshape(shape)).astype(np.float32))
    # TensorFlow's fake-quantized kernels, in ONNX layouts.
    layouts = {
        om.QConv2D: (3, 2, 0, 1),  # HWIO -> OIHW
        om.QDepthwiseConv2D: (2, 3, 0, 1),  # HWC1 -> C1HW
        om.QConv2DTranspose: (3, 2, 0, 1),  # HW(out)(in) -> (in)(out)HW
        om.QDense: (0, 1),
    }
    expected = [
        np.transpose(layer.wq(layer.kernel, training=False).numpy(), layouts[type(layer)])
        for layer in model.layers
        if type(layer) in layouts
    ]
    assert len(dequantized) == len(expected) == 4
    for e in expected:
        match = [d for d in dequantized if d.shape == e.shape]
        assert match, e.shape
        # Bit for bit, except the sign of zero: TensorFlow gives -0.0 for small
        # negative weights, an int8 dequantizes to +0.0.
        np.testing.assert_array_equal(match[0].view(np.uint32), np.where(e == 0, np.float32(0), e).view(np.uint32))
    # The int8 file runs exactly like the Q/DQ one, and is smaller.
    a, b = run_ort(exported["tensorrt", "qdq"][0], X), run_ort(path, X)
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    assert os.path.getsize(path) < os.path.getsize(exported["tensorrt", "qdq"][0])


def test_check_is_clean_and_onnxruntime_fuses_all_but_conv_transpose(exported):
    for recipe in ("tensorrt", "onnxruntime"):
        for weights in ("qdq", "int8"):
            findings = check_onnx(exported[recipe, weights][0], recipe)
            if recipe == "tensorrt":  # the unsigned range after the ReLU is uint8
                assert [f.kind for f in findings] == ["dtype", "dtype"]
            else:  # onnxruntime's CPU provider has no int8 ConvTranspose
                assert [(f.kind, "ConvTranspose" in f.message) for f in findings] == [("runtime", True)]


def test_saved_model_and_tf_function(model, tmp_path):
    ref = model(X).numpy()
    model.export(str(tmp_path / "sm"), verbose=False)
    export.to_onnx(str(tmp_path / "sm"), str(tmp_path / "sm.onnx"), verbose=False)
    assert np.max(np.abs(run_ort(str(tmp_path / "sm.onnx"), X) - ref)) <= OUT_STEP * 1.0001

    fn = tf.function(lambda x: model(x, training=False))
    with pytest.raises(ExportError, match="input_signature"):
        export.to_onnx(fn, str(tmp_path / "fn.onnx"), verbose=False)
    proto = export.to_onnx(
        fn, str(tmp_path / "fn.onnx"), input_signature=[tf.TensorSpec((None, 8, 8, 3), tf.float32)], verbose=False
    )
    assert op_types(proto).count("QuantizeLinear") >= 6
    assert np.max(np.abs(run_ort(str(tmp_path / "fn.onnx"), X) - ref)) <= OUT_STEP * 1.0001


def test_keras_export_onnx_works_with_plugin_ops(model, tmp_path):
    """Keras 3's own model.export(format="onnx") goes through tf2onnx's
    from_function, which the hook that `import tf_qdq` installs lowers."""
    model.export(str(tmp_path / "k.onnx"), format="onnx", verbose=False)
    proto = onnx.load(str(tmp_path / "k.onnx"))
    assert not any("TfQdq" in t for t in op_types(proto))
    assert op_types(proto).count("DequantizeLinear") == 10
    assert np.max(np.abs(run_ort(str(tmp_path / "k.onnx"), X) - model(X).numpy())) <= OUT_STEP * 1.0001


def test_progress_lines(model, tmp_path, capsys):
    export.to_onnx(model, str(tmp_path / "m.onnx"))
    err = capsys.readouterr().err
    assert "to_onnx [1/4]" in err and "to_onnx [4/4] checking" in err


def test_no_qdq_warns_and_still_exports(tmp_path):
    with pytest.warns(UserWarning, match="no quantize/dequantize op"):
        proto = export.to_onnx(om.float_model(), str(tmp_path / "f.onnx"), verbose=False, check=False)
    assert "Conv" in op_types(proto) and os.path.exists(tmp_path / "f.onnx")


def test_unlowerable_op_names_the_node(tmp_path):
    from tf_qdq.keras import QuantizeDequantize, keras

    inp = keras.Input((4,))
    out = QuantizeDequantize(axis=-1, range_mode="fixed", init_range=[1.0] * 4, round_mode="HALF_UP", name="halfup")(
        inp
    )
    with pytest.raises(export.LoweringError, match=r"halfup.*HALF_UP"):
        export.to_onnx(keras.Model(inp, out), str(tmp_path / "h.onnx"), verbose=False)
    assert not os.path.exists(tmp_path / "h.onnx")


def test_bad_paths_and_arguments(model, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export.to_onnx(model, str(tmp_path / "missing" / "m.onnx"), verbose=False)
    with pytest.raises(ExportError, match="is a directory"):
        export.to_onnx(model, str(tmp_path), verbose=False)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(ExportError, match="permission denied"):
                export.to_onnx(model, str(ro / "m.onnx"), verbose=False)
        finally:
            ro.chmod(0o700)
    with pytest.raises(ExportError, match=r"opset 12 is too old.*per-channel.*opset 13"):
        export.to_onnx(model, str(tmp_path / "m.onnx"), opset=12, verbose=False)
    with pytest.raises(ExportError, match="recipe must be one of"):
        export.to_onnx(model, str(tmp_path / "m.onnx"), recipe="tflite", verbose=False)
    with pytest.raises(ExportError, match="weights must be one of"):
        export.to_onnx(model, str(tmp_path / "m.onnx"), weights="int4", verbose=False)
    assert not os.path.exists(tmp_path / "m.onnx")


def test_recipe_attribute_of_the_model_is_the_default(tmp_path):
    m = om.all_kinds_model(seed=1)
    m.tf_qdq_recipe = "onnxruntime"
    proto = export.to_onnx(m, str(tmp_path / "r.onnx"), verbose=False)
    assert any(zp.dtype == np.uint8 and zp.item() == 128 for w, zp in zero_points(proto).values() if not w)


@pytest.mark.slow
def test_tf_keras_model(tmp_path):
    """A tf_keras (Keras 2) model: its own process, TF_USE_LEGACY_KERAS=1 before any import."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import onnxruntime as ort
        from tf_qdq import export
        from tf_qdq.keras import LEGACY_KERAS, QuantizeDequantize, keras
        assert LEGACY_KERAS
        inp = keras.Input((6,))
        x = QuantizeDequantize(range_mode="fixed", init_range=2.0)(inp)
        x = keras.layers.Dense(4)(x)
        out = QuantizeDequantize(range_mode="fixed", init_range=4.0)(x)
        m = keras.Model(inp, out)
        export.to_onnx(m, sys.argv[1], recipe="onnxruntime", verbose=False)
        x = np.random.RandomState(0).uniform(-2, 2, (3, 6)).astype(np.float32)
        s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        got = s.run(None, {s.get_inputs()[0].name: x})[0]
        err = float(np.max(np.abs(got - m(x).numpy())))
        assert err <= 4.0 / 127 * 1.0001, err
        print("ok", err)
        """
    )
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    r = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "k2.onnx")], env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ok" in r.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = onnx.load(str(tmp_path / "k2.onnx"))
    assert "QuantizeLinear" in op_types(proto)


def test_captured_constants_become_initializers(tmp_path):
    """Keras 3's Normalization layer holds its mean and variance as captured
    constants, which tf2onnx's from_function (and so Keras's own ONNX export)
    turns into extra model inputs; to_onnx makes them initializers."""
    from tf_qdq.keras import QuantizeDequantize, keras

    inp = keras.Input((4,), name="features")
    x = keras.layers.Normalization(mean=[1.0, 2, 3, 4], variance=[1.0, 4, 9, 16])(inp)
    m = keras.Model(inp, QuantizeDequantize(range_mode="fixed", init_range=3.0)(x))
    export.to_onnx(m, str(tmp_path / "n.onnx"), verbose=False)
    session = ort.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    x = np.random.RandomState(0).uniform(-3, 3, (5, 4)).astype(np.float32)
    assert np.max(np.abs(session.run(None, {"features": x})[0] - m(x).numpy())) <= 3.0 / 127 * 1.0001


@pytest.mark.parametrize("weights", ["qdq", "int8"])
def test_batch_norm_after_a_quantized_conv_folds_for_onnxruntime(tmp_path, weights):
    """tf2onnx cannot fold a BatchNorm into a quantized weight and writes a Mul
    and an Add after the Conv; the onnxruntime recipe folds them into the
    weight's scale (negative multipliers negate the integers) and the bias, so
    onnxruntime fuses the Conv."""
    from tf_qdq.keras import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 3))
    x = om.act(2.0)(inp)
    x = om.QConv2D(6)(x)
    bn = keras.layers.BatchNormalization()
    x = keras.layers.ReLU()(bn(x))
    x = om.act(6.0, signed=False)(x)
    x = om.QDepthwiseConv2D()(x)
    bn2 = keras.layers.BatchNormalization()
    out = om.act(8.0)(bn2(x))
    m = keras.Model(inp, out)
    rng = np.random.RandomState(0)
    for layer in (bn, bn2):
        gamma = rng.uniform(0.5, 2.0, 6) * np.where(np.arange(6) % 3 == 0, -1, 1)
        layer.set_weights([gamma, rng.uniform(-1, 1, 6), rng.uniform(-0.5, 0.5, 6), rng.uniform(0.5, 2.0, 6)])
    path = str(tmp_path / "bn.onnx")
    proto = export.to_onnx(m, path, recipe="onnxruntime", weights=weights, verbose=False)
    assert "Mul" not in op_types(proto) and "Add" not in op_types(proto)
    assert check_onnx(path, "onnxruntime") == []
    x = np.random.RandomState(1).uniform(-2, 2, (4, 8, 8, 3)).astype(np.float32)
    ref = m(x, training=False).numpy()
    for optimize in (False, True):
        assert np.max(np.abs(run_ort(path, x, optimize) - ref)) <= 8.0 / 127 * 1.0001


APPLICATIONS = ("ResNet50", "ResNet50V2", "MobileNetV2", "EfficientNetB0", "DenseNet121")


@pytest.mark.slow
@pytest.mark.parametrize("name", APPLICATIONS)
def test_keras_applications_in_both_recipes(name, tmp_path):
    """quantize_model + calibrate + to_onnx on keras.applications backbones
    (weights=None, 32x32 inputs): no plugin op, check-onnx clean (onnxruntime's
    optimized graph included), and onnxruntime's int8 kernels close to TF."""
    import tf_qdq.keras as tk

    tk.keras.utils.set_random_seed(0)
    model = getattr(tk.keras.applications, name)(
        weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    x = np.random.RandomState(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    for recipe in ("tensorrt", "onnxruntime"):
        qmodel = tk.calibrate(tk.quantize_model(model, recipe=recipe), x, verbose=0)
        ref = qmodel(x, training=False).numpy()
        path = str(tmp_path / f"{recipe}.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # to_onnx warns about every check-onnx finding
            proto = export.to_onnx(qmodel, path, recipe=recipe, verbose=False)
        assert not any("TfQdq" in t for t in op_types(proto))
        assert op_types(proto).count("DequantizeLinear") >= 50
        assert check_onnx(path, recipe) == []
        # Deep random networks: a rounding tie that ONNX and TF break apart
        # (division against multiplication by the inverse) moves one activation
        # by one step, and later layers carry it on; the outputs stay close.
        err = np.max(np.abs(run_ort(path, x) - ref))
        assert err <= 0.1 * np.max(np.abs(ref)), (recipe, err)
        # onnxruntime's int8 kernels run it (their accuracy on real data: the
        # deploy benchmark; random backbones have near-zero outputs).
        fused = run_ort(path, x, optimize=True)
        assert fused.shape == ref.shape and np.all(np.isfinite(fused))


def test_an_op_tf2onnx_could_not_convert_is_named():
    """tf2onnx logs an op it cannot convert and leaves it in the graph under its
    TensorFlow name; to_onnx refuses such a model and names the node."""
    from onnx import TensorProto, helper

    from tf_qdq.export.convert import _check_nodes

    node = helper.make_node("RaggedTensorToSparse", ["x"], ["y"], name="model/ragged")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(ExportError, match=r"'model/ragged' \(RaggedTensorToSparse\).*no ONNX equivalent"):
        _check_nodes(helper.make_model(graph))
    graph.node[0].op_type = "TfQdq>QuantizeAndDequantizeV4"
    with pytest.raises(export.LoweringError, match=r"'model/ragged'.*was not lowered"):
        _check_nodes(helper.make_model(graph))
