"""Child of tests/test_huge.py: empty tensors whose other dimensions overflow int32 (and int64
products) run every op, eager and in a tf.function, with the input's shape. Prints `empty ok N`."""

import tensorflow as tf

import tf_qdq

R = tf_qdq.raw_ops
z = tf.zeros([0])
cases = 0
for shape, axis in [
    ([0, 2**62, 2**62], 0),
    ([0, 2**62, 2**62], 2),
    ([2**31 + 1, 0, 2**31 + 1], 0),
    ([2**31 + 1, 0, 2**31 + 1], 2),
    ([0, 2**31 + 1], 1),
    ([2**16, 2**16, 0], 1),
    ([2**40, 0], -1),
    ([0, 2**31 - 1, 2**31 - 1, 3], 3),
]:
    x = tf.zeros(shape, tf.bfloat16)
    for mode in ("eager", "function"):

        def f(x=x, axis=axis):
            d = 1 if axis == -1 else shape[axis]
            if d <= 3:  # a per-channel range can be given
                mn = tf.zeros([] if axis == -1 else [d], tf.bfloat16)
                outs = [
                    R.QuantizeAndDequantizeV3(input=x, input_min=mn, input_max=mn, num_bits=8, axis=axis),
                    R.QuantizeAndDequantizeV4Grad(gradients=x, input=x, input_min=mn, input_max=mn, axis=axis)[0],
                ]
                outs.append(R.QuantizeAndDequantizeV2(input=x, input_min=mn, input_max=mn, axis=axis))
            elif mode == "eager":  # 2^31 + 1 channels: computed range, min/max ignored
                e = tf.zeros([0], tf.bfloat16)
                outs = [R.QuantizeAndDequantizeV2(input=x, input_min=e, input_max=e, axis=axis)]
            else:  # no min/max of 2^31 + 1 elements in a graph: the shape function needs them
                outs = []
            return outs

        outs = tf.function(f)() if mode == "function" else f()
        assert all(o.shape == x.shape for o in outs), (shape, axis, [o.shape for o in outs])
        cases += len(outs)
print("empty ok", cases)
