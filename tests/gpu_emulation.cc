// Host emulation of the CUDA kernels' per-thread code (kernels/qdq_gpu_body.h)
// so that their index arithmetic and reductions run without a GPU: every
// block and thread of a launch is executed sequentially, with the same loop
// bodies the kernels call, and the results are compared bit for bit with the
// plain serial reference of tools/gpu_harness/reference.h (per channel, with
// the zero-sign rule of docs/semantics.md#arithmetic). Built and run by
// tests/test_gpu_emulation.py.
//
// Covered: the fast 32-bit division (FastDiv32) against plain division; the
// range scan with the 32-bit and the 64-bit index path, with the launch
// geometry of qdq_gpu.cu.cc and with small grids, including the fixed-channel
// mode for short runs (one flush per thread, e.g. 3 channels last); the
// min/max keys themselves (the sign of a zero minimum and maximum); the
// elementwise and gradient loops with 16-byte groups of 2, 4 and 8 elements
// with no head, the shortest and the longest head, and tails, with unaligned arrays (no groups),
// and both index paths; every element written exactly once, every group
// access aligned and in bounds; subnormal data and subnormal given ranges;
// the range scan with 2 rows of blocks (each row loops over several windows,
// as above 134M channels); NaN payloads and signs. Host-side pieces of the
// GPU path: the given-range parameters under TensorFlow's flush-to-zero
// (gpu_host::GivenRangeParams), the kernel-image check cache, the CPU's NaN
// bits (CpuNaN against x86 arithmetic, the 16-bit NaN conversions against
// kernels/qdq_cpu_convert.h).
//
// What this cannot check: the CUDA-specific parts (atomics, shared memory,
// launch configuration limits, half/bfloat16 conversions, the 16-byte loads
// themselves, the device compiler's arithmetic). tools/gpu_harness/ checks
// those on a GPU.
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/qdq_cpu_convert.h"
#include "kernels/qdq_gpu_body.h"
#include "kernels/qdq_gpu_host.h"
#include "kernels/qdq_math.h"
#include "tools/gpu_harness/reference.h"

namespace {

using tf_qdq::ComputeParams;
using tf_qdq::Params;
using namespace tf_qdq::gpu_body;  // NOLINT

int failures = 0;
int64_t checks = 0;

template <typename C>
bool SameBits(C a, C b) {
  return std::memcmp(&a, &b, sizeof(C)) == 0;
}

template <typename C>
void Expect(bool ok, const char* what, const Dims& d, int64_t index, C got, C want) {
  ++checks;
  if (ok) return;
  if (++failures <= 20) {
    std::printf("FAIL %s dims [%" PRId64 ", %" PRId64 ", %" PRId64 "] index %" PRId64
                ": got %.17g want %.17g\n",
                what, d.outer, d.depth, d.inner, index, static_cast<double>(got),
                static_cast<double>(want));
  }
}

void Fail(const char* what, int64_t a, int64_t b) {
  ++checks;
  if (++failures <= 20) std::printf("FAIL %s (%" PRId64 ", %" PRId64 ")\n", what, a, b);
}

// --- FastDiv32 -------------------------------------------------------------
void CheckFastDiv() {
  std::mt19937_64 rng(7);
  const uint32_t top = 0x7fffffffu;  // largest n of the 32-bit path
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 4200; ++d) divisors.push_back(d);
  for (int s = 12; s < 31; ++s) {
    for (int64_t delta = -2; delta <= 2; ++delta)
      divisors.push_back(static_cast<uint32_t>((int64_t{1} << s) + delta));
  }
  divisors.push_back(top);
  divisors.push_back(top - 1);
  std::uniform_int_distribution<uint32_t> any_d(1, top), any_n(0, top);
  for (int k = 0; k < 3000; ++k) divisors.push_back(any_d(rng));
  for (uint32_t d : divisors) {
    const Divider<uint32_t> div(d);
    std::vector<uint32_t> ns = {0, 1, d - 1, d, top, top - 1, top - d + 1};
    const uint32_t q_top = top / d;
    for (uint32_t q : {uint32_t{1}, uint32_t{2}, q_top - 1, q_top}) {
      const uint64_t m = static_cast<uint64_t>(q) * d;
      for (int64_t delta = -1; delta <= 1; ++delta) {
        const int64_t n = static_cast<int64_t>(m) + delta;
        if (n >= 0 && n <= top) ns.push_back(static_cast<uint32_t>(n));
      }
    }
    for (int k = 0; k < 40; ++k) ns.push_back(any_n(rng));
    for (uint32_t n : ns) {
      if (n > top) continue;
      ++checks;
      if (div.Div(n) != n / d) Fail("FastDiv32 n / d", n, d);
    }
  }
}

