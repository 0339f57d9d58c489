// The vectorized CPU inner loops (see qdq_cpu_table.h). Included once by each
// qdq_cpu_<isa>.cc, which first defines
//   TFQDQ_ISA_NAME   the table's name ("sse2", ...)
//   TFQDQ_VEC_BYTES  the vector width in bytes (16, 32, 64)
//   TFQDQ_TABLE_FN   the table accessor to define (LoopsSse2, ...)
// and is compiled with that instruction set's -m flags and
// -fno-trapping-math (which lets the vectorizer turn the selects of
// qdq_math.h into blends; it does not change any result).
//
// Most loops are plain scalar code over qdq_math.h that GCC vectorizes at -O3
// (check with TF_QDQ_CXXFLAGS=-fopt-info-vec-optimized at build time); a few
// are explicit vectors where compilers do poorly: the NaN-ignoring min/max
// reduction, the half loops with F16C, the bfloat16 narrowing. Either way
// every element goes through the same IEEE operations in the same order
// whatever the vector width (separate multiplies and adds, no FMA), so all
// tables give identical bits. Everything here has internal linkage (the math
// header is included in an anonymous namespace), so no inline function
// compiled for a wider instruction set can be picked by the linker for
// another translation unit.
#ifndef TFQDQ_ISA_NAME
#error "define TFQDQ_ISA_NAME, TFQDQ_VEC_BYTES and TFQDQ_TABLE_FN first"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/qdq_cpu_table.h"

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tf_qdq {
namespace cpu {
namespace {

// Internal-linkage copy of the shared per-element math.
#include "kernels/qdq_math.h"
using namespace tf_qdq;  // the copy above: cpu::(anonymous)::tf_qdq

template <typename To, typename From>
inline To BitCast(From v) {
  static_assert(sizeof(To) == sizeof(From), "size");
  To t;
  std::memcpy(&t, &v, sizeof(t));
  return t;
}

// ---- Conversions between the storage type and the compute type. ----------
//
// Branch-free so that they vectorize. They reproduce TensorFlow's casts bit
// for bit: round to nearest even, subnormals exact, and NaN as x86's F16C
// (half: sign and leading payload kept, quiet bit set) or Eigen (bfloat16:
// 0x7fc0 with the sign).

// IEEE half -> float. Exact; signaling NaN comes out quiet (as VCVTPH2PS).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t a = h & 0x7fffu;
  const uint32_t shifted = a << 13;
  const uint32_t normal = shifted + 0x38000000u;  // rebias 15 -> 127
  const uint32_t special =
      shifted | 0x7f800000u | (a > 0x7c00u ? 0x00400000u : 0u);
  // Zero and subnormals: 2^-14 * (1 + m/1024) - 2^-14, exact.
  const float sub = BitCast<float>(shifted + 0x38800000u) -
                    BitCast<float>(uint32_t{0x38800000u});
  const uint32_t mag = a >= 0x7c00u   ? special
                       : a >= 0x0400u ? normal
                                      : BitCast<uint32_t>(sub);
  return BitCast<float>(mag | sign);
}

// float -> IEEE half, round to nearest even (as VCVTPS2PH with imm 0).
inline uint16_t FloatToHalf(float f) {
  const uint32_t u = BitCast<uint32_t>(f);
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u ^ sign;
  const uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  // |f| < 2^-14: adding 0.5 rounds to a multiple of 2^-24 (RTNE) in the FPU.
  const uint32_t sub =
      BitCast<uint32_t>(BitCast<float>(a) + 0.5f) - 0x3f000000u;
  // Normal: rebias, add 0xfff plus the lowest kept bit (ties to even),
  // truncate; a carry into the exponent is the correct rounding (up to inf).
  const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
  const uint32_t mag = a > 0x7f800000u    ? nan
                       : a >= 0x47800000u ? 0x7c00u
                       : a < 0x38800000u  ? sub
                                          : normal;
  return static_cast<uint16_t>(mag | (sign >> 16));
}

inline float Bf16ToFloat(uint16_t b) {
  return BitCast<float>(static_cast<uint32_t>(b) << 16);
}

// float -> bfloat16, round to nearest even; NaN becomes 0x7fc0 with its sign
// (Eigen's scalar conversion).
inline uint16_t FloatToBf16(float f) {
  const uint32_t u = BitCast<uint32_t>(f);
  const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan
                                                                 : rounded);
}

// ---- Fused 16-bit vector loops (instruction sets with F16C) ---------------
//
// For half and bfloat16 the element loops are written with explicit vectors:
// load and widen in registers (F16C for half, a shift for bfloat16), the
// arithmetic of qdq_math.h lane by lane (the same IEEE operations in the same
// order, written out below for vector types), narrow and store. The scalar
// tails call qdq_math.h itself. For bfloat16 this measured 1.2-1.6x faster
// than converting through L1 chunks on large tensors (single thread, AVX2,
// 16M elements), and within 0.8-1.0x of it on L2-resident ones.
#if defined(__F16C__)
#define TFQDQ_FUSED16 1  // Conv::kFused types use the loops below
typedef float VF __attribute__((vector_size(TFQDQ_VEC_BYTES)));
typedef uint32_t VU __attribute__((vector_size(TFQDQ_VEC_BYTES)));
typedef int32_t VI __attribute__((vector_size(TFQDQ_VEC_BYTES)));
constexpr int kVF = TFQDQ_VEC_BYTES / 4;

// Every lane = v, bit for bit. (Not `VF{} + v`: 0.0 + -0.0 is +0.0, which
// turned a clamp bound of -0.0 into +0.0; found by the fuzzer.)
inline VF Splat(float v) {
  VF r;
  for (int i = 0; i < kVF; ++i) r[i] = v;
  return r;
}

inline VF LoadVF(const float* p) {
  VF v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Stores of one output vector; kNT: a non-temporal store, which needs p
// aligned to the vector's size (the callers see to it).
template <bool kNT>
inline void StoreVF(float* p, VF v) {
  if constexpr (!kNT) {
    std::memcpy(p, &v, sizeof(v));
  } else {
#if TFQDQ_VEC_BYTES == 64
    _mm512_stream_ps(p, (__m512)v);
#else
    _mm256_stream_ps(p, (__m256)v);
#endif
  }
}
template <bool kNT, typename V>
inline void StoreBits(uint16_t* p, V bits) {  // bits: __m128i or __m256i
  if constexpr (sizeof(V) == 16) {
    kNT ? _mm_stream_si128(reinterpret_cast<__m128i*>(p), bits)
        : _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bits);
  } else {
    kNT ? _mm256_stream_si256(reinterpret_cast<__m256i*>(p), bits)
        : _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bits);
  }
}

