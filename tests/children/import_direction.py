"""Child of tests/test_install.py and tests/test_package.py: what `import tf_qdq` loads, and
whether importing tf2onnx afterwards loads tf_qdq.export and patches tf2onnx. Prints one JSON
object."""

import importlib.util
import json
import sys

import tf_qdq

loaded = sorted(m for m in sys.modules if m.startswith("tf_qdq"))
has_tf2onnx = importlib.util.find_spec("tf2onnx") is not None
if has_tf2onnx:
    import tf2onnx.convert  # noqa: F401
export_loaded = "tf_qdq.export" in sys.modules
patched = has_tf2onnx and export_loaded and tf_qdq.export.tf2onnx_patched()
print(
    json.dumps(
        dict(
            loaded_by_import=loaded,
            has_tf2onnx=has_tf2onnx,
            export_loaded_by_tf2onnx=export_loaded,
            patched=patched,
            # tf_qdq.export resolves as an attribute after a plain `import tf_qdq`.
            attribute=tf_qdq.export.PLUGIN_OPS == tf_qdq.OP_NAMES,
        )
    )
)
