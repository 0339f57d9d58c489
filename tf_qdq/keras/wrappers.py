"""Quantized versions of Keras' weighted layers.

Each class subclasses the Keras layer it replaces (same config, same weights in
the same order, so `from_config(layer.get_config())` plus the original weights is
the same float layer) and passes its kernel through a `QuantizeDequantize` sublayer
(`kernel_quantizer`) before use: per channel along the kernel's own output-channel
axis, narrow range, 8 bits, range of the current kernel (range_mode "last": updated
by every training call, and by `refresh_weight_ranges()`). The layer's input is not
quantized here: `quantize_model` puts a `QuantizeDequantize` layer in front of it,
shared by all consumers of the same tensor (one scale per tensor, as TensorRT and
onnxruntime want it).

Output-channel axis of each kernel:

- Conv1D/2D/3D: kernel (*spatial, in/groups, out): the last axis.
- Conv2DTranspose/Conv3DTranspose: kernel (*spatial, out, in): axis -2.
- DepthwiseConv2D: kernel (kh, kw, in, multiplier); output channel c * multiplier
  + m. With multiplier 1 the axis is -2; otherwise the kernel is reshaped to
  (kh, kw, in * multiplier), quantized along its last axis, and reshaped back.
- SeparableConv1D/2D: the depthwise kernel as DepthwiseConv2D, the pointwise
  kernel (1, 1, in * multiplier, out) along the last axis; the depthwise output
  (the pointwise convolution's input) goes through a per-tensor activation
  quantizer (`depthwise_output_quantizer`), as TensorRT runs the two parts as
  two convolutions.
- Dense: kernel (in, out): the last axis.
- EinsumDense: the last kernel axis that appears in the output.

Under tf_keras (LEGACY_KERAS) Conv1D/2D/3D, DepthwiseConv2D and Dense are
available; the other layers need Keras 3.
"""

from typing import Any, Dict, Optional

import tensorflow as tf

from tf_qdq.keras.layer import LEGACY_KERAS, QuantizeDequantize, keras

#: Defaults of the kernel quantizers (overridable per layer in quantize_model).
WEIGHT_DEFAULTS: Dict[str, Any] = {"num_bits": 8, "per_channel": True, "narrow_range": True}

#: Defaults of an activation quantizer inside a wrapper (SeparableConv's middle tensor).
ACTIVATION_DEFAULTS: Dict[str, Any] = {
    "num_bits": 8,
    "narrow_range": False,
    "signed": True,
    "range_mode": "max",
    "init_range": None,
}

_register = keras.saving.register_keras_serializable(package="tf_qdq")


def _weight_quantizer(config: Dict[str, Any], axis: Optional[int], name: str) -> QuantizeDequantize:
    return QuantizeDequantize(
        num_bits=config["num_bits"],
        axis=axis if config["per_channel"] else None,
        narrow_range=config["narrow_range"],
        range_mode="last",
        name=name,
    )


def _activation_quantizer(config: Dict[str, Any], name: str) -> QuantizeDequantize:
    """A built per-tensor quantizer for an activation inside a wrapper (its output, or the
    depthwise part's output of a separable convolution)."""
    quantizer = QuantizeDequantize(
        num_bits=config["num_bits"],
        narrow_range=config["narrow_range"],
        signed=config["signed"],
        range_mode=config["range_mode"],
        init_range=config["init_range"],
        name=name,
    )
    quantizer.build(())
    return quantizer


