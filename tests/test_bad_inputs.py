"""docs/semantics.md#bad-inputs: every bad input gives a clean error with a useful message, in
eager mode, in `tf.function` with known shapes (where the shape functions see
it: ValueError at trace time) and with unknown shapes (the kernels see it:
InvalidArgumentError at run time), and never crashes the process.

Most of these inputs abort TensorFlow's own kernels (its security advisories for
this op family: axis out of range, axis < -1, INT32_MAX axes in shape functions,
non-scalar num_bits, wrong-rank min/max in V4Grad and V3, ...). So every call
runs in ONE child process per module (`child_main`, tests/children/bad_inputs.py, started by the
`plugin_results` fixture): a crash fails the tests of the cases it did not
finish, it does not kill pytest. A second child (`tf_results`) runs TensorFlow's
built-in ops on the cases where TensorFlow gives a clean error and the tests
check that our message starts with TensorFlow's text (docs/semantics.md#validation). The built-in op
is never called on an input that aborts TensorFlow.
"""

import json
import os
import re

import numpy as np
import pytest
from qdq_testing import RAW_NAMES, checkout_tools, child_env, op_kwargs, run_child, tf_number_text

HERE = os.path.dirname(os.path.abspath(__file__))
IAE, VE, TE, OK = "InvalidArgumentError", "ValueError", "TypeError", "ok"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def f32(v):
    return np.asarray(v, np.float32)


X = f32(np.arange(6).reshape(2, 3) - 2.5)  # rank 2, depth 3 along axis 1
X4 = f32(np.linspace(-1, 1, 120).reshape(2, 3, 4, 5))
S0, S1, M1 = f32(0), f32(1), f32(-1)
LO3, HI3 = f32([-1, -1, -1]), f32([1, 1, 1])
SPECIALS = f32([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -1e-40, 1.0, -1.0, 0.5, 3e38, -2.5])


def zeros(shape, dtype="float32"):
    """A tensor made in the child with tf.zeros (NumPy cannot make [0, 2^62, 2^62])."""
    return {"zeros": list(shape), "dtype": dtype}


CASES = {}


def case(cid, item, op, kw, eager, graph=None, tf=(), unknown=True, ref=None):
    """One checklist case.

    kw: the op's keyword arguments; NumPy arrays (and `zeros(...)`) are tensor
    inputs, everything else attrs. eager/graph: OK or (exception name, regex).
    graph=None: the shape function accepts it and the kernel rejects it at run
    time exactly as in eager mode. tf: modes ("eager", "graph") in which
    TensorFlow's built-in op gives a clean error whose text ours starts with.
    ref: for OK cases, "tf" (bit-identical with tf_qdq.reference.builtin),
    "numpy" (with tf_qdq.reference.numpy_qdq), a dict of keyword overrides (the
    same result as with them), or None (just shape and dtype).
    unknown: in tf.function with unknown shapes, the eager outcome (True), that
    expectation (shape-independent shape-function errors), or not run (False).
    """
    assert cid not in CASES, cid
    if graph is None:
        graph = eager
    if unknown is True:
        unknown = eager
    CASES[cid] = dict(
        item=item,
        op=op,
        kw=kw,
        eager=eager,
        graph=graph,
        tf=tuple(tf),
        unknown=unknown if op in RAW_NAMES else False,
        ref=ref,
    )


def lit(s):
    return re.escape(s)


def kw_for(op, x=X, mn=M1, mx=S1, nb=8, grads=None, **attrs):
    """op_kwargs with this file's defaults: num_bits is V3's input `nb` unless attrs give num_bits,
    which is then passed as given (also to V3, whatever its value)."""
    given = {"num_bits": attrs.pop("num_bits")} if "num_bits" in attrs else {}
    kw = op_kwargs(op, x, mn, mx, num_bits=nb if op == "V3" and not given else None, gradients=grads, **attrs)
    kw.update(given)
    return kw


# ---------------------------------------------------------------- 7.1 axis
for op in ("V2", "V4", "V3", "V4Grad"):
    for axis in (-2, -4, -100, INT32_MIN, INT32_MAX, 2, 3, 10):
        if axis < -1:
            graph = (VE, lit(f"axis should be at least -1, got {axis}"))
        elif axis == INT32_MAX:
            graph = (VE, lit("Axis cannot be >= kint32max value, got 2147483647"))
        else:
            graph = (VE, lit(f"Shape must be at least rank {axis + 1} but is rank 2"))
        if op in ("V2", "V4"):
            eager = (
                lit(f"Axis must be at least -1. Found {axis}")
                if axis < -1
                else lit(f"Shape must be at least rank {axis + 1} but is rank 2")
            )
            tf = ("eager", "graph") if axis != INT32_MAX else ("graph",)  # TF prints rank -2147483648
        elif op == "V3":
            eager = (
                r"Axis must be -1 \(per-tensor\) or in \[0, 2\) \(per-channel\), got -2\. .*use 0"
                if axis == -2
                else lit(f"Axis requested is larger than input dimensions. Axis: {axis} Input Dimensions: 2")
            )
            tf = ("graph",) if axis == -2 else ("eager", "graph")  # V3 axis -2 aborts TensorFlow
        else:
            eager = (
                lit(f"Axis must be at least -1. Found {axis}")
                if axis < -1
                else lit(f"Axis should be -1 or 0 or a positive value less than 2but given axis value was {axis}")
            )
            tf = ("eager", "graph")
        # axis < -1 and INT32_MAX are caught by the shape function whatever the shapes
        unknown = graph if axis < -1 or axis == INT32_MAX else True
        case(f"axis-{op}-{axis}", "7.1", op, kw_for(op, mn=LO3, mx=HI3, axis=axis), (IAE, eager), graph, tf, unknown)

