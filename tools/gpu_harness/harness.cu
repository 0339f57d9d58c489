// TensorFlow-free check of tf_qdq's GPU kernels on a real device: drives every
// launcher of kernels/qdq_gpu.h (built from kernels/qdq_gpu.cu.cc, no
// TensorFlow headers or libraries) and compares bit for bit, NaN bits
// included, with the serial host reference (tools/gpu_harness/reference.h,
// kernels/qdq_math.h, the CPU kernels' 16-bit conversions).
//
// Sections (all by default; naming one or more runs only those):
//   --grid    correctness: float, double, half and bfloat16; per tensor and
//             per channel (depth 1, 3, 256, 4100; inner 1 and large); range
//             given and computed, both round modes, the gradient, the zeroing;
//             NaN (payloads, signs, signaling), infinities, zeros of both
//             signs, subnormal data and subnormal given ranges; empty
//             tensors; aligned, misaligned, differently aligned and in-place
//             arrays; a stale CUDA error before a launch. Then the same
//             launchers forced onto the 64-bit index path, and the range scan
//             with 2 rows of blocks (the loop over several windows per row).
//   --huge    more than 2^31 elements (the 64-bit index path for real): half
//             with the range computed, float clamped (given range) with
//             misaligned arrays, the float gradient with differently aligned
//             arrays, double clamped and computed in place, and a range scan
//             over more than 134M channels (more windows than grid rows).
//             Each case runs only when the device has the memory.
//   --timing  each kernel against a device-to-device cudaMemcpyAsync of the
//             same bytes, as markdown table rows ("| timing ...").
// --quick: the grid with small shapes only (for compute-sanitizer).
// --no-huge, --no-timing: leave those sections out.
// Exit status: 0 every check passed, 1 a check failed, 3 no CUDA device.
// Built and run by tools/gpu_harness/run.sh (see docs/gpu.md).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/qdq_cpu_convert.h"
#include "kernels/qdq_gpu.h"
#include "kernels/qdq_math.h"
#include "tools/gpu_harness/reference.h"

namespace {

using tf_qdq::ComputeParams;
using tf_qdq::ComputeType;
using tf_qdq::Params;
using tf_qdq::gpu::BFloat16Bits;
using tf_qdq::gpu::Dims;
using tf_qdq::gpu::HalfBits;
using tf_qdq::gpu::ParamsArg;

int failures = 0;
int cases = 0;

#define CUDA_OK(expr)                                                                 \
  do {                                                                                \
    const cudaError_t e_ = (expr);                                                    \
    if (e_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "CUDA error %s (%s) at %s:%d: %s\n", cudaGetErrorName(e_), \
                   cudaGetErrorString(e_), __FILE__, __LINE__, #expr);                \
      std::exit(2);                                                                   \
    }                                                                                 \
  } while (0)

// A launcher's return code: anything but 0 is a failure of the case.
bool LaunchOk(int code, const std::string& what) {
  if (code == 0) return true;
  ++failures;
  std::printf("FAIL %s: launcher returned %s (%s)\n", what.c_str(), tf_qdq::gpu::ErrorName(code),
              tf_qdq::gpu::ErrorString(code));
  return false;
}

// --- storage types on the host ------------------------------------------------
template <typename S>
struct HostIo {
  static const char* Name();
  using C = typename ComputeType<S>::type;
  static C ToC(S v);
  static S FromC(C v);
};
template <>
struct HostIo<float> {
  static const char* Name() { return "float32"; }
  static float ToC(float v) { return v; }
  static float FromC(float v) { return v; }
};
template <>
struct HostIo<double> {
  static const char* Name() { return "float64"; }
  static double ToC(double v) { return v; }
  static double FromC(double v) { return v; }
};
// The CPU kernels' conversions (TensorFlow's, NaN bits included).
template <>
struct HostIo<HalfBits> {
  static const char* Name() { return "float16"; }
  static float ToC(HalfBits v) { return tf_qdq::HalfToFloat(v.bits); }
  static HalfBits FromC(float v) { return HalfBits{tf_qdq::FloatToHalf(v)}; }
};
template <>
struct HostIo<BFloat16Bits> {
  static const char* Name() { return "bfloat16"; }
  static float ToC(BFloat16Bits v) { return tf_qdq::Bf16ToFloat(v.bits); }
  static BFloat16Bits FromC(float v) { return BFloat16Bits{tf_qdq::FloatToBf16(v)}; }
};

// The reference output of one element: the host arithmetic with the CPU
// kernels' NaN bits (x86's; CpuNaN is the identity on an x86 host).
template <typename S>
S RefQdq(typename ComputeType<S>::type x, const Params<typename ComputeType<S>::type>& p,
         bool clamp, bool half_up) {
  return HostIo<S>::FromC(
      tf_qdq::gpu_body::CpuNaN(tf_qdq::reference::Qdq(x, p, clamp, half_up), x));
}
template <typename S>
S RefGrad(typename ComputeType<S>::type g, typename ComputeType<S>::type x,
          const Params<typename ComputeType<S>::type>& p) {
  return HostIo<S>::FromC(tf_qdq::gpu_body::CpuNaN(tf_qdq::MaskedGradient(g, x, p.lo, p.hi), g));
}

// Outputs: bit for bit, NaN bits included.
template <typename S>
bool SameStored(S a, S b) {
  return std::memcmp(&a, &b, sizeof(S)) == 0;
}
// Parameters (internal, never written to an output): a NaN bound (0 * inf,
// unsigned with an infinite range) only takes part in comparisons, so any NaN
// matches any NaN.
template <typename C>
bool SameParam(C a, C b) {
  return std::memcmp(&a, &b, sizeof(C)) == 0 || (a != a && b != b);
}

// "64-bit index, " / "2 grid rows, " for the tags of the forced paths.
std::string mode_tag;
int timing_rows = 0;

std::string DimsText(const Dims& d) {
  return "[" + std::to_string(d.outer) + ", " + std::to_string(d.depth) + ", " +
         std::to_string(d.inner) + "]";
}

// --- device buffers -------------------------------------------------------------
// `count` elements of S at `offset` elements past a 256-byte aligned
// allocation (offset 1: every array starts off a 16-byte boundary).
template <typename S>
struct DeviceArray {
  char* base = nullptr;
  S* p = nullptr;
  int64_t count = 0;
  DeviceArray(int64_t n, int offset) : count(n) {
    CUDA_OK(cudaMalloc(&base, static_cast<size_t>(n + 16) * sizeof(S)));
    p = reinterpret_cast<S*>(base) + offset;
  }
  ~DeviceArray() { cudaFree(base); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void Upload(const std::vector<S>& h) {
    CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(S), cudaMemcpyHostToDevice));
  }
  std::vector<S> Download() const {
    std::vector<S> h(count);
    CUDA_OK(cudaMemcpy(h.data(), p, h.size() * sizeof(S), cudaMemcpyDeviceToHost));
    return h;
  }
};

