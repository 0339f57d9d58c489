// XLA kernels of the TfQdq>QuantizeAndDequantize* family (docs/xla.md): the
// same arithmetic as qdq_math.h, written as XLA HLO so that the ops compile
// under tf.function(jit_compile=True) and Keras jit_compile, and fuse with
// their neighbours. Registered for XLA_CPU_JIT and XLA_GPU_JIT by
// qdq_xla_register.cc.
//
// Bit-exactness with the CPU kernels (docs/xla.md#what-is-bit-exact):
// - half and bfloat16 are widened to float (exact), computed in float and
//   rounded once at the end; double computes in double;
// - the data range ignores NaN and follows the kernels' sign-of-zero rule by
//   reducing order-preserving integer keys of the values (-0.0 < +0.0 as
//   keys), so the reduction is an exact integer max/min in any order;
// - the clamp, scale selection and HALF_UP rounding are the same IEEE
//   operations in the same order; the product y*scale is kept out of reach of
//   multiply-add contraction (see HalfUp below);
// - on XLA_CPU, subnormals are flushed as TensorFlow's CPU threads do.
//
// Validation runs at compile time through the kernels' own checks
// (qdq_validate.h), so the messages are theirs: attributes, shapes, and the
// values of a given range when it is a compile-time constant (a range that is
// only known at run time is not checked, see docs/xla.md).
#include "kernels/qdq_xla.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/qdq_math.h"
#include "kernels/qdq_op_table.h"
#include "kernels/qdq_validate.h"
#include "tensorflow/compiler/tf2xla/xla_op_kernel.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
// The XLA builder lives in xla/hlo/builder/ in newer TensorFlow versions
// (2.21), in xla/client/ in older ones (2.16).
#if __has_include("xla/hlo/builder/xla_builder.h")
#include "xla/hlo/builder/lib/arithmetic.h"
#include "xla/hlo/builder/lib/constants.h"
#include "xla/hlo/builder/lib/math.h"
#include "xla/hlo/builder/xla_builder.h"
#include "xla/hlo/builder/xla_computation.h"
#else
#include "xla/client/lib/arithmetic.h"
#include "xla/client/lib/constants.h"
#include "xla/client/lib/math.h"
#include "xla/client/xla_builder.h"
#include "xla/client/xla_computation.h"
#endif
#include "xla/shape_util.h"

namespace tf_qdq {
namespace {

using ::tensorflow::DataType;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::XlaOpKernel;
using ::tensorflow::XlaOpKernelContext;

// Compute type of a storage type: F64 for double, F32 otherwise.
xla::PrimitiveType ComputeXlaType(DataType dt) {
  return dt == tensorflow::DT_DOUBLE ? xla::F64 : xla::F32;
}

// The quantization graph of one op instance, built around the input's shape.
class Builder {
 public:
  // flush: emulate the flushing of subnormals (denormals-are-zero on inputs,
  // flush-to-zero on results) under which TensorFlow runs the CPU kernels:
  // its threads set both, while XLA's CPU code keeps subnormals.
  // b: the builder to emit into (a sub-computation's), the op's by default.
  Builder(XlaOpKernelContext* ctx, int64_t axis, DataType dt, bool flush,
          xla::XlaBuilder* b = nullptr)
      : ctx_(ctx),
        b_(b != nullptr ? b : ctx->builder()),
        axis_(axis),
        dt_(dt),
        c_(ComputeXlaType(dt)),
        flush_(flush) {
    const TensorShape shape = ctx->InputShape(0);
    for (int d = 0; d < shape.dims(); ++d) dims_.push_back(shape.dim_size(d));
  }

  xla::XlaOp Scalar(double v) { return xla::ConstantR0WithType(b_, c_, v); }

