/* Binary elementwise ops with PyTorch broadcasting: add, sub, mul, div, and
 * add / sub with a scale alpha on the second operand (a + alpha * b).
 *
 * Forward reads both operands through their strides (views need no copy).
 * The broadcast geometry is first simplified: size-1 dims are dropped and
 * neighbouring dims that both operands walk contiguously are merged, so
 * same-shape contiguous operands become one flat loop and the usual
 * broadcasts become a row loop whose inner run has operand strides (1, 1),
 * (1, 0) or (0, 1): [N, C] + [C] and [N, C, H, W] + [1, C, 1, 1] both hit a
 * vectorisable inner loop. The output is cut into fixed chunks of
 * NBI_EW_CHUNK elements for OpenMP; every element is computed by one thread
 * from its own two inputs, so results do not depend on the thread count.
 *
 * Backward sums the gradient back to each operand's shape (nbi_sum_to_shape). */
#include "elementwise.h"


typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_ADD_ALPHA } bin_kind;

/* The geometry of one call: the output's shape, and the broadcast after
 * simplification: m dims of the output (row-major, contiguous) and each
 * operand's element strides over them (0 = broadcast). */
typedef struct {
    int ndim;
    int64_t out_shape[NB_MAX_DIMS];
    int m;
    int64_t shape[NB_MAX_DIMS];
    int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
} bcast_geom;

/* Strides of t seen through a broadcast output of n dims (0 where t broadcasts). */
static void broadcast_strides(const nb_tensor *t, int n, int64_t *st) {
    for (int i = 0; i < n; i++) {
        int j = t->ndim - n + i;
        st[i] = (j >= 0 && t->shape[j] != 1) ? t->strides[j] : 0;
    }
}

static void simplify(bcast_geom *g, int n, const int64_t *oshape, const int64_t *sa, const int64_t *sb) {
    int m = 0;
    /* Walk from the innermost dim outwards, merging dim i into the current
     * innermost group when both operands continue their stride pattern. */
    int64_t sh[NB_MAX_DIMS], a[NB_MAX_DIMS], b[NB_MAX_DIMS]; /* built inner-first */
    for (int i = n - 1; i >= 0; i--) {
        if (oshape[i] == 1) continue;
        if (m > 0 && sa[i] == a[m - 1] * sh[m - 1] && sb[i] == b[m - 1] * sh[m - 1]) {
            sh[m - 1] *= oshape[i];
            continue;
        }
        sh[m] = oshape[i];
        a[m] = sa[i];
        b[m] = sb[i];
        m++;
    }
    if (m == 0) { /* one element (or none): a single dim of size 1 */
        sh[0] = 1;
        a[0] = b[0] = 0;
        m = 1;
    }
    g->m = m;
    for (int i = 0; i < m; i++) {
        g->shape[i] = sh[m - 1 - i];
        g->sa[i] = a[m - 1 - i];
        g->sb[i] = b[m - 1 - i];
    }
}

/* One inner run of len elements: po[k] = OP(pa[k * isa], pb[k * isb]), with
 * the common stride patterns spelled out so the compiler vectorises them. */
#define BIN_RUN(OP)                                                                        \
    do {                                                                                   \
        if (isa == 1 && isb == 1) {                                                        \
            for (int64_t k = 0; k < len; k++) po[k] = OP(pa[k], pb[k]);                     \
        } else if (isa == 1 && isb == 0) {                                                 \
            const T y_ = pb[0];                                                            \
            for (int64_t k = 0; k < len; k++) po[k] = OP(pa[k], y_);                        \
        } else if (isa == 0 && isb == 1) {                                                 \
            const T x_ = pa[0];                                                            \
            for (int64_t k = 0; k < len; k++) po[k] = OP(x_, pb[k]);                        \
        } else {                                                                           \
            for (int64_t k = 0; k < len; k++) po[k] = OP(pa[k * isa], pb[k * isb]);         \
        }                                                                                  \
    } while (0)

#define OP_ADD(x, y) ((x) + (y))
#define OP_SUB(x, y) ((x) - (y))
#define OP_MUL(x, y) ((x) * (y))
#define OP_DIV(x, y) ((x) / (y))
#define OP_ADD_ALPHA(x, y) ((x) + al * (y)) /* al: alpha in the operands' dtype, as PyTorch */

