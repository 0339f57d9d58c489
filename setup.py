"""Builds tf_qdq: compiles kernels/*.cc against the installed TensorFlow.

The compile and link flags come from tf.sysconfig; the package then pins the
TensorFlow minor version it was compiled against. Bit-exactness requires
-ffp-contract=off and no -march=native (see README).

GPU kernels: compiled when nvcc is found (or TF_QDQ_CUDA=1, which makes a
missing nvcc an error); TF_QDQ_CUDA=0 builds the CPU kernels only. nvcc is
$TF_QDQ_NVCC when set; otherwise, among nvcc on PATH, $CUDA_HOME/bin/nvcc,
/usr/local/cuda/bin/nvcc and /usr/local/cuda-*/bin/nvcc, the first of the CUDA
major version TensorFlow was built with, else the first found (with a
warning). TF_QDQ_CUDA_ARCHS (e.g. "75,80,90") overrides the SASS
architectures; PTX is always added for the newest one. The CUDA runtime is
linked statically, so the library loads on machines without CUDA. See
docs/gpu.md.
"""

import concurrent.futures
import glob
import os
import platform
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CPU_SOURCES = [
    "kernels/qdq_ops.cc",
    "kernels/qdq_kernels.cc",
    "kernels/qdq_validate.cc",
    "kernels/qdq_cpu.cc",
    "kernels/qdq_cpu_sse2.cc",
    "kernels/qdq_cpu_avx2.cc",
    "kernels/qdq_cpu_avx512.cc",
    "kernels/qdq_xla.cc",
    "kernels/qdq_xla_register.cc",
]
# The XLA kernels (kernels/qdq_xla.cc, registered by kernels/qdq_xla_register.cc) use the
# tf2xla and XLA-builder symbols that TensorFlow's libtensorflow_cc.so.2 exports (beside
# tf.sysconfig's libtensorflow_framework.so.2).
XLA_LINK_FLAGS = ["-l:libtensorflow_cc.so.2"]
XLA_SOURCES = ("kernels/qdq_xla.cc", "kernels/qdq_xla_register.cc")
# Header directories (under tf.sysconfig.get_include()) that the XLA headers
# need beside TensorFlow's own include directory.
XLA_INCLUDE_SUBDIRS = ["external/highwayhash", "external/farmhash_archive/src"]


def xla_include_flags(tf_include):
    """-I flags for qdq_xla.cc; exits with a message when the wheel lacks the XLA headers."""
    needed = [os.path.join(tf_include, "tensorflow", "compiler", "tf2xla", "xla_op_kernel.h")]
    # The XLA builder moved from xla/client/ (TensorFlow 2.16, 2.17) to xla/hlo/builder/.
    builders = [
        os.path.join(tf_include, "xla", "hlo", "builder", "xla_builder.h"),
        os.path.join(tf_include, "xla", "client", "xla_builder.h"),
    ]
    dirs = [os.path.join(tf_include, d) for d in XLA_INCLUDE_SUBDIRS]
    missing = [p for p in needed + dirs if not os.path.exists(p)]
    if not any(os.path.exists(p) for p in builders):
        missing.append(builders[0])
    if missing:
        sys.exit(
            "tf_qdq: the installed TensorFlow lacks the XLA headers that kernels/qdq_xla.cc needs "
            f"({', '.join(missing)}). Install a TensorFlow wheel that ships them (TensorFlow 2.16 "
            "and later do), or build from a TensorFlow source tree."
        )
    return ["-I" + d for d in dirs] + llvm_include_flags(tf_include)


