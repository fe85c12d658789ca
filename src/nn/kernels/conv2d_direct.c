/* Float32 Conv2d computed directly, the output channels in vector lanes, for
 * one CPU set. For convs with few output channels per group (LeNet's
 * 6 -> 16 5x5), the GEMM paths have M = O/g rows, a sliver of the
 * micro-kernel's tile, and pack C/g*kh*kw im2col rows per output pixel for
 * only O/g multiply-adds each: packing, not arithmetic, was their time.
 * Here nothing is packed: with the weights transposed to wt (taps, O/g),
 * padded to whole vectors,
 *
 *   forward:  y[n, :, l] = b + sum over taps k of wt[k, :] * x[n, tap k of pixel l]
 *   dw:       wt-shaped sum over n, l of dyᵀ[n, l, :] * x[n, tap k of pixel l]
 *   dx:       stride 1: the forward of dy with the flipped kernel (conv2d_flip.c)
 *
 * the input read in place (or from a zero-padded copy when the conv pads)
 * as broadcast scalars, PB pixels (forward) or TB taps (dw) per register
 * block, one vector of output channels at a time.
 *
 * Determinism: every output is one sum over the taps in order, by one thread
 * (the batch is split between threads). dw cuts the batch into a fixed
 * number of pieces (a function of the shapes only), each summed in order
 * into its own partial by one thread, and the partials are added in piece
 * order. */
#include "nn/conv_internal.h"

#include <string.h>

/* Lanes of one vector value (GCC/clang vector extension: one AVX-512
 * register, two AVX2 ones, four SSE ones). */
#define VL 16
/* Pixels per forward block and taps per dw block: as many accumulators as
 * the set's registers hold beside the operands. */
#if defined(NBI_KERNELS_AVX512)
#define PB 12
#elif defined(NBI_KERNELS_AVX2)
#define PB 6
#else
#define PB 3
#endif
#define TB PB
/* Fixed number of batch pieces for dw (fewer for small batches). */
#define DW_PIECES 4

typedef float dr_vec __attribute__((vector_size(VL * sizeof(float))));

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The shapes every phase shares: the (padded) plane the taps read, the
 * offsets of the taps and of the output pixels in it, the weights' width. */
typedef struct direct_geom {
    int64_t Og, Cg, Kg, Ov, Hp, Wp, L;
    bool padded;
    int64_t *koff; // koff[k]: offset of tap k = (c, i, j) from the group's first channel
    int64_t *pos;  // pos[l]: offset of output pixel l's tap (0, 0) in a channel
} direct_geom;

static size_t tables_bytes(const nbi_conv_geom *g) {
    return (size_t)((g->C / g->groups) * g->kh * g->kw + g->Ho * g->Wo) * sizeof(int64_t);
}

static bool direct_setup(direct_geom *d, const nbi_conv_geom *g) {
    d->Og = g->O / g->groups, d->Cg = g->C / g->groups, d->Kg = d->Cg * g->kh * g->kw;
    d->Ov = (d->Og + VL - 1) / VL * VL, d->L = g->Ho * g->Wo;
    d->Hp = g->H + g->pt + g->pb, d->Wp = g->W + g->pl + g->pr;
    d->padded = d->Hp != g->H || d->Wp != g->W;
    d->koff = nbi_alloc(tables_bytes(g));
    if (!d->koff) return false;
    d->pos = d->koff + d->Kg;
    for (int64_t k = 0; k < d->Kg; k++) {
        const int64_t c = k / (g->kh * g->kw), i = k % (g->kh * g->kw) / g->kw, j = k % g->kw;
        d->koff[k] = c * d->Hp * d->Wp + i * g->dh * d->Wp + j * g->dw;
    }
    for (int64_t l = 0; l < d->L; l++) d->pos[l] = l / g->Wo * g->sh * d->Wp + l % g->Wo * g->sw;
    return true;
}

