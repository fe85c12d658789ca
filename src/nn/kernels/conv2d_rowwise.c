/* Float32 Conv2d computed directly along output rows, the pixels in vector
 * lanes, for one CPU set: for convs with few input taps (C/g*kh*kw, stride
 * 1), such as a network's first layer (MNIST's 1 -> 32, 3x3). There the GEMM
 * paths multiply K = 9 deep and spend their time packing: implicit GEMM's
 * weight gradient copied all of dy into its panels, its forward stored a
 * register tile per 9 multiply-adds. Here, from a zero-padded copy of the
 * item's input planes xp (so that every tap of a block of VL pixels is one
 * unaligned vector load),
 *
 *   forward:  y[o, oh, ow..ow+VL) = b[o] + sum over taps k of w[o, k] * xp[tap k of row oh, ow..)
 *   dw:       dw[o, k] = sum over pixels of dy[o, pixel] * xp[tap k of pixel], VL pixels per vector
 *   dx:       the forward of dy with the flipped kernel (conv2d_flip.c)
 *
 * OB output channels share each tap's load (forward); the weight gradient
 * holds OB2 channels x TB taps of lane sums in registers and adds a
 * block's lanes in order at the end of each item, and with them the bias
 * gradient's lane sums (backward). For conv2d_pool.c's fused conv -> relu
 * the forward rectifies as it stores, and backward_relu applies relu's rule
 * to each vector of dy as it loads it (from the rectified output y).
 *
 * Determinism: each output is one sum over the taps in order by one thread
 * (items are split between threads); dw cuts the batch into DW_PIECES fixed
 * pieces of items, each summed in item order into its own partial by one
 * thread, and adds the partials in piece order. */
#include "nn/conv_internal.h"

#include <string.h>

#if defined(NBI_KERNELS_AVX512) || defined(NBI_KERNELS_AVX2)
#include <immintrin.h>
#endif

/* Lanes of one vector value (GCC/clang vector extension: one AVX-512
 * register, two AVX2 ones, four SSE ones). */
#define VL 16
/* Output channels per forward block, and channels x taps of dw's lane sums:
 * as many accumulators as the set's registers hold beside the operands. */
#if defined(NBI_KERNELS_AVX512)
#define OB 8
#define TB 12
#elif defined(NBI_KERNELS_AVX2)
#define OB 4
#define TB 6
#else
#define OB 2
#define TB 3
#endif
#define OB2 2
#define DW_PIECES 4

typedef float rw_vec __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t rw_ivec __attribute__((vector_size(VL * sizeof(int32_t))));

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* (Vectors move through pointers: returned by value, a 64-byte vector
 * changes the ABI of the sets without AVX-512.) */
static inline __attribute__((always_inline)) void vload(rw_vec *v, const float *p) { memcpy(v, p, sizeof *v); }

/* *v <- the first n lanes of p (n < VL), zero in the others; reads only those n. */
static inline __attribute__((always_inline)) void vload_first(rw_vec *v, const float *p, int64_t n) {
#if defined(NBI_KERNELS_AVX512)
    *v = (rw_vec)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#else
    *v = (rw_vec){0};
    for (int64_t i = 0; i < n; i++) (*v)[i] = p[i];
#endif
}

/* p[0 .. n) <- the first n lanes of v (n < VL). */
static inline __attribute__((always_inline)) void vstore_first(float *p, const rw_vec *v, int64_t n) {
#if defined(NBI_KERNELS_AVX512)
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)*v);
#elif defined(NBI_KERNELS_AVX2)
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 lo = _mm256_loadu_ps((const float *)v), hi = _mm256_loadu_ps((const float *)v + 8);
    _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane), lo);
    _mm256_maskstore_ps(p + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n - 8), lane), hi);
#else
    for (int64_t i = 0; i < n; i++) p[i] = (*v)[i];
#endif
}

/* The padded input plane: Hp rows of Wq floats, the conv's padding around
 * x's rows, zero to the right far enough that a vector load at any tap of
 * any block of VL output pixels stays inside it. koff[k]: offset of tap k =
 * (c, i, j) from the first plane's start. */
typedef struct rw_geom {
    int64_t Kg, Hp, Wq, plane;
    int64_t *koff;
} rw_geom;

