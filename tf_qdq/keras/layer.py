"""Keras layer for quantization-aware training with the plugin's QDQ op.

    import tf_qdq.keras
    x = tf_qdq.keras.QuantizeDequantize(range_mode="moving_average")(x)          # activations
    w = tf_qdq.keras.QuantizeDequantize(axis=-1, narrow_range=True,
                                         range_mode="last")(kernel)                # weights

The range lives in two non-trainable variables, `min` and `max` (scalars, or one
value per channel along `axis`), and the op runs with `range_given=True`
(`tf_qdq.quantize_and_dequantize_v2`, the V4 op: the gradient is passed through
inside the range and zero outside). With `range_mode` other than "fixed", every
training call first updates the range from the batch's absolute maximum, symmetric
(`[-amax, amax]`, or `[0, amax]` when `signed=False`), as the NVIDIA TensorFlow
quantization toolkit and tfmot's quantizers do:

- "fixed": the range given by `init_range`, never updated;
- "max": the largest absolute value seen over all training batches;
- "moving_average": an exponential moving average of the batches' absolute
  maxima, `momentum * old + (1 - momentum) * batch` (the first batch, or a channel
  still at 0, takes the batch value);
- "last": the last training batch's absolute maximum (for weights: the range of
  the current kernel).

At inference the stored range is used. `update_range(x)` applies one update by
hand (calibration, or refreshing a weight range after the last optimizer step).

Under tf.distribute (MirroredStrategy, MultiWorkerMirroredStrategy) the batch
statistic is that of the global batch: each replica's absolute maximum is
gathered from all replicas and workers (`ReplicaContext.all_gather`) and the
maximum taken, so every replica applies the same update and all of them hold
the range that training on one device with the same global batches gives.
The variables are ON_WRITE mirrored with aggregation ONLY_FIRST_REPLICA:
an update is broadcast from the first replica, so the copies cannot drift,
and checkpoints, `.keras` files and SavedModels hold that one range.
ParameterServerStrategy has no global batch (workers step asynchronously):
building a range-tracking layer under it raises an error naming the
alternatives. See docs/keras.md.

Keras 3 with the TensorFlow backend, or Keras 2 (tf_keras) when
`TF_USE_LEGACY_KERAS=1` is set before this module is imported, as for
`tf.keras`. The layer is registered as `tf_qdq>QuantizeDequantize` for `.keras`
files: import tf_qdq.keras before `load_model`. Models export with
`model.export()` (Keras 3) or `tf.saved_model.save`; lower the result with
`tf_qdq.export.lower_saved_model` for tf2onnx and TensorRT.
"""

import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

import tf_qdq

#: True when this module is built on Keras 2 (tf_keras), selected like tf.keras
#: by the environment variable TF_USE_LEGACY_KERAS.
LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS", None) in ("true", "True", "1")

if LEGACY_KERAS:
    try:
        import tf_keras as keras
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError(
            "TF_USE_LEGACY_KERAS is set but tf_keras is not installed: "
            "pip install tf_keras (or unset TF_USE_LEGACY_KERAS for Keras 3)"
        ) from e
else:
    import keras

RANGE_MODES = ("fixed", "max", "moving_average", "last")

RangeValue = Union[float, Sequence[float], np.ndarray, None]


def _check_backend() -> None:
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"tf_qdq.keras needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow."
        )


def _check_strategy(range_mode: str) -> None:
    """Refuses strategies where a range cannot be kept global."""
    strategy = tf.distribute.get_strategy()
    if "ParameterServerStrategy" in type(strategy).__name__ and range_mode != "fixed":
        raise ValueError(
            f"QuantizeDequantize(range_mode={range_mode!r}) cannot track its range under "
            f"{type(strategy).__name__}: its workers train asynchronously on their own batches "
            f"and update variables on the parameter servers, so there is no global batch whose "
            f"absolute maximum all workers could agree on. Use MultiWorkerMirroredStrategy "
            f"(synchronous, one range for the global batch) or MirroredStrategy, or calibrate "
            f"the ranges first (update_range outside the strategy) and train with "
            f"range_mode='fixed' and init_range=<the calibrated values>."
        )


def _tf_variable(var: Any) -> tf.Variable:
    """The tf.Variable behind a layer variable (a MirroredVariable under a strategy)."""
    return var if isinstance(var, tf.Variable) else var.value


