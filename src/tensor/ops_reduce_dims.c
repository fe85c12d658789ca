/* Reductions over several dims at once: sum, mean, amax, amin with a list of
 * dims (torch.sum(x, dim=(0, 2), keepdim=...), torch.amax(x, dim=...)).
 *
 * PyTorch's list semantics: negative dims count from the end, a dim listed
 * twice is an error ("dim 0 appears multiple times in the list of dims"), and
 * an empty list reduces every dim (torch 1.13: x.sum(dim=[]) is x.sum()).
 * sum over nothing is 0, mean NaN; amax / amin of an empty input is an error
 * naming the empty dim, and NaN propagates. Gradients: sum sends g to every
 * reduced element, mean g / count; amax / amin PyTorch's evenly distributed
 * g / (number of elements equal to the result) * (x == result), which is NaN
 * across a slice whose result is NaN, as in PyTorch.
 *
 * Geometry: the input's dims are merged into groups of neighbouring kept or
 * reduced dims (size-1 dims dropped). The innermost kept group (when the
 * innermost group is kept) is walked in blocks of adjacent memory; each task
 * covers one index of the outer kept groups and one block, and walks every
 * reduced position in row-major order for each of its outputs. Each output is
 * computed by one task in that fixed order (sums accumulate in double), so
 * results do not depend on the thread count. */
#include "internal.h"

#include <math.h>
#include <string.h>

#define BLK 64

typedef enum { RD_SUM, RD_MEAN, RD_AMAX, RD_AMIN } rd_kind;

typedef struct {
    int ndim;                       /* the output's shape */
    int64_t shape[NB_MAX_DIMS];
    int64_t count;                  /* input elements reduced into each output */
    int64_t inner;                  /* the innermost kept group's size (1 when the innermost group is reduced) */
    int nk;                         /* the other kept groups: sizes and (contiguous) input strides */
    int64_t ksize[NB_MAX_DIMS], kstride[NB_MAX_DIMS];
    int nr;                         /* the reduced groups */
    int64_t rsize[NB_MAX_DIMS], rstride[NB_MAX_DIMS];
    int64_t outer;                  /* product of ksize */
    rd_kind kind;
} dims_geom;

static const char *const rd_names[] = {"sum_dims", "mean_dims", "amax", "amin"};

/* The output's shape and the groups of a contiguous a, red[i] saying whether dim i is reduced. */
static void dims_geometry(const nb_tensor *a, const bool *red, bool keepdim, rd_kind kind, dims_geom *g) {
    *g = (dims_geom){.count = 1, .inner = 1, .outer = 1, .kind = kind};
    for (int i = 0; i < a->ndim; i++) {
        if (!red[i]) g->shape[g->ndim++] = a->shape[i];
        else if (keepdim) g->shape[g->ndim++] = 1;
        if (red[i]) g->count *= a->shape[i];
    }
    /* groups, from the innermost dim outwards (built inner-first, then reversed) */
    int64_t size[NB_MAX_DIMS], stride[NB_MAX_DIMS], st = 1;
    bool isred[NB_MAX_DIMS];
    int m = 0;
    for (int i = a->ndim - 1; i >= 0; i--) {
        if (a->shape[i] != 1) {
            if (m > 0 && isred[m - 1] == red[i]) {
                size[m - 1] *= a->shape[i];
            } else {
                size[m] = a->shape[i];
                stride[m] = st;
                isred[m++] = red[i];
            }
        }
        st *= a->shape[i];
    }
    int first = 0;
    if (m > 0 && !isred[0]) g->inner = size[first++];
    for (int k = m - 1; k >= first; k--) {
        if (isred[k]) {
            g->rsize[g->nr] = size[k];
            g->rstride[g->nr++] = stride[k];
        } else {
            g->ksize[g->nk] = size[k];
            g->kstride[g->nk++] = stride[k];
            g->outer *= size[k];
        }
    }
}

