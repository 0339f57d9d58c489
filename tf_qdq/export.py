"""Lowering and raising of SavedModels: plugin ops <-> TensorFlow's built-in ops.

Converters (tf2onnx, TF-TRT) and Grappler know only the built-in op names, so a
model trained with the plugin must be able to leave it behind:

    tf_qdq.export.lower_saved_model("trained", "lowered")   # TfQdq> ops -> built-in ops
    python -m tf_qdq lower trained lowered

rewrites every plugin op of a SavedModel (its GraphDefs, every function of their
libraries, so signatures, tf.functions and gradient functions alike) into the
built-in op that computes the same bits in the installed TensorFlow:

| plugin op                                   | becomes                                          |
|---------------------------------------------|--------------------------------------------------|
| V2, V4                                      | QuantizeAndDequantizeV2, V4                      |
| V2, V4 per channel with a given range       | QuantizeAndDequantizeV3 + a Const for num_bits   |
|   ... with round_mode HALF_UP               | refused (V3 rounds half to even): LoweringError  |
| V3, V4Grad                                  | QuantizeAndDequantizeV3, V4Grad                  |
| V1 (QuantizeAndDequantize)                  | QuantizeAndDequantizeV2 + Consts for min and max |
| any of them on half or bfloat16             | Cast to float32, the op above, Cast back         |

The lowered model loads without tf_qdq and gives bit-identical outputs, except
where the plugin deliberately differs (docs/semantics.md#differences-from-tensorflow: NaN in data with a
computed range). Gradients of the lowered model are TensorFlow's: V4 with a
computed range masks against the unused input_min/input_max (pass
`straight_through=True` to lower those V4 ops to V2, whose straight-through
gradient equals the plugin's for every non-NaN input), and V4 per channel with a
given range becomes V3, whose gradient is straight-through.

`raise_saved_model` is the inverse: built-in QDQ ops -> plugin ops, so existing
models get the plugin's kernels (and then need `import tf_qdq` to load).

Variables and assets are copied unchanged; only saved_model.pb (and its
fingerprint.pb) is rewritten.
"""
import argparse
import collections
import os
import shutil
import sys

import numpy as np

PLUGIN_PREFIX = "TfQdq>"
BUILTIN_OPS = (
    "QuantizeAndDequantize",
    "QuantizeAndDequantizeV2",
    "QuantizeAndDequantizeV3",
    "QuantizeAndDequantizeV4",
    "QuantizeAndDequantizeV4Grad",
)
PLUGIN_OPS = tuple(PLUGIN_PREFIX + name for name in BUILTIN_OPS)

# Attribute defaults of the plugin's ops (docs/semantics.md#ops). SavedModels strip
# attributes that hold their default value, so lowering fills them in.
_DEFAULTS = {
    "QuantizeAndDequantize": dict(signed_input=True, num_bits=8, range_given=False,
                                  input_min=0.0, input_max=0.0),
    "QuantizeAndDequantizeV2": dict(signed_input=True, num_bits=8, range_given=False,
                                    round_mode=b"HALF_TO_EVEN", narrow_range=False, axis=-1),
    "QuantizeAndDequantizeV3": dict(signed_input=True, range_given=True, narrow_range=False, axis=-1),
    "QuantizeAndDequantizeV4Grad": dict(axis=-1),
}
_DEFAULTS["QuantizeAndDequantizeV4"] = _DEFAULTS["QuantizeAndDequantizeV2"]

# Output argument names, as in the ops' definitions (identical for plugin and built-in).
_OUTPUT_ARGS = {
    "QuantizeAndDequantizeV4Grad": ("input_backprop", "input_min_backprop", "input_max_backprop"),
}
_SINGLE_OUTPUT = ("output",)


class LoweringError(ValueError):
    """A plugin op has no built-in equivalent in the installed TensorFlow."""


# ----------------------------------------------------------------------------- protobuf helpers


def _tf():
    import tensorflow as tf  # noqa: PLC0415  (keeps `python -m tf_qdq lower -h` fast)

    return tf


def _attr_value(attr):
    which = attr.WhichOneof("value")
    return getattr(attr, which) if which else None


def _effective_attrs(node, kind):
    attrs = dict(_DEFAULTS[kind])
    for key in attrs:
        if key in node.attr:
            attrs[key] = _attr_value(node.attr[key])
    if "T" not in node.attr:
        raise LoweringError(f"node {node.name!r} ({node.op}) has no attribute T")
    attrs["T"] = node.attr["T"].type
    return attrs


