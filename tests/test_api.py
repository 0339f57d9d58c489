"""The Python API (docs/semantics.md#python-api), the loader and `python -m tf_qdq`. The kernels'
validation messages are in test_messages.py."""

import importlib
import inspect
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import BFLOAT16, RAW_NAMES, assert_same_bits, child_env, run_child

import tf_qdq
from tf_qdq import _loader

F32 = np.float32
R = tf_qdq.raw_ops

RAW_NAME_LIST = list(RAW_NAMES.values())


def _env():
    """Subprocesses import the same tf_qdq as this process (the source tree or the installed
    package), whatever their working directory."""
    return dict(child_env(), TF_CPP_MIN_LOG_LEVEL="2")


def _data(shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * np.arange(1, shape[-1] + 1)).astype(F32)
    x.reshape(-1)[:4] = [0.5, -0.5, 1.5, -2.5]
    return x


# ----------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
        (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
    ],
    ids=["quantize_and_dequantize", "quantize_and_dequantize_v2"],
)
def test_signature_matches_tensorflow(ours, theirs):
    a, b = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert list(a) == list(b)
    assert [p.default for p in a.values()] == [p.default for p in b.values()]
    assert [p.kind for p in a.values()] == [p.kind for p in b.values()]
    assert a["axis"].default is None and a["round_mode"].default == "HALF_TO_EVEN"


@pytest.mark.parametrize("name", RAW_NAME_LIST)
def test_raw_ops_exist_with_tensorflow_keyword_names(name):
    ours = getattr(tf_qdq.raw_ops, name)
    theirs = getattr(tf.raw_ops, name)
    assert name in tf_qdq.raw_ops.__all__
    pa, pb = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert list(pa) == list(pb)
    assert {k: p.default for k, p in pa.items()} == {k: p.default for k, p in pb.items()}


@pytest.mark.parametrize("name", RAW_NAME_LIST)
def test_raw_ops_are_keyword_only(name):
    op = getattr(tf_qdq.raw_ops, name)
    args = {
        "QuantizeAndDequantize": [np.ones(3, F32)],
        "QuantizeAndDequantizeV4Grad": [np.ones(3, F32)] * 2 + [F32(0), F32(1)],
    }.get(name, [np.ones(3, F32), F32(0), F32(1)] + ([8] if name.endswith("V3") else []))
    with pytest.raises(TypeError, match="only takes keyword args"):
        op(*args)
    # and with keywords the same call works
    names = list(inspect.signature(op).parameters)
    out = op(**dict(zip(names, args)))
    assert (out[0] if isinstance(out, tuple) else out).shape == (3,)


def test_raw_ops_run_with_tensorflow_keywords_and_match():
    x, lo, hi = _data(), F32(-1.0), F32(2.0)
    kw = dict(
        input=x,
        input_min=lo,
        input_max=hi,
        signed_input=False,
        num_bits=3,
        range_given=True,
        round_mode="HALF_UP",
        narrow_range=True,
        axis=-1,
    )
    assert_same_bits(R.QuantizeAndDequantizeV2(**kw), tf.raw_ops.QuantizeAndDequantizeV2(**kw), "V2")
    assert_same_bits(R.QuantizeAndDequantizeV4(**kw), tf.raw_ops.QuantizeAndDequantizeV4(**kw), "V4")
    kw3 = dict(
        input=x,
        input_min=lo,
        input_max=hi,
        num_bits=5,
        signed_input=True,
        range_given=True,
        narrow_range=False,
        axis=-1,
    )
    assert_same_bits(R.QuantizeAndDequantizeV3(**kw3), tf.raw_ops.QuantizeAndDequantizeV3(**kw3), "V3")


# ----------------------------------------------------------------------------- inputs


