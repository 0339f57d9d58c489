"""Concurrency and memory: many Python threads calling the ops at once give the
single-threaded results bit for bit; so do graphs whose independent ops run in
parallel on the inter-op thread pool; repeated calls (valid and invalid) do not
grow memory.

The kernels keep no mutable state (attrs are read in the constructors, every
scratch buffer is local to one Compute call), so these are regression tests for
that property. The thread-pool and memory tests run in child processes: the
thread-pool sizes must be set before TensorFlow starts, and RSS is only
meaningful in a fresh process.
"""

import os
import threading

import numpy as np
import tensorflow as tf
from qdq_testing import BFLOAT16, child_env, run_child

import tf_qdq
from tf_qdq import reference

HERE = os.path.dirname(os.path.abspath(__file__))


def workloads(seed=0):
    """(label, callable) pairs covering every op, per-tensor and per-channel,
    computed and given ranges, all dtypes; some big enough (>= 64k elements)
    that the CPU loops split them over the intra-op pool."""
    rng = np.random.default_rng(seed)
    out = []
    for dt in (np.float32, np.float64, np.float16, BFLOAT16):

        def c(v, dt=dt):  # (tf.constant turns 0-d bfloat16 arrays into float32)
            return tf.cast(tf.constant(np.asarray(v, np.float32)), tf.as_dtype(dt))

        big = c(rng.standard_normal((96, 1024)) * 3)
        small = c(rng.standard_normal((5, 7, 3)) * 3)
        lo_c = c(-np.abs(rng.standard_normal(1024)) - 0.5)
        hi_c = c(np.abs(rng.standard_normal(1024)) + 0.5)
        z = c(0)
        lo, hi = c(-2), c(3)
        R = tf_qdq.raw_ops
        name = np.dtype(dt).name
        out += [
            (f"V2 data {name}", lambda x=big, z=z: R.QuantizeAndDequantizeV2(input=x, input_min=z, input_max=z)),
            (
                f"V2 per-channel data {name}",
                lambda x=big, a=lo_c, b=hi_c: R.QuantizeAndDequantizeV2(
                    input=x, input_min=a, input_max=b, axis=1, round_mode="HALF_UP"
                ),
            ),
            (
                f"V4 given {name}",
                lambda x=big, a=lo, b=hi: R.QuantizeAndDequantizeV4(
                    input=x, input_min=a, input_max=b, range_given=True, num_bits=5
                ),
            ),
            (
                f"V3 per-channel given {name}",
                lambda x=big, a=lo_c, b=hi_c: R.QuantizeAndDequantizeV3(
                    input=x, input_min=a, input_max=b, num_bits=8, axis=1, narrow_range=True
                ),
            ),
            (
                f"V1 small {name}",
                lambda x=small: R.QuantizeAndDequantize(input=x, range_given=True, input_min=-1.0, input_max=1.0),
            ),
            (
                f"V4Grad per-channel {name}",
                lambda x=big, a=lo_c, b=hi_c: R.QuantizeAndDequantizeV4Grad(
                    gradients=x[::-1], input=x, input_min=a, input_max=b, axis=1
                )[0],
            ),
            (
                f"wrapper axis -3 {name}",
                lambda x=small: tf_qdq.quantize_and_dequantize_v2(x, np.zeros(5), np.zeros(5), axis=-3),
            ),
        ]
    return out


def test_python_threads_match_single_threaded():
    work = workloads()
    expected = [f().numpy() for _, f in work]
    errors = []
    barrier = threading.Barrier(8)

    def worker(t):
        try:
            barrier.wait()
            for i in range(3 * len(work)):
                k = (7 * t + i) % len(work)
                got = work[k][1]().numpy()
                if not reference.same_bits(got, expected[k]):
                    errors.append(
                        f"thread {t}: {work[k][0]} differs ({reference.count_differing(got, expected[k])} elements)"
                    )
        except Exception as e:  # noqa: BLE001
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, "\n".join(errors[:10])


def test_python_threads_tf_function_and_errors():
    """Threads sharing one tf.function, interleaved with calls that fail validation."""
    x = tf.constant(np.linspace(-3, 3, 70000, dtype=np.float32).reshape(70, 1000))
    f = tf.function(lambda x: tf_qdq.quantize_and_dequantize(x, -1.0, 1.0, range_given=True, num_bits=4))
    want = f(x).numpy()
    errors = []

    def worker(t):
        for i in range(40):
            if i % 4 == t % 4:
                try:
                    tf_qdq.raw_ops.QuantizeAndDequantizeV3(
                        input=x, input_min=[-1.0, -1.0], input_max=[1.0, 1.0], num_bits=8, axis=-1
                    )
                    errors.append("bad input accepted")
                except tf.errors.InvalidArgumentError:
                    pass
            elif not reference.same_bits(f(x).numpy(), want):
                errors.append(f"thread {t} call {i} differs")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]


def _env():
    """The children's environment: they import this module's workloads from tests/."""
    env = child_env(HERE)
    if "ASAN_OPTIONS" in env:  # under .ci/sanitize.sh: a small quarantine keeps RSS meaningful
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=16"
    return env


def test_inter_op_parallel_graph_matches_eager():
    """Independent ops of one graph run at once on 8 inter-op threads (and are
    called from 4 Python threads at once): results identical to eager ones."""
    out = run_child("inter_op_graph.py", env=_env(), timeout=600).stdout
    assert "inter-op ok 8" in out


def test_repeated_calls_do_not_grow_memory():
    """2000 calls after a warm-up (valid calls of every op, failing calls, a
    tf.function): resident memory grows by less than 40 MiB. One leaked output
    per call would be 2000 x 256 KiB = 500 MiB."""
    out = run_child("memory_flat.py", env=_env(), timeout=600).stdout
    print(out)
