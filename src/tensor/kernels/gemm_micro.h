/* GEMM micro-kernels of one CPU set (the contract is in tensor/gemm.h), for
 * the kernel files compiled once per set: one MR x NR tile of C held in
 * registers while k runs over packed panels (kc, MR) of A and (kc, NR) of B.
 * The tile sizes are this set's; static inline so that a kernel file (the
 * blocked GEMM, Winograd's products) calls its own set's kernels directly.
 *
 * AVX-512: the tile is MR = 8 rows of three 512-bit vectors (NR = 48 floats
 * or 24 doubles): 24 accumulators, and per k three vector loads of B and MR
 * broadcasts of A feeding 24 FMAs, which keeps the FMA pipes busy with the
 * loads hidden. 8 x 48 makes M = 32, 64 (conv channels) whole tiles; 12 x 32
 * was as fast on large squares but 5-20% slower on the conv shapes
 * (bench/README.md). Edge tiles store through lane masks.
 * AVX2 + FMA: the same with 256-bit vectors and a 6 x 16 (6 x 8) tile.
 * Portable: a plain C tile small enough for 16 SSE registers, which the
 * compiler vectorises as it can.
 * Every set also has a one-vector-wide tile (NR_NARROW) for products no wider
 * than two of those; it does the same arithmetic per element. */
#ifndef NABLA_GEMM_MICRO_H
#define NABLA_GEMM_MICRO_H

#include "tensor/cpu.h"
#include "tensor/gemm.h"

#if defined(NBI_KERNELS_AVX512)
#ifndef NBI_SGEMM_MR /* overridable only for tuning experiments */
#define NBI_SGEMM_MR 8
#define NBI_SGEMM_NR 48
#define NBI_DGEMM_MR 8
#define NBI_DGEMM_NR 24
#endif
#define NBI_SGEMM_NR_NARROW 16
#define NBI_DGEMM_NR_NARROW 8
#define NBI_GEMM_VEC_BYTES 64 /* one vector register */
#elif defined(NBI_KERNELS_AVX2)
#define NBI_SGEMM_MR 6
#define NBI_SGEMM_NR 16
#define NBI_DGEMM_MR 6
#define NBI_DGEMM_NR 8
#define NBI_SGEMM_NR_NARROW 8
#define NBI_DGEMM_NR_NARROW 4
#define NBI_GEMM_VEC_BYTES 32
#else
#define NBI_SGEMM_MR 4
#define NBI_SGEMM_NR 8
#define NBI_DGEMM_MR 4
#define NBI_DGEMM_NR 4
#define NBI_SGEMM_NR_NARROW 4
#define NBI_DGEMM_NR_NARROW 2
#define NBI_GEMM_VEC_BYTES 16
#endif

#if defined(NBI_KERNELS_AVX512)
#include <immintrin.h>

/* Lane mask of the first n (clamped to 0..w) of w lanes. */
static inline uint32_t nbi_gemm_lanes(int n, int w) { return n <= 0 ? 0u : n >= w ? (1u << w) - 1 : (1u << n) - 1; }

#define AVX512_TILE(NAME, R, T, V, W, MR, NR, MASK, SET1, ZERO, LOAD, FMADD, MUL, MASKZ_LOAD, MASK_STORE)              \
    /* One tile of R <= MR rows (the panels are still MR wide). */                                                     \
    static inline __attribute__((always_inline)) void NAME(int64_t kc, const T *restrict ap, const T *restrict bp,     \
                                                           T *c, int64_t ldc, int m, int n, T alpha, T beta,           \
                                                           bool first) {                                               \
        enum { NV = NR / W };                                                                                          \
        V acc[R][NV];                                                                                                  \
        _Pragma("GCC unroll 16") for (int i = 0; i < R; i++)                                                           \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] = ZERO();                                   \
        for (int64_t k = 0; k < kc; k++) {                                                                             \
            V b[NV];                                                                                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) b[v] = LOAD(bp + v * W);                              \
            _Pragma("GCC unroll 16") for (int i = 0; i < R; i++) {                                                     \
                V a = SET1(ap[i]);                                                                                     \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] = FMADD(a, b[v], acc[i][v]);            \
            }                                                                                                          \
            ap += MR;                                                                                                  \
            bp += NR;                                                                                                  \
        }                                                                                                              \
        MASK mask[NV];                                                                                                 \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) mask[v] = (MASK)nbi_gemm_lanes(n - v * W, W);             \
        V va = SET1(alpha), vb = SET1(beta);                                                                           \
        _Pragma("GCC unroll 16") for (int i = 0; i < R; i++) {                                                         \
            if (i >= m) break;                                                                                         \
            T *row = c + i * ldc;                                                                                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                                     \
                V r;                                                                                                   \
                if (first && beta == 0)                                                                                \
                    r = MUL(va, acc[i][v]);                                                                            \
                else if (first)                                                                                        \
                    r = FMADD(va, acc[i][v], MUL(vb, MASKZ_LOAD(mask[v], row + v * W)));                               \
                else                                                                                                   \
                    r = FMADD(va, acc[i][v], MASKZ_LOAD(mask[v], row + v * W));                                        \
                MASK_STORE(row + v * W, mask[v], r);                                                                   \
            }                                                                                                          \
        }                                                                                                              \
    }

