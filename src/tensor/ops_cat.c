/* cat: join tensors along one dim, forward and backward.
 *
 * Every tensor is seen as (outer, size_i, inner) around dim, the result as
 * (outer, total, inner): row o of the result is the rows o of the inputs one
 * after the other, so both directions are block copies. An autograd node has
 * at most NBI_MAX_INPUTS inputs, so a recorded cat of more tensors is built
 * as a cat of cats of groups (the gradient is the same). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- check (PyTorch's wording); on success the normalised dim ---- */
static int cat_check(const nb_tensor *const *ts, int n, int dim) {
    if (!ts || n <= 0) {
        nbi_error(NB_ERR_ARG, "cat: expected a non-empty list of Tensors");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "tensors[%d]", i);
        if (!nbi_check_float("cat", arg, ts[i])) return -1;
    }
    for (int i = 0; i < n; i++)
        if (ts[i]->ndim == 0) {
            nbi_error(NB_ERR_SHAPE, "cat: zero-dimensional tensor (at position %d) cannot be concatenated", i);
            return -1;
        }
    const nb_tensor *t0 = ts[0];
    int d = nbi_dim("cat", dim, t0->ndim);
    if (d < 0) return -1;
    for (int i = 1; i < n; i++) {
        const nb_tensor *t = ts[i];
        if (t->dtype != t0->dtype) {
            nbi_error(NB_ERR_DTYPE, "cat: expected all tensors to have dtype %s, but got %s for tensor number %d in the list",
                      nb_dtype_name(t0->dtype), nb_dtype_name(t->dtype), i);
            return -1;
        }
        if (t->ndim != t0->ndim) {
            nbi_error(NB_ERR_SHAPE, "cat: Tensors must have same number of dimensions: got %d and %d", t0->ndim, t->ndim);
            return -1;
        }
        for (int k = 0; k < t0->ndim; k++)
            if (k != d && t->shape[k] != t0->shape[k]) {
                nbi_error(NB_ERR_SHAPE,
                          "cat: Sizes of tensors must match except in dimension %d. Expected size %lld but got size %lld "
                          "for tensor number %d in the list.",
                          d, (long long)t0->shape[k], (long long)t->shape[k], i);
                return -1;
            }
    }
    return d;
}

/* (outer, inner) of t around dim d. */
static void split_dims(const nb_tensor *t, int d, int64_t *outer, int64_t *inner) {
    *outer = *inner = 1;
    for (int i = 0; i < d; i++) *outer *= t->shape[i];
    for (int i = d + 1; i < t->ndim; i++) *inner *= t->shape[i];
}

/* ---- kernels: block copies of es-byte elements ---- */
// y: (outer, total, inner), x: (outer, size, inner) goes to rows [start, start + size) of y's dim 1
static void cat_forward(size_t es, void *y, const void *x, int64_t outer, int64_t total, int64_t start, int64_t size,
                        int64_t inner) {
    char *dst = y;
    const char *src = x;
    size_t row = (size_t)(size * inner) * es;
    int64_t n = outer * size * inner;
    _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + ((size_t)(o * total + start) * (size_t)inner) * es, src + (size_t)o * row, row);
}

// dx: (outer, size, inner) <- rows [start, start + size) of dy: (outer, total, inner)
static void cat_backward(size_t es, void *dx, const void *dy, int64_t outer, int64_t total, int64_t start, int64_t size,
                         int64_t inner) {
    char *dst = dx;
    const char *src = dy;
    size_t row = (size_t)(size * inner) * es;
    int64_t n = outer * size * inner;
    _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + (size_t)o * row, src + ((size_t)(o * total + start) * (size_t)inner) * es, row);
}

/* ---- autograd: ctx is the dim ---- */
typedef struct { int dim; } cat_ctx;

static nb_status cat_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    int d = ((const cat_ctx *)node->ctx)->dim;
    int64_t outer, inner, total = gout->shape[d], start = 0;
    split_dims(gout, d, &outer, &inner);
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    for (int i = 0; i < node->ninputs; i++) {
        int64_t size = node->inputs[i]->shape[d];
        if (gin[i]) cat_backward(nb_dtype_size(gout->dtype), nbi_data(gin[i]), nbi_data(gout), outer, total, start, size, inner);
        start += size;
    }
    return NB_OK;
}
static const nbi_op cat_op = {"cat", cat_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
static nb_tensor *cat_run(const nb_tensor *const *ts, int n, int d);

/* A recorded cat of more than NBI_MAX_INPUTS tensors: cat groups, then cat those. */
static nb_tensor *cat_grouped(const nb_tensor *const *ts, int n, int d) {
    int ng = (n + NBI_MAX_INPUTS - 1) / NBI_MAX_INPUTS;
    nb_tensor **parts = calloc((size_t)ng, sizeof *parts);
    if (!parts) {
        nbi_error(NB_ERR_NOMEM, "cat: out of memory");
        return NULL;
    }
    nb_tensor *out = NULL;
    for (int g = 0; g < ng; g++) {
        int m = n - g * NBI_MAX_INPUTS < NBI_MAX_INPUTS ? n - g * NBI_MAX_INPUTS : NBI_MAX_INPUTS;
        parts[g] = nbi_own(cat_run(ts + g * NBI_MAX_INPUTS, m, d));
        if (!parts[g]) goto done;
    }
    out = cat_run((const nb_tensor *const *)parts, ng, d);
done:
    for (int g = 0; g < ng; g++) nbi_release(parts[g]);
    free(parts);
    return out;
}

static nb_tensor *cat_run(const nb_tensor *const *ts, int n, int d) {
    if (n > NBI_MAX_INPUTS && nbi_should_record((nb_tensor *const *)ts, n)) return cat_grouped(ts, n, d);
    const nb_tensor *t0 = ts[0];
    int64_t shape[NB_MAX_DIMS], total = 0, outer, inner;
    for (int i = 0; i < n; i++) total += ts[i]->shape[d];
    for (int k = 0; k < t0->ndim; k++) shape[k] = k == d ? total : t0->shape[k];
    nb_tensor *y = nbi_empty(t0->dtype, t0->ndim, shape);
    if (!y) return NULL;
    split_dims(y, d, &outer, &inner);
    int64_t start = 0;
    for (int i = 0; i < n && y; i++) {
        nb_tensor *xc = nbi_contiguous_data(ts[i]);
        if (xc) {
            cat_forward(nb_dtype_size(t0->dtype), nbi_data(y), nbi_data(xc), outer, total, start, ts[i]->shape[d], inner);
        } else {
            nbi_release(y);
            y = NULL;
        }
        nbi_release(xc);
        start += ts[i]->shape[d];
    }
    const cat_ctx c = {.dim = d};
    return nbi_finish_op(y, &cat_op, ts, n, NULL, 0, &c, sizeof c);
}

nb_tensor *nb_cat(const nb_tensor *const *tensors, int n, int dim) {
    int d = cat_check(tensors, n, dim);
    if (d < 0) return NULL;
    return cat_run(tensors, n, d);
}
