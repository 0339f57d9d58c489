"""The lowering rules of tf_qdq.export: which built-in op (and attributes)
replaces each plugin op (the command lines `python -m tf_qdq lower|raise` are in
tf_qdq/_cli.py).

The table of rules, and what the lowered model's outputs and gradients are, is
in docs/export.md#lowering.
"""

from __future__ import annotations

import collections
import os
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Union

import numpy as np

from tf_qdq.export.graph import (
    BUILTIN_BY_VERSION,
    BUILTIN_OPS,
    PLUGIN_OPS,
    PLUGIN_PREFIX,
    Body,
    LoweringError,
    attr_value,
    const_node,
    new_node,
    private_attrs,
    rewrite_graph_def,
    rewrite_saved_model,
    set_attrs,
    set_type,
    tensorflow,
)

if TYPE_CHECKING:
    from tensorflow.core.framework.graph_pb2 import GraphDef

PathLike = Union[str, "os.PathLike[str]"]

# The built-in op names by short name ("V3": "QuantizeAndDequantizeV3"); a plugin op is
# PLUGIN_PREFIX + its built-in name.
_V1, _V2, _V3, _V4, _V4GRAD = (BUILTIN_BY_VERSION[v] for v in ("V1", "V2", "V3", "V4", "V4Grad"))

# Attribute defaults of the plugin's ops (docs/semantics.md#ops). SavedModels strip
# attributes that hold their default value, so lowering fills them in.
_DEFAULTS = {
    _V1: dict(signed_input=True, num_bits=8, range_given=False, input_min=0.0, input_max=0.0),
    _V2: dict(
        signed_input=True, num_bits=8, range_given=False, round_mode=b"HALF_TO_EVEN", narrow_range=False, axis=-1
    ),
    _V3: dict(signed_input=True, range_given=True, narrow_range=False, axis=-1),
    _V4GRAD: dict(axis=-1),
}
_DEFAULTS[_V4] = _DEFAULTS[_V2]

# Output argument names, as in the ops' definitions (identical for plugin and built-in).
_OUTPUT_ARGS = {
    _V4GRAD: ("input_backprop", "input_min_backprop", "input_max_backprop"),
}
_SINGLE_OUTPUT = ("output",)


def _effective_attrs(node, kind):
    attrs = dict(_DEFAULTS[kind])
    for key in attrs:
        if key in node.attr:
            attrs[key] = attr_value(node.attr[key])
    if "T" not in node.attr:
        raise LoweringError(f"node {node.name!r} ({node.op}) has no attribute T")
    attrs["T"] = node.attr["T"].type
    return attrs


def _np_dtype(dtype_enum):
    return tensorflow().as_dtype(dtype_enum).as_numpy_dtype


class _Target(NamedTuple):
    """The built-in op that replaces a plugin op, before any Cast wrapping."""

    op: str  # built-in op name
    attrs: dict  # its attributes, T excepted
    inputs: List[str]  # inputs of type T (cast to float32 for half/bfloat16)
    extra: List[str]  # other inputs (num_bits, range Consts), never cast
    consts: list  # Const nodes that `extra` refers to


