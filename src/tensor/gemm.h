/* Private to the GEMM (src/tensor/gemm*.c, src/tensor/kernels/gemm_*), the
 * conv kernels that drive it with their own packing, and the GEMM test and
 * benchmark: the per-CPU-set GEMM tables, the caller-packed GEMM, and the
 * plain reference GEMM the fast one is tested against. nbi_sgemm and
 * nbi_dgemm themselves are declared in internal.h.
 *
 * Every set computes an element of C the same way: a micro-kernel holds an
 * MR x NR tile of C and accumulates each element from zero over k in
 * increasing order, one fused multiply-add per k (the portable kernel:
 * acc += a * b), over K slices of the constant NBI_GEMM_KC; then
 *   first && beta == 0:  c = alpha * acc            (C not read)
 *   first:               c = alpha * acc + beta * c
 *   otherwise:           c = alpha * acc + c        (a later K slice)
 * The arithmetic of an element does not depend on where it sits in a tile,
 * on the tile width, on the blocking or on the threads, so within one set the
 * bits never depend on the thread count. Sets differ in the tile sizes and in
 * FMA versus separate rounding (portable), so their last bits may differ. */
#ifndef NABLA_GEMM_H
#define NABLA_GEMM_H

#include <stdbool.h>
#include <stdint.h>

/* K is always cut into slices of this many (the same in every set, so the
 * per-element summation order is fixed). 128: a packed 128 x 48 panel of B
 * (24 KiB, the AVX-512 tile) stays in a 48 KiB L1 beside A's panel; 256
 * filled L1 with it (tutorial_b's forward, K = 240: 10.4 vs 7.4 ms, one
 * thread; warm square GEMMs were 5% faster at 256). */
#define NBI_GEMM_KC 128

/* ---- GEMM with caller-supplied packing, float only ----
 * For operands that are never materialised, such as a convolution's im2col
 * matrix: the caller writes the packed panels itself.
 *   pack(dst, w, ctx, p0, kc, i0, n) fills ceil(n/w) zero-padded panels
 *   (kc, w), panel s holding rows/columns i0 + s*w .. of the operand and
 *   k = p0 .. p0+kc-1 (for A: op(A)[i, k], w = MR; for B: op(B)[k, j],
 *   w = NR or NR_NARROW, dst 64-byte aligned).
 * Same blocking, kernels, K slices and threading as nbi_sgemm, so every
 * element of C gets exactly the FMAs nbi_sgemm would give it. The packers
 * run with the set in use, so a packer compiled in a kernel file may rely on
 * its own set's tile sizes (src/tensor/kernels/gemm_micro.h). */
typedef void (*nbi_spack_fn)(float *restrict dst, int w, const void *ctx, int64_t p0, int64_t kc, int64_t i0,
                             int64_t n);

/* A plain operand for nbi_sgemm_packed: X (ld as given), transposed or not
 * (packers for it: nbi_spack_a_mat and nbi_spack_b_mat in gemm_pack.h). */
typedef struct nbi_smat {
    const float *X;
    int64_t ld;
    bool trans;
} nbi_smat;

/* One CPU set's GEMM (src/tensor/kernels/gemm_blocked.c). */
typedef struct nbi_gemm_kernels {
    /* tile sizes: rows, columns, and the one-vector column count used for
     * products no wider than two such tiles (same bits as the wide tile) */
    int smr, snr, snr_narrow, dmr, dnr, dnr_narrow;
    void (*sgemm)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
    void (*dgemm)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                  int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);
    /* the out-of-memory path (one micro-panel at a time in stack buffers) */
    void (*sgemm_small_blocks)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                               int64_t ldc);
    void (*dgemm_small_blocks)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                               const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C,
                               int64_t ldc);
    void (*sgemm_packed)(int64_t M, int64_t N, int64_t K, nbi_spack_fn pack_a, const void *actx,
                         nbi_spack_fn pack_b, const void *bctx, float *C, int64_t ldc);
} nbi_gemm_kernels;

extern const nbi_gemm_kernels nbi_gemm_portable, nbi_gemm_avx2, nbi_gemm_avx512;

/* The GEMM of the CPU set in use (src/tensor/cpu.h). */
const nbi_gemm_kernels *nbi_gemm(void);

/* C: (M, N) <- op(A) op(B), K deep, from the two packers (alpha 1, beta 0). */
void nbi_sgemm_packed(int64_t M, int64_t N, int64_t K, nbi_spack_fn pack_a, const void *actx, nbi_spack_fn pack_b,
                      const void *bctx, float *C, int64_t ldc);

/* nbi_sgemm / nbi_dgemm's out-of-memory path: single-threaded, one
 * micro-panel at a time in stack buffers. Same bits as the normal path;
 * exposed so the tests can check that block sizes do not change results. */
void nbi_sgemm_small_blocks(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                            int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void nbi_dgemm_small_blocks(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                            const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C,
                            int64_t ldc);

/* The plain triple loop, single-threaded: c = alpha * sum_k a*b + beta * c,
 * k increasing. Slow; for tests and benchmarks. */
void nbi_sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void nbi_dgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                   int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

#endif
