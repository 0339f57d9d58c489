// The CPU inner loops compiled for AVX2 (flags in setup.py); see
// qdq_cpu_loops.h.
#define TF_QDQ_ISA_NAMESPACE N_AVX2
#define TF_QDQ_ISA_NAME "avx2"
#define TF_QDQ_VEC_BYTES 32
#define TF_QDQ_TABLE_FN LoopsAvx2
#include "kernels/qdq_cpu_loops.h"
