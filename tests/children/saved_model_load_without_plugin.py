"""Child of tests/test_modes.py: loading DIR/model without importing tf_qdq fails (exit 3) with
TensorFlow's error, printed."""

import os
import sys

import tensorflow as tf

d = sys.argv[1]
try:
    tf.saved_model.load(os.path.join(d, "model"))
except Exception as e:
    assert "tf_qdq" not in sys.modules
    print("ERROR-TYPE:", type(e).__name__)
    print("ERROR:", e)
    sys.exit(3)
print("LOADED WITHOUT PLUGIN")
