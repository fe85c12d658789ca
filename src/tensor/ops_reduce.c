/* Reductions: sum and mean of all elements, sum / mean / max along one dim,
 * with their backward kernels.
 *
 * Determinism: a full sum adds fixed chunks of RED_CHUNK elements, each
 * sequentially in double, then combines the chunk sums in chunk order; a dim
 * reduction gives each output element to one task that walks the reduced dim
 * in increasing order. Neither order depends on the thread count.
 *
 * A dim reduction sees its (contiguous) input as (outer, size, inner) and its
 * output as (outer, inner). A task covers one outer index and a block of up to
 * RED_BLK inner positions, so the inner loop runs over adjacent memory. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#define RED_CHUNK 4096
#define RED_BLK 64

/* (outer, size, inner) of t around dim d; a 0-d tensor is (1, 1, 1). */
static void split_dims(const nb_tensor *t, int d, int64_t *outer, int64_t *size, int64_t *inner) {
    *outer = *size = *inner = 1;
    if (t->ndim == 0) return;
    for (int i = 0; i < d; i++) *outer *= t->shape[i];
    *size = t->shape[d];
    for (int i = d + 1; i < t->ndim; i++) *inner *= t->shape[i];
}

/* Output shape of reducing dim d of t. */
static int reduced_shape(const nb_tensor *t, int d, bool keepdim, int64_t *shape) {
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i != d) shape[n++] = t->shape[i];
        else if (keepdim) shape[n++] = 1;
    }
    return n;
}

/* ---- sum / mean of all elements ---- */
/* Sum of x[0..n) as a double, in fixed chunks combined in order. */
static double sum_all(const nb_tensor *c) {
    int64_t n = c->numel, nchunk = (n + RED_CHUNK - 1) / RED_CHUNK;
    if (n == 0) return 0.0;
    double *part = malloc((size_t)nchunk * sizeof *part);
    double total = 0.0;
    NBI_DISPATCH_FLOAT(c->dtype, {
        const T *x = nbi_data(c); // x: (n,)
        if (!part) { /* out of memory for the partials: the same order, one thread */
            for (int64_t ch = 0; ch < nchunk; ch++) {
                double s = 0.0;
                int64_t end = (ch + 1) * RED_CHUNK < n ? (ch + 1) * RED_CHUNK : n;
                for (int64_t i = ch * RED_CHUNK; i < end; i++) s += x[i];
                total += s;
            }
        } else {
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
            for (int64_t ch = 0; ch < nchunk; ch++) {
                double s = 0.0;
                int64_t end = (ch + 1) * RED_CHUNK < n ? (ch + 1) * RED_CHUNK : n;
                for (int64_t i = ch * RED_CHUNK; i < end; i++) s += x[i];
                part[ch] = s;
            }
            for (int64_t ch = 0; ch < nchunk; ch++) total += part[ch];
        }
    });
    free(part);
    return total;
}

/* d(sum)/da = 1 and d(mean)/da = 1/n everywhere: broadcast gout into a's shape. */
static nb_status fill_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin, bool mean) {
    const nb_tensor *in = node->inputs[0];
    double g = gout->dtype == NB_F32 ? *(const float *)nbi_data(gout) : *(const double *)nbi_data(gout);
    /* divide in the tensor's own precision, as PyTorch does */
    if (mean) g = in->dtype == NB_F32 ? (double)((float)g / (float)in->numel) : g / (double)in->numel;
    gin[0] = nb_full(in->dtype, in->ndim, in->shape, g);
    return gin[0] ? NB_OK : nb_last_status();
}
static nb_status sum_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    return fill_backward(node, gout, gin, false);
}
static nb_status mean_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    return fill_backward(node, gout, gin, true);
}
static const nbi_op sum_op = {"sum", sum_backward, NULL};
static const nbi_op mean_op = {"mean", mean_backward, NULL};

static nb_tensor *reduce_all(const char *name, const nb_tensor *a, bool mean) {
    if (!nbi_check_float(name, "a", a)) return NULL;
    nb_tensor *c = nbi_contiguous_data(a);
    if (!c) return NULL;
    double s = sum_all(c);
    nbi_release(c);
    if (mean) s = a->numel ? s / (double)a->numel : NAN; /* PyTorch: the mean of nothing is nan */
    nb_tensor *out = nb_scalar(a->dtype, s);
    nb_tensor *in = (nb_tensor *)a;
    return nbi_finish(out, mean ? &mean_op : &sum_op, &in, 1, NULL);
}

