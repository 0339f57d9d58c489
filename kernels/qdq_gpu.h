// Launchers of the CUDA kernels (defined in qdq_gpu.cu.cc, compiled by nvcc),
// called by the GPU functors (qdq_gpu.cc, compiled by g++ against
// TensorFlow). This interface uses neither CUDA nor TensorFlow types, so each
// side compiles with only its own headers: pointers are raw device pointers,
// `stream` is the cudaStream_t (CUstream) of the op, and every launcher only
// enqueues work on that stream (no host synchronization) and returns 0 or a
// cudaError_t value. Every launcher accepts empty views (it then launches
// nothing), first clears a stale CUDA error left by an earlier launch
// elsewhere in the process, and on the first use of each device checks that
// the library holds a kernel image for it: without one it returns
// cudaErrorNoKernelImageForDevice (see IsMissingKernelImage) before
// launching anything. Only that answer and success are remembered; any other
// error of the check (e.g. a transient cudaErrorMemoryAllocation) is returned
// and the check runs again on the next launch.
//
// `device`: the CUDA device ordinal of `stream` (TensorFlow's
// StreamExecutor::device_ordinal()), so that the check never depends on the
// calling thread's current device or context; -1 looks it up from the stream
// (cudaStreamGetDevice, CUDA 12.8 and later) or, with an older runtime or
// the null stream, takes the current device.
#ifndef TF_QDQ_KERNELS_QDQ_GPU_H_
#define TF_QDQ_KERNELS_QDQ_GPU_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/qdq_gpu_body.h"
#include "kernels/qdq_math.h"

namespace tf_qdq {
namespace gpu {

using gpu_body::Dims;
using gpu_body::ParamsArg;

// Storage types of half and bfloat16 (the bits of Eigen::half and
// Eigen::bfloat16, of __half and __nv_bfloat16).
struct HalfBits {
  uint16_t bits;
};
struct BFloat16Bits {
  uint16_t bits;
};

// Bytes of device scratch that LaunchDataRangeParams needs for `depth`
// channels (two order keys per channel).
template <typename S>
size_t RangeScratchBytes(int64_t depth);

// Per-channel NaN-ignoring min/max of `in` (device, d.outer*d.depth*d.inner
// elements, at least one), then params_out[c] = ComputeParams(min_c, max_c,
// qmin, qmax) on the device (params_out: d.depth entries of device memory).
template <typename S>
int LaunchDataRangeParams(const S* in, const Dims& d, typename ComputeType<S>::type qmin,
                          typename ComputeType<S>::type qmax, void* scratch,
                          Params<typename ComputeType<S>::type>* params_out, void* stream,
                          int device = -1);

// out = QDQ(in) with the per-channel (or single) parameters. `out` may alias
// `in`. clamp: the range was given.
template <typename S>
int LaunchQuantizeDequantize(const S* in, S* out, const Dims& d,
                             const ParamsArg<typename ComputeType<S>::type>& p, bool clamp,
                             bool half_up, void* stream, int device = -1);

// out = gradients * (lo <= x <= hi) with per-channel (or single) raw bounds in
// Params::lo / Params::hi. `out` may alias `gradients`.
template <typename S>
int LaunchMaskedGradient(const S* gradients, const S* x, S* out, const Dims& d,
                         const ParamsArg<typename ComputeType<S>::type>& p, void* stream,
                         int device = -1);

// Zero bytes at device pointer p (all four types: zero bits are +0.0).
int LaunchZero(void* p, size_t bytes, void* stream);

// Copies bytes from page-locked host memory to the device, asynchronously.
int LaunchCopyToDevice(void* device_dst, const void* host_src, size_t bytes, void* stream);

// Name and description of an error code returned above.
const char* ErrorName(int code);
const char* ErrorString(int code);
// True for cudaErrorInsufficientDriver (the driver is older than the CUDA
// runtime linked into the library).
bool IsInsufficientDriver(int code);
// True for the codes of a device the library has no kernel image for
// (cudaErrorNoKernelImageForDevice, cudaErrorInvalidDeviceFunction).
bool IsMissingKernelImage(int code);
// What to do about a missing kernel image on the device of `stream`
// (`device` as for the launchers): names the device and its compute
// capability, the CUDA version and architectures the library was built for,
// and the rebuild command.
std::string MissingKernelImageMessage(void* stream, int device = -1);
// "<CUDA version> <architectures>" of this build (e.g.
// "13.0 sm_75,sm_80,sm_90,compute_90").
const char* BuildDescription();
// The CUDA runtime version linked in (e.g. 13000), and the driver's CUDA
// version (0 when no driver is installed).
int RuntimeVersion();
int DriverVersion();

// Test hooks for tools/gpu_harness/ (never called by the ops): launches
// after these calls take the 64-bit index path for every size (force), and
// give the range scan at most `rows` rows of blocks (gridDim.y, default
// 65535), so that small tensors reach the loop over several windows per
// block row that otherwise needs more than 134M channels. Process-wide.
void SetForce64BitIndexForTesting(bool force);
void SetRangeGridRowsForTesting(int64_t rows);

}  // namespace gpu
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_GPU_H_
