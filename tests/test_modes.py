"""Where the ops are used (docs/semantics.md#where-the-ops-run): eager, tf.function, TF1 graph mode,
shape inference at graph build time (docs/semantics.md#ops), and SavedModel export and
reload in fresh processes."""

import os
import runpy

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import BUILTIN_OPS, CHILDREN, INPUT_NAMES, PLUGIN_OPS, assert_same_bits, child_env, run_child

import tf_qdq

F32 = np.float32
HALF = np.float16


# ----------------------------------------------------------------------------- cases


def _cases():
    """(id, op, tensor inputs in raw-op order, attrs)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 4)) * 2).astype(F32)
    x.reshape(-1)[:6] = [0.5, -0.5, 1.5, -2.5, 0.0, -0.0]
    dy = rng.standard_normal((5, 4)).astype(F32)
    lo, hi = F32(-1.5), F32(2.0)
    clo = np.array([-1.0, -2.0, -0.5, -3.0], F32)
    chi = np.array([1.0, 0.5, 2.0, 3.0], F32)
    z, z5 = F32(0), np.zeros(5, F32)
    xh, loh, hih = x.astype(HALF), HALF(-1.5), HALF(2.0)
    return [
        ("V1", "V1", dict(input=x), dict(range_given=True, input_min=-1.5, input_max=2.0, num_bits=4)),
        ("V2-data-half_up", "V2", dict(input=x, input_min=z, input_max=z), dict(round_mode="HALF_UP")),
        ("V2-given", "V2", dict(input=x, input_min=lo, input_max=hi), dict(range_given=True, num_bits=3)),
        ("V2-per-channel-given", "V2", dict(input=x, input_min=clo, input_max=chi), dict(range_given=True, axis=1)),
        ("V3", "V3", dict(input=x, input_min=lo, input_max=hi, num_bits=np.int32(5)), dict(narrow_range=True)),
        ("V3-per-channel", "V3", dict(input=x, input_min=clo, input_max=chi, num_bits=np.int32(4)), dict(axis=1)),
        ("V4-per-channel-data", "V4", dict(input=x, input_min=z5, input_max=z5), dict(axis=0)),
        (
            "V4-given-unsigned",
            "V4",
            dict(input=x, input_min=z, input_max=hi),
            dict(range_given=True, signed_input=False, num_bits=4),
        ),
        ("V4Grad", "V4Grad", dict(gradients=dy, input=x, input_min=lo, input_max=hi), {}),
        ("V4Grad-per-channel", "V4Grad", dict(gradients=dy, input=x, input_min=clo, input_max=chi), dict(axis=1)),
        ("half-V2-given", "V2", dict(input=xh, input_min=loh, input_max=hih), dict(range_given=True)),
        ("half-V4Grad", "V4Grad", dict(gradients=dy.astype(HALF), input=xh, input_min=loh, input_max=hih), {}),
    ]


CASES = _cases()
CASE_IDS = [c[0] for c in CASES]


def _as_list(out):
    if isinstance(out, (list, tuple)):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]


def _eager(op, inputs, attrs):
    return _as_list([o.numpy() for o in _as_list_t(PLUGIN_OPS[op](**inputs, **attrs))])


def _as_list_t(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _function(op, inputs, attrs, signature=None):
    names = list(inputs)

    def f(*args):
        return _as_list_t(PLUGIN_OPS[op](**dict(zip(names, args)), **attrs))

    fn = tf.function(f, input_signature=signature)
    return [o.numpy() for o in fn(*[tf.constant(inputs[n]) for n in names])]


def _session(op, inputs, attrs, shape_of):
    names = list(inputs)
    with tf.Graph().as_default() as g:
        phs = {
            n: tf.compat.v1.placeholder(tf.as_dtype(np.asarray(inputs[n]).dtype), shape_of(inputs[n]), name=n)
            for n in names
        }
        out = _as_list_t(PLUGIN_OPS[op](**phs, **attrs))
        with tf.compat.v1.Session(graph=g) as sess:
            return sess.run(out, feed_dict={phs[n]: inputs[n] for n in names})


def _check_all(actual, expected, what):
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_same_bits(a, e, f"{what} output {i}")


# ----------------------------------------------------------------------------- eager / function / session


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tf_function_matches_eager(case):
    _, op, inputs, attrs = case
    eager = _eager(op, inputs, attrs)
    _check_all(_function(op, inputs, attrs), eager, "tf.function")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tf_function_unknown_dims_and_rank_matches_eager(case):
    _, op, inputs, attrs = case
    eager = _eager(op, inputs, attrs)
    dims = [tf.TensorSpec([None] * np.ndim(v), tf.as_dtype(np.asarray(v).dtype)) for v in inputs.values()]
    rank = [tf.TensorSpec(None, tf.as_dtype(np.asarray(v).dtype)) for v in inputs.values()]
    _check_all(_function(op, inputs, attrs, dims), eager, "unknown dims")
    _check_all(_function(op, inputs, attrs, rank), eager, "unknown rank")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tf1_session_matches_eager(case):
    _, op, inputs, attrs = case
    eager = _eager(op, inputs, attrs)
    _check_all(_session(op, inputs, attrs, lambda v: np.shape(v)), eager, "Session, static shapes")
    _check_all(_session(op, inputs, attrs, lambda v: None), eager, "Session, unknown rank")


def test_eager_outputs_are_real_results():
    # guard against the comparisons above being vacuous: the eager results are
    # TensorFlow's (V2 given range [-1.5, 2], 3 bits signed: step 2/3)
    _, op, inputs, attrs = CASES[CASE_IDS.index("V2-given")]
    out = _eager(op, inputs, attrs)[0]
    assert_same_bits(out, tf.raw_ops.QuantizeAndDequantizeV2(**inputs, **attrs), "V2 values")
    step = F32(2.0) / F32(3.0)
    expected = np.array([1, -1, 2, -4, 0, 0], F32) * step
    expected[5] = -0.0
    assert_same_bits(out.reshape(-1)[:6], expected, "V2 values")


def test_api_wrappers_in_tf_function_and_session_match_eager():
    x = np.linspace(-3, 3, 24, dtype=F32).reshape(2, 3, 4)
    clo, chi = np.array([-1.0, -2.0, -3.0], F32), np.array([1.0, 2.0, 0.5], F32)

    def f(a, b, c):
        return [
            tf_qdq.quantize_and_dequantize(a, b, c, range_given=True, axis=-2),
            tf_qdq.quantize_and_dequantize_v2(a, b, c, range_given=True, axis=1),
            tf_qdq.quantize_and_dequantize_v2(a, -1.0, 1.0, num_bits=4),
        ]

    eager = [o.numpy() for o in f(tf.constant(x), tf.constant(clo), tf.constant(chi))]
    sig = [
        tf.TensorSpec([None, 3, None], tf.float32),
        tf.TensorSpec([None], tf.float32),
        tf.TensorSpec([None], tf.float32),
    ]
    traced = tf.function(f, input_signature=sig)(x, clo, chi)
    _check_all([o.numpy() for o in traced], eager, "tf.function")
    with tf.Graph().as_default() as g:
        ph = [tf.compat.v1.placeholder(tf.float32, s.shape) for s in sig]
        out = f(*ph)
        assert [o.shape.as_list() for o in out] == [[None, 3, None]] * 3
        with tf.compat.v1.Session(graph=g) as sess:
            _check_all(sess.run(out, {ph[0]: x, ph[1]: clo, ph[2]: chi}), eager, "Session")


# ----------------------------------------------------------------------------- static shapes


def _graph_op(op, shapes, attrs, dtype=tf.float32):
    """Builds the op on placeholders with the given shapes (None = unknown rank)
    in the current graph; returns the op's outputs as a list."""
    names = INPUT_NAMES[op]
    phs = {}
    for n in names:
        dt = tf.int32 if n == "num_bits" else dtype
        phs[n] = tf.compat.v1.placeholder(dt, shapes.get(n, [] if n == "num_bits" else None), name=n)
    return _as_list_t(PLUGIN_OPS[op](**phs, **attrs))