// --- Range scan --------------------------------------------------------------
// RangeInitKernel + RangeKernel, thread by thread: the reduced keys per
// channel. Also checks that in the fixed-channel mode (short runs) every
// thread flushes at most once per window.
template <typename C, typename I>
void EmulateRangeKeys(const std::vector<C>& x, const Dims& d, const RangeGeometry& g,
                      std::vector<typename Key<C>::type>* kmin,
                      std::vector<typename Key<C>::type>* kmax) {
  using K = typename Key<C>::type;
  kmin->assign(d.depth, Key<C>::kMinStart);
  kmax->assign(d.depth, Key<C>::kMaxStart);
  std::vector<K> smin(g.window), smax(g.window);
  const auto load = [&](I i) {
    if (static_cast<int64_t>(i) < 0 || static_cast<int64_t>(i) >= static_cast<int64_t>(x.size())) {
      Fail("out-of-bounds load", static_cast<int64_t>(i), static_cast<int64_t>(x.size()));
      return C(0);
    }
    return x[i];
  };
  for (int64_t by = 0; by < g.grid_y; ++by) {
    for (int64_t bx = 0; bx < g.grid_x; ++bx) {
      for (int64_t w = by; w < g.windows; w += g.grid_y) {
        const int64_t c0 = w * g.window;
        const int64_t nc = (d.depth - c0 < g.window) ? d.depth - c0 : g.window;
        for (int64_t c = 0; c < nc; ++c) {
          smin[c] = Key<C>::kMinStart;
          smax[c] = Key<C>::kMaxStart;
        }
        // Short runs: each thread must stay on one channel (at most one flush).
        const bool fixed = nc * d.inner <= kFixedChannelRun;
        for (int64_t t = 0; t < kThreads; ++t) {
          int flushes = 0;
          const auto flush = [&](int64_t c, K lo, K hi) {
            ++flushes;
            if (c < 0 || c >= nc) {
              Fail("flush to a channel outside the window", c, nc);
              return;
            }
            smin[c] = lo < smin[c] ? lo : smin[c];
            smax[c] = smax[c] < hi ? hi : smax[c];
          };
          ScanWindow<C, I>(d, Window{c0, nc}, static_cast<I>(bx), static_cast<I>(g.grid_x),
                           static_cast<I>(t), static_cast<I>(kThreads), static_cast<I>(g.items),
                           load, flush);
          if (fixed && flushes > 1) Fail("fixed-channel scan flushed more than once", t, flushes);
        }
        for (int64_t c = 0; c < nc; ++c) {
          if (smin[c] != Key<C>::kMinStart && smin[c] < (*kmin)[c0 + c]) (*kmin)[c0 + c] = smin[c];
          if (smax[c] != Key<C>::kMaxStart && (*kmax)[c0 + c] < smax[c]) (*kmax)[c0 + c] = smax[c];
        }
      }
    }
  }
}

template <typename C, typename I>
void CheckRange(const std::vector<C>& x, const Dims& d, const RangeGeometry& g,
                const std::vector<C>& mn, const std::vector<C>& mx, C qmin, C qmax) {
  std::vector<typename Key<C>::type> kmin, kmax;
  EmulateRangeKeys<C, I>(x, d, g, &kmin, &kmax);
  for (int64_t c = 0; c < d.depth; ++c) {
    const C lo = FromKey<C>(kmin[c]), hi = FromKey<C>(kmax[c]);
    Expect(SameBits(lo, mn[c]), "range min (bits, sign of zero)", d, c, lo, mn[c]);
    Expect(SameBits(hi, mx[c]), "range max (bits, sign of zero)", d, c, hi, mx[c]);
    const Params<C> got = ParamsFromKeys<C>(kmin[c], kmax[c], qmin, qmax);
    const Params<C> want = ComputeParams(mn[c], mx[c], qmin, qmax);
    Expect(SameBits(got.scale, want.scale), "scale", d, c, got.scale, want.scale);
    Expect(SameBits(got.inv, want.inv), "inv", d, c, got.inv, want.inv);
    Expect(SameBits(got.lo, want.lo), "lo", d, c, got.lo, want.lo);
    Expect(SameBits(got.hi, want.hi), "hi", d, c, got.hi, want.hi);
  }
}

// --- Elementwise loops --------------------------------------------------------
struct Launch {
  int64_t blocks;  // 0: the launchers' grid for the split
  int64_t threads;
};