def _set_attrs(node, **values):
    from tensorflow.core.framework import attr_value_pb2  # noqa: PLC0415

    for key, value in values.items():
        if isinstance(value, bool):
            node.attr[key].CopyFrom(attr_value_pb2.AttrValue(b=value))
        elif isinstance(value, int):
            node.attr[key].CopyFrom(attr_value_pb2.AttrValue(i=value))
        elif isinstance(value, float):
            node.attr[key].CopyFrom(attr_value_pb2.AttrValue(f=value))
        elif isinstance(value, bytes):
            node.attr[key].CopyFrom(attr_value_pb2.AttrValue(s=value))
        else:
            raise TypeError(f"unsupported attribute value {value!r}")


def _set_type(node, key, dtype_enum):
    from tensorflow.core.framework import attr_value_pb2  # noqa: PLC0415

    node.attr[key].CopyFrom(attr_value_pb2.AttrValue(type=dtype_enum))


def _private_attrs(node, keep_shapes):
    """Attributes starting with '_' (colocation, shapes, ...), kept on rewritten nodes."""
    return {k: v for k, v in node.attr.items()
            if k.startswith("_") and (keep_shapes or k != "_output_shapes")}


class _Body:
    """The nodes of a GraphDef or of a FunctionDef, with that body's way of naming
    tensors: `node:index` in a GraphDef, `node:output_arg:index` in a function."""

    def __init__(self, nodes, in_function, where):
        self.in_function = in_function
        self.where = where
        self.names = {n.name for n in nodes}

    def unique(self, base):
        name, i = base, 1
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    def ref(self, node_name, arg, index_in_arg, flat_index):
        if self.in_function:
            return f"{node_name}:{arg}:{index_in_arg}"
        return node_name if flat_index == 0 else f"{node_name}:{flat_index}"

    def describe(self, node):
        return f"node {node.name!r} ({node.op}) in {self.where}"


def _new_node(name, op, inputs, device):
    from tensorflow.core.framework import node_def_pb2  # noqa: PLC0415

    node = node_def_pb2.NodeDef(name=name, op=op, device=device)
    node.input.extend(inputs)
    return node


def _const(body, name, value, anchor_input, device):
    """A Const node. In a GraphDef it gets a control input from the producer of
    the op's data input, so that it lives in the same (TF1 while-loop) frame."""
    tf = _tf()
    inputs = []
    if not body.in_function and anchor_input and not anchor_input.startswith("^"):
        inputs.append("^" + anchor_input.split(":")[0])
    node = _new_node(name, "Const", inputs, device)
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    _set_type(node, "dtype", tf.as_dtype(value.dtype).as_datatype_enum)
    return node


def _np_dtype(dtype_enum):
    return _tf().as_dtype(dtype_enum).as_numpy_dtype


