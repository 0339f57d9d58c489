// Per-thread bodies of the CUDA kernels (qdq_gpu.cu.cc): index arithmetic,
// the NaN-ignoring per-channel range scan and the elementwise loops, written
// as TF_QDQ_HD functions over (first, stride) so that a host program can run
// them thread by thread (tests/gpu_emulation.cc) without a GPU. The
// arithmetic itself is qdq_math.h; nothing here computes a value differently.
//
// Index type I: every loop is instantiated for uint32_t (tensors of fewer
// than 2^31 elements: 32-bit index math, divisions by a precomputed
// multiply-high, FastDiv32) and for int64_t (larger tensors: plain 64-bit
// division). The launchers pick one per call (Use32BitIndex).
//
// No CUDA or TensorFlow headers: this is included by nvcc and by g++.
#ifndef TF_QDQ_KERNELS_QDQ_GPU_BODY_H_
#define TF_QDQ_KERNELS_QDQ_GPU_BODY_H_

#include <atomic>
#include <cstdint>
#include <cstring>

#include "kernels/qdq_math.h"

namespace tf_qdq {
namespace gpu_body {

// The input viewed as [outer, depth, inner] (as tf_qdq::View).
struct Dims {
  int64_t outer;
  int64_t depth;
  int64_t inner;
};

TF_QDQ_HD inline int64_t Size(const Dims& d) { return d.outer * d.depth * d.inner; }

// --- Index arithmetic ---------------------------------------------------------
// n / d for 0 <= n < 2^31 and 1 <= d < 2^31 without a division instruction
// (Granlund-Montgomery): with s = ceil(log2(d)) and
// m = floor(2^32 * (2^s - d) / d) + 1 (fits in 32 bits),
// n / d = (mulhi(n, m) + n) >> s. mulhi(n, m) <= n, so the sum stays below
// 2^32 for n < 2^31. Checked against n / d in tests/gpu_emulation.cc.
struct FastDiv32 {
  uint32_t d;
  uint32_t m;
  uint32_t s;
};

TF_QDQ_HD inline FastDiv32 MakeFastDiv32(uint32_t d) {
  if (d == 0) d = 1;  // an empty view: never divided by
  uint32_t s = 0;
  while ((uint64_t{1} << s) < d) ++s;
  const uint64_t m = ((uint64_t{1} << 32) * ((uint64_t{1} << s) - d)) / d + 1;
  return FastDiv32{d, static_cast<uint32_t>(m), s};
}

TF_QDQ_HD inline uint32_t MulHi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Division by a divisor fixed for the whole launch, per index type.
template <typename I>
struct Divider;
template <>
struct Divider<uint32_t> {
  FastDiv32 f;
  TF_QDQ_HD explicit Divider(int64_t d = 1) : f(MakeFastDiv32(static_cast<uint32_t>(d))) {}
  TF_QDQ_HD uint32_t Div(uint32_t n) const { return (MulHi(n, f.m) + n) >> f.s; }
};
template <>
struct Divider<int64_t> {
  int64_t d;
  TF_QDQ_HD explicit Divider(int64_t dv = 1) : d(dv < 1 ? 1 : dv) {}
  TF_QDQ_HD int64_t Div(int64_t n) const { return n / d; }
};

// (qdq_gpu.cu.cc: UseNarrowIndex, which tests can force onto 64 bits.)
// True when every flat index of the view fits the 32-bit index path.
TF_QDQ_HD inline bool Use32BitIndex(const Dims& d) { return Size(d) < (int64_t{1} << 31); }

// Channel of flat element i, and i's position inside its run of `inner`
// elements, for the elementwise loops: Locate(i) once, then Next() for
// i + 1, i + 2, ... (no division per element).
template <typename I>
struct ChannelMap {
  I depth;
  I inner;
  Divider<I> by_inner;
  Divider<I> by_depth;
  TF_QDQ_HD explicit ChannelMap(const Dims& d)
      : depth(static_cast<I>(d.depth)),
        inner(static_cast<I>(d.inner)),
        by_inner(d.inner),
        by_depth(d.depth) {}
  TF_QDQ_HD void Locate(I i, I* c, I* r) const {
    const I q = by_inner.Div(i);
    *r = i - q * inner;
    *c = q - by_depth.Div(q) * depth;
  }
  TF_QDQ_HD void Next(I* c, I* r) const {
    if (++*r == inner) {
      *r = 0;
      if (++*c == depth) *c = 0;
    }
  }
};

// --- Order keys -------------------------------------------------------------
// An unsigned integer per non-NaN value whose unsigned order is the IEEE total
// order (-inf < ... < -0.0 < +0.0 < ... < +inf), so that the per-channel
// min/max can be reduced with integer atomicMin/atomicMax. This builds in the
// zero-sign rule of docs/semantics.md#arithmetic, the same as the CPU's: the
// max of the keys is +0.0 if the channel holds a +0.0 (else -0.0) when the
// maximum is a zero, and the min of the keys is -0.0 if the channel holds a
// -0.0 (else +0.0) when the minimum is a zero.
template <typename C>
struct Key;
// kMinStart / kMaxStart are the keys of +inf / -inf: the start values of the
// reduction, so that an untouched (or all-NaN) channel decodes to min = +inf,
// max = -inf, as the CPU's NaN-ignoring loops give.
template <>
struct Key<float> {
  using type = unsigned int;  // what atomicMin/atomicMax take
  static constexpr type kSign = 0x80000000u;
  static constexpr type kMinStart = 0xff800000u;  // ToKey(+inf)
  static constexpr type kMaxStart = 0x007fffffu;  // ToKey(-inf)
};
template <>
struct Key<double> {
  using type = unsigned long long;  // NOLINT(runtime/int): atomics' type
  static constexpr type kSign = 0x8000000000000000ull;
  static constexpr type kMinStart = 0xfff0000000000000ull;
  static constexpr type kMaxStart = 0x000fffffffffffffull;
};

template <typename C>
TF_QDQ_HD inline typename Key<C>::type ToKey(C v) {
  using K = typename Key<C>::type;
  static_assert(sizeof(K) == sizeof(C), "key and value sizes differ");
  K u;
  memcpy(&u, &v, sizeof(u));
  return (u & Key<C>::kSign) ? ~u : (u | Key<C>::kSign);
}

template <typename C>
TF_QDQ_HD inline C FromKey(typename Key<C>::type k) {
  using K = typename Key<C>::type;
  const K u = (k & Key<C>::kSign) ? (k & ~Key<C>::kSign) : ~k;
  C v;
  memcpy(&v, &u, sizeof(v));
  return v;
}

// --- Range scan ---------------------------------------------------------------
// The channels [c0, c0 + nc) of the view ("a window"). For every outer index
// o their elements form one contiguous run of nc * inner elements starting at
// o * depth * inner + c0 * inner; position p in [0, outer * nc * inner)
// enumerates the runs one after the other.
struct Window {
  int64_t c0;
  int64_t nc;
};

TF_QDQ_HD inline int64_t WindowPositions(const Dims& d, const Window& w) {
  return d.outer * w.nc * d.inner;
}

// Runs of at most this many positions are scanned with a thread count per
// block that is a multiple of the run, so that each thread stays on one
// channel for the whole scan (one flush per thread): with inner == 1 and a
// small depth (e.g. 3 channels, channels last) every element would otherwise
// change the channel and flush into shared memory, all threads of a block
// contending for the same few atomics. At most kFixedChannelRun - 1 of a
// block's threads idle.
constexpr int64_t kFixedChannelRun = 64;

// Threads of a block that take part in the scan of a window with runs of
// `run` positions.
TF_QDQ_HD inline int64_t ScanThreads(int64_t run, int64_t threads) {
  if (run >= 1 && run <= kFixedChannelRun && run <= threads) return (threads / run) * run;
  return threads;
}

// Scans window w in tiles of threads' * items positions, threads' =
// ScanThreads(run, threads): block `block` of `blocks` takes tiles block,
// block + blocks, ...; in a tile, thread `thread` reads positions
// start + thread + k * threads' for k < items (consecutive threads read
// consecutive elements). The keys of the non-NaN values are accumulated in
// registers while the channel stays the same; flush(local channel, min_key,
// max_key) is called when it changes and at the end. load(i) returns element i
// (flat index into the whole input, of type I) in C. I: the index type (every
// flat index of the input must fit).
template <typename C, typename I, typename Load, typename Flush>
TF_QDQ_HD inline void ScanWindow(const Dims& d, const Window& w, I block, I blocks, I thread,
                                 I threads, I items, const Load& load, const Flush& flush) {
  using K = typename Key<C>::type;
  const I run = static_cast<I>(w.nc * d.inner);
  const I total = static_cast<I>(d.outer) * run;
  const I row = static_cast<I>(d.depth * d.inner);
  const I base = static_cast<I>(w.c0 * d.inner);
  const I active = static_cast<I>(ScanThreads(w.nc * d.inner, threads));
  if (thread >= active) return;
  const I tile = active * items;
  const Divider<I> by_run(w.nc * d.inner), by_inner(d.inner);
  const bool one_run = d.outer == 1, one_channel = w.nc == 1;
  const K min_start = Key<C>::kMinStart, max_start = Key<C>::kMaxStart;
  I cur = 0;
  bool any = false;
  K kmin = min_start, kmax = max_start;
  for (I start = block * tile; start < total; start += blocks * tile) {
    for (I k = 0; k < items; ++k) {
      const I p = start + k * active + thread;
      if (p >= total) break;
      const I o = one_run ? I(0) : by_run.Div(p);
      const I q = p - o * run;
      const I c = one_channel ? I(0) : by_inner.Div(q);
      if (!any || c != cur) {
        if (any) flush(static_cast<int64_t>(cur), kmin, kmax);
        any = true;
        cur = c;
        kmin = min_start;
        kmax = max_start;
      }
      const C v = load(o * row + base + q);
      if (!(v != v)) {  // NaN is ignored (docs/semantics.md#diff-nan-in-data)
        const K key = ToKey(v);
        kmin = (key < kmin) ? key : kmin;
        kmax = (kmax < key) ? key : kmax;
      }
    }
  }
  if (any) flush(static_cast<int64_t>(cur), kmin, kmax);
}

// Parameters of channel c from its reduced keys (same ComputeParams as the
// CPU, on the same values).
template <typename C>
TF_QDQ_HD inline Params<C> ParamsFromKeys(typename Key<C>::type kmin, typename Key<C>::type kmax,
                                          C qmin, C qmax) {
  return ComputeParams(FromKey<C>(kmin), FromKey<C>(kmax), qmin, qmax);
}

// --- NaN bits -------------------------------------------------------------------
// The CPU kernels' NaN outputs are those of x86 arithmetic, as TensorFlow's:
// an operation with a NaN operand returns that NaN made quiet (sign and
// payload kept), and an invalid operation (0 * inf) returns the "default"
// NaN, which has the sign bit set. In QuantizeDequantize and MaskedGradient
// only the data value (x, or the gradient) can be a NaN operand (the
// parameters never are), so a NaN result is quiet(source) when the source is
// NaN and the default NaN otherwise. CUDA arithmetic returns one canonical NaN
// (0x7fffffff) instead; CpuNaN rewrites a NaN result to the CPU's bits. On an
// x86 host it is the identity (tests/gpu_emulation.cc checks both).
template <typename C>
struct NaNBits;
template <>
struct NaNBits<float> {
  using U = uint32_t;
  static constexpr U kQuiet = 0x00400000u;
  static constexpr U kDefault = 0xffc00000u;
};
template <>
struct NaNBits<double> {
  using U = uint64_t;
  static constexpr U kQuiet = 0x0008000000000000ull;
  static constexpr U kDefault = 0xfff8000000000000ull;
};

template <typename C>
TF_QDQ_HD inline C CpuNaN(C result, C source) {
  if (!(result != result)) return result;
  using U = typename NaNBits<C>::U;
  U u = NaNBits<C>::kDefault;
  if (source != source) {
    memcpy(&u, &source, sizeof(u));
    u |= NaNBits<C>::kQuiet;
  }
  C out;
  memcpy(&out, &u, sizeof(out));
  return out;
}

// NaN conversions of the 16-bit types, the CPU's (x86 F16C for half: sign and
// leading payload kept, quiet bit set; Eigen for bfloat16: 0x7fc0 with the
// sign). Every other value converts with the CUDA intrinsics (exact, or
// round to nearest even), which give the CPU's bits.
TF_QDQ_HD inline bool HalfIsNaN(uint16_t h) { return (h & 0x7fffu) > 0x7c00u; }
TF_QDQ_HD inline uint32_t HalfNaNToFloatBits(uint16_t h) {
  return (static_cast<uint32_t>(h & 0x8000u) << 16) | 0x7fc00000u |
         (static_cast<uint32_t>(h & 0x3ffu) << 13);
}
TF_QDQ_HD inline uint16_t FloatNaNToHalfBits(uint32_t u) {
  return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7e00u | ((u >> 13) & 0x3ffu));
}
TF_QDQ_HD inline uint16_t FloatNaNToBf16Bits(uint32_t u) {
  return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7fc0u);
}

