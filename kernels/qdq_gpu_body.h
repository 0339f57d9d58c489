// Per-thread bodies of the CUDA kernels (qdq_gpu.cu.cc): index arithmetic,
// the NaN-ignoring per-channel range scan and the elementwise loops, written
// as TFQDQ_HD functions over (first, stride) so that a host program can run
// them thread by thread (tests/gpu_emulation.cc) without a GPU. The
// arithmetic itself is qdq_math.h; nothing here computes a value differently.
//
// No CUDA or TensorFlow headers: this is included by nvcc and by g++.
#ifndef TF_QDQ_KERNELS_QDQ_GPU_BODY_H_
#define TF_QDQ_KERNELS_QDQ_GPU_BODY_H_

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

// --- Order keys -------------------------------------------------------------
// An unsigned integer per non-NaN value whose unsigned order is the IEEE total
// order (-inf < ... < -0.0 < +0.0 < ... < +inf), so that the per-channel
// min/max can be reduced with integer atomicMin/atomicMax. The max of the keys
// decodes to the data maximum with the CPU's zero rule built in: a zero
// maximum is +0.0 when the channel holds a +0.0, else -0.0 (qdq_cpu.cc). The
// min of the keys decodes to the data minimum; for a zero minimum it is -0.0
// when the channel holds a -0.0, else +0.0.
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
TFQDQ_HD inline typename Key<C>::type ToKey(C v) {
  using K = typename Key<C>::type;
  static_assert(sizeof(K) == sizeof(C), "key and value sizes differ");
  K u;
  memcpy(&u, &v, sizeof(u));
  return (u & Key<C>::kSign) ? ~u : (u | Key<C>::kSign);
}

