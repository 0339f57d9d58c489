"""Element counts and dims beyond int32 (docs/semantics.md#bad-inputs, item 5, 7.7): all index arithmetic of
the kernels is int64 (View's outer/depth/inner, the block splitting).

- Always run (cheap): empty tensors whose other dims overflow int32, or even
  int64 once the zero is left out ([0, 2^62, 2^62]); per-channel views with
  2^31 + 1 channels.
- Opt-in (TF_QDQ_HUGE=1, marked slow; ~4-8 GiB of memory each, tens of
  seconds): 2^31 + 8 real elements in bfloat16, per tensor and per channel
  (along the outer and the inner axis), with sentinels beyond index 2^31 that
  decide the computed range, so that a truncated index anywhere changes the
  result.

Every test runs in a child process: a crash or an out-of-memory kill fails the
test, not pytest.
"""

import os
import subprocess
import sys
import textwrap

import pytest
from qdq_testing import child_env

HERE = os.path.dirname(os.path.abspath(__file__))
HUGE = os.environ.get("TF_QDQ_HUGE") == "1"


def run_child(code, timeout=1800):
    env = child_env()
    p = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert p.returncode == 0, f"child failed (rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def test_empty_with_int32_overflowing_dims():
    out = run_child("""
        import numpy as np, tensorflow as tf, tf_qdq
        R = tf_qdq.raw_ops
        z = tf.zeros([0])
        cases = 0
        for shape, axis in [([0, 2**62, 2**62], 0), ([0, 2**62, 2**62], 2), ([2**31 + 1, 0, 2**31 + 1], 0),
                            ([2**31 + 1, 0, 2**31 + 1], 2), ([0, 2**31 + 1], 1), ([2**16, 2**16, 0], 1),
                            ([2**40, 0], -1), ([0, 2**31 - 1, 2**31 - 1, 3], 3)]:
            x = tf.zeros(shape, tf.bfloat16)
            for mode in ("eager", "function"):
                def f(x=x, axis=axis):
                    d = 1 if axis == -1 else shape[axis]
                    if d <= 3:  # a per-channel range can be given
                        mn = tf.zeros([] if axis == -1 else [d], tf.bfloat16)
                        outs = [R.QuantizeAndDequantizeV3(input=x, input_min=mn, input_max=mn, num_bits=8, axis=axis),
                                R.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=mn, input_max=mn,
                                                              axis=axis)[0]]
                        outs.append(R.QuantizeAndDequantizeV2(input=x, input_min=mn, input_max=mn, axis=axis))
                    elif mode == "eager":  # 2^31 + 1 channels: computed range, min/max ignored
                        e = tf.zeros([0], tf.bfloat16)
                        outs = [R.QuantizeAndDequantizeV2(input=x, input_min=e, input_max=e, axis=axis)]
                    else:  # no min/max of 2^31 + 1 elements in a graph: the shape function needs them
                        outs = []
                    return outs
                outs = tf.function(f)() if mode == "function" else f()
                assert all(o.shape == x.shape for o in outs), (shape, axis, [o.shape for o in outs])
                cases += len(outs)
        print("empty ok", cases)
    """)
    assert "empty ok" in out


_SENTINEL_CHECK = """
    import numpy as np, tensorflow as tf, tf_qdq
    from tf_qdq import reference
    BF16 = tf.bfloat16.as_numpy_dtype
    N = 2**31 + 8
    assert tf.int64.max > N > 2**31
    pattern = np.array([0.25, -0.5, 1.0, -0.75, 0.0, 0.1, -0.3, 0.6], np.float32)

    def expected(values, lo, hi):
        # per tensor, the output of a value depends only on the value and the range
        small = np.concatenate([values, [lo, hi]]).astype(BF16)
        z = np.zeros((), BF16)
        return reference.builtin("V2", input=small, input_min=z, input_max=z)[:-2].numpy()

    def bits(a):
        return np.ascontiguousarray(a).view(np.uint16)
"""


