"""Child of tests/test_api.py: `import tf_qdq` with TF_QDQ_LIBRARY naming a library built against
another TensorFlow version, then a missing file, then the real library, in one process.

    python load_attempts.py PATCHED MISSING REAL
"""

import os
import sys

patched, missing, real = sys.argv[1:4]


def attempt(path):
    os.environ["TF_QDQ_LIBRARY"] = path
    for m in [m for m in sys.modules if m == "tf_qdq" or m.startswith("tf_qdq.")]:
        del sys.modules[m]
    try:
        import tf_qdq
    except ImportError as e:
        return "IMPORTERROR " + str(e).replace("\n", " ")
    return "OK " + tf_qdq.library_path()


print("PATCHED:", attempt(patched))
print("MISSING:", attempt(missing))
print("REAL:", attempt(real))
