"""Lowering (plugin ops -> built-in ops) and raising of SavedModels (tf_qdq.export).

The lowered models are loaded in one fresh subprocess that never imports tf_qdq,
and their outputs must be bit-identical to the plugin's."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import assert_same_bits, run_child

import tf_qdq
from tf_qdq import export
from tf_qdq.__main__ import main as cli

R = tf_qdq.raw_ops
F32 = tf.float32


def _x():
    rng = np.random.RandomState(7)
    x = rng.uniform(-1.6, 1.6, (5, 6)).astype(np.float32)
    x[0] = [k / 254.0 for k in (-255, -127, -1, 1, 127, 253)]  # ties of 8-bit [-1, 1]
    return x


def _same_bits(got, want, msg):
    if got.dtype.kind == "V":  # np.savez stores bfloat16 as raw 2-byte records
        got = got.view(want.dtype)
    assert_same_bits(got, want, msg)


def _ch(v, dtype=F32):
    return tf.constant(v, dtype)


# name -> function of a float32 tensor x of shape [N, 6]; all run through the plugin.
FORWARD = {
    "v2_computed": lambda x: R.QuantizeAndDequantizeV2(input=x, input_min=0.0, input_max=0.0),
    "v2_given_half_up_narrow": lambda x: R.QuantizeAndDequantizeV2(
        input=x, input_min=-1.0, input_max=1.0, range_given=True, round_mode="HALF_UP", narrow_range=True
    ),
    "v4_given_f64": lambda x: R.QuantizeAndDequantizeV4(
        input=tf.cast(x, tf.float64),
        input_min=tf.constant(-0.7, tf.float64),
        input_max=tf.constant(1.1, tf.float64),
        range_given=True,
        num_bits=6,
    ),
    "v4_channel_computed": lambda x: tf_qdq.quantize_and_dequantize_v2(x, tf.zeros([6]), tf.zeros([6]), axis=1),
    "v4_channel_given": lambda x: tf_qdq.quantize_and_dequantize_v2(
        x,
        -_ch([1.0, 0.5, 2.0, 1.5, 0.25, 1.0]),
        _ch([1.0, 0.5, 2.0, 1.5, 0.25, 1.0]),
        range_given=True,
        narrow_range=True,
        axis=1,
    ),
    "v2_channel_given_unsigned": lambda x: tf_qdq.quantize_and_dequantize(
        x,
        tf.zeros([6]),
        _ch([1.0, 0.5, 2.0, 1.5, 0.25, 1.0]),
        signed_input=False,
        range_given=True,
        num_bits=7,
        axis=-1,
    ),
    "v3_tensor": lambda x: R.QuantizeAndDequantizeV3(input=x, input_min=-1.0, input_max=1.0, num_bits=4),
    "v3_channel": lambda x: R.QuantizeAndDequantizeV3(
        input=tf.transpose(x), input_min=-tf.ones([6]), input_max=tf.ones([6]), num_bits=8, axis=0
    ),
    "v1_given": lambda x: R.QuantizeAndDequantize(input=x, input_min=-0.3, input_max=1.3, range_given=True, num_bits=5),
    "v1_computed": lambda x: R.QuantizeAndDequantize(input=x, signed_input=False),
    "half_v2_computed": lambda x: tf_qdq.quantize_and_dequantize(tf.cast(x, tf.float16), 0.0, 0.0),
    "bf16_v4_channel_given": lambda x: tf_qdq.quantize_and_dequantize_v2(
        tf.cast(x, tf.bfloat16),
        -tf.fill([6], tf.constant(0.9, tf.bfloat16)),
        tf.fill([6], tf.constant(1.3, tf.bfloat16)),
        range_given=True,
        axis=1,
    ),
    "half_v1_given": lambda x: R.QuantizeAndDequantize(
        input=tf.cast(x, tf.float16), input_min=-0.1, input_max=0.7, range_given=True
    ),
    "bf16_v3": lambda x: R.QuantizeAndDequantizeV3(
        input=tf.cast(x, tf.bfloat16),
        input_min=tf.constant(-1.0, tf.bfloat16),
        input_max=tf.constant(1.0, tf.bfloat16),
        num_bits=3,
        range_given=True,
    ),
}


def _v4grad_outputs(prefix, dtype, x):
    g = R.QuantizeAndDequantizeV4Grad(
        gradients=tf.cast(x * 3.0, dtype),
        input=tf.cast(x, dtype),
        input_min=tf.cast(-tf.ones([6]) * 0.8, dtype),
        input_max=tf.cast(tf.ones([6]), dtype),
        axis=1,
    )
    return {f"{prefix}_{i}": t for i, t in enumerate(g)}


class Plugin(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 6], F32)])
    def forward(self, x):
        out = {k: f(x) for k, f in FORWARD.items()}
        out.update(_v4grad_outputs("v4grad_f32", F32, x))
        out.update(_v4grad_outputs("v4grad_half", tf.float16, x))
        return out

    @tf.function(input_signature=[tf.TensorSpec([None, 6], F32)])
    def grads(self, x):
        # Gradient functions are saved too: V4Grad nodes inside the function body.
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            a = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True)
            b = tf_qdq.quantize_and_dequantize_v2(tf.cast(x, tf.float16), -0.5, 0.5, range_given=True)
        return {"given": tape.gradient(a, x), "half": tape.gradient(b, x)}

    @tf.function(input_signature=[tf.TensorSpec([None, 6], F32)])
    def computed_v4(self, x):
        return tf_qdq.quantize_and_dequantize_v2(x, 0.0, 0.0)

    @tf.function(input_signature=[tf.TensorSpec([None, 6], F32)])
    def given_v4(self, x):
        return tf_qdq.quantize_and_dequantize_v2(x, -0.6, 1.1, range_given=True)


def _build_tf1(path):
    """A TF1 SavedModel: the ops are nodes of the GraphDef (`node:index` inputs),
    one of them inside a v1 while loop (frames)."""
    g = tf.Graph()
    tf.compat.v1.disable_control_flow_v2()
    try:
        with g.as_default():
            x = tf.compat.v1.placeholder(F32, [None, 6], name="x")
            xh = tf.cast(x, tf.float16)
            outs = {
                "v1_half": R.QuantizeAndDequantize(
                    input=xh, input_min=-1.0, input_max=1.0, range_given=True, num_bits=4
                ),
                "v2": tf_qdq.quantize_and_dequantize(x, 0.0, 0.0, num_bits=3),
                "v4_channel_given_half": tf_qdq.quantize_and_dequantize_v2(
                    xh, -tf.ones([6], tf.float16), tf.ones([6], tf.float16), range_given=True, axis=1
                ),
            }
            outs.update(_v4grad_outputs("v4grad_half", tf.float16, x))
            _, loop = tf.compat.v1.while_loop(
                lambda i, v: i < 3,
                lambda i, v: (
                    i + 1,
                    R.QuantizeAndDequantize(input=v * 1.5, input_min=-1.0, input_max=1.0, range_given=True),
                ),
                [tf.constant(0), x],
            )
            outs["v1_in_while_loop"] = loop
            with tf.compat.v1.Session(graph=g) as sess:
                expected = sess.run(outs, {x: _x()})
                tf.compat.v1.saved_model.simple_save(sess, path, {"x": x}, outs)
    finally:
        tf.compat.v1.enable_control_flow_v2()
    return expected


@pytest.fixture(scope="module")
def lowered(tmp_path_factory):
    """Saves the plugin models, lowers them, loads them in one fresh process."""
    d = tmp_path_factory.mktemp("export")
    x = _x()
    np.save(d / "x.npy", x)
    m = Plugin()
    tf.saved_model.save(m, str(d / "tf2"))
    expected = {f"forward/{k}": v.numpy() for k, v in m.forward(x).items()}
    expected.update({f"grads/{k}": v.numpy() for k, v in m.grads(x).items()})
    expected["computed_v4/out"] = m.computed_v4(x).numpy()
    expected["given_v4/out"] = m.given_v4(x).numpy()
    expected_tf1 = _build_tf1(str(d / "tf1"))
    stats = {
        "tf2": export.lower_saved_model(d / "tf2", d / "tf2_low"),
        "tf2_st": export.lower_saved_model(d / "tf2", d / "tf2_st", straight_through=True),
        "tf1": export.lower_saved_model(d / "tf1", d / "tf1_low"),
    }
    jobs = {
        "x": str(d / "x.npy"),
        "tf2": [
            {
                "dir": str(d / n),
                "functions": ["forward", "grads", "computed_v4", "given_v4"],
                "out": str(d / f"{n}.npz"),
            }
            for n in ("tf2_low", "tf2_st")
        ],
        "tf1": [{"dir": str(d / "tf1_low"), "out": str(d / "tf1_low.npz")}],
    }
    proc = run_child("run_lowered.py", json.dumps(jobs), timeout=300)
    return dict(
        dir=d,
        x=x,
        expected=expected,
        expected_tf1=expected_tf1,
        stats=stats,
        ops=json.loads(proc.stdout.strip().splitlines()[-2]),
        optional_modules=json.loads(proc.stdout.strip().splitlines()[-1]),
        tf2=dict(np.load(d / "tf2_low.npz")),
        tf2_st=dict(np.load(d / "tf2_st.npz")),
        tf1=dict(np.load(d / "tf1_low.npz")),
    )


def test_lowered_models_have_only_builtin_ops(lowered):
    assert lowered["ops"] == [
        "QuantizeAndDequantizeV2",
        "QuantizeAndDequantizeV3",
        "QuantizeAndDequantizeV4",
        "QuantizeAndDequantizeV4Grad",
    ]
    for name in ("tf2_low", "tf2_st", "tf1_low"):
        counts = export.count_ops(lowered["dir"] / name)
        assert not any(op.startswith("TfQdq>") for op in counts), (name, counts)


def test_import_does_not_load_optional_dependencies(lowered):
    assert lowered["optional_modules"] == []


def test_lowering_targets(lowered):
    s = lowered["stats"]["tf2"]
    # Per channel with a given range: V3 (two in forward: v4_channel_given,
    # v2_channel_given_unsigned; one via float32 for bfloat16).
    assert s["TfQdq>QuantizeAndDequantizeV4 -> QuantizeAndDequantizeV3"] == 1
    assert s["TfQdq>QuantizeAndDequantizeV2 -> QuantizeAndDequantizeV3"] == 1
    assert s["TfQdq>QuantizeAndDequantizeV4 -> QuantizeAndDequantizeV3 (via float32)"] == 1
    assert s["TfQdq>QuantizeAndDequantize -> QuantizeAndDequantizeV2"] == 2
    assert s["TfQdq>QuantizeAndDequantize -> QuantizeAndDequantizeV2 (via float32)"] == 1
    assert s["TfQdq>QuantizeAndDequantizeV3 -> QuantizeAndDequantizeV3 (via float32)"] == 1
    assert s["TfQdq>QuantizeAndDequantizeV4Grad -> QuantizeAndDequantizeV4Grad (via float32)"] == 2
    assert s["TfQdq>QuantizeAndDequantizeV4 -> QuantizeAndDequantizeV4"] == 5  # 2 forward, grads, computed_v4, given_v4
    st = lowered["stats"]["tf2_st"]
    assert st["TfQdq>QuantizeAndDequantizeV4 -> QuantizeAndDequantizeV2"] == 2  # computed ranges
    assert lowered["stats"]["tf1"]["TfQdq>QuantizeAndDequantize -> QuantizeAndDequantizeV2"] == 1


@pytest.mark.parametrize("variant", ["tf2", "tf2_st"])
def test_lowered_tf2_bit_identical_without_plugin(lowered, variant):
    got = lowered[variant]
    for key, want in lowered["expected"].items():
        _same_bits(got[key], want, f"{variant} {key}")


def test_lowered_tf1_graph_bit_identical_without_plugin(lowered):
    got = lowered["tf1"]
    assert set(got) == set(lowered["expected_tf1"])
    for key, want in lowered["expected_tf1"].items():
        _same_bits(got[key], want, f"tf1 {key}")


def test_lowered_gradients_are_tensorflows(lowered):
    """V4 with a computed range: the built-in gradient masks against input_min =
    input_max = 0 (zeros); lowered with straight_through=True (V2) it passes
    through, like the plugin's."""
    x = lowered["x"]
    np.testing.assert_array_equal(lowered["tf2"]["tape/computed_v4"], (x == 0).astype(np.float32))
    np.testing.assert_array_equal(lowered["tf2_st"]["tape/computed_v4"], np.ones_like(x))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf_qdq.quantize_and_dequantize_v2(xt, 0.0, 0.0)
    np.testing.assert_array_equal(tape.gradient(y, xt).numpy(), np.ones_like(x))
    # A given range (per tensor): the built-in V4 gradient masks against it, like
    # the plugin's. (Per channel, V4 becomes V3, whose gradient is straight-through.)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = Plugin().given_v4(xt)
    want = tape.gradient(y, xt).numpy()
    assert 0 < np.count_nonzero(want == 1.0) < want.size  # masked somewhere
    assert_same_bits(lowered["tf2"]["tape/given_v4"], want, "given_v4 gradient")
    assert_same_bits(lowered["tf2_st"]["tape/given_v4"], want, "given_v4 gradient, straight_through")


