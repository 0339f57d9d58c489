"""`python -m tf_qdq bench`: the rows it measures, the targets it checks, its output formats.

No speed is asserted here (speed targets live in the benchmark itself); these tests check that the
benchmark runs, verifies bits, and reports what it claims to report.
"""

import json
import re

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import run_child

from tf_qdq.bench import cli, kernels, qat


def _row(case, ratio, builtin_ms, read_ms=None, size="16M", dtype="float32", vs_f32=None):
    return dict(
        case=case,
        dtype=dtype,
        size=size,
        ratio=ratio,
        builtin_ms=builtin_ms,
        plugin_ms=builtin_ms / ratio,
        read_ms=read_ms,
        vs_f32=vs_f32,
        vs_per_tensor=None,
        identical=True,
        differing=0,
    )


def test_run_measures_and_verifies():
    rows = kernels.run(
        cases=["per-tensor given", "last-axis(256) data"],
        dtypes=["float32", "half"],
        sizes=["4K"],
        min_time=0,
        min_reps=1,
        max_reps=2,
        progress=False,
    )
    got = {(r["case"], r["dtype"]) for r in rows}
    assert got == {
        ("per-tensor given", "float32"),
        ("last-axis(256) data", "float32"),
        ("per-tensor given", "half"),
        ("last-axis(256) data", "half"),
    }
    for r in rows:
        assert r["identical"] is True and r["differing"] == 0, r
        assert r["builtin_ms"] > 0 and r["plugin_ms"] > 0
        assert r["ratio"] == pytest.approx(r["builtin_ms"] / r["plugin_ms"])
        assert r["read_ms"] is None  # only measured from 1M elements
    by = {(r["case"], r["dtype"]): r for r in rows}
    assert by[("per-tensor given", "half")]["builtin_op"] == "V2 f32"
    assert by[("per-tensor given", "half")]["vs_f32"] > 0
    assert by[("last-axis(256) data", "float32")]["vs_per_tensor"] > 0
    assert by[("per-tensor given", "float32")]["vs_per_tensor"] is None
    table = kernels.format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "identical" in table and "read ms" in table


def test_read_floor_is_measured_for_large_per_tensor_rows():
    rows = kernels.run(
        cases=["per-tensor given"], dtypes=["float32"], sizes=["1M"], min_time=0, min_reps=1, max_reps=2, progress=False
    )
    assert rows[0]["read_ms"] > 0 and rows[0]["identical"] is True


def test_targets_report_pass_miss_and_the_memory_floor():
    rows = [
        _row("per-tensor data", 1.5, 9.0, read_ms=3.0),
        _row("per-tensor given", 2.0, 4.0, read_ms=1.0),
        _row("per-tensor given", 0.9, 0.013, size="4K"),
        _row("per-tensor given", 1.0, 4.0, dtype="half", vs_f32=1.3),
        _row("per-tensor data", 1.0, 4.0, dtype="half", vs_f32=0.8),
    ]
    t = {name: (text, ok) for name, text, ok in kernels.check_targets(rows)}
    # plugin 6.0 ms against one read of 3.0 ms: 2.0x, within the 2.5x of two reads and a write.
    name = "per-tensor data float32 16M (two reads and a write): plugin time <= 2.5x one plain read of the input"
    assert t[name] == ("2.00x one read (6.00 ms vs 3.00 ms)", True)
    # plugin 2.0 ms against one read of 1.0 ms: 2.0x, more than the 1.5x of one read and a write.
    name = "per-tensor given float32 16M (one read and a write): plugin time <= 1.5x one plain read of the input"
    assert t[name] == ("2.00x one read (2.00 ms vs 1.00 ms)", False)
    assert t["per-tensor given float32 4K: built-in/plugin >= 0.95"] == ("0.90x", False)
    assert t["per-tensor data float32 4K: built-in/plugin >= 0.95"] == ("not run", None)
    text, ok = t["half 16M: per element at least as fast as plugin float32 (worst case)"]
    assert (text, ok) == ("0.80x (per-tensor data)", False)
    assert t["half 64K: per element at least as fast as plugin float32 (worst case)"] == ("not run", None)
    assert t["every output bit-identical to the reference"] == ("5/5", True)
    assert "QAT training step: tf_qdq's QDQ overhead <= 0.5x the built-in's" not in t
    rows.append(_row("V4Grad per-tensor", 1.0, 4.0, dtype="bfloat16", size="64K", vs_f32=1.02))
    model = {False: {"overhead_ratio": 0.62}}
    t = {name: (text, ok) for name, text, ok in kernels.check_targets(rows, model=model)}
    assert t["bfloat16 64K: per element at least as fast as plugin float32 (worst case)"] == (
        "1.02x (V4Grad per-tensor)",
        True,
    )
    assert t["QAT training step: tf_qdq's QDQ overhead <= 0.5x the built-in's"] == ("0.62x", False)


