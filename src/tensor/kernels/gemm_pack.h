/* GEMM packing of one CPU set, for the kernel files compiled once per set
 * (the layouts are described in tensor/gemm.h): copy a block of op(A)
 * into MR-row panels (kc, MR) and a block of op(B) into NR-column panels
 * (kc, NR), zero-padding the edge panels, so the micro-kernel reads both
 * with unit stride whatever the transposes and leading dimensions.
 *
 * The cases where the wanted panel runs across the source's rows (A not
 * transposed, B transposed) are a transpose; with AVX-512 they go through
 * 16x16 (float) / 8x8 (double) in-register transposes instead of one
 * scalar load and store per element, which made packing about as costly as
 * the arithmetic for thin products such as Linear's x W^T. Packing only
 * moves values, so it has no effect on the results. */
#ifndef NABLA_GEMM_PACK_H
#define NABLA_GEMM_PACK_H

#include "tensor/kernels/gemm_micro.h"

static inline int64_t nbi_gemm_min(int64_t a, int64_t b) { return a < b ? a : b; }

#if defined(NBI_KERNELS_AVX512)
#include <immintrin.h>

/* Mask of the first n lanes, n clamped to 0..16. */
static inline __mmask16 nbi_first16(int64_t n) {
    return n <= 0 ? 0 : n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/* r[i] := column i of the 16x16 matrix whose rows were r[0..15]. */
static inline __attribute__((always_inline)) void nbi_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i+q], 128-bit lane L: column 4L+q of rows 4i..4i+3 */
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int q = 0; q < 4; q++) { /* 4x4 transpose of 128-bit lanes */
        __m512 u0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88), u1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);
        __m512 v0 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
        t[q] = _mm512_shuffle_f32x4(u0, v0, 0x88);
        t[4 + q] = _mm512_shuffle_f32x4(u1, v1, 0x88);
        t[8 + q] = _mm512_shuffle_f32x4(u0, v0, 0xDD);
        t[12 + q] = _mm512_shuffle_f32x4(u1, v1, 0xDD);
    }
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

/* r[i] := column i of the 8x8 matrix whose rows were r[0..7]. */
static inline __attribute__((always_inline)) void nbi_transpose8(__m512d r[8]) {
    __m512d t[8];
    for (int i = 0; i < 4; i++) { /* t[2p+q], 128-bit lane L: rows 2p, 2p+1 of column 2L+q */
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (int q = 0; q < 2; q++) { /* 4x4 transpose of 128-bit lanes */
        __m512d u0 = _mm512_shuffle_f64x2(t[q], t[2 + q], 0x88), u1 = _mm512_shuffle_f64x2(t[q], t[2 + q], 0xDD);
        __m512d v0 = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], 0x88);
        __m512d v1 = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], 0xDD);
        r[q] = _mm512_shuffle_f64x2(u0, v0, 0x88);
        r[2 + q] = _mm512_shuffle_f64x2(u1, v1, 0x88);
        r[4 + q] = _mm512_shuffle_f64x2(u0, v0, 0xDD);
        r[6 + q] = _mm512_shuffle_f64x2(u1, v1, 0xDD);
    }
}

/* dst + c*dst_stride (c < ncols) := the first `store` lanes of column c of
 * src's rows 0..nrows-1 (each ncols long, rows nrows.. read as zero). */
static inline __attribute__((always_inline)) void nbi_pack_cols_f32(float *dst, int64_t dst_stride, __mmask16 store,
                                                                const float *src, int64_t ld, int64_t nrows,
                                                                int64_t ncols) {
    __m512 r[16];
    __mmask16 m = nbi_first16(ncols);
    for (int i = 0; i < 16; i++)
        r[i] = i < nrows ? _mm512_maskz_loadu_ps(m, src + i * ld) : _mm512_setzero_ps();
    nbi_transpose16(r);
    for (int c = 0; c < ncols; c++)
        _mm512_mask_storeu_ps(dst + c * dst_stride, store, r[c]);
}

static inline __attribute__((always_inline)) void nbi_pack_cols_f64(double *dst, int64_t dst_stride, __mmask8 store,
                                                                const double *src, int64_t ld, int64_t nrows,
                                                                int64_t ncols) {
    __m512d r[8];
    __mmask8 m = (__mmask8)nbi_first16(ncols < 8 ? ncols : 8);
    for (int i = 0; i < 8; i++)
        r[i] = i < nrows ? _mm512_maskz_loadu_pd(m, src + i * ld) : _mm512_setzero_pd();
    nbi_transpose8(r);
    for (int c = 0; c < ncols; c++)
        _mm512_mask_storeu_pd(dst + c * dst_stride, store, r[c]);
}

