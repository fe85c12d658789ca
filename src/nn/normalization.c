/* F.group_norm and F.layer_norm (torch.nn.modules.normalization): both
 * normalise rows of x with their own mean and biased variance, then apply a
 * per-channel affine map, so they share one geometry and one pair of kernels.
 *
 *   group_norm: x (N, C, *) is rows (n, g) of C / G channels of S elements
 *               (S = the product of *); weight and bias are per channel, [C].
 *   layer_norm: x (*, normalized_shape) is rows of K = numel(normalized_shape)
 *               elements, each its own "channel" (G = 1, S = 1); weight and
 *               bias have normalized_shape.
 *
 * Statistics are accumulated in double, two passes (no cancellation), each
 * row by one thread; weight and bias gradients are summed per channel over
 * (n, s) in order by one thread: results do not depend on the thread count.
 * Checks and messages are torch 1.13's (a negative eps, which PyTorch takes,
 * is refused as by batch_norm). */
#include "nn_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- geometry ---- */
typedef struct {
    int64_t N, C, S, G;   /* x viewed as (N, G, C / G, S); rows (n, g) of K = C / G * S elements */
} norm_geom;

/* eps and the float weight / bias of x's dtype; their shapes are the op's to check. */
static bool norm_check_common(const char *op, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b, double eps) {
    if (!nbi_check_float(op, "input", x)) return false;
    if ((w && !nbi_check_float(op, "weight", w)) || (b && !nbi_check_float(op, "bias", b))) return false;
    const nb_tensor *o = w && w->dtype != x->dtype ? w : b && b->dtype != x->dtype ? b : NULL;
    if (o) {
        nbi_error(NB_ERR_DTYPE, "%s: expected scalar type %s but found %s (%s is %s, input is %s)", op,
                  x->dtype == NB_F32 ? "Float" : "Double", o->dtype == NB_F32 ? "Float" : "Double",
                  o == w ? "weight" : "bias", nb_dtype_name(o->dtype), nb_dtype_name(x->dtype));
        return false;
    }
    if (!(eps >= 0) || !isfinite(eps)) {
        nbi_error(NB_ERR_ARG, "%s: expected eps >= 0, but got %g", op, eps);
        return false;
    }
    return true;
}

/* ---- checks ---- */
static bool group_norm_check(const nb_tensor *x, int64_t G, const nb_tensor *w, const nb_tensor *b, double eps,
                             norm_geom *g) {
    const char *op = "group_norm";
    char s1[128], s2[128];
    if (!norm_check_common(op, x, w, b, eps)) return false;
    if (x->ndim < 2) {
        nbi_error(NB_ERR_SHAPE, "%s: Expected at least 2 dimensions for input tensor but received %d", op, x->ndim);
        return false;
    }
    if (G <= 0) {
        nbi_error(NB_ERR_ARG, "%s: Expected num groups to be greater than 0, got %lld", op, (long long)G);
        return false;
    }
    int64_t N = x->shape[0], C = x->shape[1], S = nbi_numel(x->ndim - 2, x->shape + 2);
    /* F.group_norm's _verify_batch_size([N * C // G, G, *]) */
    if ((__int128)(N * C / G) * S == 1) { /* (N * C fits: x has C > 0 channels of N samples, or is empty) */
        int64_t v[NB_MAX_DIMS];
        memcpy(v, x->shape, sizeof(int64_t) * (size_t)x->ndim);
        v[0] = N * C / G, v[1] = G;
        nbi_error(NB_ERR_SHAPE, "%s: Expected more than 1 value per channel when training, got input size %s", op,
                  nb_shape_str(x->ndim, v, s1, sizeof s1));
        return false;
    }
    if (C % G) {
        nbi_error(NB_ERR_SHAPE,
                  "%s: Expected number of channels in input to be divisible by num_groups, but got input of shape %s "
                  "and num_groups=%lld",
                  op, nnu_shape(x, s1, sizeof s1), (long long)G);
        return false;
    }
    const nb_tensor *vec[2] = {w, b};
    for (int i = 0; i < 2; i++)
        if (vec[i] && !(vec[i]->ndim == 1 && vec[i]->numel == C)) {
            nbi_error(NB_ERR_SHAPE,
                      "%s: Expected %s to be a vector of size equal to the number of channels in input, but got %s of "
                      "shape %s and input of shape %s",
                      op, i ? "bias" : "weight", i ? "bias" : "weight", nnu_shape(vec[i], s1, sizeof s1),
                      nnu_shape(x, s2, sizeof s2));
            return false;
        }
    *g = (norm_geom){N, C, S, G};
    return true;
}

