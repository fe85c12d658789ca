/* F.batch_norm over [N, C, *] per channel C. Training normalises with the
 * batch mean and biased variance and updates the running statistics with the
 * unbiased one; evaluation normalises with the running statistics. Sums are
 * accumulated in double, each channel by one thread in (n, spatial) order, so
 * results are the same at any thread count. The batch mean and 1/std are
 * saved per channel for backward.
 *
 * An empty input (N = 0, or an empty spatial size) gives an empty output and
 * leaves the running statistics alone, as PyTorch (whose batch_norm returns
 * early on numel() == 0); weight and bias then get zero gradients. */
#include "nn_util.h"

#include <math.h>

/* ---- check ---- */
typedef struct {
    int64_t N, C, S;   /* x viewed as (N, C, S) */
    bool training;
} bn_geom;

/* A per-channel vector argument: NULL allowed, else C elements of x's dtype, 1-d. */
static bool bn_check_vec(const char *name, const nb_tensor *v, const nb_tensor *x, int64_t C) {
    if (!v) return true;
    if (!nbi_check_float("batch_norm", name, v)) return false;
    if (v->dtype != x->dtype) {
        nbi_error(NB_ERR_DTYPE, "batch_norm: expected %s to have dtype %s (the input's), but got %s", name,
                  nb_dtype_name(x->dtype), nb_dtype_name(v->dtype));
        return false;
    }
    if (v->numel != C || v->ndim != 1) {
        nbi_error(NB_ERR_SHAPE, "batch_norm: %s should contain %lld elements not %lld", name, (long long)C,
                  (long long)v->numel);
        return false;
    }
    return true;
}

static bool bn_check(const nb_tensor *x, const nb_tensor *running_mean, const nb_tensor *running_var,
                     const nb_tensor *weight, const nb_tensor *bias, bool training, double momentum, double eps,
                     bn_geom *g) {
    char s1[128];
    if (!nbi_check_float("batch_norm", "input", x)) return false;
    if (x->ndim < 2) {
        nbi_error(NB_ERR_SHAPE, "batch_norm: expected input of shape [N, C, *] (at least 2 dims), but got %s",
                  nnu_shape(x, s1, sizeof s1));
        return false;
    }
    int64_t N = x->shape[0], C = x->shape[1], S = nbi_numel(x->ndim - 2, x->shape + 2);
    if (!bn_check_vec("running_mean", running_mean, x, C) || !bn_check_vec("running_var", running_var, x, C) ||
        !bn_check_vec("weight", weight, x, C) || !bn_check_vec("bias", bias, x, C))
        return false;
    if (!training && (!running_mean || !running_var)) {
        nbi_error(NB_ERR_ARG, "batch_norm: %s must be defined in evaluation mode",
                  !running_mean ? "running_mean" : "running_var");
        return false;
    }
    /* F.batch_norm's _verify_batch_size: exactly one value per channel (none is fine) */
    if (training && N * S == 1) {
        nbi_error(NB_ERR_SHAPE, "batch_norm: Expected more than 1 value per channel when training, got input size %s",
                  nnu_shape(x, s1, sizeof s1));
        return false;
    }
    if (!(eps >= 0) || !isfinite(momentum)) {
        nbi_error(NB_ERR_ARG, "batch_norm: expected eps >= 0 and a finite momentum, but got eps=%g momentum=%g", eps,
                  momentum);
        return false;
    }
    *g = (bn_geom){N, C, S, training};
    return true;
}

/* ---- kernels ---- */
/* Per channel: the statistics (batch ones in training, which also update the
 * running ones when given; the running ones otherwise), then y = x * alpha + beta. */
// y: (N, C, S), mean: (C), invstd: (C), running_mean/var: (C) with strides rms/rvs (in and out, may be NULL),
// x: (N, C, S), w: (C) or NULL, b: (C) or NULL
static void bn_forward(nb_dtype dtype, void *y, double *mean, double *invstd, void *running_mean, int64_t rms,
                       void *running_var, int64_t rvs, const void *x, const void *w, const void *b, const bn_geom *g,
                       double momentum, double eps) {
    const int64_t N = g->N, C = g->C, S = g->S;
    const bool training = g->training;
    const double M = (double)(N * S);
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Wt = w, *Bs = b;
        T *Y = y, *rm = running_mean, *rv = running_var;
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t ch = 0; ch < C; ch++) {
            double mu, var;
            if (training && M == 0) { /* no values: no statistics, running ones untouched (as PyTorch) */
                mean[ch] = invstd[ch] = 0;
                continue;
            }
            if (training) {
                double sum = 0, sq = 0;
                for (int64_t n = 0; n < N; n++) {
                    const T *xp = X + (n * C + ch) * S;
                    for (int64_t s = 0; s < S; s++) sum += xp[s];
                }
                mu = sum / M;
                for (int64_t n = 0; n < N; n++) { /* second pass: no cancellation */
                    const T *xp = X + (n * C + ch) * S;
                    for (int64_t s = 0; s < S; s++) {
                        double d = (double)xp[s] - mu;
                        sq += d * d;
                    }
                }
                var = sq / M;
                if (rm) rm[ch * rms] = (T)(momentum * mu + (1 - momentum) * (double)rm[ch * rms]);
                if (rv) rv[ch * rvs] = (T)(momentum * (sq / (M - 1)) + (1 - momentum) * (double)rv[ch * rvs]);
            } else {
                mu = (double)rm[ch * rms];
                var = (double)rv[ch * rvs];
            }
            double is = 1.0 / sqrt(var + eps);
            mean[ch] = mu;
            invstd[ch] = is;
            /* y = x * alpha + beta with alpha = w / std, beta = b - mean * alpha */
            double alpha = is * (Wt ? (double)Wt[ch] : 1.0);
            double beta = (Bs ? (double)Bs[ch] : 0.0) - mu * alpha;
            const T a = (T)alpha, bb = (T)beta;
            for (int64_t n = 0; n < N; n++) {
                const T *xp = X + (n * C + ch) * S;
                T *yp = Y + (n * C + ch) * S;
                for (int64_t s = 0; s < S; s++) yp[s] = xp[s] * a + bb;
            }
        }
    });
}