  xla::XlaOp ToCompute(xla::XlaOp x) {
    return dt_ == tensorflow::DT_FLOAT || dt_ == tensorflow::DT_DOUBLE
               ? x
               : xla::ConvertElementType(x, c_);
  }
  xla::XlaOp ToStorage(xla::XlaOp x) {
    return dt_ == tensorflow::DT_FLOAT || dt_ == tensorflow::DT_DOUBLE
               ? x
               : xla::ConvertElementType(x, ctx_->input_xla_type(0));
  }

  // qmin and qmax as divisors, 1 and 0 of the compute type, kept from XLA's
  // algebraic simplifier by an optimization barrier (which XLA removes after
  // simplification): it rewrites a division by a constant into a
  // multiplication by its reciprocal (m / 127 != m * (1 / 127)), and a
  // product with a converted predicate into a select (which drops the NaN of
  // inf * 0 and the sign of -g * 0 that the kernels' product has).
  struct Opaque {
    xla::XlaOp qmin, qmax, one, zero;
  };
  Opaque Opaques(double qmin, double qmax) {
    xla::XlaOp t = xla::OptimizationBarrier(
        xla::Tuple(b_, {Scalar(qmin), Scalar(qmax), Scalar(1.0), Scalar(0.0)}));
    return {xla::GetTupleElement(t, 0), xla::GetTupleElement(t, 1), xla::GetTupleElement(t, 2),
            xla::GetTupleElement(t, 3)};
  }

  // Smallest normal value of the compute type.
  double MinNormal() const {
    return c_ == xla::F64 ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
  }

  // A subnormal compute value becomes a zero of its sign (when flushing).
  xla::XlaOp Flush(xla::XlaOp v) {
    if (!flush_) return v;
    const double min_normal = MinNormal();
    return xla::Select(xla::Lt(xla::Abs(v), Scalar(min_normal)), xla::Mul(v, Scalar(0.0)), v);
  }

  // A per-tensor scalar or per-channel vector, broadcast to the input shape.
  xla::XlaOp Expand(xla::XlaOp p) {
    if (axis_ == -1) return xla::Broadcast(p, dims_);
    return xla::BroadcastInDim(p, dims_, {axis_});
  }

  // Dimensions reduced to get a per-tensor / per-channel value.
  std::vector<int64_t> ReducedDims() const {
    std::vector<int64_t> r;
    for (int64_t d = 0; d < static_cast<int64_t>(dims_.size()); ++d) {
      if (d != axis_) r.push_back(d);
    }
    return r;
  }

  // Order-preserving integer key of a compute value and its inverse (the
  // same map: an involution). Negative values have their magnitude bits
  // flipped, so keys order as the values, with -0.0 (key -1) just below
  // +0.0 (key 0).
  xla::PrimitiveType KeyType() const { return c_ == xla::F64 ? xla::S64 : xla::S32; }
  int KeyBits() const { return c_ == xla::F64 ? 64 : 32; }
  xla::XlaOp FlipNegative(xla::XlaOp k) {
    const int bits = KeyBits();
    xla::XlaOp sign =
        xla::ShiftRightArithmetic(k, xla::ConstantR0WithType(b_, KeyType(), bits - 1));
    xla::XlaOp magnitude_mask = xla::ConstantR0WithType(
        b_, KeyType(),
        bits == 64 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int32_t>::max());
    return xla::Xor(k, xla::And(sign, magnitude_mask));
  }
  xla::XlaOp ToKey(xla::XlaOp v) { return FlipNegative(xla::BitcastConvertType(v, KeyType())); }
  xla::XlaOp FromKey(xla::XlaOp k) { return xla::BitcastConvertType(FlipNegative(k), c_); }

