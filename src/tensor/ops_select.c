/* Selection: where(condition, input, other) and gather(input, dim, index).
 *
 * where picks input where the condition holds, other elsewhere, the three
 * broadcast together (broadcast.h). nabla has no bool dtype: the condition is
 * an int64 tensor and nonzero means true (PyTorch's bool tensor converted with
 * .long(); any other dtype is refused, as PyTorch refuses non-bool ones).
 * Gradients: where(cond, g, 0) to input, where(cond, 0, g) to other.
 *
 * gather: out[i][j][k] = input[index[i][j][k]][j][k] for dim 0 (and so on),
 * out shaped like index, whose sizes may not exceed input's except along dim.
 * Its backward scatter-adds g into zeros of input's shape. Both walk index
 * "lines" (all positions that differ only along dim): a line reads and writes
 * one line of input, different lines never the same one, so lines run in
 * parallel and each line adds in increasing order along dim, the same order
 * at any thread count.
 *
 * Both move elements without arithmetic in the forward, so they take int64
 * inputs too (not differentiable), as PyTorch does. */
#include "broadcast.h"

#include <string.h>

/* ---- where ---- */
static bool where_check(const nb_tensor *cond, const nb_tensor *a, const nb_tensor *b, nbi_bcast *g) {
    if (!nbi_check_tensor("where", "condition", cond) || !nbi_check_tensor("where", "input", a) ||
        !nbi_check_tensor("where", "other", b))
        return false;
    if (cond->dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE,
                  "where: expected condition to be a boolean tensor (in nabla an int64 tensor, nonzero meaning true), "
                  "but got a tensor with dtype %s",
                  nb_dtype_name(cond->dtype));
        return false;
    }
    if (!nbi_check_same_dtype("where", a, b)) return false;
    return nbi_bcast_init("where", g, (const nb_tensor *const[]){cond, a, b}, 3);
}

/* y = cond ? a : b, copied as U (an unsigned integer of the element's size). */
#define WHERE_LOOP(U)                                                              \
    do {                                                                           \
        U *Y = y;                                                                  \
        const U *A = a, *B = b;                                                    \
        NBI_BCAST_LOOP(g, Y[e] = cond[p.off[0]] != 0 ? A[p.off[1]] : B[p.off[2]]); \
    } while (0)

// y: (numel), cond, a, b: strided by g; es: the element size of a and b
static void where_forward(size_t es, void *y, const int64_t *cond, const void *a, const void *b, const nbi_bcast *g) {
    if (es == 4) WHERE_LOOP(uint32_t);
    else WHERE_LOOP(uint64_t);
}

// da, db: (numel) or NULL, dy: (numel), cond: strided by g
static void where_backward(nb_dtype dtype, void *da, void *db, const void *dy, const int64_t *cond, const nbi_bcast *g) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *dA = da, *dB = db;
        const T *dY = dy;
        NBI_BCAST_LOOP(g, {
            const bool c = cond[p.off[0]] != 0;
            if (dA) dA[e] = c ? dY[e] : (T)0;
            if (dB) dB[e] = c ? (T)0 : dY[e];
        });
    });
}

/* ctx: the nbi_bcast of (cond, input, other) */
static nb_status where_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    nb_tensor *full[3];
    if (nbi_bcast_grads_begin(node, gout, full) != NB_OK) return nb_last_status();
    where_backward(gout->dtype, nbi_data_or_null(full[1]), nbi_data_or_null(full[2]), nbi_data(gout),
                   nbi_data(node->inputs[0]), node->ctx);
    return nbi_bcast_grads_end(node, full, gin);
}

static const nbi_op where_op = {"where", where_grad_fn, NULL};

nb_tensor *nb_where(const nb_tensor *condition, const nb_tensor *input, const nb_tensor *other) {
    nbi_bcast g;
    if (!where_check(condition, input, other, &g)) return NULL;
    nb_tensor *y = nbi_empty(input->dtype, g.ndim, g.shape);
    if (y) where_forward(nb_dtype_size(input->dtype), nbi_data(y), nbi_data(condition), nbi_data(input), nbi_data(other), &g);
    return nbi_finish_op(y, &where_op, NBI_INPUTS(condition, input, other), NULL, 0, &g, sizeof g);
}

/* ---- gather ---- */
typedef struct {
    int dim;                       /* normalised */
    int ndim;                      /* of input and index; a 0-d tensor counts as one dim of size 1 */
    int64_t xshape[NB_MAX_DIMS];   /* input's sizes */
    int64_t ishape[NB_MAX_DIMS];   /* index's sizes */
    int64_t nlines;                /* index positions with the dim coordinate 0 */
} gather_geom;

static bool gather_check(const nb_tensor *x, int dim, const nb_tensor *index, gather_geom *g) {
    if (!nbi_check_tensor("gather", "input", x) || !nbi_check_tensor("gather", "index", index)) return false;
    int d = nbi_dim("gather", dim, x->ndim);
    if (d < 0) return false;
    *g = (gather_geom){.dim = d, .ndim = x->ndim > 0 ? x->ndim : 1, .nlines = 1};
    for (int i = 0; i < g->ndim; i++) {
        g->xshape[i] = x->ndim > 0 ? x->shape[i] : 1;
        g->ishape[i] = index->ndim > 0 && i < index->ndim ? index->shape[i] : 1;
        if (i != d) g->nlines *= g->ishape[i];
    }
    if (index->numel == 0) { /* PyTorch checks nothing more for an empty index; the kernels read nothing */
        g->nlines = 0;
        return true;
    }
    if (index->dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "gather: Expected dtype int64 for index, but got %s", nb_dtype_name(index->dtype));
        return false;
    }
    if ((index->ndim > 0 ? index->ndim : 1) != g->ndim) {
        nbi_error(NB_ERR_SHAPE, "gather: Index tensor must have the same number of dimensions as input tensor (%d and %d)",
                  index->ndim, x->ndim);
        return false;
    }
    for (int i = 0; i < g->ndim; i++)
        if (i != d && g->ishape[i] > g->xshape[i]) {
            char a[128], b[128];
            nbi_error(NB_ERR_SHAPE,
                      "gather: Size does not match at dimension %d expected index %s to be smaller than self %s apart "
                      "from dimension %d",
                      i, nb_shape_str(index->ndim, index->shape, a, sizeof a), nb_shape_str(x->ndim, x->shape, b, sizeof b),
                      d);
            return false;
        }
    return true;
}

