"""The deploy benchmark (tf_qdq/bench/deploy.py) at its CI size: it runs, and its
rows are consistent. No timing is asserted."""

import math

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")
pytest.importorskip("tf2onnx")

from tf_qdq.bench import deploy


@pytest.mark.slow
def test_quick_run_rows_are_consistent(capsys):
    lines = []
    rows = deploy.run(quick=True, progress=lines.append)
    accuracy = {k: r["accuracy"] for k, r in rows.items() if r["kind"] == "accuracy"}
    names = [k.split(" (hand")[0] for k in accuracy]
    assert names == [
        "float (TF)",
        "float (onnxruntime fp32)",
        "quantize_static int8",
        "tf_qdq PTQ int8",
        "tf_qdq QAT int8",
    ]
    n_test = deploy.SIZES[True]["test"]
    for value in accuracy.values():
        assert 0.0 <= value <= 100.0
        assert math.isclose(value * n_test / 100.0, round(value * n_test / 100.0), abs_tol=1e-6)  # whole images
    # The float ONNX export computes what TensorFlow computes.
    assert abs(accuracy["float (TF)"] - accuracy["float (onnxruntime fp32)"]) <= 100.0 / n_test + 1e-9

    latency = {k: r for k, r in rows.items() if r["kind"] == "latency"}
    assert sorted({r["batch"] for r in latency.values()}) == sorted(deploy.SIZES[True]["batches"])
    assert len(latency) == 2 * len(deploy.SIZES[True]["batches"])
    for r in latency.values():
        assert r["fp32_ms"] > 0 and r["int8_ms"] > 0
        assert math.isclose(r["speedup"], r["fp32_ms"] / r["int8_ms"], rel_tol=1e-9)

    goals = {k: r for k, r in rows.items() if r["kind"] == "goal"}
    assert len(goals) == 2 + len(deploy.SIZES[True]["batches"])
    for r in goals.values():
        assert r["met"] == (r["value"] >= r["target"])
    qat = next(v for k, v in accuracy.items() if k.startswith("tf_qdq QAT"))
    assert goals["goal: QAT accuracy >= quantize_static"]["value"] == qat
    assert any("deploy [" in line and "latency" in line for line in lines)

    table = deploy.format_rows(rows)
    assert "| quantize_static int8 |" in table and ("met" in table or "MISSED" in table)


def test_command_line_help(capsys):
    with pytest.raises(SystemExit) as e:
        deploy.main(["--help"])
    assert e.value.code == 0
    assert "--quick" in capsys.readouterr().out
