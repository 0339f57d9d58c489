// CPU functors of the QuantizeAndDequantize family: one fused NaN-ignoring
// min/max pass (when the range is computed from the data), per-channel
// parameters computed once, then one elementwise pass. The passes are split
// into blocks on the intra-op thread pool; the inner loops are the vectorized
// ones of qdq_cpu_loops.h, picked at run time for the CPU's instruction set
// (qdq_cpu_table.h). All instruction sets give identical bits.
//
// The input is viewed as [outer, depth, inner] (View). Two layouts:
//  - rows: runs of `inner` contiguous elements share one channel's
//    parameters (per-tensor, and per-channel with inner >= kColsMaxInner);
//  - cols: every element of a period of depth * inner "positions" has its own
//    parameters, read from arrays with one entry per position (per-channel
//    with a small inner, e.g. the last axis: inner == 1); its loops wrap
//    around the period, so a block is one call.
// Large outputs are written with non-temporal stores (see
// StreamThresholdBytes below and ElementwiseLoops::Write in
// qdq_cpu_elementwise.h).
// Per-tensor calls allocate nothing on the heap.
//
// Environment (read once): TF_QDQ_CPU_ISA=sse2|avx2|avx512 picks the
// instruction set (default: avx2 where supported; see ChooseLoops; any other
// value makes the kernels fail with an error that lists these);
// TF_QDQ_STREAM_BYTES sets the streaming threshold (default: 24 MiB).
#define EIGEN_USE_THREADS

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>

#include "kernels/qdq_cpu_table.h"
#include "kernels/qdq_kernels.h"
#include "kernels/qdq_math.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/threadpool.h"
#include "unsupported/Eigen/CXX11/Tensor"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tf_qdq {
namespace cpu {
void StoreFence() {
#if defined(__SSE2__)
  _mm_sfence();
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}
}  // namespace cpu