template <typename T>
T* DeviceCopy(const std::vector<T>& h) {
  T* d = nullptr;
  CUDA_OK(cudaMalloc(&d, std::max<size_t>(1, h.size()) * sizeof(T)));
  if (!h.empty()) CUDA_OK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// --- data -----------------------------------------------------------------------
// A NaN of either sign, quiet or signaling, with a random payload (as the
// compute type; the 16-bit types keep the sign and leading payload bits).
template <typename C>
C AnyNaN(std::mt19937_64& rng) {
  using U = typename tf_qdq::gpu_body::NaNBits<C>::U;
  const int bits = sizeof(C) == 4 ? 32 : 64;
  const int mant = sizeof(C) == 4 ? 23 : 52;
  const U exp = ((U{1} << (bits - 1 - mant)) - 1) << mant;
  U payload = static_cast<U>(rng()) & ((U{1} << mant) - 1);
  payload |= U{1} << (mant - 7);  // survives the 16-bit conversions: never an infinity
  const U sign = (rng() & 1) ? (U{1} << (bits - 1)) : U{0};
  const U u = sign | exp | payload;
  C v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
}

// Scale that makes N(0, 3) values subnormal in the storage type.
template <typename S>
double SubnormalScale();
template <>
double SubnormalScale<float>() {
  return 1e-40;
}
template <>
double SubnormalScale<double>() {
  return 1e-310;
}
template <>
double SubnormalScale<HalfBits>() {
  return 1e-6;  // half subnormals: below 6.1e-5
}
template <>
double SubnormalScale<BFloat16Bits>() {
  return 1e-40;
}
// Scale of data whose range (about 1e-36 in float) gives a finite scale and
// a subnormal inverse scale, so that outputs are subnormal.
template <typename S>
double SmallScale() {
  return sizeof(typename ComputeType<S>::type) == 8 ? 1e-307 : (sizeof(S) == 2 ? 1e-6 : 1e-37);
}
template <>
double SmallScale<BFloat16Bits>() {
  return 1e-37;
}
// Given ranges in the compute type: channel c even, about 5e-37 (finite scale,
// subnormal inverse scale); odd, a subnormal bound (infinite scale).
template <typename C>
C SmallBound(int64_t c) {
  if (c % 2 == 0) return sizeof(C) == 4 ? C(5e-37f) : C(5e-307);
  return sizeof(C) == 4 ? C(1e-39f) : C(1e-310);
}
template <typename S>
std::vector<S> MakeData(int64_t n, int kind, uint64_t seed) {
  using C = typename ComputeType<S>::type;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 3.0);
  std::uniform_int_distribution<int> pick(0, 999);
  std::vector<S> x(n);
  for (int64_t i = 0; i < n; ++i) {
    const int r = pick(rng);
    C v = static_cast<C>(normal(rng));
    if (kind == 0) {  // normal values with a sprinkling of specials
      if (r < 5)
        v = AnyNaN<C>(rng);
      else if (r < 7)
        v = std::numeric_limits<C>::infinity();
      else if (r < 9)
        v = -std::numeric_limits<C>::infinity();
      else if (r < 20)
        v = C(0);
      else if (r < 31)
        v = -C(0);
      else if (r < 40)
        v = static_cast<C>(std::nearbyint(static_cast<double>(v) * 4) / 8);  // ties
    } else if (kind == 1) {  // finite only, no zeros: the range is finite
      if (v == C(0)) v = C(1);
    } else if (kind == 2) {  // zero-heavy: zero-only and negative-only channels, zero signs
      v = r < 450 ? C(0) : r < 900 ? -C(0) : r < 950 ? C(-0.25) : C(0.5);
    } else {  // subnormal in the storage type, or small enough for a subnormal inverse scale
      v = static_cast<C>(static_cast<double>(v) *
                         ((r & 1) ? SubnormalScale<S>() : SmallScale<S>()));
      if (r < 10) v = AnyNaN<C>(rng);
      if (r >= 10 && r < 40) v = r < 25 ? C(0) : -C(0);
    }
    x[i] = HostIo<S>::FromC(v);
  }
  return x;
}

