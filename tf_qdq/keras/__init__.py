"""Keras quantization-aware training with the plugin's QDQ op.

- `QuantizeDequantize`: the layer (tf_qdq/keras/layer.py; ranges, range modes,
  tf.distribute, serialization).
- `quantize_model(model, recipe)`: a copy of a Functional or Sequential model with
  QuantizeDequantize layers and quantized weighted layers where the recipe places
  them (`RECIPES`: "tensorrt", "onnxruntime"). See docs/qat.md.
- `calibrate(qmodel, data, method)`: sets every activation range from data.

Keras 3 with the TensorFlow backend, or Keras 2 (tf_keras) when
`TF_USE_LEGACY_KERAS=1` is set before this package is imported (`LEGACY_KERAS`).
The layers are registered under the package name "tf_qdq" for `.keras` files:
import tf_qdq.keras before `load_model`.
"""

from tf_qdq.keras.calibrate import CALIBRATION_METHODS, calibrate
from tf_qdq.keras.layer import LEGACY_KERAS, RANGE_MODES, QuantizeDequantize, RangeValue, keras
from tf_qdq.keras.quantize import quantize_model, quantizers
from tf_qdq.keras.recipes import RECIPES, Recipe
from tf_qdq.keras.wrappers import QUANTIZED_LAYERS

__all__ = [
    "CALIBRATION_METHODS",
    "LEGACY_KERAS",
    "QUANTIZED_LAYERS",
    "QuantizeDequantize",
    "RANGE_MODES",
    "RECIPES",
    "RangeValue",
    "Recipe",
    "calibrate",
    "keras",
    "quantize_model",
    "quantizers",
]
