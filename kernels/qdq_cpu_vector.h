// Vector primitives of the CPU loops (part of qdq_cpu_loops.h, which
// includes it once per instruction set).
//
// VF is one vector register of floats (GCC/Clang vector extension,
// TF_QDQ_VEC_BYTES wide). The arithmetic below is qdq_math.h's, lane by lane:
// the same IEEE operations in the same order, so a lane gives the bits the
// scalar function gives. Loads and stores that convert half / bfloat16 in
// registers need F16C (the AVX2 and AVX-512 tables).
#ifndef TF_QDQ_KERNELS_QDQ_CPU_VECTOR_H_
#define TF_QDQ_KERNELS_QDQ_CPU_VECTOR_H_

#ifndef TF_QDQ_VEC_BYTES
#error "include qdq_cpu_loops.h"
#endif

#include <cstdint>
#include <cstring>

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/qdq_math.h"

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {
namespace {

typedef float VF __attribute__((vector_size(TF_QDQ_VEC_BYTES)));
typedef uint32_t VU __attribute__((vector_size(TF_QDQ_VEC_BYTES)));
typedef int32_t VI __attribute__((vector_size(TF_QDQ_VEC_BYTES)));
constexpr int kFloatLanes = TF_QDQ_VEC_BYTES / 4;

// Every lane = v, bit for bit. (Not `VF{} + v`: 0.0 + -0.0 is +0.0, which
// would turn a clamp bound of -0.0 into +0.0.)
inline VF Splat(float v) {
  VF r;
  for (int i = 0; i < kFloatLanes; ++i) r[i] = v;
  return r;
}

inline VF LoadVF(const float* p) {
  VF v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Copies `bytes` bytes to dst with non-temporal (streaming) stores where the
// destination is 16-byte aligned. The caller fences (SFENCE) once its block
// is written, before the results are handed to another thread.
inline void StreamCopy(void* dst, const void* src, int64_t bytes) {
#if defined(__SSE2__)
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  const int64_t head = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15);
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

// ---- Arithmetic: RoundHalfToEven / RoundHalfUp / QuantizeDequantize /
// MaskedGradient of qdq_math.h for float vectors. Abs and CopySign are the
// sign-bit operations they are in IEEE 754.
inline VF VRoundHalfToEven(VF v) {  // as RoundHalfToEven: rint
#if TF_QDQ_VEC_BYTES == 64 && defined(__AVX512F__)
  return (VF)_mm512_roundscale_ps((__m512)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#elif TF_QDQ_VEC_BYTES == 32 && defined(__AVX__)
  return (VF)_mm256_round_ps((__m256)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
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
// `one` is 1.0 from Loops::OpaqueOne (a real multiply, see there).
inline VF VMaskedGradient(VF g, VF x, VF lo, VF hi, VF one) {
  const VI in = (x >= lo) & (x <= hi);
  return g * (in ? one : Splat(0.0f));
}

// ---- Loads and stores that convert in registers (F16C tables) ------------
#if defined(__F16C__)
#if TF_QDQ_VEC_BYTES != 32 && TF_QDQ_VEC_BYTES != 64
#error "the F16C loads and stores need 32- or 64-byte vectors"
#endif

// Stores one float vector; kNonTemporal: a non-temporal store, which needs p
// aligned to the vector's size (the callers see to it).
template <bool kNonTemporal>
inline void StoreVF(float* p, VF v) {
  if constexpr (!kNonTemporal) {
    std::memcpy(p, &v, sizeof(v));
  } else {
#if TF_QDQ_VEC_BYTES == 64
    _mm512_stream_ps(p, (__m512)v);
#else
    _mm256_stream_ps(p, (__m256)v);
#endif
  }
}

// Stores 16-bit lanes (bits: __m128i or __m256i).
template <bool kNonTemporal, typename Bits>
inline void StoreBits(uint16_t* p, Bits bits) {
  if constexpr (sizeof(Bits) == 16) {
    kNonTemporal ? _mm_stream_si128(reinterpret_cast<__m128i*>(p), bits)
                 : _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bits);
  } else {
    kNonTemporal ? _mm256_stream_si256(reinterpret_cast<__m256i*>(p), bits)
                 : _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bits);
  }
}

// Half: F16C's VCVTPH2PS / VCVTPS2PH (round to nearest even) give the bits of
// HalfToFloat / FloatToHalf (qdq_cpu_convert.h).
#if TF_QDQ_VEC_BYTES == 64
inline VF LoadHalfV(const uint16_t* p) {
  return (VF)_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
template <bool kNonTemporal = false>
inline void StoreHalfV(uint16_t* p, VF v) {
  StoreBits<kNonTemporal>(p, _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT));
}
#else
inline VF LoadHalfV(const uint16_t* p) {
  return (VF)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
template <bool kNonTemporal = false>
inline void StoreHalfV(uint16_t* p, VF v) {
  StoreBits<kNonTemporal>(p, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT));
}
#endif

// bfloat16: Bf16ToFloat / FloatToBf16 (qdq_cpu_convert.h), lane by lane.
inline VU Bf16BitsV(VF v) {  // FloatToBf16 of each lane, in its low 16 bits
  const VU u = (VU)v;
  const VU rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const VU nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  return (VU)((v != v) ? (VI)nan : (VI)rounded);
}
#if TF_QDQ_VEC_BYTES == 64
inline VF LoadBf16V(const uint16_t* p) {
  return (VF)_mm512_slli_epi32(
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16);
}
template <bool kNonTemporal = false>
inline void StoreBf16V(uint16_t* p, VF v) {
  StoreBits<kNonTemporal>(p, _mm512_cvtepi32_epi16((__m512i)Bf16BitsV(v)));
}
#else
inline VF LoadBf16V(const uint16_t* p) {
  return (VF)_mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16);
}
template <bool kNonTemporal = false>
inline void StoreBf16V(uint16_t* p, VF v) {
  const __m256i r = (__m256i)Bf16BitsV(v);  // lanes <= 0xffff: packus is exact
  StoreBits<kNonTemporal>(
      p, _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}
#endif

// Two float vectors from the 2 * kFloatLanes bfloat16 values at p, with the
// lanes in an order that StoreBf16Pair restores: a widening unpack within
// 128-bit lanes (one shuffle per vector instead of a zero-extension and a
// shift), and a narrowing pack (one per two vectors instead of a pack and an
// extract per vector). Only for loops where every lane of a vector gets the
// same operations with the same parameters (per-tensor QDQ and gradient);
// lane by lane the values are Bf16ToFloat's and the stored bits
// FloatToBf16's.
inline void LoadBf16Pair(const uint16_t* p, VF* first, VF* second) {
#if TF_QDQ_VEC_BYTES == 64
  const __m512i v = _mm512_loadu_si512(p);
  const __m512i zero = _mm512_setzero_si512();
  *first = (VF)_mm512_unpacklo_epi16(zero, v);
  *second = (VF)_mm512_unpackhi_epi16(zero, v);
#else
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i zero = _mm256_setzero_si256();
  *first = (VF)_mm256_unpacklo_epi16(zero, v);
  *second = (VF)_mm256_unpackhi_epi16(zero, v);
#endif
}
// Whether a lane of a or b is NaN (one unordered compare for both).
inline bool AnyNaN(VF a, VF b) {
#if TF_QDQ_VEC_BYTES == 64
  return _mm512_cmp_ps_mask((__m512)a, (__m512)b, _CMP_UNORD_Q) != 0;
#else
  return _mm256_movemask_ps(_mm256_cmp_ps((__m256)a, (__m256)b, _CMP_UNORD_Q)) != 0;
#endif
}
// Packs the low 16 bits of the lanes of two vectors (lanes <= 0xffff: the
// unsigned saturating pack is exact) and stores them.
inline void StorePacked(uint16_t* p, VU first, VU second) {
#if TF_QDQ_VEC_BYTES == 64
  _mm512_storeu_si512(p, _mm512_packus_epi32((__m512i)first, (__m512i)second));
#else
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm256_packus_epi32((__m256i)first, (__m256i)second));
#endif
}
// FloatToBf16 of the lanes of two vectors, stored in StorePacked's order,
// for lanes that are not NaN (or are the NaN 0x7fc00000 with a sign, which
// gives 0x7fc0 with the sign). With u the float's bits and H, L its upper and
// lower halves: rounding half up is the upper half of u + 0x8000. On a tie
// (L == 0x8000, so the lower half of the sum is 0) that is H + 1, and round
// to nearest even is H + 1 with its lowest bit cleared (H odd: H + 1 is even
// and stays; H even: H + 1 is odd and becomes H). So: one 32-bit add per
// vector; a byte shuffle per vector and two 64-bit unpacks that split the
// sums into their upper halves Hs and lower halves Ls, as 16-bit lanes in
// the stored order; then Hs & ~(Ls == 0), with (Ls == 0) as the saturating
// difference 1 - Ls. Per 16 elements on AVX2 that is 8 operations, one of
// them on the ports the float arithmetic needs, where the 32-bit form
// (u + 0x7fff + ((u >> 16) & 1)) >> 16 and a pack takes 11, 4 of them shifts
// on those ports.
inline void StoreBf16PairRounded(uint16_t* p, VF first, VF second) {
  const VU a = (VU)first + 0x8000u, b = (VU)second + 0x8000u;
#if TF_QDQ_VEC_BYTES == 64
  // Within each 128-bit lane: the lower halves of the four sums, then their
  // upper halves.
  const __m512i split =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
  const __m512i sa = _mm512_shuffle_epi8((__m512i)a, split);
  const __m512i sb = _mm512_shuffle_epi8((__m512i)b, split);
  const __m512i lo = _mm512_unpacklo_epi64(sa, sb);
  const __m512i hi = _mm512_unpackhi_epi64(sa, sb);
  const __m512i tie = _mm512_subs_epu16(_mm512_set1_epi16(1), lo);
  _mm512_storeu_si512(p, _mm512_andnot_si512(tie, hi));
#else
  const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1,
                                         4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m256i sa = _mm256_shuffle_epi8((__m256i)a, split);
  const __m256i sb = _mm256_shuffle_epi8((__m256i)b, split);
  const __m256i lo = _mm256_unpacklo_epi64(sa, sb);
  const __m256i hi = _mm256_unpackhi_epi64(sa, sb);
  const __m256i tie = _mm256_subs_epu16(_mm256_set1_epi16(1), lo);  // 1 where Ls == 0
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_andnot_si256(tie, hi));
#endif
}
// A NaN lane becomes the float NaN 0x7fc00000 with its sign, which
// StoreBf16PairRounded stores as FloatToBf16's 0x7fc0 with the sign.
inline VF CanonicalNaNV(VF v) {
  const VF nan = (VF)(((VU)v & 0x80000000u) | 0x7fc00000u);
  return (v != v) ? nan : v;
}
// Vectors without NaN (the usual case, one test per pair) skip the NaN
// selects. (The NaN branch stays this small on purpose: a larger one, or a
// call, leaves GCC short of registers in the loops, and it then rebuilds
// constants in every iteration.)
inline void StoreBf16Pair(uint16_t* p, VF first, VF second) {
  if (__builtin_expect(AnyNaN(first, second), 0)) {
    first = CanonicalNaNV(first);
    second = CanonicalNaNV(second);
  }
  StoreBf16PairRounded(p, first, second);
}
// StoreBf16Pair of (first, second) at p and (third, fourth) after them, with
// one NaN test for the four vectors (about 5% faster per-tensor QDQ on AVX2
// than two StoreBf16Pair).
inline void StoreBf16Pairs2(uint16_t* p, VF first, VF second, VF third, VF fourth) {
#if TF_QDQ_VEC_BYTES == 64
  const bool nan = (_mm512_cmp_ps_mask((__m512)first, (__m512)second, _CMP_UNORD_Q) |
                    _mm512_cmp_ps_mask((__m512)third, (__m512)fourth, _CMP_UNORD_Q)) != 0;
#else
  const bool nan = _mm256_movemask_ps(_mm256_or_ps(
                       _mm256_cmp_ps((__m256)first, (__m256)second, _CMP_UNORD_Q),
                       _mm256_cmp_ps((__m256)third, (__m256)fourth, _CMP_UNORD_Q))) != 0;
#endif
  if (__builtin_expect(nan, 0)) {
    first = CanonicalNaNV(first);
    second = CanonicalNaNV(second);
    third = CanonicalNaNV(third);
    fourth = CanonicalNaNV(fourth);
  }
  StoreBf16PairRounded(p, first, second);
  StoreBf16PairRounded(p + 2 * kFloatLanes, third, fourth);
}
// As StoreBf16Pair, for values that bfloat16 holds exactly, or NaN (the
// masked gradient: a bfloat16 value times 1 or 0, flushed or not): rounding
// is then the identity, so FloatToBf16 is the upper 16 bits, except for NaN
// (0x7fc0 with the sign).
inline VU Bf16ExactBitsV(VF v) {
  const VU u = (VU)v;
  const VU nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  return (VU)((v != v) ? (VI)nan : (VI)(u >> 16));
}
inline void StoreBf16PairExact(uint16_t* p, VF first, VF second) {
  if (!AnyNaN(first, second)) {
    StorePacked(p, (VU)first >> 16, (VU)second >> 16);
  } else {
    StorePacked(p, Bf16ExactBitsV(first), Bf16ExactBitsV(second));
  }
}
#endif  // __F16C__

}  // namespace
}  // namespace TF_QDQ_ISA_NAMESPACE
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_VECTOR_H_