RANGES = [
    (-0.0, 0.0),
    (0.0, -0.0),
    (-1.3, 2.7),
    (-1, 2),
    (np.float32(-1.3), np.float64(2.7)),
    (np.float16(-0.0), np.float16(0.5)),
    (-1e-45, 3.4e38),
    (0.1, 0.2),
]


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.float16, BFLOAT16], ids=["float32", "float64", "half", "bfloat16"]
)
@pytest.mark.parametrize("api", ["quantize_and_dequantize", "quantize_and_dequantize_v2"])
def test_eager_fast_path_equals_the_general_path(api, dtype):
    """An eager call with Python/NumPy range values (converted once per dtype and value, then
    reused) gives the bits of the same call in a tf.function and with explicit tensors, whatever
    came before (0.0 and -0.0 are different values here)."""
    fn = getattr(tf_qdq, api)
    x = tf.constant(_data((4, 3)).astype(dtype))
    for lo, hi in RANGES + RANGES[::-1]:
        with np.errstate(over="ignore"):  # 3.4e38 is inf in half
            eager = fn(x, lo, hi, range_given=True)
            traced = tf.function(lambda t: fn(t, lo, hi, range_given=True), autograph=False)(x)
            explicit = fn(x, tf.constant(np.asarray(lo, dtype)), tf.constant(np.asarray(hi, dtype)), range_given=True)
        assert_same_bits(eager, traced, f"{lo!r}, {hi!r} eager vs tf.function")
        assert_same_bits(eager, explicit, f"{lo!r}, {hi!r} eager vs tensors")


def test_eager_range_conversion_keeps_the_sign_of_zero():
    from tf_qdq import ops

    enum = tf.float32.as_datatype_enum
    for first, second in [(0.0, -0.0), (-0.0, 0.0), (np.float32(0), np.float32(-0.0))]:
        a, b = ops._eager_range(first, enum, "input_min"), ops._eager_range(second, enum, "input_min")
        assert np.signbit(a.numpy()) == np.signbit(first) and np.signbit(b.numpy()) == np.signbit(second)
        assert a.device.endswith("CPU:0") and b.dtype == tf.float32


def test_numpy_input_and_python_float_range():
    x = _data()
    ours = tf_qdq.quantize_and_dequantize(x, -1.0, 2.0, range_given=True, num_bits=4)
    theirs = tf.quantization.quantize_and_dequantize(tf.constant(x), -1.0, 2.0, range_given=True, num_bits=4)
    assert_same_bits(ours, theirs, "V2 numpy input")
    ours = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 2.0, range_given=True, round_mode="HALF_UP")
    theirs = tf.quantization.quantize_and_dequantize_v2(
        tf.constant(x), -1.0, 2.0, range_given=True, round_mode="HALF_UP"
    )
    assert_same_bits(ours, theirs, "V4 numpy input")
    assert ours.dtype == tf.float32


def test_float64_numpy_input_with_python_and_numpy_range():
    x = _data().astype(np.float64)
    ours = tf_qdq.quantize_and_dequantize(x, np.float64(-1.0), 2, range_given=True)
    theirs = tf.quantization.quantize_and_dequantize(
        tf.constant(x), tf.constant(-1.0, tf.float64), tf.constant(2.0, tf.float64), range_given=True
    )
    assert ours.dtype == tf.float64
    assert_same_bits(ours, theirs, "float64")


def test_python_list_input_and_list_range():
    ours = tf_qdq.quantize_and_dequantize_v2(
        [[0.3, -2.0], [1.0, 4.0]], [-1.0, -3.0], [1.0, 3.0], range_given=True, axis=1
    )
    expected = R.QuantizeAndDequantizeV4(
        input=np.array([[0.3, -2.0], [1.0, 4.0]], F32),
        input_min=np.array([-1.0, -3.0], F32),
        input_max=np.array([1.0, 3.0], F32),
        range_given=True,
        axis=1,
    )
    assert_same_bits(ours, expected, "lists")


@pytest.mark.parametrize("dtype", [np.float16, BFLOAT16], ids=["half", "bfloat16"])
def test_low_precision_input_with_python_floats(dtype):
    x = _data().astype(dtype)
    ours = tf_qdq.quantize_and_dequantize(x, -1.0, 2.0, range_given=True)
    assert ours.dtype == tf.as_dtype(dtype)
    ref = tf.quantization.quantize_and_dequantize(tf.constant(x.astype(F32)), -1.0, 2.0, range_given=True)
    assert_same_bits(ours, ref.numpy().astype(dtype), "half/bfloat16 = float32 result cast")


