"""The build itself: which library is loaded, its recorded TensorFlow version, one
op against the built-in, (under `bazel test`) Bazel's flags against setup.py's, the
supported TensorFlow range (docs/building.md) and build_pip_pkg.sh's failures."""

import ast
import json
import os
import platform
import re
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from qdq_testing import assert_same_bits

import tf_qdq
from tf_qdq import _loader
from tf_qdq._version import SUPPORTED_TENSORFLOW

HERE = os.path.dirname(os.path.abspath(__file__))
BAZEL_FLAGS = os.environ.get("TF_QDQ_BAZEL_FLAGS")


def test_library_path_honours_tf_qdq_library(monkeypatch):
    monkeypatch.setenv("TF_QDQ_LIBRARY", "/some/where/_tf_qdq_ops.so")
    assert _loader.library_path() == "/some/where/_tf_qdq_ops.so"
    monkeypatch.delenv("TF_QDQ_LIBRARY")
    assert _loader.library_path() == os.path.join(os.path.dirname(tf_qdq.__file__), "_tf_qdq_ops.so")


def test_loaded_library_is_the_configured_one():
    _loader.load()
    expected = os.environ.get("TF_QDQ_LIBRARY") or os.path.join(os.path.dirname(tf_qdq.__file__), "_tf_qdq_ops.so")
    assert _loader.loaded_path() == expected
    # The build recorded the exact TensorFlow version it compiled against.
    assert _loader.built_against(expected) == tf.__version__


def test_one_op_matches_the_builtin():
    x = np.random.default_rng(5).normal(size=(64, 3)).astype(np.float32)
    x[0] = [-0.0, 0.5, 1.0]
    for axis in (-1, 1):
        kw = dict(
            input=x,
            input_min=np.float32(0),
            input_max=np.float32(0),
            signed_input=True,
            num_bits=8,
            range_given=False,
            round_mode="HALF_TO_EVEN",
            narrow_range=False,
            axis=axis,
        )
        if axis == 1:
            kw.update(input_min=np.zeros(3, np.float32), input_max=np.zeros(3, np.float32))
        assert_same_bits(
            tf_qdq.raw_ops.QuantizeAndDequantizeV2(**kw), tf.raw_ops.QuantizeAndDequantizeV2(**kw), f"V2 axis={axis}"
        )


def _setup_py_namespace():
    """setup.py's module-level definitions, without running setup()."""
    path = os.path.join(os.path.dirname(HERE), "setup.py")
    tree = ast.parse(open(path, encoding="utf-8").read(), path)

    def is_setup_call(node):
        return (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "setup"
        )

    body = [n for n in tree.body if not is_setup_call(n)]
    namespace = {"__file__": path, "__name__": "setup_constants"}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def bazel_and_setup():
    if not BAZEL_FLAGS:
        pytest.skip("compares Bazel's flags with setup.py's; runs under `bazel test`")
    with open(BAZEL_FLAGS, encoding="utf-8") as f:
        bazel = json.load(f)
    return bazel, _setup_py_namespace()


def test_bazel_build_uses_setup_py_flags(bazel_and_setup):
    bazel, setup = bazel_and_setup
    assert bazel["cxxflags"] == setup["CXXFLAGS"]
    assert bazel["sources"] == sorted(os.path.basename(s) for s in setup["CPU_SOURCES"])
    setup_per_file = {os.path.basename(k): v for k, v in setup.get("PER_FILE_FLAGS", {}).items()}
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    for name in bazel["sources"]:
        flags = bazel["per_file_flags"].get(name, [])
        if not x86:
            flags = [f for f in flags if f not in bazel["x86_only_flags"]]
        assert flags == setup_per_file.get(name, []), name
    # TensorFlow's flags: from tf.sysconfig, as setup.py takes them.
    assert bazel["tf_version"] == tf.__version__
    assert bazel["tf_copts"] == [f for f in tf.sysconfig.get_compile_flags() if not f.startswith("-I")]
    assert [f for f in bazel["tf_linkopts"] if not f.startswith("-L")] == [
        f for f in tf.sysconfig.get_link_flags() if not f.startswith("-L")
    ]
    for forbidden in ("-march=native", "-ffast-math", "-Ofast", "--use_fast_math"):
        assert forbidden not in json.dumps(bazel)