  // NaN-ignoring data range (docs/semantics.md#diff-nan-in-data) with the
  // kernels' zero signs: max is +0.0 where the channel holds
  // a +0.0, else -0.0; min is -0.0 where it holds a -0.0, else +0.0. An
  // all-NaN channel gives min = +inf, max = -inf, as the kernels'
  // accumulators.
  void DataRange(xla::XlaOp x, xla::XlaOp* mn, xla::XlaOp* mx) {
    const double inf = std::numeric_limits<double>::infinity();
    xla::XlaOp is_nan = xla::Ne(x, x);
    xla::XlaOp for_min = xla::Select(is_nan, Expand1(Scalar(inf)), x);
    xla::XlaOp for_max = xla::Select(is_nan, Expand1(Scalar(-inf)), x);
    const xla::PrimitiveType kt = KeyType();
    xla::XlaOp init_min = ToKey(Scalar(inf));
    xla::XlaOp init_max = ToKey(Scalar(-inf));
    const std::vector<int64_t> reduced = ReducedDims();
    *mn = FromKey(
        xla::Reduce(ToKey(for_min), init_min, xla::CreateScalarMinComputation(kt, b_), reduced));
    *mx = FromKey(
        xla::Reduce(ToKey(for_max), init_max, xla::CreateScalarMaxComputation(kt, b_), reduced));
  }

  // The reducer min(a, b) = (a < b or b is NaN) ? a : b (max: a > b) of
  // type t: NaN never wins over a number.
  absl::StatusOr<xla::XlaComputation> NanSkipping(xla::PrimitiveType t, bool max) {
    std::unique_ptr<xla::XlaBuilder> rb =
        b_->CreateSubBuilder(max ? "qdq_max_skip_nan" : "qdq_min_skip_nan");
    const xla::Shape scalar = xla::ShapeUtil::MakeShape(t, {});
    xla::XlaOp a = xla::Parameter(rb.get(), 0, scalar, "a");
    xla::XlaOp b = xla::Parameter(rb.get(), 1, scalar, "b");
    xla::Select(xla::Or(max ? xla::Gt(a, b) : xla::Lt(a, b), xla::Ne(b, b)), a, b);
    return rb->Build();
  }