def _lower_node(node, body, straight_through, stats):
    """Returns the nodes that replace plugin op `node`, and a remap of its output
    references (only needed in functions when output argument names change)."""
    tf = _tf()
    kind = node.op[len(PLUGIN_PREFIX):]
    if kind not in _DEFAULTS:
        raise LoweringError(f"{body.describe(node)}: unknown plugin op")
    attrs = _effective_attrs(node, kind)
    dtype = attrs["T"]
    narrow = dtype in (tf.float16.as_datatype_enum, tf.bfloat16.as_datatype_enum)
    compute = tf.float32.as_datatype_enum if narrow else dtype
    data = [i for i in node.input if not i.startswith("^")]
    controls = [i for i in node.input if i.startswith("^")]
    base = node.name
    out = []

    # 1. The built-in op and its attributes.
    if kind in ("QuantizeAndDequantizeV2", "QuantizeAndDequantizeV4"):
        per_channel_given = attrs["axis"] != -1 and attrs["range_given"]
        if per_channel_given:
            if attrs["round_mode"] != b"HALF_TO_EVEN":
                raise LoweringError(
                    f"cannot lower {body.describe(node)}: per-channel quantization (axis="
                    f"{attrs['axis']}) with a given range runs in TensorFlow "
                    f"{tf.__version__} only as QuantizeAndDequantizeV3, which always rounds half "
                    "to even, but this op uses round_mode='HALF_UP'. Use round_mode="
                    "'HALF_TO_EVEN' for per-channel given ranges in models you want to export, "
                    "or keep the plugin (import tf_qdq) where the model runs.")
            target = "QuantizeAndDequantizeV3"
        elif (kind == "QuantizeAndDequantizeV4" and straight_through
              and not attrs["range_given"]):
            target = "QuantizeAndDequantizeV2"
        else:
            target = kind
        op_attrs = dict(signed_input=attrs["signed_input"], range_given=attrs["range_given"],
                        narrow_range=attrs["narrow_range"], axis=attrs["axis"])
        if target != "QuantizeAndDequantizeV3":
            op_attrs.update(num_bits=attrs["num_bits"], round_mode=attrs["round_mode"])
        t_inputs, extra = data[:3], []
        if target == "QuantizeAndDequantizeV3":
            nb = body.unique(base + "/num_bits")
            out.append(_const(body, nb, np.array(attrs["num_bits"], np.int32), data[0], node.device))
            extra = [body.ref(nb, "output", 0, 0)]
    elif kind == "QuantizeAndDequantizeV3":
        target = kind
        op_attrs = dict(signed_input=attrs["signed_input"], range_given=attrs["range_given"],
                        narrow_range=attrs["narrow_range"], axis=attrs["axis"])
        t_inputs, extra = data[:3], data[3:4]
    elif kind == "QuantizeAndDequantize":
        target = "QuantizeAndDequantizeV2"
        op_attrs = dict(signed_input=attrs["signed_input"], num_bits=attrs["num_bits"],
                        range_given=attrs["range_given"], round_mode=b"HALF_TO_EVEN",
                        narrow_range=False, axis=-1)
        # The attribute range cast to T (docs/semantics.md#differences-from-tensorflow, item 7), then to the compute type.
        t_inputs, extra = data[:1], []
        for arg in ("input_min", "input_max"):
            value = np.float32(attrs[arg]).astype(_np_dtype(dtype)).astype(_np_dtype(compute))
            name = body.unique(f"{base}/{arg}")
            out.append(_const(body, name, np.array(value), data[0], node.device))
            extra.append(body.ref(name, "output", 0, 0))
    else:  # V4Grad
        target = kind
        op_attrs = dict(axis=attrs["axis"])
        t_inputs, extra = data[:4], []

    outputs = _OUTPUT_ARGS.get(target, _SINGLE_OUTPUT)
    remap = {}
    if not narrow:
        # Same name, so every reference to it stays valid.
        op_node = _new_node(base, target, t_inputs + extra + controls, node.device)
        for k, v in _private_attrs(node, keep_shapes=True).items():
            op_node.attr[k].CopyFrom(v)
        _set_attrs(op_node, **op_attrs)
        _set_type(op_node, "T", dtype)
        out.append(op_node)
    else:
        # Cast inputs to float32, run the op, cast its outputs back to T.
        cast_inputs = []
        for i, ref in enumerate(t_inputs):
            name = body.unique(f"{base}/cast_in{i}")
            c = _new_node(name, "Cast", [ref], node.device)
            _set_type(c, "SrcT", dtype)
            _set_type(c, "DstT", compute)
            _set_attrs(c, Truncate=False)
            out.append(c)
            cast_inputs.append(body.ref(name, "y", 0, 0))
        op_name = body.unique(base + "/float32")
        op_node = _new_node(op_name, target, cast_inputs + extra + controls, node.device)
        for k, v in _private_attrs(node, keep_shapes=False).items():
            op_node.attr[k].CopyFrom(v)
        _set_attrs(op_node, **op_attrs)
        _set_type(op_node, "T", compute)
        out.append(op_node)
        cast_outputs = []
        for i, arg in enumerate(outputs):
            name = body.unique(f"{base}/cast_out{i}")
            c = _new_node(name, "Cast", [body.ref(op_name, arg, 0, i)], node.device)
            _set_type(c, "SrcT", compute)
            _set_type(c, "DstT", dtype)
            _set_attrs(c, Truncate=False)
            out.append(c)
            cast_outputs.append(body.ref(name, "y", 0, 0))
        # The original name now belongs to an Identity (one output) or an
        # IdentityN (V4Grad), whose outputs keep their GraphDef indices.
        if len(outputs) == 1:
            ident = _new_node(base, "Identity", cast_outputs, node.device)
            _set_type(ident, "T", dtype)
        else:
            ident = _new_node(base, "IdentityN", cast_outputs, node.device)
            ident.attr["T"].list.type.extend([dtype] * len(outputs))
            for i, arg in enumerate(outputs):
                remap[(base, arg, 0)] = body.ref(base, "output", i, i)
        if "_output_shapes" in node.attr:
            ident.attr["_output_shapes"].CopyFrom(node.attr["_output_shapes"])
        out.append(ident)
    stats[f"{node.op} -> {target}" + (" (via float32)" if narrow else "")] += 1
    return out, remap