#if TFQDQ_VEC_BYTES == 64
inline VF LoadHalfV(const uint16_t* p) {
  return (VF)_mm512_cvtph_ps(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
template <bool kNT = false>
inline void StoreHalfV(uint16_t* p, VF v) {
  StoreBits<kNT>(p, _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT));
}
#elif TFQDQ_VEC_BYTES == 32
inline VF LoadHalfV(const uint16_t* p) {
  return (VF)_mm256_cvtph_ps(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
template <bool kNT = false>
inline void StoreHalfV(uint16_t* p, VF v) {
  StoreBits<kNT>(p, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT));
}
#else
#error "F16C path needs 32- or 64-byte vectors"
#endif

// bfloat16 <-> float vectors: Bf16ToFloat / FloatToBf16 below, lane by lane.
inline VU Bf16BitsV(VF v) {  // FloatToBf16 of each lane, in its low 16 bits
  const VU u = (VU)v;
  const VU rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const VU nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  return (VU)((v != v) ? (VI)nan : (VI)rounded);
}
#if TFQDQ_VEC_BYTES == 64
inline VF LoadBf16V(const uint16_t* p) {
  return (VF)_mm512_slli_epi32(
      _mm512_cvtepu16_epi32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
      16);
}
template <bool kNT = false>
inline void StoreBf16V(uint16_t* p, VF v) {
  StoreBits<kNT>(p, _mm512_cvtepi32_epi16((__m512i)Bf16BitsV(v)));
}
#else
inline VF LoadBf16V(const uint16_t* p) {
  return (VF)_mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
      16);
}
template <bool kNT = false>
inline void StoreBf16V(uint16_t* p, VF v) {
  const __m256i r = (__m256i)Bf16BitsV(v);  // lanes <= 0xffff: packus is exact
  StoreBits<kNT>(p, _mm_packus_epi32(_mm256_castsi256_si128(r),
                                     _mm256_extracti128_si256(r, 1)));
}
#endif

// RoundHalfToEven / RoundHalfUp / QuantizeDequantize / MaskedGradient of
// qdq_math.h for float vectors. Abs and CopySign are the sign-bit operations
// they are in IEEE 754.
inline VF VRoundHalfToEven(VF v) {  // as RoundHalfToEven: rint
#if TFQDQ_VEC_BYTES == 64
  return (VF)_mm512_roundscale_ps((__m512)v, _MM_FROUND_TO_NEAREST_INT |
                                                 _MM_FROUND_NO_EXC);
#elif defined(__SSE4_1__)
  return (VF)_mm256_round_ps((__m256)v,
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
  const VF magic = Splat(Limits<float>::RoundMagic());
  const VU bits = (VU)v;
  const VF a = (VF)(bits & 0x7fffffffu);
  const VF m = (a + magic) - magic;
  const VF r = (VF)(((VU)m & 0x7fffffffu) | (bits & 0x80000000u));
  return (a < magic) ? r : v;
#endif
}
inline VF VRoundHalfUp(VF v) {
  const VF w = v + Splat(0.5f);
  const VF r = VRoundHalfToEven(w);
  return (r > w) ? r - Splat(1.0f) : r;
}
template <bool kClamp, bool kHalfUp>
inline VF VQuantizeDequantize(VF x, VF lo, VF hi, VF scale, VF inv) {
  VF y = x;
  if (kClamp) {
    y = (hi < y) ? hi : y;
    y = (y < lo) ? lo : y;
  }
  const VF v = y * scale;
  const VF r = kHalfUp ? VRoundHalfUp(v) : VRoundHalfToEven(v);
  return r * inv;
}
// `one` is 1.0 from OpaqueOne (see Masked below).
inline VF VMaskedGradient(VF g, VF x, VF lo, VF hi, VF one) {
  const VI in = (x >= lo) & (x <= hi);
  return g * (in ? one : Splat(0.0f));
}
#endif  // __F16C__

// kChunked: convert through an L1 float buffer in chunks rather than inside
// the element loops (half and bfloat16 without F16C). kBulk: the conversions
// of a chunk have an intrinsics version. kFused: the element loops convert in
// registers instead (half and bfloat16 with F16C, see above).
// float and double: storage and compute type are the same.
template <typename T>
struct ConvSame {
  static constexpr bool kChunked = false;
  using S = T;
  using C = T;
  static inline C In(S v) { return v; }
  static inline S Out(C v) { return v; }
};
#if defined(__F16C__)
// float also has explicit vectors, used for non-temporal stores straight from
// registers (kNT; see NTVectors).
struct ConvF32 : ConvSame<float> {
  static constexpr bool kNT = true;
  static inline VF InV(const float* p) { return LoadVF(p); }
  static inline void OutNT(float* p, VF v) { StoreVF<true>(p, v); }
};
#else
using ConvF32 = ConvSame<float>;
#endif
using ConvF64 = ConvSame<double>;
struct ConvF16 {
  static constexpr bool kChunked = true;
  using S = uint16_t;
  using C = float;
  static inline C In(S v) { return HalfToFloat(v); }
  static inline S Out(C v) { return FloatToHalf(v); }
#if defined(__F16C__)
  static constexpr bool kFused = true;
  static inline VF InV(const S* p) { return LoadHalfV(p); }
  static inline void OutV(S* p, VF v) { StoreHalfV(p, v); }
  static constexpr bool kNT = true;
  static inline void OutNT(S* p, VF v) { StoreHalfV<true>(p, v); }
  // F16C's VCVTPH2PS / VCVTPS2PH (round to nearest even) give the same bits
  // as In / Out above (which were written to match them), 8 or 16 at a time.
  static constexpr bool kBulk = true;
  static inline void WidenBulk(const S* in, C* out, int64_t n) {
    int64_t k = 0;
#if defined(__AVX512F__)
    for (; k + 16 <= n; k += 16) {
      _mm512_storeu_ps(out + k, _mm512_cvtph_ps(_mm256_loadu_si256(
                                    reinterpret_cast<const __m256i*>(in + k))));
    }
#endif
    for (; k + 8 <= n; k += 8) {
      _mm256_storeu_ps(out + k, _mm256_cvtph_ps(_mm_loadu_si128(
                                    reinterpret_cast<const __m128i*>(in + k))));
    }
    for (; k < n; ++k) out[k] = In(in[k]);
  }
  static inline void NarrowBulk(const C* in, S* out, int64_t n) {
    int64_t k = 0;
#if defined(__AVX512F__)
    for (; k + 16 <= n; k += 16) {
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(out + k),
          _mm512_cvtps_ph(_mm512_loadu_ps(in + k), _MM_FROUND_TO_NEAREST_INT));
    }
#endif
    for (; k + 8 <= n; k += 8) {
      _mm_storeu_si128(
          reinterpret_cast<__m128i*>(out + k),
          _mm256_cvtps_ph(_mm256_loadu_ps(in + k), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; k < n; ++k) out[k] = Out(in[k]);
  }
#else
  static constexpr bool kBulk = false;
#endif
};
struct ConvBf16 {
  static constexpr bool kChunked = true;
  using S = uint16_t;
  using C = float;
  static inline C In(S v) { return Bf16ToFloat(v); }
  static inline S Out(C v) { return FloatToBf16(v); }
  static inline void WidenBulk(const S* in, C* out, int64_t n) {
    for (int64_t k = 0; k < n; ++k) out[k] = In(in[k]);
  }
#if defined(__F16C__)
  static constexpr bool kFused = true;
  static inline VF InV(const S* p) { return LoadBf16V(p); }
  static inline void OutV(S* p, VF v) { StoreBf16V(p, v); }
  static constexpr bool kNT = true;
  static inline void OutNT(S* p, VF v) { StoreBf16V<true>(p, v); }
#endif
#if defined(__AVX512BW__) || defined(__AVX2__)
  // FloatToBf16 with intrinsics (compilers narrow the 32-bit lanes poorly).
  static constexpr bool kBulk = true;
  static inline void NarrowBulk(const C* in, S* out, int64_t n) {
    int64_t k = 0;
#if defined(__AVX512BW__)
    // Rounded values in the upper 16 bits of each 32-bit lane; one word
    // permute gathers the upper halves of two vectors.
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    const __m512i qnan = _mm512_set1_epi32(0x7fc00000);
    alignas(64) static const uint16_t kOdd[32] = {
        1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
        33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
    const __m512i odd = _mm512_load_si512(kOdd);
    auto sixteen = [&](const C* p) {
      const __m512 v = _mm512_loadu_ps(p);
      const __m512i u = _mm512_castps_si512(v);
      const __m512i r = _mm512_add_epi32(
          _mm512_add_epi32(u, bias),
          _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
      const __m512i nan = _mm512_or_si512(_mm512_and_si512(u, sign), qnan);
      return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q),
                                     r, nan);
    };
    for (; k + 32 <= n; k += 32) {
      _mm512_storeu_si512(out + k,
                          _mm512_permutex2var_epi16(sixteen(in + k), odd,
                                                    sixteen(in + k + 16)));
    }
#endif
    const __m256i bias8 = _mm256_set1_epi32(0x7fff), one8 = _mm256_set1_epi32(1);
    const __m256i sign8 = _mm256_set1_epi32(0x8000);
    const __m256i qnan8 = _mm256_set1_epi32(0x7fc0);
    auto eight = [&](const C* p) {
      const __m256 v = _mm256_loadu_ps(p);
      const __m256i u = _mm256_castps_si256(v);
      const __m256i hi = _mm256_srli_epi32(u, 16);
      const __m256i r = _mm256_srli_epi32(
          _mm256_add_epi32(_mm256_add_epi32(u, bias8),
                           _mm256_and_si256(hi, one8)),
          16);
      const __m256i nan =
          _mm256_or_si256(_mm256_and_si256(hi, sign8), qnan8);
      const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
      return _mm256_blendv_epi8(r, nan, _mm256_castps_si256(is_nan));
    };
    for (; k + 16 <= n; k += 16) {
      // packus interleaves 128-bit lanes: [a0 b0 a1 b1] -> reorder.
      const __m256i packed = _mm256_packus_epi32(eight(in + k), eight(in + k + 8));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k),
                          _mm256_permute4x64_epi64(packed, 0xd8));
    }
    for (; k < n; ++k) out[k] = Out(in[k]);
  }
#else
  static constexpr bool kBulk = false;
#endif
};

// Copies `bytes` bytes to dst with non-temporal (streaming) stores where the
// destination is 16-byte aligned. The caller fences (SFENCE) once its block
// is written, before the results are handed to another thread.
inline void StreamBytes(void* dst, const void* src, int64_t bytes) {
#if defined(__SSE2__)
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  const int64_t head = static_cast<int64_t>(
      (16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15);
  if (head >= bytes) {
    std::memcpy(d, s, bytes);
    return;
  }
  std::memcpy(d, s, head);
  d += head;
  s += head;
  bytes -= head;
  for (; bytes >= 64; bytes -= 64, d += 64, s += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 48), e);
  }
  for (; bytes >= 16; bytes -= 16, d += 16, s += 16) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(d),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
  }
  std::memcpy(d, s, bytes);
