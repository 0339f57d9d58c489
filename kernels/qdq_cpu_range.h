// The NaN-ignoring min/max loops of the CPU (qdq_cpu_loops.h, included once
// per instruction set): per tensor or per channel row (Range; half and
// bfloat16 on their bit patterns, see RangeBits) and per position of a
// period (RangeCols). The sign of a zero result is left to the caller
// (qdq_cpu.cc settles it).
#ifndef TF_QDQ_KERNELS_QDQ_CPU_RANGE_H_
#define TF_QDQ_KERNELS_QDQ_CPU_RANGE_H_

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/qdq_cpu_loops_common.h"
#include "kernels/qdq_math.h"

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {
namespace {

template <typename Storage>
struct RangeLoops : LoopsCommon<Storage> {
  using Base = LoopsCommon<Storage>;
  using S = typename Base::S;
  using C = typename Base::C;
  using Base::AsCompute;
  using Base::kDirect;
  using Base::kPairs;
  using Base::kVectorConvert;
  using Base::LoadPairV;
  using Base::LoadV;
  using Base::Periods;

  // GCC/Clang vector type of the compute type, one vector register wide.
  typedef C Vec __attribute__((vector_size(TF_QDQ_VEC_BYTES)));
  static constexpr int kWidth = TF_QDQ_VEC_BYTES / sizeof(C);

  static inline Vec LoadVec(const C* p) {
    Vec v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }

  // The reduction is written with explicit vectors: compilers do not
  // vectorize a NaN-ignoring min/max reduction on their own. Four
  // independent accumulators of each; lane by lane the same compare-and-
  // select as MinIgnoringNaN / MaxIgnoringNaN.
  static inline void RangeC(const C* x, int64_t n, C* mn, C* mx) {
    RangeAny(x, n, mn, mx, [](const C* p) { return LoadVec(p); }, [](C v) { return v; });
  }

  // load(p): the vector of compute values at p; in(v): one value.
  template <typename Elem, typename LoadFn, typename InFn>
  static inline void RangeAny(const Elem* x, int64_t n, C* mn, C* mx, const LoadFn& load,
                              const InFn& in) {
    Vec a0, a1, a2, a3, b0, b1, b2, b3;
    for (int j = 0; j < kWidth; ++j) {
      a0[j] = *mn;
      b0[j] = *mx;
    }
    a1 = a2 = a3 = a0;
    b1 = b2 = b3 = b0;
    int64_t i = 0;
    for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
      Vec v0, v1, v2, v3;
      if constexpr (kPairs && std::is_same_v<Elem, S>) {
        // Lanes permuted: the minimum and maximum do not depend on order.
        LoadPairV(x + i, &v0, &v1);
        LoadPairV(x + i + 2 * kWidth, &v2, &v3);
      } else {
        v0 = load(x + i);
        v1 = load(x + i + kWidth);
        v2 = load(x + i + 2 * kWidth);
        v3 = load(x + i + 3 * kWidth);
      }
      a0 = (v0 < a0) ? v0 : a0;
      a1 = (v1 < a1) ? v1 : a1;
      a2 = (v2 < a2) ? v2 : a2;
      a3 = (v3 < a3) ? v3 : a3;
      b0 = (b0 < v0) ? v0 : b0;
      b1 = (b1 < v1) ? v1 : b1;
      b2 = (b2 < v2) ? v2 : b2;
      b3 = (b3 < v3) ? v3 : b3;
    }
    // Fold the four accumulators, then single vectors, then lanes, then the
    // scalar tail (min/max of non-NaN values: any order gives the same value,
    // up to the sign of a zero, which the caller settles).
    a0 = (a1 < a0) ? a1 : a0;
    a2 = (a3 < a2) ? a3 : a2;
    a0 = (a2 < a0) ? a2 : a0;
    b0 = (b0 < b1) ? b1 : b0;
    b2 = (b2 < b3) ? b3 : b2;
    b0 = (b0 < b2) ? b2 : b0;
    for (; i + kWidth <= n; i += kWidth) {
      const Vec v = load(x + i);
      a0 = (v < a0) ? v : a0;
      b0 = (b0 < v) ? v : b0;
    }
    C a = *mn, b = *mx;
    for (int j = 0; j < kWidth; ++j) {
      a = MinIgnoringNaN(a, a0[j]);
      b = MaxIgnoringNaN(b, b0[j]);
    }
    for (; i < n; ++i) {
      a = MinIgnoringNaN(a, in(x[i]));
      b = MaxIgnoringNaN(b, in(x[i]));
    }
    *mn = a;
    *mx = b;
  }

  // ---- Half and bfloat16: the range on the bit patterns -------------------
  //
  // The reduction is plain signed 16-bit min/max on whole vectors of keys
  // (LoopsCommon::Key: they order like the values, -0 < +0), with no
  // conversion to float. A NaN pattern drags the minimum below Key(-inf) or
  // the maximum above Key(+inf), and only then is the vector part reduced
  // again with the NaN patterns replaced by a select (never clamped: a -NaN
  // must not count as -inf). Only the two final keys are converted.
  //
  // Used where it measured faster than converting to float: always in the
  // tables without F16C (SSE2: 2-15x) and in AVX-512 (1.05-1.3x, rows of 33
  // elements up to whole tensors); on AVX2 from kKeyRangeMin elements on
  // (1.1-1.2x at 64K), while shorter rows, per channel, take the float loop
  // (F16C, or bfloat16's paired unpacks), which costs less per call: on keys
  // rows of 33-64 elements ran 10-25% slower.
  using Base::Key;
  using Base::KeyV;
  using Base::kKeyLanes;
  using Base::LoadBitsV;
  using Base::SplatK;
  using typename Base::VK;
  static constexpr bool kBitsRange = sizeof(S) == 2;
  static constexpr int64_t kKeyRangeMin = kVectorConvert && TF_QDQ_VEC_BYTES == 32 ? 512 : 0;

  // Keys of x[0..n) (whole vectors only; n a multiple of kKeyLanes) reduced
  // into *kmin, *kmax. kExcludeNaN: NaN patterns replaced by key(+inf) for
  // the minimum and key(-inf) for the maximum.
  template <bool kExcludeNaN>
  static inline void KeyRange(const S* x, int64_t n, int16_t* kmin, int16_t* kmax) {
    constexpr int16_t kPosInf = static_cast<int16_t>(Storage::kInfBits);
    const int16_t kNegInf = Key(static_cast<uint16_t>(Storage::kInfBits | 0x8000u));
    VK a0 = SplatK(*kmin), b0 = SplatK(*kmax);
    VK a1 = a0, a2 = a0, a3 = a0, b1 = b0, b2 = b0, b3 = b0;
    auto lanes = [&](const S* p, VK* lo_in, VK* hi_in) {
      const VK v = LoadBitsV(p);
      const VK k = KeyV(v);
      if constexpr (kExcludeNaN) {
        const VK nan = (v & 0x7fff) > kPosInf;
        *lo_in = nan ? SplatK(kPosInf) : k;
        *hi_in = nan ? SplatK(kNegInf) : k;
      } else {
        *lo_in = k;
        *hi_in = k;
      }
    };
    int64_t i = 0;
    for (; i + 4 * kKeyLanes <= n; i += 4 * kKeyLanes) {
      VK l0, l1, l2, l3, h0, h1, h2, h3;
      lanes(x + i, &l0, &h0);
      lanes(x + i + kKeyLanes, &l1, &h1);
      lanes(x + i + 2 * kKeyLanes, &l2, &h2);
      lanes(x + i + 3 * kKeyLanes, &l3, &h3);
      a0 = (l0 < a0) ? l0 : a0;
      a1 = (l1 < a1) ? l1 : a1;
      a2 = (l2 < a2) ? l2 : a2;
      a3 = (l3 < a3) ? l3 : a3;
      b0 = (b0 < h0) ? h0 : b0;
      b1 = (b1 < h1) ? h1 : b1;
      b2 = (b2 < h2) ? h2 : b2;
      b3 = (b3 < h3) ? h3 : b3;
    }
    for (; i < n; i += kKeyLanes) {
      VK l, h;
      lanes(x + i, &l, &h);
      a0 = (l < a0) ? l : a0;
      b0 = (b0 < h) ? h : b0;
    }
    a0 = (a1 < a0) ? a1 : a0;
    a2 = (a3 < a2) ? a3 : a2;
    a0 = (a2 < a0) ? a2 : a0;
    b0 = (b0 < b1) ? b1 : b0;
    b2 = (b2 < b3) ? b3 : b2;
    b0 = (b0 < b2) ? b2 : b0;
    *kmin = ReduceK(a0, [](VK8 u, VK8 v) { return (v < u) ? v : u; });
    *kmax = ReduceK(b0, [](VK8 u, VK8 v) { return (u < v) ? v : u; });
  }

  // op over the lanes of v: the 128-bit parts first, then halving shuffles
  // (a scalar loop over the lanes costs more than a short row's reduction).
  typedef int16_t VK8 __attribute__((vector_size(16)));
  template <typename Op>
  static inline int16_t ReduceK(VK v, const Op& op) {
    VK8 parts[sizeof(VK) / sizeof(VK8)];
    std::memcpy(parts, &v, sizeof(v));
    VK8 r = parts[0];
    for (size_t j = 1; j < sizeof(VK) / sizeof(VK8); ++j) r = op(r, parts[j]);
    r = op(r, __builtin_shuffle(r, VK8{4, 5, 6, 7, 0, 1, 2, 3}));
    r = op(r, __builtin_shuffle(r, VK8{2, 3, 0, 1, 6, 7, 4, 5}));
    r = op(r, __builtin_shuffle(r, VK8{1, 0, 3, 2, 5, 4, 7, 6}));
    return r[0];
  }

  __attribute__((noinline)) static void RangeBits(const S* x, int64_t n, C* mn, C* mx) {
    constexpr int16_t kPosInf = static_cast<int16_t>(Storage::kInfBits);
    const int16_t kNegInf = Key(static_cast<uint16_t>(Storage::kInfBits | 0x8000u));
    const int64_t nv = n / kKeyLanes * kKeyLanes;
    int16_t kmin = kPosInf, kmax = kNegInf;  // the keys of +inf and -inf
    KeyRange<false>(x, nv, &kmin, &kmax);
    if (kmin < kNegInf || kmax > kPosInf) {  // a NaN pattern took part
      kmin = kPosInf;
      kmax = kNegInf;
      KeyRange<true>(x, nv, &kmin, &kmax);
    }
    for (int64_t i = nv; i < n; ++i) {
      if ((x[i] & 0x7fffu) > Storage::kInfBits) continue;  // NaN
      const int16_t k = Key(x[i]);
      kmin = k < kmin ? k : kmin;
      kmax = kmax < k ? k : kmax;
    }
    // The key map is its own inverse.
    const uint16_t bmin = static_cast<uint16_t>(Key(static_cast<uint16_t>(kmin)));
    const uint16_t bmax = static_cast<uint16_t>(Key(static_cast<uint16_t>(kmax)));
    *mn = MinIgnoringNaN(*mn, Storage::ToCompute(bmin));
    *mx = MaxIgnoringNaN(*mx, Storage::ToCompute(bmax));
  }

  static void Range(const S* x, int64_t n, C* mn, C* mx) {
    if constexpr (kVectorConvert) {
      if (n < kKeyRangeMin) {
        RangeAny(
            x, n, mn, mx, [](const S* p) { return LoadV(p); },
            [](S v) { return Storage::ToCompute(v); });
        return;
      }
    }
    if constexpr (kBitsRange) {
      RangeBits(x, n, mn, mx);
    } else {
      AsCompute(x, n, [&](const C* c, int64_t, int64_t len) { RangeC(c, len, mn, mx); });
    }
  }

  static inline void RangeColsC(const C* __restrict x, int64_t n, C* __restrict mn,
                                C* __restrict mx) {
    for (int64_t k = 0; k < n; ++k) {
      mn[k] = MinIgnoringNaN(mn[k], x[k]);
      mx[k] = MaxIgnoringNaN(mx[k], x[k]);
    }
  }

  static void RangeCols(const S* x, int64_t n, C* mn, C* mx, int64_t period, int64_t p0) {
    int64_t i = 0;
    if (p0 != 0) {  // up to the first period boundary
      i = n < period - p0 ? n : period - p0;
      RangeColsSeg(x, i, mn + p0, mx + p0);
    }
    if constexpr (kDirect || kVectorConvert) {
      // Whole periods, kRows at a time: each accumulator vector is loaded
      // and stored once per kRows rows instead of once per row. Only for
      // data that fits in L2: streamed from memory, kRows interleaved
      // streams are slower than one sequential stream.
      constexpr int64_t kRows = 8;
      if (n * static_cast<int64_t>(sizeof(S)) <= (int64_t{1} << 20)) {
        for (; n - i >= kRows * period; i += kRows * period) {
          RangeColsRows<kRows>(x + i, period, mn, mx);
        }
      }
    }
    Periods(n - i, period, 0, [&](int64_t j, int64_t p, int64_t len) {
      RangeColsSeg(x + i + j, len, mn + p, mx + p);
    });
  }

  // Loads the vector of compute values at p.
  static inline Vec LoadAny(const S* p) {
    if constexpr (kVectorConvert) {
      return LoadV(p);
    } else if constexpr (kDirect) {
      return LoadVec(reinterpret_cast<const C*>(p));
    } else {
      return Vec{};  // not used
    }
  }

  // mn/mx over kRows consecutive whole periods of x.
  template <int64_t kRows>
  static inline void RangeColsRows(const S* x, int64_t period, C* mn, C* mx) {
    int64_t k = 0;
    for (; k + kWidth <= period; k += kWidth) {
      Vec a = LoadVec(mn + k), b = LoadVec(mx + k);
      for (int64_t r = 0; r < kRows; ++r) {
        const Vec v = LoadAny(x + r * period + k);
        a = (v < a) ? v : a;
        b = (b < v) ? v : b;
      }
      std::memcpy(mn + k, &a, sizeof(a));
      std::memcpy(mx + k, &b, sizeof(b));
    }
    for (; k < period; ++k) {
      for (int64_t r = 0; r < kRows; ++r) {
        mn[k] = MinIgnoringNaN(mn[k], Storage::ToCompute(x[r * period + k]));
        mx[k] = MaxIgnoringNaN(mx[k], Storage::ToCompute(x[r * period + k]));
      }
    }
  }

  static inline void RangeColsSeg(const S* x, int64_t n, C* mn, C* mx) {
    if constexpr (kVectorConvert) {
      int64_t k = 0;
      for (; k + kFloatLanes <= n; k += kFloatLanes) {
        const VF v = LoadV(x + k), a = LoadVF(mn + k), b = LoadVF(mx + k);
        const VF a2 = (v < a) ? v : a, b2 = (b < v) ? v : b;
        std::memcpy(mn + k, &a2, sizeof(a2));
        std::memcpy(mx + k, &b2, sizeof(b2));
      }
      for (; k < n; ++k) {
        mn[k] = MinIgnoringNaN(mn[k], Storage::ToCompute(x[k]));
        mx[k] = MaxIgnoringNaN(mx[k], Storage::ToCompute(x[k]));
      }
      return;
    }
    AsCompute(x, n,
              [&](const C* c, int64_t i, int64_t len) { RangeColsC(c, len, mn + i, mx + i); });
  }
};

}  // namespace
}  // namespace TF_QDQ_ISA_NAMESPACE
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_RANGE_H_
