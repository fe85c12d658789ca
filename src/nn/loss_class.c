/* Class losses: F.nll_loss and F.cross_entropy (log_softmax over the class
 * dim fused with nll), with class weights, any ignore_index, label smoothing
 * and (cross_entropy) class-probability targets, reductions mean / sum / none.
 *
 * The input is [N, C], [N, C, d1, ...] or [C], seen as (N, C, S). Targets are
 * int64 class indices shaped like the input without its class dim or, for
 * cross_entropy, float probabilities shaped like the input (PyTorch takes a
 * target of the input's shape as probabilities). Per element i = (n, s), with
 * w the class weights (1 without), k its target and e the label smoothing:
 *   indices:       loss_i = (1 - e) (-w_k logp_k) + e / C (-sum_c w_c logp_c),
 *                  0 when k == ignore_index; the mean divides by the sum of
 *                  w_k over the elements not ignored (NaN when that is 0);
 *   probabilities: loss_i = -sum_c w_c logp_c q_c, q = (1 - e) target + e / C;
 *                  the mean divides by N * S (NaN for an empty input).
 * Weights are differentiated only with probabilities, as PyTorch's autograd.
 * Reductions sum in a fixed order (loss_util.h): the thread count never
 * changes the bits. */
#include "loss_util.h"

#include "nabla/autograd.h"
#include "tensor/fastmath.h"

#include <math.h>
#include <string.h>

/* ---- check: arguments, then the geometry ---- */
typedef struct {
    int64_t N, C, S;         /* input viewed as (N, C, S); class-index targets as (N, S) */
    nb_reduction reduction;
    bool probs;              /* the targets are class probabilities shaped like the input */
    int64_t ignore_index;
    double eps;              /* label smoothing */
    double wsum;             /* sum of the class weights (C without weights) */
    double denom;            /* what the mean divides by (class indices: set by cls_copy_targets) */
} cls_geom;

nb_class_loss_options nb_class_loss_defaults(void) {
    return (nb_class_loss_options){.weight = NULL, .ignore_index = -100, .reduction = NB_REDUCTION_MEAN,
                                   .label_smoothing = 0.0};
}