def _builtin_graph_op(op, shapes, attrs):
    fn = BUILTIN_OPS[op]
    names = INPUT_NAMES[op]
    phs = {
        n: tf.compat.v1.placeholder(
            tf.int32 if n == "num_bits" else tf.float32, shapes.get(n, [] if n == "num_bits" else None), name=n
        )
        for n in names
    }
    return _as_list_t(fn(**phs, **attrs))


def _static(outs):
    return [None if o.shape.rank is None else o.shape.as_list() for o in outs]


SHAPE_CASES = [
    # (id, op, shapes, attrs, expected static output shapes)
    ("V2-known", "V2", dict(input=[5, 4], input_min=[], input_max=[]), {}, [[5, 4]]),
    ("V2-partial", "V2", dict(input=[None, 4], input_min=[], input_max=None), {}, [[None, 4]]),
    ("V2-per-channel", "V2", dict(input=[2, 3, 4], input_min=[3], input_max=[None]), dict(axis=1), [[2, 3, 4]]),
    ("V2-unknown-rank", "V2", dict(input=None, input_min=None, input_max=None), dict(axis=3), [None]),
    ("V3-known", "V3", dict(input=[5, 4], input_min=[], input_max=[], num_bits=[]), {}, [[5, 4]]),
    ("V3-per-channel", "V3", dict(input=[None, 4], input_min=[4], input_max=[4]), dict(axis=1), [[None, 4]]),
    ("V4-known", "V4", dict(input=[7], input_min=[], input_max=[]), {}, [[7]]),
    (
        "V4-per-channel-unknown-dims",
        "V4",
        dict(input=[None, None], input_min=[None], input_max=[None]),
        dict(axis=0),
        [[None, None]],
    ),
    (
        "V4Grad-per-tensor",
        "V4Grad",
        dict(gradients=[None, 4], input=[5, None], input_min=[], input_max=None),
        {},
        [[5, 4], [], []],
    ),
    (
        "V4Grad-per-channel",
        "V4Grad",
        dict(gradients=[3, 4], input=[3, 4], input_min=[None], input_max=[4]),
        dict(axis=1),
        [[3, 4], [4], [4]],
    ),
    (
        "V4Grad-per-channel-min-unknown",
        "V4Grad",
        dict(gradients=[3, 4], input=[3, 4], input_min=[None], input_max=None),
        dict(axis=1),
        [[3, 4], [None], [None]],
    ),
    (
        "V4Grad-unknown",
        "V4Grad",
        dict(gradients=None, input=None, input_min=None, input_max=None),
        dict(axis=2),
        [None, [None], [None]],
    ),
]


