// Scalar conversions between the 16-bit storage types and float, for the CPU
// loops (part of qdq_cpu_loops.h, which includes it once per instruction set).
//
// Branch-free so that they vectorize. They reproduce TensorFlow's casts bit
// for bit: round to nearest even, subnormals exact, and NaN as x86's F16C
// (half: sign and leading payload kept, quiet bit set) or Eigen (bfloat16:
// 0x7fc0 with the sign).
#ifndef TF_QDQ_KERNELS_QDQ_CPU_CONVERT_H_
#define TF_QDQ_KERNELS_QDQ_CPU_CONVERT_H_

#include <cstdint>
#include <cstring>

#include "kernels/qdq_math.h"

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {
namespace {

template <typename To, typename From>
inline To BitCast(From v) {
  static_assert(sizeof(To) == sizeof(From), "size");
  To t;
  std::memcpy(&t, &v, sizeof(t));
  return t;
}

// IEEE half -> float. Exact; signaling NaN comes out quiet (as VCVTPH2PS).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t a = h & 0x7fffu;
  const uint32_t shifted = a << 13;
  const uint32_t normal = shifted + 0x38000000u;  // rebias 15 -> 127
  const uint32_t special = shifted | 0x7f800000u | (a > 0x7c00u ? 0x00400000u : 0u);
  // Zero and subnormals: 2^-14 * (1 + m/1024) - 2^-14, exact.
  const float sub = BitCast<float>(shifted + 0x38800000u) - BitCast<float>(uint32_t{0x38800000u});
  const uint32_t mag = a >= 0x7c00u ? special : a >= 0x0400u ? normal : BitCast<uint32_t>(sub);
  return BitCast<float>(mag | sign);
}

// float -> IEEE half, round to nearest even (as VCVTPS2PH with imm 0).
inline uint16_t FloatToHalf(float f) {
  const uint32_t u = BitCast<uint32_t>(f);
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u ^ sign;
  const uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  // |f| < 2^-14: adding 0.5 rounds to a multiple of 2^-24 (RTNE) in the FPU.
  const uint32_t sub = BitCast<uint32_t>(BitCast<float>(a) + 0.5f) - 0x3f000000u;
  // Normal: rebias, add 0xfff plus the lowest kept bit (ties to even),
  // truncate; a carry into the exponent is the correct rounding (up to inf).
  const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
  const uint32_t mag = a > 0x7f800000u    ? nan
                       : a >= 0x47800000u ? 0x7c00u
                       : a < 0x38800000u  ? sub
                                          : normal;
  return static_cast<uint16_t>(mag | (sign >> 16));
}

inline float Bf16ToFloat(uint16_t b) { return BitCast<float>(static_cast<uint32_t>(b) << 16); }

// float -> bfloat16, round to nearest even; NaN becomes 0x7fc0 with its sign
// (Eigen's scalar conversion).
inline uint16_t FloatToBf16(float f) {
  const uint32_t u = BitCast<uint32_t>(f);
  const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

}  // namespace
}  // namespace TF_QDQ_ISA_NAMESPACE
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_CONVERT_H_
