"""The one timing loop and the one progress line of `python -m tf_qdq bench`.

Every section times its functions the same way (`interleaved`):
  * warm-up: each function is called `warmup` times, untimed, before the first timed round
    (first-call caches, allocations, tracing and compilation of tf.functions);
  * rounds: one call of each function per round, the order rotating from round to round, so that
    slow drifts of the machine and cache effects of the call order fall on every function alike;
  * a call is timed until `wait(result)` returns: eager CPU ops have finished when the call
    returns (wait=None), a compiled or device result is waited for by the caller's `wait`;
  * rounds go on until `max_reps`, and at least until `min_reps` rounds and `min_time` seconds.
Sections report the median (kernels, XLA, the training step) or the best (call overhead) of the
per-call times.
"""

import statistics
import sys
import time
from typing import Callable, List, Optional, Sequence


class Timings:
    """Seconds per call of each function, by round: `times[i][r]`."""

    def __init__(self, times: List[List[float]]):
        self.times = times

    @property
    def reps(self) -> int:
        return len(self.times[0]) if self.times else 0

    def medians(self) -> List[float]:
        return [statistics.median(t) for t in self.times]

    def best(self) -> List[float]:
        return [min(t) for t in self.times]


def interleaved(
    fns: Sequence[Callable[[], object]],
    *,
    min_reps: int = 1,
    max_reps: Optional[int] = None,
    min_time: float = 0.0,
    warmup: int = 2,
    wait: Optional[Callable[[object], object]] = None,
    on_round: Optional[Callable[[int], None]] = None,
) -> Timings:
    """Times `fns` interleaved (module docstring). `max_reps` defaults to `min_reps`;
    `on_round(r)` is called before round r (progress)."""
    max_reps = min_reps if max_reps is None else max(max_reps, min_reps)
    for fn in fns:
        for _ in range(warmup):
            out = fn()
            if wait is not None:
                wait(out)
            del out
    times: List[List[float]] = [[] for _ in fns]
    t_start = time.perf_counter()
    reps = 0
    while reps < max_reps and (reps < min_reps or time.perf_counter() - t_start < min_time):
        if on_round is not None:
            on_round(reps)
        k = reps % len(fns) if fns else 0
        for i in list(range(k, len(fns))) + list(range(k)):
            t0 = time.perf_counter()
            out = fns[i]()
            if wait is not None:
                wait(out)
            times[i].append(time.perf_counter() - t0)
            del out
        reps += 1
    return Timings(times)


class Progress:
    """One progress line on stderr, rewritten in place: `[label  12 s] text`."""

    WIDTH = 78

    def __init__(self, label: str, enabled: bool = True):
        self.label, self.enabled = label, enabled
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def say(self, text: str) -> None:
        if self.enabled:
            line = f"[{self.label} {self.elapsed():4.0f} s] {text}"
            print("\r" + line.ljust(self.WIDTH), end="", file=sys.stderr, flush=True)

    def done(self, text: str = "") -> None:
        """Ends the line: with `text` kept on screen, or erased when empty."""
        if self.enabled:
            if text:
                print(f"\r[{self.label}] {text}".ljust(self.WIDTH + 1), file=sys.stderr, flush=True)
            else:
                print("\r" + " " * self.WIDTH + "\r", end="", file=sys.stderr, flush=True)
