"""`python -m tools.fuzz` (from the checkout's root): the long fuzz profile, in chunks of
hypothesis runs until the time is up.

python -m tools.fuzz [--minutes N] [--seed S] [--graph-fraction F] [--last-case PATH]
"""

import argparse
import os
import sys
import time
import traceback

from tools.fuzz import strategies
from tools.fuzz.reference import check
from tools.fuzz.strategies import MISSING_HYPOTHESIS


def _fmt(seconds):
    m, s = divmod(int(seconds), 60)
    return f"{m:02d}:{s:02d}"


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fuzz",
        description="property-based fuzzing of the tf_qdq ops against TensorFlow's built-in ops",
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first chunk (default random)")
    parser.add_argument("--chunk", type=int, default=200, help="cases per hypothesis run (default 200)")
    parser.add_argument(
        "--graph-fraction", type=float, default=0.15, help="fraction of cases run inside tf.function (default 0.15)"
    )
    parser.add_argument(
        "--last-case", default=None, help="write each case here before running it, to name the input after a crash"
    )
    parser.add_argument("--max-failures", type=int, default=20, help="stop after this many failures")
    args = parser.parse_args(argv)
    if strategies.hypothesis is None:
        print(MISSING_HYPOTHESIS, file=sys.stderr)
        return 2
    import faulthandler
    import random

    import hypothesis
    from hypothesis import HealthCheck, settings

    try:  # a crash prints the Python stack (and --last-case names the input)
        faulthandler.enable()
    except (ValueError, OSError, AttributeError):  # stderr without a file descriptor (captured)
        pass
    deadline = time.monotonic() + args.minutes * 60
    start = time.monotonic()
    stats = {"cases": 0, "ok": 0, "error": 0}
    failures = []
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    last_report = [start]

    def progress(force=False):
        now = time.monotonic()
        if force or now - last_report[0] >= 10:
            last_report[0] = now
            print(
                f"[fuzz {_fmt(now - start)}] {stats['cases']} cases ({stats['ok']} valid, "
                f"{stats['error']} rejected cleanly), {len(failures)} failures",
                flush=True,
            )

    @settings(
        max_examples=args.chunk,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=True,
    )
    @hypothesis.given(case=strategies.cases(graph_fraction=args.graph_fraction))
    def one(case):
        if time.monotonic() > deadline:
            return
        if args.last_case:
            with open(args.last_case, "w") as f:
                f.write(case.describe() + "\n")
        what = check(case)
        stats["cases"] += 1
        stats[what] += 1
        progress()

    print(f"tf_qdq fuzz: {args.minutes:g} min, chunks of {args.chunk} cases, first seed {seed}", flush=True)
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        print(
            "  (TensorFlow logs a warning for every rejected input: run with TF_CPP_MIN_LOG_LEVEL=2 to silence them)",
            flush=True,
        )
    chunk = 0
    while time.monotonic() < deadline and len(failures) < args.max_failures:
        chunk_seed = seed + chunk
        chunk += 1
        try:
            hypothesis.seed(chunk_seed)(one)()
        except Exception as e:  # a contract violation, shrunk by hypothesis
            failures.append((chunk_seed, e))
            print(f"\n[fuzz] FAILURE #{len(failures)} (chunk seed {chunk_seed}):", flush=True)
            traceback.print_exception(type(e), e, e.__traceback__, limit=3)
            print(flush=True)
    progress(force=True)
    elapsed = time.monotonic() - start
    print(
        f"\ntf_qdq fuzz summary: {stats['cases']} cases in {_fmt(elapsed)} "
        f"({stats['cases'] / max(elapsed, 1e-9):.1f}/s): {stats['ok']} valid and bit-identical with the "
        f"reference, {stats['error']} rejected with the expected clean error, {len(failures)} failures."
    )
    for s, e in failures:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"  seed {s}: {first[:200]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
