// Host-side work of the GPU functors (qdq_gpu.cc) that must give the same
// bits as the device: the parameters of a given range, computed on the host
// with IEEE subnormals.
//
// TensorFlow runs every OpKernel::Compute under ScopedFlushDenormal (x86:
// MXCSR flush-to-zero and denormals-are-zero; Arm: FPCR.FZ), so plain host
// arithmetic there reads a subnormal bound as zero and flushes a subnormal
// inverse scale to zero. The device kernels (-ftz=false), the data-range
// ParamsKernel and TensorFlow's own GPU kernel keep subnormals, so the
// given-range parameters are computed here with the flush modes cleared and
// restored around the computation (ScopedIeeeSubnormals). The CPU kernels are
// unaffected: they run flushed, as TensorFlow's CPU kernels do.
//
// No CUDA or TensorFlow headers: tests/gpu_emulation.cc checks this under
// flush-to-zero without a GPU.
#ifndef TF_QDQ_KERNELS_QDQ_GPU_HOST_H_
#define TF_QDQ_KERNELS_QDQ_GPU_HOST_H_

#include <cstdint>

#include "kernels/qdq_math.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define TF_QDQ_HOST_X86 1
#endif

namespace tf_qdq {
namespace gpu_host {

#if defined(TF_QDQ_HOST_X86)
// MXCSR bits: flush-to-zero (results) and denormals-are-zero (inputs).
constexpr unsigned kMxcsrFtz = 1u << 15;
constexpr unsigned kMxcsrDaz = 1u << 6;
#elif defined(__aarch64__)
// FPCR.FZ (single and double precision).
constexpr uint64_t kFpcrFz = uint64_t{1} << 24;
#endif

// While alive, host floating-point arithmetic on this thread keeps
// subnormals (inputs and results); the previous modes are restored after.
class ScopedIeeeSubnormals {
 public:
  ScopedIeeeSubnormals() {
#if defined(TF_QDQ_HOST_X86)
    saved_ = _mm_getcsr();
    if (saved_ & (kMxcsrFtz | kMxcsrDaz)) _mm_setcsr(saved_ & ~(kMxcsrFtz | kMxcsrDaz));
#elif defined(__aarch64__)
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
    if (saved_ & kFpcrFz) {
      const uint64_t v = saved_ & ~kFpcrFz;
      __asm__ __volatile__("msr fpcr, %0" : : "r"(v));
    }
#endif
  }
  ~ScopedIeeeSubnormals() {
#if defined(TF_QDQ_HOST_X86)
    if (saved_ & (kMxcsrFtz | kMxcsrDaz)) _mm_setcsr(saved_);
#elif defined(__aarch64__)
    if (saved_ & kFpcrFz) __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_));
#endif
  }
  ScopedIeeeSubnormals(const ScopedIeeeSubnormals&) = delete;
  ScopedIeeeSubnormals& operator=(const ScopedIeeeSubnormals&) = delete;

 private:
#if defined(TF_QDQ_HOST_X86)
  unsigned saved_;
#elif defined(__aarch64__)
  uint64_t saved_;
#endif
};

// params[c] = ComputeParams(C(mn[c]), C(mx[c]), qmin, qmax) for c < depth,
// with IEEE subnormals whatever the calling thread's flush modes: the same
// bits as ComputeParams on the device. T: the storage type of the bounds
// (converted to C inside, where subnormals are kept too).
template <typename C, typename T>
void GivenRangeParams(const T* mn, const T* mx, int64_t depth, C qmin, C qmax, Params<C>* params) {
  ScopedIeeeSubnormals ieee;
  // The compiler must not move the arithmetic across the mode switches
  // (volatile register writes): every input is read from, and every result
  // written to, a volatile variable between them.
  for (int64_t c = 0; c < depth; ++c) {
    volatile C in[2] = {static_cast<C>(mn[c]), static_cast<C>(mx[c])};
    const Params<C> p = ComputeParams<C>(in[0], in[1], qmin, qmax);
    volatile C out[4] = {p.scale, p.inv, p.lo, p.hi};
    params[c] = Params<C>{out[0], out[1], out[2], out[3]};
  }
}

}  // namespace gpu_host
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_GPU_HOST_H_