// --- Elementwise loops ------------------------------------------------------
// Quantization parameters as the kernels receive them: one value per channel
// in device memory, or (per-tensor) one value passed by value.
template <typename C>
struct ParamsArg {
  const Params<C>* per_channel;  // nullptr: use `single`
  Params<C> single;
};

// The elements [0, n) of an elementwise launch, split for 16-byte vector
// access: [0, head) one by one (the elements before the first 16-byte
// boundary), then `vectors` aligned groups of V = 16 / sizeof(element)
// elements, then the tail (fewer than V) one by one.
template <typename I>
struct Split {
  I n;
  I head;
  I vectors;
};

// misalign: the byte address of element 0 modulo 16, in elements, the same for
// every array the launch reads or writes; negative when the arrays differ (or
// an address is not a multiple of the element size): then every element is
// accessed one by one.
template <int V, typename I>
TF_QDQ_HD inline Split<I> MakeSplit(I n, int misalign) {
  Split<I> s{n, n, I(0)};
  if (V == 1 || misalign < 0 || misalign >= V) return s;
  const I head = static_cast<I>((V - misalign) % V);
  if (head >= n) return s;
  s.head = head;
  s.vectors = (n - head) / static_cast<I>(V);
  return s;
}

// Threads' work items of a split: a grid of this many threads covers it in
// one pass.
template <int V, typename I>
TF_QDQ_HD inline int64_t SplitItems(const Split<I>& s) {
  const int64_t singles = static_cast<int64_t>(s.n) - static_cast<int64_t>(s.vectors) * V;
  return singles > static_cast<int64_t>(s.vectors) ? singles : static_cast<int64_t>(s.vectors);
}

