// CUDA kernels of the QuantizeAndDequantize family. Includes only CUDA
// headers and the project's TensorFlow-free headers; the OpKernel side is
// qdq_gpu.cc, and tools/gpu_harness/ drives the same launchers without
// TensorFlow. The per-element math is qdq_math.h (unchanged), the per-thread
// loops are qdq_gpu_body.h.
//
// Must be compiled with -fmad=false (no fused multiply-add), without
// --use_fast_math, with -ftz=false -prec-div=true -prec-sqrt=true: then every
// operation of qdq_math.h is the same IEEE operation as on the host.
//
// Work per op, all enqueued on the op's stream without host synchronization:
//   range from data: RangeInitKernel (keys <- +inf/-inf), RangeKernel (NaN-
//     ignoring per-channel min/max as order keys, shared-memory atomics per
//     block, then global atomics), ParamsKernel (ComputeParams per channel,
//     on the device), then the elementwise kernel;
//   given range: the host computes the parameters (qdq_gpu.cc), then the
//     elementwise kernel.
// Every kernel covers all channels in one launch: the channel of an element
// comes from the [outer, depth, inner] view. Tensors of fewer than 2^31
// elements use 32-bit index math (gpu_body::Use32BitIndex); the elementwise
// kernels move 16 bytes per access where the arrays allow it.
//
// Every launcher first clears a stale error left by someone else's launch
// (cudaGetLastError), checks once per device that the library holds a kernel
// image for it (PrepareLaunch), and checks every launch it makes.
#if !defined(__CUDACC__)
#error "qdq_gpu.cu.cc must be compiled by nvcc (-x cu)"
#endif
#if defined(__FAST_MATH__) || defined(__USE_FAST_MATH__)
#error "tf_qdq must not be compiled with fast math (bit-exactness)"
#endif

#include "kernels/qdq_gpu.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/qdq_gpu_body.h"
#include "kernels/qdq_math.h"

// The CUDA version and the architectures of this build, from nvcc itself:
// __CUDA_ARCH_LIST__ is the list of the virtual architectures compiled for
// (e.g. 750,800,900; nvcc 11.5 and later).
#define TF_QDQ_STR2(...) #__VA_ARGS__
#define TF_QDQ_STR(...) TF_QDQ_STR2(__VA_ARGS__)
#define TF_QDQ_NVCC_VERSION TF_QDQ_STR(__CUDACC_VER_MAJOR__) "." TF_QDQ_STR(__CUDACC_VER_MINOR__)
#if defined(__CUDA_ARCH_LIST__)
#define TF_QDQ_ARCH_LIST TF_QDQ_STR(__CUDA_ARCH_LIST__)
#else
#define TF_QDQ_ARCH_LIST ""
#endif

