/* F.max_unpool2d: the partial inverse of max_pool2d. Each input value goes to
 * its plane's position indices[...] (a flat index h * W + w, as
 * nb_max_pool2d_with_indices returns them) of a zero output; two values with
 * the same index: the later one in row-major order stays (PyTorch's CPU
 * order). The output size is (H - 1) * stride - 2 * padding + kernel, or
 * output_size, which must lie strictly within one stride of it (F.max_unpool2d's
 * rule and messages, torch 1.13). Backward gathers: dx = dy[indices].
 * One thread per (n, c) plane: results do not depend on the thread count. */
#include "nn_util.h"

#include <stdio.h>
#include <string.h>

/* ---- check ---- */
typedef struct {
    int64_t planes, H, W, OH, OW;  /* input planes (H, W) unpooled into (OH, OW) */
} unpool_geom;

static const char *torch_type(nb_dtype t) { return t == NB_F32 ? "Float" : t == NB_F64 ? "Double" : "Long"; }

/* kernel_size, stride (0: the kernel) and padding (the other fields are not
 * read). PyTorch does not check them (a bad one fails later, oddly); nabla does. */
bool nbi_max_unpool2d_check_params(const char *op, const nb_pool2d_params *p) {
    if (!p) {
        nbi_error(NB_ERR_ARG, "%s: params is NULL", op);
        return false;
    }
    for (int d = 0; d < 2; d++) {
        int64_t k = p->kernel[d], s = p->stride[d] ? p->stride[d] : k, pad = p->padding[d];
        if (k <= 0 || s <= 0 || pad < 0) {
            nbi_error(NB_ERR_ARG,
                      "%s: expected kernel_size and stride greater than zero and padding non-negative, but got "
                      "kernel_size=(%lld, %lld), stride=(%lld, %lld), padding=(%lld, %lld)",
                      op, (long long)p->kernel[0], (long long)p->kernel[1], (long long)p->stride[0],
                      (long long)p->stride[1], (long long)p->padding[0], (long long)p->padding[1]);
            return false;
        }
    }
    return true;
}

/* F._unpool_output_size: the default size, or output_size ([h, w] or [n, c, h, w]) checked against it. */
static bool unpool_output_size(const char *op, const nb_tensor *x, const nb_pool2d_params *p, const int64_t *output_size,
                               int n, int64_t out[2]) {
    int64_t def[2];
    for (int d = 0; d < 2; d++) {
        int64_t k = p->kernel[d], s = p->stride[d] ? p->stride[d] : k, in = x->shape[x->ndim - 2 + d];
        __int128 v = (__int128)(in - 1) * s + k - 2 * (__int128)p->padding[d];
        if (v > INT64_MAX / 4) {
            nbi_error(NB_ERR_ARG, "%s: output size (%lld - 1) * %lld + %lld - 2 * %lld overflows int64", op,
                      (long long)in, (long long)s, (long long)k, (long long)p->padding[d]);
            return false;
        }
        def[d] = (int64_t)v;
    }
    if (!output_size) {
        if (def[0] < 0 || def[1] < 0) {
            nbi_error(NB_ERR_ARG, "%s: negative output size (%lld, %lld) from input size (%lld, %lld), kernel_size "
                      "(%lld, %lld), stride and padding", op, (long long)def[0], (long long)def[1],
                      (long long)x->shape[x->ndim - 2], (long long)x->shape[x->ndim - 1], (long long)p->kernel[0],
                      (long long)p->kernel[1]);
            return false;
        }
        out[0] = def[0], out[1] = def[1];
        return true;
    }
    if (n != 2 && n != 4) {
        nbi_error(NB_ERR_ARG, "%s: output_size should be a sequence containing 2 or 4 elements, but it has a length of '%d'",
                  op, n);
        return false;
    }
    const int64_t *o = output_size + (n - 2);
    for (int d = 0; d < 2; d++) {
        int64_t s = p->stride[d] ? p->stride[d] : p->kernel[d];
        if (!((__int128)def[d] - s < o[d] && o[d] < (__int128)def[d] + s)) {
            char given[128] = "(";
            for (int i = 0; i < n; i++)
                snprintf(given + strlen(given), sizeof given - strlen(given), "%s%lld", i ? ", " : "",
                         (long long)output_size[i]);
            nbi_error(NB_ERR_ARG, "%s: invalid output_size \"%s)\" (dim %d must be between %lld and %lld)", op, given, d,
                      (long long)(def[d] - s), (long long)(def[d] + s));
            return false;
        }
        out[d] = o[d];
    }
    return true;
}

