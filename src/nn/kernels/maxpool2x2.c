/* F.max_pool2d(x, 2) (stride 2, no padding) in float32, forward and
 * backward (nn_kernels.h), compiled once per kernel set (tensor/cpu.h). The
 * rules are maxpool2x2_rows.h's, which pool.c's float64 loops (the reference)
 * use too; comparisons and selections only, so every set gives the same bits.
 * One plane per thread. */
#include "maxpool2x2_rows.h"
#include "nn/nn_kernels.h"
#include "tensor/cpu.h"
#include "tensor/internal.h"

#include <stdbool.h>
#include <string.h>

/* 4-float vectors (GCC vector extensions) for the 2x2 row kernels below. */
typedef float nnu_v4f __attribute__((vector_size(16)));
typedef int32_t nnu_v4i __attribute__((vector_size(16)));
/* Pick lanes i0..i3 of the 8 lanes of (x, y): GCC and clang spell it differently. */
#if defined(__clang__)
#define V4_SHUFFLE(x, y, i0, i1, i2, i3) __builtin_shufflevector(x, y, i0, i1, i2, i3)
#else
#define V4_SHUFFLE(x, y, i0, i1, i2, i3) __builtin_shuffle(x, y, (nnu_v4i){i0, i1, i2, i3})
#endif

#if !defined(NBI_KERNELS_AVX512) /* (that set's rows are below) */
static void unpool_row_f32(float *restrict r0, float *restrict r1, const float *restrict d,
                           const uint8_t *restrict t, int64_t OW) {
    /* interleave two vectors: lanes (0, 4, 1, 5) and (2, 6, 3, 7) */
    int64_t ow = 0;
    for (; ow + 4 <= OW; ow += 4) {
        nnu_v4f v;
        memcpy(&v, d + ow, sizeof v);
        nnu_v4i k = {t[ow], t[ow + 1], t[ow + 2], t[ow + 3]};
        nnu_v4i vi = (nnu_v4i)v;
        nnu_v4f a = (nnu_v4f)(vi & (k == 0)), b = (nnu_v4f)(vi & (k == 1));
        nnu_v4f e = (nnu_v4f)(vi & (k == 2)), f = (nnu_v4f)(vi & (k == 3));
        nnu_v4f o[4] = {V4_SHUFFLE(a, b, 0, 4, 1, 5), V4_SHUFFLE(a, b, 2, 6, 3, 7), V4_SHUFFLE(e, f, 0, 4, 1, 5),
                        V4_SHUFFLE(e, f, 2, 6, 3, 7)};
        /* one vector per store: as one 32-byte copy of o[0..1], GCC's AVX-512
         * code went through the stack and stalled on store forwarding (2x) */
        memcpy(r0 + 2 * ow, &o[0], sizeof o[0]);
        memcpy(r0 + 2 * ow + 4, &o[1], sizeof o[0]);
        memcpy(r1 + 2 * ow, &o[2], sizeof o[0]);
        memcpy(r1 + 2 * ow + 4, &o[3], sizeof o[0]);
    }
    UNPOOL_ROW_SCALAR(float)
}

/* float32 rows go four windows at a time with GCC vector extensions: rows
 * here are short (12 windows in the MNIST net), too short for the
 * auto-vectoriser's 16-wide loop, and its scalar remainder compiles to
 * unpredictable branches (13 ns a window; this is ~20x faster). */

static inline nnu_v4f v4_blend(nnu_v4i m, nnu_v4f x, nnu_v4f y) { return (nnu_v4f)((m & (nnu_v4i)x) | (~m & (nnu_v4i)y)); }

static void pool_row_f32(float *restrict y, uint8_t *restrict t, const float *restrict r0, const float *restrict r1,
                         int64_t OW, bool relu) {
    /* even lanes (0, 2, 4, 6) and odd lanes (1, 3, 5, 7) of two vectors */
    int64_t ow = 0;
    for (; ow + 4 <= OW; ow += 4) {
        nnu_v4f p0, p1, q0, q1;
        memcpy(&p0, r0 + 2 * ow, sizeof p0);
        memcpy(&p1, r0 + 2 * ow + 4, sizeof p1);
        memcpy(&q0, r1 + 2 * ow, sizeof q0);
        memcpy(&q1, r1 + 2 * ow + 4, sizeof q1);
        nnu_v4f taps[3] = {V4_SHUFFLE(p0, p1, 1, 3, 5, 7), V4_SHUFFLE(q0, q1, 0, 2, 4, 6),
                           V4_SHUFFLE(q0, q1, 1, 3, 5, 7)};
        nnu_v4f m = V4_SHUFFLE(p0, p1, 0, 2, 4, 6);
        nnu_v4i k = {0, 0, 0, 0};
        for (int j = 0; j < 3; j++) {
            nnu_v4i take = (taps[j] > m) | (taps[j] != taps[j]); /* -1 where the tap takes over */
            m = v4_blend(take, taps[j], m);
            k = (take & (j + 1)) | (~take & k);
        }
        if (relu) m = v4_blend(m < 0, (nnu_v4f){0}, m); /* nb_relu's rule: NaN and -0 stay */
        memcpy(y + ow, &m, sizeof m);
        for (int j = 0; j < 4; j++) t[ow + j] = (uint8_t)k[j];
    }
    POOL_ROW_SCALAR(float)
}

#endif