// --- one case -----------------------------------------------------------------------
// Computed range (both round modes), given range (both round modes), the
// gradient, and the zeroing, on `d`; arrays offset by in_off / out_off
// elements; in place when in_place.
template <typename S>
void RunCase(const Dims& d, int kind, int in_off, int out_off, bool in_place, cudaStream_t stream,
             uint64_t seed) {
  using C = typename ComputeType<S>::type;
  using Io = HostIo<S>;
  ++cases;
  const int64_t n = d.outer * d.depth * d.inner;
  static const char* const kinds[] = {"specials", "finite", "zeros", "subnormals"};
  const std::string tag = mode_tag + Io::Name() + " " + DimsText(d) + " " + kinds[kind] +
                          " offsets " + std::to_string(in_off) + "/" + std::to_string(out_off) +
                          (in_place ? " in place" : "");
  const std::vector<S> x = MakeData<S>(n, kind, seed);
  std::vector<C> xc(n);
  for (int64_t i = 0; i < n; ++i) xc[i] = Io::ToC(x[i]);
  const C qmin = C(-127), qmax = C(127);
  int bad = 0;
  auto report = [&](const std::string& what, int64_t i, double got, double want) {
    ++failures;
    if (++bad <= 5) {
      std::printf("FAIL %s: %s at %" PRId64 ": got %.9g want %.9g\n", tag.c_str(), what.c_str(), i,
                  got, want);
    }
  };

  DeviceArray<S> din(n, in_off), dout(n, out_off);
  S* out_p = in_place ? din.p : dout.p;

  // Computed range: parameters on the device, compared with the reference.
  std::vector<C> mn, mx;
  tf_qdq::reference::Range<C>(
      n, std::max<int64_t>(d.depth, 1), std::max<int64_t>(d.inner, 1),
      [&](int64_t i) { return xc[i]; }, &mn, &mx);
  std::vector<Params<C>> want_params(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) want_params[c] = ComputeParams(mn[c], mx[c], qmin, qmax);
  void* scratch = nullptr;
  Params<C>* dparams = nullptr;
  CUDA_OK(cudaMalloc(&scratch, std::max<size_t>(1, tf_qdq::gpu::RangeScratchBytes<S>(d.depth))));
  CUDA_OK(cudaMalloc(&dparams, std::max<int64_t>(1, d.depth) * sizeof(Params<C>)));
  for (int mode = 0; mode < 2; ++mode) {
    const bool half_up = mode == 1;
    din.Upload(x);
    if (!LaunchOk(
            tf_qdq::gpu::LaunchDataRangeParams<S>(din.p, d, qmin, qmax, scratch, dparams, stream),
            tag + " range"))
      continue;
    CUDA_OK(cudaStreamSynchronize(stream));
    if (d.depth > 0 && mode == 0) {
      std::vector<Params<C>> got(d.depth);
      CUDA_OK(cudaMemcpy(got.data(), dparams, d.depth * sizeof(Params<C>), cudaMemcpyDeviceToHost));
      for (int64_t c = 0; c < d.depth; ++c) {
        const Params<C>& g = got[c];
        const Params<C>& w = want_params[c];
        if (!SameParam(g.scale, w.scale) || !SameParam(g.inv, w.inv) || !SameParam(g.lo, w.lo) ||
            !SameParam(g.hi, w.hi)) {
          report("computed range parameters of channel", c, g.lo, w.lo);
        }
      }
    }
    ParamsArg<C> pa{dparams, Params<C>{}};
    if (!LaunchOk(
            tf_qdq::gpu::LaunchQuantizeDequantize<S>(din.p, out_p, d, pa, false, half_up, stream),
            tag + " qdq (computed range)"))
      continue;
    CUDA_OK(cudaStreamSynchronize(stream));
    const std::vector<S> got = in_place ? din.Download() : dout.Download();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = tf_qdq::reference::ChannelOf(i, d.depth, d.inner);
      const S w = RefQdq<S>(xc[i], want_params[c], false, half_up);
      if (!SameStored(got[i], w)) {
        report(half_up ? "qdq computed HALF_UP" : "qdq computed HALF_TO_EVEN", i, Io::ToC(got[i]),
               Io::ToC(w));
      }
    }
  }

  // Given range: per tensor by value, per channel from device memory;
  // subnormal bounds with subnormal data.
  std::vector<Params<C>> given(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) {
    const C unit = kind == 3 ? SmallBound<C>(c) : C(1);
    given[c] = ComputeParams(-unit * C(1 + c % 3), unit * C(0.75) * C(1 + c % 5), qmin, qmax);
  }
  Params<C>* dgiven = DeviceCopy(given);
  for (int mode = 0; mode < 2; ++mode) {
    const bool half_up = mode == 1;
    ParamsArg<C> pa{dgiven, Params<C>{}};
    if (d.depth == 1) pa = ParamsArg<C>{nullptr, given[0]};
    din.Upload(x);
    if (!LaunchOk(
            tf_qdq::gpu::LaunchQuantizeDequantize<S>(din.p, out_p, d, pa, true, half_up, stream),
            tag + " qdq (given range)"))
      continue;
    CUDA_OK(cudaStreamSynchronize(stream));
    const std::vector<S> got = in_place ? din.Download() : dout.Download();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = tf_qdq::reference::ChannelOf(i, d.depth, d.inner);
      const S w = RefQdq<S>(xc[i], given[c], true, half_up);
      if (!SameStored(got[i], w))
        report(half_up ? "qdq given HALF_UP" : "qdq given", i, Io::ToC(got[i]), Io::ToC(w));
    }
  }

  // Gradient with raw per-channel bounds (gradients in the output buffer).
  std::vector<Params<C>> bounds(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) {
    const C unit = kind == 3 ? C(SubnormalScale<S>()) : C(1);  // subnormal bounds and data
    bounds[c] = Params<C>{};
    bounds[c].lo = -unit * C(1 + c % 2);
    bounds[c].hi = unit * C(0.5) * C(1 + c % 4);
  }
  Params<C>* dbounds = DeviceCopy(bounds);
  const std::vector<S> g = MakeData<S>(n, kind == 3 ? 3 : 0, seed + 1);
  {
    DeviceArray<S> dg(n, out_off);
    ParamsArg<C> pa{dbounds, Params<C>{}};
    if (d.depth == 1) pa = ParamsArg<C>{nullptr, bounds[0]};
    din.Upload(x);
    dg.Upload(g);
    S* gout = in_place ? dg.p : dout.p;
    if (LaunchOk(tf_qdq::gpu::LaunchMaskedGradient<S>(dg.p, din.p, gout, d, pa, stream),
                 tag + " gradient")) {
      CUDA_OK(cudaStreamSynchronize(stream));
      const std::vector<S> got = in_place ? dg.Download() : dout.Download();
      for (int64_t i = 0; i < n; ++i) {
        const Params<C>& p = bounds[tf_qdq::reference::ChannelOf(i, d.depth, d.inner)];
        const S w = RefGrad<S>(Io::ToC(g[i]), xc[i], p);
        if (!SameStored(got[i], w)) report("gradient", i, Io::ToC(got[i]), Io::ToC(w));
      }
    }
  }

  // Zeroing (V4Grad's min/max backprops): +0.0 bits.
  if (LaunchOk(tf_qdq::gpu::LaunchZero(dout.p, n * sizeof(S), stream), tag + " zero")) {
    CUDA_OK(cudaStreamSynchronize(stream));
    const std::vector<S> got = dout.Download();
    for (int64_t i = 0; i < n; ++i) {
      S zero;
      std::memset(&zero, 0, sizeof(zero));
      if (std::memcmp(&got[i], &zero, sizeof(S)) != 0) report("zero", i, Io::ToC(got[i]), 0.0);
    }
  }
  cudaFree(scratch);
  cudaFree(dparams);
  cudaFree(dgiven);
  cudaFree(dbounds);
  if (bad == 0) std::printf("ok   %s\n", tag.c_str());
}

