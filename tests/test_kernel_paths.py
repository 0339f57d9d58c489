"""Differential tests aimed at the code paths of the CPU loops (kernels/qdq_cpu*.cc):
vector bodies and scalar tails, the 1024-element conversion chunks of half and
bfloat16 (SSE2 table), bfloat16's two-vector loops (AVX2 / AVX-512: 16 / 32
elements), block boundaries of the thread-pool split (128K elements), the rows
and cols layouts of per-channel (inner == 1, small inner, inner >= 32, many
positions), the range pass split by positions or by blocks, the sign of a
zero maximum (zero minima: test_zero_sign.py), in-place execution, the
optional streaming stores, and every
instruction-set table (TF_QDQ_CPU_ISA=sse2|avx512 in subprocesses; the default
AVX2 in-process).

Outputs must equal tf_qdq.reference.builtin(...) bit for bit (NumPy reference
where no built-in defines the result: NaN data with a computed range,
docs/semantics.md#diff-nan-in-data). bfloat16 NaN outputs are compared as NaN only: TensorFlow's own
float32 -> bfloat16 cast gives -NaN as 0x7fc0 or 0xffc0 depending on the
element's position, so the reference has no single bit pattern.

Run directly (python tests/test_kernel_paths.py [--quick]) for a summary."""

import itertools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import ALL_DTYPES as DTYPES
from qdq_testing import BFLOAT16 as BF16
from qdq_testing import child_env, half_cast_keeps_nan_payload, run_child

import tf_qdq
from tf_qdq import reference

OPS = {
    "V2": tf_qdq.raw_ops.QuantizeAndDequantizeV2,
    "V3": tf_qdq.raw_ops.QuantizeAndDequantizeV3,
    "V4": tf_qdq.raw_ops.QuantizeAndDequantizeV4,
    "V4Grad": tf_qdq.raw_ops.QuantizeAndDequantizeV4Grad,
}

# (shape, axis): per-tensor sizes around vector widths, chunks and blocks; per-channel layouts.
PER_TENSOR_SIZES = [
    1,
    2,
    7,
    15,
    16,
    17,
    31,
    33,
    63,
    64,
    65,
    127,
    129,
    1023,
    1024,
    1025,
    2049,
    32 * 1024 - 1,
    32 * 1024,
    32 * 1024 + 1,
    64 * 1024 + 3,
    100003,
    2 * 128 * 1024 + 3,
]  # two blocks
PER_CHANNEL = [
    ((5, 7), 0),
    ((5, 7), 1),
    ((3, 256), 1),
    ((2, 3, 5), 0),
    ((2, 3, 5), 1),
    ((2, 3, 5), 2),
    ((4, 1000, 3), 1),  # cols, inner 3
    ((2, 40, 33), 1),  # rows, inner 33
    ((2, 40, 31), 1),  # cols, inner 31
    ((70001, 2), 1),  # cols inner 1, flat blocks with per-block accumulators
    ((3, 20011), 1),  # cols with >= 16K positions: range split by positions
    ((1, 17000, 3), 1),  # cols inner 3, positions split
    ((3, 17000, 40), 1),  # rows, channels split
    ((300, 257, 1), 1),  # inner 1 from a trailing 1; range over 8 rows at a time
    ((50, 33), 1),
    ((20, 64, 3), 1),  # cols, whole periods 8 at a time plus remainders
    ((1, 1), 0),
    ((1, 9), 0),
    ((9, 1), 1),
    ((40000, 1), 0),
]


