/* F.dropout (inverted dropout) and F.dropout2d (the same per channel). In
 * training each element is kept with
 * probability 1 - p and scaled by 1/(1-p). The mask comes from one 64-bit
 * draw of the rng: the elements go in fixed blocks of MASK_BLOCK, and block b
 * draws from its own xoshiro256** generator, seeded by nb_rng_seed(draw +
 * 4*b*0x9e3779b97f4a7c15) (the splitmix64 stream that nb_rng_seed(draw)
 * starts, four outputs per block, so no two blocks share a state). The
 * blocks are drawn by as many threads as there are, and a seed gives the same
 * mask at any thread count. (Drawn in element order on one thread, the mask
 * of the MNIST net's first dropout was the largest serial part of a
 * 2-thread step.) The mask (one byte per element, pool memory) is saved for
 * backward.
 *
 * Drawing: each element compares a uniform u in [0, 1) with p (kept when
 * u >= p). One 64-bit draw gives the leading 16 bits of u for four elements;
 * only when those bits equal p's leading 16 bits (probability 2^-16) is the
 * comparison undecided, and then a fresh draw of the block's generator gives
 * u's remaining bits. So every element is kept with probability 1 - p exactly
 * as with one uniform per element (to 2^-53), at about a quarter of the draws.
 *
 * F.dropout2d is PyTorch's feature dropout: one draw per (x[0], x[1]) pair,
 * the whole of x[i][j] kept (scaled) or zeroed, for input of any rank >= 2
 * (1.13 warns for ranks other than 4 and treats 3-d input as (N, C, L), i.e.
 * channel-wise 1-d dropout, and does just that; nabla does not print). */
#include "nn_kernels.h"
#include "nn_util.h"
#include "tensor/cpu.h"
#include "tensor/rng_next.h"

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
#define MASK_BLOCK 4096

/* mask[i] = (u_i >= p) for one block of n uniforms u_i from generator g, 16
 * leading bits at a time (see top). The state is in registers (the inline
 * step of rng_next.h); a draw whose four 16-bit values all differ from p's
 * leading bits hi (all but about 1 in 16384) is decided without a branch per
 * element, and one that has a tie goes element by element, drawing the tie's
 * remaining bits right then: the draws and the mask are the same as one
 * element at a time. */
static void draw_block(uint8_t *mask, int64_t n, uint32_t hi, double frac, nb_rng g) {
    int64_t i = 0;
    while (i < n) {
        uint64_t r = nbi_rng_next(&g);
        uint32_t u[4];
        for (int k = 0; k < 4; k++) u[k] = (uint32_t)(r >> (48 - 16 * k)) & 0xffff; /* most significant bits first */
        if (i + 4 <= n && u[0] != hi && u[1] != hi && u[2] != hi && u[3] != hi) {
            for (int k = 0; k < 4; k++) mask[i + k] = u[k] > hi;
            i += 4;
            continue;
        }
        for (int k = 0; k < 4 && i < n; k++, i++)
            /* u = (u16 + v) / 2^16 with v uniform in [0, 1): u >= p iff
             * u16 > hi, or u16 == hi and v >= frac */
            mask[i] = u[k] > hi || (u[k] == hi && nbi_rng_uniform(&g) >= frac);
    }
}

/* The mask of n elements from one draw of rng (see top). */
static void draw_mask(uint8_t *mask, int64_t n, double p, nb_rng *rng) {
    const uint64_t draw = nbi_rng_next(rng);
    if (p >= 1) { /* u < 1 <= p: nothing is kept */
        memset(mask, 0, (size_t)n);
        return;
    }
    const double P = ldexp(p, 16);          /* p * 2^16, exact */
    const uint32_t hi = (uint32_t)floor(P); /* p's leading 16 bits, < 2^16 */
    const double frac = P - (double)hi;     /* p's remaining bits, in [0, 1), exact */
    const int64_t blocks = (n + MASK_BLOCK - 1) / MASK_BLOCK;
    _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
    for (int64_t b = 0; b < blocks; b++) {
        nb_rng g;
        nb_rng_seed(&g, draw + (uint64_t)b * 4 * 0x9e3779b97f4a7c15ULL);
        draw_block(mask + b * MASK_BLOCK, n - b * MASK_BLOCK < MASK_BLOCK ? n - b * MASK_BLOCK : MASK_BLOCK, hi, frac,
                   g);
    }
}

