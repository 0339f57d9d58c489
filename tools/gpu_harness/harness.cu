// TensorFlow-free check of tf_qdq's GPU kernels on a real device: drives every
// launcher of kernels/qdq_gpu.h (built from kernels/qdq_gpu.cu.cc, no
// TensorFlow headers or libraries) and compares bit for bit with the serial
// host reference (tools/gpu_harness/reference.h, kernels/qdq_math.h), for
// float, double, half and bfloat16; per tensor and per channel (depth 1, 3,
// 256, 4100; inner 1 and large); range given and computed; NaN, infinities
// and zeros of both signs; empty tensors; aligned, misaligned and in-place
// arrays; a stale CUDA error before a launch; and, when the device has the
// memory, a tensor of more than 2^31 elements (the 64-bit index path). Then it
// times each kernel against a device-to-device cudaMemcpyAsync of the same
// bytes and prints the fraction of the copy's bandwidth it reaches.
//
// Usage: qdq_gpu_harness [--quick] [--no-huge] [--no-timing]
//   --quick: small cases only, no huge tensor, no timing (for
//   compute-sanitizer). Exit status 0 when every check passed.
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
#include <limits>
#include <random>
#include <string>
#include <vector>

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
template <>
struct HostIo<HalfBits> {
  static const char* Name() { return "float16"; }
  static float ToC(HalfBits v) {
    __half_raw r;
    r.x = v.bits;
    return __half2float(__half(r));
  }
  static HalfBits FromC(float v) {
    const __half_raw r = __float2half_rn(v);
    return HalfBits{r.x};
  }
};
template <>
struct HostIo<BFloat16Bits> {
  static const char* Name() { return "bfloat16"; }
  static float ToC(BFloat16Bits v) {
    __nv_bfloat16_raw r;
    r.x = v.bits;
    return __bfloat162float(__nv_bfloat16(r));
  }
  static BFloat16Bits FromC(float v) {
    const __nv_bfloat16_raw r = __float2bfloat16_rn(v);
    return BFloat16Bits{r.x};
  }
};

template <typename S>
bool SameStored(S a, S b) {
  if (std::memcmp(&a, &b, sizeof(S)) == 0) return true;
  const auto x = HostIo<S>::ToC(a), y = HostIo<S>::ToC(b);
  return x != x && y != y;  // NaN: the GPU writes a canonical NaN
}
template <typename C>
bool SameParam(C a, C b) {
  return std::memcmp(&a, &b, sizeof(C)) == 0 || (a != a && b != b);
}

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
        v = std::numeric_limits<C>::quiet_NaN();
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
    } else {  // zero-heavy: zero-only and negative-only channels, zero signs
      v = r < 450 ? C(0) : r < 900 ? -C(0) : r < 950 ? C(-0.25) : C(0.5);
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
  const std::string tag = std::string(Io::Name()) + " " + DimsText(d) + " kind " +
                          std::to_string(kind) + " offsets " + std::to_string(in_off) + "/" +
                          std::to_string(out_off) + (in_place ? " in place" : "");
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
      const S w = Io::FromC(tf_qdq::reference::Qdq(xc[i], want_params[c], false, half_up));
      if (!SameStored(got[i], w)) {
        report(half_up ? "qdq computed HALF_UP" : "qdq computed HALF_TO_EVEN", i, Io::ToC(got[i]),
               Io::ToC(w));
      }
    }
  }

  // Given range: per tensor by value, per channel from device memory.
  std::vector<Params<C>> given(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) {
    given[c] = ComputeParams(C(-1) - C(c % 3), C(0.75) + C(c % 5), qmin, qmax);
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
      const S w = Io::FromC(tf_qdq::reference::Qdq(xc[i], given[c], true, half_up));
      if (!SameStored(got[i], w))
        report(half_up ? "qdq given HALF_UP" : "qdq given", i, Io::ToC(got[i]), Io::ToC(w));
    }
  }

  // Gradient with raw per-channel bounds (gradients in the output buffer).
  std::vector<Params<C>> bounds(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) {
    bounds[c] = Params<C>{};
    bounds[c].lo = C(-1) - C(c % 2);
    bounds[c].hi = C(0.5) + C(c % 4);
  }
  Params<C>* dbounds = DeviceCopy(bounds);
  const std::vector<S> g = MakeData<S>(n, 0, seed + 1);
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
        const S w = Io::FromC(tf_qdq::MaskedGradient(Io::ToC(g[i]), xc[i], p.lo, p.hi));
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

