"""Python API mirroring tf.quantization.quantize_and_dequantize(_v2), and the
gradients of every op (docs/semantics.md#python-api)."""

import math
import operator
from typing import Any, Optional

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context as _context
from tensorflow.python.framework import ops as _tf_ops

from tf_qdq import _loader, _op_names

_lib = _loader.load()
# The library's positional op functions by short name ("V2": tf_qdq_quantize_and_dequantize_v2).
_OPS = {v: getattr(_lib, _op_names.function_name(op)) for v, op in _op_names.PLUGIN_BY_VERSION.items()}
_qdq_v2_op, _qdq_v4_op, _qdq_v4_grad_op = _OPS["V2"], _OPS["V4"], _OPS["V4Grad"]

FLOAT_DTYPES = (tf.bfloat16, tf.float16, tf.float32, tf.float64)

# The eager fast path: the checks below on EagerTensors by type and dtype enum (cheaper than
# tf.convert_to_tensor and DType comparisons), and Python/NumPy range values converted once
# per (dtype, value) and reused. Everything else takes the general path, which raises the errors.
_EagerTensor = _tf_ops.EagerTensor
_executing_eagerly = _context.executing_eagerly
_FLOAT_ENUMS = frozenset(d.as_datatype_enum for d in FLOAT_DTYPES)
_DTYPE_OF_ENUM = {d.as_datatype_enum: d for d in FLOAT_DTYPES}
_RANGE_CACHE = {}
_RANGE_CACHE_MAX = 1024
_SCALAR_TYPES = frozenset([float, int, np.float16, np.float32, np.float64, tf.bfloat16.as_numpy_dtype])
_AXIS_LIMIT = 2**31


def _as_input(input):
    input = tf.convert_to_tensor(input)
    if input.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"tf_qdq: input must be bfloat16, float16, float32 or float64, got {input.dtype.name}. "
            "Cast it first, e.g. tf.cast(x, tf.float32)."
        )
    return input


def _as_range(value, dtype, name):
    """input_min/input_max in the input's dtype: tensors must match it, Python and
    NumPy values are converted."""
    if tf.is_tensor(value):
        if value.dtype != dtype:
            raise TypeError(
                f"tf_qdq: {name} has dtype {value.dtype.name} but input has {dtype.name}; "
                f"they must match (use tf.cast({name}, {dtype.name}))."
            )
        return value
    return tf.convert_to_tensor(np.asarray(value, dtype=dtype.as_numpy_dtype))


def _eager_range(value, enum, name):
    """_as_range for an eager call: a matching EagerTensor as is; a Python or NumPy scalar as the
    host tensor made (once) by the general path, cached by dtype and value. The sign of zero is
    part of the key (0.0 == -0.0 in Python); NaN never equals itself, so it is never reused."""
    cls = type(value)
    if cls is _EagerTensor and value._datatype_enum() == enum:
        return value
    if cls in _SCALAR_TYPES:
        key = (enum, cls, value) if value else (enum, cls, value, math.copysign(1.0, value))
        t = _RANGE_CACHE.get(key)
        if t is None:
            with tf.device("/device:CPU:0"):  # input_min/input_max are host memory in every kernel
                t = _as_range(value, _DTYPE_OF_ENUM[enum], name)
            if len(_RANGE_CACHE) >= _RANGE_CACHE_MAX:
                _RANGE_CACHE.clear()
            _RANGE_CACHE[key] = t
        return t
    return _as_range(value, _DTYPE_OF_ENUM[enum], name)


def _normalize_axis(axis, input):
    """None -> -1 (per-tensor); a negative axis counts from the end, as in TensorFlow."""
    if axis is None:
        return -1
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"tf_qdq: axis must be None or an integer, got {axis!r}") from None
    if not -(2**31) <= axis < 2**31:
        # The attr is an int32 in the kernels; without this check a Python int
        # beyond int64 fails deep in TensorFlow with "OverflowError: int too big".
        raise ValueError(
            f"tf_qdq: axis {axis} is out of range: it must fit in int32 (and be less than the input's rank)."
        )
    if axis >= 0:
        return axis
    rank = input.shape.rank
    if rank is None:
        raise ValueError("input should have known rank to use negative axis.")
    if axis < -rank:
        raise ValueError(
            f"tf_qdq: axis {axis} is out of range for an input of rank {rank}: use "
            f"{-rank} <= axis < {rank} for per-channel, or axis=None for per-tensor."
        )
    return axis + rank


def _prepare(input, input_min, input_max, axis):
    """(input tensor, input_min, input_max, axis for the op) or the wrapper's TypeError/ValueError:
    input first, then input_min, input_max, axis."""
    if type(input) is _EagerTensor and _executing_eagerly():
        enum = input._datatype_enum()
        if enum in _FLOAT_ENUMS:
            input_min = _eager_range(input_min, enum, "input_min")
            input_max = _eager_range(input_max, enum, "input_max")
            if axis is None:
                axis = -1
            elif type(axis) is not int or not 0 <= axis < _AXIS_LIMIT:
                axis = _normalize_axis(axis, input)
            return input, input_min, input_max, axis
    input = _as_input(input)
    if type(input) is _EagerTensor and _executing_eagerly():
        enum = input._datatype_enum()
        return (
            input,
            _eager_range(input_min, enum, "input_min"),
            _eager_range(input_max, enum, "input_max"),
            _normalize_axis(axis, input),
        )
    return (
        input,
        _as_range(input_min, input.dtype, "input_min"),
        _as_range(input_max, input.dtype, "input_max"),
        _normalize_axis(axis, input),
    )


