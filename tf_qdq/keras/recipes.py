"""Placement recipes: where quantize_model puts QDQ, as data plus one planner.

A recipe is one `Recipe` value (the registry `RECIPES`); `plan()` applies it to a
model's layer graph (flattened by quantize.py) and returns, per call of a layer,
which inputs get an activation quantizer (and whether signed), whether the layer's
weights are quantized, and which tensors get a quantizer on behalf of the
producing op (onnxruntime's output Q). docs/qat.md states the rules in prose.

"tensorrt": TensorRT's explicit-quantization rules as NVIDIA's TensorFlow 2
Quantization Toolkit applies them (its layer table plus its special cases):

- weighted layers (Conv*, DepthwiseConv*, SeparableConv*, Conv*Transpose, Dense,
  EinsumDense): input per tensor, kernel per output channel (narrow range);
- AveragePooling*/GlobalAveragePooling*: input;
- residual Add: every input but one. The kept-float input is a branch that comes
  straight from a convolution, the form TensorRT fuses into the convolution's
  epilogue: a branch produced by Conv or BN<-Conv counts; so does Act<-BN<-Conv
  and Dropout<-Act<-BN<-Conv (EfficientNet's form in NVIDIA's toolkit). With
  only the first two forms, the last such branch stays float; when one of the
  latter forms occurs, the first conv-like branch stays float;
- BatchNormalization whose input does not come from a convolution (pre-activation
  nets: ResNet-v2, DenseNet): input;
- MaxPooling*: input, only where its output feeds a quantized Add input or a
  quantized BatchNormalization (ResNet-v2's pooled shortcut and stem; ResNet-v1's
  stem pool, feeding convolutions only, stays float);
- Multiply (EfficientNet's squeeze-excite scaling): all inputs;
- Concatenate: float by default (its consumers are quantized);
  `quantize_concat=True` gives all its inputs one shared quantizer.
  All activation quantizers are signed (TensorRT's int8), zero point 0.

"onnxruntime": what onnxruntime's QDQ transformer fuses into int8 kernels on the
CPU: a node unit is DequantizeLinear on every data input, the op, and
QuantizeLinear on its output (QLinearConv, QLinearAdd, QLinearMul,
QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool; MatMul also fuses
without the output Q into MatMulIntegerToFloat). So:

- all inputs of weighted layers, Add, Multiply, Concatenate, AveragePooling*,
  GlobalAveragePooling*;
- the output of every convolution, Add, Multiply, Concatenate and average pool,
  taken after a following ReLU/ReLU6 (removed before a Q whose range starts at
  0) or Dropout (identity at inference); a following BatchNormalization runs in
  float between two Q/DQ pairs (onnxruntime cannot fold it into a convolution
  whose weights come from DequantizeLinear);
- a convolution with its own activation other than ReLU (e.g. sigmoid, swish)
  gets a quantizer on its output before the activation (`output_quantizer`);
- unsigned [0, a] ranges for tensors known to be non-negative (after ReLU,
  ReLU6, sigmoid, softmax, pooling or concatenation of such), signed otherwise.
"""

