"""calibrate: activation ranges of a quantized model from data.

The data runs once through the model in float (every quantizer passes its input
through and records it; weights unquantized), as TensorRT calibrates. Each
activation quantizer keeps its absolute maximum and a histogram of |x| (of
max(x, 0) for an unsigned quantizer) with `BINS` bins over [0, first batch's
maximum], extended by bins of the same width when a later batch goes further.
Then per quantizer the method picks the range's absolute maximum a:

- "max": the largest |x| seen;
- "percentile": the upper edge of the bin where the histogram's cumulative share
  first reaches `percentile` %;
- "mse": among candidate a at the bin centres from bin 128 on, the one with the
  least mean squared error of quantize-dequantize over the histogram (each bin's
  values taken at its centre);
- "entropy": TensorRT's KL-divergence calibration: for each candidate cut i
  (bins [0, i), from 128 bins to all), the reference distribution is the
  histogram up to i with everything beyond added to the last bin; the candidate
  merges those i bins into 2^(num_bits-1) levels (2^num_bits unsigned) and
  spreads each level's count evenly over its non-empty bins; a is the upper
  edge of the cut with the smallest KL(reference || candidate) (the last one on
  ties). As NVIDIA's calibrator does, bin 0 (the zeros a ReLU produces) takes
  bin 1's count first.

The quantizers' `min`/`max` are set to [-a, a] ([0, a] unsigned). A quantizer in
range_mode "max" (quantize_model's default, meaning "track until calibrated") is
switched to "fixed" with init_range a, so QAT keeps the calibrated range;
quantizers in "moving_average" or "last" keep tracking from it. Weight ranges
are refreshed from the current kernels.
"""

import math
import sys
import time
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import tensorflow as tf

from tf_qdq.keras.layer import QuantizeDequantize, keras
from tf_qdq.keras.wrappers import WRAPPER_CLASSES

#: The calibration methods.
CALIBRATION_METHODS = ("max", "percentile", "entropy", "mse")

#: Histogram bins over the first batch's range.
BINS = 2048

#: First candidate bin of the entropy and mse searches.
START_BIN = 128


class Histogram:
    """|x| histogram with a fixed bin width and a growing number of bins."""

    def __init__(self, bins: int = BINS) -> None:
        self.bins = bins
        self.counts: Optional[np.ndarray] = None
        self.width = 0.0
        self.amax = 0.0

    @property
    def edges(self) -> np.ndarray:
        return np.arange(len(self.counts) + 1, dtype=np.float64) * self.width

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        top = float(values.max())
        self.amax = max(self.amax, top)
        if self.counts is None:
            if top == 0.0:
                top = 1.0  # all zeros so far: any width; zeros land in bin 0
            self.width = top / self.bins
            self.counts = np.zeros(self.bins, np.int64)
        n = len(self.counts)
        if top > n * self.width:
            n = int(math.ceil(top / self.width))
            self.counts = np.concatenate([self.counts, np.zeros(n - len(self.counts), np.int64)])
        idx = np.minimum((values / self.width).astype(np.int64), n - 1)
        self.counts += np.bincount(idx, minlength=n)


def _fake_quant(x: np.ndarray, amax: float, num_bits: int, unsigned: bool) -> np.ndarray:
    """The op's quantize-dequantize of non-negative x with range [-a, a] or [0, a]."""
    qmax = 2**num_bits - 1 if unsigned else 2 ** (num_bits - 1) - 1
    scale = amax / qmax
    return np.clip(np.round(x / scale), 0, qmax) * scale


def amax_percentile(hist: Histogram, percentile: float) -> float:
    # The first bin where the cumulative count reaches percentile % of the total.
    reached = np.cumsum(hist.counts) * 100.0 >= percentile * float(hist.counts.sum())
    i = int(np.argmax(reached)) if reached.any() else len(hist.counts) - 1
    return float(hist.edges[i + 1])


def amax_mse(hist: Histogram, num_bits: int, unsigned: bool, start: int = START_BIN) -> float:
    counts = hist.counts.astype(np.float64)
    edges = hist.edges
    centres = (edges[:-1] + edges[1:]) / 2
    total = counts.sum()
    best, best_err = float(centres[-1]), math.inf
    for i in range(min(start, len(centres) - 1), len(centres)):
        a = float(centres[i])
        err = float(np.sum((_fake_quant(centres, a, num_bits, unsigned) - centres) ** 2 * counts) / total)
        if err < best_err:
            best, best_err = a, err
    return best


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) of unnormalized distributions (scipy.stats.entropy's convention)."""
    p = p / p.sum()
    q = q / q.sum()
    m = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[m] * np.log(p[m] / q[m])))


def amax_entropy(hist: Histogram, num_bits: int, unsigned: bool, start: int = START_BIN) -> float:
    counts = hist.counts.astype(np.float64).copy()
    if len(counts) > 1:
        counts[0] = counts[1]
    levels = 2 ** (num_bits - 1 + int(unsigned))
    n = len(counts)
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # tail[i] = sum(counts[i:])
    best_i, best_kl = n, math.inf
    for i in range(min(start, n), n + 1):
        ref = counts[:i].copy()
        ref[-1] += tail[i]
        # Bin j of the cut belongs to level floor(j * levels / i).
        level = np.arange(i) * levels // i
        nonzero = counts[:i] != 0
        level_sum = np.bincount(level[nonzero], weights=counts[:i][nonzero], minlength=levels)
        level_n = np.bincount(level[nonzero], minlength=levels)
        cand = np.zeros(i)
        cand[nonzero] = level_sum[level[nonzero]] / level_n[level[nonzero]]
        if ref.sum() <= 0 or cand.sum() <= 0:
            continue
        kl = _kl(ref, cand)
        if kl <= best_kl:  # the last minimum
            best_i, best_kl = i, kl
    return float(hist.edges[best_i])