namespace {

using CPUDevice = Eigen::ThreadPoolDevice;

// ---- Instruction set --------------------------------------------------------

// The table for this CPU: AVX2 (with F16C) where supported, else SSE2.
// TF_QDQ_CPU_ISA=sse2 forces the baseline; TF_QDQ_CPU_ISA=avx512 selects the
// AVX-512 table where the CPU has AVX-512F/BW/VL/DQ. AVX-512 is not the
// default: it is faster only on cache-resident tensors and slower on large
// (memory-bound) ones (docs/performance.md). An instruction set the CPU lacks
// falls back to the best one it has (TfQdqCpuIsa() tells which runs); a
// value that names none is an error (IsaChoice::error). All tables give
// identical bits.
struct IsaChoice {
  const cpu::LoopTable* table = nullptr;  // nullptr: TF_QDQ_CPU_ISA is invalid
  std::string error;
};

IsaChoice ChooseLoops() {
  bool avx2 = false, avx512 = false;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
  const cpu::LoopTable& best_default = avx2 ? cpu::LoopsAvx2() : cpu::LoopsSse2();
  IsaChoice choice;
  const char* isa = std::getenv("TF_QDQ_CPU_ISA");
  if (isa == nullptr || *isa == '\0') {
    choice.table = &best_default;
  } else if (strcasecmp(isa, "sse2") == 0) {
    choice.table = &cpu::LoopsSse2();
  } else if (strcasecmp(isa, "avx2") == 0) {
    choice.table = &best_default;
  } else if (strcasecmp(isa, "avx512") == 0) {
    choice.table = avx512 ? &cpu::LoopsAvx512() : &best_default;
  } else {
    choice.error = std::string("tf_qdq: TF_QDQ_CPU_ISA='") + isa +
                   "' names no instruction set of the CPU kernels. Set it to sse2, avx2 or "
                   "avx512, or unset it for the default (avx2 where the CPU has it).";
  }
  return choice;
}

const IsaChoice& Isa() {
  static const IsaChoice* choice = new IsaChoice(ChooseLoops());
  return *choice;
}

// OK when the loops can run; else the error of an invalid TF_QDQ_CPU_ISA.
tensorflow::Status CheckIsa() {
  if (Isa().table != nullptr) return tensorflow::Status();
  return tensorflow::errors::InvalidArgument(Isa().error);
}

// The table in use; only after CheckIsa() has passed.
const cpu::LoopTable& Loops() { return *Isa().table; }

// T -> its loops: storage type S (half/bfloat16 as bit patterns), compute C.
template <typename T>
struct LoopsFor;
template <>
struct LoopsFor<float> {
  using S = float;
  static const cpu::TypedLoops<float, float>& Get() { return Loops().f32; }
};
template <>
struct LoopsFor<double> {
  using S = double;
  static const cpu::TypedLoops<double, double>& Get() { return Loops().f64; }
};
template <>
struct LoopsFor<Eigen::half> {
  using S = uint16_t;
  static const cpu::TypedLoops<uint16_t, float>& Get() { return Loops().f16; }
};
template <>
struct LoopsFor<Eigen::bfloat16> {
  using S = uint16_t;
  static const cpu::TypedLoops<uint16_t, float>& Get() { return Loops().bf16; }
};
static_assert(sizeof(Eigen::half) == 2 && sizeof(Eigen::bfloat16) == 2,
              "16-bit types travel as uint16_t bit patterns");

template <typename T>
const typename LoopsFor<T>::S* Raw(const T* p) {
  return reinterpret_cast<const typename LoopsFor<T>::S*>(p);
}
template <typename T>
typename LoopsFor<T>::S* Raw(T* p) {
  return reinterpret_cast<typename LoopsFor<T>::S*>(p);
}

// ---- Layout and blocks ------------------------------------------------------

// Per-channel with inner below this uses the cols layout (parameters per
// position), if the period has at most kColsMaxPositions positions.
constexpr int64_t kColsMaxInner = 32;
constexpr int64_t kColsMaxPositions = int64_t{1} << 20;
// Elements per block below which a pass is not split further.
constexpr int64_t kMinBlockElements = 128 * 1024;
// Outputs of at least this many bytes are written with non-temporal stores
// (no read-for-ownership of the output lines, no eviction of the input from
// the cache). Streaming pays off once input and output no longer fit in the
// last-level cache together, and costs a little below that
// (docs/performance.md), hence a default of 24 MiB.
// TF_QDQ_STREAM_BYTES=<bytes> sets another threshold (tests use 0: every
// output).
constexpr int64_t kDefaultStreamBytes = int64_t{24} << 20;
int64_t StreamThresholdBytes() {
  static const int64_t bytes = [] {
    const char* env = std::getenv("TF_QDQ_STREAM_BYTES");
    return env != nullptr && *env != '\0' ? std::strtoll(env, nullptr, 10) : kDefaultStreamBytes;
  }();
  return bytes;
}
// Range pass: with at least this many positions, tasks split the positions
// (each walks all rows of its positions) instead of the flat range.
constexpr int64_t kSplitPositions = 16 * 1024;

struct Layout {
  bool cols = false;
  int64_t outer = 1;
  int64_t positions = 1;  // per period: depth (rows) or depth * inner (cols)
  int64_t run = 1;        // elements per position: inner (rows) or 1 (cols)
  int64_t depth = 1;
  int64_t inner = 1;
  int64_t size() const { return outer * positions * run; }
};

Layout MakeLayout(const View& view) {
  Layout layout;
  layout.outer = view.outer;
  layout.depth = view.depth;
  layout.inner = view.inner;
  layout.cols = view.depth > 1 &&
                (view.inner == 1 ||
                 (view.inner < kColsMaxInner && view.depth * view.inner <= kColsMaxPositions));
  layout.positions = layout.cols ? view.depth * view.inner : view.depth;
  layout.run = layout.cols ? 1 : view.inner;
  return layout;
}

// Rows layout: calls fn(position, flat index, length) for the runs covering
// [begin, end), each within one position (one channel's row of `inner`
// elements). (The cols layout needs no runs: its loops wrap around the
// period themselves.)
template <typename F>
inline void ForEachRun(const Layout& layout, int64_t begin, int64_t end, const F& fn) {
  int64_t i = begin;
  const int64_t r = i / layout.run;
  int64_t p = r % layout.positions;
  int64_t off = i - r * layout.run;
  while (i < end) {
    const int64_t len = std::min(end - i, layout.run - off);
    fn(p, i, len);
    i += len;
    off = 0;
    if (++p == layout.positions) p = 0;
  }
}

int64_t NumBlocks(tensorflow::OpKernelContext* ctx, int64_t n) {
  const int64_t threads = ctx->eigen_device<CPUDevice>().numThreads();
  const int64_t by_size = n / kMinBlockElements;
  return std::max<int64_t>(1, std::min<int64_t>(by_size, 4 * threads));
}

// Calls fn(block, begin, end) for `blocks` contiguous blocks covering [0, n).
template <typename F>
void RunBlocks(tensorflow::OpKernelContext* ctx, int64_t n, int64_t blocks, const F& fn) {
  const int64_t base = n / blocks, extra = n % blocks;
  auto bounds = [&](int64_t b) { return b * base + std::min(b, extra); };
  if (blocks == 1) {
    fn(0, 0, n);
    return;
  }
  // TensorFlow's intra-op pool, through its compiled ParallelFor: one block
  // per task. (Eigen's inline parallelFor would put its barrier's
  // std::condition_variable::wait, GLIBCXX_3.4.30, into this library.)
  using Pool = tensorflow::thread::ThreadPool;
  const Pool::SchedulingParams one_block_per_task(Pool::SchedulingStrategy::kFixedBlockSize, {}, 1);
  ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
      blocks, one_block_per_task, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) fn(b, bounds(b), bounds(b + 1));
      });
}

