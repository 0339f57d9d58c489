// Registration of the XLA kernels (qdq_xla.cc) for XLA_CPU_JIT and
// XLA_GPU_JIT, every op of the table (qdq_op_table.h), and the late
// registration that makes them work in a library loaded after XLA's first
// use.
//
// XlaOpRegistry turns its registrations into OpKernels for the XLA_*_JIT
// devices once, the first time anything is compiled with XLA. A library
// loaded after that point is recorded in the registry (compile-time constant
// inputs, op filters) but gets no JIT kernels; RegisterLateJitKernels()
// detects that case and registers the same kernel definitions itself.
#include <string>
#include <vector>

#include "kernels/qdq_op_table.h"
#include "kernels/qdq_xla.h"
#include "tensorflow/compiler/tf2xla/xla_op_registry.h"
#include "tensorflow/core/framework/kernel_def_builder.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/types.h"

namespace tf_qdq {
namespace {

using ::tensorflow::DataType;

const std::vector<absl::string_view>& Devices() {
  static const auto* devices = new std::vector<absl::string_view>{tensorflow::DEVICE_CPU_XLA_JIT,
                                                                  tensorflow::DEVICE_GPU_XLA_JIT};
  return *devices;
}

const std::vector<DataType>& Types() {
  static const auto* types = new std::vector<DataType>{tensorflow::DT_BFLOAT16, tensorflow::DT_HALF,
                                                       tensorflow::DT_FLOAT, tensorflow::DT_DOUBLE};
  return *types;
}

bool RegisterXlaOps() {
  for (const OpInfo& op : kOps) {
    auto builder = tensorflow::XlaOpRegistrationBuilder::Name(op.name);
    builder.Device(Devices()).TypeConstraint("T", Types());
    if (op.xla_constant_input != nullptr) {
      builder.CompileTimeConstantInput(op.xla_constant_input);
    }
    tensorflow::XlaOpRegistrar registrar(builder.Build(GetXlaKernelFactory(op.kind)));
    (void)registrar;
  }
  return true;
}

// True when the registry has already created its JIT kernels (any built-in
// op, here Identity, has a kernel on XLA_CPU_JIT).
bool JitKernelsAlreadyCreated() {
  tensorflow::NodeDef def;
  def.set_name("tf_qdq_probe");
  def.set_op("Identity");
  (*def.mutable_attr())["T"].set_type(tensorflow::DT_FLOAT);
  def.add_input("x");
  const tensorflow::KernelDef* kdef = nullptr;
  return tensorflow::FindKernelDef(tensorflow::DeviceType(tensorflow::DEVICE_CPU_XLA_JIT), def,
                                   &kdef, nullptr)
      .ok();
}

bool RegisterLateJitKernels() {
  if (!JitKernelsAlreadyCreated()) return false;
  for (absl::string_view device : Devices()) {
    for (const OpInfo& op : kOps) {
      tensorflow::KernelDefBuilder kb(op.name);
      kb.Device(std::string(device).c_str()).TypeConstraint("T", Types());
      if (op.xla_constant_input != nullptr) kb.HostMemory(op.xla_constant_input);
      ::tensorflow::kernel_factory::OpKernelRegistrar registrar(kb.Build(), "XlaJitOp",
                                                                GetXlaKernelFactory(op.kind));
      (void)registrar;
    }
  }
  return true;
}

// Order matters (one translation unit): the registrations first, then the
// late JIT kernels.
[[maybe_unused]] const bool xla_ops_registered = RegisterXlaOps();
[[maybe_unused]] const bool late_jit_kernels = RegisterLateJitKernels();

}  // namespace
}  // namespace tf_qdq