class HalfUpPerChannel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 2], F32)])
    def f(self, x):
        return tf_qdq.quantize_and_dequantize(
            x, -tf.ones([2]), tf.ones([2]), range_given=True, round_mode="HALF_UP", axis=1, name="my_qdq"
        )


def test_half_up_per_channel_given_range_is_refused(tmp_path, capsys):
    tf.saved_model.save(HalfUpPerChannel(), str(tmp_path / "src"))
    with pytest.raises(export.LoweringError, match=r"my_qdq.*HALF_UP"):
        export.lower_saved_model(tmp_path / "src", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()
    assert cli(["lower", str(tmp_path / "src"), str(tmp_path / "dst")]) == 1
    err = capsys.readouterr().err
    assert "my_qdq" in err and "QuantizeAndDequantizeV3" in err and "HALF_UP" in err
    assert not (tmp_path / "dst").exists()


class Builtin(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 6], F32)])
    def f(self, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            a = tf.quantization.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True)
        return {
            "v2": tf.quantization.quantize_and_dequantize(x, 0.0, 0.0, num_bits=5),
            "v3": tf.raw_ops.QuantizeAndDequantizeV3(
                input=x, input_min=-tf.ones([6]), input_max=tf.ones([6]), num_bits=8, axis=1
            ),
            "v4": a,
            "grad": tape.gradient(a, x),
        }