def _global_max(value: tf.Tensor) -> tf.Tensor:
    """The element-wise maximum of `value` over all replicas and workers in sync.

    tf.distribute.ReduceOp has SUM and MEAN only, so the per-replica values are
    gathered along a new leading axis (one row per replica) and reduced with
    max: exact, and the same result on every replica."""
    ctx = tf.distribute.get_replica_context()
    if ctx is not None:
        if ctx.num_replicas_in_sync == 1:
            return value
        return tf.reduce_max(ctx.all_gather(value[tf.newaxis], axis=0), axis=0)
    # Cross-replica context (inside strategy.scope(), outside strategy.run): the
    # value is this worker's; under MultiWorkerMirroredStrategy other workers may
    # hold other values, so reduce over the replicas of all workers as well.
    strategy = tf.distribute.get_strategy()
    if strategy.num_replicas_in_sync == 1:
        return value
    per_replica = strategy.run(_global_max, args=(value,))
    return strategy.experimental_local_results(per_replica)[0]


@keras.saving.register_keras_serializable(package="tf_qdq")
class QuantizeDequantize(keras.layers.Layer):
    """Quantizes then dequantizes its input, per tensor or per channel.

    Args:
      num_bits: bits of the integer grid (1..61 signed, 1..62 unsigned; tf2onnx
        and TensorRT support 8 only).
      axis: None for one range for the whole tensor, or the channel axis (e.g.
        -1 for a Conv2D/Dense kernel's output channels) for one range per channel.
      narrow_range: signed grid [-2^(n-1)+1, 2^(n-1)-1] (TensorRT's weight
        convention) instead of [-2^(n-1), 2^(n-1)-1].
      signed: signed grid and range [-amax, amax]; False for [0, 2^n-1] and
        [0, amax] (e.g. after a ReLU).
      range_mode: "fixed", "max", "moving_average" or "last" (see the module doc).
      init_range: initial absolute maximum a, for the range [-a, a] ([0, a] when
        unsigned): a number, or per channel a list of one value per channel.
        None starts at 0 (to be tracked). Required for "fixed".
      momentum: decay of the moving average.
      round_mode: "HALF_TO_EVEN" (default, the only mode that lowers to built-in
        ops per channel) or "HALF_UP".
    """

    def __init__(
        self,
        num_bits: int = 8,
        axis: Optional[int] = None,
        narrow_range: bool = False,
        signed: bool = True,
        range_mode: str = "max",
        init_range: RangeValue = None,
        momentum: float = 0.99,
        round_mode: str = "HALF_TO_EVEN",
        **kwargs: Any,
    ) -> None:
        _check_backend()
        super().__init__(**kwargs)
        if range_mode not in RANGE_MODES:
            raise ValueError(f"range_mode must be one of {RANGE_MODES}, got {range_mode!r}")
        if range_mode == "fixed" and init_range is None:
            raise ValueError(
                "range_mode='fixed' needs init_range (a number a for the range [-a, a], or one such value per channel)"
            )
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if round_mode not in ("HALF_TO_EVEN", "HALF_UP"):
            raise ValueError(f"round_mode must be 'HALF_TO_EVEN' or 'HALF_UP', got {round_mode!r}")
        self.num_bits = int(num_bits)
        self.axis = None if axis is None else int(axis)
        self.narrow_range = bool(narrow_range)
        self.signed = bool(signed)
        self.range_mode = range_mode
        self.init_range = _plain(init_range)
        self.momentum = float(momentum)
        self.round_mode = round_mode
        self._channel_axis = None
        self.supports_masking = True

    # ------------------------------------------------------------------ building

    def build(self, input_shape: Any) -> None:
        _check_strategy(self.range_mode)
        shape: Tuple[int, ...] = ()
        if self.axis is not None:
            input_shape = tf.TensorShape(input_shape)  # from a tuple, list or TensorShape
            if input_shape.rank is None:
                raise ValueError(
                    f"a per-channel range (axis={self.axis}) needs inputs of known rank, got shape {input_shape}"
                )
            input_shape = tuple(input_shape.as_list())
            rank = len(input_shape)
            axis = self.axis + rank if self.axis < 0 else self.axis
            if not 0 <= axis < rank:
                raise ValueError(f"axis {self.axis} is out of range for inputs of rank {rank}")
            if input_shape[axis] is None:
                raise ValueError(
                    f"the channel dimension (axis {self.axis}) of the input must be "
                    f"known, got shape {tuple(input_shape)}"
                )
            self._channel_axis = axis
            shape = (int(input_shape[axis]),)
        lo, hi = self._initial_range(shape)
        self.min = self._range_variable("min", shape, lo)
        self.max = self._range_variable("max", shape, hi)
        if LEGACY_KERAS:
            super().build(input_shape)

    def _range_variable(self, name: str, shape: Tuple[int, ...], value: np.ndarray):
        # float32 whatever the dtype policy (no autocast): call() casts them to
        # the input's dtype. ON_WRITE (the default synchronization) mirrored with
        # aggregation ONLY_FIRST_REPLICA: an assignment in a replica context is
        # broadcast from the first replica to all copies. update_range makes all
        # replicas compute the same value anyway (from the global batch), so
        # nothing is lost, and the copies stay identical even if code elsewhere
        # assigns replica-local values; NONE would let each replica keep its own.
        init = keras.initializers.Constant(value)
        if LEGACY_KERAS:
            return self.add_weight(
                name=name,
                shape=shape,
                dtype="float32",
                initializer=init,
                trainable=False,
                experimental_autocast=False,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        return self.add_weight(
            name=name,
            shape=shape,
            dtype="float32",
            initializer=init,
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
        )

    def _initial_range(self, shape: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
        hi = np.zeros(shape, np.float32)
        if self.init_range is not None:
            amax = np.asarray(self.init_range, np.float32)
            if amax.ndim > 1 or (amax.ndim == 1 and amax.shape != tuple(shape)):
                raise ValueError(
                    f"init_range must be a number or one value per channel "
                    f"(shape {tuple(shape)}), got shape {amax.shape}"
                )
            if np.any(~(amax >= 0)):
                raise ValueError(f"init_range must be >= 0 (an absolute maximum), got {amax}")
            hi = np.broadcast_to(amax, shape).copy()
        return (-hi if self.signed else np.zeros_like(hi)), hi

    # ------------------------------------------------------------------ calling

    def _batch_amax(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.cast(tf.stop_gradient(x), tf.float32)
        if not self.signed:
            x = tf.maximum(x, 0.0)
        axes = None
        if self._channel_axis is not None:
            axes = [i for i in range(x.shape.rank) if i != self._channel_axis]
        return tf.reduce_max(tf.abs(x), axis=axes)

    def update_range(self, x: Any) -> None:
        """Updates min/max from tensor `x` as one training call would (no-op for 'fixed').

        Under tf.distribute the statistic is that of the global batch: in a
        replica context (strategy.run, fit) the maximum over all replicas' `x`;
        elsewhere (in or out of the strategy's scope) the maximum over the
        workers' `x`. Under MultiWorkerMirroredStrategy every worker must call
        it (it is a collective step), as for any training step."""
        if self.range_mode == "fixed":
            return
        x = tf.convert_to_tensor(x)
        if not self.built:
            self.build(tuple(x.shape))
        strategy = getattr(_tf_variable(self.max), "distribute_strategy", None)
        if strategy is not None and not tf.distribute.has_strategy():
            # Called outside the scope of the strategy the variables belong to
            # (e.g. calibration after training): enter it so the workers agree.
            with strategy.scope():
                return self._update_range(x)
        return self._update_range(x)

    def _update_range(self, x: tf.Tensor) -> None:
        batch = _global_max(self._batch_amax(x))
        old = tf.convert_to_tensor(self.max)
        if self.range_mode == "max":
            amax = tf.maximum(old, batch)
        elif self.range_mode == "moving_average":
            ema = self.momentum * old + (1.0 - self.momentum) * batch
            amax = tf.where(tf.equal(old, 0.0), batch, ema)
        else:
            amax = batch
        self.max.assign(amax)
        self.min.assign(-amax if self.signed else tf.zeros_like(amax))

    def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
        observer = getattr(self, "_tf_qdq_observer", None)
        if observer is not None:
            # Calibration (tf_qdq.keras.calibrate): record the float input, pass it on.
            observer(inputs)
            return inputs
        if self.range_mode != "fixed" and training is not None:
            if tf.is_tensor(training) and tf.get_static_value(training) is None:
                # A symbolic learning phase (Keras 2 graphs): update inside a cond.
                def update():
                    self.update_range(inputs)
                    return tf.constant(True)

                tf.cond(tf.cast(training, tf.bool), update, lambda: tf.constant(False))
            elif bool(tf.get_static_value(training) if tf.is_tensor(training) else training):
                self.update_range(inputs)
        dtype = inputs.dtype
        return tf_qdq.quantize_and_dequantize_v2(
            inputs,
            tf.cast(self.min, dtype),
            tf.cast(self.max, dtype),
            signed_input=self.signed,
            num_bits=self.num_bits,
            range_given=True,
            round_mode=self.round_mode,
            narrow_range=self.narrow_range,
            axis=self._channel_axis,
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            num_bits=self.num_bits,
            axis=self.axis,
            narrow_range=self.narrow_range,
            signed=self.signed,
            range_mode=self.range_mode,
            init_range=self.init_range,
            momentum=self.momentum,
            round_mode=self.round_mode,
        )
        return config


def _plain(value: RangeValue) -> Union[None, float, list]:
    """init_range as JSON-serializable Python values."""
    if value is None:
        return None
    arr = np.asarray(value)
    return arr.tolist() if arr.ndim else float(arr)


__all__ = ["QuantizeDequantize", "RANGE_MODES", "LEGACY_KERAS"]
