// The XLA kernels of qdq_xla.cc as seen by their registration
// (qdq_xla_register.cc): one kernel factory per op of the table.
#ifndef TF_QDQ_KERNELS_QDQ_XLA_H_
#define TF_QDQ_KERNELS_QDQ_XLA_H_

#include "kernels/qdq_op_table.h"

namespace tensorflow {
class OpKernel;
class OpKernelConstruction;
}  // namespace tensorflow

namespace tf_qdq {

using XlaKernelFactory = tensorflow::OpKernel* (*)(tensorflow::OpKernelConstruction*);

// The factory of the XLA kernel that compiles `kind`.
XlaKernelFactory GetXlaKernelFactory(OpKind kind);

}  // namespace tf_qdq

#endif  // TF_QDQ_KERNELS_QDQ_XLA_H_