import dataclasses
import fnmatch
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tf_qdq.keras.layer import keras


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One placement recipe (see the module doc for the rules in words)."""

    name: str
    description: str
    #: layer kinds (see `kind()`) all of whose inputs are quantized
    quantize_inputs_of: Tuple[str, ...]
    #: "all_but_conv_branch" (TensorRT's residual rule) or "all"
    residual_add: str
    #: quantize a BatchNormalization's input when it does not follow a convolution
    bn_not_after_conv: bool
    #: quantize MaxPooling inputs that feed a quantized Add/BN input
    maxpool_on_residual: bool
    #: quantize the output of these kinds (after folded BN/ReLU/Dropout)
    quantize_outputs_of: Tuple[str, ...]
    #: unsigned ranges for non-negative tensors
    unsigned_when_nonnegative: bool


TENSORRT = Recipe(
    name="tensorrt",
    description="TensorRT explicit quantization, as NVIDIA's TensorFlow 2 Quantization Toolkit places Q/DQ",
    quantize_inputs_of=("weighted", "avgpool", "multiply"),
    residual_add="all_but_conv_branch",
    bn_not_after_conv=True,
    maxpool_on_residual=True,
    quantize_outputs_of=(),
    unsigned_when_nonnegative=False,
)

ONNXRUNTIME = Recipe(
    name="onnxruntime",
    description="onnxruntime CPU int8 (QDQ node units: Q/DQ on the inputs and outputs of each fused op)",
    quantize_inputs_of=("weighted", "avgpool", "multiply", "add", "concat"),
    residual_add="all",
    bn_not_after_conv=False,
    maxpool_on_residual=False,
    quantize_outputs_of=("conv", "add", "multiply", "concat", "avgpool"),
    unsigned_when_nonnegative=True,
)

#: The recipes by name.
RECIPES: Dict[str, Recipe] = {r.name: r for r in (TENSORRT, ONNXRUNTIME)}


def _classes(*names: str) -> tuple:
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


_CONV = _classes(
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
)
_DENSE = _classes("Dense", "EinsumDense")
_KINDS = (
    ("conv", _CONV),
    ("dense", _DENSE),
    ("bn", _classes("BatchNormalization")),
    ("act", _classes("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")),
    ("dropout", _classes("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")),
    (
        "avgpool",
        _classes(
            "AveragePooling1D",
            "AveragePooling2D",
            "AveragePooling3D",
            "GlobalAveragePooling1D",
            "GlobalAveragePooling2D",
            "GlobalAveragePooling3D",
        ),
    ),
    ("maxpool", _classes("MaxPooling1D", "MaxPooling2D", "MaxPooling3D")),
    ("add", _classes("Add")),
    ("multiply", _classes("Multiply")),
    ("concat", _classes("Concatenate")),
    ("input", _classes("InputLayer")),
)

#: Layers that hold no weights to quantize and need no decision (left float unless a rule applies).
_SHAPE_ONLY = _classes(
    "Flatten",
    "Reshape",
    "Permute",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "RepeatVector",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Identity",
)


def kind(layer: Any) -> Optional[str]:
    """The recipe's name for a layer's type: conv, dense, bn, act, dropout, avgpool,
    maxpool, add, multiply, concat, input, or None."""
    for name, classes in _KINDS:
        if classes and isinstance(layer, classes):
            return name
    return None


@dataclasses.dataclass
class Call:
    """One call of a layer in the flattened graph (quantize.py builds these)."""

    layer: Any
    inputs: List[Any]  # tensor keys, flattened call arguments
    outputs: List[Any]


@dataclasses.dataclass(frozen=True)
class ActSpec:
    """An activation quantizer: per tensor, zero point 0."""

    num_bits: int = 8
    narrow_range: bool = False
    signed: bool = True
    range_mode: str = "max"


@dataclasses.dataclass
class Plan:
    """Where the quantizers go: per call index, per flattened input, an ActSpec or None;
    the calls whose layer's weights are quantized; tensors quantized at their producer."""

    inputs: Dict[int, List[Optional[ActSpec]]]
    weighted: Dict[int, bool]
    outputs: Dict[int, ActSpec]  # tensor id -> spec
    shared: Dict[int, bool]  # call index -> its quantized inputs share one quantizer
    preactivation: Dict[int, ActSpec]  # call index -> quantizer before the layer's own activation


def _is_relu_like(layer: Any) -> bool:
    if isinstance(layer, _classes("ReLU")):
        return (
            float(getattr(layer, "negative_slope", 0.0) or 0.0) == 0.0
            and (getattr(layer, "threshold", 0.0) or 0.0) == 0.0
        )
    if isinstance(layer, _classes("Activation")):
        name = getattr(layer.activation, "__name__", str(layer.activation))
        return name in ("relu", "relu6")
    return False


def _nonnegative_activation(layer: Any) -> bool:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "")
    return name in ("relu", "relu6", "sigmoid", "softmax", "hard_sigmoid", "elu_plus_one", "softplus")


class Graph:
    """Producer/consumer look-ups over the flattened calls."""

    def __init__(self, calls: Sequence[Call]) -> None:
        self.calls = list(calls)
        self.producer: Dict[int, int] = {}
        self.consumers: Dict[int, List[Tuple[int, int]]] = {}
        for i, c in enumerate(self.calls):
            for t in c.outputs:
                self.producer[t] = i
            for pos, t in enumerate(c.inputs):
                self.consumers.setdefault(t, []).append((i, pos))
        self._nonneg: Dict[int, bool] = {}

    def parent(self, i: int) -> Optional[int]:
        """The call producing call i's first input (None for a model input)."""
        c = self.calls[i]
        return self.producer.get(c.inputs[0]) if c.inputs else None

    def matches(self, i: Optional[int], pattern: Sequence[str]) -> bool:
        """Call i, its parent, grandparent... are of the kinds in `pattern`."""
        for k in pattern:
            if i is None or kind(self.calls[i].layer) != k:
                return False
            i = self.parent(i)
        return True

    def nonnegative(self, t: int) -> bool:
        if t in self._nonneg:
            return self._nonneg[t]
        self._nonneg[t] = False  # cycles cannot occur; guards recursion on odd graphs
        i = self.producer.get(t)
        result = False
        if i is not None:
            c = self.calls[i]
            k = kind(c.layer)
            if _is_relu_like(c.layer) or (k in ("conv", "dense", "act") and _nonnegative_activation(c.layer)):
                result = True
            elif k in ("maxpool", "avgpool", "dropout", "concat", "add") or isinstance(c.layer, _SHAPE_ONLY):
                result = bool(c.inputs) and all(self.nonnegative(x) for x in c.inputs)
        self._nonneg[t] = result
        return result


