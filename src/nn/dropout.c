/* F.dropout (inverted dropout). In training each element is kept with
 * probability 1 - p and scaled by 1/(1-p); the mask is drawn from the rng on
 * one thread in element order, so a seed gives the same mask at any thread
 * count. The mask (one byte per element, pool memory) is saved for backward.
 *
 * Drawing: each element compares a uniform u in [0, 1) with p (kept when
 * u >= p). One 64-bit draw gives the leading 16 bits of u for four elements;
 * only when those bits equal p's leading 16 bits (probability 2^-16) is the
 * comparison undecided, and then a fresh nb_rng_uniform gives u's remaining
 * bits. So every element is kept with probability 1 - p exactly as with one
 * nb_rng_uniform per element (to 2^-53), at about a quarter of the draws. */
#include "nn_util.h"

#include <math.h>
#include <string.h>

/* ---- check (shared with the Dropout module) ---- */
bool nbi_dropout_check_p(const char *op, double p) {
    if (!(p >= 0 && p <= 1)) {
        nbi_error(NB_ERR_ARG, "%s: dropout probability has to be between 0 and 1, but got %g", op, p);
        return false;
    }
    return true;
}

static bool dropout_check(const nb_tensor *x, double p) {
    return nbi_check_float("dropout", "input", x) && nbi_dropout_check_p("dropout", p);
}

/* ---- kernels ---- */
/* mask[i] = (u_i >= p) for n uniforms u_i, 16 leading bits at a time (see top). */
static void draw_mask(uint8_t *mask, int64_t n, double p, nb_rng *rng) {
    if (p >= 1) { /* u < 1 <= p: nothing is kept */
        memset(mask, 0, (size_t)n);
        return;
    }
    double P = ldexp(p, 16);            /* p * 2^16, exact */
    uint32_t hi = (uint32_t)floor(P);   /* p's leading 16 bits, < 2^16 */
    double frac = P - (double)hi;       /* p's remaining bits, in [0, 1), exact */
    int64_t i = 0;
    while (i < n) {
        uint64_t r = nb_rng_next(rng);
        for (int k = 0; k < 4 && i < n; k++, i++) {
            uint32_t u16 = (uint32_t)(r >> (48 - 16 * k)) & 0xffff;  /* most significant bits first */
            /* u = (u16 + v) / 2^16 with v uniform in [0, 1): u >= p iff
             * u16 > hi, or u16 == hi and v >= frac */
            mask[i] = u16 > hi || (u16 == hi && nb_rng_uniform(rng) >= frac);
        }
    }
}

// y: (n), x: (n), mask: (n)
static void dropout_forward(nb_dtype dtype, void *y, const void *x, const uint8_t *mask, int64_t n, double scale) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *X = x;
        const T s = (T)scale;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) Y[i] = X[i] * (mask[i] ? s : (T)0); /* x * 0 as PyTorch: NaN stays NaN */
    });
}

// dx: (n), dy: (n), mask: (n)
static void dropout_backward(nb_dtype dtype, void *dx, const void *dy, const uint8_t *mask, int64_t n, double scale) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        const T s = (T)scale;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) dX[i] = dY[i] * (mask[i] ? s : (T)0);
    });
}

/* ---- autograd: saved[0] is the mask (one byte per element of x) ---- */
typedef struct { double scale; } dropout_ctx;   /* 1/(1-p), 0 when p == 1 */

static nb_status dropout_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const dropout_ctx *c = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    dropout_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]), gout->numel, c->scale);
    return NB_OK;
}

static nb_status identity_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    (void)node;
    gin[0] = nbi_retain((nb_tensor *)gout);
    return NB_OK;
}

static const nbi_op dropout_op = {"dropout", dropout_grad_fn, NULL};
static const nbi_op dropout_identity_op = {"dropout", identity_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_dropout(const nb_tensor *x, double p, bool training, nb_rng *rng) {
    if (!dropout_check(x, p)) return NULL;
    if (!training || p == 0) { /* identity: a new view of x, recorded so gradients pass through */
        nb_tensor *v = nbi_make_view(x, x->ndim, x->shape, x->strides, x->offset);
        return nbi_finish_op(v, &dropout_identity_op, NBI_INPUTS(x), NULL, 0, NULL, 0);
    }
    if (!rng) rng = nb_default_rng();
    nb_tensor *mask = nbi_empty_bytes("dropout", x->numel);
    if (!mask) return NULL;
    draw_mask(nbi_data(mask), x->numel, p, rng);
    const dropout_ctx c = {p == 1 ? 0.0 : 1.0 / (1.0 - p)};
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty_like(x) : NULL;
    if (y) dropout_forward(x->dtype, nbi_data(y), nbi_data(xc), nbi_data(mask), x->numel, c.scale);
    nbi_release(xc);
    return nbi_finish_op(y, &dropout_op, NBI_INPUTS(x), NBI_SAVED(mask), &c, sizeof c);
}