def _choose_target(node, body, attrs, compute, straight_through) -> _Target:
    """The built-in op, its attributes and inputs for plugin op `node` (rules in
    docs/export.md#lowering). Raises LoweringError where there is none."""
    tf = tensorflow()
    kind = node.op[len(PLUGIN_PREFIX) :]
    data = [i for i in node.input if not i.startswith("^")]
    base = node.name

    if kind in (_V2, _V4):
        if attrs["axis"] != -1 and attrs["range_given"]:
            if attrs["round_mode"] != b"HALF_TO_EVEN":
                raise LoweringError(
                    f"cannot lower {body.describe(node)}: per-channel quantization (axis="
                    f"{attrs['axis']}) with a given range runs in TensorFlow "
                    f"{tf.__version__} only as QuantizeAndDequantizeV3, which always rounds half "
                    "to even, but this op uses round_mode='HALF_UP'. Use round_mode="
                    "'HALF_TO_EVEN' for per-channel given ranges in models you want to export, "
                    "or keep the plugin (import tf_qdq) where the model runs."
                )
            target = _V3
        elif kind == _V4 and straight_through and not attrs["range_given"]:
            target = _V2
        else:
            target = kind
        op_attrs = dict(
            signed_input=attrs["signed_input"],
            range_given=attrs["range_given"],
            narrow_range=attrs["narrow_range"],
            axis=attrs["axis"],
        )
        if target != _V3:
            op_attrs.update(num_bits=attrs["num_bits"], round_mode=attrs["round_mode"])
            return _Target(target, op_attrs, data[:3], [], [])
        # V3 takes num_bits as a tensor.
        nb = body.unique(base + "/num_bits")
        const = const_node(body, nb, np.array(attrs["num_bits"], np.int32), data[0], node.device)
        return _Target(target, op_attrs, data[:3], [body.ref(nb, "output", 0, 0)], [const])

    if kind == _V3:
        op_attrs = dict(
            signed_input=attrs["signed_input"],
            range_given=attrs["range_given"],
            narrow_range=attrs["narrow_range"],
            axis=attrs["axis"],
        )
        return _Target(kind, op_attrs, data[:3], data[3:4], [])

    if kind == _V1:
        op_attrs = dict(
            signed_input=attrs["signed_input"],
            num_bits=attrs["num_bits"],
            range_given=attrs["range_given"],
            round_mode=b"HALF_TO_EVEN",
            narrow_range=False,
            axis=-1,
        )
        # The attribute range cast to T (docs/semantics.md#diff-v1-op), then to the compute type.
        extra, consts = [], []
        for arg in ("input_min", "input_max"):
            value = np.float32(attrs[arg]).astype(_np_dtype(attrs["T"])).astype(_np_dtype(compute))
            name = body.unique(f"{base}/{arg}")
            consts.append(const_node(body, name, np.array(value), data[0], node.device))
            extra.append(body.ref(name, "output", 0, 0))
        return _Target(_V2, op_attrs, data[:1], extra, consts)

    # V4Grad
    return _Target(kind, dict(axis=attrs["axis"]), data[:4], [], [])


def _emit(node, body, target: _Target, dtype, compute):
    """The nodes that compute `target` in place of `node`: the op itself under the
    node's name, or, when T is half/bfloat16 (no built-in kernel), Casts to
    float32, the op, Casts back and an Identity(N) under the node's name.
    Returns (nodes, remap of output references)."""
    controls = [i for i in node.input if i.startswith("^")]
    base = node.name
    out = list(target.consts)
    remap = {}
    if compute == dtype:
        # Same name, so every reference to it stays valid.
        op_node = new_node(base, target.op, target.inputs + target.extra + controls, node.device)
        for k, v in private_attrs(node, keep_shapes=True).items():
            op_node.attr[k].CopyFrom(v)
        set_attrs(op_node, **target.attrs)
        set_type(op_node, "T", dtype)
        out.append(op_node)
        return out, remap

    cast_inputs = []
    for i, ref in enumerate(target.inputs):
        name = body.unique(f"{base}/cast_in{i}")
        c = new_node(name, "Cast", [ref], node.device)
        set_type(c, "SrcT", dtype)
        set_type(c, "DstT", compute)
        set_attrs(c, Truncate=False)
        out.append(c)
        cast_inputs.append(body.ref(name, "y", 0, 0))
    op_name = body.unique(base + "/float32")
    op_node = new_node(op_name, target.op, cast_inputs + target.extra + controls, node.device)
    for k, v in private_attrs(node, keep_shapes=False).items():
        op_node.attr[k].CopyFrom(v)
    set_attrs(op_node, **target.attrs)
    set_type(op_node, "T", compute)
    out.append(op_node)
    outputs = _OUTPUT_ARGS.get(target.op, _SINGLE_OUTPUT)
    cast_outputs = []
    for i, arg in enumerate(outputs):
        name = body.unique(f"{base}/cast_out{i}")
        c = new_node(name, "Cast", [body.ref(op_name, arg, 0, i)], node.device)
        set_type(c, "SrcT", compute)
        set_type(c, "DstT", dtype)
        set_attrs(c, Truncate=False)
        out.append(c)
        cast_outputs.append(body.ref(name, "y", 0, 0))
    # The original name now belongs to an Identity (one output) or an
    # IdentityN (V4Grad), whose outputs keep their GraphDef indices.
    if len(outputs) == 1:
        ident = new_node(base, "Identity", cast_outputs, node.device)
        set_type(ident, "T", dtype)
    else:
        ident = new_node(base, "IdentityN", cast_outputs, node.device)
        ident.attr["T"].list.type.extend([dtype] * len(outputs))
        for i, arg in enumerate(outputs):
            remap[(base, arg, 0)] = body.ref(base, "output", i, i)
    if "_output_shapes" in node.attr:
        ident.attr["_output_shapes"].CopyFrom(node.attr["_output_shapes"])
    out.append(ident)
    return out, remap


