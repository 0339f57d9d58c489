"""Child of tests/test_huge.py: a bfloat16 tensor of 2^31 + 8 elements (per tensor, per channel
with channels outermost or innermost) with range sentinels placed beyond index 2^31; checks the
outputs around 2^31 and at the end. `python huge_sentinels.py LAYOUT`; prints `huge ok LAYOUT`."""

import sys

import numpy as np
import tensorflow as tf

import tf_qdq
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


layout = sys.argv[1]
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
    return y[:16], y[2**31 - 8 : 2**31 + 8], y[-8:]


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
