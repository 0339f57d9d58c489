"""Property-based fuzzing of the tf_qdq ops with hypothesis (docs/semantics.md#validation and #bad-inputs).

    python -m tools.fuzz [--minutes N] [--seed S] [--graph-fraction F] [--last-case PATH]

from the root of a source checkout, with tf_qdq importable (installed, or built in place and on
PYTHONPATH) and hypothesis installed (`pip install ".[test]"`).

Every generated case (op, dtype, shape incl. empty dims, attrs, axis, min/max
shapes and values, num_bits, data with NaN/inf/subnormal/huge values, eager or
`tf.function` with known shapes) is first classified by an independent model of
the validation rules (`expected_errors`), then run through the plugin:

- an invalid case must raise the expected clean exception (InvalidArgumentError
  from a kernel, ValueError from a shape function or the wrapper, TypeError from
  the wrapper) whose message names the problem;
- a valid case must be bit-identical with TensorFlow's built-in op, through
  `tf_qdq.reference.builtin` (which applies the docs/semantics.md#differences-from-tensorflow references for
  half/bfloat16, V1 and per-channel given ranges), or, where TensorFlow has no
  answer, with the built-in op applied per channel slice (HALF_UP per-channel
  given ranges; NaN in the data with a computed range, docs/semantics.md#diff-nan-in-data);
- the process never crashes (a crash ends the run; --last-case names the input).

The built-in op is only called on inputs that are valid for the plugin with
correctly shaped min/max, so never on the inputs that abort TensorFlow (V3 with
axis in [-dims, -2], V3 with a multi-element min and axis -1, V2/V4Grad with
wrong-rank min/max).

Arithmetic note: TensorFlow runs every kernel with denormals-are-zero and
flush-to-zero set (tsl::port::ScopedFlushDenormal), so do the plugin and the
built-in op; the validity model therefore compares ranges with subnormals read
as zero, and the references are TensorFlow ops, not NumPy.

Modules: `strategies` (the hypothesis strategies and the quick profile),
`model` (`Case` and the independent model of the validation rules), `reference`
(running a case and checking it), `cli` (the long profile). They are a developer tool
of the checkout, not part of the installed package; tests/test_fuzz.py runs the quick profile.
"""

from tools.fuzz.cli import main
from tools.fuzz.model import BFLOAT16, FLOAT_DTYPES, REASON_PATTERNS, WRAPPERS, Case, effective, expected_errors
from tools.fuzz.reference import OPS, check, run_plugin
from tools.fuzz.strategies import SPECIAL_VALUES, cases, quick_settings, shapes

__all__ = [
    "BFLOAT16",
    "FLOAT_DTYPES",
    "OPS",
    "REASON_PATTERNS",
    "SPECIAL_VALUES",
    "WRAPPERS",
    "Case",
    "cases",
    "check",
    "effective",
    "expected_errors",
    "main",
    "quick_settings",
    "run_plugin",
    "shapes",
]
