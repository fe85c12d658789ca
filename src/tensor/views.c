/* Views (shared storage, new geometry) and the copies that make a tensor
 * contiguous or change its dtype; all differentiable. The rule for when a
 * copy happens is in nabla/tensor.h. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the copy kernel ---- */
/* dst (contiguous) <- src read through its strides, converting dtype; src
 * points at its first element. */
// dst: (n) in row-major order of shape, src: shape with strides
static void copy_strided(nb_dtype dst_dtype, void *dst, nb_dtype src_dtype, const void *src, int nd,
                         const int64_t *shape, const int64_t *strides, int64_t n) {
    if (n == 0) return;
    /* The innermost dim is copied in a tight loop; outer positions are
     * enumerated by an index counter. */
    int64_t inner = nd ? shape[nd - 1] : 1, istride = nd ? strides[nd - 1] : 1;
    int64_t outer = n / inner;
    #define COPY_LOOP(TD, TS)                                                                   \
        do {                                                                                    \
            TD *d = dst;                                                                        \
            const TS *s = src;                                                                  \
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")                   \
            for (int64_t o = 0; o < outer; o++) {                                               \
                int64_t off = 0, rem = o;                                                       \
                for (int k = nd - 2; k >= 0; k--) {                                             \
                    off += (rem % shape[k]) * strides[k];                                       \
                    rem /= shape[k];                                                            \
                }                                                                               \
                TD *dd = d + o * inner;                                                         \
                for (int64_t i = 0; i < inner; i++) dd[i] = (TD)s[off + i * istride];          \
            }                                                                                   \
        } while (0)
    #define SRC_CASES(TD)                                                     \
        switch (src_dtype) {                                                  \
        case NB_F32: COPY_LOOP(TD, float); break;                             \
        case NB_F64: COPY_LOOP(TD, double); break;                            \
        case NB_I64: COPY_LOOP(TD, int64_t); break;                           \
        }
    switch (dst_dtype) {
    case NB_F32: SRC_CASES(float); break;
    case NB_F64: SRC_CASES(double); break;
    case NB_I64: SRC_CASES(int64_t); break;
    }
    #undef SRC_CASES
    #undef COPY_LOOP
}

/* ---- reshape family: backward reshapes the gradient back ---- */
static nb_status reshape_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *in = node->inputs[0];
    gin[0] = nbi_own(nb_reshape(gout, in->ndim, in->shape));
    return gin[0] ? NB_OK : nb_last_status();
}
static const nbi_op reshape_op = {"reshape", reshape_grad_fn, NULL};
static const nbi_op view_op = {"view", reshape_grad_fn, NULL};
static const nbi_op flatten_op = {"flatten", reshape_grad_fn, NULL};
static const nbi_op squeeze_op = {"squeeze", reshape_grad_fn, NULL};
static const nbi_op unsqueeze_op = {"unsqueeze", reshape_grad_fn, NULL};

/* Resolve a -1 and check numel. */
static bool infer_shape(const char *op, const nb_tensor *t, int ndim, const int64_t *shape, int64_t *out) {
    char a[128], b[128];
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !shape)) {
        nbi_error(NB_ERR_ARG, "%s: expected a shape of 0 to %d dimensions, got %d", op, NB_MAX_DIMS, ndim);
        return false;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        out[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) {
                nbi_error(NB_ERR_ARG, "%s: only one dimension can be inferred", op);
                return false;
            }
            infer = i;
        } else if (shape[i] < 0) {
            nbi_error(NB_ERR_ARG, "%s: invalid shape dimension %lld", op, (long long)shape[i]);
            return false;
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || t->numel % known != 0) goto bad;
        out[infer] = t->numel / known;
    } else if (known != t->numel) {
        goto bad;
    }
    return true;
bad:
    nbi_error(NB_ERR_SHAPE, "%s: shape '%s' is invalid for input of size %lld", op, nb_shape_str(ndim, shape, a, sizeof a),
              (long long)t->numel);
    (void)b;
    return false;
}

