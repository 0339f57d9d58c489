"""The package version and the supported TensorFlow versions: the one place each is written.

setup.py reads __version__ with a regex; CI (.ci/run) reads SUPPORTED_TENSORFLOW and runs a job for
every version in it; tests/test_build_smoke.py checks that the README and docs/building.md state the
same range.
"""

__version__ = "0.1.0"

# Every TensorFlow minor version this source builds against and CI tests, oldest first. A build
# loads only into the minor version it was compiled against.
SUPPORTED_TENSORFLOW = ("2.16", "2.17", "2.18", "2.19", "2.20", "2.21")