@pytest.mark.slow  # a child process that loads TensorFlow; cli.main runs in-process below
def test_cli_json_and_errors():
    cmd = [
        "tf_qdq",
        "bench",
        "--json",
        "--no-progress",
        "--cases",
        "per-tensor data",
        "--dtypes",
        "bfloat16",
        "--sizes",
        "4K",
        "--min-time",
        "0",
        "--min-reps",
        "1",
    ]
    out = json.loads(run_child("-m", *cmd, timeout=300).stdout)
    rows = out["rows"] if isinstance(out, dict) else out
    assert [(x["case"], x["dtype"], x["size"], x["identical"]) for x in rows] == [
        ("per-tensor data", "bfloat16", "4K", True)
    ]
    bad = run_child("-m", *cmd[:-6], "--sizes", "3K", timeout=300, check=False)
    assert bad.returncode != 0 and "3K" in bad.stderr


# ---- call overhead of the wrappers


def test_call_overhead_rows_and_table():
    rows = kernels.call_overhead(calls=3, rounds=1)
    assert [(r["wrapper"], r["range"]) for r in rows] == [
        (w, k)
        for w in ("quantize_and_dequantize", "quantize_and_dequantize_v2")
        for k in ("Python floats", "NumPy scalars", "tensors")
    ]
    for r in rows:
        assert r["builtin_us"] > 0 and r["plugin_us"] > 0
        assert r["ratio"] == pytest.approx(r["plugin_us"] / r["builtin_us"])
    table = kernels.format_overhead(rows)
    assert table.count("\n") == len(rows) + 1 and "Python floats" in table


def test_call_overhead_target():
    rows = [
        dict(wrapper="quantize_and_dequantize_v2", range="tensors", builtin_us=20.0, plugin_us=20.5, ratio=1.025),
        dict(wrapper="quantize_and_dequantize", range="Python floats", builtin_us=18.0, plugin_us=21.6, ratio=1.2),
    ]
    t = {name: (text, ok) for name, text, ok in kernels.check_targets([], rows)}
    assert t["every wrapper call within 1.05x of the built-in wrapper's time (worst case)"] == (
        "1.20x (quantize_and_dequantize, Python floats)",
        False,
    )
    t = {name: (text, ok) for name, text, ok in kernels.check_targets([], rows[:1])}
    assert t["every wrapper call within 1.05x of the built-in wrapper's time (worst case)"] == (
        "1.02x (quantize_and_dequantize_v2, tensors)",
        True,
    )


# ---- the QAT training step (--model)


