"""tf_qdq.keras.QuantizeDequantize under tf.distribute: one range for the global batch.

The same model is trained on the same global batches (the large values in the
second half of each batch, i.e. in replica 1's or worker 1's shard) three ways,
each in its own process (tests/children/dist_worker.py): on one device with the default
strategy, under MirroredStrategy on 2 logical CPU devices, and under
MultiWorkerMirroredStrategy with 2 worker processes on 127.0.0.1. Ranges must be
identical on every replica and worker and equal to the one-device run; weights
equal to a tolerance; the saved files hold that range.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import child_env, run_child

pytestmark = pytest.mark.slow  # worker processes: about a minute in all

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "children", "dist_worker.py")
TIMEOUT_S = 150  # for each group of processes; they normally finish in well under a minute
DISTRIBUTED = ("mirrored-0", "multiworker-0", "multiworker-1")
PHASES = ("loop", "fit", "cal_replica", "cal_cross")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _run_group(jobs, out_dir):
    """Starts (mode, extra_env) jobs together, waits up to TIMEOUT_S for all of
    them, and always ends them; returns the time taken."""
    t0 = time.time()
    procs = []
    try:
        for mode, extra in jobs:
            env = dict(child_env(HERE), **extra)
            log = open(os.path.join(out_dir, f"log-{mode}-{len(procs)}.txt"), "w")
            procs.append(
                (
                    subprocess.Popen(
                        [sys.executable, WORKER, mode, out_dir],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    ),
                    log,
                )
            )
        for p, _ in procs:
            p.wait(timeout=max(1.0, TIMEOUT_S - (time.time() - t0)))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
    for i, (p, _) in enumerate(procs):
        if p.returncode != 0:
            mode = jobs[i][0]
            with open(os.path.join(out_dir, f"log-{mode}-{i}.txt")) as f:
                tail = f.read()[-4000:]
            pytest.fail(
                f"{mode} process {i} ended with {p.returncode} (killed after {TIMEOUT_S} s if negative):\n{tail}"
            )
    return time.time() - t0


def _workers(extra=None):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return [
        (
            "multiworker",
            dict(extra or {}, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})),
        )
        for i in range(2)
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dist"))
    times = {}
    # One device and 2 replicas together (each uses one core at most), then the workers.
    times["single+mirrored"] = _run_group([("single", {}), ("mirrored", {})], out)
    times["multiworker"] = _run_group(_workers(), out)
    results = {}
    for name in ("single-0", "mirrored-0", "multiworker-0", "multiworker-1"):
        with open(os.path.join(out, f"result-{name}.json")) as f:
            results[name] = json.load(f)
    return {"dir": out, "times": times, **results}


def _copies(run, phase, layer, which="max"):
    return [np.asarray(v, np.float32) for v in run[phase][layer][which]]


def _all_copies(runs, phase, layer, which="max"):
    """(label, value) for every replica of every distributed run."""
    out = []
    for name in DISTRIBUTED:
        if phase not in runs[name]:
            continue  # Keras 3's fit under MultiWorkerMirroredStrategy
        for r, v in enumerate(_copies(runs[name], phase, layer, which)):
            out.append((f"{name} replica {r}", v))
    return out


def test_setup_replicas_and_variables(runs):
    assert runs["single-0"]["replicas"] == 1
    assert runs["mirrored-0"]["replicas"] == 2
    assert runs["multiworker-0"]["replicas"] == runs["multiworker-1"]["replicas"] == 2
    var = runs["mirrored-0"]["variable"]
    assert var["class"] == "MirroredVariable", var
    assert var["aggregation"].endswith(".ONLY_FIRST_REPLICA"), var
    assert var["synchronization"] in ("VariableSynchronization.AUTO", "VariableSynchronization.ON_WRITE"), var
    assert runs["multiworker-0"]["variable"]["class"] == "MirroredVariable"


@pytest.mark.parametrize("phase", PHASES)
def test_ranges_identical_everywhere_and_equal_to_one_device(runs, phase):
    single = runs["single-0"][phase]
    for layer in single:
        for which in ("max", "min"):
            (want,) = _copies(runs["single-0"], phase, layer, which)
            for label, got in _all_copies(runs, phase, layer, which):
                np.testing.assert_array_equal(got, want, f"{phase} {layer}.{which}: {label}")


def test_one_device_ranges_are_the_global_batch_statistics(runs):
    """The reference itself: ranges computed from the global batches in numpy."""
    x = np.asarray(_global_batch_inputs(), np.float32).reshape(4, 8, 6)
    for phase in ("loop", "fit"):
        got = runs["single-0"][phase]["q_max"]["max"][0]
        np.testing.assert_array_equal(np.float32(got), np.abs(x).max(), phase)
    # The second shard holds the large values: a replica-local range would be smaller.
    assert np.abs(x[:, :4]).max() < 0.2 * np.abs(x).max()
    # Calibration in a replica context: the per-channel maximum of the data.
    np.testing.assert_array_equal(
        np.asarray(runs["single-0"]["cal_replica"]["q_cal_replica"]["max"][0], np.float32), np.abs(x).max(axis=(0, 1))
    )
    # Cross-replica update_range: moving average (momentum 0.5) of the first global
    # batch's amax, then half of it.
    a = np.abs(x[0]).max()
    want = np.float32(0.5) * a + (np.float32(1.0) - np.float32(0.5)) * (a * np.float32(0.5))
    np.testing.assert_allclose(runs["single-0"]["cal_cross"]["q_cal_cross"]["max"][0], want, rtol=1e-6)


def _global_batch_inputs():
    rng = np.random.RandomState(0)
    x = rng.uniform(-1.0, 1.0, (4, 8, 6)).astype(np.float32)
    x[:, 4:] *= 10.0 * (1.0 + np.arange(4, dtype=np.float32)[:, None, None])
    return x


@pytest.mark.parametrize("phase", ["loop", "fit"])
def test_weights_match_one_device(runs, phase):
    want = runs["single-0"][f"weights_{phase}"]
    for name in DISTRIBUTED:
        for layer, ws in runs[name].get(f"weights_{phase}", {}).items():
            for got, ref in zip(ws, want[layer]):
                np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=f"{phase} {name} {layer}")
    # Training moved them (the comparison is not of initial weights).
    assert runs["single-0"]["loop"]["q_last"]["max"][0] != [0.0, 0.0, 0.0]


def test_saved_files_hold_the_global_range(runs):
    from tf_qdq.keras import keras

    want = {layer: runs["single-0"]["loop"][layer]["max"][0] for layer in runs["single-0"]["loop"]}
    for mode in ("mirrored", "multiworker"):
        res = runs[f"{mode}-0"]
        for kind in ("loaded_keras", "loaded_ckpt"):  # loaded under the strategy's scope
            for layer, w in want.items():
                for r, got in enumerate(res[kind][layer]["max"]):
                    np.testing.assert_array_equal(got, w, f"{mode} {kind} {layer} replica {r}")
        loaded = keras.models.load_model(os.path.join(runs["dir"], f"model-{mode}.keras"))
        for layer, w in want.items():
            np.testing.assert_array_equal(loaded.get_layer(layer).max.numpy(), np.float32(w), f"{mode} .keras {layer}")
        exported = tf.saved_model.load(os.path.join(runs["dir"], f"export-{mode}"))
        x = tf.constant(_global_batch_inputs()[0])
        np.testing.assert_array_equal(
            exported.serve(x).numpy(), np.asarray(res["predict"], np.float32), f"{mode} export"
        )
        np.testing.assert_array_equal(loaded(x).numpy(), np.asarray(res["predict"], np.float32))


def test_op_output_and_gradient_per_replica(runs):
    shards = runs["mirrored-0"]["op_gradients"]
    assert [s["rows"] for s in shards] == [4, 4]
    for s in shards:
        assert s["y_same_bits"] and s["dx_same_bits"] and s["dx_equals_dy"], s
    # Each replica computed its own range from its own shard.
    assert max(shards[0]["amax"]) < 0.2 * max(shards[1]["amax"])


def test_parameter_server_strategy_is_refused_with_a_reason(tmp_path):
    _run_group([("ps", {})], str(tmp_path))
    with open(tmp_path / "result-ps.json") as f:
        res = json.load(f)
    assert "no global batch" in res["max"] and "MultiWorkerMirroredStrategy" in res["max"], res
    assert res["fixed"] == 2.0


def test_report_ranges_side_by_side(runs):
    """Prints the 1-device / 2-replica / 2-worker ranges (pytest -s shows them)."""
    lines = [f"processes: {runs['times']}"]
    for phase in PHASES:
        for layer in runs["single-0"][phase]:
            fmt = lambda v: np.array2string(np.asarray(v), precision=6, max_line_width=200)  # noqa: E731
            cols = [f"1 device {fmt(np.float32(runs['single-0'][phase][layer]['max'][0]))}"]
            cols += [f"{label} {fmt(v)}" for label, v in _all_copies(runs, phase, layer)]
            lines.append(f"{phase:11s} {layer:14s} " + " | ".join(cols))
    print("\n" + "\n".join(lines))
    assert len(lines) > len(PHASES)


def test_multiworker_fit_with_tf_keras(runs, tmp_path):
    """Keras 3's fit does not run under MultiWorkerMirroredStrategy; tf_keras's
    does (TF_USE_LEGACY_KERAS=1): the same one range on both workers."""
    _run_group(_workers({"TF_USE_LEGACY_KERAS": "1"}), str(tmp_path))
    res = []
    for i in range(2):
        with open(tmp_path / f"result-multiworker-keras2-{i}.json") as f:
            res.append(json.load(f))
    single = runs["single-0"]
    for phase in ("loop", "fit"):
        for layer in single[phase]:
            a, b = (np.asarray(r[phase][layer]["max"][0], np.float32) for r in res)
            np.testing.assert_array_equal(a, b, f"{phase} {layer}: worker 0 vs 1")
            want = np.asarray(single[phase][layer]["max"][0], np.float32)
            if layer in ("q_max", "q_pc_max"):  # statistics of the (quantized) inputs only
                np.testing.assert_array_equal(a, want, f"{phase} {layer}")
            else:  # depend on weights trained by another Keras's optimizer
                np.testing.assert_allclose(a, want, rtol=1e-5, err_msg=f"{phase} {layer}")
            for kind in ("loaded_keras", "loaded_ckpt"):
                if phase == "loop":
                    np.testing.assert_array_equal(res[0][kind][layer]["max"][0], a, f"{kind} {layer}")


def test_multiworker_example(tmp_path):
    """examples/qat_multiworker.py with tiny settings: 2 workers on 127.0.0.1,
    the same ranges printed by both, chief's export, lowering and ONNX."""
    example = os.path.join(os.path.dirname(HERE), "examples", "qat_multiworker.py")
    args = ["--workers", "2", "--epochs", "1", "--steps", "2", "--batch", "4", "--out", tmp_path]
    proc = run_child(example, *args, "--timeout", TIMEOUT_S, timeout=TIMEOUT_S + 30)
    out = proc.stdout
    ranges = sorted(line.split(": ", 1)[1] for line in out.splitlines() if "2. ranges on worker" in line)
    assert len(ranges) == 2 and ranges[0] == ranges[1], ranges
    assert "lowered SavedModel vs Keras model: bit-identical" in out, out
    assert "workers ended with [0, 0]" in out, out
    try:
        import tf2onnx  # noqa: F401

        assert "3 per tensor, 3 per channel" in out, out
        assert (tmp_path / "model.onnx").exists()
    except ImportError:
        assert "ONNX skipped" in out, out
    assert (tmp_path / "lowered").exists()