class _Quantized:
    """Mixin: kernel quantizers as sublayers, their settings in the config."""

    def __init__(
        self,
        *args: Any,
        weight_quantization: Optional[Dict[str, Any]] = None,
        activation_quantization: Optional[Dict[str, Any]] = None,
        output_quantization: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        wq = dict(WEIGHT_DEFAULTS)
        wq.update(weight_quantization or {})
        unknown = set(wq) - set(WEIGHT_DEFAULTS)
        if unknown:
            raise ValueError(
                f"weight_quantization of {self.name!r} has unknown keys {sorted(unknown)}; "
                f"known: {sorted(WEIGHT_DEFAULTS)}"
            )
        aq = dict(ACTIVATION_DEFAULTS)
        aq.update(activation_quantization or {})
        self.weight_quantization = wq
        self.activation_quantization = aq
        self.output_quantization = None
        if output_quantization is not None:
            self.output_quantization = dict(ACTIVATION_DEFAULTS)
            self.output_quantization.update(output_quantization)
        self._tf_qdq_training = None
        self.output_quantizer = None

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        oq = self.output_quantization
        if oq is not None:
            self.output_quantizer = _activation_quantizer(oq, "output_quantizer")

    def call(self, inputs, training=None):
        """The layer's computation with quantized kernels; with an output quantizer
        (onnxruntime's node unit ends before an activation it cannot fuse, e.g.
        sigmoid), the pre-activation output is quantized, then the activation runs."""
        _set_training(self, training)
        if self.output_quantizer is None:
            return self._qcall(inputs, training)
        activation = self.activation
        object.__setattr__(self, "activation", None)
        try:
            outputs = self._qcall(inputs, training)
        finally:
            object.__setattr__(self, "activation", activation)
        outputs = self.output_quantizer(outputs, training=training)
        return outputs if activation is None else activation(outputs)

    def _kernels(self):
        """(kernel variable, quantizer) pairs."""
        return [(self.kernel, self.kernel_quantizer)]

    def refresh_weight_ranges(self) -> None:
        """Sets each kernel quantizer's range from the current kernel."""
        for kernel, quantizer in self._kernels():
            self._quantize_kernel(tf.convert_to_tensor(kernel), quantizer, update_only=True)

    def _quantize_kernel(self, kernel, quantizer, update_only=False):
        if update_only:
            quantizer.update_range(kernel)
            return None
        return quantizer(kernel, training=self._tf_qdq_training)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        aq = dict(self.activation_quantization)
        mid = getattr(self, "depthwise_output_quantizer", None)
        if mid is not None:  # the live settings (calibrate may have fixed the range)
            aq.update(range_mode=mid.range_mode, init_range=mid.init_range)
        config.update(weight_quantization=dict(self.weight_quantization), activation_quantization=aq)
        if self.output_quantization is not None:
            oq = dict(self.output_quantization)
            if self.output_quantizer is not None:
                oq.update(range_mode=self.output_quantizer.range_mode, init_range=self.output_quantizer.init_range)
            config.update(output_quantization=oq)
        return config


def _set_training(layer, training) -> None:
    object.__setattr__(layer, "_tf_qdq_training", training)


class _ConvQuantized(_Quantized):
    """Conv1D/2D/3D: the kernel is quantized in convolution_op."""

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.kernel_quantizer = _weight_quantizer(self.weight_quantization, -1, "kernel_quantizer")
        self.kernel_quantizer.build(tuple(self.kernel.shape))

    def _qcall(self, inputs, training=None):
        return super(_Quantized, self).call(inputs)  # the Keras layer's call

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, self._quantize_kernel(kernel, self.kernel_quantizer))


def _depthwise_axis(kernel_shape) -> int:
    return -2 if kernel_shape[-1] == 1 else -1


def _depthwise_quantizer_shape(kernel_shape):
    shape = tuple(kernel_shape)
    return shape if shape[-1] == 1 else shape[:-2] + (shape[-2] * shape[-1],)


class _DepthwiseKernel:
    """Per output channel on a (..., in, multiplier) depthwise kernel."""

    def _depthwise_quantizer(self, kernel, name: str) -> QuantizeDequantize:
        """A built per-channel quantizer for a depthwise kernel (its channels are input x multiplier)."""
        shape = tuple(kernel.shape)
        quantizer = _weight_quantizer(self.weight_quantization, _depthwise_axis(shape), name)
        quantizer.build(_depthwise_quantizer_shape(shape))
        return quantizer

    def _quantize_kernel(self, kernel, quantizer, update_only=False):
        shape = tuple(kernel.shape)
        flat = kernel if shape[-1] == 1 else tf.reshape(kernel, shape[:-2] + (shape[-2] * shape[-1],))
        if update_only:
            quantizer.update_range(flat)
            return None
        q = quantizer(flat, training=self._tf_qdq_training)
        return q if shape[-1] == 1 else tf.reshape(q, shape)


def _bias_activation(layer, outputs, channels):
    if layer.use_bias:
        if getattr(layer, "data_format", "channels_last") == "channels_last":
            bias = tf.reshape(layer.bias, (1,) * (len(outputs.shape) - 1) + (channels,))
        else:
            bias = tf.reshape(layer.bias, (1, channels) + (1,) * (len(outputs.shape) - 2))
        outputs = outputs + tf.cast(bias, outputs.dtype)
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


# The plain convolutions are the same under Keras 2 and 3.
@_register
class QuantizedConv1D(_ConvQuantized, keras.layers.Conv1D):
    pass


@_register
class QuantizedConv2D(_ConvQuantized, keras.layers.Conv2D):
    pass


@_register
class QuantizedConv3D(_ConvQuantized, keras.layers.Conv3D):
    pass


