// OpKernels of the TfQdq>QuantizeAndDequantize* family: attribute and input
// validation (docs/semantics.md#validation, through qdq_validate.h, shared with the
// XLA kernels), output allocation, the call into the device functors of
// qdq_kernels.h, and their CPU and GPU registration for every op of the op
// table (qdq_op_table.h). Every check runs before any access that TensorFlow would CHECK
// (dim_size, scalar<T>, vec<T>), so no input aborts.
#define EIGEN_USE_THREADS

#include "kernels/qdq_kernels.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "kernels/qdq_math.h"
#include "kernels/qdq_op_table.h"
#include "kernels/qdq_validate.h"
#include "tensorflow/core/framework/kernel_def_builder.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/register_types.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tf_qdq {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using CPUDevice = Eigen::ThreadPoolDevice;

// The [outer, depth, inner] view of `shape` around `axis` (-1: per-tensor).
// The caller has checked -1 <= axis < dims.
View MakeView(const TensorShape& shape, int64_t axis) {
  View v;
  if (axis == -1) {
    v.inner = shape.num_elements();
    return v;
  }
  v.depth = shape.dim_size(axis);
  if (shape.num_elements() == 0) {
    // Only the product of *all* dims is known to fit in int64: an empty shape
    // such as [0, 2^62, 2^62] is valid, but the product of the dims after
    // axis 0 overflows. Nothing is read; depth still validates min/max.
    v.outer = 0;
    v.inner = 0;
    return v;
  }
  v.outer = 1;
  for (int64_t d = 0; d < axis; ++d) v.outer *= shape.dim_size(d);
  v.inner = 1;
  for (int64_t d = axis + 1; d < shape.dims(); ++d) v.inner *= shape.dim_size(d);
  return v;
}

// Runs a device functor. Functors allocate scratch buffers (per-channel
// ranges and parameters) on the heap: a failed allocation must become an error
// status, never an exception unwinding into TensorFlow, which kills the
// process (eager: pybind11's exception translator segfaults without the GIL;
// graph executor threads: std::terminate).
template <typename F>
tensorflow::Status CallFunctor(const F& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  return tensorflow::errors::ResourceExhausted(
      "tf_qdq: out of memory allocating scratch buffers for the per-channel "
      "ranges");
}

template <typename Device, typename T>
void RunForward(OpKernelContext* ctx, const ForwardArgs& args, const T* mn, const T* mx) {
  const Tensor& input = ctx->input(0);
  Tensor* output = nullptr;
  OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, input.shape(), &output));
  OP_REQUIRES_OK(ctx, CallFunctor([&] {
                   return ForwardFunctor<Device, T>()(ctx, args, input.flat<T>().data(), mn, mx,
                                                      output->flat<T>().data());
                 }));
}

ForwardArgs MakeArgs(const View& view, const QdqAttrs& attrs, int64_t num_bits) {
  ForwardArgs a;
  a.view = view;
  IntegerRange(static_cast<int>(num_bits), attrs.signed_input, attrs.narrow_range, &a.qmin,
               &a.qmax);
  a.range_given = attrs.range_given;
  a.half_up = attrs.half_up;
  return a;
}

// What every kernel of the family starts from: its attributes, read and
// checked at construction (ReadAttrs, shared with the XLA kernels).
class QdqOpBase : public OpKernel {
 public:
  explicit QdqOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadAttrs(ctx, &attrs_));
  }

 protected:
  QdqAttrs attrs_;
};

// V1: the range comes from float attrs, rounding is HALF_TO_EVEN.
template <typename Device, typename T>
class QdqV1Op : public QdqOpBase {
 public:
  using QdqOpBase::QdqOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const T mn = static_cast<T>(attrs_.input_min), mx = static_cast<T>(attrs_.input_max);
    RunForward<Device, T>(ctx, MakeArgs(MakeView(input.shape(), -1), attrs_, attrs_.num_bits), &mn,
                          &mx);
  }
};