nb_tensor *nb_sum(const nb_tensor *a) { return reduce_all("sum", a, false); }
nb_tensor *nb_mean(const nb_tensor *a) { return reduce_all("mean", a, true); }

/* ---- sum / mean along a dim ---- */
typedef struct { int dim; bool mean; } dim_ctx;

/* out[o, j] = sum_k x[o, k, j] (divided by size for mean), accumulated in double. */
static void sum_dim_kernel(nb_tensor *out, const nb_tensor *x, int64_t outer, int64_t size, int64_t inner, bool mean) {
    int64_t nblk = (inner + RED_BLK - 1) / RED_BLK, ntask = outer * nblk, n = x->numel;
    NBI_DISPATCH_FLOAT(x->dtype, {
        T *po = nbi_data(out);      // out: (outer, inner)
        const T *px = nbi_data(x);  // x: (outer, size, inner)
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

static nb_status sum_dim_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const dim_ctx *c = node->ctx;
    const nb_tensor *in = node->inputs[0];
    int64_t outer, size, inner;
    split_dims(in, c->dim, &outer, &size, &inner);
    nb_tensor *g = nbi_empty(in->dtype, in->ndim, in->shape);
    if (!g) return nb_last_status();
    int64_t n = g->numel;
    bool mean = c->mean;
    NBI_DISPATCH_FLOAT(in->dtype, {
        T *pg = nbi_data(g);              // g: (outer, size, inner)
        const T *pout = nbi_data(gout);   // gout: (outer, inner)
        T scale = mean ? (T)1 / (T)size : (T)1;
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t r = 0; r < outer * size; r++) {
            int64_t o = r / size;
            for (int64_t j = 0; j < inner; j++)
                pg[r * inner + j] = mean ? pout[o * inner + j] * scale : pout[o * inner + j];
        }
    });
    gin[0] = g;
    return NB_OK;
}
static const nbi_op sum_dim_op = {"sum_dim", sum_dim_backward, NULL};
static const nbi_op mean_dim_op = {"mean_dim", sum_dim_backward, NULL};

static nb_tensor *reduce_dim(const char *name, const nb_tensor *a, int dim, bool keepdim, bool mean) {
    if (!nbi_check_float(name, "a", a)) return NULL;
    int d = nbi_dim(name, dim, a->ndim);
    if (d < 0) return NULL;
    int64_t shape[NB_MAX_DIMS], outer, size, inner;
    int nd = reduced_shape(a, d, keepdim, shape);
    split_dims(a, d, &outer, &size, &inner);
    nb_tensor *out = nbi_empty(a->dtype, nd, shape);
    if (!out) return NULL;
    nb_tensor *c = nbi_contiguous_data(a);
    if (!c) {
        nb_tensor_release(out);
        return NULL;
    }
    sum_dim_kernel(out, c, outer, size, inner, mean);
    nbi_release(c);
    nb_tensor *in = (nb_tensor *)a;
    const dim_ctx dc = {d, mean};
    return nbi_finish_copy(out, mean ? &mean_dim_op : &sum_dim_op, &in, 1, &dc, sizeof dc, name);
}

nb_tensor *nb_sum_dim(const nb_tensor *a, int dim, bool keepdim) { return reduce_dim("sum_dim", a, dim, keepdim, false); }
nb_tensor *nb_mean_dim(const nb_tensor *a, int dim, bool keepdim) { return reduce_dim("mean_dim", a, dim, keepdim, true); }

/* ---- max along a dim ---- */
typedef struct { int dim; nb_tensor *idx; } max_ctx; /* idx: (outer, inner) int64, owned */

static void max_ctx_free(void *p) {
    max_ctx *c = p;
    nbi_release(c->idx);
    free(c);
}

/* out[o, j] = max_k x[o, k, j], idx the first k attaining it; NaN wins (as PyTorch). */
static void max_dim_kernel(nb_tensor *out, nb_tensor *idx, const nb_tensor *x, int64_t outer, int64_t size,
                           int64_t inner) {
    int64_t nblk = (inner + RED_BLK - 1) / RED_BLK, ntask = outer * nblk, n = x->numel;
    int64_t *pi = nbi_data(idx); // idx: (outer, inner)
    NBI_DISPATCH_FLOAT(x->dtype, {
        T *po = nbi_data(out);      // out: (outer, inner)
        const T *px = nbi_data(x);  // x: (outer, size, inner)
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t t = 0; t < ntask; t++) {
            int64_t o = t / nblk, j0 = (t % nblk) * RED_BLK;
            int64_t jn = inner - j0 < RED_BLK ? inner - j0 : RED_BLK;
            T best[RED_BLK];
            int64_t arg[RED_BLK];
            const T *xo = px + o * size * inner + j0;
            for (int64_t j = 0; j < jn; j++) {
                best[j] = xo[j];
                arg[j] = 0;
            }
            for (int64_t k = 1; k < size; k++)
                for (int64_t j = 0; j < jn; j++) {
                    T v = xo[k * inner + j];
                    /* strictly greater keeps the first on ties; once best is NaN nothing replaces it */
                    if (v > best[j] || (isnan(v) && !isnan(best[j]))) {
                        best[j] = v;
                        arg[j] = k;
                    }
                }
            for (int64_t j = 0; j < jn; j++) {
                po[o * inner + j0 + j] = best[j];
                pi[o * inner + j0 + j] = arg[j];
            }
        }
    });
}

