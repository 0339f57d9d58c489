"""`python -m tf_qdq`: what was loaded, which kernels exist, and a parity table
of every op against TensorFlow's built-in ops (or the documented references where the plugin deliberately differs)."""

import sys

import numpy as np
import tensorflow as tf

import tf_qdq
from tf_qdq import _loader, raw_ops, reference

_OPS = raw_ops.BY_VERSION


def registered_kernels():
    """{op name: sorted [(device, dtype)]} from TensorFlow's kernel registry."""
    from tensorflow.python.framework import kernels

    out = {}
    for name in tf_qdq.OP_NAMES:
        rows = []
        for k in kernels.get_registered_kernels_for_op(name).kernel:
            dtypes = [tf.as_dtype(t).name for c in k.constraint if c.name == "T" for t in c.allowed_values.list.type]
            rows += [(k.device_type, d) for d in dtypes]
        out[name] = sorted(rows)
    return out


def _cases(rng):
    """(label, op, kwargs) samples covering every op, both round modes, given and
    computed ranges, per-tensor and per-channel, and all four dtypes."""
    x = (rng.standard_normal((64, 33, 16)) * 3).astype(np.float32)
    x.flat[:8] = [0.5, -0.5, 1.5, -2.5, 0.0, -0.0, 127.0, -128.0]
    lo, hi = np.float32(-2.5), np.float32(3.0)
    clo = -np.abs(rng.standard_normal(33)).astype(np.float32) - 0.5
    chi = np.abs(rng.standard_normal(33)).astype(np.float32) + 0.5
    z = np.float32(0)
    for dtype in (np.float32, np.float64, tf.float16.as_numpy_dtype, tf.bfloat16.as_numpy_dtype):
        xd, lod, hid = x.astype(dtype), lo.astype(dtype), hi.astype(dtype)
        clod, chid, zd = clo.astype(dtype), chi.astype(dtype), z.astype(dtype)
        name = np.dtype(dtype).name
        for rm in ("HALF_TO_EVEN", "HALF_UP"):
            yield f"V2 data range {rm}", name, "V2", dict(input=xd, input_min=zd, input_max=zd, round_mode=rm)
            yield (
                f"V2 given range {rm}",
                name,
                "V2",
                dict(input=xd, input_min=lod, input_max=hid, range_given=True, round_mode=rm),
            )
        yield "V2 per-channel data axis=1", name, "V2", dict(input=xd, input_min=clod, input_max=chid, axis=1)
        yield (
            "V2 per-channel given axis=1",
            name,
            "V2",
            dict(input=xd, input_min=clod, input_max=chid, axis=1, range_given=True, narrow_range=True),
        )
        yield (
            "V2 unsigned 4 bit",
            name,
            "V2",
            dict(input=xd, input_min=zd, input_max=hid, num_bits=4, signed_input=False, range_given=True),
        )
        yield "V3 given range", name, "V3", dict(input=xd, input_min=lod, input_max=hid, num_bits=6)
        yield (
            "V3 per-channel given axis=1",
            name,
            "V3",
            dict(input=xd, input_min=clod, input_max=chid, num_bits=8, axis=1),
        )
        yield (
            "V4 per-channel data axis=2",
            name,
            "V4",
            dict(input=xd, input_min=np.zeros(16, dtype), input_max=np.zeros(16, dtype), axis=2),
        )
        yield "V1 given range", name, "V1", dict(input=xd, input_min=-2.5, input_max=3.0, range_given=True)
        yield (
            "V4Grad per-tensor",
            name,
            "V4Grad",
            dict(gradients=xd[::-1].copy(), input=xd, input_min=lod, input_max=hid),
        )
        yield (
            "V4Grad per-channel axis=1",
            name,
            "V4Grad",
            dict(gradients=xd[::-1].copy(), input=xd, input_min=clod, input_max=chid, axis=1),
        )