@pytest.mark.parametrize(
    "fn,builtin",
    [
        (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
        (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
    ],
    ids=["v2", "v4"],
)
@pytest.mark.parametrize("neg,pos", [(-1, 2), (-2, 1), (-3, 0)])
def test_negative_axis_counts_from_the_end(fn, builtin, neg, pos):
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(F32) * np.array([1, 5, 50], F32)[:, None]
    c = x.shape[pos]
    z = np.zeros(c, F32)
    ours_neg = fn(x, z, z, axis=neg)
    ours_pos = fn(x, z, z, axis=pos)
    assert_same_bits(ours_neg, ours_pos, "negative vs positive axis")
    assert_same_bits(ours_neg, builtin(tf.constant(x), z, z, axis=neg), "vs TensorFlow")
    # per channel, not per tensor
    assert not np.array_equal(ours_neg.numpy(), fn(x, F32(0), F32(0)).numpy())


def test_negative_axis_with_given_range_equals_positive_axis():
    x = _data((2, 3, 4))
    lo = np.array([-1.0, -0.5, -2.0, -0.25], F32)
    hi = np.array([1.0, 0.5, 2.0, 4.0], F32)
    for fn in (tf_qdq.quantize_and_dequantize, tf_qdq.quantize_and_dequantize_v2):
        a = fn(x, lo, hi, range_given=True, axis=-1)
        b = fn(x, lo, hi, range_given=True, axis=2)
        assert_same_bits(a, b, "axis=-1 vs axis=2")
        # the same as V3 per channel in TensorFlow (deliberate difference 6.1)
        ref = tf.raw_ops.QuantizeAndDequantizeV3(input=x, input_min=lo, input_max=hi, num_bits=8, axis=2)
        assert_same_bits(a, ref, "vs TensorFlow's V3")


@pytest.mark.parametrize(
    "fn,builtin",
    [
        (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
        (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
    ],
    ids=["v2", "v4"],
)
def test_axis_none_is_per_tensor(fn, builtin):
    x = _data()
    for kw in (dict(range_given=True), dict()):
        a = fn(x, -1.0, 2.0, axis=None, **kw)
        assert_same_bits(a, fn(x, -1.0, 2.0, **kw), "axis=None vs default")
        assert_same_bits(a, builtin(tf.constant(x), -1.0, 2.0, axis=None, **kw), "vs TensorFlow")
        assert_same_bits(
            a, R.QuantizeAndDequantizeV2(input=x, input_min=F32(-1), input_max=F32(2), axis=-1, **kw), "vs raw axis=-1"
        )


def test_negative_axis_needs_known_rank_in_tf_function():
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def f(x):
        return tf_qdq.quantize_and_dequantize(x, [0.0], [0.0], axis=-1)

    with pytest.raises(ValueError, match="known rank"):
        f.get_concrete_function()


@pytest.mark.parametrize(
    "value",
    [
        np.arange(6, dtype=np.int32),
        np.arange(6, dtype=np.int64),
        np.arange(6, dtype=np.uint8),
        np.array([True, False]),
        np.array([1 + 2j], np.complex64),
        np.array(["a"]),
        [1, 2, 3],
    ],
    ids=["int32", "int64", "uint8", "bool", "complex64", "string", "python-ints"],
)
@pytest.mark.parametrize("fn", [tf_qdq.quantize_and_dequantize, tf_qdq.quantize_and_dequantize_v2], ids=["v2", "v4"])
def test_non_float_input_raises_clear_type_error(fn, value):
    dtype_name = tf.convert_to_tensor(value).dtype.name
    with pytest.raises(TypeError) as e:
        fn(value, 0.0, 1.0, range_given=True)
    msg = str(e.value)
    assert dtype_name in msg and "float32" in msg and "bfloat16" in msg, msg


@pytest.mark.parametrize("which", ["input_min", "input_max"])
@pytest.mark.parametrize("other", [tf.float64, tf.float16, tf.int32])
def test_range_tensor_of_another_dtype_raises_type_error(which, other):
    x = tf.constant(_data())
    kw = dict(input_min=tf.constant(-1.0), input_max=tf.constant(1.0))
    kw[which] = tf.cast(kw[which], other)
    for fn in (tf_qdq.quantize_and_dequantize, tf_qdq.quantize_and_dequantize_v2):
        with pytest.raises(TypeError) as e:
            fn(x, kw["input_min"], kw["input_max"], range_given=True)
        assert which in str(e.value) and other.name in str(e.value) and "float32" in str(e.value)


@pytest.mark.parametrize("axis", [-3, -4, -100])
def test_out_of_range_negative_axis_raises_value_error(axis):
    x = _data()  # rank 2: TensorFlow's wrapper turns -3 into -1 (per-tensor) silently
    for fn in (tf_qdq.quantize_and_dequantize, tf_qdq.quantize_and_dequantize_v2):
        with pytest.raises(ValueError, match=str(axis)):
            fn(x, [0.0] * 3, [0.0] * 3, axis=axis)


def test_non_integer_axis_raises_type_error():
    with pytest.raises(TypeError):
        tf_qdq.quantize_and_dequantize(_data(), 0.0, 1.0, axis=1.0)


def test_name_is_used():
    @tf.function
    def f(x):
        return tf_qdq.quantize_and_dequantize_v2(x, 0.0, 1.0, name="my_qdq")

    g = f.get_concrete_function(tf.TensorSpec([3], tf.float32)).graph
    assert any(op.name == "my_qdq" and op.type == "TfQdq>QuantizeAndDequantizeV4" for op in g.get_operations())


# ----------------------------------------------------------------------------- op names in graphs


def test_op_type_names_in_traced_graph():
    @tf.function
    def f(x, lo, hi, g):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y4 = tf_qdq.quantize_and_dequantize_v2(x, lo, hi, range_given=True)
        return [
            tf_qdq.quantize_and_dequantize(x, lo, hi),
            y4,
            tape.gradient(y4, x, output_gradients=g),
            R.QuantizeAndDequantize(input=x),
            R.QuantizeAndDequantizeV3(input=x, input_min=lo, input_max=hi, num_bits=8),
        ]

    spec = tf.TensorSpec([4], tf.float32)
    g = f.get_concrete_function(spec, tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float32), spec).graph
    types = {op.type for op in g.get_operations()}
    assert set(tf_qdq.OP_NAMES) <= types, types
    assert not any(t.startswith("QuantizeAndDequantize") for t in types)  # no built-in ops
    assert tf_qdq.OP_NAMES == (
        "TfQdq>QuantizeAndDequantize",
        "TfQdq>QuantizeAndDequantizeV2",
        "TfQdq>QuantizeAndDequantizeV3",
        "TfQdq>QuantizeAndDequantizeV4",
        "TfQdq>QuantizeAndDequantizeV4Grad",
    )


def test_wrappers_use_v2_and_v4_ops():
    def types(fn):
        g = tf.function(fn).get_concrete_function(tf.TensorSpec([3], tf.float32)).graph
        return [op.type for op in g.get_operations() if "Quantize" in op.type]

    assert types(lambda x: tf_qdq.quantize_and_dequantize(x, 0.0, 1.0)) == ["TfQdq>QuantizeAndDequantizeV2"]
    assert types(lambda x: tf_qdq.quantize_and_dequantize_v2(x, 0.0, 1.0)) == ["TfQdq>QuantizeAndDequantizeV4"]


# ----------------------------------------------------------------------------- loader


def test_import_twice_loads_library_once(monkeypatch):
    calls = []
    real = _loader.tf.load_op_library

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(_loader.tf, "load_op_library", counting)
    again = importlib.import_module("tf_qdq")
    import tf_qdq as again2  # noqa: F401

    assert again is tf_qdq and again2 is tf_qdq
    first = _loader.load()
    second = _loader.load()
    assert calls == []
    assert first is second is tf_qdq.ops._lib is tf_qdq.raw_ops._lib


def test_library_path_and_recorded_version():
    path = tf_qdq.library_path()
    assert path and os.path.isfile(path)
    assert os.path.basename(path) == "_tf_qdq_ops.so" or os.environ.get("TF_QDQ_LIBRARY")
    built = _loader.built_against(path)
    assert built is not None
    assert built.split(".")[:2] == tf.__version__.split(".")[:2]


@pytest.fixture(scope="module")
def loader_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("loader")
    real = tf_qdq.library_path()
    built = _loader.built_against(real)
    parts = built.split(".")
    parts[1] = "9" * len(parts[1])
    fake = ".".join(parts)
    assert fake != built and len(fake) == len(built)
    data = open(real, "rb").read()
    marker = f"TF_QDQ_BUILT_AGAINST_TF={built};".encode()
    assert marker in data
    patched = d / "_tf_qdq_ops.so"
    patched.write_bytes(data.replace(marker, f"TF_QDQ_BUILT_AGAINST_TF={fake};".encode()))
    assert _loader.built_against(str(patched)) == fake
    missing = d / "no_such_dir" / "_tf_qdq_ops.so"
    r = run_child("load_attempts.py", patched, missing, real, env=_env(), cwd=d, timeout=300)
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines() if line[:5] in ("PATCH", "MISSI", "REAL:"))
    return dict(lines=lines, fake=fake, built=built, patched=str(patched), missing=str(missing), real=real)


@pytest.mark.slow
def test_version_mismatch_import_error(loader_run):
    msg = loader_run["lines"]["PATCHED"]
    assert msg.startswith("IMPORTERROR "), msg
    assert loader_run["fake"] in msg  # the version the library was built against
    assert tf.__version__ in msg  # the installed version
    assert "rebuild" in msg.lower() and "pip install" in msg


@pytest.mark.slow
def test_missing_library_import_error(loader_run):
    msg = loader_run["lines"]["MISSING"]
    assert msg.startswith("IMPORTERROR "), msg
    assert loader_run["missing"] in msg


@pytest.mark.slow
def test_real_library_still_loads_after_failures(loader_run):
    assert loader_run["lines"]["REAL"] == "OK " + loader_run["real"]


def _second_copy(tmp_path, first):
    """Runs tests/children/second_copy.py in a fresh process: `first` is "copy" (load a copy of the library
    from another path before importing tf_qdq), "same" (load the very file tf_qdq loads) or
    "none"; returns its output line."""
    real = tf_qdq.library_path()
    copy = tmp_path / "elsewhere" / "_tf_qdq_ops.so"
    copy.parent.mkdir()
    copy.write_bytes(open(real, "rb").read())
    r = run_child("second_copy.py", copy if first == "copy" else real, first, env=_env(), cwd=tmp_path, timeout=300)
    return r.stdout.strip().splitlines()[-1], str(copy), real


@pytest.mark.slow
def test_second_copy_of_the_library_is_an_import_error_naming_both_files(tmp_path):
    line, copy, real = _second_copy(tmp_path, "copy")
    assert line.startswith("IMPORTERROR "), line
    assert os.path.realpath(copy) in line and real in line
    assert "another copy of the op library is already loaded" in line
    assert "Load only one copy" in line and "TF_QDQ_LIBRARY" in line


@pytest.mark.slow
def test_library_loaded_first_from_the_same_file_is_reused(tmp_path):
    line, _, _ = _second_copy(tmp_path, "same")
    want = tf_qdq.quantize_and_dequantize_v2(tf.constant([0.25, -1.0, 3.0]), -1.0, 1.0, range_given=True)
    assert line == f"OK {want.numpy().tolist()}", line


@pytest.mark.slow
def test_cli_self_check(tmp_path):
    r = run_child("-m", "tf_qdq", env=_env(), cwd=tmp_path, timeout=300)
    out = r.stdout
    assert tf_qdq.library_path() in out
    assert f"TensorFlow {tf.__version__}" in out
    for name in tf_qdq.OP_NAMES:
        m = re.search(rf"^\s+{re.escape(name)}\s+(.*)$", out, re.M)
        assert m, f"no kernels line for {name}"
        cpu = re.search(r"CPU: ([^;]*)", m.group(1))
        assert cpu, m.group(0)
        assert {d.strip() for d in cpu.group(1).split(",")} == {"bfloat16", "float16", "float32", "float64"}
    assert "all bit-identical" in out
    assert "DIFFERS" not in out
