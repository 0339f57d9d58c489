"""GPU kernels.

- Registration (runs wherever the library was built with CUDA, GPU or not):
  every op has DEVICE_GPU kernels for the four dtypes, with the ranges (and
  V3's num_bits) in host memory, and the library needs no CUDA runtime at load
  time.
- Parity (needs a visible GPU): the GPU kernels give the same bit patterns as
  the CPU kernels over a grid of ops, dtypes, per-tensor/per-channel layouts,
  given/computed ranges, round modes, special values and empty tensors, NaN
  bits included: the GPU writes the CPU's NaNs (x86's: quiet(x) for a NaN
  input, the default NaN 0xffc00000 for an invalid operation; the CPU's
  16-bit conversions), see docs/gpu.md.

TF_QDQ_EXPECT_GPU=1 (set it on GPU machines) turns every "built without CUDA",
"no GPU visible" and "GPU kernels not registered" skip into a failure, so such
a run cannot pass by skipping.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import ALL_DTYPES as DTYPES  # noqa: F401
from qdq_testing import PLUGIN_OPS as OPS

import tf_qdq
from tf_qdq import _loader

CUDA_BUILD = _loader.built_with_cuda(tf_qdq.library_path())
GPUS = tf.config.list_physical_devices("GPU")
NO_CUDA_REASON = "tf_qdq was built without CUDA (nvcc not found at build time, or TF_QDQ_CUDA=0)"

EXPECT_GPU = os.environ.get("TF_QDQ_EXPECT_GPU", "").strip() not in ("", "0")


def skip_or_fail(reason: str) -> None:
    """Skips, or with TF_QDQ_EXPECT_GPU=1 fails: a GPU run must not pass by skipping."""
    if EXPECT_GPU:
        pytest.fail(f"TF_QDQ_EXPECT_GPU=1, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def _needs_cuda_build():
    if CUDA_BUILD is None:
        skip_or_fail(NO_CUDA_REASON)


@pytest.fixture
def _needs_gpu(_needs_cuda_build):
    if not GPUS:
        skip_or_fail("no GPU visible")
    _skip_if_driver_too_old()


requires_cuda_build = pytest.mark.usefixtures("_needs_cuda_build")
requires_gpu = pytest.mark.usefixtures("_needs_gpu")


# --- registration (no GPU needed) ---------------------------------------------

HOST_MEMORY = {
    "TfQdq>QuantizeAndDequantize": set(),
    "TfQdq>QuantizeAndDequantizeV2": {"input_min", "input_max"},
    "TfQdq>QuantizeAndDequantizeV3": {"input_min", "input_max", "num_bits"},
    "TfQdq>QuantizeAndDequantizeV4": {"input_min", "input_max"},
    "TfQdq>QuantizeAndDequantizeV4Grad": {"input_min", "input_max"},
}


def _gpu_kernels(op_name):
    from tensorflow.python.framework import kernels

    return [k for k in kernels.get_registered_kernels_for_op(op_name).kernel if k.device_type == "GPU"]


def _skip_if_driver_too_old():
    """With an NVIDIA driver older than the CUDA runtime linked in, the library
    deliberately leaves its GPU kernels unregistered (and logs a warning), so
    the ops run on the CPU instead of failing on the GPU."""
    if GPUS and not _gpu_kernels("TfQdq>QuantizeAndDequantizeV2"):
        skip_or_fail(
            "GPU kernels not registered: the NVIDIA driver is older than the CUDA runtime tf_qdq was "
            "built with (see the warning logged when the library loaded)"
        )


@requires_cuda_build
@pytest.mark.parametrize("op_name", sorted(HOST_MEMORY))
def test_gpu_kernels_registered(op_name):
    _skip_if_driver_too_old()
    gpu = _gpu_kernels(op_name)
    dtypes = set()
    for k in gpu:
        assert set(k.host_memory_arg) == HOST_MEMORY[op_name], (op_name, list(k.host_memory_arg))
        for c in k.constraint:
            if c.name == "T":
                dtypes.update(tf.as_dtype(t).name for t in c.allowed_values.list.type)
    assert dtypes == {"bfloat16", "float16", "float32", "float64"}, (op_name, dtypes)
    assert len(gpu) == 4, f"{op_name}: expected one GPU kernel per dtype, got {len(gpu)}"


def test_cuda_marker_matches_registration():
    if CUDA_BUILD is not None:
        _skip_if_driver_too_old()
    elif EXPECT_GPU:
        pytest.fail(f"TF_QDQ_EXPECT_GPU=1, but {NO_CUDA_REASON}", pytrace=False)
    has_gpu = bool(_gpu_kernels("TfQdq>QuantizeAndDequantizeV2"))
    assert has_gpu == (CUDA_BUILD is not None), (CUDA_BUILD, has_gpu)


@requires_cuda_build
def test_library_needs_no_cuda_runtime_at_load_time():
    readelf = shutil.which("readelf")
    if readelf is None:  # a tool, not the GPU: skipping is fine even with TF_QDQ_EXPECT_GPU
        pytest.skip("readelf not available")
    dynamic = subprocess.run([readelf, "-d", tf_qdq.library_path()], check=True, capture_output=True, text=True).stdout
    needed = [line for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert needed, dynamic
    assert not any("cudart" in line or "libcuda." in line for line in needed), needed


# --- parity: GPU against CPU (needs a GPU) -------------------------------------


def _data(shape, dtype, seed=0, specials=True):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    if specials and x.size >= 8:
        x.flat[:8] = [0.5, -0.5, 1.5, -2.5, 0.0, -0.0, 127.0, -128.0]
    return x.astype(dtype)


def _channels(n, seed, dtype):
    rng = np.random.default_rng(seed)
    lo = (-np.abs(rng.standard_normal(n)) - 0.5).astype(np.float32)
    hi = (np.abs(rng.standard_normal(n)) + 0.5).astype(np.float32)
    return lo.astype(dtype), hi.astype(dtype)


def _nan_payloads(dt):
    """NaNs of both signs, quiet and signaling, with payloads, among finite values and +inf."""
    size = np.dtype(dt).itemsize
    bits = {
        2: [0x7E01, 0xFE00, 0x7C01, 0xFD55, 0x7FFF, 0x3C00],
        4: [0x7FC00001, 0xFFC12345, 0x7F800001, 0xFFA00000, 0x7FFFFFFF, 0x3F800000],
        8: [0x7FF8000000000001, 0xFFF8123456789ABC, 0x7FF0000000000001, 0xFFF4000000000000, 0x3FF0000000000000],
    }[size]
    if np.dtype(dt) == np.dtype(tf.bfloat16.as_numpy_dtype):  # bfloat16 NaNs: exponent 0xff, payload bits
        bits = [0x7FC1, 0xFFC0, 0x7F81, 0xFFA0, 0x7FFF, 0x3F80]
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[size]
    nans = np.array(bits, u).view(dt)
    finite = np.array([0.25, -3.0, np.inf, 0.0], np.float32).astype(dt)
    return np.concatenate([nans, finite, nans[::-1]])


def _cases():
    """(id, op, kwargs) with kwargs of NumPy arrays in the case's dtype."""
    for dt in DTYPES:
        name = np.dtype(dt).name
        z = np.zeros((), dt)
        x = _data((64, 33, 16), dt)
        lo, hi = np.array(-2.5, dt), np.array(3.0, dt)
        for rm in ("HALF_TO_EVEN", "HALF_UP"):
            for op in ("V2", "V4"):
                yield f"{op}-data-{rm}-{name}", op, dict(input=x, input_min=z, input_max=z, round_mode=rm)
                yield (
                    f"{op}-given-{rm}-{name}",
                    op,
                    dict(input=x, input_min=lo, input_max=hi, range_given=True, round_mode=rm),
                )
            for axis, depth in ((0, 64), (1, 33), (2, 16)):
                clo, chi = _channels(depth, axis, dt)
                yield (
                    f"V2-axis{axis}-data-{rm}-{name}",
                    "V2",
                    dict(input=x, input_min=clo, input_max=chi, axis=axis, round_mode=rm),
                )
                yield (
                    f"V2-axis{axis}-given-{rm}-{name}",
                    "V2",
                    dict(input=x, input_min=clo, input_max=chi, axis=axis, round_mode=rm, range_given=True),
                )
        for bits, signed, narrow in (
            (1, True, False),
            (1, True, True),
            (2, True, True),
            (4, False, False),
            (8, True, True),
            (16, True, False),
            (16, False, False),
        ):
            tag = f"{bits}bit-{'s' if signed else 'u'}{'-narrow' if narrow else ''}-{name}"
            yield (
                f"V2-{tag}-data",
                "V2",
                dict(input=x, input_min=z, input_max=z, num_bits=bits, signed_input=signed, narrow_range=narrow),
            )
            yield (
                f"V2-{tag}-given",
                "V2",
                dict(
                    input=x,
                    input_min=np.array(0.0 if not signed else -1.0, dt),
                    input_max=np.array(1.0, dt),
                    num_bits=bits,
                    signed_input=signed,
                    narrow_range=narrow,
                    range_given=True,
                ),
            )
        # V3 (num_bits tensor, HALF_TO_EVEN), per tensor and per channel.
        yield f"V3-given-{name}", "V3", dict(input=x, input_min=lo, input_max=hi, num_bits=6)
        yield f"V3-data-{name}", "V3", dict(input=x, input_min=lo, input_max=hi, num_bits=8, range_given=False)
        clo, chi = _channels(33, 7, dt)
        yield f"V3-axis1-given-{name}", "V3", dict(input=x, input_min=clo, input_max=chi, num_bits=8, axis=1)
        yield (
            f"V3-axis1-data-{name}",
            "V3",
            dict(input=x, input_min=clo, input_max=chi, num_bits=5, axis=1, range_given=False, narrow_range=True),
        )
        # V1 (attrs).
        yield f"V1-given-{name}", "V1", dict(input=x, input_min=-2.5, input_max=3.0, range_given=True)
        yield f"V1-data-{name}", "V1", dict(input=x, num_bits=7)
        # Special values.
        sp = np.array([1, np.nan, 0.5, np.inf, -np.inf, -0.0, 0.0, -1e-3, 2.0, -7.0], np.float32).astype(dt)
        yield (
            f"V2-nan-inf-given-{name}",
            "V2",
            dict(input=sp, input_min=np.array(-1, dt), input_max=np.array(1, dt), range_given=True),
        )
        yield (
            f"V2-nan-inf-given-halfup-{name}",
            "V2",
            dict(
                input=sp, input_min=np.array(-1, dt), input_max=np.array(1, dt), range_given=True, round_mode="HALF_UP"
            ),
        )
        # NaN payloads and signs (quiet and signaling), and generated NaNs (+inf in the data).
        pay = _nan_payloads(dt)
        yield (
            f"V2-nan-payloads-given-{name}",
            "V2",
            dict(input=pay, input_min=np.array(-1, dt), input_max=np.array(1, dt), range_given=True),
        )
        yield f"V2-nan-payloads-data-{name}", "V2", dict(input=pay, input_min=z, input_max=z)
        yield (
            f"V4Grad-nan-payloads-{name}",
            "V4Grad",
            dict(gradients=pay, input=pay[::-1].copy(), input_min=np.array(-1, dt), input_max=np.array(1, dt)),
        )
        nan_only = np.array([1, np.nan, 0.5, -0.0, np.nan, -3.0], np.float32).astype(dt)
        yield f"V2-nan-data-{name}", "V2", dict(input=nan_only, input_min=z, input_max=z)
        yield (
            f"V2-inf-data-{name}",
            "V2",
            dict(input=np.array([1, np.inf, 0.5], np.float32).astype(dt), input_min=z, input_max=z),
        )
        # Per channel: an all-NaN channel, zero-only channels of either sign
        # (the sign of a zero maximum), negative-only channels.
        ch = np.array(
            [[np.nan, -0.0, 0.0, -0.0, -1.0], [np.nan, -0.0, -0.0, 0.0, -2.0], [np.nan, 0.0, -0.0, -0.0, -0.5]],
            np.float32,
        ).astype(dt)
        for rm in ("HALF_TO_EVEN", "HALF_UP"):
            for signed in (True, False):
                yield (
                    f"V2-zero-sign-channels-{rm}-{'s' if signed else 'u'}-{name}",
                    "V2",
                    dict(
                        input=ch,
                        input_min=np.zeros(5, dt),
                        input_max=np.zeros(5, dt),
                        axis=1,
                        round_mode=rm,
                        signed_input=signed,
                    ),
                )
                yield (
                    f"V2-zero-sign-tensor-{rm}-{'s' if signed else 'u'}-{name}",
                    "V2",
                    dict(input=-np.abs(ch), input_min=z, input_max=z, round_mode=rm, signed_input=signed),
                )
        # Many channels (several reduction windows), channels-last and inner > 1.
        big = _data((3, 4100), dt, seed=3)
        yield (
            f"V4-4100-channels-last-data-{name}",
            "V4",
            dict(input=big, input_min=np.zeros(4100, dt), input_max=np.zeros(4100, dt), axis=1),
        )
        blo, bhi = _channels(4100, 3, dt)
        yield (
            f"V4-4100-channels-given-{name}",
            "V4",
            dict(input=big, input_min=blo, input_max=bhi, axis=1, range_given=True),
        )
        big2 = _data((2, 2500, 3), dt, seed=4)
        yield (
            f"V4-2500-channels-inner3-data-{name}",
            "V4",
            dict(input=big2, input_min=np.zeros(2500, dt), input_max=np.zeros(2500, dt), axis=1),
        )
        # A larger tensor (grid-stride loops over many blocks).
        large = _data((1 << 21) + 3, dt, seed=5)
        yield f"V2-large-data-{name}", "V2", dict(input=large, input_min=z, input_max=z)
        large2 = _data((1 << 13, 257), dt, seed=6)
        yield (
            f"V2-large-axis0-data-{name}",
            "V2",
            dict(input=large2, input_min=np.zeros(1 << 13, dt), input_max=np.zeros(1 << 13, dt), axis=0),
        )
        # Empty tensors, also with an empty channel dimension.
        e = np.zeros((0,), dt)
        yield f"V2-empty-data-{name}", "V2", dict(input=e, input_min=z, input_max=z)
        yield f"V2-empty-given-{name}", "V2", dict(input=e, input_min=lo, input_max=hi, range_given=True)
        yield (
            f"V2-empty-channels-{name}",
            "V2",
            dict(
                input=np.zeros((3, 0, 2), dt),
                input_min=np.zeros(0, dt),
                input_max=np.zeros(0, dt),
                axis=1,
                range_given=True,
            ),
        )
        yield (
            f"V2-empty-outer-{name}",
            "V2",
            dict(
                input=np.zeros((0, 4), dt),
                input_min=-np.ones(4, dt),
                input_max=np.ones(4, dt),
                axis=1,
                range_given=True,
            ),
        )
        # V4Grad.
        g = _data((64, 33, 16), dt, seed=9)[::-1].copy()
        yield f"V4Grad-tensor-{name}", "V4Grad", dict(gradients=g, input=x, input_min=lo, input_max=hi)
        for axis, depth in ((0, 64), (1, 33), (2, 16)):
            clo, chi = _channels(depth, axis + 10, dt)
            yield (
                f"V4Grad-axis{axis}-{name}",
                "V4Grad",
                dict(gradients=g, input=x, input_min=clo, input_max=chi, axis=axis),
            )
        gs = np.array([np.inf, 2, 3, np.nan, np.inf, -0.0], np.float32).astype(dt)
        xs = np.array([-2, -1, np.nan, 2, 0, 0.5], np.float32).astype(dt)
        yield (
            f"V4Grad-specials-{name}",
            "V4Grad",
            dict(gradients=gs, input=xs, input_min=np.array(-1, dt), input_max=np.array(1, dt)),
        )
        yield f"V4Grad-empty-{name}", "V4Grad", dict(gradients=e, input=e, input_min=lo, input_max=hi)
        yield (
            f"V4Grad-empty-channels-{name}",
            "V4Grad",
            dict(
                gradients=np.zeros((2, 0), dt),
                input=np.zeros((2, 0), dt),
                input_min=np.zeros(0, dt),
                input_max=np.zeros(0, dt),
                axis=1,
            ),
        )


