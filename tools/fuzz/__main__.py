"""`python -m tools.fuzz` from the checkout's root (tools/fuzz/cli.py)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tools.fuzz.cli import main

sys.exit(main())