/* Indices are user data: every one must lie in [0, size) before a kernel reads through it. */
static bool gather_check_indices(const int64_t *idx, int64_t n, const gather_geom *g) {
    const int64_t size = g->xshape[g->dim];
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= size) {
            nbi_error(NB_ERR_ARG, "gather: index %lld is out of bounds for dimension %d with size %lld", (long long)idx[i],
                      g->dim, (long long)size);
            return false;
        }
    return true;
}

/* Where line l starts: its offset into the (contiguous) index and input, and
 * the strides of both along dim. */
static void gather_line(const gather_geom *g, int64_t l, int64_t *ioff, int64_t *xoff, int64_t *istep, int64_t *xstep) {
    int64_t is = 1, xs = 1;
    *ioff = *xoff = 0;
    *istep = *xstep = 1;
    for (int d = g->ndim - 1; d >= 0; d--) {
        if (d == g->dim) {
            *istep = is;
            *xstep = xs;
        } else {
            int64_t c = l % g->ishape[d];
            l /= g->ishape[d];
            *ioff += c * is;
            *xoff += c * xs;
        }
        is *= g->ishape[d];
        xs *= g->xshape[d];
    }
}

/* y[line, k] = x[xline, idx[line, k]] as U (an unsigned integer of the element's size). */
#define GATHER_LOOP(U)                                                                    \
    do {                                                                                  \
        U *Y = y;                                                                         \
        const U *X = x;                                                                   \
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")                 \
        for (int64_t l = 0; l < g->nlines; l++) {                                         \
            int64_t io, xo, is, xs;                                                       \
            gather_line(g, l, &io, &xo, &is, &xs);                                        \
            for (int64_t k = 0; k < size; k++) Y[io + k * is] = X[xo + idx[io + k * is] * xs]; \
        }                                                                                 \
    } while (0)

// y: (ishape), x: (xshape), idx: (ishape); es: the element size
static void gather_forward(size_t es, void *y, const void *x, const int64_t *idx, const gather_geom *g) {
    const int64_t size = g->ishape[g->dim], n = g->nlines * size;
    if (es == 4) GATHER_LOOP(uint32_t);
    else GATHER_LOOP(uint64_t);
}

/* dx = 0, then dx[xline, idx[line, k]] += dy[line, k] for k in increasing order. */
// dx: (xshape), dy: (ishape), idx: (ishape)
static void gather_backward(nb_dtype dtype, void *dx, const void *dy, const int64_t *idx, const gather_geom *g) {
    const int64_t size = g->ishape[g->dim], n = g->nlines * size;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        memset(dX, 0, (size_t)nbi_numel(g->ndim, g->xshape) * sizeof(T));
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t l = 0; l < g->nlines; l++) {
            int64_t io, xo, is, xs;
            gather_line(g, l, &io, &xo, &is, &xs);
            for (int64_t k = 0; k < size; k++) dX[xo + idx[io + k * is] * xs] += dY[io + k * is];
        }
    });
}

/* ctx: the geometry; saved[0]: the op's own copy of the index, so that a
 * caller writing to theirs cannot send backward out of bounds (none for an
 * empty index: nlines is 0) */
static nb_status gather_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    gather_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), node->nsaved ? nbi_data(node->saved[0]) : NULL,
                    node->ctx);
    return NB_OK;
}

static const nbi_op gather_op = {"gather", gather_grad_fn, NULL};

nb_tensor *nb_gather(const nb_tensor *input, int dim, const nb_tensor *index) {
    gather_geom g;
    if (!gather_check(input, dim, index, &g)) return NULL;
    if (index->numel == 0) { /* nothing to read: an empty result, and zeros for input's gradient */
        nb_tensor *y = nbi_empty(input->dtype, index->ndim, index->shape);
        return nbi_finish_op(y, &gather_op, NBI_INPUTS(input), NULL, 0, &g, sizeof g);
    }
    nb_tensor *ic = nbi_contiguous_data(index);
    if (ic == index) { /* the caller's own tensor: copy it */
        nb_tensor *copy = nbi_empty(NB_I64, index->ndim, index->shape);
        if (copy) memcpy(nbi_data(copy), nbi_data(index), (size_t)index->numel * sizeof(int64_t));
        nbi_release(ic);
        ic = copy;
    }
    if (ic && !gather_check_indices(nbi_data(ic), ic->numel, &g)) {
        nbi_release(ic);
        return NULL;
    }
    nb_tensor *xc = ic ? nbi_contiguous_data(input) : NULL;
    nb_tensor *y = xc ? nbi_empty(input->dtype, index->ndim, index->shape) : NULL;
    if (y) gather_forward(nb_dtype_size(input->dtype), nbi_data(y), nbi_data(xc), nbi_data(ic), &g);
    nbi_release(xc);
    return nbi_finish_op(y, &gather_op, NBI_INPUTS(input), NBI_SAVED(ic), &g, sizeof g);
}