def _apply_remap(body_inputs_owner, remap, ret=None):
    if not remap:
        return
    for n in body_inputs_owner:
        for i, ref in enumerate(n.input):
            parts = ref.split(":")
            if len(parts) == 3:
                new = remap.get((parts[0], parts[1], int(parts[2])))
                if new is not None:
                    n.input[i] = new
    if ret is not None:
        for key in list(ret):
            parts = ret[key].split(":")
            if len(parts) == 3:
                new = remap.get((parts[0], parts[1], int(parts[2])))
                if new is not None:
                    ret[key] = new


def _rewrite_body(container, field, in_function, where, rewrite, ret=None):
    nodes = getattr(container, field)
    targets = [i for i, n in enumerate(nodes) if rewrite.matches(n.op)]
    if not targets:
        return
    body = _Body(nodes, in_function, where)
    remap, added = {}, []
    for i in targets:
        node = nodes[i]
        replaced, r = rewrite(node, body)
        remap.update(r)
        # The node keeping the original name takes the original slot (no copy of
        # the unchanged nodes, which may hold large constants).
        keep = next(n for n in replaced if n.name == node.name)
        if keep is not node:
            node.CopyFrom(keep)
        added.extend(n for n in replaced if n is not keep)
    for n in added:
        nodes.add().CopyFrom(n)
    _apply_remap(nodes, remap, ret)


class _Lower:
    def __init__(self, straight_through):
        self.straight_through = straight_through
        self.stats = collections.Counter()

    @staticmethod
    def matches(op):
        return op in PLUGIN_OPS

    def __call__(self, node, body):
        return _lower_node(node, body, self.straight_through, self.stats)


class _Raise:
    def __init__(self):
        self.stats = collections.Counter()

    @staticmethod
    def matches(op):
        return op in BUILTIN_OPS

    def __call__(self, node, body):
        # Same attributes, same defaults, same argument names: only the op changes.
        new = PLUGIN_PREFIX + node.op
        self.stats[f"{node.op} -> {new}"] += 1
        node.op = new
        return [node], {}


def _rewrite_graph_def(graph_def, rewrite):
    _rewrite_body(graph_def, "node", False, "the graph", rewrite)
    for f in graph_def.library.function:
        _rewrite_body(f, "node_def", True, f"function {f.signature.name!r}", rewrite, f.ret)


def _used_ops(graph_def):
    ops = {n.op for n in graph_def.node}
    for f in graph_def.library.function:
        ops.update(n.op for n in f.node_def)
    return ops


def _fix_stripped_op_list(meta_graph):
    """Keeps meta_info_def.stripped_op_list (the OpDefs the graph uses) in step."""
    from tensorflow.python.framework import op_def_registry  # noqa: PLC0415

    op_list = meta_graph.meta_info_def.stripped_op_list
    if not op_list.op:
        return
    used = _used_ops(meta_graph.graph_def)
    family = set(BUILTIN_OPS) | set(PLUGIN_OPS) | {"Cast", "Const", "Identity", "IdentityN"}
    ops = {o.name: o for o in op_list.op if o.name not in family or o.name in used}
    for name in sorted(used & family - set(ops)):
        op_def = op_def_registry.get(name)
        if op_def is None:
            raise LoweringError(f"op {name!r} is not registered in this process")
        op_def = type(op_def).FromString(op_def.SerializeToString())
        op_def.ClearField("summary")
        op_def.ClearField("description")
        ops[name] = op_def
    del op_list.op[:]
    op_list.op.extend(ops[k] for k in sorted(ops))