// Uninitialized scratch array, on the stack when small (per-tensor calls
// allocate nothing).
template <typename C>
class Scratch {
 public:
  explicit Scratch(int64_t n) {
    if (n > kInline) {
      heap_.reset(new C[n]);
      p_ = heap_.get();
    }
  }
  C* data() { return p_; }
  C& operator[](int64_t i) { return p_[i]; }

 private:
  static constexpr int64_t kInline = 64;
  C inline_[kInline];
  std::unique_ptr<C[]> heap_;
  C* p_ = inline_;
};

// ---- Range from the data ---------------------------------------------------

// Whether channel c of `in` holds a zero with the sign bit `negative`.
template <typename C, typename T>
bool ChannelHoldsZero(const Layout& layout, const T* in, int64_t c, bool negative) {
  for (int64_t o = 0; o < layout.outer; ++o) {
    const T* row = in + (o * layout.depth + c) * layout.inner;
    for (int64_t e = 0; e < layout.inner; ++e) {
      const C v = static_cast<C>(row[e]);
      if (v == C(0) && std::signbit(v) == negative) return true;
    }
  }
  return false;
}

// Job 1 of DataRange: the NaN-ignoring min and max of every position
// (Layout) into pos_mn[0..positions), pos_mx[0..positions), over the intra-op
// thread pool. Zero results keep whichever zero the reductions met first.
template <typename T, typename C>
void PositionRange(tensorflow::OpKernelContext* ctx, const Layout& layout, const T* in, C* pos_mn,
                   C* pos_mx) {
  const auto& loops = LoopsFor<T>::Get();
  const auto* x = Raw(in);
  const int64_t n = layout.size(), positions = layout.positions;
  const C inf = std::numeric_limits<C>::infinity();
  const int64_t blocks = NumBlocks(ctx, n);
  if (blocks == 1 || positions >= kSplitPositions) {
    // Tasks own disjoint positions and walk every period: no merging.
    const int64_t tasks = std::min(blocks, positions);
    RunBlocks(ctx, positions, tasks, [&](int64_t, int64_t p0, int64_t p1) {
      std::fill(pos_mn + p0, pos_mn + p1, inf);
      std::fill(pos_mx + p0, pos_mx + p1, -inf);
      for (int64_t o = 0; o < layout.outer; ++o) {
        if (layout.cols) {
          loops.range_cols(x + o * positions + p0, p1 - p0, pos_mn, pos_mx, positions, p0);
        } else {
          for (int64_t p = p0; p < p1; ++p) {
            loops.range(x + (o * positions + p) * layout.run, layout.run, &pos_mn[p], &pos_mx[p]);
          }
        }
      }
    });
    return;
  }
  // Tasks own flat blocks with their own accumulators, merged after.
  Scratch<C> block_mn(blocks * positions), block_mx(blocks * positions);
  std::fill(block_mn.data(), block_mn.data() + blocks * positions, inf);
  std::fill(block_mx.data(), block_mx.data() + blocks * positions, -inf);
  RunBlocks(ctx, n, blocks, [&](int64_t b, int64_t begin, int64_t end) {
    C* own_mn = block_mn.data() + b * positions;
    C* own_mx = block_mx.data() + b * positions;
    if (layout.cols) {  // one call: the loop wraps around the period
      loops.range_cols(x + begin, end - begin, own_mn, own_mx, positions, begin % positions);
      return;
    }
    ForEachRun(layout, begin, end, [&](int64_t p, int64_t i, int64_t len) {
      loops.range(x + i, len, own_mn + p, own_mx + p);
    });
  });
  for (int64_t p = 0; p < positions; ++p) {
    C a = block_mn[p], c = block_mx[p];
    for (int64_t b = 1; b < blocks; ++b) {
      a = MinIgnoringNaN(a, block_mn[b * positions + p]);
      c = MaxIgnoringNaN(c, block_mx[b * positions + p]);
    }
    pos_mn[p] = a;
    pos_mx[p] = c;
  }
}