/* ---- kernel ---- */
/* out = OP(a, b) over geometry g; a and b are read through g's strides. */
// out: (n), a: strided by g->sa, b: strided by g->sb; alpha: BIN_ADD_ALPHA's scale
static void binary_forward(bin_kind kind, nb_dtype dtype, void *out, const void *a, const void *b, int64_t n,
                           const bcast_geom *g, double alpha) {
    if (n == 0) return;
    const int m = g->m;
    const int64_t inner = g->shape[m - 1], isa = g->sa[m - 1], isb = g->sb[m - 1];
    const int64_t nchunks = (n + NBI_EW_CHUNK - 1) / NBI_EW_CHUNK;
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = out;
        const T *A = a, *B = b;
        const T al = (T)alpha;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t e = c * NBI_EW_CHUNK, e1 = e + NBI_EW_CHUNK < n ? e + NBI_EW_CHUNK : n;
            /* Position of element e: column within the inner dim, index of
             * the outer dims, and the operands' offsets there. */
            int64_t col = e % inner, rem = e / inner, idx[NB_MAX_DIMS], oa = 0, ob = 0;
            for (int d = m - 2; d >= 0; d--) {
                idx[d] = rem % g->shape[d];
                rem /= g->shape[d];
                oa += idx[d] * g->sa[d];
                ob += idx[d] * g->sb[d];
            }
            while (e < e1) {
                int64_t len = inner - col < e1 - e ? inner - col : e1 - e;
                T *po = o + e;
                const T *pa = A + oa + col * isa, *pb = B + ob + col * isb;
                switch (kind) {
                case BIN_ADD: BIN_RUN(OP_ADD); break;
                case BIN_SUB: BIN_RUN(OP_SUB); break;
                case BIN_MUL: BIN_RUN(OP_MUL); break;
                case BIN_DIV: BIN_RUN(OP_DIV); break;
                case BIN_ADD_ALPHA: BIN_RUN(OP_ADD_ALPHA); break;
                }
                e += len;
                col = 0;
                /* next row: advance the outer index like an odometer */
                for (int d = m - 2; d >= 0; d--) {
                    oa += g->sa[d];
                    ob += g->sb[d];
                    if (++idx[d] < g->shape[d]) break;
                    oa -= g->sa[d] * g->shape[d];
                    ob -= g->sb[d] * g->shape[d];
                    idx[d] = 0;
                }
            }
        }
    });
}

/* ---- check: dtypes and broadcast shapes; the geometry ---- */
static bool binary_check(const char *name, const nb_tensor *a, const nb_tensor *b, bcast_geom *g) {
    if (!nbi_check_tensor(name, "a", a) || !nbi_check_tensor(name, "b", b)) return false;
    if (!nbi_check_same_dtype(name, a, b)) return false;
    if (a->dtype != NB_F32 && a->dtype != NB_F64) {
        nbi_error(NB_ERR_DTYPE, "%s: expected float32 or float64 tensors, but got %s (integer tensors are not supported)",
                  name, nb_dtype_name(a->dtype));
        return false;
    }
    int n;
    int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
    if (nbi_broadcast_shape(name, a->ndim, a->shape, b->ndim, b->shape, &n, g->out_shape) != NB_OK) return false;
    g->ndim = n;
    broadcast_strides(a, n, sa);
    broadcast_strides(b, n, sb);
    simplify(g, n, g->out_shape, sa, sb);
    return true;
}

/* ---- autograd: gradients summed back to each operand's shape ---- */
/* *gin = full summed to in's shape; takes over full (NULL: an earlier failure). */
static nb_status reduce_into(nb_tensor **gin, nb_tensor *full, const nb_tensor *in) {
    if (!full) return nb_last_status();
    *gin = nbi_sum_to_shape(full, in->ndim, in->shape);
    nbi_release(full);
    return *gin ? NB_OK : nb_last_status();
}

static nb_status add_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    for (int i = 0; i < 2; i++) {
        if (!nbi_node_needs_grad(node, i)) continue;
        const nb_tensor *in = node->inputs[i];
        gin[i] = nbi_sum_to_shape(gout, in->ndim, in->shape);
        if (!gin[i]) return nb_last_status();
    }
    return NB_OK;
}

static nb_status sub_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *a = node->inputs[0], *b = node->inputs[1];
    if (nbi_node_needs_grad(node, 0)) {
        gin[0] = nbi_sum_to_shape(gout, a->ndim, a->shape);
        if (!gin[0]) return nb_last_status();
    }
    if (nbi_node_needs_grad(node, 1)) {
        /* reduce first, negate the (smaller) result */
        nb_tensor *r = nbi_sum_to_shape(gout, b->ndim, b->shape);
        if (!r) return nb_last_status();
        gin[1] = nbi_own(nb_neg(r));
        nbi_release(r);
        if (!gin[1]) return nb_last_status();
    }
    return NB_OK;
}