static nb_status max_dim_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const max_ctx *c = node->ctx;
    const nb_tensor *in = node->inputs[0];
    int64_t outer, size, inner;
    split_dims(in, c->dim, &outer, &size, &inner);
    nb_tensor *g = nb_zeros(in->dtype, in->ndim, in->shape);
    if (!g) return nb_last_status();
    const int64_t *pi = nbi_data(c->idx);
    int64_t n = outer * inner;
    NBI_DISPATCH_FLOAT(in->dtype, {
        T *pg = nbi_data(g);              // g: (outer, size, inner), zeros but the max positions
        const T *pout = nbi_data(gout);   // gout: (outer, inner)
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t p = 0; p < n; p++) {
            int64_t o = p / inner, j = p % inner;
            pg[(o * size + pi[p]) * inner + j] = pout[p];
        }
    });
    gin[0] = g;
    return NB_OK;
}
static const nbi_op max_dim_op = {"max_dim", max_dim_backward, max_ctx_free};

nb_tensor *nb_max_dim(const nb_tensor *a, int dim, bool keepdim, nb_tensor **indices) {
    if (indices) *indices = NULL;
    if (!nbi_check_float("max_dim", "a", a)) return NULL;
    int d = nbi_dim("max_dim", dim, a->ndim);
    if (d < 0) return NULL;
    int64_t shape[NB_MAX_DIMS], outer, size, inner;
    split_dims(a, d, &outer, &size, &inner);
    if (size == 0) {
        nbi_error(NB_ERR_SHAPE, "max_dim: Expected reduction dim %d to have non-zero size.", d);
        return NULL;
    }
    int nd = reduced_shape(a, d, keepdim, shape);
    nb_tensor *out = nbi_empty(a->dtype, nd, shape);
    nb_tensor *idx = nbi_empty(NB_I64, nd, shape);
    nb_tensor *c = nbi_contiguous_data(a);
    if (!out || !idx || !c) goto fail;
    max_dim_kernel(out, idx, c, outer, size, inner);
    nbi_release(c);
    c = NULL;
    nb_tensor *in = (nb_tensor *)a;
    max_ctx *ctx = NULL;
    if (nbi_should_record(&in, 1)) {
        ctx = malloc(sizeof *ctx);
        /* The graph keeps its own tensor object over the indices' storage, so
         * the caller may release the returned indices at any time. */
        nb_tensor *saved = ctx ? nbi_own(nbi_make_view(idx, idx->ndim, idx->shape, idx->strides, idx->offset)) : NULL;
        if (!saved) {
            free(ctx);
            nbi_error(NB_ERR_NOMEM, "max_dim: out of memory");
            goto fail;
        }
        *ctx = (max_ctx){d, saved};
    }
    out = nbi_finish(out, &max_dim_op, &in, 1, ctx);
    if (!out) goto fail;
    if (indices) *indices = nbi_give(idx);
    else nb_tensor_release(idx);
    return out;
fail:
    nb_tensor_release(out);
    nb_tensor_release(idx);
    nbi_release(c);
    return NULL;
}
