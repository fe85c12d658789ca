/* Float32 direct kernels for convolutions with one input channel per group
 * (depthwise convs, any channel multiplier), for one CPU set. There each
 * output needs only kh*kw products, too few for a GEMM to pay off (measured
 * on 32x64x56x56, 3x3, pad 1: about 2x faster forward and 5x backward than
 * im2col + the reference GEMM).
 *
 * Output channel o reads input channel o / M, M = O / C (the multiplier). Each
 * output plane, dx plane and dw filter is owned by one thread and summed in a
 * fixed order, so nothing depends on the thread count.
 *
 * The domain (nbi_conv2d_applies, conv2d_algo.c): padding no wider than the
 * dilated kernel and strides up to 4, and stride 1 for dx. Each input plane
 * is copied once into a zero-padded buffer, then VL outputs of a row are
 * computed at a time with all the taps summed in registers: no bounds checks
 * and one store per output. The input gradient (stride 1) is the same kind of
 * sum over dy, padded, with the flipped kernel; the weight gradient keeps VL
 * partial sums per tap. Other geometries run the reference kernel. */
#include "nn/conv_internal.h"
#include "tensor/cpu.h"

#include <string.h>

/* Lanes of one vector value (GCC/clang vector extension: one 512-bit
 * register with AVX-512, two 256-bit ones with AVX2, four SSE ones else). */
#define VL 16
/* GCC turns a loop of fixed-size copies back into one memcpy call. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_MEMCPY_IDIOM __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_MEMCPY_IDIOM
#endif

static int64_t dw_round(int64_t v) { return (v + VL - 1) / VL * VL; }


/* The padded buffer of one plane for a sum over an (Ho, Wo) output with the
 * given stride, dilation and kernel: (Hp, Wp), wide enough for whole blocks
 * of VL outputs. */
typedef struct dw_pad {
    int64_t Hp, Wp, pt, pl;
} dw_pad;

static dw_pad dw_pad_geom(int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t Ho, int64_t Wo, int64_t sh,
                          int64_t sw, int64_t eh, int64_t ew) {
    const int64_t hn = (Ho - 1) * sh + eh + 1, wn = (dw_round(Wo) - 1) * sw + ew + 1;
    return (dw_pad){pt + H > hn ? pt + H : hn, pl + W > wn ? pl + W : wn, pt, pl};
}

/* VL lanes of float as one value. */
typedef float dw_vec __attribute__((vector_size(VL * sizeof(float))));
/* The integer vector of the same lanes, for masks. */
typedef int32_t dw_ivec __attribute__((vector_size(VL * sizeof(float))));

/* *v <- s[0], s[sw], ..., s[(VL-1)*sw] (unaligned; sw a literal at the call
 * sites below, so each copy compiles for its stride; through a pointer, as
 * returning a 64-byte vector has no fixed ABI without AVX-512). */
static inline __attribute__((always_inline)) void dw_load(dw_vec *v, const float *s, int64_t sw) {
    if (sw == 1) {
        memcpy(v, s, sizeof *v);
    } else {
        float e[VL];
        for (int l = 0; l < VL; l++) e[l] = s[l * sw];
        memcpy(v, e, sizeof *v);
    }
}

/* dst[0:n] <- src[0:n] and dst[0:n] <- 0, a vector at a time; the last
 * vector overlaps the one before instead of a scalar tail. (Plain loops here
 * become calls to memcpy/memset, which cost more than the copy for rows of
 * a few dozen elements.) */
static inline NO_MEMCPY_IDIOM void dw_copy(float *restrict dst, const float *restrict src, int64_t n) {
    if (n < VL) {
        for (int64_t q = 0; q < n; q++) dst[q] = src[q];
        return;
    }
    dw_vec v;
    for (int64_t q = 0; q + VL <= n; q += VL) {
        memcpy(&v, src + q, sizeof v);
        memcpy(dst + q, &v, sizeof v);
    }
    memcpy(&v, src + n - VL, sizeof v);
    memcpy(dst + n - VL, &v, sizeof v);
}

static inline NO_MEMCPY_IDIOM void dw_zero(float *restrict dst, int64_t n) {
    if (n < VL) {
        for (int64_t q = 0; q < n; q++) dst[q] = 0;
        return;
    }
    const dw_vec z = {0};
    for (int64_t q = 0; q + VL <= n; q += VL) memcpy(dst + q, &z, sizeof z);
    memcpy(dst + n - VL, &z, sizeof z);
}

