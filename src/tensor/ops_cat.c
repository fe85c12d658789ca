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

typedef struct { int dim; } cat_ctx;

static void split_dims(const nb_tensor *t, int d, int64_t *outer, int64_t *inner) {
    *outer = *inner = 1;
    for (int i = 0; i < d; i++) *outer *= t->shape[i];
    for (int i = d + 1; i < t->ndim; i++) *inner *= t->shape[i];
}

static nb_status cat_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const cat_ctx *c = node->ctx;
    int d = c->dim;
    int64_t outer, inner, total = gout->shape[d], start = 0;
    split_dims(gout, d, &outer, &inner);
    size_t es = nb_dtype_size(gout->dtype);
    const char *src = nbi_data(gout); // gout: (outer, total, inner)
    for (int i = 0; i < node->ninputs; i++) {
        const nb_tensor *in = node->inputs[i];
        int64_t size = in->shape[d];
        if (nbi_node_needs_grad(node, i)) {
            gin[i] = nbi_empty(in->dtype, in->ndim, in->shape);
            if (!gin[i]) {
                for (int j = 0; j < i; j++) {
                    nb_tensor_release(gin[j]);
                    gin[j] = NULL;
                }
                return nb_last_status();
            }
            char *dst = nbi_data(gin[i]); // gin[i]: (outer, size, inner)
            size_t row = (size_t)(size * inner) * es;
            int64_t n = in->numel;
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)o * row, src + ((size_t)(o * total + start) * (size_t)inner) * es, row);
        }
        start += size;
    }
    return NB_OK;
}
static const nbi_op cat_op = {"cat", cat_backward, NULL};

/* Checks (PyTorch's wording); on success the normalised dim. */
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

static nb_tensor *cat_impl(const nb_tensor *const *ts, int n, int d);

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
        parts[g] = cat_impl(ts + g * NBI_MAX_INPUTS, m, d);
        if (!parts[g]) goto done;
    }
    out = cat_impl((const nb_tensor *const *)parts, ng, d);
done:
    for (int g = 0; g < ng; g++) nb_tensor_release(parts[g]);
    free(parts);
    return out;
}

static nb_tensor *cat_impl(const nb_tensor *const *ts, int n, int d) {
    if (n > NBI_MAX_INPUTS && nbi_should_record((nb_tensor *const *)ts, n)) return cat_grouped(ts, n, d);
    const nb_tensor *t0 = ts[0];
    int64_t shape[NB_MAX_DIMS], total = 0, outer, inner;
    for (int i = 0; i < n; i++) total += ts[i]->shape[d];
    for (int k = 0; k < t0->ndim; k++) shape[k] = k == d ? total : t0->shape[k];
    nb_tensor *out = nbi_empty(t0->dtype, t0->ndim, shape);
    if (!out) return NULL;
    split_dims(out, d, &outer, &inner);
    size_t es = nb_dtype_size(t0->dtype);
    char *dst = nbi_data(out); // out: (outer, total, inner)
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        int64_t size = ts[i]->shape[d];
        nb_no_grad_begin();
        nb_tensor *c = nb_contiguous(ts[i]);
        nb_no_grad_end();
        if (!c) {
            nb_tensor_release(out);
            return NULL;
        }
        const char *src = nbi_data(c); // c: (outer, size, inner)
        size_t row = (size_t)(size * inner) * es;
        int64_t m = c->numel;
        _Pragma("omp parallel for schedule(static) if (m > NBI_PAR_MIN)")
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + ((size_t)(o * total + start) * (size_t)inner) * es, src + (size_t)o * row, row);
        nb_tensor_release(c);
        start += size;
    }
    nb_tensor **ins = (nb_tensor **)ts;
    const cat_ctx cc = {.dim = d};
    return nbi_finish_copy(out, &cat_op, ins, n, &cc, sizeof cc, "cat");
}

nb_tensor *nb_cat(const nb_tensor *const *tensors, int n, int dim) {
    int d = cat_check(tensors, n, dim);
    if (d < 0) return NULL;
    return cat_impl(tensors, n, d);
}
