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

typedef struct {
    uint8_t *mask;  /* 1 = kept, per element of x in row-major order */
    int64_t n;
    double scale;   /* 1/(1-p), 0 when p == 1 */
} dropout_ctx;

static void dropout_free(void *p) {
    dropout_ctx *c = p;
    nbi_free(c->mask, (size_t)(c->n ? c->n : 1));
    free(c);
}

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

static nb_status dropout_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const dropout_ctx *c = node->ctx;
    nb_tensor *gx = nbi_empty(gout->dtype, gout->ndim, gout->shape);
    if (!gx) return nb_last_status();
    int64_t n = c->n;
    NBI_DISPATCH_FLOAT(gout->dtype, {
        T *dx = nbi_data(gx);
        const T *dy = nbi_data(gout);
        const T scale = (T)c->scale;
        const uint8_t *m = c->mask;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (m[i] ? scale : (T)0);
    });
    gin[0] = gx;
    return NB_OK;
}

static nb_status identity_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    (void)node;
    gin[0] = nb_tensor_retain((nb_tensor *)gout);
    return NB_OK;
}

static const nbi_op dropout_op = {"dropout", dropout_backward, dropout_free};
static const nbi_op dropout_identity_op = {"dropout", identity_backward, NULL};

nb_tensor *nb_dropout(const nb_tensor *x, double p, bool training, nb_rng *rng) {
    const char *op = "dropout";
    if (!nbi_check_float(op, "input", x)) return NULL;
    if (!(p >= 0 && p <= 1)) {
        nbi_error(NB_ERR_ARG, "dropout: dropout probability has to be between 0 and 1, but got %g", p);
        return NULL;
    }
    nb_tensor *in = (nb_tensor *)x;
    if (!training || p == 0) { /* identity: a new view of x, recorded so gradients pass through */
        nb_tensor *v = nbi_make_view(x, x->ndim, x->shape, x->strides, x->offset);
        return nbi_finish(v, &dropout_identity_op, &in, 1, NULL);
    }
    if (!rng) rng = nb_default_rng();
    int64_t n = x->numel;
    uint8_t *mask = nbi_alloc((size_t)(n ? n : 1));
    if (!mask) {
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    draw_mask(mask, n, p, rng);
    double scale = p == 1 ? 0.0 : 1.0 / (1.0 - p);
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty(x->dtype, x->ndim, x->shape) : NULL;
    if (!y) {
        nbi_release(xc);
        nbi_free(mask, (size_t)(n ? n : 1));
        return NULL;
    }
    NBI_DISPATCH_FLOAT(x->dtype, {
        T *Y = nbi_data(y);
        const T *X = nbi_data(xc);
        const T s = (T)scale;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) Y[i] = X[i] * (mask[i] ? s : (T)0); /* x * 0 as PyTorch: NaN stays NaN */
    });
    nbi_release(xc);
    dropout_ctx *ctx = NULL;
    if (nbi_should_record(&in, 1)) {
        if (!(ctx = nnu_alloc(op, sizeof *ctx))) {
            nbi_free(mask, (size_t)(n ? n : 1));
            nb_tensor_release(y);
            return NULL;
        }
        *ctx = (dropout_ctx){mask, n, scale};
    } else {
        nbi_free(mask, (size_t)(n ? n : 1));
    }
    return nbi_finish(y, &dropout_op, &in, 1, ctx);
}
