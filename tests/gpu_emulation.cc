// Host emulation of the CUDA kernels' per-thread code (kernels/qdq_gpu_body.h)
// so that their index arithmetic and reductions run without a GPU: every
// block and thread of a launch is executed sequentially, with the same loop
// bodies the kernels call, and the results are compared bit for bit with a
// plain serial implementation of docs/semantics.md#arithmetic (per channel, with the
// CPU's zero-maximum rule). Built and run by tests/test_gpu_emulation.py.
//
// What this cannot check: the CUDA-specific parts (atomics, shared memory,
// launch configuration limits, half/bfloat16 conversions, the device
// compiler's arithmetic). Those are in qdq_gpu.cu.cc and need a GPU.
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/qdq_gpu_body.h"
#include "kernels/qdq_math.h"

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
void Expect(bool ok, const char* what, const Dims& d, int64_t index, C got,
            C want) {
  ++checks;
  if (ok) return;
  if (++failures <= 20) {
    std::printf("FAIL %s dims [%" PRId64 ", %" PRId64 ", %" PRId64
                "] index %" PRId64 ": got %.17g want %.17g\n",
                what, d.outer, d.depth, d.inner, index,
                static_cast<double>(got), static_cast<double>(want));
  }
}

// Serial reference: per-channel NaN-ignoring min/max in flat order; a zero
// maximum is +0.0 if the channel holds a +0.0 else -0.0 (qdq_cpu.cc); a zero
// minimum is -0.0 if the channel holds a -0.0 else +0.0 (the GPU's rule; the
// sign of a zero minimum only matters for a maximum below qmax / FLT_MAX).
template <typename C>
void ReferenceRange(const std::vector<C>& x, const Dims& d, std::vector<C>* mn,
                    std::vector<C>* mx) {
  const C inf = std::numeric_limits<C>::infinity();
  mn->assign(d.depth, inf);
  mx->assign(d.depth, -inf);
  std::vector<char> pos_zero(d.depth, 0), neg_zero(d.depth, 0);
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    const int64_t c = (i / d.inner) % d.depth;
    const C v = x[i];
    (*mn)[c] = tf_qdq::MinIgnoringNaN((*mn)[c], v);
    (*mx)[c] = tf_qdq::MaxIgnoringNaN((*mx)[c], v);
    if (v == C(0)) (std::signbit(v) ? neg_zero : pos_zero)[c] = 1;
  }
  for (int64_t c = 0; c < d.depth; ++c) {
    if ((*mx)[c] == C(0)) (*mx)[c] = pos_zero[c] ? C(0) : -C(0);
    if ((*mn)[c] == C(0)) (*mn)[c] = neg_zero[c] ? -C(0) : C(0);
  }
}

struct Launch {
  int64_t blocks;
  int64_t threads;
};

// RangeInitKernel + RangeKernel + ParamsKernel, thread by thread.
template <typename C>
std::vector<Params<C>> EmulateDataRange(const std::vector<C>& x, const Dims& d,
                                        const RangeGeometry& g, C qmin,
                                        C qmax) {
  using K = typename Key<C>::type;
  std::vector<K> kmin(d.depth, Key<C>::kMinStart), kmax(d.depth, Key<C>::kMaxStart);
  std::vector<K> smin(g.window), smax(g.window);
  const auto load = [&](int64_t i) {
    if (i < 0 || i >= static_cast<int64_t>(x.size())) {
      std::printf("FAIL out-of-bounds load %" PRId64 "\n", i);
      ++failures;
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
        const auto flush = [&](int64_t c, K lo, K hi) {
          if (c < 0 || c >= nc) {
            std::printf("FAIL flush to channel %" PRId64 " of %" PRId64 "\n", c, nc);
            ++failures;
            return;
          }
          smin[c] = lo < smin[c] ? lo : smin[c];
          smax[c] = smax[c] < hi ? hi : smax[c];
        };
        for (int64_t t = 0; t < kThreads; ++t) {
          ScanWindow<C>(d, Window{c0, nc}, bx, g.grid_x, t, kThreads, g.items, load, flush);
        }
        for (int64_t c = 0; c < nc; ++c) {
          if (smin[c] != Key<C>::kMinStart && smin[c] < kmin[c0 + c]) kmin[c0 + c] = smin[c];
          if (smax[c] != Key<C>::kMaxStart && kmax[c0 + c] < smax[c]) kmax[c0 + c] = smax[c];
        }
      }
    }
  }
  std::vector<Params<C>> p(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) p[c] = ParamsFromKeys<C>(kmin[c], kmax[c], qmin, qmax);
  return p;
}