@pytest.mark.slow
@pytest.mark.skipif(not HUGE, reason="allocates 4-8 GiB and takes a while: set TF_QDQ_HUGE=1 to run")
@pytest.mark.parametrize("layout", ["per-tensor", "per-channel-outer", "per-channel-inner"])
def test_more_than_int32_max_elements(layout):
    out = run_child(
        _SENTINEL_CHECK
        + f"""
    layout = {layout!r}
    if layout == "per-tensor":
        shape, axis = [N], -1
    elif layout == "per-channel-outer":
        shape, axis = [2, N // 2], 0  # inner = 2^30 + 4: channel 1 spans indices 2^30+4 .. 2^31+7
    else:
        shape, axis = [N // 2, 2], 1  # inner = 1: the channels-innermost loop
    LO, HI = -3.0, 2.0  # sentinels beyond the pattern's range, placed beyond index 2^31

    @tf.function
    def run():
        x = tf.tile(tf.constant(pattern, tf.bfloat16), [N // 8])
        flat_lo, flat_hi = N - 5 if axis == -1 else 2**31 + 1, N - 1  # both in the last channel
        x = tf.tensor_scatter_nd_update(x, [[flat_lo], [flat_hi]], tf.constant([LO, HI], tf.bfloat16))
        x = tf.reshape(x, shape)
        d = 1 if axis == -1 else shape[axis]
        z = tf.zeros([] if axis == -1 else [d], tf.bfloat16)
        y = tf.reshape(tf_qdq.raw_ops.QuantizeAndDequantizeV2(input=x, input_min=z, input_max=z, axis=axis), [-1])
        return y[:16], y[2**31 - 8: 2**31 + 8], y[-8:]

    head, middle, tail = [t.numpy() for t in run()]
    if axis == -1:
        want = expected(pattern, LO, HI)  # one range for the whole tensor
        assert (bits(head) == bits(np.tile(want, 2))).all(), (head, want)
        want_mid = np.tile(want, 2)
        want_mid[11] = expected(np.array([LO]), LO, HI)[0]  # flat N - 5 = 2^31 + 3
        want_mid[15] = expected(np.array([HI]), LO, HI)[0]  # flat N - 1 = 2^31 + 7
        assert (bits(middle) == bits(want_mid)).all(), (middle, want_mid)
        want_tail = want.copy()
        want_tail[3] = expected(np.array([LO]), LO, HI)[0]
        want_tail[7] = expected(np.array([HI]), LO, HI)[0]
        assert (bits(tail) == bits(want_tail)).all(), (tail, want_tail)
    else:
        # channel 0 has the pattern's own range; the last channel the sentinels'
        if axis == 0:
            ch0 = expected(pattern, pattern.min(), pattern.max())
            ch1 = expected(pattern, LO, HI)
            assert (bits(head) == bits(np.tile(ch0, 2))).all(), (head, ch0)
            # flat 2^31-8 .. 2^31+7 all lie in channel 1 (it starts at 2^30+4)
            want_mid = np.tile(ch1, 2)
            want_mid[9] = expected(np.array([LO]), LO, HI)[0]  # flat 2^31 + 1
            want_mid[15] = expected(np.array([HI]), LO, HI)[0]  # flat N - 1 = 2^31 + 7
            assert (bits(middle) == bits(want_mid)).all(), (middle, want_mid)
        else:
            # channels alternate: even positions are channel 0, odd channel 1
            even, odd = pattern[0::2], pattern[1::2]
            ch1_lo = min(odd.min(), LO)
            c0 = expected(even, even.min(), even.max())
            c1 = expected(odd, LO, HI)
            want = np.empty(8, np.float32).astype(BF16)
            want[0::2], want[1::2] = c0, c1
            assert (bits(head) == bits(np.tile(want, 2))).all(), (head, want)
            want_mid = np.tile(want, 2)
            want_mid[9] = expected(np.array([LO]), LO, HI)[0]  # flat 2^31 + 1 is in channel 1
            want_mid[15] = expected(np.array([HI]), LO, HI)[0]  # flat N - 1 = 2^31 + 7, channel 1
            assert (bits(middle) == bits(want_mid)).all(), (middle, want_mid)
    print("huge ok", layout)
    """
    )
    assert "huge ok" in out
