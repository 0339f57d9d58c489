// OpKernels of the TfQdq>QuantizeAndDequantize* family: attribute and input
// validation (docs/semantics.md#validation, through qdq_validate.h, shared with the
// XLA kernels), output allocation, and the call into the device functors of
// qdq_kernels.h. Every check runs before any access that TensorFlow would CHECK
// (dim_size, scalar<T>, vec<T>), so no input aborts.
#define EIGEN_USE_THREADS

#include "kernels/qdq_kernels.h"

#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/qdq_math.h"
#include "kernels/qdq_validate.h"
#if defined(TF_QDQ_CUDA) && TF_QDQ_CUDA
#include "tensorflow/core/framework/kernel_def_builder.h"
#endif
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

ForwardArgs MakeArgs(const View& view, int64_t num_bits, bool signed_input, bool narrow_range,
                     bool range_given, bool half_up) {
  ForwardArgs a;
  a.view = view;
  IntegerRange(static_cast<int>(num_bits), signed_input, narrow_range, &a.qmin, &a.qmax);
  a.range_given = range_given;
  a.half_up = half_up;
  return a;
}

// V1: the range comes from float attrs, rounding is HALF_TO_EVEN.
template <typename Device, typename T>
class QdqV1Op : public OpKernel {
 public:
  explicit QdqV1Op(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signed_input", &signed_input_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_bits", &num_bits_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("range_given", &range_given_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_min", &input_min_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_max", &input_max_));
    OP_REQUIRES_OK(ctx,
                   ValidateV1Attrs(num_bits_, signed_input_, range_given_, input_min_, input_max_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const T mn = static_cast<T>(input_min_), mx = static_cast<T>(input_max_);
    RunForward<Device, T>(ctx,
                          MakeArgs(MakeView(input.shape(), -1), num_bits_, signed_input_,
                                   /*narrow_range=*/false, range_given_, /*half_up=*/false),
                          &mn, &mx);
  }

 private:
  bool signed_input_;
  int num_bits_;
  bool range_given_;
  float input_min_;
  float input_max_;
};

// V2 and V4 (same forward; they differ only in their Python gradients).
template <typename Device, typename T>
class QdqV2Op : public OpKernel {
 public:
  explicit QdqV2Op(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signed_input", &signed_input_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_bits", &num_bits_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("range_given", &range_given_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("narrow_range", &narrow_range_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
    std::string round_mode;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("round_mode", &round_mode));
    OP_REQUIRES_OK(ctx, ValidateV2Attrs(round_mode, num_bits_, signed_input_));
    half_up_ = round_mode == "HALF_UP";
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& mn = ctx->input(1);
    const Tensor& mx = ctx->input(2);
    const int64_t axis = axis_;
    OP_REQUIRES_OK(ctx,
                   ValidateV2Shapes(axis, input.shape(), range_given_, mn.shape(), mx.shape()));
    const View view = MakeView(input.shape(), axis);
    const T* mn_ptr = nullptr;
    const T* mx_ptr = nullptr;
    if (range_given_) {
      OP_REQUIRES_OK(ctx, ValidateGivenRangeValues(axis, mn, mx));
      mn_ptr = mn.flat<T>().data();
      mx_ptr = mx.flat<T>().data();
    }
    RunForward<Device, T>(
        ctx, MakeArgs(view, num_bits_, signed_input_, narrow_range_, range_given_, half_up_),
        mn_ptr, mx_ptr);
  }

 private:
  bool signed_input_;
  int num_bits_;
  bool range_given_;
  bool narrow_range_;
  bool half_up_;
  int axis_;
};

// V3: num_bits is an int32 tensor (host memory), rounding is HALF_TO_EVEN.
template <typename Device, typename T>
class QdqV3Op : public OpKernel {
 public:
  explicit QdqV3Op(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signed_input", &signed_input_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("range_given", &range_given_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("narrow_range", &narrow_range_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& mn = ctx->input(1);
    const Tensor& mx = ctx->input(2);
    const Tensor& num_bits_tensor = ctx->input(3);
    const int64_t axis = axis_;
    OP_REQUIRES_OK(ctx, ValidateV3Shapes(axis, input.shape(), num_bits_tensor.shape()));
    const int64_t num_bits = num_bits_tensor.scalar<int32_t>()();
    OP_REQUIRES_OK(ctx, ValidateV3NumBits(num_bits, signed_input_));
    const View view = MakeView(input.shape(), axis);
    const T* mn_ptr = nullptr;
    const T* mx_ptr = nullptr;
    if (range_given_) {
      OP_REQUIRES_OK(ctx, ValidateGivenRangeShapes(axis, input.shape(), mn.shape(), mx.shape()));
      OP_REQUIRES_OK(ctx, ValidateGivenRangeValues(axis, mn, mx));
      mn_ptr = mn.flat<T>().data();
      mx_ptr = mx.flat<T>().data();
    }
    RunForward<Device, T>(
        ctx,
        MakeArgs(view, num_bits, signed_input_, narrow_range_, range_given_, /*half_up=*/false),
        mn_ptr, mx_ptr);
  }

