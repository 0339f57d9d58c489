"""Property-based fuzzing, quick profile (the long one: `python -m tools.fuzz --minutes N` from
the checkout's root). The strategies, the validity model and the references live in
tools/fuzz/; see its docstring.

Every case: bit-identical with TensorFlow's built-in op (or the documented reference)
where the result is defined, the expected clean exception otherwise, never a
crash. The @example cases pin inputs that abort TensorFlow 2.21 or that the
model must get right (denormals-are-zero range checks, the sign of NaN in the
bfloat16 reference).
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given
from qdq_testing import BFLOAT16 as BF16
from qdq_testing import checkout_tools

checkout_tools()
from tools import fuzz
from tools.fuzz import Case

f32 = np.float32
X = np.arange(6, dtype=f32).reshape(2, 3) - 2.5


def _v3(axis, mn, mx, x=X, nb=8, **attrs):
    return Case(
        op="V3",
        dtype=f32,
        x=x,
        mn=np.asarray(mn, f32),
        mx=np.asarray(mx, f32),
        num_bits_tensor=np.asarray(nb, np.int32),
        attrs=dict(axis=axis, range_given=True, **attrs),
    )


PINNED = [
    # aborts TensorFlow 2.21: V3 with axis in [-dims, -2]
    _v3(-2, [-1, -1], [1, 1]),
    # aborts TensorFlow 2.21: V3 with a multi-element min/max and axis -1
    _v3(-1, [-1, -1], [1, 1]),
    _v3(-1, np.zeros(0), np.zeros(0)),
    # V3 on a scalar, non-scalar num_bits, out-of-range num_bits
    _v3(-1, -1, 1, x=np.asarray(1, f32)),
    _v3(-1, -1, 1, nb=[8, 8]),
    _v3(-1, -1, 1, nb=62),
    # V4Grad with wrong-rank min/max (TensorFlow CHECK failures in older versions)
    Case(op="V4Grad", dtype=f32, x=X, grads=X, mn=np.zeros(0, f32), mx=np.asarray(1, f32), attrs=dict(axis=-1)),
    Case(op="V4Grad", dtype=f32, x=X, grads=X, mn=np.asarray(0, f32), mx=np.asarray(1, f32), attrs=dict(axis=1)),
    # denormals-are-zero: an inverted subnormal range compares as 0 <= 0 and is accepted
    Case(
        op="V2",
        dtype=f32,
        x=X,
        mn=np.asarray(1e-40, f32),
        mx=np.asarray(-1e-40, f32),
        attrs=dict(axis=-1, range_given=True),
    ),
    # +inf in bfloat16 data with a computed range: every output is NaN (the reference's sign of NaN varies)
    Case(
        op="V2",
        dtype=BF16,
        x=np.full((3, 70000), np.inf).astype(BF16),
        mn=np.asarray(0, BF16),
        mx=np.asarray(0, BF16),
        attrs=dict(axis=-1, num_bits=1, signed_input=False),
    ),
    # NaN in the data with a computed range, per channel (docs/semantics.md#diff-nan-in-data), HALF_UP
    Case(
        op="V4",
        dtype=np.float64,
        x=np.array([[np.nan, 1, -1e73], [2, np.nan, 1e-282]]),
        mn=np.zeros(3),
        mx=np.zeros(3),
        attrs=dict(axis=1, round_mode="HALF_UP"),
    ),
    # per-channel given range with HALF_UP (no built-in defines it: per-slice reference)
    Case(
        op="V2",
        dtype=np.float16,
        x=X.astype(np.float16),
        mn=np.array([-1, 0, -3], np.float16),
        mx=np.array([1, 0, 3], np.float16),
        attrs=dict(axis=1, range_given=True, round_mode="HALF_UP"),
    ),
    # wrapper: non-float input, negative axis, axis beyond int64
    Case(op="qdq", dtype=np.int32, x=np.arange(3, dtype=np.int32), mn=np.asarray(0, f32), mx=np.asarray(1, f32)),
    Case(op="qdq_v2", dtype=f32, x=X, mn=np.zeros(3, f32), mx=np.ones(3, f32), attrs=dict(axis=-1, range_given=True)),
    Case(op="qdq", dtype=f32, x=X, mn=np.zeros(3, f32), mx=np.ones(3, f32), attrs=dict(axis=2**70)),
    # V1 with a range of signed zeros (the oracle must keep -0.0, not turn it into +0.0)
    Case(
        op="V1",
        dtype=f32,
        x=np.array([0.0, -0.0, 1e-40, -1e-40, 0.5, -0.5, 2.0], f32),
        attrs=dict(signed_input=False, num_bits=1, range_given=True, input_min=0.0, input_max=-0.0),
    ),
    # graph mode: the shape function rejects min/max shapes the kernel would ignore
    Case(op="V2", dtype=f32, x=X, mn=np.zeros(2, f32), mx=np.zeros(2, f32), attrs=dict(axis=-1), graph=True),
]


def _with_examples(f):
    for c in PINNED:
        f = example(case=c)(f)
    return f


@fuzz.quick_settings(max_examples=1000)
@given(case=fuzz.cases())
@_with_examples
def test_fuzz_quick(case):
    _COUNT["cases"] += 1
    _COUNT[fuzz.check(case)] += 1


_COUNT = {"cases": 0, "ok": 0, "error": 0}


def test_fuzz_quick_ran_enough_cases():
    """Runs after test_fuzz_quick (file order): hypothesis really generated the cases."""
    if _COUNT["cases"] == 0:
        pytest.skip("test_fuzz_quick was not run")
    print(f"quick fuzz profile: {_COUNT}")
    assert _COUNT["cases"] >= 1000 and _COUNT["ok"] >= 400 and _COUNT["error"] >= 200, _COUNT


def test_model_classifies_pinned_cases():
    """The validity model itself: the aborting inputs are errors, the others valid."""
    errs = [fuzz.expected_errors(c) for c in PINNED]
    assert [e[0] if e else None for e in errs] == [
        "InvalidArgumentError",
        "InvalidArgumentError",
        "InvalidArgumentError",
        "InvalidArgumentError",
        "InvalidArgumentError",
        "InvalidArgumentError",
        "InvalidArgumentError",
        "InvalidArgumentError",
        None,
        None,
        None,
        None,
        "TypeError",
        None,
        "ValueError",
        None,
        "ValueError",
    ]


def test_long_profile_cli(capsys):
    """`python -m tools.fuzz` (here: a few seconds, in-process) reports progress and a summary."""
    assert fuzz.main(["--minutes", "0.05", "--seed", "7", "--chunk", "20"]) == 0
    out = capsys.readouterr().out
    assert "tf_qdq fuzz summary:" in out and "0 failures" in out
    # A developer tool of the checkout: the installed package's command line does not offer it.
    from tf_qdq.__main__ import main

    assert main(["fuzz"]) == 2
    assert "unknown command 'fuzz'" in capsys.readouterr().err
