// GPU functors of qdq_kernels.h (Device = Eigen::GpuDevice), compiled by g++
// against TensorFlow's headers; the CUDA kernels are behind the plain C++
// launchers of qdq_gpu.h (qdq_gpu.cu.cc, compiled by nvcc). Only built when
// CUDA is enabled (setup.py passes -DTF_QDQ_CUDA=1).
//
// Nothing here waits for the GPU:
//  - range from data: the per-channel min/max and the parameters are computed
//    on the device (LaunchDataRangeParams) into a temporary device buffer;
//  - given range (host memory, as in TensorFlow): the parameters are computed
//    here with the same ComputeParams as the device, with IEEE subnormals
//    (gpu_host::GivenRangeParams: TensorFlow runs Compute with flush-to-zero,
//    the device does not flush); per-tensor they are passed by value as a
//    kernel argument, per-channel they are written to a page-locked host
//    buffer and copied asynchronously on the op's stream; the buffer is kept
//    alive until the copy has run by the device's EventMgr (as TensorFlow's
//    own GPU kernels do for host-side arrays).
// Temporary device buffers come from ctx->allocate_temp; TensorFlow's GPU
// allocator orders their reuse on the compute stream.
#define EIGEN_USE_THREADS

#include "kernels/qdq_gpu.h"

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "kernels/qdq_gpu_host.h"
#include "kernels/qdq_kernels.h"
#include "kernels/qdq_math.h"
#include "tensorflow/core/common_runtime/gpu/gpu_event_mgr.h"
#include "tensorflow/core/framework/allocator.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_reference.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/logging.h"
#include "tensorflow/core/platform/stream_executor.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tf_qdq {
namespace {

using GPUDevice = Eigen::GpuDevice;
using ::tensorflow::AllocatorAttributes;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Status;
using ::tensorflow::Tensor;
using ::tensorflow::TensorReference;
using ::tensorflow::TensorShape;

// The storage type the launchers are instantiated for.
template <typename T>
struct Storage {
  using type = T;
};
template <>
struct Storage<Eigen::half> {
  using type = gpu::HalfBits;
};
template <>
struct Storage<Eigen::bfloat16> {
  using type = gpu::BFloat16Bits;
};
static_assert(sizeof(Eigen::half) == sizeof(gpu::HalfBits), "half layout");
static_assert(sizeof(Eigen::bfloat16) == sizeof(gpu::BFloat16Bits), "bfloat16 layout");

template <typename T>
const typename Storage<T>::type* Raw(const T* p) {
  return reinterpret_cast<const typename Storage<T>::type*>(p);
}
template <typename T>
typename Storage<T>::type* Raw(T* p) {
  return reinterpret_cast<typename Storage<T>::type*>(p);
}

gpu::Dims ToDims(const View& v) { return gpu::Dims{v.outer, v.depth, v.inner}; }

// The op's CUDA stream (a CUstream, the same object as a cudaStream_t) and
// the CUDA device it belongs to.
struct OpStream {
  ::stream_executor::Stream* se = nullptr;
  void* handle = nullptr;
  // The CUDA device ordinal of the stream, from TensorFlow (not from the
  // thread's current device or context); -1 when unknown.
  int device = -1;
};

Status GetStream(OpKernelContext* ctx, OpStream* s) {
  auto* dc = ctx->op_device_context();
  s->se = dc ? dc->stream() : nullptr;
  s->handle = s->se ? s->se->platform_specific_handle().stream : nullptr;
  if (s->handle == nullptr) {
    return ::tensorflow::errors::Internal(
        "tf_qdq: the GPU kernel has no CUDA stream (the op is not running on a "
        "CUDA device)");
  }
  s->device = s->se->parent() ? s->se->parent()->device_ordinal() : -1;
  return Status();
}

Status CudaStatus(int code, const char* what, const OpStream& stream) {
  if (code == 0) return Status();
  if (gpu::IsMissingKernelImage(code)) {
    return ::tensorflow::errors::FailedPrecondition(
        "tf_qdq: ", what, " cannot run on the GPU: ", gpu::ErrorName(code), ". ",
        gpu::MissingKernelImageMessage(stream.handle, stream.device));
  }
  std::string hint;
  if (gpu::IsInsufficientDriver(code)) {
    const int rt = gpu::RuntimeVersion(), drv = gpu::DriverVersion();
    hint = absl::StrCat(" tf_qdq's GPU kernels are linked with CUDA runtime ", rt / 1000, ".",
                        (rt % 1000) / 10,
                        ", which needs a newer NVIDIA driver than the "
                        "installed one (supports CUDA ",
                        drv / 1000, ".", (drv % 1000) / 10,
                        "). Update the driver, or rebuild tf_qdq with an nvcc that the driver "
                        "supports, or without CUDA (TF_QDQ_CUDA=0) to run on the CPU.");
  }
  return ::tensorflow::errors::Internal("tf_qdq: ", what,
                                        " failed on the GPU: ", gpu::ErrorName(code), " (",
                                        gpu::ErrorString(code), ").", hint);
}

// Per-channel parameters computed on the host by fill(host) (depth entries),
// in device memory: written to a page-locked host buffer and copied on the
// op's stream. *dev_tensor owns the device copy (reuse is stream-ordered); the host
// buffer is released by the EventMgr once the copy has run.
template <typename C, typename Fill>
Status PerChannelParamsToDevice(OpKernelContext* ctx, const OpStream& stream, int64_t depth,
                                const Fill& fill, Tensor* dev_tensor, const Params<C>** out) {
  const int64_t bytes = depth * static_cast<int64_t>(sizeof(Params<C>));
  AllocatorAttributes host_attr;
  host_attr.set_on_host(true);
  host_attr.set_gpu_compatible(true);  // page-locked: the copy is asynchronous
  Tensor host_tensor;
  TF_RETURN_IF_ERROR(
      ctx->allocate_temp(::tensorflow::DT_INT8, TensorShape({bytes}), &host_tensor, host_attr));
  TF_RETURN_IF_ERROR(ctx->allocate_temp(::tensorflow::DT_INT8, TensorShape({bytes}), dev_tensor));
  // TensorFlow's host allocations are aligned for any type.
  char* host = reinterpret_cast<char*>(host_tensor.flat<int8_t>().data());
  fill(reinterpret_cast<Params<C>*>(host));
  void* dev = dev_tensor->flat<int8_t>().data();
  TF_RETURN_IF_ERROR(
      CudaStatus(gpu::LaunchCopyToDevice(dev, host, static_cast<size_t>(bytes), stream.handle),
                 "copying the per-channel parameters", stream));
  const auto* info = ctx->device()->tensorflow_accelerator_device_info();
  if (info != nullptr && info->event_mgr != nullptr) {
    TensorReference ref(host_tensor);
    info->event_mgr->ThenExecute(stream.se, [ref]() { ref.Unref(); });
  } else {
    // No EventMgr (not expected on a TensorFlow GPU device): keep the host
    // buffer valid by waiting for the copy.
    TF_RETURN_IF_ERROR(stream.se->BlockHostUntilDone());
  }
  *out = reinterpret_cast<const Params<C>*>(dev);
  return Status();
}

}  // namespace