// Job 2 of DataRange: positions -> channels (in the cols layout a channel
// has `inner` positions; in the rows layout one).
template <typename C>
void ChannelRange(const Layout& layout, const C* pos_mn, const C* pos_mx, C* mn, C* mx) {
  const C inf = std::numeric_limits<C>::infinity();
  const int64_t per = layout.cols ? layout.inner : 1;
  for (int64_t c = 0; c < layout.depth; ++c) {
    C a = inf, b = -inf;
    for (int64_t j = 0; j < per; ++j) {
      a = MinIgnoringNaN(a, pos_mn[c * per + j]);
      b = MaxIgnoringNaN(b, pos_mx[c * per + j]);
    }
    mn[c] = a;
    mx[c] = b;
  }
}

// Job 3 of DataRange: the signs of zero extremes. The compare-and-select
// reductions keep whichever zero they meet first, so on their own the sign
// of a zero minimum or maximum would depend on element order, vector width
// and thread count. The rule instead follows the IEEE total order
// (-0.0 < +0.0), as the GPU's order keys do: a zero minimum is -0.0 when the
// channel holds a -0.0, else +0.0; a zero maximum is +0.0 when the channel
// holds a +0.0, else -0.0. The sign of a zero maximum decides the sign of
// zero outputs. A zero minimum only reaches the output when ComputeParams
// takes its scale from the minimum, which with a zero minimum happens exactly
// when qmax / max overflows (a maximum below about 3.7e-37 for 8 bits); only
// then is its channel scanned again (after a ReLU every minimum is a zero,
// and a scan for a -0.0 reads the whole channel). Each scan stops at the
// first match. qmax: the integer range's top, in the compute type.
template <typename T, typename C>
void FixZeroSigns(const Layout& layout, const T* in, C qmax, C* mn, C* mx) {
  for (int64_t c = 0; c < layout.depth; ++c) {
    const bool min_sets_scale = qmax * mx[c] > C(0) && Limits<C>::Max() < qmax / mx[c];
    if (mn[c] == C(0) && min_sets_scale) {
      mn[c] = ChannelHoldsZero<C>(layout, in, c, /*negative=*/true) ? -C(0) : C(0);
    }
    if (mx[c] == C(0)) {
      mx[c] = ChannelHoldsZero<C>(layout, in, c, /*negative=*/false) ? C(0) : -C(0);
    }
  }
}