static bool same_shape(const nb_tensor *a, const nb_tensor *b) {
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

/* Class-index targets: int64, shaped like the input without its class dim. */
static bool cls_check_index_target(const char *op, const nb_tensor *input, const nb_tensor *target) {
    char s1[128], s2[128];
    int nd = input->ndim;
    if (target->dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "%s: expected scalar type Long but found %s (class-index targets must be int64%s)", op,
                  target->dtype == NB_F32 ? "Float" : "Double",
                  strcmp(op, "cross_entropy") ? "" : "; float class probabilities take the input's shape");
        return false;
    }
    if (nd == 1) {
        if (target->ndim != 0) {
            nbi_error(NB_ERR_SHAPE, "%s: expected a 0-d target for 1-d input %s, but got %s", op,
                      nnu_shape(input, s1, sizeof s1), nnu_shape(target, s2, sizeof s2));
            return false;
        }
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
    if (same) return true;
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

/* Probability targets (cross_entropy): float like the input, no ignore_index. */
static bool cls_check_prob_target(const char *op, const nb_tensor *input, const nb_tensor *target, int64_t ignore) {
    if (target->dtype == NB_I64) {
        nbi_error(NB_ERR_DTYPE, "%s: Expected floating point type for target with class probabilities, got Long "
                  "(a target of the input's shape holds class probabilities)", op);
        return false;
    }
    if (!nbi_check_same_dtype(op, input, target)) return false;
    if (ignore >= 0) {
        nbi_error(NB_ERR_ARG, "%s: ignore_index is not supported for floating point target (got ignore_index=%lld)", op,
                  (long long)ignore);
        return false;
    }
    return true;
}

static bool cls_check_weight(const char *op, const nb_tensor *input, const nb_tensor *w, int64_t C, bool probs) {
    char s[128];
    if (!w) return true;
    if (!nbi_check_float(op, "weight", w)) return false;
    if (w->dtype != input->dtype) {
        nbi_error(NB_ERR_DTYPE, "%s: expected weight to have the input's dtype %s, but got %s", op,
                  nb_dtype_name(input->dtype), nb_dtype_name(w->dtype));
        return false;
    }
    if (w->ndim != 1 || w->shape[0] != C) {
        nbi_error(NB_ERR_SHAPE,
                  "%s: weight tensor should be defined either for all %lld classes or no classes but got weight tensor "
                  "of shape: %s", op, (long long)C, nnu_shape(w, s, sizeof s));
        return false;
    }
    if (!probs && w->requires_grad && nb_grad_enabled()) {
        nbi_error(NB_ERR_ARG, "%s: the function is not differentiable with respect to argument 'weight' with class-index "
                  "targets. This input cannot have requires_grad True.", op);
        return false;
    }
    return true;
}

static bool cls_check(const char *op, bool is_ce, const nb_tensor *input, const nb_tensor *target,
                      const nb_class_loss_options *o, cls_geom *g) {
    if (!nbi_check_float(op, "input", input) || !nbi_check_tensor(op, "target", target)) return false;
    if (!loss_check_reduction(op, o->reduction)) return false;
    double e = o->label_smoothing;
    if (is_ce && !(e >= 0 && e <= 1)) {
        nbi_error(NB_ERR_ARG, "%s: label_smoothing must be between 0.0 and 1.0. Got: %g", op, e);
        return false;
    }
    if (!is_ce && e != 0) {
        nbi_error(NB_ERR_ARG, "%s: label_smoothing is an option of cross_entropy only, but got %g", op, e);
        return false;
    }
    if (input->ndim < 1) {
        nbi_error(NB_ERR_SHAPE, "%s: expected input of shape [N, C, ...] or [C], but got a 0-d tensor", op);
        return false;
    }
    bool probs = is_ce && same_shape(input, target);
    if (probs ? !cls_check_prob_target(op, input, target, o->ignore_index)
              : !cls_check_index_target(op, input, target))
        return false;
    int nd = input->ndim;
    int64_t N = nd == 1 ? 1 : input->shape[0], C = nd == 1 ? input->shape[0] : input->shape[1];
    if (!cls_check_weight(op, input, o->weight, C, probs)) return false;
    *g = (cls_geom){N, C, nd > 2 ? nbi_numel(nd - 2, input->shape + 2) : 1, o->reduction, probs, o->ignore_index, e,
                    (double)C, 0};
    /* probabilities: the mean is over N * S elements, NaN for an empty input as PyTorch */
    if (probs) g->denom = input->numel ? (double)(g->N * g->S) : 0.0;
    return true;
}

/* Check every class-index target is in [0, C) or ignored; set g->denom, the
 * total weight of the targets not ignored (w may be NULL: weights 1), and
 * g->wsum. Sequential: a fixed order. */
static bool cls_targets(const char *op, const int64_t *t, nb_dtype dtype, const void *w, cls_geom *g) {
    int64_t n = g->N * g->S;
    double total = 0, wsum = 0;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *W = w;
        for (int64_t c = 0; W && c < g->C; c++) wsum += (double)W[c];
        for (int64_t i = 0; i < n; i++) {
            if (t[i] == g->ignore_index) continue;
            if (t[i] < 0 || t[i] >= g->C) {
                nbi_error(NB_ERR_ARG, "%s: Target %lld is out of bounds.", op, (long long)t[i]);
                return false;
            }
            total += W ? (double)W[t[i]] : 1.0;
        }
    });
    g->denom = total; /* 0 when every target is ignored: the mean is NaN, as PyTorch's */
    if (w) g->wsum = wsum;
    return true;
}

/* A contiguous int64 copy of the class-index targets (N * S), validated, g's
 * sums set; NULL on failure. A copy: the caller may change its targets before
 * backward. */
static nb_tensor *cls_copy_targets(const char *op, const nb_tensor *target, nb_dtype dtype, const void *w,
                                   cls_geom *g) {
    int64_t n = g->N * g->S;
    nb_tensor *t = nbi_empty(NB_I64, 1, &n);
    if (t && (nb_tensor_copy_out(target, nbi_data(t), NB_I64) != NB_OK || !cls_targets(op, nbi_data(t), dtype, w, g))) {
        nbi_release(t);
        t = NULL;
    }
    return t;
}

