"""Checks a tf_qdq wheel the way a package index and a user's pip will see it.

    python .ci/check_wheel.py WHEEL TF_MINOR      (e.g. 2.16; the Python needs auditwheel)

Prints `auditwheel show`, then fails unless: the platform tag is manylinux_2_X_x86_64 and is
the tag the library's versioned symbols allow (auditwheel's sym_tag); X is at most 27
(manylinux_2_27, the tag of TensorFlow 2.21's own wheel: the wheel installs wherever
TensorFlow's does, see docs/building.md); the only libraries
outside the manylinux policy are TensorFlow's own (they come with the tensorflow wheel);
nothing was grafted into the wheel; the op library is in it; and it requires
tensorflow==TF_MINOR.*.
"""

import json
import re
import subprocess
import sys
import zipfile

# The newest glibc the wheel may need: TensorFlow's own wheel is manylinux_2_27 (2.21) or
# lower (manylinux_2_17 up to 2.20), so a higher tag would keep tf_qdq off distributions
# (Ubuntu 18.04 and 20.04, Debian 10 and 11, RHEL 8) where TensorFlow installs.
MANYLINUX_CEILING = (2, 27)
TENSORFLOW_LIBS = {"libtensorflow_framework.so.2", "libtensorflow_cc.so.2", "_pywrap_tensorflow_internal.so"}


def main(wheel: str, tf_minor: str) -> int:
    shown = subprocess.run([sys.executable, "-m", "auditwheel", "show", wheel], capture_output=True, text=True)
    print("\n".join(line for line in (shown.stdout + shown.stderr).splitlines() if not line.startswith("INFO:")))
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "auditwheel", "show", "--json", wheel], capture_output=True, text=True, check=True
        ).stdout
    )
    errors = []
    name = wheel.rsplit("/", 1)[-1]
    m = re.search(r"-((?:manylinux_\d+_\d+_x86_64\.?)+)\.whl$", name)
    if not m:
        errors.append(f"{name}: the platform tag is not manylinux_2_X_x86_64")
    elif report["sym_tag"] not in m.group(1).split("."):
        errors.append(f"{name}: tagged {m.group(1)}, but its symbol versions allow {report['sym_tag']}")
    floor = re.match(r"manylinux_(\d+)_(\d+)_", report["sym_tag"])
    if floor and (int(floor.group(1)), int(floor.group(2))) > MANYLINUX_CEILING:
        ceiling = "manylinux_{}_{}".format(*MANYLINUX_CEILING)
        errors.append(
            f"{name}: its symbol versions need {report['sym_tag']}, above {ceiling}, TensorFlow's own tag: "
            "list the symbols above it with `objdump -T tf_qdq/_tf_qdq_ops.so` and bind older versions of them "
            "(docs/building.md, manylinux and the glibc floor)"
        )
    others = set(report["external_libs"]) - TENSORFLOW_LIBS
    if others:
        errors.append(f"needs libraries outside the manylinux policy besides TensorFlow's: {sorted(others)}")
    if report.get("unsupported_isa"):
        errors.append("auditwheel reports an unsupported instruction set extension")
    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    if [n for n in names if ".libs/" in n]:
        errors.append("libraries were grafted into the wheel: " + ", ".join(n for n in names if ".libs/" in n))
    if "tf_qdq/_tf_qdq_ops.so" not in names:
        errors.append("tf_qdq/_tf_qdq_ops.so is missing")
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    reqs = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist: tensorflow")]
    if reqs != [f"tensorflow=={tf_minor}.*"]:
        errors.append(f"requires {reqs}, expected tensorflow=={tf_minor}.*")

    def newest(versions):
        return max(versions, key=lambda s: [int(p) for p in re.findall(r"\d+", s)])

    symbols = "; ".join(f"{lib}: {newest(v)}" for lib, v in sorted(report["versioned_symbols"].items()))
    print(
        f"== wheel {name}: symbols allow {report['sym_tag']} (newest: {symbols}); "
        f"external: {sorted(report['external_libs'])}; requires {', '.join(reqs)}"
    )
    for e in errors:
        print("== wheel check FAILED:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
