"""Runs the CUDA kernels' per-thread code (kernels/qdq_gpu_body.h) on the CPU.

tests/gpu_emulation.cc executes every block and thread of the range reduction,
the elementwise and the gradient launches sequentially (with the launch
geometry of qdq_gpu.cu.cc and with deliberately small grids), and compares
with the serial reference (tools/gpu_harness/reference.h) bit for bit, under
AddressSanitizer and UBSan when available. This checks without a GPU: the
32-bit fast division against plain division, both index paths (32 and 64
bit), the per-channel windows, the one-flush-per-thread scan of short runs
(e.g. 3 channels last), the order keys and the zero-sign rule, and the
16-byte groups of the elementwise loops with their heads and tails (every
element written once, every group aligned and in bounds), subnormal data and
given ranges, and the host-side parts of the GPU path: given-range parameters
computed under TensorFlow's flush-to-zero, the kernel-image check cache, and
the CPU's NaN bits. It needs only a C++ compiler."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _compiler():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def test_gpu_loop_bodies_on_the_host(tmp_path):
    cxx = _compiler()
    if cxx is None:
        pytest.skip("no C++ compiler found")
    exe = str(tmp_path / "gpu_emulation")
    base = [cxx, "-std=c++17", "-ffp-contract=off", "-I", ROOT, os.path.join(HERE, "gpu_emulation.cc"), "-o", exe]
    sanitized = subprocess.run(
        base + ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
        capture_output=True,
        text=True,
    )
    if sanitized.returncode != 0:  # no sanitizer runtime: plain build
        subprocess.run(base + ["-O2"], check=True, capture_output=True, text=True)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    run = subprocess.run([exe], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0 and run.stdout.strip().startswith("OK"), run.stdout[-3000:] + run.stderr[-3000:]
