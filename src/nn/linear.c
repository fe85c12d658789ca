/* F.linear: y = x W^T + b over the last dim of x, on the internal GEMM.
 * Backward: dX = dY W, dW = dY^T X, db = column sums of dY. Every output
 * element is summed in a fixed order (the GEMM never splits K; bias sums run
 * over rows in order), so results do not depend on the thread count. */
#include "nn_util.h"

typedef struct {
    nb_tensor *x;  /* contiguous x, viewed as (M, in) */
    nb_tensor *w;  /* contiguous weight (out, in) */
    int64_t M, in, out;
} linear_ctx;

static void linear_free(void *p) {
    linear_ctx *c = p;
    nbi_release(c->x);
    nbi_release(c->w);
    free(c);
}

/* Bias gradient columns per parallel block: each block of columns walks
 * the rows of dY once, in order (cache friendly and thread-count free). */
#define BIAS_BLOCK 256

static nb_status linear_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    linear_ctx *c = node->ctx;
    int64_t M = c->M, in = c->in, out = c->out;
    const nb_tensor *x = node->inputs[0], *w = node->inputs[1], *b = node->inputs[2];
    nb_tensor *gx = NULL, *gw = NULL, *gb = NULL;
    if (nbi_node_needs_grad(node, 0) && !(gx = nbi_empty(x->dtype, x->ndim, x->shape))) goto fail;
    if (nbi_node_needs_grad(node, 1) && !(gw = nbi_empty(w->dtype, w->ndim, w->shape))) goto fail;
    if (b && nbi_node_needs_grad(node, 2) && !(gb = nbi_empty(b->dtype, b->ndim, b->shape))) goto fail;
    NBI_DISPATCH_FLOAT(gout->dtype, {
        const T *dy = nbi_data(gout);      // dy: (M, out)
        const T *X = nbi_data(c->x);       // X: (M, in)
        const T *W = nbi_data(c->w);       // W: (out, in)
        if (gx) {                          // dX (M, in) = dY (M, out) . W (out, in)
            T *dx = nbi_data(gx);
            if (sizeof(T) == 4) nbi_sgemm(false, false, M, in, out, 1.0f, (const float *)dy, out, (const float *)W, in, 0.0f, (float *)dx, in);
            else nbi_dgemm(false, false, M, in, out, 1.0, (const double *)dy, out, (const double *)W, in, 0.0, (double *)dx, in);
        }
        if (gw) {                          // dW (out, in) = dY^T (out, M) . X (M, in)
            T *dw = nbi_data(gw);
            if (sizeof(T) == 4) nbi_sgemm(true, false, out, in, M, 1.0f, (const float *)dy, out, (const float *)X, in, 0.0f, (float *)dw, in);
            else nbi_dgemm(true, false, out, in, M, 1.0, (const double *)dy, out, (const double *)X, in, 0.0, (double *)dw, in);
        }
        if (gb) {
            T *db = nbi_data(gb);          // db: (out) = sum over rows of dY
            int64_t nblk = (out + BIAS_BLOCK - 1) / BIAS_BLOCK;
            _Pragma("omp parallel for schedule(static) if (M * out > NBI_PAR_MIN)")
            for (int64_t bk = 0; bk < nblk; bk++) {
                int64_t j0 = bk * BIAS_BLOCK, j1 = j0 + BIAS_BLOCK < out ? j0 + BIAS_BLOCK : out;
                T acc[BIAS_BLOCK] = {0};
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = j0; j < j1; j++) acc[j - j0] += dy[i * out + j];
                for (int64_t j = j0; j < j1; j++) db[j] = acc[j - j0];
            }
        }
    });
    gin[0] = gx;
    gin[1] = gw;
    gin[2] = gb;
    return NB_OK;
fail:
    nbi_release(gx);
    nbi_release(gw);
    nbi_release(gb);
    return nb_last_status();
}

static const nbi_op linear_op = {"linear", linear_backward, linear_free};