static bool rw_setup(rw_geom *d, const nbi_conv_geom *g) {
    d->Kg = g->C * g->kh * g->kw;
    d->Hp = g->H + g->pt + g->pb;
    d->Wq = round_up(round_up(g->Wo, VL) + (g->kw - 1) * g->dw, VL);
    if (d->Wq < g->W + g->pl) d->Wq = round_up(g->W + g->pl, VL);
    d->plane = d->Hp * d->Wq;
    d->koff = nbi_alloc((size_t)d->Kg * sizeof(int64_t));
    if (!d->koff) return false;
    for (int64_t k = 0; k < d->Kg; k++) {
        const int64_t c = k / (g->kh * g->kw), i = k % (g->kh * g->kw) / g->kw, j = k % g->kw;
        d->koff[k] = c * d->plane + i * g->dh * d->Wq + j * g->dw;
    }
    return true;
}

/* xp: (C, Hp, Wq) <- x: (C, H, W) in its place; the padding around it stays zero. */
static void pad_item(float *restrict xp, const float *x, const nbi_conv_geom *g, const rw_geom *d) {
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t h = 0; h < g->H; h++)
            memcpy(xp + c * d->plane + (g->pt + h) * d->Wq + g->pl, x + (c * g->H + h) * g->W,
                   (size_t)g->W * sizeof(float));
}

/* acc[q] = sum over taps k of w[(o0+q)*Kg + k] * xp[koff[k] + base ..+VL), q < nq. */
static inline __attribute__((always_inline)) void forward_block(rw_vec acc[OB], const float *restrict xp,
                                                                const float *restrict w, const rw_geom *d, int64_t base,
                                                                int64_t o0, const int nq) {
    for (int q = 0; q < nq; q++) acc[q] = (rw_vec){0};
    for (int64_t k = 0; k < d->Kg; k++) {
        rw_vec xv;
        vload(&xv, xp + d->koff[k] + base);
        for (int q = 0; q < nq; q++) acc[q] += w[(o0 + q) * d->Kg + k] * xv;
    }
}

/* The forward, then relu (nb_relu's rule, x < 0 ? 0 : x) if relu. */
/* Item n's outputs from its padded planes xp, then relu (nb_relu's rule) if
 * relu; inlined with relu a constant, so the plain forward has no test. */
static inline __attribute__((always_inline)) void forward_item(float *y, const float *xp, const float *w,
                                                               const float *b, const nbi_conv_geom *g,
                                                               const rw_geom *d, int64_t n, const bool relu) {
    const int64_t O = g->O, Ho = g->Ho, Wo = g->Wo;
    for (int64_t o0 = 0; o0 < O; o0 += OB) {
        const int nq = (int)min64(OB, O - o0);
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow += VL) {
                rw_vec acc[OB];
                if (nq == OB)
                    forward_block(acc, xp, w, d, oh * d->Wq + ow, o0, OB);
                else
                    forward_block(acc, xp, w, d, oh * d->Wq + ow, o0, nq);
                for (int q = 0; q < nq; q++) {
                    rw_vec v = acc[q] + (b ? b[o0 + q] : 0.0f);
                    if (relu) v = (rw_vec)((rw_ivec)v & ~(v < 0)); /* NaN and -0 stay */
                    float *yr = y + ((n * O + o0 + q) * Ho + oh) * Wo + ow;
                    if (Wo - ow >= VL)
                        memcpy(yr, &v, sizeof v);
                    else
                        vstore_first(yr, &v, Wo - ow);
                }
            }
    }
}

static nb_status forward_any(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g,
                             bool relu) {
    const int64_t N = g->N, O = g->O, L = g->Ho * g->Wo, CHW = g->C * g->H * g->W;
    rw_geom d;
    if (!rw_setup(&d, g)) return nbi_error(NB_ERR_NOMEM, "conv2d: out of memory for the rowwise tables");
    const size_t pbytes = (size_t)(g->C * d.plane) * sizeof(float);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (N > 1 && N * O * L * d.Kg > NBI_PAR_MIN)") {
        /* xp: (C, Hp, Wq), one item; zeroed once: pad_item writes only the input's place, the same for every item */
        float *xp = nbi_conv_zeroed_buffer(pbytes, &st);
        _Pragma("omp for schedule(static)") for (int64_t n = 0; n < N; n++) {
            if (!xp) continue;
            pad_item(xp, x + n * CHW, g, &d);
            if (relu)
                forward_item(y, xp, w, b, g, &d, n, true);
            else
                forward_item(y, xp, w, b, g, &d, n, false);
        }
        if (xp) nbi_free(xp, pbytes);
    }
    nbi_free(d.koff, (size_t)d.Kg * sizeof(int64_t));
    if (st != NB_OK) return nbi_error(st, "conv2d: out of memory for a %zu-byte padded input", pbytes);
    return NB_OK;
}

