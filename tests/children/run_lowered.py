"""Child of tests/test_export.py: runs lowered SavedModels (TF2 and TF1) in a process that never
imports tf_qdq. `python run_lowered.py JOBS_JSON`; prints the ops seen and the optional modules
loaded, as two JSON lines."""

import json
import os
import sys

import numpy as np
import tensorflow as tf

assert "tf_qdq" not in sys.modules
jobs = json.loads(sys.argv[1])
x = np.load(jobs["x"])
for job in jobs["tf2"]:
    m = tf.saved_model.load(job["dir"])
    out = {}
    for fn in job["functions"]:
        res = getattr(m, fn)(x)
        res = res if isinstance(res, dict) else {"out": res}
        out.update({f"{fn}/{k}": v.numpy() for k, v in res.items()})
    xt = tf.constant(x)
    for fn in ("computed_v4", "given_v4"):
        with tf.GradientTape() as tape:  # TensorFlow's registered gradient of the loaded ops
            tape.watch(xt)
            y = getattr(m, fn)(xt)
        out[f"tape/{fn}"] = tape.gradient(y, xt).numpy()
    np.savez(job["out"], **out)
for job in jobs["tf1"]:
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.load(sess, ["serve"], job["dir"])
        sig = meta.signature_def["serving_default"]
        fetch = {k: v.name for k, v in sig.outputs.items()}
        res = sess.run(fetch, {sig.inputs["x"].name: x})
    np.savez(job["out"], **res)
ops = set()
for job in jobs["tf2"] + jobs["tf1"]:
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(job["dir"], "saved_model.pb"), "rb") as f:
        sm = saved_model_pb2.SavedModel.FromString(f.read())
    for mg in sm.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        ops.update(n.op for f in mg.graph_def.library.function for n in f.node_def)
print(json.dumps(sorted(o for o in ops if "Quantize" in o)))
# Optional dependencies stay optional.
import tf_qdq  # noqa: F401
import tf_qdq.export  # noqa: F401
import tf_qdq.keras  # noqa: F401

print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tf2onnx", "onnx", "onnxruntime"))))
