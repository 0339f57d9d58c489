"""Export of models that use tf_qdq: lowering to TensorFlow's built-in ops, raising
back, and ONNX (docs/export.md).

    tf_qdq.export.lower_saved_model("trained", "lowered")   # TfQdq> ops -> built-in ops
    python -m tf_qdq lower trained lowered

Modules: `graph` (GraphDef/FunctionDef/SavedModel rewriting helpers), `lowering`
(which built-in op replaces each plugin op; `python -m tf_qdq lower|raise`),
`onnx` (tf2onnx: `saved_model_to_onnx`, `patch_tf2onnx`, `python -m tf_qdq tf2onnx`).
"""

from tf_qdq.export.convert import to_onnx
from tf_qdq.export.graph import BUILTIN_OPS, PLUGIN_OPS, PLUGIN_PREFIX, LoweringError, count_ops
from tf_qdq.export.lowering import (
    lower_graph_def,
    lower_saved_model,
    main,
    raise_graph_def,
    raise_main,
    raise_saved_model,
)
from tf_qdq.export.onnx import (
    patch_tf2onnx,
    saved_model_cli_main,
    saved_model_to_onnx,
    tf2onnx_main,
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
    "main",
    "raise_main",
    "saved_model_to_onnx",
    "patch_tf2onnx",
    "unpatch_tf2onnx",
    "tf2onnx_patched",
    "tf2onnx_main",
    "saved_model_cli_main",
    "to_onnx",
]