def llvm_include_flags(tf_include):
    """TensorFlow 2.19's wheel has an XLA header (xla/stream_executor/gpu/tma_metadata.h, reached from
    tf2xla's headers) that includes llvm/ADT/ArrayRef.h, which the wheel does not ship. Its declarations
    only name llvm::ArrayRef, so a system LLVM's headers (any version) stand in: -I for them, with LLVM's
    ABI-breaking-checks symbol reference turned off (nothing here links LLVM). [] when not needed."""
    header = os.path.join(tf_include, "xla", "stream_executor", "gpu", "tma_metadata.h")
    try:
        with open(header, encoding="utf-8", errors="replace") as f:
            needs = "llvm/ADT/" in f.read()
    except OSError:
        return []
    if not needs or os.path.exists(os.path.join(tf_include, "llvm", "ADT", "ArrayRef.h")):
        return []
    cands = []
    if shutil.which("llvm-config"):
        out = subprocess.run(["llvm-config", "--includedir"], capture_output=True, text=True).stdout.strip()
        cands.append(out)
    cands += sorted(glob.glob("/usr/include/llvm-[0-9]*"), reverse=True)
    cands += sorted(glob.glob("/usr/lib/llvm-[0-9]*/include"), reverse=True)
    for d in cands:
        if d and os.path.exists(os.path.join(d, "llvm", "ADT", "ArrayRef.h")):
            flags = ["-I" + d, "-DLLVM_DISABLE_ABI_BREAKING_CHECKS_ENFORCING=1"]
            print(f"tf_qdq: {header} needs LLVM headers that TensorFlow does not ship: using {d}", flush=True)
            return flags
    sys.exit(
        f"tf_qdq: {header} includes llvm/ADT/ArrayRef.h, which this TensorFlow wheel does not ship (TensorFlow "
        "2.19). Install LLVM's headers (Debian/Ubuntu: apt-get install llvm-dev; any version will do) and rebuild."
    )


CXXFLAGS = ["-O3", "-fPIC", "-ffp-contract=off", "-DNDEBUG", "-Wno-deprecated-declarations"]
# The vectorized inner loops (kernels/qdq_cpu_loops.h), one object per instruction set, picked at
# run time. -fno-trapping-math only lets the vectorizer if-convert (no result changes); the -m flags
# apply to these files alone (no -march=native anywhere, no FMA: -ffp-contract=off still holds).
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
LOOP_FLAGS = ["-fno-trapping-math"]
PER_FILE_FLAGS = {
    "kernels/qdq_cpu_sse2.cc": LOOP_FLAGS,
    "kernels/qdq_cpu_avx2.cc": LOOP_FLAGS + (["-mavx2", "-mf16c"] if _X86 else []),
    "kernels/qdq_cpu_avx512.cc": LOOP_FLAGS
    + (["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mf16c", "-mprefer-vector-width=512"] if _X86 else []),
}
# GPU part: the CUDA kernels (nvcc, CUDA headers only) and the functors that
# call them (g++, TensorFlow headers only).
CUDA_KERNELS = "kernels/qdq_gpu.cu.cc"
CUDA_FUNCTORS = "kernels/qdq_gpu.cc"
# Bit-exactness on the device: no fused multiply-add, IEEE division and square
# root, no flush-to-zero; never --use_fast_math.
NVCCFLAGS = [
    "-std=c++17",
    "-O3",
    "-DNDEBUG",
    "-Xcompiler",
    "-fPIC",
    "-Xcompiler",
    "-ffp-contract=off",
    "-fmad=false",
    "-ftz=false",
    "-prec-div=true",
    "-prec-sqrt=true",
]
# SASS for Volta, Ampere, Hopper (an arch the nvcc no longer supports is
# replaced by its oldest supported one: CUDA 13 dropped sm_70, so 75), plus PTX
# of the newest for later GPUs.
DEFAULT_CUDA_ARCHS = (70, 80, 90)


def _nvcc_candidates():
    """Every nvcc found: $TF_QDQ_NVCC alone when set, else nvcc on PATH, $CUDA_HOME/bin/nvcc,
    /usr/local/cuda/bin/nvcc and /usr/local/cuda-*/bin/nvcc (newest first), without duplicates."""
    if os.environ.get("TF_QDQ_NVCC"):
        cands = [os.environ["TF_QDQ_NVCC"]]
    else:
        versioned = sorted(
            glob.glob("/usr/local/cuda-*/bin/nvcc"),
            key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("cuda-")[-1])],
            reverse=True,
        )
        cands = [
            shutil.which("nvcc"),
            os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None,
            "/usr/local/cuda/bin/nvcc",
        ] + versioned
    found, seen = [], set()
    for cand in cands:
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK) and os.path.realpath(cand) not in seen:
            seen.add(os.path.realpath(cand))
            found.append(cand)
    return found