/* xp: (C, Hp, Wp) <- x: (C, H, W) with the conv's zero padding around it. */
static void pad_item(float *restrict xp, const float *x, const nbi_conv_geom *g, int64_t Hp, int64_t Wp) {
    const int64_t H = g->H, W = g->W;
    for (int64_t c = 0; c < g->C; c++) {
        float *pc = xp + c * Hp * Wp;
        const float *xc = x + c * H * W;
        for (int64_t r = 0; r < Hp * Wp; r++) pc[r] = 0;
        for (int64_t h = 0; h < H; h++) memcpy(pc + (g->pt + h) * Wp + g->pl, xc + h * W, (size_t)W * sizeof(float));
    }
}

/* wt: (G, Kg, Ov) <- w: (O, Cg, kh, kw) transposed per group, lanes past Og zero. */
static void transpose_weights(float *restrict wt, const float *w, const direct_geom *d, int64_t G) {
    for (int64_t gi = 0; gi < G; gi++)
        for (int64_t k = 0; k < d->Kg; k++)
            for (int64_t o = 0; o < d->Ov; o++)
                wt[(gi * d->Kg + k) * d->Ov + o] = o < d->Og ? w[(gi * d->Og + o) * d->Kg + k] : 0;
}

/* One vector of output channels of PB pixels l0.. (clamped to the last
 * pixel past L): acc[b] = sum over taps k of wv[k] * xg[koff[k] + pos[l]]. */
static inline __attribute__((always_inline)) void forward_block(dr_vec acc[PB], const float *restrict xg,
                                                                const float *restrict wv, int64_t Ov,
                                                                const direct_geom *d, int64_t l0) {
    int64_t p[PB];
    for (int b = 0; b < PB; b++) p[b] = d->pos[min64(l0 + b, d->L - 1)];
    const dr_vec zero = {0};
    for (int b = 0; b < PB; b++) acc[b] = zero;
    for (int64_t k = 0; k < d->Kg; k++) {
        dr_vec w;
        memcpy(&w, wv + k * Ov, sizeof w);
        const float *xk = xg + d->koff[k];
        for (int b = 0; b < PB; b++) acc[b] += w * xk[p[b]];
    }
}

/* The same for nb consecutive pixels of one output row with column stride 1
 * (their taps are consecutive floats from xg + p0 + koff[k]: one base
 * pointer and constant offsets, where the general block above needs an
 * address per pixel). nb a literal at the call sites. */
static inline __attribute__((always_inline)) void forward_run(dr_vec acc[PB], const float *restrict xg,
                                                              const float *restrict wv, int64_t Ov,
                                                              const direct_geom *d, int64_t p0, const int nb) {
    const dr_vec zero = {0};
    for (int b = 0; b < nb; b++) acc[b] = zero;
    for (int64_t k = 0; k < d->Kg; k++) {
        dr_vec w;
        memcpy(&w, wv + k * Ov, sizeof w);
        const float *xk = xg + d->koff[k] + p0;
        for (int b = 0; b < nb; b++) acc[b] += w * xk[b];
    }
}

/* forward_run with nb a constant (1 <= nb <= PB). */
static void forward_run_n(dr_vec acc[PB], const float *xg, const float *wv, int64_t Ov, const direct_geom *d,
                          int64_t p0, int64_t nb) {
    switch (nb) {
    case 1: forward_run(acc, xg, wv, Ov, d, p0, 1); break;
    case 2: forward_run(acc, xg, wv, Ov, d, p0, 2); break;
    case 3: forward_run(acc, xg, wv, Ov, d, p0, 3); break;
#if PB > 3
    case 4: forward_run(acc, xg, wv, Ov, d, p0, 4); break;
    case 5: forward_run(acc, xg, wv, Ov, d, p0, 5); break;
#endif
#if PB > 6
    case 6: forward_run(acc, xg, wv, Ov, d, p0, 6); break;
    case 7: forward_run(acc, xg, wv, Ov, d, p0, 7); break;
    case 8: forward_run(acc, xg, wv, Ov, d, p0, 8); break;
    case 9: forward_run(acc, xg, wv, Ov, d, p0, 9); break;
    case 10: forward_run(acc, xg, wv, Ov, d, p0, 10); break;
    case 11: forward_run(acc, xg, wv, Ov, d, p0, 11); break;
#endif
    default: forward_run(acc, xg, wv, Ov, d, p0, PB); break;
    }
}

