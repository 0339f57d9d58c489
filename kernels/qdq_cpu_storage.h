// Storage traits of the CPU loops (part of qdq_cpu_loops.h): for each element
// type, its storage type S (half and bfloat16 as uint16_t bit patterns), its
// compute type C (qdq_math.h's ComputeType) and the conversions between them.
//
//   ToCompute(s), ToStorage(c)      one element (qdq_cpu_convert.h)
//   kVectorConvert                  Load(p) / Store(p, v) convert a whole VF
//                                   in registers (half and bfloat16 with
//                                   F16C); the loops then work on VF
//   kStreamVectors                  Stream(p, v) stores a VF non-temporally
//                                   (p aligned to the stored vector's size),
//                                   so large outputs stream straight from
//                                   registers (float, half, bfloat16 with
//                                   F16C); others stream through an L1 chunk
//   kPairs                          LoadPair(p, &a, &b) / StorePair(p, a, b)
//                                   convert two VF with their lanes permuted
//                                   (cheaper; bfloat16 with F16C), for loops
//                                   whose lanes are interchangeable;
//                                   StorePairs2 stores two pairs (one NaN
//                                   test); StorePairExact for values the type
//                                   holds exactly (no rounding needed)
//   Bits, kAbsMask, kInfBits,       the storage bit pattern: an unsigned
//   kMinNormalBits                  integer of S's size, the mask without the
//                                   sign, +inf, the smallest normal number
//   kSubnormalsExact                whether g * 1 in the compute type keeps a
//                                   subnormal g (half: its subnormals are
//                                   normal floats); else denormals-are-zero
//                                   flushes it
#ifndef TF_QDQ_KERNELS_QDQ_CPU_STORAGE_H_
#define TF_QDQ_KERNELS_QDQ_CPU_STORAGE_H_

#include <cstdint>

#include "kernels/qdq_cpu_convert.h"
#include "kernels/qdq_cpu_vector.h"
#include "kernels/qdq_math.h"

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {
namespace {

#if defined(__F16C__)
constexpr bool kF16c = true;
#else
constexpr bool kF16c = false;
#endif

// Bit-pattern traits (see the list above).
template <typename U, U kAbs, U kInf, U kMinNormal, bool kExact>
struct BitsTraits {
  using Bits = U;
  static constexpr U kAbsMask = kAbs;
  static constexpr U kInfBits = kInf;
  static constexpr U kMinNormalBits = kMinNormal;
  static constexpr bool kSubnormalsExact = kExact;
};

// float and double: storage and compute type are the same.
template <typename T>
struct StorageSame {
  using S = T;
  using C = T;
  static constexpr bool kVectorConvert = false;
  static constexpr bool kStreamVectors = false;
  static constexpr bool kPairs = false;
  static inline C ToCompute(S v) { return v; }
  static inline S ToStorage(C v) { return v; }
};

// float streams straight from registers where the table has the F16C
// loops' non-temporal stores.
struct StorageFloat : StorageSame<float>,
                      BitsTraits<uint32_t, 0x7fffffffu, 0x7f800000u, 0x00800000u, false> {
  static constexpr bool kStreamVectors = kF16c;
#if defined(__F16C__)
  static inline void Stream(float* p, VF v) { StoreVF<true>(p, v); }
#endif
};

struct StorageDouble
    : StorageSame<double>,
      BitsTraits<uint64_t, 0x7fffffffffffffffu, 0x7ff0000000000000u, 0x0010000000000000u, false> {};

struct StorageHalf : BitsTraits<uint16_t, 0x7fff, 0x7c00, 0x0400, true> {
  using S = uint16_t;
  using C = float;
  static constexpr bool kVectorConvert = kF16c;
  static constexpr bool kStreamVectors = kF16c;
  static constexpr bool kPairs = false;
  static inline C ToCompute(S v) { return HalfToFloat(v); }
  static inline S ToStorage(C v) { return FloatToHalf(v); }
#if defined(__F16C__)
  static inline VF Load(const S* p) { return LoadHalfV(p); }
  static inline void Store(S* p, VF v) { StoreHalfV(p, v); }
  static inline void Stream(S* p, VF v) { StoreHalfV<true>(p, v); }
#endif
};

struct StorageBf16 : BitsTraits<uint16_t, 0x7fff, 0x7f80, 0x0080, false> {
  using S = uint16_t;
  using C = float;
  static constexpr bool kVectorConvert = kF16c;
  static constexpr bool kStreamVectors = kF16c;
  static constexpr bool kPairs = kF16c;
  static inline C ToCompute(S v) { return Bf16ToFloat(v); }
  static inline S ToStorage(C v) { return FloatToBf16(v); }
#if defined(__F16C__)
  static inline VF Load(const S* p) { return LoadBf16V(p); }
  static inline void Store(S* p, VF v) { StoreBf16V(p, v); }
  static inline void Stream(S* p, VF v) { StoreBf16V<true>(p, v); }
  static inline void LoadPair(const S* p, VF* a, VF* b) { LoadBf16Pair(p, a, b); }
  static inline void StorePair(S* p, VF a, VF b) { StoreBf16Pair(p, a, b); }
  static inline void StorePairs2(S* p, VF a, VF b, VF c, VF d) { StoreBf16Pairs2(p, a, b, c, d); }
  // StorePair for values the storage type holds exactly (or NaN).
  static inline void StorePairExact(S* p, VF a, VF b) { StoreBf16PairExact(p, a, b); }
#endif
};

}  // namespace
}  // namespace TF_QDQ_ISA_NAMESPACE
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_STORAGE_H_