def parity(seed=0):
    """Rows of (case, dtype, elements, identical, differing): the plugin against
    the built-in ops, both on the CPU (TensorFlow's behaviour is pinned on the
    CPU; its own GPU kernels may fuse multiply-adds)."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, dtype, op, kw in _cases(rng):
        with tf.device("/CPU:0"):
            ours = _OPS[op](**kw)
            ref = reference.builtin(op, **kw)
        if op == "V4Grad":
            ours, ref = ours[0], ref[0]
        n = int(np.size(ours))
        bad = reference.count_differing(ours, ref)
        rows.append((label, dtype, n, n - bad, bad))
    return rows


def _same_bits(a, b):
    """Elements of a and b with identical bits. The GPU writes the CPU's NaN
    bits (docs/gpu.md), so NaN payloads and signs count too."""
    a, b = np.asarray(a), np.asarray(b)
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return int(np.count_nonzero(np.ascontiguousarray(a).view(u) == np.ascontiguousarray(b).view(u)))


def gpu_parity(seed=0):
    """Rows of (case, dtype, elements, identical, differing): the plugin's GPU
    kernels against its CPU kernels (requires a visible GPU)."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, dtype, op, kw in _cases(rng):
        with tf.device("/CPU:0"):
            cpu = _OPS[op](**kw)
        with tf.device("/GPU:0"):
            gpu = _OPS[op](**kw)
        if op == "V4Grad":
            cpu, gpu = cpu[0], gpu[0]
        cpu, gpu = cpu.numpy(), gpu.numpy()
        n = int(np.size(cpu))
        same = _same_bits(gpu, cpu)
        rows.append((label, dtype, n, same, n - same))
    return rows


def _print_table(rows):
    w = max(len(r[0]) for r in rows)
    print(f"  {'case':{w}s}  {'dtype':8s} {'elements':>9s} {'identical':>9s} {'differing':>9s}")
    for case, dtype, n, same, bad in rows:
        print(f"  {case:{w}s}  {dtype:8s} {n:9d} {same:9d} {bad:9d}{'  <-- DIFFERS' if bad else ''}")


def main(argv: "list[str] | None" = None) -> int:
    print(f"tf_qdq {tf_qdq.__version__}")
    print(f"library:            {tf_qdq.library_path()}")
    print(f"built against:      TensorFlow {_loader.built_against(tf_qdq.library_path())}")
    print(f"running on:         TensorFlow {tf.__version__}")
    print(f"supported:          TensorFlow {_loader.SUPPORTED_TF[0]} to {_loader.SUPPORTED_TF[1]}")
    print(f"CPU loops:          {tf_qdq.cpu_isa()} (TF_QDQ_CPU_ISA picks sse2, avx2 or avx512)")
    print("registered kernels:")
    for name, rows in registered_kernels().items():
        by_device = {}
        for device, dtype in rows:
            by_device.setdefault(device, []).append(dtype)
        text = "; ".join(f"{d}: {', '.join(ts)}" for d, ts in sorted(by_device.items())) or "NONE"
        print(f"  {name:36s} {text}")
    cuda = _loader.built_with_cuda(tf_qdq.library_path())
    print(f"GPU kernels:        {'built with CUDA ' + cuda if cuda else 'not built (no CUDA at build time)'}")
    gpus = tf.config.list_physical_devices("GPU")
    print(f"visible GPUs:       {len(gpus)}")
    print("\nparity against the built-in ops on the CPU (bit patterns; half/bfloat16 against the float32 built-in):")
    rows = parity()
    _print_table(rows)
    total_bad = sum(r[4] for r in rows)
    total = sum(r[2] for r in rows)
    print(
        f"\n{len(rows)} cases, {total} elements: "
        f"{'all bit-identical' if total_bad == 0 else f'{total_bad} elements differ'}"
    )
    if gpus and cuda:
        print("\nGPU kernels against the CPU kernels (bit patterns; NaN matches NaN):")
        grows = gpu_parity()
        _print_table(grows)
        gpu_bad = sum(r[4] for r in grows)
        print(
            f"\n{len(grows)} cases, {sum(r[2] for r in grows)} elements on the GPU: "
            f"{'all bit-identical' if gpu_bad == 0 else f'{gpu_bad} elements differ'}"
        )
        total_bad += gpu_bad
    return 0 if total_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