template <typename S>
void RunDtype(bool quick, cudaStream_t stream) {
  const int64_t big = quick ? 5003 : 1000003;
  std::vector<Dims> shapes = {
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
  uint64_t seed = 1;
  for (const Dims& d : shapes) {
    for (int kind = 0; kind < 3; ++kind) {
      RunCase<S>(d, kind, 0, 0, false, stream, seed++);
    }
    RunCase<S>(d, 0, 1, 1, false, stream, seed++);  // both off a 16-byte boundary: head and tail
    RunCase<S>(d, 0, 1, 0, false, stream, seed++);  // different alignments: single elements only
    RunCase<S>(d, 0, 0, 0, true, stream, seed++);   // in place
    RunCase<S>(d, 2, 3, 3, true, stream, seed++);   // in place, off a boundary
  }
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

// More than 2^31 elements (the 64-bit index path), half precision to need
// the least memory: per tensor and 3 channels last, computed range, in place.
// Compared with the reference on the first and last 2^24 elements and every
// 4099th element in between; the range over all of them.
void RunHuge(cudaStream_t stream) {
  using S = HalfBits;
  const int64_t n = (int64_t{1} << 31) + 1 + 4099 * 3;  // a multiple of 3
  size_t free_b = 0, total_b = 0;
  CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
  const size_t need = static_cast<size_t>(n) * sizeof(S) + (size_t{512} << 20);
  if (free_b < need) {
    std::printf(
        "skip more than 2^31 elements: needs %.1f GiB of free device memory, %.1f GiB free\n",
        need / 1073741824.0, free_b / 1073741824.0);
    return;
  }
  std::vector<S> x(n);
  uint64_t state = 12345;
  for (int64_t i = 0; i < n; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float v =
        static_cast<float>(static_cast<int>((state >> 40) % 2001) - 1000) / 1000.0f;  // [-1, 1]
    x[i] = HostIo<S>::FromC(v);
  }
  // Extremes beyond 2^31 (only reachable with 64-bit indices).
  x[n - 2] = HostIo<S>::FromC(-5.0f);
  x[(int64_t{1} << 31) + 7] = HostIo<S>::FromC(7.0f);
  DeviceArray<S> d(n, 0);
  void* scratch = nullptr;
  Params<float>* dparams = nullptr;
  CUDA_OK(cudaMalloc(&scratch, tf_qdq::gpu::RangeScratchBytes<S>(3)));
  CUDA_OK(cudaMalloc(&dparams, 3 * sizeof(Params<float>)));
  for (const Dims& dims : {Dims{1, 1, n}, Dims{n / 3, 3, 1}}) {
    ++cases;
    const std::string tag = "float16 " + DimsText(dims) + " (more than 2^31 elements)";
    d.Upload(x);
    std::vector<float> mn, mx;
    tf_qdq::reference::Range<float>(
        n, dims.depth, dims.inner, [&](int64_t i) { return HostIo<S>::ToC(x[i]); }, &mn, &mx);
    std::vector<Params<float>> want(dims.depth);
    for (int64_t c = 0; c < dims.depth; ++c) want[c] = ComputeParams(mn[c], mx[c], -127.0f, 127.0f);
    if (!LaunchOk(tf_qdq::gpu::LaunchDataRangeParams<S>(d.p, dims, -127.0f, 127.0f, scratch,
                                                        dparams, stream),
                  tag + " range") ||
        !LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(
                      d.p, d.p, dims, ParamsArg<float>{dparams, {}}, false, false, stream),
                  tag + " qdq")) {
      continue;
    }
    CUDA_OK(cudaStreamSynchronize(stream));
    const std::vector<S> got = d.Download();
    int bad = 0;
    const int64_t edge = int64_t{1} << 24;
    for (int64_t i = 0; i < n; i = (i < edge || i >= n - edge) ? i + 1 : i + 4099) {
      const int64_t c = tf_qdq::reference::ChannelOf(i, dims.depth, dims.inner);
      const S w =
          HostIo<S>::FromC(tf_qdq::reference::Qdq(HostIo<S>::ToC(x[i]), want[c], false, false));
      if (!SameStored(got[i], w) && ++bad <= 5) {
        std::printf("FAIL %s at %" PRId64 ": got %.9g want %.9g\n", tag.c_str(), i,
                    HostIo<S>::ToC(got[i]), HostIo<S>::ToC(w));
      }
    }
    if (bad) {
      ++failures;
    } else {
      std::printf("ok   %s\n", tag.c_str());
    }
  }
  cudaFree(scratch);
  cudaFree(dparams);
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
// a device-to-device copy's (which reads and writes the tensor once).
template <typename S>
void Time(cudaStream_t stream) {
  using C = typename ComputeType<S>::type;
  const int64_t n = int64_t{1} << 26;
  const size_t bytes = n * sizeof(S);
  DeviceArray<S> a(n, 0), b(n, 0), g(n, 0);
  a.Upload(MakeData<S>(n, 1, 99));
  g.Upload(MakeData<S>(n, 1, 98));
  const double copy_ms = TimeMs(
      stream, [&] { CUDA_OK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, stream)); });
  const double copy_bw = 2.0 * bytes / (copy_ms * 1e-3);
  std::printf("%-9s copy of %zu MiB: %.3f ms, %.1f GB/s (read + write)\n", HostIo<S>::Name(),
              bytes >> 20, copy_ms, copy_bw / 1e9);
  const int64_t kMaxDepth = 4100;
  void* scratch = nullptr;
  Params<C>* params = nullptr;
  CUDA_OK(cudaMalloc(&scratch, tf_qdq::gpu::RangeScratchBytes<S>(kMaxDepth)));
  CUDA_OK(cudaMalloc(&params, kMaxDepth * sizeof(Params<C>)));
  std::vector<Params<C>> given(kMaxDepth, ComputeParams(C(-2), C(2), C(-127), C(127)));
  CUDA_OK(cudaMemcpy(params, given.data(), kMaxDepth * sizeof(Params<C>), cudaMemcpyHostToDevice));
  auto line = [&](const char* what, const Dims& d, double traffic, double ms) {
    const double bw = traffic * d.outer * d.depth * d.inner * sizeof(S) / (ms * 1e-3);
    std::printf("%-9s %-34s %-22s %8.3f ms %7.1f GB/s  %5.1f%% of copy\n", HostIo<S>::Name(), what,
                DimsText(d).c_str(), ms, bw / 1e9, 100.0 * bw / copy_bw);
  };
  const Dims shapes[] = {
      {1, 1, n}, {n / 3, 3, 1}, {n / 256, 256, 1}, {n / 4100, 4100, 1}, {64, 256, n / (64 * 256)}};
  for (const Dims& d : shapes) {
    const ParamsArg<C> pa =
        d.depth == 1 ? ParamsArg<C>{nullptr, given[0]} : ParamsArg<C>{params, Params<C>{}};
    line("qdq, range given", d, 2, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(a.p, b.p, d, pa, true, false, stream),
                    "timing");
         }));
    line("range scan + parameters (reads)", d, 1, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchDataRangeParams<S>(a.p, d, C(-127), C(127), scratch, params,
                                                          stream),
                    "timing");
         }));
    line("qdq, range computed (scan + qdq)", d, 3, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchDataRangeParams<S>(a.p, d, C(-127), C(127), scratch, params,
                                                          stream),
                    "timing");
           LaunchOk(tf_qdq::gpu::LaunchQuantizeDequantize<S>(
                        a.p, b.p, d, ParamsArg<C>{params, Params<C>{}}, false, false, stream),
                    "timing");
         }));
    line("gradient", d, 3, TimeMs(stream, [&] {
           LaunchOk(tf_qdq::gpu::LaunchMaskedGradient<S>(g.p, a.p, b.p, d, pa, stream), "timing");
         }));
    CUDA_OK(
        cudaMemcpy(params, given.data(), kMaxDepth * sizeof(Params<C>), cudaMemcpyHostToDevice));
  }
  cudaFree(scratch);
  cudaFree(params);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, huge = true, timing = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
      huge = timing = false;
    } else if (a == "--no-huge") {
      huge = false;
    } else if (a == "--no-timing") {
      timing = false;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--no-huge] [--no-timing]\n", argv[0]);
      return 2;
    }
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
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  // The kernel-image check, first: nothing else can pass without it.
  {
    std::vector<float> one = {1.0f};
    DeviceArray<float> d(1, 0);
    d.Upload(one);
    const int code = tf_qdq::gpu::LaunchQuantizeDequantize<float>(
        d.p, d.p, Dims{1, 1, 1},
        ParamsArg<float>{nullptr, ComputeParams(-1.0f, 1.0f, -127.0f, 127.0f)}, true, false,
        stream);
    if (tf_qdq::gpu::IsMissingKernelImage(code)) {
      std::printf("FAIL %s\n", tf_qdq::gpu::MissingKernelImageMessage(stream).c_str());
      return 1;
    }
  }
  // Not under compute-sanitizer (--quick): it reports the deliberately failed
  // launch as an error.
  if (!quick) CheckStaleErrorIsCleared(stream);
  RunDtype<float>(quick, stream);
  RunDtype<double>(quick, stream);
  RunDtype<HalfBits>(quick, stream);
  RunDtype<BFloat16Bits>(quick, stream);
  if (huge) RunHuge(stream);
  CUDA_OK(cudaDeviceSynchronize());
  std::printf("%s: %d cases, %d failures\n", failures ? "FAILED" : "PASSED", cases, failures);
  if (timing && failures == 0) {
    std::printf(
        "\ntiming (mean of 20 launches after 3 warm-ups; bandwidth = bytes read + written / "
        "time)\n");
    Time<float>(stream);
    Time<double>(stream);
    Time<HalfBits>(stream);
    Time<BFloat16Bits>(stream);
  }
  CUDA_OK(cudaStreamDestroy(stream));
  return failures ? 1 : 0;
}
