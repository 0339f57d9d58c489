"""tf_qdq.install() as a drop-in for a QAT toolkit: a Keras 2 (tf_keras) model whose
layers call tf.quantization.quantize_and_dequantize_v2 the way toolkits do
(per-channel narrow-range weights, per-tensor activations, ranges held in
variables) is trained, saved and converted to ONNX through every tf2onnx entry
point. Each ONNX model must hold its QuantizeLinear nodes (weights included),
match its lowered twin node for node, and agree with TensorFlow within one
quantum in onnxruntime.

Keras 2 is chosen per process (TF_USE_LEGACY_KERAS=1), so the model lives in a
child process; the command lines run in grandchildren."""

import json

import pytest
from qdq_testing import child_env, run_child

pytest.importorskip("tf_keras", reason="tf_keras not installed")
pytest.importorskip("tf2onnx", reason="tf2onnx not installed (pip install tf_qdq[export])")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install tf_qdq[export])")


# One child process runs the whole toolkit (about 30 s on 2 cores): `pytest -m "not slow"` leaves it to
# CI; tests/test_install.py covers install() and the tf2onnx hook in-process.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def toolkit(tmp_path_factory):
    d = tmp_path_factory.mktemp("toolkit")
    env = child_env()
    env["TF_USE_LEGACY_KERAS"] = "1"
    proc = run_child("toolkit_keras2.py", d, env=env, timeout=600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Input QDQ of the conv and of the dense layer, their kernels per channel (4 and 5
# output channels), and the output: 5 QuantizeLinear, 2 of them per channel.
SCALE_SIZES = [1, 1, 1, 4, 5]


def test_saved_model_holds_plugin_ops(toolkit):
    assert set(toolkit["saved_ops"]) == {"TfQdq>QuantizeAndDequantizeV4"}
    assert toolkit["hooked"]


@pytest.mark.parametrize("path", ["from_keras", "from_function", "cli", "twin"])
def test_every_tf2onnx_entry_point_keeps_all_qdq(toolkit, path):
    assert path in toolkit["onnx"], json.dumps(toolkit.get("cli", {}), indent=1)[-3000:]
    got = toolkit["onnx"][path]
    assert got["plugin"] == []
    assert got["scale_sizes"] == SCALE_SIZES
    assert got["ops"].count("QuantizeLinear") == got["ops"].count("DequantizeLinear") == 5
    assert got["max_err_quanta"] <= 1.0 + 1e-6


@pytest.mark.parametrize("path", ["from_keras", "from_function", "cli"])
def test_conversion_equals_the_lowered_twin(toolkit, path):
    assert toolkit["onnx"][path]["ops"] == toolkit["onnx"]["twin"]["ops"]


def test_plain_tf2onnx_cli_fails_loudly_on_plugin_ops(toolkit):
    plain = toolkit["cli"]["plain"]
    assert plain["rc"] != 0
    assert "TfQdq>QuantizeAndDequantizeV4" in plain["tail"]
    assert not toolkit["plain_onnx_written"]


def test_saved_model_cli_runs_plugin_ops(toolkit):
    run = toolkit["cli"]["saved_model_cli"]
    assert run["rc"] == 0, run["tail"]
    first = float(run["stdout"].split("[[", 1)[1].split()[0])
    assert abs(first - toolkit["want0"][0]) < 1e-6


def test_uninstall_restores_tensorflows_functions(toolkit):
    assert toolkit["restored"] and toolkit["restored_compat"]
    assert set(toolkit["after_ops"]) == {"QuantizeAndDequantizeV4"}
    assert toolkit["after_ql"] == 1