def _nvcc_version(nvcc):
    """ "X.Y" of an nvcc, or None when it does not run."""
    try:
        text = subprocess.run([nvcc, "--version"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"release (\d+\.\d+)", text)
    return m.group(1) if m else None


def tensorflow_cuda_version():
    """The CUDA version TensorFlow was built with ("12.5.1"), or None (not a CUDA build, or unknown)."""
    try:
        import tensorflow as tf

        info = tf.sysconfig.get_build_info()
    except Exception:  # noqa: BLE001 - no TensorFlow, or a build without build info
        return None
    return info.get("cuda_version") if info.get("is_cuda_build") else None


def _find_nvcc():
    """(nvcc, version): $TF_QDQ_NVCC when set; else the first nvcc whose major version matches the CUDA
    TensorFlow was built with, else the first found. Warns when the major versions differ."""
    found = [(c, _nvcc_version(c)) for c in _nvcc_candidates()]
    found = [(c, v) for c, v in found if v is not None]
    if not found:
        return None, None
    tf_cuda = tensorflow_cuda_version()
    tf_major = tf_cuda.split(".")[0] if tf_cuda else None
    chosen = next(((c, v) for c, v in found if tf_major and v.split(".")[0] == tf_major), found[0])
    if tf_major and chosen[1].split(".")[0] != tf_major:
        others = ", ".join(f"{c} ({v})" for c, v in found if v != chosen[1])
        print(
            f"tf_qdq: WARNING: nvcc {chosen[1]} ({chosen[0]}) is not of the CUDA major version TensorFlow was "
            f"built with ({tf_cuda}). The GPU kernels link their own CUDA {chosen[1]} runtime, so they need an "
            f"NVIDIA driver for CUDA {chosen[1].split('.')[0]} (with an older driver they are not registered and "
            f"the ops run on the CPU), and CUDA 13 and later cannot build for compute capability below 7.5. "
            f"To match TensorFlow, install a CUDA {tf_major} toolkit and point TF_QDQ_NVCC at its nvcc"
            + (f" (also found: {others})" if others else "")
            + ".",
            flush=True,
        )
    return chosen


def cuda_config():
    """None (CPU only), or a dict: nvcc, version, archs, lib_dir, description."""
    mode = os.environ.get("TF_QDQ_CUDA", "").strip().lower()
    if mode in ("0", "off", "no", "false"):
        print("tf_qdq: TF_QDQ_CUDA=0: building the CPU kernels only (no GPU kernels)", flush=True)
        return None
    required = mode in ("1", "on", "yes", "true")
    nvcc, version = _find_nvcc()
    if nvcc is None:
        if required:
            sys.exit("tf_qdq: TF_QDQ_CUDA=1 but nvcc was not found (set TF_QDQ_NVCC or CUDA_HOME, or put nvcc on PATH)")
        print(
            "tf_qdq: nvcc not found: building the CPU kernels only (no GPU kernels). "
            "Put nvcc on PATH (or set CUDA_HOME / TF_QDQ_NVCC) to build them.",
            flush=True,
        )
        return None
    # The toolkit root: nvcc may be a wrapper script, so ask nvcc itself.
    dry = subprocess.run(
        [nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull], capture_output=True, text=True
    )
    m = re.search(r"^#\$ TOP=(.*)$", dry.stdout + dry.stderr, re.M)
    top = os.path.realpath(m.group(1).strip()) if m else os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    lib_dir = next(
        (
            d
            for d in (
                os.path.join(top, "lib64"),
                os.path.join(top, "lib"),
                os.path.join(top, "targets", "x86_64-linux", "lib"),
            )
            if os.path.isfile(os.path.join(d, "libcudart_static.a"))
        ),
        None,
    )
    if lib_dir is None:
        msg = f"tf_qdq: libcudart_static.a not found under {top}"
        if required:
            sys.exit(msg)
        print(msg + ": building the CPU kernels only (no GPU kernels)", flush=True)
        return None
    listed = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True).stdout
    supported = sorted({int(a) for a in re.findall(r"compute_(\d+)", listed)})
    wanted = os.environ.get("TF_QDQ_CUDA_ARCHS")
    archs = [int(a) for a in re.split(r"[,; ]+", wanted) if a] if wanted else list(DEFAULT_CUDA_ARCHS)
    if supported:
        archs = sorted({a if a in supported else min((s for s in supported if s >= a), default=a) for a in archs})
    desc = f"{version} " + ",".join([f"sm_{a}" for a in archs] + [f"compute_{archs[-1]}"])
    return {"nvcc": nvcc, "version": version, "archs": archs, "lib_dir": lib_dir, "description": desc}


