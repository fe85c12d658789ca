/* Elementwise maximum and minimum of two tensors, and clamp with scalar or
 * tensor bounds, all with PyTorch's NaN rules and gradients:
 *
 *   maximum(a, b)   NaN if either is NaN. Gradient (torch 1.13's formula):
 *                   g to the larger, g / 2 to each on a tie, 0 to the other;
 *                   with a NaN both receive g (no comparison is true).
 *   clamp(x, lo, hi) scalar bounds, ±inf for an absent one (PyTorch's None):
 *                   x < lo ? lo : x, then > hi ? hi : that; lo > hi gives hi
 *                   everywhere; NaN x stays NaN; a NaN bound bounds nothing.
 *                   Gradient g where lo <= x <= hi, else 0 (0 at NaN).
 *   clamp(x, lo, hi) tensor bounds (broadcast; NULL for an absent one): NaN if
 *                   any of the three is NaN, else as above. Gradients (torch's
 *                   clamp_backward_min_max): x as above; lo where x < lo < hi
 *                   (only lo: x < lo); hi where x > hi or hi < lo (only hi: x > hi).
 *
 * Forward and backward walk the broadcast output (broadcast.h); each gradient
 * is computed over the output's shape and summed down to its operand's. */
#include "broadcast.h"

#include <math.h>

/* ---- maximum / minimum ---- */
static bool minmax_check(const char *op, const nb_tensor *a, const nb_tensor *b, nbi_bcast *g) {
    if (!nbi_check_float(op, "input", a) || !nbi_check_float(op, "other", b)) return false;
    if (!nbi_check_same_dtype(op, a, b)) return false;
    return nbi_bcast_init(op, g, (const nb_tensor *const[]){a, b}, 2);
}

// y: (numel), a, b: strided by g
static void minmax_forward(bool is_min, nb_dtype dtype, void *y, const void *a, const void *b, const nbi_bcast *g) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *A = a, *B = b;
        NBI_BCAST_LOOP(g, {
            const T u = A[p.off[0]], v = B[p.off[1]];
            const T m = is_min ? (u < v ? u : v) : (u > v ? u : v);
            Y[e] = u != u ? u : (v != v ? v : m);
        });
    });
}

/* PyTorch: where(a == b, g / 2, g), zeroed where a < b for a's gradient of
 * maximum (a > b for minimum) and the other way round for b's. */
// da, db: (numel) or NULL, dy: (numel), a, b: strided by g
static void minmax_backward(bool is_min, nb_dtype dtype, void *da, void *db, const void *dy, const void *a,
                            const void *b, const nbi_bcast *g) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *dA = da, *dB = db;
        const T *dY = dy, *A = a, *B = b;
        NBI_BCAST_LOOP(g, {
            const T u = A[p.off[0]], v = B[p.off[1]];
            const T h = u == v ? dY[e] / (T)2 : dY[e];
            const bool a_loses = is_min ? u > v : u < v, b_loses = is_min ? u < v : u > v;
            if (dA) dA[e] = a_loses ? (T)0 : h;
            if (dB) dB[e] = b_loses ? (T)0 : h;
        });
    });
}

typedef struct { nbi_bcast g; bool is_min; } minmax_ctx;

static nb_status minmax_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const minmax_ctx *c = node->ctx;
    nb_tensor *full[2];
    if (nbi_bcast_grads_begin(node, gout, full) != NB_OK) return nb_last_status();
    minmax_backward(c->is_min, gout->dtype, nbi_data_or_null(full[0]), nbi_data_or_null(full[1]), nbi_data(gout),
                    nbi_data(node->inputs[0]), nbi_data(node->inputs[1]), &c->g);
    return nbi_bcast_grads_end(node, full, gin);
}

static const nbi_op maximum_op = {"maximum", minmax_grad_fn, NULL};
static const nbi_op minimum_op = {"minimum", minmax_grad_fn, NULL};

static nb_tensor *minmax(const nbi_op *op, bool is_min, const nb_tensor *a, const nb_tensor *b) {
    minmax_ctx c = {.is_min = is_min};
    if (!minmax_check(op->name, a, b, &c.g)) return NULL;
    nb_tensor *y = nbi_empty(a->dtype, c.g.ndim, c.g.shape);
    if (y) minmax_forward(is_min, a->dtype, nbi_data(y), nbi_data(a), nbi_data(b), &c.g);
    return nbi_finish_op(y, op, NBI_INPUTS(a, b), NULL, 0, &c, sizeof c);
}

nb_tensor *nb_maximum(const nb_tensor *input, const nb_tensor *other) { return minmax(&maximum_op, false, input, other); }
nb_tensor *nb_minimum(const nb_tensor *input, const nb_tensor *other) { return minmax(&minimum_op, true, input, other); }

/* ---- clamp with scalar bounds ---- */
// y: (n), x: (n)
static void clamp_forward(nb_dtype dtype, void *y, const void *x, int64_t n, double lo, double hi) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *X = x;
        const T l = (T)lo, h = (T)hi;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            const T m = X[i] < l ? l : X[i]; /* std::min(std::max(x, lo), hi), as PyTorch */
            Y[i] = m > h ? h : m;
        }
    });
}