// The group accesses of a split over an array whose element 0 lies
// `misalign` elements past a 16-byte boundary: in bounds and aligned.
template <int V, typename I>
struct Access {
  int64_t n;
  int misalign;
  template <int N>
  bool Check(I i) const {
    const int64_t b = static_cast<int64_t>(i);
    if (b < 0 || b + N > n) {
      Fail("access out of bounds", b, N);
      return false;
    }
    if (N > 1 && (misalign < 0 || (misalign + b) % V != 0)) {
      Fail("16-byte group not aligned", b, misalign);
      return false;
    }
    return true;
  }
};

template <typename C, int V, typename I>
std::vector<C> EmulateQdq(const std::vector<C>& x, const Dims& d, const ParamsArg<C>& pa,
                          bool clamp, bool half_up, int misalign, const Launch& l) {
  const int64_t n = static_cast<int64_t>(x.size());
  const Split<I> s = MakeSplit<V, I>(static_cast<I>(n), misalign);
  const int64_t blocks = l.blocks ? l.blocks : ElementwiseBlocks(SplitItems<V>(s));
  const int64_t grid = blocks * l.threads;
  std::vector<C> out(n, std::numeric_limits<C>::quiet_NaN());
  std::vector<int> written(n, 0);
  const Access<V, I> acc{n, misalign};
  const auto load = [&](I i, auto cnt, C* v) {
    constexpr int kN = decltype(cnt)::value;
    for (int k = 0; k < kN; ++k) v[k] = C(0);
    if (!acc.template Check<kN>(i)) return;
    for (int k = 0; k < kN; ++k) v[k] = x[i + k];
  };
  const auto store = [&](I i, auto cnt, const C* v) {
    constexpr int kN = decltype(cnt)::value;
    if (!acc.template Check<kN>(i)) return;
    for (int k = 0; k < kN; ++k) {
      out[i + k] = v[k];
      ++written[i + k];
    }
  };
  for (int64_t t = 0; t < grid; ++t) {
    const I first = static_cast<I>(t), stride = static_cast<I>(grid);
    if (clamp) {
      if (half_up)
        QdqLoop<C, true, true, V>(d, pa, s, first, stride, load, store);
      else
        QdqLoop<C, true, false, V>(d, pa, s, first, stride, load, store);
    } else {
      if (half_up)
        QdqLoop<C, false, true, V>(d, pa, s, first, stride, load, store);
      else
        QdqLoop<C, false, false, V>(d, pa, s, first, stride, load, store);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (written[i] != 1) Expect<C>(false, "each element written once", d, i, written[i], 1);
  }
  ++checks;
  return out;
}

template <typename C, int V, typename I>
std::vector<C> EmulateGrad(const std::vector<C>& g, const std::vector<C>& x, const Dims& d,
                           const ParamsArg<C>& pa, int misalign, const Launch& l) {
  const int64_t n = static_cast<int64_t>(x.size());
  const Split<I> s = MakeSplit<V, I>(static_cast<I>(n), misalign);
  const int64_t blocks = l.blocks ? l.blocks : ElementwiseBlocks(SplitItems<V>(s));
  const int64_t grid = blocks * l.threads;
  std::vector<C> out(n, std::numeric_limits<C>::quiet_NaN());
  std::vector<int> written(n, 0);
  const Access<V, I> acc{n, misalign};
  const auto load_from = [&](const std::vector<C>& a) {
    return [&a, &acc](I i, auto cnt, C* v) {
      constexpr int kN = decltype(cnt)::value;
      for (int k = 0; k < kN; ++k) v[k] = C(0);
      if (!acc.template Check<kN>(i)) return;
      for (int k = 0; k < kN; ++k) v[k] = a[i + k];
    };
  };
  const auto store = [&](I i, auto cnt, const C* v) {
    constexpr int kN = decltype(cnt)::value;
    if (!acc.template Check<kN>(i)) return;
    for (int k = 0; k < kN; ++k) {
      out[i + k] = v[k];
      ++written[i + k];
    }
  };
  for (int64_t t = 0; t < grid; ++t) {
    GradLoop<C, V>(d, pa, s, static_cast<I>(t), static_cast<I>(grid), load_from(g), load_from(x),
                   store);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (written[i] != 1) Expect<C>(false, "grad element written once", d, i, written[i], 1);
  }
  ++checks;
  return out;
}

// A NaN of either sign, quiet or signaling, with a random payload.
template <typename C>
C AnyNaN(std::mt19937_64& rng) {
  using U = typename NaNBits<C>::U;
  const int bits = sizeof(C) == 4 ? 32 : 64;
  const int mant = sizeof(C) == 4 ? 23 : 52;
  const U exp = ((U{1} << (bits - 1 - mant)) - 1) << mant;
  U payload = static_cast<U>(rng()) & ((U{1} << mant) - 1);
  if (payload == 0) payload = 1;  // not an infinity
  const U sign = (rng() & 1) ? (U{1} << (bits - 1)) : U{0};
  const U u = sign | exp | payload;
  C v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
}

// A subnormal of the type, for subnormal data and given ranges.
template <typename C>
double SubnormalUnit() {
  return sizeof(C) == 4 ? 1e-40 : 1e-310;
}

template <typename C>
C Draw(std::mt19937_64& rng, int kind) {
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  std::uniform_int_distribution<int> pick(0, 99);
  const int r = pick(rng);
  if (kind == 1) {  // zero-heavy: the sign-of-zero rules
    if (r < 40) return C(0);
    if (r < 80) return -C(0);
    return r < 90 ? C(-0.25) : C(0.5);
  }
  if (kind == 2) {  // specials, NaNs with both signs, payloads, signaling
    if (r < 5) return AnyNaN<C>(rng);
    if (r < 7) return std::numeric_limits<C>::infinity();
    if (r < 9) return -std::numeric_limits<C>::infinity();
    if (r < 12) return -C(0);
  }
  if (kind == 3 && r < 97) return std::numeric_limits<C>::quiet_NaN();  // mostly NaN
  if (kind == 4) {  // subnormals (the device does not flush them), some zeros and NaN
    if (r < 5) return AnyNaN<C>(rng);
    if (r < 15) return r < 10 ? C(0) : -C(0);
    return static_cast<C>(u(rng) * SubnormalUnit<C>());
  }
  return static_cast<C>(u(rng));
}

// The elementwise and gradient loops with groups of V elements, the
// misalignments that give every kind of head, both index paths, the launchers' grid and a small
// one.
template <typename C, int V>
void CheckElementwise(std::mt19937_64& rng, const std::vector<C>& x, const Dims& d,
                      const std::vector<Params<C>>& data, const std::vector<Params<C>>& given,
                      bool small_grids, C unit) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<Launch> launches = {{0, kThreads}};
  if (small_grids) launches.push_back({3, 32});
  std::vector<C> g(n);
  for (auto& v : g) v = Draw<C>(rng, unit == C(1) ? 2 : 4);
  std::vector<Params<C>> bounds(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) {  // unit: 1, or a subnormal
    bounds[c] = Params<C>{};
    bounds[c].lo = -unit * C(1 + c % 2);
    bounds[c].hi = unit * C(0.5) * C(1 + c % 4);
  }
  // Unaligned arrays (no groups), no head, the longest head (V - 1), the
  // shortest (1).
  std::vector<int> misaligns = {-1, 0, 1};
  if (V > 2) misaligns.push_back(V - 1);
  for (const int misalign : misaligns) {
    for (size_t li = 0; li < launches.size(); ++li) {
      const Launch& l = launches[li];
      const bool wide = ((misalign + static_cast<int>(li)) & 1) != 0;  // alternate the index paths
      for (int mode = 0; mode < 4; ++mode) {
        const bool clamp = mode & 1, half_up = mode & 2;
        const std::vector<Params<C>>& ps = clamp ? given : data;
        ParamsArg<C> pa{ps.data(), Params<C>{}};
        if (d.depth == 1 && clamp) pa = ParamsArg<C>{nullptr, ps[0]};
        const std::vector<C> got =
            wide ? EmulateQdq<C, V, int64_t>(x, d, pa, clamp, half_up, misalign, l)
                 : EmulateQdq<C, V, uint32_t>(x, d, pa, clamp, half_up, misalign, l);
        for (int64_t i = 0; i < n; ++i) {
          const C w = tf_qdq::reference::Qdq(
              x[i], ps[tf_qdq::reference::ChannelOf(i, d.depth, d.inner)], clamp, half_up);
          Expect(SameBits(got[i], w), "qdq", d, i, got[i], w);
        }
      }
      ParamsArg<C> pa{bounds.data(), Params<C>{}};
      if (d.depth == 1) pa = ParamsArg<C>{nullptr, bounds[0]};
      const std::vector<C> got = wide ? EmulateGrad<C, V, int64_t>(g, x, d, pa, misalign, l)
                                      : EmulateGrad<C, V, uint32_t>(g, x, d, pa, misalign, l);
      for (int64_t i = 0; i < n; ++i) {
        const Params<C>& p = bounds[tf_qdq::reference::ChannelOf(i, d.depth, d.inner)];
        const C w = tf_qdq::MaskedGradient(g[i], x[i], p.lo, p.hi);
        Expect(SameBits(got[i], w), "grad", d, i, got[i], w);
      }
    }
  }
}