template <typename C, bool kClamp, bool kHalfUp>
std::vector<C> EmulateQdq(const std::vector<C>& x, const Dims& d,
                          const ParamsArg<C>& pa, const Launch& l) {
  std::vector<C> out(x.size(), std::numeric_limits<C>::quiet_NaN());
  std::vector<int> written(x.size(), 0);
  for (int64_t t = 0; t < l.blocks * l.threads; ++t) {
    QdqLoop<C, kClamp, kHalfUp>(
        d, pa, t, l.blocks * l.threads, [&](int64_t i) { return x.at(i); },
        [&](int64_t i, C v) {
          out.at(i) = v;
          ++written.at(i);
        });
  }
  for (size_t i = 0; i < x.size(); ++i) {
    Expect<C>(written[i] == 1, "each element written once", d, i, written[i], 1);
  }
  return out;
}

template <typename C>
std::vector<C> EmulateGrad(const std::vector<C>& g, const std::vector<C>& x,
                           const Dims& d, const ParamsArg<C>& pa,
                           const Launch& l) {
  std::vector<C> out(x.size(), std::numeric_limits<C>::quiet_NaN());
  std::vector<int> written(x.size(), 0);
  for (int64_t t = 0; t < l.blocks * l.threads; ++t) {
    GradLoop<C>(
        d, pa, t, l.blocks * l.threads, [&](int64_t i) { return g.at(i); },
        [&](int64_t i) { return x.at(i); },
        [&](int64_t i, C v) {
          out.at(i) = v;
          ++written.at(i);
        });
  }
  for (size_t i = 0; i < x.size(); ++i) {
    Expect<C>(written[i] == 1, "grad element written once", d, i, written[i], 1);
  }
  return out;
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
  if (kind == 2) {  // specials
    if (r < 5) return std::numeric_limits<C>::quiet_NaN();
    if (r < 7) return std::numeric_limits<C>::infinity();
    if (r < 9) return -std::numeric_limits<C>::infinity();
    if (r < 12) return -C(0);
  }
  if (kind == 3 && r < 97) return std::numeric_limits<C>::quiet_NaN();  // mostly NaN
  return static_cast<C>(u(rng));
}