  // The data range of the op's input `raw` (storage type), with DataRange's
  // results, in as few passes over the input as TensorFlow's own op makes.
  //
  // Fast path: one min and one max reduction over the raw input, which XLA
  // fuses with the input read as it does the built-in op's. Their reducers
  // skip NaN: min(a, b) = (a < b or b is NaN) ? a : b, max alike. (XLA's own
  // min/max are no use here: TensorFlow compiles them to the x86 instructions,
  // which drop NaN in an order-dependent way and lose the values before it.)
  // With ±inf as initial values the results are never NaN, and where they
  // are normal or infinite they are exact: min and max of non-zero values are
  // unique, and widening to the compute type and flushing subnormals are
  // monotonic (in the order where -0.0 < +0.0), so they commute with the
  // reduction: flushing a subnormal result gives the exact one. Only an
  // exact zero result is unsure, its sign being the reduction's choice:
  // - a zero max: its sign reaches the output (through max / qmax);
  // - a zero min: its sign reaches the output only where the scale from the
  //   max, qmax / max, overflows to +inf (Quantize then takes the scale from
  //   the min: -0.0 / qmin and +0.0 / qmin differ in sign); elsewhere Quantize
  //   does not use the min (qmin * min > 0 is false for both zeros), so data
  //   with a zero min and a positive max (ReLU outputs) stay on the fast path.
  // Where some channel is unsure, a conditional runs the exact reduction
  // (DataRange) over the whole input instead. qmax: Quantize's, as a compute
  // value.
  void FastDataRange(xla::XlaOp raw, double qmax, xla::XlaOp* mn, xla::XlaOp* mx) {
    const double inf = std::numeric_limits<double>::infinity();
    const xla::PrimitiveType st = ctx_->input_xla_type(0);
    const std::vector<int64_t> reduced = ReducedDims();
    absl::StatusOr<xla::XlaComputation> min_nan = NanSkipping(st, /*max=*/false);
    absl::StatusOr<xla::XlaComputation> max_nan = NanSkipping(st, /*max=*/true);
    if (!min_nan.ok() || !max_nan.ok()) {
      b_->ReportError(!min_nan.ok() ? min_nan.status() : max_nan.status());
      return;
    }
    xla::XlaOp lo =
        ToCompute(xla::Reduce(raw, xla::ConstantR0WithType(b_, st, inf), *min_nan, reduced));
    xla::XlaOp hi =
        ToCompute(xla::Reduce(raw, xla::ConstantR0WithType(b_, st, -inf), *max_nan, reduced));
    const xla::XlaOp zero = Scalar(0.0);
    const xla::XlaOp max_scale = xla::Div(Scalar(qmax), Flush(hi));
    const xla::XlaOp max_scale_overflows =
        xla::And(xla::Gt(xla::Mul(Scalar(qmax), Flush(hi)), zero), xla::Eq(max_scale, Scalar(inf)));
    xla::XlaOp any_unsure =
        xla::Any(xla::Or(xla::Eq(hi, zero), xla::And(xla::Eq(lo, zero), max_scale_overflows)));

    // The exact branch: DataRange over the (widened, flushed) input.
    std::unique_ptr<xla::XlaBuilder> eb = b_->CreateSubBuilder("qdq_exact_range");
    absl::StatusOr<xla::Shape> raw_shape = b_->GetShape(raw);
    if (!raw_shape.ok()) {
      b_->ReportError(raw_shape.status());
      return;
    }
    {
      Builder e(ctx_, axis_, dt_, flush_, eb.get());
      xla::XlaOp p = xla::Parameter(eb.get(), 0, *raw_shape, "input");
      xla::XlaOp emn, emx;
      e.DataRange(e.Flush(e.ToCompute(p)), &emn, &emx);
      xla::Tuple(eb.get(), {emn, emx});
    }
    absl::StatusOr<xla::XlaComputation> exact = eb->Build();
    // The fast branch: passes the reductions' results through.
    xla::XlaOp pair = xla::Tuple(b_, {Flush(lo), Flush(hi)});
    absl::StatusOr<xla::Shape> pair_shape = b_->GetShape(pair);
    if (!exact.ok() || !pair_shape.ok()) {
      b_->ReportError(!exact.ok() ? exact.status() : pair_shape.status());
      return;
    }
    std::unique_ptr<xla::XlaBuilder> fb = b_->CreateSubBuilder("qdq_fast_range");
    xla::Parameter(fb.get(), 0, *pair_shape, "range");
    absl::StatusOr<xla::XlaComputation> fast = fb->Build();
    if (!fast.ok()) {
      b_->ReportError(fast.status());
      return;
    }
    xla::XlaOp range = xla::Conditional(any_unsure, raw, *exact, pair, *fast);
    *mn = xla::GetTupleElement(range, 0);
    *mx = xla::GetTupleElement(range, 1);
  }

  // A scalar broadcast to the full input shape.
  xla::XlaOp Expand1(xla::XlaOp s) { return xla::Broadcast(s, dims_); }

