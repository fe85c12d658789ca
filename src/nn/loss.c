/* Losses: F.nll_loss, F.cross_entropy (log_softmax over the class dim fused
 * with nll) and F.mse_loss, with reductions mean / sum / none.
 *
 * Class losses take input [N, C], [N, C, d1, ...] or [C] and int64 targets
 * [N], [N, d1, ...] or [] (PyTorch's layouts); a target equal to -100
 * (PyTorch's default ignore_index) is skipped and not counted by the mean.
 * Reductions add elements in a fixed order (sequentially, or in fixed-size
 * chunks combined in order), so results do not depend on the thread count. */
#include "nn_util.h"

#include <math.h>
#include <string.h>

#define NB_IGNORE_INDEX (-100)

static bool check_reduction(const char *op, nb_reduction r) {
    if (r != NB_REDUCTION_MEAN && r != NB_REDUCTION_SUM && r != NB_REDUCTION_NONE) {
        nbi_error(NB_ERR_ARG, "%s: %d is not a valid value for reduction", op, (int)r);
        return false;
    }
    return true;
}

/* ---- class losses: shared geometry and checks ---- */
typedef struct {
    int64_t N, C, S;     /* input viewed as (N, C, S); target as (N, S) */
    int64_t count;       /* targets not ignored */
    nb_reduction reduction;
} cls_geom;

static bool cls_check(const char *op, const nb_tensor *input, const nb_tensor *target, nb_reduction reduction,
                      cls_geom *g) {
    char s1[128], s2[128];
    if (!nbi_check_float(op, "input", input) || !nbi_check_tensor(op, "target", target)) return false;
    if (!check_reduction(op, reduction)) return false;
    if (target->dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "%s: expected scalar type Long but found %s (target must be int64 class indices)", op,
                  target->dtype == NB_F32 ? "Float" : "Double");
        return false;
    }
    int nd = input->ndim;
    if (nd < 1) {
        nbi_error(NB_ERR_SHAPE, "%s: expected input of shape [N, C, ...] or [C], but got a 0-d tensor", op);
        return false;
    }
    if (nd == 1) {
        if (target->ndim != 0) {
            nbi_error(NB_ERR_SHAPE, "%s: expected a 0-d target for 1-d input %s, but got %s", op,
                      nnu_shape(input, s1, sizeof s1), nnu_shape(target, s2, sizeof s2));
            return false;
        }
        *g = (cls_geom){1, input->shape[0], 1, 0, reduction};
        return true;
    }
    int64_t tb = target->ndim ? target->shape[0] : 1;
    if (target->ndim == 0 || tb != input->shape[0]) {
        nbi_error(NB_ERR_SHAPE, "%s: Expected input batch_size (%lld) to match target batch_size (%lld).", op,
                  (long long)input->shape[0], (long long)tb);
        return false;
    }
    bool same = target->ndim == nd - 1;
    for (int i = 2; same && i < nd; i++) same = target->shape[i - 1] == input->shape[i];
    if (!same) {
        if (nd == 2) {
            nbi_error(NB_ERR_SHAPE, "%s: 1D target tensor expected, multi-target not supported (target %s)", op,
                      nnu_shape(target, s2, sizeof s2));
        } else {
            int64_t want[NB_MAX_DIMS];
            want[0] = input->shape[0];
            for (int i = 2; i < nd; i++) want[i - 1] = input->shape[i];
            nbi_error(NB_ERR_SHAPE, "%s: Expected target size %s, got %s", op, nb_shape_str(nd - 1, want, s1, sizeof s1),
                      nnu_shape(target, s2, sizeof s2));
        }
        return false;
    }
    *g = (cls_geom){input->shape[0], input->shape[1], nbi_numel(nd - 2, input->shape + 2), 0, reduction};
    return true;
}

/* Check every target is in [0, C) or ignored; count the others. */
static bool cls_targets(const char *op, const int64_t *t, cls_geom *g) {
    int64_t n = g->N * g->S, count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (t[i] == NB_IGNORE_INDEX) continue;
        if (t[i] < 0 || t[i] >= g->C) {
            nbi_error(NB_ERR_ARG, "%s: Target %lld is out of bounds.", op, (long long)t[i]);
            return false;
        }
        count++;
    }
    g->count = count;
    return true;
}