template <typename C>
void RunCase(std::mt19937_64& rng, const Dims& d, int kind, bool small_grids) {
  const int64_t n = Size(d);
  std::vector<C> x(n);
  for (auto& v : x) v = Draw<C>(rng, kind);
  const C qmin = C(-127), qmax = C(127);  // signed 8 bit narrow

  // Range from data, with the launch geometry of qdq_gpu.cu.cc and with
  // deliberately small grids (more grid-stride iterations, several windows),
  // on both index paths.
  std::vector<C> mn, mx;
  tf_qdq::reference::Range<C>(n, d.depth, d.inner, [&](int64_t i) { return x[i]; }, &mn, &mx);
  std::vector<RangeGeometry> geos = {MakeRangeGeometry(d)};
  // The launchers' geometry with 2 rows of blocks (the harness's test hook):
  // each row loops over several windows, as above 134M channels.
  if (MakeRangeGeometry(d, 2).windows > 2) geos.push_back(MakeRangeGeometry(d, 2));
  if (small_grids) {
    RangeGeometry g;
    g.window = d.depth < 3 ? d.depth : 3;
    g.windows = CeilDiv(d.depth, g.window);
    g.grid_y = g.windows < 2 ? g.windows : 2;
    g.grid_x = 2;
    g.items = 2;
    geos.push_back(g);
    g.grid_x = 1;
    g.items = 1;
    geos.push_back(g);
  }
  for (size_t k = 0; k < geos.size(); ++k) {
    CheckRange<C, uint32_t>(x, d, geos[k], mn, mx, qmin, qmax);
    if (k == 0 || n < 5000) CheckRange<C, int64_t>(x, d, geos[k], mn, mx, qmin, qmax);
  }

  // Elementwise, per channel from a device array and (depth 1) by value.
  // Subnormal data (kind 4) with a subnormal given range.
  const C unit = kind == 4 ? static_cast<C>(SubnormalUnit<C>()) : C(1);
  std::vector<Params<C>> data(d.depth), given(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) {
    data[c] = ComputeParams(mn[c], mx[c], qmin, qmax);
    given[c] = ComputeParams(-unit * C(1 + c % 3), unit * C(0.75) * C(1 + c % 5), qmin, qmax);
  }
  if (sizeof(C) == 8) {
    CheckElementwise<C, 2>(rng, x, d, data, given, small_grids, unit);
  } else {
    CheckElementwise<C, 4>(rng, x, d, data, given, small_grids, unit);  // float
    if (n <= 40000) {
      CheckElementwise<C, 8>(rng, x, d, data, given, small_grids, unit);  // half, bfloat16
    }
  }
}

