/* Regression losses on d = input - target, elementwise then reduced:
 * F.mse_loss (d^2), F.l1_loss (|d|), F.smooth_l1_loss (beta: 0.5 d^2 / beta
 * where |d| < beta, else |d| - 0.5 beta; beta = 0 is l1) and F.huber_loss
 * (delta: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta)).
 *
 * As PyTorch, input and target broadcast to a common shape (PyTorch warns
 * when their sizes differ; nabla never prints and computes PyTorch's result):
 * none returns that shape, mean divides by its element count (NaN when it is
 * 0), and each gradient is summed back to its operand's shape. Both operands
 * are differentiable. Forward and backward follow PyTorch's CPU kernels and
 * branches (which decide NaN and the gradient at the kinks); reductions sum
 * in a fixed order (loss_util.h). */
#include "loss_util.h"

#include <math.h>

typedef enum { PW_MSE, PW_L1, PW_SMOOTH_L1, PW_HUBER } pw_kind;

static const char *const pw_names[] = {"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"};

/* The node's ctx. */
typedef struct {
    pw_kind kind;                 /* smooth_l1 with beta 0 runs as l1 */
    nb_reduction reduction;
    double param;                 /* beta or delta */
    int ndim;                     /* the broadcast shape of input and target */
    int64_t shape[NB_MAX_DIMS];
    int64_t n;
} pw_geom;

/* ---- check: arguments in PyTorch's order and words, then the broadcast ---- */
static bool pw_check(pw_kind kind, const nb_tensor *x, const nb_tensor *t, nb_reduction r, double param, pw_geom *g) {
    const char *op = pw_names[kind];
    if (!nbi_check_float(op, "input", x) || !nbi_check_float(op, "target", t)) return false;
    if (!loss_check_reduction(op, r) || !nbi_check_same_dtype(op, x, t)) return false;
    *g = (pw_geom){kind, r, param, 0, {0}, 0};
    if (nbi_broadcast_shape(op, x->ndim, x->shape, t->ndim, t->shape, &g->ndim, g->shape) != NB_OK) return false;
    g->n = nbi_numel(g->ndim, g->shape);
    if (kind == PW_SMOOTH_L1 && !(param >= 0)) {
        nbi_error(NB_ERR_ARG, "smooth_l1_loss does not support negative values for beta. (got beta=%g)", param);
        return false;
    }
    if (kind == PW_HUBER && !(param > 0)) {
        nbi_error(NB_ERR_ARG, "huber_loss does not support non-positive values for delta. (got delta=%g)", param);
        return false;
    }
    if (kind == PW_SMOOTH_L1 && param == 0) g->kind = PW_L1; /* PyTorch's smooth_l1_loss calls l1_loss */
    return true;
}

/* ---- kernels ---- */
// y: (n) for none, () otherwise; x: (n), t: (n)
static void pw_forward(const pw_geom *g, nb_dtype dtype, void *y, const void *x, const void *t) {
    const int64_t n = g->n;
    const nb_reduction reduction = g->reduction;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Tg = t;
        T *Y = y;
        const T p = (T)g->param, half = (T)0.5;
        switch (g->kind) {
        case PW_MSE: LOSS_MAP_REDUCE(({ T d = X[i] - Tg[i]; d * d; }), (double)n); break;
        case PW_L1: LOSS_MAP_REDUCE((T)fabs(X[i] - Tg[i]), (double)n); break;
        case PW_SMOOTH_L1:
            LOSS_MAP_REDUCE(({ T z = (T)fabs(X[i] - Tg[i]); z < p ? half * z * z / p : z - half * p; }), (double)n);
            break;
        case PW_HUBER:
            LOSS_MAP_REDUCE(({ T z = (T)fabs(X[i] - Tg[i]); z < p ? half * z * z : p * (z - half * p); }), (double)n);
            break;
        }
    });
}

/* d loss / d d per element times the upstream factor; dx gets it, dt its
 * negation; either may be NULL. */
