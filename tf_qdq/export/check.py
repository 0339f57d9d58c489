"""`python -m tf_qdq check-onnx MODEL.onnx --recipe tensorrt|onnxruntime`: a linter
for quantized ONNX models (tf_qdq.export.check_onnx).

Findings (`Finding.kind`):

- "float-input": a Conv, ConvTranspose, MatMul or Gemm whose data or weight input
  does not come from a DequantizeLinear (through shape-only ops), so it runs in float;
- "zero-point": a non-zero zero point where the recipe needs zero (every one for
  "tensorrt"; the weights' for "onnxruntime", whose activations may be uint8/128);
- "dtype" (recipe "tensorrt" only): a uint8 QuantizeLinear/DequantizeLinear (an
  unsigned range); TensorRT takes int8 Q/DQ only;
- "concat-scales": a Concat whose quantized inputs have different scales (TensorRT
  and onnxruntime requantize, or leave it in float);
- "qdq-mismatch": a QuantizeLinear and the DequantizeLinear it feeds with different
  scales or zero points;
- "axis": a per-channel weight scale whose axis (or length) does not match the
  output-channel axis of the weight layout (Conv and depthwise Conv: 0,
  ConvTranspose: 1, MatMul: 1, Gemm: 1, or 0 with transB);
- "plugin-op": an op that is no ONNX op, e.g. a `TfQdq>...` op left by tf2onnx's own
  command line run with --load_op_libraries;
- "runtime" (recipe "onnxruntime" only): a Conv/MatMul/Gemm that is still float in
  the graph onnxruntime optimizes (SessionOptions.optimized_model_filepath), or a
  model onnxruntime refuses to load.

The command exits 1 when it finds something, 0 when the model is clean.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import TYPE_CHECKING, Dict, List, Optional, Union

import numpy as np

if TYPE_CHECKING:
    import onnx

RECIPES = ("tensorrt", "onnxruntime")
WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# Ops that move or reshape values without changing them: a DequantizeLinear seen
# through them still quantizes the consumer's input.
_SHAPE_OPS = ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
# What onnxruntime turns a quantized Conv/MatMul/Gemm into.
_ORT_FLOAT_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "FusedConv", "FusedMatMul", "FusedGemm", "NhwcConv")

_PLUGIN_HINT = (
    "tf2onnx's own command line with --load_op_libraries writes such files; convert with "
    "tf_qdq.export.to_onnx or `python -m tf_qdq tf2onnx`, or lower the SavedModel first (python -m tf_qdq lower)"
)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem of a quantized ONNX model: `kind` (module doc), the node, and what to do."""

    kind: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.node}: {self.message}"


class _Graph:
    def __init__(self, model) -> None:
        from onnx import numpy_helper  # noqa: PLC0415

        self.graph = model.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        self.inits[node.output[0]] = numpy_helper.to_array(a.t)
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: Dict[str, list] = {}
        for n in self.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def value(self, name) -> Optional[np.ndarray]:
        return self.inits.get(name)

    def source(self, name):
        """The node behind tensor `name`, looking through shape-only ops."""
        node = self.producer.get(name)
        while node is not None and node.op_type in _SHAPE_OPS and node.input:
            node = self.producer.get(node.input[0])
        return node

    def is_constant(self, name) -> bool:
        if name in self.inits:
            return True
        node = self.producer.get(name)
        return node is not None and node.op_type in _SHAPE_OPS and bool(node.input) and self.is_constant(node.input[0])

    def qparams(self, node):
        scale = self.value(node.input[1]) if len(node.input) > 1 else None
        zp = self.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return scale, zp


def _name(node) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _attr(node, key, default):
    for a in node.attribute:
        if a.name == key:
            return a.i
    return default


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and np.array_equal(a.ravel(), b.ravel()) if a.size == b.size else False


def _load(path_or_model):
    import onnx  # noqa: PLC0415

    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    return onnx.load(os.fspath(path_or_model))


def _plugin_ops(model) -> List[Finding]:
    import onnx  # noqa: PLC0415

    found = []
    for node in model.graph.node:
        if "TfQdq>" in node.op_type or node.op_type.startswith("QuantizeAndDequantize"):
            found.append(
                Finding("plugin-op", _name(node), f"TensorFlow op {node.op_type} left in the model; {_PLUGIN_HINT}")
            )
        elif node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type):
            found.append(Finding("plugin-op", _name(node), f"{node.op_type} is no ONNX op: no runtime can run it"))
    return found


def _float_inputs(g: _Graph) -> List[Finding]:
    found = []
    for node in g.graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        for i, role in ((0, "data"), (1, "weight")):
            if i >= len(node.input):
                continue
            src = g.source(node.input[i])
            if src is None or src.op_type != "DequantizeLinear":
                found.append(
                    Finding(
                        "float-input",
                        _name(node),
                        f"{node.op_type} {role} input {node.input[i]!r} is float (no DequantizeLinear before it): "
                        f"it runs in float; quantize that input (a QuantizeDequantize before the layer)",
                    )
                )
    return found


def _zero_points(g: _Graph, recipe) -> List[Finding]:
    found = []
    for node in g.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        _, zp = g.qparams(node)
        if zp is None or not np.any(zp != 0):
            continue
        src = g.producer.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        weight = g.is_constant(node.input[0]) or (
            src is not None and src.op_type == "QuantizeLinear" and g.is_constant(src.input[0])
        )
        if recipe == "onnxruntime" and not weight:
            continue
        what = "weight" if weight else "activation"
        found.append(
            Finding(
                "zero-point",
                _name(node),
                f"{what} zero point {np.unique(zp).tolist()} ({zp.dtype}) where recipe {recipe!r} needs 0 "
                f"(symmetric quantization); quantize symmetrically",
            )
        )
    return found


