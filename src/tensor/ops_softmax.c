/* log_softmax along one dim, forward and backward.
 *
 * Stable form: out = x - m - log(sum_k exp(x_k - m)) with m the max along
 * dim, so exp never overflows. Sums are accumulated in double. The input is
 * seen as (outer, size, inner); one task handles one outer index and a block
 * of up to SM_BLK inner positions, walking the dim in increasing order, so the
 * result does not depend on the thread count.
 *
 * Backward: gin = gout - exp(out) * sum_k gout_k, using the op's own output
 * (node->out, alive while its node runs). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#define SM_BLK 64

typedef struct { int dim; } sm_ctx;

static void split_dims(const nb_tensor *t, int d, int64_t *outer, int64_t *size, int64_t *inner) {
    *outer = *size = *inner = 1;
    if (t->ndim == 0) return;
    for (int i = 0; i < d; i++) *outer *= t->shape[i];
    *size = t->shape[d];
    for (int i = d + 1; i < t->ndim; i++) *inner *= t->shape[i];
}

static void log_softmax_kernel(nb_tensor *out, const nb_tensor *x, int64_t outer, int64_t size, int64_t inner) {
    int64_t nblk = (inner + SM_BLK - 1) / SM_BLK, ntask = outer * nblk, n = x->numel;
    NBI_DISPATCH_FLOAT(x->dtype, {
        T *po = nbi_data(out);      // out: (outer, size, inner)
        const T *px = nbi_data(x);  // x: (outer, size, inner)
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
            for (int64_t j = 0; j < jn; j++) s[j] = m[j] + log(s[j]); /* the log-sum-exp */
            for (int64_t k = 0; k < size; k++)
                for (int64_t j = 0; j < jn; j++) oo[k * inner + j] = (T)((double)xo[k * inner + j] - s[j]);
        }
    });
}

static nb_status log_softmax_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const sm_ctx *c = node->ctx;
    const nb_tensor *y = node->out;
    int64_t outer, size, inner;
    split_dims(y, c->dim, &outer, &size, &inner);
    nb_tensor *g = nbi_empty(y->dtype, y->ndim, y->shape);
    if (!g) return nb_last_status();
    int64_t nblk = (inner + SM_BLK - 1) / SM_BLK, ntask = outer * nblk, n = y->numel;
    NBI_DISPATCH_FLOAT(y->dtype, {
        T *pg = nbi_data(g);             // g: (outer, size, inner)
        const T *pgo = nbi_data(gout);   // gout: (outer, size, inner)
        const T *py = nbi_data(y);       // y: (outer, size, inner), contiguous: made by this op
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t t = 0; t < ntask; t++) {
            int64_t o = t / nblk, j0 = (t % nblk) * SM_BLK;
            int64_t jn = inner - j0 < SM_BLK ? inner - j0 : SM_BLK;
            double s[SM_BLK] = {0};
            int64_t base = o * size * inner + j0;
            for (int64_t k = 0; k < size; k++)
                for (int64_t j = 0; j < jn; j++) s[j] += pgo[base + k * inner + j];
            for (int64_t k = 0; k < size; k++)
                for (int64_t j = 0; j < jn; j++) {
                    int64_t p = base + k * inner + j;
                    pg[p] = (T)((double)pgo[p] - exp((double)py[p]) * s[j]);
                }
        }
    });
    gin[0] = g;
    return NB_OK;
}
static const nbi_op log_softmax_op = {"log_softmax", log_softmax_backward, NULL};

nb_tensor *nb_log_softmax(const nb_tensor *a, int dim) {
    if (!nbi_check_float("log_softmax", "a", a)) return NULL;
    int d = nbi_dim("log_softmax", dim, a->ndim);
    if (d < 0) return NULL;
    int64_t outer, size, inner;
    split_dims(a, d, &outer, &size, &inner);
    nb_tensor *out = nbi_empty(a->dtype, a->ndim, a->shape);
    if (!out) return NULL;
    nb_tensor *c = nbi_contiguous_data(a);
    if (!c) {
        nb_tensor_release(out);
        return NULL;
    }
    log_softmax_kernel(out, c, outer, size, inner);
    nbi_release(c);
    nb_tensor *in = (nb_tensor *)a;
    const sm_ctx sc = {.dim = d};
    return nbi_finish_copy(out, &log_softmax_op, &in, 1, &sc, sizeof sc, "log_softmax");
}