/* A contiguous int64 copy of the targets (N * S), validated, g->count set; NULL
 * on failure. A copy: the caller may change its targets before backward. */
static nb_tensor *cls_copy_targets(const char *op, const nb_tensor *target, cls_geom *g) {
    int64_t n = g->N * g->S;
    nb_tensor *t = nbi_empty(NB_I64, 1, &n);
    if (t && (nb_tensor_copy_out(target, nbi_data(t), NB_I64) != NB_OK || !cls_targets(op, nbi_data(t), g))) {
        nbi_release(t);
        t = NULL;
    }
    return t;
}

/* ---- class losses: kernels ---- */
/* Per-element weight of the upstream gradient: w[i] for element i of the target. */
#define CLS_GRAD_FACTOR(T, g, dy, i) \
    ((g)->reduction == NB_REDUCTION_NONE ? (dy)[i] : (g)->reduction == NB_REDUCTION_SUM ? (dy)[0] : (dy)[0] / (T)(g)->count)

/* nll over log-probabilities: per element (none) or reduced. */
// y: (N, S) for none, () otherwise; logp: (N, C, S), t: (N, S)
static void nll_forward(nb_dtype dtype, void *y, const void *logp, const int64_t *t, const cls_geom *g) {
    int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *L = logp;
        T *O = y;
        T sum = 0;                           /* sequential: the order never changes */
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                int64_t k = t[n * S + s];
                T v = k == NB_IGNORE_INDEX ? (T)0 : -L[(n * C + k) * S + s];
                if (g->reduction == NB_REDUCTION_NONE) O[n * S + s] = v;
                else sum += v;
            }
        if (g->reduction == NB_REDUCTION_SUM) O[0] = sum;
        else if (g->reduction == NB_REDUCTION_MEAN) O[0] = sum / (T)g->count; /* 0/0 = NaN when all ignored, as PyTorch */
    });
}

// dx: (N, C, S), dy: (N, S) for none, () otherwise; t: (N, S)
static void nll_backward(nb_dtype dtype, void *dx, const void *dy, const int64_t *t, const cls_geom *g) {
    int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        memset(dX, 0, (size_t)(N * C * S) * sizeof(T));
        for (int64_t i = 0; i < N * S; i++) {
            int64_t k = t[i];
            if (k == NB_IGNORE_INDEX) continue;
            int64_t n = i / S, s = i % S;
            dX[(n * C + k) * S + s] = -CLS_GRAD_FACTOR(T, g, dY, i);
        }
    });
}

/* logp = log_softmax of x over C; each (n, s) by one thread, sums in double. */
// logp: (N, C, S), x: (N, C, S)
static void log_softmax_dim1(nb_dtype dtype, void *logp, const void *x, int64_t N, int64_t C, int64_t S) {
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        T *L = logp;
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                const T *xp = X + n * C * S + s;
                T *lp = L + n * C * S + s;
                T mx = -(T)INFINITY;
                for (int64_t j = 0; j < C; j++)
                    if (xp[j * S] > mx || xp[j * S] != xp[j * S]) mx = xp[j * S];
                if (isinf(mx) && mx < 0) mx = 0; /* all -inf: avoid inf - inf */
                double sum = 0;
                for (int64_t j = 0; j < C; j++) sum += exp((double)xp[j * S] - (double)mx);
                double lse = (double)mx + log(sum);
                for (int64_t j = 0; j < C; j++) lp[j * S] = (T)((double)xp[j * S] - lse);
            }
    });
}