for op in ("V2", "V3", "V4Grad"):
    for axis in (2**31, INT32_MIN - 1):
        msg = lit(f"Attr axis has value {axis} out of range for an int32")
        case(
            f"axis-int64-{op}-{axis}",
            "7.1",
            op,
            kw_for(op, mn=LO3, mx=HI3, axis=axis),
            (IAE, msg),
            (VE, msg),
            tf=("eager", "graph"),
            unknown=(VE, msg),
        )

for op in ("V2", "V4", "V3", "V4Grad"):  # axis >= 0 on a scalar
    eager = {
        "V3": lit("Axis requested is larger than input dimensions. Axis: 0 Input Dimensions: 0"),
        "V4Grad": lit("Axis should be -1 or 0 or a positive value less than 0but given axis value was 0"),
    }.get(op, lit("Shape must be at least rank 1 but is rank 0"))
    case(
        f"axis-scalar-input-{op}",
        "7.1",
        op,
        kw_for(op, x=S1, mn=f32([-1]), mx=f32([1]), axis=0),
        (IAE, eager),
        (VE, lit("Shape must be at least rank 1 but is rank 0")),
        tf=("eager", "graph"),
    )

for axis in (-2, -3, -4):  # V3 with axis in [-dims, -2]: aborts TensorFlow 2.21
    case(
        f"axis-V3-rank4-{axis}",
        "7.1",
        "V3",
        kw_for("V3", x=X4, mn=f32(np.zeros(5)), mx=f32(np.ones(5)), axis=axis),
        (IAE, rf"Axis must be -1 \(per-tensor\) or in \[0, 4\) \(per-channel\), got {axis}\. .*use {axis + 4}\."),
        (VE, lit(f"axis should be at least -1, got {axis}")),
        tf=("graph",),
        unknown=(VE, lit(f"axis should be at least -1, got {axis}")),
    )
case(
    "axis-V3-rank4--5",
    "7.1",
    "V3",
    kw_for("V3", x=X4, mn=f32(np.zeros(5)), mx=f32(np.ones(5)), axis=-5),
    (IAE, lit("Axis requested is larger than input dimensions. Axis: -5 Input Dimensions: 4")),
    (VE, lit("axis should be at least -1, got -5")),
    tf=("eager", "graph"),
    unknown=(VE, lit("axis should be at least -1, got -5")),
)
for rg in (True, False):  # V3 with a scalar input (axis -1 is not in [-0, 0))
    case(
        f"axis-V3-scalar-input-rg{int(rg)}",
        "7.1",
        "V3",
        kw_for("V3", x=S1, mn=M1, mx=S1, range_given=rg),
        (IAE, lit("Axis requested is larger than input dimensions. Axis: -1 Input Dimensions: 0")),
        tf=("eager",),
    )

# the Python wrappers: a negative axis counts from the end
case(
    "axis-wrapper-below-rank",
    "7.1",
    "qdq",
    kw_for("V2", mn=LO3, mx=HI3, axis=-3),
    (VE, lit("axis -3 is out of range for an input of rank 2")),
)
case(
    "axis-wrapper-scalar",
    "7.1",
    "qdq_v2",
    kw_for("V4", x=S1, mn=f32([-1]), mx=f32([1]), axis=-1),
    (VE, lit("axis -1 is out of range for an input of rank 0")),
)
case(
    "axis-wrapper-rank",
    "7.1",
    "qdq",
    kw_for("V2", mn=LO3, mx=HI3, axis=2),
    (IAE, lit("Shape must be at least rank 3 but is rank 2")),
    (VE, lit("Shape must be at least rank 3 but is rank 2")),
)
case("axis-wrapper-2**70", "7.1", "qdq_v2", kw_for("V4", mn=LO3, mx=HI3, axis=2**70), (VE, "must fit in int32"))
case(
    "axis-wrapper-float", "7.1", "qdq", kw_for("V2", mn=LO3, mx=HI3, axis=1.5), (TE, "axis must be None or an integer")
)
case(
    "axis-wrapper-negative-ok",
    "7.1",
    "qdq_v2",
    kw_for("V4", mn=LO3, mx=HI3, axis=-1, range_given=True),
    OK,
    ref={"axis": 1},
)

