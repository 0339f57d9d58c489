"""Element counts and dims beyond int32 (docs/semantics.md#bad-data, #bad-no-check): all index arithmetic of
the kernels is int64 (View's outer/depth/inner, the block splitting).

- Always run (cheap): empty tensors whose other dims overflow int32, or even
  int64 once the zero is left out ([0, 2^62, 2^62]); per-channel views with
  2^31 + 1 channels.
- Opt-in (TF_QDQ_HUGE=1, marked slow; ~4-8 GiB of memory each, tens of
  seconds): 2^31 + 8 real elements in bfloat16, per tensor and per channel
  (along the outer and the inner axis), with sentinels beyond index 2^31 that
  decide the computed range, so that a truncated index anywhere changes the
  result.

Every test runs in a child process: a crash or an out-of-memory kill fails the
test, not pytest.
"""

import os

import pytest
from qdq_testing import run_child

HUGE = os.environ.get("TF_QDQ_HUGE") == "1"


def test_empty_with_int32_overflowing_dims():
    out = run_child("huge_empty_dims.py", timeout=1800).stdout
    assert "empty ok" in out


@pytest.mark.slow
@pytest.mark.skipif(not HUGE, reason="allocates 4-8 GiB and takes a while: set TF_QDQ_HUGE=1 to run")
@pytest.mark.parametrize("layout", ["per-tensor", "per-channel-outer", "per-channel-inner"])
def test_more_than_int32_max_elements(layout):
    out = run_child("huge_sentinels.py", layout, timeout=1800).stdout
    assert "huge ok" in out
