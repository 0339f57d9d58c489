"""tf_qdq: TensorFlow's QuantizeAndDequantize op family as a custom-op plugin.

Bit-exact with the built-in ops where TensorFlow works, correct where it does not
(half/bfloat16, per-channel given ranges, inputs that abort TensorFlow), faster,
and exportable. See README.md and docs/semantics.md.
"""

from typing import Optional

from tf_qdq import _loader
from tf_qdq._version import __version__

_loader.load()

from tf_qdq import (
    _install,  # noqa: E402
    raw_ops,  # noqa: E402
)
from tf_qdq._install import install, installed, uninstall  # noqa: E402
from tf_qdq.ops import quantize_and_dequantize, quantize_and_dequantize_v2  # noqa: E402

_install.hook_tf2onnx()  # tf2onnx lowers tf_qdq ops before folding them (docs/export.md)

OP_NAMES = (
    "TfQdq>QuantizeAndDequantize",
    "TfQdq>QuantizeAndDequantizeV2",
    "TfQdq>QuantizeAndDequantizeV3",
    "TfQdq>QuantizeAndDequantizeV4",
    "TfQdq>QuantizeAndDequantizeV4Grad",
)


def library_path() -> Optional[str]:
    """Path of the loaded shared library."""
    return _loader.loaded_path()


def cpu_isa() -> str:
    """The instruction set the CPU kernels run with: "sse2", "avx2" or "avx512"
    (TF_QDQ_CPU_ISA picks one; docs/performance.md)."""
    return _loader.cpu_isa()


__all__ = [
    "__version__",
    "quantize_and_dequantize",
    "quantize_and_dequantize_v2",
    "raw_ops",
    "library_path",
    "cpu_isa",
    "OP_NAMES",
    "install",
    "uninstall",
    "installed",
]