/* ---- check: the dims list in PyTorch's order (range, then repeats), the geometry ---- */
static bool dims_check(rd_kind kind, const nb_tensor *a, const int *dims, int ndims, bool keepdim, dims_geom *g) {
    const char *name = rd_names[kind];
    if (!nbi_check_float(name, "a", a)) return false;
    if (ndims < 0 || (ndims > 0 && !dims)) {
        nbi_error(NB_ERR_ARG, "%s: expected a list of ndims >= 0 dims, but got ndims %d and dims %s", name, ndims,
                  dims ? "given" : "NULL");
        return false;
    }
    for (int i = 0; i < ndims; i++)
        if (nbi_dim(name, dims[i], a->ndim) < 0) return false;
    /* no dim repeats: then there are at most ndim (<= NB_MAX_DIMS) of them */
    bool red[NB_MAX_DIMS] = {false};
    int norm[NB_MAX_DIMS];
    for (int i = 0; i < ndims; i++) {
        int d = nbi_dim(name, dims[i], a->ndim);
        if (red[d]) {
            nbi_error(NB_ERR_ARG, "%s: dim %d appears multiple times in the list of dims", name, d);
            return false;
        }
        red[d] = true;
        norm[i] = d;
    }
    if (ndims == 0)
        for (int i = 0; i < a->ndim; i++) red[i] = true;
    if ((kind == RD_AMAX || kind == RD_AMIN) && a->numel == 0) {
        if (ndims == 0) {
            nbi_error(NB_ERR_SHAPE, "%s: Expected reduction dim to be specified for input.numel() == 0.", name);
            return false;
        }
        for (int i = 0; i < ndims; i++)
            if (a->shape[norm[i]] == 0) {
                nbi_error(NB_ERR_SHAPE, "%s: Expected reduction dim %d to have non-zero size.", name, dims[i]);
                return false;
            }
    }
    dims_geometry(a, red, keepdim, kind, g);
    return true;
}

/* The input offset of the outer kept index o. */
static int64_t outer_offset(const dims_geom *g, int64_t o) {
    int64_t off = 0;
    for (int k = g->nk - 1; k >= 0; k--) {
        off += (o % g->ksize[k]) * g->kstride[k];
        o /= g->ksize[k];
    }
    return off;
}

/* The next reduced position in row-major order (an odometer over the reduced groups). */
static inline void next_reduced(const dims_geom *g, int64_t *ridx, int64_t *roff) {
    for (int k = g->nr - 1; k >= 0; k--) {
        *roff += g->rstride[k];
        if (++ridx[k] < g->rsize[k]) return;
        *roff -= g->rstride[k] * g->rsize[k];
        ridx[k] = 0;
    }
}

/* The tasks: one outer index o and a block of up to BLK inner positions.
 * In the body, base is the input offset of the block's first position, y0
 * its output index and jn its length. */
#define TASK_LOOP(g, n, ...)                                                              \
    do {                                                                                  \
        const int64_t nblk_ = ((g)->inner + BLK - 1) / BLK, ntask_ = (g)->outer * nblk_;  \
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")                 \
        for (int64_t t_ = 0; t_ < ntask_; t_++) {                                         \
            const int64_t o_ = t_ / nblk_, j0_ = (t_ % nblk_) * BLK;                      \
            const int64_t jn = (g)->inner - j0_ < BLK ? (g)->inner - j0_ : BLK;           \
            const int64_t base = outer_offset((g), o_) + j0_, y0 = o_ * (g)->inner + j0_; \
            __VA_ARGS__                                                                   \
        }                                                                                 \
    } while (0)

/* Runs the body for every reduced position in row-major order, with roff its
 * offset from base. */
#define FOR_REDUCED(g, ...)                                                               \
    do {                                                                                  \
        int64_t ridx_[NB_MAX_DIMS] = {0}, roff = 0;                                       \
        for (int64_t r_ = 0; r_ < (g)->count; r_++) {                                     \
            __VA_ARGS__                                                                   \
            next_reduced((g), ridx_, &roff);                                              \
        }                                                                                 \
    } while (0)

/* ---- kernels ---- */
// y: (outer * inner), x: the input (contiguous); n: the input's numel
static void reduce_dims_forward(nb_dtype dtype, void *y, const void *x, const dims_geom *g, int64_t n) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *xb0 = x;
        TASK_LOOP(g, n, {
            const T *xb = xb0 + base;
            if (g->kind == RD_SUM || g->kind == RD_MEAN) {
                double acc[BLK] = {0};
                FOR_REDUCED(g, for (int64_t j = 0; j < jn; j++) acc[j] += xb[roff + j];);
                for (int64_t j = 0; j < jn; j++)
                    Y[y0 + j] = (T)(g->kind == RD_MEAN ? (g->count ? acc[j] / (double)g->count : NAN) : acc[j]);
            } else {
                const bool is_min = g->kind == RD_AMIN;
                T best[BLK];
                for (int64_t j = 0; j < jn; j++) best[j] = xb[j];
                FOR_REDUCED(g, for (int64_t j = 0; j < jn; j++) {
                    const T v = xb[roff + j];
                    /* NaN propagates: once best is NaN nothing replaces it */
                    if ((is_min ? v < best[j] : v > best[j]) || (v != v && best[j] == best[j])) best[j] = v;
                });
                for (int64_t j = 0; j < jn; j++) Y[y0 + j] = best[j];
            }
        });
    });
}

