"""Prints, as one JSON line, what the Bazel build needs to know about this machine.

Run by the tf_configure repository rule with the configured Python:
    python query_build.py /path/to/setup.py

- TensorFlow: version, include dir, library dir and compile/link flags, from
  tf.sysconfig (as setup.py takes them).
- CUDA: setup.py's own cuda_config() (TF_QDQ_CUDA=0/1/auto, TF_QDQ_NVCC,
  CUDA_HOME, TF_QDQ_CUDA_ARCHS), and setup.py's nvcc command line for it, so
  that the Bazel GPU build cannot differ from the pip one. setup.py is loaded
  without running setup().
"""

import ast
import json
import os
import sys


def setup_py_namespace(path):
    """setup.py's module-level definitions, without the setup() call."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)

    def is_setup_call(node):
        return (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "setup"
        )

    body = [n for n in tree.body if not is_setup_call(n)]
    namespace = {"__file__": os.path.abspath(path), "__name__": "tf_qdq_setup"}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), namespace)
    return namespace


def main():
    setup_py = sys.argv[1]
    # cuda_config() prints its decision; keep stdout for the JSON line.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    import tensorflow as tf

    result = {
        "version": tf.__version__,
        "include": tf.sysconfig.get_include(),
        "lib": tf.sysconfig.get_lib(),
        "compile_flags": tf.sysconfig.get_compile_flags(),
        "link_flags": tf.sysconfig.get_link_flags(),
        "executable": sys.executable,
        "cuda": None,
    }
    ns = setup_py_namespace(setup_py)
    if "cuda_config" in ns:
        cuda = ns["cuda_config"]()
        if cuda is not None:
            result["cuda"] = {
                "nvcc": cuda["nvcc"],
                "version": cuda["version"],
                "archs": cuda["archs"],
                "lib_dir": cuda["lib_dir"],
                "description": cuda["description"],
                "kernels": ns["CUDA_KERNELS"],
                "functors": ns["CUDA_FUNCTORS"],
                # setup.py's command with placeholders for the source and object.
                "command": ns["nvcc_command"](cuda, "{SRC}", "{OBJ}"),
                "root": os.path.dirname(os.path.abspath(setup_py)),
                # setup.py's binding of the static runtime's glibc calls to old versions: the
                # object (written into the repository directory, the working directory here)
                # and its link flags.
                "compat_object": None,
                "compat_linkopts": [],
            }
            if "glibc_compat" in ns:
                obj, flags = ns["glibc_compat"](
                    [os.path.join(cuda["lib_dir"], "libcudart_static.a")], os.getcwd(), os.environ.get("CXX", "g++")
                )
                result["cuda"]["compat_object"] = obj
                result["cuda"]["compat_linkopts"] = flags
    sys.stdout = real_stdout
    print(json.dumps(result))


if __name__ == "__main__":
    main()
