// The vectorized CPU inner loops (see qdq_cpu_table.h). Included once by each
// qdq_cpu_<isa>.cc, which first defines
//   TF_QDQ_ISA_NAME   the table's name ("sse2", ...)
//   TF_QDQ_VEC_BYTES  the vector width in bytes (16, 32, 64)
//   TF_QDQ_TABLE_FN   the table accessor to define (LoopsSse2, ...)
// and is compiled with that instruction set's -m flags and
// -fno-trapping-math (which lets the vectorizer turn the selects of
// qdq_math.h into blends; it does not change any result).
//
// The parts, each included here once per instruction set:
//   qdq_cpu_convert.h   scalar half / bfloat16 <-> float conversions
//   qdq_cpu_vector.h    vector primitives (arithmetic, converting loads and
//                       stores, non-temporal stores)
//   qdq_cpu_storage.h   per element type: storage and compute types and the
//                       conversions between them
//   this file           the loops (Loops<Storage>) and the table
//
// Most loops are plain scalar code over qdq_math.h that GCC vectorizes at -O3
// (check with TF_QDQ_CXXFLAGS=-fopt-info-vec-optimized at build time); a few
// are explicit vectors where compilers do poorly: the NaN-ignoring min/max
// reduction, and the half and bfloat16 loops with F16C, which convert in
// registers instead of through an L1 buffer. Either way every element goes
// through the same IEEE operations in the same order whatever the vector
// width (separate multiplies and adds, no FMA), so all tables give identical
// bits. Everything here has internal linkage (anonymous namespaces, and
// qdq_math.h is included into one), so no inline function compiled for a
// wider instruction set can be picked by the linker for another translation
// unit.
#ifndef TF_QDQ_KERNELS_QDQ_CPU_LOOPS_H_
#define TF_QDQ_KERNELS_QDQ_CPU_LOOPS_H_

#ifndef TF_QDQ_ISA_NAME
#error "define TF_QDQ_ISA_NAME, TF_QDQ_VEC_BYTES and TF_QDQ_TABLE_FN first"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/qdq_cpu_table.h"

namespace tf_qdq {
namespace cpu {
namespace {
// Internal-linkage copy of the shared per-element math.
#include "kernels/qdq_math.h"
using namespace tf_qdq;  // the copy above: cpu::(anonymous)::tf_qdq
}  // namespace
}  // namespace cpu
}  // namespace tf_qdq

#include "kernels/qdq_cpu_convert.h"
#include "kernels/qdq_cpu_storage.h"
#include "kernels/qdq_cpu_vector.h"

namespace tf_qdq {
namespace cpu {
namespace {

// Elements per chunk of the L1 buffers (conversions, streaming stores).
constexpr int64_t kChunk = 1024;

template <typename Storage>
struct Loops {
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
  static inline void StreamV(S* p, VF v) {
    if constexpr (kStreamVectors) Storage::Stream(p, v);
  }

  // in[0..n) -> buf (converted).
  static inline void Widen(const S* __restrict in, C* __restrict buf,
                           int64_t n) {
    for (int64_t k = 0; k < n; ++k) buf[k] = Storage::ToCompute(in[k]);
  }
  static inline void Narrow(const C* __restrict buf, S* __restrict out,
                            int64_t n) {
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

  // ---- Range: NaN-ignoring min/max ---------------------------------------

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
    RangeAny(
        x, n, mn, mx, [](const C* p) { return LoadVec(p); },
        [](C v) { return v; });
  }