def _residual_positions(graph: Graph, i: int) -> List[int]:
    """TensorRT's residual rule: the Add inputs to quantize."""
    conv_like: List[int] = []
    epilogue_form = False
    for pos, t in enumerate(graph.calls[i].inputs):
        p = graph.producer.get(t)
        if graph.matches(p, ["conv"]) or graph.matches(p, ["bn", "conv"]):
            conv_like.append(pos)
        if graph.matches(p, ["act", "bn", "conv"]) or graph.matches(p, ["dropout", "act", "bn", "conv"]):
            conv_like.append(pos)
            epilogue_form = True
    positions = list(range(len(graph.calls[i].inputs)))
    if conv_like:
        positions.remove(conv_like[0] if epilogue_form else conv_like[-1])
    return positions


def _chain_end(graph: Graph, t: Any) -> Any:
    """The tensor where onnxruntime's fused node unit ends: past ReLU/ReLU6 (removed
    before a Q whose range starts at 0) and Dropout, while the tensor has one consumer.
    A BatchNormalization stops the chain: onnxruntime folds it into a convolution
    only when the weights are constants, not DequantizeLinear outputs."""
    while True:
        cons = graph.consumers.get(t, [])
        if len(cons) != 1:
            return t
        c = graph.calls[cons[0][0]]
        if _is_relu_like(c.layer) or kind(c.layer) == "dropout":
            t = c.outputs[0]
            continue
        return t


def plan(
    recipe: Recipe,
    graph: Graph,
    skip_input: Dict[int, bool],
    skip_layer: Dict[int, bool],
    spec_for: Any,
    quantize_concat: bool,
) -> Plan:
    """Applies `recipe` to `graph`.

    skip_layer[i]: call i's layer is excluded (left float, its inputs too);
    skip_input[i]: an override asked not to quantize call i's inputs;
    spec_for(i, signed) -> ActSpec with the call's overrides applied."""
    inputs: Dict[int, List[Optional[ActSpec]]] = {}
    weighted: Dict[int, bool] = {}
    outputs: Dict[int, ActSpec] = {}
    shared: Dict[int, bool] = {}

    def signed(t: int) -> bool:
        return not (recipe.unsigned_when_nonnegative and graph.nonnegative(t))

    def want(i: int, positions: Sequence[int]) -> None:
        if skip_layer.get(i) or skip_input.get(i):
            return
        c = graph.calls[i]
        slots = inputs.setdefault(i, [None] * len(c.inputs))
        for pos in positions:
            slots[pos] = spec_for(i, signed(c.inputs[pos]))

    for i, c in enumerate(graph.calls):
        k = kind(c.layer)
        all_pos = range(len(c.inputs))
        if k in ("conv", "dense"):
            if not skip_layer.get(i):
                weighted[i] = True
            want(i, all_pos)
        elif k == "add":
            if recipe.residual_add == "all":
                want(i, all_pos)
            else:
                want(i, _residual_positions(graph, i))
        elif k == "bn":
            if recipe.bn_not_after_conv and not graph.matches(graph.parent(i), ["conv"]):
                want(i, all_pos)
        elif k == "concat":
            if "concat" in recipe.quantize_inputs_of:
                want(i, all_pos)
            elif quantize_concat:
                want(i, all_pos)
                shared[i] = True
        elif k in recipe.quantize_inputs_of:
            want(i, all_pos)

    if recipe.maxpool_on_residual:
        for i, c in enumerate(graph.calls):
            if kind(c.layer) != "maxpool":
                continue
            for j, pos in graph.consumers.get(c.outputs[0], []):
                if kind(graph.calls[j].layer) in ("add", "bn") and inputs.get(j, [None] * (pos + 1))[pos]:
                    want(i, range(len(c.inputs)))
                    break

    for i, c in enumerate(graph.calls):
        k = kind(c.layer)
        if k in recipe.quantize_outputs_of and not skip_layer.get(i) and c.outputs:
            t = _chain_end(graph, c.outputs[0])
            outputs[t] = spec_for(i, signed(t))
    preactivation: Dict[int, ActSpec] = {}
    if "conv" in recipe.quantize_outputs_of:
        for i in weighted:
            layer = graph.calls[i].layer
            if kind(layer) == "conv" and not _linear_or_relu(getattr(layer, "activation", None)):
                preactivation[i] = spec_for(i, True)
    return Plan(inputs=inputs, weighted=weighted, outputs=outputs, shared=shared, preactivation=preactivation)


def _linear_or_relu(activation: Any) -> bool:
    return activation is None or getattr(activation, "__name__", "") in ("linear", "relu", "relu6")


def matches_any(layer: Any, patterns: Sequence[Any]) -> List[Any]:
    """The patterns (glob strings on the layer name, or classes) that match a layer."""
    hit = []
    for p in patterns:
        if isinstance(p, str):
            if fnmatch.fnmatchcase(layer.name, p):
                hit.append(p)
        elif isinstance(p, type) and isinstance(layer, p):
            hit.append(p)
    return hit
