/* F.max_pool2d and F.avg_pool2d over [N, C, H, W] (or [C, H, W]) with
 * PyTorch's output sizes (padding, dilation, ceil_mode), argument checks and
 * messages (those of torch 1.13). Each (n, c) plane is pooled by one thread
 * with a fixed loop order, forward and backward, so results do not depend on
 * the thread count. Max pooling saves the flat in-plane index of each
 * window's winner; its backward scatters into those positions (and
 * nb_max_pool2d_with_indices returns them). The common 2x2 / stride 2 case
 * has its own loops (see pool_is_2x2). */
#include "nn_util.h"

#include <math.h>
#include <string.h>

nb_pool2d_params nb_pool2d_defaults(int64_t kernel) {
    return (nb_pool2d_params){
        .kernel = {kernel, kernel}, .stride = {0, 0}, .padding = {0, 0}, .dilation = {1, 1},
        .ceil_mode = false, .count_include_pad = true, .divisor_override = 0};
}

/* ceil(a / b) for a >= 0, b >= 1, without forming a + b - 1 (b may be huge). */
static inline int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* The resolved geometry of one pooling call. */
typedef struct {
    int64_t planes, H, W, OH, OW;  /* planes = N * C */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    bool count_include_pad;
    int64_t divisor_override;      /* avg: 0, or the divisor of every window */
} pool_geom;

/* PyTorch's pooling_output_shape: floor (or ceil) division, and in ceil mode
 * the last window must start inside the input or the left padding. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
    /* In 128 bits: kernel, dilation and stride are untrusted and may be huge.
     * pool_check has bounded the padded input, so a result >= 1 fits int64. */
    __int128 num = (__int128)in + 2 * (__int128)pad - (__int128)dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    __int128 q = num / stride;
    if ((num % stride != 0) && ((num < 0) != (stride < 0))) q--; /* round toward -inf */
    __int128 out = q + 1;
    if (ceil_mode && (out - 1) * stride >= (__int128)in + pad) out--;
    return out < 1 ? (out < INT64_MIN ? INT64_MIN : (int64_t)out) : (int64_t)out;
}

/* ---- checks: the parameters (shared with the modules), then the input; the geometry ---- */
bool nbi_pool2d_check_params(const char *op, const nb_pool2d_params *p, bool is_max) {
    if (!p) {
        nbi_error(NB_ERR_ARG, "%s: params is NULL", op);
        return false;
    }
    int64_t kh = p->kernel[0], kw = p->kernel[1];
    int64_t sh = p->stride[0] ? p->stride[0] : kh, sw = p->stride[1] ? p->stride[1] : kw;
    int64_t ph = p->padding[0], pw = p->padding[1];
    /* dilation 0 is taken as the default 1, so a zero-initialised struct works */
    int64_t dh = p->dilation[0] ? p->dilation[0] : 1, dw = p->dilation[1] ? p->dilation[1] : 1;
    if (!is_max && (dh != 1 || dw != 1)) {
        nbi_error(NB_ERR_ARG, "%s: dilation is not supported (got dilation=(%lld, %lld)); use max_pool2d", op,
                  (long long)dh, (long long)dw);
        return false;
    }
    /* Same order of checks as PyTorch, so the same message wins. */
    if (sh == 0 || sw == 0) {
        nbi_error(NB_ERR_ARG, "%s: stride should not be zero", op);
        return false;
    }
    if (ph < 0 || pw < 0) {
        nbi_error(NB_ERR_ARG, "%s: pad must be non-negative, but got padH: %lld padW: %lld", op, (long long)ph,
                  (long long)pw);
        return false;
    }
    if (ph > kh / 2 || pw > kw / 2) {
        bool hbad = ph > kh / 2;
        nbi_error(NB_ERR_ARG, "%s: pad should be at most half of kernel size, but got pad=%lld and kernel_size=%lld", op,
                  (long long)(hbad ? ph : pw), (long long)(hbad ? kh : kw));
        return false;
    }
    if (kh <= 0 || kw <= 0) {
        nbi_error(NB_ERR_ARG, "%s: kernel size should be greater than zero, but got kH: %lld kW: %lld", op,
                  (long long)kh, (long long)kw);
        return false;
    }
    if (sh < 0 || sw < 0) {
        nbi_error(NB_ERR_ARG, "%s: stride should be greater than zero, but got dH: %lld dW: %lld", op, (long long)sh,
                  (long long)sw);
        return false;
    }
    if (dh < 0 || dw < 0) {
        nbi_error(NB_ERR_ARG, "%s: dilation should be greater than zero, but got dilationH: %lld dilationW: %lld", op,
                  (long long)dh, (long long)dw);
        return false;
    }
    return true;
}

