// Serial host reference for the GPU kernels: the per-channel NaN-ignoring
// range with the zero-sign rule of docs/semantics.md#arithmetic, written
// plainly (flat order, 64-bit division per element) and independently of the
// kernels' index code (kernels/qdq_gpu_body.h). The per-element arithmetic is
// qdq_math.h, as on the CPU and the GPU. Used by the host emulation
// (tests/gpu_emulation.cc) and the device harness (tools/gpu_harness/).
//
// No CUDA or TensorFlow headers.
#ifndef TF_QDQ_TOOLS_GPU_HARNESS_REFERENCE_H_
#define TF_QDQ_TOOLS_GPU_HARNESS_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/qdq_math.h"

namespace tf_qdq {
namespace reference {

// Channel of flat element i of a [outer, depth, inner] view.
inline int64_t ChannelOf(int64_t i, int64_t depth, int64_t inner) { return (i / inner) % depth; }

// Per-channel min/max of the non-NaN values get(i), i < n, of a
// [n / (depth * inner), depth, inner] view: +inf / -inf for a channel without
// any. A zero maximum is +0.0 if the channel holds a +0.0, else -0.0; a zero
// minimum is -0.0 if the channel holds a -0.0, else +0.0.
template <typename C, typename Get>
void Range(int64_t n, int64_t depth, int64_t inner, const Get& get, std::vector<C>* mn,
           std::vector<C>* mx) {
  const C inf = std::numeric_limits<C>::infinity();
  mn->assign(depth, inf);
  mx->assign(depth, -inf);
  std::vector<char> pos_zero(depth, 0), neg_zero(depth, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = ChannelOf(i, depth, inner);
    const C v = get(i);
    (*mn)[c] = MinIgnoringNaN((*mn)[c], v);
    (*mx)[c] = MaxIgnoringNaN((*mx)[c], v);
    if (v == C(0)) (std::signbit(v) ? neg_zero : pos_zero)[c] = 1;
  }
  for (int64_t c = 0; c < depth; ++c) {
    if ((*mx)[c] == C(0)) (*mx)[c] = pos_zero[c] ? C(0) : -C(0);
    if ((*mn)[c] == C(0)) (*mn)[c] = neg_zero[c] ? -C(0) : C(0);
  }
}

// QuantizeDequantize with run-time clamp / round-mode flags.
template <typename C>
C Qdq(C x, const Params<C>& p, bool clamp, bool half_up) {
  if (clamp) {
    return half_up ? QuantizeDequantize<C, true, true>(x, p.lo, p.hi, p.scale, p.inv)
                   : QuantizeDequantize<C, true, false>(x, p.lo, p.hi, p.scale, p.inv);
  }
  return half_up ? QuantizeDequantize<C, false, true>(x, p.lo, p.hi, p.scale, p.inv)
                 : QuantizeDequantize<C, false, false>(x, p.lo, p.hi, p.scale, p.inv);
}

}  // namespace reference
}  // namespace tf_qdq

#endif  // TF_QDQ_TOOLS_GPU_HARNESS_REFERENCE_H_