/* xp <- plane xc (H, W) at (pt, pl) inside zeros. */
static void dw_fill(float *restrict xp, const dw_pad *p, const float *xc, int64_t H, int64_t W) {
    for (int64_t r = 0; r < p->Hp; r++) {
        float *row = xp + r * p->Wp;
        const int64_t ih = r - p->pt;
        dw_zero(row, p->Wp);
        if (ih >= 0 && ih < H) dw_copy(row + p->pl, xc + ih * W, W);
    }
}

/* yo (Ho, Wo) <- bias + sum over taps of wk[i, j] xp[oh*sh + i*dh, ow*sw + j*dw]
 * (added to yo's values when accumulate). tmp: dw_round(Wo) scratch. */
static inline __attribute__((always_inline)) void dw_plane_sw(float *yo, int64_t Ho, int64_t Wo, const float *xp,
                                                             int64_t Wp, const float *wk, const nbi_conv_geom *g,
                                                             int64_t sh, int64_t sw, float bias, bool accumulate,
                                                             float *restrict tmp) {
    const int64_t kh = g->kh, kw = g->kw, dh = g->dh, dwd = g->dw, Wv = dw_round(Wo);
    const dw_vec zero = {0};
    for (int64_t oh = 0; oh < Ho; oh++) {
        float *yr = yo + oh * Wo;
        for (int64_t ow0 = 0; ow0 < Wv; ow0 += VL) {
            /* A partial last block: written (not added) as the last VL
             * outputs of the row, recomputing some (the same bits); added
             * through tmp. */
            const bool tail = ow0 + VL > Wo, shift = tail && !accumulate && Wo >= VL;
            const int64_t at = shift ? Wo - VL : ow0;
            dw_vec acc = zero + bias;
            for (int64_t i = 0; i < kh; i++) {
                const float *xr = xp + (oh * sh + i * dh) * Wp + at * sw;
                for (int64_t j = 0; j < kw; j++) {
                    dw_vec v;
                    dw_load(&v, xr + j * dwd, sw);
                    acc += wk[i * kw + j] * v;
                }
            }
            if (!tail || shift) {
                if (accumulate) {
                    dw_vec old;
                    memcpy(&old, yr + at, sizeof old);
                    acc = old + acc;
                }
                memcpy(yr + at, &acc, sizeof acc);
            } else {
                memcpy(tmp, &acc, sizeof acc);
                for (int64_t ow = ow0; ow < Wo; ow++) yr[ow] = accumulate ? yr[ow] + tmp[ow - ow0] : tmp[ow - ow0];
            }
        }
    }
}

static void dw_plane(float *yo, int64_t Ho, int64_t Wo, const float *xp, int64_t Wp, const float *wk,
                     const nbi_conv_geom *g, int64_t sh, int64_t sw, float bias, bool accumulate, float *restrict tmp) {
    if (sw == 1)
        dw_plane_sw(yo, Ho, Wo, xp, Wp, wk, g, sh, 1, bias, accumulate, tmp);
    else if (sw == 2)
        dw_plane_sw(yo, Ho, Wo, xp, Wp, wk, g, sh, 2, bias, accumulate, tmp);
    else
        dw_plane_sw(yo, Ho, Wo, xp, Wp, wk, g, sh, sw, bias, accumulate, tmp);
}

static nb_status forward_depthwise(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, M = O / C, H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
    const dw_pad pd = dw_pad_geom(H, W, g->pt, g->pl, Ho, Wo, g->sh, g->sw, (g->kh - 1) * g->dh,
                                          (g->kw - 1) * g->dw);
    const size_t bytes = (size_t)(pd.Hp * pd.Wp + dw_round(Wo)) * sizeof(float);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (N * O * Ho * Wo * g->kh * g->kw > NBI_PAR_MIN)") {
        float *xp = nbi_alloc(bytes); // xp: (Hp, Wp), then a row of scratch
        if (!xp) {
            _Pragma("omp critical(nbi_conv_dw)") st = NB_ERR_NOMEM;
        }
        _Pragma("omp for schedule(static)") for (int64_t nc = 0; nc < N * C; nc++) {
            if (!xp) continue;
            const int64_t n = nc / C, c = nc % C;
            dw_fill(xp, &pd, x + nc * H * W, H, W);
            for (int64_t o = c * M; o < (c + 1) * M; o++)
                dw_plane(y + (n * O + o) * Ho * Wo, Ho, Wo, xp, pd.Wp, w + o * g->kh * g->kw, g, g->sh, g->sw,
                             b ? b[o] : 0, false, xp + pd.Hp * pd.Wp);
        }
        if (xp) nbi_free(xp, bytes);
    }
    if (st != NB_OK) return nbi_error(st, "conv2d: out of memory for a %zu-byte padded plane", bytes);
    return NB_OK;
}