static bool pool_check(const char *op, const nb_tensor *x, const nb_pool2d_params *p, bool is_max, pool_geom *g) {
    if (!nbi_check_float(op, "input", x)) return false;
    if (!nbi_pool2d_check_params(op, p, is_max)) return false;
    int64_t kh = p->kernel[0], kw = p->kernel[1];
    int64_t sh = p->stride[0] ? p->stride[0] : kh, sw = p->stride[1] ? p->stride[1] : kw;
    int64_t ph = p->padding[0], pw = p->padding[1];
    int64_t dh = p->dilation[0] ? p->dilation[0] : 1, dw = p->dilation[1] ? p->dilation[1] : 1;
    int nd = x->ndim;
    bool nonempty = nd >= 3 && x->shape[nd - 1] > 0 && x->shape[nd - 2] > 0 && x->shape[nd - 3] > 0;
    if (!(nd == 3 || nd == 4) || !nonempty) {
        char s[128];
        nbi_error(NB_ERR_SHAPE, "%s: non-empty 3D or 4D (batch mode) tensor expected for input, but got %s", op,
                  nnu_shape(x, s, sizeof s));
        return false;
    }
    int64_t C = x->shape[nd - 3], H = x->shape[nd - 2], W = x->shape[nd - 1];
    /* Untrusted paddings: the padded plane bounds every window, divisor and
     * output size below, so it must fit int64 with room to spare. */
    if (((__int128)H + 2 * (__int128)ph) * ((__int128)W + 2 * (__int128)pw) > INT64_MAX / 4) {
        nbi_error(NB_ERR_ARG, "%s: padded input size (%lld + 2 * %lld) x (%lld + 2 * %lld) overflows int64", op,
                  (long long)H, (long long)ph, (long long)W, (long long)pw);
        return false;
    }
    int64_t OH = pool_out_size(H, kh, ph, sh, dh, p->ceil_mode), OW = pool_out_size(W, kw, pw, sw, dw, p->ceil_mode);
    if (OH < 1 || OW < 1) {
        nbi_error(NB_ERR_SHAPE,
                  "%s: Given input size: (%lldx%lldx%lld). Calculated output size: (%lldx%lldx%lld). Output size is "
                  "too small",
                  op, (long long)C, (long long)H, (long long)W, (long long)C, (long long)OH, (long long)OW);
        return false;
    }
    *g = (pool_geom){(nd == 4 ? x->shape[0] : 1) * C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw,
                     p->count_include_pad, is_max ? 0 : p->divisor_override};
    return true;
}

static nb_tensor *pool_output(const nb_tensor *x, const pool_geom *g) {
    int64_t shape[4];
    int nd = x->ndim;
    for (int i = 0; i < nd - 2; i++) shape[i] = x->shape[i];
    shape[nd - 2] = g->OH;
    shape[nd - 1] = g->OW;
    return nbi_empty(x->dtype, nd, shape);
}

/* ---- max: kernels ---- */
/* The common 2x2 window, stride 2, no padding or dilation, every window
 * inside the input (F.max_pool2d(x, 2) on any size): the winner of each
 * window is one of four taps, saved as a byte, and backward writes dx densely
 * (dy at the winner, 0 at the other three) instead of zero-filling then
 * scattering. Same tie and NaN rule as the general path. */
