"""Command line of tf_qdq.

python -m tf_qdq [check]      self-check: kernels, and parity with the built-in ops
python -m tf_qdq COMMAND -h   help of one command
"""

import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# command -> ("module[:function]" whose function(argv) (default main) returns an exit code, help)
COMMANDS = {
    "check": ("tf_qdq.selfcheck", "loaded library, registered kernels, parity with the built-in ops"),
    "lower": (
        "tf_qdq._cli:lower_main",
        "copy a SavedModel with plugin ops replaced by built-in ops (tf2onnx, no tf_qdq)",
    ),
    "raise": ("tf_qdq._cli:raise_main", "copy a SavedModel with built-in QDQ ops replaced by plugin ops"),
    "tf2onnx": ("tf_qdq._cli:tf2onnx_main", "tf2onnx.convert ARGS with the tf_qdq ops loaded and lowered"),
    "saved_model_cli": ("tf_qdq._cli:saved_model_cli_main", "saved_model_cli ARGS with the tf_qdq ops loaded"),
    "check-onnx": ("tf_qdq._cli:check_onnx_main", "lint a quantized ONNX model for --recipe tensorrt|onnxruntime"),
    "bench": ("tf_qdq.bench.cli", "speed against the built-in ops (--quick, --json, --model, --xla; -h: sections)"),
}


def main(argv: "list[str] | None" = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        argv[0] = "help"
    cmd = argv.pop(0) if argv and not argv[0].startswith("-") else "check"
    if cmd == "help":
        print(__doc__)
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        return 0
    if cmd not in COMMANDS:
        print(f"tf_qdq: unknown command {cmd!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, _, function = COMMANDS[cmd][0].partition(":")
    return getattr(importlib.import_module(module), function or "main")(argv)


if __name__ == "__main__":
    sys.exit(main())