std::vector<Dims> GridShapes(bool quick) {
  const int64_t big = quick ? 5003 : 1000003;
  return {
      {1, 1, 1},
      {1, 1, 7},
      {1, 1, big},
      {5, 1, 77},  // per tensor
      {quick ? 1001 : 100001, 3, 1},
      {7, 3, quick ? 401 : 40001},  // depth 3: inner 1 / large
      {quick ? 31 : 3001, 256, 1},
      {5, 256, quick ? 9 : 129},  // depth 256
      {quick ? 3 : 97, 4100, 1},
      {3, 4100, quick ? 2 : 33},  // depth 4100 (several windows)
      {1, 0, 1},
      {1, 1, 0},
      {3, 0, 2},
      {0, 4, 1},
      {2, 5, 0},  // empty
  };
}

template <typename S>
void RunDtype(bool quick, cudaStream_t stream) {
  uint64_t seed = 1;
  for (const Dims& d : GridShapes(quick)) {
    for (int kind = 0; kind < 4; ++kind) {
      RunCase<S>(d, kind, 0, 0, false, stream, seed++);
    }
    RunCase<S>(d, 0, 1, 1, false, stream, seed++);  // both off a 16-byte boundary: head and tail
    RunCase<S>(d, 0, 1, 0, false, stream, seed++);  // different alignments: single elements only
    RunCase<S>(d, 0, 0, 0, true, stream, seed++);   // in place
    RunCase<S>(d, 2, 3, 3, true, stream, seed++);   // in place, off a boundary
  }
  // The same launchers on the 64-bit index path (used for real only above
  // 2^31 elements; --huge runs it there): small shapes, every access kind.
  tf_qdq::gpu::SetForce64BitIndexForTesting(true);
  mode_tag = "64-bit index, ";
  for (const Dims& d : GridShapes(true)) {
    RunCase<S>(d, 0, 0, 0, false, stream, seed++);
    RunCase<S>(d, 3, 1, 1, false, stream, seed++);
    RunCase<S>(d, 0, 1, 0, false, stream, seed++);
    RunCase<S>(d, 2, 3, 3, true, stream, seed++);
  }
  tf_qdq::gpu::SetForce64BitIndexForTesting(false);
  // The range scan with 2 rows of blocks: each row loops over several
  // windows of 2048 channels (blockIdx.y += gridDim.y), as above 134M
  // channels.
  tf_qdq::gpu::SetRangeGridRowsForTesting(2);
  mode_tag = "2 grid rows, ";
  for (const Dims& d : {Dims{3, 4100, 1}, Dims{2, 9000, 1}, Dims{2, 6200, 3}, Dims{1, 2049, 1}}) {
    RunCase<S>(d, 0, 0, 0, false, stream, seed++);
    RunCase<S>(d, 2, 0, 0, false, stream, seed++);
  }
  tf_qdq::gpu::SetRangeGridRowsForTesting(0);  // back to the default
  mode_tag.clear();
}

__global__ void NoOp() {}

// A stale error from an earlier (foreign) launch must not fail our launch.
void CheckStaleErrorIsCleared(cudaStream_t stream) {
  ++cases;
  NoOp<<<0, 1, 0, stream>>>();  // invalid configuration: a non-sticky error
  std::vector<float> x = {1.5f, -2.0f, 0.25f};
  DeviceArray<float> d(3, 0);
  d.Upload(x);
  const Params<float> p = ComputeParams(-2.0f, 2.0f, -127.0f, 127.0f);
  const int code = tf_qdq::gpu::LaunchQuantizeDequantize<float>(
      d.p, d.p, Dims{1, 1, 3}, ParamsArg<float>{nullptr, p}, true, false, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  if (code != 0) {
    ++failures;
    std::printf("FAIL stale error: the launcher reported %s from an earlier launch\n",
                tf_qdq::gpu::ErrorName(code));
  } else {
    std::printf("ok   a stale CUDA error before a launch is cleared, not reported\n");
  }
}

// --- more than 2^31 elements ---------------------------------------------------------
// Data made on the device from the element index (no 4-17 GB uploads), by the
// same function as on the host: values k / 1000 for k in [-1000, 1000],
// plus planted values (extremes, NaN, inf) at chosen indices.
__host__ __device__ inline uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
template <typename C>
__host__ __device__ inline C HugeValue(int64_t i, uint64_t seed) {
  const int k =
      static_cast<int>(Mix(static_cast<uint64_t>(i) * 0x2545f4914f6cdd1dull + seed) % 2001);
  return static_cast<C>(k - 1000) / C(1000);
}
template <typename S>
__device__ inline S DeviceFromC(typename ComputeType<S>::type v) {
  return v;
}
template <>
__device__ inline HalfBits DeviceFromC<HalfBits>(float v) {
  return HalfBits{__half_as_ushort(__float2half_rn(v))};
}
template <>
__device__ inline BFloat16Bits DeviceFromC<BFloat16Bits>(float v) {
  return BFloat16Bits{__bfloat16_as_ushort(__float2bfloat16_rn(v))};
}
template <typename S>
__global__ void FillKernel(S* p, int64_t n, uint64_t seed) {
  using C = typename ComputeType<S>::type;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    p[i] = DeviceFromC<S>(HugeValue<C>(i, seed));
  }
}