// dx: (n), dt: (n), dy: (n) for none, () otherwise; x: (n), t: (n)
static void pw_backward(const pw_geom *g, nb_dtype dtype, void *dx, void *dt, const void *dy, const void *x,
                        const void *t) {
    const int64_t n = g->n;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x, *Tg = t, *dY = dy;
        T *dX = dx, *dT = dt;
        const T p = (T)g->param, zero = 0;
        const pw_kind kind = g->kind;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            const T d = X[i] - Tg[i], f = LOSS_GRAD_FACTOR(g->reduction, dY, i, (double)n);
            T v;
            switch (kind) {
            case PW_MSE: v = (T)2 * d * f; break;
            case PW_L1: v = d > zero ? f : (d < zero ? -f : zero); break; /* sign(d): 0 at 0 and NaN, as PyTorch */
            case PW_SMOOTH_L1: v = d <= -p ? -f : (d >= p ? f : d * f / p); break;
            default: v = d <= -p ? -f * p : (d >= p ? f * p : d * f); break; /* huber */
            }
            if (dX) dX[i] = v;
            if (dT) dT[i] = -v;
        }
    });
}

/* ---- autograd: ctx is the pw_geom; saved: input and target broadcast and contiguous ---- */
static nb_status pw_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const pw_geom *g = node->ctx;
    const nb_tensor *x = node->saved[0], *t = node->saved[1];
    nb_tensor *full[2] = {NULL, NULL}; /* the gradients over the broadcast shape */
    nb_status st = NB_OK;
    for (int k = 0; k < 2 && st == NB_OK; k++)
        if (nbi_node_needs_grad(node, k) && !(full[k] = nbi_empty(x->dtype, g->ndim, g->shape))) st = nb_last_status();
    if (st == NB_OK) {
        pw_backward(g, x->dtype, nbi_data_or_null(full[0]), nbi_data_or_null(full[1]), nbi_data(gout), nbi_data(x),
                    nbi_data(t));
        for (int k = 0; k < 2 && st == NB_OK; k++) {
            const nb_tensor *in = node->inputs[k];
            if (full[k] && !(gin[k] = nbi_sum_to_shape(full[k], in->ndim, in->shape))) st = nb_last_status();
        }
    }
    nbi_release(full[0]);
    nbi_release(full[1]);
    return st;
}

static const nbi_op pw_ops[] = {
    {"mse_loss", pw_grad_fn, NULL},
    {"l1_loss", pw_grad_fn, NULL},
    {"smooth_l1_loss", pw_grad_fn, NULL},
    {"huber_loss", pw_grad_fn, NULL},
};

/* ---- the ops: check, run, record ---- */
static nb_tensor *pointwise_loss(pw_kind kind, const nb_tensor *input, const nb_tensor *target, nb_reduction r,
                                 double param) {
    pw_geom g;
    if (!pw_check(kind, input, target, r, param, &g)) return NULL;
    nb_tensor *xc = nbi_expand_data(input, g.ndim, g.shape);
    nb_tensor *tc = xc ? nbi_expand_data(target, g.ndim, g.shape) : NULL;
    nb_tensor *y = tc ? loss_output(input->dtype, g.ndim, g.shape, r) : NULL;
    if (y) pw_forward(&g, input->dtype, nbi_data(y), nbi_data(xc), nbi_data(tc));
    return nbi_finish_op(y, &pw_ops[kind], NBI_INPUTS(input, target), NBI_SAVED(xc, tc), &g, sizeof g);
}

nb_tensor *nb_mse_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction) {
    return pointwise_loss(PW_MSE, input, target, reduction, 0);
}
nb_tensor *nb_l1_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction) {
    return pointwise_loss(PW_L1, input, target, reduction, 0);
}
nb_tensor *nb_smooth_l1_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction, double beta) {
    return pointwise_loss(PW_SMOOTH_L1, input, target, reduction, beta);
}
nb_tensor *nb_huber_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction, double delta) {
    return pointwise_loss(PW_HUBER, input, target, reduction, delta);
}
