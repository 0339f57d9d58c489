// The attribute reading and validation shared by the OpKernels and the XLA kernels
// (qdq_validate.h). The texts are part of the contract (docs/semantics.md#validation,
// docs/semantics.md#bad-inputs): where TensorFlow's kernel has a message for the
// same input, the text is TensorFlow's, byte for byte.
#include "kernels/qdq_validate.h"

#include <cstdint>
#include <string>

#include "kernels/qdq_math.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/errors.h"

namespace tf_qdq {
namespace {

using ::tensorflow::Status;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::errors::InvalidArgument;

bool NumBitsOk(int64_t num_bits, bool signed_input) {
  return num_bits > 0 && num_bits < (signed_input ? 62 : 63);
}

// num_bits of V1, V2 and V4 (TensorFlow's text).
Status CheckNumBits(int64_t num_bits, bool signed_input) {
  if (!NumBitsOk(num_bits, signed_input)) {
    return InvalidArgument("num_bits is out of range: ", num_bits, " with signed_input_ ",
                           signed_input);
  }
  return Status();
}

// Channels along a valid axis (1 for -1; the caller has checked -1 <= axis < dims).
int64_t Depth(int64_t axis, const TensorShape& input) {
  return axis == -1 ? 1 : input.dim_size(axis);
}

// Whether the caller's axis checks have passed.
bool AxisChecked(int64_t axis, const TensorShape& input) {
  return axis >= -1 && axis < input.dims();
}

Status AxisNotChecked(int64_t axis, const TensorShape& input) {
  return tensorflow::errors::Internal("tf_qdq: range shapes validated before the axis ", axis,
                                      " (input ", input.DebugString(), ")");
}

template <typename T>
Status CheckRangeValues(int64_t axis, const Tensor& mn, const Tensor& mx) {
  using C = typename ComputeType<T>::type;  // numbers print as their compute type
  auto lo = mn.flat<T>();
  auto hi = mx.flat<T>();
  const int64_t n = mn.NumElements();
  for (int64_t c = 0; c < n; ++c) {
    const C l = static_cast<C>(lo(c)), h = static_cast<C>(hi(c));
    if (!(l <= h)) {
      if (axis == -1) {
        return InvalidArgument("Invalid range: input_min ", l, " > input_max ", h);
      }
      return InvalidArgument("Invalid range: input_min ", l, " > input_max ", h, " for channel ", c,
                             " along axis ", axis, ". Every channel needs input_min <= input_max.");
    }
  }
  return Status();
}

}  // namespace

Status ReadAttrs(tensorflow::OpKernelConstruction* ctx, QdqAttrs* attrs) {
  const OpInfo* op = FindOp(ctx->def().op().c_str());
  if (op == nullptr) {
    return tensorflow::errors::Internal("tf_qdq: no entry in the op table for ", ctx->def().op());
  }
  QdqAttrs a;
  const unsigned has = op->attrs;
  std::string round_mode = "HALF_TO_EVEN";
  if (has & kSignedInputAttr) TF_RETURN_IF_ERROR(ctx->GetAttr("signed_input", &a.signed_input));
  if (has & kNumBitsAttr) TF_RETURN_IF_ERROR(ctx->GetAttr("num_bits", &a.num_bits));
  if (has & kRangeGivenAttr) TF_RETURN_IF_ERROR(ctx->GetAttr("range_given", &a.range_given));
  if (has & kFloatRangeAttrs) {
    TF_RETURN_IF_ERROR(ctx->GetAttr("input_min", &a.input_min));
    TF_RETURN_IF_ERROR(ctx->GetAttr("input_max", &a.input_max));
  }
  if (has & kNarrowRangeAttr) TF_RETURN_IF_ERROR(ctx->GetAttr("narrow_range", &a.narrow_range));
  if (has & kAxisAttr) TF_RETURN_IF_ERROR(ctx->GetAttr("axis", &a.axis));
  if (has & kRoundModeAttr) {
    TF_RETURN_IF_ERROR(ctx->GetAttr("round_mode", &round_mode));
    if (round_mode != "HALF_TO_EVEN" && round_mode != "HALF_UP") {
      return InvalidArgument("Round mode string must be 'HALF_UP' or 'HALF_TO_EVEN', is '",
                             round_mode, "'");
    }
    a.half_up = round_mode == "HALF_UP";
  }
  if (has & kNumBitsAttr) TF_RETURN_IF_ERROR(CheckNumBits(a.num_bits, a.signed_input));
  if ((has & kFloatRangeAttrs) && a.range_given && !(a.input_min <= a.input_max)) {
    return InvalidArgument("Invalid range: input_min ", a.input_min, " > input_max ", a.input_max);
  }
  *attrs = a;
  return Status();
}

Status ValidateV2Shapes(int64_t axis, const TensorShape& input, bool range_given,
                        const TensorShape& input_min, const TensorShape& input_max) {
  if (axis < -1) {
    return InvalidArgument("Axis must be at least -1. Found ", axis);
  }
  if (axis != -1 && axis >= input.dims()) {
    return InvalidArgument("Shape must be at least rank ", axis + 1, " but is rank ", input.dims());
  }
  if (!range_given) return Status();
  return ValidateGivenRangeShapes(axis, input, input_min, input_max);
}

Status ValidateV3Shapes(int64_t axis, const TensorShape& input, const TensorShape& num_bits) {
  const int64_t dims = input.dims();
  if (!(axis >= -dims && axis < dims)) {
    return InvalidArgument("Axis requested is larger than input dimensions. Axis: ", axis,
                           " Input Dimensions: ", dims);
  }
  // TensorFlow aborts the process here (docs/semantics.md#diff-abort-inputs).
  if (axis < -1) {
    return InvalidArgument("Axis must be -1 (per-tensor) or in [0, ", dims, ") (per-channel), got ",
                           axis, ". Count a per-channel axis from the front: use ", axis + dims,
                           ".");
  }
  if (!TensorShapeUtils::IsScalar(num_bits)) {
    return InvalidArgument(
        "Invalid shape. The `num_bits` tensor should be a scalar. Got dimensions: ",
        num_bits.dims());
  }
  return Status();
}

Status ValidateV3NumBits(int64_t num_bits, bool signed_input) {
  if (!NumBitsOk(num_bits, signed_input)) {
    return InvalidArgument("num_bits is out of range: ", num_bits, " with `signed_input_` ",
                           signed_input);
  }
  return Status();
}

Status ValidateGivenRangeShapes(int64_t axis, const TensorShape& input,
                                const TensorShape& input_min, const TensorShape& input_max) {
  if (!AxisChecked(axis, input)) return AxisNotChecked(axis, input);
  if (axis == -1) {
    if (!TensorShapeUtils::IsScalar(input_min)) {
      return InvalidArgument("input_min must be a scalar.");  // TensorFlow's text
    }
    if (!TensorShapeUtils::IsScalar(input_max)) {
      return InvalidArgument("input_max must be a scalar.");
    }
    return Status();
  }
  const int64_t depth = Depth(axis, input);
  const char* names[2] = {"input_min", "input_max"};
  const TensorShape* shapes[2] = {&input_min, &input_max};
  for (int k = 0; k < 2; ++k) {
    if (shapes[k]->dims() != 1) {
      return InvalidArgument(
          "Shape must be rank 1 for ", names[k], "_tensor when the axis is specified: got shape ",
          shapes[k]->DebugString(), ", expected [", depth, "] (one value per channel along axis ",
          axis, " of the input ", input.DebugString(), ")");
    }
    if (shapes[k]->dim_size(0) != depth) {
      return InvalidArgument(names[k], "_tensor has incorrect size, was ", shapes[k]->dim_size(0),
                             " expected ", depth, " to match dim ", axis, " of the input ",
                             shapes[k]->DebugString());
    }
  }
  return Status();
}

Status ValidateV4GradShapes(int64_t axis, const TensorShape& gradient, const TensorShape& input,
                            const TensorShape& input_min, const TensorShape& input_max) {
  if (!input.IsSameSize(gradient)) {
    return InvalidArgument("gradient and input must be the same size");
  }
  if (axis < -1) {
    return InvalidArgument("Axis must be at least -1. Found ", axis);
  }
  if (axis != -1 && axis >= input.dims()) {
    return InvalidArgument("Axis should be -1 or 0 or a positive value less than ", input.dims(),
                           "but given axis value was ", axis);
  }
  if (input_min.dims() != 0 && input_min.dims() != 1) {
    return InvalidArgument("Input min tensor must have dimension 0 or 1. Received ",
                           input_min.dims(), ".");
  }
  if (input_max.dims() != 0 && input_max.dims() != 1) {
    return InvalidArgument("Input max tensor must have dimension 0 or 1. Received ",
                           input_max.dims(), ".");
  }
  if (axis == -1) {
    if (input_min.dims() != 0) {
      return InvalidArgument("input_min must be a scalar if axis is unspecified");
    }
    if (input_max.dims() != 0) {
      return InvalidArgument("input_max must be a scalar if axis is unspecified");
    }
    return Status();
  }
  const int64_t depth = Depth(axis, input);
  if (input_min.dims() != 1) {
    return InvalidArgument(
        "Shape must be rank 1 for input_min_tensor when the axis is specified: got shape ",
        input_min.DebugString(), ", expected [", depth, "]");
  }
  if (input_max.dims() != 1) {
    return InvalidArgument(
        "Shape must be rank 1 for input_max_tensor when the axis is specified: got shape ",
        input_max.DebugString(), ", expected [", depth, "]");
  }
  if (input_min.dim_size(0) != depth) {
    return InvalidArgument("min has incorrect size, expected ", depth, " was ",
                           input_min.dim_size(0));
  }
  if (input_max.dim_size(0) != depth) {
    return InvalidArgument("max has incorrect size, expected ", depth, " was ",
                           input_max.dim_size(0));
  }
  return Status();
}

Status ValidateGivenRangeValues(int64_t axis, const Tensor& input_min, const Tensor& input_max) {
  if (input_min.dtype() != input_max.dtype() ||
      input_min.NumElements() != input_max.NumElements()) {
    return tensorflow::errors::Internal("tf_qdq: range values validated before their shapes");
  }
  switch (input_min.dtype()) {
    case tensorflow::DT_BFLOAT16:
      return CheckRangeValues<Eigen::bfloat16>(axis, input_min, input_max);
    case tensorflow::DT_HALF:
      return CheckRangeValues<Eigen::half>(axis, input_min, input_max);
    case tensorflow::DT_FLOAT:
      return CheckRangeValues<float>(axis, input_min, input_max);
    case tensorflow::DT_DOUBLE:
      return CheckRangeValues<double>(axis, input_min, input_max);
    default:
      return InvalidArgument("input_min and input_max must be bfloat16, float16, float32 or ",
                             "float64, got ", tensorflow::DataTypeString(input_min.dtype()));
  }
}

}  // namespace tf_qdq