namespace tf_qdq {
namespace gpu {
namespace {

using gpu_body::Key;
using gpu_body::kThreads;

// Loads as the compute type and stores with round-to-nearest-even, the same
// conversions as the CPU kernels', NaN bits included (gpu_body::HalfIsNaN
// and the conversions after it).
template <typename S>
struct Io;
template <>
struct Io<float> {
  static __device__ __forceinline__ float Load(const float* p) { return *p; }
  static __device__ __forceinline__ void Store(float* p, float v) { *p = v; }
};
template <>
struct Io<double> {
  static __device__ __forceinline__ double Load(const double* p) { return *p; }
  static __device__ __forceinline__ void Store(double* p, double v) { *p = v; }
};
template <>
struct Io<HalfBits> {
  static __device__ __forceinline__ float Load(const HalfBits* p) {
    const uint16_t b = p->bits;
    if (gpu_body::HalfIsNaN(b)) return __uint_as_float(gpu_body::HalfNaNToFloatBits(b));
    return __half2float(__ushort_as_half(b));
  }
  static __device__ __forceinline__ void Store(HalfBits* p, float v) {
    p->bits = (v != v) ? gpu_body::FloatNaNToHalfBits(__float_as_uint(v))
                       : __half_as_ushort(__float2half_rn(v));
  }
};
template <>
struct Io<BFloat16Bits> {
  // The upper half of a float: exact for every value, NaN payloads included.
  static __device__ __forceinline__ float Load(const BFloat16Bits* p) {
    return __uint_as_float(static_cast<uint32_t>(p->bits) << 16);
  }
  static __device__ __forceinline__ void Store(BFloat16Bits* p, float v) {
    p->bits = (v != v) ? gpu_body::FloatNaNToBf16Bits(__float_as_uint(v))
                       : __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
};

// Elements per 16-byte access.
template <typename S>
struct VecWidth {
  static constexpr int value = static_cast<int>(16 / sizeof(S));
};

// N elements at p as compute values: N == 1 one element, else one aligned
// 16-byte load (p at a 16-byte boundary, guaranteed by gpu_body::Split).
template <typename S, int N>
__device__ __forceinline__ void LoadN(const S* p, typename ComputeType<S>::type* v) {
  if constexpr (N == 1) {
    v[0] = Io<S>::Load(p);
  } else {
    static_assert(N * sizeof(S) == 16, "one 16-byte access");
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    S parts[N];
    memcpy(parts, &raw, sizeof(raw));
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = Io<S>::Load(&parts[k]);
  }
}

template <typename S, int N>
__device__ __forceinline__ void StoreN(S* p, const typename ComputeType<S>::type* v) {
  if constexpr (N == 1) {
    Io<S>::Store(p, v[0]);
  } else {
    static_assert(N * sizeof(S) == 16, "one 16-byte access");
    S parts[N];
#pragma unroll
    for (int k = 0; k < N; ++k) Io<S>::Store(&parts[k], v[k]);
    uint4 raw;
    memcpy(&raw, parts, sizeof(raw));
    *reinterpret_cast<uint4*>(p) = raw;
  }
}

__device__ __forceinline__ int64_t GlobalThread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridThreads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// Compiled for the same architectures as every other kernel here: asking
// for its attributes tells whether the library can run on a device.
__global__ void ProbeKernel() {}

// kmin[c] = key(+inf), kmax[c] = key(-inf) for c < depth.
template <typename K>
__global__ void RangeInitKernel(K* kmin, K* kmax, int64_t depth, K min_start, K max_start) {
  for (int64_t c = GlobalThread(); c < depth; c += GridThreads()) {
    kmin[c] = min_start;
    kmax[c] = max_start;
  }
}

// blockIdx.y strides over windows of `window` channels; the blocks of one
// window stride over its tiles of positions (gpu_body::ScanWindow), merge
// per-thread results into shared memory with atomics, then into kmin/kmax
// (device, one key per channel) with one atomic per block and channel.
template <typename S, typename I>
__global__ void __launch_bounds__(kThreads)
    RangeKernel(const S* __restrict__ in, gpu_body::Dims d, int64_t window, int64_t windows,
                int64_t items, typename Key<typename ComputeType<S>::type>::type* kmin,
                typename Key<typename ComputeType<S>::type>::type* kmax) {
  using C = typename ComputeType<S>::type;
  using K = typename Key<C>::type;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  K* smin = reinterpret_cast<K*>(shared_raw);
  K* smax = smin + window;
  const auto load = [in](I i) { return Io<S>::Load(in + i); };
  const auto flush = [smin, smax](int64_t c, K lo, K hi) {
    atomicMin(&smin[c], lo);
    atomicMax(&smax[c], hi);
  };
  for (int64_t w = blockIdx.y; w < windows; w += gridDim.y) {
    const int64_t c0 = w * window;
    const int64_t nc = (d.depth - c0 < window) ? d.depth - c0 : window;
    for (int64_t c = threadIdx.x; c < nc; c += blockDim.x) {
      smin[c] = Key<C>::kMinStart;
      smax[c] = Key<C>::kMaxStart;
    }
    __syncthreads();
    gpu_body::ScanWindow<C, I>(d, gpu_body::Window{c0, nc}, static_cast<I>(blockIdx.x),
                               static_cast<I>(gridDim.x), static_cast<I>(threadIdx.x),
                               static_cast<I>(blockDim.x), static_cast<I>(items), load, flush);
    __syncthreads();
    for (int64_t c = threadIdx.x; c < nc; c += blockDim.x) {
      if (smin[c] != Key<C>::kMinStart) atomicMin(&kmin[c0 + c], smin[c]);
      if (smax[c] != Key<C>::kMaxStart) atomicMax(&kmax[c0 + c], smax[c]);
    }
    __syncthreads();  // before the next window overwrites shared memory
  }
}

template <typename C>
__global__ void ParamsKernel(const typename Key<C>::type* kmin, const typename Key<C>::type* kmax,
                             int64_t depth, C qmin, C qmax, Params<C>* out) {
  for (int64_t c = GlobalThread(); c < depth; c += GridThreads()) {
    out[c] = gpu_body::ParamsFromKeys<C>(kmin[c], kmax[c], qmin, qmax);
  }
}

template <typename S, bool kClamp, bool kHalfUp, typename I>
__global__ void __launch_bounds__(kThreads)
    QdqKernel(const S* in, S* out, gpu_body::Dims d, gpu_body::Split<I> split,
              gpu_body::ParamsArg<typename ComputeType<S>::type> p) {
  using C = typename ComputeType<S>::type;
  // `out` may alias `in`: each element is read, then written, by one thread.
  gpu_body::QdqLoop<C, kClamp, kHalfUp, VecWidth<S>::value>(
      d, p, split, static_cast<I>(GlobalThread()), static_cast<I>(GridThreads()),
      [in](I i, auto cnt, C* v) { LoadN<S, decltype(cnt)::value>(in + i, v); },
      [out](I i, auto cnt, const C* v) { StoreN<S, decltype(cnt)::value>(out + i, v); });
}

template <typename S, typename I>
__global__ void __launch_bounds__(kThreads)
    GradKernel(const S* gradients, const S* x, S* out, gpu_body::Dims d, gpu_body::Split<I> split,
               gpu_body::ParamsArg<typename ComputeType<S>::type> p) {
  using C = typename ComputeType<S>::type;
  gpu_body::GradLoop<C, VecWidth<S>::value>(
      d, p, split, static_cast<I>(GlobalThread()), static_cast<I>(GridThreads()),
      [gradients](I i, auto cnt, C* v) { LoadN<S, decltype(cnt)::value>(gradients + i, v); },
      [x](I i, auto cnt, C* v) { LoadN<S, decltype(cnt)::value>(x + i, v); },
      [out](I i, auto cnt, const C* v) { StoreN<S, decltype(cnt)::value>(out + i, v); });
}

int LastError() { return static_cast<int>(cudaGetLastError()); }

// The device a stream belongs to: `device` when the caller knows it (>= 0),
// else asked from the stream (CUDA 12.8 and later), else the current device
// (the null stream, or a runtime too old to ask the stream).
cudaError_t StreamDevice(cudaStream_t s, int device, int* dev) {
  if (device >= 0) {
    *dev = device;
    return cudaSuccess;
  }
#if CUDART_VERSION >= 12080
  if (s != nullptr) return cudaStreamGetDevice(s, dev);
#endif
  return cudaGetDevice(dev);
}

// cudaSuccess when the library holds a kernel image that runs on device
// `dev`, else the error a launch there would give
// (cudaErrorNoKernelImageForDevice, or cudaErrorInvalidDeviceFunction with
// older runtimes).
cudaError_t CheckImage(int dev) {
  int current = 0;
  cudaError_t e = cudaGetDevice(&current);
  if (e != cudaSuccess) return e;
  if (current != dev && (e = cudaSetDevice(dev)) != cudaSuccess) return e;
  cudaFuncAttributes attr;
  e = cudaFuncGetAttributes(&attr, reinterpret_cast<const void*>(&ProbeKernel));
  if (current != dev) cudaSetDevice(current);
  (void)cudaGetLastError();  // not sticky: leave nothing for the next check
  return e;
}

constexpr int kMaxDevices = 64;
// Per device, the remembered answer of CheckImage (gpu_body::ImageCheckCache:
// success or a missing image only; other errors are retried).
gpu_body::ImageCheckCache device_state[kMaxDevices];

// Called first by every launcher: clears a stale error of an earlier launch
// elsewhere in the process (so that the checks after our launches report
// only our own errors), and until it has succeeded (or found no image) checks
// that the library has a kernel image for the device.
int PrepareLaunch(cudaStream_t s, int device) {
  (void)cudaGetLastError();
  int dev = 0;
  if (cudaError_t e = StreamDevice(s, device, &dev)) return static_cast<int>(e);
  const auto check = [dev] { return static_cast<int>(CheckImage(dev)); };
  if (dev < 0 || dev >= kMaxDevices) return check();
  return device_state[dev].Get(check, [](int code) { return IsMissingKernelImage(code); });
}

// Test hooks (SetForce64BitIndexForTesting, SetRangeGridRowsForTesting).
std::atomic<bool> force_64bit_index{false};
std::atomic<int64_t> range_grid_rows{gpu_body::kMaxGridY};

bool UseNarrowIndex(const Dims& d) {
  return gpu_body::Use32BitIndex(d) && !force_64bit_index.load(std::memory_order_relaxed);
}

// The address modulo 16 in elements, or -1 when it is not a multiple of the
// element size.
template <typename S>
int Misalign(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % sizeof(S) != 0) return -1;
  return static_cast<int>((a % 16) / sizeof(S));
}
int Common(int a, int b) { return a == b ? a : -1; }

template <typename S, bool kClamp, bool kHalfUp>
int LaunchQdq(const S* in, S* out, const Dims& d, const ParamsArg<typename ComputeType<S>::type>& p,
              cudaStream_t s) {
  constexpr int V = VecWidth<S>::value;
  const int misalign = Common(Misalign<S>(in), Misalign<S>(out));
  if (UseNarrowIndex(d)) {
    const auto split =
        gpu_body::MakeSplit<V, uint32_t>(static_cast<uint32_t>(gpu_body::Size(d)), misalign);
    const unsigned blocks =
        static_cast<unsigned>(gpu_body::ElementwiseBlocks(gpu_body::SplitItems<V>(split)));
    QdqKernel<S, kClamp, kHalfUp, uint32_t><<<blocks, kThreads, 0, s>>>(in, out, d, split, p);
  } else {
    const auto split = gpu_body::MakeSplit<V, int64_t>(gpu_body::Size(d), misalign);
    const unsigned blocks =
        static_cast<unsigned>(gpu_body::ElementwiseBlocks(gpu_body::SplitItems<V>(split)));
    QdqKernel<S, kClamp, kHalfUp, int64_t><<<blocks, kThreads, 0, s>>>(in, out, d, split, p);
  }
  return LastError();
}

}  // namespace

template <typename S>
size_t RangeScratchBytes(int64_t depth) {
  using K = typename Key<typename ComputeType<S>::type>::type;
  return 2 * static_cast<size_t>(depth) * sizeof(K);
}

template <typename S>
int LaunchDataRangeParams(const S* in, const Dims& d, typename ComputeType<S>::type qmin,
                          typename ComputeType<S>::type qmax, void* scratch,
                          Params<typename ComputeType<S>::type>* params_out, void* stream,
                          int device) {
  using C = typename ComputeType<S>::type;
  using K = typename Key<C>::type;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (int e = PrepareLaunch(s, device)) return e;
  if (d.depth == 0) return 0;
  K* kmin = static_cast<K*>(scratch);
  K* kmax = kmin + d.depth;
  const unsigned per_channel_blocks = static_cast<unsigned>(gpu_body::ElementwiseBlocks(d.depth));
  RangeInitKernel<K><<<per_channel_blocks, kThreads, 0, s>>>(kmin, kmax, d.depth, Key<C>::kMinStart,
                                                             Key<C>::kMaxStart);
  if (int e = LastError()) return e;
  if (gpu_body::Size(d) > 0) {
    const gpu_body::RangeGeometry g =
        gpu_body::MakeRangeGeometry(d, range_grid_rows.load(std::memory_order_relaxed));
    const dim3 grid(static_cast<unsigned>(g.grid_x), static_cast<unsigned>(g.grid_y));
    const size_t shared = 2 * static_cast<size_t>(g.window) * sizeof(K);
    if (UseNarrowIndex(d)) {
      RangeKernel<S, uint32_t>
          <<<grid, kThreads, shared, s>>>(in, d, g.window, g.windows, g.items, kmin, kmax);
    } else {
      RangeKernel<S, int64_t>
          <<<grid, kThreads, shared, s>>>(in, d, g.window, g.windows, g.items, kmin, kmax);
    }
    if (int e = LastError()) return e;
  }
  ParamsKernel<C>
      <<<per_channel_blocks, kThreads, 0, s>>>(kmin, kmax, d.depth, qmin, qmax, params_out);
  return LastError();
}

template <typename S>
int LaunchQuantizeDequantize(const S* in, S* out, const Dims& d,
                             const ParamsArg<typename ComputeType<S>::type>& p, bool clamp,
                             bool half_up, void* stream, int device) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (int e = PrepareLaunch(s, device)) return e;
  if (gpu_body::Size(d) == 0) return 0;
  if (clamp) {
    return half_up ? LaunchQdq<S, true, true>(in, out, d, p, s)
                   : LaunchQdq<S, true, false>(in, out, d, p, s);
  }
  return half_up ? LaunchQdq<S, false, true>(in, out, d, p, s)
                 : LaunchQdq<S, false, false>(in, out, d, p, s);
}

template <typename S>
int LaunchMaskedGradient(const S* gradients, const S* x, S* out, const Dims& d,
                         const ParamsArg<typename ComputeType<S>::type>& p, void* stream,
                         int device) {
  constexpr int V = VecWidth<S>::value;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (int e = PrepareLaunch(s, device)) return e;
  if (gpu_body::Size(d) == 0) return 0;
  const int misalign = Common(Common(Misalign<S>(gradients), Misalign<S>(x)), Misalign<S>(out));
  if (UseNarrowIndex(d)) {
    const auto split =
        gpu_body::MakeSplit<V, uint32_t>(static_cast<uint32_t>(gpu_body::Size(d)), misalign);
    const unsigned blocks =
        static_cast<unsigned>(gpu_body::ElementwiseBlocks(gpu_body::SplitItems<V>(split)));
    GradKernel<S, uint32_t><<<blocks, kThreads, 0, s>>>(gradients, x, out, d, split, p);
  } else {
    const auto split = gpu_body::MakeSplit<V, int64_t>(gpu_body::Size(d), misalign);
    const unsigned blocks =
        static_cast<unsigned>(gpu_body::ElementwiseBlocks(gpu_body::SplitItems<V>(split)));
    GradKernel<S, int64_t><<<blocks, kThreads, 0, s>>>(gradients, x, out, d, split, p);
  }
  return LastError();
}

int LaunchZero(void* p, size_t bytes, void* stream) {
  (void)cudaGetLastError();
  if (bytes == 0) return 0;
  return static_cast<int>(cudaMemsetAsync(p, 0, bytes, static_cast<cudaStream_t>(stream)));
}

int LaunchCopyToDevice(void* device_dst, const void* host_src, size_t bytes, void* stream) {
  (void)cudaGetLastError();
  if (bytes == 0) return 0;
  return static_cast<int>(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice,
                                          static_cast<cudaStream_t>(stream)));
}

