"""The kernels section of `python -m tf_qdq bench`: speed of the plugin's CPU kernels against
TensorFlow's built-in ops (tf_qdq/bench/cli.py is the command line).

For each case and size it times the built-in op and the plugin op in the same process on the same
tensors, interleaved call by call (tf_qdq/bench/timing.py; eager calls, which are synchronous on
CPU: the op has finished when the call returns, and no result is copied), and reports the medians, their ratio
(built-in / plugin: above 1 means the plugin is faster) and the throughput. It also checks that the
plugin's output is bit-identical to the reference (`tf_qdq.reference.builtin`), so a fast but wrong
kernel cannot look good. The speed targets are checked at the end (they live here, never in a
timed test).

Where the built-in cannot run the case, the reference is named in the `built-in` column:
  * per-channel with a given range: the built-in V3 (TensorFlow's V2/V4 reject it);
  * half and bfloat16: the built-in float32 op on the same data cast to float32 (TensorFlow has no
    half/bfloat16 kernel); the `vs f32` column compares with the plugin's own float32 time per
    element (above 1: the 16-bit path is faster per element).

The "call overhead" section times the Python wrappers per eager call on a 4K float32 tensor
(best of several runs of many calls), tf.quantization's against tf_qdq's, with the range given
as Python floats, NumPy scalars and tensors: what a small eager call costs beyond the kernel.
The "QAT training step" section times a training step of a small CNN three ways: no QDQ,
built-in QDQ, tf_qdq (tf_qdq/bench/qat.py).

`run(...)` returns the rows (dicts) for use from Python. TF_QDQ_CPU_ISA=sse2|avx512 runs the
plugin with another table of inner loops (default: AVX2 where the CPU has it); the header names
the table in use (tf_qdq.cpu_isa()).

Absolute times depend on everything else running on the machine (memory bandwidth is shared):
compare the interleaved ratios, and note the load average printed in the header.
"""

import os
import platform
import sys

import numpy as np
import tensorflow as tf

import tf_qdq
from tf_qdq import raw_ops, reference
from tf_qdq.bench import timing

BF16 = tf.bfloat16.as_numpy_dtype
DTYPES = {"float32": np.float32, "float64": np.float64, "half": np.float16, "bfloat16": BF16}
SIZES = {"4K": 1 << 12, "64K": 1 << 16, "1M": 1 << 20, "16M": 1 << 24}

# Case name -> (layout, range, op). Layouts:
#   tensor: per-tensor; last: per-channel along the last axis, 256 channels;
#   axis0: per-channel along axis 0 (256 channels); middle: per-channel along axis 1 of
#   [outer, 256, 64].
CASES = {
    "per-tensor data": ("tensor", "data", "fwd"),
    "per-tensor given": ("tensor", "given", "fwd"),
    "last-axis(256) data": ("last", "data", "fwd"),
    "last-axis(256) given": ("last", "given", "fwd"),
    "axis0(256) data": ("axis0", "data", "fwd"),
    "middle-axis(256) data": ("middle", "data", "fwd"),
    "V4Grad per-tensor": ("tensor", "given", "grad"),
    "V4Grad last-axis(256)": ("last", "given", "grad"),
}
# The per-tensor case with the same range kind and op, for each per-channel case.
PER_TENSOR_OF = {
    name: next(
        n for n, (lay, rk, op) in CASES.items() if lay == "tensor" and (rk, op) == (CASES[name][1], CASES[name][2])
    )
    for name in CASES
    if CASES[name][0] != "tensor"
}
# Which (case, dtype) pairs are run: float32 everywhere, the other types on the main cases.
DTYPE_CASES = {
    "float32": list(CASES),
    "float64": ["per-tensor data", "per-tensor given", "last-axis(256) data"],
    "half": ["per-tensor data", "per-tensor given", "last-axis(256) data", "V4Grad per-tensor"],
    "bfloat16": ["per-tensor data", "per-tensor given", "last-axis(256) data", "V4Grad per-tensor"],
}
QUICK = {
    "cases": ["per-tensor data", "per-tensor given", "last-axis(256) data", "V4Grad per-tensor"],
    "dtypes": ["float32", "half"],
    "sizes": ["4K", "64K"],
}


