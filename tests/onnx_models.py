"""Small Keras 3 models with QuantizeDequantize layers placed by hand on every
weight kind that ONNX export maps (Conv, depthwise Conv, ConvTranspose, Dense),
for tests/test_to_onnx.py and tests/test_check_onnx.py."""

import numpy as np
import tensorflow as tf

from tf_qdq.keras import QuantizeDequantize, keras


def _amax(kernel, axis):
    axes = tuple(i for i in range(kernel.ndim) if i != axis % kernel.ndim)
    return np.max(np.abs(kernel), axis=axes)


class _QWeightLayer(keras.layers.Layer):
    """A layer whose kernel passes through a per-channel, narrow-range
    QuantizeDequantize along the output-channel axis (range: the kernel's
    absolute maximum per channel, refreshed by training calls)."""

    kernel_axis = -1

    def kernel_shape(self, input_shape):
        raise NotImplementedError

    def build(self, input_shape):
        shape = self.kernel_shape(input_shape)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(shape[self.kernel_axis],), initializer="random_normal")
        value = np.asarray(self.kernel.numpy())
        self.wq = QuantizeDequantize(
            axis=self.kernel_axis, narrow_range=True, range_mode="last", init_range=_amax(value, self.kernel_axis)
        )
        self.wq.build(shape)

    def quantized_kernel(self, training=None):
        return self.wq(self.kernel, training=training)


class QConv2D(_QWeightLayer):
    def __init__(self, filters, kernel_size=3, strides=1, **kw):
        super().__init__(**kw)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides

    def kernel_shape(self, s):
        return (self.kernel_size, self.kernel_size, s[-1], self.filters)

    def call(self, x, training=None):
        y = tf.nn.conv2d(x, self.quantized_kernel(training), self.strides, "SAME")
        return tf.nn.bias_add(y, self.bias)


class QDepthwiseConv2D(_QWeightLayer):
    kernel_axis = 2

    def kernel_shape(self, s):
        return (3, 3, s[-1], 1)

    def call(self, x, training=None):
        y = tf.nn.depthwise_conv2d(x, self.quantized_kernel(training), [1, 1, 1, 1], "SAME")
        return tf.nn.bias_add(y, self.bias)


class QConv2DTranspose(_QWeightLayer):
    kernel_axis = 2

    def __init__(self, filters, **kw):
        super().__init__(**kw)
        self.filters = filters

    def kernel_shape(self, s):
        return (3, 3, self.filters, s[-1])

    def call(self, x, training=None):
        b = tf.shape(x)[0]
        shape = tf.stack([b, x.shape[1] * 2, x.shape[2] * 2, self.filters])
        y = tf.nn.conv2d_transpose(x, self.quantized_kernel(training), shape, 2, "SAME")
        return tf.nn.bias_add(y, self.bias)


class QDense(_QWeightLayer):
    def __init__(self, units, **kw):
        super().__init__(**kw)
        self.units = units

    def kernel_shape(self, s):
        return (s[-1], self.units)

    def call(self, x, training=None):
        return tf.nn.bias_add(tf.matmul(x, self.quantized_kernel(training)), self.bias)


def act(amax, signed=True):
    """A per-tensor activation QuantizeDequantize with a fixed range."""
    return QuantizeDequantize(range_mode="fixed", init_range=amax, signed=signed)


def all_kinds_model(seed=0, out_amax=8.0):
    """Conv, depthwise Conv, ConvTranspose and Dense, every input quantized, the
    output too (so TF and ONNX agree within one quantum of `out_amax / 127`)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3), name="image")
    x = act(2.0)(inp)
    x = QConv2D(8, strides=2)(x)
    x = keras.layers.ReLU()(x)
    x = act(4.0, signed=False)(x)
    x = QDepthwiseConv2D()(x)
    x = act(4.0)(x)
    x = QConv2DTranspose(4)(x)
    x = act(4.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = act(4.0)(x)
    x = QDense(5)(x)
    out = act(out_amax)(x)
    return keras.Model(inp, out)


def float_model(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3)(x))
