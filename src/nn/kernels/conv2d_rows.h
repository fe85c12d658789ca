/* Row helpers of the float32 conv kernels of one CPU set (src/nn/kernels/):
 * im2col, col2im and the implicit weight-gradient packer move rows whose
 * input columns are 2 apart (stride-2 convs such as tutorial_a). Element by
 * element these were a fifth to a quarter of the time; with AVX-512 a
 * 16-output block is two loads and one permute (a masked add for col2im).
 * The other sets run the scalar loops. Same values and, for the adds, the
 * same one add per element as the scalar loop, so the bits do not change. */
#ifndef NABLA_CONV2D_ROWS_H
#define NABLA_CONV2D_ROWS_H

#include "tensor/cpu.h"

#include <stdint.h>

#if defined(NBI_KERNELS_AVX512)
#include <immintrin.h>
#endif

/* dst[t] = src[2t] for t in [0, n). */
static inline void nbi_copy_stride2_f32(float *restrict dst, const float *restrict src, int64_t n) {
    int64_t t = 0;
#if defined(NBI_KERNELS_AVX512)
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (; t + 17 <= n; t += 16) { /* src[2t .. 2t+31] lie inside the run */
        const __m512 a = _mm512_loadu_ps(src + 2 * t);
        const __m512 b = _mm512_loadu_ps(src + 2 * t + 16);
        _mm512_storeu_ps(dst + t, _mm512_permutex2var_ps(a, even, b));
    }
    if (t < n) {
        const int64_t m = n - t, e = 2 * m - 1; /* elements src[2t .. 2t+e-1] are needed */
        const __mmask16 ma = (__mmask16)(e >= 16 ? 0xffff : (1u << e) - 1);
        const __mmask16 mb = (__mmask16)(e > 16 ? (1u << (e - 16)) - 1 : 0);
        const __m512 a = _mm512_maskz_loadu_ps(ma, src + 2 * t);
        const __m512 b = _mm512_maskz_loadu_ps(mb, src + 2 * t + 16);
        _mm512_mask_storeu_ps(dst + t, (__mmask16)((1u << m) - 1), _mm512_permutex2var_ps(a, even, b));
    }
#endif
    for (; t < n; t++) dst[t] = src[2 * t];
}

/* dst[t] += src[t] for t in [0, n). col2im's runs are output rows (24 for
 * MNIST's conv2), too short for the compiler's vectorised loop to pay for
 * its alias checks and scalar remainder: 2.5 of 17 ms of that input gradient. */
static inline void nbi_add_run_f32(float *restrict dst, const float *restrict src, int64_t n) {
    int64_t t = 0;
#if defined(NBI_KERNELS_AVX512)
    for (; t + 16 <= n; t += 16)
        _mm512_storeu_ps(dst + t, _mm512_add_ps(_mm512_loadu_ps(dst + t), _mm512_loadu_ps(src + t)));
    /* no masked tail: masked stores cost more than this on Zen 4 */
    if (t + 8 <= n) {
        _mm256_storeu_ps(dst + t, _mm256_add_ps(_mm256_loadu_ps(dst + t), _mm256_loadu_ps(src + t)));
        t += 8;
    }
#endif
    for (; t < n; t++) dst[t] += src[t];
}

/* dst[2t] += src[t] for t in [0, n) (dst's odd elements untouched). */
static inline void nbi_add_stride2_f32(float *restrict dst, const float *restrict src, int64_t n) {
    int64_t t = 0;
#if defined(NBI_KERNELS_AVX512)
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    /* whole blocks: dst[2t .. 2t+31] all lie inside the run (t + 16 < n), so
     * load and store all 32 lanes, adding only into the even ones (masked
     * stores are slow on Zen 4) */
    for (; t + 17 <= n; t += 16) {
        const __m512 r = _mm512_loadu_ps(src + t);
        float *d = dst + 2 * t;
        const __m512 a = _mm512_loadu_ps(d), b = _mm512_loadu_ps(d + 16);
        _mm512_storeu_ps(d, _mm512_mask_add_ps(a, 0x5555, a, _mm512_permutexvar_ps(lo, r)));
        _mm512_storeu_ps(d + 16, _mm512_mask_add_ps(b, 0x5555, b, _mm512_permutexvar_ps(hi, r)));
    }
    for (; t < n; t += 16) {
        const int64_t m = n - t < 16 ? n - t : 16;
        const __m512 r = _mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1), src + t);
        /* even lanes of dst[2t .. 2t+31] that hold one of the m targets */
        const __mmask16 ma = (__mmask16)(0x5555u & (m >= 8 ? 0xffffu : (1u << (2 * m)) - 1));
        const __mmask16 mb = (__mmask16)(m > 8 ? 0x5555u & ((1u << (2 * (m - 8))) - 1) : 0);
        float *d = dst + 2 * t;
        const __m512 a = _mm512_maskz_loadu_ps(ma, d), b = _mm512_maskz_loadu_ps(mb, d + 16);
        _mm512_mask_storeu_ps(d, ma, _mm512_add_ps(a, _mm512_permutexvar_ps(lo, r)));
        _mm512_mask_storeu_ps(d + 16, mb, _mm512_add_ps(b, _mm512_permutexvar_ps(hi, r)));
    }
#endif
    for (; t < n; t++) dst[2 * t] += src[t];
}

#endif
