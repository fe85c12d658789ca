/* Broadcasting: the result shape of two operands, and its backward (summing
 * a gradient back down to an operand's shape); the geometry of several
 * operands and its walk (broadcast.h). */
#include "broadcast.h"

#include <string.h>

nb_status nbi_broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb, int *nout,
                              int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
        if (a != b && a != 1 && b != 1) {
            char x[128], y[128];
            return nbi_error(NB_ERR_SHAPE,
                             "%s: the size of tensor a (%lld) must match the size of tensor b (%lld) at non-singleton "
                             "dimension %d (shapes %s and %s)",
                             op, (long long)a, (long long)b, i, nb_shape_str(na, sa, x, sizeof x),
                             nb_shape_str(nb, sb, y, sizeof y));
        }
        out[i] = a == 1 ? b : a;
    }
    *nout = n;
    return NB_OK;
}

nb_tensor *nbi_expand_data(const nb_tensor *t, int ndim, const int64_t *shape) {
    if (t->ndim == ndim && memcmp(t->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0) return nbi_contiguous_data(t);
    int64_t strides[NB_MAX_DIMS]; /* t's strides seen from the broadcast dims: 0 where t broadcasts */
    for (int i = 0; i < ndim; i++) {
        int j = t->ndim - ndim + i;
        strides[i] = (j >= 0 && t->shape[j] != 1) ? t->strides[j] : 0;
    }
    nb_tensor *v = nbi_make_view(t, ndim, shape, strides, t->offset);
    nb_tensor *c = v ? nbi_contiguous_data(v) : NULL;
    nbi_release(v);
    return c;
}

/* dst (zeroed) += src summed over the dims where dst broadcasts, sequentially on
 * purpose: a fixed summation order for every thread count. */
// dst: the target shape (dst_strides: its strides seen from src's dims, 0 where it broadcasts), src: (n) in shape
static void sum_to_shape_kernel(nb_dtype dtype, void *dst, const void *src, int nd, const int64_t *shape,
                                const int64_t *dst_strides, int64_t n) {
    NBI_DISPATCH_FLOAT(dtype, {
        const T *S = src;
        T *D = dst;
        int64_t idx[NB_MAX_DIMS] = {0}, off = 0;
        for (int64_t p = 0; p < n; p++) {
            D[off] += S[p];
            for (int d = nd - 1; d >= 0; d--) {
                off += dst_strides[d];
                if (++idx[d] < shape[d]) break;
                off -= dst_strides[d] * shape[d];
                idx[d] = 0;
            }
        }
    });
}

nb_tensor *nbi_sum_to_shape(const nb_tensor *g, int ndim, const int64_t *shape) {
    if (g->ndim == ndim && memcmp(g->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0)
        return nbi_make_view(g, g->ndim, g->shape, g->strides, g->offset);
    nb_tensor *gc = nbi_contiguous_data(g);
    nb_tensor *out = gc ? nbi_own(nb_zeros(g->dtype, ndim, shape)) : NULL;
    if (out) {
        /* Strides of out seen from g's dims: 0 where out broadcasts. */
        int64_t ostr[NB_MAX_DIMS], ostride_c[NB_MAX_DIMS];
        nbi_contiguous_strides(ndim, shape, ostride_c);
        for (int i = 0; i < g->ndim; i++) {
            int j = ndim - g->ndim + i;
            ostr[i] = (j >= 0 && shape[j] != 1) ? ostride_c[j] : 0;
        }
        sum_to_shape_kernel(g->dtype, nbi_data(out), nbi_data(gc), g->ndim, g->shape, ostr, g->numel);
    }
    nbi_release(gc);
    return out;
}

/* ---- several operands (broadcast.h) ---- */
bool nbi_bcast_init(const char *op, nbi_bcast *g, const nb_tensor *const *ts, int n) {
    *g = (nbi_bcast){.n = n};
    for (int k = 0; k < n; k++) {
        int64_t sofar[NB_MAX_DIMS];
        if (!ts[k]) continue;
        memcpy(sofar, g->shape, sizeof sofar);
        if (nbi_broadcast_shape(op, g->ndim, sofar, ts[k]->ndim, ts[k]->shape, &g->ndim, g->shape) != NB_OK)
            return false;
    }
    g->numel = nbi_numel(g->ndim, g->shape);
    /* Strides over the output's dims, then merged from the innermost dim
     * outwards: dim i joins the group inside it when every operand continues
     * that group's stride pattern. Size-1 dims are dropped. */
    int64_t st[NBI_BCAST_MAX][NB_MAX_DIMS];
    for (int k = 0; k < n; k++)
        for (int i = 0; i < g->ndim; i++) {
            const nb_tensor *t = ts[k];
            int j = t ? t->ndim - g->ndim + i : -1;
            st[k][i] = (j >= 0 && t->shape[j] != 1) ? t->strides[j] : 0;
        }
    int64_t dims[NB_MAX_DIMS], merged[NBI_BCAST_MAX][NB_MAX_DIMS]; /* inner-first */
    int m = 0;
    for (int i = g->ndim - 1; i >= 0; i--) {
        if (g->shape[i] == 1) continue;
        bool joins = m > 0;
        for (int k = 0; k < n && joins; k++) joins = st[k][i] == merged[k][m - 1] * dims[m - 1];
        if (joins) {
            dims[m - 1] *= g->shape[i];
            continue;
        }
        dims[m] = g->shape[i];
        for (int k = 0; k < n; k++) merged[k][m] = st[k][i];
        m++;
    }
    if (m == 0) { /* one element (or none): a single dim of size 1 */
        dims[0] = 1;
        for (int k = 0; k < n; k++) merged[k][0] = 0;
        m = 1;
    }
    g->m = m;
    for (int i = 0; i < m; i++) {
        g->dims[i] = dims[m - 1 - i];
        for (int k = 0; k < n; k++) g->st[k][i] = merged[k][m - 1 - i];
    }
    return true;
}

void nbi_bcast_seek(const nbi_bcast *g, nbi_bcast_pos *p, int64_t e) {
    for (int k = 0; k < g->n; k++) p->off[k] = 0;
    for (int d = g->m - 1; d >= 0; d--) {
        p->idx[d] = e % g->dims[d];
        e /= g->dims[d];
        for (int k = 0; k < g->n; k++) p->off[k] += p->idx[d] * g->st[k][d];
    }
}

nb_status nbi_bcast_grads_begin(const nbi_node *node, const nb_tensor *gout, nb_tensor **full) {
    for (int i = 0; i < node->ninputs; i++) full[i] = NULL;
    for (int i = 0; i < node->ninputs; i++) {
        if (!nbi_node_needs_grad(node, i)) continue;
        if (!(full[i] = nbi_empty(gout->dtype, gout->ndim, gout->shape))) {
            for (int k = 0; k < i; k++) {
                nbi_release(full[k]);
                full[k] = NULL;
            }
            return nb_last_status();
        }
    }
    return NB_OK;
}

nb_status nbi_bcast_grads_end(const nbi_node *node, nb_tensor **full, nb_tensor **gin) {
    nb_status st = NB_OK;
    for (int i = 0; i < node->ninputs; i++) {
        if (!full[i]) continue;
        const nb_tensor *in = node->inputs[i];
        if (st == NB_OK && !(gin[i] = nbi_sum_to_shape(full[i], in->ndim, in->shape))) st = nb_last_status();
        nbi_release(full[i]);
        full[i] = NULL;
    }
    return st;
}