/* yv (nv, L) columns l0 .. l0+nb-1 <- acc[0..nb) + bias. */
static void store_block(float *yv, int64_t L, int64_t l0, int64_t nb, int64_t nv, const dr_vec acc[PB],
                        const float *bias) {
    float t[PB][VL];
    memcpy(t, acc, sizeof t);
    for (int64_t o = 0; o < nv; o++) {
        const float bo = bias ? bias[o] : 0;
        for (int64_t q = 0; q < nb; q++) yv[o * L + l0 + q] = t[q][o] + bo;
    }
}

static nb_status forward_direct(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, G = g->groups, CHW = C * g->H * g->W;
    direct_geom d;
    if (!direct_setup(&d, g)) return nbi_error(NB_ERR_NOMEM, "conv2d: out of memory for the direct tables");
    const int64_t L = d.L, Ov = d.Ov;
    const size_t wbytes = (size_t)(G * d.Kg * Ov) * sizeof(float), pbytes = (size_t)(C * d.Hp * d.Wp) * sizeof(float);
    float *wt = nbi_alloc(wbytes); // wt: (G, Kg, Ov)
    if (!wt) {
        nbi_free(d.koff, tables_bytes(g));
        return nbi_error(NB_ERR_NOMEM, "conv2d: out of memory for %zu bytes of transposed weights", wbytes);
    }
    transpose_weights(wt, w, &d, G);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (N > 1 && N * O * L * d.Kg > NBI_PAR_MIN)") {
        float *xp = d.padded ? nbi_alloc(pbytes) : NULL; // xp: (C, Hp, Wp), one item
        if (d.padded && !xp) {
            _Pragma("omp critical(nbi_conv_direct)") st = NB_ERR_NOMEM;
        }
        _Pragma("omp for schedule(static)") for (int64_t n = 0; n < N; n++) {
            if (d.padded && !xp) continue;
            const float *xn = x + n * CHW; // xn: (C, H, W)
            if (d.padded) {
                pad_item(xp, xn, g, d.Hp, d.Wp);
                xn = xp;
            }
            for (int64_t gi = 0; gi < G; gi++)
                for (int64_t v = 0; v < Ov; v += VL) {
                    const int64_t nv = min64(VL, d.Og - v);
                    float *yv = y + (n * O + gi * d.Og + v) * L; // yv: (nv, L)
                    const float *xg = xn + gi * d.Cg * d.Hp * d.Wp, *wv = wt + gi * d.Kg * Ov + v;
                    const float *bv = b ? b + gi * d.Og + v : NULL;
                    dr_vec acc[PB];
                    if (g->sw == 1) { /* runs along each output row */
                        for (int64_t l0 = 0; l0 < L; l0 += g->Wo)
                            for (int64_t q0 = 0; q0 < g->Wo; q0 += PB) {
                                const int64_t nb = min64(PB, g->Wo - q0);
                                forward_run_n(acc, xg, wv, Ov, &d, d.pos[l0] + q0, nb);
                                store_block(yv, L, l0 + q0, nb, nv, acc, bv);
                            }
                        continue;
                    }
                    for (int64_t l0 = 0; l0 < L; l0 += PB) {
                        forward_block(acc, xg, wv, Ov, &d, l0);
                        store_block(yv, L, l0, min64(PB, L - l0), nv, acc, bv);
                    }
                }
        }
        if (xp) nbi_free(xp, pbytes);
    }
    nbi_free(wt, wbytes);
    nbi_free(d.koff, tables_bytes(g));
    if (st != NB_OK) return nbi_error(st, "conv2d: out of memory for a %zu-byte padded input", pbytes);
    return NB_OK;
}

/* acc (TB taps k0.., clamped to the last tap; one vector of output
 * channels, in memory at s with stride Ov) += sum over pixels l of
 * dyt[l] * xg[koff[k] + pos[l]]. */