static inline void nbi_sgemm_pack_a(float *restrict ap, bool ta, const float *A, int64_t lda, int64_t i0,
                                    int64_t mc, int64_t p0, int64_t kc) {
    enum { MR = NBI_SGEMM_MR };
    _Static_assert(NBI_SGEMM_MR <= 16, "a float A panel row is at most one vector");
    const __mmask16 all = nbi_first16(MR);
    for (int64_t r = 0; r < mc; r += MR, ap += kc * MR) {
        int64_t mr = nbi_gemm_min(MR, mc - r);
        if (ta) { /* A: (K, M), op(A)'s column k is contiguous */
            const float *src = A + p0 * lda + i0 + r;
            __mmask16 m = nbi_first16(mr);
            for (int64_t k = 0; k < kc; k++)
                _mm512_mask_storeu_ps(ap + k * MR, all, _mm512_maskz_loadu_ps(m, src + k * lda));
        } else { /* A: (M, K): transpose MR rows, 16 k at a time */
            const float *src = A + (i0 + r) * lda + p0;
            for (int64_t k = 0; k < kc; k += 16)
                nbi_pack_cols_f32(ap + k * MR, MR, all, src + k, lda, mr, nbi_gemm_min(16, kc - k));
        }
    }
}

static inline void nbi_sgemm_pack_b(float *restrict bp, int nrp, bool tb, const float *B, int64_t ldb,
                                    int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    /* nrp: the panel width, a whole number of vectors (NR or NR_NARROW) */
    if (!tb) { /* B: (K, N), op(B)'s row k is contiguous: read it once, left to right, into every panel */
        for (int64_t k = 0; k < kc; k++) {
            const float *src = B + (p0 + k) * ldb + j0;
            for (int64_t s = 0; s < nc; s += nrp) {
                float *dst = bp + s * kc + k * nrp; /* panel s / nrp, row k */
                for (int g = 0; g < nrp / 16; g++) {
                    const int64_t left = nc - s - 16 * g; /* columns of B left from this vector on */
                    _mm512_store_ps(dst + 16 * g, left <= 0 ? _mm512_setzero_ps()
                                                            : _mm512_maskz_loadu_ps(nbi_first16(left), src + s + 16 * g));
                }
            }
        }
        return;
    }
    for (int64_t s = 0; s < nc; s += nrp, bp += kc * nrp) {
        int64_t nr = nbi_gemm_min(nrp, nc - s);
        for (int g = 0; g < nrp / 16; g++) {
            float *dst = bp + 16 * g;
            if (nr <= 16 * g) { /* padding columns */
                for (int64_t k = 0; k < kc; k++)
                    _mm512_store_ps(dst + k * nrp, _mm512_setzero_ps());
            } else { /* B: (N, K): transpose 16 rows (columns of op(B)) at a time */
                const float *src = B + (j0 + s + 16 * g) * ldb + p0;
                for (int64_t k = 0; k < kc; k += 16)
                    nbi_pack_cols_f32(dst + k * nrp, nrp, 0xFFFF, src + k, ldb, nr - 16 * g, nbi_gemm_min(16, kc - k));
            }
        }
    }
}

static inline void nbi_dgemm_pack_a(double *restrict ap, bool ta, const double *A, int64_t lda, int64_t i0,
                                    int64_t mc, int64_t p0, int64_t kc) {
    enum { MR = NBI_DGEMM_MR }; /* groups of 8 rows, the last maybe partial */
    for (int64_t r = 0; r < mc; r += MR, ap += kc * MR) {
        int64_t mr = nbi_gemm_min(MR, mc - r);
        for (int g = 0; g < (MR + 7) / 8; g++) {
            double *dst = ap + 8 * g;
            __mmask8 store = (__mmask8)nbi_first16(MR - 8 * g < 8 ? MR - 8 * g : 8);
            if (mr <= 8 * g) { /* padding rows */
                for (int64_t k = 0; k < kc; k++)
                    _mm512_mask_storeu_pd(dst + k * MR, store, _mm512_setzero_pd());
            } else if (ta) {
                const double *src = A + p0 * lda + i0 + r + 8 * g;
                __mmask8 m = (__mmask8)nbi_first16(mr - 8 * g < 8 ? mr - 8 * g : 8);
                for (int64_t k = 0; k < kc; k++)
                    _mm512_mask_storeu_pd(dst + k * MR, store, _mm512_maskz_loadu_pd(m, src + k * lda));
            } else {
                const double *src = A + (i0 + r + 8 * g) * lda + p0;
                for (int64_t k = 0; k < kc; k += 8)
                    nbi_pack_cols_f64(dst + k * MR, MR, store, src + k, lda, mr - 8 * g, nbi_gemm_min(8, kc - k));
            }
        }
    }
}