nb_tensor *nb_linear(const nb_tensor *x, const nb_tensor *weight, const nb_tensor *bias) {
    const char *op = "linear";
    char s1[128], s2[128];
    if (!nbi_check_float(op, "input", x) || !nbi_check_float(op, "weight", weight)) return NULL;
    if (bias && !nbi_check_float(op, "bias", bias)) return NULL;
    if (x->dtype != weight->dtype || (bias && bias->dtype != x->dtype)) {
        const nb_tensor *o = x->dtype != weight->dtype ? weight : bias;
        nbi_error(NB_ERR_DTYPE, "linear: expected scalar type %s but found %s (input is %s)",
                  x->dtype == NB_F32 ? "Float" : "Double", o->dtype == NB_F32 ? "Float" : "Double",
                  nb_dtype_name(x->dtype));
        return NULL;
    }
    if (x->ndim < 1) {
        nbi_error(NB_ERR_SHAPE, "linear: both arguments to matmul need to be at least 1D, but they are 0D and %dD",
                  weight->ndim);
        return NULL;
    }
    if (weight->ndim != 2) {
        nbi_error(NB_ERR_SHAPE, "linear: expected weight of shape [out_features, in_features], but got %s",
                  nnu_shape(weight, s1, sizeof s1));
        return NULL;
    }
    int64_t in = x->shape[x->ndim - 1], out = weight->shape[0];
    int64_t M = in ? x->numel / in : nbi_numel(x->ndim - 1, x->shape);
    if (weight->shape[1] != in) {
        nbi_error(NB_ERR_SHAPE, "linear: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and %lldx%lld)",
                  (long long)M, (long long)in, (long long)weight->shape[1], (long long)out);
        return NULL;
    }
    if (bias && !(bias->ndim == 1 && bias->shape[0] == out)) {
        nbi_error(NB_ERR_SHAPE, "linear: expected bias of shape [%lld] (out_features), but got %s", (long long)out,
                  nnu_shape(bias, s2, sizeof s2));
        return NULL;
    }
    int64_t shape[NB_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = out;
    nb_tensor *xc = nbi_contiguous_data(x), *wc = xc ? nbi_contiguous_data(weight) : NULL, *bc = wc && bias ? nbi_contiguous_data(bias) : NULL;
    nb_tensor *y = wc && (bc || !bias) ? nbi_empty(x->dtype, x->ndim, shape) : NULL;
    if (!y) goto fail;
    NBI_DISPATCH_FLOAT(x->dtype, {
        T *Y = nbi_data(y);                // Y: (M, out)
        const T *X = nbi_data(xc);         // X: (M, in)
        const T *W = nbi_data(wc);         // W: (out, in)
        T beta = 0;
        if (bc) {                          // start every row at b, then Y += X W^T
            const T *B = nbi_data(bc);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < out; j++) Y[i * out + j] = B[j];
            beta = 1;
        }
        if (sizeof(T) == 4) nbi_sgemm(false, true, M, out, in, 1.0f, (const float *)X, in, (const float *)W, in, (float)beta, (float *)Y, out);
        else nbi_dgemm(false, true, M, out, in, 1.0, (const double *)X, in, (const double *)W, in, (double)beta, (double *)Y, out);
    });
    nbi_release(bc);
    bc = NULL;
    nb_tensor *inputs[3] = {(nb_tensor *)x, (nb_tensor *)weight, (nb_tensor *)bias};
    linear_ctx *ctx = NULL;
    if (nbi_should_record(inputs, 3)) {
        if (!(ctx = nnu_alloc(op, sizeof *ctx))) {
            nb_tensor_release(y);
            y = NULL;
            goto fail;
        }
        *ctx = (linear_ctx){xc, wc, M, in, out};
        xc = wc = NULL;
    }
    nbi_release(xc);
    nbi_release(wc);
    return nbi_finish(y, &linear_op, inputs, 3, ctx);
fail:
    nbi_release(xc);
    nbi_release(wc);
    nbi_release(bc);
    return NULL;
}