static nb_tensor *reshape_impl(const char *name, const nbi_op *op, const nb_tensor *t, int ndim, const int64_t *shape,
                               bool allow_copy) {
    if (!nbi_check_tensor(name, "t", t)) return NULL;
    int64_t sh[NB_MAX_DIMS], st[NB_MAX_DIMS];
    if (!infer_shape(name, t, ndim, shape, sh)) return NULL;
    nb_tensor *out;
    if (nbi_is_contiguous(t)) {
        nbi_contiguous_strides(ndim, sh, st);
        out = nbi_make_view(t, ndim, sh, st, t->offset);
    } else if (allow_copy) {
        nb_tensor *c = nbi_own(nb_contiguous(t)); /* recorded as its own op */
        if (!c) return NULL;
        out = reshape_impl(name, op, c, ndim, sh, false);
        nbi_release(c);
        return out;
    } else {
        nbi_error(NB_ERR_SHAPE,
                  "%s: view size is not compatible with input tensor's size and stride (at least one dimension spans "
                  "across two contiguous subspaces). Use reshape instead.", name);
        return NULL;
    }
    return nbi_finish_op(out, op, NBI_INPUTS(t), NULL, 0, NULL, 0);
}

nb_tensor *nb_reshape(const nb_tensor *t, int ndim, const int64_t *shape) {
    return reshape_impl("reshape", &reshape_op, t, ndim, shape, true);
}
nb_tensor *nb_view(const nb_tensor *t, int ndim, const int64_t *shape) {
    return reshape_impl("view", &view_op, t, ndim, shape, false);
}

nb_tensor *nb_flatten(const nb_tensor *t, int start_dim, int end_dim) {
    if (!nbi_check_tensor("flatten", "t", t)) return NULL;
    if (t->ndim == 0) return reshape_impl("flatten", &flatten_op, t, 1, (const int64_t[]){1}, true);
    int s = nbi_dim("flatten", start_dim, t->ndim), e = nbi_dim("flatten", end_dim, t->ndim);
    if (s < 0 || e < 0) return NULL;
    if (s > e) {
        nbi_error(NB_ERR_ARG, "flatten: start_dim (%d) cannot come after end_dim (%d)", start_dim, end_dim);
        return NULL;
    }
    int64_t sh[NB_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < s; i++) sh[n++] = t->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++) m *= t->shape[i];
    sh[n++] = m;
    for (int i = e + 1; i < t->ndim; i++) sh[n++] = t->shape[i];
    return reshape_impl("flatten", &flatten_op, t, n, sh, true);
}

nb_tensor *nb_unsqueeze(const nb_tensor *t, int dim) {
    if (!nbi_check_tensor("unsqueeze", "t", t)) return NULL;
    if (t->ndim >= NB_MAX_DIMS) {
        nbi_error(NB_ERR_ARG, "unsqueeze: tensor already has the maximum of %d dimensions", NB_MAX_DIMS);
        return NULL;
    }
    int d = nbi_dim("unsqueeze", dim, t->ndim + 1);
    if (d < 0) return NULL;
    int64_t sh[NB_MAX_DIMS], st[NB_MAX_DIMS];
    for (int i = 0, j = 0; i <= t->ndim; i++) {
        if (i == d) {
            sh[i] = 1;
            st[i] = j < t->ndim ? t->strides[j] * t->shape[j] : 1;
        } else {
            sh[i] = t->shape[j];
            st[i] = t->strides[j];
            j++;
        }
    }
    nb_tensor *out = nbi_make_view(t, t->ndim + 1, sh, st, t->offset);
    return nbi_finish_op(out, &unsqueeze_op, NBI_INPUTS(t), NULL, 0, NULL, 0);
}

nb_tensor *nb_squeeze(const nb_tensor *t, int dim) {
    if (!nbi_check_tensor("squeeze", "t", t)) return NULL;
    int d = nbi_dim("squeeze", dim, t->ndim);
    if (d < 0) return NULL;
    if (t->ndim > 0 && t->shape[d] != 1) {
        nbi_error(NB_ERR_SHAPE, "squeeze: expected dimension %d to have size 1, but got %lld", dim,
                  (long long)t->shape[d]);
        return NULL;
    }
    int64_t sh[NB_MAX_DIMS], st[NB_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++)
        if (i != d) {
            sh[n] = t->shape[i];
            st[n++] = t->strides[i];
        }
    nb_tensor *out = nbi_make_view(t, n, sh, st, t->offset);
    return nbi_finish_op(out, &squeeze_op, NBI_INPUTS(t), NULL, 0, NULL, 0);
}