static inline __attribute__((always_inline)) void dw_block(float *restrict s, int64_t Ov, const float *restrict xg,
                                                           const float *restrict dyt, const direct_geom *d,
                                                           int64_t k0) {
    const float *xk[TB];
    dr_vec acc[TB];
    for (int t = 0; t < TB; t++) {
        const int64_t k = min64(k0 + t, d->Kg - 1);
        xk[t] = xg + d->koff[k];
        memcpy(&acc[t], s + k * Ov, sizeof acc[t]);
    }
    for (int64_t l = 0; l < d->L; l++) {
        dr_vec dv;
        memcpy(&dv, dyt + l * Ov, sizeof dv);
        const int64_t p = d->pos[l];
        for (int t = 0; t < TB; t++) acc[t] += dv * xk[t][p];
    }
    const int64_t nt = min64(TB, d->Kg - k0);
    for (int t = 0; t < nt; t++) memcpy(s + (k0 + t) * Ov, &acc[t], sizeof acc[t]);
}

static nb_status dw_direct(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, G = g->groups, CHW = C * g->H * g->W;
    direct_geom d;
    if (!direct_setup(&d, g)) return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for the direct tables");
    const int64_t L = d.L, Ov = d.Ov, Kg = d.Kg, psize = G * Kg * Ov;
    const int64_t npieces = N < DW_PIECES ? N : DW_PIECES;
    const size_t sbytes = (size_t)(npieces * psize) * sizeof(float);
    const size_t tbytes = (size_t)(L * Ov) * sizeof(float) + (d.padded ? (size_t)(C * d.Hp * d.Wp) * sizeof(float) : 0);
    float *sums = nbi_alloc(sbytes); // sums: (pieces, G, Kg, Ov)
    if (!sums) {
        nbi_free(d.koff, tables_bytes(g));
        return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of weight partials", sbytes);
    }
    for (int64_t e = 0; e < npieces * psize; e++) sums[e] = 0;
    nb_status st = NB_OK;
    _Pragma("omp parallel if (npieces > 1 && N * O * L * Kg > NBI_PAR_MIN)") {
        float *dyt = nbi_alloc(tbytes); // dyt: (L, Ov) one item's dy of a group, transposed; then xp
        if (!dyt) {
            _Pragma("omp critical(nbi_conv_direct)") st = NB_ERR_NOMEM;
        }
        float *xp = dyt ? dyt + L * Ov : NULL; // xp: (C, Hp, Wp) if padded
        if (dyt)
            for (int64_t e = 0; e < L * Ov; e++) dyt[e] = 0;
        _Pragma("omp for schedule(static)") for (int64_t pc = 0; pc < npieces; pc++) {
            if (!dyt) continue;
            for (int64_t n = pc * N / npieces; n < (pc + 1) * N / npieces; n++) {
                const float *xn = x + n * CHW;
                if (d.padded) {
                    pad_item(xp, xn, g, d.Hp, d.Wp);
                    xn = xp;
                }
                for (int64_t gi = 0; gi < G; gi++) {
                    const float *dyg = dy + (n * O + gi * d.Og) * L; // dyg: (Og, L)
                    for (int64_t o = 0; o < d.Og; o++) /* (lanes Og.. stay zero) */
                        for (int64_t l = 0; l < L; l++) dyt[l * Ov + o] = dyg[o * L + l];
                    float *s = sums + pc * psize + gi * Kg * Ov;
                    for (int64_t v = 0; v < Ov; v += VL)
                        for (int64_t k0 = 0; k0 < Kg; k0 += TB)
                            dw_block(s + v, Ov, xn + gi * d.Cg * d.Hp * d.Wp, dyt + v, &d, k0);
                }
            }
        }
        if (dyt) nbi_free(dyt, tbytes);
    }
    if (st == NB_OK) /* dw[gi*Og + o, k] = the pieces' sums, added in piece order */
        for (int64_t gi = 0; gi < G; gi++)
            for (int64_t o = 0; o < d.Og; o++)
                for (int64_t k = 0; k < Kg; k++) {
                    const int64_t e = (gi * Kg + k) * Ov + o;
                    float acc = sums[e];
                    for (int64_t pc = 1; pc < npieces; pc++) acc += sums[pc * psize + e];
                    dw[(gi * d.Og + o) * Kg + k] = acc;
                }
    nbi_free(sums, sbytes);
    nbi_free(d.koff, tables_bytes(g));
    if (st != NB_OK) return nbi_error(st, "conv2d backward: out of memory for %zu bytes of scratch", tbytes);
    return NB_OK;
}

