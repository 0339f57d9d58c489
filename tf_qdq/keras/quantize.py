"""quantize_model: a copy of a Keras model with QDQ where a recipe places it.

The model's layer graph is flattened (nested Functional/Sequential models are
inlined, so rules see across their boundaries), the recipe's plan computed
(recipes.py), and a new Functional model built call by call: every layer is
cloned from its config (weighted layers as their quantized subclass,
wrappers.py), an activation quantizer is inserted in front of the inputs the plan
names (one `QuantizeDequantize` layer per tensor and settings, shared by all
consumers, so a tensor has one scale), and the original weights are copied in.
The input model is not modified. Shared layers stay shared (one clone, called
at each of the original calls).
"""

import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import tensorflow as tf

from tf_qdq.keras import recipes as _recipes
from tf_qdq.keras.layer import LEGACY_KERAS, RANGE_MODES, QuantizeDequantize, keras
from tf_qdq.keras.wrappers import QUANTIZED_LAYERS, WRAPPER_CLASSES

Pattern = Union[str, type]

#: Keys an `overrides` entry may hold.
OVERRIDE_KEYS = ("num_bits", "per_channel", "narrow_range", "range_mode", "quantize_input")


def _is_keras_tensor(x: Any) -> bool:
    if LEGACY_KERAS:
        return keras.backend.is_keras_tensor(x) if tf.is_tensor(x) or hasattr(x, "_keras_history") else False
    return isinstance(x, keras.KerasTensor)


def _is_graph_model(model: Any) -> bool:
    if LEGACY_KERAS:
        return bool(getattr(model, "_is_graph_network", False))
    return isinstance(model, (keras.Sequential, keras.src.models.functional.Functional))


def _graph_of(model: Any):
    """(inputs, outputs, nodes in topological order) of a Functional/Sequential model;
    each node is (layer, args, kwargs, output tensors)."""
    fn = model
    if not LEGACY_KERAS and isinstance(model, keras.Sequential):
        fn = getattr(model, "_functional", None)
        if fn is None:
            raise ValueError(
                f"Sequential model {model.name!r} has no defined input: give its first layer "
                f"an input (keras.Input(shape) as the first entry) or build it with a batch first."
            )
    nodes = []
    for depth in sorted(fn._nodes_by_depth, reverse=True):
        for node in fn._nodes_by_depth[depth]:
            if LEGACY_KERAS:
                if node.is_input:
                    continue
                nodes.append((node.layer, node.call_args, node.call_kwargs, tf.nest.flatten(node.outputs)))
            else:
                if not node.operation or node.is_input:
                    continue
                nodes.append((node.operation, node.arguments.args, node.arguments.kwargs, list(node.outputs)))
    return list(fn.inputs), list(fn.outputs), nodes


class _Flat:
    """The flattened graph: calls with tensor keys; nested models inlined.

    A tensor's key is (scope, id(tensor)); scope names the chain of nested-model
    calls it sits in, so a nested model called twice gives two sets of calls."""

    def __init__(self, model: Any) -> None:
        self.calls: List[_recipes.Call] = []
        self.args: List[Tuple[Any, Any, tuple]] = []  # (args, kwargs, scope) per call
        self.alias: Dict[Any, Any] = {}
        self.inputs, self.outputs, _ = _graph_of(model)
        self._n = 0
        self._add(model, ())

    def tid(self, x: Any, scope: tuple = ()) -> Any:
        key = (scope, id(x))
        while key in self.alias:
            key = self.alias[key]
        return key

    def _add(self, model: Any, scope: tuple) -> None:
        _, _, nodes = _graph_of(model)
        for layer, args, kwargs, outs in nodes:
            flat_in = [x for x in tf.nest.flatten((args, kwargs)) if _is_keras_tensor(x)]
            if isinstance(layer, keras.Model):
                if not _is_graph_model(layer):
                    raise _subclassed_error(layer)
                inner_in, inner_out, _ = _graph_of(layer)
                if len(inner_in) != len(flat_in):
                    raise ValueError(f"nested model {layer.name!r}: cannot match its inputs to the call's")
                self._n += 1
                inner = scope + (self._n,)
                for a, b in zip(inner_in, flat_in):
                    self.alias[(inner, id(a))] = self.tid(b, scope)
                self._add(layer, inner)
                for a, b in zip(outs, inner_out):
                    self.alias[(scope, id(a))] = self.tid(b, inner)
                continue
            self.calls.append(
                _recipes.Call(
                    layer=layer,
                    inputs=[self.tid(x, scope) for x in flat_in],
                    outputs=[(scope, id(x)) for x in outs],
                )
            )
            self.args.append((args, kwargs, scope))