static bool unpool_check(const nb_tensor *x, const nb_tensor *indices, const nb_pool2d_params *p,
                         const int64_t *output_size, int n, unpool_geom *g) {
    const char *op = "max_unpool2d";
    char s1[128], s2[128];
    if (!nbi_check_float(op, "input", x) || !nbi_max_unpool2d_check_params(op, p)) return false;
    if (x->ndim != 3 && x->ndim != 4) {
        nbi_error(NB_ERR_SHAPE, "%s: Input to max_unpooling2d should be a 3d or 4d Tensor, but got a tensor with %d dimensions.",
                  op, x->ndim);
        return false;
    }
    int64_t out[2];
    if (!unpool_output_size(op, x, p, output_size, n, out)) return false;
    if (!nbi_check_tensor(op, "indices", indices)) return false;
    if (indices->dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "%s: elements in indices should be type int64 but got: %s", op, torch_type(indices->dtype));
        return false;
    }
    if (indices->ndim != x->ndim || memcmp(indices->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim) != 0) {
        nbi_error(NB_ERR_SHAPE,
                  "%s: Expected shape of indices to be same as that of the input tensor (%s) but got indices tensor "
                  "with shape: %s",
                  op, nnu_shape(x, s1, sizeof s1), nnu_shape(indices, s2, sizeof s2));
        return false;
    }
    for (int d = 1; d < x->ndim; d++)
        if (x->shape[d] == 0) {
            nbi_error(NB_ERR_SHAPE,
                      "%s: max_unpooling2d_forward_out_cpu(): Expected input to have non-zero size for non-batch "
                      "dimensions, but got %s with dimension %d being empty.",
                      op, nnu_shape(x, s1, sizeof s1), d);
            return false;
        }
    int64_t planes = nbi_numel(x->ndim - 2, x->shape);
    if ((__int128)planes * out[0] * out[1] > INT64_MAX / 8) {
        nbi_error(NB_ERR_ARG, "%s: output size (%lld, %lld) is too large", op, (long long)out[0], (long long)out[1]);
        return false;
    }
    *g = (unpool_geom){planes, x->shape[x->ndim - 2], x->shape[x->ndim - 1], out[0], out[1]};
    return true;
}

/* Every index within its output plane (read once the indices are contiguous).
 * An empty output has nothing to check, as PyTorch. */
static bool unpool_check_indices(const int64_t *idx, const unpool_geom *g) {
    const int64_t n = g->planes * g->H * g->W, plane_out = g->OH * g->OW;
    if (g->planes * plane_out == 0) return true;
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= plane_out) {
            nbi_error(NB_ERR_ARG, "max_unpool2d: Found an invalid max index: %lld (output volumes are of size %lldx%lld)",
                      (long long)idx[i], (long long)g->OH, (long long)g->OW);
            return false;
        }
    return true;
}

/* ---- kernels (an empty output plane: the indices were not checked, and are not read) ---- */
// y: (planes, OH, OW), x: (planes, H, W), idx: (planes, H, W)
static void max_unpool2d_forward(nb_dtype dtype, void *y, const void *x, const int64_t *idx, const unpool_geom *g) {
    const int64_t plane_in = g->H * g->W, plane_out = g->OH * g->OW, planes = g->planes;
    if (plane_out == 0) return;
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *X = x;
        _Pragma("omp parallel for schedule(static) if (planes * plane_out > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            T *yp = Y + pl * plane_out;
            const T *xp = X + pl * plane_in;
            const int64_t *ip = idx + pl * plane_in;
            for (int64_t o = 0; o < plane_out; o++) yp[o] = 0;
            for (int64_t i = 0; i < plane_in; i++) yp[ip[i]] = xp[i];
        }
    });
}

// dx: (planes, H, W), dy: (planes, OH, OW), idx: (planes, H, W)
static void max_unpool2d_backward(nb_dtype dtype, void *dx, const void *dy, const int64_t *idx, const unpool_geom *g) {
    const int64_t plane_in = g->H * g->W, plane_out = g->OH * g->OW, planes = g->planes;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        _Pragma("omp parallel for schedule(static) if (planes * plane_in > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            T *dxp = dX + pl * plane_in;
            const T *dyp = dY + pl * plane_out;
            const int64_t *ip = idx + pl * plane_in;
            for (int64_t i = 0; i < plane_in; i++) dxp[i] = plane_out ? dyp[ip[i]] : (T)0;
        }
    });
}

/* ---- autograd: ctx is the unpool_geom, saved[0] the contiguous indices ---- */
static nb_status max_unpool2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    max_unpool2d_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]), node->ctx);
    return NB_OK;
}

static const nbi_op max_unpool2d_op = {"max_unpool2d", max_unpool2d_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_max_unpool2d(const nb_tensor *x, const nb_tensor *indices, const nb_pool2d_params *p,
                           const int64_t *output_size, int output_size_len) {
    unpool_geom g;
    if (!unpool_check(x, indices, p, output_size, output_size_len, &g)) return NULL;
    nb_tensor *ic = nbi_contiguous_data(indices);
    if (ic && !unpool_check_indices(nbi_data(ic), &g)) {
        nbi_release(ic);
        return NULL;
    }
    nb_tensor *xc = ic ? nbi_contiguous_data(x) : NULL;
    int64_t shape[4];
    for (int i = 0; i < x->ndim - 2; i++) shape[i] = x->shape[i];
    shape[x->ndim - 2] = g.OH;
    shape[x->ndim - 1] = g.OW;
    nb_tensor *y = xc ? nbi_empty_op("max_unpool2d", x->dtype, x->ndim, shape) : NULL;
    if (y) max_unpool2d_forward(x->dtype, nbi_data(y), nbi_data(xc), nbi_data(ic), &g);
    nbi_release(xc);
    return nbi_finish_op(y, &max_unpool2d_op, NBI_INPUTS(x), NBI_SAVED(ic), &g, sizeof g);
}
