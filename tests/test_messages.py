"""The kernels' validation messages (docs/semantics.md#validation), compared with tf.raw_ops:
each plugin error starts with TensorFlow's text for the same input. The inputs that abort
TensorFlow are in test_bad_inputs.py."""

import re

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import PLUGIN_OPS, assert_same_bits, tf_number_text

import tf_qdq

F32 = np.float32
R = tf_qdq.raw_ops


def _core(msg):
    """The message without TensorFlow's `{{function_node ...}}` prefix and the
    ` [Op:...]` suffix that names the op."""
    msg = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", msg)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", msg, flags=re.S)


def _error(fn, **kw):
    try:
        fn(**kw)
    except Exception as e:  # noqa: BLE001 - compared by type below
        return e
    raise AssertionError("no error raised")


x1 = np.ones(3, F32)
x2 = np.ones((3, 2), F32)
z2, o2, o3 = np.zeros(2, F32), np.ones(2, F32), np.ones(3, F32)

# (id, plugin op, built-in op, kwargs, expected message)
VALIDATION = [
    (
        "V2-num_bits-62-signed",
        "V2",
        "QuantizeAndDequantizeV2",
        dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=62),
        "num_bits is out of range: 62 with signed_input_ 1",
    ),
    (
        "V2-num_bits-63-unsigned",
        "V2",
        "QuantizeAndDequantizeV2",
        dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=63, signed_input=False),
        "num_bits is out of range: 63 with signed_input_ 0",
    ),
    (
        "V2-num_bits-2^30",
        "V2",
        "QuantizeAndDequantizeV2",
        dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=2**30),
        "num_bits is out of range: 1073741824 with signed_input_ 1",
    ),
    (
        "V4-num_bits-0",
        "V4",
        "QuantizeAndDequantizeV4",
        dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=0),
        "num_bits is out of range: 0 with signed_input_ 1",
    ),
    (
        "V3-num_bits-62",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=62),
        "num_bits is out of range: 62 with `signed_input_` 1",
    ),
    (
        "V3-num_bits-0-unsigned",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=0, signed_input=False),
        "num_bits is out of range: 0 with `signed_input_` 0",
    ),
    (
        "V3-num_bits-negative",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=-1),
        "num_bits is out of range: -1 with `signed_input_` 1",
    ),
    (
        "V2-invalid-range-%g",
        "V2",
        "QuantizeAndDequantizeV2",
        dict(input=x1, input_min=F32(1.23456789e20), input_max=F32(1), range_given=True),
        f"Invalid range: input_min {tf_number_text(1.23456789e20)} > input_max 1",
    ),
    (
        "V4-invalid-range",
        "V4",
        "QuantizeAndDequantizeV4",
        dict(input=x1, input_min=F32(2), input_max=F32(1), range_given=True),
        "Invalid range: input_min 2 > input_max 1",
    ),
    (
        "V4-invalid-range-float64-tiny",
        "V4",
        "QuantizeAndDequantizeV4",
        dict(input=np.ones(3), input_min=np.float64(3e-300), input_max=np.float64(1e-300), range_given=True),
        "Invalid range: input_min 3e-300 > input_max 1e-300",
    ),
    (
        "V4-invalid-range-inf",
        "V4",
        "QuantizeAndDequantizeV4",
        dict(input=x1, input_min=F32(np.inf), input_max=F32(-np.inf), range_given=True),
        "Invalid range: input_min inf > input_max -inf",
    ),
    (
        "V2-invalid-range-nan",
        "V2",
        "QuantizeAndDequantizeV2",
        dict(input=x1, input_min=F32(np.nan), input_max=F32(1), range_given=True),
        "Invalid range: input_min nan > input_max 1",
    ),
    (
        "V3-invalid-range",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x1, input_min=F32(2), input_max=F32(-0.5), num_bits=8),
        "Invalid range: input_min 2 > input_max -0.5",
    ),
    (
        "V2-range-not-scalar",
        "V2",
        "QuantizeAndDequantizeV2",
        dict(input=x1, input_min=z2, input_max=o2, range_given=True),
        "input_min must be a scalar.",
    ),
    (
        "V2-axis-minus-2",
        "V2",
        "QuantizeAndDequantizeV2",
        dict(input=x2, input_min=z2, input_max=o2, axis=-2),
        "Axis must be at least -1. Found -2",
    ),
    (
        "V4-axis-eq-rank",
        "V4",
        "QuantizeAndDequantizeV4",
        dict(input=x2, input_min=z2, input_max=o2, axis=2),
        "Shape must be at least rank 3 but is rank 2",
    ),
    (
        "V3-per-channel-wrong-size",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x2, input_min=np.zeros(3, F32), input_max=o3, num_bits=8, axis=1),
        "input_min_tensor has incorrect size, was 3 expected 2 to match dim 1 of the input [3]",
    ),
    (
        "V3-axis-too-large",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x2, input_min=z2, input_max=o2, num_bits=8, axis=2),
        "Axis requested is larger than input dimensions. Axis: 2 Input Dimensions: 2",
    ),
    (
        "V3-axis-below-minus-dims",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x2, input_min=F32(0), input_max=F32(1), num_bits=8, axis=-3),
        "Axis requested is larger than input dimensions. Axis: -3 Input Dimensions: 2",
    ),
    (
        "V3-num_bits-not-scalar",
        "V3",
        "QuantizeAndDequantizeV3",
        dict(input=x2, input_min=F32(0), input_max=F32(1), num_bits=np.array([8, 8], np.int32)),
        "Invalid shape. The `num_bits` tensor should be a scalar. Got dimensions: 1",
    ),
    (
        "V4Grad-size-mismatch",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=np.ones(4, F32), input=x1, input_min=F32(0), input_max=F32(1)),
        "gradient and input must be the same size",
    ),
    (
        "V4Grad-axis-eq-rank",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=x2, input=x2, input_min=z2, input_max=o2, axis=2),
        "Axis should be -1 or 0 or a positive value less than 2but given axis value was 2",
    ),
    (
        "V4Grad-axis-minus-2",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=x2, input=x2, input_min=z2, input_max=o2, axis=-2),
        "Axis must be at least -1. Found -2",
    ),
    (
        "V4Grad-min-rank-2",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=x2, input=x2, input_min=np.zeros((1, 2), F32), input_max=np.ones((1, 2), F32), axis=1),
        "Input min tensor must have dimension 0 or 1. Received 2.",
    ),
    (
        "V4Grad-per-tensor-min-not-scalar",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=x2, input=x2, input_min=z2, input_max=o2),
        "input_min must be a scalar if axis is unspecified",
    ),
    (
        "V4Grad-empty-min-scalar-max",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=x2, input=x2, input_min=np.zeros(0, F32), input_max=F32(1)),
        "input_min must be a scalar if axis is unspecified",
    ),
    (
        "V4Grad-min-wrong-size",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=x2, input=x2, input_min=np.zeros(3, F32), input_max=o3, axis=1),
        "min has incorrect size, expected 2 was 3",
    ),
    (
        "V4Grad-max-wrong-size",
        "V4Grad",
        "QuantizeAndDequantizeV4Grad",
        dict(gradients=x2, input=x2, input_min=z2, input_max=o3, axis=1),
        "max has incorrect size, expected 2 was 3",
    ),
]


