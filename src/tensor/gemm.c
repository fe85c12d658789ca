/* GEMM behind one internal interface (see internal.h).
 *
 * Reference-quality blocked implementation: C is computed in tiles of rows,
 * each row as a sum over k in increasing order, so every element's rounding
 * is the same however the tiles are spread over threads. */
#include "internal.h"

#include <stdlib.h>

#define GEMM_IMPL(NAME, T)                                                                           \
    void NAME(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda,  \
              const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {                                 \
        _Pragma("omp parallel for schedule(static) if (M * N * K > 262144 && !omp_in_parallel())")  \
        for (int64_t i = 0; i < M; i++) {                                                            \
            T *c = C + i * ldc;                                                                      \
            T *acc = alloca((size_t)N * sizeof(T));                                                  \
            for (int64_t j = 0; j < N; j++) acc[j] = 0;                                              \
            for (int64_t k = 0; k < K; k++) {                                                        \
                T a = ta ? A[k * lda + i] : A[i * lda + k];                                          \
                if (!tb) {                                                                           \
                    const T *b = B + k * ldb;                                                        \
                    for (int64_t j = 0; j < N; j++) acc[j] += a * b[j];                              \
                } else {                                                                             \
                    for (int64_t j = 0; j < N; j++) acc[j] += a * B[j * ldb + k];                    \
                }                                                                                    \
            }                                                                                        \
            if (beta == 0)                                                                           \
                for (int64_t j = 0; j < N; j++) c[j] = alpha * acc[j];                               \
            else                                                                                     \
                for (int64_t j = 0; j < N; j++) c[j] = alpha * acc[j] + beta * c[j];                 \
        }                                                                                            \
    }

#ifdef _OPENMP
#include <omp.h>
#else
static int omp_in_parallel(void) { return 0; }
#endif
#include <alloca.h>

GEMM_IMPL(nbi_sgemm, float)
GEMM_IMPL(nbi_dgemm, double)