  // docs/semantics.md#arithmetic, steps 3-6 (qdq_math.h: ComputeParams,
  // QuantizeDequantize) on compute values.
  xla::XlaOp Quantize(xla::XlaOp x, xla::XlaOp mn, xla::XlaOp mx, int64_t qmin_i, int64_t qmax_i,
                      bool clamp, bool half_up) {
    // The integer range converted in C++ (int64 -> compute type, nearest;
    // a float value is exact in double).
    const double qmin_c = c_ == xla::F64 ? static_cast<double>(qmin_i) : static_cast<float>(qmin_i);
    const double qmax_c = c_ == xla::F64 ? static_cast<double>(qmax_i) : static_cast<float>(qmax_i);
    xla::XlaOp qmin = Scalar(qmin_c), qmax = Scalar(qmax_c);
    const double max_value =
        c_ == xla::F64 ? std::numeric_limits<double>::max() : std::numeric_limits<float>::max();
    const Opaque opaque = Opaques(qmin_c, qmax_c);
    xla::XlaOp zero = xla::ZerosLike(mn);
    xla::XlaOp big = xla::Add(zero, Scalar(max_value));
    xla::XlaOp s_min = xla::Select(xla::Gt(xla::Mul(qmin, mn), zero), xla::Div(qmin, mn), big);
    xla::XlaOp s_max = xla::Select(xla::Gt(xla::Mul(qmax, mx), zero), xla::Div(qmax, mx), big);
    s_min = Flush(s_min);
    s_max = Flush(s_max);
    xla::XlaOp use_min = xla::Lt(s_min, s_max);
    xla::XlaOp scale = xla::Select(use_min, s_min, s_max);
    xla::XlaOp inv =
        xla::Select(use_min, Flush(xla::Div(mn, opaque.qmin)), Flush(xla::Div(mx, opaque.qmax)));
    xla::XlaOp lo = xla::Select(use_min, mn, Flush(xla::Mul(qmin, inv)));
    xla::XlaOp hi = xla::Select(use_min, Flush(xla::Mul(qmax, inv)), mx);
    // The parameters are computed once per channel, not per element: XLA
    // fuses cheap per-channel operations into the elementwise loop through
    // the broadcasts, recomputing them for every element, but keeps an
    // expensive producer (a division) out. v / 1 is v, bit for bit (the 1 is
    // opaque to the simplifier).
    scale = xla::Div(scale, opaque.one);
    inv = xla::Div(inv, opaque.one);
    if (clamp) {
      lo = xla::Div(lo, opaque.one);
      hi = xla::Div(hi, opaque.one);
    }

    xla::XlaOp y = x;
    if (clamp) {
      xla::XlaOp lo_b = Expand(lo), hi_b = Expand(hi);
      y = xla::Select(xla::Lt(hi_b, y), hi_b, y);  // NaN input stays, NaN bound ignored
      y = xla::Select(xla::Lt(y, lo_b), lo_b, y);
    }
    xla::XlaOp v = xla::Mul(y, Expand(scale));
    xla::XlaOp r;
    if (half_up) {
      r = HalfUp(v);
    } else {
      r = xla::RoundNearestEven(v);
    }
    // No flush needed on the output: r is an integer and inv is zero or at
    // least the smallest normal (flushed above), so r * inv is never subnormal.
    return xla::Mul(r, Expand(inv));
  }

  // floor(v + 0.5) with the sum rounded, the product v out of reach of
  // multiply-add contraction: XLA CPU lets LLVM fuse a multiply feeding an add
  // into one FMA (which skips the rounding of v), and LLVM's x86 backend does
  // so only for a product with a single use. Here v has three: the select
  // keeps floor(v + 0.5) where |v| < 2^24 (2^53 for double) and v itself
  // above, where both are equal (v is an even integer and v + 0.5 rounds to
  // v; inf and NaN pass through either way).
  xla::XlaOp HalfUp(xla::XlaOp v) {
    const double big = c_ == xla::F64 ? 9007199254740992.0 : 16777216.0;
    xla::XlaOp rounded = xla::Floor(xla::Add(v, Expand1(Scalar(0.5))));
    return xla::Select(xla::Lt(v, Expand1(Scalar(big))), rounded, v);
  }

