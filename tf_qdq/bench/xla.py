"""The XLA section of `python -m tf_qdq bench` (`--xla`): speed of the plugin's XLA kernels
against TensorFlow's built-in QDQ ops, both under tf.function(jit_compile=True) on the same
device (docs/xla.md#benchmark).

Rows (float32, 16M elements by default):
  * per-tensor given / per-tensor data: range given (as run-time arguments) or computed;
  * last-axis(256) given / data: per channel along the last axis, 256 channels (the built-in
    reference for a given per-channel range is V3: TensorFlow's V2/V4 reject it);
  * ... data relu: computed range over ReLU outputs (half the values +0.0: a zero minimum);
  * fused QDQ->matmul: y = matmul(QDQ(x * a + b), w), [4096, 1024] x [1024, 1024]: the scale-shift
    and the QDQ fuse into one loop feeding the dot; the row reports the number of array fusions in
    the optimized HLO for both (1 and 1: our op fuses like the built-in one).

Each row times the two compiled functions interleaved call by call (tf_qdq/bench/timing.py;
medians; `ratio` is built-in / plugin: above 1 means the plugin is faster) and checks that the
plugin's compiled output is bit-identical to its own CPU kernel's.

    python -m tf_qdq bench --xla            full rows (16M)
    python -m tf_qdq bench --xla --quick    small tensors (smoke test)
    python -m tf_qdq bench --xla --json     rows as JSON
"""

import re
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_qdq import raw_ops, reference
from tf_qdq.bench import timing

CHANNELS = 256
ROWS = (
    "per-tensor given",
    "per-tensor data",
    "last-axis(256) given",
    "last-axis(256) data",
    "per-tensor data relu",
    "last-axis(256) data relu",
    "fused QDQ->matmul",
)


def _fusions(fn, *args) -> int:
    """Fusions over arrays (not scalars) in the optimized HLO's entry computation: the loops that read or
    write tensors. Scalar fusions (the quantization parameters) are left out."""
    hlo = fn.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
    entry = hlo[hlo.index("ENTRY") :]
    return len(re.findall(r"= \w+\[\d[^\]]*\]\S* fusion\(", entry))


def _qdq_case(name: str, n: int, seed: int = 0):
    """(plugin fn, built-in fn, args, reference label) of a QDQ row."""
    rng = np.random.default_rng(seed)
    per_channel = name.startswith("last-axis")
    given = name.endswith("given")
    shape = (n // CHANNELS, CHANNELS) if per_channel else (n,)
    axis = 1 if per_channel else -1
    data = rng.normal(size=shape).astype(np.float32)
    if name.endswith("relu"):
        data = np.maximum(data, np.float32(0))
    x = tf.constant(data)
    depth = CHANNELS if per_channel else None
    lo = tf.constant(np.full(depth or (), -2.5, np.float32))
    hi = tf.constant(np.full(depth or (), 2.5, np.float32))
    kw = dict(signed_input=True, num_bits=8, range_given=given, narrow_range=False, axis=axis)

    def plugin(x, lo, hi):
        return raw_ops.QuantizeAndDequantizeV4(input=x, input_min=lo, input_max=hi, **kw)

    label = "built-in V4"
    if per_channel and given:
        label = "built-in V3"

        def builtin(x, lo, hi):
            return tf.raw_ops.QuantizeAndDequantizeV3(
                input=x, input_min=lo, input_max=hi, num_bits=8, signed_input=True, range_given=True, axis=axis
            )
    else:

        def builtin(x, lo, hi):
            return tf.raw_ops.QuantizeAndDequantizeV4(input=x, input_min=lo, input_max=hi, **kw)

    return plugin, builtin, (x, lo, hi), label


def _fused_case(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = 1024
    m = max(1, n // k // 4)  # 16M elements: [4096, 1024]
    x = tf.constant(rng.normal(size=(m, k)).astype(np.float32))
    a = tf.constant(np.float32(0.7))
    b = tf.constant(np.float32(0.1))
    w = tf.constant(rng.normal(size=(k, k)).astype(np.float32) / 32)
    lo, hi = tf.constant(np.float32(-2.5)), tf.constant(np.float32(2.5))

    def plugin(x, a, b, w, lo, hi):
        q = raw_ops.QuantizeAndDequantizeV4(input=x * a + b, input_min=lo, input_max=hi, range_given=True)
        return tf.matmul(q, w)

    def builtin(x, a, b, w, lo, hi):
        q = tf.raw_ops.QuantizeAndDequantizeV4(input=x * a + b, input_min=lo, input_max=hi, range_given=True)
        return tf.matmul(q, w)

    return plugin, builtin, (x, a, b, w, lo, hi), "built-in V4"


def _wait(out):  # a compiled call may return before its result is ready
    return out.numpy()


def xla_rows(
    rows: Optional[Sequence[str]] = None, size: int = 1 << 24, reps: int = 15, progress: bool = False
) -> List[Dict]:
    """The benchmark rows (dicts): row, elements, plugin_ms, builtin_ms, ratio, reference, and for the
    fused row the fusion counts; every plugin result is checked bit for bit against its CPU kernel."""
    out = []
    say = timing.Progress("xla", progress)
    names = list(rows or ROWS)
    for k, name in enumerate(names):
        say.say(f"{k + 1}/{len(names)} {name}")
        if name == "fused QDQ->matmul":
            plugin, builtin, args, label = _fused_case(size)
        else:
            plugin, builtin, args, label = _qdq_case(name, size)
        fp = tf.function(plugin, jit_compile=True)
        fb = tf.function(builtin, jit_compile=True)
        got = fp(*args)
        if name != "fused QDQ->matmul":
            with tf.device("/CPU:0"):
                want = plugin(*args)
            if not reference.same_bits(got, want):
                raise AssertionError(f"{name}: the compiled plugin op differs from its CPU kernel")
        t_plugin, t_builtin = timing.interleaved(
            [lambda: fp(*args), lambda: fb(*args)], min_reps=reps, wait=_wait
        ).medians()
        row = {
            "row": name,
            "elements": int(np.prod(args[0].shape)),
            "plugin_ms": t_plugin * 1e3,
            "builtin_ms": t_builtin * 1e3,
            "ratio": t_builtin / t_plugin,
            "reference": label,
        }
        if name == "fused QDQ->matmul":
            row["plugin_fusions"] = _fusions(fp, *args)
            row["builtin_fusions"] = _fusions(fb, *args)
        out.append(row)
    say.done(f"{len(names)} rows in {say.elapsed():.0f} s")
    return out


def format_rows(rows: List[Dict]) -> str:
    lines = [f"{'row':24} {'elements':>10} {'plugin ms':>10} {'built-in ms':>12} {'ratio':>6}  reference"]
    for r in rows:
        extra = ""
        if "plugin_fusions" in r:
            extra = f" (fusions: plugin {r['plugin_fusions']}, built-in {r['builtin_fusions']})"
        lines.append(
            f"{r['row']:24} {r['elements']:>10} {r['plugin_ms']:>10.3f} {r['builtin_ms']:>12.3f} "
            f"{r['ratio']:>6.2f}  {r['reference']}{extra}"
        )
    return "\n".join(lines)
