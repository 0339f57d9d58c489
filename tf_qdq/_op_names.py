"""The names of the plugin's five ops: the one table that the package (raw_ops, ops, export,
the self-check) and the tests read. Imports nothing heavy."""

import re
from typing import Dict, Tuple

# The op names TensorFlow gives them, by the short name the package's tools use.
BUILTIN_BY_VERSION: Dict[str, str] = {
    "V1": "QuantizeAndDequantize",
    "V2": "QuantizeAndDequantizeV2",
    "V3": "QuantizeAndDequantizeV3",
    "V4": "QuantizeAndDequantizeV4",
    "V4Grad": "QuantizeAndDequantizeV4Grad",
}
VERSIONS: Tuple[str, ...] = tuple(BUILTIN_BY_VERSION)
BUILTIN_OPS: Tuple[str, ...] = tuple(BUILTIN_BY_VERSION.values())

# The plugin registers each op as PLUGIN_PREFIX + its built-in name.
PLUGIN_PREFIX = "TfQdq>"
PLUGIN_BY_VERSION: Dict[str, str] = {v: PLUGIN_PREFIX + name for v, name in BUILTIN_BY_VERSION.items()}
PLUGIN_OPS: Tuple[str, ...] = tuple(PLUGIN_BY_VERSION.values())


def raw_function_name(op_name: str) -> str:
    """The keyword-only function tf.load_op_library makes for an op ("TfQdq>X" -> "TfQdq_X")."""
    return op_name.replace(">", "_")


def function_name(op_name: str) -> str:
    """The positional function tf.load_op_library makes for an op
    ("TfQdq>QuantizeAndDequantizeV4Grad" -> "tf_qdq_quantize_and_dequantize_v4_grad")."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", raw_function_name(op_name)).lower()
