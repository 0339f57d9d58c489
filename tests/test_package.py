"""What the wheel ships: the packages setup.py lists hold every runtime module, and no test,
fuzzing or other developer-only module (those live in tests/ and tools/ of the checkout). What
`import tf_qdq` loads is pinned in tests/test_install.py."""

import ast
import os
import re

from qdq_testing import ROOT

# Imports that only a developer tool or a test needs.
DEV_ONLY_IMPORTS = re.compile(r"^\s*(?:import|from)\s+(hypothesis|pytest|tools|qdq_testing)\b", re.M)


def _setup_packages():
    """The `packages=` list of setup.py's setup() call, read without running setup.py."""
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for kw in node.keywords:
                if kw.arg == "packages":
                    return ast.literal_eval(kw.value)
    raise AssertionError("setup.py has no setup(packages=[...])")


def _modules(package):
    folder = os.path.join(ROOT, *package.split("."))
    return sorted(f for f in os.listdir(folder) if f.endswith(".py"))


def test_packages_are_the_runtime_and_nothing_else():
    packages = _setup_packages()
    assert packages[0] == "tf_qdq"
    # Every package of the source tree ships (nothing left out by accident) ...
    on_disk = sorted(
        os.path.relpath(d, ROOT).replace(os.sep, ".")
        for d, _, files in os.walk(os.path.join(ROOT, "tf_qdq"))
        if "__init__.py" in files
    )
    assert sorted(packages) == on_disk
    # ... and none of them is a test or developer tool.
    for package in packages:
        assert not set(package.split(".")) & {"tests", "tools", "fuzz"}, package
        for name in _modules(package):
            assert not name.startswith(("test_", "conftest")), f"{package}/{name}"
            with open(os.path.join(ROOT, *package.split("."), name), encoding="utf-8") as f:
                found = DEV_ONLY_IMPORTS.search(f.read())
            assert found is None, f"{package}/{name} imports {found.group(1)}, a developer-only module"


def test_manifest_prunes_the_developer_folders():
    with open(os.path.join(ROOT, "MANIFEST.in"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert "prune tools" in lines and "prune tests" in lines