  // load(p): the vector of compute values at p; in(v): one value.
  template <typename Elem, typename LoadFn, typename InFn>
  static inline void RangeAny(const Elem* x, int64_t n, C* mn, C* mx,
                              const LoadFn& load, const InFn& in) {
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

  static void Range(const S* x, int64_t n, C* mn, C* mx) {
    if constexpr (kVectorConvert) {
      RangeAny(
          x, n, mn, mx, [](const S* p) { return LoadV(p); },
          [](S v) { return Storage::ToCompute(v); });
      return;
    }
    AsCompute(x, n, [&](const C* c, int64_t, int64_t len) {
      RangeC(c, len, mn, mx);
    });
  }

  static inline void RangeColsC(const C* __restrict x, int64_t n,
                                C* __restrict mn, C* __restrict mx) {
    for (int64_t k = 0; k < n; ++k) {
      mn[k] = MinIgnoringNaN(mn[k], x[k]);
      mx[k] = MaxIgnoringNaN(mx[k], x[k]);
    }
  }

  // Calls seg(i, p, len) for the segments of [0, n) within one period:
  // element i + j (j < len) is at position p + j.
  template <typename Fn>
  static inline void Periods(int64_t n, int64_t period, int64_t p0,
                             const Fn& seg) {
    int64_t i = 0, p = p0;
    while (i < n) {
      const int64_t len = n - i < period - p ? n - i : period - p;
      seg(i, p, len);
      i += len;
      p = 0;
    }
  }

  static void RangeCols(const S* x, int64_t n, C* mn, C* mx, int64_t period,
                        int64_t p0) {
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
    AsCompute(x, n, [&](const C* c, int64_t i, int64_t len) {
      RangeColsC(c, len, mn + i, mx + i);
    });
  }

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
  // other types through an L1 chunk (StreamBytes). Every element gets the
  // same operations either way, so the same bits.
  template <typename Segments, typename VecFn, typename ScalarFn>
  static inline void Write(S* y, int64_t n, bool stream,
                           const Segments& segments, const VecFn& vec,
                           const ScalarFn& scalar) {
    if (!stream) {
      segments(0, n, [&](int64_t j, int64_t p, int64_t m) {
        scalar(j, p, m, y + j);
      });
      return;
    }
    if constexpr (kStreamVectors) {
      constexpr uintptr_t kBytes = sizeof(S) * kFloatLanes;  // one vector
      segments(0, n, [&](int64_t j, int64_t p, int64_t m) {
        const uintptr_t mis = reinterpret_cast<uintptr_t>(y + j) % kBytes;
        int64_t head =
            static_cast<int64_t>((kBytes - mis) % kBytes / sizeof(S));
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
        segments(i, len, [&](int64_t j, int64_t p, int64_t m) {
          scalar(j, p, m, buf + (j - i));
        });
        StreamBytes(y + i, buf, len * sizeof(S));
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
  static inline void QdqS(const S* x, S* y, int64_t n, C scale, C inv, C lo,
                          C hi) {
    if constexpr (kVectorConvert) {
      const VF vs = Splat(scale), vi = Splat(inv), vl = Splat(lo),
               vh = Splat(hi);
      int64_t k = 0;
      if constexpr (kPairs) {
        for (; k + 2 * kFloatLanes <= n; k += 2 * kFloatLanes) {
          VF a, b;
          LoadPairV(x + k, &a, &b);
          StorePairV(y + k,
                     VQuantizeDequantize<kClamp, kHalfUp>(a, vl, vh, vs, vi),
                     VQuantizeDequantize<kClamp, kHalfUp>(b, vl, vh, vs, vi));
        }
      }
      for (; k + kFloatLanes <= n; k += kFloatLanes) {
        StoreV(y + k,
               VQuantizeDequantize<kClamp, kHalfUp>(LoadV(x + k), vl, vh, vs,
                                                    vi));
      }
      for (; k < n; ++k) {
        y[k] = Storage::ToStorage(QuantizeDequantize<C, kClamp, kHalfUp>(
            Storage::ToCompute(x[k]), lo, hi, scale, inv));
      }
    } else if constexpr (!kDirect) {
      alignas(64) C buf[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(x + i, buf, len);
        for (int64_t k = 0; k < len; ++k) {
          buf[k] = QuantizeDequantize<C, kClamp, kHalfUp>(buf[k], lo, hi,
                                                          scale, inv);
        }
        Narrow(buf, y + i, len);
      }
    } else {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = QuantizeDequantize<C, kClamp, kHalfUp>(x[k], lo, hi, scale,
                                                      inv);
      }
    }
  }

  template <bool kClamp, bool kHalfUp>
  static void Qdq(const S* x, S* y, int64_t n, C scale, C inv, C lo, C hi,
                  bool stream) {
    const VF vs = SplatC(scale), vi = SplatC(inv), vl = SplatC(lo),
             vh = SplatC(hi);
    Write(
        y, n, stream, OnePiece(),
        [&](int64_t j, int64_t) {
          return VQuantizeDequantize<kClamp, kHalfUp>(LoadV(x + j), vl, vh,
                                                      vs, vi);
        },
        [&](int64_t j, int64_t, int64_t m, S* dst) {
          QdqS<kClamp, kHalfUp>(x + j, dst, m, scale, inv, lo, hi);
        });
  }

  // As QdqS with parameters per element: scale[k], inv[k], lo[k], hi[k].
  template <bool kClamp, bool kHalfUp>
  static inline void QdqColsS(const S* x, S* y, int64_t n,
                              const C* __restrict scale,
                              const C* __restrict inv, const C* __restrict lo,
                              const C* __restrict hi) {
    if constexpr (kVectorConvert) {
      int64_t k = 0;
      for (; k + kFloatLanes <= n; k += kFloatLanes) {
        StoreV(y + k, VQuantizeDequantize<kClamp, kHalfUp>(
                          LoadV(x + k), LoadVF(lo + k), LoadVF(hi + k),
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
          buf[k] = QuantizeDequantize<C, kClamp, kHalfUp>(
              buf[k], lo[i + k], hi[i + k], scale[i + k], inv[i + k]);
        }
        Narrow(buf, y + i, len);
      }
    } else {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = QuantizeDequantize<C, kClamp, kHalfUp>(x[k], lo[k], hi[k],
                                                      scale[k], inv[k]);
      }
    }
  }

  template <bool kClamp, bool kHalfUp>
  static void QdqCols(const S* x, S* y, int64_t n, const C* scale,
                      const C* inv, const C* lo, const C* hi, int64_t period,
                      int64_t p0, bool stream) {
    Write(
        y, n, stream, PeriodPieces{period, p0},
        [&](int64_t j, int64_t p) {
          return VQuantizeDequantize<kClamp, kHalfUp>(
              LoadV(x + j), ParamV(lo + p), ParamV(hi + p), ParamV(scale + p),
              ParamV(inv + p));
        },
        [&](int64_t j, int64_t p, int64_t m, S* dst) {
          QdqColsS<kClamp, kHalfUp>(x + j, dst, m, scale + p, inv + p, lo + p,
                                    hi + p);
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
  // per element (kCols: lo[k], hi[k]). Conversions as in QdqS.
  template <bool kCols>
  static inline void GradS(const S* g, const S* x, S* y, int64_t n,
                           const C* __restrict lo, const C* __restrict hi) {
    const C one = OpaqueOne();
    if constexpr (kVectorConvert) {
      int64_t k = 0;
      const VF vl = Splat(*lo), vh = Splat(*hi), vone = Splat(one);
      if constexpr (kPairs && !kCols) {
        for (; k + 2 * kFloatLanes <= n; k += 2 * kFloatLanes) {
          VF ga, gb, xa, xb;
          LoadPairV(g + k, &ga, &gb);
          LoadPairV(x + k, &xa, &xb);
          StorePairV(y + k, VMaskedGradient(ga, xa, vl, vh, vone),
                     VMaskedGradient(gb, xb, vl, vh, vone));
        }
      }
      for (; k + kFloatLanes <= n; k += kFloatLanes) {
        StoreV(y + k, VMaskedGradient(LoadV(g + k), LoadV(x + k),
                                      kCols ? LoadVF(lo + k) : vl,
                                      kCols ? LoadVF(hi + k) : vh, vone));
      }
      for (; k < n; ++k) {
        y[k] = Storage::ToStorage(Masked(Storage::ToCompute(g[k]),
                                         Storage::ToCompute(x[k]),
                                         kCols ? lo[k] : *lo,
                                         kCols ? hi[k] : *hi, one));
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

  static void Grad(const S* g, const S* x, S* y, int64_t n, C lo, C hi,
                   bool stream) {
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

  static void GradCols(const S* g, const S* x, S* y, int64_t n, const C* lo,
                       const C* hi, int64_t period, int64_t p0, bool stream) {
    const VF vone = SplatC(OpaqueOne());
    Write(
        y, n, stream, PeriodPieces{period, p0},
        [&](int64_t j, int64_t p) {
          return VMaskedGradient(LoadV(g + j), LoadV(x + j), ParamV(lo + p),
                                 ParamV(hi + p), vone);
        },
        [&](int64_t j, int64_t p, int64_t m, S* dst) {
          GradS<true>(g + j, x + j, dst, m, lo + p, hi + p);
        });
  }

  static TypedLoops<S, C> Table() {
    TypedLoops<S, C> t;
    t.range = &Range;
    t.range_cols = &RangeCols;
    t.qdq[0][0] = &Qdq<false, false>;
    t.qdq[0][1] = &Qdq<false, true>;
    t.qdq[1][0] = &Qdq<true, false>;
    t.qdq[1][1] = &Qdq<true, true>;
    t.qdq_cols[0][0] = &QdqCols<false, false>;
    t.qdq_cols[0][1] = &QdqCols<false, true>;
    t.qdq_cols[1][0] = &QdqCols<true, false>;
    t.qdq_cols[1][1] = &QdqCols<true, true>;
    t.grad = &Grad;
    t.grad_cols = &GradCols;
    return t;
  }
};

LoopTable MakeTable() {
  LoopTable t;
  t.isa = TF_QDQ_ISA_NAME;
  t.f32 = Loops<StorageFloat>::Table();
  t.f64 = Loops<StorageDouble>::Table();
  t.f16 = Loops<StorageHalf>::Table();
  t.bf16 = Loops<StorageBf16>::Table();
  return t;
}

}  // namespace

const LoopTable& TF_QDQ_TABLE_FN() {
  static const LoopTable table = MakeTable();
  return table;
}

}  // namespace cpu
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_LOOPS_H_
