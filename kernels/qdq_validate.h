// Attribute reading and validation of the TfQdq>QuantizeAndDequantize* family
// (docs/semantics.md#validation, docs/semantics.md#bad-inputs), shared by the OpKernels
// (qdq_kernels.cc) and the XLA kernels (qdq_xla.cc), so that both reject the same inputs with the
// same InvalidArgument texts, checked in the same order (the first failing check decides the
// message).
//
// The checks work on attribute values and TensorShapes only: the OpKernels pass
// their tensors' shapes, the XLA kernels the shapes known at compile time.
// Nothing here calls dim_size() on a dimension it has not checked, so no input
// reaches a TensorFlow CHECK; a kernel reads a tensor's values (scalar<T>(),
// vec<T>(), flat<T>()) only after the shape checks before it have passed.
#ifndef TF_QDQ_KERNELS_QDQ_VALIDATE_H_
#define TF_QDQ_KERNELS_QDQ_VALIDATE_H_

#include <cstdint>

#include "kernels/qdq_op_table.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/status.h"

namespace tensorflow {
class OpKernelConstruction;
class Tensor;
}  // namespace tensorflow

namespace tf_qdq {

// ---- Attributes (kernel construction) ---------------------------------------

// The attributes of one op instance, read once at construction by the
// OpKernels and the XLA kernels alike. An attribute the op does not have
// keeps its default here (V1: axis -1, no narrow range, HALF_TO_EVEN).
struct QdqAttrs {
  bool signed_input = true;
  int num_bits = 8;  // V3: from its num_bits input at run time instead
  bool range_given = false;
  float input_min = 0;  // V1's range attributes
  float input_max = 0;
  bool half_up = false;  // round_mode == "HALF_UP"
  bool narrow_range = false;
  int axis = -1;
};

// Reads the attributes that ctx's op has (OpInfo::attrs of the op table),
// then checks them: round_mode, num_bits, then (V1 with range_given)
// input_min <= input_max of the float attributes.
tensorflow::Status ReadAttrs(tensorflow::OpKernelConstruction* ctx, QdqAttrs* attrs);

// ---- Shapes (run time, or compile time under XLA) ---------------------------

// V2 and V4: the axis against the input's rank, then, with range_given, the
// shapes of input_min and input_max (ValidateGivenRangeShapes).
tensorflow::Status ValidateV2Shapes(int64_t axis, const tensorflow::TensorShape& input,
                                    bool range_given, const tensorflow::TensorShape& input_min,
                                    const tensorflow::TensorShape& input_max);

// V3, before num_bits is read: the axis (-dims <= axis < dims, then axis >= -1),
// then the num_bits tensor's shape (a scalar).
tensorflow::Status ValidateV3Shapes(int64_t axis, const tensorflow::TensorShape& input,
                                    const tensorflow::TensorShape& num_bits);

// V3, once num_bits is read: its range (the message writes `signed_input_` in
// backticks, as TensorFlow's V3 kernel does).
tensorflow::Status ValidateV3NumBits(int64_t num_bits, bool signed_input);

// A given range's shapes: scalars when axis == -1, else rank 1 with one value
// per channel along `axis` of the input. The axis must have passed the op's
// axis checks (-1 <= axis < input.dims()).
tensorflow::Status ValidateGivenRangeShapes(int64_t axis, const tensorflow::TensorShape& input,
                                            const tensorflow::TensorShape& input_min,
                                            const tensorflow::TensorShape& input_max);

// V4Grad: gradient and input of one shape, the axis, then input_min and
// input_max of rank 0 or 1 (scalars when axis == -1, one value per channel
// otherwise).
tensorflow::Status ValidateV4GradShapes(int64_t axis, const tensorflow::TensorShape& gradient,
                                        const tensorflow::TensorShape& input,
                                        const tensorflow::TensorShape& input_min,
                                        const tensorflow::TensorShape& input_max);

// ---- Values -----------------------------------------------------------------

// A given range's values, input_min <= input_max in every channel (a NaN bound
// fails), once ValidateGivenRangeShapes has passed. input_min and input_max
// hold the op's T (bfloat16, half, float or double) in host memory; the
// numbers print as T's compute type (float, or double for double).
tensorflow::Status ValidateGivenRangeValues(int64_t axis, const tensorflow::Tensor& input_min,
                                            const tensorflow::Tensor& input_max);

}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_VALIDATE_H_
