"""The command lines of `python -m tf_qdq` that rewrite, convert or check models: lower, raise,
tf2onnx, saved_model_cli, check-onnx (tf_qdq/__main__.py dispatches to them). They are not part of the
library API: tf_qdq.export holds the functions they call."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

__all__ = ["lower_main", "raise_main", "tf2onnx_main", "saved_model_cli_main", "check_onnx_main"]


def _rewrite(argv, direction):
    lower = direction == "lower"
    parser = argparse.ArgumentParser(
        prog=f"python -m tf_qdq {direction}",
        description=(
            "Copy a SavedModel, replacing every tf_qdq plugin op by TensorFlow's built-in ops "
            "that compute the same bits, so that it loads without tf_qdq and converts with "
            "tf2onnx / TF-TRT."
            if lower
            else "Copy a SavedModel, replacing every built-in QuantizeAndDequantize* op by the tf_qdq "
            "plugin's (loading the result needs `import tf_qdq`)."
        ),
    )
    parser.add_argument("src", help="SavedModel directory to read")
    parser.add_argument("dst", help="directory to write (must not exist unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace dst if it exists")
    if lower:
        parser.add_argument(
            "--straight-through",
            action="store_true",
            help="lower V4 ops with a computed range to V2 (straight-through gradient, like the "
            "plugin's) instead of V4 (whose built-in gradient masks against 0, 0)",
        )
    args = parser.parse_args(argv)
    from tf_qdq import export  # noqa: PLC0415

    try:
        if lower:
            stats = export.lower_saved_model(args.src, args.dst, args.straight_through, args.overwrite)
        else:
            stats = export.raise_saved_model(args.src, args.dst, args.overwrite)
    except (export.LoweringError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"tf_qdq {direction}: error: {e}", file=sys.stderr)
        return 1
    if not stats:
        print(f"tf_qdq {direction}: no op to rewrite; copied {args.src} to {args.dst}")
    for key, n in sorted(stats.items()):
        print(f"  {n:5d}  {key}")
    print(f"tf_qdq {direction}: wrote {args.dst}")
    return 0


def lower_main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m tf_qdq lower SRC DST`."""
    return _rewrite(sys.argv[1:] if argv is None else argv, "lower")


def raise_main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m tf_qdq raise SRC DST`."""
    return _rewrite(sys.argv[1:] if argv is None else argv, "raise")


def tf2onnx_main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m tf_qdq tf2onnx ARGS...`: tf2onnx's command line (`python -m
    tf2onnx.convert ARGS...`) with the tf_qdq ops loaded and lowered before
    Grappler, so that a SavedModel with plugin ops converts like its lowered twin."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        import tf2onnx.convert  # noqa: PLC0415
    except ImportError:
        print("tf_qdq tf2onnx: error: tf2onnx is not installed: pip install 'tf_qdq[export]'", file=sys.stderr)
        return 1
    from tf_qdq import export  # noqa: PLC0415  (the plugin ops are loaded: this is tf_qdq)

    export.patch_tf2onnx()
    saved_argv = sys.argv
    sys.argv = ["python -m tf_qdq tf2onnx", *argv]
    try:
        tf2onnx.convert.main()
    except SystemExit as e:  # argparse: -h, bad arguments
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved_argv
    return 0


def saved_model_cli_main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m tf_qdq saved_model_cli ARGS...`: TensorFlow's saved_model_cli
    (show, run, ...) in a process that has loaded the tf_qdq ops, so that it can
    run SavedModels that hold them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # The plugin ops are registered: importing this module imported tf_qdq.
    from tensorflow.python.tools import saved_model_cli  # noqa: PLC0415

    saved_argv = sys.argv
    sys.argv = ["python -m tf_qdq saved_model_cli", *argv]
    try:
        saved_model_cli.main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved_argv
    return 0


def check_onnx_main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m tf_qdq check-onnx MODEL.onnx --recipe tensorrt|onnxruntime`."""
    from tf_qdq.export import check

    parser = argparse.ArgumentParser(
        prog="python -m tf_qdq check-onnx",
        description="Lint a quantized ONNX model: float Conv/MatMul/Gemm inputs, zero points, Concat scales, "
        "Q/DQ pairs, per-channel axes, leftover TensorFlow ops; with --recipe onnxruntime also what onnxruntime "
        "leaves in float. Exit status 1 when something is found.",
    )
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("--recipe", choices=check.RECIPES, default="tensorrt", help="target runtime (default tensorrt)")
    parser.add_argument("--no-runtime", action="store_true", help="do not load the model in onnxruntime")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        findings = check.check_onnx(args.model, args.recipe, runtime=not args.no_runtime)
    except (OSError, ValueError) as e:
        print(f"check-onnx: error: cannot read {args.model}: {e}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    if findings:
        print(f"check-onnx: {len(findings)} finding(s) in {args.model} for recipe {args.recipe}")
        return 1
    print(f"check-onnx: {args.model} is clean for recipe {args.recipe}")
    return 0
