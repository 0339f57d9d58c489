// The vectorized CPU inner loops (see qdq_cpu_table.h). Included once by each
// qdq_cpu_<isa>.cc, which first defines
//   TF_QDQ_ISA_NAMESPACE  the namespace of its code (N_SSE2, ...; qdq_math.h)
//   TF_QDQ_ISA_NAME       the table's name ("sse2", ...)
//   TF_QDQ_VEC_BYTES      the vector width in bytes (16, 32, 64)
//   TF_QDQ_TABLE_FN       the table accessor to define (LoopsSse2, ...)
// and is compiled with that instruction set's -m flags and
// -fno-trapping-math (which lets the vectorizer turn the selects of
// qdq_math.h into blends; it does not change any result).
//
// The parts, each included here once per instruction set:
//   qdq_cpu_convert.h   scalar half / bfloat16 <-> float conversions
//   qdq_cpu_vector.h    vector primitives (arithmetic, converting loads and
//                       stores, non-temporal stores)
//   qdq_cpu_storage.h   per element type: storage and compute types and the
//                       conversions between them
//   qdq_cpu_loops_common.h  what the loops share (LoopsCommon<Storage>)
//   qdq_cpu_range.h     the min/max loops (RangeLoops<Storage>)
//   qdq_cpu_elementwise.h   QDQ and gradient loops, output writing
//                       (ElementwiseLoops<Storage>)
//   this file           the table
//
// Most loops are plain scalar code over qdq_math.h that GCC vectorizes at -O3
// (check with TF_QDQ_CXXFLAGS=-fopt-info-vec-optimized at build time); a few
// are explicit vectors where compilers do poorly: the NaN-ignoring min/max
// reduction, and the half and bfloat16 loops with F16C, which convert in
// registers instead of through an L1 buffer. Half and bfloat16 range passes
// and per-tensor V4Grad need no floats at all: they work on integer keys of
// the 16-bit patterns, in every table (on AVX2 ranges of 512 elements and
// more). Either way every element goes
// through the same IEEE operations in the same order whatever the vector
// width (separate multiplies and adds, no FMA), and integer work is exact,
// so all tables give identical bits. The math of qdq_math.h and the loops
// live in tf_qdq::TF_QDQ_ISA_NAMESPACE (the loops also in an anonymous
// namespace there), so no inline function compiled for a wider instruction
// set can be picked by the linker for another translation unit; only the
// table accessor, tf_qdq::cpu::TF_QDQ_TABLE_FN, is shared.
#ifndef TF_QDQ_KERNELS_QDQ_CPU_LOOPS_H_
#define TF_QDQ_KERNELS_QDQ_CPU_LOOPS_H_

#if !defined(TF_QDQ_ISA_NAMESPACE) || !defined(TF_QDQ_ISA_NAME) || !defined(TF_QDQ_VEC_BYTES) || \
    !defined(TF_QDQ_TABLE_FN)
#error "define TF_QDQ_ISA_NAMESPACE, TF_QDQ_ISA_NAME, TF_QDQ_VEC_BYTES and TF_QDQ_TABLE_FN first"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/qdq_cpu_elementwise.h"
#include "kernels/qdq_cpu_range.h"
#include "kernels/qdq_cpu_table.h"
#include "kernels/qdq_math.h"

namespace tf_qdq {
inline namespace TF_QDQ_ISA_NAMESPACE {
namespace {

using cpu::LoopTable;
using cpu::TypedLoops;

template <typename Storage>
TypedLoops<typename Storage::S, typename Storage::C> MakeTyped() {
  using Range = RangeLoops<Storage>;
  using Elementwise = ElementwiseLoops<Storage>;
  TypedLoops<typename Storage::S, typename Storage::C> t;
  t.range = &Range::Range;
  t.range_cols = &Range::RangeCols;
  t.qdq[0][0] = &Elementwise::template Qdq<false, false>;
  t.qdq[0][1] = &Elementwise::template Qdq<false, true>;
  t.qdq[1][0] = &Elementwise::template Qdq<true, false>;
  t.qdq[1][1] = &Elementwise::template Qdq<true, true>;
  t.qdq_cols[0][0] = &Elementwise::template QdqCols<false, false>;
  t.qdq_cols[0][1] = &Elementwise::template QdqCols<false, true>;
  t.qdq_cols[1][0] = &Elementwise::template QdqCols<true, false>;
  t.qdq_cols[1][1] = &Elementwise::template QdqCols<true, true>;
  t.grad = &Elementwise::Grad;
  t.grad_cols = &Elementwise::GradCols;
  t.passes_unbounded = &Elementwise::PassesUnbounded;
  return t;
}

LoopTable MakeTable() {
  LoopTable t;
  t.isa = TF_QDQ_ISA_NAME;
  t.f32 = MakeTyped<StorageFloat>();
  t.f64 = MakeTyped<StorageDouble>();
  t.f16 = MakeTyped<StorageHalf>();
  t.bf16 = MakeTyped<StorageBf16>();
  return t;
}

}  // namespace
}  // namespace TF_QDQ_ISA_NAMESPACE

namespace cpu {

const LoopTable& TF_QDQ_TABLE_FN() {
  static const LoopTable table = TF_QDQ_ISA_NAMESPACE::MakeTable();
  return table;
}

}  // namespace cpu
}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_CPU_LOOPS_H_
