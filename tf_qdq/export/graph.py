"""Graph-rewrite helpers of tf_qdq.export: GraphDef/FunctionDef bodies, nodes,
SavedModel reading and writing. The rewrite itself (which op becomes which) is
in tf_qdq.export.lowering."""

from __future__ import annotations

import collections
import os
import shutil
from typing import Dict, Union

from tf_qdq._op_names import BUILTIN_BY_VERSION, BUILTIN_OPS, PLUGIN_OPS, PLUGIN_PREFIX

__all__ = [
    "BUILTIN_BY_VERSION",
    "BUILTIN_OPS",
    "PLUGIN_OPS",
    "PLUGIN_PREFIX",
    "LoweringError",
    "tensorflow",
    "attr_value",
    "set_attrs",
    "set_type",
    "private_attrs",
    "Body",
    "new_node",
    "const_node",
    "rewrite_graph_def",
    "used_ops",
    "rewrite_saved_model",
    "count_ops",
]


class LoweringError(ValueError):
    """A plugin op has no built-in equivalent in the installed TensorFlow."""


def tensorflow():
    """The tensorflow module, imported on first use."""
    import tensorflow as tf  # noqa: PLC0415  (keeps `python -m tf_qdq lower -h` fast)

    return tf


def attr_value(attr):
    which = attr.WhichOneof("value")
    return getattr(attr, which) if which else None


def set_attrs(node, **values):
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


def set_type(node, key, dtype_enum):
    from tensorflow.core.framework import attr_value_pb2  # noqa: PLC0415

    node.attr[key].CopyFrom(attr_value_pb2.AttrValue(type=dtype_enum))


def private_attrs(node, keep_shapes):
    """Attributes starting with '_' (colocation, shapes, ...), kept on rewritten nodes."""
    return {k: v for k, v in node.attr.items() if k.startswith("_") and (keep_shapes or k != "_output_shapes")}


class Body:
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


def new_node(name, op, inputs, device):
    from tensorflow.core.framework import node_def_pb2  # noqa: PLC0415

    node = node_def_pb2.NodeDef(name=name, op=op, device=device)
    node.input.extend(inputs)
    return node


def const_node(body, name, value, anchor_input, device):
    """A Const node. In a GraphDef it gets a control input from the producer of
    the op's data input, so that it lives in the same (TF1 while-loop) frame."""
    tf = tensorflow()
    inputs = []
    if not body.in_function and anchor_input and not anchor_input.startswith("^"):
        inputs.append("^" + anchor_input.split(":")[0])
    node = new_node(name, "Const", inputs, device)
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    set_type(node, "dtype", tf.as_dtype(value.dtype).as_datatype_enum)
    return node


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
    body = Body(nodes, in_function, where)
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


def rewrite_graph_def(graph_def, rewrite):
    _rewrite_body(graph_def, "node", False, "the graph", rewrite)
    for f in graph_def.library.function:
        _rewrite_body(f, "node_def", True, f"function {f.signature.name!r}", rewrite, f.ret)


def used_ops(graph_def):
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
    used = used_ops(meta_graph.graph_def)
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


def rewrite_saved_model(src, dst, rewrite, overwrite):
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError("source and destination must be different directories")
    sm, filename = _read_saved_model(src)
    for mg in sm.meta_graphs:
        rewrite_graph_def(mg.graph_def, rewrite)  # may raise: nothing written yet
        _fix_stripped_op_list(mg)
    if os.path.exists(dst):
        if not overwrite:
            raise FileExistsError(f"{dst} exists (pass overwrite=True / --overwrite to replace it)")
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    _write_saved_model(sm, dst, filename)
    return dict(rewrite.stats)


def count_ops(saved_model_dir: Union[str, "os.PathLike[str]"]) -> Dict[str, int]:
    """{op name: count} of the QDQ ops (plugin and built-in) in a SavedModel."""
    sm, _ = _read_saved_model(os.fspath(saved_model_dir))
    counts = collections.Counter()
    for mg in sm.meta_graphs:
        gd = mg.graph_def
        for n in list(gd.node) + [n for f in gd.library.function for n in f.node_def]:
            if n.op in PLUGIN_OPS or n.op in BUILTIN_OPS:
                counts[n.op] += 1
    return dict(counts)
