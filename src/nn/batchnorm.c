/* F.batch_norm over [N, C, *] per channel C. Training normalises with the
 * batch mean and biased variance and updates the running statistics with the
 * unbiased one; evaluation normalises with the running statistics. Sums are
 * accumulated in double, each channel by one thread in (n, spatial) order, so
 * results are the same at any thread count. The batch mean and 1/std are
 * saved per channel for backward. */
#include "nn_util.h"

#include <math.h>

typedef struct {
    nb_tensor *x;      /* contiguous x, viewed as (N, C, S) */
    nb_tensor *w;      /* contiguous weight (C) or NULL */
    double *mean;      /* (C): batch mean (training) or running mean (eval) */
    double *invstd;    /* (C): 1 / sqrt(var + eps) */
    int64_t N, C, S;
    bool training;
} bn_ctx;

static void bn_free(void *p) {
    bn_ctx *c = p;
    nbi_release(c->x);
    nbi_release(c->w);
    free(c->mean);
    free(c->invstd);
    free(c);
}

static nb_status bn_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const bn_ctx *c = node->ctx;
    const nb_tensor *x = node->inputs[0], *w = node->inputs[1], *b = node->inputs[2];
    nb_tensor *gx = NULL, *gw = NULL, *gb = NULL;
    if (nbi_node_needs_grad(node, 0) && !(gx = nbi_empty(x->dtype, x->ndim, x->shape))) goto fail;
    if (w && nbi_node_needs_grad(node, 1) && !(gw = nbi_empty(w->dtype, w->ndim, w->shape))) goto fail;
    if (b && nbi_node_needs_grad(node, 2) && !(gb = nbi_empty(b->dtype, b->ndim, b->shape))) goto fail;
    int64_t N = c->N, C = c->C, S = c->S;
    double M = (double)(N * S);
    NBI_DISPATCH_FLOAT(x->dtype, {
        const T *X = nbi_data(c->x);        // X: (N, C, S)
        const T *dY = nbi_data(gout);       // dY: (N, C, S)
        const T *Wt = c->w ? (const T *)nbi_data(c->w) : NULL;  // Wt: (C)
        T *dX = gx ? (T *)nbi_data(gx) : NULL;
        T *dW = gw ? (T *)nbi_data(gw) : NULL;
        T *dB = gb ? (T *)nbi_data(gb) : NULL;
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t ch = 0; ch < C; ch++) {
            double mean = c->mean[ch], invstd = c->invstd[ch];
            double sum_g = 0, dot = 0;   /* sum dy, sum (x - mean) dy */
            for (int64_t n = 0; n < N; n++) {
                const T *xp = X + (n * C + ch) * S, *gp = dY + (n * C + ch) * S;
                for (int64_t s = 0; s < S; s++) {
                    sum_g += gp[s];
                    dot += ((double)xp[s] - mean) * gp[s];
                }
            }
            if (dW) dW[ch] = (T)(dot * invstd);
            if (dB) dB[ch] = (T)sum_g;
            if (!dX) continue;
            double wv = Wt ? (double)Wt[ch] : 1.0;
            if (c->training) {
                /* dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean((x - mean) dy)) * invstd * w */
                double k = dot * invstd * invstd / M, gmean = sum_g / M, scale = invstd * wv;
                for (int64_t n = 0; n < N; n++) {
                    const T *xp = X + (n * C + ch) * S, *gp = dY + (n * C + ch) * S;
                    T *dxp = dX + (n * C + ch) * S;
                    for (int64_t s = 0; s < S; s++)
                        dxp[s] = (T)(((double)gp[s] - gmean - ((double)xp[s] - mean) * k) * scale);
                }
            } else {
                double scale = invstd * wv;
                for (int64_t n = 0; n < N; n++) {
                    const T *gp = dY + (n * C + ch) * S;
                    T *dxp = dX + (n * C + ch) * S;
                    for (int64_t s = 0; s < S; s++) dxp[s] = (T)(gp[s] * scale);
                }
            }
        }
    });
    gin[0] = gx;
    gin[1] = gw;
    gin[2] = gb;
    return NB_OK;
fail:
    nbi_release(gx);
    nbi_release(gw);
    nbi_release(gb);
    return nb_last_status();
}