template <typename C>
void CheckKeys() {
  const C inf = std::numeric_limits<C>::infinity();
  const C den = std::numeric_limits<C>::denorm_min();
  const C ordered[] = {-inf, -std::numeric_limits<C>::max(), C(-1), -den, -C(0), C(0), den,
                       C(1), std::numeric_limits<C>::max(),  inf};
  const Dims d{1, 1, 1};
  const int m = sizeof(ordered) / sizeof(ordered[0]);
  for (int i = 0; i < m; ++i) {
    Expect(SameBits(FromKey<C>(ToKey(ordered[i])), ordered[i]), "key round trip", d, i,
           FromKey<C>(ToKey(ordered[i])), ordered[i]);
    if (i + 1 < m) {
      Expect(ToKey(ordered[i]) < ToKey(ordered[i + 1]), "key order", d, i, ordered[i],
             ordered[i + 1]);
    }
  }
  Expect(ToKey(inf) == Key<C>::kMinStart, "key(+inf)", d, 0, inf, inf);
  Expect(ToKey(-inf) == Key<C>::kMaxStart, "key(-inf)", d, 0, -inf, -inf);
}

// The zero-sign rule, pinned on explicit channels (3 channels last, the
// fixed-channel scan): the max is +0.0 if the channel holds a +0.0 (else
// -0.0), the min is -0.0 if the channel holds a -0.0 (else +0.0).
template <typename C>
void CheckZeroSigns() {
  const C z = C(0), nz = -C(0), nan = std::numeric_limits<C>::quiet_NaN();
  // Columns: channel 0 {+0, -0, -1}, channel 1 {-0, -0, NaN}, channel 2 {+0, +0, 1}.
  const std::vector<C> rows = {z, nz, z, nz, nz, z, C(-1), nan, C(1)};
  std::vector<C> x;
  for (int r = 0; r < 50; ++r) x.insert(x.end(), rows.begin(), rows.end());
  const Dims d{static_cast<int64_t>(x.size() / 3), 3, 1};
  const C want_min[] = {C(-1), nz, z};
  const C want_max[] = {z, nz, C(1)};
  std::vector<typename Key<C>::type> kmin, kmax;
  EmulateRangeKeys<C, uint32_t>(x, d, MakeRangeGeometry(d), &kmin, &kmax);
  for (int c = 0; c < 3; ++c) {
    Expect(SameBits(FromKey<C>(kmin[c]), want_min[c]), "zero-sign rule: min", d, c,
           FromKey<C>(kmin[c]), want_min[c]);
    Expect(SameBits(FromKey<C>(kmax[c]), want_max[c]), "zero-sign rule: max", d, c,
           FromKey<C>(kmax[c]), want_max[c]);
  }
}

