"""tf_qdq: TensorFlow's QuantizeAndDequantize op family as a custom-op plugin.

Bit-exact with the built-in ops where TensorFlow works, correct where it does not
(half/bfloat16, per-channel given ranges, inputs that abort TensorFlow), faster,
and exportable. See README.md and docs/semantics.md.
"""

from typing import Optional

from tf_qdq import _loader
from tf_qdq._version import __version__

_loader.load()

from tf_qdq import _install, _op_names, raw_ops
from tf_qdq._install import install, installed, uninstall
from tf_qdq.ops import quantize_and_dequantize, quantize_and_dequantize_v2

# tf2onnx lowers tf_qdq ops before folding them (docs/export.md): patched now if it is loaded,
# else when it is imported. tf_qdq.export itself is imported only then.
_install.hook_tf2onnx()

OP_NAMES = _op_names.PLUGIN_OPS


def __getattr__(name: str):
    # `tf_qdq.export` after a plain `import tf_qdq` (which does not import it).
    if name == "export":
        import importlib  # noqa: PLC0415

        return importlib.import_module("tf_qdq.export")
    raise AttributeError(f"module 'tf_qdq' has no attribute {name!r}")


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