# ---------------------------------------------------------------- 7.2 input_min / input_max
for op in ("V2", "V4", "V3"):
    for shape in ((0,), (1,), (2,), (12,), (1, 1), (2, 3)):
        bad = f32(np.zeros(shape) - 1)
        rank = len(shape)
        name = "x".join(map(str, shape))
        tf = ("eager", "graph") if op != "V3" else ("graph",)  # V3: aborts, or accepts [1]
        case(
            f"minmax-per-tensor-min-{op}-{name}",
            "7.2",
            op,
            kw_for(op, mn=bad, mx=f32(np.ones(shape)), range_given=True),
            (IAE, lit("input_min must be a scalar.")),  # TensorFlow's text
            (VE, lit(f"Shape must be rank 0 but is rank {rank}")),
            tf,
        )
    case(
        f"minmax-per-tensor-max-{op}",
        "7.2",
        op,
        kw_for(op, mn=M1, mx=f32([1, 1]), range_given=True),
        (IAE, lit("input_max must be a scalar.")),
        (VE, lit("Shapes must be equal rank, but are 1 and 0")),
        ("eager", "graph") if op != "V3" else ("graph",),
    )
    # range_given=False: the kernel ignores min/max (as TensorFlow's does); the shape function does not
    case(
        f"minmax-per-tensor-ignored-{op}",
        "7.2",
        op,
        kw_for(op, mn=f32([5, 6]), mx=f32([7, 8]), range_given=False),
        OK,
        (VE, lit("Shape must be rank 0 but is rank 1")),
        ("graph",),
        ref={"input_min": S0, "input_max": S0},
    )
    # per channel along axis 1 (depth 3)
    for label, mn, mx, eager, graph in [
        (
            "min-scalar",
            M1,
            HI3,
            lit("Shape must be rank 1 for input_min_tensor when the axis is specified"),
            lit("Shape must be rank 1 but is rank 0"),
        ),
        (
            "min-short",
            f32([-1, -1]),
            f32([1, 1]),
            lit("input_min_tensor has incorrect size, was 2 expected 3 to match dim 1 of the input"),
            lit("Dimensions must be equal, but are 2 and 3"),
        ),
        (
            "min-empty",
            f32([]),
            f32([]),
            lit("input_min_tensor has incorrect size, was 0 expected 3 to match dim 1 of the input"),
            lit("Dimensions must be equal, but are 0 and 3"),
        ),
        (
            "min-rank2",
            f32([[-1, -1, -1]]),
            f32([[1, 1, 1]]),
            lit("Shape must be rank 1 for input_min_tensor when the axis is specified"),
            lit("Shape must be rank 1 but is rank 2"),
        ),
        (
            "max-long",
            LO3,
            f32([1, 1, 1, 1]),
            lit("input_max_tensor has incorrect size, was 4 expected 3 to match dim 1 of the input"),
            "must be equal, but are 4 and 3",
        ),
        (
            "max-scalar",
            LO3,
            S1,
            lit("Shape must be rank 1 for input_max_tensor when the axis is specified"),
            lit("Shapes must be equal rank, but are 0 and 1"),
        ),
    ]:
        case(
            f"minmax-per-channel-{label}-{op}",
            "7.2",
            op,
            kw_for(op, mn=mn, mx=mx, axis=1, range_given=True),
            (IAE, eager),
            (VE, graph),
            ("eager", "graph") if op == "V3" else ("graph",),
        )
    case(
        f"minmax-per-channel-ignored-{op}",
        "7.2",
        op,
        kw_for(op, mn=M1, mx=S1, axis=1, range_given=False),
        OK,
        (VE, lit("Shape must be rank 1 but is rank 0")),
        ("graph",),
        ref={"input_min": f32([0, 0, 0]), "input_max": f32([0, 0, 0])},
    )

E03 = zeros([0, 3])
case(
    "minmax-V4Grad-empty-min-scalar-max",
    "7.2",
    "V4Grad",
    kw_for("V4Grad", mn=f32([]), mx=S1),
    (IAE, lit("input_min must be a scalar if axis is unspecified")),
    (VE, lit("Shape must be rank 0 but is rank 1")),
    ("eager", "graph"),
)
case(
    "minmax-V4Grad-empty-min-scalar-max-axis0",
    "7.2",
    "V4Grad",
    kw_for("V4Grad", x=E03, grads=E03, mn=f32([]), mx=S1, axis=0),
    (IAE, lit("Shape must be rank 1 for input_max_tensor when the axis is specified")),
    (VE, lit("Shapes must be equal rank, but are 0 and 1")),
    ("eager", "graph"),
)
case(
    "minmax-V4Grad-per-tensor-min2",
    "7.2",
    "V4Grad",
    kw_for("V4Grad", mn=f32([-1, -1]), mx=S1),
    (IAE, lit("input_min must be a scalar if axis is unspecified")),
    (VE, lit("Shape must be rank 0 but is rank 1")),
    ("eager", "graph"),
)
case(
    "minmax-V4Grad-per-tensor-max2",
    "7.2",
    "V4Grad",
    kw_for("V4Grad", mn=M1, mx=f32([1, 1])),
    (IAE, lit("input_max must be a scalar if axis is unspecified")),
    (VE, lit("Shapes must be equal rank, but are 1 and 0")),
    ("eager", "graph"),
)
case(
    "minmax-V4Grad-per-channel-min-scalar",
    "7.2",
    "V4Grad",
    kw_for("V4Grad", mn=M1, mx=HI3, axis=1),
    (IAE, lit("Shape must be rank 1 for input_min_tensor when the axis is specified")),
    (VE, lit("Shape must be rank 1 but is rank 0")),
    ("eager", "graph"),
)

# ---------------------------------------------------------------- 7.3 num_bits
for op in ("V2", "V4", "V1"):
    for nb, signed in ((0, True), (-1, True), (62, True), (63, False), (64, False), (2**30, True), (INT32_MIN, False)):
        msg = lit(f"num_bits is out of range: {nb} with signed_input_ {int(signed)}")
        kw = kw_for(op, num_bits=nb, signed_input=signed)
        case(
            f"num_bits-{op}-{nb}-{'s' if signed else 'u'}",
            "7.3",
            op,
            kw,
            (IAE, msg),
            tf=("eager",) if op != "V1" else (),
        )
    case(
        f"num_bits-{op}-2**31",
        "7.3",
        op,
        kw_for(op, num_bits=2**31),
        (IAE, lit("Attr num_bits has value 2147483648 out of range for an int32")),
        tf=("eager",) if op != "V1" else (),
    )
    for nb, signed, narrow in (
        (61, True, False),
        (62, False, False),
        (1, True, False),
        (1, True, True),
        (1, False, False),
    ):
        kw = kw_for(op, x=SPECIALS, num_bits=nb, signed_input=signed)
        if op != "V1":
            kw["narrow_range"] = narrow
        elif narrow:
            continue
        case(f"num_bits-{op}-limit-{nb}-{'s' if signed else 'u'}{'n' if narrow else ''}", "7.3", op, kw, OK, ref="tf")
for shape, dims in (((0,), 1), ((2,), 1), ((1,), 1), ((1, 1), 2)):
    case(
        f"num_bits-V3-shape-{'x'.join(map(str, shape))}",
        "7.3",
        "V3",
        kw_for("V3", nb=np.full(shape, 8, np.int32)),
        (IAE, lit(f"Invalid shape. The `num_bits` tensor should be a scalar. Got dimensions: {dims}")),
        (VE, lit(f"Shape must be rank 0 but is rank {dims}")),
        ("eager", "graph"),
    )