if LEGACY_KERAS:

    @_register
    class QuantizedDepthwiseConv2D(_DepthwiseKernel, _Quantized, keras.layers.DepthwiseConv2D):
        def build(self, input_shape):
            super().build(input_shape)
            self.kernel_quantizer = self._depthwise_quantizer(self.depthwise_kernel, "kernel_quantizer")

        def _kernels(self):
            return [(self.depthwise_kernel, self.kernel_quantizer)]

        def _qcall(self, inputs, training=None):
            kernel = self._quantize_kernel(tf.convert_to_tensor(self.depthwise_kernel), self.kernel_quantizer)
            fmt = "NHWC" if self.data_format == "channels_last" else "NCHW"
            strides = (1,) + tuple(self.strides) + (1,) if fmt == "NHWC" else (1, 1) + tuple(self.strides)
            outputs = tf.nn.depthwise_conv2d(
                inputs,
                kernel,
                strides=strides,
                padding=self.padding.upper(),
                dilations=self.dilation_rate,
                data_format=fmt,
            )
            return _bias_activation(self, outputs, kernel.shape[-2] * kernel.shape[-1])

    @_register
    class QuantizedDense(_Quantized, keras.layers.Dense):
        def build(self, input_shape):
            super().build(input_shape)
            self.kernel_quantizer = _weight_quantizer(self.weight_quantization, -1, "kernel_quantizer")
            self.kernel_quantizer.build(tuple(self.kernel.shape))

        def _qcall(self, inputs, training=None):
            kernel = self._quantize_kernel(tf.convert_to_tensor(self.kernel), self.kernel_quantizer)
            inputs = tf.cast(inputs, kernel.dtype)
            if inputs.shape.rank == 2:
                outputs = tf.matmul(inputs, kernel)
            else:
                outputs = tf.tensordot(inputs, kernel, [[inputs.shape.rank - 1], [0]])
            if self.use_bias:
                outputs = tf.nn.bias_add(outputs, self.bias)
            if self.activation is not None:
                outputs = self.activation(outputs)
            return outputs

    QUANTIZED_LAYERS = {
        keras.layers.Conv1D: QuantizedConv1D,
        keras.layers.Conv2D: QuantizedConv2D,
        keras.layers.Conv3D: QuantizedConv3D,
        keras.layers.DepthwiseConv2D: QuantizedDepthwiseConv2D,
        keras.layers.Dense: QuantizedDense,
    }

