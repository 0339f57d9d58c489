"""Quantization-aware training on several workers (MultiWorkerMirroredStrategy),
then export, lowering and ONNX conversion on the chief.

On one machine, N worker processes on 127.0.0.1 (this script starts them):

    python examples/qat_multiworker.py --workers 2 [--out DIR] [--epochs N]

On several machines, one worker each: set TF_CONFIG on every machine (the same
"cluster", each its own "task" index; index 0 is the chief, which writes the
files) and run the script with --worker:

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        python examples/qat_multiworker.py --worker --out DIR

Every worker must have tf_qdq installed (the op library is loaded by
`import tf_qdq`). Each training step uses one global batch of
`--batch * workers` rows split between the workers; the QDQ layers update their
range from the whole global batch (the maximum over all workers' shards), so
all workers hold the same range after every step, the one training on one
device would give.

1. A small CNN on synthetic images, with QDQ on the activations (per tensor,
   moving average) and on the convolution and dense kernels (per output
   channel, narrow range, range of the current weights), trained with a
   custom loop (strategy.run; Keras 3's fit does not run under
   MultiWorkerMirroredStrategy).
2. Each worker prints its ranges: they are identical.
3. The chief exports with `model.export()` (the other workers write to a
   temporary directory: saving is a collective step), lowers the SavedModel to
   TensorFlow's built-in ops (`tf_qdq.export.lower_saved_model`) and converts it
   to ONNX with tf2onnx (skipped with a message if tf2onnx is not installed).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NUM_CLASSES = 4
SHAPE = (16, 16, 3)


def launch(args):
    """Starts args.workers copies of this script as workers on 127.0.0.1 and
    waits for them; ends all of them if one fails or time runs out."""
    ports = []
    socks = [socket.socket() for _ in range(args.workers)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    forwarded = ["--epochs", str(args.epochs), "--steps", str(args.steps), "--batch", str(args.batch)]
    if args.out:
        forwarded += ["--out", args.out]
    procs, threads = [], []
    print(f"launching {args.workers} workers: {cluster['worker']}", flush=True)

    def pump(i, stream):
        for line in stream:
            print(f"[worker {i}] {line}", end="", flush=True)

    t0 = time.time()
    try:
        for i in range(args.workers):
            env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
            p = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", *forwarded],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            procs.append(p)
            threads.append(threading.Thread(target=pump, args=(i, p.stdout), daemon=True))
            threads[-1].start()
        while any(p.poll() is None for p in procs):
            if any(p.returncode not in (None, 0) for p in procs):
                print("a worker failed: stopping the others", flush=True)
                break
            if time.time() - t0 > args.timeout:
                print(f"workers still running after {args.timeout} s: stopping them", flush=True)
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for t in threads:
            t.join(timeout=5)
    codes = [p.returncode for p in procs]
    print(f"workers ended with {codes} in {time.time() - t0:.1f} s", flush=True)
    return 0 if all(c == 0 for c in codes) else 1


def worker(args):
    import tensorflow as tf

    # The strategy must exist before any other TensorFlow work in this process.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import numpy as np

    from tf_qdq import export
    from tf_qdq.keras import QuantizeDequantize, keras

    resolver = strategy.cluster_resolver
    task = resolver.task_id if resolver.task_type else 0
    num_workers = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    chief = task == 0
    t0 = time.time()

    def weight_qdq():
        # TensorRT's weight convention: signed 8 bit, narrow range, per output channel.
        return QuantizeDequantize(axis=-1, narrow_range=True, range_mode="last")

    class QConv2D(keras.layers.Conv2D):
        def build(self, input_shape):
            super().build(input_shape)
            self.kernel_qdq = weight_qdq()
            self.kernel_qdq.build(tuple(self.kernel.shape))

        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, self.kernel_qdq(kernel))

    class QDense(keras.layers.Dense):
        def build(self, input_shape):
            super().build(input_shape)
            self.kernel_qdq = weight_qdq()
            self.kernel_qdq.build(tuple(self.kernel.shape))

        def call(self, inputs, training=None):
            x = tf.matmul(inputs, self.kernel_qdq(self.kernel, training=training))
            return self.activation(tf.nn.bias_add(x, self.bias))

    def act_qdq(name):
        return QuantizeDequantize(range_mode="moving_average", momentum=0.9, name=name)

    def build_model():
        inp = keras.Input(SHAPE, name="image")
        x = act_qdq("q_input")(inp)
        x = QConv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
        x = keras.layers.MaxPooling2D()(x)
        x = act_qdq("q_conv1")(x)
        x = QConv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = act_qdq("q_conv2")(x)
        return keras.Model(inp, QDense(NUM_CLASSES, name="logits")(x), name="qat_cnn")

    def synthetic_data(n, seed):
        rng = np.random.RandomState(seed)
        y = rng.randint(0, NUM_CLASSES, n)
        x = rng.normal(0.0, 0.6, (n,) + SHAPE).astype(np.float32)
        for c in range(NUM_CLASSES):
            x[y == c, 4 * c : 4 * c + 3, :, c % 3] += 2.0
        return x, y.astype(np.int32)

    global_batch = args.batch * num_workers
    x_train, y_train = synthetic_data(global_batch * args.steps, seed=1)
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(global_batch).with_options(opts)

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_model()
        optimizer = keras.optimizers.Adam(3e-3)
        optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    # A custom training loop: Keras 3's fit does not run under
    # MultiWorkerMirroredStrategy (tf_keras's does). Each replica computes the
    # loss of its shard, divided by the global batch size, and the optimizer
    # sums the gradients over all replicas.
    def train_step(x, y):
        with tf.GradientTape() as tape:
            per_example = loss_fn(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def distributed_step(x, y):
        losses = strategy.run(train_step, args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    for _ in range(args.epochs):
        for x, y in strategy.experimental_distribute_dataset(ds):
            loss = distributed_step(x, y)
    # "last" weight ranges were taken before the last optimizer step: refresh
    # them from the final kernels (every worker runs this: it is a collective step).
    for layer in model.layers:
        if hasattr(layer, "kernel_qdq"):
            layer.kernel_qdq.update_range(layer.kernel)
    ranges = {layer.name: float(layer.max.numpy()) for layer in model.layers if isinstance(layer, QuantizeDequantize)}
    ranges.update(
        {
            f"{layer.name}.kernel": [round(float(v), 5) for v in layer.kernel_qdq.max.numpy()[:3]]
            for layer in model.layers
            if hasattr(layer, "kernel_qdq")
        }
    )
    print(
        f"1. trained {args.epochs} epoch(s) of {args.steps} global batches of {global_batch} on "
        f"{num_workers} worker(s): last loss {float(loss):.4f}  [{time.time() - t0:.1f} s]",
        flush=True,
    )
    print(f"2. ranges on worker {task}: {json.dumps(ranges)}", flush=True)

    out = args.out or tempfile.mkdtemp(prefix="tf_qdq_qat_mw_")
    save_dir = out if chief else tempfile.mkdtemp(prefix=f"tf_qdq_worker{task}_")
    saved = os.path.join(save_dir, "saved_model")
    model.export(saved, verbose=False)
    if not chief:
        shutil.rmtree(save_dir, ignore_errors=True)
        return 0
    print(f"3. exported {saved}: {export.count_ops(saved)}", flush=True)
    lowered = os.path.join(out, "lowered")
    stats = export.lower_saved_model(saved, lowered, overwrite=True)
    print(f"4. lowered {lowered}: {stats}", flush=True)
    x_test, _ = synthetic_data(64, seed=2)
    # A plain call reads the local copies of the variables (model.predict would
    # be a collective step, and the other workers have finished).
    want = model(tf.constant(x_test), training=False).numpy()
    reloaded = tf.saved_model.load(lowered)  # keep a reference: it owns the variables
    got = reloaded.serve(tf.constant(x_test)).numpy()
    same = np.array_equal(want.view(np.uint32), got.view(np.uint32))
    print(f"   lowered SavedModel vs Keras model: {'bit-identical' if same else 'DIFFERENT'}", flush=True)
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        print("5. ONNX skipped: tf2onnx is not installed (pip install tf2onnx)", flush=True)
    else:
        onnx_path = os.path.join(out, "model.onnx")
        proto = export.saved_model_to_onnx(lowered, onnx_path, opset=13)
        qls = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
        per_channel = sum(any(a.name == "axis" for a in n.attribute) for n in qls)
        print(
            f"5. converted {onnx_path}: {len(qls)} QuantizeLinear ({len(qls) - per_channel} per "
            f"tensor, {per_channel} per channel)",
            flush=True,
        )
    print(f"done in {time.time() - t0:.1f} s; files in {out}", flush=True)
    return 0 if same else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes to launch on 127.0.0.1")
    parser.add_argument(
        "--worker", action="store_true", help="run as one worker (TF_CONFIG describes the cluster and this task)"
    )
    parser.add_argument("--out", help="output directory of the chief (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=16, help="global batches per epoch")
    parser.add_argument("--batch", type=int, default=32, help="rows per worker in each global batch")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before the launcher stops the workers")
    args = parser.parse_args(argv)
    return worker(args) if args.worker else launch(args)


if __name__ == "__main__":
    sys.exit(main())
