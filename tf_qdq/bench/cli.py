"""`python -m tf_qdq bench`: speed of the plugin against TensorFlow's built-in ops, in sections.

  kernels   the ops' CPU kernels on cases x dtypes x sizes, every output checked bit for bit
            (tf_qdq/bench/kernels.py)
  overhead  what an eager call of the Python wrappers costs beyond the kernel (kernels.py)
  model     a quantization-aware training step of a small CNN: no QDQ, built-in QDQ, tf_qdq
            (tf_qdq/bench/qat.py)
  xla       the ops under tf.function(jit_compile=True) against the built-in ops, and a fused
            QDQ->matmul (tf_qdq/bench/xla.py); with the model section, also the compiled step

With no section flag it runs kernels, overhead and model (a few minutes on 2 cores; with --cases,
--dtypes or --sizes only kernels); a section flag (--kernels, --overhead, --model, --xla) runs
just the sections named. Every section times its functions the same way (tf_qdq/bench/timing.py).

    python -m tf_qdq bench                   kernels, overhead and model
    python -m tf_qdq bench --quick           small sizes and few repetitions (a smoke test)
    python -m tf_qdq bench --json            everything as JSON on stdout
    python -m tf_qdq bench --plot out.png    kernels: throughput vs size (needs matplotlib)
    python -m tf_qdq bench --model [--xla]   only the training step (and its XLA variants)
    python -m tf_qdq bench --xla             only the XLA rows

Absolute times depend on everything else running on the machine (memory bandwidth is shared):
compare the interleaved ratios, and note the load average printed in the header.
"""

import argparse
import json
import os
import sys
from typing import List, Optional

# The sections, in the order they run, and the flag that selects each. A new section (for example
# `deploy`, tf_qdq/bench/deploy.py) adds its line here and its block in _run_sections.
SECTIONS = {
    "kernels": "the ops' CPU kernels against the built-in ops",
    "overhead": "the per-call overhead of the Python wrappers",
    "model": "a QAT training step, no QDQ / built-in / tf_qdq",
    "xla": "the ops under jit_compile=True (with --model: also the compiled training step)",
}
DEFAULT_SECTIONS = ("kernels", "overhead", "model")


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _names(text, known, what):
    if text is None:
        return None
    out = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in out if t not in known]
    if bad:
        raise SystemExit(f"tf_qdq bench: unknown {what} {bad}; known: {', '.join(known)}")
    return out