static bool layer_norm_check(const nb_tensor *x, int nd, const int64_t *shape, const nb_tensor *w, const nb_tensor *b,
                             double eps, norm_geom *g) {
    const char *op = "layer_norm";
    char s1[160], s2[160];
    if (!norm_check_common(op, x, w, b, eps)) return false;
    if (nd < 1 || nd > NB_MAX_DIMS || !shape) {
        if (nd >= 1 && !shape) nbi_error(NB_ERR_ARG, "%s: normalized_shape is NULL", op);
        else if (nd > NB_MAX_DIMS) nbi_error(NB_ERR_ARG, "%s: normalized_shape has %d dims, at most %d", op, nd, NB_MAX_DIMS);
        else nbi_error(NB_ERR_ARG, "%s: Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
                       "least one element, but got normalized_shape = []", op);
        return false;
    }
    nb_shape_str(nd, shape, s2, sizeof s2);
    const nb_tensor *vec[2] = {w, b};
    for (int i = 0; i < 2; i++)
        if (vec[i] && !(vec[i]->ndim == nd && memcmp(vec[i]->shape, shape, sizeof(int64_t) * (size_t)nd) == 0)) {
            nbi_error(NB_ERR_SHAPE,
                      "%s: Expected %s to be of same shape as normalized_shape, but got %s of shape %s and "
                      "normalized_shape = %s",
                      op, i ? "bias" : "weight", i ? "bias" : "weight", nnu_shape(vec[i], s1, sizeof s1), s2);
            return false;
        }
    if (x->ndim < nd || memcmp(x->shape + x->ndim - nd, shape, sizeof(int64_t) * (size_t)nd) != 0) {
        char star[160] = "[*";
        for (int i = 0; i < nd; i++)
            snprintf(star + strlen(star), sizeof star - strlen(star), ", %lld", (long long)shape[i]);
        nbi_error(NB_ERR_SHAPE, "%s: Given normalized_shape=%s, expected input with shape %s], but got input of size%s", op,
                  s2, star, nnu_shape(x, s1, sizeof s1));
        return false;
    }
    *g = (norm_geom){nbi_numel(x->ndim - nd, x->shape), nbi_numel(nd, shape), 1, 1};
    return true;
}

/* ---- kernels ---- */
// y: (N, C, S), mean: (N * G), rstd: (N * G), x: (N, C, S), w: (C) or NULL, b: (C) or NULL
static void norm_forward(nb_dtype dtype, void *y, double *mean, double *rstd, const void *x, const void *w,
                         const void *b, const norm_geom *g, double eps) {
    const int64_t R = g->N * g->G, Cg = g->C / g->G, S = g->S, K = Cg * S, G = g->G;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Wt = w, *Bs = b;
        T *Y = y;
        _Pragma("omp parallel for schedule(static) if (R * K > NBI_PAR_MIN)")
        for (int64_t r = 0; r < R; r++) {
            const T *xr = X + r * K;
            T *yr = Y + r * K;
            double sum = 0, sq = 0;
            for (int64_t k = 0; k < K; k++) sum += xr[k];
            double mu = sum / (double)K;
            for (int64_t k = 0; k < K; k++) {
                double d = (double)xr[k] - mu;
                sq += d * d;
            }
            double is = 1.0 / sqrt(sq / (double)K + eps);
            mean[r] = mu;
            rstd[r] = is;
            for (int64_t c = 0; c < Cg; c++) {
                int64_t ch = (r % G) * Cg + c;
                /* y = x * a + e with a = w * rstd, e = b - mean * a */
                double a = is * (Wt ? (double)Wt[ch] : 1.0), e = (Bs ? (double)Bs[ch] : 0.0) - mu * a;
                const T ta = (T)a, te = (T)e;
                for (int64_t s = 0; s < S; s++) yr[c * S + s] = xr[c * S + s] * ta + te;
            }
        }
    });
}

/* Channels per tile of the weight-gradient loop: a thread's partial sums stay in registers / L1. */
#define NORM_TILE 64

/* Each of dx, dw, db may be NULL (not wanted).
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) over the row, g = dy * w,
 * xhat = (x - mean) * rstd; dw[ch] = sum dy * xhat, db[ch] = sum dy over (n, s). */
