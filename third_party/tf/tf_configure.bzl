"""Repository rule: the installed TensorFlow (and CUDA, as setup.py finds it) for Bazel.

Everything comes from the Python that `./configure.sh` recorded (PYTHON_BIN_PATH,
passed with --repo_env), asking `tf.sysconfig` exactly what setup.py asks it
(third_party/tf/query_build.py):

  @local_config_tf//:tf_headers      tf.sysconfig.get_include(), as a cc_library
  @local_config_tf//:tf_framework    the library named by get_link_flags() (-l:NAME)
  @local_config_tf//:python          a wrapper that runs the configured Python
  @local_config_tf//:tf_config.bzl   TF_VERSION, TF_COPTS (the non -I compile flags),
                                     TF_LINKOPTS, PYTHON, CUDA_* (see below)

The compile flags are used as given by tf.sysconfig (for TensorFlow 2.21:
-D_GLIBCXX_USE_CXX11_ABI=1 --std=c++17 -DEIGEN_MAX_ALIGN_BYTES=64), never
hard-coded. Only the -I and -L directories are replaced by symlinks in this
repository, because Bazel rejects absolute include paths and must see the
headers and the library as inputs.

CUDA: decided by setup.py's own cuda_config(), with the same environment
(TF_QDQ_CUDA=0 off, =1 required, unset: when nvcc is found; TF_QDQ_NVCC,
CUDA_HOME, TF_QDQ_CUDA_ARCHS, CXX), so that `bazel build` and `pip install`
build the same library on the same machine. CUDA_COMMAND is setup.py's nvcc
command line. --config=cuda / --config=cpu (.bazelrc) set TF_QDQ_CUDA.

Nothing is downloaded.
"""

_PYTHON_ENV = "PYTHON_BIN_PATH"

# What setup.py's cuda_config() reads (and PATH, for `nvcc`, which is not
# listed: bazelisk and virtual environments change it, and every change would
# re-run this rule; after installing CUDA, run `bazel sync --configure`).
_CUDA_ENVIRON = ["TF_QDQ_CUDA", "TF_QDQ_NVCC", "CUDA_HOME", "TF_QDQ_CUDA_ARCHS", "CXX"]

def _fail(msg):
    fail("\n\ntf_qdq: %s\nRun ./configure.sh (it records the Python that has TensorFlow in .tf_configure.bazelrc).\n" % msg)

def _find_python(ctx):
    python = ctx.os.environ.get(_PYTHON_ENV, "")
    if python:
        return python
    for name in ["python3", "python"]:
        found = ctx.which(name)
        if found:
            return str(found)
    _fail("no Python found: %s is not set and python3 is not on PATH" % _PYTHON_ENV)

def _query_tensorflow(ctx, python):
    result = ctx.execute(
        [
            python,
            ctx.path(Label("//third_party/tf:query_build.py")),
            ctx.path(Label("//:setup.py")),
        ],
        environment = {"TF_CPP_MIN_LOG_LEVEL": "3"},
        quiet = True,
    )
    if result.return_code != 0:
        _fail("could not query tensorflow (and setup.py's CUDA settings) with %s:\n%s" % (python, result.stderr[-3000:]))

    # The JSON is the last line; TensorFlow may print to stdout before it.
    lines = [l for l in result.stdout.strip().split("\n") if l.startswith("{")]
    if not lines:
        _fail("unexpected output from %s:\n%s" % (python, result.stdout[-2000:]))
    return json.decode(lines[-1])

def _starlark_list(items):
    return "[\n" + "".join(["    %s,\n" % repr(i) for i in items]) + "]"