static bool pool_is_2x2(const pool_geom *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->dh == 1 &&
           g->dw == 1 && 2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

/* 4-float vectors (GCC vector extensions) for the 2x2 row kernels below. */
typedef float nnu_v4f __attribute__((vector_size(16)));
typedef int32_t nnu_v4i __attribute__((vector_size(16)));
/* Pick lanes i0..i3 of the 8 lanes of (x, y): GCC and clang spell it differently. */
#if defined(__clang__)
#define V4_SHUFFLE(x, y, i0, i1, i2, i3) __builtin_shufflevector(x, y, i0, i1, i2, i3)
#else
#define V4_SHUFFLE(x, y, i0, i1, i2, i3) __builtin_shuffle(x, y, (nnu_v4i){i0, i1, i2, i3})
#endif

/* One output row's gradient into two input rows: dy at each window's winning
 * tap, 0 at the others. float32 goes four windows at a time (vector
 * extensions, as in pool_row_f32, for the same reason). */
#define UNPOOL_ROW_SCALAR(T)                                                                                 \
    for (; ow < OW; ow++) {                                                                                  \
        T v = d[ow];                                                                                         \
        uint8_t k = t[ow];                                                                                   \
        T a = k == 0 ? v : (T)0, b = k == 1 ? v : (T)0, e = k == 2 ? v : (T)0, f = k == 3 ? v : (T)0;        \
        r0[2 * ow] = a;                                                                                      \
        r0[2 * ow + 1] = b;                                                                                  \
        r1[2 * ow] = e;                                                                                      \
        r1[2 * ow + 1] = f;                                                                                  \
    }

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
        memcpy(r0 + 2 * ow, &o[0], 2 * sizeof o[0]);
        memcpy(r1 + 2 * ow, &o[2], 2 * sizeof o[0]);
    }
    UNPOOL_ROW_SCALAR(float)
}

static void unpool_row_f64(double *restrict r0, double *restrict r1, const double *restrict d,
                           const uint8_t *restrict t, int64_t OW) {
    int64_t ow = 0;
    UNPOOL_ROW_SCALAR(double)
}
#undef UNPOOL_ROW_SCALAR

// dx: (planes, H, W), dy: (planes, OH, OW), tap: (planes, OH, OW)
static void maxpool2x2_backward(nb_dtype dtype, void *dx, const void *dy, const uint8_t *tap, const pool_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        _Pragma("omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            T *dxp = dX + pl * H * W;
            for (int64_t oh = 0; oh < OH; oh++) {
                const T *restrict d = dY + (pl * OH + oh) * OW;
                const uint8_t *restrict t = tap + (pl * OH + oh) * OW;
                T *restrict r0 = dxp + 2 * oh * W, *restrict r1 = r0 + W;
                if (sizeof(T) == 4) unpool_row_f32((float *)r0, (float *)r1, (const float *)d, t, OW);
                else unpool_row_f64((double *)r0, (double *)r1, (const double *)d, t, OW);
                for (int64_t w = 2 * OW; w < W; w++) r0[w] = r1[w] = 0; /* odd W: last column in no window */
            }
            for (int64_t i = 2 * OH * W; i < H * W; i++) dxp[i] = 0; /* odd H: last row in no window */
        }
    });
}

/* One output row of F.max_pool2d(x, 2) from input rows r0, r1: y = the
 * window maxima, t = the winning taps. PyTorch's rule in kh, kw order: a
 * strictly larger value or a NaN takes over, else the earlier tap stays. */
#define POOL_ROW_SCALAR(T)                                                         \
    for (; ow < OW; ow++) {                                                        \
        T b = r0[2 * ow], v = r0[2 * ow + 1];                                      \
        uint8_t k = 0;                                                             \
        bool tk = (v > b) | (v != v);                                              \
        b = tk ? v : b;                                                            \
        k = tk ? 1 : k;                                                            \
        v = r1[2 * ow];                                                            \
        tk = (v > b) | (v != v);                                                   \
        b = tk ? v : b;                                                            \
        k = tk ? 2 : k;                                                            \
        v = r1[2 * ow + 1];                                                        \
        tk = (v > b) | (v != v);                                                   \
        b = tk ? v : b;                                                            \
        k = tk ? 3 : k;                                                            \
        y[ow] = b;                                                                 \
        t[ow] = k;                                                                 \
    }

/* float32 rows go four windows at a time with GCC vector extensions: rows
 * here are short (12 windows in the MNIST net), too short for the
 * auto-vectoriser's 16-wide loop, and its scalar remainder compiles to
 * unpredictable branches (13 ns a window; this is ~20x faster). */

static inline nnu_v4f v4_blend(nnu_v4i m, nnu_v4f x, nnu_v4f y) { return (nnu_v4f)((m & (nnu_v4i)x) | (~m & (nnu_v4i)y)); }

static void pool_row_f32(float *restrict y, uint8_t *restrict t, const float *restrict r0, const float *restrict r1,
                         int64_t OW) {
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
        memcpy(y + ow, &m, sizeof m);
        for (int j = 0; j < 4; j++) t[ow + j] = (uint8_t)k[j];
    }
    POOL_ROW_SCALAR(float)
}

