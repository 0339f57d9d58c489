// The op table of the TfQdq>QuantizeAndDequantize* family: the one place in
// C++ that names the ops. It drives the op registrations (qdq_ops.cc), the
// CPU and GPU kernel registrations (qdq_kernels.cc), the XLA kernel
// registrations (qdq_xla_register.cc) and the attribute reading and checks
// (QdqAttrs in qdq_validate.h).
//
// Uses no TensorFlow types.
#ifndef TF_QDQ_KERNELS_QDQ_OP_TABLE_H_
#define TF_QDQ_KERNELS_QDQ_OP_TABLE_H_

#include <cstddef>
#include <cstring>

namespace tf_qdq {

enum class OpKind : int { kV1, kV2, kV3, kV4, kV4Grad };

// The attributes an op has (bit set). Which ones an op has decides what
// ReadAttrs reads and checks.
enum AttrBits : unsigned {
  kSignedInputAttr = 1u << 0,
  kNumBitsAttr = 1u << 1,  // V3 has a num_bits input instead
  kRangeGivenAttr = 1u << 2,
  kFloatRangeAttrs = 1u << 3,  // V1's input_min and input_max
  kRoundModeAttr = 1u << 4,
  kNarrowRangeAttr = 1u << 5,
  kAxisAttr = 1u << 6,
};

struct OpInfo {
  OpKind kind;
  const char* name;
  unsigned attrs;  // AttrBits
  // Inputs that GPU kernels take in host memory (nullptr past the last).
  const char* host_memory_inputs[3];
  // The input XLA needs as a compile-time constant (nullptr: none).
  const char* xla_constant_input;
};

inline constexpr unsigned kV2Attrs = kSignedInputAttr | kNumBitsAttr | kRangeGivenAttr |
                                     kRoundModeAttr | kNarrowRangeAttr | kAxisAttr;

// In OpKind order.
inline constexpr OpInfo kOps[] = {
    {OpKind::kV1,
     "TfQdq>QuantizeAndDequantize",
     kSignedInputAttr | kNumBitsAttr | kRangeGivenAttr | kFloatRangeAttrs,
     {nullptr, nullptr, nullptr},
     nullptr},
    {OpKind::kV2,
     "TfQdq>QuantizeAndDequantizeV2",
     kV2Attrs,
     {"input_min", "input_max", nullptr},
     nullptr},
    {OpKind::kV3,
     "TfQdq>QuantizeAndDequantizeV3",
     kSignedInputAttr | kRangeGivenAttr | kNarrowRangeAttr | kAxisAttr,
     {"input_min", "input_max", "num_bits"},
     "num_bits"},
    {OpKind::kV4,
     "TfQdq>QuantizeAndDequantizeV4",
     kV2Attrs,
     {"input_min", "input_max", nullptr},
     nullptr},
    {OpKind::kV4Grad,
     "TfQdq>QuantizeAndDequantizeV4Grad",
     kAxisAttr,
     {"input_min", "input_max", nullptr},
     nullptr},
};

inline constexpr std::size_t kNumOps = sizeof(kOps) / sizeof(kOps[0]);

constexpr const OpInfo& GetOp(OpKind kind) { return kOps[static_cast<int>(kind)]; }

constexpr bool OpTableInOrder() {
  for (std::size_t i = 0; i < kNumOps; ++i) {
    if (static_cast<std::size_t>(kOps[i].kind) != i) return false;
  }
  return true;
}
static_assert(OpTableInOrder(), "kOps must list the ops in OpKind order");

// The table entry of a registered op name, or nullptr.
inline const OpInfo* FindOp(const char* name) {
  for (const OpInfo& op : kOps) {
    if (std::strcmp(op.name, name) == 0) return &op;
  }
  return nullptr;
}

// X(kind, impl) for every op, in table order: `impl` names the kernel
// classes that run it (Qdq<impl>Op in qdq_kernels.cc, Qdq<impl>XlaOp in
// qdq_xla.cc); V4 runs V2's forward.
#define TF_QDQ_FOR_EACH_OP(X) \
  X(kV1, V1)                  \
  X(kV2, V2)                  \
  X(kV3, V3)                  \
  X(kV4, V2)                  \
  X(kV4Grad, V4Grad)

}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_OP_TABLE_H_
