"""ONNX export of models with tf_qdq ops: tf2onnx (optional dependency,
`pip install tf_qdq[export]`).

tf2onnx knows only TensorFlow's built-in QuantizeAndDequantizeV2/V3/V4, and
every one of its entry points (convert.from_keras, from_function,
from_saved_model, from_graph_def and the `python -m tf2onnx.convert` command
line) freezes the model and then calls `tf2onnx.tf_loader.tf_optimize`, which
runs Grappler's constant folding before tf2onnx's own rewriters. Grappler keeps
a QDQ op whose inputs are all constant (weights, once frozen) only when its op
name starts with "QuantizeAndDequantize", which the plugin's "TfQdq>..." names do
not: such an op is folded into plain weights. `patch_tf2onnx()` therefore wraps
tf_optimize so that it lowers the frozen GraphDef first (lower_graph_def), and
the rest of tf2onnx sees exactly the lowered twin of the model.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    import onnx

from tf_qdq.export.graph import PLUGIN_OPS, count_ops, tensorflow, used_ops
from tf_qdq.export.lowering import lower_graph_def, lower_saved_model

_ORIGINAL = "_tf_qdq_original"


def _has_plugin_ops(graph_def) -> bool:
    return any(op in PLUGIN_OPS for op in used_ops(graph_def))


def _lowering_tf_optimize(tf_optimize):
    @functools.wraps(tf_optimize)
    def lowering_tf_optimize(input_names, output_names, graph_def):
        if _has_plugin_ops(graph_def):
            graph_def = lower_graph_def(graph_def)  # LoweringError: no ONNX file
        return tf_optimize(input_names, output_names, graph_def)

    setattr(lowering_tf_optimize, _ORIGINAL, tf_optimize)
    return lowering_tf_optimize


def _lowering_large_model(freeze):
    # large_model=True freezes with this function and skips tf_optimize.
    @functools.wraps(freeze)
    def lowering_freeze(*args, **kwargs):
        graph_def = freeze(*args, **kwargs)
        return lower_graph_def(graph_def) if _has_plugin_ops(graph_def) else graph_def

    setattr(lowering_freeze, _ORIGINAL, freeze)
    return lowering_freeze


# tf2onnx.tf_loader functions that every conversion passes through with the frozen
# GraphDef, before Grappler and tf2onnx's own constant folding.
_WRAPPERS = {
    "tf_optimize": _lowering_tf_optimize,
    "convert_variables_to_constants_large_model": _lowering_large_model,
}


def patch_tf2onnx() -> None:
    """Makes every tf2onnx conversion in this process lower tf_qdq ops to the
    built-in ops right after freezing, before Grappler runs (idempotent). Needs
    tf2onnx."""
    from tf2onnx import tf_loader  # noqa: PLC0415

    for name, wrap in _WRAPPERS.items():
        current = getattr(tf_loader, name, None)
        if current is not None and not hasattr(current, _ORIGINAL):
            setattr(tf_loader, name, wrap(current))


def unpatch_tf2onnx() -> None:
    """Undoes patch_tf2onnx, and stops `import tf_qdq` from patching tf2onnx when it
    is imported later (no-op where tf2onnx was never patched)."""
    from tf_qdq import _install  # noqa: PLC0415

    _install.unhook_tf2onnx()
    tf_loader = sys.modules.get("tf2onnx.tf_loader")
    for name in _WRAPPERS:
        current = getattr(tf_loader, name, None)
        if hasattr(current, _ORIGINAL):
            setattr(tf_loader, name, getattr(current, _ORIGINAL))


def tf2onnx_patched() -> bool:
    """Whether tf2onnx (loaded now) lowers tf_qdq ops before converting."""
    tf_loader = sys.modules.get("tf2onnx.tf_loader")
    return tf_loader is not None and hasattr(tf_loader.tf_optimize, _ORIGINAL)


def saved_model_to_onnx(
    src: Union[str, "os.PathLike[str]"],
    output_path: Optional[str] = None,
    signature: str = "serving_default",
    opset: int = 13,
) -> onnx.ModelProto:
    """Converts a SavedModel signature to ONNX with tf2onnx (optional dependency:
    `pip install tf_qdq[export]`) and returns the ONNX ModelProto.

    A model that still holds plugin ops is lowered first (into a temporary
    directory). tf2onnx turns every QuantizeAndDequantizeV2/V3/V4 into a
    QuantizeLinear/DequantizeLinear pair: 8 bits only (it ignores num_bits),
    per channel for V3 with an axis (opset >= 13); a given range must be a
    constant after freezing (variables are). The ONNX model inputs are named as
    the signature's inputs.
    """
    try:
        import tf2onnx  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(
            "saved_model_to_onnx needs tf2onnx: pip install 'tf_qdq[export]' (tf2onnx, onnx, onnxruntime)"
        ) from e
    tf = tensorflow()
    src = os.fspath(src)
    with tempfile.TemporaryDirectory(prefix="tf_qdq_lowered_") as tmp:
        if any(op in PLUGIN_OPS for op in count_ops(src)):
            lowered = os.path.join(tmp, "lowered")
            lower_saved_model(src, lowered)
            src = lowered
        loaded = tf.saved_model.load(src)
        if signature not in loaded.signatures:
            raise ValueError(f"{src} has no signature {signature!r}; it has {sorted(loaded.signatures)}")
        fn = loaded.signatures[signature]
        specs = fn.structured_input_signature[1]
        names = sorted(specs)
        # tf2onnx takes a tf.function with positional inputs; signatures take keywords.
        wrapped = tf.function(lambda *args: fn(**dict(zip(names, args))))
        input_signature = [tf.TensorSpec(specs[n].shape, specs[n].dtype, name=n) for n in names]
        model_proto, _ = tf2onnx.convert.from_function(
            wrapped, input_signature=input_signature, opset=opset, output_path=output_path
        )
    return model_proto