// y: (n), x: (n), mask: (n)
static void dropout_forward(nb_dtype dtype, void *y, const void *x, const uint8_t *mask, int64_t n, double scale) {
    if (dtype == NB_F32) { /* the per-set kernel (kernels/dropout_f32.c); the loop below is its reference */
        NBI_CPU_PICK(nbi_dropout_f32_portable, nbi_dropout_f32_avx2, nbi_dropout_f32_avx512)->apply(y, x, mask, n, (float)scale);
        return;
    }
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
    if (dtype == NB_F32) {
        NBI_CPU_PICK(nbi_dropout_f32_portable, nbi_dropout_f32_avx2, nbi_dropout_f32_avx512)->apply(dx, dy, mask, n, (float)scale);
        return;
    }
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

/* ---- dropout2d: check, kernel (forward and backward are the same product), autograd ---- */
static bool dropout2d_check(const nb_tensor *x, double p, bool active) {
    if (!nbi_check_float("dropout2d", "input", x) || !nbi_dropout_check_p("dropout2d", p)) return false;
    if (active && x->ndim < 2) { /* only checked when dropping, as PyTorch */
        nbi_error(NB_ERR_SHAPE, "dropout2d: Feature dropout requires at least 2 dimensions in the input, but got %d",
                  x->ndim);
        return false;
    }
    return true;
}

/* out = in * (mask[plane] ? scale : 0) plane by plane: y from x, or dx from dy. */
// out: (planes, S), in: (planes, S), mask: (planes)
static void dropout2d_apply(nb_dtype dtype, void *out, const void *in, const uint8_t *mask, int64_t planes, int64_t S,
                            double scale) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *O = out;
        const T *I = in;
        _Pragma("omp parallel for schedule(static) if (planes * S > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            const T f = mask[pl] ? (T)scale : (T)0; /* x * 0 as PyTorch: NaN stays NaN */
            for (int64_t s = 0; s < S; s++) O[pl * S + s] = I[pl * S + s] * f;
        }
    });
}

/* saved[0] is the mask, one byte per plane */
static nb_status dropout2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const dropout_ctx *c = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    const nb_tensor *mask = node->saved[0];
    int64_t planes = gout->shape[0] * gout->shape[1];
    dropout2d_apply(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(mask), planes,
                    planes ? gout->numel / planes : 0, c->scale);
    return NB_OK;
}

static const nbi_op dropout2d_op = {"dropout2d", dropout2d_grad_fn, NULL};
static const nbi_op dropout2d_identity_op = {"dropout2d", identity_grad_fn, NULL};

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

nb_tensor *nb_dropout2d(const nb_tensor *x, double p, bool training, nb_rng *rng) {
    /* identity, without a draw, when not training, p == 0 or x is empty (as PyTorch) */
    bool active = training && p != 0 && x && x->numel > 0;
    if (!dropout2d_check(x, p, active)) return NULL;
    if (!active) {
        nb_tensor *v = nbi_make_view(x, x->ndim, x->shape, x->strides, x->offset);
        return nbi_finish_op(v, &dropout2d_identity_op, NBI_INPUTS(x), NULL, 0, NULL, 0);
    }
    if (!rng) rng = nb_default_rng();
    const int64_t planes = x->shape[0] * x->shape[1];
    nb_tensor *mask = nbi_empty_bytes("dropout2d", planes);
    if (!mask) return NULL;
    draw_mask(nbi_data(mask), planes, p, rng);
    const dropout_ctx c = {p == 1 ? 0.0 : 1.0 / (1.0 - p)};
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty_like(x) : NULL;
    if (y) dropout2d_apply(x->dtype, nbi_data(y), nbi_data(xc), nbi_data(mask), planes, x->numel / planes, c.scale);
    nbi_release(xc);
    return nbi_finish_op(y, &dropout2d_op, NBI_INPUTS(x), NBI_SAVED(mask), &c, sizeof c);
}