const char* ErrorName(int code) { return cudaGetErrorName(static_cast<cudaError_t>(code)); }
const char* ErrorString(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }
bool IsInsufficientDriver(int code) {
  return code == static_cast<int>(cudaErrorInsufficientDriver);
}
bool IsMissingKernelImage(int code) {
  return code == static_cast<int>(cudaErrorNoKernelImageForDevice) ||
         code == static_cast<int>(cudaErrorInvalidDeviceFunction);
}
int RuntimeVersion() {
  int v = 0;
  return cudaRuntimeGetVersion(&v) == cudaSuccess ? v : 0;
}
int DriverVersion() {
  int v = 0;
  return cudaDriverGetVersion(&v) == cudaSuccess ? v : 0;
}
const char* BuildDescription() {
  // "13.0 sm_75,sm_80,sm_90" from "750,800,900".
  static const std::string text = [] {
    std::string archs, item;
    const std::string list = std::string(TF_QDQ_ARCH_LIST) + ",";
    for (char ch : list) {
      if (ch >= '0' && ch <= '9') {
        item += ch;
      } else if (ch == ',' && !item.empty()) {
        const int a = std::stoi(item) / 10;
        archs += (archs.empty() ? "sm_" : ",sm_") + std::to_string(a);
        item.clear();
      }
    }
    return std::string(TF_QDQ_NVCC_VERSION) + " " +
           (archs.empty() ? std::string("(architectures unknown)") : archs);
  }();
  return text.c_str();
}