// --- Given-range parameters under TensorFlow's flush modes -------------------
// TensorFlow runs OpKernel::Compute under ScopedFlushDenormal: x86 MXCSR
// flush-to-zero and denormals-are-zero, Arm FPCR.FZ. This sets the same modes
// for its lifetime.
class ScopedFlushLikeTensorFlow {
 public:
  ScopedFlushLikeTensorFlow() {
#if defined(TF_QDQ_HOST_X86)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ | tf_qdq::gpu_host::kMxcsrFtz | tf_qdq::gpu_host::kMxcsrDaz);
#elif defined(__aarch64__)
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
    const uint64_t v = saved_ | tf_qdq::gpu_host::kFpcrFz;
    __asm__ __volatile__("msr fpcr, %0" : : "r"(v));
#endif
  }
  ~ScopedFlushLikeTensorFlow() {
#if defined(TF_QDQ_HOST_X86)
    _mm_setcsr(saved_);
#elif defined(__aarch64__)
    __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_));
#endif
  }
  // Whether the flush modes are on now (a subnormal times one gives zero).
  static bool Flushing() {
    volatile float tiny = 1e-39f;
    volatile float one = 1.0f;
    const float product = tiny * one;
    return product == 0.0f;
  }

 private:
#if defined(TF_QDQ_HOST_X86)
  unsigned saved_ = 0;
#else
  uint64_t saved_ = 0;
#endif
};

// The GPU functors compute given-range parameters on the host
// (gpu_host::GivenRangeParams) while TensorFlow's flush modes are on; they
// must equal the device's IEEE ComputeParams: with a given range of +-tiny
// (subnormal), float32 [tiny, -tiny/2, 3, 0] becomes [inf, -inf, inf, nan] at
// 8 bits, as on TensorFlow's own GPU kernel (not [0, -0, 0, 0]).
template <typename C>
void CheckGivenRangeParamsUnderFlush(C tiny) {
  const Dims d{1, 1, 4};
  const C qmin = C(-128), qmax = C(127);
  // Run-time values: the compiler must not fold the arithmetic.
  volatile C vt = tiny;
  const C lo_bound = -vt, hi_bound = vt;
  const Params<C> want = ComputeParams<C>(lo_bound, hi_bound, qmin, qmax);  // not flushing here
  Params<C> got{}, per_channel[3];
  const C lows[3] = {lo_bound, C(-1), lo_bound}, highs[3] = {hi_bound, C(1), hi_bound};
  bool flushing = false, still_flushing = false;
  {
    ScopedFlushLikeTensorFlow flush;
    flushing = ScopedFlushLikeTensorFlow::Flushing();
    tf_qdq::gpu_host::GivenRangeParams<C>(&lo_bound, &hi_bound, 1, qmin, qmax, &got);
    tf_qdq::gpu_host::GivenRangeParams<C>(lows, highs, 3, qmin, qmax, per_channel);
    still_flushing = ScopedFlushLikeTensorFlow::Flushing();
  }
  ++checks;
  if (!flushing) Fail("could not set the flush modes of TensorFlow's Compute", 0, 0);
  ++checks;
  if (!still_flushing) Fail("GivenRangeParams did not restore the flush modes", 0, 0);
  ++checks;
  if (ScopedFlushLikeTensorFlow::Flushing()) Fail("flush modes left on after the test scope", 0, 0);
  const char* what = sizeof(C) == 4 ? "float32 given-range params under flush-to-zero"
                                    : "float64 given-range params under flush-to-zero";
  const Params<C> ones = ComputeParams<C>(C(-1), C(1), qmin, qmax);
  for (int k = 0; k < 4; ++k) {
    const Params<C>& g = k == 0 ? got : per_channel[k - 1];
    const Params<C>& w = k == 2 ? ones : want;
    Expect(SameBits(g.scale, w.scale), what, d, k, g.scale, w.scale);
    Expect(SameBits(g.inv, w.inv), what, d, k, g.inv, w.inv);
    Expect(SameBits(g.lo, w.lo), what, d, k, g.lo, w.lo);
    Expect(SameBits(g.hi, w.hi), what, d, k, g.hi, w.hi);
  }
  // The outputs those parameters give (computed without flushing, as on the
  // device), against the IEEE values.
  const C inf = std::numeric_limits<C>::infinity();
  const C x[4] = {vt, -vt / C(2), C(3), C(0)};
  const C out_want[4] = {inf, -inf, inf, std::numeric_limits<C>::quiet_NaN()};
  for (int i = 0; i < 4; ++i) {
    const C o = tf_qdq::reference::Qdq(x[i], got, true, false);
    const bool ok = (o != o) ? (out_want[i] != out_want[i]) : SameBits(o, out_want[i]);
    Expect(ok,
           sizeof(C) == 4 ? "float32 output with a subnormal given range"
                          : "float64 output with a subnormal given range",
           d, i, o, out_want[i]);
  }
}

