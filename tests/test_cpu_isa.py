"""The instruction set of the CPU loops: which one runs (tf_qdq.cpu_isa(), TF_QDQ_CPU_ISA) and
the error for a TF_QDQ_CPU_ISA that names none, at import and, for a library loaded without the
package, at the first kernel run."""

import os
import subprocess
import sys

import tf_qdq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALID = ("sse2", "avx2", "avx512")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _expected(requested):
    """The table the kernels pick for TF_QDQ_CPU_ISA=`requested` ("" unset) on this CPU."""
    flags = _cpu_flags()
    default = "avx2" if {"avx2", "f16c"} <= flags else "sse2"
    if requested == "sse2":
        return "sse2"
    if requested == "avx512" and {"avx2", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "avx512"
    return default


def _child(code, isa):
    env = dict(os.environ, TF_QDQ_CPU_ISA=isa, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cpu_isa_reports_the_table_in_use():
    if os.environ.get("TF_QDQ_CPU_ISA"):
        assert tf_qdq.cpu_isa() in VALID
    elif sys.platform.startswith("linux") and _cpu_flags():
        assert tf_qdq.cpu_isa() == _expected("")


def test_tf_qdq_cpu_isa_picks_the_table():
    code = "import tf_qdq; print(tf_qdq.cpu_isa())"
    for isa in ("sse2", "avx2", "avx512", "AVX2"):
        r = _child(code, isa)
        assert r.returncode == 0, r.stderr[-2000:]
        got = r.stdout.strip().splitlines()[-1]
        if _cpu_flags():
            assert got == _expected(isa.lower()), isa
        else:
            assert got in VALID


def test_invalid_tf_qdq_cpu_isa_fails_the_import_and_lists_the_valid_ones():
    r = _child("import tf_qdq", "avx3")
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])  # an exception, no abort
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: tf_qdq: TF_QDQ_CPU_ISA='avx3' names no instruction set")
    for name in VALID:
        assert name in last


def test_invalid_tf_qdq_cpu_isa_fails_each_kernel_run_without_the_package():
    # A library loaded with tf.load_op_library alone (no Python check): every CPU kernel run is
    # an InvalidArgumentError with the same text, the process goes on.
    code = "\n".join(
        [
            "import tensorflow as tf",
            f"lib = tf.load_op_library({tf_qdq.library_path()!r})",
            "x = tf.constant([0.5, -1.0, 2.0])",
            "for call in (lambda: lib.TfQdq_QuantizeAndDequantizeV2(input=x, input_min=0.0, input_max=0.0),",
            "             lambda: lib.TfQdq_QuantizeAndDequantizeV4Grad(gradients=x, input=x,",
            "                 input_min=-1.0, input_max=1.0)):",
            "    try:",
            "        call()",
            "        print('no error')",
            "    except tf.errors.InvalidArgumentError as e:",
            "        print('error:', e.message)",
        ]
    )
    r = _child(code, "neon")
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stdout.splitlines() if line]
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("error: "), line
        assert "tf_qdq: TF_QDQ_CPU_ISA='neon' names no instruction set" in line, line
        assert "sse2, avx2 or avx512" in line
