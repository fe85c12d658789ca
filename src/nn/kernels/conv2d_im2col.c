/* Float32 Conv2d by im2col + GEMM (the derivation is in docs/conv2d.md), for
 * one CPU set:
 *
 *   forward:  y_n,g (Og, L) = W_g (Og, Kg) x col_g(x_n) (Kg, L)          per item and group
 *   dx:       dcol_g (Kg, L) = W_gᵀ x dY_n,g (Og, L), then col2im        per item
 *   dw:       dW_g (Og, Kg) = sum over n of dY_n,g (Og, L) x col_g(x_n)ᵀ (L, Kg)
 *
 * with L = Ho*Wo and Kg = C/g*kh*kw. A pointwise conv (1x1, stride 1,
 * unpadded) has col = x and dx = dcol: its table (nbi_conv2d_pointwise_*)
 * runs the same code without the copies.
 *
 * Threads: the forward and dx split the batch (each item's output belongs
 * to one thread, which owns one column buffer); dw cuts the batch into a
 * fixed number of chunks (a function of the shapes only) whose partials are
 * added in chunk order. Inside a parallel region the GEMM runs on one
 * thread; with a single item the region is inactive and the GEMM spreads its
 * tiles instead. The GEMM never splits K, so no choice here changes any
 * element's summation order. */
#include "nn/conv_internal.h"
#include "nn/kernels/conv2d_rows.h"
#include "tensor/kernels/gemm_micro.h"

#ifdef _OPENMP
#include <omp.h>
static int max_threads(void) { return omp_get_max_threads(); }
static int thread_num(void) { return omp_get_thread_num(); }
#else
static int max_threads(void) { return 1; }
static int thread_num(void) { return 0; }
#endif

/* Upper bound on the batch chunks of the weight gradient, and on the memory
 * their partial sums may take (fewer chunks for very large weights). */
#define MAX_CHUNKS 16
#define PARTIAL_BUDGET ((size_t)64 << 20)

/* col: (C*kh*kw, Ho*Wo) <- the receptive fields of x: (C, H, W), zero outside. */
static void im2col(float *col, const float *x, const nbi_conv_geom *g, int64_t C) {
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, L = Ho * Wo;
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                float *row = col + ((c * g->kh + i) * g->kw + j) * L;
                const float *xc = x + c * H * W;
                int64_t lo, hi;
                nbi_conv_valid_range(j * g->dw - g->pl, g->sw, W, Wo, &lo, &hi);
                const int64_t off = j * g->dw - g->pl;
                for (int64_t oh = 0; oh < Ho; oh++) {
                    float *r = row + oh * Wo;
                    const int64_t ih = oh * g->sh - g->pt + i * g->dh;
                    if (ih < 0 || ih >= H) {
                        for (int64_t ow = 0; ow < Wo; ow++) r[ow] = 0;
                        continue;
                    }
                    const int64_t base = ih * W + off;
                    for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0;
                    if (g->sw == 1)
                        for (int64_t ow = lo; ow < hi; ow++) r[ow] = xc[base + ow];
                    else if (g->sw == 2)
                        nbi_copy_stride2_f32(r + lo, xc + base + 2 * lo, hi - lo);
                    else
                        for (int64_t ow = lo; ow < hi; ow++) r[ow] = xc[base + ow * g->sw];
                    for (int64_t ow = hi; ow < Wo; ow++) r[ow] = 0;
                }
            }
}

/* colt: (Ho*Wo, C*kh*kw) <- the transpose of im2col's matrix, built directly.
 * The weight gradient dY colᵀ then becomes a plain (untransposed) product,
 * whose rows the GEMM streams contiguously. */
static void im2col_t(float *colt, const float *x, const nbi_conv_geom *g, int64_t C) {
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, kh = g->kh, kw = g->kw, K = C * kh * kw;
    for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
            float *r = colt + (oh * Wo + ow) * K;
            const int64_t ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
            if (ih0 >= 0 && ih0 + (kh - 1) * g->dh < H && iw0 >= 0 && iw0 + (kw - 1) * g->dw < W) {
                /* the whole receptive field is inside the input: no checks */
                for (int64_t c = 0; c < C; c++)
                    for (int64_t i = 0; i < kh; i++) {
                        const float *xr = x + (c * H + ih0 + i * g->dh) * W + iw0;
                        float *ri = r + (c * kh + i) * kw;
                        for (int64_t j = 0; j < kw; j++) ri[j] = xr[j * g->dw];
                    }
                continue;
            }
            for (int64_t c = 0; c < C; c++) {
                const float *xc = x + c * H * W;
                for (int64_t i = 0; i < kh; i++) {
                    float *ri = r + (c * kh + i) * kw;
                    const int64_t ih = ih0 + i * g->dh;
                    if (ih < 0 || ih >= H) {
                        for (int64_t j = 0; j < kw; j++) ri[j] = 0;
                        continue;
                    }
                    const float *xr = xc + ih * W;
                    for (int64_t j = 0; j < kw; j++) {
                        const int64_t iw = iw0 + j * g->dw;
                        ri[j] = iw >= 0 && iw < W ? xr[iw] : 0;
                    }
                }
            }
        }
}