for nb, signed in ((0, True), (-1, True), (INT32_MIN, True), (62, True), (63, False), (INT32_MAX, False)):
    case(
        f"num_bits-V3-{nb}-{'s' if signed else 'u'}",
        "7.3",
        "V3",
        kw_for("V3", nb=nb, signed_input=signed),
        (IAE, lit(f"num_bits is out of range: {nb} with `signed_input_` {int(signed)}")),
        tf=("eager",),
    )
for nb, signed in ((61, True), (62, False), (1, True)):
    case(f"num_bits-V3-limit-{nb}", "7.3", "V3", kw_for("V3", x=SPECIALS, nb=nb, signed_input=signed), OK, ref="tf")

# round_mode outside its allowed values (checked by TensorFlow's op definition)
for op in ("V2", "V4", "qdq"):
    graph = (VE, lit('passed string \'FOO\' not in: "HALF_TO_EVEN", "HALF_UP"'))
    case(
        f"round_mode-{op}",
        "attrs",
        op,
        kw_for("V2", round_mode="FOO"),
        (IAE, lit("Value for attr 'round_mode' of \"FOO\" is not in the list of allowed values")),
        graph,
        tf=("eager", "graph") if op != "qdq" else (),
        unknown=graph,
    )

# ---------------------------------------------------------------- 7.4 ranges
D = np.float64
for op in ("V2", "V4", "V3"):
    for label, mn, mx, text in [
        ("1>0", S1, S0, "Invalid range: input_min 1 > input_max 0"),
        ("nan-min", f32(np.nan), S1, "Invalid range: input_min nan > input_max 1"),
        ("nan-max", M1, f32(np.nan), "Invalid range: input_min -1 > input_max nan"),
        ("nan-both", f32(np.nan), f32(np.nan), "Invalid range: input_min nan > input_max nan"),
        ("inf>-inf", f32(np.inf), f32(-np.inf), "Invalid range: input_min inf > input_max -inf"),
        (
            "f64-extreme",
            D(1e-282),
            D(-1.234567891e73),
            f"Invalid range: input_min 1e-282 > input_max {tf_number_text(-1.234567891e73, D)}",
        ),
        ("f64-tiny-normal", D(1e-300), D(-1e-300), "Invalid range: input_min 1e-300 > input_max -1e-300"),
    ]:
        x = X.astype(D) if isinstance(mn, D) else X
        case(
            f"range-{op}-{label}",
            "7.4",
            op,
            kw_for(op, x=x, mn=np.asarray(mn), mx=np.asarray(mx), range_given=True),
            (IAE, lit(text)),
            tf=("eager",),
        )
    for label, lo, hi, text in [
        ("channel", f32([-1, 2, -1]), HI3, "Invalid range: input_min 2 > input_max 1 for channel 1 along axis 1"),
        (
            "channel-nan",
            LO3,
            f32([1, 1, np.nan]),
            "Invalid range: input_min -1 > input_max nan for channel 2 along axis 1",
        ),
    ]:
        case(f"range-{op}-per-{label}", "7.4", op, kw_for(op, mn=lo, mx=hi, axis=1, range_given=True), (IAE, lit(text)))
    # valid extreme ranges: bit-identical with TensorFlow
    for label, dt, lo, hi in [
        ("0,0", np.float32, 0, 0),
        ("0.5,0.5", np.float32, 0.5, 0.5),
        ("-inf,inf", np.float32, -np.inf, np.inf),
        ("-inf,-inf", np.float32, -np.inf, -np.inf),
        ("inf,inf", np.float32, np.inf, np.inf),
        ("0,inf", np.float32, 0, np.inf),
        ("-0,+0", np.float32, -0.0, 0.0),
        ("max", np.float32, -3.4e38, 3.4e38),
        ("subnormal", np.float32, -1e-45, 1e-45),
        ("f64-1e-282,1e73", D, 1e-282, 1e73),
        ("f64--1e73,-1e-282", D, -1e73, -1e-282),
        ("f64-subnormal", D, -5e-324, 5e-324),
        # denormals-are-zero (TensorFlow's mode for every kernel): 1e-40 > -1e-40 compares as 0 <= 0
        ("subnormal-inverted", np.float32, 1e-40, -1e-40),
        ("f64-subnormal-inverted", D, 5e-324, -5e-324),
    ]:
        case(
            f"range-{op}-valid-{label}",
            "7.4",
            op,
            kw_for(op, x=SPECIALS.astype(dt), mn=np.asarray(lo, dt), mx=np.asarray(hi, dt), range_given=True),
            OK,
            ref="tf",
        )
    case(
        f"range-{op}-valid-per-channel",
        "7.4",
        op,
        kw_for(
            op,
            x=np.tile(SPECIALS, (2, 1)).T.copy(),
            mn=f32([-np.inf, 0]),
            mx=f32([np.inf, 0]),
            axis=1,
            range_given=True,
        ),
        OK,
        ref="tf",
    )
case(
    "range-V1-1>0",
    "7.4",
    "V1",
    kw_for("V1", input_min=1.0, input_max=0.0, range_given=True),
    (IAE, lit("Invalid range: input_min 1 > input_max 0")),
)
case(
    "range-V1-nan",
    "7.4",
    "V1",
    kw_for("V1", input_min=float("nan"), input_max=1.0, range_given=True),
    (IAE, lit("Invalid range: input_min nan > input_max 1")),
)
case(
    "range-V1-valid",
    "7.4",
    "V1",
    kw_for("V1", x=SPECIALS, input_min=-1.0, input_max=0.5, range_given=True),
    OK,
    ref="tf",
)
case("range-V4Grad-inverted-ok", "7.4", "V4Grad", kw_for("V4Grad", x=SPECIALS, mn=S1, mx=M1), OK, ref="tf")
case(
    "range-V4Grad-special-grads",
    "7.4",
    "V4Grad",
    kw_for("V4Grad", x=SPECIALS, grads=SPECIALS[::-1].copy(), mn=f32(-np.inf), mx=f32(0.5)),
    OK,
    ref="tf",
)