def _subclassed_error(model: Any) -> TypeError:
    return TypeError(
        f"quantize_model needs a Functional or Sequential model, but {model.name!r} is a subclassed "
        f"model ({type(model).__name__}): its call() is Python code whose layer graph cannot be "
        f"read. Rebuild it with the Functional API (keras.Input ... keras.Model(inputs, outputs)), "
        f"or place tf_qdq.keras.QuantizeDequantize layers in its call() by hand."
    )


def _all_layers(model: Any):
    """The layers of a model and of the models nested in it."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _check_patterns(name: str, patterns: Any) -> Tuple[Any, ...]:
    if isinstance(patterns, (str, type)):
        patterns = (patterns,)
    patterns = tuple(patterns or ())
    for p in patterns:
        if not isinstance(p, (str, type)):
            raise TypeError(f"{name} entries must be layer-name glob patterns or layer classes, got {p!r}")
    return patterns


def _clone(layer: Any, cls: Optional[type] = None, extra: Optional[Dict[str, Any]] = None) -> Any:
    config = layer.get_config()
    config.update(extra or {})
    try:
        return (cls or type(layer)).from_config(config)
    except Exception as e:  # noqa: BLE001 - re-raised with the layer named
        raise ValueError(
            f"cannot clone layer {layer.name!r} ({type(layer).__name__}) from its config: {e}. "
            f"Give the layer class a get_config() that lists its constructor arguments."
        ) from e


def quantize_model(
    model: Any,
    recipe: str = "tensorrt",
    *,
    exclude: Sequence[Pattern] = (),
    overrides: Optional[Mapping[Pattern, Mapping[str, Any]]] = None,
    quantize_concat: bool = False,
) -> Any:
    """A copy of `model` with quantization where `recipe` places it.

    Args:
      model: a Functional or Sequential Keras model (nested models are inlined,
        shared layers stay shared). It is not modified.
      recipe: a key of `tf_qdq.keras.RECIPES`: "tensorrt" or "onnxruntime"
        (docs/qat.md).
      exclude: layer-name glob patterns or layer classes left in float (no
        kernel quantizer, no quantizer on their inputs). A pattern that matches
        no layer gives a warning.
      overrides: {pattern or class: settings} for matching layers; settings:
        "num_bits" (weights and the layer's input quantizers), "per_channel"
        (weights; False for one range per kernel), "narrow_range" (weights),
        "range_mode" (the input quantizers', see QuantizeDequantize), and
        "quantize_input": False to leave the layer's inputs in float.
      quantize_concat: give each Concatenate's inputs one shared quantizer (the
        "tensorrt" recipe leaves them float by default).

    Returns:
      A new keras.Model with the original weights; `qmodel.tf_qdq_recipe` is the
      recipe's name. Weight ranges are set from the kernels; activation ranges
      are 0 until `tf_qdq.keras.calibrate` or training (range_mode "max") sets them.
    """
    if recipe not in _recipes.RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; tf_qdq.keras.RECIPES has {sorted(_recipes.RECIPES)}")
    rec = _recipes.RECIPES[recipe]
    if not isinstance(model, keras.Model):
        raise TypeError(f"quantize_model needs a keras.Model, got {type(model).__name__}")
    if not _is_graph_model(model):
        raise _subclassed_error(model)
    exclude = _check_patterns("exclude", exclude)
    overrides = dict(overrides or {})
    for pattern, settings in overrides.items():
        _check_patterns("overrides", (pattern,))
        unknown = set(settings) - set(OVERRIDE_KEYS)
        if unknown:
            raise ValueError(f"overrides[{pattern!r}] has unknown keys {sorted(unknown)}; known: {list(OVERRIDE_KEYS)}")
        if "range_mode" in settings and settings["range_mode"] not in RANGE_MODES:
            raise ValueError(f"overrides[{pattern!r}]['range_mode'] must be one of {RANGE_MODES}")

    flat = _Flat(model)
    for c in flat.calls:
        if isinstance(c.layer, (QuantizeDequantize,) + WRAPPER_CLASSES):
            raise ValueError(
                f"model {model.name!r} is already quantized (layer {c.layer.name!r} is a "
                f"{type(c.layer).__name__}): quantize the float model, or use this one as it is."
            )

    layers = []
    for c in flat.calls:
        if c.layer not in layers:
            layers.append(c.layer)
    used_patterns = set()
    excluded, settings_of = {}, {}
    for layer in layers:
        hit = _recipes.matches_any(layer, exclude)
        used_patterns.update(map(repr, hit))
        excluded[id(layer)] = bool(hit)
        merged: Dict[str, Any] = {}
        for pattern, settings in overrides.items():
            if _recipes.matches_any(layer, (pattern,)):
                used_patterns.add(repr(pattern))
                merged.update(settings)
        settings_of[id(layer)] = merged
    for p in exclude + tuple(overrides):
        if repr(p) not in used_patterns:
            warnings.warn(
                f"quantize_model: pattern {p!r} matches no layer of {model.name!r}; "
                f"check the layer names (model.summary())",
                stacklevel=2,
            )

    # Weighted layers the recipe cannot quantize: an error, never a silent float Conv.
    for layer in layers:
        if excluded[id(layer)] or type(layer) in QUANTIZED_LAYERS:
            continue
        kernels = [w for w in layer.weights if w.name.split("/")[-1].split(":")[0].endswith("kernel")]
        if kernels:
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) has a kernel but recipe {recipe!r} "
                f"has no quantized version of {type(layer).__name__} (known: "
                f"{', '.join(sorted(c.__name__ for c in QUANTIZED_LAYERS))}). Leave it in float "
                f"with exclude=[{layer.name!r}], or quantize it by hand with QuantizeDequantize."
            )

    graph = _recipes.Graph(flat.calls)

    def spec_for(i: int, signed: bool) -> _recipes.ActSpec:
        s = settings_of[id(graph.calls[i].layer)]
        return _recipes.ActSpec(
            num_bits=int(s.get("num_bits", 8)), signed=signed, range_mode=s.get("range_mode", "max")
        )

    the_plan = _recipes.plan(
        rec,
        graph,
        skip_input={i: settings_of[id(c.layer)].get("quantize_input", True) is False for i, c in enumerate(flat.calls)},
        skip_layer={i: excluded[id(c.layer)] for i, c in enumerate(flat.calls)},
        spec_for=spec_for,
        quantize_concat=quantize_concat,
    )
    return _rebuild(model, flat, graph, the_plan, rec, excluded, settings_of)


def _rebuild(model, flat, graph, the_plan, rec, excluded, settings_of):
    names = set()
    for layer in _all_layers(model):
        names.add(layer.name)

    def unique(base: str) -> str:
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.add(name)
        return name

    tensors: Dict[int, Any] = {}
    new_inputs = []
    for x in flat.inputs:
        shape = tuple(x.shape)[1:]
        name = getattr(x, "name", None)
        if LEGACY_KERAS:
            name = x.node.layer.name if hasattr(x, "node") else None
        kt = keras.Input(shape=shape, dtype=x.dtype, name=name)
        tensors[flat.tid(x)] = kt
        new_inputs.append(kt)

    clones: Dict[int, Any] = {}
    quantizer_cache: Dict[Tuple[Any, ...], Any] = {}

    def quantizer(spec: _recipes.ActSpec, name: str) -> QuantizeDequantize:
        return QuantizeDequantize(
            num_bits=spec.num_bits,
            narrow_range=spec.narrow_range,
            signed=spec.signed,
            range_mode=spec.range_mode,
            name=unique(name),
        )

    def quantized(t: int, spec: _recipes.ActSpec, name: str, group: Any = None, layer: Any = None):
        key = (t, spec, group)
        if key not in quantizer_cache:
            q = layer if layer is not None else quantizer(spec, name)
            quantizer_cache[key] = q(tensors[t])
        return quantizer_cache[key]

    for i, c in enumerate(graph.calls):
        layer = c.layer
        if id(layer) not in clones:
            if the_plan.weighted.get(i):
                s = settings_of[id(layer)]
                wq = {k: s[k] for k in ("num_bits", "per_channel", "narrow_range") if k in s}
                extra: Dict[str, Any] = {"weight_quantization": wq}
                if "Separable" in QUANTIZED_LAYERS[type(layer)].__name__:
                    # the tensor between the depthwise and pointwise parts: an activation quantizer
                    extra["activation_quantization"] = {
                        "num_bits": int(s.get("num_bits", 8)),
                        "range_mode": s.get("range_mode", "max"),
                    }
                if i in the_plan.preactivation:
                    spec = the_plan.preactivation[i]
                    extra["output_quantization"] = {
                        "num_bits": spec.num_bits,
                        "signed": spec.signed,
                        "range_mode": spec.range_mode,
                    }
                clones[id(layer)] = _clone(layer, QUANTIZED_LAYERS[type(layer)], extra)
            else:
                clones[id(layer)] = _clone(layer)
        new_layer = clones[id(layer)]

        specs = the_plan.inputs.get(i, [None] * len(c.inputs))
        shared_layer = None
        if the_plan.shared.get(i) and any(specs):
            first = next(s for s in specs if s)
            shared_layer = quantizer(first, f"{layer.name}_inputs_quantizer")
        new_in = []
        for pos, (t, spec) in enumerate(zip(c.inputs, specs)):
            if spec is None:
                new_in.append(tensors[t])
            elif shared_layer is not None:
                new_in.append(quantized(t, spec, "", group=("concat", i), layer=shared_layer))
            else:
                new_in.append(quantized(t, spec, f"{layer.name}_input_quantizer"))
        args, kwargs, _ = flat.args[i]
        leaves = tf.nest.flatten((args, kwargs))
        it = iter(new_in)
        leaves = [next(it) if _is_keras_tensor(x) else x for x in leaves]
        args, kwargs = tf.nest.pack_sequence_as((args, kwargs), leaves)
        out = new_layer(*args, **kwargs)
        for t, y in zip(c.outputs, tf.nest.flatten(out)):
            tensors[t] = y
            spec = the_plan.outputs.get(t)
            if spec is not None:
                # Quantized at the producer (onnxruntime's output Q): every consumer
                # then sees the quantized tensor.
                tensors[t] = quantized(t, spec, f"{layer.name}_output_quantizer")

    outputs = [tensors[flat.tid(x)] for x in flat.outputs]
    struct = model._outputs_struct if hasattr(model, "_outputs_struct") else model.outputs
    try:
        outputs = tf.nest.pack_sequence_as(struct, outputs)
    except (TypeError, ValueError):
        pass
    if len(new_inputs) == 1:
        new_inputs = new_inputs[0]
    qmodel = keras.Model(new_inputs, outputs, name=model.name)

    # Weights: each clone gets its original's values; kernel ranges from the kernels.
    done = set()
    for c in graph.calls:
        if id(c.layer) in done:
            continue
        done.add(id(c.layer))
        src, dst = c.layer, clones[id(c.layer)]
        own = src.weights
        if own:
            if len(dst.weights) < len(own):
                raise RuntimeError(f"layer {src.name!r}: its quantized copy has fewer weights")
            for a, b in zip(own, dst.weights[: len(own)]):
                if tuple(a.shape) != tuple(b.shape):
                    raise RuntimeError(f"layer {src.name!r}: weight {a.name} does not match its copy's")
                b.assign(a)
        if isinstance(dst, WRAPPER_CLASSES):
            dst.refresh_weight_ranges()
    qmodel.tf_qdq_recipe = rec.name
    return qmodel


def quantizers(qmodel: Any, kind: str = "activation") -> List[QuantizeDequantize]:
    """The QuantizeDequantize layers of a quantized model.

    kind: "activation" (the quantizers of tensors: inserted layers and the middle
    tensor of quantized SeparableConv layers) or "weight" (kernel quantizers)."""
    if kind not in ("activation", "weight"):
        raise ValueError(f"kind must be 'activation' or 'weight', got {kind!r}")
    found: List[QuantizeDequantize] = []
    seen = set()

    def walk(m):
        for layer in m.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.Model):
                walk(layer)
            elif isinstance(layer, QuantizeDequantize):
                if kind == "activation":
                    found.append(layer)
            elif isinstance(layer, WRAPPER_CLASSES):
                for attr in ("kernel_quantizer", "depthwise_kernel_quantizer", "pointwise_kernel_quantizer"):
                    q = getattr(layer, attr, None)
                    if q is not None and kind == "weight":
                        found.append(q)
                for attr in ("depthwise_output_quantizer", "output_quantizer"):
                    q = getattr(layer, attr, None)
                    if q is not None and kind == "activation":
                        found.append(q)

    walk(qmodel)
    return found


__all__ = ["quantize_model", "quantizers", "OVERRIDE_KEYS"]