// The element count of one access, as a type (so the loops over it unroll).
template <int N>
struct Count {
  static constexpr int value = N;
};

// Thread `first` of a grid of `stride` threads: body(i, Count<V>()) for its
// aligned groups (elements i .. i + V - 1, i at a 16-byte boundary), then
// body(i, Count<1>()) for its single elements of the head and tail.
template <int V, typename I, typename Body>
TF_QDQ_HD inline void SplitLoop(const Split<I>& s, I first, I stride, const Body& body) {
  for (I j = first; j < s.vectors; j += stride) {
    body(s.head + j * static_cast<I>(V), Count<V>());
  }
  const I tail_start = s.head + s.vectors * static_cast<I>(V);
  const I singles = s.head + (s.n - tail_start);
  for (I k = first; k < singles; k += stride) {
    body(k < s.head ? k : tail_start + (k - s.head), Count<1>());
  }
}

// out = QDQ(in) over a split, with channel i's parameters and the CPU's NaN
// bits (CpuNaN). load(i, Count<N>,
// C* v) reads elements i .. i + N - 1 as compute values, store(i, Count<N>,
// const C* v) writes them (after the loads of the same call: `out` may alias
// `in`).
template <typename C, bool kClamp, bool kHalfUp, int V, typename I, typename Load, typename Store>
TF_QDQ_HD inline void QdqLoop(const Dims& d, const ParamsArg<C>& pa, const Split<I>& s, I first,
                              I stride, const Load& load, const Store& store) {
  if (pa.per_channel == nullptr || d.depth == 1) {
    const Params<C> p = pa.per_channel ? pa.per_channel[0] : pa.single;
    SplitLoop<V>(s, first, stride, [&](I i, auto cnt) {
      constexpr int kN = decltype(cnt)::value;
      C v[kN];
      load(i, cnt, v);
      for (int k = 0; k < kN; ++k) {
        v[k] =
            CpuNaN(QuantizeDequantize<C, kClamp, kHalfUp>(v[k], p.lo, p.hi, p.scale, p.inv), v[k]);
      }
      store(i, cnt, v);
    });
    return;
  }
  const ChannelMap<I> map(d);
  SplitLoop<V>(s, first, stride, [&](I i, auto cnt) {
    constexpr int kN = decltype(cnt)::value;
    C v[kN];
    load(i, cnt, v);
    I c, r;
    map.Locate(i, &c, &r);
    for (int k = 0; k < kN; ++k) {
      const Params<C>& p = pa.per_channel[c];
      v[k] = CpuNaN(QuantizeDequantize<C, kClamp, kHalfUp>(v[k], p.lo, p.hi, p.scale, p.inv), v[k]);
      map.Next(&c, &r);
    }
    store(i, cnt, v);
  });
}