/* Each of dx, dw, db may be NULL (not wanted). */
// dx: (N, C, S), dw: (C), db: (C), dy: (N, C, S), x: (N, C, S), w: (C) or NULL, mean: (C), invstd: (C)
static void bn_backward(nb_dtype dtype, void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                        const double *mean, const double *invstd, const bn_geom *g) {
    const int64_t N = g->N, C = g->C, S = g->S;
    const double M = (double)(N * S);
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *dY = dy, *Wt = w;
        T *dX = dx, *dW = dw, *dB = db;
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t ch = 0; ch < C; ch++) {
            double mu = mean[ch], is = invstd[ch];
            double sum_g = 0, dot = 0;   /* sum dy, sum (x - mean) dy */
            for (int64_t n = 0; n < N; n++) {
                const T *xp = X + (n * C + ch) * S, *gp = dY + (n * C + ch) * S;
                for (int64_t s = 0; s < S; s++) {
                    sum_g += gp[s];
                    dot += ((double)xp[s] - mu) * gp[s];
                }
            }
            if (dW) dW[ch] = (T)(dot * is);
            if (dB) dB[ch] = (T)sum_g;
            if (!dX) continue;
            double wv = Wt ? (double)Wt[ch] : 1.0;
            if (g->training) {
                /* dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean((x - mean) dy)) * invstd * w */
                double k = dot * is * is / M, gmean = sum_g / M, scale = is * wv;
                for (int64_t n = 0; n < N; n++) {
                    const T *xp = X + (n * C + ch) * S, *gp = dY + (n * C + ch) * S;
                    T *dxp = dX + (n * C + ch) * S;
                    for (int64_t s = 0; s < S; s++)
                        dxp[s] = (T)(((double)gp[s] - gmean - ((double)xp[s] - mu) * k) * scale);
                }
            } else {
                double scale = is * wv;
                for (int64_t n = 0; n < N; n++) {
                    const T *gp = dY + (n * C + ch) * S;
                    T *dxp = dX + (n * C + ch) * S;
                    for (int64_t s = 0; s < S; s++) dxp[s] = (T)(gp[s] * scale);
                }
            }
        }
    });
}

/* ---- autograd: ctx is the bn_geom; saved: x (contiguous), weight (contiguous
 * or NULL), mean and invstd (float64, per channel) ---- */
static nb_status bn_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    nb_tensor *const *sv = node->saved;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    bn_backward(gout->dtype, nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]), nbi_data_or_null(gin[2]),
                nbi_data(gout), nbi_data(sv[0]), nbi_data_or_null(sv[1]), nbi_data(sv[2]), nbi_data(sv[3]), node->ctx);
    return NB_OK;
}

static const nbi_op bn_op = {"batch_norm", bn_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_batch_norm(const nb_tensor *x, nb_tensor *running_mean, nb_tensor *running_var,
                         const nb_tensor *weight, const nb_tensor *bias, bool training, double momentum,
                         double eps) {
    bn_geom g;
    if (!bn_check(x, running_mean, running_var, weight, bias, training, momentum, eps, &g)) return NULL;
    nb_tensor *mean = nbi_empty(NB_F64, 1, &g.C), *invstd = mean ? nbi_empty(NB_F64, 1, &g.C) : NULL;
    nb_tensor *xc = invstd ? nbi_contiguous_data(x) : NULL;
    nb_tensor *wc = xc && weight ? nbi_contiguous_data(weight) : NULL;
    nb_tensor *bc = xc && bias ? nbi_contiguous_data(bias) : NULL;
    nb_tensor *y = xc && (wc || !weight) && (bc || !bias) ? nbi_empty_like(x) : NULL;
    if (y)
        bn_forward(x->dtype, nbi_data(y), nbi_data(mean), nbi_data(invstd), nbi_data_or_null(running_mean),
                   running_mean ? running_mean->strides[0] : 0, nbi_data_or_null(running_var),
                   running_var ? running_var->strides[0] : 0, nbi_data(xc), nbi_data_or_null(wc), nbi_data_or_null(bc),
                   &g, momentum, eps);
    nbi_release(bc);
    return nbi_finish_op(y, &bn_op, NBI_INPUTS(x, weight, bias), NBI_SAVED(xc, wc, mean, invstd), &g, sizeof g);
}
