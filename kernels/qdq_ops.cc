// Op registrations and shape functions of the TfQdq>QuantizeAndDequantize*
// family (docs/semantics.md#ops). The kernels live in qdq_kernels.cc.
#include <limits>

#include "kernels/qdq_op_table.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tf_qdq {
namespace {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// Checks shared by V2/V3/V4 (min/max at input indices min_index and
// min_index + 1) and V4Grad; returns the merged min/max shape.
Status MinMaxAndAxisShape(InferenceContext* c, int data_index, int min_index, ShapeHandle* minmax) {
  int axis;
  TF_RETURN_IF_ERROR(c->GetAttr("axis", &axis));
  const int minmax_rank = (axis == -1) ? 0 : 1;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(min_index), minmax_rank, minmax));
  TF_RETURN_IF_ERROR(c->Merge(c->input(min_index + 1), *minmax, minmax));
  if (axis < -1) {
    return tensorflow::errors::InvalidArgument("axis should be at least -1, got ", axis);
  }
  if (axis != -1) {
    if (axis >= std::numeric_limits<int32_t>::max()) {
      return tensorflow::errors::InvalidArgument("Axis cannot be >= kint32max value, got ", axis);
    }
    ShapeHandle input;
    TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(data_index), axis + 1, &input));
    DimensionHandle depth;
    TF_RETURN_IF_ERROR(c->Merge(c->Dim(*minmax, 0), c->Dim(input, axis), &depth));
  }
  return Status();
}

Status ForwardShape(InferenceContext* c) {
  ShapeHandle minmax;
  TF_RETURN_IF_ERROR(MinMaxAndAxisShape(c, 0, 1, &minmax));
  c->set_output(0, c->input(0));
  return Status();
}

Status ForwardV3Shape(InferenceContext* c) {
  TF_RETURN_IF_ERROR(ForwardShape(c));
  ShapeHandle unused;
  return c->WithRank(c->input(3), 0, &unused);
}

Status GradShape(InferenceContext* c) {
  ShapeHandle minmax;
  TF_RETURN_IF_ERROR(MinMaxAndAxisShape(c, 1, 2, &minmax));
  ShapeHandle inputs;
  TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &inputs));
  c->set_output(0, inputs);
  c->set_output(1, minmax);
  c->set_output(2, minmax);
  return Status();
}

// ---- Registration ------------------------------------------------------------
//
// The ops of the table (qdq_op_table.h), each registered under its name there.

using OpBuilder = ::tensorflow::register_op::OpDefBuilderWrapper;

template <typename F>
bool RegisterOp(OpKind kind, const F& define) {
  OpBuilder builder(GetOp(kind).name);
  define(builder);
  builder();  // hands the definition to TensorFlow's op registry
  return true;
}

// The signature of V2 and V4 (they differ only in their gradients).
OpBuilder& V2Signature(OpBuilder& b) {
  return b.Input("input: T")
      .Input("input_min: T")
      .Input("input_max: T")
      .Attr("signed_input: bool = true")
      .Attr("num_bits: int = 8")
      .Attr("range_given: bool = false")
      .Output("output: T")
      .Attr("T: {bfloat16, half, float, double}")
      .Attr("round_mode: {'HALF_TO_EVEN', 'HALF_UP'} = 'HALF_TO_EVEN'")
      .Attr("narrow_range: bool = false")
      .Attr("axis: int = -1")
      .SetShapeFn(ForwardShape);
}

[[maybe_unused]] const bool v1_registered = RegisterOp(OpKind::kV1, [](OpBuilder& b) {
  b.Input("input: T")
      .Attr("signed_input: bool = true")
      .Attr("num_bits: int = 8")
      .Attr("range_given: bool = false")
      .Attr("input_min: float = 0")
      .Attr("input_max: float = 0")
      .Output("output: T")
      .Attr("T: {bfloat16, half, float, double}")
      .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
      .Doc("Quantizes then dequantizes a tensor (V1: range from float attrs).");
});

[[maybe_unused]] const bool v2_registered = RegisterOp(OpKind::kV2, [](OpBuilder& b) {
  V2Signature(b).Doc("Quantizes then dequantizes a tensor; gradient is straight-through.");
});

[[maybe_unused]] const bool v3_registered = RegisterOp(OpKind::kV3, [](OpBuilder& b) {
  b.Input("input: T")
      .Input("input_min: T")
      .Input("input_max: T")
      .Input("num_bits: int32")
      .Attr("signed_input: bool = true")
      .Attr("range_given: bool = true")
      .Output("output: T")
      .Attr("T: {bfloat16, half, float, double}")
      .Attr("narrow_range: bool = false")
      .Attr("axis: int = -1")
      .SetShapeFn(ForwardV3Shape)
      .Doc("As V2 with num_bits a tensor; always rounds HALF_TO_EVEN.");
});

[[maybe_unused]] const bool v4_registered = RegisterOp(OpKind::kV4, [](OpBuilder& b) {
  V2Signature(b).Doc("V2's forward; gradient through QuantizeAndDequantizeV4Grad.");
});

[[maybe_unused]] const bool v4_grad_registered = RegisterOp(OpKind::kV4Grad, [](OpBuilder& b) {
  b.Input("gradients: T")
      .Input("input: T")
      .Input("input_min: T")
      .Input("input_max: T")
      .Output("input_backprop: T")
      .Output("input_min_backprop: T")
      .Output("input_max_backprop: T")
      .Attr("T: {bfloat16, half, float, double}")
      .Attr("axis: int = -1")
      .SetShapeFn(GradShape)
      .Doc("Gradient of QuantizeAndDequantizeV4: passes where min <= input <= max.");
});

}  // namespace
}  // namespace tf_qdq

// The TensorFlow version this library was compiled against (the build passes
// -DTF_QDQ_TF_VERSION="x.y.z"; the pip headers do not define it), as a marker
// that the Python loader reads from the file before loading it: a library
// built against another TensorFlow fails to load with unresolved symbols, so
// the check cannot call into it.
#ifndef TF_QDQ_TF_VERSION
#define TF_QDQ_TF_VERSION "unknown"
#endif
extern "C" {
__attribute__((used)) const char tf_qdq_built_against[] =
    "TF_QDQ_BUILT_AGAINST_TF=" TF_QDQ_TF_VERSION ";";
}
