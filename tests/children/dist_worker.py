"""One training run of a small QDQ model under a tf.distribute strategy, for
tests/test_distribute.py (each mode runs in its own process: logical devices
must be configured before TensorFlow initializes, and each worker of a
MultiWorkerMirroredStrategy is a process).

    python tests/children/dist_worker.py MODE OUT_DIR

MODE: "single" (default strategy, one device), "mirrored" (MirroredStrategy on
2 logical CPU devices), "multiworker" (MultiWorkerMirroredStrategy, one CPU
replica per worker; TF_CONFIG is set by the caller), "ps" (building the layer
under ParameterServerStrategy on an in-process localhost cluster).

Every mode trains on the same global batches (8 rows: the first 4 small, the
last 4 ten to forty times larger, i.e. the large values are in the second
replica's or worker's shard) with a custom strategy.run loop, then a fresh model
with fit (not under MultiWorkerMirroredStrategy with Keras 3, whose fit does not
run there), then calibrates two layers with update_range in a replica and in the
cross-replica context. It writes OUT_DIR/result-<mode>[-keras2]-<task>.json with
every replica's range variables after each phase and the weights; the chief
also writes the .keras file, a checkpoint and a model.export() SavedModel of the
loop's model to OUT_DIR, and loads them back under the strategy's scope.
With TF_USE_LEGACY_KERAS=1 the same runs with tf_keras.
"""

import json
import os
import socket
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
MODE, OUT = sys.argv[1], sys.argv[2]
GLOBAL_BATCH, STEPS = 8, 4

import tensorflow as tf

if MODE == "mirrored":
    # Must run before anything initializes TensorFlow's devices.
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )

import numpy as np

import tf_qdq
from tf_qdq.keras import LEGACY_KERAS, QuantizeDequantize, keras

QDQ_LAYERS = ("q_max", "q_ema", "q_pc_max", "q_last")


def global_batches():
    rng = np.random.RandomState(0)
    x = rng.uniform(-1.0, 1.0, (STEPS, GLOBAL_BATCH, 6)).astype(np.float32)
    x[:, GLOBAL_BATCH // 2 :] *= 10.0 * (1.0 + np.arange(STEPS, dtype=np.float32)[:, None, None])
    y = (x[..., :3] * np.float32(0.1)).astype(np.float32)
    return x.reshape(-1, 6), y.reshape(-1, 3)


def build_model():
    inp = keras.Input((6,))
    h = QuantizeDequantize(range_mode="max", name="q_max")(inp)
    h = QuantizeDequantize(range_mode="max", axis=-1, name="q_pc_max")(h)
    h = keras.layers.Dense(5, kernel_initializer=keras.initializers.GlorotUniform(seed=1), name="d1")(h)
    h = QuantizeDequantize(range_mode="moving_average", momentum=0.5, name="q_ema")(h)
    h = keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=2), name="d2")(h)
    out = QuantizeDequantize(range_mode="last", axis=-1, signed=False, name="q_last")(h)
    return keras.Model(inp, out)


def replicas(strategy, var):
    """Every local replica's copy of a layer variable, as lists."""
    v = _tf_variable(var)
    return [np.asarray(c).tolist() for c in strategy.experimental_local_results(v)]


def _tf_variable(var):
    """The tf.Variable (MirroredVariable under a strategy) behind a layer variable."""
    return var if isinstance(var, tf.Variable) else var.value


def weights(model):
    return {n: [np.asarray(w).tolist() for w in model.get_layer(n).get_weights()] for n in ("d1", "d2")}


def ranges(strategy, layers):
    return {
        layer.name: {"max": replicas(strategy, layer.max), "min": replicas(strategy, layer.min)} for layer in layers
    }


def dataset(strategy):
    ds = tf.data.Dataset.from_tensor_slices(global_batches()).batch(GLOBAL_BATCH)
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(opts)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parameter_server():
    """Builds the layer under ParameterServerStrategy on an in-process cluster."""
    spec = {"worker": [f"127.0.0.1:{free_port()}"], "ps": [f"127.0.0.1:{free_port()}"]}
    cluster = tf.train.ClusterSpec(spec)
    for job in ("worker", "ps"):
        tf.distribute.Server(cluster, job_name=job, task_index=0, protocol="grpc", start=True)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(cluster, rpc_layer="grpc")
    strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
    result = {}
    with strategy.scope():
        try:
            QuantizeDequantize(range_mode="max").build((4, 3))
            result["max"] = "built"
        except ValueError as e:
            result["max"] = str(e)
        fixed = QuantizeDequantize(range_mode="fixed", init_range=2.0)
        fixed.build((4, 3))
        result["fixed"] = float(fixed.max.numpy())
    return result