// --- The kernel-image check cache (PrepareLaunch) -------------------------------
// Success and a missing image are remembered; a transient error is returned
// and retried.
void CheckImageCheckCache() {
  const int kTransient = 2, kNoImage = 209;  // cudaErrorMemoryAllocation, NoKernelImageForDevice
  const auto permanent = [&](int code) { return code == kNoImage; };
  {
    ImageCheckCache cache;
    int calls = 0;
    const int answers[] = {kTransient, kTransient, 0, kTransient};
    const auto check = [&] { return answers[calls++]; };
    const int got[] = {cache.Get(check, permanent), cache.Get(check, permanent),
                       cache.Get(check, permanent), cache.Get(check, permanent),
                       cache.Get(check, permanent)};
    const int want[] = {kTransient, kTransient, 0, 0, 0};
    for (int i = 0; i < 5; ++i) {
      ++checks;
      if (got[i] != want[i]) Fail("image check after a transient error: call, code", i, got[i]);
    }
    ++checks;
    if (calls != 3)
      Fail("image check: checks run (want 3: twice transient, then success)", calls, 3);
  }
  {
    ImageCheckCache cache;
    int calls = 0;
    const auto check = [&] {
      ++calls;
      return kNoImage;
    };
    for (int i = 0; i < 3; ++i) {
      ++checks;
      if (cache.Get(check, permanent) != kNoImage) Fail("missing image not reported", i, 0);
    }
    ++checks;
    if (calls != 1) Fail("missing image: checks run (want 1, remembered)", calls, 1);
  }
}

// --- NaN bits -------------------------------------------------------------------
// The 16-bit NaN conversions of the device (gpu_body) against the CPU
// kernels' conversions (kernels/qdq_cpu_convert.h).
void CheckNaNConversions() {
  const Dims d{1, 1, 1};
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = tf_qdq::HalfToFloat(static_cast<uint16_t>(h));
    const bool nan = HalfIsNaN(static_cast<uint16_t>(h));
    ++checks;
    if (nan != (f != f)) Fail("HalfIsNaN", h, nan);
    if (nan) {
      uint32_t want;
      std::memcpy(&want, &f, sizeof(want));
      ++checks;
      if (HalfNaNToFloatBits(static_cast<uint16_t>(h)) != want) Fail("half NaN -> float", h, want);
    }
  }
  std::mt19937_64 rng(11);
  for (int k = 0; k < 200000; ++k) {
    const float f = AnyNaN<float>(rng);
    uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    ++checks;
    if (FloatNaNToHalfBits(u) != tf_qdq::FloatToHalf(f)) Fail("float NaN -> half", u, 0);
    ++checks;
    if (FloatNaNToBf16Bits(u) != tf_qdq::FloatToBf16(f)) Fail("float NaN -> bfloat16", u, 0);
  }
  (void)d;
}

