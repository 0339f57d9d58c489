"""Child of tests/test_bad_inputs.py: runs checklist cases in this process, so that an input that
crashes ends only this process. `python bad_inputs.py plugin|tf [ID ...]` (no ID: every case)
prints one JSON line when a case starts and one with its result."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

import test_bad_inputs

test_bad_inputs.child_main(sys.argv[1:])
