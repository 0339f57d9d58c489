"""`python -m tf_qdq bench`: speed against TensorFlow's built-in ops, for users who want to know
what the plugin gains on their machine. `cli` is the command line, `timing` the one timing loop
and progress line; the sections are `kernels` (and the wrappers' call overhead), `qat` (a QAT
training step) and `xla` (jit_compile=True).

    python -m tf_qdq bench --quick
    tf_qdq.bench.kernels.run(quick=True)    the rows, from Python

Importing `tf_qdq` does not import it.
"""
