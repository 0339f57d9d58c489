// The elementwise loops of the CPU (qdq_cpu_loops.h, included once per
// instruction set): QDQ with one set of parameters or one per position, the
// V4Grad mask, and how their outputs are written (plain or non-temporal
// stores).
#ifndef TF_QDQ_KERNELS_QDQ_CPU_ELEMENTWISE_H_
#define TF_QDQ_KERNELS_QDQ_CPU_ELEMENTWISE_H_

#include <cstdint>
#include <cstring>

#include "kernels/qdq_cpu_loops_common.h"
#include "kernels/qdq_math.h"

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {
namespace {

template <typename Storage>
struct ElementwiseLoops : LoopsCommon<Storage> {
  using Base = LoopsCommon<Storage>;
  using S = typename Base::S;
  using C = typename Base::C;
  using Base::kDirect;
  using Base::kPairs;
  using Base::kStreamVectors;
  using Base::kVectorConvert;
  using Base::LoadPairV;
  using Base::LoadV;
  using Base::Narrow;
  using Base::ParamV;
  using Base::Periods;
  using Base::SplatC;
  using Base::StorePairExactV;
  using Base::StorePairs2V;
  using Base::StorePairV;
  using Base::StoreV;
  using Base::StreamV;
  using Base::Widen;

  // ---- Writing outputs ---------------------------------------------------

  // Writes y[0..n), piece by piece. segments(i, len, piece) splits elements
  // [i, i + len) into pieces piece(j, p, m): elements [j, j + m) at
  // positions [p, p + m) (OnePiece for the rows loops, PeriodPieces for the
  // cols loops). scalar(j, p, m, dst) computes a piece into dst[0..m) with
  // ordinary stores; vec(j, p) returns the compute values of elements
  // [j, j + kFloatLanes) (only called for types with kStreamVectors).
  //
  // Without streaming dst is y itself (which may alias the input: every loop
  // reads element k before writing it). With streaming the output goes out
  // with non-temporal stores (large outputs: no read-for-ownership of the
  // output lines, no eviction of useful cache contents): straight from
  // registers for types with kStreamVectors (a scalar head up to the first
  // output vector aligned to its size, aligned vectors, a scalar tail), for
  // other types through an L1 chunk (StreamCopy). Every element gets the
  // same operations either way, so the same bits.
  template <typename Segments, typename VecFn, typename ScalarFn>
  static inline void Write(S* y, int64_t n, bool stream, const Segments& segments, const VecFn& vec,
                           const ScalarFn& scalar) {
    if (!stream) {
      segments(0, n, [&](int64_t j, int64_t p, int64_t m) { scalar(j, p, m, y + j); });
      return;
    }
    if constexpr (kStreamVectors) {
      constexpr uintptr_t kBytes = sizeof(S) * kFloatLanes;  // one vector
      segments(0, n, [&](int64_t j, int64_t p, int64_t m) {
        const uintptr_t mis = reinterpret_cast<uintptr_t>(y + j) % kBytes;
        int64_t head = static_cast<int64_t>((kBytes - mis) % kBytes / sizeof(S));
        if (head > m) head = m;
        if (head > 0) scalar(j, p, head, y + j);
        int64_t k = head;
        for (; k + kFloatLanes <= m; k += kFloatLanes) {
          StreamV(y + j + k, vec(j + k, p + k));
        }
        if (k < m) scalar(j + k, p + k, m - k, y + j + k);
      });
    } else {
      alignas(64) S buf[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        segments(i, len, [&](int64_t j, int64_t p, int64_t m) { scalar(j, p, m, buf + (j - i)); });
        StreamCopy(y + i, buf, len * sizeof(S));
      }
    }
  }

  // Segments of the rows loops: one piece (positions unused).
  struct OnePiece {
    template <typename PieceFn>
    void operator()(int64_t i, int64_t len, const PieceFn& piece) const {
      piece(i, 0, len);
    }
  };
  // Segments of the cols loops: element k at position (p0 + k) % period.
  struct PeriodPieces {
    int64_t period;
    int64_t p0;
    template <typename PieceFn>
    void operator()(int64_t i, int64_t len, const PieceFn& piece) const {
      Periods(len, period, (p0 + i) % period,
              [&](int64_t j, int64_t p, int64_t m) { piece(i + j, p, m); });
    }
  };

  // ---- QDQ ---------------------------------------------------------------

  // y[0..n) = QDQ(x[0..n)) with one set of parameters. Types with vector
  // conversions work on vectors in registers; float and double convert
  // nothing; half and bfloat16 without F16C go through an L1 buffer of
  // floats in chunks.
  template <bool kClamp, bool kHalfUp>
  static inline void QdqS(const S* x, S* y, int64_t n, C scale, C inv, C lo, C hi) {
    if constexpr (kVectorConvert) {
      const VF vs = Splat(scale), vi = Splat(inv), vl = Splat(lo), vh = Splat(hi);
      int64_t k = 0;
      if constexpr (kPairs) {
        for (; k + 4 * kFloatLanes <= n; k += 4 * kFloatLanes) {
          VF a, b, c, d;
          LoadPairV(x + k, &a, &b);
          LoadPairV(x + k + 2 * kFloatLanes, &c, &d);
          StorePairs2V(y + k, VQuantizeDequantize<kClamp, kHalfUp>(a, vl, vh, vs, vi),
                       VQuantizeDequantize<kClamp, kHalfUp>(b, vl, vh, vs, vi),
                       VQuantizeDequantize<kClamp, kHalfUp>(c, vl, vh, vs, vi),
                       VQuantizeDequantize<kClamp, kHalfUp>(d, vl, vh, vs, vi));
        }
        for (; k + 2 * kFloatLanes <= n; k += 2 * kFloatLanes) {
          VF a, b;
          LoadPairV(x + k, &a, &b);
          StorePairV(y + k, VQuantizeDequantize<kClamp, kHalfUp>(a, vl, vh, vs, vi),
                     VQuantizeDequantize<kClamp, kHalfUp>(b, vl, vh, vs, vi));
        }
      }
      for (; k + kFloatLanes <= n; k += kFloatLanes) {
        StoreV(y + k, VQuantizeDequantize<kClamp, kHalfUp>(LoadV(x + k), vl, vh, vs, vi));
      }
      for (; k < n; ++k) {
        y[k] = Storage::ToStorage(
            QuantizeDequantize<C, kClamp, kHalfUp>(Storage::ToCompute(x[k]), lo, hi, scale, inv));
      }
    } else if constexpr (!kDirect) {
      alignas(64) C buf[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(x + i, buf, len);
        for (int64_t k = 0; k < len; ++k) {
          buf[k] = QuantizeDequantize<C, kClamp, kHalfUp>(buf[k], lo, hi, scale, inv);
        }
        Narrow(buf, y + i, len);
      }
    } else {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = QuantizeDequantize<C, kClamp, kHalfUp>(x[k], lo, hi, scale, inv);
      }
    }
  }

  template <bool kClamp, bool kHalfUp>
  static void Qdq(const S* x, S* y, int64_t n, C scale, C inv, C lo, C hi, bool stream) {
    const VF vs = SplatC(scale), vi = SplatC(inv), vl = SplatC(lo), vh = SplatC(hi);
    Write(
        y, n, stream, OnePiece(),
        [&](int64_t j, int64_t) {
          return VQuantizeDequantize<kClamp, kHalfUp>(LoadV(x + j), vl, vh, vs, vi);
        },
        [&](int64_t j, int64_t, int64_t m, S* dst) {
          QdqS<kClamp, kHalfUp>(x + j, dst, m, scale, inv, lo, hi);
        });
  }

  // As QdqS with parameters per element: scale[k], inv[k], lo[k], hi[k].
  template <bool kClamp, bool kHalfUp>
  static inline void QdqColsS(const S* x, S* y, int64_t n, const C* __restrict scale,
                              const C* __restrict inv, const C* __restrict lo,
                              const C* __restrict hi) {
    if constexpr (kVectorConvert) {
      int64_t k = 0;
      for (; k + kFloatLanes <= n; k += kFloatLanes) {
        StoreV(y + k,
               VQuantizeDequantize<kClamp, kHalfUp>(LoadV(x + k), LoadVF(lo + k), LoadVF(hi + k),
                                                    LoadVF(scale + k), LoadVF(inv + k)));
      }
      for (; k < n; ++k) {
        y[k] = Storage::ToStorage(QuantizeDequantize<C, kClamp, kHalfUp>(
            Storage::ToCompute(x[k]), lo[k], hi[k], scale[k], inv[k]));
      }
    } else if constexpr (!kDirect) {
      alignas(64) C buf[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(x + i, buf, len);
        for (int64_t k = 0; k < len; ++k) {
          buf[k] = QuantizeDequantize<C, kClamp, kHalfUp>(buf[k], lo[i + k], hi[i + k],
                                                          scale[i + k], inv[i + k]);
        }
        Narrow(buf, y + i, len);
      }
    } else {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = QuantizeDequantize<C, kClamp, kHalfUp>(x[k], lo[k], hi[k], scale[k], inv[k]);
      }
    }
  }

  template <bool kClamp, bool kHalfUp>
  static void QdqCols(const S* x, S* y, int64_t n, const C* scale, const C* inv, const C* lo,
                      const C* hi, int64_t period, int64_t p0, bool stream) {
    Write(
        y, n, stream, PeriodPieces{period, p0},
        [&](int64_t j, int64_t p) {
          return VQuantizeDequantize<kClamp, kHalfUp>(LoadV(x + j), ParamV(lo + p), ParamV(hi + p),
                                                      ParamV(scale + p), ParamV(inv + p));
        },
        [&](int64_t j, int64_t p, int64_t m, S* dst) {
          QdqColsS<kClamp, kHalfUp>(x + j, dst, m, scale + p, inv + p, lo + p, hi + p);
        });
  }

  // ---- Gradient ----------------------------------------------------------

  // MaskedGradient of qdq_math.h, with the mask as a select (the same value:
  // g * 1 or g * 0) so that it vectorizes. `one` must be a real multiply:
  // TensorFlow runs kernels with denormals-are-zero, so g * 1 flushes a
  // subnormal g to 0, but the compiler folds a literal `g * 1.0` to `g`.
  // OpaqueOne hides the constant from the optimizer.
  static inline C OpaqueOne() {
    static volatile C one = C(1);
    return one;
  }
  static inline C Masked(C g, C x, C lo, C hi, C one) {
    const bool in = (x >= lo) & (x <= hi);
    return g * (in ? one : C(0));
  }

  // y[k] = Masked(g[k], x[k], lo, hi) with lo/hi fixed (kCols false) or
  // per element (kCols: lo[k], hi[k]). Half and bfloat16 with fixed bounds
  // work on the bit patterns where they can (GradBits).
  template <bool kCols>
  static inline void GradS(const S* g, const S* x, S* y, int64_t n, const C* __restrict lo,
                           const C* __restrict hi) {
    if constexpr (kBitsGrad && !kCols) {
      GradBits(g, x, y, n, *lo, *hi);
    } else {
      GradFloat<kCols>(g, x, y, n, lo, hi);
    }
  }

  // ---- Half and bfloat16 gradient on the bit patterns ---------------------
  //
  // Masked(g, x, lo, hi) = g * (lo <= x <= hi ? 1 : 0) without floats: the
  // bounds test compares integer keys (LoopsCommon::Key: they order like the
  // values, and NaN keys fall outside every bound), and the product is g
  // itself (g * 1) or g's sign alone (g * 0, a zero with g's sign). That
  // holds for every g except inf and NaN (g * 0 is NaN, and NaN comes out
  // quiet), and, where the CPU flushes subnormals (as TensorFlow runs
  // kernels), a bfloat16 subnormal g, which g * 1 flushes; chunks holding
  // such a g go through GradFloat. Where the CPU treats
  // subnormal inputs as zero (DAZ), a bfloat16 subnormal x or bound compares
  // as a zero: the keys of [-largest subnormal, +largest subnormal] then count
  // as zeros. Zeros of either sign compare equal: a zero bound takes in the
  // whole class of zeros. Bounds that are NaN or not values of the type go
  // through GradFloat (the kernels pass values of the type).
  using Base::Key;
  using Base::KeyV;
  using Base::kKeyLanes;
  using Base::LoadBitsV;
  using Base::SplatK;
  using typename Base::VK;
  static constexpr bool kBitsGrad = sizeof(S) == 2;

  // How this CPU treats subnormal floats now (the MXCSR flags, read through
  // float operations on a volatile subnormal): *daz, subnormal inputs count
  // as zero in comparisons; *flush, a subnormal product g * 1 becomes zero
  // (DAZ or FTZ).
  static inline void SubnormalModes(bool* daz, bool* flush) {
    static volatile float tiny = 1.4e-45f;  // the smallest subnormal float
    const float t = tiny;
    *daz = !(t > 0.0f);
    *flush = t * OpaqueOne() == 0.0f;
  }

  // Keys of the bounds, widened over the class of zeros: [klo, khi] holds the
  // key of x exactly when lo <= x <= hi for the floats (NaN x: never).
  // False where the fast path does not apply (NaN bound, or a bound that is
  // not a value of the type).
  static inline bool BoundKeys(C lo, C hi, bool daz, int16_t* klo, int16_t* khi) {
    if (lo != lo || hi != hi) return false;
    const S bl = Storage::ToStorage(lo), bh = Storage::ToStorage(hi);
    const C rl = Storage::ToCompute(bl), rh = Storage::ToCompute(bh);
    if (std::memcmp(&rl, &lo, sizeof(C)) != 0 || std::memcmp(&rh, &hi, sizeof(C)) != 0) {
      return false;
    }
    // Largest magnitude that compares equal to zero: bfloat16 subnormals
    // under DAZ (half subnormals are normal floats), else only zeros.
    const uint16_t zmax = (daz && !Storage::kSubnormalsExact) ? Storage::kMinNormalBits - 1 : 0;
    *klo = (bl & 0x7fffu) <= zmax ? Key(static_cast<uint16_t>(0x8000u | zmax)) : Key(bl);
    *khi = (bh & 0x7fffu) <= zmax ? Key(zmax) : Key(bh);
    return true;
  }

  // Whether g[0..n) holds an inf or NaN, or (flush) a bfloat16 subnormal.
  // Prefetches x[0..n) meanwhile, so that both inputs stream at once (at 1M
  // elements, without it, this extra pass over g made V4Grad about 10%
  // slower than the float loop).
  static inline bool SpecialGradient(const S* g, const S* x, int64_t n, bool flush) {
    const bool subnormals = flush && !Storage::kSubnormalsExact;
    const int16_t kInf = static_cast<int16_t>(Storage::kInfBits);
    const int16_t kSub = static_cast<int16_t>(Storage::kMinNormalBits - 1);
    int64_t k = 0;
    VK big = SplatK(0), small = SplatK(0x7fff);
    for (; k + kKeyLanes <= n; k += kKeyLanes) {
      __builtin_prefetch(x + k);
      const VK a = LoadBitsV(g + k) & 0x7fff;
      big = (big < a) ? a : big;
      if (subnormals) {
        const VK w = (a - 1) & 0x7fff;  // zero: 0x7fff; subnormal: below kSub
        small = (w < small) ? w : small;
      }
    }
    int16_t b = 0, m = 0x7fff;
    for (int j = 0; j < kKeyLanes; ++j) {
      b = big[j] > b ? big[j] : b;
      m = small[j] < m ? small[j] : m;
    }
    for (; k < n; ++k) {
      const int16_t a = static_cast<int16_t>(g[k] & 0x7fff);
      b = a > b ? a : b;
      if (subnormals && a != 0 && a <= kSub) m = 0;
    }
    return b >= kInf || (subnormals && m < kSub);
  }

  static inline void GradBits(const S* g, const S* x, S* y, int64_t n, C lo, C hi) {
    bool daz, flush;
    SubnormalModes(&daz, &flush);
    int16_t klo, khi;
    if (!BoundKeys(lo, hi, daz, &klo, &khi)) {
      GradFloat<false>(g, x, y, n, &lo, &hi);
      return;
    }
    const VK vlo = SplatK(klo), vhi = SplatK(khi);
    for (int64_t i = 0; i < n; i += kChunk) {
      const int64_t len = n - i < kChunk ? n - i : kChunk;
      if (SpecialGradient(g + i, x + i, len, flush)) {
        GradFloat<false>(g + i, x + i, y + i, len, &lo, &hi);
        continue;
      }
      int64_t k = i;
      for (; k + kKeyLanes <= i + len; k += kKeyLanes) {
        const VK key = KeyV(LoadBitsV(x + k));
        const VK out = (vlo > key) | (key > vhi);  // -1 outside [lo, hi]
        const VK r = LoadBitsV(g + k) & ~(out & 0x7fff);
        std::memcpy(y + k, &r, sizeof(r));
      }
      for (; k < i + len; ++k) {
        const int16_t key = Key(x[k]);
        y[k] = (key < klo || key > khi) ? static_cast<S>(g[k] & 0x8000u) : g[k];
      }
    }
  }

  // Masked with float arithmetic; conversions as in QdqS.
  template <bool kCols>
  static inline void GradFloat(const S* g, const S* x, S* y, int64_t n, const C* __restrict lo,
                               const C* __restrict hi) {
    const C one = OpaqueOne();
    if constexpr (kVectorConvert) {
      int64_t k = 0;
      const VF vl = Splat(*lo), vh = Splat(*hi), vone = Splat(one);
      if constexpr (kPairs && !kCols) {
        for (; k + 2 * kFloatLanes <= n; k += 2 * kFloatLanes) {
          VF ga, gb, xa, xb;
          LoadPairV(g + k, &ga, &gb);
          LoadPairV(x + k, &xa, &xb);
          // g * 1 or g * 0 with g a bfloat16 value: exact (or NaN).
          StorePairExactV(y + k, VMaskedGradient(ga, xa, vl, vh, vone),
                          VMaskedGradient(gb, xb, vl, vh, vone));
        }
      }
      for (; k + kFloatLanes <= n; k += kFloatLanes) {
        StoreV(y + k, VMaskedGradient(LoadV(g + k), LoadV(x + k), kCols ? LoadVF(lo + k) : vl,
                                      kCols ? LoadVF(hi + k) : vh, vone));
      }
      for (; k < n; ++k) {
        y[k] = Storage::ToStorage(Masked(Storage::ToCompute(g[k]), Storage::ToCompute(x[k]),
                                         kCols ? lo[k] : *lo, kCols ? hi[k] : *hi, one));
      }
    } else if constexpr (!kDirect) {
      alignas(64) C gb[kChunk], xb[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(g + i, gb, len);
        Widen(x + i, xb, len);
        for (int64_t k = 0; k < len; ++k) {
          gb[k] = kCols ? Masked(gb[k], xb[k], lo[i + k], hi[i + k], one)
                        : Masked(gb[k], xb[k], *lo, *hi, one);
        }
        Narrow(gb, y + i, len);
      }
    } else if constexpr (kCols) {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = Masked(g[k], x[k], lo[k], hi[k], one);
      }
    } else {
      const C l = *lo, h = *hi;
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = Masked(g[k], x[k], l, h, one);
      }
    }
  }

  static void Grad(const S* g, const S* x, S* y, int64_t n, C lo, C hi, bool stream) {
    const VF vl = SplatC(lo), vh = SplatC(hi), vone = SplatC(OpaqueOne());
    Write(
        y, n, stream, OnePiece(),
        [&](int64_t j, int64_t) {
          return VMaskedGradient(LoadV(g + j), LoadV(x + j), vl, vh, vone);
        },
        [&](int64_t j, int64_t, int64_t m, S* dst) {
          GradS<false>(g + j, x + j, dst, m, &lo, &hi);
        });
  }

  // Whether Masked(g[k], x[k], -inf, +inf, one) == g[k] bit for bit for
  // every k in [0, n), decided from the bit patterns alone: no NaN in x (the
  // only elements an unbounded range masks out), and no g that the product
  // with one changes: a NaN (the product may quiet it) or, where
  // denormals-are-zero flushes it, a subnormal. Integer code, which GCC
  // vectorizes.
  static bool PassesUnbounded(const S* g, const S* x, int64_t n) {
    using U = typename Storage::Bits;
    constexpr U kAbs = Storage::kAbsMask, kInf = Storage::kInfBits;
    constexpr U kSubnormalMax = static_cast<U>(Storage::kMinNormalBits - 1);
    const U* gb = reinterpret_cast<const U*>(g);
    const U* xb = reinterpret_cast<const U*>(x);
    for (int64_t i = 0; i < n; i += kChunk) {
      const int64_t len = n - i < kChunk ? n - i : kChunk;
      U bad = 0;  // nonzero once an element fails
      for (int64_t k = i; k < i + len; ++k) {
        const U ga = static_cast<U>(gb[k] & kAbs), xa = static_cast<U>(xb[k] & kAbs);
        U fail = static_cast<U>((xa > kInf) | (ga > kInf));
        if constexpr (!Storage::kSubnormalsExact) {
          // ga - 1 wraps for a zero: subnormal exactly when ga in [1, kSubnormalMax].
          fail = static_cast<U>(fail | (static_cast<U>(ga - 1) < kSubnormalMax));
        }
        bad = static_cast<U>(bad | fail);
      }
      if (bad != 0) return false;
    }
    return true;
  }

  static void GradCols(const S* g, const S* x, S* y, int64_t n, const C* lo, const C* hi,
                       int64_t period, int64_t p0, bool stream) {
    const VF vone = SplatC(OpaqueOne());
    Write(
        y, n, stream, PeriodPieces{period, p0},
        [&](int64_t j, int64_t p) {
          return VMaskedGradient(LoadV(g + j), LoadV(x + j), ParamV(lo + p), ParamV(hi + p), vone);
        },
        [&](int64_t j, int64_t p, int64_t m, S* dst) {
          GradS<true>(g + j, x + j, dst, m, lo + p, hi + p);
        });
  }
};

}  // namespace
}  // namespace TF_QDQ_ISA_NAMESPACE
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_ELEMENTWISE_H_
