/* softmax and log_softmax along one dim, forward and backward: one family,
 * the variant (log or not) in the geometry.
 *
 * Stable form, with m the max along dim so that exp never overflows:
 * log_softmax = x - m - log(sum_k exp(x_k - m)), softmax = exp(x - m) / sum_k
 * exp(x_k - m). Sums are accumulated in double. The input is seen as (outer,
 * size, inner); one task handles one outer index and a block of up to SM_BLK
 * inner positions, walking the dim in increasing order, so the result does
 * not depend on the thread count.
 *
 * Backward uses the op's own output y (node->out, alive while its node runs):
 * log_softmax: gin = gout - exp(y) * sum_k gout_k;
 * softmax:     gin = y * (gout - sum_k gout_k y_k). */
#include "internal.h"

#include <math.h>

#define SM_BLK 64

/* ---- check: the dim and the geometry ---- */
typedef struct {
    int64_t outer, size, inner; /* the input seen as (outer, size, inner) around dim */
    bool log;                   /* log_softmax, else softmax */
} sm_geom;

static bool softmax_check(const char *op, const nb_tensor *a, int dim, bool log, sm_geom *g) {
    if (!nbi_check_float(op, "a", a)) return false;
    int d = nbi_dim(op, dim, a->ndim);
    if (d < 0) return false;
    *g = (sm_geom){1, 1, 1, log}; /* a 0-d tensor is (1, 1, 1) */
    for (int i = 0; i < a->ndim; i++) {
        if (i < d) g->outer *= a->shape[i];
        else if (i == d) g->size = a->shape[i];
        else g->inner *= a->shape[i];
    }
    return true;
}

/* ---- kernels ---- */
// y: (outer, size, inner), x: (outer, size, inner)
void nbi_softmax_forward(nb_dtype dtype, void *y, const void *x, int64_t outer, int64_t size, int64_t inner,
                         bool log_out) {
    int64_t nblk = (inner + SM_BLK - 1) / SM_BLK, ntask = outer * nblk, n = outer * size * inner;
    NBI_DISPATCH_FLOAT(dtype, {
        T *po = y;
        const T *px = x;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t t = 0; t < ntask; t++) {
            int64_t o = t / nblk, j0 = (t % nblk) * SM_BLK;
            int64_t jn = inner - j0 < SM_BLK ? inner - j0 : SM_BLK;
            double m[SM_BLK], s[SM_BLK];
            const T *xo = px + o * size * inner + j0;
            T *oo = po + o * size * inner + j0;
            for (int64_t j = 0; j < jn; j++) {
                m[j] = -INFINITY;
                s[j] = 0.0;
            }
            for (int64_t k = 0; k < size; k++)
                for (int64_t j = 0; j < jn; j++)
                    if (xo[k * inner + j] > m[j]) m[j] = xo[k * inner + j];
            for (int64_t k = 0; k < size; k++)
                for (int64_t j = 0; j < jn; j++) s[j] += exp((double)xo[k * inner + j] - m[j]);
            if (log_out) {
                for (int64_t j = 0; j < jn; j++) s[j] = m[j] + log(s[j]); /* the log-sum-exp */
                for (int64_t k = 0; k < size; k++)
                    for (int64_t j = 0; j < jn; j++) oo[k * inner + j] = (T)((double)xo[k * inner + j] - s[j]);
            } else {
                for (int64_t k = 0; k < size; k++)
                    for (int64_t j = 0; j < jn; j++) oo[k * inner + j] = (T)(exp((double)xo[k * inner + j] - m[j]) / s[j]);
            }
        }
    });
}

// dx: (outer, size, inner), dy: (outer, size, inner), y: (outer, size, inner) the forward's output
static void softmax_backward(nb_dtype dtype, void *dx, const void *dy, const void *y, const sm_geom *g) {
    const int64_t outer = g->outer, size = g->size, inner = g->inner;
    const bool log_out = g->log;
    int64_t nblk = (inner + SM_BLK - 1) / SM_BLK, ntask = outer * nblk, n = outer * size * inner;
    NBI_DISPATCH_FLOAT(dtype, {
        T *pg = dx;
        const T *pgo = dy, *py = y;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t t = 0; t < ntask; t++) {
            int64_t o = t / nblk, j0 = (t % nblk) * SM_BLK;
            int64_t jn = inner - j0 < SM_BLK ? inner - j0 : SM_BLK;
            double s[SM_BLK] = {0};
            int64_t base = o * size * inner + j0;
            if (log_out) {
                for (int64_t k = 0; k < size; k++)
                    for (int64_t j = 0; j < jn; j++) s[j] += pgo[base + k * inner + j];
                for (int64_t k = 0; k < size; k++)
                    for (int64_t j = 0; j < jn; j++) {
                        int64_t p = base + k * inner + j;
                        pg[p] = (T)((double)pgo[p] - exp((double)py[p]) * s[j]);
                    }
            } else {
                for (int64_t k = 0; k < size; k++)
                    for (int64_t j = 0; j < jn; j++) s[j] += (double)pgo[base + k * inner + j] * py[base + k * inner + j];
                for (int64_t k = 0; k < size; k++)
                    for (int64_t j = 0; j < jn; j++) {
                        int64_t p = base + k * inner + j;
                        pg[p] = (T)((double)py[p] * ((double)pgo[p] - s[j]));
                    }
            }
        }
    });
}

/* ---- autograd: ctx is the sm_geom; the output (contiguous, made by the op) is node->out ---- */
static nb_status softmax_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    softmax_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->out), node->ctx);
    return NB_OK;
}
static const nbi_op log_softmax_op = {"log_softmax", softmax_grad_fn, NULL};
static const nbi_op softmax_op = {"softmax", softmax_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
static nb_tensor *softmax(const nbi_op *op, const nb_tensor *a, int dim, bool log) {
    sm_geom g;
    if (!softmax_check(op->name, a, dim, log, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(a);
    nb_tensor *y = xc ? nbi_empty_like(a) : NULL;
    if (y) nbi_softmax_forward(a->dtype, nbi_data(y), nbi_data(xc), g.outer, g.size, g.inner, g.log);
    nbi_release(xc);
    return nbi_finish_op(y, op, NBI_INPUTS(a), NULL, 0, &g, sizeof g);
}

nb_tensor *nb_log_softmax(const nb_tensor *a, int dim) { return softmax(&log_softmax_op, a, dim, true); }
nb_tensor *nb_softmax(const nb_tensor *a, int dim) { return softmax(&softmax_op, a, dim, false); }