/* ---- kernels ---- */
/* Weight of class c (1 without weights), inside NBI_DISPATCH_FLOAT. */
#define CLS_W(W, c) ((W) ? (W)[c] : (T)1)

/* Class-index losses over log-probabilities: nll (eps = 0) or cross_entropy
 * with label smoothing; per element (none) or reduced. */
// y: (N, S) for none, () otherwise; logp: (N, C, S), t: (N, S), w: (C) or NULL
static void cls_forward(nb_dtype dtype, void *y, const void *logp, const int64_t *t, const void *w, const cls_geom *g) {
    const int64_t C = g->C, S = g->S, n = g->N * g->S, ignore = g->ignore_index;
    const nb_reduction reduction = g->reduction;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *L = logp, *W = w;
        T *Y = y;
        const T keep = (T)(1 - g->eps), spread = (T)(g->eps / (double)C);
        const bool smooth = g->eps > 0;
        LOSS_MAP_REDUCE(({
                            const T *l = L + (i / S) * C * S + i % S; /* logp[n, :, s], stride S */
                            int64_t k = t[i];
                            T v = 0;
                            if (k != ignore) {
                                v = -CLS_W(W, k) * l[k * S];
                                if (smooth) {
                                    T sm = 0;
                                    for (int64_t c = 0; c < C; c++) sm += CLS_W(W, c) * l[c * S];
                                    v = keep * v + spread * -sm;
                                }
                            }
                            v;
                        }),
                        g->denom);
    });
}

/* Cross-entropy with class probabilities q: -sum_c w_c logp_c q'_c. */
// y: (N, S) for none, () otherwise; logp: (N, C, S), q: (N, C, S), w: (C) or NULL
static void prob_forward(nb_dtype dtype, void *y, const void *logp, const void *q, const void *w, const cls_geom *g) {
    const int64_t C = g->C, S = g->S, n = g->N * g->S;
    const nb_reduction reduction = g->reduction;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *L = logp, *Q = q, *W = w;
        T *Y = y;
        const T keep = (T)(1 - g->eps), spread = (T)(g->eps / (double)C);
        const bool smooth = g->eps > 0;
        LOSS_MAP_REDUCE(({
                            int64_t base = (i / S) * C * S + i % S;
                            T sm = 0;
                            for (int64_t c = 0; c < C; c++) {
                                T qc = Q[base + c * S];
                                sm += L[base + c * S] * (smooth ? qc * keep + spread : qc) * CLS_W(W, c);
                            }
                            -sm;
                        }),
                        g->denom);
    });
}

// dx: (N, C, S), dy: (N, S) for none, () otherwise; t: (N, S), w: (C) or NULL
static void nll_backward(nb_dtype dtype, void *dx, const void *dy, const int64_t *t, const void *w, const cls_geom *g) {
    const int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy, *W = w;
        memset(dX, 0, (size_t)(N * C * S) * sizeof(T));
        for (int64_t i = 0; i < N * S; i++) {
            int64_t k = t[i];
            if (k == g->ignore_index) continue;
            dX[((i / S) * C + k) * S + i % S] = -CLS_W(W, k) * LOSS_GRAD_FACTOR(g->reduction, dY, i, g->denom);
        }
    });
}

/* Through log_softmax: dx_j = a_j - p_j sum_c a_c, with a = d loss / d logp:
 * a_c = -f ((1 - e) w_k [c == k] + e / C w_c) for class indices,
 * a_c = -f w_c q'_c for probabilities (f: the element's gradient factor). */
