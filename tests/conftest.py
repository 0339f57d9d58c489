"""Shared fixtures. The shared tables and checks live in qdq_testing.py.

Tests import the installed package (or the source tree when it was built in
place with `python setup.py build_ext --inplace` and is on PYTHONPATH)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import tensorflow as tf


@pytest.fixture(autouse=True)
def _cpu_by_default():
    """Tests run on the CPU unless they place ops themselves (tests/test_gpu.py
    does): on a GPU machine the CPU suite must still compare CPU kernels with
    TensorFlow's CPU kernels."""
    with tf.device("/CPU:0"):
        yield
