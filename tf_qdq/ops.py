"""Python API mirroring tf.quantization.quantize_and_dequantize(_v2), and the
gradients of every op (docs/semantics.md#python-api)."""
import operator

import numpy as np
import tensorflow as tf

from tf_qdq import _loader

_lib = _loader.load()

FLOAT_DTYPES = (tf.bfloat16, tf.float16, tf.float32, tf.float64)


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


def _normalize_axis(axis, input):
    """None -> -1 (per-tensor); a negative axis counts from the end, as in TensorFlow."""
    if axis is None:
        return -1
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"tf_qdq: axis must be None or an integer, got {axis!r}") from None
    if not -2**31 <= axis < 2**31:
        # The attr is an int32 in the kernels; without this check a Python int
        # beyond int64 fails deep in TensorFlow with "OverflowError: int too big".
        raise ValueError(f"tf_qdq: axis {axis} is out of range: it must fit in int32 "
                         "(and be less than the input's rank).")
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
    input = _as_input(input)
    return (
        input,
        _as_range(input_min, input.dtype, "input_min"),
        _as_range(input_max, input.dtype, "input_max"),
        _normalize_axis(axis, input),
    )


def quantize_and_dequantize(input, input_min, input_max, signed_input=True, num_bits=8,
                            range_given=False, round_mode="HALF_TO_EVEN", name=None,
                            narrow_range=False, axis=None):
    """Quantizes then dequantizes a tensor; the gradient is straight-through.

    Mirrors `tf.quantization.quantize_and_dequantize` (runs the V2 op). `axis=None`
    is per-tensor; an integer axis (negative counts from the end) is per-channel.
    Unlike TensorFlow (>= 2.16), a per-channel range may be given.
    """
    input, input_min, input_max, axis = _prepare(input, input_min, input_max, axis)
    return _lib.tf_qdq_quantize_and_dequantize_v2(
        input, input_min, input_max, signed_input=signed_input, num_bits=num_bits,
        range_given=range_given, round_mode=round_mode, narrow_range=narrow_range,
        axis=axis, name=name)


def quantize_and_dequantize_v2(input, input_min, input_max, signed_input=True, num_bits=8,
                               range_given=False, round_mode="HALF_TO_EVEN", name=None,
                               narrow_range=False, axis=None):
    """Quantizes then dequantizes a tensor; the gradient is zero outside the range.

    Mirrors `tf.quantization.quantize_and_dequantize_v2` (runs the V4 op). With
    `range_given=False` the gradient masks against the range computed from the
    data, so it passes through (TensorFlow masks against the unused
    input_min/input_max and returns zeros).
    """
    input, input_min, input_max, axis = _prepare(input, input_min, input_max, axis)
    return _lib.tf_qdq_quantize_and_dequantize_v4(
        input, input_min, input_max, signed_input=signed_input, num_bits=num_bits,
        range_given=range_given, round_mode=round_mode, narrow_range=narrow_range,
        axis=axis, name=name)


# ----------------------------------------------------------------------------- gradients


def _v4_grad_op(gradients, input, input_min, input_max, axis):
    return _lib.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients, input, input_min, input_max, axis=axis)


@tf.RegisterGradient("TfQdq>QuantizeAndDequantize")
def _qdq_v1_grad(op, grad):
    return grad


@tf.RegisterGradient("TfQdq>QuantizeAndDequantizeV2")
def _qdq_v2_grad(op, grad):
    return [grad, None, None]


@tf.RegisterGradient("TfQdq>QuantizeAndDequantizeV3")
def _qdq_v3_grad(op, grad):
    return [grad, None, None, None]


@tf.RegisterGradient("TfQdq>QuantizeAndDequantizeV4")
def _qdq_v4_grad(op, grad):
    x, input_min, input_max = op.inputs
    axis = op.get_attr("axis")
    if op.get_attr("range_given"):
        return list(_v4_grad_op(grad, x, input_min, input_max, axis))
    # The range was computed from the data (ignoring NaN), so every non-NaN
    # element lies inside it: masking against [-inf, +inf] is bit-identical to
    # masking against the data range, without recomputing it.
    shape = [] if axis == -1 else tf.shape(x)[axis:axis + 1]
    lo = tf.fill(shape, tf.constant(-np.inf, x.dtype))
    hi = tf.fill(shape, tf.constant(np.inf, x.dtype))
    dx = _v4_grad_op(grad, x, lo, hi, axis)[0]
    return [dx, tf.zeros_like(input_min), tf.zeros_like(input_max)]


@tf.RegisterGradient("TfQdq>QuantizeAndDequantizeV4Grad")
def _qdq_v4_grad_grad(op, d_input_backprop, d_min_backprop, d_max_backprop):
    # input_backprop = gradients * mask(input): linear in `gradients`, piecewise
    # constant in the rest.
    gradients, x, input_min, input_max = op.inputs
    dg = None
    if d_input_backprop is not None:
        dg = _v4_grad_op(d_input_backprop, x, input_min, input_max, op.get_attr("axis"))[0]
    return [dg, tf.zeros_like(x), tf.zeros_like(input_min), tf.zeros_like(input_max)]