// dx: (N, C, S), dy: (N, S) for none, () otherwise; logp: (N, C, S), t: (N, S) or NULL, q: (N, C, S) or NULL, w: (C) or NULL
static void ce_backward(nb_dtype dtype, void *dx, const void *dy, const void *logp, const int64_t *t, const void *q,
                        const void *w, const cls_geom *g) {
    const int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *L = logp, *dY = dy, *Q = q, *W = w;
        const T keep = (T)(1 - g->eps), spread = (T)(g->eps / (double)C), wsum = (T)g->wsum;
        const bool smooth = g->eps > 0;
        _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
        for (int64_t i = 0; i < N * S; i++) {
            const int64_t base = (i / S) * C * S + i % S;
            const T f = LOSS_GRAD_FACTOR(g->reduction, dY, i, g->denom);
            if (t) { /* class indices */
                const int64_t k = t[i];
                if (k == g->ignore_index) {
                    for (int64_t j = 0; j < C; j++) dX[base + j * S] = 0;
                    continue;
                }
                const T A = -f * (keep * CLS_W(W, k) + spread * wsum);
                for (int64_t j = 0; j < C; j++) {
                    T a = -f * ((j == k ? keep * CLS_W(W, k) : (T)0) + spread * CLS_W(W, j));
                    dX[base + j * S] = a - NBI_T_EXP(L[base + j * S]) * A;
                }
            } else { /* probabilities */
                T A = 0;
                for (int64_t c = 0; c < C; c++) {
                    T qc = Q[base + c * S];
                    A += -f * CLS_W(W, c) * (smooth ? qc * keep + spread : qc);
                }
                for (int64_t j = 0; j < C; j++) {
                    T qj = Q[base + j * S];
                    T a = -f * CLS_W(W, j) * (smooth ? qj * keep + spread : qj);
                    dX[base + j * S] = a - NBI_T_EXP(L[base + j * S]) * A;
                }
            }
        }
    });
}

/* Gradients of the probability form for the targets (dq = -f w_c logp_c (1 - e))
 * and the class weights (dw_c = -sum_i f_i logp_{i,c} q'_{i,c}, summed over i
 * in order); either may be NULL. */
// dq: (N, C, S), dw: (C), dy: (N, S) for none, () otherwise; logp, q: (N, C, S), w: (C) or NULL
static void prob_backward_targets(nb_dtype dtype, void *dq, void *dw, const void *dy, const void *logp, const void *q,
                                  const void *w, const cls_geom *g) {
    const int64_t N = g->N, C = g->C, S = g->S;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dQ = dq, *dW = dw;
        const T *L = logp, *dY = dy, *Q = q, *W = w;
        const T keep = (T)(1 - g->eps), spread = (T)(g->eps / (double)C);
        const bool smooth = g->eps > 0;
        if (dQ) {
            _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
            for (int64_t i = 0; i < N * S; i++) {
                const int64_t base = (i / S) * C * S + i % S;
                const T f = LOSS_GRAD_FACTOR(g->reduction, dY, i, g->denom);
                for (int64_t c = 0; c < C; c++) dQ[base + c * S] = -f * CLS_W(W, c) * L[base + c * S] * keep;
            }
        }
        if (dW) {
            _Pragma("omp parallel for schedule(static) if (N * C * S > NBI_PAR_MIN)")
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int64_t i = 0; i < N * S; i++) {
                    const int64_t e = (i / S) * C * S + c * S + i % S;
                    const T f = LOSS_GRAD_FACTOR(g->reduction, dY, i, g->denom);
                    s += (double)(-f * L[e] * (smooth ? Q[e] * keep + spread : Q[e]));
                }
                dW[c] = (T)s;
            }
        }
    });
}

/* The output of a class loss: the targets' shape without the class dim (none), or 0-d. */
static nb_tensor *cls_output(const nb_tensor *input, const cls_geom *g) {
    int64_t shape[NB_MAX_DIMS];
    int nd = 0;
    if (input->ndim > 1) { /* [N, d1, ...]; a 1-d input gives a 0-d loss */
        shape[nd++] = input->shape[0];
        for (int i = 2; i < input->ndim; i++) shape[nd++] = input->shape[i];
    }
    return loss_output(input->dtype, nd, shape, g->reduction);
}

/* ---- autograd: ctx is the cls_geom ----
 * nll_loss:      inputs (log_probs, NULL, weight); saved: targets, weight
 * cross_entropy: inputs (logits, target or NULL, weight); saved: targets
 *                (class indices, a copy) or probabilities, logp, weight */
static nb_status nll_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    nll_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]),
                 nbi_data_or_null(node->saved[1]), node->ctx);
    return NB_OK;
}