def nvcc_command(cuda, src, obj):
    gencode = []
    for a in cuda["archs"]:
        gencode += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    newest = cuda["archs"][-1]
    gencode += ["-gencode", f"arch=compute_{newest},code=compute_{newest}"]
    ccbin = ["-ccbin", os.environ["CXX"]] if os.environ.get("CXX") else []
    return [cuda["nvcc"], "-x", "cu", "-c", src, "-o", obj, "-I", HERE] + ccbin + NVCCFLAGS + gencode


# The newest glibc the library may need: manylinux_2_27, the tag of TensorFlow's own wheel
# (docs/building.md, manylinux and the glibc floor).
GLIBC_FLOOR = (2, 27)


def _glibc_version(v):
    return tuple(int(x) for x in v.split("_", 1)[1].split("."))


def glibc_compat(static_libs, tmp, cxx):
    """(object, link flags) that bind the static CUDA runtime's glibc calls to versions at or below
    GLIBC_FLOOR; (None, []) when nothing needs it.

    glibc 2.34 moved pthread, dl, sem and shm from libpthread/libdl/librt into libc and gave them
    new default versions (pthread_create@@GLIBC_2.34); the old versions (pthread_create@GLIBC_2.2.5)
    are still there, the same functions. Linking the static runtime against a new glibc binds the
    new ones, which older glibc lacks. For each such symbol S that the archives call, -Wl,--wrap=S
    sends the calls to __wrap_S, a jump to S@<its newest version at or below the floor>, and the
    link names libpthread, libdl and librt (which older glibc needs for those versions; stubs
    since 2.34)."""
    libc = subprocess.run([cxx, "-print-file-name=libc.so.6"], capture_output=True, text=True).stdout.strip()
    try:
        undefined = set()
        for lib in static_libs:
            out = subprocess.run(["nm", "-u", "--format=posix", lib], capture_output=True, text=True, check=True)
            undefined |= {line.split()[0] for line in out.stdout.splitlines() if line.strip() and ":" not in line}
        table = subprocess.run(["objdump", "-T", libc], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"tf_qdq: WARNING: cannot read symbol versions ({e}); the library may need a newer glibc", flush=True)
        return None, []
    versions = {}  # symbol -> [(version tuple, version name, is default)]
    for line in table.splitlines():
        m = re.search(r"\s(\(?)(GLIBC_\d+(?:\.\d+)+)\)?\s+(\S+)$", line)
        if m and " DF " in line and "*UND*" not in line:
            versions.setdefault(m.group(3), []).append((_glibc_version(m.group(2)), m.group(2), m.group(1) == ""))
    binds = {}
    for sym in sorted(undefined):
        vs = versions.get(sym, [])
        default = [v for v in vs if v[2]]
        if not default or default[0][0] <= GLIBC_FLOOR:
            continue
        old = [v for v in vs if v[0] <= GLIBC_FLOOR]
        if not old:
            print(
                f"tf_qdq: WARNING: {sym} has no version at or below GLIBC_{GLIBC_FLOOR[0]}.{GLIBC_FLOOR[1]}", flush=True
            )
            continue
        binds[sym] = max(old)[1]
    if not binds:
        return None, []
    asm = [".text"]
    for sym, version in binds.items():
        asm += [
            f".symver __tf_qdq_glibc_{sym}, {sym}@{version}",
            f".globl __wrap_{sym}",
            f".hidden __wrap_{sym}",
            f".type __wrap_{sym}, @function",
            f"__wrap_{sym}:",
            f"  jmp __tf_qdq_glibc_{sym}@PLT",
            f".size __wrap_{sym}, .-__wrap_{sym}",
        ]
    asm.append('.section .note.GNU-stack,"",@progbits')
    src = os.path.join(tmp, "glibc_compat.S")
    with open(src, "w", encoding="utf-8") as f:
        f.write("\n".join(asm) + "\n")
    obj = src + ".o"
    subprocess.run([cxx, "-c", src, "-o", obj], check=True)
    flags = [f"-Wl,--wrap={sym}" for sym in binds]
    flags += ["-Wl,--no-as-needed", "-l:libpthread.so.0", "-l:libdl.so.2", "-l:librt.so.1", "-Wl,--as-needed"]
    print(
        f"tf_qdq: the CUDA runtime's calls of {len(binds)} glibc functions bound to versions at or below "
        f"GLIBC_{GLIBC_FLOOR[0]}.{GLIBC_FLOOR[1]}",
        flush=True,
    )
    return obj, flags


