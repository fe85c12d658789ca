/* Tensor lifetime: creation, reference counting and scopes. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nbi_graph_release(nbi_node *node); /* autograd.c */

/* ---- scopes ---- */
struct nb_scope {
    nb_tensor **held;
    int64_t count, cap;
    nb_scope *parent;
};
static _Thread_local nb_scope *current_scope;

nb_scope *nb_scope_begin(void) {
    nb_scope *s = calloc(1, sizeof *s);
    if (!s) {
        nbi_error(NB_ERR_NOMEM, "scope_begin: out of memory");
        return NULL;
    }
    s->parent = current_scope;
    current_scope = s;
    return s;
}

void nb_scope_end(nb_scope *s) {
    if (!s) return;
    /* Ending an outer scope ends the inner ones still open (a caller that
     * forgot one would otherwise leak it). */
    while (current_scope && current_scope != s) nb_scope_end(current_scope);
    if (current_scope != s) return; /* not open on this thread: nothing to do */
    for (int64_t i = 0; i < s->count; i++) {
        nb_tensor *t = s->held[i];
        if (!t) continue;
        t->scope = NULL;
        if (t->ext_refs > 0) t->ext_refs--;
        nbi_release(t);
    }
    current_scope = s->parent;
    free(s->held);
    free(s);
}

static void scope_adopt(nb_tensor *t) {
    nb_scope *s = current_scope;
    if (!s) return;
    if (s->count == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 256;
        nb_tensor **h = realloc(s->held, (size_t)cap * sizeof *h);
        if (!h) return; /* the caller keeps the reference instead; nothing is lost */
        s->held = h;
        s->cap = cap;
    }
    t->scope = s;
    t->scope_slot = s->count;
    s->held[s->count++] = t;
}

static void unscope(nb_tensor *t) {
    if (t->scope) {
        t->scope->held[t->scope_slot] = NULL;
        t->scope = NULL;
    }
}

nb_tensor *nb_scope_keep(nb_tensor *t) {
    if (t) unscope(t);
    return t;
}

nb_tensor *nbi_own(nb_tensor *t) {
    if (t) {
        unscope(t);
        if (t->ext_refs > 0) t->ext_refs--;
    }
    return t;
}

nb_tensor *nbi_give(nb_tensor *t) {
    /* A tensor already handed out (the result of a public function passed
     * straight through) stays as it is. */
    if (t && t->ext_refs == 0 && !t->scope) {
        t->ext_refs = 1;
        scope_adopt(t);
    }
    return t;
}

/* ---- reference counting ---- */
nb_tensor *nb_tensor_retain(nb_tensor *t) {
    if (t) {
        t->refcount++;
        t->ext_refs++;
    }
    return t;
}

static void storage_release(nbi_storage *s) {
    if (--s->refcount > 0) return;
    if (!s->borrowed) nbi_free(s->data, s->nbytes);
    free(s);
}

void nbi_release(nb_tensor *t) {
    if (!t || --t->refcount > 0) return;
    unscope(t); /* defensive: a dying tensor must not stay in a scope's list */
    if (t->grad_fn) nbi_graph_release(t->grad_fn);
    nbi_hooks_free(t->hooks);
    nbi_release(t->grad);
    storage_release(t->storage);
    free(t);
}

void nb_tensor_release(nb_tensor *t) {
    if (!t) return;
    /* References are interchangeable, so the scope's claim is given up only
     * with the caller's last reference: a tensor retained inside a scope and
     * released once is still released by the scope. */
    if (t->ext_refs <= 1) unscope(t);
    if (t->ext_refs > 0) t->ext_refs--;
    nbi_release(t);
}

/* ---- geometry helpers ---- */
int64_t nbi_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void nbi_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
}

bool nbi_is_contiguous(const nb_tensor *t) {
    if (t->numel == 0) return true; /* nothing to lay out (and torch.Tensor.is_contiguous says so) */
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

int nbi_dim(const char *op, int dim, int ndim) {
    int lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;
    if (dim < lo || dim > hi) {
        nbi_error(NB_ERR_ARG, "%s: dimension out of range (expected to be in range of [%d, %d], but got %d)", op, lo,
                  hi, dim);
        return -1;
    }
    return dim < 0 ? dim + (ndim > 0 ? ndim : 1) : dim;
}

char *nb_shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
    if (!buf || size == 0) return buf;
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "[");
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, i ? ", %lld" : "%lld",
                              (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    buf[size - 1] = '\0';
    return buf;
}