@pytest.mark.parametrize("case", VALIDATION, ids=[c[0] for c in VALIDATION])
def test_kernel_validation_message_matches_tensorflow(case):
    _, op, builtin, kw, expected = case
    ours = _error(PLUGIN_OPS[op], **kw)
    theirs = _error(getattr(tf.raw_ops, builtin), **kw)
    assert isinstance(theirs, tf.errors.InvalidArgumentError), theirs  # the oracle
    assert _core(str(theirs)) == expected  # pins the oracle's text
    assert type(ours) is type(theirs), ours
    assert _core(str(ours)) == _core(str(theirs))
    assert f"[Op:TfQdq>{builtin}]" in str(ours)


def test_v2_per_channel_wrong_size_message_is_v3s():
    # TensorFlow's V2 rejects every per-channel given range (6.1); the plugin
    # checks the sizes with the message of TensorFlow's V3.
    kw = dict(input=x2, input_min=np.zeros(3, F32), input_max=o3, axis=1)
    theirs = _error(tf.raw_ops.QuantizeAndDequantizeV3, num_bits=8, **kw)
    for op in ("V2", "V4"):
        ours = _error(PLUGIN_OPS[op], range_given=True, **kw)
        assert isinstance(ours, tf.errors.InvalidArgumentError)
        assert (
            _core(str(ours))
            == _core(str(theirs))
            == "input_min_tensor has incorrect size, was 3 expected 2 to match dim 1 of the input [3]"
        )


@pytest.mark.parametrize("op", ["V2", "V3", "V4"])
def test_per_channel_min_greater_than_max_is_invalid_argument(op):
    # deliberate difference 6.8 (TensorFlow's V3 returns +-inf garbage)
    kw = dict(input=x2, input_min=np.array([0.0, 2.0], F32), input_max=o2, axis=1)
    kw.update(num_bits=8) if op == "V3" else kw.update(range_given=True)
    e = _error(PLUGIN_OPS[op], **kw)
    assert isinstance(e, tf.errors.InvalidArgumentError)
    assert "Invalid range: input_min 2 > input_max 1" in str(e)


@pytest.mark.parametrize(
    "kw,expected",
    [
        (dict(num_bits=0), "num_bits is out of range: 0 with signed_input_ 1"),
        (dict(num_bits=62), "num_bits is out of range: 62 with signed_input_ 1"),
        (dict(num_bits=63, signed_input=False), "num_bits is out of range: 63 with signed_input_ 0"),
        (dict(range_given=True, input_min=2.0, input_max=1.0), "Invalid range: input_min 2 > input_max 1"),
        (
            dict(range_given=True, input_min=1.23456789e20, input_max=1.0),
            f"Invalid range: input_min {tf_number_text(1.23456789e20)} > input_max 1",
        ),
    ],
)
def test_v1_validation_messages(kw, expected):
    # TensorFlow's V1 cannot run at all (removed at GraphDef version 22)
    e = _error(R.QuantizeAndDequantize, input=x1, **kw)
    assert isinstance(e, tf.errors.InvalidArgumentError)
    assert _core(str(e)) == expected


def test_v1_range_attrs_ignored_without_range_given():
    out = R.QuantizeAndDequantize(input=np.array([-1.0, 0.5, 2.0], F32), input_min=2.0, input_max=1.0)
    ref = tf.raw_ops.QuantizeAndDequantizeV2(input=np.array([-1.0, 0.5, 2.0], F32), input_min=F32(0), input_max=F32(0))
    assert_same_bits(out, ref, "V1 computed range")