# ---------------------------------------------------------------- 7.5 data
for op in ("V1", "V2", "V3", "V4"):
    case(f"data-empty-{op}", "7.5", op, kw_for(op, x=f32([]), range_given=True), OK)
for op in ("V2", "V3", "V4", "V4Grad"):
    # Empty inputs, also with dims whose product (without the zero) overflows
    # int32 or even int64: nothing is read, the output is empty.
    for shape, axis in (
        ((0, 3), 0),
        ((0, 3), 1),
        ((2, 0, 3), 1),
        ((2, 0, 3), 2),
        ((0,), -1),
        ((0, 2**62, 2**62), 0),
        ((0, 2**62, 2**62), 1),
        ((0, 2**62, 2**62), 2),
        ((2**16, 2**16, 0), 2),
        ((2**16, 2**16, 0), 0),
    ):
        depth = shape[axis] if axis != -1 else None
        label = f"{'x'.join(str(d) for d in shape)}-axis{axis}"
        x = zeros(shape)
        if depth is None:
            kw = kw_for(op, x=x, grads=x, mn=M1, mx=S1)
        elif depth <= 2**16:
            kw = kw_for(op, x=x, grads=x, mn=f32(np.full(depth, -1.0)), mx=f32(np.ones(depth)), axis=axis)
        elif op in ("V2", "V4"):
            # 2^62 channels: no min/max can be given; computed range, min/max ignored in eager
            kw = kw_for(op, x=x, mn=f32([]), mx=f32([]), axis=axis, range_given=False)
            case(f"data-empty-{op}-{label}", "7.5", op, kw, OK, (VE, "Dimensions must be equal, but are 0 and "))
            continue
        else:
            continue
        if op != "V4Grad":
            kw["range_given"] = True
        case(f"data-empty-{op}-{label}", "7.5", op, kw, OK)
for op in ("V2", "V4"):
    case(f"data-nan-{op}", "7.5", op, kw_for(op, x=f32([1, np.nan, 0.5, -2, np.nan]), mn=S0, mx=S0), OK, ref="numpy")
    case(
        f"data-nan-per-channel-{op}",
        "7.5",
        op,
        kw_for(op, x=f32([[np.nan, 1, -1], [2, np.nan, np.nan]]), mn=LO3, mx=HI3, axis=1),
        OK,
        ref="numpy",
    )
    case(f"data-inf-{op}", "7.5", op, kw_for(op, x=f32([1, np.inf, 0.5]), mn=S0, mx=S0), OK, ref="tf")
    case(f"data-neg-inf-{op}", "7.5", op, kw_for(op, x=f32([-np.inf, 1, 0.5]), mn=S0, mx=S0), OK, ref="tf")
case(
    "data-raw-int32",
    "7.5",
    "V2",
    kw_for("V2", x=np.array([1, 2], np.int32), mn=np.asarray(0, np.int32), mx=np.asarray(1, np.int32)),
    (IAE, "not in the list of allowed values"),
    (TE, "not in list of allowed values"),
    unknown=False,
)
for dt, name in (
    (np.int32, "int32"),
    (np.int64, "int64"),
    (np.uint8, "uint8"),
    (np.bool_, "bool"),
    (np.complex64, "complex64"),
):
    case(
        f"data-wrapper-{name}",
        "7.5",
        "qdq",
        kw_for("V2", x=np.ones(3, dt), mn=0.0, mx=1.0),
        (TE, lit(f"input must be bfloat16, float16, float32 or float64, got {name}")),
    )
case(
    "data-wrapper-min-dtype",
    "7.5",
    "qdq_v2",
    kw_for("V4", x=X, mn=np.float64(-1), mx=np.float64(1)),
    OK,
    ref={"input_min": M1, "input_max": S1},
)  # NumPy values are converted to the input's dtype

# ---------------------------------------------------------------- 7.6 V4Grad
case(
    "grad-shape-rank",
    "7.6",
    "V4Grad",
    kw_for("V4Grad", grads=f32([1, 2])),
    (IAE, lit("gradient and input must be the same size")),
    (VE, lit("Shapes must be equal rank, but are 1 and 2")),
    ("eager", "graph"),
)
case(
    "grad-shape-dim",
    "7.6",
    "V4Grad",
    kw_for("V4Grad", grads=f32(np.ones((2, 2)))),
    (IAE, lit("gradient and input must be the same size")),
    (VE, lit("Dimension 1 in both shapes must be equal, but are 2 and 3")),
    ("eager", "graph"),
)
case(
    "grad-min-short",
    "7.6",
    "V4Grad",
    kw_for("V4Grad", mn=f32([-1, -1]), mx=f32([1, 1]), axis=1),
    (IAE, lit("min has incorrect size, expected 3 was 2")),
    (VE, lit("Dimensions must be equal, but are 2 and 3")),
    ("eager", "graph"),
)
case(
    "grad-max-long",
    "7.6",
    "V4Grad",
    kw_for("V4Grad", mn=LO3, mx=f32([1, 1, 1, 1]), axis=1),
    (IAE, lit("max has incorrect size, expected 3 was 4")),
    (VE, "must be equal, but are 4 and 3"),
    ("eager", "graph"),
)
case(
    "grad-min-rank2-axis1",
    "7.6",
    "V4Grad",
    kw_for("V4Grad", mn=f32([[-1, -1, -1]]), mx=f32([[1, 1, 1]]), axis=1),
    (IAE, lit("Input min tensor must have dimension 0 or 1. Received 2.")),
    (VE, lit("Shape must be rank 1 but is rank 2")),
    ("eager", "graph"),
)
case(
    "grad-min-rank2-axis-1",
    "7.6",
    "V4Grad",
    kw_for("V4Grad", mn=f32([[-1]]), mx=f32([[1]])),
    (IAE, lit("Input min tensor must have dimension 0 or 1. Received 2.")),
    (VE, lit("Shape must be rank 0 but is rank 2")),
    ("eager", "graph"),
)
case(
    "grad-max-rank3",
    "7.6",
    "V4Grad",
    kw_for("V4Grad", mn=M1, mx=f32([[[1]]])),
    (IAE, lit("Input max tensor must have dimension 0 or 1. Received 3.")),
    (VE, lit("Shapes must be equal rank, but are 3 and 0")),
    ("eager", "graph"),
)