# TF_QDQ_SANITIZE=1: appended after CXXFLAGS (so -O1 wins), also passed to the link.
# g++ 12 rejects TensorFlow's absl headers under -fsanitize=null / nonnull-attribute
# ("... is not a constant expression" in hash_policy_traits.h), so those checks are
# off (AddressSanitizer still reports null dereferences); vptr needs RTTI for
# TensorFlow's classes, which its headers do not guarantee.
SANITIZE_FLAGS = [
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fsanitize=float-cast-overflow",
    "-fno-sanitize=null,nonnull-attribute,returns-nonnull-attribute,vptr",
]


def sanitize():
    return os.environ.get("TF_QDQ_SANITIZE", "") not in ("", "0")


def tensorflow_flags():
    import tensorflow as tf

    return tf.__version__, tf.sysconfig.get_compile_flags(), tf.sysconfig.get_link_flags()


def tensorflow_requirement():
    """`tensorflow==X.Y.*` for the TensorFlow we compile against (when importable)."""
    try:
        import tensorflow as tf
    except ImportError:
        return "tensorflow>=2.21,<2.22"
    major, minor = tf.__version__.split(".")[:2]
    return f"tensorflow=={major}.{minor}.*"


def tf_keras_requirement():
    """Keras 2 (`tf_keras`) of the same minor version as TensorFlow, for the tests of the
    Keras 2 layer and of the QAT-toolkit path."""
    return "tf_keras" + tensorflow_requirement()[len("tensorflow") :]


