"""Child of tests/test_api.py: `import tf_qdq` after another copy of the op library was loaded.

    python second_copy.py LIBRARY copy|same|none

copy / same: tf.load_op_library(LIBRARY) first (a copy at another path, or the very file tf_qdq
loads); none: nothing first. Prints `IMPORTERROR message` or `OK [outputs]`."""

import sys

import tensorflow as tf

library, first = sys.argv[1:3]
if first in ("copy", "same"):
    tf.load_op_library(library)
try:
    import tf_qdq
except ImportError as e:
    print("IMPORTERROR " + str(e).replace("\n", " "))
else:
    x = tf.constant([0.25, -1.0, 3.0])
    print("OK", tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True).numpy().tolist())
