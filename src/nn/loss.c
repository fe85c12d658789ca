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

/* Output of nll over logp (N, C, S): per element (none, shape of target) or reduced (0-d). */
static nb_tensor *nll_forward(const nb_tensor *logp, const nb_tensor *target, const int64_t *t, const cls_geom *g) {
    nb_tensor *out = g->reduction == NB_REDUCTION_NONE ? nbi_empty(logp->dtype, target->ndim, target->shape)
                                                       : nbi_empty(logp->dtype, 0, NULL);
    if (!out) return NULL;
    int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(logp->dtype, {
        const T *L = nbi_data(logp);         // L: (N, C, S)
        T *O = nbi_data(out);                // O: (N, S) or ()
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
    return out;
}

/* Per-element weight of the upstream gradient: w[i] for element i of the target. */
#define CLS_GRAD_FACTOR(T, g, dy, i) \
    ((g)->reduction == NB_REDUCTION_NONE ? (dy)[i] : (g)->reduction == NB_REDUCTION_SUM ? (dy)[0] : (dy)[0] / (T)(g)->count)

/* ---- nll_loss ---- */
typedef struct {
    cls_geom g;
    int64_t *target;    /* copy of the targets (N * S) */
} cls_ctx;

static void cls_free(void *p) {
    cls_ctx *c = p;
    free(c->target);
    free(c);
}

static nb_status nll_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const cls_ctx *c = node->ctx;
    const cls_geom *g = &c->g;
    const nb_tensor *x = node->inputs[0];
    nb_tensor *gx = nbi_empty(x->dtype, x->ndim, x->shape);
    if (!gx) return nb_last_status();
    int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(x->dtype, {
        T *dx = nbi_data(gx);                // dx: (N, C, S)
        const T *dy = nbi_data(gout);
        memset(dx, 0, (size_t)(N * C * S) * sizeof(T));
        for (int64_t i = 0; i < N * S; i++) {
            int64_t k = c->target[i];
            if (k == NB_IGNORE_INDEX) continue;
            int64_t n = i / S, s = i % S;
            dx[(n * C + k) * S + s] = -CLS_GRAD_FACTOR(T, g, dy, i);
        }
    });
    gin[0] = gx;
    return NB_OK;
}

static const nbi_op nll_op = {"nll_loss", nll_backward, cls_free};

/* Contiguous int64 copy of the targets (malloc'd), validated. */
static int64_t *cls_copy_targets(const char *op, const nb_tensor *target, cls_geom *g) {
    int64_t n = g->N * g->S;
    int64_t *t = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!t) {
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    if (nb_tensor_copy_out(target, t, NB_I64) != NB_OK || !cls_targets(op, t, g)) {
        free(t);
        return NULL;
    }
    return t;
}

nb_tensor *nb_nll_loss(const nb_tensor *log_probs, const nb_tensor *target, nb_reduction reduction) {
    const char *op = "nll_loss";
    cls_geom g;
    if (!cls_check(op, log_probs, target, reduction, &g)) return NULL;
    int64_t *t = cls_copy_targets(op, target, &g);
    if (!t) return NULL;
    nb_tensor *xc = nbi_contiguous_data(log_probs);
    nb_tensor *y = xc ? nll_forward(xc, target, t, &g) : NULL;
    nbi_release(xc);
    nb_tensor *in[2] = {(nb_tensor *)log_probs, NULL}; /* targets are not differentiable */
    cls_ctx *ctx = NULL;
    if (y && nbi_should_record(in, 1)) {
        if (!(ctx = nnu_alloc(op, sizeof *ctx))) {
            nb_tensor_release(y);
            y = NULL;
        } else {
            *ctx = (cls_ctx){g, t};
            t = NULL;
        }
    }
    free(t);
    return nbi_finish(y, &nll_op, in, 1, ctx);
}

/* ---- cross_entropy = nll(log_softmax(x, dim=1)) ---- */
typedef struct {
    cls_geom g;
    int64_t *target;
    nb_tensor *logp;    /* (N, C, S) log-probabilities, for softmax in backward */
} ce_ctx;

static void ce_free(void *p) {
    ce_ctx *c = p;
    free(c->target);
    nbi_release(c->logp);
    free(c);
}

static nb_status ce_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const ce_ctx *c = node->ctx;
    const cls_geom *g = &c->g;
    const nb_tensor *x = node->inputs[0];
    nb_tensor *gx = nbi_empty(x->dtype, x->ndim, x->shape);
    if (!gx) return nb_last_status();
    int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(x->dtype, {
        T *dx = nbi_data(gx);                // dx: (N, C, S)
        const T *L = nbi_data(c->logp);      // L: (N, C, S)
        const T *dy = nbi_data(gout);
        /* d loss_i / d x[n, j, s] = w_i * (softmax_j - [j == target_i]) */
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = n * S + s, k = c->target[i];
                T w = k == NB_IGNORE_INDEX ? (T)0 : CLS_GRAD_FACTOR(T, g, dy, i);
                for (int64_t j = 0; j < C; j++) {
                    int64_t e = (n * C + j) * S + s;
                    dx[e] = w * (exp(L[e]) - (j == k ? (T)1 : (T)0));
                }
            }
    });
    gin[0] = gx;
    return NB_OK;
}

