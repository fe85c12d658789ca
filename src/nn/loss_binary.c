/* Binary cross-entropy: F.binary_cross_entropy over probabilities and
 * F.binary_cross_entropy_with_logits, with an optional weight (and, from
 * logits, pos_weight) broadcast to the input's shape, reductions mean / sum /
 * none. Per element, with w the weight (1 without) and p the pos_weight:
 *   probabilities: -w (t max(log x, -100) + (1 - t) max(log(1 - x), -100)),
 *                  x in [0, 1] (checked); the gradient divides by
 *                  max(x (1 - x), 1e-12), PyTorch's clamp;
 *   logits:        w ((1 - t) x + (1 + (p - 1) t) (log(e^-m + e^(-x - m)) + m)),
 *                  m = max(-x, 0): PyTorch's stable form, exact to large |x|.
 * Input and target must have the same shape (PyTorch rejects the others).
 * Both input and target are differentiable; weight and pos_weight are not
 * (PyTorch refuses them when they require grad). The formulas, their order
 * of operations and the gradients are PyTorch's (1.13 CPU). */
#include "loss_util.h"

#include "nabla/autograd.h"
#include "tensor/fastmath.h"

#include <string.h>

typedef enum { BCE_PROBS, BCE_LOGITS } bce_kind;

static const char *const bce_names[] = {"binary_cross_entropy", "binary_cross_entropy_with_logits"};

/* The node's ctx. */
typedef struct {
    bce_kind kind;
    nb_reduction reduction;
    int64_t n;
} bce_geom;

/* ---- check: arguments in PyTorch's order and words ---- */
/* weight / pos_weight: float like the input, broadcasting to the input's
 * shape (not beyond it), not requiring grad while grad mode is on. */
static bool bce_check_weight(const char *op, const char *arg, const nb_tensor *input, const nb_tensor *w) {
    char s1[128], s2[128], s3[128];
    if (!w) return true;
    if (!nbi_check_float(op, arg, w)) return false;
    if (w->dtype != input->dtype) {
        nbi_error(NB_ERR_DTYPE, "%s: expected %s to have the input's dtype %s, but got %s", op, arg,
                  nb_dtype_name(input->dtype), nb_dtype_name(w->dtype));
        return false;
    }
    int nd;
    int64_t shape[NB_MAX_DIMS];
    if (nbi_broadcast_shape(op, input->ndim, input->shape, w->ndim, w->shape, &nd, shape) != NB_OK) return false;
    if (nd != input->ndim || memcmp(shape, input->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        nbi_error(NB_ERR_SHAPE, "%s: output with shape %s doesn't match the broadcast shape %s (%s %s)", op,
                  nnu_shape(input, s1, sizeof s1), nb_shape_str(nd, shape, s2, sizeof s2), arg,
                  nnu_shape(w, s3, sizeof s3));
        return false;
    }
    if (w->requires_grad && nb_grad_enabled()) {
        nbi_error(NB_ERR_ARG, "%s: the function is not differentiable with respect to argument '%s'. This input cannot "
                  "have requires_grad True.", op, arg);
        return false;
    }
    return true;
}

static bool bce_check(bce_kind kind, const nb_tensor *x, const nb_tensor *t, const nb_tensor *w, const nb_tensor *pw,
                      nb_reduction r, bce_geom *g) {
    const char *op = bce_names[kind];
    char s1[128], s2[128];
    if (!nbi_check_float(op, "input", x) || !nbi_check_float(op, "target", t)) return false;
    if (!loss_check_reduction(op, r) || !nbi_check_same_dtype(op, x, t)) return false;
    if (x->ndim != t->ndim || memcmp(x->shape, t->shape, sizeof(int64_t) * (size_t)x->ndim) != 0) {
        if (kind == BCE_PROBS)
            nbi_error(NB_ERR_SHAPE, "%s: Using a target size (%s) that is different to the input size (%s) is deprecated. "
                      "Please ensure they have the same size.", op, nnu_shape(t, s1, sizeof s1), nnu_shape(x, s2, sizeof s2));
        else
            nbi_error(NB_ERR_SHAPE, "%s: Target size (%s) must be the same as input size (%s)", op,
                      nnu_shape(t, s1, sizeof s1), nnu_shape(x, s2, sizeof s2));
        return false;
    }
    if (!bce_check_weight(op, "weight", x, w) || !bce_check_weight(op, "pos_weight", x, pw)) return false;
    *g = (bce_geom){kind, r, x->numel};
    return true;
}

/* The values: probabilities in [0, 1] (NaN is not). */
static bool bce_check_probs(nb_dtype dtype, const void *x, int64_t n) {
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        for (int64_t i = 0; i < n; i++)
            if (!(X[i] >= 0 && X[i] <= 1)) {
                nbi_error(NB_ERR_ARG, "binary_cross_entropy: all elements of input should be between 0 and 1 (element "
                          "%lld is %g)", (long long)i, (double)X[i]);
                return false;
            }
    });
    return true;
}

/* ---- kernels ---- */
#define BCE_W(W, i) ((W) ? (W)[i] : (T)1)