// dst[k] = src[k * stride] for k < count.
template <typename S>
__global__ void GatherKernel(const S* src, int64_t stride, int64_t count, S* dst) {
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < count;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[k] = src[k * stride];
  }
}

// An array of n elements filled by FillKernel, with planted values.
template <typename S>
struct HugeArray {
  using C = typename ComputeType<S>::type;
  DeviceArray<S> a;
  uint64_t seed;
  std::vector<std::pair<int64_t, S>> planted;
  HugeArray(int64_t n, int offset, uint64_t s) : a(n, offset), seed(s) { Refill(); }
  void Refill() {
    FillKernel<S><<<4096, 256>>>(a.p, a.count, seed);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaDeviceSynchronize());
    for (const auto& e : planted)
      CUDA_OK(cudaMemcpy(a.p + e.first, &e.second, sizeof(S), cudaMemcpyHostToDevice));
  }
  void Plant(int64_t i, C v) {
    const S s = HostIo<S>::FromC(v);
    planted.push_back({i, s});
    CUDA_OK(cudaMemcpy(a.p + i, &s, sizeof(S), cudaMemcpyHostToDevice));
  }
  S At(int64_t i) const {  // the host's view of element i before any kernel ran
    for (auto it = planted.rbegin(); it != planted.rend(); ++it) {
      if (it->first == i) return it->second;
    }
    return HostIo<S>::FromC(HugeValue<C>(i, seed));
  }
};

bool EnoughMemory(const std::string& what, double gib) {
  size_t free_b = 0, total_b = 0;
  CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
  if (free_b / 1073741824.0 >= gib + 0.5) return true;
  std::printf("skip %s: needs %.1f GiB of free device memory, %.1f GiB free\n", what.c_str(),
              gib + 0.5, free_b / 1073741824.0);
  return false;
}

// Compares device array `dev` (n elements) with want(i) on the first and last
// 2^20 elements, every 4099th in between (gathered on the device), and
// `extra`.
template <typename S, typename Want>
void CheckSampled(const std::string& tag, const S* dev, int64_t n, const Want& want,
                  const std::vector<int64_t>& extra) {
  ++cases;
  const int64_t edge = std::min<int64_t>(int64_t{1} << 20, n / 2);
  const int64_t stride = 4099;
  const int64_t mid = (n - 2 * edge) / stride;
  std::vector<S> head(edge), tail(edge), strided(mid);
  CUDA_OK(cudaMemcpy(head.data(), dev, edge * sizeof(S), cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(tail.data(), dev + (n - edge), edge * sizeof(S), cudaMemcpyDeviceToHost));
  if (mid > 0) {
    S* gathered = nullptr;
    CUDA_OK(cudaMalloc(&gathered, mid * sizeof(S)));
    GatherKernel<S><<<1024, 256>>>(dev + edge, stride, mid, gathered);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaMemcpy(strided.data(), gathered, mid * sizeof(S), cudaMemcpyDeviceToHost));
    cudaFree(gathered);
  }
  int bad = 0;
  int64_t checked = 0;
  auto check = [&](int64_t i, S got) {
    ++checked;
    const S w = want(i);
    if (!SameStored(got, w) && ++bad <= 5) {
      std::printf("FAIL %s at %" PRId64 ": got %.9g want %.9g\n", tag.c_str(), i,
                  static_cast<double>(HostIo<S>::ToC(got)), static_cast<double>(HostIo<S>::ToC(w)));
    }
  };
  for (int64_t k = 0; k < edge; ++k) check(k, head[k]);
  for (int64_t k = 0; k < edge; ++k) check(n - edge + k, tail[k]);
  for (int64_t k = 0; k < mid; ++k) check(edge + k * stride, strided[k]);
  for (int64_t i : extra) {
    S got;
    CUDA_OK(cudaMemcpy(&got, dev + i, sizeof(S), cudaMemcpyDeviceToHost));
    check(i, got);
  }
  if (bad) {
    ++failures;
    std::printf("FAIL %s: %d of %" PRId64 " sampled elements differ\n", tag.c_str(), bad, checked);
  } else {
    std::printf("ok   %s (%" PRId64 " elements sampled)\n", tag.c_str(), checked);
  }
}

// Parameters computed on the device against the reference, channels `which`.
template <typename C>
void CheckParams(const std::string& tag, const Params<C>* dev, const std::vector<int64_t>& which,
                 const std::function<Params<C>(int64_t)>& want) {
  ++cases;
  int bad = 0;
  for (int64_t c : which) {
    Params<C> g;
    CUDA_OK(cudaMemcpy(&g, dev + c, sizeof(g), cudaMemcpyDeviceToHost));
    const Params<C> w = want(c);
    if ((!SameParam(g.scale, w.scale) || !SameParam(g.inv, w.inv) || !SameParam(g.lo, w.lo) ||
         !SameParam(g.hi, w.hi)) &&
        ++bad <= 5) {
      std::printf("FAIL %s: parameters of channel %" PRId64 ": lo %.9g hi %.9g, want %.9g %.9g\n",
                  tag.c_str(), c, static_cast<double>(g.lo), static_cast<double>(g.hi),
                  static_cast<double>(w.lo), static_cast<double>(w.hi));
    }
  }
  if (bad) {
    ++failures;
  } else {
    std::printf("ok   %s: parameters of %zu channels\n", tag.c_str(), which.size());
  }
}

constexpr int64_t kTwo31 = int64_t{1} << 31;
// n > 2^31, a multiple of 3.
constexpr int64_t kHugeN = kTwo31 + 1 + 4099 * 3;

