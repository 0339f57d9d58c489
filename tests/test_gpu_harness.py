"""The TensorFlow-free GPU harness (tools/gpu_harness/): built with nvcc wherever
nvcc is installed (GPU or not), so CI compiles it and links it against the
CUDA kernels exactly as they are; run, with compute-sanitizer when installed,
where a GPU is visible.

Without nvcc the build test skips; without a GPU the run test skips. With
TF_QDQ_EXPECT_GPU=1 both fail instead (a GPU machine must run the harness)."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN_SH = os.path.join(ROOT, "tools", "gpu_harness", "run.sh")
EXPECT_GPU = os.environ.get("TF_QDQ_EXPECT_GPU", "").strip() not in ("", "0")


def _skip_or_fail(reason: str) -> None:
    if EXPECT_GPU:
        pytest.fail(f"TF_QDQ_EXPECT_GPU=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def _nvcc():
    for cand in (os.environ.get("TF_QDQ_NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _gpu_visible() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    r = subprocess.run([smi, "-L"], capture_output=True, text=True)
    return r.returncode == 0 and "GPU" in r.stdout


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    nvcc = _nvcc()
    if nvcc is None:
        _skip_or_fail("nvcc not found (set TF_QDQ_NVCC or put nvcc on PATH)")
    out = tmp_path_factory.mktemp("gpu_harness")
    env = dict(os.environ, TF_QDQ_NVCC=nvcc, TF_QDQ_HARNESS_DIR=str(out))
    r = subprocess.run(["bash", RUN_SH, "--build-only"], capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    exe = os.path.join(out, "qdq_gpu_harness")
    assert os.access(exe, os.X_OK), r.stdout
    return exe, env, r.stdout


def test_harness_builds_with_bit_exact_flags(harness):
    exe, env, log = harness
    command = next(line for line in log.splitlines() if line.startswith("building "))
    for flag in ("-fmad=false", "-ftz=false", "-prec-div=true", "-prec-sqrt=true", "-ffp-contract=off"):
        assert flag in command.split(), (flag, command)
    assert "use_fast_math" not in command
    if not _gpu_visible():
        # It links and starts; without a device it says so and exits with 3.
        r = subprocess.run([exe], capture_output=True, text=True, timeout=120)
        assert r.returncode == 3 and "no CUDA device" in r.stdout, (r.returncode, r.stdout, r.stderr)


def test_harness_passes_on_the_gpu(harness):
    if not _gpu_visible():
        _skip_or_fail("no GPU visible (nvidia-smi -L)")
    exe, env, _ = harness
    # Everything but the timings (the benchmark's business), then the
    # sanitizers on the quick checks.
    r = subprocess.run(["bash", RUN_SH, "--no-timing"], capture_output=True, text=True, env=env, timeout=3600)
    assert r.returncode == 0 and "== all passed" in r.stdout, r.stdout[-8000:] + r.stderr[-4000:]


def test_report_runs_every_section_and_writes_one_table(harness, tmp_path):
    """run.sh --report (the first run on a GPU machine): one row per section in order, then the timing rows.
    Without a GPU the grid fails with "no CUDA device" and the device sections are marked not run."""
    if _gpu_visible():
        pytest.skip("a GPU is visible: test_harness_passes_on_the_gpu covers the sections")
    _, env, _ = harness
    report = tmp_path / "report.md"
    r = subprocess.run(["bash", RUN_SH, "--report", str(report)], capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-4000:]
    text = report.read_text()
    assert text in r.stdout  # printed at the end too
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| check ")]
    names = [row.split("|")[1].strip() for row in rows]
    assert names[0].startswith("build (nvcc "), names
    assert names[1:] == [
        "correctness grid",
        "memcheck, quick grid",
        "racecheck, quick grid",
        "timing",
        "more than 2^31 elements",
    ], names
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]] for row in rows}
    assert cells[names[0]][0] == "pass", rows[0]
    assert cells["correctness grid"][0] == "FAIL" and "no CUDA device" in cells["correctness grid"][2], rows
    for name in ("timing", "more than 2^31 elements"):
        assert cells[name][0] == "not run", rows
    for name in ("memcheck, quick grid", "racecheck, quick grid"):
        assert cells[name][0] == "not run", rows