def _tf_configure_impl(ctx):
    python = _find_python(ctx)
    tf = _query_tensorflow(ctx, python)

    # Compile flags: -I<dir> becomes a symlinked header tree, the rest is kept.
    copts = []
    include_dirs = []
    for flag in tf["compile_flags"]:
        if flag.startswith("-I"):
            include_dirs.append(flag[2:])
        else:
            copts.append(flag)
    if include_dirs != [tf["include"]]:
        _fail("unexpected include flags from tf.sysconfig: %s" % include_dirs)
    ctx.symlink(tf["include"], "include")

    # Link flags: -L<dir> becomes a symlink, -l:NAME a declared input.
    linkopts = []
    link_inputs = []
    lib_dirs = 0
    for flag in tf["link_flags"]:
        if flag.startswith("-L"):
            ctx.symlink(flag[2:], "lib%d" % lib_dirs)
            linkopts.append("-Lexternal/%s/lib%d" % (ctx.name, lib_dirs))
            lib_dirs += 1
        elif flag.startswith("-l:"):
            linkopts.append(flag)
            name = flag[3:]
            for i in range(lib_dirs):
                if ctx.path("lib%d/%s" % (i, name)).exists:
                    link_inputs.append("lib%d/%s" % (i, name))
                    break
        else:
            linkopts.append(flag)
    if not link_inputs:
        _fail("libtensorflow_framework not found from link flags %s" % tf["link_flags"])

    # The configured interpreter, behind a wrapper (a symlink would not find
    # the virtual environment's pyvenv.cfg).
    ctx.file(
        "python.sh",
        "#!/bin/sh\nexec %s \"$@\"\n" % repr(python).replace("\"", "'"),
        executable = True,
    )

    # CUDA: setup.py's decision and nvcc command line. The library directory
    # becomes a symlink; the source root in the command becomes the execroot.
    cuda = tf["cuda"]
    cuda_command = []
    cuda_description = ""
    cuda_kernels = ""
    cuda_functors = ""
    cuda_compat_linkopts = []
    if cuda:
        ctx.symlink(cuda["lib_dir"] + "/libcudart_static.a", "cuda/lib/libcudart_static.a")
        if cuda.get("compat_object"):
            ctx.symlink(cuda["compat_object"], "cuda/lib/glibc_compat.o")
            cuda_compat_linkopts = ["external/%s/cuda/lib/glibc_compat.o" % ctx.name] + cuda["compat_linkopts"]
        for arg in cuda["command"]:
            cuda_command.append("." if arg == cuda["root"] else arg)
        cuda_description = cuda["description"]
        cuda_kernels = cuda["kernels"]
        cuda_functors = cuda["functors"]

    ctx.file("BUILD", """# Generated by //third_party/tf:tf_configure.bzl from {python}.
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "tf_headers",
    hdrs = glob(["include/**"]),
    includes = ["include"],
)

filegroup(
    name = "tf_framework",
    srcs = {link_inputs},
)

filegroup(
    name = "tf_header_files",
    srcs = glob(["include/**"]),
)

sh_binary(
    name = "python",
    srcs = ["python.sh"],
)

filegroup(
    name = "cudart_static",
    srcs = glob(["cuda/lib/libcudart_static.a", "cuda/lib/glibc_compat.o"]),
)

exports_files(["tf_config.bzl"])
""".format(python = python, link_inputs = repr(link_inputs)))

    ctx.file("tf_config.bzl", """# Generated by //third_party/tf:tf_configure.bzl. Do not edit.
PYTHON = {python}
TF_VERSION = {version}
TF_INCLUDE = {include}
TF_COPTS = {copts}
TF_LINKOPTS = {linkopts}
TF_REPOSITORY = {repo}

# CUDA as setup.py's cuda_config() found it (empty: CPU only).
CUDA_DESCRIPTION = {cuda_description}
CUDA_KERNELS = {cuda_kernels}
CUDA_FUNCTORS = {cuda_functors}
CUDA_COMMAND = {cuda_command}

# The static runtime's glibc calls bound to old versions (setup.py's glibc_compat()).
CUDA_COMPAT_LINKOPTS = {cuda_compat_linkopts}
""".format(
        python = repr(python),
        version = repr(tf["version"]),
        include = repr(tf["include"]),
        copts = _starlark_list(copts),
        linkopts = _starlark_list(linkopts),
        repo = repr(ctx.name),
        cuda_description = repr(cuda_description),
        cuda_kernels = repr(cuda_kernels),
        cuda_functors = repr(cuda_functors),
        cuda_command = _starlark_list(cuda_command),
        cuda_compat_linkopts = _starlark_list(cuda_compat_linkopts),
    ))

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = [_PYTHON_ENV] + _CUDA_ENVIRON,
    local = True,
    configure = True,
    doc = "The TensorFlow installed in the configured Python, from tf.sysconfig.",
)