// V2, V3 and V4 once the op's own checks have passed: a given range's shapes
// (when not checked yet) and values, then the forward pass.
template <typename Device, typename T>
void RunWithRangeInputs(OpKernelContext* ctx, const QdqAttrs& attrs, int64_t num_bits,
                        bool range_shapes_checked) {
  const Tensor& input = ctx->input(0);
  const Tensor& mn = ctx->input(1);
  const Tensor& mx = ctx->input(2);
  const T* mn_ptr = nullptr;
  const T* mx_ptr = nullptr;
  if (attrs.range_given) {
    if (!range_shapes_checked) {
      OP_REQUIRES_OK(ctx,
                     ValidateGivenRangeShapes(attrs.axis, input.shape(), mn.shape(), mx.shape()));
    }
    OP_REQUIRES_OK(ctx, ValidateGivenRangeValues(attrs.axis, mn, mx));
    mn_ptr = mn.flat<T>().data();
    mx_ptr = mx.flat<T>().data();
  }
  RunForward<Device, T>(ctx, MakeArgs(MakeView(input.shape(), attrs.axis), attrs, num_bits), mn_ptr,
                        mx_ptr);
}

// V2 and V4 (same forward; they differ only in their Python gradients).
template <typename Device, typename T>
class QdqV2Op : public QdqOpBase {
 public:
  using QdqOpBase::QdqOpBase;

  void Compute(OpKernelContext* ctx) override {
    OP_REQUIRES_OK(ctx, ValidateV2Shapes(attrs_.axis, ctx->input(0).shape(), attrs_.range_given,
                                         ctx->input(1).shape(), ctx->input(2).shape()));
    RunWithRangeInputs<Device, T>(ctx, attrs_, attrs_.num_bits, /*range_shapes_checked=*/true);
  }
};

// V3: num_bits is an int32 tensor (host memory), rounding is HALF_TO_EVEN.
template <typename Device, typename T>
class QdqV3Op : public QdqOpBase {
 public:
  using QdqOpBase::QdqOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& num_bits_tensor = ctx->input(3);
    OP_REQUIRES_OK(ctx,
                   ValidateV3Shapes(attrs_.axis, ctx->input(0).shape(), num_bits_tensor.shape()));
    const int64_t num_bits = num_bits_tensor.scalar<int32_t>()();
    OP_REQUIRES_OK(ctx, ValidateV3NumBits(num_bits, attrs_.signed_input));
    RunWithRangeInputs<Device, T>(ctx, attrs_, num_bits, /*range_shapes_checked=*/false);
  }
};

template <typename Device, typename T>
class QdqV4GradOp : public QdqOpBase {
 public:
  using QdqOpBase::QdqOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradient = ctx->input(0);
    const Tensor& input = ctx->input(1);
    const Tensor& mn = ctx->input(2);
    const Tensor& mx = ctx->input(3);
    const int64_t axis = attrs_.axis;
    OP_REQUIRES_OK(
        ctx, ValidateV4GradShapes(axis, gradient.shape(), input.shape(), mn.shape(), mx.shape()));
    const View view = MakeView(input.shape(), axis);
    Tensor* min_backprop = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, mn.shape(), &min_backprop));
    Tensor* max_backprop = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, mx.shape(), &max_backprop));
    if (PassesGradient(ctx, gradient, input, mn, mx)) {
      ctx->set_output(0, gradient);  // the same bits: no copy
    } else {
      Tensor* input_backprop = nullptr;
      OP_REQUIRES_OK(ctx,
                     ctx->forward_input_or_allocate_output({0}, 0, input.shape(), &input_backprop));
      OP_REQUIRES_OK(ctx, CallFunctor([&] {
                       return GradFunctor<Device, T>()(ctx, view, gradient.flat<T>().data(),
                                                       input.flat<T>().data(), mn.flat<T>().data(),
                                                       mx.flat<T>().data(),
                                                       input_backprop->flat<T>().data());
                     }));
    }
    OP_REQUIRES_OK(ctx, ZeroFunctor<Device, T>()(ctx, min_backprop->flat<T>().data(),
                                                 min_backprop->NumElements()));
    OP_REQUIRES_OK(ctx, ZeroFunctor<Device, T>()(ctx, max_backprop->flat<T>().data(),
                                                 max_backprop->NumElements()));
  }

 private:
  // On the CPU, with every min -inf and every max +inf (the gradient of a V4
  // whose range comes from the data, docs/semantics.md#diff-v4-gradient):
  // whether the product would leave every gradient unchanged. On a
  // GPU the check would cost a device-to-host copy, more than the product.
  static bool PassesGradient(OpKernelContext* ctx, const Tensor& gradient, const Tensor& input,
                             const Tensor& mn, const Tensor& mx) {
    if constexpr (!std::is_same_v<Device, CPUDevice>) {
      return false;
    } else {
      const int64_t n = input.NumElements();
      if (n == 0) return false;
      const T* lo = mn.flat<T>().data();
      const T* hi = mx.flat<T>().data();
      for (int64_t c = 0; c < mn.NumElements(); ++c) {
        const double l = static_cast<double>(lo[c]), h = static_cast<double>(hi[c]);
        if (!(std::isinf(l) && l < 0 && std::isinf(h) && h > 0)) return false;
      }
      return CpuGradientPassesUnbounded<T>(ctx, gradient.flat<T>().data(), input.flat<T>().data(),
                                           n);
    }
  }
};