/* dx (stride 1): dx[n, c] = sum over its M outputs o of the correlation of
 * dy[n, o], padded by (kh-1)*dh - pt on top (likewise the other sides), with
 * w[o] flipped. */
static nb_status dx_depthwise(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, M = O / C, H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
    const int64_t kh = g->kh, kw = g->kw, kk = kh * kw, eh = (kh - 1) * g->dh, ew = (kw - 1) * g->dw;
    const dw_pad pd = dw_pad_geom(Ho, Wo, eh - g->pt, ew - g->pl, H, W, 1, 1, eh, ew);
    const size_t bytes = (size_t)(pd.Hp * pd.Wp + dw_round(W) + kk) * sizeof(float);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (N * O * Ho * Wo * kk > NBI_PAR_MIN)") {
        float *dyp = nbi_alloc(bytes); // dyp: (Hp, Wp), a row of scratch, the flipped kernel
        if (!dyp) {
            _Pragma("omp critical(nbi_conv_dw)") st = NB_ERR_NOMEM;
        }
        _Pragma("omp for schedule(static)") for (int64_t nc = 0; nc < N * C; nc++) {
            if (!dyp) continue;
            const int64_t n = nc / C, c = nc % C;
            float *tmp = dyp + pd.Hp * pd.Wp, *wf = tmp + dw_round(W);
            for (int64_t o = c * M; o < (c + 1) * M; o++) {
                for (int64_t t = 0; t < kk; t++) wf[t] = w[o * kk + kk - 1 - t];
                dw_fill(dyp, &pd, dy + (n * O + o) * Ho * Wo, Ho, Wo);
                dw_plane(dx + nc * H * W, H, W, dyp, pd.Wp, wf, g, 1, 1, 0, o > c * M, tmp);
            }
        }
        if (dyp) nbi_free(dyp, bytes);
    }
    if (st != NB_OK) return nbi_error(st, "conv2d backward: out of memory for a %zu-byte padded plane", bytes);
    return NB_OK;
}

/* *acc += d * x in the lanes of mask (-1), the others left as they are (a
 * mask, not a multiply by 0: the input may not be finite). */
static inline __attribute__((always_inline)) void dw_add_masked(dw_vec *acc, const dw_vec *d, const dw_vec *x,
                                                               dw_ivec mask) {
    dw_ivec prod;
    const dw_vec px = *d * *x;
    memcpy(&prod, &px, sizeof prod);
    prod &= mask;
    dw_vec add;
    memcpy(&add, &prod, sizeof add);
    *acc += add;
}

/* One filter's acc (kk x VL lane sums) += its sums over one padded input
 * plane xp and dy plane dyo, as the general loop of dw_accumulate_plane
 * below (same lanes, same order, so the same bits), for KK = kh*kw taps (a
 * literal) and rows of at least VL outputs: the KK sums stay in registers
 * over the whole plane and each dy vector is loaded once for all taps,
 * where that loop loads and stores each tap's sums per row and reloads dy
 * per tap (18 loads per 9 multiply-adds for a 3x3 kernel). */
static inline __attribute__((always_inline)) void dw_filter_plane(float *restrict acc, const float *xp, int64_t Wp,
                                                                  const float *dyo, const nbi_conv_geom *g,
                                                                  dw_ivec tail_mask, const int KK) {
    const int64_t Ho = g->Ho, Wo = g->Wo, kw = g->kw, sh = g->sh, sw = g->sw;
    int64_t off[KK]; // off[t]: tap t's offset in xp from output (0, 0)'s
    dw_vec av[KK];
    for (int t = 0; t < KK; t++) {
        off[t] = t / kw * g->dh * Wp + t % kw * g->dw;
        memcpy(&av[t], acc + t * VL, sizeof av[t]);
    }
    for (int64_t oh = 0; oh < Ho; oh++) {
        const float *drow = dyo + oh * Wo, *xr = xp + oh * sh * Wp;
        int64_t ow0 = 0;
        for (; ow0 + VL <= Wo; ow0 += VL) {
            dw_vec d;
            dw_load(&d, drow + ow0, 1);
            for (int t = 0; t < KK; t++) {
                dw_vec x;
                if (sw == 1)
                    dw_load(&x, xr + off[t] + ow0, 1);
                else
                    dw_load(&x, xr + off[t] + ow0 * sw, sw);
                av[t] += d * x;
            }
        }
        if (ow0 < Wo) { /* the row's last VL columns, the lanes already summed masked off */
            dw_vec d;
            dw_load(&d, drow + Wo - VL, 1);
            for (int t = 0; t < KK; t++) {
                dw_vec x;
                if (sw == 1)
                    dw_load(&x, xr + off[t] + Wo - VL, 1);
                else
                    dw_load(&x, xr + off[t] + (Wo - VL) * sw, sw);
                dw_add_masked(&av[t], &d, &x, tail_mask);
            }
        }
    }
    for (int t = 0; t < KK; t++) memcpy(acc + t * VL, &av[t], sizeof av[t]);
}