static bool check_shape(const char *op, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        nbi_error(NB_ERR_ARG, "%s: expected 0 to %d dimensions, but got %d", op, NB_MAX_DIMS, ndim);
        return false;
    }
    if (ndim > 0 && !shape) {
        nbi_error(NB_ERR_ARG, "%s: shape is NULL for %d dimensions", op, ndim);
        return false;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            nbi_error(NB_ERR_ARG, "%s: negative dimension %lld at index %d", op, (long long)shape[i], i);
            return false;
        }
        /* empty dims count as 1: the strides of [0, 2^40, 2^40] must fit too */
        int64_t d = shape[i] > 1 ? shape[i] : 1;
        if (n > (INT64_MAX / 16) / d) {
            nbi_error(NB_ERR_ARG, "%s: shape is too large", op);
            return false;
        }
        n *= d;
    }
    return true;
}

/* A library reference (no scope holds it): nbi_give hands it out. */
static nb_tensor *tensor_new(nb_dtype dtype, int ndim, const int64_t *shape, nbi_storage *storage) {
    nb_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->refcount = 1;
    t->ext_refs = 0;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    nbi_contiguous_strides(ndim, shape, t->strides);
    t->numel = nbi_numel(ndim, shape);
    t->storage = storage;
    return t;
}

nb_tensor *nbi_empty(nb_dtype dtype, int ndim, const int64_t *shape) { return nbi_empty_op("empty", dtype, ndim, shape); }

nb_tensor *nbi_empty_op(const char *op, nb_dtype dtype, int ndim, const int64_t *shape) {
    if (!check_shape(op, ndim, shape)) return NULL;
    if (dtype != NB_F32 && dtype != NB_F64 && dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "%s: unknown dtype %d", op, (int)dtype);
        return NULL;
    }
    nbi_storage *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->refcount = 1;
    s->nbytes = (size_t)nbi_numel(ndim, shape) * nb_dtype_size(dtype);
    s->data = nbi_alloc(s->nbytes);
    if (!s->data) {
        free(s);
        goto nomem;
    }
    nb_tensor *t = tensor_new(dtype, ndim, shape, s);
    if (!t) {
        storage_release(s);
        goto nomem;
    }
    return t;
nomem:
    nbi_error(NB_ERR_NOMEM, "%s: out of memory allocating %lld elements of %s", op,
              (long long)nbi_numel(ndim, shape), nb_dtype_name(dtype));
    return NULL;
}

nb_tensor *nbi_empty_like(const nb_tensor *t) { return nbi_empty(t->dtype, t->ndim, t->shape); }

nb_tensor *nbi_empty_bytes(const char *op, int64_t nbytes) {
    int64_t n = nbytes / 8 + (nbytes % 8 != 0);
    return nbi_empty_op(op, NB_I64, 1, &n);
}

nb_tensor *nbi_make_view(const nb_tensor *t, int ndim, const int64_t *shape, const int64_t *strides, int64_t offset) {
    nb_tensor *v = tensor_new(t->dtype, ndim, shape, t->storage);
    if (!v) {
        nbi_error(NB_ERR_NOMEM, "view: out of memory");
        return NULL;
    }
    t->storage->refcount++;
    for (int i = 0; i < ndim; i++) v->strides[i] = strides[i];
    v->offset = offset;
    return v;
}

/* ---- creation ---- */
/* Argument errors name the public function called (op). */
static nb_tensor *full_op(const char *op, nb_dtype dtype, int ndim, const int64_t *shape, double value) {
    nb_tensor *t = nbi_empty_op(op, dtype, ndim, shape);
    if (t) nb_tensor_fill_(t, value);
    return nbi_give(t);
}
nb_tensor *nb_full(nb_dtype dtype, int ndim, const int64_t *shape, double value) { return full_op("full", dtype, ndim, shape, value); }
nb_tensor *nb_zeros(nb_dtype dtype, int ndim, const int64_t *shape) { return full_op("zeros", dtype, ndim, shape, 0.0); }
nb_tensor *nb_ones(nb_dtype dtype, int ndim, const int64_t *shape) { return full_op("ones", dtype, ndim, shape, 1.0); }
nb_tensor *nb_scalar(nb_dtype dtype, double value) { return full_op("scalar", dtype, 0, NULL, value); }

nb_tensor *nb_zeros_like(const nb_tensor *t) {
    if (!nbi_check_tensor("zeros_like", "t", t)) return NULL;
    return nb_zeros(t->dtype, t->ndim, t->shape);
}
nb_tensor *nb_ones_like(const nb_tensor *t) {
    if (!nbi_check_tensor("ones_like", "t", t)) return NULL;
    return nb_ones(t->dtype, t->ndim, t->shape);
}

nb_tensor *nb_arange(nb_dtype dtype, double start, double end, double step) {
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step) || (end - start) / step < 0) {
        nbi_error(NB_ERR_ARG, "arange: upper bound and larger bound inconsistent with step sign (start=%g, end=%g, step=%g)",
                  start, end, step);
        return NULL;
    }
    int64_t n = (int64_t)ceil((end - start) / step);
    nb_tensor *t = nbi_empty(dtype, 1, &n);
    if (!t) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = start + (double)i * step;
        if (dtype == NB_F32) ((float *)nbi_data(t))[i] = (float)v;
        else if (dtype == NB_F64) ((double *)nbi_data(t))[i] = v;
        else ((int64_t *)nbi_data(t))[i] = (int64_t)v;
    }
    return nbi_give(t);
}

