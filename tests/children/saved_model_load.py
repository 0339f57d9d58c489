"""Child of tests/test_modes.py: loads DIR/model (saved by qdq_module.py) with tf_qdq imported
and writes its outputs on DIR/x.npy to DIR/loaded_*.npy."""

import os
import sys

import numpy as np
import tensorflow as tf

import tf_qdq  # noqa: F401  (registers the ops)

d = sys.argv[1]
loaded = tf.saved_model.load(os.path.join(d, "model"))
x = np.load(os.path.join(d, "x.npy"))
for k, v in loaded(tf.constant(x)).items():
    np.save(os.path.join(d, "loaded_" + k + ".npy"), v.numpy())
print("LOADED")