// Computed range (per tensor and 3 channels last) with extremes and a NaN
// beyond 2^31, in place; S: half (4 GiB) or double (17 GiB, offset 1).
template <typename S>
void HugeComputed(cudaStream_t stream, int offset) {
  using C = typename ComputeType<S>::type;
  const int64_t n = kHugeN;
  const std::string name = std::string(HostIo<S>::Name()) + " more than 2^31 elements, ";
  if (!EnoughMemory(name + "range computed", n * sizeof(S) / 1073741824.0)) return;
  HugeArray<S> x(n, offset, 7);
  // Channel c (inner 1, depth 3) of index i is i % 3; per tensor: min -7, max 9.
  const int64_t lo_at = ((kTwo31 + 30) / 3) * 3, hi_at = ((n - 40) / 3) * 3;
  for (int c = 0; c < 3; ++c) {
    x.Plant(lo_at + c, C(-5 - c));
    x.Plant(hi_at + c, C(7 + c));
  }
  std::mt19937_64 rng(3);
  x.Plant(kTwo31 + 5, AnyNaN<C>(rng));
  const std::vector<int64_t> extra = {lo_at,     lo_at + 1, lo_at + 2, hi_at,
                                      hi_at + 1, hi_at + 2, kTwo31 + 5};
  void* scratch = nullptr;
  Params<C>* dparams = nullptr;
  CUDA_OK(cudaMalloc(&scratch, tf_qdq::gpu::RangeScratchBytes<S>(3)));
  CUDA_OK(cudaMalloc(&dparams, 3 * sizeof(Params<C>)));
  for (const Dims& dims : {Dims{1, 1, n}, Dims{n / 3, 3, 1}}) {
    const std::string tag = name + DimsText(dims) + " range computed, in place";
    x.Refill();
    std::vector<Params<C>> want(dims.depth);
    for (int64_t c = 0; c < dims.depth; ++c) {
      want[c] = dims.depth == 1 ? ComputeParams(C(-7), C(9), C(-127), C(127))
                                : ComputeParams(C(-5 - c), C(7 + c), C(-127), C(127));
    }
    if (!LaunchOk(tf_qdq::gpu::LaunchDataRangeParams<S>(x.a.p, dims, C(-127), C(127), scratch,
                                                        dparams, stream),
                  tag + " range") ||
        !LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(
                      x.a.p, x.a.p, dims, ParamsArg<C>{dparams, {}}, false, false, stream),
                  tag + " qdq")) {
      continue;
    }
    CUDA_OK(cudaStreamSynchronize(stream));
    std::vector<int64_t> chans;
    for (int64_t c = 0; c < dims.depth; ++c) chans.push_back(c);
    CheckParams<C>(tag, dparams, chans, [&](int64_t c) { return want[c]; });
    CheckSampled<S>(
        tag, x.a.p, n,
        [&](int64_t i) {
          return RefQdq<S>(HostIo<S>::ToC(x.At(i)), want[(i / dims.inner) % dims.depth], false,
                           false);
        },
        extra);
  }
  cudaFree(scratch);
  cudaFree(dparams);
}

// Given range (clamped), HALF_UP; in and out both one element off a 16-byte
// boundary (head, vectors, tail on the 64-bit path), out of place, or in
// place (in_place).
template <typename S>
void HugeClamped(cudaStream_t stream, bool in_place) {
  using C = typename ComputeType<S>::type;
  const int64_t n = kHugeN;
  const std::string tag = std::string(HostIo<S>::Name()) + " more than 2^31 elements, " +
                          DimsText(Dims{1, 1, n}) + " range given, HALF_UP, offsets 1/1" +
                          (in_place ? " in place" : "");
  if (!EnoughMemory(tag, (in_place ? 1 : 2) * n * sizeof(S) / 1073741824.0)) return;
  HugeArray<S> x(n, 1, 11);
  std::mt19937_64 rng(4);
  const std::vector<int64_t> extra = {kTwo31 - 1, kTwo31, kTwo31 + 1, n - 3};
  x.Plant(kTwo31 - 1, AnyNaN<C>(rng));
  x.Plant(kTwo31 + 1, std::numeric_limits<C>::infinity());
  x.Plant(n - 3, -std::numeric_limits<C>::infinity());
  const Params<C> p = ComputeParams(C(-0.5), C(0.75), C(-127), C(127));
  std::unique_ptr<DeviceArray<S>> out;
  if (!in_place) out.reset(new DeviceArray<S>(n, 1));
  S* dst = in_place ? x.a.p : out->p;
  if (!LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(
                    x.a.p, dst, Dims{1, 1, n}, ParamsArg<C>{nullptr, p}, true, true, stream),
                tag)) {
    return;
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  CheckSampled<S>(
      tag, dst, n, [&](int64_t i) { return RefQdq<S>(HostIo<S>::ToC(x.At(i)), p, true, true); },
      extra);
}

// The gradient with per-channel bounds (3 channels last); gradients and x
// differently aligned (single elements on the 64-bit path), in place into the
// gradients.
template <typename S>
void HugeGradient(cudaStream_t stream) {
  using C = typename ComputeType<S>::type;
  const int64_t n = kHugeN;
  const Dims dims{n / 3, 3, 1};
  const std::string tag = std::string(HostIo<S>::Name()) + " more than 2^31 elements, " +
                          DimsText(dims) + " gradient, offsets 0/1, in place";
  if (!EnoughMemory(tag, 2 * n * sizeof(S) / 1073741824.0)) return;
  HugeArray<S> g(n, 0, 21), x(n, 1, 22);
  std::mt19937_64 rng(5);
  g.Plant(kTwo31 + 2, AnyNaN<C>(rng));
  g.Plant(kTwo31 + 3, std::numeric_limits<C>::infinity());
  x.Plant(kTwo31 + 3, C(0.99));  // masked: inf * 0 is NaN
  const std::vector<int64_t> extra = {kTwo31 + 2, kTwo31 + 3};
  std::vector<Params<C>> bounds(3);
  for (int c = 0; c < 3; ++c) {
    bounds[c] = Params<C>{};
    bounds[c].lo = C(-0.5) - C(0.125) * C(c);
    bounds[c].hi = C(0.25) + C(0.25) * C(c);
  }
  Params<C>* dbounds = DeviceCopy(bounds);
  if (LaunchOk(tf_qdq::gpu::LaunchMaskedGradient<S>(g.a.p, x.a.p, g.a.p, dims,
                                                    ParamsArg<C>{dbounds, {}}, stream),
               tag)) {
    CUDA_OK(cudaStreamSynchronize(stream));
    CheckSampled<S>(
        tag, g.a.p, n,
        [&](int64_t i) {
          return RefGrad<S>(HostIo<S>::ToC(g.At(i)), HostIo<S>::ToC(x.At(i)), bounds[i % 3]);
        },
        extra);
  }
  cudaFree(dbounds);
}

