/* Reductions: sum and mean of all elements, sum / mean along one dim, with
 * their backward kernels (max / min along a dim: ops_argmax.c; several dims
 * at once: ops_reduce_dims.c).
 *
 * Determinism: a full sum adds fixed chunks of RED_CHUNK elements, each
 * sequentially in double, then combines the chunk sums in chunk order; a dim
 * reduction gives each output element to one task that walks the reduced dim
 * in increasing order. Neither order depends on the thread count.
 *
 * A dim reduction sees its (contiguous) input as (outer, size, inner) and its
 * output as (outer, inner). A task covers one outer index and a block of up to
 * RED_BLK inner positions, so the inner loop runs over adjacent memory. */
#include "reduce.h"

#include <math.h>
#include <stdlib.h>

#define RED_CHUNK 4096
#define RED_BLK NBI_RED_BLK

bool nbi_reduce_dim_check(const char *name, const nb_tensor *a, int dim, bool keepdim, nbi_dim_geom *g) {
    if (!nbi_check_float(name, "a", a)) return false;
    int d = nbi_dim(name, dim, a->ndim);
    if (d < 0) return false;
    *g = (nbi_dim_geom){.dim = d, .outer = 1, .size = 1, .inner = 1};
    for (int i = 0; i < a->ndim; i++) {
        if (i < d) g->outer *= a->shape[i];
        else if (i == d) g->size = a->shape[i];
        else g->inner *= a->shape[i];
        if (i != d) g->shape[g->ndim++] = a->shape[i];
        else if (keepdim) g->shape[g->ndim++] = 1;
    }
    return true;
}

/* ---- sum / mean of all elements ---- */
/* Sum of x[0..n) as a double, in fixed chunks combined in order. */
// x: (n)
static double sum_all(nb_dtype dtype, const void *x, int64_t n) {
    int64_t nchunk = (n + RED_CHUNK - 1) / RED_CHUNK;
    if (n == 0) return 0.0;
    double *part = malloc((size_t)nchunk * sizeof *part);
    double total = 0.0;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        if (!part) { /* out of memory for the partials: the same order, one thread */
            for (int64_t ch = 0; ch < nchunk; ch++) {
                double s = 0.0;
                int64_t end = (ch + 1) * RED_CHUNK < n ? (ch + 1) * RED_CHUNK : n;
                for (int64_t i = ch * RED_CHUNK; i < end; i++) s += X[i];
                total += s;
            }
        } else {
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
            for (int64_t ch = 0; ch < nchunk; ch++) {
                double s = 0.0;
                int64_t end = (ch + 1) * RED_CHUNK < n ? (ch + 1) * RED_CHUNK : n;
                for (int64_t i = ch * RED_CHUNK; i < end; i++) s += X[i];
                part[ch] = s;
            }
            for (int64_t ch = 0; ch < nchunk; ch++) total += part[ch];
        }
    });
    free(part);
    return total;
}

/* d(sum)/da = 1 and d(mean)/da = 1/n everywhere: broadcast gout into a's shape. */
static nb_status fill_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin, bool mean) {
    const nb_tensor *in = node->inputs[0];
    double g = gout->dtype == NB_F32 ? *(const float *)nbi_data(gout) : *(const double *)nbi_data(gout);
    /* divide in the tensor's own precision, as PyTorch does */
    if (mean) g = in->dtype == NB_F32 ? (double)((float)g / (float)in->numel) : g / (double)in->numel;
    gin[0] = nbi_own(nb_full(in->dtype, in->ndim, in->shape, g));
    return gin[0] ? NB_OK : nb_last_status();
}
static nb_status sum_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    return fill_grad_fn(node, gout, gin, false);
}
static nb_status mean_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    return fill_grad_fn(node, gout, gin, true);
}
static const nbi_op sum_op = {"sum", sum_grad_fn, NULL};
static const nbi_op mean_op = {"mean", mean_grad_fn, NULL};