/* One filter's acc (kk x VL lane sums) += its sums over one padded input
 * plane xp: (Hp, Wp) and dy plane dyo: (Ho, Wo), lane l taking the
 * columns ow = l mod VL, in the order oh, column block (a row's last block
 * overlaps the one before: the lanes already summed are masked off). */
static void dw_accumulate_plane(float *restrict acc, const float *xp, int64_t Wp, const float *dyo,
                                const nbi_conv_geom *g) {
    const int64_t Ho = g->Ho, Wo = g->Wo, kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw;
    dw_ivec tail_mask; /* lanes l >= VL - Wo % VL: the columns past the last whole block */
    for (int l = 0; l < VL; l++) tail_mask[l] = l >= VL - Wo % VL ? -1 : 0;
    if (kh * kw == 9 && Wo >= VL) { /* 3x3 */
        dw_filter_plane(acc, xp, Wp, dyo, g, tail_mask, 9);
        return;
    }
    for (int64_t oh = 0; oh < Ho; oh++) {
        const float *drow = dyo + oh * Wo;
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++) {
                float *restrict a = acc + (i * kw + j) * VL;
                const float *xr = xp + (oh * sh + i * g->dh) * Wp + j * g->dw;
                dw_vec av;
                memcpy(&av, a, sizeof av);
                int64_t ow0 = 0;
                for (; ow0 + VL <= Wo; ow0 += VL) {
                    dw_vec d, x;
                    dw_load(&d, drow + ow0, 1);
                    if (sw == 1)
                        dw_load(&x, xr + ow0, 1);
                    else
                        dw_load(&x, xr + ow0 * sw, sw);
                    av += d * x;
                }
                if (ow0 < Wo && Wo >= VL) {
                    /* the last columns: the row's last VL, with the
                     * lanes already summed above masked off */
                    dw_vec d, x;
                    dw_load(&d, drow + Wo - VL, 1);
                    if (sw == 1)
                        dw_load(&x, xr + Wo - VL, 1);
                    else
                        dw_load(&x, xr + (Wo - VL) * sw, sw);
                    dw_add_masked(&av, &d, &x, tail_mask);
                    ow0 = Wo;
                }
                memcpy(a, &av, sizeof av);
                for (int l = 0; ow0 + l < Wo; l++) a[l] += drow[ow0 + l] * xr[(ow0 + l) * sw];
            }
    }
}

/* dw[o, i, j] = sum over n, oh, ow of dy[n, o, oh, ow] xp[oh*sh + i*dh, ow*sw + j*dw],
 * VL partial sums per tap (lane l takes the columns ow = l mod VL), in the
 * order n, oh, column block; the lanes are added in order at the end. */
static nb_status dw_depthwise(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, M = O / C, H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
    const int64_t kh = g->kh, kw = g->kw, kk = kh * kw, sh = g->sh, sw = g->sw;
    const dw_pad pd = dw_pad_geom(H, W, g->pt, g->pl, Ho, Wo, sh, sw, (kh - 1) * g->dh, (kw - 1) * g->dw);
    const size_t bytes = (size_t)(pd.Hp * pd.Wp + kk * VL) * sizeof(float);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (N * O * Ho * Wo * kk > NBI_PAR_MIN)") {
        float *xp = nbi_alloc(bytes); // xp: (Hp, Wp), then kk x VL sums
        if (!xp) {
            _Pragma("omp critical(nbi_conv_dw)") st = NB_ERR_NOMEM;
        }
        _Pragma("omp for schedule(static)") for (int64_t o = 0; o < O; o++) {
            if (!xp) continue;
            float *acc = xp + pd.Hp * pd.Wp;
            for (int64_t e = 0; e < kk * VL; e++) acc[e] = 0;
            for (int64_t n = 0; n < N; n++) {
                dw_fill(xp, &pd, x + (n * C + o / M) * H * W, H, W);
                const float *dyo = dy + (n * O + o) * Ho * Wo;
                dw_accumulate_plane(acc, xp, pd.Wp, dyo, g);
            }
            for (int64_t t = 0; t < kk; t++) {
                float s = 0;
                for (int l = 0; l < VL; l++) s += acc[t * VL + l];
                dw[o * kk + t] = s;
            }
        }
        if (xp) nbi_free(xp, bytes);
    }
    if (st != NB_OK) return nbi_error(st, "conv2d backward: out of memory for a %zu-byte padded plane", bytes);
    return NB_OK;
}

