/* Elementwise activations of torch.nn.functional not in ops.h: leaky_relu.
 * Backward uses the saved input: dy where x > 0, slope * dy elsewhere (as
 * PyTorch's leaky_relu_backward, so the gradient at 0 is slope * dy). */
#include "nn_util.h"

#include <math.h>

typedef struct {
    nb_tensor *x;   /* contiguous input */
    double slope;
} leaky_ctx;

static void leaky_free(void *p) {
    leaky_ctx *c = p;
    nbi_release(c->x);
    free(c);
}

static nb_status leaky_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const leaky_ctx *c = node->ctx;
    nb_tensor *gx = nbi_empty(gout->dtype, gout->ndim, gout->shape);
    if (!gx) return nb_last_status();
    int64_t n = gout->numel;
    NBI_DISPATCH_FLOAT(gout->dtype, {
        const T *X = nbi_data(c->x), *dy = nbi_data(gout);
        T *dx = nbi_data(gx);
        const T s = (T)c->slope;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) dx[i] = X[i] > 0 ? dy[i] : dy[i] * s;
    });
    gin[0] = gx;
    return NB_OK;
}

static const nbi_op leaky_op = {"leaky_relu", leaky_backward, leaky_free};

nb_tensor *nb_leaky_relu(const nb_tensor *x, double negative_slope) {
    const char *op = "leaky_relu";
    if (!nbi_check_float(op, "input", x)) return NULL;
    if (!isfinite(negative_slope)) {
        nbi_error(NB_ERR_ARG, "leaky_relu: expected a finite negative_slope, but got %g", negative_slope);
        return NULL;
    }
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty(x->dtype, x->ndim, x->shape) : NULL;
    if (!y) {
        nbi_release(xc);
        return NULL;
    }
    int64_t n = x->numel;
    NBI_DISPATCH_FLOAT(x->dtype, {
        const T *X = nbi_data(xc);
        T *Y = nbi_data(y);
        const T s = (T)negative_slope;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) Y[i] = X[i] > 0 ? X[i] : X[i] * s;
    });
    nb_tensor *in = (nb_tensor *)x;
    leaky_ctx *ctx = NULL;
    if (nbi_should_record(&in, 1)) {
        if (!(ctx = nnu_alloc(op, sizeof *ctx))) {
            nbi_release(xc);
            nb_tensor_release(y);
            return NULL;
        }
        *ctx = (leaky_ctx){xc, negative_slope};
        xc = NULL;
    }
    nbi_release(xc);
    return nbi_finish(y, &leaky_op, &in, 1, ctx);
}
