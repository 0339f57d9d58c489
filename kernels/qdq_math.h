// Per-element arithmetic of the QuantizeAndDequantize family (docs/semantics.md#arithmetic).
//
// This header is the single source of truth for the math: the CPU loops
// (qdq_cpu.cc, qdq_cpu_loops.h) and the CUDA kernels include it unchanged. It uses no
// TensorFlow or Eigen types; everything is templated on the compute type C
// (float for bfloat16/half/float, double for double).
//
// Bit-exactness rules: every operation is one IEEE operation in C with
// round-to-nearest; callers compile with -ffp-contract=off (host) and
// -fmad=false (CUDA), never with fast-math or flush-to-zero.
#ifndef TF_QDQ_KERNELS_QDQ_MATH_H_
#define TF_QDQ_KERNELS_QDQ_MATH_H_

#include <cstdint>

#if defined(__CUDACC__)
#define TF_QDQ_HD __host__ __device__
#else
#define TF_QDQ_HD
#include <cmath>
#endif

// The namespace of everything compiled per instruction set, the pattern of
// Highway's HWY_NAMESPACE: the CPU loops are compiled once per instruction
// set (qdq_cpu_{sse2,avx2,avx512}.cc, each with its own -m flags), and each of
// those files defines TF_QDQ_ISA_NAMESPACE (N_SSE2, N_AVX2, N_AVX512) before
// its first include. The math below and the loops then get names of their
// own per instruction set, so the linker can never merge an inline function
// compiled for AVX2 with the SSE2 copy that another table calls. Every other
// file (the kernels, validation, XLA, the CUDA code) compiles it in N_DEFAULT.
// The namespace is inline: callers write tf_qdq::ComputeParams either way.
#ifndef TF_QDQ_ISA_NAMESPACE
#define TF_QDQ_ISA_NAMESPACE N_DEFAULT
#endif

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {

template <typename C>
struct Limits;
template <>
struct Limits<float> {
  // Largest finite value (std::numeric_limits<float>::max()).
  static TF_QDQ_HD constexpr float Max() { return 3.40282346638528859812e+38f; }
  // 2^23: adding and subtracting it rounds |v| < 2^23 to an integer.
  static TF_QDQ_HD constexpr float RoundMagic() { return 8388608.0f; }
};
template <>
struct Limits<double> {
  static TF_QDQ_HD constexpr double Max() { return 1.79769313486231570815e+308; }
  static TF_QDQ_HD constexpr double RoundMagic() { return 4503599627370496.0; }
};

// Compute type of the arithmetic for a storage type: float for bfloat16, half
// and float (docs/semantics.md#diff-half-bfloat16), double for double. Storage
// types are named by the callers (Eigen types on the host, bit-pattern types in CUDA code).
template <typename T>
struct ComputeType {
  using type = float;
};
template <>
struct ComputeType<double> {
  using type = double;
};

template <typename C>
TF_QDQ_HD inline C Abs(C v) {
#if defined(__CUDA_ARCH__)
  return fabs(v);
#else
  return std::fabs(v);
#endif
}

template <typename C>
TF_QDQ_HD inline C CopySign(C mag, C sign) {
#if defined(__CUDA_ARCH__)
  return copysign(mag, sign);
#else
  return std::copysign(mag, sign);
#endif
}

// The integer range of docs/semantics.md#arithmetic, step 1, in int64. num_bits must already be
// validated (1..61 signed, 1..62 unsigned).
TF_QDQ_HD inline void IntegerRange(int num_bits, bool signed_input, bool narrow_range,
                                   int64_t* qmin, int64_t* qmax) {
  if (signed_input) {
    const int64_t half = static_cast<int64_t>(uint64_t{1} << (num_bits - 1));
    *qmin = -half + (narrow_range ? 1 : 0);
    *qmax = half - 1;
  } else {
    *qmin = 0;
    *qmax = static_cast<int64_t>((uint64_t{1} << num_bits) - 1);
  }
}

// rint(v) in the default rounding mode (round half to even, keeps -0.0). Where
// the host compiler targets SSE4.1 (the AVX2 and AVX-512 CPU loops) it is
// std::rint, one ROUNDPS/VRNDSCALEPS per vector; elsewhere (the SSE2 loops,
// CUDA) it is made of IEEE additions, which vectorize without SSE4.1. Both give
// identical bits: |v| >= 2^23 (2^52 for double), inf and NaN are already
// integral (or NaN) and pass through, the sign of a zero result is v's, and v
// is always a product, so a NaN is already quiet.
template <typename C>
TF_QDQ_HD inline C RoundHalfToEven(C v) {
#if !defined(__CUDACC__) && defined(__SSE4_1__)
  return std::rint(v);
#else
  const C magic = Limits<C>::RoundMagic();
  const C a = Abs(v);
  const C r = CopySign((a + magic) - magic, v);
  return (a < magic) ? r : v;
#endif
}

// floor(v + 0.5), TensorFlow's HALF_UP: 0.49999997f rounds to 1 (the sum is
// rounded first) and results in [-0.5, 0) become +0.0.
template <typename C>
TF_QDQ_HD inline C RoundHalfUp(C v) {
  const C w = v + C(0.5);
  const C r = RoundHalfToEven(w);
  return (r > w) ? r - C(1) : r;
}

// Quantization parameters of one tensor or one channel.
template <typename C>
struct Params {
  C scale;  // multiply before rounding
  C inv;    // multiply after rounding
  C lo;     // adjusted bounds, used for clamping when the range is given
  C hi;
};

// docs/semantics.md#arithmetic, step 3: from the range [mn, mx] and the integer range [qmin, qmax]
// (both already in C) to scale, inverse scale and adjusted bounds.
template <typename C>
TF_QDQ_HD inline Params<C> ComputeParams(C mn, C mx, C qmin, C qmax) {
  const C s_min = (qmin * mn > C(0)) ? qmin / mn : Limits<C>::Max();
  const C s_max = (qmax * mx > C(0)) ? qmax / mx : Limits<C>::Max();
  Params<C> p;
  if (s_min < s_max) {
    p.scale = s_min;
    p.inv = mn / qmin;
    p.lo = mn;
    p.hi = qmax * p.inv;
  } else {
    p.scale = s_max;
    p.inv = mx / qmax;
    p.lo = qmin * p.inv;
    p.hi = mx;
  }
  return p;
}

// docs/semantics.md#arithmetic, steps 4-6 for one element. kClamp: the range was given. kHalfUp:
// the HALF_UP rounding mode (else HALF_TO_EVEN).
template <typename C, bool kClamp, bool kHalfUp>
TF_QDQ_HD inline C QuantizeDequantize(C x, C lo, C hi, C scale, C inv) {
  C y = x;
  if (kClamp) {
    y = (hi < y) ? hi : y;  // a NaN input stays NaN, a NaN bound is ignored
    y = (y < lo) ? lo : y;
  }
  const C v = y * scale;
  const C r = kHalfUp ? RoundHalfUp(v) : RoundHalfToEven(v);
  return r * inv;
}

// V4Grad: the gradient passes where lo <= x <= hi (raw bounds, inclusive). A
// product, as in TensorFlow: inf or NaN gradients at masked positions give NaN.
template <typename C>
TF_QDQ_HD inline C MaskedGradient(C g, C x, C lo, C hi) {
  return g * C((x >= lo) && (x <= hi));
}

// Running min/max that ignore NaN (docs/semantics.md#diff-nan-in-data). Start
// from +inf / -inf.
template <typename C>
TF_QDQ_HD inline C MinIgnoringNaN(C acc, C x) {
  return (x < acc) ? x : acc;
}
template <typename C>
TF_QDQ_HD inline C MaxIgnoringNaN(C acc, C x) {
  return (acc < x) ? x : acc;
}

}  // namespace TF_QDQ_ISA_NAMESPACE
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_MATH_H_
