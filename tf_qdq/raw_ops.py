"""The raw ops, called with TensorFlow's keyword names, like `tf.raw_ops`.

    tf_qdq.raw_ops.QuantizeAndDequantizeV2(input=x, input_min=lo, input_max=hi, range_given=True)

They are the functions tf.load_op_library generates, unwrapped (a wrapper would cost time on
every eager call); raw_ops.pyi gives their keyword signatures and types.
"""

from typing import Callable, Dict, List

import tensorflow as tf

from tf_qdq import _loader

_lib = _loader.load()

QuantizeAndDequantize: Callable[..., tf.Tensor] = _lib.TfQdq_QuantizeAndDequantize
QuantizeAndDequantizeV2: Callable[..., tf.Tensor] = _lib.TfQdq_QuantizeAndDequantizeV2
QuantizeAndDequantizeV3: Callable[..., tf.Tensor] = _lib.TfQdq_QuantizeAndDequantizeV3
QuantizeAndDequantizeV4: Callable[..., tf.Tensor] = _lib.TfQdq_QuantizeAndDequantizeV4
QuantizeAndDequantizeV4Grad: Callable[..., List[tf.Tensor]] = _lib.TfQdq_QuantizeAndDequantizeV4Grad

# The ops by short name ("V1" is QuantizeAndDequantize), as the package's tools name them.
BY_VERSION: Dict[str, Callable[..., object]] = {
    "V1": QuantizeAndDequantize,
    "V2": QuantizeAndDequantizeV2,
    "V3": QuantizeAndDequantizeV3,
    "V4": QuantizeAndDequantizeV4,
    "V4Grad": QuantizeAndDequantizeV4Grad,
}

__all__: List[str] = [
    "QuantizeAndDequantize",
    "QuantizeAndDequantizeV2",
    "QuantizeAndDequantizeV3",
    "QuantizeAndDequantizeV4",
    "QuantizeAndDequantizeV4Grad",
]