/* d loss_i / d x[n, j, s] = w_i * (softmax_j - [j == target_i]) */
// dx: (N, C, S), dy: (N, S) for none, () otherwise; logp: (N, C, S), t: (N, S)
static void ce_backward(nb_dtype dtype, void *dx, const void *dy, const void *logp, const int64_t *t,
                        const cls_geom *g) {
    int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *L = logp, *dY = dy;
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = n * S + s, k = t[i];
                T w = k == NB_IGNORE_INDEX ? (T)0 : CLS_GRAD_FACTOR(T, g, dY, i);
                for (int64_t j = 0; j < C; j++) {
                    int64_t e = (n * C + j) * S + s;
                    dX[e] = w * (exp(L[e]) - (j == k ? (T)1 : (T)0));
                }
            }
    });
}

/* The output of a class loss: the target's shape (none) or 0-d. */
static nb_tensor *cls_output(const nb_tensor *input, const nb_tensor *target, const cls_geom *g) {
    return g->reduction == NB_REDUCTION_NONE ? nbi_empty(input->dtype, target->ndim, target->shape)
                                             : nbi_empty(input->dtype, 0, NULL);
}

/* ---- nll_loss: ctx is the cls_geom; saved[0] the targets ---- */
static nb_status nll_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    nll_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]), node->ctx);
    return NB_OK;
}

static const nbi_op nll_op = {"nll_loss", nll_grad_fn, NULL};

nb_tensor *nb_nll_loss(const nb_tensor *log_probs, const nb_tensor *target, nb_reduction reduction) {
    const char *op = "nll_loss";
    cls_geom g;
    if (!cls_check(op, log_probs, target, reduction, &g)) return NULL;
    nb_tensor *t = cls_copy_targets(op, target, &g);
    nb_tensor *xc = t ? nbi_contiguous_data(log_probs) : NULL;
    nb_tensor *y = xc ? cls_output(log_probs, target, &g) : NULL;
    if (y) nll_forward(log_probs->dtype, nbi_data(y), nbi_data(xc), nbi_data(t), &g);
    nbi_release(xc);
    /* the targets are not differentiable: saved, not an input */
    return nbi_finish_op(y, &nll_op, NBI_INPUTS(log_probs), NBI_SAVED(t), &g, sizeof g);
}

/* ---- cross_entropy = nll(log_softmax(x, dim=1)): ctx is the cls_geom;
 * saved: the targets, the log-probabilities (for softmax in backward) ---- */
static nb_status ce_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    ce_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[1]), nbi_data(node->saved[0]),
                node->ctx);
    return NB_OK;
}

static const nbi_op ce_op = {"cross_entropy", ce_grad_fn, NULL};

nb_tensor *nb_cross_entropy(const nb_tensor *logits, const nb_tensor *target, nb_reduction reduction) {
    const char *op = "cross_entropy";
    cls_geom g;
    if (!cls_check(op, logits, target, reduction, &g)) return NULL;
    nb_tensor *t = cls_copy_targets(op, target, &g);
    nb_tensor *xc = t ? nbi_contiguous_data(logits) : NULL;
    nb_tensor *logp = xc ? nbi_empty_like(logits) : NULL;
    nb_tensor *y = logp ? cls_output(logits, target, &g) : NULL;
    if (y) {
        log_softmax_dim1(logits->dtype, nbi_data(logp), nbi_data(xc), g.N, g.C, g.S);
        nll_forward(logits->dtype, nbi_data(y), nbi_data(logp), nbi_data(t), &g);
    }
    nbi_release(xc);
    return nbi_finish_op(y, &ce_op, NBI_INPUTS(logits), NBI_SAVED(t, logp), &g, sizeof g);
}

/* ---- mse_loss ---- */
static bool mse_check(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction) {
    const char *op = "mse_loss";
    char s1[128], s2[128];
    if (!nbi_check_float(op, "input", input) || !nbi_check_float(op, "target", target)) return false;
    if (!check_reduction(op, reduction) || !nbi_check_same_dtype(op, input, target)) return false;
    if (input->ndim != target->ndim || memcmp(input->shape, target->shape, sizeof(int64_t) * (size_t)input->ndim)) {
        nbi_error(NB_ERR_SHAPE, "mse_loss: expected input and target of the same shape, but got %s and %s",
                  nnu_shape(input, s1, sizeof s1), nnu_shape(target, s2, sizeof s2));
        return false;
    }
    return true;
}