def test_raise_then_lower_round_trip(tmp_path):
    m = Builtin()
    tf.saved_model.save(m, str(tmp_path / "builtin"))
    x = _x()
    want = {k: v.numpy() for k, v in m.f(x).items()}
    stats = export.raise_saved_model(tmp_path / "builtin", tmp_path / "raised")
    assert stats == {
        "QuantizeAndDequantizeV2 -> TfQdq>QuantizeAndDequantizeV2": 1,
        "QuantizeAndDequantizeV3 -> TfQdq>QuantizeAndDequantizeV3": 1,
        "QuantizeAndDequantizeV4 -> TfQdq>QuantizeAndDequantizeV4": 1,
        "QuantizeAndDequantizeV4Grad -> TfQdq>QuantizeAndDequantizeV4Grad": 1,
    }
    counts = export.count_ops(tmp_path / "raised")
    assert all(op.startswith("TfQdq>") for op in counts)
    raised = tf.saved_model.load(str(tmp_path / "raised"))
    for k, v in raised.f(x).items():
        assert_same_bits(v, want[k], f"raised {k}")
    # Back down: only built-in ops again, same bits (in this process).
    assert cli(["raise", str(tmp_path / "raised"), str(tmp_path / "raised")]) == 1
    assert cli(["lower", str(tmp_path / "raised"), str(tmp_path / "lowered")]) == 0
    assert all(not op.startswith("TfQdq>") for op in export.count_ops(tmp_path / "lowered"))
    lowered = tf.saved_model.load(str(tmp_path / "lowered"))
    for k, v in lowered.f(x).items():
        assert_same_bits(v, want[k], f"lowered {k}")


