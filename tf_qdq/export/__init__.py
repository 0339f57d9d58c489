"""Export of models that use tf_qdq: lowering to TensorFlow's built-in ops, raising
back, and ONNX (docs/export.md).

    tf_qdq.export.lower_saved_model("trained", "lowered")   # TfQdq> ops -> built-in ops
    python -m tf_qdq lower trained lowered

Modules: `graph` (GraphDef/FunctionDef/SavedModel rewriting helpers), `lowering`
(which built-in op replaces each plugin op),
`onnx` (tf2onnx: `saved_model_to_onnx`, `patch_tf2onnx`), `convert` (`to_onnx`: a
model to ONNX in one call), `check` (`check_onnx`: the ONNX linter). The command lines
(`python -m tf_qdq lower|raise|tf2onnx|saved_model_cli|check-onnx`) are in tf_qdq/_cli.py.
"""

from tf_qdq.export.check import Finding, check_onnx
from tf_qdq.export.convert import to_onnx
from tf_qdq.export.graph import BUILTIN_OPS, PLUGIN_OPS, PLUGIN_PREFIX, LoweringError, count_ops
from tf_qdq.export.lowering import (
    lower_graph_def,
    lower_saved_model,
    raise_graph_def,
    raise_saved_model,
)
from tf_qdq.export.onnx import (
    patch_tf2onnx,
    saved_model_to_onnx,
    tf2onnx_patched,
    unpatch_tf2onnx,
)

__all__ = [
    "BUILTIN_OPS",
    "PLUGIN_OPS",
    "PLUGIN_PREFIX",
    "LoweringError",
    "count_ops",
    "lower_graph_def",
    "lower_saved_model",
    "raise_graph_def",
    "raise_saved_model",
    "saved_model_to_onnx",
    "patch_tf2onnx",
    "unpatch_tf2onnx",
    "tf2onnx_patched",
    "to_onnx",
    "check_onnx",
    "Finding",
]