/* x: (C, H, W) <- the sum of every column entry back onto the pixel it was
 * read from (the adjoint of im2col). One fixed loop order, so deterministic. */
static void col2im(float *x, const float *col, const nbi_conv_geom *g, int64_t C) {
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, L = Ho * Wo;
    for (int64_t k = 0; k < C * H * W; k++) x[k] = 0;
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                const float *row = col + ((c * g->kh + i) * g->kw + j) * L;
                float *xc = x + c * H * W;
                int64_t lo, hi;
                nbi_conv_valid_range(j * g->dw - g->pl, g->sw, W, Wo, &lo, &hi);
                const int64_t off = j * g->dw - g->pl;
                for (int64_t oh = 0; oh < Ho; oh++) {
                    const int64_t ih = oh * g->sh - g->pt + i * g->dh;
                    if (ih < 0 || ih >= H) continue;
                    const float *r = row + oh * Wo;
                    const int64_t base = ih * W + off;
                    if (g->sw == 1)
                        nbi_add_run_f32(xc + base + lo, r + lo, hi - lo);
                    else if (g->sw == 2)
                        nbi_add_stride2_f32(xc + base + 2 * lo, r + lo, hi - lo);
                    else
                        for (int64_t ow = lo; ow < hi; ow++) xc[base + ow * g->sw] += r[ow];
                }
            }
}

/* C (M, N) = op(A) (M, K) x B (K, N), B not transposed, as nbi_sgemm, but
 * when N is a few columns past whole wide tiles (a 14x14 image: 196 = 4 x
 * 48 + 4) those columns go to a second call, which the GEMM runs with its
 * narrow tile instead of padding a wide one (same arithmetic per element,
 * so the same bits; the wide tile cost as much for 4 columns as for 48). */
static void gemm_cols(bool ta, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                      int64_t ldb, float *C, int64_t ldc) {
    const int64_t rest = N % NBI_SGEMM_NR, wide = N - rest;
    if (wide > 0 && rest > 0 && rest <= 2 * NBI_SGEMM_NR_NARROW && NBI_SGEMM_NR > 2 * NBI_SGEMM_NR_NARROW) {
        nbi_sgemm(ta, false, M, wide, K, 1, A, lda, B, ldb, 0, C, ldc);
        nbi_sgemm(ta, false, M, rest, K, 1, A, lda, B + wide, ldb, 0, C + wide, ldc);
        return;
    }
    nbi_sgemm(ta, false, M, N, K, 1, A, lda, B, ldb, 0, C, ldc);
}

/* direct: pointwise, x is its own column matrix */
static nb_status forward_cols(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g,
                              bool direct) {
    const int64_t N = g->N, C = g->C, O = g->O, L = g->Ho * g->Wo;
    const int64_t Og = O / g->groups, Kg = (C / g->groups) * g->kh * g->kw;
    /* One im2col buffer per thread, allocated once for the whole batch. */
    const int nt = N > 1 ? max_threads() : 1;
    const size_t colsize = (size_t)(C * g->kh * g->kw * L);
    const size_t bytes = direct ? 0 : (size_t)nt * colsize * sizeof(float);
    float *scratch = NULL;
    if (!direct) {
        scratch = nbi_alloc(bytes);
        if (!scratch) return nbi_error(NB_ERR_NOMEM, "conv2d: out of memory for a %zu-byte im2col buffer", bytes);
    }
    /* Items are independent: each thread writes only its own y[n]. With one
     * item the region is inactive and the GEMM parallelises over its tiles. */
    _Pragma("omp parallel for schedule(static) if (N > 1)")
    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + n * C * g->H * g->W; // xn: (C, H, W)
        float *yn = y + n * O * L;                 // yn: (O, Ho*Wo)
        const float *col = xn;                     // col: (C*kh*kw, Ho*Wo)
        if (!direct) {
            float *c = scratch + (size_t)thread_num() * colsize;
            im2col(c, xn, g, C);
            col = c;
        }
        for (int64_t gi = 0; gi < g->groups; gi++)
            gemm_cols(false, Og, L, Kg, w + gi * Og * Kg, Kg, col + gi * Kg * L, L, yn + gi * Og * L, L);
        if (b)
            for (int64_t o = 0; o < O; o++)
                for (int64_t l = 0; l < L; l++) yn[o * L + l] += b[o];
    }
    if (scratch) nbi_free(scratch, bytes);
    return NB_OK;
}

