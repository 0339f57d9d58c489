"""One-call ONNX export: `tf_qdq.export.to_onnx(model, "model.onnx")`.

A Keras 3 model, a tf_keras model, a SavedModel directory or a tf.function goes
through tf2onnx with the plugin ops lowered to TensorFlow's built-in QDQ ops
right after freezing (tf_qdq.export.onnx), and comes out as an ONNX model with
QuantizeLinear/DequantizeLinear pairs and no plugin op. Then, per `recipe`:

- "tensorrt" (and None): zero points as the ops give them, all 0 (int8 for
  signed ranges, uint8 for unsigned ones);
- "onnxruntime": every signed per-tensor activation pair is rewritten from
  int8 / zero point 0 to uint8 / zero point 128 (onnxruntime's x86 int8 kernels
  want uint8 activations with int8 weights); the dequantized values are the
  same. Weights stay int8, per channel.

`weights="int8"` folds every weight QuantizeLinear into an int8 initializer
feeding its DequantizeLinear (TensorRT's preferred form, about 4x smaller
files); the dequantized weights equal TensorFlow's fake-quantized weights bit
for bit. The result is checked with tf_qdq.export.check (`python -m tf_qdq
check-onnx`), and findings are warned about.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

import numpy as np

from tf_qdq.export.graph import PLUGIN_PREFIX, LoweringError, _attr_value, _tf

if TYPE_CHECKING:
    import onnx

#: Recipes to_onnx knows (the zero-point forms above).
RECIPES = ("tensorrt", "onnxruntime")
WEIGHT_FORMS = ("qdq", "int8")
#: Per-channel QuantizeLinear/DequantizeLinear (the `axis` attribute) needs ONNX opset 13.
MIN_OPSET = 13

# Ops that tf2onnx may leave between a QuantizeLinear and its DequantizeLinear.
_INTEGER_SHAPE_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")
_QDQ_TF_OPS = ("QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3", "QuantizeAndDequantizeV4")


class ExportError(ValueError):
    """The model cannot be exported to ONNX as asked; the message says why and what to do."""


class _Progress:
    def __init__(self, verbose: bool, steps: int) -> None:
        self.verbose, self.steps, self.step, self.t0 = verbose, steps, 0, time.perf_counter()

    def __call__(self, text: str) -> None:
        self.step += 1
        if self.verbose:
            elapsed = time.perf_counter() - self.t0
            print(f"to_onnx [{self.step}/{self.steps}] {text} ({elapsed:.1f} s)", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- tracing


def _is_keras_model(model: Any) -> bool:
    return any(
        c.__module__.split(".")[0] in ("keras", "tf_keras") and c.__name__ in ("Model", "Functional", "Sequential")
        for c in type(model).__mro__
    )


def _clean_name(name: str, i: int) -> str:
    name = (name or f"input_{i}").split(":")[0]
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name) or f"input_{i}"


def _keras_function(model, input_signature):
    tf = _tf()
    if input_signature is None:
        inputs = getattr(model, "inputs", None)
        if not inputs:
            raise ExportError(
                f"{type(model).__name__} has no known inputs (a subclassed model that was never built on "
                f"symbolic inputs): pass input_signature=[tf.TensorSpec(shape, dtype), ...]"
            )
        input_signature = [
            tf.TensorSpec(tuple(t.shape), tf.as_dtype(getattr(t.dtype, "name", t.dtype)), name=_clean_name(t.name, i))
            for i, t in enumerate(inputs)
        ]
    input_signature = list(input_signature)
    single = len(input_signature) == 1

    @tf.function
    def serve(*args):
        return model(args[0] if single else list(args), training=False)

    return serve, input_signature


def _function_and_signature(model, input_signature):
    tf = _tf()
    if _is_keras_model(model):
        return _keras_function(model, input_signature)
    if isinstance(model, tf.types.experimental.ConcreteFunction):
        raise ExportError("to_onnx takes the tf.function itself, not a concrete function of it")
    if isinstance(model, tf.types.experimental.GenericFunction):
        signature = input_signature or getattr(model, "input_signature", None)
        if not signature:
            raise ExportError(
                "this tf.function has no input_signature: pass input_signature=[tf.TensorSpec(shape, dtype), ...]"
            )
        return model, list(signature)
    if callable(model):
        raise ExportError(
            f"to_onnx takes a Keras model, a SavedModel directory or a tf.function, got {type(model).__name__}: "
            f"wrap it with tf.function(input_signature=[...])"
        )
    raise ExportError(f"to_onnx cannot export {type(model).__name__} objects")


def _captured_constants(concrete) -> Dict[str, np.ndarray]:
    """{placeholder name: value} of the constant tensors a traced function captures
    (e.g. the mean and variance of Keras 3's Normalization layer)."""
    tf = _tf()
    out = {}
    for external, internal in concrete.graph.captures:
        if external.dtype == tf.resource or not hasattr(external, "numpy"):
            continue
        try:
            out[internal.name] = external.numpy()
        except Exception:  # noqa: BLE001,S112  -- a symbolic capture has no value: it stays an input
            continue
    return out


def _inline_captured_inputs(model, captured: Dict[str, np.ndarray]) -> None:
    """tf2onnx's from_function lists a function's captured constants among its
    inputs: they become initializers here, so the model's inputs are the signature's."""
    from onnx import numpy_helper  # noqa: PLC0415

    graph = model.graph
    extra = [i for i in graph.input if i.name in captured]
    for i in extra:
        tensor = numpy_helper.from_array(np.asarray(captured[i.name]), i.name)
        graph.initializer.append(tensor)
        graph.input.remove(i)


# ----------------------------------------------------------------------------- ranges seen by tf2onnx


def _node_value(graph, name, depth=0):
    """The constant value of a tensor of a frozen GraphDef (through Identity/Cast), or None."""
    tf = _tf()
    node = graph.get(name.lstrip("^").split(":")[0])
    if node is None or depth > 8:
        return None
    if node.op == "Const":
        return tf.make_ndarray(node.attr["value"].tensor).astype(np.float32)
    if node.op in ("Identity", "Cast", "Snapshot") and node.input:
        return _node_value(graph, node.input[0], depth + 1)
    return None


def _given_ranges(graph_def) -> Dict[str, Dict[str, Any]]:
    """{QDQ node name: its range and attributes} for the built-in QDQ ops with a
    constant range of a (lowered, optimized) GraphDef."""
    graph = {n.name: n for n in graph_def.node}
    found = {}
    for node in graph_def.node:
        if node.op not in _QDQ_TF_OPS or len(node.input) < 3:
            continue
        attrs = {k: _attr_value(v) for k, v in node.attr.items()}
        if node.op != "QuantizeAndDequantizeV3" and not attrs.get("range_given", False):
            continue
        lo, hi = _node_value(graph, node.input[1]), _node_value(graph, node.input[2])
        if lo is None or hi is None:
            continue
        num_bits = attrs.get("num_bits", 8)
        if node.op == "QuantizeAndDequantizeV3":
            bits = _node_value(graph, node.input[3])
            num_bits = None if bits is None else int(bits)
        found[node.name] = dict(
            lo=lo,
            hi=hi,
            signed=bool(attrs.get("signed_input", True)),
            narrow=bool(attrs.get("narrow_range", False)),
            num_bits=num_bits,
            round_mode=(attrs.get("round_mode") or b"HALF_TO_EVEN").decode(),
        )
    return found


@contextlib.contextmanager
def _recording_ranges(record: Dict[str, Dict[str, Any]]):
    """Records the constant ranges of the QDQ ops of the graph that tf2onnx converts."""
    from tf2onnx import tf_loader  # noqa: PLC0415

    from tf_qdq.export.onnx import patch_tf2onnx  # noqa: PLC0415

    patch_tf2onnx()
    inner = tf_loader.tf_optimize

    def recording_tf_optimize(input_names, output_names, graph_def):
        optimized = inner(input_names, output_names, graph_def)
        record.update(_given_ranges(optimized))
        return optimized

    for attr in ("_tf_qdq_original",):
        if hasattr(inner, attr):
            setattr(recording_tf_optimize, attr, getattr(inner, attr))
    tf_loader.tf_optimize = recording_tf_optimize
    try:
        yield
    finally:
        tf_loader.tf_optimize = inner


@contextlib.contextmanager
def _quiet_tf2onnx(verbose):
    import logging  # noqa: PLC0415

    logger = logging.getLogger("tf2onnx")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ----------------------------------------------------------------------------- ONNX rewrites


def _consumers(graph):
    out = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _initializers(graph):
    return {t.name: t for t in graph.initializer}


def _unique(graph, base):
    used = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
    used |= {n.name for n in graph.node}
    name, i = base, 1
    while name in used:
        name, i = f"{base}_{i}", i + 1
    return name


def _axis(node):
    for a in node.attribute:
        if a.name == "axis":
            return a.i
    return 1


def rewrite_activations_uint8(model: onnx.ModelProto) -> int:
    """Rewrites every signed per-tensor activation QuantizeLinear (input not a
    constant) and the DequantizeLinear nodes fed by it from int8 / zero point 0
    to uint8 / zero point 128: the same dequantized values, the form
    onnxruntime's x86 int8 kernels fuse. Returns the number of pairs rewritten."""
    from onnx import TensorProto, numpy_helper  # noqa: PLC0415

    graph = model.graph
    inits = _initializers(graph)
    consumers = _consumers(graph)
    constant = set(inits) | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    count = 0
    for q in list(graph.node):
        if q.op_type != "QuantizeLinear" or len(q.input) < 3 or q.input[0] in constant:
            continue
        zp = inits.get(q.input[2])
        scale = inits.get(q.input[1])
        if zp is None or scale is None or zp.data_type != TensorProto.INT8:
            continue
        if numpy_helper.to_array(zp).size != 1 or np.any(numpy_helper.to_array(zp) != 0):
            continue
        dqs, pending, ok = [], list(consumers.get(q.output[0], [])), True
        while pending and ok:  # the DequantizeLinear nodes, through shape-only ops on the integers
            node = pending.pop()
            if node.op_type in _INTEGER_SHAPE_OPS:
                pending.extend(consumers.get(node.output[0], []))
            else:
                ok = node.op_type == "DequantizeLinear" and list(node.input[1:3]) == list(q.input[1:3])
                dqs.append(node)
        if not dqs or not ok:
            continue
        new = numpy_helper.from_array(np.array(128, np.uint8).reshape(numpy_helper.to_array(zp).shape))
        new.name = _unique(graph, q.input[2] + "_uint8")
        graph.initializer.append(new)
        for node in (q, *dqs):
            node.input[2] = new.name
        count += 1
    _drop_unused_initializers(graph)
    return count


def _drop_unused_initializers(graph):
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def _moved_axis(op, data, axis, shape_input):
    """The new data and channel axis after Transpose/Reshape `op`, or None."""
    if op.op_type == "Transpose":
        perm = next((list(a.ints) for a in op.attribute if a.name == "perm"), None) or list(range(data.ndim))[::-1]
        return np.transpose(data, perm), perm.index(axis)
    target = [int(d) for d in shape_input]
    target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    out = data.reshape(target)
    old = [i for i, d in enumerate(data.shape) if d != 1]
    new = [i for i, d in enumerate(out.shape) if d != 1]
    if axis not in old or [data.shape[i] for i in old] != [out.shape[i] for i in new]:
        return None
    return out, new[old.index(axis)]


def push_weight_shape_ops(model: onnx.ModelProto, renamed: Optional[Dict[str, str]] = None) -> int:
    """Moves the Transpose/Reshape nodes that tf2onnx puts between a weight's
    DequantizeLinear and its Conv (depthwise kernels: HWC1 -> C1HW) onto the
    weight initializer, with the per-channel axis moved along, so that the
    DequantizeLinear feeds the Conv directly (the pattern TensorRT and
    onnxruntime fuse). Returns the number of nodes moved."""
    from onnx import numpy_helper  # noqa: PLC0415

    graph = model.graph
    moved = 0
    while True:
        inits = _initializers(graph)
        consumers = _consumers(graph)
        producer = {o: n for n in graph.node for o in n.output}
        done = True
        for dq in graph.node:
            if dq.op_type != "DequantizeLinear" or len(consumers.get(dq.output[0], [])) != 1:
                continue
            op = consumers[dq.output[0]][0]
            if op.op_type not in ("Transpose", "Reshape") or op.input[0] != dq.output[0]:
                continue
            if op.op_type == "Reshape" and (len(op.input) < 2 or op.input[1] not in inits):
                continue
            q = producer.get(dq.input[0])
            if q is not None and (q.op_type != "QuantizeLinear" or len(consumers.get(q.output[0], [])) != 1):
                continue
            data_name = q.input[0] if q is not None else dq.input[0]
            if data_name not in inits:
                continue
            data = numpy_helper.to_array(inits[data_name])
            scale = inits.get(dq.input[1])
            per_channel = scale is not None and numpy_helper.to_array(scale).size > 1
            axis = _axis(dq)
            axis = axis + data.ndim if axis < 0 else axis
            shape_input = numpy_helper.to_array(inits[op.input[1]]) if op.op_type == "Reshape" else None
            if not per_channel:
                axis = int(np.argmax(data.shape)) if data.ndim else 0
                if data.ndim == 0 or data.shape[axis] == 1:
                    continue
            result = _moved_axis(op, data, axis, shape_input)
            if result is None:
                continue
            new_data, new_axis = result
            tensor = numpy_helper.from_array(np.ascontiguousarray(new_data))
            tensor.name = _unique(graph, data_name + "_" + op.op_type.lower())
            graph.initializer.append(tensor)
            for node in (q, dq):
                if node is None:
                    continue
                if node is q:
                    node.input[0] = tensor.name
                elif q is None:
                    node.input[0] = tensor.name
                for a in node.attribute:
                    if a.name == "axis":
                        a.i = new_axis
            if renamed is not None:
                renamed[op.output[0].rsplit(":", 1)[0]] = renamed.get(
                    dq.output[0].rsplit(":", 1)[0], dq.output[0].rsplit(":", 1)[0]
                )
            dq.output[0] = op.output[0]
            graph.node.remove(op)
            moved += 1
            done = False
            break
        if done:
            break
    _drop_unused_initializers(graph)
    return moved


def _channel_vector(value, channels):
    """A constant that broadcasts per output channel against an NCHW Conv output:
    its values as a (channels,) vector, or None."""
    v = np.asarray(value)
    if v.dtype != np.float32:
        return None
    if v.size == 1:
        return np.full(channels, v.reshape(()), np.float32)
    if v.size != channels or v.ndim < 3 or v.ndim > 4:
        return None
    if v.shape[-3] != channels or any(d != 1 for d in v.shape[-2:]):
        return None
    return v.reshape(channels)


def fold_batch_norm_affine(model: onnx.ModelProto, tf_ranges: Optional[Dict[str, Dict[str, Any]]] = None) -> int:
    """Folds the per-channel Mul (and Add) that tf2onnx writes for a BatchNorm
    after a Conv whose weight is quantized (it cannot fold them into a quantized
    weight) into the weight's DequantizeLinear scale and the Conv's bias, so that
    a QuantizeLinear follows the Conv and onnxruntime fuses it. The integers of
    the weight do not change (a weight still behind a QuantizeLinear is folded to
    int8 first); a negative multiplier negates that channel's integers. Returns the
    number of Mul and Add nodes folded."""
    from onnx import numpy_helper  # noqa: PLC0415

    graph = model.graph
    folded = 0
    changed = True
    while changed:
        changed = False
        inits = _initializers(graph)
        consumers = _consumers(graph)
        producer = {o: n for n in graph.node for o in n.output}
        for conv in graph.node:
            if conv.op_type != "Conv" or len(conv.input) < 2:
                continue
            users = consumers.get(conv.output[0], [])
            if len(users) != 1 or users[0].op_type not in ("Mul", "Add"):
                continue
            op = users[0]
            other = op.input[1] if op.input[0] == conv.output[0] else op.input[0]
            dq = producer.get(conv.input[1])
            if other not in inits or dq is None or dq.op_type != "DequantizeLinear" or _axis(dq) != 0:
                continue
            if dq.input[1] not in inits or len(dq.input) < 3 or dq.input[2] not in inits:
                continue
            if len(consumers.get(dq.output[0], [])) != 1:
                continue
            channels = None
            scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
            zp = numpy_helper.to_array(inits[dq.input[2]])
            bias = numpy_helper.to_array(inits[conv.input[2]]) if len(conv.input) > 2 and conv.input[2] else None
            if len(conv.input) > 2 and conv.input[2] and conv.input[2] not in inits:
                continue
            q = producer.get(dq.input[0])
            if q is not None:  # weight still behind a QuantizeLinear: int8 first
                if q.op_type != "QuantizeLinear" or fold_weights_int8_node(model, q, tf_ranges) is None:
                    continue
                changed = True
                break
            if dq.input[0] not in inits:
                continue
            w = numpy_helper.to_array(inits[dq.input[0]])
            channels = w.shape[0]
            vec = _channel_vector(numpy_helper.to_array(inits[other]), channels)
            if vec is None or np.any(zp != 0) or (scale.size != 1 and scale.size != channels):
                continue
            if op.op_type == "Mul":
                negative = vec < 0
                if np.any(negative & np.any((w == np.iinfo(w.dtype).min).reshape(channels, -1), axis=1)):
                    continue  # the channel's integers cannot be negated
                if np.any(vec == 0) or not np.all(np.isfinite(vec)):
                    continue
                w_new = np.where(negative.reshape((-1,) + (1,) * (w.ndim - 1)), -w, w).astype(w.dtype)
                scale_new = (np.broadcast_to(scale, (channels,)) * np.abs(vec)).astype(np.float32)
                bias_new = None if bias is None else (bias * vec).astype(np.float32)
                names = {}
                for key, value in (("w", w_new), ("s", scale_new), ("z", np.zeros(channels, zp.dtype))):
                    t = numpy_helper.from_array(np.ascontiguousarray(value))
                    t.name = names[key] = _unique(graph, f"{conv.name}_folded_{key}")
                    graph.initializer.append(t)
                dq.input[0], dq.input[1], dq.input[2] = names["w"], names["s"], names["z"]
                if not any(a.name == "axis" for a in dq.attribute):
                    dq.attribute.append(helper_attr("axis", 0))
            else:
                bias_new = (vec if bias is None else bias + vec).astype(np.float32)
            if bias_new is not None:
                t = numpy_helper.from_array(bias_new)
                t.name = _unique(graph, f"{conv.name}_folded_bias")
                graph.initializer.append(t)
                if len(conv.input) > 2:
                    conv.input[2] = t.name
                else:
                    conv.input.append(t.name)
            conv.output[0] = op.output[0]
            graph.node.remove(op)
            folded += 1
            changed = True
            break
    _drop_unused_initializers(graph)
    return folded


def helper_attr(name, value):
    from onnx import helper  # noqa: PLC0415

    return helper.make_attribute(name, value)


def _int8_values(w, scale, zp, axis, tf_range):
    """The integers whose dequantization is the fake-quantized `w`: TensorFlow's
    arithmetic when the QDQ's range is known (so that the values equal TF's bit
    for bit), ONNX's QuantizeLinear otherwise."""
    from tf_qdq.reference import numpy_qdq  # noqa: PLC0415

    qinfo = np.iinfo(zp.dtype)
    shape = [1] * w.ndim
    if scale.ndim == 1:
        shape[axis] = scale.size
    s = scale.reshape(shape)
    z = zp.astype(np.float32).reshape(shape)
    if tf_range is not None and tf_range["num_bits"] == 8 and tf_range["round_mode"] == "HALF_TO_EVEN":
        lo = np.broadcast_to(tf_range["lo"], scale.shape if scale.ndim else (1,)).astype(np.float32)
        hi = np.broadcast_to(tf_range["hi"], scale.shape if scale.ndim else (1,)).astype(np.float32)
        fq = numpy_qdq(
            w,
            lo if scale.ndim else lo[0],
            hi if scale.ndim else hi[0],
            signed_input=tf_range["signed"],
            num_bits=8,
            range_given=True,
            narrow_range=tf_range["narrow"],
            axis=axis if scale.ndim else -1,
        )
        q = np.rint(fq / s) + z
        if np.all(q >= qinfo.min) and np.all(q <= qinfo.max):
            q = q.astype(zp.dtype)
            # Equal values (an integer cannot hold the sign of TensorFlow's -0.0).
            if np.array_equal((q.astype(np.float32) - z) * s, fq):
                return q
    with np.errstate(all="ignore"):
        q = np.rint(w / s) + z
    return np.clip(q, qinfo.min, qinfo.max).astype(zp.dtype)


def fold_weights_int8_node(model: onnx.ModelProto, q, tf_ranges: Optional[Dict[str, Dict[str, Any]]] = None):
    """Replaces QuantizeLinear `q` of an initializer (a weight) by the int8
    initializer it computes, feeding its DequantizeLinear nodes directly.
    Returns the new initializer's name, or None when `q` is no such node."""
    from onnx import numpy_helper  # noqa: PLC0415

    graph = model.graph
    inits = _initializers(graph)
    if q.op_type != "QuantizeLinear" or len(q.input) < 3 or any(i not in inits for i in q.input[:3]):
        return None
    dqs = _consumers(graph).get(q.output[0], [])
    if not dqs or any(d.op_type != "DequantizeLinear" for d in dqs):
        return None
    w = numpy_helper.to_array(inits[q.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(inits[q.input[1]]).astype(np.float32)
    zp = numpy_helper.to_array(inits[q.input[2]])
    axis = _axis(q)
    axis = axis + w.ndim if axis < 0 else axis
    tf_range = None
    for d in dqs:
        tf_range = tf_range or (tf_ranges or {}).get(d.output[0].rsplit(":", 1)[0])
    tensor = numpy_helper.from_array(_int8_values(w, scale, zp, axis, tf_range))
    tensor.name = _unique(graph, inits[q.input[0]].name + "_quantized")
    graph.initializer.append(tensor)
    for d in dqs:
        d.input[0] = tensor.name
    graph.node.remove(q)
    _drop_unused_initializers(graph)
    return tensor.name


def fold_weights_int8(model: onnx.ModelProto, tf_ranges: Optional[Dict[str, Dict[str, Any]]] = None) -> int:
    """Replaces every QuantizeLinear of an initializer (a weight) by the int8
    initializer it computes, feeding the DequantizeLinear nodes directly.
    `tf_ranges` ({TensorFlow QDQ node name: range}) makes the values TensorFlow's.
    Returns the number of weights folded."""
    inits = _initializers(model.graph)
    nodes = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input and n.input[0] in inits]
    return sum(fold_weights_int8_node(model, q, tf_ranges) is not None for q in nodes)


# ----------------------------------------------------------------------------- checks


def _check_nodes(model: onnx.ModelProto) -> None:
    import onnx  # noqa: PLC0415

    for node in model.graph.node:
        if PLUGIN_PREFIX in node.op_type or node.op_type in _QDQ_TF_OPS:
            raise LoweringError(
                f"node {node.name!r} ({node.op_type}) was not lowered to QuantizeLinear/DequantizeLinear: "
                f"convert with tf_qdq.export.to_onnx or lower the SavedModel first (python -m tf_qdq lower)"
            )
        if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type):
            raise ExportError(
                f"tf2onnx could not convert node {node.name!r} ({node.op_type}): it has no ONNX equivalent; "
                f"replace that op in the model, or register a tf2onnx custom op handler"
            )


def _check_path(path) -> str:
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise ExportError(f"cannot write the ONNX model to {path}: it is a directory; give a file name (model.onnx)")
    if not os.path.isdir(parent):
        raise ExportError(f"cannot write the ONNX model to {path}: directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ExportError(f"cannot write the ONNX model to {path}: permission denied; choose a writable path")
    return path


# ----------------------------------------------------------------------------- to_onnx


def to_onnx(
    model: Any,
    path: Union[str, "os.PathLike[str]"],
    *,
    opset: int = 17,
    input_signature: Optional[Sequence[Any]] = None,
    recipe: Optional[str] = None,
    weights: str = "qdq",
    check: bool = True,
    verbose: bool = True,
) -> onnx.ModelProto:
    """Exports a quantized model to an ONNX file and returns the ModelProto.

    model: a Keras 3 or tf_keras model, a SavedModel directory (its
      "serving_default" signature) or a tf.function (with an input_signature,
      its own or the argument). input_signature: [tf.TensorSpec, ...] for models
      without known inputs. opset: ONNX opset, at least 13 (per-channel
      QuantizeLinear/DequantizeLinear). recipe: "tensorrt", "onnxruntime" or None
      (the model's `tf_qdq_recipe` attribute, else "tensorrt"): the zero-point form
      (module doc). weights: "qdq" (float weights, QuantizeLinear, DequantizeLinear)
      or "int8" (int8 initializers, DequantizeLinear). check: lint the result
      (tf_qdq.export.check) and warn about each finding. verbose: progress lines
      on stderr.

    Raises ExportError (bad arguments, an unwritable path, an op tf2onnx cannot
    convert) or LoweringError (a plugin op with no built-in equivalent; the node
    is named). A model without QDQ ops exports with a warning.
    """
    import onnx  # noqa: PLC0415

    try:
        import tf2onnx  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("to_onnx needs tf2onnx: pip install 'tf_qdq[export]' (tf2onnx, onnx, onnxruntime)") from e
    import tf_qdq  # noqa: F401,PLC0415  (registers the plugin ops and the tf2onnx hook)

    if int(opset) < MIN_OPSET:
        raise ExportError(
            f"opset {opset} is too old: per-channel QuantizeLinear/DequantizeLinear (the axis attribute) "
            f"needs opset {MIN_OPSET} or later; pass opset={MIN_OPSET} or more (17 is the default)"
        )
    recipe = recipe if recipe is not None else getattr(model, "tf_qdq_recipe", None)
    if recipe is not None and recipe not in RECIPES:
        raise ExportError(f"recipe must be one of {RECIPES} or None, got {recipe!r}")
    if weights not in WEIGHT_FORMS:
        raise ExportError(f"weights must be one of {WEIGHT_FORMS}, got {weights!r}")
    path = _check_path(path)
    progress = _Progress(verbose, 4 if check else 3)

    ranges: Dict[str, Dict[str, Any]] = {}
    with _recording_ranges(ranges), _quiet_tf2onnx(verbose):
        if isinstance(model, (str, os.PathLike)):
            from tf_qdq.export.onnx import saved_model_to_onnx  # noqa: PLC0415

            if not os.path.isdir(os.fspath(model)):
                raise ExportError(f"{os.fspath(model)} is not a SavedModel directory")
            progress(f"converting SavedModel {os.fspath(model)} (plugin ops lowered, then tf2onnx)")
            proto = saved_model_to_onnx(model, None, opset=int(opset))
        else:
            fn, signature = _function_and_signature(model, input_signature)
            progress(f"tracing and converting {type(model).__name__} (plugin ops lowered, then tf2onnx)")
            captured = _captured_constants(fn.get_concrete_function(*signature))
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=signature, opset=int(opset))
            _inline_captured_inputs(proto, captured)
    _check_nodes(proto)

    n_q = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    n_dq = sum(n.op_type == "DequantizeLinear" for n in proto.graph.node)
    if n_q == 0 and n_dq == 0:
        warnings.warn(
            "to_onnx: the model holds no quantize/dequantize op, so the ONNX model is float only: "
            "quantize it first (tf_qdq.keras.QuantizeDequantize layers or tf_qdq.keras.quantize_model)",
            stacklevel=2,
        )
    progress(f"recipe {recipe or 'tensorrt'}, weights {weights}: {n_q} QuantizeLinear, {n_dq} DequantizeLinear")
    if recipe == "onnxruntime":
        rewrite_activations_uint8(proto)
    if weights == "int8":
        fold_weights_int8(proto, ranges)
    renamed: Dict[str, str] = {}
    push_weight_shape_ops(proto, renamed)
    ranges.update({new: ranges[old] for new, old in renamed.items() if old in ranges})
    if recipe == "onnxruntime":
        fold_batch_norm_affine(proto, ranges)

    progress(f"writing {path}")
    try:
        onnx.save(proto, path)
    except OSError as e:
        raise ExportError(f"cannot write the ONNX model to {path}: {e.strerror or e}; choose a writable path") from e

    if check:
        from tf_qdq.export.check import check_onnx  # noqa: PLC0415

        progress(f"checking for recipe {recipe or 'tensorrt'}")
        for finding in check_onnx(proto, recipe or "tensorrt", runtime=False):
            warnings.warn(f"to_onnx: {path}: {finding}", stacklevel=2)
    return proto