 private:
  XlaOpKernelContext* ctx_;
  xla::XlaBuilder* b_;
  int64_t axis_;
  DataType dt_;
  xla::PrimitiveType c_;
  bool flush_;
  std::vector<int64_t> dims_;
};

// The values of a given range whose shapes have passed, when both bounds are
// compile-time constants; a range known only at run time is not checked.
tensorflow::Status ValidateConstantRange(XlaOpKernelContext* ctx, int64_t axis) {
  const std::optional<Tensor> lo = ctx->InputExpression(1).constant_value();
  const std::optional<Tensor> hi = ctx->InputExpression(2).constant_value();
  if (!lo.has_value() || !hi.has_value()) return tensorflow::Status();
  return ValidateGivenRangeValues(axis, *lo, *hi);
}

// True on XLA_CPU_JIT: the CPU kernels run on TensorFlow's threads, which
// flush subnormals; the plugin's CUDA kernels keep them.
bool FlushesSubnormals(OpKernelConstruction* ctx) {
  return ctx->device_type() == tensorflow::DeviceType(tensorflow::DEVICE_CPU_XLA_JIT);
}

// Builds the forward graph of V1-V4 once validation has passed (num_bits:
// the attribute's, or V3's constant input).
void EmitForward(XlaOpKernelContext* ctx, bool flush, const QdqAttrs& attrs, int64_t num_bits,
                 xla::XlaOp mn_in, xla::XlaOp mx_in) {
  const DataType dt = ctx->input_type(0);
  Builder b(ctx, attrs.axis, dt, flush);
  int64_t qmin, qmax;
  IntegerRange(static_cast<int>(num_bits), attrs.signed_input, attrs.narrow_range, &qmin, &qmax);
  xla::XlaOp x = b.Flush(b.ToCompute(ctx->Input(0)));
  xla::XlaOp mn, mx;
  if (attrs.range_given) {
    mn = b.Flush(b.ToCompute(mn_in));
    mx = b.Flush(b.ToCompute(mx_in));
  } else {
    // qmax as Quantize converts it (int64 -> compute type, nearest).
    const double qmax_c =
        dt == tensorflow::DT_DOUBLE ? static_cast<double>(qmax) : static_cast<float>(qmax);
    b.FastDataRange(ctx->Input(0), qmax_c, &mn, &mx);
  }
  ctx->SetOutput(0,
                 b.ToStorage(b.Quantize(x, mn, mx, qmin, qmax, attrs.range_given, attrs.half_up)));
}

// What every XLA kernel of the family starts from: its attributes, read and
// checked at construction as the OpKernels do (ReadAttrs), and whether the
// device flushes subnormals.
class QdqXlaOpBase : public XlaOpKernel {
 public:
  explicit QdqXlaOpBase(OpKernelConstruction* ctx)
      : XlaOpKernel(ctx), flush_(FlushesSubnormals(ctx)) {
    OP_REQUIRES_OK(ctx, ReadAttrs(ctx, &attrs_));
  }

 protected:
  bool flush_;
  QdqAttrs attrs_;
};

// V1: the range comes from float attrs, rounding is HALF_TO_EVEN.
class QdqV1XlaOp : public QdqXlaOpBase {
 public:
  using QdqXlaOpBase::QdqXlaOpBase;

  void Compile(XlaOpKernelContext* ctx) override {
    // The attrs are floats; the CPU kernel converts them to T first, then to
    // the compute type.
    const xla::PrimitiveType t = ctx->input_xla_type(0);
    xla::XlaBuilder* b = ctx->builder();
    xla::XlaOp mn = xla::ConvertElementType(xla::ConstantR0<float>(b, attrs_.input_min), t);
    xla::XlaOp mx = xla::ConvertElementType(xla::ConstantR0<float>(b, attrs_.input_max), t);
    EmitForward(ctx, flush_, attrs_, attrs_.num_bits, mn, mx);
  }
};

// V2 and V4 (same forward).
class QdqV2XlaOp : public QdqXlaOpBase {
 public:
  using QdqXlaOpBase::QdqXlaOpBase;

  void Compile(XlaOpKernelContext* ctx) override {
    const int64_t axis = attrs_.axis;
    OP_REQUIRES_OK(ctx, ValidateV2Shapes(axis, ctx->InputShape(0), attrs_.range_given,
                                         ctx->InputShape(1), ctx->InputShape(2)));
    if (attrs_.range_given) {
      OP_REQUIRES_OK(ctx, ValidateConstantRange(ctx, axis));
    }
    EmitForward(ctx, flush_, attrs_, attrs_.num_bits, ctx->Input(1), ctx->Input(2));
  }
};

// V3: num_bits is a compile-time constant int32 input, rounding HALF_TO_EVEN.
class QdqV3XlaOp : public QdqXlaOpBase {
 public:
  using QdqXlaOpBase::QdqXlaOpBase;