nb_tensor *nb_from_data(nb_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    if (!data) {
        nbi_error(NB_ERR_ARG, "from_data: data is NULL");
        return NULL;
    }
    nb_tensor *t = nbi_empty_op("from_data", dtype, ndim, shape);
    if (t) memcpy(nbi_data(t), data, (size_t)t->numel * nb_dtype_size(dtype));
    return nbi_give(t);
}

nb_tensor *nb_from_buffer(nb_dtype dtype, int ndim, const int64_t *shape, void *data) {
    if (!data) {
        nbi_error(NB_ERR_ARG, "from_buffer: data is NULL");
        return NULL;
    }
    if (!check_shape("from_buffer", ndim, shape)) return NULL;
    if (dtype != NB_F32 && dtype != NB_F64 && dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "from_buffer: unknown dtype %d", (int)dtype);
        return NULL;
    }
    if ((uintptr_t)data % nb_dtype_size(dtype) != 0) {
        nbi_error(NB_ERR_ARG, "from_buffer: data is not aligned to %zu bytes", nb_dtype_size(dtype));
        return NULL;
    }
    nbi_storage *s = calloc(1, sizeof *s);
    nb_tensor *t = s ? tensor_new(dtype, ndim, shape, s) : NULL;
    if (!t) {
        free(s);
        nbi_error(NB_ERR_NOMEM, "from_buffer: out of memory");
        return NULL;
    }
    s->refcount = 1;
    s->borrowed = true;
    s->data = data;
    s->nbytes = (size_t)t->numel * nb_dtype_size(dtype);
    return nbi_give(t);
}

/* ---- properties ---- */
nb_dtype nb_tensor_dtype(const nb_tensor *t) { return t ? t->dtype : NB_F32; }
int nb_tensor_ndim(const nb_tensor *t) { return t ? t->ndim : -1; }
const int64_t *nb_tensor_shape(const nb_tensor *t) { return t ? t->shape : NULL; }
const int64_t *nb_tensor_strides(const nb_tensor *t) { return t ? t->strides : NULL; }
int64_t nb_tensor_numel(const nb_tensor *t) { return t ? t->numel : -1; }
bool nb_tensor_is_contiguous(const nb_tensor *t) { return t && nbi_is_contiguous(t); }

int64_t nb_tensor_size(const nb_tensor *t, int dim) {
    if (!nbi_check_tensor("size", "t", t)) return -1;
    int d = nbi_dim("size", dim, t->ndim);
    if (d < 0 || t->ndim == 0) return d < 0 ? -1 : 1;
    return t->shape[d];
}

/* ---- element access ---- */
static void *typed_data(nb_tensor *t, nb_dtype want, const char *op) {
    if (!nbi_check_tensor(op, "t", t)) return NULL;
    if (t->dtype != want) {
        nbi_error(NB_ERR_DTYPE, "%s: expected a %s tensor, but got %s", op, nb_dtype_name(want),
                  nb_dtype_name(t->dtype));
        return NULL;
    }
    return nbi_data(t);
}
float *nb_tensor_f32(nb_tensor *t) { return typed_data(t, NB_F32, "tensor_f32"); }
double *nb_tensor_f64(nb_tensor *t) { return typed_data(t, NB_F64, "tensor_f64"); }
int64_t *nb_tensor_i64(nb_tensor *t) { return typed_data(t, NB_I64, "tensor_i64"); }
void *nb_tensor_data(nb_tensor *t) { return nbi_check_tensor("tensor_data", "t", t) ? nbi_data(t) : NULL; }

static double load(const nb_tensor *t, int64_t off) {
    const char *base = t->storage->data;
    switch (t->dtype) {
    case NB_F32: return ((const float *)base)[off];
    case NB_F64: return ((const double *)base)[off];
    case NB_I64: return (double)((const int64_t *)base)[off];
    }
    return 0;
}

static void store(nb_dtype dtype, void *base, int64_t i, double v) {
    switch (dtype) {
    case NB_F32: ((float *)base)[i] = (float)v; break;
    case NB_F64: ((double *)base)[i] = v; break;
    case NB_I64: ((int64_t *)base)[i] = (int64_t)v; break;
    }
}

nb_status nb_tensor_item(const nb_tensor *t, double *out) {
    if (!nbi_check_tensor("item", "t", t)) return nb_last_status();
    if (!out) return nbi_error(NB_ERR_ARG, "item: out is NULL");
    if (t->numel != 1)
        return nbi_error(NB_ERR_SHAPE, "item: a Tensor with %lld elements cannot be converted to Scalar",
                         (long long)t->numel);
    *out = load(t, t->offset);
    return NB_OK;
}