void SetForce64BitIndexForTesting(bool force) {
  force_64bit_index.store(force, std::memory_order_relaxed);
}
void SetRangeGridRowsForTesting(int64_t rows) {
  range_grid_rows.store(rows, std::memory_order_relaxed);
}

std::string MissingKernelImageMessage(void* stream, int device_ordinal) {
  int dev = -1;
  std::string device = "this GPU";
  int major = 0, minor = 0;
  if (StreamDevice(static_cast<cudaStream_t>(stream), device_ordinal, &dev) == cudaSuccess) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
      major = prop.major;
      minor = prop.minor;
      device = "GPU " + std::to_string(dev) + " (" + prop.name + ", compute capability " +
               std::to_string(major) + "." + std::to_string(minor) + ")";
    }
  }
  (void)cudaGetLastError();
  const std::string arch = major > 0 ? std::to_string(major) + std::to_string(minor) : "<cc>";
  std::string msg = "tf_qdq's GPU kernels have no image that runs on " + device +
                    ": the library was built with CUDA " + BuildDescription() +
                    ". Rebuild it for this GPU: TF_QDQ_CUDA_ARCHS=" + arch +
                    " python setup.py build_ext --inplace (or "
                    "TF_QDQ_CUDA_ARCHS=" +
                    arch + " pip install .)";
  const int cc = major * 10 + minor;
  if (major > 0 && cc < 50) {
    msg +=
        "; no CUDA 12 or later toolkit compiles for compute capability "
        "below 5.0, so place the ops on the CPU (tf.device('/CPU:0')) or "
        "build without CUDA (TF_QDQ_CUDA=0)";
  } else if (major > 0 && cc < 75) {
    msg += "; CUDA 13 and later cannot compile for compute capability " + std::to_string(major) +
           "." + std::to_string(minor) +
           ", so use a CUDA 12 nvcc: TF_QDQ_NVCC=/usr/local/cuda-12/bin/nvcc";
  }
  msg += ". Until then, place the ops on the CPU (tf.device('/CPU:0')).";
  return msg;
}

#define TF_QDQ_INSTANTIATE_GPU(S)                                                                 \
  template size_t RangeScratchBytes<S>(int64_t);                                                  \
  template int LaunchDataRangeParams<S>(const S*, const Dims&, ComputeType<S>::type,              \
                                        ComputeType<S>::type, void*,                              \
                                        Params<ComputeType<S>::type>*, void*, int);               \
  template int LaunchQuantizeDequantize<S>(                                                       \
      const S*, S*, const Dims&, const ParamsArg<ComputeType<S>::type>&, bool, bool, void*, int); \
  template int LaunchMaskedGradient<S>(const S*, const S*, S*, const Dims&,                       \
                                       const ParamsArg<ComputeType<S>::type>&, void*, int);
TF_QDQ_INSTANTIATE_GPU(BFloat16Bits)
TF_QDQ_INSTANTIATE_GPU(HalfBits)
TF_QDQ_INSTANTIATE_GPU(float)
TF_QDQ_INSTANTIATE_GPU(double)
#undef TF_QDQ_INSTANTIATE_GPU

}  // namespace gpu
}  // namespace tf_qdq