static nb_status ce_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const cls_geom *g = node->ctx;
    const nb_tensor *tq = node->saved[0], *logp = node->saved[1], *w = node->saved[2];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    const void *t = g->probs ? NULL : nbi_data(tq), *q = g->probs ? nbi_data(tq) : NULL;
    if (gin[0]) ce_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(logp), t, q, nbi_data_or_null(w), g);
    if (gin[1] || gin[2])
        prob_backward_targets(gout->dtype, nbi_data_or_null(gin[1]), nbi_data_or_null(gin[2]), nbi_data(gout),
                              nbi_data(logp), q, nbi_data_or_null(w), g);
    return NB_OK;
}

static const nbi_op nll_op = {"nll_loss", nll_grad_fn, NULL};
static const nbi_op ce_op = {"cross_entropy", ce_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
nb_tensor *nb_nll_loss_ex(const nb_tensor *log_probs, const nb_tensor *target, const nb_class_loss_options *opt) {
    const char *op = "nll_loss";
    const nb_class_loss_options o = opt ? *opt : nb_class_loss_defaults();
    cls_geom g;
    if (!cls_check(op, false, log_probs, target, &o, &g)) return NULL;
    nb_tensor *wc = o.weight ? nbi_contiguous_data(o.weight) : NULL;
    nb_tensor *t = !o.weight || wc ? cls_copy_targets(op, target, log_probs->dtype, nbi_data_or_null(wc), &g) : NULL;
    nb_tensor *xc = t ? nbi_contiguous_data(log_probs) : NULL;
    nb_tensor *y = xc ? cls_output(log_probs, &g) : NULL;
    if (y) cls_forward(log_probs->dtype, nbi_data(y), nbi_data(xc), nbi_data(t), nbi_data_or_null(wc), &g);
    nbi_release(xc);
    /* the targets are not differentiable: saved, not an input */
    return nbi_finish_op(y, &nll_op, NBI_INPUTS(log_probs, NULL, o.weight), NBI_SAVED(t, wc), &g, sizeof g);
}

nb_tensor *nb_cross_entropy_ex(const nb_tensor *logits, const nb_tensor *target, const nb_class_loss_options *opt) {
    const char *op = "cross_entropy";
    const nb_class_loss_options o = opt ? *opt : nb_class_loss_defaults();
    cls_geom g;
    if (!cls_check(op, true, logits, target, &o, &g)) return NULL;
    nb_tensor *wc = o.weight ? nbi_contiguous_data(o.weight) : NULL;
    bool ok = !o.weight || wc;
    /* class indices: a validated copy; probabilities: the target's data */
    nb_tensor *tq = !ok ? NULL
                    : g.probs ? nbi_contiguous_data(target)
                              : cls_copy_targets(op, target, logits->dtype, nbi_data_or_null(wc), &g);
    nb_tensor *xc = tq ? nbi_contiguous_data(logits) : NULL;
    nb_tensor *logp = xc ? nbi_empty_like(logits) : NULL;
    nb_tensor *y = logp ? cls_output(logits, &g) : NULL;
    if (y) {
        nbi_softmax_forward(logits->dtype, nbi_data(logp), nbi_data(xc), g.N, g.C, g.S, true);
        if (g.probs) prob_forward(logits->dtype, nbi_data(y), nbi_data(logp), nbi_data(tq), nbi_data_or_null(wc), &g);
        else cls_forward(logits->dtype, nbi_data(y), nbi_data(logp), nbi_data(tq), nbi_data_or_null(wc), &g);
    }
    nbi_release(xc);
    return nbi_finish_op(y, &ce_op, NBI_INPUTS(logits, g.probs ? target : NULL, o.weight), NBI_SAVED(tq, logp, wc), &g,
                         sizeof g);
}

nb_tensor *nb_nll_loss(const nb_tensor *log_probs, const nb_tensor *target, nb_reduction reduction) {
    nb_class_loss_options o = nb_class_loss_defaults();
    o.reduction = reduction;
    return nb_nll_loss_ex(log_probs, target, &o);
}

nb_tensor *nb_cross_entropy(const nb_tensor *logits, const nb_tensor *target, nb_reduction reduction) {
    nb_class_loss_options o = nb_class_loss_defaults();
    o.reduction = reduction;
    return nb_cross_entropy_ex(logits, target, &o);
}