static const nbi_op ce_op = {"cross_entropy", ce_backward, ce_free};

/* logp (N, C, S) = log_softmax of x over C; each (n, s) by one thread, sums in double. */
static void log_softmax_dim1(nb_tensor *logp, const nb_tensor *xc, int64_t N, int64_t C, int64_t S) {
    NBI_DISPATCH_FLOAT(xc->dtype, {
        const T *X = nbi_data(xc);           // X: (N, C, S)
        T *L = nbi_data(logp);               // L: (N, C, S)
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

nb_tensor *nb_cross_entropy(const nb_tensor *logits, const nb_tensor *target, nb_reduction reduction) {
    const char *op = "cross_entropy";
    cls_geom g;
    if (!cls_check(op, logits, target, reduction, &g)) return NULL;
    int64_t *t = cls_copy_targets(op, target, &g);
    if (!t) return NULL;
    nb_tensor *xc = nbi_contiguous_data(logits);
    nb_tensor *logp = xc ? nbi_own(nbi_empty(logits->dtype, logits->ndim, logits->shape)) : NULL;
    nb_tensor *y = NULL;
    if (logp) {
        log_softmax_dim1(logp, xc, g.N, g.C, g.S);
        y = nll_forward(logp, target, t, &g);
    }
    nbi_release(xc);
    nb_tensor *in = (nb_tensor *)logits;
    ce_ctx *ctx = NULL;
    if (y && nbi_should_record(&in, 1)) {
        if (!(ctx = nnu_alloc(op, sizeof *ctx))) {
            nb_tensor_release(y);
            y = NULL;
        } else {
            *ctx = (ce_ctx){g, t, logp};
            t = NULL;
            logp = NULL;
        }
    }
    free(t);
    nbi_release(logp);
    return nbi_finish(y, &ce_op, &in, 1, ctx);
}

/* ---- mse_loss ---- */
typedef struct {
    nb_tensor *x, *t;   /* contiguous input and target */
    nb_reduction reduction;
} mse_ctx;

static void mse_free(void *p) {
    mse_ctx *c = p;
    nbi_release(c->x);
    nbi_release(c->t);
    free(c);
}

static nb_status mse_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const mse_ctx *c = node->ctx;
    int64_t n = c->x->numel;
    nb_tensor *gx = NULL, *gt = NULL;
    if (nbi_node_needs_grad(node, 0) && !(gx = nbi_empty(c->x->dtype, node->inputs[0]->ndim, node->inputs[0]->shape)))
        goto fail;
    if (nbi_node_needs_grad(node, 1) && !(gt = nbi_empty(c->x->dtype, node->inputs[1]->ndim, node->inputs[1]->shape)))
        goto fail;
    NBI_DISPATCH_FLOAT(c->x->dtype, {
        const T *X = nbi_data(c->x), *Tg = nbi_data(c->t), *dy = nbi_data(gout);
        T *dx = gx ? (T *)nbi_data(gx) : NULL, *dt = gt ? (T *)nbi_data(gt) : NULL;
        nb_reduction r = c->reduction;
        T norm = r == NB_REDUCTION_MEAN ? (T)2 / (T)n : (T)2;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            T d = norm * (X[i] - Tg[i]) * (r == NB_REDUCTION_NONE ? dy[i] : dy[0]);
            if (dx) dx[i] = d;
            if (dt) dt[i] = -d;
        }
    });
    gin[0] = gx;
    gin[1] = gt;
    return NB_OK;
fail:
    nbi_release(gx);
    nbi_release(gt);
    return nb_last_status();
}

static const nbi_op mse_op = {"mse_loss", mse_backward, mse_free};

#define MSE_CHUNK 4096

nb_tensor *nb_mse_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction) {
    const char *op = "mse_loss";
    char s1[128], s2[128];
    if (!nbi_check_float(op, "input", input) || !nbi_check_float(op, "target", target)) return NULL;
    if (!check_reduction(op, reduction) || !nbi_check_same_dtype(op, input, target)) return NULL;
    if (input->ndim != target->ndim || memcmp(input->shape, target->shape, sizeof(int64_t) * (size_t)input->ndim)) {
        nbi_error(NB_ERR_SHAPE, "mse_loss: expected input and target of the same shape, but got %s and %s",
                  nnu_shape(input, s1, sizeof s1), nnu_shape(target, s2, sizeof s2));
        return NULL;
    }
    int64_t n = input->numel;
    nb_tensor *xc = nbi_contiguous_data(input), *tc = xc ? nbi_contiguous_data(target) : NULL, *y = NULL;
    double *partial = NULL;
    int64_t nchunks = (n + MSE_CHUNK - 1) / MSE_CHUNK;
    if (!tc) goto fail;
    if (reduction == NB_REDUCTION_NONE) {
        if (!(y = nbi_empty(input->dtype, input->ndim, input->shape))) goto fail;
    } else if (!(y = nbi_empty(input->dtype, 0, NULL)) ||
               !(partial = nnu_alloc(op, (size_t)(nchunks ? nchunks : 1) * sizeof(double)))) {
        goto fail;
    }
    NBI_DISPATCH_FLOAT(input->dtype, {
        const T *X = nbi_data(xc), *Tg = nbi_data(tc);
        T *Y = nbi_data(y);
        if (reduction == NB_REDUCTION_NONE) {
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
            for (int64_t i = 0; i < n; i++) {
                T d = X[i] - Tg[i];
                Y[i] = d * d;
            }
        } else {
            /* fixed chunks summed in double, then combined in chunk order */
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
            Y[0] = (T)(reduction == NB_REDUCTION_MEAN ? total / (double)n : total);
        }
    });
    free(partial);
    partial = NULL;
    nb_tensor *in[2] = {(nb_tensor *)input, (nb_tensor *)target};
    mse_ctx *ctx = NULL;
    if (nbi_should_record(in, 2)) {
        if (!(ctx = nnu_alloc(op, sizeof *ctx))) {
            nb_tensor_release(y);
            y = NULL;
            goto fail;
        }
        *ctx = (mse_ctx){xc, tc, reduction};
        xc = tc = NULL;
    }
    nbi_release(xc);
    nbi_release(tc);
    return nbi_finish(y, &mse_op, in, 2, ctx);
fail:
    nb_tensor_release(y);
    nbi_release(xc);
    nbi_release(tc);
    free(partial);
    return NULL;
}
