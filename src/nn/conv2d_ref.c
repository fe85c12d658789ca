/* The reference Conv2d: the definition as plain loops, in float64.
 *
 *   y[n, o, oh, ow] = b[o] + sum over c < C/g, i < kh, j < kw of
 *                     w[o, c, i, j] * x[n, c0 + c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
 *
 * with c0 = (o / (O/g)) * (C/g) the first channel of o's group and x zero
 * outside the input (the loops skip those terms: for each tap the output
 * columns that read inside the input are the range nbi_conv_valid_range
 * gives); dx, dw and db are its derivatives, each element summed
 * in a fixed order (threads only split the elements), so the bits do not
 * depend on the thread count. Float64 convs run here; the tests compare every
 * fast float32 kernel with it; and float32 convs no fast kernel covers (a
 * depthwise conv with padding wider than its kernel, say) run its float32
 * form below, widened to float64 and rounded back. */
#include "nn/conv_internal.h"

/* Parallel loops only above this many multiply-adds. */
static bool worth_threads(const nbi_conv_geom *g) {
    return (double)g->N * (double)g->O * (double)(g->Ho * g->Wo) * (double)(g->C / g->groups * g->kh * g->kw) >
           NBI_PAR_MIN;
}

void nbi_conv2d_ref_forward(double *y, const double *x, const double *w, const double *b, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, H = g->H, W = g->W, O = g->O, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    const int64_t Cg = C / g->groups, Og = O / g->groups;
    _Pragma("omp parallel for schedule(static) if (worth_threads(g))")
    for (int64_t no = 0; no < N * O; no++) {
        const int64_t n = no / O, o = no % O, c0 = o / Og * Cg;
        double *yo = y + no * Ho * Wo; // yo: (Ho, Wo)
        for (int64_t l = 0; l < Ho * Wo; l++) yo[l] = b ? b[o] : 0;
        for (int64_t c = 0; c < Cg; c++) {
            const double *xc = x + (n * C + c0 + c) * H * W; // xc: (H, W)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) {
                    const double wv = w[((o * Cg + c) * kh + i) * kw + j];
                    const int64_t off = j * g->dw - g->pl; /* iw = ow*sw + off */
                    int64_t lo, hi;
                    nbi_conv_valid_range(off, g->sw, W, Wo, &lo, &hi);
                    for (int64_t oh = 0; oh < Ho; oh++) {
                        const int64_t ih = oh * g->sh - g->pt + i * g->dh;
                        if (ih < 0 || ih >= H) continue;
                        for (int64_t ow = lo; ow < hi; ow++) yo[oh * Wo + ow] += wv * xc[ih * W + ow * g->sw + off];
                    }
                }
        }
    }
}

/* dx[n, c0 + c, ih, iw] = sum over the group's o, i, j, oh, ow that read it
 * of w[o, c, i, j] * dy[n, o, oh, ow]. */
void nbi_conv2d_ref_dx(double *dx, const double *dy, const double *w, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, H = g->H, W = g->W, O = g->O, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    const int64_t Cg = C / g->groups, Og = O / g->groups;
    _Pragma("omp parallel for schedule(static) if (worth_threads(g))")
    for (int64_t nc = 0; nc < N * C; nc++) {
        const int64_t n = nc / C, ci = nc % C, o0 = ci / Cg * Og, c = ci % Cg;
        double *dxc = dx + nc * H * W; // dxc: (H, W)
        for (int64_t e = 0; e < H * W; e++) dxc[e] = 0;
        for (int64_t o = o0; o < o0 + Og; o++) {
            const double *dyo = dy + (n * O + o) * Ho * Wo; // dyo: (Ho, Wo)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) {
                    const double wv = w[((o * Cg + c) * kh + i) * kw + j];
                    const int64_t off = j * g->dw - g->pl;
                    int64_t lo, hi;
                    nbi_conv_valid_range(off, g->sw, W, Wo, &lo, &hi);
                    for (int64_t oh = 0; oh < Ho; oh++) {
                        const int64_t ih = oh * g->sh - g->pt + i * g->dh;
                        if (ih < 0 || ih >= H) continue;
                        for (int64_t ow = lo; ow < hi; ow++) dxc[ih * W + ow * g->sw + off] += wv * dyo[oh * Wo + ow];
                    }
                }
        }
    }
}