// The specializations declared in qdq_kernels.h.
template <typename T>
Status ForwardFunctor<GPUDevice, T>::operator()(OpKernelContext* ctx, const ForwardArgs& a,
                                                const T* in, const T* min_host, const T* max_host,
                                                T* out) {
  using S = typename Storage<T>::type;
  using C = typename ComputeType<T>::type;
  static_assert(std::is_same<C, typename ComputeType<S>::type>::value,
                "compute types differ between CPU and GPU");
  const View& v = a.view;
  if (v.size() == 0) return Status();
  OpStream stream;
  TF_RETURN_IF_ERROR(GetStream(ctx, &stream));
  const C qmin = static_cast<C>(a.qmin), qmax = static_cast<C>(a.qmax);
  gpu::ParamsArg<C> p{nullptr, Params<C>{}};
  Tensor params_tensor, scratch_tensor;
  if (a.range_given) {
    auto fill = [&](Params<C>* host) {
      gpu_host::GivenRangeParams<C>(min_host, max_host, v.depth, qmin, qmax, host);
    };
    if (v.depth == 1) {
      fill(&p.single);
    } else {
      TF_RETURN_IF_ERROR(
          PerChannelParamsToDevice<C>(ctx, stream, v.depth, fill, &params_tensor, &p.per_channel));
    }
  } else {
    const int64_t scratch_bytes = static_cast<int64_t>(gpu::RangeScratchBytes<S>(v.depth));
    const int64_t params_bytes = v.depth * static_cast<int64_t>(sizeof(Params<C>));
    TF_RETURN_IF_ERROR(
        ctx->allocate_temp(::tensorflow::DT_INT8, TensorShape({scratch_bytes}), &scratch_tensor));
    TF_RETURN_IF_ERROR(
        ctx->allocate_temp(::tensorflow::DT_INT8, TensorShape({params_bytes}), &params_tensor));
    auto* params = reinterpret_cast<Params<C>*>(params_tensor.flat<int8_t>().data());
    TF_RETURN_IF_ERROR(
        CudaStatus(gpu::LaunchDataRangeParams<S>(Raw(in), ToDims(v), qmin, qmax,
                                                 scratch_tensor.flat<int8_t>().data(), params,
                                                 stream.handle, stream.device),
                   "computing the range of the input", stream));
    p.per_channel = params;
  }
  return CudaStatus(gpu::LaunchQuantizeDequantize<S>(Raw(in), Raw(out), ToDims(v), p, a.range_given,
                                                     a.half_up, stream.handle, stream.device),
                    "QuantizeAndDequantize", stream);
}