template <typename C>
TFQDQ_HD inline C FromKey(typename Key<C>::type k) {
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

TFQDQ_HD inline int64_t WindowPositions(const Dims& d, const Window& w) {
  return d.outer * w.nc * d.inner;
}

// Scans window w in tiles of threads * items positions: block `block` of
// `blocks` takes tiles block, block + blocks, ...; in a tile, thread `thread`
// reads positions start + thread + k * threads for k < items (consecutive
// threads read consecutive elements). The keys of the non-NaN values are
// accumulated in registers while the channel stays the same; flush(local
// channel, min_key, max_key) is called when it changes and at the end. load(i)
// returns element i (flat index into the whole input) in C.
template <typename C, typename Load, typename Flush>
TFQDQ_HD inline void ScanWindow(const Dims& d, const Window& w, int64_t block,
                                int64_t blocks, int64_t thread,
                                int64_t threads, int64_t items,
                                const Load& load, const Flush& flush) {
  using K = typename Key<C>::type;
  const int64_t run = w.nc * d.inner;
  const int64_t total = d.outer * run;
  const int64_t row = d.depth * d.inner;
  const int64_t base = w.c0 * d.inner;
  const int64_t tile = threads * items;
  const K min_start = Key<C>::kMinStart, max_start = Key<C>::kMaxStart;
  int64_t cur = -1;
  K kmin = min_start, kmax = max_start;
  for (int64_t start = block * tile; start < total; start += blocks * tile) {
    for (int64_t k = 0; k < items; ++k) {
      const int64_t p = start + k * threads + thread;
      if (p >= total) break;
      const int64_t o = (d.outer == 1) ? 0 : p / run;
      const int64_t q = p - o * run;
      const int64_t c = (w.nc == 1) ? 0 : (d.inner == 1 ? q : q / d.inner);
      if (c != cur) {
        if (cur >= 0) flush(cur, kmin, kmax);
        cur = c;
        kmin = min_start;
        kmax = max_start;
      }
      const C v = load(o * row + base + q);
      if (!(v != v)) {  // NaN is ignored (docs/semantics.md#differences-from-tensorflow, item 4)
        const K key = ToKey(v);
        kmin = (key < kmin) ? key : kmin;
        kmax = (kmax < key) ? key : kmax;
      }
    }
  }
  if (cur >= 0) flush(cur, kmin, kmax);
}

// Parameters of channel c from its reduced keys (same ComputeParams as the
// CPU, on the same values).
template <typename C>
TFQDQ_HD inline Params<C> ParamsFromKeys(typename Key<C>::type kmin,
                                         typename Key<C>::type kmax, C qmin,
                                         C qmax) {
  return ComputeParams(FromKey<C>(kmin), FromKey<C>(kmax), qmin, qmax);
}

// --- Elementwise loops ------------------------------------------------------
// Channel of flat element i.
TFQDQ_HD inline int64_t ChannelOf(const Dims& d, int64_t i) {
  if (d.depth == 1) return 0;
  const int64_t r = (d.inner == 1) ? i : i / d.inner;
  return (d.outer == 1) ? r : r % d.depth;
}

// Quantization parameters as the kernels receive them: one value per channel
// in device memory, or (per-tensor) one value passed by value.
template <typename C>
struct ParamsArg {
  const Params<C>* per_channel;  // nullptr: use `single`
  Params<C> single;
};

// Elements first, first + stride, ... of the n = outer * depth * inner:
// store(i, QDQ(load(i))) with channel i's parameters.
template <typename C, bool kClamp, bool kHalfUp, typename Load, typename Store>
TFQDQ_HD inline void QdqLoop(const Dims& d, const ParamsArg<C>& pa,
                             int64_t first, int64_t stride, const Load& load,
                             const Store& store) {
  const int64_t n = d.outer * d.depth * d.inner;
  if (pa.per_channel == nullptr || d.depth == 1) {
    const Params<C> p = pa.per_channel ? pa.per_channel[0] : pa.single;
    for (int64_t i = first; i < n; i += stride) {
      store(i, QuantizeDequantize<C, kClamp, kHalfUp>(load(i), p.lo, p.hi,
                                                       p.scale, p.inv));
    }
    return;
  }
  for (int64_t i = first; i < n; i += stride) {
    const Params<C>& p = pa.per_channel[ChannelOf(d, i)];
    store(i, QuantizeDequantize<C, kClamp, kHalfUp>(load(i), p.lo, p.hi,
                                                     p.scale, p.inv));
  }
}

// V4Grad: store(i, MaskedGradient(grad(i), x(i), lo, hi)) with channel i's raw
// bounds in Params::lo / Params::hi.
template <typename C, typename LoadG, typename LoadX, typename Store>
TFQDQ_HD inline void GradLoop(const Dims& d, const ParamsArg<C>& pa,
                              int64_t first, int64_t stride,
                              const LoadG& grad, const LoadX& x,
                              const Store& store) {
  const int64_t n = d.outer * d.depth * d.inner;
  if (pa.per_channel == nullptr || d.depth == 1) {
    const Params<C> p = pa.per_channel ? pa.per_channel[0] : pa.single;
    for (int64_t i = first; i < n; i += stride) {
      store(i, MaskedGradient(grad(i), x(i), p.lo, p.hi));
    }
    return;
  }
  for (int64_t i = first; i < n; i += stride) {
    const Params<C>& p = pa.per_channel[ChannelOf(d, i)];
    store(i, MaskedGradient(grad(i), x(i), p.lo, p.hi));
  }
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

inline RangeGeometry MakeRangeGeometry(const Dims& d) {
  RangeGeometry g;
  g.window = d.depth < kWindowChannels ? d.depth : kWindowChannels;
  g.windows = CeilDiv(d.depth, g.window);
  g.grid_y = g.windows < kMaxGridY ? g.windows : kMaxGridY;
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

inline int64_t ElementwiseBlocks(int64_t n) {
  int64_t b = CeilDiv(n, kThreads);
  if (b > kMaxBlocks) b = kMaxBlocks;
  return b < 1 ? 1 : b;
}

}  // namespace gpu_body
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_GPU_BODY_H_
