"""The Python API (docs/semantics.md#python-api), the loader, `python -m tf_qdq`, and the
kernel validation messages of docs/semantics.md#validation (compared with tf.raw_ops)."""
import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from tf_qdq import _loader
from conftest import BFLOAT16, PLUGIN_OPS, assert_same_bits
from _tfversion import tf_number_text

F32 = np.float32
R = tf_qdq.raw_ops

RAW_NAMES = ["QuantizeAndDequantize", "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3",
             "QuantizeAndDequantizeV4", "QuantizeAndDequantizeV4Grad"]


# Subprocesses import the same tf_qdq as this process (the source tree or the
# installed package), whatever their working directory.
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tf_qdq.__file__)))


def _env():
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PKG_PARENT, env.get("PYTHONPATH")) if p)
    return env


def _data(shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * np.arange(1, shape[-1] + 1)).astype(F32)
    x.reshape(-1)[:4] = [0.5, -0.5, 1.5, -2.5]
    return x


# ----------------------------------------------------------------------------- signatures


@pytest.mark.parametrize("ours,theirs", [
    (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
    (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
], ids=["quantize_and_dequantize", "quantize_and_dequantize_v2"])
def test_signature_matches_tensorflow(ours, theirs):
    a, b = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert list(a) == list(b)
    assert [p.default for p in a.values()] == [p.default for p in b.values()]
    assert [p.kind for p in a.values()] == [p.kind for p in b.values()]
    assert a["axis"].default is None and a["round_mode"].default == "HALF_TO_EVEN"


@pytest.mark.parametrize("name", RAW_NAMES)
def test_raw_ops_exist_with_tensorflow_keyword_names(name):
    ours = getattr(tf_qdq.raw_ops, name)
    theirs = getattr(tf.raw_ops, name)
    assert name in tf_qdq.raw_ops.__all__
    pa, pb = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert list(pa) == list(pb)
    assert {k: p.default for k, p in pa.items()} == {k: p.default for k, p in pb.items()}


@pytest.mark.parametrize("name", RAW_NAMES)
def test_raw_ops_are_keyword_only(name):
    op = getattr(tf_qdq.raw_ops, name)
    args = {"QuantizeAndDequantize": [np.ones(3, F32)],
            "QuantizeAndDequantizeV4Grad": [np.ones(3, F32)] * 2 + [F32(0), F32(1)]}.get(
        name, [np.ones(3, F32), F32(0), F32(1)] + ([8] if name.endswith("V3") else []))
    with pytest.raises(TypeError, match="only takes keyword args"):
        op(*args)
    # and with keywords the same call works
    names = list(inspect.signature(op).parameters)
    out = op(**dict(zip(names, args)))
    assert (out[0] if isinstance(out, tuple) else out).shape == (3,)


def test_raw_ops_run_with_tensorflow_keywords_and_match():
    x, lo, hi = _data(), F32(-1.0), F32(2.0)
    kw = dict(input=x, input_min=lo, input_max=hi, signed_input=False, num_bits=3, range_given=True,
              round_mode="HALF_UP", narrow_range=True, axis=-1)
    assert_same_bits(R.QuantizeAndDequantizeV2(**kw), tf.raw_ops.QuantizeAndDequantizeV2(**kw), "V2")
    assert_same_bits(R.QuantizeAndDequantizeV4(**kw), tf.raw_ops.QuantizeAndDequantizeV4(**kw), "V4")
    kw3 = dict(input=x, input_min=lo, input_max=hi, num_bits=5, signed_input=True, range_given=True,
               narrow_range=False, axis=-1)
    assert_same_bits(R.QuantizeAndDequantizeV3(**kw3), tf.raw_ops.QuantizeAndDequantizeV3(**kw3), "V3")


# ----------------------------------------------------------------------------- inputs


def test_numpy_input_and_python_float_range():
    x = _data()
    ours = tf_qdq.quantize_and_dequantize(x, -1.0, 2.0, range_given=True, num_bits=4)
    theirs = tf.quantization.quantize_and_dequantize(tf.constant(x), -1.0, 2.0, range_given=True, num_bits=4)
    assert_same_bits(ours, theirs, "V2 numpy input")
    ours = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 2.0, range_given=True, round_mode="HALF_UP")
    theirs = tf.quantization.quantize_and_dequantize_v2(tf.constant(x), -1.0, 2.0, range_given=True,
                                                        round_mode="HALF_UP")
    assert_same_bits(ours, theirs, "V4 numpy input")
    assert ours.dtype == tf.float32


def test_float64_numpy_input_with_python_and_numpy_range():
    x = _data().astype(np.float64)
    ours = tf_qdq.quantize_and_dequantize(x, np.float64(-1.0), 2, range_given=True)
    theirs = tf.quantization.quantize_and_dequantize(tf.constant(x), tf.constant(-1.0, tf.float64),
                                                     tf.constant(2.0, tf.float64), range_given=True)
    assert ours.dtype == tf.float64
    assert_same_bits(ours, theirs, "float64")


def test_python_list_input_and_list_range():
    ours = tf_qdq.quantize_and_dequantize_v2([[0.3, -2.0], [1.0, 4.0]], [-1.0, -3.0], [1.0, 3.0],
                                             range_given=True, axis=1)
    expected = R.QuantizeAndDequantizeV4(input=np.array([[0.3, -2.0], [1.0, 4.0]], F32),
                                         input_min=np.array([-1.0, -3.0], F32),
                                         input_max=np.array([1.0, 3.0], F32), range_given=True, axis=1)
    assert_same_bits(ours, expected, "lists")


@pytest.mark.parametrize("dtype", [np.float16, BFLOAT16], ids=["half", "bfloat16"])
def test_low_precision_input_with_python_floats(dtype):
    x = _data().astype(dtype)
    ours = tf_qdq.quantize_and_dequantize(x, -1.0, 2.0, range_given=True)
    assert ours.dtype == tf.as_dtype(dtype)
    ref = tf.quantization.quantize_and_dequantize(tf.constant(x.astype(F32)), -1.0, 2.0, range_given=True)
    assert_same_bits(ours, ref.numpy().astype(dtype), "half/bfloat16 = float32 result cast")


@pytest.mark.parametrize("fn,builtin", [
    (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
    (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
], ids=["v2", "v4"])
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


@pytest.mark.parametrize("fn,builtin", [
    (tf_qdq.quantize_and_dequantize, tf.quantization.quantize_and_dequantize),
    (tf_qdq.quantize_and_dequantize_v2, tf.quantization.quantize_and_dequantize_v2),
], ids=["v2", "v4"])
def test_axis_none_is_per_tensor(fn, builtin):
    x = _data()
    for kw in (dict(range_given=True), dict()):
        a = fn(x, -1.0, 2.0, axis=None, **kw)
        assert_same_bits(a, fn(x, -1.0, 2.0, **kw), "axis=None vs default")
        assert_same_bits(a, builtin(tf.constant(x), -1.0, 2.0, axis=None, **kw), "vs TensorFlow")
        assert_same_bits(a, R.QuantizeAndDequantizeV2(input=x, input_min=F32(-1), input_max=F32(2),
                                                      axis=-1, **kw), "vs raw axis=-1")


def test_negative_axis_needs_known_rank_in_tf_function():
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def f(x):
        return tf_qdq.quantize_and_dequantize(x, [0.0], [0.0], axis=-1)

    with pytest.raises(ValueError, match="known rank"):
        f.get_concrete_function()


@pytest.mark.parametrize("value", [
    np.arange(6, dtype=np.int32), np.arange(6, dtype=np.int64), np.arange(6, dtype=np.uint8),
    np.array([True, False]), np.array([1 + 2j], np.complex64), np.array(["a"]), [1, 2, 3],
], ids=["int32", "int64", "uint8", "bool", "complex64", "string", "python-ints"])
@pytest.mark.parametrize("fn", [tf_qdq.quantize_and_dequantize, tf_qdq.quantize_and_dequantize_v2],
                         ids=["v2", "v4"])
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
        return [tf_qdq.quantize_and_dequantize(x, lo, hi),
                y4,
                tape.gradient(y4, x, output_gradients=g),
                R.QuantizeAndDequantize(input=x),
                R.QuantizeAndDequantizeV3(input=x, input_min=lo, input_max=hi, num_bits=8)]

    spec = tf.TensorSpec([4], tf.float32)
    g = f.get_concrete_function(spec, tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float32), spec).graph
    types = {op.type for op in g.get_operations()}
    assert set(tf_qdq.OP_NAMES) <= types, types
    assert not any(t.startswith("QuantizeAndDequantize") for t in types)  # no built-in ops
    assert tf_qdq.OP_NAMES == ("TfQdq>QuantizeAndDequantize", "TfQdq>QuantizeAndDequantizeV2",
                               "TfQdq>QuantizeAndDequantizeV3", "TfQdq>QuantizeAndDequantizeV4",
                               "TfQdq>QuantizeAndDequantizeV4Grad")


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


LOADER_SCRIPT = textwrap.dedent('''
    import os, sys
    patched, missing, real = sys.argv[1:4]

    def attempt(path):
        os.environ["TF_QDQ_LIBRARY"] = path
        for m in [m for m in sys.modules if m == "tf_qdq" or m.startswith("tf_qdq.")]:
            del sys.modules[m]
        try:
            import tf_qdq
        except ImportError as e:
            return "IMPORTERROR " + str(e).replace("\\n", " ")
        return "OK " + tf_qdq.library_path()

    print("PATCHED:", attempt(patched))
    print("MISSING:", attempt(missing))
    print("REAL:", attempt(real))
''')


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
    r = subprocess.run([sys.executable, "-c", LOADER_SCRIPT, str(patched), str(missing), real],
                       env=_env(), cwd=d, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
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


@pytest.mark.slow
def test_cli_self_check(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tf_qdq"], env=_env(), cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
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


# ----------------------------------------------------------------------------- kernel validation messages


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
    ("V2-num_bits-62-signed", "V2", "QuantizeAndDequantizeV2",
     dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=62),
     "num_bits is out of range: 62 with signed_input_ 1"),
    ("V2-num_bits-63-unsigned", "V2", "QuantizeAndDequantizeV2",
     dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=63, signed_input=False),
     "num_bits is out of range: 63 with signed_input_ 0"),
    ("V2-num_bits-2^30", "V2", "QuantizeAndDequantizeV2",
     dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=2 ** 30),
     "num_bits is out of range: 1073741824 with signed_input_ 1"),
    ("V4-num_bits-0", "V4", "QuantizeAndDequantizeV4",
     dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=0),
     "num_bits is out of range: 0 with signed_input_ 1"),
    ("V3-num_bits-62", "V3", "QuantizeAndDequantizeV3",
     dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=62),
     "num_bits is out of range: 62 with `signed_input_` 1"),
    ("V3-num_bits-0-unsigned", "V3", "QuantizeAndDequantizeV3",
     dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=0, signed_input=False),
     "num_bits is out of range: 0 with `signed_input_` 0"),
    ("V3-num_bits-negative", "V3", "QuantizeAndDequantizeV3",
     dict(input=x1, input_min=F32(0), input_max=F32(1), num_bits=-1),
     "num_bits is out of range: -1 with `signed_input_` 1"),
    ("V2-invalid-range-%g", "V2", "QuantizeAndDequantizeV2",
     dict(input=x1, input_min=F32(1.23456789e20), input_max=F32(1), range_given=True),
     f"Invalid range: input_min {tf_number_text(1.23456789e20)} > input_max 1"),
    ("V4-invalid-range", "V4", "QuantizeAndDequantizeV4",
     dict(input=x1, input_min=F32(2), input_max=F32(1), range_given=True),
     "Invalid range: input_min 2 > input_max 1"),
    ("V4-invalid-range-float64-tiny", "V4", "QuantizeAndDequantizeV4",
     dict(input=np.ones(3), input_min=np.float64(3e-300), input_max=np.float64(1e-300), range_given=True),
     "Invalid range: input_min 3e-300 > input_max 1e-300"),
    ("V4-invalid-range-inf", "V4", "QuantizeAndDequantizeV4",
     dict(input=x1, input_min=F32(np.inf), input_max=F32(-np.inf), range_given=True),
     "Invalid range: input_min inf > input_max -inf"),
    ("V2-invalid-range-nan", "V2", "QuantizeAndDequantizeV2",
     dict(input=x1, input_min=F32(np.nan), input_max=F32(1), range_given=True),
     "Invalid range: input_min nan > input_max 1"),
    ("V3-invalid-range", "V3", "QuantizeAndDequantizeV3",
     dict(input=x1, input_min=F32(2), input_max=F32(-0.5), num_bits=8),
     "Invalid range: input_min 2 > input_max -0.5"),
    ("V2-range-not-scalar", "V2", "QuantizeAndDequantizeV2",
     dict(input=x1, input_min=z2, input_max=o2, range_given=True),
     "input_min must be a scalar."),
    ("V2-axis-minus-2", "V2", "QuantizeAndDequantizeV2",
     dict(input=x2, input_min=z2, input_max=o2, axis=-2),
     "Axis must be at least -1. Found -2"),
    ("V4-axis-eq-rank", "V4", "QuantizeAndDequantizeV4",
     dict(input=x2, input_min=z2, input_max=o2, axis=2),
     "Shape must be at least rank 3 but is rank 2"),
    ("V3-per-channel-wrong-size", "V3", "QuantizeAndDequantizeV3",
     dict(input=x2, input_min=np.zeros(3, F32), input_max=o3, num_bits=8, axis=1),
     "input_min_tensor has incorrect size, was 3 expected 2 to match dim 1 of the input [3]"),
    ("V3-axis-too-large", "V3", "QuantizeAndDequantizeV3",
     dict(input=x2, input_min=z2, input_max=o2, num_bits=8, axis=2),
     "Axis requested is larger than input dimensions. Axis: 2 Input Dimensions: 2"),
    ("V3-axis-below-minus-dims", "V3", "QuantizeAndDequantizeV3",
     dict(input=x2, input_min=F32(0), input_max=F32(1), num_bits=8, axis=-3),
     "Axis requested is larger than input dimensions. Axis: -3 Input Dimensions: 2"),
    ("V3-num_bits-not-scalar", "V3", "QuantizeAndDequantizeV3",
     dict(input=x2, input_min=F32(0), input_max=F32(1), num_bits=np.array([8, 8], np.int32)),
     "Invalid shape. The `num_bits` tensor should be a scalar. Got dimensions: 1"),
    ("V4Grad-size-mismatch", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=np.ones(4, F32), input=x1, input_min=F32(0), input_max=F32(1)),
     "gradient and input must be the same size"),
    ("V4Grad-axis-eq-rank", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=x2, input=x2, input_min=z2, input_max=o2, axis=2),
     "Axis should be -1 or 0 or a positive value less than 2but given axis value was 2"),
    ("V4Grad-axis-minus-2", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=x2, input=x2, input_min=z2, input_max=o2, axis=-2),
     "Axis must be at least -1. Found -2"),
    ("V4Grad-min-rank-2", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=x2, input=x2, input_min=np.zeros((1, 2), F32), input_max=np.ones((1, 2), F32), axis=1),
     "Input min tensor must have dimension 0 or 1. Received 2."),
    ("V4Grad-per-tensor-min-not-scalar", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=x2, input=x2, input_min=z2, input_max=o2),
     "input_min must be a scalar if axis is unspecified"),
    ("V4Grad-empty-min-scalar-max", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=x2, input=x2, input_min=np.zeros(0, F32), input_max=F32(1)),
     "input_min must be a scalar if axis is unspecified"),
    ("V4Grad-min-wrong-size", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=x2, input=x2, input_min=np.zeros(3, F32), input_max=o3, axis=1),
     "min has incorrect size, expected 2 was 3"),
    ("V4Grad-max-wrong-size", "V4Grad", "QuantizeAndDequantizeV4Grad",
     dict(gradients=x2, input=x2, input_min=z2, input_max=o3, axis=1),
     "max has incorrect size, expected 2 was 3"),
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
        assert _core(str(ours)) == _core(str(theirs)) == \
            "input_min_tensor has incorrect size, was 3 expected 2 to match dim 1 of the input [3]"