template <typename T>
Status GradFunctor<GPUDevice, T>::operator()(OpKernelContext* ctx, const View& v,
                                             const T* gradients, const T* x, const T* min_host,
                                             const T* max_host, T* out) {
  using S = typename Storage<T>::type;
  using C = typename ComputeType<T>::type;
  if (v.size() == 0) return Status();
  OpStream stream;
  TF_RETURN_IF_ERROR(GetStream(ctx, &stream));
  // The raw bounds, in Params::lo / Params::hi.
  // (Conversions only, exact for subnormals under flush-to-zero too.)
  auto fill = [&](Params<C>* host) {
    for (int64_t c = 0; c < v.depth; ++c) {
      host[c] = Params<C>{};
      host[c].lo = static_cast<C>(min_host[c]);
      host[c].hi = static_cast<C>(max_host[c]);
    }
  };
  gpu::ParamsArg<C> p{nullptr, Params<C>{}};
  Tensor params_tensor;
  if (v.depth == 1) {
    fill(&p.single);
  } else {
    TF_RETURN_IF_ERROR(
        PerChannelParamsToDevice<C>(ctx, stream, v.depth, fill, &params_tensor, &p.per_channel));
  }
  return CudaStatus(gpu::LaunchMaskedGradient<S>(Raw(gradients), Raw(x), Raw(out), ToDims(v), p,
                                                 stream.handle, stream.device),
                    "QuantizeAndDequantizeV4Grad", stream);
}

template <typename T>
Status ZeroFunctor<GPUDevice, T>::operator()(OpKernelContext* ctx, T* p, int64_t n) {
  if (n == 0) return Status();
  OpStream stream;
  TF_RETURN_IF_ERROR(GetStream(ctx, &stream));
  return CudaStatus(gpu::LaunchZero(p, static_cast<size_t>(n) * sizeof(T), stream.handle),
                    "zeroing the min/max backprops", stream);
}

#define TF_QDQ_INSTANTIATE_GPU(T)               \
  template struct ForwardFunctor<GPUDevice, T>; \
  template struct GradFunctor<GPUDevice, T>;    \
  template struct ZeroFunctor<GPUDevice, T>;
TF_QDQ_INSTANTIATE_GPU(Eigen::bfloat16)
TF_QDQ_INSTANTIATE_GPU(Eigen::half)
TF_QDQ_INSTANTIATE_GPU(float)
TF_QDQ_INSTANTIATE_GPU(double)
#undef TF_QDQ_INSTANTIATE_GPU

bool GpuKernelsCanRegister() {
  const int runtime = gpu::RuntimeVersion(), driver = gpu::DriverVersion();
  if (driver != 0 && driver / 1000 < runtime / 1000) {
    LOG(WARNING) << "tf_qdq: the NVIDIA driver supports CUDA " << driver / 1000 << "."
                 << (driver % 1000) / 10 << ", but tf_qdq's GPU kernels were built with CUDA "
                 << runtime / 1000 << "." << (runtime % 1000) / 10
                 << ": GPU kernels not registered, the tf_qdq ops run on the "
                    "CPU. Update the driver, or rebuild tf_qdq with an nvcc "
                    "of CUDA "
                 << driver / 1000 << ".x.";
    return false;
  }
  return true;
}

}  // namespace tf_qdq

// Marker read by tf_qdq/_loader.py from the library file: the CUDA toolkit and
// the architectures the GPU kernels were compiled for (setup.py passes
// -DTF_QDQ_CUDA_BUILD="<version> <archs>").
#ifndef TF_QDQ_CUDA_BUILD
#define TF_QDQ_CUDA_BUILD "unknown"
#endif
extern "C" {
__attribute__((used)) const char tf_qdq_built_with_cuda[] =
    "TF_QDQ_BUILT_WITH_CUDA=" TF_QDQ_CUDA_BUILD ";";
}