// Per-channel NaN-ignoring min and max of the data into mn[0..depth),
// mx[0..depth). The sign of a zero minimum or maximum is
// implementation-defined in TensorFlow; ours is fixed (FixZeroSigns).
template <typename T, typename C>
void DataRange(tensorflow::OpKernelContext* ctx, const Layout& layout, const T* in, C qmax, C* mn,
               C* mx) {
  Scratch<C> pos_mn(layout.positions), pos_mx(layout.positions);
  PositionRange(ctx, layout, in, pos_mn.data(), pos_mx.data());
  ChannelRange(layout, pos_mn.data(), pos_mx.data(), mn, mx);
  FixZeroSigns(layout, in, qmax, mn, mx);
}

// Copies per-channel values into per-position arrays (cols layout).
template <typename C>
void Expand(const Layout& layout, const C* per_channel, C* per_position) {
  for (int64_t c = 0; c < layout.depth; ++c) {
    std::fill(per_position + c * layout.inner, per_position + (c + 1) * layout.inner,
              per_channel[c]);
  }
}

}  // namespace

template <typename T>
struct ForwardFunctor<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, const ForwardArgs& args,
                                const T* in, const T* min_host, const T* max_host, T* out) {
    using C = typename ComputeType<T>::type;
    TF_RETURN_IF_ERROR(CheckIsa());
    const Layout layout = MakeLayout(args.view);
    const int64_t n = layout.size(), depth = layout.depth;
    if (n == 0) return tensorflow::Status();
    Scratch<C> mn(depth), mx(depth);
    if (args.range_given) {
      for (int64_t c = 0; c < depth; ++c) {
        mn[c] = static_cast<C>(min_host[c]);
        mx[c] = static_cast<C>(max_host[c]);
      }
    } else {
      DataRange(ctx, layout, in, static_cast<C>(args.qmax), mn.data(), mx.data());
    }
    // Parameters per channel, then per position for the cols layout.
    Scratch<C> params(4 * depth);
    C* scale = params.data();
    C* inv = scale + depth;
    C* lo = inv + depth;
    C* hi = lo + depth;
    const C qmin = static_cast<C>(args.qmin), qmax = static_cast<C>(args.qmax);
    for (int64_t c = 0; c < depth; ++c) {
      const Params<C> p = ComputeParams(mn[c], mx[c], qmin, qmax);
      scale[c] = p.scale;
      inv[c] = p.inv;
      lo[c] = p.lo;
      hi[c] = p.hi;
    }
    const int64_t positions = layout.positions;
    const bool expand = layout.cols && layout.inner > 1;
    Scratch<C> position_params(expand ? 4 * positions : 0);
    if (expand) {
      C* arrays[4] = {scale, inv, lo, hi};
      for (int k = 0; k < 4; ++k) {
        Expand(layout, arrays[k], position_params.data() + k * positions);
        arrays[k] = position_params.data() + k * positions;
      }
      scale = arrays[0];
      inv = arrays[1];
      lo = arrays[2];
      hi = arrays[3];
    }
    const auto& loops = LoopsFor<T>::Get();
    const int clamp = args.range_given ? 1 : 0, half_up = args.half_up ? 1 : 0;
    const auto qdq = loops.qdq[clamp][half_up];
    const auto qdq_cols = loops.qdq_cols[clamp][half_up];
    const auto* x = Raw(in);
    auto* y = Raw(out);
    const bool stream = n * static_cast<int64_t>(sizeof(T)) >= StreamThresholdBytes();
    RunBlocks(ctx, n, NumBlocks(ctx, n), [&](int64_t, int64_t b, int64_t e) {
      if (layout.cols) {  // one call: the loop wraps around the period
        qdq_cols(x + b, y + b, e - b, scale, inv, lo, hi, positions, b % positions, stream);
      } else {
        ForEachRun(layout, b, e, [&](int64_t p, int64_t i, int64_t len) {
          qdq(x + i, y + i, len, scale[p], inv[p], lo[p], hi[p], stream);
        });
      }
      if (stream) cpu::StoreFence();
    });
    return tensorflow::Status();
  }
};