static void pool_row_f64(double *restrict y, uint8_t *restrict t, const double *restrict r0,
                         const double *restrict r1, int64_t OW) {
    int64_t ow = 0;
    POOL_ROW_SCALAR(double)
}
#undef POOL_ROW_SCALAR

/* y and the winning taps of F.max_pool2d(x, 2). */
// y: (planes, OH, OW), tap: (planes, OH, OW), x: (planes, H, W)
static void maxpool2x2_forward(nb_dtype dtype, void *y, uint8_t *tap, const void *x, const pool_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        T *Y = y;
        _Pragma("omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++)
            for (int64_t oh = 0; oh < OH; oh++) {
                const T *r0 = X + pl * H * W + 2 * oh * W;
                int64_t o = (pl * OH + oh) * OW;
                if (sizeof(T) == 4) pool_row_f32((float *)(Y + o), tap + o, (const float *)r0, (const float *)(r0 + W), OW);
                else pool_row_f64((double *)(Y + o), tap + o, (const double *)r0, (const double *)(r0 + W), OW);
            }
    });
}

/* The general window: y the maxima, idx the flat in-plane index h * W + w of
 * each window's winner (-1 for a window with no input element). */
// y: (planes, OH, OW), idx: (planes, OH, OW), x: (planes, H, W)
static void max_pool2d_forward(nb_dtype dtype, void *y, int64_t *idx, const void *x, const pool_geom *g) {
    /* geometry in locals: stores to idx could otherwise alias g and force reloads */
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    const int64_t KH = g->kh, KW = g->kw, SH = g->sh, SW = g->sw, PH = g->ph, PW = g->pw, DH = g->dh, DW = g->dw;
    /* Interior columns [ow_lo, ow_hi): windows entirely inside the input
     * horizontally. They are swept a kernel tap at a time across the whole
     * output row, which keeps the running maxima of neighbouring windows
     * independent (no serial dependency chain, no branches). */
    int64_t ow_lo = ceil_div(PW, SW), last = W - 1 + PW - (KW - 1) * DW;
    int64_t ow_hi = last < 0 ? 0 : last / SW + 1;
    if (ow_hi > OW) ow_hi = OW;
    if (ow_lo > ow_hi) ow_lo = ow_hi;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        T *Y = y;
        _Pragma("omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            const T *xp = X + pl * H * W;
            for (int64_t oh = 0; oh < OH; oh++) {
                T *restrict yr = Y + (pl * OH + oh) * OW;
                int64_t *restrict ir = idx + (pl * OH + oh) * OW;
                int64_t h0 = oh * SH - PH;
                /* first and one-past-last kernel rows that land inside the input */
                int64_t kh0 = h0 < 0 ? ceil_div(-h0, DH) : 0;
                /* closed form, not a countdown: KH may be huge (with huge padding) */
                int64_t kh1 = H - 1 - h0 < 0 ? kh0 : (H - 1 - h0) / DH + 1;
                if (kh1 > KH) kh1 = KH;
                if (kh1 < kh0) kh1 = kh0;
                /* PyTorch's rule: start at -inf with the first valid position
                 * as the index; a strictly larger value or a NaN takes over. */
                for (int64_t ow = 0; ow < OW; ow++) {
                    if (ow == ow_lo) ow = ow_hi; /* interior columns are done below */
                    if (ow >= OW) break;
                    int64_t w0 = ow * SW - PW;
                    int64_t kw0 = w0 < 0 ? ceil_div(-w0, DW) : 0;
                    int64_t kw1 = W - 1 - w0 < 0 ? kw0 : (W - 1 - w0) / DW + 1;
                    if (kw1 > KW) kw1 = KW;
                    if (kw1 < kw0) kw1 = kw0;
                    T best = -(T)INFINITY;
                    int64_t bi = kh0 < kh1 && kw0 < kw1 ? (h0 + kh0 * DH) * W + (w0 + kw0 * DW) : -1;
                    for (int64_t kh = kh0; kh < kh1; kh++)
                        for (int64_t kw = kw0; kw < kw1; kw++) {
                            int64_t i = (h0 + kh * DH) * W + w0 + kw * DW;
                            T v = xp[i];
                            if (v > best || v != v) {
                                best = v;
                                bi = i;
                            }
                        }
                    yr[ow] = best;
                    ir[ow] = bi;
                }
                for (int64_t ow = ow_lo; ow < ow_hi; ow++) {
                    yr[ow] = -(T)INFINITY;
                    ir[ow] = kh0 < kh1 ? (h0 + kh0 * DH) * W + ow * SW - PW : -1;
                }
                /* (no interior columns: skip, KW may be huge then) */
                for (int64_t kh = kh0; ow_lo < ow_hi && kh < kh1; kh++) {
                    int64_t rowi = (h0 + kh * DH) * W;
                    const T *restrict row = xp + rowi;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        int64_t off = kw * DW - PW;
                        for (int64_t ow = ow_lo; ow < ow_hi; ow++) {
                            int64_t i = ow * SW + off;
                            T v = row[i], b = yr[ow];
                            bool take = (v > b) | (v != v);
                            yr[ow] = take ? v : b;
                            ir[ow] = take ? rowi + i : ir[ow];
                        }
                    }
                }
            }
        }
    });
}