/* sum: dx = dy at every reduced position; mean: dy / count; amax / amin:
 * (dy / (number of x equal to y)) * (x == y), PyTorch's formula. */
// dx: the input's shape (contiguous), dy: (outer * inner), x, y: the input and output (amax / amin only)
static void reduce_dims_backward(nb_dtype dtype, void *dx, const void *dy, const void *x, const void *y,
                                 const dims_geom *g, int64_t n) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy, *X = x, *Y = y;
        TASK_LOOP(g, n, {
            if (g->kind == RD_SUM || g->kind == RD_MEAN) {
                const T cnt = (T)g->count;
                FOR_REDUCED(g, for (int64_t j = 0; j < jn; j++)
                                   dX[base + roff + j] = g->kind == RD_MEAN ? dY[y0 + j] / cnt : dY[y0 + j];);
            } else {
                int64_t cnt[BLK] = {0};
                FOR_REDUCED(g, for (int64_t j = 0; j < jn; j++) cnt[j] += X[base + roff + j] == Y[y0 + j];);
                FOR_REDUCED(g, for (int64_t j = 0; j < jn; j++)
                                   dX[base + roff + j] = dY[y0 + j] / (T)cnt[j] * (T)(X[base + roff + j] == Y[y0 + j]););
            }
        });
    });
}

/* ---- autograd: ctx the geometry; amax / amin read the input and node->out ---- */
static nb_status reduce_dims_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const dims_geom *g = node->ctx;
    const nb_tensor *in = node->inputs[0];
    const bool extremum = g->kind == RD_AMAX || g->kind == RD_AMIN;
    nb_tensor *xc = extremum ? nbi_contiguous_data(in) : NULL;
    if (extremum && !xc) return nb_last_status();
    nb_status st = nbi_alloc_grads(node, gin);
    if (st == NB_OK)
        reduce_dims_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data_or_null(xc),
                             extremum ? nbi_data(node->out) : NULL, g, in->numel);
    nbi_release(xc);
    return st;
}

static const nbi_op sum_dims_op = {"sum_dims", reduce_dims_grad_fn, NULL};
static const nbi_op mean_dims_op = {"mean_dims", reduce_dims_grad_fn, NULL};
static const nbi_op amax_op = {"amax", reduce_dims_grad_fn, NULL};
static const nbi_op amin_op = {"amin", reduce_dims_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
static nb_tensor *reduce_dims(const nbi_op *op, rd_kind kind, const nb_tensor *a, const int *dims, int ndims,
                              bool keepdim) {
    dims_geom g;
    if (!dims_check(kind, a, dims, ndims, keepdim, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(a);
    nb_tensor *y = xc ? nbi_empty(a->dtype, g.ndim, g.shape) : NULL;
    if (y) reduce_dims_forward(a->dtype, nbi_data(y), nbi_data(xc), &g, a->numel);
    nbi_release(xc);
    return nbi_finish_op(y, op, NBI_INPUTS(a), NULL, 0, &g, sizeof g);
}

nb_tensor *nb_sum_dims(const nb_tensor *a, const int *dims, int ndims, bool keepdim) {
    return reduce_dims(&sum_dims_op, RD_SUM, a, dims, ndims, keepdim);
}
nb_tensor *nb_mean_dims(const nb_tensor *a, const int *dims, int ndims, bool keepdim) {
    return reduce_dims(&mean_dims_op, RD_MEAN, a, dims, ndims, keepdim);
}
nb_tensor *nb_amax(const nb_tensor *a, const int *dims, int ndims, bool keepdim) {
    return reduce_dims(&amax_op, RD_AMAX, a, dims, ndims, keepdim);
}
nb_tensor *nb_amin(const nb_tensor *a, const int *dims, int ndims, bool keepdim) {
    return reduce_dims(&amin_op, RD_AMIN, a, dims, ndims, keepdim);
}