// More channels than 65535 rows of blocks hold windows of 2048: the range
// scan's rows loop over several windows (blockIdx.y += gridDim.y). One half
// element per channel, so each channel's range is its element.
void HugeChannels(cudaStream_t stream) {
  using S = HalfBits;
  const int64_t depth = tf_qdq::gpu_body::kWindowChannels * tf_qdq::gpu_body::kMaxGridY + 4097;
  const Dims dims{1, depth, 1};
  const std::string tag =
      "float16 " + DimsText(dims) + " range computed (more windows than grid rows)";
  const double gib = (depth * (sizeof(S) * 2 + 8 + sizeof(Params<float>))) / 1073741824.0;
  if (!EnoughMemory(tag, gib)) return;
  HugeArray<S> x(depth, 0, 31);
  DeviceArray<S> out(depth, 0);
  void* scratch = nullptr;
  Params<float>* dparams = nullptr;
  CUDA_OK(cudaMalloc(&scratch, tf_qdq::gpu::RangeScratchBytes<S>(depth)));
  CUDA_OK(cudaMalloc(&dparams, depth * sizeof(Params<float>)));
  const auto want = [&](int64_t c) {
    const float v = HostIo<S>::ToC(x.At(c));
    return ComputeParams(v, v, -127.0f, 127.0f);
  };
  if (LaunchOk(tf_qdq::gpu::LaunchDataRangeParams<S>(x.a.p, dims, -127.0f, 127.0f, scratch, dparams,
                                                     stream),
               tag + " range") &&
      LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(
                   x.a.p, out.p, dims, ParamsArg<float>{dparams, {}}, false, false, stream),
               tag + " qdq")) {
    CUDA_OK(cudaStreamSynchronize(stream));
    std::vector<int64_t> chans;
    for (int64_t c = 0; c < depth; c += 9973) chans.push_back(c);
    for (int64_t c = depth - 5000; c < depth; ++c) chans.push_back(c);
    CheckParams<float>(tag, dparams, chans, want);
    CheckSampled<S>(
        tag, out.p, depth,
        [&](int64_t i) { return RefQdq<S>(HostIo<S>::ToC(x.At(i)), want(i), false, false); }, {});
  }
  cudaFree(scratch);
  cudaFree(dparams);
}

void RunHuge(cudaStream_t stream) {
  HugeComputed<HalfBits>(stream, 0);
  HugeClamped<float>(stream, false);
  HugeGradient<float>(stream);
  HugeClamped<double>(stream, true);
  HugeComputed<double>(stream, 1);
  HugeChannels(stream);
}

