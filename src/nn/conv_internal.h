/* Private to src/nn: the resolved geometry of one 2-D convolution and the
 * im2col + GEMM kernels that compute it (conv2d_kernels.c), shared by the
 * differentiable op in conv2d.c. */
#ifndef NABLA_CONV_INTERNAL_H
#define NABLA_CONV_INTERNAL_H

#include "tensor/internal.h"

/* Every size a kernel needs, after padding strings and defaults are resolved.
 * Padding may be asymmetric (padding='same' with an even dilated extent). */
typedef struct nbi_conv_geom {
    int64_t N, C, H, W;          /* input */
    int64_t O, kh, kw;           /* weight: (O, C/groups, kh, kw) */
    int64_t sh, sw;              /* stride */
    int64_t pt, pb, pl, pr;      /* zero padding: top, bottom, left, right */
    int64_t dh, dw;              /* dilation */
    int64_t groups;
    int64_t Ho, Wo;              /* output */
} nbi_conv_geom;

/* y: (N, O, Ho, Wo) <- conv(x: (N, C, H, W), w: (O, C/g, kh, kw)) + b: (O) or NULL.
 * All buffers contiguous. NB_ERR_NOMEM (with a message) if scratch fails. */
nb_status nbi_conv2d_forward_f32(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g);
nb_status nbi_conv2d_forward_f64(double *y, const double *x, const double *w, const double *b, const nbi_conv_geom *g);

/* Gradients from dy: (N, O, Ho, Wo). Each of dx: (N, C, H, W), dw: (O, C/g, kh, kw),
 * db: (O) may be NULL when not wanted; those given are overwritten. */
nb_status nbi_conv2d_backward_f32(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                  const nbi_conv_geom *g);
nb_status nbi_conv2d_backward_f64(double *dx, double *dw, double *db, const double *dy, const double *x,
                                  const double *w, const nbi_conv_geom *g);

/* Output columns [lo, hi) whose input column ow*s + off lies in [0, W). */
static inline void nbi_conv_valid_range(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : -off / s + (-off % s != 0); /* ceil without -off + s - 1: s may be huge */
    int64_t h = W - 1 - off < 0 ? 0 : (W - 1 - off) / s + 1;
    if (l > Wo) l = Wo;
    if (h > Wo) h = Wo;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* ---- strided row copies (stride 2), float32 ----
 * im2col, col2im and the implicit weight-gradient packer move rows whose
 * input columns are 2 apart (stride-2 convs such as tutorial_a). Element by
 * element these were a fifth to a quarter of the time; with AVX-512 a
 * 16-output block is two loads and one permute (a masked add for col2im).
 * Same values and, for the adds, the same one add per element as the scalar
 * loop, so the bits do not change. */
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* dst[t] = src[2t] for t in [0, n). */
static inline void nbi_copy_stride2_f32(float *restrict dst, const float *restrict src, int64_t n) {
    int64_t t = 0;
#if defined(__AVX512F__)
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
#if defined(__AVX512F__)
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
#if defined(__AVX512F__)
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

/* ---- implicit GEMM, float32 (conv2d_implicit.c) ----
 * The im2col matrix is never built: the GEMM's B panels are packed straight
 * from the input (nbi_sgemm_packed). For every float conv that is neither
 * 1x1 pointwise nor depthwise. */

/* y: (N, O, Ho, Wo) <- conv(x, w) + b (b may be NULL), as nbi_conv2d_forward_f32. */
nb_status nbi_conv2d_forward_implicit(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g);
/* dw: (O, C/g, kh, kw) <- the weight gradient, one GEMM over the whole batch
 * per group (K = N*Ho*Wo), its threads splitting dw's tiles. */
nb_status nbi_conv2d_dw_implicit(float *dw, const float *dy, const float *x, const nbi_conv_geom *g);
/* Whether dx can be computed as a stride-1 convolution of dy with the
 * flipped, transposed weight (and is worth it: enough input channels). */
bool nbi_conv2d_dx_implicit_ok(const nbi_conv_geom *g);
/* dx: (N, C, H, W) <- the input gradient that way; needs nbi_conv2d_dx_implicit_ok. */
nb_status nbi_conv2d_dx_implicit(float *dx, const float *dy, const float *w, const nbi_conv_geom *g);

/* ---- Winograd F(2x2, 3x3), float32 (conv2d_winograd.c) ---- */

/* Whether the Winograd forward applies: 3x3, stride 1, dilation 1, groups 1,
 * at least 16 input and output channels. */
bool nbi_conv2d_winograd_ok(const nbi_conv_geom *g);
/* y: (N, O, Ho, Wo) <- conv(x, w) + b (b may be NULL); needs nbi_conv2d_winograd_ok. */
nb_status nbi_conv2d_forward_winograd(float *y, const float *x, const float *w, const float *b,
                                      const nbi_conv_geom *g);
/* dw: (O, C, 3, 3) <- the weight gradient the same way; needs nbi_conv2d_winograd_ok. */
nb_status nbi_conv2d_dw_winograd(float *dw, const float *dy, const float *x, const nbi_conv_geom *g);

#endif