def _shape(layout, n):
    """(shape, axis) of the case's tensor with n elements."""
    if layout == "tensor":
        return (n,), -1
    if layout == "last":
        return (n // 256, 256), 1
    if layout == "axis0":
        return (256, n // 256), 0
    if layout == "middle":
        depth = min(256, n // 64)
        return (n // (depth * 64), depth, 64), 1
    raise ValueError(layout)


class _Case:
    """Tensors and the two callables of one (case, dtype, size)."""

    def __init__(self, name, dtype_name, size_name, seed=0):
        layout, rng_kind, op = CASES[name]
        self.name, self.dtype_name, self.size_name = name, dtype_name, size_name
        self.n = SIZES[size_name]
        self.op = op
        dtype = DTYPES[dtype_name]
        shape, axis = _shape(layout, self.n)
        self.given = rng_kind == "given"
        self.per_channel = axis != -1
        rng = np.random.default_rng(seed)
        x = (rng.standard_normal(shape) * 2).astype(np.float32).astype(dtype)
        mshape = (shape[axis],) if axis != -1 else ()
        lo = np.full(mshape, -2.5, dtype)
        hi = np.full(mshape, 3.0, dtype)
        self.sixteen = dtype_name in ("half", "bfloat16")
        # The built-in's inputs: float32 data for half/bfloat16 (no built-in kernel).
        bdt = np.float32 if self.sixteen else dtype
        self.x, self.lo, self.hi = (tf.constant(v) for v in (x, lo, hi))
        self.bx, self.blo, self.bhi = (tf.constant(v.astype(bdt)) for v in (x, lo, hi))
        self.kw = dict(input=x, input_min=lo, input_max=hi, range_given=self.given, axis=axis)
        if op == "grad":
            g = (rng.standard_normal(shape)).astype(np.float32).astype(dtype)
            self.g, self.bg = tf.constant(g), tf.constant(g.astype(bdt))
            self.grad_kw = dict(gradients=g, input=x, input_min=lo, input_max=hi, axis=axis)
            self.builtin_name = "V4Grad"
            self.plugin = lambda: raw_ops.QuantizeAndDequantizeV4Grad(
                gradients=self.g, input=self.x, input_min=self.lo, input_max=self.hi, axis=axis
            )[0]
            self.builtin = lambda: tf.raw_ops.QuantizeAndDequantizeV4Grad(
                gradients=self.bg, input=self.bx, input_min=self.blo, input_max=self.bhi, axis=axis
            )[0]
        else:
            self.plugin = lambda: raw_ops.QuantizeAndDequantizeV2(
                input=self.x, input_min=self.lo, input_max=self.hi, range_given=self.given, axis=axis
            )
            if self.given and self.per_channel:  # TensorFlow's V2 rejects this: V3 runs it
                self.builtin_name = "V3"
                self.builtin = lambda: tf.raw_ops.QuantizeAndDequantizeV3(
                    input=self.bx, input_min=self.blo, input_max=self.bhi, num_bits=8, range_given=True, axis=axis
                )
            else:
                self.builtin_name = "V2"
                self.builtin = lambda: tf.raw_ops.QuantizeAndDequantizeV2(
                    input=self.bx, input_min=self.blo, input_max=self.bhi, range_given=self.given, axis=axis
                )
        if self.sixteen:
            self.builtin_name += " f32"
        itemsize = np.dtype(dtype).itemsize
        # Bytes a single pass must move: inputs read (twice for a range from the data), output.
        reads = 2 if op == "grad" else (1 if self.given else 2)
        self.bytes = self.n * itemsize * (reads + 1)
        self.bbytes = self.n * np.dtype(bdt).itemsize * (reads + 1)

    def verify(self):
        """Number of elements whose bits differ from the reference (0: bit-identical)."""
        if self.op == "grad":
            ours = self.plugin()
            ref = reference.builtin("V4Grad", **self.grad_kw)[0]
        else:
            ours = self.plugin()
            ref = reference.builtin("V2", **self.kw)
        return reference.count_differing(ours, ref)


def _selected(cases=None, dtypes=None, sizes=None, quick=False):
    cases = cases or (QUICK["cases"] if quick else list(CASES))
    dtypes = dtypes or (QUICK["dtypes"] if quick else list(DTYPES))
    sizes = sizes or (QUICK["sizes"] if quick else list(SIZES))
    out = []
    for dt in dtypes:
        for c in cases:
            if c in DTYPE_CASES[dt]:
                out += [(c, dt, s) for s in sizes]
    return out


def run(
    cases=None,
    dtypes=None,
    sizes=None,
    quick=False,
    min_time=None,
    min_reps=None,
    max_reps=None,
    verify=True,
    progress=True,
):
    """Runs the benchmark; returns one dict per (case, dtype, size):
    case, dtype, size, elements, builtin_op, builtin_ms, plugin_ms, ratio (built-in / plugin),
    plugin_gbps, builtin_gbps, vs_f32 (16-bit rows: plugin float32 time / this time),
    vs_per_tensor (per-channel rows: this time / the plugin's per-tensor time on the same data),
    read_ms (per-tensor forward rows of float32/float64 from 1M elements: `tf.reduce_max` of the
    input, one plain read, the floor under any kernel that must read the input), reps, identical (None when not
    verified), differing."""
    min_time = (0.05 if quick else 0.4) if min_time is None else min_time
    min_reps = (5 if quick else 7) if min_reps is None else min_reps
    max_reps = (200 if quick else 2000) if max_reps is None else max_reps
    todo = _selected(cases, dtypes, sizes, quick)
    rows = []
    say = timing.Progress("kernels", progress)
    for k, (name, dt, size) in enumerate(todo):
        say.say(f"{k + 1}/{len(todo)} {name} {dt} {size}")
        case = _Case(name, dt, size)
        fns = [case.builtin, case.plugin]
        f32 = pt = None
        if case.sixteen:  # the plugin's own float32 on the same case, for the per-element comparison
            f32 = _Case(name, "float32", size)
            fns.append(f32.plugin)
        if case.per_channel:  # the plugin's per-tensor op on the same data, same range kind
            pt = _Case(PER_TENSOR_OF[name], dt, size)
            fns.append(pt.plugin)
        read = not case.sixteen and not case.per_channel and case.op == "fwd" and case.n >= SIZES["1M"]
        if read:  # the memory floor: one plain read of the input (no output)
            fns.append(lambda x=case.x: tf.reduce_max(x))
        timed = timing.interleaved(fns, min_reps=min_reps, max_reps=max_reps, min_time=min_time)
        med, reps = timed.medians(), timed.reps
        bad = case.verify() if verify else None
        row = dict(
            case=name,
            dtype=dt,
            size=size,
            elements=case.n,
            builtin_op=case.builtin_name,
            builtin_ms=med[0] * 1e3,
            plugin_ms=med[1] * 1e3,
            ratio=med[0] / med[1],
            plugin_gbps=case.bytes / med[1] / 1e9,
            builtin_gbps=case.bbytes / med[0] / 1e9,
            vs_f32=(med[2] / med[1]) if f32 is not None else None,
            vs_per_tensor=(med[1] / med[-1]) if pt is not None else None,
            read_ms=med[-1] * 1e3 if read else None,
            reps=reps,
            identical=None if bad is None else bad == 0,
            differing=bad,
        )
        rows.append(row)
        del case, f32, pt
    say.done(f"{len(todo)} measurements in {say.elapsed():.0f} s")
    return rows


# ---- call overhead of the Python wrappers ---------------------------------------------------------------------

OVERHEAD_WRAPPERS = ("quantize_and_dequantize", "quantize_and_dequantize_v2")
OVERHEAD_RANGES = ("Python floats", "NumPy scalars", "tensors")


def call_overhead(calls=2000, rounds=5, size=1 << 12, progress=False):
    """Microseconds per eager call of each wrapper, built-in (tf.quantization) and tf_qdq, on a
    float32 tensor of `size` elements with a computed range, the (ignored) range passed as Python
    floats, NumPy scalars or scalar tensors. Each time is the best of `rounds` runs of `calls`
    calls, the two sides alternating. Rows: wrapper, range, builtin_us, plugin_us, ratio
    (plugin / built-in: at most 1.05 is the target)."""
    rng = np.random.default_rng(0)
    x = tf.constant((rng.standard_normal(size) * 2).astype(np.float32))
    ranges = {
        "Python floats": (0.0, 0.0),
        "NumPy scalars": (np.float32(0), np.float32(0)),
        "tensors": (tf.constant(0.0), tf.constant(0.0)),
    }
    rows = []
    todo = [(w, k) for w in OVERHEAD_WRAPPERS for k in OVERHEAD_RANGES]
    say = timing.Progress("call overhead", progress)
    for n, (wrapper, kind) in enumerate(todo):
        say.say(f"{n + 1}/{len(todo)} {wrapper}, {kind}")
        lo, hi = ranges[kind]
        theirs, ours = getattr(tf.quantization, wrapper), getattr(tf_qdq, wrapper)

        def many(f):
            def calls_of_f():
                for _ in range(calls):
                    f(x, lo, hi)

            return calls_of_f

        # One timed call is `calls` calls of the wrapper; one warm-up batch (first-call caches,
        # deprecation warnings).
        best = timing.interleaved([many(theirs), many(ours)], min_reps=rounds, warmup=1).best()
        best = [t / calls for t in best]
        rows.append(
            dict(
                wrapper=wrapper, range=kind, builtin_us=best[0] * 1e6, plugin_us=best[1] * 1e6, ratio=best[1] / best[0]
            )
        )
    say.done()
    return rows


def format_overhead(rows):
    lines = [
        f"| {'wrapper':26s} | {'range':13s} | built-in us | tf_qdq us | tf_qdq / built-in |",
        f"|{'-' * 28}|{'-' * 15}|------------:|----------:|------------------:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['wrapper']:26s} | {r['range']:13s} | {r['builtin_us']:11.2f} | "
            f"{r['plugin_us']:9.2f} | {r['ratio']:16.2f}x |"
        )
    return "\n".join(lines)


# ---- the project's performance goals ----------------------------------------------------------------------------


def _find(rows, case, dtype="float32", size="16M"):
    for r in rows:
        if r["case"] == case and r["dtype"] == dtype and r["size"] == size:
            return r
    return None


def check_targets(rows, overhead=None, model=None):
    """[(target, value text, passed or None when not measured)]; `overhead`: the rows of
    call_overhead(); `model`: qat.summarize() of the training-step rows."""
    out = []

    def ratio(case, want, size="16M", label=None):
        r = _find(rows, case, size=size)
        text = f"{r['ratio']:.2f}x" if r else "not run"
        out.append(
            (label or f"{case} float32 {size}: built-in/plugin >= {want}", text, (r["ratio"] >= want) if r else None)
        )

    def floor(case, want, passes):
        # Per tensor the op runs at the memory bandwidth, so the yardstick is the time of one
        # plain read of the input (`read ms`), not the built-in op: a range from the data reads
        # the input twice and writes the output once, a given range reads once and writes once.
        r = _find(rows, case)
        ok, text = None, "not run"
        if r and r.get("read_ms"):
            x = r["plugin_ms"] / r["read_ms"]
            ok = x <= want
            text = f"{x:.2f}x one read ({r['plugin_ms']:.2f} ms vs {r['read_ms']:.2f} ms)"
        out.append((f"{case} float32 16M ({passes}): plugin time <= {want}x one plain read of the input", text, ok))

    floor("per-tensor data", 2.5, "two reads and a write")
    floor("per-tensor given", 1.5, "one read and a write")
    ratio("last-axis(256) data", 20.0)
    a = _find(rows, "last-axis(256) data")
    out.append(
        (
            "last-axis(256) data float32 16M: plugin time <= 1.2x its per-tensor time",
            f"{a['vs_per_tensor']:.2f}x" if a else "not run",
            (a["vs_per_tensor"] <= 1.2) if a else None,
        )
    )
    ratio("axis0(256) data", 5.0)
    ratio("middle-axis(256) data", 5.0)
    # Small tensors are bound by the eager dispatch, the same for both ops: parity within the
    # run-to-run noise of a shared machine.
    ratio("per-tensor data", 0.95, size="4K")
    ratio("per-tensor given", 0.95, size="4K")
    for dt in ("half", "bfloat16"):
        for size in ("64K", "1M", "16M"):
            rs = [r for r in rows if r["dtype"] == dt and r["size"] == size and r["vs_f32"] is not None]
            worst = min(rs, key=lambda r: r["vs_f32"]) if rs else None
            out.append(
                (
                    f"{dt} {size}: per element at least as fast as plugin float32 (worst case)",
                    f"{worst['vs_f32']:.2f}x ({worst['case']})" if worst else "not run",
                    (worst["vs_f32"] >= 1.0) if worst else None,
                )
            )
    if overhead is not None:
        worst = max(overhead, key=lambda r: r["ratio"]) if overhead else None
        out.append(
            (
                "every wrapper call within 1.05x of the built-in wrapper's time (worst case)",
                f"{worst['ratio']:.2f}x ({worst['wrapper']}, {worst['range']})" if worst else "not run",
                (worst["ratio"] <= 1.05) if worst else None,
            )
        )
    if model is not None:
        ratio_ = model.get(False, {}).get("overhead_ratio")
        out.append(
            (
                "QAT training step: tf_qdq's QDQ overhead <= 0.5x the built-in's",
                "n/a" if ratio_ is None else f"{ratio_:.2f}x",
                None if ratio_ is None else ratio_ <= 0.5,
            )
        )
    checked = [r for r in rows if r["identical"] is not None]
    out.append(
        (
            "every output bit-identical to the reference",
            f"{sum(r['identical'] for r in checked)}/{len(checked)}",
            all(r["identical"] for r in checked) if checked else None,
        )
    )
    return out


# ---- output ----------------------------------------------------------------------------------------


def environment():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(
        tensorflow=tf.__version__,
        tf_qdq=tf_qdq.__version__,
        cpu=cpu,
        cores=os.cpu_count(),
        intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        isa=tf_qdq.cpu_isa(),
        python=platform.python_version(),
    )


def format_table(rows):
    head = [
        "case",
        "dtype",
        "size",
        "built-in",
        "built-in ms",
        "plugin ms",
        "ratio",
        "GB/s",
        "vs f32",
        "/ p-t",
        "read ms",
        "bits",
    ]
    lines = []
    for r in rows:
        bits = "-" if r["identical"] is None else ("identical" if r["identical"] else f"{r['differing']} DIFFER")
        lines.append(
            [
                r["case"],
                r["dtype"],
                r["size"],
                r["builtin_op"],
                f"{r['builtin_ms']:.3f}",
                f"{r['plugin_ms']:.3f}",
                f"{r['ratio']:.2f}x",
                f"{r['plugin_gbps']:.1f}",
                "" if r["vs_f32"] is None else f"{r['vs_f32']:.2f}x",
                "" if r.get("vs_per_tensor") is None else f"{r['vs_per_tensor']:.2f}x",
                "" if r.get("read_ms") is None else f"{r['read_ms']:.3f}",
                bits,
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    right = {4, 5, 6, 7, 8, 9, 10}

    def fmt(cells):
        return (
            "| "
            + " | ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
            + " |"
        )

    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(head), sep] + [fmt(line) for line in lines])


def plot(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "tf_qdq bench: --plot needs matplotlib (pip install matplotlib, or "
            "pip install 'tf_qdq[plot]'); the table was still printed.",
            file=sys.stderr,
        )
        return False
    series = {}
    for r in rows:
        series.setdefault((r["case"], r["dtype"]), []).append(r)
    keys = list(series)
    cols = min(3, len(keys))
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        rs = sorted(series[key], key=lambda r: r["elements"])
        n = [r["elements"] for r in rs]
        ax.plot(n, [r["elements"] / r["plugin_ms"] / 1e6 for r in rs], "o-", label="tf_qdq")
        ax.plot(
            n, [r["elements"] / r["builtin_ms"] / 1e6 for r in rs], "s--", label=f"built-in ({rs[0]['builtin_op']})"
        )
        ax.set_xscale("log", base=2)
        ax.set_xticks(n, [r["size"] for r in rs])
        ax.set_title(f"{key[0]}, {key[1]}", fontsize=9)
        ax.set_ylabel("G elements / s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle("QuantizeAndDequantize throughput vs size (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"tf_qdq bench: wrote {path}", file=sys.stderr)
    return True
