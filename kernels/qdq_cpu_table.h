// Table of the vectorized CPU inner loops, one table per instruction set.
//
// The loops themselves are in qdq_cpu_loops.h, compiled once per instruction
// set (qdq_cpu_sse2.cc, qdq_cpu_avx2.cc, qdq_cpu_avx512.cc, each with its own
// -m flags); qdq_cpu.cc picks a table at run time from what the CPU supports.
// Every table computes identical bits: the same IEEE operations in the same
// order per element (qdq_math.h), only the vector width differs.
//
// This header uses no TensorFlow or Eigen types: half and bfloat16 travel as
// their uint16_t bit patterns.
#ifndef TF_QDQ_KERNELS_QDQ_CPU_TABLE_H_
#define TF_QDQ_KERNELS_QDQ_CPU_TABLE_H_

#include <cstdint>

namespace tf_qdq {
namespace cpu {

// Loops for storage type S computed in C (float, or double for double).
// Every loop handles `out == in` (the kernels forward their input buffer).
// `stream`: store the output with non-temporal stores (large tensors); the
// caller must then call StoreFence() before handing the output on.
template <typename S, typename C>
struct TypedLoops {
  // NaN-ignoring min/max of x[0..n) merged into *mn, *mx.
  void (*range)(const S* x, int64_t n, C* mn, C* mx);
  // The *_cols loops give every element its own position in a period of
  // `period` positions: element k of x is at position (p0 + k) % period, and
  // per-position arrays (mn, mx, scale, ...) have `period` entries.
  // mn[p] = min(mn[p], x[k]), mx[p] likewise, for k in [0, n).
  void (*range_cols)(const S* x, int64_t n, C* mn, C* mx, int64_t period, int64_t p0);
  // y = QDQ(x) with one set of parameters; [clamp][half_up].
  void (*qdq[2][2])(const S* x, S* y, int64_t n, C scale, C inv, C lo, C hi, bool stream);
  // y[k] = QDQ(x[k]) with parameters scale[p], inv[p], lo[p], hi[p].
  void (*qdq_cols[2][2])(const S* x, S* y, int64_t n, const C* scale, const C* inv, const C* lo,
                         const C* hi, int64_t period, int64_t p0, bool stream);
  // y = g * (lo <= x <= hi).
  void (*grad)(const S* g, const S* x, S* y, int64_t n, C lo, C hi, bool stream);
  // y[k] = g[k] * (lo[p] <= x[k] <= hi[p]).
  void (*grad_cols)(const S* g, const S* x, S* y, int64_t n, const C* lo, const C* hi,
                    int64_t period, int64_t p0, bool stream);
  // Whether grad with lo = -inf, hi = +inf returns g[0..n) unchanged, bit
  // for bit (no NaN in x; no NaN, nor a subnormal that the product with one
  // would flush, in g).
  bool (*passes_unbounded)(const S* g, const S* x, int64_t n);
};

struct LoopTable {
  const char* isa;  // "sse2", "avx2", "avx512": what TfQdqCpuIsa() reports
  TypedLoops<float, float> f32;
  TypedLoops<double, double> f64;
  TypedLoops<uint16_t, float> f16;   // IEEE half bit patterns
  TypedLoops<uint16_t, float> bf16;  // bfloat16 bit patterns
};

// Orders non-temporal stores before later stores (SFENCE on x86).
void StoreFence();

// One table per instruction set (only call a table the CPU supports).
const LoopTable& LoopsSse2();
const LoopTable& LoopsAvx2();
const LoopTable& LoopsAvx512();

}  // namespace cpu
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_TABLE_H_