static inline void nbi_dgemm_pack_b(double *restrict bp, int nrp, bool tb, const double *B, int64_t ldb,
                                    int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    /* nrp: the panel width, a whole number of vectors (NR or NR_NARROW) */
    if (!tb) { /* as nbi_sgemm_pack_b: row k of op(B) read once into every panel */
        for (int64_t k = 0; k < kc; k++) {
            const double *src = B + (p0 + k) * ldb + j0;
            for (int64_t s = 0; s < nc; s += nrp) {
                double *dst = bp + s * kc + k * nrp;
                for (int g = 0; g < nrp / 8; g++) {
                    const int64_t left = nc - s - 8 * g;
                    _mm512_store_pd(dst + 8 * g,
                                    left <= 0 ? _mm512_setzero_pd()
                                              : _mm512_maskz_loadu_pd((__mmask8)nbi_first16(left < 8 ? left : 8),
                                                                      src + s + 8 * g));
                }
            }
        }
        return;
    }
    for (int64_t s = 0; s < nc; s += nrp, bp += kc * nrp) {
        int64_t nr = nbi_gemm_min(nrp, nc - s);
        for (int g = 0; g < nrp / 8; g++) {
            double *dst = bp + 8 * g;
            if (nr <= 8 * g) {
                for (int64_t k = 0; k < kc; k++)
                    _mm512_store_pd(dst + k * nrp, _mm512_setzero_pd());
            } else {
                const double *src = B + (j0 + s + 8 * g) * ldb + p0;
                for (int64_t k = 0; k < kc; k += 8)
                    nbi_pack_cols_f64(dst + k * nrp, nrp, 0xFF, src + k, ldb, nr - 8 * g, nbi_gemm_min(8, kc - k));
            }
        }
    }
}

#else /* portable: element by element */

#define PACK(NAME_A, NAME_B, T, MR)                                                                                    \
    static inline void NAME_A(T *restrict ap, bool ta, const T *A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,    \
                              int64_t kc) {                                                                            \
        for (int64_t r = 0; r < mc; r += MR, ap += kc * MR) {                                                          \
            int64_t mr = nbi_gemm_min(MR, mc - r);                                                                     \
            for (int64_t k = 0; k < kc; k++)                                                                           \
                for (int64_t i = 0; i < MR; i++)                                                                       \
                    ap[k * MR + i] = i >= mr ? 0                                                                       \
                                     : ta    ? A[(p0 + k) * lda + i0 + r + i]                                          \
                                             : A[(i0 + r + i) * lda + p0 + k];                                         \
        }                                                                                                              \
    }                                                                                                                  \
    static inline void NAME_B(T *restrict bp, int nrp, bool tb, const T *B, int64_t ldb, int64_t p0, int64_t kc,       \
                              int64_t j0, int64_t nc) {                                                                \
        if (!tb) { /* row k of op(B) is contiguous: read it once, left to right, into every panel */              \
            for (int64_t k = 0; k < kc; k++)                                                                           \
                for (int64_t s = 0; s < nc; s += nrp)                                                                  \
                    for (int64_t j = 0; j < nrp; j++)                                                                  \
                        bp[s * kc + k * nrp + j] = s + j >= nc ? 0 : B[(p0 + k) * ldb + j0 + s + j];                   \
            return;                                                                                                    \
        }                                                                                                              \
        for (int64_t s = 0; s < nc; s += nrp, bp += kc * nrp) {                                                        \
            int64_t nr = nbi_gemm_min(nrp, nc - s);                                                                    \
            for (int64_t k = 0; k < kc; k++)                                                                           \
                for (int64_t j = 0; j < nrp; j++)                                                                      \
                    bp[k * nrp + j] = j >= nr ? 0 : B[(j0 + s + j) * ldb + p0 + k];                                    \
        }                                                                                                              \
    }

PACK(nbi_sgemm_pack_a, nbi_sgemm_pack_b, float, NBI_SGEMM_MR)
PACK(nbi_dgemm_pack_a, nbi_dgemm_pack_b, double, NBI_DGEMM_MR)

#endif

/* Packers for an nbi_smat operand of nbi_sgemm_packed. */
static inline void nbi_spack_a_mat(float *restrict dst, int w, const void *mat, int64_t p0, int64_t kc, int64_t i0,
                                   int64_t n) {
    (void)w;
    const nbi_smat *m = mat;
    nbi_sgemm_pack_a(dst, m->trans, m->X, m->ld, i0, n, p0, kc);
}

static inline void nbi_spack_b_mat(float *restrict dst, int w, const void *mat, int64_t p0, int64_t kc, int64_t i0,
                                   int64_t n) {
    const nbi_smat *m = mat;
    nbi_sgemm_pack_b(dst, w, m->trans, m->X, m->ld, p0, kc, i0, n);
}

#undef PACK

#endif