// dx: (planes, plane_in), dy: (planes, plane_out), idx: (planes, plane_out)
void nbi_pool_scatter_add(nb_dtype dtype, void *dx, const void *dy, const int64_t *idx, int64_t planes,
                          int64_t plane_in, int64_t plane_out) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        _Pragma("omp parallel for schedule(static) if (planes * plane_in > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            T *dxp = dX + pl * plane_in;
            const T *dyp = dY + pl * plane_out;
            const int64_t *ip = idx + pl * plane_out;
            for (int64_t i = 0; i < plane_in; i++) dxp[i] = 0;
            for (int64_t o = 0; o < plane_out; o++)
                if (ip[o] >= 0) dxp[ip[o]] += dyp[o]; /* -1: a window with no input element */
        }
    });
}

/* The flat in-plane indices of the 2x2 path's winning taps (tap k of window
 * (oh, ow) is input (2 oh + k / 2, 2 ow + k % 2)), for return_indices. */
// idx: (planes, OH, OW), tap: (planes, OH, OW)
static void maxpool2x2_indices(int64_t *idx, const uint8_t *tap, const pool_geom *g) {
    const int64_t W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    _Pragma("omp parallel for schedule(static) if (planes * OH * OW > NBI_PAR_MIN)")
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t o = (pl * OH + oh) * OW + ow;
                idx[o] = (2 * oh + (tap[o] >> 1)) * W + 2 * ow + (tap[o] & 1);
            }
}

/* ---- max: autograd. ctx is the pool_geom; saved[0] the winners: taps
 * (bytes) on the 2x2 path, flat indices (int64) otherwise ---- */
static nb_status max_pool2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const pool_geom *g = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    if (pool_is_2x2(g)) maxpool2x2_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]), g);
    else nbi_pool_scatter_add(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]), g->planes,
                              g->H * g->W, g->OH * g->OW);
    return NB_OK;
}

static const nbi_op max_pool2d_op = {"max_pool2d", max_pool2d_grad_fn, NULL};

/* ---- max: the op, with or without the indices ---- */
static nb_tensor *max_pool2d_run(const nb_tensor *x, const nb_pool2d_params *p, nb_tensor **indices) {
    if (indices) *indices = NULL;
    pool_geom g;
    if (!pool_check("max_pool2d", x, p, true, &g)) return NULL;
    const bool two = pool_is_2x2(&g);
    const int64_t nout = g.planes * g.OH * g.OW;
    /* the winners are computed either way (the kernels are simplest so); kept when recorded */
    nb_tensor *win = two ? nbi_empty_bytes("max_pool2d", nout) : nbi_empty(NB_I64, 1, &nout);
    nb_tensor *xc = win ? nbi_contiguous_data(x) : NULL;
    nb_tensor *y = xc ? pool_output(x, &g) : NULL;
    /* the indices handed out: the saved winners themselves, or made from the taps */
    nb_tensor *idx = !y || !indices ? NULL : two ? nbi_empty(NB_I64, y->ndim, y->shape)
                                                 : nbi_make_view(win, y->ndim, y->shape, y->strides, 0);
    if (indices && !idx) {
        nbi_release(y);
        y = NULL;
    }
    if (y && two) maxpool2x2_forward(x->dtype, nbi_data(y), nbi_data(win), nbi_data(xc), &g);
    else if (y) max_pool2d_forward(x->dtype, nbi_data(y), nbi_data(win), nbi_data(xc), &g);
    if (y && idx && two) maxpool2x2_indices(nbi_data(idx), nbi_data(win), &g);
    nbi_release(xc);
    y = nbi_finish_op(y, &max_pool2d_op, NBI_INPUTS(x), NBI_SAVED(win), &g, sizeof g);
    return nnu_give_second(y, idx, indices);
}