def quantize_and_dequantize(
    input: Any,
    input_min: Any,
    input_max: Any,
    signed_input: bool = True,
    num_bits: int = 8,
    range_given: bool = False,
    round_mode: str = "HALF_TO_EVEN",
    name: Optional[str] = None,
    narrow_range: bool = False,
    axis: Optional[int] = None,
) -> tf.Tensor:
    """Quantizes then dequantizes a tensor; the gradient is straight-through.

    Mirrors `tf.quantization.quantize_and_dequantize` (runs the V2 op). `axis=None`
    is per-tensor; an integer axis (negative counts from the end) is per-channel.
    Unlike TensorFlow (>= 2.16), a per-channel range may be given.
    """
    input, input_min, input_max, axis = _prepare(input, input_min, input_max, axis)
    return _qdq_v2_op(
        input,
        input_min,
        input_max,
        signed_input=signed_input,
        num_bits=num_bits,
        range_given=range_given,
        round_mode=round_mode,
        narrow_range=narrow_range,
        axis=axis,
        name=name,
    )


def quantize_and_dequantize_v2(
    input: Any,
    input_min: Any,
    input_max: Any,
    signed_input: bool = True,
    num_bits: int = 8,
    range_given: bool = False,
    round_mode: str = "HALF_TO_EVEN",
    name: Optional[str] = None,
    narrow_range: bool = False,
    axis: Optional[int] = None,
) -> tf.Tensor:
    """Quantizes then dequantizes a tensor; the gradient is zero outside the range.

    Mirrors `tf.quantization.quantize_and_dequantize_v2` (runs the V4 op). With
    `range_given=False` the gradient masks against the range computed from the
    data, so it passes through (TensorFlow masks against the unused
    input_min/input_max and returns zeros).
    """
    input, input_min, input_max, axis = _prepare(input, input_min, input_max, axis)
    return _qdq_v4_op(
        input,
        input_min,
        input_max,
        signed_input=signed_input,
        num_bits=num_bits,
        range_given=range_given,
        round_mode=round_mode,
        narrow_range=narrow_range,
        axis=axis,
        name=name,
    )


# ----------------------------------------------------------------------------- gradients


def _v4_grad_op(gradients, input, input_min, input_max, axis):
    return _qdq_v4_grad_op(gradients, input, input_min, input_max, axis=axis)


def _unbounded_range(x, axis):
    """[-inf, +inf] in x's dtype, a scalar per tensor or one value per channel, made on the host:
    V4Grad takes its bounds in host memory, so bounds made on a GPU would be copied back at
    every backward step. The depth comes from the static shape when known, else from tf.shape
    (whose output is host memory on every device), which stays outside the CPU scope: on the
    CPU it would copy x there."""
    depth = None
    if axis != -1:
        depth = x.shape[axis] if x.shape.rank is not None else None
        if depth is None:
            depth = tf.shape(x)[axis : axis + 1]
        else:
            depth = [depth]
    # Outside any colocation with the forward op (tf.gradients colocates gradients with it).
    with _tf_ops.colocate_with(None, ignore_existing=True), tf.device("/device:CPU:0"):
        inf = tf.constant(np.inf, x.dtype)
        minus_inf = tf.constant(-np.inf, x.dtype)
        if depth is None:
            return minus_inf, inf
        return tf.fill(depth, minus_inf), tf.fill(depth, inf)


@tf.RegisterGradient(_op_names.PLUGIN_BY_VERSION["V1"])
def _qdq_v1_grad(op, grad):
    return grad


@tf.RegisterGradient(_op_names.PLUGIN_BY_VERSION["V2"])
def _qdq_v2_grad(op, grad):
    return [grad, None, None]


@tf.RegisterGradient(_op_names.PLUGIN_BY_VERSION["V3"])
def _qdq_v3_grad(op, grad):
    return [grad, None, None, None]


@tf.RegisterGradient(_op_names.PLUGIN_BY_VERSION["V4"])
def _qdq_v4_grad(op, grad):
    x, input_min, input_max = op.inputs
    axis = op.get_attr("axis")
    if op.get_attr("range_given"):
        return list(_v4_grad_op(grad, x, input_min, input_max, axis))
    # The range was computed from the data (ignoring NaN), so every non-NaN
    # element lies inside it: masking against [-inf, +inf] is bit-identical to
    # masking against the data range, without recomputing it.
    lo, hi = _unbounded_range(x, axis)
    dx = _v4_grad_op(grad, x, lo, hi, axis)[0]
    return [dx, tf.zeros_like(input_min), tf.zeros_like(input_max)]


@tf.RegisterGradient(_op_names.PLUGIN_BY_VERSION["V4Grad"])
def _qdq_v4_grad_grad(op, d_input_backprop, d_min_backprop, d_max_backprop):
    # input_backprop = gradients * mask(input): linear in `gradients`, piecewise
    # constant in the rest.
    gradients, x, input_min, input_max = op.inputs
    dg = None
    if d_input_backprop is not None:
        dg = _v4_grad_op(d_input_backprop, x, input_min, input_max, op.get_attr("axis"))[0]
    return [dg, tf.zeros_like(x), tf.zeros_like(input_min), tf.zeros_like(input_max)]