// CpuNaN on a result with CUDA's canonical NaN gives the bits x86 arithmetic
// gives (the CPU kernels' and TensorFlow's): quiet(x) for a NaN input, the
// default NaN for an invalid operation (0 * inf, inf * 0). Parameters include
// an infinite scale (subnormal range), a zero scale with an infinite inverse
// (+inf in the data) and an all-NaN channel's.
template <typename C>
void CheckCpuNaN() {
#if defined(TF_QDQ_HOST_X86)
  using U = typename NaNBits<C>::U;
  const C inf = std::numeric_limits<C>::infinity();
  const C tiny = std::numeric_limits<C>::denorm_min() * C(1000);
  const C qmin = C(-127), qmax = C(127);
  const Params<C> ps[] = {
      ComputeParams(C(-1), C(1), qmin, qmax), ComputeParams(-tiny, tiny, qmin, qmax),
      ComputeParams(C(-1), inf, qmin, qmax),  ComputeParams(-inf, C(2), qmin, qmax),
      ComputeParams(inf, -inf, qmin, qmax),   ComputeParams(C(0), C(0), qmin, qmax),
      ComputeParams(C(0), inf, C(0), C(255)),
  };
  std::mt19937_64 rng(5);
  std::vector<C> xs = {inf,
                       -inf,
                       C(0),
                       -C(0),
                       C(1),
                       C(-3.5),
                       tiny,
                       std::numeric_limits<C>::quiet_NaN(),
                       -std::numeric_limits<C>::quiet_NaN(),
                       std::numeric_limits<C>::signaling_NaN()};
  for (int k = 0; k < 200; ++k) xs.push_back(AnyNaN<C>(rng));
  const auto canonical = [](C v) {
    if (!(v != v)) return v;
    const U u = sizeof(C) == 4 ? U(0x7fffffffu) : U(0x7fffffffffffffffull);
    C c;
    std::memcpy(&c, &u, sizeof(c));
    return c;
  };
  const Dims d{1, 1, 1};
  for (const Params<C>& p : ps) {
    for (const C x : xs) {
      volatile C vx = x;  // computed at run time, by the FPU
      for (int mode = 0; mode < 4; ++mode) {
        const C want = tf_qdq::reference::Qdq<C>(vx, p, mode & 1, mode & 2);
        const C got = CpuNaN(canonical(want), x);
        Expect(SameBits(got, want), "CpuNaN of QDQ against x86", d, mode, got, want);
      }
      for (const C g : xs) {
        volatile C vg = g;
        const C want = tf_qdq::MaskedGradient<C>(vg, vx, p.lo, p.hi);
        const C got = CpuNaN(canonical(want), g);
        Expect(SameBits(got, want), "CpuNaN of the gradient against x86", d, 0, got, want);
      }
    }
  }
#endif
}

template <typename C>
void RunAll(std::mt19937_64& rng) {
  CheckKeys<C>();
  CheckZeroSigns<C>();
  const Dims shapes[] = {
      {1, 1, 1},    {1, 1, 7},    {1, 1, 5000}, {1, 1, 70000},  // per tensor
      {3, 1, 11},   {1, 5, 1},    {7, 5, 1},    {1, 3, 300},    // per channel
      {4, 3, 300},  {2, 6, 9},    {1, 2049, 1}, {3, 2050, 2},   // windows
      {5, 4097, 1}, {1000, 2, 1}, {2, 17, 33},  {1, 1, 1025},  {3000, 3, 1},
      {700, 64, 1}, {90, 65, 1},  {400, 3, 2},  // small depth, inner 1 / 2
      {40, 3, 21},  {50, 7, 9},   {1, 3, 1},    {9, 1, 1},     {2, 9000, 1},  // windows
  };
  for (const Dims& d : shapes) {
    for (int kind = 0; kind < 5; ++kind) {
      const bool small = Size(d) <= 40000;
      RunCase<C>(rng, d, kind, small);
    }
  }
  std::uniform_int_distribution<int64_t> dim(1, 9);
  for (int r = 0; r < 60; ++r) {
    RunCase<C>(rng, Dims{dim(rng), dim(rng), dim(rng)}, r % 5, true);
  }
}

}  // namespace

int main() {
  CheckFastDiv();
  CheckImageCheckCache();
  CheckNaNConversions();
  CheckCpuNaN<float>();
  CheckCpuNaN<double>();
  CheckGivenRangeParamsUnderFlush<float>(1e-39f);
  CheckGivenRangeParamsUnderFlush<double>(1e-310);
  std::mt19937_64 rng(20240601);
  RunAll<float>(rng);
  RunAll<double>(rng);
  if (failures) {
    std::printf("FAILED: %d of %" PRId64 " checks\n", failures, checks);
    return 1;
  }
  std::printf("OK %" PRId64 " checks\n", checks);
  return 0;
}