else:
    from keras import ops

    class _TransposeQuantized(_Quantized):
        def build(self, input_shape):
            super().build(input_shape)
            self.kernel_quantizer = _weight_quantizer(self.weight_quantization, -2, "kernel_quantizer")
            self.kernel_quantizer.build(tuple(self.kernel.shape))

        def _qcall(self, inputs, training=None):
            kernel = self._quantize_kernel(ops.convert_to_tensor(self.kernel), self.kernel_quantizer)
            outputs = ops.conv_transpose(
                inputs,
                kernel,
                strides=list(self.strides),
                padding=self.padding,
                output_padding=self.output_padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            return _bias_activation(self, outputs, self.filters)

    @_register
    class QuantizedConv2DTranspose(_TransposeQuantized, keras.layers.Conv2DTranspose):
        pass

    @_register
    class QuantizedConv3DTranspose(_TransposeQuantized, keras.layers.Conv3DTranspose):
        pass

    class _DepthwiseQuantized(_DepthwiseKernel, _Quantized):
        def build(self, input_shape):
            super().build(input_shape)
            self.kernel_quantizer = self._depthwise_quantizer(self.kernel, "kernel_quantizer")

        def _qcall(self, inputs, training=None):
            kernel = self._quantize_kernel(ops.convert_to_tensor(self.kernel), self.kernel_quantizer)
            outputs = ops.depthwise_conv(
                inputs,
                kernel,
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            return _bias_activation(self, outputs, kernel.shape[-2] * kernel.shape[-1])

    @_register
    class QuantizedDepthwiseConv1D(_DepthwiseQuantized, keras.layers.DepthwiseConv1D):
        pass

    @_register
    class QuantizedDepthwiseConv2D(_DepthwiseQuantized, keras.layers.DepthwiseConv2D):
        pass

    class _SeparableQuantized(_DepthwiseKernel, _Quantized):
        def build(self, input_shape):
            super().build(input_shape)
            self.depthwise_kernel_quantizer = self._depthwise_quantizer(
                self.depthwise_kernel, "depthwise_kernel_quantizer"
            )
            self.pointwise_kernel_quantizer = _weight_quantizer(
                self.weight_quantization, -1, "pointwise_kernel_quantizer"
            )
            self.pointwise_kernel_quantizer.build(tuple(self.pointwise_kernel.shape))
            self.depthwise_output_quantizer = _activation_quantizer(
                self.activation_quantization, "depthwise_output_quantizer"
            )

        def _kernels(self):
            return [
                (self.depthwise_kernel, self.depthwise_kernel_quantizer),
                (self.pointwise_kernel, self.pointwise_kernel_quantizer),
            ]

        def refresh_weight_ranges(self) -> None:
            self._quantize_kernel(
                ops.convert_to_tensor(self.depthwise_kernel), self.depthwise_kernel_quantizer, update_only=True
            )
            self.pointwise_kernel_quantizer.update_range(ops.convert_to_tensor(self.pointwise_kernel))

        def _qcall(self, inputs, training=None):
            dw = self._quantize_kernel(ops.convert_to_tensor(self.depthwise_kernel), self.depthwise_kernel_quantizer)
            pw = self.pointwise_kernel_quantizer(ops.convert_to_tensor(self.pointwise_kernel), training=training)
            x = ops.depthwise_conv(
                inputs,
                dw,
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            x = self.depthwise_output_quantizer(x, training=training)
            x = ops.conv(x, pw, strides=1, padding="valid", data_format=self.data_format)
            return _bias_activation(self, x, self.filters)

    @_register
    class QuantizedSeparableConv1D(_SeparableQuantized, keras.layers.SeparableConv1D):
        pass

    @_register
    class QuantizedSeparableConv2D(_SeparableQuantized, keras.layers.SeparableConv2D):
        pass

    @_register
    class QuantizedDense(_Quantized, keras.layers.Dense):
        def build(self, input_shape):
            super().build(input_shape)
            self.kernel_quantizer = _weight_quantizer(self.weight_quantization, -1, "kernel_quantizer")
            self.kernel_quantizer.build(tuple(self.kernel.shape))

        def _qcall(self, inputs, training=None):
            kernel = self._quantize_kernel(ops.convert_to_tensor(self.kernel), self.kernel_quantizer)
            x = ops.matmul(inputs, kernel)
            if self.bias is not None:
                x = ops.add(x, self.bias)
            if self.activation is not None:
                x = self.activation(x)
            return x

    def einsum_kernel_axis(equation: str) -> int:
        """The output-channel axis of an EinsumDense kernel: its last letter kept in the output."""
        operands, output = equation.replace(" ", "").split("->")
        kernel = operands.split(",")[1]
        kept = [i for i, c in enumerate(kernel) if c in output]
        if not kept:
            raise ValueError(f"EinsumDense equation {equation!r}: no kernel axis appears in the output")
        return kept[-1]

    @_register
    class QuantizedEinsumDense(_Quantized, keras.layers.EinsumDense):
        def build(self, input_shape):
            super().build(input_shape)
            axis = einsum_kernel_axis(self.equation)
            self.kernel_quantizer = _weight_quantizer(self.weight_quantization, axis, "kernel_quantizer")
            self.kernel_quantizer.build(tuple(self.kernel.shape))

        def _qcall(self, inputs, training=None):
            kernel = self._quantize_kernel(ops.convert_to_tensor(self.kernel), self.kernel_quantizer)
            x = ops.einsum(self.equation, inputs, kernel)
            if self.bias is not None:
                x = ops.add(x, self.bias)
            if self.activation is not None:
                x = self.activation(x)
            return x

    QUANTIZED_LAYERS = {
        keras.layers.Conv1D: QuantizedConv1D,
        keras.layers.Conv2D: QuantizedConv2D,
        keras.layers.Conv3D: QuantizedConv3D,
        keras.layers.Conv2DTranspose: QuantizedConv2DTranspose,
        keras.layers.Conv3DTranspose: QuantizedConv3DTranspose,
        keras.layers.DepthwiseConv1D: QuantizedDepthwiseConv1D,
        keras.layers.DepthwiseConv2D: QuantizedDepthwiseConv2D,
        keras.layers.SeparableConv1D: QuantizedSeparableConv1D,
        keras.layers.SeparableConv2D: QuantizedSeparableConv2D,
        keras.layers.Dense: QuantizedDense,
        keras.layers.EinsumDense: QuantizedEinsumDense,
    }

#: The wrapper classes (values of QUANTIZED_LAYERS).
WRAPPER_CLASSES = tuple(QUANTIZED_LAYERS.values())