def op_gradients(strategy):
    """The V4 op with a range computed per replica (range_given=False, per
    channel), its output and gradient on each replica's shard, next to the same
    shard run outside the strategy. Each row carries its own upstream gradient
    (columns 6..11) so a shard is self-contained."""
    x = global_batches()[0][:GLOBAL_BATCH]
    dy = np.random.RandomState(3).uniform(-1, 1, x.shape).astype(np.float32)
    rows = np.concatenate([x, dy], axis=1)

    def step(z):
        xs, dys = z[:, :6], z[:, 6:]
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = tf_qdq.quantize_and_dequantize_v2(xs, tf.zeros(6), tf.zeros(6), range_given=False, axis=1, num_bits=4)
        return y, tape.gradient(y, xs, output_gradients=dys)

    ds = tf.data.Dataset.from_tensor_slices(rows).batch(GLOBAL_BATCH)
    z = next(iter(strategy.experimental_distribute_dataset(ds)))
    y, dx = tf.function(lambda a: strategy.run(step, args=(a,)))(z)
    out = []
    for yr, dxr, shard in zip(*(strategy.experimental_local_results(t) for t in (y, dx, z))):
        ys, dxs = step(tf.constant(np.asarray(shard)))
        out.append(
            {
                "rows": int(shard.shape[0]),
                "y_same_bits": bool(np.array_equal(np.asarray(yr).view(np.uint32), ys.numpy().view(np.uint32))),
                "dx_same_bits": bool(np.array_equal(np.asarray(dxr).view(np.uint32), dxs.numpy().view(np.uint32))),
                "dx_equals_dy": bool(np.array_equal(np.asarray(dxr), np.asarray(shard)[:, 6:])),
                "amax": np.max(np.abs(np.asarray(shard)[:, :6]), axis=0).tolist(),
            }
        )
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    if MODE == "ps":
        with open(os.path.join(OUT, "result-ps.json"), "w") as f:
            json.dump(parameter_server(), f)
        return
    if MODE == "single":
        strategy = tf.distribute.get_strategy()
    elif MODE == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {"index": 0})["index"]
    chief = task == 0
    tag = MODE + ("-keras2" if LEGACY_KERAS else "")
    keras.utils.set_random_seed(0)
    result = {"mode": MODE, "replicas": strategy.num_replicas_in_sync}

    with strategy.scope():
        model = build_model()
        q_replica = QuantizeDequantize(range_mode="max", axis=-1, name="q_cal_replica")
        q_replica.build((None, 6))
        q_cross = QuantizeDequantize(range_mode="moving_average", momentum=0.5, name="q_cal_cross")
        q_cross.build((None, 6))
        opt = keras.optimizers.SGD(0.001)
        opt.build(model.trainable_variables)
    layers = [model.get_layer(n) for n in QDQ_LAYERS]
    var_info = _tf_variable(layers[0].max)
    result["variable"] = {
        "class": type(var_info).__name__,
        "aggregation": str(var_info.aggregation),
        "synchronization": str(var_info.synchronization),
    }

    # 1. custom loop: strategy.run of a forward/backward step, two passes over the data
    def train_step(x, y):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = tf.reduce_sum(tf.square(pred - y)) / (GLOBAL_BATCH * 3.0)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))

    @tf.function
    def run_step(x, y):
        strategy.run(train_step, args=(x, y))

    for _ in range(2):
        for x, y in strategy.experimental_distribute_dataset(dataset(strategy)):
            run_step(x, y)
    result["loop"] = ranges(strategy, layers)
    result["weights_loop"] = weights(model)

    # 2. fit, on a fresh model with the same initial weights. Keras 3's fit
    # does not run under MultiWorkerMirroredStrategy (it fails before the first
    # step, in Model._maybe_symbolic_build, whatever the layers); tf_keras's does.
    if MODE != "multiworker" or LEGACY_KERAS:
        with strategy.scope():
            fit_model = build_model()
            fit_model.compile(keras.optimizers.SGD(0.001), "mse")
        fit_model.fit(dataset(strategy), epochs=2, verbose=0, shuffle=False)
        result["fit"] = ranges(strategy, [fit_model.get_layer(n) for n in QDQ_LAYERS])
        result["weights_fit"] = weights(fit_model)

    # 3. update_range by hand: in a replica context (strategy.run), and in the
    # cross-replica context with a different tensor on each worker.
    @tf.function
    def calibrate(x):
        strategy.run(lambda xs: q_replica.update_range(xs), args=(x,))

    for x, _ in strategy.experimental_distribute_dataset(dataset(strategy)):
        calibrate(x)
    result["cal_replica"] = ranges(strategy, [q_replica])
    x0 = global_batches()[0][:GLOBAL_BATCH]
    if MODE == "multiworker":
        x0 = np.split(x0, 2)[task]  # this worker's half of the first global batch
    for scale in (1.0, 0.5):
        q_cross.update_range(tf.constant(x0 * np.float32(scale)))
    result["cal_cross"] = ranges(strategy, [q_cross])

    # 4. saving: every worker saves (collectives may run while saving), the
    # chief into OUT, the others into a temporary directory.
    save_dir = OUT if chief else tempfile.mkdtemp()
    model.save(os.path.join(save_dir, f"model-{tag}.keras"))
    tf.train.Checkpoint(model=model).write(os.path.join(save_dir, f"ckpt-{tag}", "ckpt"))
    export_kw = {} if LEGACY_KERAS else {"verbose": False}
    model.export(os.path.join(save_dir, f"export-{tag}"), **export_kw)
    result["predict"] = np.asarray(model(global_batches()[0][:GLOBAL_BATCH])).tolist()

    # 5. loading under the strategy's scope: every replica gets the saved range
    # (every worker loads: creating mirrored variables is a collective step).
    with strategy.scope():
        loaded = keras.models.load_model(os.path.join(save_dir, f"model-{tag}.keras"))
        restored = build_model()
        tf.train.Checkpoint(model=restored).read(os.path.join(save_dir, f"ckpt-{tag}", "ckpt")).expect_partial()
    result["loaded_keras"] = ranges(strategy, [loaded.get_layer(n) for n in QDQ_LAYERS])
    result["loaded_ckpt"] = ranges(strategy, [restored.get_layer(n) for n in QDQ_LAYERS])

    if MODE == "mirrored":
        result["op_gradients"] = op_gradients(strategy)

    with open(os.path.join(OUT, f"result-{tag}-{task}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
