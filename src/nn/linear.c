/* F.linear: y = x W^T + b over the last dim of x, on the internal GEMM.
 * Backward: dX = dY W, dW = dY^T X, db = column sums of dY. Every output
 * element is summed in a fixed order (the GEMM never splits K; bias sums run
 * over rows in order), so results do not depend on the thread count. */
#include "nn_util.h"

/* ---- check ---- */
typedef struct {
    int64_t M, in, out;            /* x viewed as (M, in), y as (M, out) */
    int ndim;                      /* y's shape: x's with the last dim out */
    int64_t shape[NB_MAX_DIMS];
} linear_geom;

static bool linear_check(const nb_tensor *x, const nb_tensor *weight, const nb_tensor *bias, linear_geom *g) {
    const char *op = "linear";
    char s1[128], s2[128];
    if (!nbi_check_float(op, "input", x) || !nbi_check_float(op, "weight", weight)) return false;
    if (bias && !nbi_check_float(op, "bias", bias)) return false;
    if (x->dtype != weight->dtype || (bias && bias->dtype != x->dtype)) {
        const nb_tensor *o = x->dtype != weight->dtype ? weight : bias;
        nbi_error(NB_ERR_DTYPE, "linear: expected scalar type %s but found %s (input is %s)",
                  x->dtype == NB_F32 ? "Float" : "Double", o->dtype == NB_F32 ? "Float" : "Double",
                  nb_dtype_name(x->dtype));
        return false;
    }
    if (x->ndim < 1) {
        nbi_error(NB_ERR_SHAPE, "linear: both arguments to matmul need to be at least 1D, but they are 0D and %dD",
                  weight->ndim);
        return false;
    }
    if (weight->ndim != 2) {
        nbi_error(NB_ERR_SHAPE, "linear: expected weight of shape [out_features, in_features], but got %s",
                  nnu_shape(weight, s1, sizeof s1));
        return false;
    }
    int64_t in = x->shape[x->ndim - 1], out = weight->shape[0];
    int64_t M = in ? x->numel / in : nbi_numel(x->ndim - 1, x->shape);
    if (weight->shape[1] != in) {
        nbi_error(NB_ERR_SHAPE, "linear: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and %lldx%lld)",
                  (long long)M, (long long)in, (long long)weight->shape[1], (long long)out);
        return false;
    }
    if (bias && !(bias->ndim == 1 && bias->shape[0] == out)) {
        nbi_error(NB_ERR_SHAPE, "linear: expected bias of shape [%lld] (out_features), but got %s", (long long)out,
                  nnu_shape(bias, s2, sizeof s2));
        return false;
    }
    *g = (linear_geom){.M = M, .in = in, .out = out, .ndim = x->ndim};
    for (int i = 0; i < x->ndim - 1; i++) g->shape[i] = x->shape[i];
    g->shape[x->ndim - 1] = out;
    return true;
}

/* ---- kernels ---- */
// y: (M, out), x: (M, in), w: (out, in), b: (out) or NULL
static void linear_forward(nb_dtype dtype, void *y, const void *x, const void *w, const void *b, int64_t M, int64_t in,
                           int64_t out) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *X = x, *W = w;
        T beta = 0;
        if (b) {                           // start every row at b, then Y += X W^T
            const T *B = b;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < out; j++) Y[i * out + j] = B[j];
            beta = 1;
        }
        if (sizeof(T) == 4) nbi_sgemm(false, true, M, out, in, 1.0f, (const float *)X, in, (const float *)W, in, (float)beta, (float *)Y, out);
        else nbi_dgemm(false, true, M, out, in, 1.0, (const double *)X, in, (const double *)W, in, (double)beta, (double *)Y, out);
    });
}

/* Bias gradient columns per parallel block: each block of columns walks
 * the rows of dY once, in order (cache friendly and thread-count free). */
#define BIAS_BLOCK 256

/* Each of dx, dw, db may be NULL (not wanted). */
// dx: (M, in), dw: (out, in), db: (out), dy: (M, out), x: (M, in), w: (out, in)
static void linear_backward(nb_dtype dtype, void *dx, void *dw, void *db, const void *dy, const void *x,
                            const void *w, int64_t M, int64_t in, int64_t out) {
    NBI_DISPATCH_FLOAT(dtype, {
        const T *dY = dy, *X = x, *W = w;
        if (dx) {                          // dX (M, in) = dY (M, out) . W (out, in)
            if (sizeof(T) == 4) nbi_sgemm(false, false, M, in, out, 1.0f, (const float *)dY, out, (const float *)W, in, 0.0f, (float *)dx, in);
            else nbi_dgemm(false, false, M, in, out, 1.0, (const double *)dY, out, (const double *)W, in, 0.0, (double *)dx, in);
        }
        if (dw) {                          // dW (out, in) = dY^T (out, M) . X (M, in)
            if (sizeof(T) == 4) nbi_sgemm(true, false, out, in, M, 1.0f, (const float *)dY, out, (const float *)X, in, 0.0f, (float *)dw, in);
            else nbi_dgemm(true, false, out, in, M, 1.0, (const double *)dY, out, (const double *)X, in, 0.0, (double *)dw, in);
        }
        if (db) {                          // db (out) = sum over rows of dY
            T *dB = db;
            int64_t nblk = (out + BIAS_BLOCK - 1) / BIAS_BLOCK;
            _Pragma("omp parallel for schedule(static) if (M * out > NBI_PAR_MIN)")
            for (int64_t bk = 0; bk < nblk; bk++) {
                int64_t j0 = bk * BIAS_BLOCK, j1 = j0 + BIAS_BLOCK < out ? j0 + BIAS_BLOCK : out;
                T acc[BIAS_BLOCK] = {0};
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = j0; j < j1; j++) acc[j - j0] += dY[i * out + j];
                for (int64_t j = j0; j < j1; j++) dB[j] = acc[j - j0];
            }
        }
    });
}

/* ---- autograd: ctx is the linear_geom; saved: x and weight (contiguous) ---- */
static nb_status linear_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const linear_geom *g = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    linear_backward(gout->dtype, nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]), nbi_data_or_null(gin[2]),
                    nbi_data(gout), nbi_data(node->saved[0]), nbi_data(node->saved[1]), g->M, g->in, g->out);
    return NB_OK;
}

static const nbi_op linear_op = {"linear", linear_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_linear(const nb_tensor *x, const nb_tensor *weight, const nb_tensor *bias) {
    linear_geom g;
    if (!linear_check(x, weight, bias, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x), *wc = xc ? nbi_contiguous_data(weight) : NULL;
    nb_tensor *bc = wc && bias ? nbi_contiguous_data(bias) : NULL;
    nb_tensor *y = wc && (bc || !bias) ? nbi_empty(x->dtype, g.ndim, g.shape) : NULL;
    if (y) linear_forward(x->dtype, nbi_data(y), nbi_data(xc), nbi_data(wc), nbi_data_or_null(bc), g.M, g.in, g.out);
    nbi_release(bc);
    return nbi_finish_op(y, &linear_op, NBI_INPUTS(x, weight, bias), NBI_SAVED(xc, wc), &g, sizeof g);
}