template <typename T>
struct GradFunctor<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx, const View& view,
                                const T* gradients, const T* x, const T* min_host,
                                const T* max_host, T* out) {
    using C = typename ComputeType<T>::type;
    TF_RETURN_IF_ERROR(CheckIsa());
    const Layout layout = MakeLayout(view);
    const int64_t n = layout.size(), depth = layout.depth;
    const int64_t positions = layout.positions;
    if (n == 0) return tensorflow::Status();
    Scratch<C> bounds(2 * positions);
    C* lo = bounds.data();
    C* hi = lo + positions;
    const int64_t per = layout.cols ? layout.inner : 1;
    for (int64_t c = 0; c < depth; ++c) {
      const C cl = static_cast<C>(min_host[c]);
      const C ch = static_cast<C>(max_host[c]);
      std::fill(lo + c * per, lo + (c + 1) * per, cl);
      std::fill(hi + c * per, hi + (c + 1) * per, ch);
    }
    const auto& loops = LoopsFor<T>::Get();
    const auto* g = Raw(gradients);
    const auto* xs = Raw(x);
    auto* y = Raw(out);
    const bool stream = n * static_cast<int64_t>(sizeof(T)) >= StreamThresholdBytes();
    RunBlocks(ctx, n, NumBlocks(ctx, n), [&](int64_t, int64_t b, int64_t e) {
      if (layout.cols) {  // one call: the loop wraps around the period
        loops.grad_cols(g + b, xs + b, y + b, e - b, lo, hi, positions, b % positions, stream);
      } else {
        ForEachRun(layout, b, e, [&](int64_t p, int64_t i, int64_t len) {
          loops.grad(g + i, xs + i, y + i, len, lo[p], hi[p], stream);
        });
      }
      if (stream) cpu::StoreFence();
    });
    return tensorflow::Status();
  }
};

template <typename T>
bool CpuGradientPassesUnbounded(tensorflow::OpKernelContext* ctx, const T* gradients, const T* x,
                                int64_t n) {
  if (!CheckIsa().ok()) return false;  // GradFunctor reports the error
  const auto& loops = LoopsFor<T>::Get();
  const auto* g = Raw(gradients);
  const auto* xs = Raw(x);
  std::atomic<bool> passes{true};
  RunBlocks(ctx, n, NumBlocks(ctx, n), [&](int64_t, int64_t b, int64_t e) {
    // Pieces, so that every task stops soon after one of them fails.
    constexpr int64_t kPiece = 16 * 1024;
    for (int64_t i = b; i < e && passes.load(std::memory_order_relaxed); i += kPiece) {
      if (!loops.passes_unbounded(g + i, xs + i, std::min(kPiece, e - i))) {
        passes.store(false, std::memory_order_relaxed);
      }
    }
  });
  return passes.load();
}

template <typename T>
struct ZeroFunctor<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext*, T* p, int64_t n) {
    std::fill(p, p + n, T(0));
    return tensorflow::Status();
  }
};

#define TF_QDQ_INSTANTIATE_CPU(T)                                                               \
  template struct ForwardFunctor<CPUDevice, T>;                                                 \
  template struct GradFunctor<CPUDevice, T>;                                                    \
  template struct ZeroFunctor<CPUDevice, T>;                                                    \
  template bool CpuGradientPassesUnbounded<T>(tensorflow::OpKernelContext*, const T*, const T*, \
                                              int64_t);
TF_QDQ_INSTANTIATE_CPU(Eigen::bfloat16)
TF_QDQ_INSTANTIATE_CPU(Eigen::half)
TF_QDQ_INSTANTIATE_CPU(float)
TF_QDQ_INSTANTIATE_CPU(double)
#undef TF_QDQ_INSTANTIATE_CPU

}  // namespace tf_qdq

// The instruction set of the CPU loops in use ("sse2", "avx2" or "avx512"),
// or nullptr when TF_QDQ_CPU_ISA is invalid; then TfQdqCpuIsaError() says
// why (else it returns ""). Read by tf_qdq/_loader.py through ctypes.
extern "C" {
__attribute__((visibility("default"))) const char* TfQdqCpuIsa() {
  const tf_qdq::cpu::LoopTable* table = tf_qdq::Isa().table;
  return table != nullptr ? table->isa : nullptr;
}
__attribute__((visibility("default"))) const char* TfQdqCpuIsaError() {
  return tf_qdq::Isa().error.c_str();
}
}