template <typename C>
void RunCase(std::mt19937_64& rng, const Dims& d, int kind, bool small_grids) {
  const int64_t n = d.outer * d.depth * d.inner;
  std::vector<C> x(n);
  for (auto& v : x) v = Draw<C>(rng, kind);
  const C qmin = C(-127), qmax = C(127);  // signed 8 bit narrow

  // Range from data, with the launch geometry of qdq_gpu.cu.cc and with
  // deliberately small grids (more grid-stride iterations, several windows).
  std::vector<C> mn, mx;
  ReferenceRange(x, d, &mn, &mx);
  std::vector<Params<C>> want(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) want[c] = ComputeParams(mn[c], mx[c], qmin, qmax);
  std::vector<RangeGeometry> geos = {MakeRangeGeometry(d)};
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
  for (const RangeGeometry& g : geos) {
    const std::vector<Params<C>> got = EmulateDataRange(x, d, g, qmin, qmax);
    for (int64_t c = 0; c < d.depth; ++c) {
      Expect(SameBits(got[c].scale, want[c].scale), "scale", d, c, got[c].scale, want[c].scale);
      Expect(SameBits(got[c].inv, want[c].inv), "inv", d, c, got[c].inv, want[c].inv);
      Expect(SameBits(got[c].lo, want[c].lo), "lo", d, c, got[c].lo, want[c].lo);
      Expect(SameBits(got[c].hi, want[c].hi), "hi", d, c, got[c].hi, want[c].hi);
    }
  }

  // Elementwise, per channel from a device array and (depth 1) by value.
  std::vector<Launch> launches = {{ElementwiseBlocks(n), kThreads}};
  if (small_grids) launches.push_back({3, 32});
  std::vector<Params<C>> given(d.depth);
  for (int64_t c = 0; c < d.depth; ++c) {
    given[c] = ComputeParams(C(-1) - C(c % 3), C(0.75) + C(c % 5), qmin, qmax);
  }
  for (const Launch& l : launches) {
    for (int mode = 0; mode < 4; ++mode) {
      const bool clamp = mode & 1;
      const std::vector<Params<C>>& ps = clamp ? given : want;
      ParamsArg<C> pa{ps.data(), Params<C>{}};
      if (d.depth == 1 && (mode & 1)) pa = ParamsArg<C>{nullptr, ps[0]};
      std::vector<C> got;
      if (mode == 0) got = EmulateQdq<C, false, false>(x, d, pa, l);
      if (mode == 1) got = EmulateQdq<C, true, false>(x, d, pa, l);
      if (mode == 2) got = EmulateQdq<C, false, true>(x, d, pa, l);
      if (mode == 3) got = EmulateQdq<C, true, true>(x, d, pa, l);
      for (int64_t i = 0; i < n; ++i) {
        const Params<C>& p = ps[(i / d.inner) % d.depth];
        C w;
        if (mode == 0) w = tf_qdq::QuantizeDequantize<C, false, false>(x[i], p.lo, p.hi, p.scale, p.inv);
        if (mode == 1) w = tf_qdq::QuantizeDequantize<C, true, false>(x[i], p.lo, p.hi, p.scale, p.inv);
        if (mode == 2) w = tf_qdq::QuantizeDequantize<C, false, true>(x[i], p.lo, p.hi, p.scale, p.inv);
        if (mode == 3) w = tf_qdq::QuantizeDequantize<C, true, true>(x[i], p.lo, p.hi, p.scale, p.inv);
        Expect(SameBits(got[i], w), "qdq", d, i, got[i], w);
      }
    }
    // Gradient with raw per-channel bounds.
    std::vector<C> g(n);
    for (auto& v : g) v = Draw<C>(rng, 2);
    std::vector<Params<C>> bounds(d.depth);
    for (int64_t c = 0; c < d.depth; ++c) {
      bounds[c] = Params<C>{};
      bounds[c].lo = C(-1) - C(c % 2);
      bounds[c].hi = C(0.5) + C(c % 4);
    }
    ParamsArg<C> pa{bounds.data(), Params<C>{}};
    if (d.depth == 1) pa = ParamsArg<C>{nullptr, bounds[0]};
    const std::vector<C> got = EmulateGrad(g, x, d, pa, l);
    for (int64_t i = 0; i < n; ++i) {
      const Params<C>& p = bounds[(i / d.inner) % d.depth];
      const C w = tf_qdq::MaskedGradient(g[i], x[i], p.lo, p.hi);
      Expect(SameBits(got[i], w), "grad", d, i, got[i], w);
    }
  }
}

template <typename C>
void CheckKeys() {
  const C inf = std::numeric_limits<C>::infinity();
  const C den = std::numeric_limits<C>::denorm_min();
  const C ordered[] = {-inf, -std::numeric_limits<C>::max(), C(-1), -den, -C(0), C(0),
                       den, C(1), std::numeric_limits<C>::max(), inf};
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

template <typename C>
void RunAll(std::mt19937_64& rng) {
  CheckKeys<C>();
  const Dims shapes[] = {
      {1, 1, 1},      {1, 1, 7},     {1, 1, 5000},   {1, 1, 70000},  // per tensor
      {3, 1, 11},     {1, 5, 1},     {7, 5, 1},      {1, 3, 300},    // per channel
      {4, 3, 300},    {2, 6, 9},     {1, 2049, 1},   {3, 2050, 2},   // windows
      {5, 4097, 1},   {1000, 2, 1},  {2, 17, 33},    {1, 1, 1025},
  };
  for (const Dims& d : shapes) {
    for (int kind = 0; kind < 4; ++kind) {
      const bool small = d.outer * d.depth * d.inner <= 40000;
      RunCase<C>(rng, d, kind, small);
    }
  }
  std::uniform_int_distribution<int64_t> dim(1, 9);
  for (int r = 0; r < 60; ++r) {
    RunCase<C>(rng, Dims{dim(rng), dim(rng), dim(rng)}, r % 4, true);
  }
}

}  // namespace

int main() {
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
