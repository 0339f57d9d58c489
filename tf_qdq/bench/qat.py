"""The model section of `python -m tf_qdq bench` (alone: `--model`): the cost of QDQ in a
quantization-aware training step.

A small CNN (4 conv layers, 32x32x3 inputs, batch 64, then global average pooling and a dense
layer) is trained with `tf.function` steps (forward, loss, gradients, SGD update) three ways in
one process, the steps interleaved round by round:

  * no QDQ;
  * built-in QDQ: `tf.quantization.quantize_and_dequantize_v2` per tensor on the input of every
    conv layer (range computed from the data), and `tf.raw_ops.QuantizeAndDequantizeV3` per
    output channel on every kernel with the range given (its min/max per channel; TensorFlow's
    V4 rejects a given per-channel range);
  * tf_qdq: the same with `tf_qdq.quantize_and_dequantize_v2` for both.

Every round runs one step of each variant back to back (the order rotating from round to
round; tf_qdq/bench/timing.py). It prints the median and the best step time of each, the QDQ overhead (the median over
rounds of the step's time minus the no-QDQ step of the same round, so that slow drifts of the
machine cancel), its share of the step, and tf_qdq's overhead over the built-in's (target: at most
0.5). The QDQ work is a small part of this step on a CPU (the convolutions dominate): compare runs
on a quiet machine, with enough --steps.

    python -m tf_qdq bench --model            20 timed steps per variant
    python -m tf_qdq bench --model --quick    a few steps (a smoke test, well under a minute)
    python -m tf_qdq bench --model --xla      also the three variants with jit_compile=True
"""

import re
import statistics

import numpy as np
import tensorflow as tf

import tf_qdq
from tf_qdq.bench import timing

VARIANTS = ("none", "builtin", "tf_qdq")
LABELS = {"none": "no QDQ", "builtin": "built-in QDQ", "tf_qdq": "tf_qdq QDQ"}
# (output channels, stride) of the four 3x3 conv layers.
LAYERS = ((32, 1), (32, 2), (64, 1), (64, 2))
CLASSES = 10


def _quantizers(variant):
    """(activation QDQ, kernel QDQ) of a variant; identities for "none"."""
    if variant == "none":
        return (lambda a: a), (lambda w: w)

    def channel_range(w):  # per output channel (the last axis of a conv kernel)
        return (tf.stop_gradient(tf.reduce_min(w, axis=[0, 1, 2])), tf.stop_gradient(tf.reduce_max(w, axis=[0, 1, 2])))

    if variant == "builtin":

        def act(a):
            return tf.quantization.quantize_and_dequantize_v2(a, 0.0, 0.0, range_given=False)

        def kernel(w):
            lo, hi = channel_range(w)
            return tf.raw_ops.QuantizeAndDequantizeV3(
                input=w, input_min=lo, input_max=hi, num_bits=8, range_given=True, axis=3
            )

        return act, kernel
    if variant == "tf_qdq":

        def act(a):
            return tf_qdq.quantize_and_dequantize_v2(a, 0.0, 0.0, range_given=False)

        def kernel(w):
            lo, hi = channel_range(w)
            return tf_qdq.quantize_and_dequantize_v2(w, lo, hi, range_given=True, axis=3)

        return act, kernel
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


