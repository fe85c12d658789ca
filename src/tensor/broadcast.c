/* Broadcasting: the result shape of two operands, and its backward (summing
 * a gradient back down to an operand's shape). */
#include "internal.h"

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