/* dw[o, c, i, j] = sum over n, oh, ow of dy[n, o, oh, ow] * x[n, c0 + c, ih, iw]. */
void nbi_conv2d_ref_dw(double *dw, const double *dy, const double *x, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, H = g->H, W = g->W, O = g->O, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    const int64_t Cg = C / g->groups, Og = O / g->groups;
    _Pragma("omp parallel for schedule(static) if (worth_threads(g))")
    for (int64_t o = 0; o < O; o++) {
        const int64_t c0 = o / Og * Cg;
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) {
                    const int64_t off = j * g->dw - g->pl;
                    int64_t lo, hi;
                    nbi_conv_valid_range(off, g->sw, W, Wo, &lo, &hi);
                    double s = 0;
                    for (int64_t n = 0; n < N; n++) {
                        const double *dyo = dy + (n * O + o) * Ho * Wo, *xc = x + (n * C + c0 + c) * H * W;
                        for (int64_t oh = 0; oh < Ho; oh++) {
                            const int64_t ih = oh * g->sh - g->pt + i * g->dh;
                            if (ih < 0 || ih >= H) continue;
                            const double *d = dyo + oh * Wo, *xr = xc + ih * W + off;
                            /* four interleaved partial sums per row (a fixed
                             * order), so that the adds do not wait on each other */
                            double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                            int64_t ow = lo;
                            for (; ow + 4 <= hi; ow += 4) {
                                a0 += d[ow] * xr[ow * g->sw];
                                a1 += d[ow + 1] * xr[(ow + 1) * g->sw];
                                a2 += d[ow + 2] * xr[(ow + 2) * g->sw];
                                a3 += d[ow + 3] * xr[(ow + 3) * g->sw];
                            }
                            for (; ow < hi; ow++) a0 += d[ow] * xr[ow * g->sw];
                            s += (a0 + a1) + (a2 + a3);
                        }
                    }
                    dw[((o * Cg + c) * kh + i) * kw + j] = s;
                }
    }
}

/* db[o] = sum over n, oh, ow of dy[n, o, oh, ow]. */
void nbi_conv2d_ref_db(double *db, const double *dy, const nbi_conv_geom *g) {
    const int64_t N = g->N, O = g->O, L = g->Ho * g->Wo;
    for (int64_t o = 0; o < O; o++) {
        double s = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t l = 0; l < L; l++) s += dy[(n * O + o) * L + l];
        db[o] = s;
    }
}

/* ---- the float32 form: widen, compute, round ---- */

/* A pool buffer of n doubles holding src's n floats (NULL src: uninitialised). */
static double *widen(const float *src, int64_t n, size_t *bytes) {
    *bytes = (size_t)(n > 0 ? n : 1) * sizeof(double);
    double *d = nbi_alloc(*bytes);
    if (d && src)
        for (int64_t e = 0; e < n; e++) d[e] = src[e];
    return d;
}

static void narrow(float *dst, const double *src, int64_t n) {
    for (int64_t e = 0; e < n; e++) dst[e] = (float)src[e];
}

/* A call's float64 copies: up to three inputs and the output. */
typedef struct wide {
    double *a, *b, *c, *out;
    size_t na, nb, nc, nout;
} wide;

static void wide_free(wide *t) {
    if (t->a) nbi_free(t->a, t->na);
    if (t->b) nbi_free(t->b, t->nb);
    if (t->c) nbi_free(t->c, t->nc);
    if (t->out) nbi_free(t->out, t->nout);
}

static nb_status wide_nomem(wide *t, const char *what) {
    const size_t total = t->na + t->nb + t->nc + t->nout;
    wide_free(t);
    return nbi_error(NB_ERR_NOMEM, "%s: out of memory for %zu bytes of float64 copies", what, total);
}

static nb_status forward_f32(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    const int64_t ny = g->N * g->O * g->Ho * g->Wo, nw = g->O * (g->C / g->groups) * g->kh * g->kw;
    wide t = {0};
    t.a = widen(x, g->N * g->C * g->H * g->W, &t.na);
    t.b = widen(w, nw, &t.nb);
    if (b) t.c = widen(b, g->O, &t.nc);
    t.out = widen(NULL, ny, &t.nout);
    if (!t.a || !t.b || (b && !t.c) || !t.out) return wide_nomem(&t, "conv2d");
    nbi_conv2d_ref_forward(t.out, t.a, t.b, t.c, g);
    narrow(y, t.out, ny);
    wide_free(&t);
    return NB_OK;
}

static nb_status dx_f32(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    const int64_t nx = g->N * g->C * g->H * g->W, nw = g->O * (g->C / g->groups) * g->kh * g->kw;
    wide t = {0};
    t.a = widen(dy, g->N * g->O * g->Ho * g->Wo, &t.na);
    t.b = widen(w, nw, &t.nb);
    t.out = widen(NULL, nx, &t.nout);
    if (!t.a || !t.b || !t.out) return wide_nomem(&t, "conv2d backward");
    nbi_conv2d_ref_dx(t.out, t.a, t.b, g);
    narrow(dx, t.out, nx);
    wide_free(&t);
    return NB_OK;
}

static nb_status dw_f32(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    const int64_t nw = g->O * (g->C / g->groups) * g->kh * g->kw;
    wide t = {0};
    t.a = widen(dy, g->N * g->O * g->Ho * g->Wo, &t.na);
    t.b = widen(x, g->N * g->C * g->H * g->W, &t.nb);
    t.out = widen(NULL, nw, &t.nout);
    if (!t.a || !t.b || !t.out) return wide_nomem(&t, "conv2d backward");
    nbi_conv2d_ref_dw(t.out, t.a, t.b, g);
    narrow(dw, t.out, nw);
    wide_free(&t);
    return NB_OK;
}

const nbi_conv2d_kernels nbi_conv2d_reference_f32 = {.forward = forward_f32, .dx = dx_f32, .dw = dw_f32};