#else
  std::memcpy(dst, src, bytes);
#endif
}

// Elements per chunk of the L1 buffers (conversions, streaming stores).
constexpr int64_t kChunk = 1024;

template <typename Conv>
struct Loops {
  using S = typename Conv::S;
  using C = typename Conv::C;
  static constexpr bool kDirect = sizeof(S) == sizeof(C);

  template <typename V, typename = void>
  struct HasBulk : std::false_type {};
  template <typename V>
  struct HasBulk<V, std::enable_if_t<V::kBulk>> : std::true_type {};
  template <typename V, typename = void>
  struct HasFused : std::false_type {};
  template <typename V>
  struct HasFused<V, std::enable_if_t<V::kFused>> : std::true_type {};
  static constexpr bool kFused = HasFused<Conv>::value;
  template <typename V, typename = void>
  struct HasNT : std::false_type {};
  template <typename V>
  struct HasNT<V, std::enable_if_t<V::kNT>> : std::true_type {};
  // Streaming writes vectors straight from registers with non-temporal
  // stores (NTVectors); other types go through an L1 chunk (Produce).
  static constexpr bool kNT = HasNT<Conv>::value;

  // in[0..n) -> buf (converted).
  static inline void Widen(const S* __restrict in, C* __restrict buf,
                           int64_t n) {
    if constexpr (HasBulk<Conv>::value) {
      Conv::WidenBulk(in, buf, n);
    } else {
      for (int64_t k = 0; k < n; ++k) buf[k] = Conv::In(in[k]);
    }
  }
  static inline void Narrow(const C* __restrict buf, S* __restrict out,
                            int64_t n) {
    if constexpr (HasBulk<Conv>::value) {
      Conv::NarrowBulk(buf, out, n);
    } else {
      for (int64_t k = 0; k < n; ++k) out[k] = Conv::Out(buf[k]);
    }
  }