def test_lower_graph_def_and_op_list(tmp_path):
    m = Plugin()
    tf.saved_model.save(m, str(tmp_path / "src"))
    export.lower_saved_model(tmp_path / "src", tmp_path / "dst")
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel.FromString((tmp_path / "dst" / "saved_model.pb").read_bytes())
    listed = {o.name for o in sm.meta_graphs[0].meta_info_def.stripped_op_list.op}
    assert not any(n.startswith("TfQdq>") for n in listed)
    assert {"QuantizeAndDequantizeV3", "Cast", "IdentityN"} <= listed
    assert os.listdir(tmp_path / "dst" / "variables") == os.listdir(tmp_path / "src" / "variables")
    # The GraphDef API: a frozen function graph.
    gd = m.computed_v4.get_concrete_function().graph.as_graph_def()
    low = export.lower_graph_def(gd)
    assert [n.op for n in low.node if "Quantize" in n.op] == ["QuantizeAndDequantizeV4"]
    assert [n.op for n in export.raise_graph_def(low).node if "Quantize" in n.op] == ["TfQdq>QuantizeAndDequantizeV4"]
    assert cli(["lower", str(tmp_path / "src"), str(tmp_path / "dst")]) == 1  # exists
    assert cli(["lower", "--overwrite", str(tmp_path / "src"), str(tmp_path / "dst")]) == 0