def parser() -> argparse.ArgumentParser:
    from tf_qdq.bench import kernels  # noqa: PLC0415  (its tables name the choices)

    first, _, rest = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(
        prog="python -m tf_qdq bench",
        description=first,
        epilog=rest,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes, few repetitions (a smoke test)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    g = p.add_argument_group("sections (none given: kernels, overhead, model)")
    for name, text in SECTIONS.items():
        g.add_argument(f"--{name}", action="store_true", help=f"run {text}")
    g.add_argument("--no-overhead", action="store_true", help="leave the overhead section out of the default run")
    g.add_argument("--no-model", action="store_true", help="leave the model section out of the default run")
    g = p.add_argument_group("kernels")
    g.add_argument("--cases", help="comma-separated case names (default: all): " + ", ".join(kernels.CASES))
    g.add_argument("--dtypes", help="comma-separated: " + ", ".join(kernels.DTYPES))
    g.add_argument("--sizes", help="comma-separated: " + ", ".join(kernels.SIZES))
    g.add_argument("--min-time", type=float, help="seconds of timing per measurement (default 0.4)")
    g.add_argument("--min-reps", type=int, help="at least this many calls of each op (default 7)")
    g.add_argument("--no-verify", action="store_true", help="skip the bit-identity check")
    g.add_argument("--plot", metavar="OUT.png", help="draw throughput vs size (needs matplotlib)")
    g = p.add_argument_group("model")
    g.add_argument("--steps", type=int, help="timed steps per variant (default 20, --quick 3)")
    g.add_argument("--warmup", type=int, help="untimed steps per variant after tracing (default 2, --quick 1)")
    g.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    g = p.add_argument_group("xla")
    g.add_argument("--reps", type=int, help="timed calls per row (default 15, --quick 3)")
    return p


def sections(args) -> List[str]:
    """The sections to run, in order."""
    chosen = [name for name in SECTIONS if getattr(args, name)]
    if chosen:
        return chosen
    if args.cases or args.dtypes or args.sizes:
        return ["kernels"]
    return [s for s in DEFAULT_SECTIONS if not getattr(args, f"no_{s}", False)]


def _run_sections(args, todo, progress):
    """{section: result} of the sections in `todo`; a section's result is what it reports."""
    from tf_qdq.bench import kernels  # noqa: PLC0415

    out = {}
    if "kernels" in todo:
        out["kernels"] = kernels.run(
            cases=_names(args.cases, kernels.CASES, "case"),
            dtypes=_names(args.dtypes, kernels.DTYPES, "dtype"),
            sizes=_names(args.sizes, kernels.SIZES, "size"),
            quick=args.quick,
            min_time=args.min_time,
            min_reps=args.min_reps,
            verify=not args.no_verify,
            progress=progress,
        )
    if "overhead" in todo:
        out["overhead"] = kernels.call_overhead(
            calls=200 if args.quick else 2000, rounds=3 if args.quick else 5, progress=progress
        )
    if "model" in todo:
        from tf_qdq.bench import qat  # noqa: PLC0415

        steps = args.steps if args.steps is not None else (3 if args.quick else 20)
        warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
        rows = qat.run(steps=steps, warmup=warmup, batch=args.batch, xla="xla" in todo, progress=progress)
        out["model"] = dict(rows=rows, summary=qat.summarize(rows), steps=steps)
    if "xla" in todo:
        from tf_qdq.bench import xla  # noqa: PLC0415

        try:
            out["xla"] = dict(
                rows=xla.xla_rows(
                    size=1 << 16 if args.quick else 1 << 24,
                    reps=args.reps or (3 if args.quick else 15),
                    progress=progress,
                ),
                error=None,
            )
        except AssertionError as e:  # a compiled output that differs from the CPU kernel's
            out["xla"] = dict(rows=[], error=str(e))
    # deploy (tf_qdq/bench/deploy.py): its block goes here.
    return out


def _print_text(env, results, targets, batch):
    from tf_qdq.bench import kernels  # noqa: PLC0415

    print(
        f"tf_qdq {env['tf_qdq']} vs TensorFlow {env['tensorflow']} built-in ops; {env['cpu']}, "
        f"{env['cores']} cores; 1-min load average {env['loadavg_1min'][0]:.2f} at start, "
        f"{env['loadavg_1min'][1]:.2f} at end; loops: {env['isa']}"
    )
    if "kernels" in results:
        print(
            "\nmedian of interleaved eager calls; ratio = built-in ms / plugin ms (higher: plugin "
            "faster); GB/s = bytes of one pass (input reads, x2 for a range from the data, + output) "
            "/ plugin time; 'vs f32' = plugin float32 ms / plugin ms for the same case (16-bit "
            "rows); '/ p-t' = plugin ms / plugin per-tensor ms on the same data (per-channel rows); "
            "'read ms' = tf.reduce_max of the input, one plain read: the memory floor (per-tensor "
            "float rows, 1M and 16M); 'V2 f32' = built-in float32 on the data cast to float32 (no 16-bit "
            "built-in); per-channel given ranges run the built-in V3 (its V2 rejects them).\n"
        )
        print(kernels.format_table(results["kernels"]))
    if "overhead" in results:
        print(
            "\ncall overhead: microseconds per eager call of the wrapper on a 4K float32 tensor "
            "(computed range; best of runs of many calls), tf.quantization vs tf_qdq\n"
        )
        print(kernels.format_overhead(results["overhead"]))
    if "model" in results:
        from tf_qdq.bench import qat  # noqa: PLC0415

        model = results["model"]
        print(
            f"\nQAT training step (a CNN of {len(qat.LAYERS)} conv layers, 32x32x3 inputs, batch {batch}; "
            f"{model['steps']} rounds of one step per variant): the QDQ overhead is the median over "
            "rounds of the step minus the no-QDQ step of the same round\n"
        )
        print(qat.format_report(model["rows"], model["summary"]))
    if "xla" in results:
        from tf_qdq.bench import xla  # noqa: PLC0415

        print(
            "\nXLA: both ops under tf.function(jit_compile=True) on "
            f"{'GPU' if env.get('gpu') else 'CPU'}; medians of interleaved calls; ratio = built-in / plugin\n"
        )
        if results["xla"]["error"]:
            print(f"  error: {results['xla']['error']}")
        else:
            print(xla.format_rows(results["xla"]["rows"]))
    if targets:
        print("\ntargets:")
        for t, v, ok in targets:
            mark = "n/a " if ok is None else ("PASS" if ok else "MISS")
            print(f"  [{mark}] {t}: {v}")


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    import tensorflow as tf  # noqa: PLC0415

    from tf_qdq.bench import kernels  # noqa: PLC0415

    todo = sections(args)
    load0 = load_average()
    results = _run_sections(args, todo, progress=not args.no_progress)
    env = kernels.environment()
    env["loadavg_1min"] = [load0, load_average()]
    env["gpu"] = bool(tf.config.list_physical_devices("GPU"))
    model = results.get("model")
    summary = model["summary"] if model else None
    # The project's targets, checked with the kernels section (the model report has its own line).
    targets = (
        kernels.check_targets(results["kernels"], results.get("overhead"), summary) if "kernels" in results else []
    )
    if args.json:
        json.dump(
            dict(
                environment=env,
                sections=todo,
                rows=results.get("kernels"),
                call_overhead=results.get("overhead"),
                model_step=None
                if model is None
                else dict(rows=model["rows"], summary={("xla" if k else "default"): v for k, v in summary.items()}),
                xla=results.get("xla"),
                targets=[dict(target=t, value=v, passed=ok) for t, v, ok in targets],
            ),
            sys.stdout,
            indent=1,
        )
        print()
    else:
        _print_text(env, results, targets, args.batch)
    if args.plot and "kernels" in results:
        kernels.plot(results["kernels"], args.plot)
    failed = [r for r in results.get("kernels", []) if r["identical"] is False]
    failed += [r for r in (model["rows"] if model else []) if r["error"] and not r["jit_compile"]]
    xla_error = results.get("xla", {}).get("error")
    return 1 if failed or xla_error else 0