  // Calls fn(c, i, len) with c[0..len) the compute values of x[i, i + len),
  // covering x[0..n): x itself when the types are the same, else chunks
  // widened into an L1 buffer.
  template <typename F>
  static inline void AsCompute(const S* x, int64_t n, const F& fn) {
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

  // GCC/Clang vector type of the compute type, one vector register wide.
  typedef C Vec __attribute__((vector_size(TFQDQ_VEC_BYTES)));
  static constexpr int kWidth = TFQDQ_VEC_BYTES / sizeof(C);

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
  template <typename T, typename LoadF, typename InF>
  static inline void RangeAny(const T* x, int64_t n, C* mn, C* mx,
                              const LoadF& load, const InF& in) {
    Vec a0, a1, a2, a3, b0, b1, b2, b3;
    for (int j = 0; j < kWidth; ++j) {
      a0[j] = *mn;
      b0[j] = *mx;
    }
    a1 = a2 = a3 = a0;
    b1 = b2 = b3 = b0;
    int64_t i = 0;
    for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
      const Vec v0 = load(x + i), v1 = load(x + i + kWidth);
      const Vec v2 = load(x + i + 2 * kWidth);
      const Vec v3 = load(x + i + 3 * kWidth);
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
#if defined(TFQDQ_FUSED16)
    if constexpr (kFused) {
      RangeAny(
          x, n, mn, mx, [](const S* p) { return Conv::InV(p); },
          [](S v) { return Conv::In(v); });
      return;
    }
#endif
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
  template <typename F>
  static inline void Periods(int64_t n, int64_t period, int64_t p0,
                             const F& seg) {
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
    if constexpr (kDirect || kFused) {
      // Whole periods, kRows at a time: each accumulator vector is loaded
      // and stored once per kRows rows instead of once per row. Only for
      // data that fits in L2: streamed from memory, kRows interleaved
      // streams measured slower than one sequential stream.
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
#if defined(TFQDQ_FUSED16)
    if constexpr (kFused) return Conv::InV(p);
#endif
    if constexpr (kDirect) {
      return LoadVec(reinterpret_cast<const C*>(p));
    } else {
      return Vec{};  // not used
    }
  }

  // mn/mx over R consecutive whole periods of x.
  template <int64_t R>
  static inline void RangeColsRows(const S* x, int64_t period, C* mn, C* mx) {
    int64_t k = 0;
    for (; k + kWidth <= period; k += kWidth) {
      Vec a = LoadVec(mn + k), b = LoadVec(mx + k);
      for (int64_t r = 0; r < R; ++r) {
        const Vec v = LoadAny(x + r * period + k);
        a = (v < a) ? v : a;
        b = (b < v) ? v : b;
      }
      std::memcpy(mn + k, &a, sizeof(a));
      std::memcpy(mx + k, &b, sizeof(b));
    }
    for (; k < period; ++k) {
      for (int64_t r = 0; r < R; ++r) {
        mn[k] = MinIgnoringNaN(mn[k], Conv::In(x[r * period + k]));
        mx[k] = MaxIgnoringNaN(mx[k], Conv::In(x[r * period + k]));
      }
    }
  }

  static inline void RangeColsSeg(const S* x, int64_t n, C* mn, C* mx) {
#if defined(TFQDQ_FUSED16)
    if constexpr (kFused) {
      int64_t k = 0;
      for (; k + kVF <= n; k += kVF) {
        const VF v = Conv::InV(x + k), a = LoadVF(mn + k), b = LoadVF(mx + k);
        const VF a2 = (v < a) ? v : a, b2 = (b < v) ? v : b;
        std::memcpy(mn + k, &a2, sizeof(a2));
        std::memcpy(mx + k, &b2, sizeof(b2));
      }
      for (; k < n; ++k) {
        mn[k] = MinIgnoringNaN(mn[k], Conv::In(x[k]));
        mx[k] = MaxIgnoringNaN(mx[k], Conv::In(x[k]));
      }
      return;
    }
#endif
    AsCompute(x, n, [&](const C* c, int64_t i, int64_t len) {
      RangeColsC(c, len, mn + i, mx + i);
    });
  }

  // Writes y[0..n) through compute(i, len, dst), which stores elements
  // [i, i + len) into dst[0..len). Without streaming dst is y itself (which
  // may alias the input: every loop reads element k before writing it);
  // with streaming, chunks go through an L1 buffer and on to y with
  // non-temporal stores (large outputs: no read-for-ownership of the output
  // lines, no eviction of useful cache contents). Types with kNT stream
  // straight from registers instead (NTVectors).
  template <typename F>
  static inline void Produce(S* y, int64_t n, bool stream, const F& compute) {
    if (!stream) {
      compute(0, n, y);
      return;
    }
    alignas(64) S buf[kChunk];
    for (int64_t i = 0; i < n; i += kChunk) {
      const int64_t len = n - i < kChunk ? n - i : kChunk;
      compute(i, len, buf);
      StreamBytes(y + i, buf, len * sizeof(S));
    }
  }

  // Element-wise QDQ in storage type S. Types with cheap conversions (float,
  // double, bfloat16) convert inside the one loop; half goes through an L1
  // buffer of floats in chunks (F16C converts in bulk).
  template <bool kClamp, bool kHalfUp>
  static inline void QdqS(const S* x, S* y, int64_t n, C s, C q, C l, C h) {
#if defined(TFQDQ_FUSED16)
    if constexpr (kFused) {
      const VF vs = Splat(s), vq = Splat(q), vl = Splat(l), vh = Splat(h);
      int64_t k = 0;
      for (; k + kVF <= n; k += kVF) {
        Conv::OutV(y + k, VQuantizeDequantize<kClamp, kHalfUp>(Conv::InV(x + k),
                                                              vl, vh, vs, vq));
      }
      for (; k < n; ++k) {
        y[k] = Conv::Out(
            QuantizeDequantize<C, kClamp, kHalfUp>(Conv::In(x[k]), l, h, s, q));
      }
      return;
    }
#endif
    if constexpr (Conv::kChunked) {
      alignas(64) C buf[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(x + i, buf, len);
        for (int64_t k = 0; k < len; ++k) {
          buf[k] = QuantizeDequantize<C, kClamp, kHalfUp>(buf[k], l, h, s, q);
        }
        Narrow(buf, y + i, len);
      }
    } else {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = Conv::Out(
            QuantizeDequantize<C, kClamp, kHalfUp>(Conv::In(x[k]), l, h, s, q));
      }
    }
  }

  // Streaming for kNT types: body(k) computes and stores (non-temporally)
  // the vector of elements [k, k + kVF); the elements before the first
  // output vector aligned to its size, and the tail, go through
  // scalar(i, len) with ordinary stores (len > 0). Every element gets the same
  // operations as in the ordinary loops, so the same bits.
#if defined(TFQDQ_FUSED16)
  template <typename Body, typename Scalar>
  static inline void NTVectors(S* y, int64_t n, const Body& body,
                               const Scalar& scalar) {
    constexpr uintptr_t kBytes = sizeof(S) * kVF;  // one output vector
    const uintptr_t mis = reinterpret_cast<uintptr_t>(y) % kBytes;
    int64_t head = static_cast<int64_t>((kBytes - mis) % kBytes / sizeof(S));
    if (head > n) head = n;
    if (head > 0) scalar(0, head);  // (never with len 0: GradS reads *l first)
    int64_t k = head;
    for (; k + kVF <= n; k += kVF) body(k);
    if (k < n) scalar(k, n - k);
  }
#endif

  template <bool kClamp, bool kHalfUp>
  static void Qdq(const S* x, S* y, int64_t n, C s, C q, C l, C h,
                  bool stream) {
#if defined(TFQDQ_FUSED16)
    if constexpr (kNT) {
      if (stream) {
        const VF vs = Splat(s), vq = Splat(q), vl = Splat(l), vh = Splat(h);
        NTVectors(
            y, n,
            [&](int64_t k) {
              Conv::OutNT(y + k, VQuantizeDequantize<kClamp, kHalfUp>(
                                     Conv::InV(x + k), vl, vh, vs, vq));
            },
            [&](int64_t i, int64_t len) {
              QdqS<kClamp, kHalfUp>(x + i, y + i, len, s, q, l, h);
            });
        return;
      }
    }
#endif
    Produce(y, n, stream, [&](int64_t i, int64_t len, S* dst) {
      QdqS<kClamp, kHalfUp>(x + i, dst, len, s, q, l, h);
    });
  }

  template <bool kClamp, bool kHalfUp>
  static inline void QdqColsS(const S* x, S* y, int64_t n,
                              const C* __restrict s, const C* __restrict q,
                              const C* __restrict l, const C* __restrict h) {
#if defined(TFQDQ_FUSED16)
    if constexpr (kFused) {
      int64_t k = 0;
      for (; k + kVF <= n; k += kVF) {
        Conv::OutV(y + k, VQuantizeDequantize<kClamp, kHalfUp>(
                              Conv::InV(x + k), LoadVF(l + k), LoadVF(h + k),
                              LoadVF(s + k), LoadVF(q + k)));
      }
      for (; k < n; ++k) {
        y[k] = Conv::Out(QuantizeDequantize<C, kClamp, kHalfUp>(
            Conv::In(x[k]), l[k], h[k], s[k], q[k]));
      }
      return;
    }
#endif
    if constexpr (Conv::kChunked) {
      alignas(64) C buf[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(x + i, buf, len);
        for (int64_t k = 0; k < len; ++k) {
          buf[k] = QuantizeDequantize<C, kClamp, kHalfUp>(
              buf[k], l[i + k], h[i + k], s[i + k], q[i + k]);
        }
        Narrow(buf, y + i, len);
      }
    } else {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = Conv::Out(QuantizeDequantize<C, kClamp, kHalfUp>(
            Conv::In(x[k]), l[k], h[k], s[k], q[k]));
      }
    }
  }

  template <bool kClamp, bool kHalfUp>
  static void QdqCols(const S* x, S* y, int64_t n, const C* s, const C* q,
                      const C* l, const C* h, int64_t period, int64_t p0,
                      bool stream) {
#if defined(TFQDQ_FUSED16)
    if constexpr (kNT) {
      if (stream) {
        Periods(n, period, p0, [&](int64_t i, int64_t p, int64_t m) {
          NTVectors(
              y + i, m,
              [&](int64_t k) {
                Conv::OutNT(y + i + k,
                            VQuantizeDequantize<kClamp, kHalfUp>(
                                Conv::InV(x + i + k), LoadVF(l + p + k),
                                LoadVF(h + p + k), LoadVF(s + p + k),
                                LoadVF(q + p + k)));
              },
              [&](int64_t k, int64_t len) {
                QdqColsS<kClamp, kHalfUp>(x + i + k, y + i + k, len,
                                          s + p + k, q + p + k, l + p + k,
                                          h + p + k);
              });
        });
        return;
      }
    }
#endif
    Produce(y, n, stream, [&](int64_t i, int64_t len, S* dst) {
      Periods(len, period, (p0 + i) % period,
              [&](int64_t j, int64_t p, int64_t m) {
                QdqColsS<kClamp, kHalfUp>(x + i + j, dst + j, m, s + p, q + p,
                                          l + p, h + p);
              });
    });
  }

  // MaskedGradient of qdq_math.h, with the mask as a select (the same value:
  // g * 1 or g * 0) so that it vectorizes. `one` must be a real multiply:
  // TensorFlow runs kernels with denormals-are-zero, so g * 1 flushes a
  // subnormal g to 0, but the compiler folds a literal `g * 1.0` to `g`
  // (found by the fuzzer). OpaqueOne hides the constant from the optimizer.
  static inline C OpaqueOne() {
    static volatile C one = C(1);
    return one;
  }
  static inline C Masked(C g, C x, C l, C h, C one) {
    const bool in = (x >= l) & (x <= h);
    return g * (in ? one : C(0));
  }

  // y[k] = Masked(g[k], x[k], lo, hi) with lo/hi fixed (kCols false) or
  // per element (kCols: l[k], h[k]).
  template <bool kCols>
  static inline void GradS(const S* g, const S* x, S* y, int64_t n,
                           const C* __restrict l, const C* __restrict h) {
    const C one = OpaqueOne();
#if defined(TFQDQ_FUSED16)
    if constexpr (kFused) {
      int64_t k = 0;
      const VF vl = Splat(*l), vh = Splat(*h), vone = Splat(one);
      for (; k + kVF <= n; k += kVF) {
        Conv::OutV(y + k, VMaskedGradient(Conv::InV(g + k), Conv::InV(x + k),
                                          kCols ? LoadVF(l + k) : vl,
                                          kCols ? LoadVF(h + k) : vh, vone));
      }
      for (; k < n; ++k) {
        y[k] = Conv::Out(Masked(Conv::In(g[k]), Conv::In(x[k]),
                                kCols ? l[k] : *l, kCols ? h[k] : *h, one));
      }
      return;
    }
#endif
    if constexpr (Conv::kChunked) {
      alignas(64) C gb[kChunk], xb[kChunk];
      for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        Widen(g + i, gb, len);
        Widen(x + i, xb, len);
        for (int64_t k = 0; k < len; ++k) {
          gb[k] = kCols ? Masked(gb[k], xb[k], l[i + k], h[i + k], one)
                        : Masked(gb[k], xb[k], *l, *h, one);
        }
        Narrow(gb, y + i, len);
      }
    } else if constexpr (kCols) {
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = Conv::Out(Masked(Conv::In(g[k]), Conv::In(x[k]), l[k], h[k], one));
      }
    } else {
      const C lo = *l, hi = *h;
#pragma GCC ivdep
      for (int64_t k = 0; k < n; ++k) {
        y[k] = Conv::Out(Masked(Conv::In(g[k]), Conv::In(x[k]), lo, hi, one));
      }
    }
  }

  static void Grad(const S* g, const S* x, S* y, int64_t n, C l, C h,
                   bool stream) {
#if defined(TFQDQ_FUSED16)
    if constexpr (kNT) {
      if (stream) {
        const VF vl = Splat(l), vh = Splat(h), vone = Splat(OpaqueOne());
        NTVectors(
            y, n,
            [&](int64_t k) {
              Conv::OutNT(y + k, VMaskedGradient(Conv::InV(g + k),
                                                 Conv::InV(x + k), vl, vh,
                                                 vone));
            },
            [&](int64_t i, int64_t len) {
              GradS<false>(g + i, x + i, y + i, len, &l, &h);
            });
        return;
      }
    }
#endif
    Produce(y, n, stream, [&](int64_t i, int64_t len, S* dst) {
      GradS<false>(g + i, x + i, dst, len, &l, &h);
    });
  }

  static void GradCols(const S* g, const S* x, S* y, int64_t n, const C* l,
                       const C* h, int64_t period, int64_t p0, bool stream) {
#if defined(TFQDQ_FUSED16)
    if constexpr (kNT) {
      if (stream) {
        const VF vone = Splat(OpaqueOne());
        Periods(n, period, p0, [&](int64_t i, int64_t p, int64_t m) {
          NTVectors(
              y + i, m,
              [&](int64_t k) {
                Conv::OutNT(y + i + k,
                            VMaskedGradient(Conv::InV(g + i + k),
                                            Conv::InV(x + i + k),
                                            LoadVF(l + p + k),
                                            LoadVF(h + p + k), vone));
              },
              [&](int64_t k, int64_t len) {
                GradS<true>(g + i + k, x + i + k, y + i + k, len, l + p + k,
                            h + p + k);
              });
        });
        return;
      }
    }
#endif
    Produce(y, n, stream, [&](int64_t i, int64_t len, S* dst) {
      Periods(len, period, (p0 + i) % period,
              [&](int64_t j, int64_t p, int64_t m) {
                GradS<true>(g + i + j, x + i + j, dst + j, m, l + p, h + p);
              });
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
  t.isa = TFQDQ_ISA_NAME;
  t.f32 = Loops<ConvF32>::Table();
  t.f64 = Loops<ConvF64>::Table();
  t.f16 = Loops<ConvF16>::Table();
  t.bf16 = Loops<ConvBf16>::Table();
  return t;
}

}  // namespace

const LoopTable& TFQDQ_TABLE_FN() {
  static const LoopTable table = MakeTable();
  return table;
}

}  // namespace cpu
}  // namespace tf_qdq