static nb_status dx_cols(float *dx, const float *dy, const float *w, const nbi_conv_geom *g, bool direct) {
    const int64_t N = g->N, C = g->C, O = g->O, L = g->Ho * g->Wo, CHW = C * g->H * g->W;
    const int64_t Og = O / g->groups, Kg = (C / g->groups) * g->kh * g->kw;
    const int nt = N > 1 ? max_threads() : 1;
    const size_t colsize = (size_t)(C * g->kh * g->kw * L);
    const size_t bytes = direct ? 0 : (size_t)nt * colsize * sizeof(float);
    float *scratch = NULL; // scratch: (threads, C*kh*kw, Ho*Wo)
    if (!direct) {
        scratch = nbi_alloc(bytes);
        if (!scratch)
            return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for a %zu-byte column buffer", bytes);
    }
    /* Every item is independent: each thread writes only its own dx[n]. */
    _Pragma("omp parallel for schedule(static) if (N > 1)")
    for (int64_t n = 0; n < N; n++) {
        const float *dyn = dy + n * O * L; // dyn: (O, Ho*Wo)
        float *dxn = dx + n * CHW;         // dxn: (C, H, W)
        float *dcol = direct ? dxn : scratch + (size_t)thread_num() * colsize;
        for (int64_t gi = 0; gi < g->groups; gi++)
            gemm_cols(true, Kg, L, Og, w + gi * Og * Kg, Kg, dyn + gi * Og * L, L, dcol + gi * Kg * L, L);
        if (!direct) col2im(dxn, dcol, g, C);
    }
    if (scratch) nbi_free(scratch, bytes);
    return NB_OK;
}

/* dw is a sum over the batch. The batch is cut into a FIXED number of
 * chunks (a function of the shapes only, never of the thread count); each
 * chunk sums its items in order into its own partial (chunk 0 straight into
 * dw) and the partials are added in chunk order, so the bits are the same at
 * any thread count. */
static nb_status dw_cols(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, L = g->Ho * g->Wo, CHW = C * g->H * g->W;
    const int64_t Og = O / g->groups, Kg = (C / g->groups) * g->kh * g->kw, wsize = O * Kg;
    int64_t nchunk = N < MAX_CHUNKS ? N : MAX_CHUNKS;
    while (nchunk > 1 && (size_t)(nchunk - 1) * (size_t)wsize * sizeof(float) > PARTIAL_BUDGET) nchunk--;
    const size_t pbytes = (size_t)(nchunk - 1) * (size_t)wsize * sizeof(float);
    const int nt = nchunk > 1 ? max_threads() : 1;
    const int64_t Ckk = C * g->kh * g->kw;
    const size_t colsize = (size_t)(Ckk * L);
    const size_t sbytes = (size_t)nt * colsize * sizeof(float);
    float *part = pbytes ? nbi_alloc(pbytes) : NULL; // part: (nchunk-1, O, C/g*kh*kw)
    float *scratch = nbi_alloc(sbytes);              // scratch: (threads, Ho*Wo, C*kh*kw)
    if ((pbytes && !part) || !scratch) {
        if (part) nbi_free(part, pbytes);
        if (scratch) nbi_free(scratch, sbytes);
        return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of scratch", pbytes + sbytes);
    }
    _Pragma("omp parallel for schedule(static) if (nchunk > 1)")
    for (int64_t ch = 0; ch < nchunk; ch++) {
        const int64_t n0 = ch * N / nchunk, n1 = (ch + 1) * N / nchunk;
        float *dwc = ch == 0 ? dw : part + (size_t)(ch - 1) * (size_t)wsize;
        float *colt = scratch + (size_t)thread_num() * colsize;
        for (int64_t n = n0; n < n1; n++) {
            /* dW_g += dY_g (Og, L) x colᵀ[:, g] (L, Kg) */
            im2col_t(colt, x + n * CHW, g, C);
            for (int64_t gi = 0; gi < g->groups; gi++)
                nbi_sgemm(false, false, Og, Kg, L, 1, dy + n * O * L + gi * Og * L, L, colt + gi * Kg, Ckk,
                          n == n0 ? 0 : 1, dwc + gi * Og * Kg, Kg);
        }
    }
    if (part) {
        nbi_conv_add_partials(dw, part, nchunk - 1, wsize);
        nbi_free(part, pbytes);
    }
    nbi_free(scratch, sbytes);
    return NB_OK;
}

static nb_status forward_im2col(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    return forward_cols(y, x, w, b, g, false);
}
static nb_status dx_im2col(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    return dx_cols(dx, dy, w, g, false);
}
static nb_status forward_pointwise(float *y, const float *x, const float *w, const float *b,
                                   const nbi_conv_geom *g) {
    return forward_cols(y, x, w, b, g, true);
}
static nb_status dx_pointwise(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    return dx_cols(dx, dy, w, g, true);
}

#if defined(NBI_KERNELS_AVX512)
#define IM2COL_TABLE nbi_conv2d_im2col_avx512
#define POINTWISE_TABLE nbi_conv2d_pointwise_avx512
#elif defined(NBI_KERNELS_AVX2)
#define IM2COL_TABLE nbi_conv2d_im2col_avx2
#define POINTWISE_TABLE nbi_conv2d_pointwise_avx2
#else
#define IM2COL_TABLE nbi_conv2d_im2col_portable
#define POINTWISE_TABLE nbi_conv2d_pointwise_portable
#endif
const nbi_conv2d_kernels IM2COL_TABLE = {.forward = forward_im2col, .dx = dx_im2col, .dw = dw_cols};
/* (dw builds colᵀ = xᵀ as for any conv: a plain product streams better) */
const nbi_conv2d_kernels POINTWISE_TABLE = {.forward = forward_pointwise, .dx = dx_pointwise, .dw = dw_cols};
