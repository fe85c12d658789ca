/* The reference GEMM: one dot product per output element, k increasing,
 * no blocking, no threads. The test suite checks the fast kernel against it. */
#include "gemm.h"

#define GEMM_REF(NAME, T)                                                                                             \
    void NAME(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda,                    \
              const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {                                                   \
        for (int64_t i = 0; i < M; i++) {                                                                             \
            for (int64_t j = 0; j < N; j++) {                                                                         \
                T acc = 0;                                                                                            \
                for (int64_t k = 0; k < K; k++) {                                                                     \
                    T a = ta ? A[k * lda + i] : A[i * lda + k];                                                       \
                    T b = tb ? B[j * ldb + k] : B[k * ldb + j];                                                       \
                    acc += a * b;                                                                                     \
                }                                                                                                     \
                T *c = C + i * ldc + j;                                                                               \
                *c = beta == 0 ? alpha * acc : alpha * acc + beta * *c;                                               \
            }                                                                                                         \
        }                                                                                                             \
    }

GEMM_REF(nbi_sgemm_ref, float)
GEMM_REF(nbi_dgemm_ref, double)
