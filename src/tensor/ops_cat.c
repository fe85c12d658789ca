/* cat and stack: join tensors along one dim, forward and backward.
 *
 * Every tensor is seen as (outer, size_i, inner) around dim, the result as
 * (outer, total, inner): row o of the result is the rows o of the inputs one
 * after the other, so both directions are block copies. stack is the same
 * with size_i = 1 along a new dim (its inputs have one dim fewer than the
 * result, and the same elements in the same order). An autograd node has at
 * most NBI_MAX_INPUTS inputs, so a recorded cat or stack of more tensors is
 * built as a cat of cats (or of stacks) of groups (the gradient is the same).
 * Both copy bytes, so int64 tensors join too (no gradient). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks (PyTorch's wording) ---- */
/* Every tensor present, all of one dtype (any: the kernels copy bytes). */
static bool list_check(const char *op, const nb_tensor *const *ts, int n) {
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "tensors[%d]", i);
        if (!nbi_check_tensor(op, arg, ts[i])) return false;
    }
    for (int i = 1; i < n; i++)
        if (ts[i]->dtype != ts[0]->dtype) {
            nbi_error(NB_ERR_DTYPE, "%s: expected all tensors to have dtype %s, but got %s for tensor number %d in the list",
                      op, nb_dtype_name(ts[0]->dtype), nb_dtype_name(ts[i]->dtype), i);
            return false;
        }
    return true;
}

/* On success the normalised dim. */
static int cat_check(const nb_tensor *const *ts, int n, int dim) {
    if (!ts || n <= 0) {
        nbi_error(NB_ERR_ARG, "cat: expected a non-empty list of Tensors");
        return -1;
    }
    if (!list_check("cat", ts, n)) return -1;
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

/* On success the normalised dim of the result (which has one dim more). */
static int stack_check(const nb_tensor *const *ts, int n, int dim) {
    if (!ts || n <= 0) {
        nbi_error(NB_ERR_ARG, "stack: expects a non-empty TensorList");
        return -1;
    }
    if (!nbi_check_tensor("stack", "tensors[0]", ts[0])) return -1;
    int d = nbi_dim("stack", dim, ts[0]->ndim + 1);
    if (d < 0 || !list_check("stack", ts, n)) return -1;
    for (int i = 1; i < n; i++)
        if (ts[i]->ndim != ts[0]->ndim ||
            memcmp(ts[i]->shape, ts[0]->shape, sizeof(int64_t) * (size_t)ts[0]->ndim) != 0) {
            char a[128], b[128];
            nbi_error(NB_ERR_SHAPE, "stack: expects each tensor to be equal size, but got %s at entry 0 and %s at entry %d",
                      nb_shape_str(ts[0]->ndim, ts[0]->shape, a, sizeof a), nb_shape_str(ts[i]->ndim, ts[i]->shape, b, sizeof b),
                      i);
            return -1;
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

/* ---- autograd: ctx is the dim (of the result) and which op ---- */
typedef struct { int dim; bool stack; } cat_ctx;

static nb_status cat_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const cat_ctx *c = node->ctx;
    int d = c->dim;
    int64_t outer, inner, total = gout->shape[d], start = 0;
    split_dims(gout, d, &outer, &inner);
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    for (int i = 0; i < node->ninputs; i++) {
        int64_t size = c->stack ? 1 : node->inputs[i]->shape[d];
        if (gin[i]) cat_backward(nb_dtype_size(gout->dtype), nbi_data(gin[i]), nbi_data(gout), outer, total, start, size, inner);
        start += size;
    }
    return NB_OK;
}
static const nbi_op cat_op = {"cat", cat_grad_fn, NULL};
static const nbi_op stack_op = {"stack", cat_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
static nb_tensor *cat_run(const nb_tensor *const *ts, int n, int d, bool stack);

/* A recorded cat (stack) of more than NBI_MAX_INPUTS tensors: cat (stack)
 * groups, then cat those. */
static nb_tensor *cat_grouped(const nb_tensor *const *ts, int n, int d, bool stack) {
    int ng = (n + NBI_MAX_INPUTS - 1) / NBI_MAX_INPUTS;
    nb_tensor **parts = calloc((size_t)ng, sizeof *parts);
    if (!parts) {
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", stack ? "stack" : "cat");
        return NULL;
    }
    nb_tensor *out = NULL;
    for (int g = 0; g < ng; g++) {
        int m = n - g * NBI_MAX_INPUTS < NBI_MAX_INPUTS ? n - g * NBI_MAX_INPUTS : NBI_MAX_INPUTS;
        parts[g] = nbi_own(cat_run(ts + g * NBI_MAX_INPUTS, m, d, stack));
        if (!parts[g]) goto done;
    }
    out = cat_run((const nb_tensor *const *)parts, ng, d, false);
done:
    for (int g = 0; g < ng; g++) nbi_release(parts[g]);
    free(parts);
    return out;
}

/* d: the dim of the result; for stack, tensor i is the slice i along it. */
static nb_tensor *cat_run(const nb_tensor *const *ts, int n, int d, bool stack) {
    if (n > NBI_MAX_INPUTS && nbi_should_record((nb_tensor *const *)ts, n)) return cat_grouped(ts, n, d, stack);
    const nb_tensor *t0 = ts[0];
    int64_t shape[NB_MAX_DIMS], total = 0, outer, inner;
    int ndim = stack ? t0->ndim + 1 : t0->ndim;
    for (int i = 0; i < n; i++) total += stack ? 1 : ts[i]->shape[d];
    for (int k = 0; k < ndim; k++) /* stack: the result's dim k > d is t0's dim k - 1 */
        shape[k] = k == d ? total : t0->shape[stack && k > d ? k - 1 : k];
    nb_tensor *y = nbi_empty(t0->dtype, ndim, shape);
    if (!y) return NULL;
    split_dims(y, d, &outer, &inner);
    int64_t start = 0;
    for (int i = 0; i < n && y; i++) {
        int64_t size = stack ? 1 : ts[i]->shape[d];
        nb_tensor *xc = nbi_contiguous_data(ts[i]);
        if (xc) {
            cat_forward(nb_dtype_size(t0->dtype), nbi_data(y), nbi_data(xc), outer, total, start, size, inner);
        } else {
            nbi_release(y);
            y = NULL;
        }
        nbi_release(xc);
        start += size;
    }
    const cat_ctx c = {.dim = d, .stack = stack};
    return nbi_finish_op(y, stack ? &stack_op : &cat_op, ts, n, NULL, 0, &c, sizeof c);
}

nb_tensor *nb_cat(const nb_tensor *const *tensors, int n, int dim) {
    int d = cat_check(tensors, n, dim);
    if (d < 0) return NULL;
    return cat_run(tensors, n, d, false);
}

nb_tensor *nb_stack(const nb_tensor *const *tensors, int n, int dim) {
    int d = stack_check(tensors, n, dim);
    if (d < 0) return NULL;
    return cat_run(tensors, n, d, true);
}