def _lower_node(node, body: Body, straight_through: bool, stats: collections.Counter):
    """Returns the nodes that replace plugin op `node`, and a remap of its output
    references (only needed in functions when output argument names change)."""
    tf = tensorflow()
    kind = node.op[len(PLUGIN_PREFIX) :]
    if kind not in _DEFAULTS:
        raise LoweringError(f"{body.describe(node)}: unknown plugin op")
    attrs = _effective_attrs(node, kind)
    dtype = attrs["T"]
    narrow = dtype in (tf.float16.as_datatype_enum, tf.bfloat16.as_datatype_enum)
    compute = tf.float32.as_datatype_enum if narrow else dtype
    target = _choose_target(node, body, attrs, compute, straight_through)
    stats[f"{node.op} -> {target.op}" + (" (via float32)" if narrow else "")] += 1
    return _emit(node, body, target, dtype, compute)


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


def lower_graph_def(graph_def: GraphDef, straight_through: bool = False) -> GraphDef:
    """Returns a copy of `graph_def` (a tf.compat.v1.GraphDef, with its function
    library) with every plugin op lowered to built-in ops. Raises LoweringError
    for ops that cannot be."""
    new = type(graph_def).FromString(graph_def.SerializeToString())
    rewrite_graph_def(new, _Lower(straight_through))
    return new


def raise_graph_def(graph_def: GraphDef) -> GraphDef:
    """Returns a copy of `graph_def` with every built-in QDQ op replaced by the plugin's."""
    new = type(graph_def).FromString(graph_def.SerializeToString())
    rewrite_graph_def(new, _Raise())
    return new


def lower_saved_model(
    src: PathLike, dst: PathLike, straight_through: bool = False, overwrite: bool = False
) -> Dict[str, int]:
    """Copies SavedModel `src` to `dst` with every plugin op replaced by built-in
    ops computing the same bits (docs/export.md#lowering). The result loads
    without tf_qdq. Returns {"<plugin op> -> <built-in op>": count}.

    straight_through: lower V4 with a computed range to V2, whose gradient
    (straight-through) is the plugin's V4 gradient for non-NaN inputs; by
    default it stays V4, whose built-in gradient masks against the unused
    input_min/input_max. Forward outputs are identical either way.

    Raises LoweringError (nothing is written) for an op with no built-in
    equivalent: V2/V4 per channel with a given range and round_mode='HALF_UP'.
    """
    return rewrite_saved_model(src, dst, _Lower(straight_through), overwrite)


def raise_saved_model(src: PathLike, dst: PathLike, overwrite: bool = False) -> Dict[str, int]:
    """Copies SavedModel `src` to `dst` with every built-in QuantizeAndDequantize*
    op replaced by the plugin's (same attributes). Loading the result needs
    `import tf_qdq`. Returns {"<built-in op> -> <plugin op>": count}."""
    return rewrite_saved_model(src, dst, _Raise(), overwrite)
