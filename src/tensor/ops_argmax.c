/* Max and min along a dim with their indices (torch.max / torch.min with a
 * dim), and argmax / argmin along a dim or over all elements.
 *
 * PyTorch's rules: the index is the first one attaining the extremum, and NaN
 * counts as larger (for max) and smaller (for min) than every number, so the
 * first NaN wins both. A reduced dim of size 0 is an error; a 0-d input is one
 * element along dim 0 or -1. Indices are int64 and carry no gradient; max and
 * min send the gradient to the returned index only.
 *
 * Kernels see the (contiguous) input as (outer, size, inner) around dim; a
 * task covers one outer index and a block of up to NBI_RED_BLK inner positions
 * and walks the dim in increasing order, so the result does not depend on
 * the thread count. */
#include "reduce.h"

#include <math.h>
#include <string.h>

/* out[o, j] = the max (min) over k of x[o, k, j], idx the first k attaining it. */
// out: (outer, inner) or NULL (indices only), idx: (outer, inner), x: (outer, size, inner)
static void extremum_dim_forward(bool is_min, nb_dtype dtype, void *out, int64_t *idx, const void *x, int64_t outer,
                                 int64_t size, int64_t inner) {
    int64_t nblk = (inner + NBI_RED_BLK - 1) / NBI_RED_BLK, ntask = outer * nblk, n = outer * size * inner;
    NBI_DISPATCH_FLOAT(dtype, {
        T *po = out;
        const T *px = x;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t t = 0; t < ntask; t++) {
            int64_t o = t / nblk, j0 = (t % nblk) * NBI_RED_BLK;
            int64_t jn = inner - j0 < NBI_RED_BLK ? inner - j0 : NBI_RED_BLK;
            T best[NBI_RED_BLK];
            int64_t arg[NBI_RED_BLK];
            const T *xo = px + o * size * inner + j0;
            for (int64_t j = 0; j < jn; j++) {
                best[j] = xo[j];
                arg[j] = 0;
            }
            for (int64_t k = 1; k < size; k++)
                for (int64_t j = 0; j < jn; j++) {
                    T v = xo[k * inner + j];
                    /* strict comparisons keep the first on ties; once best is NaN nothing replaces it */
                    bool better = is_min ? v < best[j] : v > best[j];
                    if (better || (isnan(v) && !isnan(best[j]))) {
                        best[j] = v;
                        arg[j] = k;
                    }
                }
            for (int64_t j = 0; j < jn; j++) {
                if (po) po[o * inner + j0 + j] = best[j];
                idx[o * inner + j0 + j] = arg[j];
            }
        }
    });
}

/* dx is zero but at the chosen positions, which receive dy. */
// dx: (outer, size, inner), dy: (outer, inner), idx: (outer, inner)
static void extremum_dim_backward(nb_dtype dtype, void *dx, const void *dy, const int64_t *idx, int64_t outer,
                                  int64_t size, int64_t inner) {
    int64_t n = outer * inner;
    NBI_DISPATCH_FLOAT(dtype, {
        T *pg = dx;
        const T *pout = dy;
        memset(pg, 0, (size_t)(outer * size * inner) * sizeof(T));
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t p = 0; p < n; p++) {
            int64_t o = p / inner, j = p % inner;
            pg[(o * size + idx[p]) * inner + j] = pout[p];
        }
    });
}

/* ---- check: the dim geometry, and a non-empty reduced dim ---- */
static bool extremum_dim_check(const char *name, const nb_tensor *a, int dim, bool keepdim, nbi_dim_geom *g) {
    if (!nbi_reduce_dim_check(name, a, dim, keepdim, g)) return false;
    if (g->size == 0) {
        nbi_error(NB_ERR_SHAPE, "%s: Expected reduction dim %d to have non-zero size.", name, g->dim);
        return false;
    }
    return true;
}

