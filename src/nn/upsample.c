/* F.interpolate over [N, C, H, W], modes nearest and bilinear (align_corners
 * or not), to a size or by a scale factor (recompute_scale_factor), with torch
 * 1.13's output sizes, source indices, weights, checks and messages:
 *
 *   output size  size, or floor(in * scale) when recomputing, else the
 *                product truncated (PyTorch's C++ cast)
 *   scale        1 / scale_factor when it is given and not recomputed, else
 *                in / out; bilinear with align_corners: (in - 1) / (out - 1)
 *   nearest      src = min(floor(scale * dst), in - 1), the product in the
 *                input's dtype, the floor in float (PyTorch's kernel for
 *                inputs of several channels; its one-channel inputs take its
 *                channels-last kernel, which copies when out == in and halves
 *                when out == 2 in even when a scale_factor says otherwise:
 *                nabla computes every input the first way; PyTorch's nearest
 *                backward always takes the second, so there its gradient is
 *                not its forward's, while nabla's is)
 *   bilinear     src = scale * (dst + 0.5) - 0.5 clamped at 0 (or scale * dst
 *                with align_corners), in the input's dtype; taps floor(src) and
 *                the next one (not past the edge), weights 1 - l and l with
 *                l = src - floor(src); out == in is the identity
 *
 * Per dimension, the source taps and weights are computed once per call into
 * a table (saved for backward). One thread per (n, c) plane, in a fixed
 * order, forward and backward: results do not depend on the thread count. */
#include "nn_util.h"

#include <math.h>

/* ---- check ---- */
typedef struct {
    int64_t planes, H, W, OH, OW;
    nb_interpolate_mode mode;
    bool align_corners;
    double scale[2];   /* the scale_factor the kernel uses (h, w); 0: none (in / out) */
} interp_geom;

static bool size_given(const nb_interpolate_params *p) { return p->size[0] != 0 || p->size[1] != 0; }
static bool scale_given(const nb_interpolate_params *p) { return p->scale_factor[0] != 0 || p->scale_factor[1] != 0; }

/* The parameters alone, in F.interpolate's order (shared with the Upsample module). */
bool nbi_interpolate_check_params(const char *op, const nb_interpolate_params *p) {
    if (!p) {
        nbi_error(NB_ERR_ARG, "%s: params is NULL", op);
        return false;
    }
    if (p->mode != NB_INTERPOLATE_NEAREST && p->mode != NB_INTERPOLATE_BILINEAR) {
        nbi_error(NB_ERR_ARG, "%s: unknown mode %d (nabla has NB_INTERPOLATE_NEAREST and NB_INTERPOLATE_BILINEAR)", op,
                  (int)p->mode);
        return false;
    }
    if (p->mode == NB_INTERPOLATE_NEAREST && p->align_corners) {
        nbi_error(NB_ERR_ARG, "%s: align_corners option can only be set with the interpolating modes: linear | bilinear "
                  "| bicubic | trilinear", op);
        return false;
    }
    if (size_given(p) && scale_given(p)) {
        nbi_error(NB_ERR_ARG, "%s: only one of size or scale_factor should be defined", op);
        return false;
    }
    if (!size_given(p) && !scale_given(p)) {
        nbi_error(NB_ERR_ARG, "%s: either size or scale_factor should be defined", op);
        return false;
    }
    if (p->recompute_scale_factor && size_given(p)) {
        nbi_error(NB_ERR_ARG, "%s: recompute_scale_factor is not meaningful with an explicit size.", op);
        return false;
    }
    return true;
}