// dx: (n), dy: (n), x: (n)
static void clamp_backward(nb_dtype dtype, void *dx, const void *dy, const void *x, int64_t n, double lo, double hi) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = dx;
        const T *gp = dy, *sp = x;
        const T l = (T)lo, h = (T)hi;
        NBI_EW_MAP2(s >= l && s <= h ? g : (T)0);
    });
}

typedef struct { double lo, hi; } clamp_ctx;

/* saved[0]: the contiguous input */
static nb_status clamp_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const clamp_ctx *c = node->ctx;
    const nb_tensor *x = node->saved[0];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    clamp_backward(x->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(x), x->numel, c->lo, c->hi);
    return NB_OK;
}

static const nbi_op clamp_op = {"clamp", clamp_grad_fn, NULL};

nb_tensor *nb_clamp(const nb_tensor *x, double min, double max) {
    if (!nbi_check_float("clamp", "input", x)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty_like(x) : NULL;
    if (y) clamp_forward(x->dtype, nbi_data(y), nbi_data(xc), x->numel, min, max);
    const clamp_ctx c = {min, max};
    return nbi_finish_op(y, &clamp_op, NBI_INPUTS(x), NBI_SAVED(xc), &c, sizeof c);
}

/* ---- clamp with tensor bounds: operands (x, lo, hi), lo or hi NULL ---- */
static bool clamp_tensor_check(const nb_tensor *x, const nb_tensor *lo, const nb_tensor *hi, nbi_bcast *g) {
    if (!nbi_check_float("clamp", "input", x)) return false;
    if (!lo && !hi) {
        nbi_error(NB_ERR_ARG, "clamp: At least one of 'min' or 'max' must not be None");
        return false;
    }
    if (lo && !nbi_check_same_dtype("clamp", x, lo)) return false;
    if (hi && !nbi_check_same_dtype("clamp", x, hi)) return false;
    return nbi_bcast_init("clamp", g, (const nb_tensor *const[]){x, lo, hi}, 3);
}

// y: (numel), x, lo, hi: strided by g (lo or hi NULL: absent)
static void clamp_tensor_forward(nb_dtype dtype, void *y, const void *x, const void *lo, const void *hi,
                                 const nbi_bcast *g) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *X = x, *L = lo, *H = hi;
        NBI_BCAST_LOOP(g, {
            const T v = X[p.off[0]], l = L ? L[p.off[1]] : -(T)INFINITY, h = H ? H[p.off[2]] : (T)INFINITY;
            const T m = v < l ? l : v;
            Y[e] = v != v || l != l || h != h ? (T)NAN : (m > h ? h : m);
        });
    });
}

// dx, dlo, dhi: (numel) or NULL, dy: (numel), x, lo, hi: strided by g (lo or hi NULL: absent)
static void clamp_tensor_backward(nb_dtype dtype, void *dx, void *dlo, void *dhi, const void *dy, const void *x,
                                  const void *lo, const void *hi, const nbi_bcast *g) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx, *dL = dlo, *dH = dhi;
        const T *dY = dy, *X = x, *L = lo, *H = hi;
        NBI_BCAST_LOOP(g, {
            const T v = X[p.off[0]], l = L ? L[p.off[1]] : -(T)INFINITY, h = H ? H[p.off[2]] : (T)INFINITY;
            if (dX) dX[e] = v >= l && v <= h ? dY[e] : (T)0;
            if (dL) dL[e] = v < l && (!H || l < h) ? dY[e] : (T)0;
            if (dH) dH[e] = v > h || (L && h < l) ? dY[e] : (T)0;
        });
    });
}

static nb_status clamp_tensor_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nbi_bcast *g = node->ctx;
    nb_tensor *full[3];
    if (nbi_bcast_grads_begin(node, gout, full) != NB_OK) return nb_last_status();
    clamp_tensor_backward(gout->dtype, nbi_data_or_null(full[0]), nbi_data_or_null(full[1]),
                          nbi_data_or_null(full[2]), nbi_data(gout), nbi_data(node->inputs[0]),
                          nbi_data_or_null(node->inputs[1]), nbi_data_or_null(node->inputs[2]), g);
    return nbi_bcast_grads_end(node, full, gin);
}

static const nbi_op clamp_tensor_op = {"clamp", clamp_tensor_grad_fn, NULL};

nb_tensor *nb_clamp_tensor(const nb_tensor *x, const nb_tensor *min, const nb_tensor *max) {
    nbi_bcast g;
    if (!clamp_tensor_check(x, min, max, &g)) return NULL;
    nb_tensor *y = nbi_empty(x->dtype, g.ndim, g.shape);
    if (y) clamp_tensor_forward(x->dtype, nbi_data(y), nbi_data(x), nbi_data_or_null(min), nbi_data_or_null(max), &g);
    return nbi_finish_op(y, &clamp_tensor_op, NBI_INPUTS(x, min, max), NULL, 0, &g, sizeof g);
}