static nb_status forward_rowwise(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    return forward_any(y, x, w, b, g, false);
}

static nb_status forward_relu_rowwise(float *y, const float *x, const float *w, const float *b,
                                      const nbi_conv_geom *g) {
    return forward_any(y, x, w, b, g, true);
}

static nb_status dx_rowwise(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    return nbi_conv2d_dx_by_forward(dx, dy, w, g, forward_rowwise);
}

/* s[q][t] += lane sums of g[o0+q] * xp[tap k0+t] over one item's pixels,
 * q < nq, t < nt, and with sb sb[q] += lane sums of g[o0+q]: one vector of
 * lane sums each, added into s (sb) in lane order at the end. g is dy, or
 * with y relu's gradient of it (nb_relu's rule: 0 where y <= 0). */
static inline __attribute__((always_inline)) void dw_block(float *restrict s, float *restrict sb,
                                                           const float *restrict dyn, const float *restrict yn,
                                                           const float *restrict xp, const rw_geom *d,
                                                           const nbi_conv_geom *g, int64_t o0, int nq, int64_t k0,
                                                           const int nt) {
    const int64_t Ho = g->Ho, Wo = g->Wo;
    rw_vec acc[OB2][TB], accb[OB2];
    for (int q = 0; q < nq; q++) {
        accb[q] = (rw_vec){0};
        for (int t = 0; t < nt; t++) acc[q][t] = (rw_vec){0};
    }
    for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow += VL) {
            rw_vec gv[OB2];
            for (int q = 0; q < nq; q++) {
                const int64_t e = ((o0 + q) * Ho + oh) * Wo + ow;
                rw_vec yv;
                if (Wo - ow >= VL) {
                    vload(&gv[q], dyn + e);
                    if (yn) vload(&yv, yn + e);
                } else { /* lanes past the row: 0 */
                    vload_first(&gv[q], dyn + e, Wo - ow);
                    if (yn) vload_first(&yv, yn + e, Wo - ow);
                }
                if (yn) gv[q] = (rw_vec)((rw_ivec)gv[q] & ~(yv <= 0)); /* NaN passes, as in nb_relu */
                if (sb) accb[q] += gv[q];
            }
            const float *xb = xp + oh * d->Wq + ow;
            for (int t = 0; t < nt; t++) {
                rw_vec xv;
                vload(&xv, xb + d->koff[k0 + t]);
                for (int q = 0; q < nq; q++) acc[q][t] += gv[q] * xv;
            }
        }
    for (int q = 0; q < nq; q++) {
        for (int t = 0; t < nt; t++) {
            float a = 0;
            for (int l = 0; l < VL; l++) a += acc[q][t][l];
            s[(o0 + q) * d->Kg + k0 + t] += a;
        }
        if (!sb) continue;
        float a = 0;
        for (int l = 0; l < VL; l++) a += accb[q][l];
        sb[o0 + q] += a;
    }
}

/* dw_block with nt a constant, so that the lane sums stay in registers (a
 * first layer's 9 or 27 taps are a whole number of blocks of 9 or 3); nt 0:
 * the bias sums alone. */
static inline __attribute__((always_inline)) void dw_block_nt(float *s, float *sb, const float *dyn, const float *yn,
                                                              const float *xp, const rw_geom *d, const nbi_conv_geom *g,
                                                              int64_t o0, int nq, int64_t k0, int nt) {
    if (nq != OB2) {
        dw_block(s, sb, dyn, yn, xp, d, g, o0, nq, k0, nt);
        return;
    }
    switch (nt) {
#if TB >= 12
    case 9: dw_block(s, sb, dyn, yn, xp, d, g, o0, OB2, k0, 9); break;
    case 12: dw_block(s, sb, dyn, yn, xp, d, g, o0, OB2, k0, 12); break;
#endif
#if TB >= 6
    case 6: dw_block(s, sb, dyn, yn, xp, d, g, o0, OB2, k0, 6); break;
#endif
    case 3: dw_block(s, sb, dyn, yn, xp, d, g, o0, OB2, k0, 3); break;
    case 0: dw_block(s, sb, dyn, yn, xp, d, g, o0, OB2, k0, 0); break;
    default: dw_block(s, sb, dyn, yn, xp, d, g, o0, OB2, k0, nt); break;
    }
}

