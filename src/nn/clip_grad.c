/* torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (PyTorch 1.13): norms
 * accumulated in double and rounded to the grads' dtype (PyTorch's CPU norm
 * accumulates float in double too), the clip coefficient by PyTorch's exact
 * sequence of tensor ops, the grads scaled or clamped in place. */
#include "nabla/clip_grad.h"
#include "nn_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

/* ---- kernels: g: (n,) ---- */
/* Element i of a float array as double (float for dtype NB_F32). */
static inline double elem(nb_dtype dtype, const void *g, int64_t i) {
    return dtype == NB_F32 ? (double)((const float *)g)[i] : ((const double *)g)[i];
}

/* PyTorch's p-norm: 0 counts non-zeros, INFINITY max |g|, -INFINITY min |g|
 * (0 for no elements), else (sum |g|^p)^(1/p); accumulated in double in order. */
static double norm_kernel(nb_dtype dtype, const void *g, int64_t n, double p) {
    double acc = 0;
    if (isinf(p)) {
        acc = n ? fabs(elem(dtype, g, 0)) : 0;
        for (int64_t i = 0; i < n && !isnan(acc); i++) { /* NaN propagates, as torch.max */
            const double a = fabs(elem(dtype, g, i));
            if (isnan(a) || (p > 0 ? a > acc : a < acc)) acc = a;
        }
        return acc;
    }
    for (int64_t i = 0; i < n; i++) {
        const double x = elem(dtype, g, i), a = fabs(x);
        acc += p == 0 ? (x != 0) : p == 1 ? a : p == 2 ? a * a : pow(a, p);
    }
    return p == 0 || p == 1 ? acc : p == 2 ? sqrt(acc) : pow(acc, 1 / p);
}

static void scale_kernel(nb_dtype dtype, void *g, int64_t n, double coef) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *x = g;
        const T c = (T)coef;
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * c;
    });
}

/* min(max(x, lo), hi) as ATen's clamp (NaN stays NaN; lo > hi gives hi). */
static void clamp_kernel(nb_dtype dtype, void *g, int64_t n, double lo, double hi) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *x = g;
        const T l = (T)lo, h = (T)hi;
        for (int64_t i = 0; i < n; i++) {
            if (isnan(x[i])) continue;
            const T m = x[i] < l ? l : x[i];
            x[i] = h < m ? h : m;
        }
    });
}

static double round_to(nb_dtype dtype, double v) { return dtype == NB_F32 ? (double)(float)v : v; }

/* ---- checks ---- */
/* params[0..n) are tensors and their grads float; *dtype: the grads' promoted dtype. */
static bool check_params(const char *op, nb_tensor *const *params, int n, nb_dtype *dtype, int *ngrads) {
    if (!params && n != 0) {
        nbi_null_arg(op, "parameters");
        return false;
    }
    if (n < 0) {
        nbi_error(NB_ERR_ARG, "%s: expected n >= 0 parameters, but got %d", op, n);
        return false;
    }
    *dtype = NB_F32;
    *ngrads = 0;
    for (int i = 0; i < n; i++) {
        char arg[40];
        snprintf(arg, sizeof arg, "parameters[%d]", i);
        if (!nbi_check_tensor(op, arg, params[i])) return false;
        const nb_tensor *g = params[i]->grad;
        if (!g) continue;
        snprintf(arg, sizeof arg, "parameters[%d].grad", i);
        if (!nbi_check_float(op, arg, g)) return false;
        if (!nbi_is_contiguous(g)) { /* backward makes leaf grads contiguous: this one was not made by it */
            nbi_error(NB_ERR_ARG, "%s: expected contiguous grads, but %s is not contiguous", op, arg);
            return false;
        }
        if (g->dtype == NB_F64) *dtype = NB_F64;
        ++*ngrads;
    }
    return true;
}

/* Python's str of a float, for PyTorch's message ("2.0", "inf", "0.5"). */
static const char *py_float(char *buf, size_t size, double x) {
    if (isinf(x)) snprintf(buf, size, "%s", x > 0 ? "inf" : "-inf");
    else if (x == floor(x) && fabs(x) < 1e16) snprintf(buf, size, "%.1f", x);
    else snprintf(buf, size, "%.17g", x);
    return buf;
}

/* ---- public functions ---- */
nb_status nb_clip_grad_norm_(nb_tensor *const *params, int n, double max_norm, double norm_type,
                             bool error_if_nonfinite, double *total_norm) {
    const char *op = "clip_grad_norm_";
    nb_dtype dtype;
    int ngrads;
    if (total_norm) *total_norm = 0;
    if (!check_params(op, params, n, &dtype, &ngrads)) return nb_last_status();
    if (ngrads == 0) return NB_OK; /* PyTorch returns torch.tensor(0.) */
    double *norms = nnu_alloc(op, sizeof(double) * (size_t)ngrads);
    if (!norms) return nb_last_status();
    nb_status st = NB_OK;
    int k = 0;
    for (int i = 0; i < n && st == NB_OK; i++) { /* each grad's norm, in its dtype */
        const nb_tensor *g = params[i]->grad;
        if (!g) continue;
        if (g->numel == 0 && norm_type == INFINITY) {
            st = nbi_error(NB_ERR_ARG, "%s: max(): Expected reduction dim to be specified for input.numel() == 0. "
                                       "Specify the reduction dim with the 'dim' argument.", op);
            break;
        }
        norms[k++] = round_to(g->dtype, norm_kernel(g->dtype, nbi_data(g), g->numel, norm_type));
    }
    /* the norm of the stacked norms (their max for inf), in the promoted dtype */
    const double total = st == NB_OK ? round_to(dtype, k == 1 && isinf(norm_type) ? norms[0]
                                                                                   : norm_kernel(NB_F64, norms, k, norm_type))
                                     : 0;
    free(norms);
    if (st != NB_OK) return st;
    char buf[40];
    if (error_if_nonfinite && !isfinite(total))
        return nbi_error(NB_ERR_ARG, "%s: The total norm of order %s for gradients from `parameters` is non-finite, so "
                                     "it cannot be clipped. To disable this error and scale the gradients by the "
                                     "non-finite norm anyway, set `error_if_nonfinite=False`",
                         op, py_float(buf, sizeof buf, norm_type));
    /* clip_coef = max_norm / (total_norm + 1e-6), which PyTorch computes as
     * reciprocal(total_norm + 1e-6) * max_norm, each op rounded to the dtype;
     * then clamped to at most 1 (NaN stays NaN) */
    double coef = round_to(dtype, total + round_to(dtype, 1e-6));
    coef = round_to(dtype, round_to(dtype, 1.0 / coef) * round_to(dtype, max_norm));
    if (coef > 1.0) coef = 1.0;
    for (int i = 0; i < n; i++) {
        nb_tensor *g = params[i]->grad;
        if (g) scale_kernel(g->dtype, nbi_data(g), g->numel, coef);
    }
    if (total_norm) *total_norm = total;
    return NB_OK;
}

nb_status nb_clip_grad_value_(nb_tensor *const *params, int n, double clip_value) {
    const char *op = "clip_grad_value_";
    nb_dtype dtype;
    int ngrads;
    if (!check_params(op, params, n, &dtype, &ngrads)) return nb_last_status();
    for (int i = 0; i < n; i++) {
        nb_tensor *g = params[i]->grad;
        if (g) clamp_kernel(g->dtype, nbi_data(g), g->numel, -clip_value, clip_value);
    }
    return NB_OK;
}