# ---------------------------------------------------------------- half and bfloat16 go through the same checks
for dt in ("float16", "bfloat16"):
    npdt = {"float16": np.float16, "bfloat16": __import__("ml_dtypes").bfloat16}[dt]

    def c(a, npdt=npdt):
        with np.errstate(over="ignore"):
            return np.asarray(a).astype(npdt)

    case(
        f"dtype-{dt}-axis",
        "7.1",
        "V2",
        kw_for("V2", x=c(X), mn=c(LO3), mx=c(HI3), axis=-2),
        (IAE, lit("Axis must be at least -1. Found -2")),
        (VE, lit("axis should be at least -1, got -2")),
        unknown=(VE, lit("axis should be at least -1, got -2")),
    )
    case(
        f"dtype-{dt}-V3-axis",
        "7.1",
        "V3",
        kw_for("V3", x=c(X), mn=c(LO3), mx=c(HI3), axis=-2),
        (IAE, r"Axis must be -1 \(per-tensor\)"),
        (VE, lit("axis should be at least -1, got -2")),
        unknown=(VE, lit("axis should be at least -1, got -2")),
    )
    case(
        f"dtype-{dt}-V3-multi-min",
        "7.2",
        "V3",
        kw_for("V3", x=c(X), mn=c([-1, -1]), mx=c([1, 1])),
        (IAE, lit("input_min must be a scalar.")),
        (VE, lit("Shape must be rank 0 but is rank 1")),
    )
    case(
        f"dtype-{dt}-range",
        "7.4",
        "V4",
        kw_for("V4", x=c(X), mn=c(1), mx=c(0), range_given=True),
        (IAE, lit("Invalid range: input_min 1 > input_max 0")),
    )
    case(
        f"dtype-{dt}-channel-range",
        "7.4",
        "V2",
        kw_for("V2", x=c(X), mn=c([0, 0, 2]), mx=c([1, 1, 1]), axis=1, range_given=True),
        (IAE, lit("Invalid range: input_min 2 > input_max 1 for channel 2")),
    )
    # the values print as float, the compute type of half and bfloat16; values with short decimal
    # forms, because TensorFlow's number formatting differs between versions (0.100098 in 2.21,
    # 0.100097656 in 2.16 for bfloat16(0.1))
    case(
        f"dtype-{dt}-channel-range-text",
        "7.4",
        "V2",
        kw_for("V2", x=c(X), mn=c([0, 0.5, 0]), mx=c([1, -0.375, 1]), axis=1, range_given=True),
        (
            IAE,
            lit(
                "Invalid range: input_min 0.5 > input_max -0.375 for channel 1 along axis 1. "
                "Every channel needs input_min <= input_max."
            ),
        ),
    )
    case(
        f"dtype-{dt}-grad-shape",
        "7.6",
        "V4Grad",
        kw_for("V4Grad", x=c(X), grads=c([1, 2]), mn=c(-1), mx=c(1)),
        (IAE, lit("gradient and input must be the same size")),
        (VE, "Shapes must be equal rank"),
    )
    case(f"dtype-{dt}-valid", "7.4", "V3", kw_for("V3", x=c(SPECIALS), mn=c(-1), mx=c(0.5)), OK, ref="tf")


# ============================================================================ the child processes


def _tensor(v):
    import tensorflow as tf

    if isinstance(v, dict) and "zeros" in v:
        return tf.zeros(v["zeros"], v["dtype"])
    return tf.constant(v)


def _is_input(v):
    return isinstance(v, np.ndarray) or (isinstance(v, dict) and "zeros" in v)


def _split(kw):
    inputs = {k: v for k, v in kw.items() if _is_input(v)}
    attrs = {k: v for k, v in kw.items() if not _is_input(v)}
    return inputs, attrs


def _call(fn, wrapper, inputs, attrs):
    if wrapper:
        inputs = dict(inputs)
        x = inputs.pop("input")
        return fn(
            x,
            inputs.pop("input_min", attrs.pop("input_min", None)),
            inputs.pop("input_max", attrs.pop("input_max", None)),
            **attrs,
        )
    return fn(**inputs, **attrs)


def _run(fn, wrapper, kw, mode):
    import tensorflow as tf

    inputs, attrs = _split(kw)
    tensors = {k: _tensor(v) for k, v in inputs.items()}
    if mode == "eager":
        return _call(fn, wrapper, tensors, dict(attrs))
    names = list(tensors)
    if mode == "graph":
        specs = [tf.TensorSpec(tensors[k].shape, tensors[k].dtype) for k in names]
    else:  # unknown shapes: the shape function cannot check anything
        specs = [tf.TensorSpec(None, tensors[k].dtype) for k in names]
    g = tf.function(
        lambda *ts: _call(fn, wrapper, dict(zip(names, ts)), dict(attrs)), input_signature=specs, autograph=False
    )
    return g(*[tensors[k] for k in names])