/* dx and dw in one pass (stride 1, both phases depthwise): each thread takes
 * whole channels and reads each input plane and dy plane once for both,
 * where dx_depthwise and dw_depthwise each stream all of dy (and dw all of
 * x): the depthwise backward is bound by memory traffic, not arithmetic.
 * The same sums in the same order as those two, so the same bits. */
static nb_status dxdw_depthwise(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, M = O / C, H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
    const int64_t kk = g->kh * g->kw, eh = (g->kh - 1) * g->dh, ew = (g->kw - 1) * g->dw;
    const dw_pad px = dw_pad_geom(H, W, g->pt, g->pl, Ho, Wo, 1, 1, eh, ew);          /* dw's input plane */
    const dw_pad pd = dw_pad_geom(Ho, Wo, eh - g->pt, ew - g->pl, H, W, 1, 1, eh, ew); /* dx's dy plane */
    const int64_t nx = px.Hp * px.Wp, nd = pd.Hp * pd.Wp;
    const size_t bytes = (size_t)(nx + nd + dw_round(W) + kk + M * kk * VL) * sizeof(float);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (N * O * Ho * Wo * kk > NBI_PAR_MIN)") {
        float *xp = nbi_alloc(bytes); // xp: (Hp, Wp); dyp: (Hp', Wp'); a row of scratch; a flipped kernel; M x kk x VL sums
        if (!xp) {
            _Pragma("omp critical(nbi_conv_dw)") st = NB_ERR_NOMEM;
        }
        _Pragma("omp for schedule(static)") for (int64_t c = 0; c < C; c++) {
            if (!xp) continue;
            float *dyp = xp + nx, *tmp = dyp + nd, *wf = tmp + dw_round(W), *acc = wf + kk;
            for (int64_t e = 0; e < M * kk * VL; e++) acc[e] = 0;
            for (int64_t n = 0; n < N; n++) {
                dw_fill(xp, &px, x + (n * C + c) * H * W, H, W);
                for (int64_t o = c * M; o < (c + 1) * M; o++) {
                    const float *dyo = dy + (n * O + o) * Ho * Wo;
                    dw_accumulate_plane(acc + (o - c * M) * kk * VL, xp, px.Wp, dyo, g);
                    for (int64_t t = 0; t < kk; t++) wf[t] = w[o * kk + kk - 1 - t];
                    dw_fill(dyp, &pd, dyo, Ho, Wo);
                    dw_plane(dx + (n * C + c) * H * W, H, W, dyp, pd.Wp, wf, g, 1, 1, 0, o > c * M, tmp);
                }
            }
            for (int64_t o = c * M; o < (c + 1) * M; o++)
                for (int64_t t = 0; t < kk; t++) {
                    float sum = 0;
                    for (int l = 0; l < VL; l++) sum += acc[((o - c * M) * kk + t) * VL + l];
                    dw[o * kk + t] = sum;
                }
        }
        if (xp) nbi_free(xp, bytes);
    }
    if (st != NB_OK) return nbi_error(st, "conv2d backward: out of memory for %zu bytes of padded planes", bytes);
    return NB_OK;
}

#if defined(NBI_KERNELS_AVX512)
#define DXDW_SET nbi_conv2d_depthwise_dxdw_avx512
#elif defined(NBI_KERNELS_AVX2)
#define DXDW_SET nbi_conv2d_depthwise_dxdw_avx2
#else
#define DXDW_SET nbi_conv2d_depthwise_dxdw_portable
#endif
const nbi_conv2d_dxdw_fn DXDW_SET = dxdw_depthwise;

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_depthwise_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_depthwise_avx2
#else
#define THIS_SET nbi_conv2d_depthwise_portable
#endif
const nbi_conv2d_kernels THIS_SET = {.forward = forward_depthwise, .dx = dx_depthwise, .dw = dw_depthwise};