class BuildTfQdq(build_ext):
    """Compiles the sources with g++ in parallel and links one shared library."""

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"

    def copy_prebuilt(self, ext, path):
        """Packages a library built elsewhere (by Bazel, see build_pip_pkg.sh) instead of compiling."""
        import re
        import shutil

        tf_version = tensorflow_flags()[0]
        with open(path, "rb") as f:
            m = re.search(rb"TF_QDQ_BUILT_AGAINST_TF=([^;\x00]*);", f.read())
        built = m.group(1).decode() if m else "unknown"
        if built.split(".")[:2] != tf_version.split(".")[:2]:
            sys.exit(f"tf_qdq: {path} was built against TensorFlow {built}, not {tf_version}")
        out = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copyfile(path, out)
        print(f"tf_qdq: packaging the prebuilt {path} (built against TensorFlow {built})", flush=True)

    def build_extension(self, ext):
        if os.environ.get("TF_QDQ_PREBUILT_LIBRARY"):
            return self.copy_prebuilt(ext, os.environ["TF_QDQ_PREBUILT_LIBRARY"])
        tf_version, cflags, lflags = tensorflow_flags()
        out = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = os.path.join(self.build_temp, "tf_qdq")
        os.makedirs(tmp, exist_ok=True)
        cxx = os.environ.get("CXX", "g++")
        defines = [f'-DTF_QDQ_TF_VERSION="{tf_version}"']
        extra = os.environ.get("TF_QDQ_CXXFLAGS", "").split()
        if sanitize():
            extra = SANITIZE_FLAGS + extra
            print("tf_qdq: sanitizer build (AddressSanitizer + UBSan), for testing only", flush=True)
        cuda = cuda_config()
        sources = list(ext.sources)
        link_cuda = []
        # (command, object) per source; nvcc first, it takes longest.
        jobs = []
        if cuda is not None:
            defines += ["-DTF_QDQ_CUDA=1", f'-DTF_QDQ_CUDA_BUILD="{cuda["description"]}"']
            sources.append(CUDA_FUNCTORS)
            obj = os.path.join(tmp, os.path.basename(CUDA_KERNELS) + ".o")
            jobs.append((nvcc_command(cuda, CUDA_KERNELS, obj), obj))
            # The CUDA runtime, statically and with its symbols kept local, so
            # that the library needs no libcudart at load time and never binds
            # to another CUDA runtime loaded in the process.
            compat_obj, compat_flags = glibc_compat(
                [os.path.join(cuda["lib_dir"], "libcudart_static.a")], tmp, os.environ.get("CXX", "g++")
            )
            link_cuda = [
                "-L" + cuda["lib_dir"],
                "-l:libcudart_static.a",
                "-ldl",
                "-lrt",
                "-lpthread",
                "-Wl,--exclude-libs,libcudart_static.a",
            ] + compat_flags
            if compat_obj:
                link_cuda.insert(0, compat_obj)
            print(f"tf_qdq: building GPU kernels with CUDA {cuda['description']} ({cuda['nvcc']})", flush=True)
        import tensorflow as tf

        xla_flags = xla_include_flags(tf.sysconfig.get_include())
        for src in sources:
            obj = os.path.join(tmp, os.path.basename(src) + ".o")
            jobs.append(
                (
                    [cxx, "-c", src, "-o", obj, "-I", HERE]
                    + CXXFLAGS
                    + PER_FILE_FLAGS.get(src, [])
                    + defines
                    + cflags
                    + (xla_flags if src in XLA_SOURCES else [])
                    + extra,
                    obj,
                )
            )
        print(f"tf_qdq: compiling {len(jobs)} sources against TensorFlow {tf_version}", flush=True)

        def compile_one(job):
            cmd, obj = job
            subprocess.run(cmd, check=True, cwd=HERE)
            return obj

        workers = max(1, min(len(jobs), os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            objects = list(pool.map(compile_one, jobs))
        # The static CUDA runtime before TensorFlow's library: that library
        # exports cudart entry points of its own (forwarding to the CUDA 12
        # runtime TensorFlow was built with), which must not satisfy ours.
        cmd = [cxx, "-shared", "-o", out] + objects + link_cuda + lflags + XLA_LINK_FLAGS + extra
        subprocess.run(cmd, check=True, cwd=HERE)
        print(f"tf_qdq: built {out}" + (" (CPU and GPU kernels)" if cuda else " (CPU kernels only)"), flush=True)
        # Also place the library in the source tree, so that `python -m tf_qdq`
        # and `python -m pytest` run from the checkout root (where the source
        # package shadows the installed one) find it. Ignored by git.
        # Never for a sanitizer build: it must not replace the normal library.
        in_tree = os.path.join(HERE, "tf_qdq", os.path.basename(out))
        if sanitize():
            print(f"tf_qdq: sanitizer build, load it with TF_QDQ_LIBRARY={out}", flush=True)
        elif os.path.abspath(out) != os.path.abspath(in_tree) and os.path.isdir(os.path.dirname(in_tree)):
            tmp_copy = in_tree + ".tmp"
            shutil.copyfile(out, tmp_copy)
            os.replace(tmp_copy, in_tree)  # atomic: never rewrite a loaded library in place


def package_version():
    """The version, kept in one place: tf_qdq/_version.py."""
    with open(os.path.join(HERE, "tf_qdq", "_version.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def long_description():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        return f.read()


setup(
    name="tf_qdq",
    version=package_version(),
    description="QuantizeAndDequantize ops for TensorFlow: bit-exact, faster, half/bfloat16, per-channel given ranges",
    long_description=long_description(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=["tf_qdq", "tf_qdq.bench", "tf_qdq.export", "tf_qdq.keras"],
    package_data={"tf_qdq": ["raw_ops.pyi"]},
    ext_modules=[Extension("tf_qdq._tf_qdq_ops", sources=CPU_SOURCES)],
    cmdclass={"build_ext": BuildTfQdq},
    install_requires=[tensorflow_requirement(), "numpy"],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            tf_keras_requirement(),
            "tf2onnx>=1.17",
            "onnx",
            "onnxruntime",
            "scikit-learn",
        ],
        "export": ["tf2onnx>=1.17", "onnx", "onnxruntime"],
        "plot": ["matplotlib"],
        "dev": ["ruff==0.17.6", "clang-format==23.1.5"],
    },
    zip_safe=False,
)