static bool interp_check(const nb_tensor *x, const nb_interpolate_params *p, interp_geom *g) {
    const char *op = "interpolate";
    char s[128];
    if (!nbi_check_float(op, "input", x) || !nbi_interpolate_check_params(op, p)) return false;
    bool bilinear = p->mode == NB_INTERPOLATE_BILINEAR;
    if (x->ndim != 4) {
        if (bilinear && (x->ndim == 3 || x->ndim == 5))
            nbi_error(NB_ERR_SHAPE, "%s: Got %dD input, but bilinear mode needs 4D input", op, x->ndim);
        else if (x->ndim == 3 || x->ndim == 5)
            nbi_error(NB_ERR_SHAPE, "%s: nabla interpolates 4D input (N, C, H, W) only, but got %dD input", op, x->ndim);
        else
            nbi_error(NB_ERR_SHAPE, "%s: Input Error: Only 3D, 4D and 5D input Tensors supported (got %dD) for the modes: "
                      "nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact (got %s)", op, x->ndim,
                      bilinear ? "bilinear" : "nearest");
        return false;
    }
    int64_t in[2] = {x->shape[2], x->shape[3]}, out[2];
    double scale[2] = {0, 0};
    for (int d = 0; d < 2; d++) {
        if (size_given(p)) {
            out[d] = p->size[d];
            continue;
        }
        double v = (double)in[d] * p->scale_factor[d];
        v = p->recompute_scale_factor ? floor(v) : trunc(v);
        if (!(fabs(v) < 0x1p62)) {
            nbi_error(NB_ERR_ARG, "%s: output size %lld * scale_factor %g is not a representable size", op,
                      (long long)in[d], p->scale_factor[d]);
            return false;
        }
        out[d] = (int64_t)v;
        if (!p->recompute_scale_factor) scale[d] = p->scale_factor[d];
    }
    if (in[0] <= 0 || in[1] <= 0 || out[0] <= 0 || out[1] <= 0) {
        nbi_error(NB_ERR_SHAPE, "%s: Input and output sizes should be greater than 0, but got input (H: %lld, W: %lld) "
                  "output (H: %lld, W: %lld)", op, (long long)in[0], (long long)in[1], (long long)out[0],
                  (long long)out[1]);
        return false;
    }
    if (x->shape[1] == 0) {
        nbi_error(NB_ERR_SHAPE, "%s: Non-empty 4D data tensor expected but got a tensor with sizes %s", op,
                  nnu_shape(x, s, sizeof s));
        return false;
    }
    int64_t planes = x->shape[0] * x->shape[1];
    if ((__int128)planes * out[0] * out[1] > INT64_MAX / 8 || out[0] > INT64_MAX / 64 || out[1] > INT64_MAX / 64) {
        nbi_error(NB_ERR_ARG, "%s: output size (%lld, %lld) is too large", op, (long long)out[0], (long long)out[1]);
        return false;
    }
    *g = (interp_geom){planes, in[0], in[1], out[0], out[1], p->mode, p->align_corners, {scale[0], scale[1]}};
    return true;
}

/* ---- the taps and weights of one dimension ----
 * The table: i0[n], i1[n] (int64), then l0[n], l1[n] (double holding values
 * of the input's dtype), n = OH + OW: rows first, then columns. */
typedef struct {
    int64_t *i0, *i1;
    double *l0, *l1;
} interp_table;

static interp_table table_at(void *base, int64_t n) {
    int64_t *i = base;
    double *l = (double *)(i + 2 * n);
    return (interp_table){i, i + n, l, l + n};
}

/* entries [at, at + out) of t for one dimension */
static void fill_table(nb_dtype dtype, interp_table t, int64_t at, int64_t in, int64_t out, double scale,
                       nb_interpolate_mode mode, bool align) {
    NBI_DISPATCH_FLOAT(dtype, {
        /* area_pixel_compute_scale, in T */
        T sc = align ? (out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0)
                     : (scale > 0 ? (T)(1.0 / scale) : (T)in / (T)out);
        for (int64_t o = 0; mode == NB_INTERPOLATE_NEAREST && o < out; o++) {
            /* HelperInterpNearest::compute_indices_weights */
            int64_t i = (int64_t)floorf((float)(sc * (T)o));
            t.i0[at + o] = t.i1[at + o] = i < in - 1 ? i : in - 1;
            t.l0[at + o] = 1, t.l1[at + o] = 0;
        }
        /* compute_source_index_and_lambda */
        for (int64_t o = 0; mode == NB_INTERPOLATE_BILINEAR && o < out; o++) {
            int64_t i0 = o, i1 = o;
            T l1 = 0;
            if (out != in) {
                T src = align ? sc * (T)o : sc * ((T)o + (T)0.5) - (T)0.5;
                if (!align && src < 0) src = 0;
                i0 = (int64_t)src;
                i1 = i0 + (i0 < in - 1 ? 1 : 0);
                l1 = src - (T)i0;
                l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
            }
            t.i0[at + o] = i0, t.i1[at + o] = i1;
            t.l0[at + o] = (double)((T)1 - l1), t.l1[at + o] = (double)l1;
        }
    });
}