def lower_graph_def(graph_def, straight_through=False):
    """Returns a copy of `graph_def` (and its function library) with every plugin
    op lowered to built-in ops. Raises LoweringError for ops that cannot be."""
    new = type(graph_def).FromString(graph_def.SerializeToString())
    _rewrite_graph_def(new, _Lower(straight_through))
    return new


def raise_graph_def(graph_def):
    """Returns a copy of `graph_def` with every built-in QDQ op replaced by the plugin's."""
    new = type(graph_def).FromString(graph_def.SerializeToString())
    _rewrite_graph_def(new, _Raise())
    return new


# ----------------------------------------------------------------------------- SavedModel


def _read_saved_model(src):
    from google.protobuf import text_format  # noqa: PLC0415
    from tensorflow.core.protobuf import saved_model_pb2  # noqa: PLC0415

    sm = saved_model_pb2.SavedModel()
    pb, pbtxt = os.path.join(src, "saved_model.pb"), os.path.join(src, "saved_model.pbtxt")
    if os.path.exists(pb):
        with open(pb, "rb") as f:
            sm.ParseFromString(f.read())
        return sm, "saved_model.pb"
    if os.path.exists(pbtxt):
        with open(pbtxt, encoding="utf-8") as f:
            text_format.Parse(f.read(), sm)
        return sm, "saved_model.pbtxt"
    if os.path.exists(os.path.join(src, "saved_model.cpb")):
        raise LoweringError(f"{src}: chunked SavedModels (saved_model.cpb, > 2 GB) are not supported")
    raise FileNotFoundError(f"{src} is not a SavedModel directory (no saved_model.pb)")


def _write_saved_model(sm, dst, filename):
    from google.protobuf import text_format  # noqa: PLC0415

    path = os.path.join(dst, filename)
    if filename.endswith(".pbtxt"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text_format.MessageToString(sm))
    else:
        with open(path, "wb") as f:
            f.write(sm.SerializeToString())
    # fingerprint.pb hashes saved_model.pb: regenerate it, or drop it.
    fingerprint = os.path.join(dst, "fingerprint.pb")
    if os.path.exists(fingerprint):
        try:
            from tensorflow.python.saved_model.pywrap_saved_model import (  # noqa: PLC0415
                fingerprinting,
            )

            data = fingerprinting.CreateFingerprintDef(dst)
            with open(fingerprint, "wb") as f:
                f.write(data)
        except Exception:  # noqa: BLE001  -- private API; a missing fingerprint is valid
            os.remove(fingerprint)


def _rewrite_saved_model(src, dst, rewrite, overwrite):
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError("source and destination must be different directories")
    sm, filename = _read_saved_model(src)
    for mg in sm.meta_graphs:
        _rewrite_graph_def(mg.graph_def, rewrite)  # may raise: nothing written yet
        _fix_stripped_op_list(mg)
    if os.path.exists(dst):
        if not overwrite:
            raise FileExistsError(f"{dst} exists (pass overwrite=True / --overwrite to replace it)")
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    _write_saved_model(sm, dst, filename)
    return dict(rewrite.stats)


def lower_saved_model(src, dst, straight_through=False, overwrite=False):
    """Copies SavedModel `src` to `dst` with every plugin op replaced by built-in
    ops computing the same bits (see the module docstring). The result loads
    without tf_qdq. Returns {"<plugin op> -> <built-in op>": count}.

    straight_through: lower V4 with a computed range to V2, whose gradient
    (straight-through) is the plugin's V4 gradient for non-NaN inputs; by
    default it stays V4, whose built-in gradient masks against the unused
    input_min/input_max. Forward outputs are identical either way.

    Raises LoweringError (nothing is written) for an op with no built-in
    equivalent: V2/V4 per channel with a given range and round_mode='HALF_UP'.
    """
    return _rewrite_saved_model(src, dst, _Lower(straight_through), overwrite)


def raise_saved_model(src, dst, overwrite=False):
    """Copies SavedModel `src` to `dst` with every built-in QuantizeAndDequantize*
    op replaced by the plugin's (same attributes). Loading the result needs
    `import tf_qdq`. Returns {"<built-in op> -> <plugin op>": count}."""
    return _rewrite_saved_model(src, dst, _Raise(), overwrite)


