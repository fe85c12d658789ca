/* F.leaky_relu: y = x if x > 0 else negative_slope * x. Backward uses the
 * saved input: dy where x > 0, slope * dy elsewhere (PyTorch's
 * leaky_relu_backward, so the gradient at 0 is slope * dy).
 *
 * The canonical example of an op's shape (docs/ops.md): check, kernels,
 * grad_fn, public function, in that order. */
#include "nn_util.h"

#include <math.h>

/* ---- check: arguments in PyTorch's order and words ---- */
static bool leaky_relu_check(const nb_tensor *x, double negative_slope) {
    if (!nbi_check_float("leaky_relu", "input", x)) return false;
    if (!isfinite(negative_slope)) {
        nbi_error(NB_ERR_ARG, "leaky_relu: expected a finite negative_slope, but got %g", negative_slope);
        return false;
    }
    return true;
}

/* ---- kernels ---- */
// y: (n), x: (n)
static void leaky_relu_forward(nb_dtype dtype, void *y, const void *x, int64_t n, double negative_slope) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *X = x;
        const T s = (T)negative_slope;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) Y[i] = X[i] > 0 ? X[i] : X[i] * s;
    });
}

// dx: (n), dy: (n), x: (n)
static void leaky_relu_backward(nb_dtype dtype, void *dx, const void *dy, const void *x, int64_t n,
                                double negative_slope) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy, *X = x;
        const T s = (T)negative_slope;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) dX[i] = X[i] > 0 ? dY[i] : dY[i] * s;
    });
}

/* ---- autograd: saved[0] is the contiguous input ---- */
typedef struct { double negative_slope; } leaky_relu_ctx;

static nb_status leaky_relu_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const leaky_relu_ctx *c = node->ctx;
    const nb_tensor *x = node->saved[0];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    leaky_relu_backward(x->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(x), x->numel, c->negative_slope);
    return NB_OK;
}

static const nbi_op leaky_relu_op = {"leaky_relu", leaky_relu_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_leaky_relu(const nb_tensor *x, double negative_slope) {
    if (!leaky_relu_check(x, negative_slope)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty_like(x) : NULL;
    if (y) leaky_relu_forward(x->dtype, nbi_data(y), nbi_data(xc), x->numel, negative_slope);
    const leaky_relu_ctx c = {negative_slope};
    return nbi_finish_op(y, &leaky_relu_op, NBI_INPUTS(x), NBI_SAVED(xc), &c, sizeof c);
}