/* ---- max_dim / min_dim: ctx the geometry, saved[0] the indices ---- */
static nb_status extremum_dim_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nbi_dim_geom *g = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    extremum_dim_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]), g->outer, g->size,
                          g->inner);
    return NB_OK;
}
static const nbi_op max_dim_op = {"max_dim", extremum_dim_grad_fn, NULL};
static const nbi_op min_dim_op = {"min_dim", extremum_dim_grad_fn, NULL};

static nb_tensor *extremum_dim(const nbi_op *op, bool is_min, const nb_tensor *a, int dim, bool keepdim,
                               nb_tensor **indices) {
    if (indices) *indices = NULL;
    nbi_dim_geom g;
    if (!extremum_dim_check(op->name, a, dim, keepdim, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(a);
    nb_tensor *y = xc ? nbi_empty(a->dtype, g.ndim, g.shape) : NULL;
    nb_tensor *idx = y ? nbi_empty(NB_I64, g.ndim, g.shape) : NULL;
    if (idx) {
        extremum_dim_forward(is_min, a->dtype, nbi_data(y), nbi_data(idx), nbi_data(xc), g.outer, g.size, g.inner);
    } else {
        nbi_release(y);
        y = NULL;
    }
    nbi_release(xc);
    nb_tensor *saved = nbi_retain(idx); /* the node's reference; the caller may release theirs at any time */
    y = nbi_finish_op(y, op, NBI_INPUTS(a), NBI_SAVED(saved), &g, sizeof g);
    if (y && indices) *indices = nbi_give(idx);
    else nbi_release(idx);
    return y;
}

nb_tensor *nb_max_dim(const nb_tensor *a, int dim, bool keepdim, nb_tensor **indices) {
    return extremum_dim(&max_dim_op, false, a, dim, keepdim, indices);
}
nb_tensor *nb_min_dim(const nb_tensor *a, int dim, bool keepdim, nb_tensor **indices) {
    return extremum_dim(&min_dim_op, true, a, dim, keepdim, indices);
}

/* ---- argmax / argmin: indices only, not recorded ---- */
static nb_tensor *arg_extremum_dim(const char *name, bool is_min, const nb_tensor *a, int dim, bool keepdim) {
    nbi_dim_geom g;
    if (!extremum_dim_check(name, a, dim, keepdim, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(a);
    nb_tensor *idx = xc ? nbi_empty_op(name, NB_I64, g.ndim, g.shape) : NULL;
    if (idx) extremum_dim_forward(is_min, a->dtype, NULL, nbi_data(idx), nbi_data(xc), g.outer, g.size, g.inner);
    nbi_release(xc);
    return nbi_give(idx);
}

/* Over all elements, seen as one dim: the index into the flattened input. */
static nb_tensor *arg_extremum_all(const char *name, bool is_min, const nb_tensor *a) {
    if (!nbi_check_float(name, "a", a)) return NULL;
    if (a->numel == 0) {
        nbi_error(NB_ERR_SHAPE, "%s: Expected reduction dim to be specified for input.numel() == 0.", name);
        return NULL;
    }
    nb_tensor *xc = nbi_contiguous_data(a);
    nb_tensor *idx = xc ? nbi_empty_op(name, NB_I64, 0, NULL) : NULL;
    if (idx) extremum_dim_forward(is_min, a->dtype, NULL, nbi_data(idx), nbi_data(xc), 1, a->numel, 1);
    nbi_release(xc);
    return nbi_give(idx);
}

nb_tensor *nb_argmax_dim(const nb_tensor *a, int dim, bool keepdim) { return arg_extremum_dim("argmax", false, a, dim, keepdim); }
nb_tensor *nb_argmin_dim(const nb_tensor *a, int dim, bool keepdim) { return arg_extremum_dim("argmin", true, a, dim, keepdim); }
nb_tensor *nb_argmax(const nb_tensor *a) { return arg_extremum_all("argmax", false, a); }
nb_tensor *nb_argmin(const nb_tensor *a) { return arg_extremum_all("argmin", true, a); }