// V4Grad over a split: out = MaskedGradient(gradients, x, lo, hi) with
// channel i's raw bounds in Params::lo / Params::hi. load_g / load_x / store as
// in QdqLoop.
template <typename C, int V, typename I, typename LoadG, typename LoadX, typename Store>
TF_QDQ_HD inline void GradLoop(const Dims& d, const ParamsArg<C>& pa, const Split<I>& s, I first,
                               I stride, const LoadG& load_g, const LoadX& load_x,
                               const Store& store) {
  if (pa.per_channel == nullptr || d.depth == 1) {
    const Params<C> p = pa.per_channel ? pa.per_channel[0] : pa.single;
    SplitLoop<V>(s, first, stride, [&](I i, auto cnt) {
      constexpr int kN = decltype(cnt)::value;
      C g[kN], x[kN];
      load_g(i, cnt, g);
      load_x(i, cnt, x);
      for (int k = 0; k < kN; ++k) g[k] = CpuNaN(MaskedGradient(g[k], x[k], p.lo, p.hi), g[k]);
      store(i, cnt, g);
    });
    return;
  }
  const ChannelMap<I> map(d);
  SplitLoop<V>(s, first, stride, [&](I i, auto cnt) {
    constexpr int kN = decltype(cnt)::value;
    C g[kN], x[kN];
    load_g(i, cnt, g);
    load_x(i, cnt, x);
    I c, r;
    map.Locate(i, &c, &r);
    for (int k = 0; k < kN; ++k) {
      const Params<C>& p = pa.per_channel[c];
      g[k] = CpuNaN(MaskedGradient(g[k], x[k], p.lo, p.hi), g[k]);
      map.Next(&c, &r);
    }
    store(i, cnt, g);
  });
}