def count_ops(saved_model_dir):
    """{op name: count} of the QDQ ops (plugin and built-in) in a SavedModel."""
    sm, _ = _read_saved_model(os.fspath(saved_model_dir))
    counts = collections.Counter()
    for mg in sm.meta_graphs:
        gd = mg.graph_def
        for n in list(gd.node) + [n for f in gd.library.function for n in f.node_def]:
            if n.op in PLUGIN_OPS or n.op in BUILTIN_OPS:
                counts[n.op] += 1
    return dict(counts)


# ----------------------------------------------------------------------------- ONNX


def saved_model_to_onnx(src, output_path=None, signature="serving_default", opset=13):
    """Converts a SavedModel signature to ONNX with tf2onnx (optional dependency:
    `pip install tf_qdq[export]`) and returns the ONNX ModelProto.

    A model that still holds plugin ops is lowered first (into a temporary
    directory). tf2onnx turns every QuantizeAndDequantizeV2/V3/V4 into a
    QuantizeLinear/DequantizeLinear pair: 8 bits only (it ignores num_bits),
    per channel for V3 with an axis (opset >= 13); a given range must be a
    constant after freezing (variables are). The ONNX model inputs are named as
    the signature's inputs.
    """
    import tempfile  # noqa: PLC0415

    try:
        import tf2onnx  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("saved_model_to_onnx needs tf2onnx: pip install 'tf_qdq[export]' "
                          "(tf2onnx, onnx, onnxruntime)") from e
    tf = _tf()
    src = os.fspath(src)
    with tempfile.TemporaryDirectory(prefix="tf_qdq_lowered_") as tmp:
        if any(op in PLUGIN_OPS for op in count_ops(src)):
            lowered = os.path.join(tmp, "lowered")
            lower_saved_model(src, lowered)
            src = lowered
        loaded = tf.saved_model.load(src)
        if signature not in loaded.signatures:
            raise ValueError(f"{src} has no signature {signature!r}; it has "
                             f"{sorted(loaded.signatures)}")
        fn = loaded.signatures[signature]
        specs = fn.structured_input_signature[1]
        names = sorted(specs)
        # tf2onnx takes a tf.function with positional inputs; signatures take keywords.
        wrapped = tf.function(lambda *args: fn(**dict(zip(names, args))))
        input_signature = [tf.TensorSpec(specs[n].shape, specs[n].dtype, name=n) for n in names]
        model_proto, _ = tf2onnx.convert.from_function(
            wrapped, input_signature=input_signature, opset=opset, output_path=output_path)
    return model_proto


# ----------------------------------------------------------------------------- command line


def _cli(argv, direction):
    lower = direction == "lower"
    parser = argparse.ArgumentParser(
        prog=f"python -m tf_qdq {direction}",
        description=(
            "Copy a SavedModel, replacing every tf_qdq plugin op by TensorFlow's built-in ops "
            "that compute the same bits, so that it loads without tf_qdq and converts with "
            "tf2onnx / TF-TRT." if lower else
            "Copy a SavedModel, replacing every built-in QuantizeAndDequantize* op by the tf_qdq "
            "plugin's (loading the result needs `import tf_qdq`)."))
    parser.add_argument("src", help="SavedModel directory to read")
    parser.add_argument("dst", help="directory to write (must not exist unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace dst if it exists")
    if lower:
        parser.add_argument(
            "--straight-through", action="store_true",
            help="lower V4 ops with a computed range to V2 (straight-through gradient, like the "
                 "plugin's) instead of V4 (whose built-in gradient masks against 0, 0)")
    args = parser.parse_args(argv)
    try:
        if lower:
            stats = lower_saved_model(args.src, args.dst, args.straight_through, args.overwrite)
        else:
            stats = raise_saved_model(args.src, args.dst, args.overwrite)
    except (LoweringError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"tf_qdq {direction}: error: {e}", file=sys.stderr)
        return 1
    if not stats:
        print(f"tf_qdq {direction}: no op to rewrite; copied {args.src} to {args.dst}")
    for key, n in sorted(stats.items()):
        print(f"  {n:5d}  {key}")
    print(f"tf_qdq {direction}: wrote {args.dst}")
    return 0


def main(argv=None):
    """`python -m tf_qdq lower SRC DST`."""
    return _cli(sys.argv[1:] if argv is None else argv, "lower")


def raise_main(argv=None):
    """`python -m tf_qdq raise SRC DST`."""
    return _cli(sys.argv[1:] if argv is None else argv, "raise")
