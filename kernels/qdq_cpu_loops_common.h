// The common part of the CPU loops (qdq_cpu_loops.h, included once per
// instruction set): LoopsCommon<Storage> holds the storage and compute types,
// loads and stores of whole vectors, conversions through L1 chunks, and the
// walk over a period of positions. RangeLoops (qdq_cpu_range.h) and
// ElementwiseLoops (qdq_cpu_elementwise.h) build on it.
#ifndef TF_QDQ_KERNELS_QDQ_CPU_LOOPS_COMMON_H_
#define TF_QDQ_KERNELS_QDQ_CPU_LOOPS_COMMON_H_

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/qdq_cpu_storage.h"
#include "kernels/qdq_cpu_vector.h"
#include "kernels/qdq_math.h"

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {
namespace {

// Elements per chunk of the L1 buffers (conversions, streaming stores).
constexpr int64_t kChunk = 1024;

template <typename Storage>
struct LoopsCommon {
  using S = typename Storage::S;  // storage type
  using C = typename Storage::C;  // compute type
  static constexpr bool kDirect = sizeof(S) == sizeof(C);
  static constexpr bool kVectorConvert = Storage::kVectorConvert;
  static constexpr bool kStreamVectors = Storage::kStreamVectors;
  static constexpr bool kPairs = Storage::kPairs;

  // The float vector at p (float, or half / bfloat16 converted in registers).
  static inline VF LoadV(const S* p) {
    if constexpr (kVectorConvert) {
      return Storage::Load(p);
    } else if constexpr (std::is_same_v<S, float>) {
      return LoadVF(p);
    } else {
      return Splat(0.0f);  // not used: no vector loops for this type
    }
  }
  // Per-element parameters / one parameter as a float vector (the vector
  // loops only run for compute type float).
  static inline VF ParamV(const C* p) {
    if constexpr (std::is_same_v<C, float>) {
      return LoadVF(p);
    } else {
      return Splat(0.0f);  // not used
    }
  }
  static inline VF SplatC(C v) {
    if constexpr (std::is_same_v<C, float>) {
      return Splat(v);
    } else {
      return Splat(0.0f);  // not used
    }
  }
  static inline void StoreV(S* p, VF v) {
    if constexpr (kVectorConvert) Storage::Store(p, v);
  }
  // Two vectors with lanes permuted (kPairs: see qdq_cpu_storage.h).
  static inline void LoadPairV(const S* p, VF* a, VF* b) {
    if constexpr (kPairs) Storage::LoadPair(p, a, b);
  }
  static inline void StorePairV(S* p, VF a, VF b) {
    if constexpr (kPairs) Storage::StorePair(p, a, b);
  }
  static inline void StorePairs2V(S* p, VF a, VF b, VF c, VF d) {
    if constexpr (kPairs) Storage::StorePairs2(p, a, b, c, d);
  }
  static inline void StorePairExactV(S* p, VF a, VF b) {
    if constexpr (kPairs) Storage::StorePairExact(p, a, b);
  }
  static inline void StreamV(S* p, VF v) {
    if constexpr (kStreamVectors) Storage::Stream(p, v);
  }

  // ---- Integer keys of 16-bit patterns (half, bfloat16) ------------------
  //
  // Key(b) is a signed 16-bit integer that orders like the value of pattern
  // b (sign-magnitude to two's complement: a negative pattern flips its
  // magnitude bits; the map is its own inverse). The order is IEEE's total
  // order: -0 (key -1) < +0 (key 0); NaN patterns fall outside
  // [Key(-inf), Key(+inf)], a negative NaN below and a positive NaN above.
  typedef int16_t VK __attribute__((vector_size(TF_QDQ_VEC_BYTES)));
  static constexpr int kKeyLanes = TF_QDQ_VEC_BYTES / 2;

  static inline int16_t Key(uint16_t b) {
    const int16_t v = static_cast<int16_t>(b);
    return static_cast<int16_t>(v ^ ((v >> 15) & 0x7fff));
  }
  static inline VK KeyV(VK v) { return v ^ ((v >> 15) & 0x7fff); }
  // The 16-bit patterns at p as one vector.
  static inline VK LoadBitsV(const S* p) {
    VK v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static inline VK SplatK(int16_t k) {
    VK v;
    for (int j = 0; j < kKeyLanes; ++j) v[j] = k;
    return v;
  }

  // in[0..n) -> buf (converted).
  static inline void Widen(const S* __restrict in, C* __restrict buf, int64_t n) {
    for (int64_t k = 0; k < n; ++k) buf[k] = Storage::ToCompute(in[k]);
  }
  static inline void Narrow(const C* __restrict buf, S* __restrict out, int64_t n) {
    for (int64_t k = 0; k < n; ++k) out[k] = Storage::ToStorage(buf[k]);
  }

  // Calls fn(c, i, len) with c[0..len) the compute values of x[i, i + len),
  // covering x[0..n): x itself when the types are the same, else chunks
  // widened into an L1 buffer.
  template <typename Fn>
  static inline void AsCompute(const S* x, int64_t n, const Fn& fn) {
    if constexpr (kDirect) {
      fn(reinterpret_cast<const C*>(x), 0, n);
    } else {
      alignas(64) C buf[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(x + i, buf, len);
        fn(buf, i, len);
      }
    }
  }

  // Calls seg(i, p, len) for the segments of [0, n) within one period:
  // element i + j (j < len) is at position p + j.
  template <typename Fn>
  static inline void Periods(int64_t n, int64_t period, int64_t p0, const Fn& seg) {
    int64_t i = 0, p = p0;
    while (i < n) {
      const int64_t len = n - i < period - p ? n - i : period - p;
      seg(i, p, len);
      i += len;
      p = 0;
    }
  }
};

}  // namespace
}  // namespace TF_QDQ_ISA_NAMESPACE
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_LOOPS_COMMON_H_
