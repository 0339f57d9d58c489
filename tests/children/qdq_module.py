"""tests/test_modes.py's SavedModel: every op (per tensor and per channel, float32 and half, a
gradient) in one tf.Module. Run as a program, `python qdq_module.py DIR` saves it to DIR/model
and its outputs on DIR/x.npy to DIR/saved_*.npy; the test imports it (runpy) to compute the same
outputs in its own process."""

import os
import sys

import numpy as np
import tensorflow as tf

import tf_qdq

R = tf_qdq.raw_ops
CLO = np.array([-1.0, -2.0, -0.5, -3.0], np.float32)
CHI = np.array([1.0, 0.5, 2.0, 3.0], np.float32)


class QdqModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        h = tf.cast(x, tf.float16)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf_qdq.quantize_and_dequantize_v2(x, CLO, CHI, range_given=True, axis=-1)
        return {
            "v1": R.QuantizeAndDequantize(input=x, range_given=True, input_min=-1.5, input_max=2.0),
            "v2": tf_qdq.quantize_and_dequantize(x, -1.5, 2.0, range_given=True, num_bits=4),
            "v2_pc": tf_qdq.quantize_and_dequantize(x, CLO, CHI, range_given=True, axis=1, round_mode="HALF_UP"),
            "v3": R.QuantizeAndDequantizeV3(input=x, input_min=-1.5, input_max=2.0, num_bits=5),
            "v3_pc": R.QuantizeAndDequantizeV3(input=x, input_min=CLO, input_max=CHI, num_bits=6, axis=1),
            "v4": tf_qdq.quantize_and_dequantize_v2(x, -1.5, 2.0, range_given=True, narrow_range=True),
            "v4_pc": y,
            "v4_data": tf_qdq.quantize_and_dequantize_v2(x, 0.0, 0.0),
            "v4_grad": tape.gradient(y, x, output_gradients=x + 1.0),
            "half_v2": tf_qdq.quantize_and_dequantize(h, -1.5, 2.0, range_given=True),
            "half_v4_pc": tf_qdq.quantize_and_dequantize_v2(
                h, CLO.astype(np.float16), CHI.astype(np.float16), range_given=True, axis=1
            ),
        }


if __name__ == "__main__":
    d = sys.argv[1]
    m = QdqModule()
    x = np.load(os.path.join(d, "x.npy"))
    for k, v in m(tf.constant(x)).items():
        np.save(os.path.join(d, "saved_" + k + ".npy"), v.numpy())
    tf.saved_model.save(m, os.path.join(d, "model"))
    print("SAVED")
