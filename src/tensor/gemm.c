/* nbi_sgemm, nbi_dgemm and nbi_sgemm_packed: the GEMM of the CPU set in use
 * (the blocked driver, compiled once per set, is src/tensor/kernels/gemm_blocked.c). */
#include "internal.h"

#include "cpu.h"
#include "gemm.h"

const nbi_gemm_kernels *nbi_gemm(void) { return NBI_CPU_PICK(nbi_gemm_portable, nbi_gemm_avx2, nbi_gemm_avx512); }

void nbi_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    nbi_gemm()->sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void nbi_dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t lda,
               const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    nbi_gemm()->dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void nbi_sgemm_small_blocks(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                            int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    nbi_gemm()->sgemm_small_blocks(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void nbi_dgemm_small_blocks(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                            int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    nbi_gemm()->dgemm_small_blocks(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void nbi_sgemm_packed(int64_t M, int64_t N, int64_t K, nbi_spack_fn pack_a, const void *actx, nbi_spack_fn pack_b,
                      const void *bctx, float *C, int64_t ldc) {
    nbi_gemm()->sgemm_packed(M, N, K, pack_a, actx, pack_b, bctx, C, ldc);
}