/* ---- dx (stride 1): VL columns of a dx row in a vector, CB channels ----
 * dx[n, c, h, q] = sum over i, o, j of w[o, c, i, j] dy[n, o, h + pt - i*dh, q + pl - j*dw]
 * (terms outside dy are zero). Each dy row is first copied into a buffer
 * padded on the left by (kw-1)*dw - pl (>= 0 in the domain) and on the
 * right, so that the VL columns from q0 read dyh[row][q0 + (kw-1-j)*dw ..]
 * without checks, with (kh-1)*dh zero rows above and below. Two dx rows are
 * summed together, sharing the weights' broadcasts; the taps i that miss dy
 * for both are skipped. (As the forward of dy by the flipped kernel, with C
 * output channels in the lanes, the lanes mostly idled on few channels.) */
#if defined(NBI_KERNELS_AVX512)
#define CB 8
#elif defined(NBI_KERNELS_AVX2)
#define CB 4
#else
#define CB 2
#endif

typedef struct dx_geom {
    int64_t Og, Cg, Wv, Wq, Hq, eh, off;
} dx_geom;

/* dx rows h .. h+nr-1 (nr 1 or 2) of channels c0 .. c0+nc-1 (dxc: their
 * planes, stride H*W) of one item and group, from dyh: (Og, Hq, Wq) and
 * wr: (Og, kh, kw, Cg). nr and nc literals at the call sites. */
static inline __attribute__((always_inline)) void dx_rows(float *dxc, const float *restrict dyh,
                                                          const float *restrict wr, const nbi_conv_geom *g,
                                                          const dx_geom *d, int64_t c0, int64_t h, const int nr,
                                                          const int nc) {
    const int64_t H = g->H, W = g->W, Ho = g->Ho, kh = g->kh, kw = g->kw, Cg = d->Cg;
    const dr_vec zero = {0};
    for (int64_t q0 = 0; q0 < d->Wv; q0 += VL) {
        dr_vec acc[2][CB];
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nc; t++) acc[r][t] = zero;
        for (int64_t i = 0; i < kh; i++) {
            const int64_t oh = h + g->pt - i * g->dh; /* row r reads dy row oh + r */
            if (oh + nr - 1 < 0 || oh >= Ho) continue;
            for (int64_t o = 0; o < d->Og; o++) {
                const float *drow = dyh + (o * d->Hq + oh + d->eh) * d->Wq + q0;
                const float *wrow = wr + (o * kh + i) * kw * Cg + c0;
                for (int64_t j = 0; j < kw; j++) {
                    dr_vec dv[2];
                    for (int r = 0; r < nr; r++) memcpy(&dv[r], drow + r * d->Wq + (kw - 1 - j) * g->dw, sizeof dv[r]);
                    for (int t = 0; t < nc; t++) {
                        const float wt = wrow[j * Cg + t];
                        for (int r = 0; r < nr; r++) acc[r][t] += wt * dv[r];
                    }
                }
            }
        }
        const int64_t nq = min64(VL, W - q0);
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nc; t++) {
                float *row = dxc + t * H * W + (h + r) * W + q0;
                if (nq == VL) {
                    memcpy(row, &acc[r][t], sizeof acc[r][t]);
                } else {
                    float e[VL];
                    memcpy(e, &acc[r][t], sizeof e);
                    for (int64_t q = 0; q < nq; q++) row[q] = e[q];
                }
            }
    }
}

/* All dx rows of channels c0 .. c0+nc-1, two at a time. */
static inline __attribute__((always_inline)) void dx_channels(float *dxc, const float *restrict dyh,
                                                              const float *restrict wr, const nbi_conv_geom *g,
                                                              const dx_geom *d, int64_t c0, const int nc) {
    int64_t h = 0;
    for (; h + 2 <= g->H; h += 2) dx_rows(dxc, dyh, wr, g, d, c0, h, 2, nc);
    if (h < g->H) dx_rows(dxc, dyh, wr, g, d, c0, h, 1, nc);
}

