"""Child of tests/test_xla.py: tf_qdq imported after XLA compiled something (its compilation
kernels exist before the plugin is loaded) still compiles bit-exactly. Prints OK."""

import numpy as np
import tensorflow as tf

# XLA creates its compilation kernels here, before the plugin is loaded.
assert float(tf.function(lambda x: x * 2, jit_compile=True)(tf.constant(1.5))) == 3.0
from tensorflow.python.framework import kernels

assert "XLA_CPU_JIT" in {k.device_type for k in kernels.get_registered_kernels_for_op("Identity").kernel}
import tf_qdq

x = np.array([0.3, -2.0, 0.5, np.nan, -0.0], np.float32)
f = tf.function(lambda x: tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True), jit_compile=True)
got = f(x).numpy()
want = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True).numpy()
assert got.tobytes() == want.tobytes(), (got, want)


def v3(x):
    return tf_qdq.raw_ops.QuantizeAndDequantizeV3(input=x, input_min=-1.0, input_max=1.0, num_bits=4)


assert tf.function(v3, jit_compile=True)(x).numpy().tobytes() == v3(x).numpy().tobytes()
print("OK")