@pytest.mark.parametrize("op", ["V2", "V3", "V4"])
def test_per_channel_min_greater_than_max_is_invalid_argument(op):
    # deliberate difference 6.8 (TensorFlow's V3 returns +-inf garbage)
    kw = dict(input=x2, input_min=np.array([0.0, 2.0], F32), input_max=o2, axis=1)
    kw.update(num_bits=8) if op == "V3" else kw.update(range_given=True)
    e = _error(PLUGIN_OPS[op], **kw)
    assert isinstance(e, tf.errors.InvalidArgumentError)
    assert "Invalid range: input_min 2 > input_max 1" in str(e)


@pytest.mark.parametrize("kw,expected", [
    (dict(num_bits=0), "num_bits is out of range: 0 with signed_input_ 1"),
    (dict(num_bits=62), "num_bits is out of range: 62 with signed_input_ 1"),
    (dict(num_bits=63, signed_input=False), "num_bits is out of range: 63 with signed_input_ 0"),
    (dict(range_given=True, input_min=2.0, input_max=1.0), "Invalid range: input_min 2 > input_max 1"),
    (dict(range_given=True, input_min=1.23456789e20, input_max=1.0),
     f"Invalid range: input_min {tf_number_text(1.23456789e20)} > input_max 1"),
])
def test_v1_validation_messages(kw, expected):
    # TensorFlow's V1 cannot run at all (removed at GraphDef version 22)
    e = _error(R.QuantizeAndDequantize, input=x1, **kw)
    assert isinstance(e, tf.errors.InvalidArgumentError)
    assert _core(str(e)) == expected


def test_v1_range_attrs_ignored_without_range_given():
    out = R.QuantizeAndDequantize(input=np.array([-1.0, 0.5, 2.0], F32), input_min=2.0, input_max=1.0)
    ref = tf.raw_ops.QuantizeAndDequantizeV2(input=np.array([-1.0, 0.5, 2.0], F32), input_min=F32(0),
                                             input_max=F32(0))
    assert_same_bits(out, ref, "V1 computed range")