# ----------------------------------------------------------------------------- tf2onnx


class OnnxModel(tf.Module):
    def __init__(self):
        w = np.random.RandomState(0).randn(3, 3, 4, 5).astype(np.float32) * 0.3
        self.w = tf.Variable(w)
        self.wmax = tf.Variable(np.abs(w).max(axis=(0, 1, 2)))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], F32), tf.TensorSpec([None, 6, 6, 4], F32)])
    def f(self, v, img):
        w = tf_qdq.quantize_and_dequantize_v2(
            self.w, -self.wmax, self.wmax, range_given=True, narrow_range=True, axis=3
        )
        a = tf_qdq.quantize_and_dequantize_v2(img, -1.5, 1.5, range_given=True)
        return {
            "act": tf_qdq.quantize_and_dequantize_v2(v, -1.0, 1.0, range_given=True),
            "unsigned": tf_qdq.quantize_and_dequantize(v, 0.0, 1.0, range_given=True, signed_input=False),
            "computed": tf_qdq.quantize_and_dequantize(v, 0.0, 0.0),
            "conv": tf.nn.conv2d(a, w, 1, "SAME"),
        }


def test_tf2onnx_quantize_linear_pairs_match_tensorflow(tmp_path):
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed (pip install tf_qdq[export])")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install tf_qdq[export])")
    m = OnnxModel()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures=m.f)
    proto = export.saved_model_to_onnx(tmp_path / "sm", str(tmp_path / "m.onnx"))  # lowers first
    ops = [n.op_type for n in proto.graph.node]
    assert not any("Quantize" in op and op not in ("QuantizeLinear", "DequantizeLinear") for op in ops)
    assert ops.count("QuantizeLinear") == ops.count("DequantizeLinear") == 5
    axes = [a.i for n in proto.graph.node if n.op_type == "QuantizeLinear" for a in n.attribute if a.name == "axis"]
    assert len(axes) == 1  # the weights: per channel; activations: per tensor
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), so, providers=["CPUExecutionProvider"])
    v = np.concatenate(
        [np.linspace(-1.2, 1.2, 40000, dtype=np.float32), ((np.arange(-128, 128) + 0.5) / 127).astype(np.float32)]
    ).reshape(-1, 4)
    img = np.random.RandomState(1).uniform(-2, 2, (2, 6, 6, 4)).astype(np.float32)
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"v": v, "img": img})))
    want = {k: t.numpy() for k, t in m.f(v, img).items()}
    # ONNX's QuantizeLinear divides by the scale where TensorFlow multiplies by
    # its inverse: the rounding may differ by one quantum near a tie.
    for key, quantum in (("act", 1 / 127), ("unsigned", 1 / 255), ("computed", 1.2 / 127)):
        diff = np.abs(got[key] - want[key])
        assert np.all((diff == 0) | (np.abs(diff - quantum) < 1e-3 * quantum)), key
        assert np.count_nonzero(diff) <= diff.size // 1000, key
    np.testing.assert_allclose(got["conv"], want["conv"], rtol=0, atol=1e-5)