nb_status nb_tensor_get(const nb_tensor *t, const int64_t *index, double *out) {
    if (!nbi_check_tensor("get", "t", t)) return nb_last_status();
    if (!out || (t->ndim > 0 && !index)) return nbi_error(NB_ERR_ARG, "get: index or out is NULL");
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (index[i] < 0 || index[i] >= t->shape[i])
            return nbi_error(NB_ERR_ARG, "get: index %lld is out of bounds for dimension %d with size %lld",
                             (long long)index[i], i, (long long)t->shape[i]);
        off += index[i] * t->strides[i];
    }
    *out = load(t, off);
    return NB_OK;
}

/* Calls fn(storage offset, row-major position) for every element of t in row-major order. */
#define FOR_EACH_OFFSET(t, off, pos, body)                                          \
    do {                                                                            \
        int64_t idx_[NB_MAX_DIMS] = {0};                                            \
        int64_t off = (t)->offset;                                                  \
        for (int64_t pos = 0; pos < (t)->numel; pos++) {                            \
            body;                                                                   \
            for (int d_ = (t)->ndim - 1; d_ >= 0; d_--) {                           \
                off += (t)->strides[d_];                                            \
                if (++idx_[d_] < (t)->shape[d_]) break;                             \
                off -= (t)->strides[d_] * (t)->shape[d_];                           \
                idx_[d_] = 0;                                                       \
            }                                                                       \
        }                                                                           \
    } while (0)

nb_status nb_tensor_copy_out(const nb_tensor *t, void *dst, nb_dtype dst_dtype) {
    if (!nbi_check_tensor("copy_out", "t", t)) return nb_last_status();
    if (!dst) return nbi_error(NB_ERR_ARG, "copy_out: dst is NULL");
    if (dst_dtype != NB_F32 && dst_dtype != NB_F64 && dst_dtype != NB_I64)
        return nbi_error(NB_ERR_DTYPE, "copy_out: unknown dtype %d", (int)dst_dtype);
    if (dst_dtype == t->dtype && nbi_is_contiguous(t)) {
        memcpy(dst, nbi_data(t), (size_t)t->numel * nb_dtype_size(t->dtype));
        return NB_OK;
    }
    FOR_EACH_OFFSET(t, off, pos, store(dst_dtype, dst, pos, load(t, off)));
    return NB_OK;
}

nb_status nb_tensor_copy_(nb_tensor *dst, const nb_tensor *src) {
    if (!nbi_check_tensor("copy_", "dst", dst) || !nbi_check_tensor("copy_", "src", src)) return nb_last_status();
    if (dst->ndim != src->ndim || memcmp(dst->shape, src->shape, sizeof(int64_t) * (size_t)dst->ndim) != 0) {
        char a[128], b[128];
        return nbi_error(NB_ERR_SHAPE, "copy_: expected src of shape %s, but got %s",
                         nb_shape_str(dst->ndim, dst->shape, a, sizeof a), nb_shape_str(src->ndim, src->shape, b, sizeof b));
    }
    if (dst->dtype == src->dtype && nbi_is_contiguous(dst) && nbi_is_contiguous(src)) {
        memmove(nbi_data(dst), nbi_data(src), (size_t)dst->numel * nb_dtype_size(dst->dtype));
        return NB_OK;
    }
    /* Gather src in row-major order, then scatter into dst's layout. */
    double *tmp = malloc((size_t)(src->numel ? src->numel : 1) * sizeof(double));
    if (!tmp) return nbi_error(NB_ERR_NOMEM, "copy_: out of memory");
    FOR_EACH_OFFSET(src, off, pos, tmp[pos] = load(src, off));
    FOR_EACH_OFFSET(dst, off, pos, store(dst->dtype, dst->storage->data, off, tmp[pos]));
    free(tmp);
    return NB_OK;
}

nb_status nb_tensor_fill_(nb_tensor *t, double value) {
    if (!nbi_check_tensor("fill_", "t", t)) return nb_last_status();
    if (nbi_is_contiguous(t)) {
        void *p = nbi_data(t);
        int64_t n = t->numel;
        if (t->dtype == NB_F32) { float v = (float)value, *q = p; for (int64_t i = 0; i < n; i++) q[i] = v; }
        else if (t->dtype == NB_F64) { double *q = p; for (int64_t i = 0; i < n; i++) q[i] = value; }
        else { int64_t v = (int64_t)value, *q = p; for (int64_t i = 0; i < n; i++) q[i] = v; }
        return NB_OK;
    }
    FOR_EACH_OFFSET(t, off, pos, store(t->dtype, t->storage->data, off, value));
    return NB_OK;
}