nb_tensor *nb_max_pool2d(const nb_tensor *x, const nb_pool2d_params *p) { return max_pool2d_run(x, p, NULL); }

nb_tensor *nb_max_pool2d_with_indices(const nb_tensor *x, const nb_pool2d_params *p, nb_tensor **indices) {
    return max_pool2d_run(x, p, indices);
}

/* ---- average ---- */
/* Window of output (oh, ow) clipped to the input, and PyTorch's divisor:
 * divisor_override, else the window size clipped to the padded input
 * (count_include_pad) or to the input itself. */
typedef struct { int64_t h0, h1, w0, w1, div; } avg_window;

static inline avg_window avg_win(const pool_geom *g, int64_t oh, int64_t ow) {
    int64_t hs = oh * g->sh - g->ph, ws = ow * g->sw - g->pw;
    int64_t he = hs + g->kh < g->H + g->ph ? hs + g->kh : g->H + g->ph;
    int64_t we = ws + g->kw < g->W + g->pw ? ws + g->kw : g->W + g->pw;
    int64_t pool_size = (he - hs) * (we - ws);
    if (hs < 0) hs = 0;
    if (ws < 0) ws = 0;
    if (he > g->H) he = g->H;
    if (we > g->W) we = g->W;
    avg_window w = {hs, he, ws, we,
                    g->divisor_override ? g->divisor_override
                    : g->count_include_pad ? pool_size : (he - hs) * (we - ws)};
    return w;
}

// y: (planes, OH, OW), x: (planes, H, W)
static void avg_pool2d_forward(nb_dtype dtype, void *y, const void *x, const pool_geom *g) {
    int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        T *Y = y;
        _Pragma("omp parallel for schedule(static) if (g->planes * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < g->planes; pl++) {
            const T *xp = X + pl * H * W;
            T *yp = Y + pl * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    avg_window w = avg_win(g, oh, ow);
                    T sum = 0;
                    if (w.h0 >= w.h1 || w.w0 >= w.w1) { /* window entirely in padding */
                        yp[oh * OW + ow] = 0;
                        continue;
                    }
                    for (int64_t h = w.h0; h < w.h1; h++)
                        for (int64_t ww = w.w0; ww < w.w1; ww++) sum += xp[h * W + ww];
                    yp[oh * OW + ow] = sum / (T)w.div;
                }
        }
    });
}

// dx: (planes, H, W), dy: (planes, OH, OW)
static void avg_pool2d_backward(nb_dtype dtype, void *dx, const void *dy, const pool_geom *g) {
    int64_t plane_in = g->H * g->W, plane_out = g->OH * g->OW;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        _Pragma("omp parallel for schedule(static) if (g->planes * plane_in > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < g->planes; pl++) {
            T *dxp = dX + pl * plane_in;
            const T *dyp = dY + pl * plane_out;
            for (int64_t i = 0; i < plane_in; i++) dxp[i] = 0;
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    avg_window w = avg_win(g, oh, ow);
                    if (w.h0 >= w.h1 || w.w0 >= w.w1) continue;
                    T d = dyp[oh * g->OW + ow] / (T)w.div;
                    for (int64_t h = w.h0; h < w.h1; h++)
                        for (int64_t ww = w.w0; ww < w.w1; ww++) dxp[h * g->W + ww] += d;
                }
        }
    });
}

/* ---- average: autograd (ctx is the pool_geom) and the op ---- */
static nb_status avg_pool2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    avg_pool2d_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), node->ctx);
    return NB_OK;
}

static const nbi_op avg_pool2d_op = {"avg_pool2d", avg_pool2d_grad_fn, NULL};

nb_tensor *nb_avg_pool2d(const nb_tensor *x, const nb_pool2d_params *p) {
    pool_geom g;
    if (!pool_check("avg_pool2d", x, p, false, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? pool_output(x, &g) : NULL;
    if (y) avg_pool2d_forward(x->dtype, nbi_data(y), nbi_data(xc), &g);
    nbi_release(xc);
    return nbi_finish_op(y, &avg_pool2d_op, NBI_INPUTS(x), NULL, 0, &g, sizeof g);
}