def test_model_step_runs_three_ways_and_reports(capsys):
    assert cli.main(["--model", "--steps", "1", "--warmup", "1", "--batch", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    for label in ("no QDQ", "built-in QDQ", "tf_qdq QDQ"):
        assert re.search(rf"^\| {label} +\| +\d+\.\d\d \| +\d+\.\d\d \|", out, re.M), out
    assert "tf_qdq QDQ overhead / built-in QDQ overhead: " in out
    rows = qat.run(steps=2, warmup=1, batch=4, progress=False)
    assert [r["variant"] for r in rows] == ["none", "builtin", "tf_qdq"]
    for r in rows:
        assert r["error"] is None and r["steps"] == 2 and r["step_ms"] > 0 and np.isfinite(r["loss"])
    assert all(r["best_ms"] <= r["step_ms"] and len(r["times_ms"]) == 2 for r in rows)
    # The overhead is the median over rounds of the paired differences.
    rows[0]["times_ms"], rows[1]["times_ms"], rows[2]["times_ms"] = (
        [10.0, 20.0, 12.0],
        [13.0, 30.0, 14.0],
        [11.0, 21.0, 13.5],
    )
    rows[1]["step_ms"], rows[2]["step_ms"] = 14.0, 13.5
    s = qat.summarize(rows)[False]
    assert s["builtin"]["overhead_ms"] == pytest.approx(3.0) and s["tf_qdq"]["overhead_ms"] == pytest.approx(1.0)
    assert s["builtin"]["share"] == pytest.approx(3.0 / 14.0)
    assert s["overhead_ratio"] == pytest.approx(1.0 / 3.0) and s["speedup"] == pytest.approx(14.0 / 13.5)


def test_model_step_variants_train_the_same_model():
    """Same initial weights; tf_qdq and the built-in quantize the kernels alike (per channel, given
    range), so their first-step losses agree (the activation ranges are computed the same way)."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((4, 32, 32, 3)).astype(np.float32))
    y = tf.constant(rng.integers(0, 10, 4).astype(np.int32))
    losses = {v: float(qat.make_step(v)(x, y)) for v in qat.VARIANTS}
    assert losses["builtin"] == losses["tf_qdq"]
    assert losses["none"] != losses["tf_qdq"]


def test_model_xla_row_that_fails_is_reported_as_na(monkeypatch):
    real = qat.make_step

    def no_xla(variant, jit_compile=False, **kw):
        if jit_compile and variant == "tf_qdq":
            raise RuntimeError("no XLA kernel for TfQdq>QuantizeAndDequantizeV4")
        return real(variant, jit_compile=False, **kw)  # the other rows: as without XLA (fast)

    monkeypatch.setattr(qat, "make_step", no_xla)
    rows = qat.run(steps=1, warmup=1, batch=4, xla=True, progress=False)
    assert [(r["variant"], r["jit_compile"]) for r in rows] == [
        (v, j) for j in (False, True) for v in ("none", "builtin", "tf_qdq")
    ]
    bad = rows[-1]
    assert bad["step_ms"] is None and "no XLA kernel" in bad["error"]
    missing = tf.errors.InvalidArgumentError(
        None,
        None,
        "Detected unsupported operations ... on XLA_CPU_JIT: QuantizeAndDequantizeV4Grad (No registered "
        "'QuantizeAndDequantizeV4Grad' OpKernel for XLA_CPU_JIT devices compatible with node ...",
    )
    assert qat.error_summary(missing) == ("InvalidArgumentError: no XLA_CPU_JIT kernel for QuantizeAndDequantizeV4Grad")
    report = qat.format_report(rows, qat.summarize(rows))
    assert re.search(r"^\| tf_qdq QDQ \(XLA\) +\| +n/a \| +n/a \|", report, re.M), report
    assert "tf_qdq QDQ overhead / built-in QDQ overhead (XLA): n/a" in report


# ---- the timing loop and the sections of the command line


def test_interleaved_warms_up_rotates_and_stops():
    from tf_qdq.bench import timing

    calls = []
    fns = [lambda i=i: calls.append(i) for i in range(3)]
    waited = []
    rounds = []
    t = timing.interleaved(fns, min_reps=4, warmup=2, wait=waited.append, on_round=rounds.append)
    assert calls[:6] == [0, 0, 1, 1, 2, 2]  # the warm-up calls, untimed
    assert calls[6:] == [0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2]  # one call each per round, rotating
    assert len(waited) == len(calls) and rounds == [0, 1, 2, 3]
    assert t.reps == 4 and [len(x) for x in t.times] == [4, 4, 4]
    assert all(m >= b >= 0 for m, b in zip(t.medians(), t.best()))
    # max_reps bounds a min_time that would run on; min_reps is reached first.
    assert timing.interleaved(fns[:1], min_reps=2, max_reps=3, min_time=60.0, warmup=0).reps == 3


def test_sections_chosen_by_flags():
    def chosen(*argv):
        return cli.sections(cli.parser().parse_args(list(argv)))

    assert chosen() == ["kernels", "overhead", "model"]
    assert chosen("--no-model") == ["kernels", "overhead"]
    assert chosen("--cases", "per-tensor data") == ["kernels"]
    assert chosen("--model") == ["model"]
    assert chosen("--xla", "--model") == ["model", "xla"]
    assert chosen("--xla") == ["xla"]
    with pytest.raises(SystemExit):
        chosen("--fuzz")


@pytest.mark.slow  # a child process compiling every XLA row; xla_rows runs in tests/test_xla.py
def test_xla_section_json():
    """`bench --xla` runs the XLA rows alone and reports them."""
    cmd = ["tf_qdq", "bench", "--xla", "--quick", "--reps", "1", "--json", "--no-progress"]
    out = json.loads(run_child("-m", *cmd, timeout=300).stdout)
    assert out["sections"] == ["xla"] and out["rows"] is None and out["xla"]["error"] is None
    assert [row["row"] for row in out["xla"]["rows"]][:2] == ["per-tensor given", "per-tensor data"]
    assert all(row["plugin_ms"] > 0 and row["builtin_ms"] > 0 for row in out["xla"]["rows"])