/* ... and without relu's loads and masks in the loop when there is no y */
static void dw_block_n(float *s, float *sb, const float *dyn, const float *yn, const float *xp, const rw_geom *d,
                       const nbi_conv_geom *g, int64_t o0, int nq, int64_t k0, int nt) {
    if (yn)
        dw_block_nt(s, sb, dyn, yn, xp, d, g, o0, nq, k0, nt);
    else
        dw_block_nt(s, sb, dyn, NULL, xp, d, g, o0, nq, k0, nt);
}

/* dw and db (either NULL) from dy, or with y from relu's gradient of dy.
 * Each piece of items sums into its own partial (O*Kg weights, then O
 * biases), the pieces added in order; the bias sums are the same whether or
 * not dw is wanted. */
static nb_status grads_rowwise(float *dw, float *db, const float *dy, const float *y, const float *x,
                               const nbi_conv_geom *g) {
    const int64_t N = g->N, O = g->O, CHW = g->C * g->H * g->W, L = g->Ho * g->Wo;
    rw_geom d;
    if (!rw_setup(&d, g)) return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for the rowwise tables");
    const int64_t pieces = N < DW_PIECES ? N : DW_PIECES, wsize = O * d.Kg, psize = wsize + O;
    const size_t pbytes = (size_t)(g->C * d.plane) * sizeof(float), sbytes = (size_t)(pieces * psize) * sizeof(float);
    float *part = nbi_alloc(sbytes); // part: (pieces, O*Kg + O)
    if (!part) {
        nbi_free(d.koff, (size_t)d.Kg * sizeof(int64_t));
        return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of weight partials", sbytes);
    }
    memset(part, 0, sbytes);
    const int64_t taps = dw ? d.Kg : 0;
    nb_status st = NB_OK;
    _Pragma("omp parallel if (pieces > 1 && N * O * L * d.Kg > NBI_PAR_MIN)") {
        float *xp = dw ? nbi_conv_zeroed_buffer(pbytes, &st) : NULL;
        _Pragma("omp for schedule(static)") for (int64_t pc = 0; pc < pieces; pc++) {
            if (dw && !xp) continue;
            float *s = part + pc * psize, *sb = db ? s + wsize : NULL;
            for (int64_t n = pc * N / pieces; n < (pc + 1) * N / pieces; n++) {
                if (dw) pad_item(xp, x + n * CHW, g, &d);
                const float *dyn = dy + n * O * L, *yn = y ? y + n * O * L : NULL;
                for (int64_t o0 = 0; o0 < O; o0 += OB2) {
                    const int nq = (int)min64(OB2, O - o0);
                    for (int64_t k0 = 0; k0 == 0 || k0 < taps; k0 += TB)
                        dw_block_n(s, k0 == 0 ? sb : NULL, dyn, yn, xp, &d, g, o0, nq, k0,
                                   (int)min64(TB, taps - k0));
                }
            }
        }
        if (xp) nbi_free(xp, pbytes);
    }
    nbi_free(d.koff, (size_t)d.Kg * sizeof(int64_t));
    if (st == NB_OK) {
        nbi_conv_add_partials(part, part + psize, pieces - 1, psize);
        if (dw) memcpy(dw, part, (size_t)wsize * sizeof(float));
        if (db) memcpy(db, part + wsize, (size_t)O * sizeof(float));
    }
    nbi_free(part, sbytes);
    if (st != NB_OK) return nbi_error(st, "conv2d backward: out of memory for a %zu-byte padded input", pbytes);
    return NB_OK;
}

static nb_status dw_rowwise(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    return grads_rowwise(dw, NULL, dy, NULL, x, g);
}

static nb_status backward_rowwise(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                  const nbi_conv_geom *g) {
    nb_status st = dw || db ? grads_rowwise(dw, db, dy, NULL, x, g) : NB_OK;
    if (st == NB_OK && dx) st = dx_rowwise(dx, dy, w, g);
    return st;
}

static nb_status backward_relu_rowwise(float *dw, float *db, const float *dy, const float *y, const float *x,
                                       const nbi_conv_geom *g) {
    return grads_rowwise(dw, db, dy, y, x, g);
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_rowwise_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_rowwise_avx2
#else
#define THIS_SET nbi_conv2d_rowwise_portable
#endif
const nbi_conv2d_kernels THIS_SET = {.forward = forward_rowwise,
                                     .dx = dx_rowwise,
                                     .dw = dw_rowwise,
                                     .backward = backward_rowwise,
                                     .forward_relu = forward_relu_rowwise,
                                     .backward_relu = backward_relu_rowwise};