// dx: (N, C, S), dw: (C), db: (C), dy: (N, C, S), x: (N, C, S), w: (C) or NULL, mean, rstd: (N * G)
static void norm_backward(nb_dtype dtype, void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                          const double *mean, const double *rstd, const norm_geom *g) {
    const int64_t N = g->N, C = g->C, G = g->G, R = N * G, Cg = C / G, S = g->S, K = Cg * S;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *dY = dy, *Wt = w;
        T *dX = dx, *dW = dw, *dB = db;
        if (dX) {
            _Pragma("omp parallel for schedule(static) if (R * K > NBI_PAR_MIN)")
            for (int64_t r = 0; r < R; r++) {
                const T *xr = X + r * K, *gr = dY + r * K;
                T *dxr = dX + r * K;
                const double mu = mean[r], is = rstd[r];
                double sg = 0, sgx = 0; /* sum g, sum g * xhat */
                for (int64_t c = 0; c < Cg; c++) {
                    double wv = Wt ? (double)Wt[(r % G) * Cg + c] : 1.0;
                    for (int64_t s = 0; s < S; s++) {
                        double gv = (double)gr[c * S + s] * wv;
                        sg += gv;
                        sgx += gv * ((double)xr[c * S + s] - mu) * is;
                    }
                }
                const double mg = sg / (double)K, mgx = sgx / (double)K;
                for (int64_t c = 0; c < Cg; c++) {
                    double wv = Wt ? (double)Wt[(r % G) * Cg + c] : 1.0;
                    for (int64_t s = 0; s < S; s++) {
                        int64_t k = c * S + s;
                        double xh = ((double)xr[k] - mu) * is;
                        dxr[k] = (T)(is * ((double)gr[k] * wv - mg - xh * mgx));
                    }
                }
            }
        }
        if (dW || dB) {
            const int64_t ntiles = (C + NORM_TILE - 1) / NORM_TILE;
            _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
            for (int64_t t = 0; t < ntiles; t++) {
                const int64_t c0 = t * NORM_TILE, c1 = c0 + NORM_TILE < C ? c0 + NORM_TILE : C;
                double sw[NORM_TILE] = {0}, sb[NORM_TILE] = {0};
                for (int64_t n = 0; n < N; n++)
                    for (int64_t ch = c0; ch < c1; ch++) {
                        const int64_t r = n * G + ch / Cg;
                        const double mu = mean[r], is = rstd[r];
                        const T *xp = X + (n * C + ch) * S, *gp = dY + (n * C + ch) * S;
                        double aw = 0, ab = 0;
                        for (int64_t s = 0; s < S; s++) {
                            aw += (double)gp[s] * ((double)xp[s] - mu) * is;
                            ab += gp[s];
                        }
                        sw[ch - c0] += aw;
                        sb[ch - c0] += ab;
                    }
                for (int64_t ch = c0; ch < c1; ch++) {
                    if (dW) dW[ch] = (T)sw[ch - c0];
                    if (dB) dB[ch] = (T)sb[ch - c0];
                }
            }
        }
    });
}

/* ---- autograd: ctx is the norm_geom; saved: x, weight (or NULL), mean, rstd ---- */
static nb_status norm_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    nb_tensor *const *sv = node->saved;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    norm_backward(gout->dtype, nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]), nbi_data_or_null(gin[2]),
                  nbi_data(gout), nbi_data(sv[0]), nbi_data_or_null(sv[1]), nbi_data(sv[2]), nbi_data(sv[3]), node->ctx);
    return NB_OK;
}

static const nbi_op group_norm_op = {"group_norm", norm_grad_fn, NULL};
static const nbi_op layer_norm_op = {"layer_norm", norm_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
static nb_tensor *norm_run(const nbi_op *op, const nb_tensor *x, const nb_tensor *weight, const nb_tensor *bias,
                           double eps, const norm_geom *g) {
    const int64_t R = g->N * g->G;
    nb_tensor *mean = nbi_empty_op(op->name, NB_F64, 1, &R);
    nb_tensor *rstd = mean ? nbi_empty_op(op->name, NB_F64, 1, &R) : NULL;
    nb_tensor *xc = rstd ? nbi_contiguous_data(x) : NULL;
    nb_tensor *wc = xc && weight ? nbi_contiguous_data(weight) : NULL;
    nb_tensor *bc = xc && bias ? nbi_contiguous_data(bias) : NULL;
    nb_tensor *y = xc && (wc || !weight) && (bc || !bias) ? nbi_empty_like(x) : NULL;
    if (y)
        norm_forward(x->dtype, nbi_data(y), nbi_data(mean), nbi_data(rstd), nbi_data(xc), nbi_data_or_null(wc),
                     nbi_data_or_null(bc), g, eps);
    nbi_release(bc);
    return nbi_finish_op(y, op, NBI_INPUTS(x, weight, bias), NBI_SAVED(xc, wc, mean, rstd), g, sizeof *g);
}

nb_tensor *nb_group_norm(const nb_tensor *x, int64_t num_groups, const nb_tensor *weight, const nb_tensor *bias,
                         double eps) {
    norm_geom g;
    if (!group_norm_check(x, num_groups, weight, bias, eps, &g)) return NULL;
    return norm_run(&group_norm_op, x, weight, bias, eps, &g);
}

nb_tensor *nb_layer_norm(const nb_tensor *x, int normalized_ndim, const int64_t *normalized_shape,
                         const nb_tensor *weight, const nb_tensor *bias, double eps) {
    norm_geom g;
    if (!layer_norm_check(x, normalized_ndim, normalized_shape, weight, bias, eps, &g)) return NULL;
    return norm_run(&layer_norm_op, x, weight, bias, eps, &g);
}