/* ---- kernels ---- */
// y: (planes, OH, OW), x: (planes, H, W)
static void interpolate_forward(nb_dtype dtype, void *y, const void *x, interp_table t, const interp_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    const bool nearest = g->mode == NB_INTERPOLATE_NEAREST;
    const int64_t *ci0 = t.i0 + OH, *ci1 = t.i1 + OH;
    const double *cl0 = t.l0 + OH, *cl1 = t.l1 + OH;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        T *Y = y;
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            const T *xp = X + pl * H * W;
            for (int64_t oh = 0; oh < OH; oh++) {
                const T *r0 = xp + t.i0[oh] * W, *r1 = xp + t.i1[oh] * W;
                const T h0 = (T)t.l0[oh], h1 = (T)t.l1[oh];
                T *yr = Y + (pl * OH + oh) * OW;
                if (nearest)
                    for (int64_t ow = 0; ow < OW; ow++) yr[ow] = r0[ci0[ow]];
                else
                    for (int64_t ow = 0; ow < OW; ow++) {
                        const T w0 = (T)cl0[ow], w1 = (T)cl1[ow];
                        yr[ow] = (r0[ci0[ow]] * w0 + r0[ci1[ow]] * w1) * h0 + (r1[ci0[ow]] * w0 + r1[ci1[ow]] * w1) * h1;
                    }
            }
        }
    });
}

// dx: (planes, H, W), dy: (planes, OH, OW)
static void interpolate_backward(nb_dtype dtype, void *dx, const void *dy, interp_table t, const interp_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    const bool nearest = g->mode == NB_INTERPOLATE_NEAREST;
    const int64_t *ci0 = t.i0 + OH, *ci1 = t.i1 + OH;
    const double *cl0 = t.l0 + OH, *cl1 = t.l1 + OH;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            T *dxp = dX + pl * H * W;
            for (int64_t i = 0; i < H * W; i++) dxp[i] = 0;
            for (int64_t oh = 0; oh < OH; oh++) {
                T *r0 = dxp + t.i0[oh] * W, *r1 = dxp + t.i1[oh] * W;
                const T h0 = (T)t.l0[oh], h1 = (T)t.l1[oh];
                const T *dyr = dY + (pl * OH + oh) * OW;
                if (nearest)
                    for (int64_t ow = 0; ow < OW; ow++) r0[ci0[ow]] += dyr[ow];
                else
                    for (int64_t ow = 0; ow < OW; ow++) { /* PyTorch's order: (h * w) * dy, four taps */
                        const T w0 = (T)cl0[ow], w1 = (T)cl1[ow], d = dyr[ow];
                        r0[ci0[ow]] += h0 * w0 * d;
                        r0[ci1[ow]] += h0 * w1 * d;
                        r1[ci0[ow]] += h1 * w0 * d;
                        r1[ci1[ow]] += h1 * w1 * d;
                    }
            }
        }
    });
}

/* ---- autograd: ctx is the interp_geom, saved[0] the table ---- */
static nb_status interpolate_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const interp_geom *g = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    interpolate_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), table_at(nbi_data(node->saved[0]), g->OH + g->OW),
                         g);
    return NB_OK;
}

static const nbi_op interpolate_op = {"interpolate", interpolate_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_interpolate(const nb_tensor *x, const nb_interpolate_params *p) {
    interp_geom g;
    if (!interp_check(x, p, &g)) return NULL;
    const int64_t n = g.OH + g.OW;
    nb_tensor *tab = nbi_empty_bytes("interpolate", 4 * n * 8);
    nb_tensor *xc = tab ? nbi_contiguous_data(x) : NULL;
    const int64_t shape[4] = {x->shape[0], x->shape[1], g.OH, g.OW};
    nb_tensor *y = xc ? nbi_empty_op("interpolate", x->dtype, 4, shape) : NULL;
    if (y) {
        interp_table t = table_at(nbi_data(tab), n);
        fill_table(x->dtype, t, 0, g.H, g.OH, g.scale[0], g.mode, g.align_corners);
        fill_table(x->dtype, t, g.OH, g.W, g.OW, g.scale[1], g.mode, g.align_corners);
        interpolate_forward(x->dtype, nbi_data(y), nbi_data(xc), t, &g);
    }
    nbi_release(xc);
    return nbi_finish_op(y, &interpolate_op, NBI_INPUTS(x), NBI_SAVED(tab), &g, sizeof g);
}