// --- Launch geometry (host) -------------------------------------------------
constexpr int kThreads = 256;
// Elementwise grids: grid-stride loops over at most this many blocks.
constexpr int64_t kMaxBlocks = 4096;
// Range reduction: channels per window (shared memory holds 2 keys each, at
// most 32 KiB), elements per thread aimed at, and total blocks aimed at.
constexpr int64_t kWindowChannels = 2048;
constexpr int64_t kRangeItemsPerThread = 16;
constexpr int64_t kRangeBlocks = 2048;
constexpr int64_t kMaxGridY = 65535;

struct RangeGeometry {
  int64_t window;   // channels per window
  int64_t windows;  // ceil(depth / window)
  int64_t grid_x;   // blocks per window
  int64_t grid_y;   // windows in flight (blockIdx.y strides over windows)
  int64_t items;    // positions per thread and tile (ScanWindow)
};

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// max_grid_y: at most this many rows of blocks (kMaxGridY; smaller only in
// tests).
inline RangeGeometry MakeRangeGeometry(const Dims& d, int64_t max_grid_y = kMaxGridY) {
  RangeGeometry g;
  g.window = d.depth < kWindowChannels ? d.depth : kWindowChannels;
  if (g.window < 1) g.window = 1;
  g.windows = CeilDiv(d.depth, g.window);
  if (max_grid_y < 1 || max_grid_y > kMaxGridY) max_grid_y = kMaxGridY;
  g.grid_y = g.windows < max_grid_y ? g.windows : max_grid_y;
  if (g.grid_y < 1) g.grid_y = 1;
  // Elements of the largest window.
  const int64_t per_window = d.outer * g.window * d.inner;
  int64_t x = CeilDiv(per_window, kThreads * kRangeItemsPerThread);
  int64_t cap = kRangeBlocks / g.grid_y;
  if (cap < 1) cap = 1;
  if (x > cap) x = cap;
  if (x < 1) x = 1;
  g.grid_x = x;
  g.items = kRangeItemsPerThread;
  return g;
}

inline int64_t ElementwiseBlocks(int64_t items) {
  int64_t b = CeilDiv(items, kThreads);
  if (b > kMaxBlocks) b = kMaxBlocks;
  return b < 1 ? 1 : b;
}

// --- The per-device kernel-image check (host) ----------------------------------
// Remembers the answer of a check that can fail for a passing reason: success
// and a failure that `permanent(code)` calls final (no kernel image for the
// device) are kept; any other failure (e.g. cudaErrorMemoryAllocation while
// TensorFlow's allocator holds the memory) is returned and the check runs
// again on the next call. check() returns 0 or a positive error code.
// Concurrent first calls may each run the check; they store the same answer.
class ImageCheckCache {
 public:
  template <typename Check, typename Permanent>
  int Get(const Check& check, const Permanent& permanent) {
    const int state = state_.load(std::memory_order_acquire);
    if (state == kOk) return 0;
    if (state != kUnknown) return state;
    const int code = check();
    if (code == 0) {
      state_.store(kOk, std::memory_order_release);
    } else if (permanent(code)) {
      state_.store(code, std::memory_order_release);
    }
    return code;
  }

 private:
  static constexpr int kUnknown = 0;
  static constexpr int kOk = -1;  // error codes are positive
  std::atomic<int> state_{kUnknown};
};

}  // namespace gpu_body
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_GPU_BODY_H_