static const nbi_op bn_op = {"batch_norm", bn_backward, bn_free};

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

nb_tensor *nb_batch_norm(const nb_tensor *x, nb_tensor *running_mean, nb_tensor *running_var,
                         const nb_tensor *weight, const nb_tensor *bias, bool training, double momentum,
                         double eps) {
    const char *op = "batch_norm";
    char s1[128];
    if (!nbi_check_float(op, "input", x)) return NULL;
    if (x->ndim < 2) {
        nbi_error(NB_ERR_SHAPE, "batch_norm: expected input of shape [N, C, *] (at least 2 dims), but got %s",
                  nnu_shape(x, s1, sizeof s1));
        return NULL;
    }
    int64_t N = x->shape[0], C = x->shape[1], S = nbi_numel(x->ndim - 2, x->shape + 2);
    if (!bn_check_vec("running_mean", running_mean, x, C) || !bn_check_vec("running_var", running_var, x, C) ||
        !bn_check_vec("weight", weight, x, C) || !bn_check_vec("bias", bias, x, C))
        return NULL;
    if (!training && (!running_mean || !running_var)) {
        nbi_error(NB_ERR_ARG, "batch_norm: %s must be defined in evaluation mode",
                  !running_mean ? "running_mean" : "running_var");
        return NULL;
    }
    if (training && N * S <= 1) {
        nbi_error(NB_ERR_SHAPE, "batch_norm: Expected more than 1 value per channel when training, got input size %s",
                  nnu_shape(x, s1, sizeof s1));
        return NULL;
    }
    if (!(eps >= 0) || !isfinite(momentum)) {
        nbi_error(NB_ERR_ARG, "batch_norm: expected eps >= 0 and a finite momentum, but got eps=%g momentum=%g", eps,
                  momentum);
        return NULL;
    }
    double *mean = malloc((size_t)(C ? C : 1) * sizeof(double));
    double *invstd = malloc((size_t)(C ? C : 1) * sizeof(double));
    nb_tensor *xc = NULL, *wc = NULL, *bc = NULL, *y = NULL;
    bn_ctx *ctx = NULL;
    if (!mean || !invstd) {
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
        goto fail;
    }
    if (!(xc = nbi_contiguous_data(x)) || (weight && !(wc = nbi_contiguous_data(weight))) || (bias && !(bc = nbi_contiguous_data(bias))))
        goto fail;
    if (!(y = nbi_empty(x->dtype, x->ndim, x->shape))) goto fail;
    double M = (double)(N * S);
    NBI_DISPATCH_FLOAT(x->dtype, {
        const T *X = nbi_data(xc);          // X: (N, C, S)
        T *Y = nbi_data(y);                 // Y: (N, C, S)
        const T *Wt = wc ? (const T *)nbi_data(wc) : NULL;  // (C)
        const T *Bs = bc ? (const T *)nbi_data(bc) : NULL;  // (C)
        T *rm = running_mean ? (T *)nbi_data(running_mean) : NULL;  // (C), strided
        T *rv = running_var ? (T *)nbi_data(running_var) : NULL;
        int64_t rms = running_mean ? running_mean->strides[0] : 0, rvs = running_var ? running_var->strides[0] : 0;
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t ch = 0; ch < C; ch++) {
            double mu, var;
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
    nbi_release(bc);
    bc = NULL;
    nb_tensor *inputs[3] = {(nb_tensor *)x, (nb_tensor *)weight, (nb_tensor *)bias};
    if (nbi_should_record(inputs, 3)) {
        if (!(ctx = nnu_alloc(op, sizeof *ctx))) goto fail;
        *ctx = (bn_ctx){xc, wc, mean, invstd, N, C, S, training};
        return nbi_finish(y, &bn_op, inputs, 3, ctx);
    }
    nbi_release(xc);
    nbi_release(wc);
    free(mean);
    free(invstd);
    return nbi_finish(y, &bn_op, inputs, 3, NULL); /* not recorded; anomaly mode still checks y */
fail:
    nb_tensor_release(y);
    nbi_release(xc);
    nbi_release(wc);
    nbi_release(bc);
    free(mean);
    free(invstd);
    return NULL;
}