/* A tile whose rows are at most half of MR (an edge: M = 33 leaves one
 * row) runs the half-height loop: half the FMAs, and every stored element
 * still gets its own FMAs in k order, so the same bits. */
#define AVX512_KERNEL(NAME, FULL, HALF, T, V, W, MR, NR, ...)                                                          \
    AVX512_TILE(FULL, MR, T, V, W, MR, NR, __VA_ARGS__)                                                                \
    AVX512_TILE(HALF, MR / 2, T, V, W, MR, NR, __VA_ARGS__)                                                            \
    static inline void NAME(int64_t kc, const T *restrict ap, const T *restrict bp, T *c, int64_t ldc, int m, int n,   \
                            T alpha, T beta, bool first) {                                                             \
        if (m <= MR / 2)                                                                                               \
            HALF(kc, ap, bp, c, ldc, m, n, alpha, beta, first);                                                        \
        else                                                                                                           \
            FULL(kc, ap, bp, c, ldc, m, n, alpha, beta, first);                                                        \
    }

AVX512_KERNEL(nbi_sgemm_kernel, nbi_sgemm_tile_full, nbi_sgemm_tile_half, float, __m512, 16, NBI_SGEMM_MR,
              NBI_SGEMM_NR, __mmask16, _mm512_set1_ps, _mm512_setzero_ps, _mm512_load_ps, _mm512_fmadd_ps,
              _mm512_mul_ps, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps)
AVX512_KERNEL(nbi_sgemm_kernel_narrow, nbi_sgemm_narrow_tile_full, nbi_sgemm_narrow_tile_half, float, __m512, 16,
              NBI_SGEMM_MR, NBI_SGEMM_NR_NARROW, __mmask16, _mm512_set1_ps, _mm512_setzero_ps, _mm512_load_ps,
              _mm512_fmadd_ps, _mm512_mul_ps, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps)
AVX512_KERNEL(nbi_dgemm_kernel, nbi_dgemm_tile_full, nbi_dgemm_tile_half, double, __m512d, 8, NBI_DGEMM_MR,
              NBI_DGEMM_NR, __mmask8, _mm512_set1_pd, _mm512_setzero_pd, _mm512_load_pd, _mm512_fmadd_pd,
              _mm512_mul_pd, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd)
AVX512_KERNEL(nbi_dgemm_kernel_narrow, nbi_dgemm_narrow_tile_full, nbi_dgemm_narrow_tile_half, double, __m512d, 8,
              NBI_DGEMM_MR, NBI_DGEMM_NR_NARROW, __mmask8, _mm512_set1_pd, _mm512_setzero_pd, _mm512_load_pd,
              _mm512_fmadd_pd, _mm512_mul_pd, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd)

#elif defined(NBI_KERNELS_AVX2)
#include <immintrin.h>

/* The same tile scheme with 256-bit vectors: MR rows of two vectors (12
 * accumulators of 16 registers); edges through vmaskmov lane masks. */