CASES = list(_cases())


def assert_same_bits(gpu, cpu, msg, nan_bits=True):
    """Bit for bit; nan_bits=False lets any NaN match any NaN (for the NumPy reference only)."""
    g, c = np.asarray(gpu), np.asarray(cpu)
    assert g.shape == c.shape and g.dtype == c.dtype, f"{msg}: {g.shape}/{g.dtype} vs {c.shape}/{c.dtype}"
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[g.dtype.itemsize]
    gb, cb = np.ascontiguousarray(g).view(u), np.ascontiguousarray(c).view(u)
    same = gb == cb
    if not nan_bits:
        same |= np.isnan(g.astype(np.float64)) & np.isnan(c.astype(np.float64))
    bad = ~same
    if bad.any():
        idx = np.flatnonzero(bad)[:5]
        detail = ", ".join(
            f"[{i}] gpu {g.flat[i]!r} (0x{int(gb.flat[i]):x}) cpu {c.flat[i]!r} (0x{int(cb.flat[i]):x})" for i in idx
        )
        raise AssertionError(f"{msg}: {int(bad.sum())} of {g.size} elements differ: {detail}")


def _run(op, kw, device):
    with tf.device(device):
        out = OPS[op](**kw)
    outs = list(out) if op == "V4Grad" else [out]
    for t in outs:
        assert device.strip("/").split(":")[0] in t.device, f"{op} ran on {t.device}, not {device}"
    return [t.numpy() for t in outs]