class _Model:
    """The CNN's variables (same initial values for every variant) and its forward pass."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.kernels, self.biases = [], []
        cin = 3
        for cout, _ in LAYERS:
            std = np.sqrt(2.0 / (9 * cin))
            self.kernels.append(tf.Variable((rng.standard_normal((3, 3, cin, cout)) * std).astype(np.float32)))
            self.biases.append(tf.Variable(np.zeros(cout, np.float32)))
            cin = cout
        self.dense = tf.Variable((rng.standard_normal((cin, CLASSES)) * np.sqrt(1.0 / cin)).astype(np.float32))
        self.variables = self.kernels + self.biases + [self.dense]

    def logits(self, x, act, kernel):
        h = x
        for (_, stride), w, b in zip(LAYERS, self.kernels, self.biases):
            h = tf.nn.relu(tf.nn.conv2d(act(h), kernel(w), strides=stride, padding="SAME") + b)
        return tf.reduce_mean(h, axis=[1, 2]) @ self.dense


def make_step(variant, jit_compile=False, lr=0.01, seed=0):
    """A `tf.function` training step of a fresh model: step(x, y) -> loss."""
    model = _Model(seed)
    act, kernel = _quantizers(variant)

    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model.logits(x, act, kernel)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        grads = tape.gradient(loss, model.variables)
        for v, g in zip(model.variables, grads):
            v.assign_sub(lr * g)
        return loss

    return tf.function(step, jit_compile=jit_compile, autograph=False)


def error_summary(e):
    """One line for a variant that could not run; a missing XLA kernel is named as such."""
    text = str(e).strip()
    missing = re.search(r"No registered '([^']+)' OpKernel for (\w+) devices", text)
    if missing:
        return f"{type(e).__name__}: no {missing.group(2)} kernel for {missing.group(1)}"
    return f"{type(e).__name__}: {text.splitlines()[0][:200] if text else ''}"


def run(steps=20, warmup=2, batch=64, xla=False, progress=True):
    """Times the training steps; returns one dict per variant: variant, jit_compile, label,
    step_ms (median; None when the variant could not run), best_ms (the fastest step), steps,
    times_ms (every step, by round), loss (the last one), error."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((batch, 32, 32, 3)).astype(np.float32))
    y = tf.constant(rng.integers(0, CLASSES, batch).astype(np.int32))
    configs = [(v, False) for v in VARIANTS] + ([(v, True) for v in VARIANTS] if xla else [])
    rows, fns = [], []
    say = timing.Progress("model", progress)
    for variant, jit in configs:
        label = LABELS[variant] + (" (XLA)" if jit else "")
        row = dict(
            variant=variant,
            jit_compile=jit,
            label=label,
            step_ms=None,
            best_ms=None,
            steps=0,
            times_ms=[],
            loss=None,
            error=None,
        )
        rows.append(row)
        say.say(f"tracing: {label}")
        try:
            fn = make_step(variant, jit_compile=jit)
            row["loss"] = float(fn(x, y))  # traces and compiles; a variant that cannot run stops here
            fns.append((row, fn))
        except Exception as e:  # noqa: BLE001 - e.g. no XLA kernel for an op: reported as n/a
            row["error"] = error_summary(e)

    def step_of(row, fn):
        def step():
            row["loss"] = fn(x, y)  # the last one is reported
            return row["loss"]

        return step

    def wait(loss):  # the step has finished once its loss is read
        return float(loss)

    timed = timing.interleaved(
        [step_of(row, fn) for row, fn in fns],
        min_reps=steps,
        warmup=warmup,
        wait=wait,
        on_round=lambda k: say.say(f"step {k + 1}/{steps} of each variant"),
    )
    for (row, _), t in zip(fns, timed.times):
        row["loss"] = float(row["loss"])
        if t:
            row["step_ms"] = statistics.median(t) * 1e3
            row["best_ms"] = min(t) * 1e3
            row["steps"] = len(t)
            row["times_ms"] = [v * 1e3 for v in t]
    say.done(f"{steps} timed steps per variant in {say.elapsed():.0f} s")
    return rows


def summarize(rows):
    """Per jit_compile setting ({jit: dict}): for the built-in and tf_qdq variants, the QDQ
    overhead in ms (the median over rounds of the variant's step minus the no-QDQ step of the
    same round) and its share of the variant's median step; tf_qdq's overhead / the built-in's;
    and the speed-up of the median step."""
    out = {}
    for jit in sorted({r["jit_compile"] for r in rows}):
        by = {r["variant"]: r for r in rows if r["jit_compile"] == jit}
        base = by.get("none", {}).get("times_ms") or []
        info = {}
        for v in ("builtin", "tf_qdq"):
            row = by.get(v, {})
            times = row.get("times_ms") or []
            over = statistics.median(t - b for t, b in zip(times, base)) if times and base else None
            ms = row.get("step_ms")
            info[v] = dict(step_ms=ms, overhead_ms=over, share=(over / ms) if over is not None and ms else None)
        b, t = info["builtin"]["overhead_ms"], info["tf_qdq"]["overhead_ms"]
        info["overhead_ratio"] = (t / b) if b is not None and t is not None and b > 0 else None
        info["speedup"] = (
            info["builtin"]["step_ms"] / info["tf_qdq"]["step_ms"]
            if info["builtin"]["step_ms"] and info["tf_qdq"]["step_ms"]
            else None
        )
        out[jit] = info
    return out


def _ms(v):
    return "n/a" if v is None else f"{v:.2f}"


def format_report(rows, summary):
    lines = [
        f"| {'variant':22s} | median step ms | best step ms | QDQ overhead ms | QDQ share of step | last loss |",
        f"|{'-' * 24}|---------------:|-------------:|----------------:|------------------:|----------:|",
    ]
    for r in rows:
        s = summary[r["jit_compile"]].get(r["variant"], {})
        over = _ms(s.get("overhead_ms")) if r["variant"] != "none" else ""
        share = "" if s.get("share") is None else f"{s['share'] * 100:.1f} %"
        loss = "n/a" if r["loss"] is None else f"{r['loss']:.4f}"
        lines.append(
            f"| {r['label']:22s} | {_ms(r['step_ms']):>14s} | {_ms(r['best_ms']):>12s} | {over:>15s} | "
            f"{share:>17s} | {loss:>9s} |"
        )
    for r in rows:
        if r["error"]:
            lines.append(f"  {r['label']}: n/a ({r['error']})")
    for jit, info in summary.items():
        tag = " (XLA)" if jit else ""
        ratio, speed = info["overhead_ratio"], info["speedup"]
        verdict = "n/a" if ratio is None else f"{ratio:.2f} (target <= 0.5: {'PASS' if ratio <= 0.5 else 'MISS'})"
        lines.append(
            f"tf_qdq QDQ overhead / built-in QDQ overhead{tag}: {verdict}; step speed-up tf_qdq vs "
            f"built-in: {'n/a' if speed is None else f'{speed:.2f}x'}"
        )
    return "\n".join(lines)