#define AVX2_KERNEL(NAME, T, V, W, MR, NR, SET1, ZERO, LOAD, FMADD, MUL, MASKLOAD, MASKSTORE, LANEMASK)                \
    static inline void NAME(int64_t kc, const T *restrict ap, const T *restrict bp, T *c, int64_t ldc, int m, int n,   \
                            T alpha, T beta, bool first) {                                                             \
        enum { NV = NR / W };                                                                                          \
        V acc[MR][NV];                                                                                                 \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                                          \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] = ZERO();                                   \
        for (int64_t k = 0; k < kc; k++) {                                                                             \
            V b[NV];                                                                                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) b[v] = LOAD(bp + v * W);                              \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                                    \
                V a = SET1(ap[i]);                                                                                     \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] = FMADD(a, b[v], acc[i][v]);            \
            }                                                                                                          \
            ap += MR;                                                                                                  \
            bp += NR;                                                                                                  \
        }                                                                                                              \
        __m256i mask[NV];                                                                                              \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) mask[v] = LANEMASK(n - v * W);                            \
        V va = SET1(alpha), vb = SET1(beta);                                                                           \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                                        \
            if (i >= m) break;                                                                                         \
            T *row = c + i * ldc;                                                                                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                                     \
                V r;                                                                                                   \
                if (first && beta == 0)                                                                                \
                    r = MUL(va, acc[i][v]);                                                                            \
                else if (first)                                                                                        \
                    r = FMADD(va, acc[i][v], MUL(vb, MASKLOAD(row + v * W, mask[v])));                                 \
                else                                                                                                   \
                    r = FMADD(va, acc[i][v], MASKLOAD(row + v * W, mask[v]));                                          \
                MASKSTORE(row + v * W, mask[v], r);                                                                    \
            }                                                                                                          \
        }                                                                                                              \
    }

/* All-ones in the first n (clamped to 0..8 / 0..4) lanes. */
static inline __m256i nbi_gemm_lanes_ps(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i nbi_gemm_lanes_pd(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}

AVX2_KERNEL(nbi_sgemm_kernel, float, __m256, 8, NBI_SGEMM_MR, NBI_SGEMM_NR, _mm256_set1_ps, _mm256_setzero_ps,
            _mm256_load_ps, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_maskload_ps, _mm256_maskstore_ps, nbi_gemm_lanes_ps)
AVX2_KERNEL(nbi_sgemm_kernel_narrow, float, __m256, 8, NBI_SGEMM_MR, NBI_SGEMM_NR_NARROW, _mm256_set1_ps,
            _mm256_setzero_ps, _mm256_load_ps, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_maskload_ps,
            _mm256_maskstore_ps, nbi_gemm_lanes_ps)
AVX2_KERNEL(nbi_dgemm_kernel_narrow, double, __m256d, 4, NBI_DGEMM_MR, NBI_DGEMM_NR_NARROW, _mm256_set1_pd,
            _mm256_setzero_pd, _mm256_load_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_maskload_pd,
            _mm256_maskstore_pd, nbi_gemm_lanes_pd)
AVX2_KERNEL(nbi_dgemm_kernel, double, __m256d, 4, NBI_DGEMM_MR, NBI_DGEMM_NR, _mm256_set1_pd, _mm256_setzero_pd,
            _mm256_load_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_maskload_pd, _mm256_maskstore_pd, nbi_gemm_lanes_pd)

#else /* portable */

#define C_KERNEL(NAME, T, MR, NR)                                                                                      \
    static inline void NAME(int64_t kc, const T *restrict ap, const T *restrict bp, T *c, int64_t ldc, int m, int n,   \
                            T alpha, T beta, bool first) {                                                             \
        T acc[MR][NR] = {{0}};                                                                                         \
        for (int64_t k = 0; k < kc; k++) {                                                                             \
            for (int i = 0; i < MR; i++)                                                                               \
                for (int j = 0; j < NR; j++) acc[i][j] += ap[i] * bp[j];                                               \
            ap += MR;                                                                                                  \
            bp += NR;                                                                                                  \
        }                                                                                                              \
        for (int i = 0; i < m; i++) {                                                                                  \
            T *row = c + i * ldc;                                                                                      \
            for (int j = 0; j < n; j++) {                                                                              \
                if (first && beta == 0)                                                                                \
                    row[j] = alpha * acc[i][j];                                                                        \
                else if (first)                                                                                        \
                    row[j] = alpha * acc[i][j] + beta * row[j];                                                        \
                else                                                                                                   \
                    row[j] = alpha * acc[i][j] + row[j];                                                               \
            }                                                                                                          \
        }                                                                                                              \
    }

C_KERNEL(nbi_sgemm_kernel, float, NBI_SGEMM_MR, NBI_SGEMM_NR)
C_KERNEL(nbi_dgemm_kernel, double, NBI_DGEMM_MR, NBI_DGEMM_NR)
C_KERNEL(nbi_sgemm_kernel_narrow, float, NBI_SGEMM_MR, NBI_SGEMM_NR_NARROW)
C_KERNEL(nbi_dgemm_kernel_narrow, double, NBI_DGEMM_MR, NBI_DGEMM_NR_NARROW)

#endif

#undef AVX512_TILE
#undef AVX512_KERNEL
#undef AVX2_KERNEL
#undef C_KERNEL

#endif
