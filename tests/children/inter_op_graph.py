"""Child of tests/test_concurrency.py: independent ops of one graph on 8 inter-op threads, called
from 4 Python threads at once, give the eager results bit for bit. Prints `inter-op ok 8 N`."""

import threading

import tensorflow as tf

tf.config.threading.set_inter_op_parallelism_threads(8)
tf.config.threading.set_intra_op_parallelism_threads(2)
from test_concurrency import workloads

from tf_qdq import reference

work = workloads(seed=1)
eager = [f().numpy() for _, f in work]


@tf.function
def all_at_once():
    return [f() for _, f in work]  # no data dependencies: scheduled in parallel


for rep in range(3):
    got = [t.numpy() for t in all_at_once()]
    bad = [work[i][0] for i in range(len(work)) if not reference.same_bits(got[i], eager[i])]
    assert not bad, ("graph differs from eager", rep, bad)
errors = []


def worker():
    for _ in range(3):
        got = [t.numpy() for t in all_at_once()]
        errors.extend(work[i][0] for i in range(len(work)) if not reference.same_bits(got[i], eager[i]))


ts = [threading.Thread(target=worker) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
assert not errors, errors[:5]
print("inter-op ok", tf.config.threading.get_inter_op_parallelism_threads(), len(work))
