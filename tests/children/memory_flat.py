"""Child of tests/test_concurrency.py: 2000 calls of every op (valid and failing, eager and in a
tf.function) after a warm-up grow the resident memory by less than 40 MiB."""

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
    if k == 0:
        R.QuantizeAndDequantizeV2(input=x, input_min=z, input_max=z)
    elif k == 1:
        R.QuantizeAndDequantizeV4(input=x, input_min=lo_c, input_max=hi_c, axis=1, range_given=True)
    elif k == 2:
        R.QuantizeAndDequantizeV3(input=x, input_min=lo_c, input_max=hi_c, num_bits=7, axis=1)
    elif k == 3:
        R.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=lo_c, input_max=hi_c, axis=1)
    elif k == 4:
        R.QuantizeAndDequantize(input=x)
    elif k == 5:
        f(x)
    else:
        try:  # failing validation must not leak either
            if k == 6:
                R.QuantizeAndDequantizeV3(input=x, input_min=lo_c, input_max=hi_c, num_bits=8, axis=-2)
            else:
                R.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=z, input_max=z, axis=1)
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