#define MSE_CHUNK 4096

/* (x - t)^2 per element (none), or its sum / mean: fixed chunks summed in
 * double into partial (one per chunk of MSE_CHUNK), combined in chunk order. */
// y: (n) for none, () otherwise; x: (n), t: (n), partial: (ceil(n / MSE_CHUNK)) scratch
static void mse_forward(nb_dtype dtype, void *y, const void *x, const void *t, double *partial, int64_t n,
                        nb_reduction reduction) {
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Tg = t;
        T *Y = y;
        if (reduction == NB_REDUCTION_NONE) {
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
            for (int64_t i = 0; i < n; i++) {
                T d = X[i] - Tg[i];
                Y[i] = d * d;
            }
        } else {
            int64_t nchunks = (n + MSE_CHUNK - 1) / MSE_CHUNK;
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
            for (int64_t ch = 0; ch < nchunks; ch++) {
                int64_t i1 = (ch + 1) * MSE_CHUNK < n ? (ch + 1) * MSE_CHUNK : n;
                double s = 0;
                for (int64_t i = ch * MSE_CHUNK; i < i1; i++) {
                    T d = X[i] - Tg[i];
                    s += (double)(d * d);
                }
                partial[ch] = s;
            }
            double total = 0;
            for (int64_t ch = 0; ch < nchunks; ch++) total += partial[ch];
            Y[0] = (T)(reduction == NB_REDUCTION_MEAN ? total / (double)n : total); /* mean of nothing: NaN, as PyTorch */
        }
    });
}

/* dx = 2 (x - t) dy (divided by n for mean), dt = -dx; either may be NULL. */
// dx: (n), dt: (n), dy: (n) for none, () otherwise; x: (n), t: (n)
static void mse_backward(nb_dtype dtype, void *dx, void *dt, const void *dy, const void *x, const void *t, int64_t n,
                         nb_reduction reduction) {
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Tg = t, *dY = dy;
        T *dX = dx, *dT = dt;
        T norm = reduction == NB_REDUCTION_MEAN ? (T)2 / (T)n : (T)2;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            T d = norm * (X[i] - Tg[i]) * (reduction == NB_REDUCTION_NONE ? dY[i] : dY[0]);
            if (dX) dX[i] = d;
            if (dT) dT[i] = -d;
        }
    });
}

/* ---- autograd: ctx is the reduction; saved: input and target (contiguous) ---- */
typedef struct { nb_reduction reduction; } mse_ctx;

static nb_status mse_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *x = node->saved[0], *t = node->saved[1];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    mse_backward(x->dtype, nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]), nbi_data(gout), nbi_data(x),
                 nbi_data(t), x->numel, ((const mse_ctx *)node->ctx)->reduction);
    return NB_OK;
}

static const nbi_op mse_op = {"mse_loss", mse_grad_fn, NULL};

nb_tensor *nb_mse_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction) {
    if (!mse_check(input, target, reduction)) return NULL;
    const bool none = reduction == NB_REDUCTION_NONE;
    int64_t n = input->numel, nchunks = (n + MSE_CHUNK - 1) / MSE_CHUNK;
    nb_tensor *xc = nbi_contiguous_data(input), *tc = xc ? nbi_contiguous_data(target) : NULL;
    nb_tensor *y = tc ? (none ? nbi_empty_like(input) : nbi_empty(input->dtype, 0, NULL)) : NULL;
    double *partial = y && !none ? nnu_alloc("mse_loss", (size_t)(nchunks ? nchunks : 1) * sizeof(double)) : NULL;
    if (y && !none && !partial) {
        nbi_release(y);
        y = NULL;
    }
    if (y) mse_forward(input->dtype, nbi_data(y), nbi_data(xc), nbi_data(tc), partial, n, reduction);
    free(partial);
    const mse_ctx c = {reduction};
    return nbi_finish_op(y, &mse_op, NBI_INPUTS(input, target), NBI_SAVED(xc, tc), &c, sizeof c);
}