def test_bazel_gpu_part_is_setup_py_s(bazel_and_setup):
    """The same CUDA decision, sources, nvcc command line and cudart link as setup.py."""
    bazel, setup = bazel_and_setup
    if "cuda_config" not in setup:
        assert not bazel["cuda_description"]
        return
    # The Bazel build ran setup.py's cuda_config() in the same environment
    # (TF_QDQ_CUDA etc., see third_party/tf/tf_configure.bzl) unless it was
    # configured otherwise (./configure.sh --cpu / --cuda).
    lib = os.environ.get("TF_QDQ_LIBRARY") or _loader.library_path()
    with open(lib, "rb") as f:
        has_gpu = b"TF_QDQ_BUILT_WITH_CUDA=" in f.read()
    assert has_gpu == bool(bazel["cuda_description"])
    if not bazel["cuda_description"]:
        return
    assert bazel["cuda_sources"] == [os.path.basename(setup["CUDA_KERNELS"]), os.path.basename(setup["CUDA_FUNCTORS"])]
    cuda = setup["cuda_config"]()
    if cuda is None:
        pytest.skip("setup.py finds no CUDA here (the Bazel build was configured with --cuda)")
    assert bazel["cuda_description"] == cuda["description"]
    root = os.path.dirname(os.path.abspath(setup["__file__"]))
    expected = ["." if a == root else a for a in setup["nvcc_command"](cuda, "{SRC}", "{OBJ}")]
    assert bazel["cuda_command"] == expected
    source = open(setup["__file__"], encoding="utf-8").read()
    for flag in bazel["cuda_linkopts"]:
        # Paths and setup.py's glibc_compat() flags (one --wrap per symbol) are made at configure time.
        if not flag.startswith(("-L", "-Wl,--wrap=", "external/")):
            assert f'"{flag}"' in source, flag


# ----------------------------------------------------------------------------- supported versions, packaging

ROOT = os.path.dirname(HERE)


def _minor_tuple(version):
    return tuple(int(p) for p in version.split(".")[:2])


def _read(rel):
    path = os.path.join(ROOT, rel)
    if not os.path.exists(path):
        pytest.skip(f"{rel} is not in this tree (e.g. Bazel's runfiles)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_installed_tensorflow_is_in_the_supported_range():
    oldest, newest = (_minor_tuple(v) for v in _loader.SUPPORTED_TF)
    assert oldest <= _minor_tuple(tf.__version__) <= newest, (tf.__version__, _loader.SUPPORTED_TF)


def test_supported_versions_are_one_list_that_ci_runs_and_the_docs_state():
    """tf_qdq/_version.py's SUPPORTED_TENSORFLOW is the list: consecutive minor versions, the loader's
    range, what .ci/run runs (it reads the list), and the range the README and docs/building.md state."""
    versions = SUPPORTED_TENSORFLOW
    minors = [_minor_tuple(v) for v in versions]
    assert minors == [(2, m) for m in range(minors[0][1], minors[-1][1] + 1)], versions
    oldest, newest = versions[0], versions[-1]
    assert _loader.SUPPORTED_TF == (oldest, newest)

    readme = _read("README.md")
    section = readme.split("## Supported TensorFlow versions", 1)[1].split("\n## ", 1)[0]
    assert f"TensorFlow {oldest} through {newest}" in section, section
    named = set(re.findall(r"\b2\.(\d+)\b", section))
    assert {f"2.{m}" for m in named} <= set(versions), (named, versions)
    assert f"**TensorFlow {oldest} through {newest}**" in _read("docs/building.md")

    run = _read(".ci/run")
    assert "SUPPORTED_TENSORFLOW" in run
    assert not re.search(r"tf_version\.sh 2\.\d", run), "the versions come from the list, not the script"
    assert f'pip install -q "tensorflow=={newest}.*" setuptools wheel' in run
    assert f"`tensorflow=={newest}.*`" in readme or f'"tensorflow=={newest}.*"' in readme


def test_package_requires_the_tensorflow_minor_it_was_built_against():
    major, minor = tf.__version__.split(".")[:2]
    assert _setup_py_namespace()["tensorflow_requirement"]() == f"tensorflow=={major}.{minor}.*"


def _run_build_pip_pkg(tmp_path, env_extra):
    script = os.path.join(ROOT, "build_pip_pkg.sh")
    if not os.path.exists(script):
        pytest.skip("build_pip_pkg.sh is not in this tree")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_BIN_PATH", "TF_VERSION", "TF_QDQ_BUILD")}
    env.update(env_extra)
    dest = tmp_path / "dist"
    r = subprocess.run(["bash", script, str(dest)], env=env, capture_output=True, text=True, timeout=60)
    if dest.exists():
        assert not list(dest.glob("*.whl"))
    return r


def test_build_pip_pkg_says_why_it_cannot_build(tmp_path):
    # A Python without TensorFlow: exit 1 with the reason and the fix, before any build work.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    r = _run_build_pip_pkg(tmp_path, {"PYTHON_BIN_PATH": str(fake)})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"{fake} cannot import tensorflow" in r.stderr and "pip install" in r.stderr, r.stderr
    r = _run_build_pip_pkg(tmp_path, {"TF_VERSION": "2.x"})
    assert r.returncode == 1 and "TF_VERSION must be a TensorFlow minor version" in r.stderr, r.stderr