/* ---- permutations ---- */
typedef struct { int perm[NB_MAX_DIMS]; } perm_ctx;

static nb_status permute_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const perm_ctx *c = node->ctx;
    int inv[NB_MAX_DIMS];
    for (int i = 0; i < gout->ndim; i++) inv[c->perm[i]] = i;
    gin[0] = nbi_own(nb_permute(gout, inv));
    return gin[0] ? NB_OK : nb_last_status();
}
static const nbi_op permute_op = {"permute", permute_grad_fn, NULL};
static const nbi_op transpose_op = {"transpose", permute_grad_fn, NULL};

static nb_tensor *permute_impl(const char *name, const nbi_op *op, const nb_tensor *t, const int *dims) {
    bool seen[NB_MAX_DIMS] = {0};
    perm_ctx pc;
    int64_t sh[NB_MAX_DIMS], st[NB_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        int d = nbi_dim(name, dims[i], t->ndim);
        if (d < 0) return NULL;
        if (seen[d]) {
            nbi_error(NB_ERR_ARG, "%s: repeated dim %d in the permutation", name, dims[i]);
            return NULL;
        }
        seen[d] = true;
        pc.perm[i] = d;
        sh[i] = t->shape[d];
        st[i] = t->strides[d];
    }
    nb_tensor *out = nbi_make_view(t, t->ndim, sh, st, t->offset);
    return nbi_finish_op(out, op, NBI_INPUTS(t), NULL, 0, &pc, sizeof pc);
}

nb_tensor *nb_permute(const nb_tensor *t, const int *dims) {
    if (!nbi_check_tensor("permute", "t", t)) return NULL;
    if (!dims && t->ndim > 0) {
        nbi_error(NB_ERR_ARG, "permute: dims is NULL");
        return NULL;
    }
    return permute_impl("permute", &permute_op, t, dims);
}

nb_tensor *nb_transpose(const nb_tensor *t, int dim0, int dim1) {
    if (!nbi_check_tensor("transpose", "t", t)) return NULL;
    int a = nbi_dim("transpose", dim0, t->ndim), b = nbi_dim("transpose", dim1, t->ndim);
    if (a < 0 || b < 0) return NULL;
    int dims[NB_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = i;
    if (t->ndim > 0) {
        dims[a] = b;
        dims[b] = a;
    }
    return permute_impl("transpose", &transpose_op, t, dims);
}

/* ---- slicing: backward scatters the gradient into zeros ---- */
typedef struct { int dim; int64_t start, length; bool select; } slice_ctx;

static nb_status slice_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const slice_ctx *c = node->ctx;
    const nb_tensor *in = node->inputs[0];
    nb_tensor *z = nbi_own(nb_zeros(gout->dtype, in->ndim, in->shape));
    if (!z) return nb_last_status();
    gin[0] = z; /* released by the engine if what follows fails */
    nb_tensor *part = nbi_own(c->select ? nb_select(z, c->dim, c->start) : nb_narrow(z, c->dim, c->start, c->length));
    nb_status st = part ? nb_tensor_copy_(part, gout) : nb_last_status();
    nbi_release(part);
    return st;
}
static const nbi_op narrow_op = {"narrow", slice_grad_fn, NULL};
static const nbi_op select_op = {"select", slice_grad_fn, NULL};

static nb_tensor *slice_impl(const char *name, const nb_tensor *t, int dim, int64_t start, int64_t length, bool select) {
    if (!nbi_check_tensor(name, "t", t)) return NULL;
    if (t->ndim == 0) {
        nbi_error(NB_ERR_ARG, "%s: cannot be applied to a 0-dim tensor", name);
        return NULL;
    }
    int d = nbi_dim(name, dim, t->ndim);
    if (d < 0) return NULL;
    int64_t size = t->shape[d];
    if (select && start < 0) start += size;
    if (start < 0 || length < 0 || start > size || start + length > size || (select && start >= size)) {
        if (select)
            nbi_error(NB_ERR_ARG, "select: index %lld out of range for tensor of size %lld at dimension %d",
                      (long long)start, (long long)size, dim);
        else
            nbi_error(NB_ERR_ARG, "narrow: start (%lld) + length (%lld) exceeds dimension size (%lld)", (long long)start,
                      (long long)length, (long long)size);
        return NULL;
    }
    int64_t sh[NB_MAX_DIMS], st[NB_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d && select) continue;
        sh[n] = i == d ? length : t->shape[i];
        st[n++] = t->strides[i];
    }
    nb_tensor *out = nbi_make_view(t, n, sh, st, t->offset + start * t->strides[d]);
    const slice_ctx sc = {d, start, length, select};
    return nbi_finish_op(out, select ? &select_op : &narrow_op, NBI_INPUTS(t), NULL, 0, &sc, sizeof sc);
}