def _values(rng, n, dtype, specials):
    x = rng.standard_normal(n) * rng.choice([1e-3, 1.0, 7.0, 300.0])
    if n > 4:
        k = max(1, n // 16)
        idx = rng.choice(n, size=k, replace=False)
        x[idx] = rng.choice([0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 1e-6, -1e-6], size=k)
    if specials and n > 3:
        idx = rng.choice(n, size=max(1, n // 50), replace=False)
        x[idx] = rng.choice([np.nan, -np.nan, np.inf, -np.inf], size=idx.size)
    x = x.astype(dtype)
    if dtype == np.float16 and n > 8:  # subnormals, values that round to inf, NaN payloads
        u = x.view(np.uint16)
        idx = rng.choice(n, size=max(1, n // 40), replace=False)
        u[idx] = rng.choice(
            [0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x8000, 0x0000]
            + ([0x7D23, 0xFE01, 0x7C01] if specials else []),
            size=idx.size,
        )
    return x


def _compare(ours, ref, dtype):
    a = np.ascontiguousarray(ours.numpy() if hasattr(ours, "numpy") else ours)
    e = np.ascontiguousarray(ref.numpy() if hasattr(ref, "numpy") else ref)
    assert a.shape == e.shape and a.dtype == e.dtype
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    au, eu = a.view(u), e.view(u)
    if dtype == BF16:
        an, en = np.isnan(a.astype(np.float32)), np.isnan(e.astype(np.float32))
        bad = (an != en) | (~an & (au != eu))
    elif dtype == np.float16 and not half_cast_keeps_nan_payload():
        # the reference's casts drop NaN payloads (tests/qdq_testing.py): NaN and sign only
        an, en = np.isnan(a), np.isnan(e)
        bad = (an != en) | (~an & (au != eu)) | (an & (np.signbit(a) != np.signbit(e)))
    else:
        bad = au != eu
    return int(np.count_nonzero(bad)), np.flatnonzero(bad)[:3], a, e


def cases(quick=False, seed=0):
    """Yields (label, op, kwargs, dtype, reference-kind)."""
    rng = np.random.default_rng(seed)
    sizes = PER_TENSOR_SIZES[::3] if quick else PER_TENSOR_SIZES
    layouts = [((n,), -1) for n in sizes] + (PER_CHANNEL[::2] if quick else PER_CHANNEL)
    for shape, axis in layouts:
        for dtype in DTYPES:
            n = int(np.prod(shape))
            depth = 1 if axis == -1 else shape[axis]
            mshape = () if axis == -1 else (depth,)
            rg = bool(rng.integers(2))
            specials = rg and bool(rng.integers(2))
            x = _values(rng, n, dtype, specials).reshape(shape)
            lo = (-np.abs(rng.standard_normal(mshape)) * 2 - rng.choice([0.0, 0.1])).astype(dtype)
            hi = (np.abs(rng.standard_normal(mshape)) * 2 + rng.choice([0.0, 0.1])).astype(dtype)
            signed = bool(rng.integers(4))  # mostly signed
            num_bits = int(rng.choice([1, 2, 4, 8, 8, 8, 13, 16, 23, 30]))
            if not signed and num_bits == 1:
                num_bits = 2
            narrow = bool(rng.integers(2))
            rm = str(rng.choice(["HALF_TO_EVEN", "HALF_UP"]))
            kw = dict(
                input=x,
                input_min=lo,
                input_max=hi,
                signed_input=signed,
                num_bits=num_bits,
                range_given=rg,
                round_mode=rm,
                narrow_range=narrow,
                axis=axis,
            )
            label = (
                f"{np.dtype(dtype).name} {shape} axis={axis} rg={rg} {rm} bits={num_bits} "
                f"signed={signed} narrow={narrow}"
            )
            yield label, "V2", kw, dtype
            if rg:
                kw3 = dict(kw)
                kw3.pop("round_mode")
                yield label + " V3", "V3", kw3, dtype
            g = _values(rng, n, dtype, specials=True).reshape(shape)
            yield label + " V4Grad", "V4Grad", dict(gradients=g, input=x, input_min=lo, input_max=hi, axis=axis), dtype
    # Zero maxima (sign of zero outputs), all-NaN / inf data with a computed range.
    for dtype in DTYPES:
        for shape, axis in (((4096 + 3,), -1), ((70001, 2), 1), ((3, 9, 40), 1), ((50000,), -1)):
            x = -np.abs(rng.standard_normal(shape)).astype(dtype)
            x.flat[::7] = -0.0
            if shape[0] % 2:
                x.flat[-1] = 0.0  # one +0.0 at the very end
            z = np.zeros(() if axis == -1 else (shape[axis],), dtype)
            for rm in ("HALF_TO_EVEN", "HALF_UP"):
                yield (
                    f"{np.dtype(dtype).name} zero max {shape} {rm}",
                    "V2",
                    dict(input=x, input_min=z, input_max=z, axis=axis, round_mode=rm),
                    dtype,
                )
        x = rng.standard_normal(5000).astype(dtype)
        x[1234] = np.inf
        z = np.zeros((), dtype)
        yield f"{np.dtype(dtype).name} inf in data", "V2", dict(input=x, input_min=z, input_max=z), dtype
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(40000).astype(dtype)
        x[rng.choice(40000, 300, replace=False)] = np.nan
        z = np.zeros((), dtype)
        yield (
            f"{np.dtype(dtype).name} NaN in data (docs/semantics.md#diff-nan-in-data)",
            "numpy",
            dict(input=x, input_min=z, input_max=z),
            dtype,
        )


def _ambiguous_zero_max(kw):
    """A computed range whose maximum is a zero in a channel holding both +0.0 and -0.0: the
    sign of that maximum is implementation-defined in TensorFlow (docs/semantics.md#differences-from-tensorflow: ours is +0.0)."""
    if kw.get("range_given", False):
        return False
    x = np.asarray(kw["input"]).astype(np.float64)
    axis = kw.get("axis", -1)
    v = x.reshape(1, 1, -1) if axis == -1 else x.reshape(int(np.prod(x.shape[:axis])), x.shape[axis], -1)
    v = np.moveaxis(v, 1, 0).reshape(v.shape[1], -1)
    with np.errstate(invalid="ignore"):
        mx = np.nanmax(np.where(np.isnan(v), -np.inf, v), axis=1)
    pos = np.any((v == 0) & ~np.signbit(v), axis=1)
    neg = np.any((v == 0) & np.signbit(v), axis=1)
    return bool(np.any((mx == 0) & pos & neg))


def _reference(op, kw):
    if op in ("V2", "V4") and _ambiguous_zero_max(kw):
        op = "numpy"
    if op == "numpy":
        k = dict(kw)
        return reference.numpy_qdq(k.pop("input"), **k)
    ref = reference.builtin(op, **kw)
    if ref is None:  # per-channel given range with HALF_UP: no built-in
        k = dict(kw)
        return reference.numpy_qdq(k.pop("input"), **k)
    return ref[0] if op == "V4Grad" else ref


def run_grid(quick=False, seed=0, verbose=False):
    """Returns (cases run, list of failure strings)."""
    failures, count = [], 0
    for label, op, kw, dtype in cases(quick, seed):
        ours = OPS["V2" if op == "numpy" else op](**kw)
        if op == "V4Grad":
            ours = ours[0]
        ref = _reference(op, kw)
        bad, idx, a, e = _compare(ours, ref, dtype)
        count += 1
        if bad:
            detail = ", ".join(f"[{i}] {a.flat[i]!r} vs {e.flat[i]!r}" for i in idx)
            failures.append(f"{label}: {bad} differ: {detail}")
            if verbose:
                print("DIFF", failures[-1])
    return count, failures


def test_grid_default_isa():
    count, failures = run_grid()
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["half", "bfloat16"])
def test_all_16bit_patterns(dtype):
    """Every half / bfloat16 bit pattern (subnormals, ties, overflow to inf, NaN payloads) through
    the conversions and the vector and scalar loops, against the float32 built-in."""
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)
    finite = x[np.isfinite(x.astype(np.float32))]
    configs = [
        (-1.0, 1.0, 8, True, False),
        (-65504.0, 65504.0, 8, True, True),
        (0.0, 1e-3, 4, False, False),
        (-3.0, 0.5, 13, True, True),
        (-1e-5, 2e-5, 2, True, False),
    ]
    for lo, hi, bits, signed, narrow in configs:
        for rm in ("HALF_TO_EVEN", "HALF_UP"):
            kw = dict(
                input=x,
                input_min=dtype(lo),
                input_max=dtype(hi),
                range_given=True,
                num_bits=bits,
                signed_input=signed,
                narrow_range=narrow,
                round_mode=rm,
            )
            bad = _compare(OPS["V2"](**kw), reference.builtin("V2", **kw), dtype)[0]
            assert bad == 0, (lo, hi, bits, rm)
            kw = dict(kw, input=finite, range_given=False)
            bad = _compare(OPS["V2"](**kw), reference.builtin("V2", **kw), dtype)[0]
            assert bad == 0, ("data", bits, rm)
    kw = dict(gradients=x[::-1].copy(), input=x, input_min=dtype(-2), input_max=dtype(3))
    assert _compare(OPS["V4Grad"](**kw)[0], reference.builtin("V4Grad", **kw)[0], dtype)[0] == 0


def test_v4grad_unbounded_range():
    """V4Grad against [-inf, +inf] (the gradient of V4 with a range computed from the data) hands
    the gradient on unchanged when no element would change, and otherwise multiplies: a NaN input
    anywhere (first element, past the 16K-element pieces, last element), a NaN gradient, a
    subnormal gradient (flushed by the product for float32, float64 and bfloat16; kept for half,
    whose subnormals are normal floats). Per tensor and per channel, against the built-in."""
    rng = np.random.default_rng(11)
    n = 40000
    for dtype in DTYPES:
        tiny = BF16(1e-39) if dtype == BF16 else np.finfo(dtype).tiny / dtype(4)  # a subnormal
        for where in (None, 0, 20000, n - 1):
            for spoil in ("x nan", "g nan", "g subnormal", "g -0 and inf"):
                x = rng.standard_normal(n).astype(dtype)
                g = (rng.standard_normal(n) * 1e-3).astype(dtype)
                if where is not None:
                    if spoil == "x nan":
                        x[where] = np.nan
                    elif spoil == "g nan":
                        g[where] = np.nan
                    elif spoil == "g subnormal":
                        g[where] = -tiny
                    else:
                        g[where], g[(where + 1) % n] = dtype(-0.0), dtype(-np.inf)
                for shape, axis in (((n,), -1), ((n // 8, 8), 1)):
                    depth = () if axis == -1 else (8,)
                    lo = np.full(depth, -np.inf, dtype)
                    hi = np.full(depth, np.inf, dtype)
                    kw = dict(gradients=g.reshape(shape), input=x.reshape(shape), input_min=lo, input_max=hi, axis=axis)
                    bad, first, a, _ = _compare(OPS["V4Grad"](**kw)[0], reference.builtin("V4Grad", **kw)[0], dtype)
                    assert bad == 0, (np.dtype(dtype).name, where, spoil, axis, first)
    # Every half and bfloat16 pattern as a gradient (subnormals, -0, inf, NaN payloads).
    for dtype in (np.float16, BF16):
        g = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)
        for keep in (np.isfinite(g.astype(np.float32)), np.ones(g.size, bool)):
            gk = g[keep]
            kw = dict(
                gradients=gk,
                input=np.linspace(-3, 3, gk.size).astype(dtype),
                input_min=dtype(-np.inf),
                input_max=dtype(np.inf),
            )
            assert _compare(OPS["V4Grad"](**kw)[0], reference.builtin("V4Grad", **kw)[0], dtype)[0] == 0


def test_bfloat16_nan_bits():
    """bfloat16 NaN outputs are 0x7fc0 with the sign of the float32 result (Eigen's scalar
    conversion) in vector bodies and tails alike, for QDQ and V4Grad; half NaN keeps its payload
    (as TensorFlow's F16C cast)."""
    for n in (5, 40, 1031):
        x = np.linspace(-1, 1, n).astype(BF16)
        u = x.view(np.uint16)
        u[::3] = 0xFFC1  # -NaN with a payload
        u[1::3] = 0x7F81  # +NaN (signaling pattern)
        out = OPS["V2"](input=x, input_min=BF16(-1), input_max=BF16(1), range_given=True)
        ob = out.numpy().view(np.uint16)
        assert np.all(ob[::3] == 0xFFC0) and np.all(ob[1::3] == 0x7FC0), (n, ob[:6])
        # V4Grad: NaN gradients inside and outside [min, max] (g * 1 and g * 0).
        g = x.copy()
        xr = np.linspace(-2, 2, n).astype(BF16)
        grad = OPS["V4Grad"](gradients=g, input=xr, input_min=BF16(-1), input_max=BF16(1))[0]
        gb = grad.numpy().view(np.uint16)
        assert np.all(gb[::3] == 0xFFC0) and np.all(gb[1::3] == 0x7FC0), (n, gb[:6])
        h = np.linspace(-1, 1, n).astype(np.float16)
        hu = h.view(np.uint16)
        hu[::3] = 0xFD23  # signaling NaN, payload 0x123: comes out quiet with its payload
        out = OPS["V2"](input=h, input_min=np.float16(-1), input_max=np.float16(1), range_given=True)
        assert np.all(out.numpy().view(np.uint16)[::3] == 0xFF23), n


def test_large():
    """Outputs of 16 MB and more (several blocks per thread, range merging, 16-bit chunks)."""
    rng = np.random.default_rng(3)
    n = (16 << 20) // 4 + 5
    x = rng.standard_normal(n).astype(np.float32)
    lo, hi = np.float32(-1.5), np.float32(2.0)
    for dtype in (np.float32, np.float16):
        xd = x.astype(dtype) if dtype == np.float32 else np.tile(x, 2)[: 2 * n].astype(dtype)
        low, high = dtype(lo), dtype(hi)
        for rg in (False, True):
            kw = dict(input=xd, input_min=low, input_max=high, range_given=rg)
            assert _compare(OPS["V2"](**kw), reference.builtin("V2", **kw), dtype)[0] == 0
        kw = dict(gradients=xd[::-1].copy(), input=xd, input_min=low, input_max=high)
        assert _compare(OPS["V4Grad"](**kw)[0], reference.builtin("V4Grad", **kw)[0], dtype)[0] == 0


def test_in_place_in_tf_function():
    """Inside a graph the input buffer is forwarded to the output (out == in)."""
    rng = np.random.default_rng(1)
    for dtype in DTYPES:
        for n in (100003, 4099):
            x = rng.standard_normal(n).astype(dtype)
            one = np.ones((), dtype)
            lo, hi = np.asarray(-1, dtype), np.asarray(1.5, dtype)
            for rg in (False, True):
                f = tf.function(lambda t: OPS["V2"](input=t * one, input_min=lo, input_max=hi, range_given=rg))
                ref = reference.builtin("V2", input=x, input_min=lo, input_max=hi, range_given=rg)
                bad = _compare(f(tf.constant(x)), ref, dtype)[0]
                assert bad == 0, (np.dtype(dtype).name, n, rg)
            g = tf.function(lambda t: OPS["V4Grad"](gradients=t * one, input=t, input_min=lo, input_max=hi)[0])
            ref = reference.builtin("V4Grad", gradients=x, input=x, input_min=lo, input_max=hi)[0]
            assert _compare(g(tf.constant(x)), ref, dtype)[0] == 0


@pytest.mark.parametrize("isa,stream", [("sse2", True), ("avx2", True), ("avx512", True)])
def test_grid_other_isa(isa, stream):
    """The grid (quick) with the table for `isa` (TF_QDQ_CPU_ISA; avx512 only where the CPU has
    it, else the default table again), and with non-temporal stores for every output
    (TF_QDQ_STREAM_BYTES=0: unaligned heads and short tails; by default only outputs of 24 MiB
    and more stream), in a fresh
    process. (The default table, AVX2 on most machines, runs the full grid in-process.)"""
    env = dict(child_env(), TF_QDQ_CPU_ISA=isa)
    if stream:
        env["TF_QDQ_STREAM_BYTES"] = "0"
    run_child("check_in_child.py", "test_kernel_paths", "run_grid", "quick=True", "seed=7", env=env, timeout=300)


# ---- half and bfloat16: the range on bit patterns, bfloat16's paired rounding ---------------------

# Lengths around the key vectors of the range (8 / 16 / 32 lanes, four at a time) and bfloat16's
# pairs of float vectors (16 / 32 / 64 elements), for every table.
# (AVX2 reduces ranges of 512 elements and more on keys.)
SIXTEEN_LENGTHS = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 96, 127, 128, 129, 255, 256, 257, 511, 512]
SIXTEEN_LENGTHS += [513, 1031]


def _nan_patterns(dtype):
    """Every NaN bit pattern of the 16-bit type, both signs (quiet and signaling, all payloads)."""
    inf = 0x7C00 if dtype == np.float16 else 0x7F80
    pos = np.arange(inf + 1, 0x8000, dtype=np.uint32)
    return np.concatenate([pos, pos | 0x8000]).astype(np.uint16)


def sixteen_bit_cases(seed=0):
    """Yields (label, op, kwargs, dtype) for the 16-bit paths: ranges computed from the data on the
    bit patterns (NaN of both signs in vector bodies and tails, -0/+0, +-inf, all NaN), and
    bfloat16 outputs that are rounding ties (the range [-192, 1] with 8 signed bits gives
    inv = 1.5, so the outputs 1.5 * q need 9 significant bits half of the time) mixed with NaN."""
    rng = np.random.default_rng(seed)
    for dtype in (np.float16, BF16):
        name = np.dtype(dtype).name
        nans = _nan_patterns(dtype)
        # Every finite pattern up to |x| <= 8 and every NaN pattern, shuffled; range from the data.
        eight = np.asarray(8.0, dtype).view(np.uint16)
        pats = np.arange(0, int(eight) + 1, dtype=np.uint32)
        allp = np.concatenate([pats, pats | 0x8000, nans]).astype(np.uint16)
        for order in range(2):
            u = rng.permutation(allp)
            for rm in ("HALF_TO_EVEN", "HALF_UP"):
                yield (
                    f"{name} all patterns |x|<=8 and every NaN, order {order} {rm}",
                    "V2",
                    dict(input=u.view(dtype), input_min=dtype(0), input_max=dtype(0), round_mode=rm),
                    dtype,
                )
        # Short lengths, NaN of both signs planted in the body or the tail, the extremes anywhere.
        for n in SIXTEEN_LENGTHS:
            for spoil in ("none", "-nan", "+nan", "both", "tail", "all nan", "zeros"):
                x = (rng.standard_normal(n) * 3).astype(dtype)
                u = x.view(np.uint16)
                if spoil == "zeros":  # every value a zero of either sign, NaN of both signs
                    u[:] = rng.choice([0x0000, 0x8000], n)
                if spoil in ("-nan", "both", "zeros"):
                    u[rng.integers(n)] = nans[len(nans) // 2 + rng.integers(len(nans) // 2)]
                if spoil in ("+nan", "both", "zeros"):
                    u[rng.integers(n)] = nans[rng.integers(len(nans) // 2)]
                if spoil == "tail":
                    u[-1] = nans[-1]
                if spoil == "all nan":
                    u[:] = rng.choice(nans, n)
                if spoil not in ("zeros", "all nan") and n > 2:
                    u[rng.integers(n)] = np.asarray(-np.inf if rng.integers(4) == 0 else -40.0, dtype).view(np.uint16)
                    u[rng.integers(n)] = np.asarray(0.0 if rng.integers(4) == 0 else 50.0, dtype).view(np.uint16)
                yield f"{name} n={n} range {spoil}", "V2", dict(input=x, input_min=dtype(0), input_max=dtype(0)), dtype
        # Per channel, rows layout (inner >= 32: one range call per run; AVX2 reduces runs of 512
        # and more on keys, shorter ones in floats), NaN of both signs.
        for inner in (40, 600):
            x = (rng.standard_normal((3, 5, inner)) * 2).astype(dtype)
            xu = x.view(np.uint16).reshape(-1)
            xu[rng.choice(xu.size, 30, replace=False)] = rng.choice(nans, 30)
            z = np.zeros(5, dtype)
            kw = dict(input=x, input_min=z, input_max=z, axis=1)
            yield f"{name} rows layout inner {inner} with NaN", "V2", kw, dtype
        # Rounding ties: outputs 1.5 * q, q in [-128, 127], given range and range from the data.
        for n in SIXTEEN_LENGTHS + [4099]:
            x = np.linspace(-200.0, 3.0, n).astype(dtype)
            x = rng.permutation(x)
            if n > 4:
                u = x.view(np.uint16)
                u[rng.choice(n, max(1, n // 9), replace=False)] = rng.choice(nans, max(1, n // 9))
            for rm in ("HALF_TO_EVEN", "HALF_UP"):
                yield (
                    f"{name} n={n} ties given {rm}",
                    "V2",
                    dict(input=x, input_min=dtype(-192), input_max=dtype(1), range_given=True, round_mode=rm),
                    dtype,
                )
            with np.errstate(invalid="ignore"):  # NaN passes np.clip
                xd = np.clip(x.astype(np.float32), -192, 1).astype(dtype)
            xd[:2] = (-192, 1) if n >= 2 else xd[:2]
            yield f"{name} n={n} ties data", "V2", dict(input=xd, input_min=dtype(0), input_max=dtype(0)), dtype


def sixteen_bit_grad_cases(seed=0):
    """Yields (label, "V4Grad", kwargs, dtype) for V4Grad of half and bfloat16 on the bit patterns:
    every pattern as x (NaN of both signs, subnormals, zeros of both signs, +-inf) against bounds
    that are zeros of either sign, subnormals, infinities or normal values, with gradients free of
    inf, NaN and subnormals (the integer path); then short lengths and 1024-element chunks where
    one gradient is inf, NaN or subnormal (that chunk takes the float path)."""
    rng = np.random.default_rng(seed)
    for dtype in (np.float16, BF16):
        name = np.dtype(dtype).name
        x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)
        tiny = np.asarray(0x0001, np.uint16).view(dtype)
        bounds = [0.0, -0.0, tiny, -tiny, np.inf, -np.inf, 1.5, -2.0, 1e-30, -1e-30]
        for _ in range(8):
            lo, hi = (dtype(bounds[i]) for i in rng.integers(len(bounds), size=2))
            g = (rng.standard_normal(x.size) + 0.01).astype(dtype)
            g[rng.integers(x.size, size=64)] = dtype(0.0)
            g[rng.integers(x.size, size=64)] = dtype(-0.0)
            xs = rng.permutation(x)
            label = f"{name} V4Grad every x, bounds [{lo!r}, {hi!r}]"
            yield label, "V4Grad", dict(gradients=g, input=xs, input_min=lo, input_max=hi), dtype
        for n in SIXTEEN_LENGTHS + [1024, 1025, 2048 + 7, 5000]:
            for spoil in ("none", "inf", "nan", "subnormal"):
                xs = rng.choice(x, n)
                g = (rng.standard_normal(n) * 3).astype(dtype)
                gu = g.view(np.uint16)
                if spoil != "none":
                    half = dtype == np.float16
                    bits = {"inf": 0x7C00 if half else 0x7F80, "nan": 0x7E23 if half else 0x7FC3, "subnormal": 0x0005}
                    gu[rng.integers(n)] = bits[spoil] | (0x8000 * int(rng.integers(2)))
                yield (
                    f"{name} V4Grad n={n} {spoil}",
                    "V4Grad",
                    dict(gradients=g, input=xs, input_min=dtype(-1.0), input_max=dtype(0.0)),
                    dtype,
                )


def run_sixteen(seed=0):
    """Runs sixteen_bit_cases against the reference (NumPy where NaN is in the data of a computed
    range); bfloat16 NaN outputs must also be 0x7fc0 with the NaN input's sign. Returns (cases,
    failures)."""
    failures, count = [], 0
    for label, op, kw, dtype in itertools.chain(sixteen_bit_cases(seed), sixteen_bit_grad_cases(seed)):
        if op == "V4Grad":
            bad, idx, a, e = _compare(OPS[op](**kw)[0], _reference(op, kw), dtype)
            if bad:
                detail = ", ".join(f"[{i}] {a.flat[i]!r} vs {e.flat[i]!r}" for i in idx)
                failures.append(f"{label}: {bad} differ: {detail}")
            count += 1
            continue
        x = np.asarray(kw["input"])
        has_nan = bool(np.isnan(x.astype(np.float32)).any())
        ref_op = "numpy" if (has_nan and not kw.get("range_given", False)) else op
        ours = OPS[op](**kw)
        bad, idx, a, e = _compare(ours, _reference(ref_op, kw), dtype)
        if bad:
            detail = ", ".join(f"[{i}] {a.flat[i]!r} vs {e.flat[i]!r}" for i in idx)
            failures.append(f"{label}: {bad} differ: {detail}")
        if dtype == BF16 and has_nan:
            xu = x.view(np.uint16).reshape(-1)
            nan_in = np.isnan(x.astype(np.float32)).reshape(-1)
            want = (xu[nan_in] & 0x8000) | 0x7FC0
            got = a.view(np.uint16).reshape(-1)[nan_in]
            if not np.array_equal(got, want):
                failures.append(f"{label}: NaN bits {got[got != want][:3]} instead of {want[got != want][:3]}")
        count += 1
    return count, failures


def test_sixteen_bit_paths():
    """The half / bfloat16 range and V4Grad on bit patterns and bfloat16's paired rounding (default
    table)."""
    count, failures = run_sixteen()
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("isa", ["sse2", "avx512"])
def test_sixteen_bit_paths_other_isa(isa):
    """test_sixteen_bit_paths with the table for `isa` (avx512 only where the CPU has it), plain
    stores (the paired bfloat16 loops run only without streaming), in a fresh process."""
    env = dict(child_env(), TF_QDQ_CPU_ISA=isa)
    env.pop("TF_QDQ_STREAM_BYTES", None)
    run_child("check_in_child.py", "test_kernel_paths", "run_sixteen", "seed=5", env=env, timeout=300)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    seed = int(os.environ.get("SEED", "0"))
    n, f = run_grid(quick=quick, seed=seed, verbose=True)
    print(f"{n} cases, {len(f)} with differences (TF_QDQ_CPU_ISA={os.environ.get('TF_QDQ_CPU_ISA', '')})")
    sys.exit(1 if f else 0)