  void Compile(XlaOpKernelContext* ctx) override {
    const TensorShape shape = ctx->InputShape(0);
    const int64_t axis = attrs_.axis;
    OP_REQUIRES_OK(ctx, ValidateV3Shapes(axis, shape, ctx->InputShape(3)));
    int64_t num_bits = 0;
    OP_REQUIRES_OK(ctx, ctx->ConstantInputAsIntScalar(3, &num_bits));
    OP_REQUIRES_OK(ctx, ValidateV3NumBits(num_bits, attrs_.signed_input));
    if (attrs_.range_given) {
      OP_REQUIRES_OK(ctx,
                     ValidateGivenRangeShapes(axis, shape, ctx->InputShape(1), ctx->InputShape(2)));
      OP_REQUIRES_OK(ctx, ValidateConstantRange(ctx, axis));
    }
    EmitForward(ctx, flush_, attrs_, num_bits, ctx->Input(1), ctx->Input(2));
  }
};

class QdqV4GradXlaOp : public QdqXlaOpBase {
 public:
  using QdqXlaOpBase::QdqXlaOpBase;

  void Compile(XlaOpKernelContext* ctx) override {
    const TensorShape gshape = ctx->InputShape(0);
    const TensorShape shape = ctx->InputShape(1);
    const TensorShape mn = ctx->InputShape(2);
    const TensorShape mx = ctx->InputShape(3);
    const int64_t axis = attrs_.axis;
    OP_REQUIRES_OK(ctx, ValidateV4GradShapes(axis, gshape, shape, mn, mx));
    const DataType dt = ctx->input_type(0);
    Builder b(ctx, axis, dt, flush_);
    xla::XlaOp g = b.Flush(b.ToCompute(ctx->Input(0)));
    xla::XlaOp x = b.Flush(b.ToCompute(ctx->Input(1)));
    xla::XlaOp lo = b.Expand(b.Flush(b.ToCompute(ctx->Input(2))));
    xla::XlaOp hi = b.Expand(b.Flush(b.ToCompute(ctx->Input(3))));
    xla::XlaOp inside = xla::And(xla::Ge(x, lo), xla::Le(x, hi));
    // A product, as the kernels: inf or NaN gradients at masked positions
    // give NaN.
    const Builder::Opaque opaque = b.Opaques(0.0, 0.0);
    xla::XlaOp mask = xla::Select(inside, b.Expand1(opaque.one), b.Expand1(opaque.zero));
    ctx->SetOutput(0, b.ToStorage(xla::Mul(g, mask)));
    const xla::PrimitiveType t = ctx->input_xla_type(0);
    xla::XlaBuilder* xb = ctx->builder();
    const auto mn_sizes = mn.dim_sizes();
    const auto mx_sizes = mx.dim_sizes();
    const std::vector<int64_t> mn_dims(mn_sizes.begin(), mn_sizes.end());
    const std::vector<int64_t> mx_dims(mx_sizes.begin(), mx_sizes.end());
    ctx->SetOutput(1, xla::Broadcast(xla::Zero(xb, t), mn_dims));
    ctx->SetOutput(2, xla::Broadcast(xla::Zero(xb, t), mx_dims));
  }
};

template <typename K>
tensorflow::OpKernel* MakeXlaKernel(OpKernelConstruction* ctx) {
  return new K(ctx);
}

}  // namespace

XlaKernelFactory GetXlaKernelFactory(OpKind kind) {
  switch (kind) {
#define TF_QDQ_XLA_FACTORY(kind, impl) \
  case OpKind::kind:                   \
    return &MakeXlaKernel<Qdq##impl##XlaOp>;
    TF_QDQ_FOR_EACH_OP(TF_QDQ_XLA_FACTORY)
#undef TF_QDQ_XLA_FACTORY
  }
  return nullptr;
}

}  // namespace tf_qdq