def _outcome(thunk):
    try:
        out = thunk()
    except Exception as e:  # noqa: BLE001 - every exception is reported to the parent
        return {"exc": type(e).__name__, "msg": str(e)}, None
    return {"exc": OK}, out


def _np(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _first(out):
    return out[0] if isinstance(out, (list, tuple)) else out


def _plugin_fn(op):
    import tf_qdq

    return {"qdq": (tf_qdq.quantize_and_dequantize, True), "qdq_v2": (tf_qdq.quantize_and_dequantize_v2, True)}.get(
        op, (getattr(tf_qdq.raw_ops, RAW_NAMES.get(op, "")), False) if op in RAW_NAMES else None
    )


def _compare(c, fn, wrapper, out, res):
    """Shape of an OK result and its comparison with the case's reference."""
    from tf_qdq import reference

    x = c["kw"]["input"]
    res["shape"] = out.shape.as_list()
    res["input_shape"] = list(x["zeros"]) if isinstance(x, dict) else list(np.shape(x))
    ref = c["ref"]
    if ref is None:
        return
    o = _np(out)
    if isinstance(ref, dict):
        other = _np(_first(_run(fn, wrapper, {**c["kw"], **ref}, "eager")))
        res["same"] = reference.same_bits(o, other)
    elif ref == "tf":
        op = {"qdq": "V2", "qdq_v2": "V4"}.get(c["op"], c["op"])
        inputs, attrs = _split(c["kw"])
        kw = {**inputs, **attrs}
        if op == "V3":
            kw["num_bits"] = int(kw["num_bits"])
        res["same"] = reference.same_bits(o, _np(_first(reference.builtin(op, **kw))))
    elif ref == "numpy":
        a = {k: v for k, v in c["kw"].items() if k not in ("input", "input_min", "input_max")}
        want = reference.numpy_qdq(c["kw"]["input"], c["kw"]["input_min"], c["kw"]["input_max"], **a)
        res["same"] = reference.same_bits(o, want)


def _child_plugin(ids):
    for cid in ids:
        c = CASES[cid]
        fn, wrapper = _plugin_fn(c["op"])
        modes = ["eager", "graph"] + (["unknown"] if c["unknown"] is not False else [])
        for mode in modes:
            print(json.dumps({"start": cid, "mode": mode}), flush=True)
            res, out = _outcome(lambda: _run(fn, wrapper, c["kw"], mode))
            if out is not None:
                try:
                    _compare(c, fn, wrapper, _first(out), res)
                except Exception as e:  # noqa: BLE001 - a harness problem, not a crash
                    res["same"] = f"harness failed: {type(e).__name__}: {e}"
            print(json.dumps({"id": cid, "mode": mode, **res}), flush=True)


def _child_tf(ids):
    import tensorflow as tf

    for cid in ids:
        c = CASES[cid]
        fn = getattr(tf.raw_ops, RAW_NAMES[c["op"]])
        for mode in c["tf"]:
            print(json.dumps({"start": cid, "mode": mode}), flush=True)
            inputs, attrs = _split(c["kw"])
            if mode == "eager":
                res, _ = _outcome(lambda: _run(fn, False, c["kw"], "eager"))
            else:  # trace only: the shape function runs, the kernel never does
                tensors = {k: _tensor(v) for k, v in inputs.items()}
                names = list(tensors)
                specs = [tf.TensorSpec(tensors[k].shape, tensors[k].dtype) for k in names]
                g = tf.function(lambda *ts: fn(**dict(zip(names, ts)), **attrs), autograph=False)
                res, _ = _outcome(lambda: g.get_concrete_function(*specs))
            print(json.dumps({"id": cid, "mode": mode, **res}), flush=True)


def child_main(argv):
    """tests/children/bad_inputs.py: `plugin|tf [ID ...]`."""
    which, ids = argv[0], argv[1:]
    {"plugin": _child_plugin, "tf": _child_tf}[which](ids or list(CASES))


def run_cases(which, ids=()):
    """Runs child_main in a fresh interpreter (tests/children/bad_inputs.py); returns
    ({(id, mode): result}, last started, rc, stderr)."""
    p = run_child("bad_inputs.py", which, *ids, env=child_env(HERE), timeout=900, check=False)
    results, last = {}, None
    for line in p.stdout.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "start" in r:
            last = (r["start"], r["mode"])
        else:
            results[(r["id"], r["mode"])] = r
    return results, last, p.returncode, p.stderr


@pytest.fixture(scope="module")
def plugin_results():
    return run_cases("plugin")


@pytest.fixture(scope="module")
def tf_results():
    return run_cases("tf", [cid for cid, c in CASES.items() if c["tf"]])


def _result(results, cid, mode):
    res, last, rc, err = results
    if (cid, mode) not in res:
        tail = "\n".join(err.strip().splitlines()[-15:])
        pytest.fail(f"the child process died (rc {rc}) before finishing {cid} [{mode}]; it was running {last}:\n{tail}")
    return res[(cid, mode)]


def _check(r, expect, cid, mode, c):
    if expect == OK:
        assert r["exc"] == OK, f"{cid} [{mode}]: expected success, got {r['exc']}: {r.get('msg', '')[:500]}"
        assert r["shape"] == r["input_shape"], f"{cid} [{mode}]: output shape {r['shape']}"
        if c["ref"] is not None:
            assert r.get("same") is True, f"{cid} [{mode}]: not bit-identical with the reference ({r.get('same')})"
        return
    exc, pattern = expect
    assert r["exc"] == exc, f"{cid} [{mode}]: expected {exc} /{pattern}/, got {r['exc']}: {r.get('msg', '')[:500]}"
    assert re.search(pattern, r["msg"]), f"{cid} [{mode}]: message does not match /{pattern}/:\n{r['msg'][:800]}"


@pytest.mark.parametrize("cid", list(CASES))
def test_bad_input(plugin_results, cid):
    c = CASES[cid]
    _check(_result(plugin_results, cid, "eager"), c["eager"], cid, "eager", c)
    _check(_result(plugin_results, cid, "graph"), c["graph"], cid, "graph", c)
    if c["unknown"] is not False:
        # Unknown shapes: the shape function must tolerate them; the kernel decides.
        _check(_result(plugin_results, cid, "unknown"), c["unknown"], cid, "unknown", c)


def _core(msg, mode):
    """The message without TensorFlow's decorations ({{function_node ...}},
    [Op:...], the node text of shape-function errors)."""
    msg = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", msg.strip().replace("TfQdq>", ""))
    msg = re.sub(r"\s*\[Op:.*$", "", msg, flags=re.S)
    if mode == "eager":
        msg = msg.splitlines()[0] if msg else msg
    else:
        msg = msg.split(" for '{{node")[0].splitlines()[-1].strip()
        msg = re.sub(r"^ValueError: ", "", msg)
    return msg.strip().rstrip(".")


@pytest.mark.parametrize("cid", [cid for cid, c in CASES.items() if c["tf"]])
def test_message_matches_tensorflow(plugin_results, tf_results, cid):
    """Where TensorFlow's built-in op gives a clean error, ours starts with its text."""
    c = CASES[cid]
    for mode in c["tf"]:
        theirs = _result(tf_results, cid, mode)
        ours = _result(plugin_results, cid, mode)
        assert theirs["exc"] == ours["exc"], f"{cid} [{mode}]: TensorFlow raises {theirs['exc']}, we {ours['exc']}"
        t, o = _core(theirs["msg"], mode), _core(ours["msg"], mode)
        assert o.startswith(t), f"{cid} [{mode}]:\n  TensorFlow: {t}\n  tf_qdq:     {o}"


def test_every_checklist_item_is_covered():
    items = {c["item"] for c in CASES.values()}
    assert items >= {"7.1", "7.2", "7.3", "7.4", "7.5", "7.6"}


# ---------------------------------------------------------------- the wrappers' TypeErrors (pure Python, no kernel)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool", "complex64", "string"])
@pytest.mark.parametrize("api", ["quantize_and_dequantize", "quantize_and_dequantize_v2"])
def test_wrapper_rejects_non_float_input(api, dtype):
    import tensorflow as tf

    import tf_qdq

    x = tf.constant(["a", "b"]) if dtype == "string" else tf.cast(tf.constant([1, 0]), dtype)
    with pytest.raises(TypeError, match=f"input must be bfloat16, float16, float32 or float64, got {dtype}"):
        getattr(tf_qdq, api)(x, 0.0, 1.0)
    with pytest.raises(TypeError, match="got " + dtype):
        tf.function(lambda: getattr(tf_qdq, api)(x, 0.0, 1.0))()


@pytest.mark.parametrize("api", ["quantize_and_dequantize", "quantize_and_dequantize_v2"])
def test_wrapper_rejects_range_tensor_of_another_dtype(api):
    import tensorflow as tf

    import tf_qdq

    x = tf.constant([1.0, 2.0])
    with pytest.raises(TypeError, match=r"input_min has dtype float64 but input has float32.*tf.cast"):
        getattr(tf_qdq, api)(x, tf.constant(0.0, tf.float64), 1.0)
    with pytest.raises(TypeError, match=r"input_max has dtype float16 but input has float32"):
        getattr(tf_qdq, api)(x, 0.0, tf.constant(1.0, tf.float16))


# ---------------------------------------------------------------- the fuzzer's validity model against this checklist


def _model_case(c):
    """The checklist case as a fuzz Case, or None where it lies outside the fuzzer's model (huge
    shapes made in the child, wrappers, non-float raw inputs, round modes other than the two)."""
    checkout_tools()
    from tools.fuzz.model import FLOAT_DTYPES, Case

    kw, op = c["kw"], c["op"]
    if op not in RAW_NAMES or any(isinstance(v, dict) for v in kw.values()):
        return None
    inputs, attrs = _split(kw)
    x = inputs["input"]
    if x.dtype not in [np.dtype(d) for d in FLOAT_DTYPES]:
        return None
    if attrs.get("round_mode", "HALF_TO_EVEN") not in ("HALF_TO_EVEN", "HALF_UP"):
        return None
    if op == "V1":
        attrs = {"input_min": 0.0, "input_max": 0.0, **attrs}  # the op's defaults
    return Case(
        op=op,
        dtype=x.dtype.type,
        x=x,
        grads=inputs.get("gradients"),
        mn=inputs.get("input_min"),
        mx=inputs.get("input_max"),
        num_bits_tensor=inputs.get("num_bits"),
        attrs=attrs,
    )


def test_fuzz_model_agrees_with_the_checklist():
    """tools/fuzz's independent model of the validation rules classifies every checklist
    case it covers as this table does: the same exception (or none), eagerly and in graph mode."""
    checkout_tools()
    from tools.fuzz.model import expected_errors

    covered, disagree = 0, []
    for cid, c in CASES.items():
        case = _model_case(c)
        if case is None:
            continue
        covered += 1
        for mode in ("eager", "graph"):
            case.graph = mode == "graph"
            want = None if c[mode] == OK else c[mode][0]
            got = expected_errors(case)
            if (got and got[0]) != want:
                disagree.append(f"{cid} [{mode}]: checklist {want}, model {got}")
    assert covered >= 200, covered
    assert not disagree, "\n".join(disagree)