 private:
  bool signed_input_;
  bool range_given_;
  bool narrow_range_;
  int axis_;
};

template <typename Device, typename T>
class QdqV4GradOp : public OpKernel {
 public:
  explicit QdqV4GradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradient = ctx->input(0);
    const Tensor& input = ctx->input(1);
    const Tensor& mn = ctx->input(2);
    const Tensor& mx = ctx->input(3);
    const int64_t axis = axis_;
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
  // whose range comes from the data, docs/semantics.md#differences-from-tensorflow
  // item 5): whether the product would leave every gradient unchanged. On a
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

  int axis_;
};

#define TF_QDQ_REGISTER_CPU(T)                                                             \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("TfQdq>QuantizeAndDequantize").Device(DEVICE_CPU).TypeConstraint<T>("T"),       \
      QdqV1Op<CPUDevice, T>);                                                              \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("TfQdq>QuantizeAndDequantizeV2").Device(DEVICE_CPU).TypeConstraint<T>("T"),     \
      QdqV2Op<CPUDevice, T>);                                                              \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("TfQdq>QuantizeAndDequantizeV3").Device(DEVICE_CPU).TypeConstraint<T>("T"),     \
      QdqV3Op<CPUDevice, T>);                                                              \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("TfQdq>QuantizeAndDequantizeV4").Device(DEVICE_CPU).TypeConstraint<T>("T"),     \
      QdqV2Op<CPUDevice, T>);                                                              \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("TfQdq>QuantizeAndDequantizeV4Grad").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
      QdqV4GradOp<CPUDevice, T>);

TF_QDQ_REGISTER_CPU(Eigen::bfloat16)
TF_QDQ_REGISTER_CPU(Eigen::half)
TF_QDQ_REGISTER_CPU(float)
TF_QDQ_REGISTER_CPU(double)
#undef TF_QDQ_REGISTER_CPU

#if defined(TF_QDQ_CUDA) && TF_QDQ_CUDA
// GPU kernels (functors in qdq_gpu.cc, CUDA code in qdq_gpu.cu.cc), built when
// setup.py finds nvcc. As in TensorFlow, the ranges (and V3's num_bits) are
// host-memory inputs: validation and the given-range parameters run on the
// host without waiting for the GPU. V4Grad's min/max backprops are device
// outputs.
//
// They are registered when the library is loaded, unless GpuKernelsCanRegister()
// (qdq_kernels.h) says the installed NVIDIA driver cannot run them:
// TensorFlow would still place the ops on the GPU, and every launch would
// fail. Without them the ops run on the CPU kernels.
using ::tensorflow::DEVICE_GPU;
using GPUDevice = Eigen::GpuDevice;

template <template <typename, typename> class Op, typename T>
OpKernel* MakeGpuKernel(OpKernelConstruction* ctx) {
  return new Op<GPUDevice, T>(ctx);
}

template <template <typename, typename> class Op, typename T>
void RegisterGpuKernel(::tensorflow::KernelDefBuilder& builder, const char* class_name) {
  ::tensorflow::kernel_factory::OpKernelRegistrar registrar(
      builder.Device(DEVICE_GPU).template TypeConstraint<T>("T").Build(), class_name,
      &MakeGpuKernel<Op, T>);
  (void)registrar;
}

template <typename T>
void RegisterGpuKernels() {
  using ::tensorflow::register_kernel::Name;
  {
    Name b("TfQdq>QuantizeAndDequantize");
    RegisterGpuKernel<QdqV1Op, T>(b, "tf_qdq::QdqV1Op<GPUDevice, T>");
  }
  {
    Name b("TfQdq>QuantizeAndDequantizeV2");
    b.HostMemory("input_min").HostMemory("input_max");
    RegisterGpuKernel<QdqV2Op, T>(b, "tf_qdq::QdqV2Op<GPUDevice, T>");
  }
  {
    Name b("TfQdq>QuantizeAndDequantizeV3");
    b.HostMemory("input_min").HostMemory("input_max").HostMemory("num_bits");
    RegisterGpuKernel<QdqV3Op, T>(b, "tf_qdq::QdqV3Op<GPUDevice, T>");
  }
  {
    Name b("TfQdq>QuantizeAndDequantizeV4");
    b.HostMemory("input_min").HostMemory("input_max");
    RegisterGpuKernel<QdqV2Op, T>(b, "tf_qdq::QdqV2Op<GPUDevice, T>");
  }
  {
    Name b("TfQdq>QuantizeAndDequantizeV4Grad");
    b.HostMemory("input_min").HostMemory("input_max");
    RegisterGpuKernel<QdqV4GradOp, T>(b, "tf_qdq::QdqV4GradOp<GPUDevice, T>");
  }
}

bool RegisterAllGpuKernels() {
  if (!GpuKernelsCanRegister()) return false;  // logs why (qdq_gpu.cc)
  RegisterGpuKernels<Eigen::bfloat16>();
  RegisterGpuKernels<Eigen::half>();
  RegisterGpuKernels<float>();
  RegisterGpuKernels<double>();
  return true;
}

[[maybe_unused]] const bool gpu_kernels_registered = RegisterAllGpuKernels();
#endif  // TF_QDQ_CUDA

}  // namespace
}  // namespace tf_qdq
