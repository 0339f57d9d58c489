"""Developer tools run through `python -m tf_qdq`, not needed to use the ops:

    bench        speed against TensorFlow's built-in ops (`python -m tf_qdq bench`), including the
                 per-call overhead of the Python wrappers and a QAT training step (`--model`)
    fuzz         property-based fuzzing against the built-in ops (`python -m tf_qdq fuzz`)

Importing `tf_qdq` does not import them.
"""