// y: (n) for none, () otherwise; x, t: (n); w, pw: (n) or NULL (pw: logits only)
static void bce_forward(const bce_geom *g, nb_dtype dtype, void *y, const void *x, const void *t, const void *w,
                        const void *pw) {
    const int64_t n = g->n;
    const nb_reduction reduction = g->reduction;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Tg = t, *W = w, *P = pw;
        T *Y = y;
        const T one = 1, zero = 0, floor_ = -100;
        if (g->kind == BCE_PROBS) {
            LOSS_MAP_REDUCE(({
                                T lo = NBI_T_LOG1P(-X[i]), lx = NBI_T_LOG(X[i]);
                                ((Tg[i] - one) * (lo > floor_ ? lo : floor_) - Tg[i] * (lx > floor_ ? lx : floor_)) *
                                    BCE_W(W, i);
                            }),
                            (double)n);
        } else {
            LOSS_MAP_REDUCE(({
                                const T xi = X[i], ti = Tg[i], m = -xi > zero ? -xi : zero;
                                const T lse = NBI_T_LOG(NBI_T_EXP(-m) + NBI_T_EXP(-xi - m));
                                (P ? (one - ti) * xi + ((P[i] - one) * ti + one) * (lse + m)
                                   : (one - ti) * xi + m + lse) * BCE_W(W, i);
                            }),
                            (double)n);
        }
    });
}

// dx, dt: (n) or NULL; dy: (n) for none, () otherwise; x, t: (n); w, pw: (n) or NULL
static void bce_backward(const bce_geom *g, nb_dtype dtype, void *dx, void *dt, const void *dy, const void *x,
                         const void *t, const void *w, const void *pw) {
    const int64_t n = g->n;
    const bool logits = g->kind == BCE_LOGITS;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Tg = t, *W = w, *P = pw, *dY = dy;
        T *dX = dx, *dT = dt;
        const T one = 1, zero = 0, eps = (T)1e-12f; /* PyTorch's EPSILON is a float */
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            const T xi = X[i], ti = Tg[i], f = LOSS_GRAD_FACTOR(g->reduction, dY, i, (double)n) * BCE_W(W, i);
            if (!logits) {
                T den = (one - xi) * xi;
                if (dX) dX[i] = f * (xi - ti) / (den > eps ? den : eps);
                if (dT) dT[i] = -NBI_T_LOG(xi / (one - xi)) * f; /* -logit(x) */
            } else {
                const T sig = one / (one + NBI_T_EXP(-xi));
                if (dX) dX[i] = (P ? (P[i] * ti + one - ti) * sig - P[i] * ti : sig - ti) * f;
                if (dT) {
                    /* log_sigmoid(v) = min(v, 0) - log1p(e^-|v|); -x without pos_weight */
                    const T ax = xi < zero ? -xi : xi, l1p = NBI_T_LOG1P(NBI_T_EXP(-ax));
                    const T ls_pos = (xi < zero ? xi : zero) - l1p, ls_neg = (-xi < zero ? -xi : zero) - l1p;
                    dT[i] = (P ? ls_neg - ls_pos * P[i] : -xi) * f;
                }
            }
        }
    });
}

/* ---- autograd: ctx is the bce_geom; saved: input, target, weight and pos_weight
 * (the last two expanded to the input's shape, or NULL), all contiguous ---- */
static nb_status bce_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    bce_backward(node->ctx, gout->dtype, nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]), nbi_data(gout),
                 nbi_data(node->saved[0]), nbi_data(node->saved[1]), nbi_data_or_null(node->saved[2]),
                 nbi_data_or_null(node->saved[3]));
    return NB_OK;
}

static const nbi_op bce_ops[] = {
    {"binary_cross_entropy", bce_grad_fn, NULL},
    {"binary_cross_entropy_with_logits", bce_grad_fn, NULL},
};

/* ---- the ops: check, run, record ---- */
static nb_tensor *bce(bce_kind kind, const nb_tensor *input, const nb_tensor *target, const nb_tensor *weight,
                      const nb_tensor *pos_weight, nb_reduction r) {
    bce_geom g;
    if (!bce_check(kind, input, target, weight, pos_weight, r, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(input);
    bool ok = xc && (kind != BCE_PROBS || bce_check_probs(input->dtype, nbi_data(xc), g.n));
    nb_tensor *tc = ok ? nbi_contiguous_data(target) : NULL;
    nb_tensor *wc = tc && weight ? nbi_expand_data(weight, input->ndim, input->shape) : NULL;
    nb_tensor *pc = tc && pos_weight ? nbi_expand_data(pos_weight, input->ndim, input->shape) : NULL;
    ok = tc && (!weight || wc) && (!pos_weight || pc);
    nb_tensor *y = ok ? loss_output(input->dtype, input->ndim, input->shape, r) : NULL;
    if (y) bce_forward(&g, input->dtype, nbi_data(y), nbi_data(xc), nbi_data(tc), nbi_data_or_null(wc), nbi_data_or_null(pc));
    return nbi_finish_op(y, &bce_ops[kind], NBI_INPUTS(input, target, weight, pos_weight), NBI_SAVED(xc, tc, wc, pc), &g,
                         sizeof g);
}

nb_tensor *nb_binary_cross_entropy(const nb_tensor *input, const nb_tensor *target, const nb_tensor *weight,
                                   nb_reduction reduction) {
    return bce(BCE_PROBS, input, target, weight, NULL, reduction);
}

nb_tensor *nb_binary_cross_entropy_with_logits(const nb_tensor *input, const nb_tensor *target, const nb_tensor *weight,
                                               const nb_tensor *pos_weight, nb_reduction reduction) {
    return bce(BCE_LOGITS, input, target, weight, pos_weight, reduction);
}
