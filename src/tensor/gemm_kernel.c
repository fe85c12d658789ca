/* GEMM micro-kernels (the contract is in gemm.h): one MR x NR tile of C held
 * in registers while k runs over packed panels.
 *
 * AVX-512: the tile is MR rows of two 512-bit vectors (NR = 32 floats or 16
 * doubles): 24 accumulators, and per k two vector loads of B and MR
 * broadcasts of A feeding 24 FMAs, which keeps the FMA pipe busy with the
 * loads hidden. Edge tiles store through lane masks.
 * Elsewhere a plain C tile of the same shape, which the compiler vectorises
 * (AVX2 or whatever the target has). */
#include "gemm.h"

#if defined(__AVX512F__)
#include <immintrin.h>

/* Lane mask of the first n (clamped to 0..w) of w lanes. */
static inline uint32_t lanes(int n, int w) { return n <= 0 ? 0u : n >= w ? (1u << w) - 1 : (1u << n) - 1; }

#define AVX512_KERNEL(NAME, T, V, W, MR, NR, MASK, SET1, ZERO, LOAD, FMADD, MUL, MASKZ_LOAD, MASK_STORE)       \
    void NAME(int64_t kc, const T *restrict ap, const T *restrict bp, T *c, int64_t ldc, int m, int n, T alpha, \
              T beta, bool first) {                                                                          \
        enum { NV = NR / W };                                                                                \
        V acc[MR][NV];                                                                                       \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                                \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] = ZERO();                         \
        for (int64_t k = 0; k < kc; k++) {                                                                   \
            V b[NV];                                                                                         \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) b[v] = LOAD(bp + v * W);                    \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                          \
                V a = SET1(ap[i]);                                                                           \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] = FMADD(a, b[v], acc[i][v]);  \
            }                                                                                                \
            ap += MR;                                                                                        \
            bp += NR;                                                                                        \
        }                                                                                                    \
        MASK mask[NV];                                                                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) mask[v] = (MASK)lanes(n - v * W, W);            \
        V va = SET1(alpha), vb = SET1(beta);                                                                 \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                              \
            if (i >= m) break;                                                                               \
            T *row = c + i * ldc;                                                                            \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                           \
                V r;                                                                                         \
                if (first && beta == 0)                                                                      \
                    r = MUL(va, acc[i][v]);                                                                  \
                else if (first)                                                                              \
                    r = FMADD(va, acc[i][v], MUL(vb, MASKZ_LOAD(mask[v], row + v * W)));                     \
                else                                                                                         \
                    r = FMADD(va, acc[i][v], MASKZ_LOAD(mask[v], row + v * W));                              \
                MASK_STORE(row + v * W, mask[v], r);                                                         \
            }                                                                                                \
        }                                                                                                    \
    }

AVX512_KERNEL(nbi_sgemm_kernel, float, __m512, 16, NBI_SGEMM_MR, NBI_SGEMM_NR, __mmask16, _mm512_set1_ps, _mm512_setzero_ps,
              _mm512_load_ps, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps)
AVX512_KERNEL(nbi_dgemm_kernel, double, __m512d, 8, NBI_DGEMM_MR, NBI_DGEMM_NR, __mmask8, _mm512_set1_pd, _mm512_setzero_pd,
              _mm512_load_pd, _mm512_fmadd_pd, _mm512_mul_pd, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd)

#else /* portable */

#define C_KERNEL(NAME, T, MR, NR)                                                                            \
    void NAME(int64_t kc, const T *restrict ap, const T *restrict bp, T *c, int64_t ldc, int m, int n, T alpha, \
              T beta, bool first) {                                                                          \
        T acc[MR][NR] = {{0}};                                                                               \
        for (int64_t k = 0; k < kc; k++) {                                                                   \
            for (int i = 0; i < MR; i++)                                                                     \
                for (int j = 0; j < NR; j++) acc[i][j] += ap[i] * bp[j];                                     \
            ap += MR;                                                                                        \
            bp += NR;                                                                                        \
        }                                                                                                    \
        for (int i = 0; i < m; i++) {                                                                        \
            T *row = c + i * ldc;                                                                            \
            for (int j = 0; j < n; j++) {                                                                    \
                if (first && beta == 0)                                                                      \
                    row[j] = alpha * acc[i][j];                                                              \
                else if (first)                                                                              \
                    row[j] = alpha * acc[i][j] + beta * row[j];                                              \
                else                                                                                         \
                    row[j] = alpha * acc[i][j] + row[j];                                                     \
            }                                                                                                \
        }                                                                                                    \
    }

C_KERNEL(nbi_sgemm_kernel, float, NBI_SGEMM_MR, NBI_SGEMM_NR)
C_KERNEL(nbi_dgemm_kernel, double, NBI_DGEMM_MR, NBI_DGEMM_NR)

#endif
