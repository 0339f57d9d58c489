// The CPU inner loops compiled for SSE2 (flags in setup.py); see
// qdq_cpu_loops.h.
#define TF_QDQ_ISA_NAMESPACE N_SSE2
#define TF_QDQ_ISA_NAME "sse2"
#define TF_QDQ_VEC_BYTES 16
#define TF_QDQ_TABLE_FN LoopsSse2
#include "kernels/qdq_cpu_loops.h"