nb_tensor *nb_narrow(const nb_tensor *t, int dim, int64_t start, int64_t length) {
    return slice_impl("narrow", t, dim, start, length, false);
}
nb_tensor *nb_select(const nb_tensor *t, int dim, int64_t index) { return slice_impl("select", t, dim, index, 1, true); }

/* ---- copies ---- */
static nb_status identity_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    (void)node;
    gin[0] = nbi_retain((nb_tensor *)gout);
    return NB_OK;
}
static const nbi_op contiguous_op = {"contiguous", identity_grad_fn, NULL};
static const nbi_op clone_op = {"clone", identity_grad_fn, NULL};

static nb_status to_dtype_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    gin[0] = nbi_own(nb_to_dtype(gout, node->inputs[0]->dtype));
    return gin[0] ? NB_OK : nb_last_status();
}
static const nbi_op to_dtype_op = {"to_dtype", to_dtype_grad_fn, NULL};

/* A new tensor object over t's data (not t itself: every returned reference is
 * a new object, so scopes can hold it), recorded as op. */
static nb_tensor *alias(const nbi_op *op, const nb_tensor *t) {
    nb_tensor *out = nbi_make_view(t, t->ndim, t->shape, t->strides, t->offset);
    if (t->dtype == NB_I64) return nbi_give(out); /* not differentiable */
    return nbi_finish_op(out, op, NBI_INPUTS(t), NULL, 0, NULL, 0);
}

static nb_tensor *copy_run(const nbi_op *op, const nb_tensor *t, nb_dtype dtype) {
    nb_tensor *out = nbi_empty(dtype, t->ndim, t->shape);
    if (out && t->dtype == dtype && nbi_is_contiguous(t))
        memcpy(nbi_data(out), nbi_data(t), (size_t)t->numel * nb_dtype_size(dtype));
    else if (out)
        copy_strided(dtype, nbi_data(out), t->dtype, nbi_data(t), t->ndim, t->shape, t->strides, t->numel);
    if (dtype == NB_I64) return nbi_give(out); /* not differentiable */
    return nbi_finish_op(out, op, NBI_INPUTS(t), NULL, 0, NULL, 0);
}

nb_tensor *nb_contiguous(const nb_tensor *t) {
    if (!nbi_check_tensor("contiguous", "t", t)) return NULL;
    if (nbi_is_contiguous(t)) return alias(&contiguous_op, t);
    return copy_run(&contiguous_op, t, t->dtype);
}

nb_tensor *nb_clone(const nb_tensor *t) {
    if (!nbi_check_tensor("clone", "t", t)) return NULL;
    return copy_run(&clone_op, t, t->dtype);
}

nb_tensor *nb_to_dtype(const nb_tensor *t, nb_dtype dtype) {
    if (!nbi_check_tensor("to_dtype", "t", t)) return NULL;
    if (dtype != NB_F32 && dtype != NB_F64 && dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "to_dtype: unknown dtype %d", (int)dtype);
        return NULL;
    }
    if (dtype == t->dtype) return alias(&to_dtype_op, t);
    return copy_run(&to_dtype_op, t, dtype);
}

nb_tensor *nbi_contiguous_data(const nb_tensor *t) {
    if (nbi_is_contiguous(t)) return nbi_retain((nb_tensor *)t);
    nb_tensor *c = nbi_empty(t->dtype, t->ndim, t->shape); /* a copy autograd does not see */
    if (c) copy_strided(t->dtype, nbi_data(c), t->dtype, nbi_data(t), t->ndim, t->shape, t->strides, t->numel);
    return c;
}

nb_tensor *nb_detach(const nb_tensor *t) {
    if (!nbi_check_tensor("detach", "t", t)) return NULL;
    return nbi_give(nbi_make_view(t, t->ndim, t->shape, t->strides, t->offset));
}