static nb_tensor *reduce_all(const nbi_op *op, const nb_tensor *a, bool mean) {
    if (!nbi_check_float(op->name, "a", a)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(a);
    nb_tensor *y = xc ? nbi_empty(a->dtype, 0, NULL) : NULL;
    if (y) {
        double s = sum_all(a->dtype, nbi_data(xc), a->numel);
        if (mean) s = a->numel ? s / (double)a->numel : NAN; /* PyTorch: the mean of nothing is nan */
        NBI_DISPATCH_FLOAT(a->dtype, { *(T *)nbi_data(y) = (T)s; });
    }
    nbi_release(xc);
    return nbi_finish_op(y, op, NBI_INPUTS(a), NULL, 0, NULL, 0);
}

nb_tensor *nb_sum(const nb_tensor *a) { return reduce_all(&sum_op, a, false); }
nb_tensor *nb_mean(const nb_tensor *a) { return reduce_all(&mean_op, a, true); }

/* ---- sum / mean along a dim ---- */
/* out[o, j] = sum_k x[o, k, j] (divided by size for mean), accumulated in double. */
// out: (outer, inner), x: (outer, size, inner)
static void sum_dim_forward(nb_dtype dtype, void *out, const void *x, int64_t outer, int64_t size, int64_t inner,
                            bool mean) {
    int64_t nblk = (inner + RED_BLK - 1) / RED_BLK, ntask = outer * nblk, n = outer * size * inner;
    NBI_DISPATCH_FLOAT(dtype, {
        T *po = out;
        const T *px = x;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t t = 0; t < ntask; t++) {
            int64_t o = t / nblk, j0 = (t % nblk) * RED_BLK;
            int64_t jn = inner - j0 < RED_BLK ? inner - j0 : RED_BLK;
            double acc[RED_BLK] = {0};
            const T *xo = px + o * size * inner + j0;
            for (int64_t k = 0; k < size; k++)
                for (int64_t j = 0; j < jn; j++) acc[j] += xo[k * inner + j];
            for (int64_t j = 0; j < jn; j++) {
                double v = mean ? (size ? acc[j] / (double)size : NAN) : acc[j];
                po[o * inner + j0 + j] = (T)v;
            }
        }
    });
}

// dx: (outer, size, inner), dy: (outer, inner)
static void sum_dim_backward(nb_dtype dtype, void *dx, const void *dy, int64_t outer, int64_t size, int64_t inner,
                             bool mean) {
    int64_t n = outer * size * inner;
    NBI_DISPATCH_FLOAT(dtype, {
        T *pg = dx;
        const T *pout = dy;
        T scale = mean ? (T)1 / (T)size : (T)1;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t r = 0; r < outer * size; r++) {
            int64_t o = r / size;
            for (int64_t j = 0; j < inner; j++)
                pg[r * inner + j] = mean ? pout[o * inner + j] * scale : pout[o * inner + j];
        }
    });
}

/* ctx: the nbi_dim_geom */
static nb_status sum_dim_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nbi_dim_geom *g = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    sum_dim_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), g->outer, g->size, g->inner, g->mean);
    return NB_OK;
}
static const nbi_op sum_dim_op = {"sum_dim", sum_dim_grad_fn, NULL};
static const nbi_op mean_dim_op = {"mean_dim", sum_dim_grad_fn, NULL};

static nb_tensor *reduce_dim(const nbi_op *op, const nb_tensor *a, int dim, bool keepdim, bool mean) {
    nbi_dim_geom g;
    if (!nbi_reduce_dim_check(op->name, a, dim, keepdim, &g)) return NULL;
    g.mean = mean;
    nb_tensor *xc = nbi_contiguous_data(a);
    nb_tensor *y = xc ? nbi_empty(a->dtype, g.ndim, g.shape) : NULL;
    if (y) sum_dim_forward(a->dtype, nbi_data(y), nbi_data(xc), g.outer, g.size, g.inner, mean);
    nbi_release(xc);
    return nbi_finish_op(y, op, NBI_INPUTS(a), NULL, 0, &g, sizeof g);
}

nb_tensor *nb_sum_dim(const nb_tensor *a, int dim, bool keepdim) { return reduce_dim(&sum_dim_op, a, dim, keepdim, false); }
nb_tensor *nb_mean_dim(const nb_tensor *a, int dim, bool keepdim) { return reduce_dim(&mean_dim_op, a, dim, keepdim, true); }