// --- timing ---------------------------------------------------------------------------
template <typename F>
double TimeMs(cudaStream_t stream, const F& f) {
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  for (int k = 0; k < 3; ++k) f();
  CUDA_OK(cudaStreamSynchronize(stream));
  const int reps = 20;
  CUDA_OK(cudaEventRecord(a, stream));
  for (int k = 0; k < reps; ++k) f();
  CUDA_OK(cudaEventRecord(b, stream));
  CUDA_OK(cudaEventSynchronize(b));
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

// Bandwidth of each kernel (bytes read + written per second) as a fraction of
// a device-to-device copy's (which reads and writes the tensor once), as
// markdown rows "| timing: ... |". The shapes include the two known slow
// cases: channels-last runs longer than 64 that do not divide 256 (depth 1000
// and 4100: two shared-memory atomics per element in the range scan) and
// arrays of different 16-byte alignment (every element accessed singly).
template <typename S>
void Time(cudaStream_t stream) {
  using C = typename ComputeType<S>::type;
  const int64_t n = int64_t{1} << 26;
  const size_t bytes = n * sizeof(S);
  DeviceArray<S> a(n, 0), b(n, 0), g(n, 0), b1(n, 1);
  FillKernel<S><<<4096, 256>>>(a.p, n, 99);  // k / 1000, k in [-1000, 1000]
  FillKernel<S><<<4096, 256>>>(g.p, n, 98);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaDeviceSynchronize());
  const double copy_ms = TimeMs(
      stream, [&] { CUDA_OK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, stream)); });
  const double copy_bw = 2.0 * bytes / (copy_ms * 1e-3);
  std::printf(
      "| timing: %s device-to-device copy, %zu MiB | %.1f GB/s (read + write) | %.3f ms | "
      "the baseline |\n",
      HostIo<S>::Name(), bytes >> 20, copy_bw / 1e9, copy_ms);
  const int64_t kMaxDepth = 4100;
  void* scratch = nullptr;
  Params<C>* params = nullptr;
  CUDA_OK(cudaMalloc(&scratch, tf_qdq::gpu::RangeScratchBytes<S>(kMaxDepth)));
  CUDA_OK(cudaMalloc(&params, kMaxDepth * sizeof(Params<C>)));
  std::vector<Params<C>> given(kMaxDepth, ComputeParams(C(-2), C(2), C(-127), C(127)));
  CUDA_OK(cudaMemcpy(params, given.data(), kMaxDepth * sizeof(Params<C>), cudaMemcpyHostToDevice));
  auto line = [&](const char* what, const Dims& d, const char* arrays, double traffic, double ms) {
    const double bw = traffic * d.outer * d.depth * d.inner * sizeof(S) / (ms * 1e-3);
    std::printf("| timing: %s %s %s%s | %.1f GB/s, %.1f%% of copy | %.3f ms | |\n",
                HostIo<S>::Name(), what, DimsText(d).c_str(), arrays, bw / 1e9,
                100.0 * bw / copy_bw, ms);
    ++timing_rows;
    std::fflush(stdout);
  };
  const Dims shapes[] = {{1, 1, n},           {n / 3, 3, 1},       {n / 256, 256, 1},
                         {n / 1000, 1000, 1}, {n / 4100, 4100, 1}, {64, 256, n / (64 * 256)}};
  for (const Dims& d : shapes) {
    const ParamsArg<C> pa =
        d.depth == 1 ? ParamsArg<C>{nullptr, given[0]} : ParamsArg<C>{params, Params<C>{}};
    line("qdq, range given", d, "", 2, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(a.p, b.p, d, pa, true, false, stream),
                    "timing");
         }));
    line("range scan + parameters (reads)", d, "", 1, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchDataRangeParams<S>(a.p, d, C(-127), C(127), scratch, params,
                                                          stream),
                    "timing");
         }));
    line("qdq, range computed (scan + qdq)", d, "", 3, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchDataRangeParams<S>(a.p, d, C(-127), C(127), scratch, params,
                                                          stream),
                    "timing");
           LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(
                        a.p, b.p, d, ParamsArg<C>{params, Params<C>{}}, false, false, stream),
                    "timing");
         }));
    line("gradient", d, "", 3, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchMaskedGradient<S>(g.p, a.p, b.p, d, pa, stream), "timing");
         }));
    CUDA_OK(
        cudaMemcpy(params, given.data(), kMaxDepth * sizeof(Params<C>), cudaMemcpyHostToDevice));
  }
  // Misaligned arrays: output one element off (different alignments: single
  // elements), and input and output both one element off (head and tail).
  const Dims flat{1, 1, n - 1};
  const ParamsArg<C> single{nullptr, given[0]};
  line("qdq, range given", flat, ", in/out offsets 0/1", 2, TimeMs(stream, [&] {
         LaunchOk(
             tf_qdq::gpu::LaunchQuantizeDequantize<S>(a.p, b1.p, flat, single, true, false, stream),
             "timing");
       }));
  line("qdq, range given", flat, ", in/out offsets 1/1", 2, TimeMs(stream, [&] {
         LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(a.p + 1, b1.p, flat, single, true, false,
                                                           stream),
                  "timing");
       }));
  line("gradient", flat, ", offsets 0/0/1", 3, TimeMs(stream, [&] {
         LaunchOk(tf_qdq::gpu::LaunchMaskedGradient<S>(g.p, a.p, b1.p, flat, single, stream),
                  "timing");
       }));
  cudaFree(scratch);
  cudaFree(params);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines even when piped and killed by a timeout
  bool quick = false, grid = false, huge = false, timing = false, no_huge = false,
       no_timing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--grid") {
      grid = true;
    } else if (a == "--huge") {
      huge = true;
    } else if (a == "--timing") {
      timing = true;
    } else if (a == "--no-huge") {
      no_huge = true;
    } else if (a == "--no-timing") {
      no_timing = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--grid] [--huge] [--timing] [--quick] [--no-huge] [--no-timing]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!grid && !huge && !timing) {  // no section named: all of them (--quick: the grid only)
    grid = true;
    huge = !quick && !no_huge;
    timing = !quick && !no_timing;
  }
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("no CUDA device: %s\n", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    return 3;
  }
  int dev = 0;
  CUDA_OK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, dev));
  std::printf(
      "device %d: %s, compute capability %d.%d, %.1f GiB; CUDA runtime %d, driver %d; kernels "
      "built for %s\n",
      dev, prop.name, prop.major, prop.minor, prop.totalGlobalMem / 1073741824.0,
      tf_qdq::gpu::RuntimeVersion(), tf_qdq::gpu::DriverVersion(), tf_qdq::gpu::BuildDescription());
  std::fflush(stdout);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  // The kernel-image check, first: nothing else can pass without it. Once
  // with the device ordinal (as TensorFlow passes it), once looked up.
  for (int device : {dev, -1}) {
    std::vector<float> one = {1.0f};
    DeviceArray<float> d(1, 0);
    d.Upload(one);
    const int code = tf_qdq::gpu::LaunchQuantizeDequantize<float>(
        d.p, d.p, Dims{1, 1, 1},
        ParamsArg<float>{nullptr, ComputeParams(-1.0f, 1.0f, -127.0f, 127.0f)}, true, false, stream,
        device);
    if (tf_qdq::gpu::IsMissingKernelImage(code)) {
      std::printf("FAIL %s\n", tf_qdq::gpu::MissingKernelImageMessage(stream, device).c_str());
      return 1;
    }
    if (!LaunchOk(code, "first launch")) return 1;
  }
  if (grid) {
    // Not under compute-sanitizer (--quick): it reports the deliberately
    // failed launch as an error.
    if (!quick) CheckStaleErrorIsCleared(stream);
    RunDtype<float>(quick, stream);
    RunDtype<double>(quick, stream);
    RunDtype<HalfBits>(quick, stream);
    RunDtype<BFloat16Bits>(quick, stream);
  }
  if (huge) RunHuge(stream);
  CUDA_OK(cudaDeviceSynchronize());
  if (grid || huge) {
    std::printf("%s: %d cases, %d failures\n", failures ? "FAILED" : "PASSED", cases, failures);
  }
  if (timing) {
    std::printf(
        "\ntiming (mean of 20 launches after 3 warm-ups; bandwidth = bytes read + written / "
        "time)\n");
    Time<float>(stream);
    Time<double>(stream);
    Time<HalfBits>(stream);
    Time<BFloat16Bits>(stream);
    std::printf("timing done: %d rows\n", timing_rows);
  }
  CUDA_OK(cudaStreamDestroy(stream));
  return failures ? 1 : 0;
}
