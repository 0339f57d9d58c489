"""The raw ops, called with TensorFlow's keyword names, like `tf.raw_ops`.

    tf_qdq.raw_ops.QuantizeAndDequantizeV2(input=x, input_min=lo, input_max=hi, range_given=True)

They are the functions tf.load_op_library generates, unwrapped (a wrapper would cost time on
every eager call); raw_ops.pyi gives their keyword signatures and types.
"""

from typing import Callable, Dict, List

from tf_qdq import _loader, _op_names

_lib = _loader.load()

# The ops by short name ("V1" is QuantizeAndDequantize), as the package's tools name them.
BY_VERSION: Dict[str, Callable[..., object]] = {
    version: getattr(_lib, _op_names.raw_function_name(_op_names.PLUGIN_BY_VERSION[version]))
    for version in _op_names.VERSIONS
}
globals().update({name: BY_VERSION[version] for version, name in _op_names.BUILTIN_BY_VERSION.items()})

__all__: List[str] = list(_op_names.BUILTIN_OPS)
