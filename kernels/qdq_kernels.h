// Device-generic interface between the OpKernels (qdq_kernels.cc: validation,
// shapes, allocation) and the device loops (qdq_cpu.cc, qdq_gpu.cu.cc).
// The per-element math itself is in qdq_math.h.
#ifndef TF_QDQ_KERNELS_QDQ_KERNELS_H_
#define TF_QDQ_KERNELS_QDQ_KERNELS_H_

#include <cstdint>

#include "kernels/qdq_math.h"  // ComputeType
#include "tensorflow/core/framework/op_kernel.h"

namespace tf_qdq {

// The input viewed as [outer, depth, inner]: depth is the number of channels
// (1 for per-tensor), inner the elements after the channel axis.
struct View {
  int64_t outer = 1;
  int64_t depth = 1;
  int64_t inner = 0;
  int64_t size() const { return outer * depth * inner; }
};

struct ForwardArgs {
  View view;
  int64_t qmin = 0;  // integer range of docs/semantics.md#arithmetic, step 1
  int64_t qmax = 0;
  bool range_given = false;
  bool half_up = false;  // round_mode == "HALF_UP"
};

// out = QDQ(in). min/max are host pointers with view.depth values each (only
// read when range_given). `out` may alias `in`.
template <typename Device, typename T>
struct ForwardFunctor {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, const ForwardArgs& args,
                                const T* in, const T* min_host, const T* max_host, T* out);
};

// out = gradients * (min <= x <= max), min/max host pointers with view.depth
// values each.
template <typename Device, typename T>
struct GradFunctor {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, const View& view,
                                const T* gradients, const T* x, const T* min_host,
                                const T* max_host, T* out);
};

// Fills p[0..n) with zeros (the min/max backprops of V4Grad).
template <typename Device, typename T>
struct ZeroFunctor {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, T* p, int64_t n);
};

// CPU only: whether V4Grad against an unbounded range (every min -inf, every
// max +inf) gives `gradients` back bit for bit over [0, n), so that the
// kernel can hand on the gradient tensor itself instead of writing the
// product. Reads x and gradients once at most, and stops at the first element
// that would change (a NaN x; a NaN or flushed subnormal gradient). The
// gradient of a V4 whose range is computed from the data takes this path.
template <typename T>
bool CpuGradientPassesUnbounded(tensorflow::OpKernelContext* ctx, const T* gradients, const T* x,
                                int64_t n);

#if defined(TF_QDQ_CUDA) && TF_QDQ_CUDA
// The GPU functors (Device = Eigen::GpuDevice): declared here, defined and
// explicitly instantiated for bfloat16, half, float and double in
// qdq_gpu.cc, so that every use sees these specializations. Also whether the
// GPU kernels should be registered (qdq_gpu.cc: false, with a logged warning,
// when the NVIDIA driver is too old for the CUDA runtime linked in).
template <typename T>
struct ForwardFunctor<Eigen::GpuDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, const ForwardArgs& args,
                                const T* in, const T* min_host, const T* max_host, T* out);
};
template <typename T>
struct GradFunctor<Eigen::GpuDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, const View& view,
                                const T* gradients, const T* x, const T* min_host,
                                const T* max_host, T* out);
};
template <typename T>
struct ZeroFunctor<Eigen::GpuDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, T* p, int64_t n);
};
#define TF_QDQ_DECLARE_GPU_FUNCTORS(T)                        \
  extern template struct ForwardFunctor<Eigen::GpuDevice, T>; \
  extern template struct GradFunctor<Eigen::GpuDevice, T>;    \
  extern template struct ZeroFunctor<Eigen::GpuDevice, T>;
TF_QDQ_DECLARE_GPU_FUNCTORS(Eigen::bfloat16)
TF_QDQ_DECLARE_GPU_FUNCTORS(Eigen::half)
TF_QDQ_DECLARE_GPU_FUNCTORS(float)
TF_QDQ_DECLARE_GPU_FUNCTORS(double)
#undef TF_QDQ_DECLARE_GPU_FUNCTORS

bool GpuKernelsCanRegister();
#endif  // TF_QDQ_CUDA

}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_KERNELS_H_
