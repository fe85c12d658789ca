/* F.dropout (inverted dropout). In training each element is kept with
 * probability 1 - p and scaled by 1/(1-p); the mask is drawn from the rng on
 * one thread in element order, so a seed gives the same mask at any thread
 * count. The mask (one byte per element) is saved for backward. */
#include "nn_util.h"

typedef struct {
    uint8_t *mask;  /* 1 = kept, per element of x in row-major order */
    int64_t n;
    double scale;   /* 1/(1-p), 0 when p == 1 */
} dropout_ctx;

static void dropout_free(void *p) {
    dropout_ctx *c = p;
    free(c->mask);
    free(c);
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
    uint8_t *mask = malloc((size_t)(n ? n : 1));
    if (!mask) {
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    /* keep with probability 1 - p: u in [0, 1) kept when u >= p (never when p == 1) */
    for (int64_t i = 0; i < n; i++) mask[i] = nb_rng_uniform(rng) >= p;
    double scale = p == 1 ? 0.0 : 1.0 / (1.0 - p);
    nb_tensor *xc = nnu_contig(x);
    nb_tensor *y = xc ? nbi_empty(x->dtype, x->ndim, x->shape) : NULL;
    if (!y) {
        nbi_release(xc);
        free(mask);
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
            free(mask);
            nb_tensor_release(y);
            return NULL;
        }
        *ctx = (dropout_ctx){mask, n, scale};
    } else {
        free(mask);
    }
    return nbi_finish(y, &dropout_op, &in, 1, ctx);
}
