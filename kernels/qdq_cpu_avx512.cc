// The CPU inner loops compiled for AVX-512 (flags in setup.py); see
// qdq_cpu_loops.h.
#define TF_QDQ_ISA_NAMESPACE N_AVX512
#define TF_QDQ_ISA_NAME "avx512"
#define TF_QDQ_VEC_BYTES 64
#define TF_QDQ_TABLE_FN LoopsAvx512
#include "kernels/qdq_cpu_loops.h"