@pytest.mark.parametrize("case", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_static_output_shapes(case):
    _, op, shapes, attrs, expected = case
    with tf.Graph().as_default():
        assert _static(_graph_op(op, shapes, attrs)) == expected
        # the same as TensorFlow's shape function
        assert _static(_builtin_graph_op(op, shapes, attrs)) == expected


def test_v1_static_shape_is_input_shape():
    with tf.Graph().as_default():
        assert _static(_graph_op("V1", dict(input=[None, 3, 2]), {})) == [[None, 3, 2]]
        assert _static(_graph_op("V1", dict(input=None), {})) == [None]


def test_static_shapes_half_and_bfloat16():
    for dt in (tf.float16, tf.bfloat16):
        with tf.Graph().as_default():
            outs = _graph_op(
                "V4Grad",
                dict(gradients=[3, None], input=[None, 4], input_min=[4], input_max=[None]),
                dict(axis=1),
                dtype=dt,
            )
            assert _static(outs) == [[3, 4], [4], [4]]
            assert all(o.dtype == dt for o in outs)


SHAPE_ERRORS = [
    # (id, op, shapes, attrs, expected message part)
    (
        "per-tensor-min-rank-1",
        "V2",
        dict(input=[3, 2], input_min=[1], input_max=[]),
        {},
        "Shape must be rank 0 but is rank 1",
    ),
    (
        "per-tensor-max-rank-1",
        "V4",
        dict(input=[3, 2], input_min=[], input_max=[2]),
        {},
        "Shapes must be equal rank, but are 1 and 0",
    ),
    (
        "per-channel-min-rank-0",
        "V2",
        dict(input=[3, 2], input_min=[], input_max=[]),
        dict(axis=1),
        "Shape must be rank 1 but is rank 0",
    ),
    (
        "per-channel-min-rank-0-V3",
        "V3",
        dict(input=[3, 2], input_min=[], input_max=[2]),
        dict(axis=0),
        "Shape must be rank 1 but is rank 0",
    ),
    (
        "axis-minus-2",
        "V2",
        dict(input=[3, 2], input_min=[2], input_max=[2]),
        dict(axis=-2),
        "axis should be at least -1, got -2",
    ),
    (
        "axis-minus-100",
        "V4",
        dict(input=[3, 2], input_min=[2], input_max=[2]),
        dict(axis=-100),
        "axis should be at least -1, got -100",
    ),
    (
        "axis-int32-min",
        "V3",
        dict(input=None, input_min=[2], input_max=[2]),
        dict(axis=-2147483648),
        "axis should be at least -1, got -2147483648",
    ),
    (
        "axis-eq-rank",
        "V2",
        dict(input=[3, 2], input_min=[2], input_max=[2]),
        dict(axis=2),
        "Shape must be at least rank 3 but is rank 2",
    ),
    (
        "axis-gt-rank",
        "V4",
        dict(input=[3], input_min=[None], input_max=[None]),
        dict(axis=10),
        "Shape must be at least rank 11 but is rank 1",
    ),
    (
        "axis-on-scalar",
        "V3",
        dict(input=[], input_min=[1], input_max=[1]),
        dict(axis=0),
        "Shape must be at least rank 1 but is rank 0",
    ),
    (
        "min-dim-mismatch",
        "V2",
        dict(input=[3, 2], input_min=[3], input_max=[3]),
        dict(axis=1),
        "Dimensions must be equal, but are 3 and 2",
    ),
    (
        "max-dim-mismatch",
        "V4",
        dict(input=[3, 2], input_min=[None], input_max=[2]),
        dict(axis=0),
        "Dimensions must be equal, but are 2 and 3",
    ),
    (
        "min-max-mismatch",
        "V2",
        dict(input=[3, 2], input_min=[3], input_max=[2]),
        dict(axis=0),
        "Dimension 0 in both shapes must be equal",
    ),
    (
        "V3-num-bits-rank-1",
        "V3",
        dict(input=[3, 2], input_min=[], input_max=[], num_bits=[1]),
        {},
        "Shape must be rank 0 but is rank 1",
    ),
    (
        "V3-num-bits-empty",
        "V3",
        dict(input=[3, 2], input_min=[], input_max=[], num_bits=[0]),
        {},
        "Shape must be rank 0 but is rank 1",
    ),
    (
        "axis-int32-max",
        "V4",
        dict(input=[3, 2], input_min=[2], input_max=[2]),
        dict(axis=2147483647),
        "Axis cannot be >= kint32max value, got 2147483647",
    ),
    (
        "axis-int32-max-unknown-input",
        "V2",
        dict(input=None, input_min=None, input_max=None),
        dict(axis=2147483647),
        "Axis cannot be >= kint32max value, got 2147483647",
    ),
    (
        "V4Grad-gradients-input-mismatch",
        "V4Grad",
        dict(gradients=[3, 3], input=[3, 2], input_min=[], input_max=[]),
        {},
        "Dimension 1 in both shapes must be equal, but are 3 and 2",
    ),
    (
        "V4Grad-rank-mismatch",
        "V4Grad",
        dict(gradients=[6], input=[3, 2], input_min=[], input_max=[]),
        {},
        "Shapes must be equal rank",
    ),
    (
        "V4Grad-min-wrong-length",
        "V4Grad",
        dict(gradients=[3, 2], input=[3, 2], input_min=[3], input_max=[3]),
        dict(axis=1),
        "Dimensions must be equal, but are 3 and 2",
    ),
    (
        "V4Grad-min-rank-2",
        "V4Grad",
        dict(gradients=[3, 2], input=[3, 2], input_min=[1, 2], input_max=[1, 2]),
        dict(axis=1),
        "Shape must be rank 1 but is rank 2",
    ),
    (
        "V4Grad-empty-min-scalar-max",
        "V4Grad",
        dict(gradients=[3, 2], input=[3, 2], input_min=[0], input_max=[]),
        dict(axis=1),
        "Shapes must be equal rank",
    ),
]


def _normalize(msg):
    return msg.replace("TfQdq>", "")


@pytest.mark.parametrize("case", SHAPE_ERRORS, ids=[c[0] for c in SHAPE_ERRORS])
def test_shape_function_errors_at_graph_construction(case):
    _, op, shapes, attrs, expected = case
    with tf.Graph().as_default():
        with pytest.raises(ValueError) as ours:
            _graph_op(op, shapes, attrs)
    assert expected in str(ours.value)
    assert "TfQdq>Quantize" in str(ours.value)  # raised for the plugin's node
    with tf.Graph().as_default():
        with pytest.raises(ValueError) as theirs:
            _builtin_graph_op(op, shapes, attrs)
    # TensorFlow's shape function gives the same message (node names aside)
    assert _normalize(str(ours.value)) == str(theirs.value)


@pytest.mark.parametrize(
    "op,inputs,attrs,expected",
    [
        (
            "V2",
            dict(input=np.zeros((3, 2), F32), input_min=np.zeros(2, F32), input_max=np.zeros(2, F32)),
            dict(axis=-3),
            "axis should be at least -1, got -3",
        ),
        (
            "V4",
            dict(input=np.zeros((3, 2), F32), input_min=np.zeros(3, F32), input_max=np.zeros(3, F32)),
            dict(axis=1),
            "Dimensions must be equal, but are 3 and 2",
        ),
        (
            "V3",
            dict(input=np.zeros((3, 2), F32), input_min=F32(0), input_max=F32(1), num_bits=np.array([8], np.int32)),
            {},
            "Shape must be rank 0 but is rank 1",
        ),
    ],
)
def test_shape_function_errors_when_tracing_tf_function(op, inputs, attrs, expected):
    names = list(inputs)

    @tf.function
    def f(*args):
        return PLUGIN_OPS[op](**dict(zip(names, args)), **attrs)

    with pytest.raises(ValueError, match=expected):
        f.get_concrete_function(
            *[tf.TensorSpec(np.shape(inputs[n]), tf.as_dtype(np.asarray(inputs[n]).dtype)) for n in names]
        )


@pytest.mark.parametrize(
    "op,attrs",
    [
        ("V1", {}),
        ("V2", {}),
        ("V2", dict(axis=0)),
        ("V2", dict(axis=7)),
        ("V3", {}),
        ("V3", dict(axis=2)),
        ("V4", {}),
        ("V4", dict(axis=1)),
        ("V4Grad", {}),
        ("V4Grad", dict(axis=3)),
    ],
)
@pytest.mark.parametrize("unknown", ["rank", "dims"])
def test_unknown_shapes_are_tolerated(op, attrs, unknown):
    axis = attrs.get("axis", -1)
    with tf.Graph().as_default():
        if unknown == "rank":
            shapes = {}
        else:
            mm = [] if axis == -1 else [None]
            shapes = dict(
                input=[None] * max(axis + 1, 2), gradients=[None] * max(axis + 1, 2), input_min=mm, input_max=mm
            )
        outs = _graph_op(op, shapes, attrs)
        assert outs[0].shape.rank == (None if unknown == "rank" else max(axis + 1, 2))
        if op == "V4Grad":
            assert outs[1].shape.as_list() == ([] if axis == -1 else [None])


def test_graph_mode_runtime_error_is_invalid_argument():
    # a shape the shape function cannot see (unknown at build time) is caught by the kernel
    with tf.Graph().as_default() as g:
        x = tf.compat.v1.placeholder(tf.float32, None)
        lo = tf.compat.v1.placeholder(tf.float32, None)
        y = tf_qdq.raw_ops.QuantizeAndDequantizeV2(input=x, input_min=lo, input_max=lo, range_given=True, axis=1)
        with tf.compat.v1.Session(graph=g) as sess:
            with pytest.raises(tf.errors.InvalidArgumentError, match="input_min_tensor has incorrect size"):
                sess.run(y, {x: np.zeros((2, 3), F32), lo: np.zeros(2, F32)})
            out = sess.run(y, {x: np.full((2, 3), 0.3, F32), lo: np.array([-1, -1, -1], F32)})
            assert out.shape == (2, 3)


# ----------------------------------------------------------------------------- SavedModel


OUTPUT_KEYS = ["v1", "v2", "v2_pc", "v3", "v3_pc", "v4", "v4_pc", "v4_data", "v4_grad", "half_v2", "half_v4_pc"]


def _run(program, cwd, *args):
    """Runs tests/children/PROGRAM DIR (the same tf_qdq as this process) in `cwd`."""
    return run_child(program, *args, env=dict(child_env(), TF_CPP_MIN_LOG_LEVEL="2"), cwd=cwd, timeout=300, check=False)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("qdq_saved_model")
    x = np.linspace(-4, 4, 40, dtype=F32).reshape(10, 4)
    x[0] = [0.5, -0.5, 1.25, -0.0]
    x[1] = [np.nan, np.inf, -np.inf, 2.0]
    np.save(d / "x.npy", x)
    r = _run("qdq_module.py", d, d)
    assert r.returncode == 0 and "SAVED" in r.stdout, r.stderr[-3000:]
    return d


@pytest.mark.slow
def test_saved_model_reloads_bit_identical_with_plugin(saved_model):
    d = saved_model
    r = _run("saved_model_load.py", d, d)
    assert r.returncode == 0 and "LOADED" in r.stdout, r.stderr[-3000:]
    for k in OUTPUT_KEYS:
        assert_same_bits(np.load(d / f"loaded_{k}.npy"), np.load(d / f"saved_{k}.npy"), f"reloaded {k}")


@pytest.mark.slow
def test_saved_model_outputs_match_this_process(saved_model):
    # The saving process's outputs are the real results (the same as computing
    # them here), so the reload comparison is not vacuous.
    ns = runpy.run_path(os.path.join(CHILDREN, "qdq_module.py"))
    x = np.load(saved_model / "x.npy")
    here = ns["QdqModule"]()(tf.constant(x))
    assert sorted(here) == sorted(OUTPUT_KEYS)
    for k in OUTPUT_KEYS:
        assert_same_bits(np.load(saved_model / f"saved_{k}.npy"), here[k], f"saved {k}")
    assert np.load(saved_model / "saved_half_v2.npy").dtype == np.float16
    # a few values pinned independently: per-channel gradient mask with upstream x + 1
    xf = x.astype(F32)
    mask = (xf >= ns["CLO"]) & (xf <= ns["CHI"])
    with np.errstate(invalid="ignore"):
        expected = (xf + F32(1)) * mask.astype(F32)  # inf * 0 -> NaN, as in the kernel
    assert_same_bits(here["v4_grad"], expected, "v4_grad")


@pytest.mark.slow
def test_saved_model_without_plugin_fails_with_op_not_registered(saved_model):
    r = _run("saved_model_load_without_plugin.py", saved_model, saved_model)
    assert r.returncode == 3, (r.stdout[-2000:], r.stderr[-3000:])
    assert "Op type not registered 'TfQdq>QuantizeAndDequantize" in r.stdout, r.stdout[-2000:]