#if defined(NBI_KERNELS_AVX512)
#include <immintrin.h>
/* The AVX-512 set takes 16 windows per step, a row's last ones through lane
 * masks (the 4-wide loop above was compute-bound: a batch of the MNIST
 * net's conv2 output pooled at 15 GB/s with the data in cache, against 29
 * for a plain copy). Lanes: window ow + i; even / odd columns of a row pair
 * come out of two vectors of 16 columns by one two-source permute each. */
static void pool_row_avx512(float *restrict y, uint8_t *restrict t, const float *restrict r0,
                            const float *restrict r1, int64_t OW, bool relu) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t ow = 0; ow < OW; ow += 16) {
        const int64_t n = OW - ow < 16 ? OW - ow : 16; /* windows in this step */
        const __mmask16 lo = (__mmask16)(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
        const __mmask16 hi = (__mmask16)(n <= 8 ? 0 : n >= 16 ? 0xFFFF : (1u << (2 * n - 16)) - 1);
        const __m512 p0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ow), p1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ow + 16);
        const __m512 q0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ow), q1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ow + 16);
        const __m512 taps[3] = {_mm512_permutex2var_ps(p0, odd, p1), _mm512_permutex2var_ps(q0, even, q1),
                                _mm512_permutex2var_ps(q0, odd, q1)};
        __m512 m = _mm512_permutex2var_ps(p0, even, p1);
        __m512i k = _mm512_setzero_si512();
        for (int j = 0; j < 3; j++) { /* a strictly larger value or a NaN takes over */
            const __mmask16 take = _mm512_cmp_ps_mask(taps[j], m, _CMP_GT_OQ) |
                                   _mm512_cmp_ps_mask(taps[j], taps[j], _CMP_UNORD_Q);
            m = _mm512_mask_mov_ps(m, take, taps[j]);
            k = _mm512_mask_mov_epi32(k, take, _mm512_set1_epi32(j + 1));
        }
        const __mmask16 out = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
        if (relu) /* nb_relu's rule: 0 where m < 0 (NaN and -0 stay) */
            m = _mm512_maskz_mov_ps((__mmask16)~_mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_LT_OQ), m);
        _mm512_mask_storeu_ps(y + ow, out, m);
        _mm_mask_storeu_epi8(t + ow, out, _mm512_cvtepi32_epi8(k));
    }
}

/* The gradient: dy at each window's winning tap, 0 at the others, 16
 * windows (32 columns of two rows) per step. */
static void unpool_row_avx512(float *restrict r0, float *restrict r1, const float *restrict d,
                              const uint8_t *restrict t, int64_t OW) {
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
    for (int64_t ow = 0; ow < OW; ow += 16) {
        const int64_t n = OW - ow < 16 ? OW - ow : 16;
        const __mmask16 in = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(in, d + ow);
        const __m512i k = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in, t + ow));
        __m512 a[4];
        for (int j = 0; j < 4; j++) a[j] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(j)), v);
        const __mmask16 lo = (__mmask16)(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
        const __mmask16 hi = (__mmask16)(n <= 8 ? 0 : n >= 16 ? 0xFFFF : (1u << (2 * n - 16)) - 1);
        _mm512_mask_storeu_ps(r0 + 2 * ow, lo, _mm512_permutex2var_ps(a[0], lo_idx, a[1]));
        _mm512_mask_storeu_ps(r0 + 2 * ow + 16, hi, _mm512_permutex2var_ps(a[0], hi_idx, a[1]));
        _mm512_mask_storeu_ps(r1 + 2 * ow, lo, _mm512_permutex2var_ps(a[2], lo_idx, a[3]));
        _mm512_mask_storeu_ps(r1 + 2 * ow + 16, hi, _mm512_permutex2var_ps(a[2], hi_idx, a[3]));
    }
}
#define POOL_ROW pool_row_avx512
#define UNPOOL_ROW unpool_row_avx512
#else
#define POOL_ROW pool_row_f32
#define UNPOOL_ROW unpool_row_f32
#endif

// y: (planes, OH, OW), tap: (planes, OH, OW), x: (planes, H, W)
static void forward_f32(float *y, uint8_t *tap, const float *x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW) {
#pragma omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++) {
            const float *r0 = x + pl * H * W + 2 * oh * W;
            int64_t o = (pl * OH + oh) * OW;
            POOL_ROW(y + o, tap + o, r0, r0 + W, OW, false);
        }
}

// dx: (planes, H, W), dy: (planes, OH, OW), tap: (planes, OH, OW)
static void backward_f32(float *dx, const float *dy, const uint8_t *tap, int64_t planes, int64_t H, int64_t W,
                         int64_t OH, int64_t OW) {
#pragma omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * H * W;
        for (int64_t oh = 0; oh < OH; oh++) {
            float *r0 = dxp + 2 * oh * W, *r1 = r0 + W;
            UNPOOL_ROW(r0, r1, dy + (pl * OH + oh) * OW, tap + (pl * OH + oh) * OW, OW);
            for (int64_t w = 2 * OW; w < W; w++) r0[w] = r1[w] = 0; /* odd W: last column in no window */
        }
        for (int64_t i = 2 * OH * W; i < H * W; i++) dxp[i] = 0; /* odd H: last row in no window */
    }
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_maxpool2x2_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_maxpool2x2_avx2
#else
#define THIS_SET nbi_maxpool2x2_portable
#endif
const nbi_maxpool2x2_kernels THIS_SET = {.forward_f32 = forward_f32, .backward_f32 = backward_f32,
                                         .pool_row_f32 = POOL_ROW, .unpool_row_f32 = UNPOOL_ROW};
