"""examples/qat_to_onnx.py runs end to end: training, export, lowering, tf2onnx, onnxruntime."""

import os

import pytest
from qdq_testing import run_child

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "qat_to_onnx.py")


@pytest.mark.slow
def test_qat_to_onnx_example(tmp_path):
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed (pip install tf_qdq[export])")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install tf_qdq[export])")
    proc = run_child(EXAMPLE, "--out", tmp_path, timeout=300)  # the same tf_qdq as this process
    out = proc.stdout
    assert "lowered SavedModel vs Keras model: bit-identical" in out, out
    assert "3 per tensor, 3 per channel" in out, out
    assert "(graph optimizations off) vs TensorFlow" in out, out  # argmax agreement >= 0.98: exit 0
    for name in ("saved_model", "lowered", "model.onnx"):
        assert (tmp_path / name).exists()