@requires_gpu
@pytest.mark.parametrize("case_id,op,kw", CASES, ids=[c[0] for c in CASES])
def test_gpu_matches_cpu(case_id, op, kw):
    cpu = _run(op, kw, "/CPU:0")
    gpu = _run(op, kw, "/GPU:0")
    for k, (g, c) in enumerate(zip(gpu, cpu)):
        assert_same_bits(g, c, f"{case_id} output {k}")


@requires_gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gpu_in_tf_function_and_gradient(dtype):
    x = _data((8, 5, 4), dtype, seed=11)
    lo, hi = _channels(5, 12, dtype)
    w = tf.constant(_data((8, 5, 4), dtype, seed=13))

    def f(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = tf_qdq.quantize_and_dequantize_v2(t, lo, hi, range_given=True, axis=1)
            loss = tf.reduce_sum(y * w)
        return y, tape.gradient(loss, t)

    results = {}
    for device in ("/CPU:0", "/GPU:0"):
        with tf.device(device):  # a fresh tf.function per device: traced under that device scope
            y, dx = tf.function(f)(tf.constant(x))
        results[device] = (y.numpy(), dx.numpy())
    for k in range(2):
        assert_same_bits(results["/GPU:0"][k], results["/CPU:0"][k], f"tf.function output {k}")


@requires_gpu
def test_gpu_errors_are_clean():
    """Validation runs on the host before any launch: the same InvalidArgument on the GPU."""
    with tf.device("/GPU:0"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="Invalid range"):
            OPS["V2"](input=np.ones(4, np.float32), input_min=np.float32(1), input_max=np.float32(0), range_given=True)
        with pytest.raises(tf.errors.InvalidArgumentError):
            OPS["V2"](
                input=np.ones((2, 3), np.float32),
                input_min=np.zeros(2, np.float32),
                input_max=np.ones(2, np.float32),
                range_given=True,
                axis=1,
            )


@requires_gpu
@pytest.mark.parametrize("dtype,tiny", [(np.float32, 1e-39), (np.float64, 1e-310)], ids=["float32", "float64"])
def test_gpu_keeps_subnormals_the_cpu_flushes(dtype, tiny):
    """The documented difference (docs/gpu.md): TensorFlow runs CPU kernels with flush-to-zero and
    denormals-are-zero, so the CPU kernels (like the built-in ops) flush subnormal inputs, bounds and
    intermediates; the GPU kernels are compiled with -ftz=false and compute with IEEE subnormals,
    as the NumPy reference does."""
    from tf_qdq import reference

    x = np.array([tiny, -tiny / 2, 3.0, 0.0], dtype)
    for kw in (
        dict(input=x, input_min=dtype(-tiny), input_max=dtype(tiny), range_given=True),
        dict(input=x[:2].copy(), input_min=dtype(0), input_max=dtype(0)),
    ):
        cpu = _run("V2", kw, "/CPU:0")[0]
        gpu = _run("V2", kw, "/GPU:0")[0]
        ieee = reference.numpy_qdq(
            kw["input"], kw["input_min"], kw["input_max"], range_given=kw.get("range_given", False)
        )
        assert_same_bits(gpu, ieee, f"GPU vs the IEEE NumPy reference, subnormals {kw}", nan_bits=False)
        assert not np.array_equal(np.ascontiguousarray(gpu).view(np.uint8), np.ascontiguousarray(cpu).view(np.uint8)), (
            f"the CPU kernel should flush subnormals where the GPU keeps them: {kw}"
        )
