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
import subprocess
import sys
import textwrap
import threading

import numpy as np
import tensorflow as tf
from qdq_testing import BFLOAT16, child_env

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


def _run_child(code, timeout=600):
    env = child_env(HERE)
    if "ASAN_OPTIONS" in env:  # under .ci/sanitize.sh: a small quarantine keeps RSS meaningful
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=16"
    p = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert p.returncode == 0, f"child failed (rc {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def test_inter_op_parallel_graph_matches_eager():
    """Independent ops of one graph run at once on 8 inter-op threads (and are
    called from 4 Python threads at once): results identical to eager ones."""
    out = _run_child("""
        import threading
        import tensorflow as tf
        tf.config.threading.set_inter_op_parallelism_threads(8)
        tf.config.threading.set_intra_op_parallelism_threads(2)
        import numpy as np
        import tf_qdq
        from tf_qdq import reference
        from test_concurrency import workloads

        work = workloads(seed=1)
        eager = [f().numpy() for _, f in work]

        @tf.function
        def all_at_once():
            return [f() for _, f in work]  # no data dependencies: scheduled in parallel

        for rep in range(3):
            got = [t.numpy() for t in all_at_once()]
            bad = [work[i][0] for i in range(len(work)) if not reference.same_bits(got[i], eager[i])]
            assert not bad, ("graph differs from eager", rep, bad)
        errors = []
        def worker():
            for _ in range(3):
                got = [t.numpy() for t in all_at_once()]
                errors.extend(work[i][0] for i in range(len(work)) if not reference.same_bits(got[i], eager[i]))
        ts = [threading.Thread(target=worker) for _ in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        assert not errors, errors[:5]
        print("inter-op ok", tf.config.threading.get_inter_op_parallelism_threads(), len(work))
    """)
    assert "inter-op ok 8" in out


def test_repeated_calls_do_not_grow_memory():
    """2000 calls after a warm-up (valid calls of every op, failing calls, a
    tf.function): resident memory grows by less than 40 MiB. One leaked output
    per call would be 2000 x 256 KiB = 500 MiB."""
    out = _run_child("""
        import os
        import numpy as np
        import tensorflow as tf
        import tf_qdq

        R = tf_qdq.raw_ops
        x = tf.constant(np.random.default_rng(0).standard_normal((64, 1024)).astype(np.float32))  # 256 KiB
        lo_c, hi_c = -tf.ones([1024]), tf.ones([1024])
        z = tf.constant(0.0)
        f = tf.function(lambda x: tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True))

        def rss():
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        def once(i):
            k = i % 8
            if k == 0: R.QuantizeAndDequantizeV2(input=x, input_min=z, input_max=z)
            elif k == 1: R.QuantizeAndDequantizeV4(input=x, input_min=lo_c, input_max=hi_c, axis=1, range_given=True)
            elif k == 2: R.QuantizeAndDequantizeV3(input=x, input_min=lo_c, input_max=hi_c, num_bits=7, axis=1)
            elif k == 3: R.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=lo_c, input_max=hi_c, axis=1)
            elif k == 4: R.QuantizeAndDequantize(input=x)
            elif k == 5: f(x)
            else:
                try:  # failing validation must not leak either
                    if k == 6: R.QuantizeAndDequantizeV3(input=x, input_min=lo_c, input_max=hi_c, num_bits=8, axis=-2)
                    else: R.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=z, input_max=z, axis=1)
                except tf.errors.InvalidArgumentError:
                    pass
                else:
                    raise AssertionError("bad input accepted")

        for i in range(400):
            once(i)
        before = rss()
        for i in range(2000):
            once(i)
        after = rss()
        print(f"rss before {before >> 20} MiB after {after >> 20} MiB growth {(after - before) / 2**20:.1f} MiB")
        assert after - before < 40 * 2**20, (before, after)
    """)
    print(out)