def _uint8(g: _Graph) -> List[Finding]:
    found = []
    for node in g.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        _, zp = g.qparams(node)
        if zp is not None and zp.dtype == np.uint8:
            found.append(
                Finding(
                    "dtype",
                    _name(node),
                    "uint8 quantization (an unsigned range): TensorRT takes int8 QuantizeLinear/DequantizeLinear "
                    "only; quantize this tensor with a signed range (signed=True) for TensorRT",
                )
            )
    return found


def _concat_scales(g: _Graph) -> List[Finding]:
    found = []
    for node in g.graph.node:
        if node.op_type != "Concat":
            continue
        scales = []
        for name in node.input:
            src = g.source(name)
            if src is not None and src.op_type == "DequantizeLinear":
                scales.append((name, g.qparams(src)[0]))
        distinct = []
        for _, s in scales:
            if s is not None and not any(_same(s, d) for d in distinct):
                distinct.append(s)
        if len(distinct) > 1:
            values = ", ".join(f"{n}: {np.asarray(s).ravel()[:4].tolist()}" for n, s in scales)
            found.append(
                Finding(
                    "concat-scales",
                    _name(node),
                    f"Concat inputs have different scales ({values}): runtimes requantize or stay in float; "
                    f"give the inputs one shared range (quantize_model(..., quantize_concat=True))",
                )
            )
    return found


def _qdq_pairs(g: _Graph) -> List[Finding]:
    found = []
    for q in g.graph.node:
        if q.op_type != "QuantizeLinear":
            continue
        qs, qz = g.qparams(q)
        for dq in g.consumers.get(q.output[0], []):
            if dq.op_type != "DequantizeLinear":
                continue
            ds, dz = g.qparams(dq)
            qz_ = qz if qz is not None else np.zeros((), np.uint8)
            dz_ = dz if dz is not None else np.zeros((), np.uint8)
            if not _same(qs, ds) or not _same(qz_, dz_) or _attr(q, "axis", 1) != _attr(dq, "axis", 1):
                found.append(
                    Finding(
                        "qdq-mismatch",
                        _name(dq),
                        f"DequantizeLinear does not undo QuantizeLinear {_name(q)!r}: scale, zero point or axis "
                        f"differ, so the values change; use the same scale and zero point in both",
                    )
                )
    return found


def _expected_axis(node, g: _Graph) -> Optional[int]:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "MatMul":
        return 1
    if node.op_type == "Gemm":
        return 0 if _attr(node, "transB", 0) else 1
    return None


def _axes(g: _Graph) -> List[Finding]:
    found = []
    for node in g.graph.node:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2:
            continue
        dq = g.producer.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        scale, _ = g.qparams(dq)
        if scale is None or scale.ndim == 0 or scale.size == 1:
            continue
        w = g.value(dq.input[0])
        if w is None:
            qnode = g.producer.get(dq.input[0])
            w = g.value(qnode.input[0]) if qnode is not None and qnode.op_type == "QuantizeLinear" else None
        expected = _expected_axis(node, g)
        if w is None or expected is None:
            continue
        axis = _attr(dq, "axis", 1)
        axis = axis + w.ndim if axis < 0 else axis
        if axis != expected or w.shape[expected] != scale.size:
            found.append(
                Finding(
                    "axis",
                    _name(dq),
                    f"per-channel weight scale of {node.op_type} {_name(node)!r} on axis {axis} ({scale.size} "
                    f"values) but its output channels are axis {expected} of the weight, shape {list(w.shape)}; "
                    f"quantize the weight per output channel",
                )
            )
    return found


def _runtime(model) -> List[Finding]:
    import onnx  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415

    found = []
    with tempfile.TemporaryDirectory(prefix="tf_qdq_check_") as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        options.intra_op_num_threads = 1
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001  -- onnxruntime raises its own exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return [Finding("runtime", model.graph.name or "model", f"onnxruntime cannot load the model: {first}")]
        optimized = onnx.load(options.optimized_model_filepath)
    for node in optimized.graph.node:
        if node.op_type in _ORT_FLOAT_OPS:
            found.append(
                Finding(
                    "runtime",
                    _name(node),
                    f"onnxruntime left this {node.op_type} in float after its Q/DQ fusions"
                    + (
                        " (its CPU provider has no int8 ConvTranspose)"
                        if node.op_type == "ConvTranspose"
                        else "; it fuses a Conv/MatMul/Gemm whose inputs come from DequantizeLinear (uint8 "
                        "activations, int8 weights: the onnxruntime recipe) and whose output goes to a "
                        "QuantizeLinear (a Relu between them is removed when that QuantizeLinear is unsigned)"
                    ),
                )
            )
    return found


def check_onnx(
    path_or_model: Union[str, "os.PathLike[str]", onnx.ModelProto], recipe: str = "tensorrt", *, runtime: bool = True
) -> List[Finding]:
    """Lints a quantized ONNX model (a path or a ModelProto) for `recipe`
    ("tensorrt" or "onnxruntime") and returns the findings (module doc), empty
    when clean. runtime=False skips loading it in onnxruntime (recipe "onnxruntime")."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    model = _load(path_or_model)
    found = _plugin_ops(model)
    g = _Graph(model)
    found += _float_inputs(g)
    found += _zero_points(g, recipe)
    if recipe == "tensorrt":
        found += _uint8(g)
    found += _concat_scales(g)
    found += _qdq_pairs(g)
    found += _axes(g)
    if recipe == "onnxruntime" and runtime:
        if any(f.kind == "plugin-op" for f in found):
            found.append(Finding("runtime", "model", "not loaded in onnxruntime: it holds ops that are no ONNX ops"))
        else:
            found += _runtime(model)
    return found