// ---- Registration -----------------------------------------------------------
//
// Every op of the table (qdq_op_table.h) for bfloat16, half, float and
// double, on the CPU and, when built with CUDA, on the GPU.
//
// GPU kernels (functors in qdq_gpu.cc, CUDA code in qdq_gpu.cu.cc) are built
// when setup.py finds nvcc. As in TensorFlow, the ranges (and V3's num_bits)
// are host-memory inputs (OpInfo::host_memory_inputs): validation and the
// given-range parameters run on the host without waiting for the GPU.
// V4Grad's min/max backprops are device outputs. They are registered when
// the library is loaded, unless GpuKernelsCanRegister() (qdq_kernels.h) says
// the installed NVIDIA driver cannot run them: TensorFlow would still place
// the ops on the GPU, and every launch would fail. Without them the ops run
// on the CPU kernels.

template <typename Kernel>
OpKernel* MakeKernel(OpKernelConstruction* ctx) {
  return new Kernel(ctx);
}

template <typename Kernel, typename T>
void RegisterKernel(OpKind kind, const char* device, const char* class_name) {
  const OpInfo& op = GetOp(kind);
  ::tensorflow::KernelDefBuilder builder(op.name);
  builder.Device(device).TypeConstraint<T>("T");
  if (std::strcmp(device, DEVICE_CPU) != 0) {
    for (const char* input : op.host_memory_inputs) {
      if (input != nullptr) builder.HostMemory(input);
    }
  }
  ::tensorflow::kernel_factory::OpKernelRegistrar registrar(builder.Build(), class_name,
                                                            &MakeKernel<Kernel>);
  (void)registrar;
}

template <typename Device, typename T>
void RegisterKernels(const char* device) {
#define TF_QDQ_REGISTER_KERNEL(kind, impl) \
  RegisterKernel<Qdq##impl##Op<Device, T>, T>(OpKind::kind, device, "tf_qdq::Qdq" #impl "Op");
  TF_QDQ_FOR_EACH_OP(TF_QDQ_REGISTER_KERNEL)
#undef TF_QDQ_REGISTER_KERNEL
}

template <typename Device>
bool RegisterAllKernels(const char* device) {
  RegisterKernels<Device, Eigen::bfloat16>(device);
  RegisterKernels<Device, Eigen::half>(device);
  RegisterKernels<Device, float>(device);
  RegisterKernels<Device, double>(device);
  return true;
}

[[maybe_unused]] const bool cpu_kernels_registered = RegisterAllKernels<CPUDevice>(DEVICE_CPU);

#if defined(TF_QDQ_CUDA) && TF_QDQ_CUDA
[[maybe_unused]] const bool gpu_kernels_registered =
    GpuKernelsCanRegister() &&  // logs why not (qdq_gpu.cc)
    RegisterAllKernels<Eigen::GpuDevice>(::tensorflow::DEVICE_GPU);
#endif  // TF_QDQ_CUDA

}  // namespace
}  // namespace tf_qdq
