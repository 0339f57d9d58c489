"""tf_qdq.install() / tf_qdq.uninstall(): tf_qdq as a drop-in for TensorFlow's
quantize_and_dequantize functions in existing code (QAT toolkits), with every
export path kept correct. What is patched is listed in docs/export.md#install-and-uninstall."""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
import weakref
from typing import List, Optional, Tuple

_NAMES = ("quantize_and_dequantize", "quantize_and_dequantize_v2")
# The public API modules that hold TensorFlow's functions (tf.compat.v2.quantization is a
# module object of its own).
_API_MODULES = ("quantization", "compat.v1.quantization", "compat.v2.quantization")

_lock = threading.RLock()
_patches: List[Tuple[object, str, object]] = []  # (owner, attribute, original value)
_hook: Optional["_PostImportHook"] = None


class _PostImportHook(importlib.abc.MetaPathFinder):
    """Calls `callback(module)` once module `name` has been executed, however it is
    imported later (tf2onnx is optional and usually imported after install())."""

    def __init__(self, name, callback):
        self.name, self.callback, self._busy = name, callback, False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        loader, callback = spec.loader, self.callback

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                callback(module)

        spec.loader = _Loader()
        return spec


def _api_modules(tf):
    for dotted in _API_MODULES:
        module = tf
        for part in dotted.split("."):
            module = getattr(module, part, None)
        if module is not None:
            yield dotted, module


def _patch(owner, attribute, value):
    # A class keeps its own descriptor (classmethod), a module its attribute.
    original = vars(owner)[attribute] if isinstance(owner, type) else getattr(owner, attribute)
    _patches.append((owner, attribute, original))
    setattr(owner, attribute, value)


def _lowering_tflite_from_saved_model(original):
    """TFLiteConverter.from_saved_model that converts the lowered twin of a
    SavedModel holding tf_qdq ops (the TFLite converter knows only the built-ins)."""

    @functools.wraps(original)
    def from_saved_model(saved_model_dir, *args, **kwargs):
        from tf_qdq import export  # noqa: PLC0415

        if not any(op in export.PLUGIN_OPS for op in export.count_ops(saved_model_dir)):
            return original(saved_model_dir, *args, **kwargs)
        tmp = tempfile.mkdtemp(prefix="tf_qdq_lowered_")
        lowered = os.path.join(tmp, "lowered")
        try:
            export.lower_saved_model(saved_model_dir, lowered)
            converter = original(lowered, *args, **kwargs)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # The converter reads the directory again in convert().
        weakref.finalize(converter, shutil.rmtree, tmp, True)
        return converter

    return from_saved_model


class _Installed:
    """Returned by install(); `with tf_qdq.install(): ...` uninstalls on exit."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        uninstall()
        return False


def _patch_tf2onnx(module=None) -> None:
    # Imports tf_qdq.export only now that tf2onnx is loaded: `import tf_qdq` alone does not.
    from tf_qdq.export import onnx as export_onnx  # noqa: PLC0415

    export_onnx.patch_tf2onnx()


def hook_tf2onnx() -> None:
    """Makes every tf2onnx conversion in this process lower tf_qdq ops before
    Grappler runs (tf_qdq.export.patch_tf2onnx): now if tf2onnx is loaded, else
    when it is first imported (an import hook; tf_qdq.export is imported only
    then). Called by `import tf_qdq`; a no-op without tf2onnx."""
    global _hook
    with _lock:
        if "tf2onnx.tf_loader" in sys.modules:
            _patch_tf2onnx()
        elif _hook is None and importlib.util.find_spec("tf2onnx") is not None:
            _hook = _PostImportHook("tf2onnx.tf_loader", _patch_tf2onnx)
            sys.meta_path.insert(0, _hook)


def unhook_tf2onnx() -> None:
    """Removes the import hook of hook_tf2onnx (tf2onnx, if loaded, stays patched)."""
    global _hook
    with _lock:
        if _hook is not None and _hook in sys.meta_path:
            sys.meta_path.remove(_hook)
        _hook = None


def install(tf2onnx: bool = True, tflite: bool = True) -> _Installed:
    """Makes existing code use tf_qdq in place of TensorFlow's QDQ functions, and
    keeps every export of the resulting models correct. Idempotent.

    - tf.quantization.quantize_and_dequantize and quantize_and_dequantize_v2, and the
      same names in tf.compat.v1.quantization and tf.compat.v2.quantization, become
      tf_qdq.quantize_and_dequantize(_v2) (same signatures).
    - tf2onnx=True: every tf2onnx conversion in this process (convert.from_keras,
      from_function, from_graph_def, ...) lowers the tf_qdq ops of the frozen graph
      to the built-in ops before Grappler folds them (hook_tf2onnx; `import tf_qdq`
      already does this, and uninstall() leaves it in place, since models built
      while installed still hold tf_qdq ops).
    - tflite=True: tf.lite.TFLiteConverter.from_saved_model converts the lowered
      twin of a SavedModel that holds tf_qdq ops.

    Use as a call (undone by tf_qdq.uninstall()) or as a context manager.
    """
    import tensorflow as tf  # noqa: PLC0415

    import tf_qdq  # noqa: PLC0415

    with _lock:
        if not _patches:
            replacements = {
                "quantize_and_dequantize": tf_qdq.quantize_and_dequantize,
                "quantize_and_dequantize_v2": tf_qdq.quantize_and_dequantize_v2,
            }
            for _, module in _api_modules(tf):
                for name in _NAMES:
                    if hasattr(module, name):
                        _patch(module, name, replacements[name])
            if tflite and hasattr(tf, "lite"):
                conv = tf.lite.TFLiteConverter
                if "from_saved_model" in vars(conv):
                    _patch(
                        conv, "from_saved_model", staticmethod(_lowering_tflite_from_saved_model(conv.from_saved_model))
                    )
            if tf2onnx:
                hook_tf2onnx()
    return _Installed()


def uninstall() -> None:
    """Restores TensorFlow's functions and the TFLite converter (no-op when nothing
    is installed). The tf2onnx hook stays: it changes only graphs that hold tf_qdq
    ops, which tf2onnx cannot convert without it (tf_qdq.export.unpatch_tf2onnx()
    removes it)."""
    with _lock:
        while _patches:
            owner, attribute, original = _patches.pop()
            setattr(owner, attribute, original)


def installed() -> bool:
    """Whether install() is in effect."""
    return bool(_patches)