class _Observer:
    def __init__(self, layer: QuantizeDequantize) -> None:
        self.layer = layer
        self.hist = Histogram()

    def __call__(self, x: Any) -> None:
        v = np.asarray(x, np.float64)
        v = np.maximum(v, 0.0) if not self.layer.signed else np.abs(v)
        self.hist.add(v)


def _activation_quantizers(model: Any) -> List[QuantizeDequantize]:
    from tf_qdq.keras.quantize import quantizers

    return quantizers(model, "activation")


def _weight_quantizers(model: Any) -> List[QuantizeDequantize]:
    from tf_qdq.keras.quantize import quantizers

    return quantizers(model, "weight")


def _batches(data: Any, steps: Optional[int]) -> Iterable[Any]:
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        if len(data) == 0:
            raise ValueError("calibrate: the calibration data is empty (an array of 0 samples)")
        batch = 32
        for start in range(0, len(data), batch):
            yield data[start : start + batch]
        return
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"calibrate: data must be a tf.data.Dataset, a NumPy array or an iterable of batches, "
            f"got {type(data).__name__}"
        )
    for element in data:
        if isinstance(element, tuple) and 1 <= len(element) <= 3:
            element = element[0]  # Keras' convention: a tuple is (x,), (x, y) or (x, y, w); a list is x
        yield element


def _progress(i: int, total: Optional[int], start: float, verbose: int, done: bool = False) -> None:
    if not verbose:
        return
    elapsed = time.monotonic() - start
    if total:
        filled = int(30 * i / total)
        bar = "=" * filled + "." * (30 - filled)
        text = f"\rcalibrate: {i}/{total} [{bar}] {elapsed:.0f}s"
    else:
        text = f"\rcalibrate: {i} batches {elapsed:.0f}s"
    sys.stderr.write("\n" if done else text)
    sys.stderr.flush()


def calibrate(
    qmodel: Any,
    data: Any,
    method: str = "max",
    *,
    steps: Optional[int] = None,
    percentile: float = 99.99,
    verbose: int = 1,
) -> Any:
    """Sets every activation range of `qmodel` (from tf_qdq.keras.quantize_model) from `data`.

    Args:
      qmodel: a model holding QuantizeDequantize layers.
      data: a tf.data.Dataset, a NumPy array (run in batches of 32), or an
        iterable of batches; elements are x or (x, y[, sample_weight]).
      method: "max", "percentile", "entropy" or "mse" (module doc).
      steps: at most this many batches (None: all of `data`).
      percentile: for method "percentile", in (0, 100].
      verbose: 1 for a progress line on stderr, 0 for none.

    Returns:
      qmodel, with its ranges set.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {CALIBRATION_METHODS}")
    if not 0.0 < float(percentile) <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    if steps is not None and int(steps) < 1:
        raise ValueError(f"steps must be >= 1 or None, got {steps!r}")
    acts = _activation_quantizers(qmodel)
    weights = _weight_quantizers(qmodel)
    if not acts and not weights:
        raise ValueError(
            f"model {qmodel.name!r} holds no QuantizeDequantize layers: quantize it first (tf_qdq.keras.quantize_model)"
        )
    observers: Dict[int, _Observer] = {}
    for q in acts:
        observers[id(q)] = _Observer(q)
        object.__setattr__(q, "_tf_qdq_observer", observers[id(q)])
    for q in weights:
        object.__setattr__(q, "_tf_qdq_observer", lambda x: None)  # float weights while calibrating
    total = steps
    if total is None:
        try:
            total = len(data)
            if isinstance(data, np.ndarray):
                total = math.ceil(len(data) / 32)
        except TypeError:
            total = None
    n = 0
    start = time.monotonic()
    try:
        for batch in _batches(data, steps):
            if steps is not None and n >= steps:
                break
            qmodel(batch, training=False)
            n += 1
            _progress(n, total, start, verbose)
    finally:
        for q in acts + weights:
            object.__setattr__(q, "_tf_qdq_observer", None)
    _progress(n, total, start, verbose, done=True)
    if n == 0:
        raise ValueError("calibrate: the calibration data is empty (no batches)")
    for q in acts:
        hist = observers[id(q)].hist
        if hist.counts is None:
            continue  # not reached by the data (e.g. an unused branch): left as is
        if method == "max":
            amax = hist.amax
        elif method == "percentile":
            amax = amax_percentile(hist, percentile)
        elif method == "mse":
            amax = amax_mse(hist, q.num_bits, not q.signed)
        else:
            amax = amax_entropy(hist, q.num_bits, not q.signed)
        amax = np.float32(amax)
        if not q.built:
            q.build(())
        q.max.assign(tf.fill(tf.shape(q.max), amax))
        q.min.assign(tf.fill(tf.shape(q.min), -amax if q.signed else np.float32(0)))
        if q.range_mode == "max":
            q.range_mode = "fixed"
        if q.range_mode == "fixed":
            q.init_range = float(amax)
    for layer in _wrappers(qmodel):
        layer.refresh_weight_ranges()
    return qmodel


def _wrappers(model: Any) -> List[Any]:
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_wrappers(layer))
        elif isinstance(layer, WRAPPER_CLASSES):
            out.append(layer)
    return out


__all__ = ["calibrate", "CALIBRATION_METHODS", "Histogram", "amax_entropy", "amax_mse", "amax_percentile"]
