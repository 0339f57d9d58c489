"""Sign of a zero minimum and maximum of a range computed from the data (CPU).

The rule (docs/semantics.md#edge-cases, the IEEE total order -0.0 < +0.0, the
same as the GPU's order keys): a zero minimum is -0.0 when the channel holds a
-0.0, else +0.0; a zero maximum is +0.0 when the channel holds a +0.0, else
-0.0. It must not depend on where the zeros are, on the number of threads
(blocks of 128K elements with their own accumulators) or on the instruction-set
table (vector width), so every case here is checked bit for bit in the default
process and in child processes with each table and 1 or 3 intra-op threads.

The minimum's sign shows in the outputs when qmax / max overflows (8 bits: a
maximum below about 3.7e-37): the scale then comes from the minimum, and every
output takes the sign of inv = min / qmin.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from qdq_testing import BFLOAT16 as BF16
from qdq_testing import child_env, run_child

import tf_qdq
from tf_qdq import reference

HERE = os.path.dirname(os.path.abspath(__file__))
# A tiny normal value per dtype: qmax / TINY overflows in the compute type (float16 cannot
# overflow it, but still gets the zero rule and its checks).
TINY = {np.float32: 1e-37, np.float64: 1e-307, np.float16: 1e-4, BF16: 1e-37}
# Where the zeros go: both ends, vector-width and 1024-element chunk edges, the 128K block edge.
SPOTS = [0, 1, 7, 8, 15, 16, 31, 63, 1023, 1024, 131071, 131072]


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def cases(quick=False):
    """Yields (label, kwargs of QuantizeAndDequantizeV2, dtype)."""
    n = 2 * 131072 + 5  # two blocks (and more with several threads)
    spots = [0, 15, 1024, 131071, 131072] if quick else SPOTS
    for dtype in (np.float32, np.float64, np.float16, BF16):
        tiny = TINY[dtype]
        for zeros in ("pos", "neg", "both", "neg_pos"):
            for j, spot in enumerate(spots + [n - 1]):
                x = np.full(n, tiny, dtype)
                x[1::3] = dtype(tiny * 2)
                z = {"pos": [0.0], "neg": [-0.0], "both": [0.0, -0.0], "neg_pos": [-0.0, 0.0]}[zeros]
                for k, v in enumerate(z):
                    x[(spot + 5 * k) % n] = dtype(v)
                if zeros == "pos":  # many +0.0, one -0.0 is "neg"
                    x[spot::4099] = dtype(0.0)
                zz = np.zeros((), dtype)
                rm = ("HALF_TO_EVEN", "HALF_UP")[j % 2]
                yield (
                    f"{np.dtype(dtype).name} {zeros} at {spot} {rm}",
                    dict(input=x, input_min=zz, input_max=zz, round_mode=rm),
                    dtype,
                )
            # Per channel: rows (axis 0) and cols (last axis, flat blocks over threads).
            x = np.full(n - 5, tiny, dtype).reshape(2, -1)
            x[0, 777] = dtype(0.0)
            x[0, 131000] = dtype(-0.0)
            x[1, 5] = dtype(-0.0)
            x[1, -1] = dtype(0.0)
            zc = np.zeros(2, dtype)
            yield f"{np.dtype(dtype).name} per-channel rows", dict(input=x, input_min=zc, input_max=zc, axis=0), dtype
            xt = np.ascontiguousarray(x.T)
            yield f"{np.dtype(dtype).name} per-channel cols", dict(input=xt, input_min=zc, input_max=zc, axis=1), dtype
            # Zero maxima: negative data with zeros of either sign.
            xm = -x
            yield (
                f"{np.dtype(dtype).name} per-channel zero max",
                dict(input=xm, input_min=zc, input_max=zc, axis=0, signed_input=True),
                dtype,
            )


def expected(kw):
    k = dict(kw)
    return reference.numpy_qdq(k.pop("input"), **k)


def check_all(quick=False):
    """Returns the failure strings of every case (ours against the rule's NumPy reference)."""
    failures = []
    for label, kw, dtype in cases(quick):
        ours = tf_qdq.raw_ops.QuantizeAndDequantizeV2(**kw).numpy()
        want = expected(kw)
        bad = np.flatnonzero(_bits(ours) != _bits(want))
        if bad.size:
            i = bad[0]
            failures.append(f"{label}: {bad.size} differ, first [{i}] {ours.flat[i]!r} vs {want.flat[i]!r}")
    return failures


def test_example_from_semantics():
    """[0.0, -0.0, 1e-37], 8 bits: the minimum is -0.0, inv = -0.0 / -128 = +0.0: signs + - +,
    as TensorFlow's CPU kernel gives for this input."""
    x = np.array([0.0, -0.0, 1e-37], np.float32)
    z = np.float32(0)
    ours = tf_qdq.raw_ops.QuantizeAndDequantizeV2(input=x, input_min=z, input_max=z).numpy()
    assert list(np.signbit(ours)) == [False, True, False]
    assert np.all(ours == 0)
    ref = reference.builtin("V2", input=x, input_min=z, input_max=z)
    assert np.array_equal(_bits(ours), _bits(ref.numpy()))
    # Only +0.0: min +0.0, inv = -0.0, every sign flips.
    x = np.array([0.0, 1e-37, 0.0], np.float32)
    ours = tf_qdq.raw_ops.QuantizeAndDequantizeV2(input=x, input_min=z, input_max=z).numpy()
    assert list(np.signbit(ours)) == [True, True, True]


def test_zero_sign_default():
    failures = check_all()
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("isa", ["sse2", "avx2", "avx512"])
# Every table runs with 3 threads in the quick profile; the single-thread runs (one fresh process
# each) are slow.
@pytest.mark.parametrize("threads", [pytest.param(1, marks=pytest.mark.slow), 3])
def test_zero_sign_tables_and_threads(isa, threads):
    """Every case with table `isa` (TF_QDQ_CPU_ISA; avx512 only where the CPU has it, else the
    default table) and `threads` intra-op threads, in a fresh process (fewer zero positions)."""
    env = child_env(HERE)
    env["TF_QDQ_CPU_ISA"] = isa
    args = ("test_zero_sign", "check_all", "--intra-op-threads", threads, "quick=True")
    run_child("check_in_child.py", *args, env=env, timeout=300)