static nb_status dx_direct(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, G = g->groups, H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
    const int64_t kk = g->kh * g->kw;
    dx_geom d = {O / G, C / G, 0, 0, 0, (g->kh - 1) * g->dh, (g->kw - 1) * g->dw - g->pl};
    d.Wv = (W + VL - 1) / VL * VL, d.Wq = d.Wv + (g->kw - 1) * g->dw, d.Hq = Ho + 2 * d.eh;
    const size_t wbytes = (size_t)(O * d.Cg * kk) * sizeof(float);
    const size_t hbytes = (size_t)(d.Og * d.Hq * d.Wq) * sizeof(float);
    float *wr = nbi_alloc(wbytes); // wr: (G, Og, kh, kw, Cg)
    if (!wr) return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of weights", wbytes);
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < d.Cg; c++)
            for (int64_t t = 0; t < kk; t++) wr[(o * kk + t) * d.Cg + c] = w[(o * d.Cg + c) * kk + t];
    nb_status st = NB_OK;
    _Pragma("omp parallel if (N > 1 && N * O * Ho * Wo * d.Cg * kk > NBI_PAR_MIN)") {
        float *dyh = nbi_alloc(hbytes); // dyh: (Og, Hq, Wq), one item's group of dy, padded
        if (!dyh) {
            _Pragma("omp critical(nbi_conv_direct)") st = NB_ERR_NOMEM;
        }
        if (dyh)
            for (int64_t e = 0; e < d.Og * d.Hq * d.Wq; e++) dyh[e] = 0; /* the zero rows stay zero */
        _Pragma("omp for schedule(static)") for (int64_t n = 0; n < N; n++) {
            if (!dyh) continue;
            for (int64_t gi = 0; gi < G; gi++) {
                for (int64_t o = 0; o < d.Og; o++) /* (the columns around stay zero) */
                    for (int64_t r = 0; r < Ho; r++)
                        memcpy(dyh + (o * d.Hq + d.eh + r) * d.Wq + d.off,
                               dy + ((n * O + gi * d.Og + o) * Ho + r) * Wo, (size_t)Wo * sizeof(float));
                const float *wg = wr + gi * d.Og * kk * d.Cg;
                float *dxg = dx + (n * C + gi * d.Cg) * H * W;
                for (int64_t c0 = 0; c0 < d.Cg; c0 += CB) {
                    float *dxc = dxg + c0 * H * W;
                    switch (min64(CB, d.Cg - c0)) {
                    case 1: dx_channels(dxc, dyh, wg, g, &d, c0, 1); break;
#if CB >= 4
                    case 2: dx_channels(dxc, dyh, wg, g, &d, c0, 2); break;
                    case 3: dx_channels(dxc, dyh, wg, g, &d, c0, 3); break;
#endif
#if CB >= 8
                    case 4: dx_channels(dxc, dyh, wg, g, &d, c0, 4); break;
                    case 5: dx_channels(dxc, dyh, wg, g, &d, c0, 5); break;
                    case 6: dx_channels(dxc, dyh, wg, g, &d, c0, 6); break;
                    case 7: dx_channels(dxc, dyh, wg, g, &d, c0, 7); break;
#endif
                    default: dx_channels(dxc, dyh, wg, g, &d, c0, CB); break;
                    }
                }
            }
        }
        if (dyh) nbi_free(dyh, hbytes);
    }
    nbi_free(wr, wbytes);
    if (st != NB_OK) return nbi_error(st, "conv2d backward: out of memory for a %zu-byte dy buffer", hbytes);
    return NB_OK;
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_direct_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_direct_avx2
#else
#define THIS_SET nbi_conv2d_direct_portable
#endif
const nbi_conv2d_kernels THIS_SET = {.forward = forward_direct, .dx = dx_direct, .dw = dw_direct};
