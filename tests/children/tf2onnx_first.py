"""Child of tests/test_install.py: tf2onnx imported before tf_qdq is patched too."""

import tf2onnx.convert  # noqa: F401

import tf_qdq  # noqa: F401
from tf_qdq import export

print(export.tf2onnx_patched())