static nb_status mul_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *a = node->inputs[0], *b = node->inputs[1];
    nb_status st = NB_OK;
    if (nbi_node_needs_grad(node, 0)) st = reduce_into(&gin[0], nbi_own(nb_mul(gout, b)), a);
    if (st == NB_OK && nbi_node_needs_grad(node, 1)) st = reduce_into(&gin[1], nbi_own(nb_mul(gout, a)), b);
    return st;
}

static nb_status div_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *a = node->inputs[0], *b = node->inputs[1];
    nb_status st = NB_OK;
    if (nbi_node_needs_grad(node, 0)) st = reduce_into(&gin[0], nbi_own(nb_div(gout, b)), a);
    if (st == NB_OK && nbi_node_needs_grad(node, 1)) {
        /* PyTorch's formula: -g * ((a / b) / b) */
        nb_tensor *q = nbi_own(nb_div(a, b));
        nb_tensor *q2 = q ? nbi_own(nb_div(q, b)) : NULL;
        nb_tensor *p = q2 ? nbi_own(nb_mul(gout, q2)) : NULL;
        nb_tensor *ng = p ? nbi_own(nb_neg(p)) : NULL;
        nbi_release(q);
        nbi_release(q2);
        nbi_release(p);
        st = reduce_into(&gin[1], ng, b);
    }
    return st;
}

/* a + alpha * b: g to a, g * alpha to b (multiplied before the sum, as PyTorch) */
typedef struct { double alpha; } alpha_ctx;

static nb_status add_alpha_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *a = node->inputs[0], *b = node->inputs[1];
    nb_status st = NB_OK;
    if (nbi_node_needs_grad(node, 0) && !(gin[0] = nbi_sum_to_shape(gout, a->ndim, a->shape))) st = nb_last_status();
    if (st == NB_OK && nbi_node_needs_grad(node, 1))
        st = reduce_into(&gin[1], nbi_own(nb_mul_scalar(gout, ((const alpha_ctx *)node->ctx)->alpha)), b);
    return st;
}

static const nbi_op add_op = {"add", add_grad_fn, NULL};
static const nbi_op sub_op = {"sub", sub_grad_fn, NULL};
static const nbi_op mul_op = {"mul", mul_grad_fn, NULL};
static const nbi_op div_op = {"div", div_grad_fn, NULL};
static const nbi_op add_alpha_op = {"add", add_alpha_grad_fn, NULL};
static const nbi_op sub_alpha_op = {"sub", add_alpha_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
static nb_tensor *binary(const nbi_op *op, bin_kind kind, const nb_tensor *a, const nb_tensor *b, double alpha) {
    bcast_geom g;
    if (!binary_check(op->name, a, b, &g)) return NULL;
    nb_tensor *y = nbi_empty(a->dtype, g.ndim, g.out_shape);
    if (y) binary_forward(kind, a->dtype, nbi_data(y), nbi_data(a), nbi_data(b), y->numel, &g, alpha);
    const alpha_ctx c = {alpha};
    return nbi_finish_op(y, op, NBI_INPUTS(a, b), NULL, 0, kind == BIN_ADD_ALPHA ? &c : NULL,
                         kind == BIN_ADD_ALPHA ? sizeof c : 0);
}

nb_tensor *nb_add(const nb_tensor *a, const nb_tensor *b) { return binary(&add_op, BIN_ADD, a, b, 0); }
nb_tensor *nb_sub(const nb_tensor *a, const nb_tensor *b) { return binary(&sub_op, BIN_SUB, a, b, 0); }
nb_tensor *nb_mul(const nb_tensor *a, const nb_tensor *b) { return binary(&mul_op, BIN_MUL, a, b, 0); }
nb_tensor *nb_div(const nb_tensor *a, const nb_tensor *b) { return binary(&div_op, BIN_DIV, a, b, 0); }
/* sub with alpha is add with -alpha: a + (-alpha) * b is a - alpha * b exactly. */
nb_tensor *nb_add_alpha(const nb_tensor *a, const nb_tensor *b, double alpha) {
    return binary(&add_alpha_op, BIN_ADD_ALPHA, a, b, alpha);
}
nb_tensor *nb_sub_alpha(const nb_tensor *a, const nb_tensor *b, double alpha) {
    return binary(&sub_alpha_op, BIN_ADD_ALPHA, a, b, -alpha);
}
