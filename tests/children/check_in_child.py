"""Child of the tests that rerun a check of theirs in a fresh process (another CPU table through
TF_QDQ_CPU_ISA, streaming stores, another thread count):

    python check_in_child.py MODULE FUNCTION [--intra-op-threads N] [NAME=VALUE ...]

imports test module MODULE (from tests/), calls FUNCTION(NAME=VALUE, ...) (values as Python
literals), which returns a list of failure strings or (cases, failures), prints the first 20
failures and exits 1 when there is any."""

import argparse
import ast
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

parser = argparse.ArgumentParser()
parser.add_argument("module")
parser.add_argument("function")
parser.add_argument("--intra-op-threads", type=int)
parser.add_argument("kwargs", nargs="*", help="NAME=VALUE")
args = parser.parse_intermixed_args()

if args.intra_op_threads:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)

import importlib

module = importlib.import_module(args.module)
kwargs = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.kwargs)}
result = getattr(module, args.function)(**kwargs)
failures = result[1] if isinstance(result, tuple) else result
if isinstance(result, tuple):
    print(result[0], "cases")
print("\n".join(failures[:20]))
sys.exit(1 if failures else 0)
