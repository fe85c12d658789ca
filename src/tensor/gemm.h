/* Private to the GEMM files (gemm*.c) and the GEMM test/benchmark: the
 * register-blocked micro-kernels, their tile sizes, and the plain reference
 * GEMM the fast one is tested against.
 *
 * A micro-kernel computes one MR x NR tile of C from packed panels:
 *   ap: (kc, MR)  -- MR values of op(A)'s column k, for k = 0..kc-1
 *   bp: (kc, NR)  -- NR values of op(B)'s row k
 * Each element is accumulated from zero over k in increasing order with one
 * fused multiply-add per k (the portable C kernel: acc += a * b, compiled the
 * same way for every tile), then written as
 *   first && beta == 0:  c = alpha * acc            (C not read)
 *   first:               c = alpha * acc + beta * c
 *   otherwise:           c = alpha * acc + c        (a later K block)
 * Only the top-left m x n of the tile is stored (edge tiles); the padding of
 * the panels is zero. The arithmetic of an element does not depend on where
 * it sits in the tile, so tiling and threading never change the results. */
#ifndef NABLA_GEMM_H
#define NABLA_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__AVX512F__)
/* 8 rows x 3 vectors: 24 accumulators; M = 32, 64 (conv channels) are whole
 * tiles. 12 x 32 was as fast on large squares but 5-20% slower on the conv
 * shapes (bench/README.md). Overridable only for tuning experiments. */
#ifndef NBI_SGEMM_MR
#define NBI_SGEMM_MR 8
#define NBI_SGEMM_NR 48
#define NBI_DGEMM_MR 8
#define NBI_DGEMM_NR 24
#endif
#define NBI_SGEMM_NR_NARROW 16
#define NBI_DGEMM_NR_NARROW 8
#elif defined(__AVX2__) && defined(__FMA__)
#define NBI_SGEMM_MR 6
#define NBI_SGEMM_NR 16
#define NBI_DGEMM_MR 6
#define NBI_DGEMM_NR 8
#define NBI_SGEMM_NR_NARROW 8
#define NBI_DGEMM_NR_NARROW 4
#else /* portable C: a tile small enough to stay in 16 SSE registers */
#define NBI_SGEMM_MR 4
#define NBI_SGEMM_NR 8
#define NBI_DGEMM_MR 4
#define NBI_DGEMM_NR 4
#define NBI_SGEMM_NR_NARROW 4
#define NBI_DGEMM_NR_NARROW 2
#endif

/* K is always cut into blocks of this many (a constant, so the per-element
 * summation order is fixed). */
#ifndef NBI_GEMM_KC
#define NBI_GEMM_KC 256
#endif

/* Every build has two tile widths: NR and NR_NARROW (one vector), for
 * products narrower than a wide tile. Both do exactly the same arithmetic
 * per element, so which one computes an element never changes its bits. */
void nbi_sgemm_kernel_narrow(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int m, int n,
                             float alpha, float beta, bool first);
void nbi_dgemm_kernel_narrow(int64_t kc, const double *ap, const double *bp, double *c, int64_t ldc, int m, int n,
                             double alpha, double beta, bool first);
void nbi_sgemm_kernel(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int m, int n,
                      float alpha, float beta, bool first);
void nbi_dgemm_kernel(int64_t kc, const double *ap, const double *bp, double *c, int64_t ldc, int m, int n,
                      double alpha, double beta, bool first);

/* Packing (gemm_pack.c), zero-padded to whole panels:
 *   apack: ceil(mc/MR) panels (kc, MR) of op(A)[i0:i0+mc, p0:p0+kc]
 *   bpack: ceil(nc/nrp) panels (kc, nrp) of op(B)[p0:p0+kc, j0:j0+nc],
 *          nrp = NR or NR_NARROW
 * bpack must be 64-byte aligned (the kernel loads it aligned). */
void nbi_sgemm_pack_a(float *restrict ap, bool trans_a, const float *A, int64_t lda, int64_t i0, int64_t mc,
                      int64_t p0, int64_t kc);
void nbi_sgemm_pack_b(float *restrict bp, int nrp, bool trans_b, const float *B, int64_t ldb, int64_t p0,
                      int64_t kc, int64_t j0, int64_t nc);
void nbi_dgemm_pack_a(double *restrict ap, bool trans_a, const double *A, int64_t lda, int64_t i0, int64_t mc,
                      int64_t p0, int64_t kc);
void nbi_dgemm_pack_b(double *restrict bp, int nrp, bool trans_b, const double *B, int64_t ldb, int64_t p0,
                      int64_t kc, int64_t j0, int64_t nc);

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

/* ---- GEMM with caller-supplied packing (gemm.c), float only ----
 * For operands that are never materialised, such as a convolution's im2col
 * matrix: the caller writes the packed panels itself.
 *   pack(dst, w, ctx, p0, kc, i0, n) fills ceil(n/w) zero-padded panels
 *   (kc, w), panel s holding rows/columns i0 + s*w .. of the operand and
 *   k = p0 .. p0+kc-1 (for A: op(A)[i, k], w = MR; for B: op(B)[k, j],
 *   w = NR or NR_NARROW, dst 64-byte aligned).
 * Same blocking, kernels, K slices and threading as nbi_sgemm, so every
 * element of C gets exactly the FMAs nbi_sgemm would give it. */
typedef void (*nbi_spack_fn)(float *restrict dst, int w, const void *ctx, int64_t p0, int64_t kc, int64_t i0,
                             int64_t n);

/* C: (M, N) <- op(A) op(B), K deep, from the two packers (alpha 1, beta 0). */
void nbi_sgemm_packed(int64_t M, int64_t N, int64_t K, nbi_spack_fn pack_a, const void *actx, nbi_spack_fn pack_b,
                      const void *bctx, float *C, int64_t ldc);

/* A plain operand for nbi_sgemm_packed: X (ld as given), transposed or not. */
typedef struct nbi_smat {
    const float *X;
    int64_t ld;
    bool trans;
} nbi_smat;
void nbi_spack_a_mat(float *restrict dst, int w, const void *mat, int64_t p0, int64_t kc, int64_t i0, int64_t n);
void nbi_spack_b_mat(float *restrict dst, int w, const void *mat, int64_t p0, int64_t kc, int64_t i0, int64_t n);

#endif
