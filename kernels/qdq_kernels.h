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
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const ForwardArgs& args, const T* in,
                                const T* min_host, const T* max_host, T* out);
};

// out = gradients * (min <= x <= max), min/max host pointers with view.depth
// values each.
template <typename Device, typename T>
struct GradFunctor {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const View& view, const T* gradients,
                                const T* x, const T* min_host,
                                const T* max_host, T* out);
};

// Fills p[0..n) with zeros (the min/max backprops of V4Grad).
template <typename Device, typename T>
struct ZeroFunctor {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, T* p,
                                int64_t n);
};

#if defined(TF_QDQ_CUDA) && TF_QDQ_CUDA
// Whether the GPU kernels can run in this process, asked once when they are
// registered (qdq_kernels.cc). False, after logging a warning that names the
// fix, when an NVIDIA driver is installed that is too old for the CUDA runtime
// linked into the library (e.g. built with CUDA 13, driver for CUDA 12);
// true without any driver (CPU-only machines: TensorFlow has no GPU device to
// use the kernels on). Defined with the GPU functors (qdq_gpu.cc).
bool GpuKernelsUsable();
#endif

}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_KERNELS_H_
