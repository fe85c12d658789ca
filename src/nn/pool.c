/* F.max_pool2d and F.avg_pool2d over [N, C, H, W] (or [C, H, W]) with
 * PyTorch's output sizes (padding, dilation, ceil_mode), argument checks and
 * messages (those of torch 1.13). Each (n, c) plane is pooled by one thread
 * with a fixed loop order, forward and backward, so results do not depend on
 * the thread count. Max pooling saves the flat in-plane index of each
 * window's winner; its backward scatters into those positions (and
 * nb_max_pool2d_with_indices returns them). The common 2x2 / stride 2 case
 * has its own loops (see pool_is_2x2). */
#include "kernels/maxpool2x2_rows.h"
#include "nn_kernels.h"
#include "nn_util.h"
#include "tensor/cpu.h"

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

/* F.max_pool2d(x, 2) and its gradient: float32 runs the per-set kernels
 * (kernels/maxpool2x2.c); these float64 loops are their plain reference, with
 * the same row rules (kernels/maxpool2x2_rows.h). */
static void unpool_row_f64(double *restrict r0, double *restrict r1, const double *restrict d,
                           const uint8_t *restrict t, int64_t OW) {
    int64_t ow = 0;
    UNPOOL_ROW_SCALAR(double)
}

// dx: (planes, H, W), dy: (planes, OH, OW), tap: (planes, OH, OW)
static void maxpool2x2_backward(nb_dtype dtype, void *dx, const void *dy, const uint8_t *tap, const pool_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    if (dtype == NB_F32) {
        NBI_CPU_PICK(nbi_maxpool2x2_portable, nbi_maxpool2x2_avx2, nbi_maxpool2x2_avx512)
            ->backward_f32(dx, dy, tap, planes, H, W, OH, OW);
        return;
    }
    double *dX = dx;
    const double *dY = dy;
#pragma omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        double *dxp = dX + pl * H * W;
        for (int64_t oh = 0; oh < OH; oh++) {
            double *r0 = dxp + 2 * oh * W, *r1 = r0 + W;
            unpool_row_f64(r0, r1, dY + (pl * OH + oh) * OW, tap + (pl * OH + oh) * OW, OW);
            for (int64_t w = 2 * OW; w < W; w++) r0[w] = r1[w] = 0; /* odd W: last column in no window */
        }
        for (int64_t i = 2 * OH * W; i < H * W; i++) dxp[i] = 0; /* odd H: last row in no window */
    }
}

static void pool_row_f64(double *restrict y, uint8_t *restrict t, const double *restrict r0,
                         const double *restrict r1, int64_t OW) {
    const bool relu = false;
    int64_t ow = 0;
    POOL_ROW_SCALAR(double)
}

/* y and the winning taps of F.max_pool2d(x, 2). */
// y: (planes, OH, OW), tap: (planes, OH, OW), x: (planes, H, W)
static void maxpool2x2_forward(nb_dtype dtype, void *y, uint8_t *tap, const void *x, const pool_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    if (dtype == NB_F32) {
        NBI_CPU_PICK(nbi_maxpool2x2_portable, nbi_maxpool2x2_avx2, nbi_maxpool2x2_avx512)
            ->forward_f32(y, tap, x, planes, H, W, OH, OW);
        return;
    }
    const double *X = x;
    double *Y = y;
#pragma omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++) {
            const double *r0 = X + pl * H * W + 2 * oh * W;
            int64_t o = (pl * OH + oh) * OW;
            pool_row_f64(Y + o, tap + o, r0, r0 + W, OW);
        }
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
