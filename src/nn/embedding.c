/* F.embedding: y[..., :] = weight[input[...], :] for int64 indices of any
 * shape. The weight's gradient adds each row of dy into the row it was read
 * from, except rows read at padding_idx (their gradient is zero), divided by
 * how often the index occurs when scale_grad_by_freq (torch 1.13's dense CPU
 * backward). Threads own ranges of weight rows and scan the indices in order,
 * so every row sums in the same order at any thread count. max_norm (which
 * renormalises weight in place) is not supported. */
#include "nn_util.h"

#include <omp.h>
#include <string.h>

/* ---- check ---- */
typedef struct {
    int64_t n, num, dim;       /* n indices; weight (num, dim) */
    int64_t padding_idx;       /* in [0, num), or -1: none */
    bool scale_grad_by_freq;
} embedding_geom;

/* padding_idx resolved as F.embedding: negative counts from the end; NB_NO_PADDING_IDX is -1 (none). */
bool nbi_embedding_check_padding_idx(const char *op, int64_t padding_idx, int64_t num, int64_t *resolved) {
    if (padding_idx == NB_NO_PADDING_IDX) {
        *resolved = -1;
        return true;
    }
    if ((padding_idx > 0 && padding_idx >= num) || (padding_idx < 0 && padding_idx < -num)) {
        nbi_error(NB_ERR_ARG, "%s: Padding_idx must be within num_embeddings (padding_idx=%lld, num_embeddings=%lld)", op,
                  (long long)padding_idx, (long long)num);
        return false;
    }
    *resolved = padding_idx < 0 ? num + padding_idx : padding_idx;
    return true;
}

static bool embedding_check(const nb_tensor *input, const nb_tensor *weight, int64_t padding_idx,
                            bool scale_grad_by_freq, embedding_geom *g) {
    const char *op = "embedding";
    char s[128];
    if (!nbi_check_tensor(op, "input", input) || !nbi_check_float(op, "weight", weight)) return false;
    if (weight->ndim != 2) {
        nbi_error(NB_ERR_SHAPE, "%s: 'weight' must be 2-D, but got %s", op, nnu_shape(weight, s, sizeof s));
        return false;
    }
    if (input->dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "%s: Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                  "Long, Int; but got %s instead", op, nb_dtype_name(input->dtype));
        return false;
    }
    if (input->ndim + 1 > NB_MAX_DIMS) {
        nbi_error(NB_ERR_SHAPE, "%s: input has %d dims; the output would have %d, more than %d", op, input->ndim,
                  input->ndim + 1, NB_MAX_DIMS);
        return false;
    }
    int64_t pad;
    if (!nbi_embedding_check_padding_idx(op, padding_idx, weight->shape[0], &pad)) return false;
    if ((__int128)input->numel * weight->shape[1] > INT64_MAX / 8) {
        nbi_error(NB_ERR_ARG, "%s: output of %lld x %lld elements is too large", op, (long long)input->numel,
                  (long long)weight->shape[1]);
        return false;
    }
    *g = (embedding_geom){input->numel, weight->shape[0], weight->shape[1], pad, scale_grad_by_freq};
    return true;
}

/* Every index a row of weight (read once the indices are contiguous). */
static bool embedding_check_indices(const int64_t *idx, const embedding_geom *g) {
    for (int64_t i = 0; i < g->n; i++)
        if (idx[i] < 0 || idx[i] >= g->num) {
            nbi_error(NB_ERR_ARG, "embedding: index out of range in self (index %lld, num_embeddings %lld)",
                      (long long)idx[i], (long long)g->num);
            return false;
        }
    return true;
}

/* ---- kernels ---- */
// y: (n, dim), w: (num, dim), idx: (n)
static void embedding_forward(nb_dtype dtype, void *y, const void *w, const int64_t *idx, const embedding_geom *g) {
    const int64_t n = g->n, dim = g->dim;
    const size_t row = (size_t)dim * nb_dtype_size(dtype);
    _Pragma("omp parallel for schedule(static) if (n * dim > NBI_PAR_MIN)")
    for (int64_t i = 0; i < n; i++) memcpy((char *)y + (size_t)i * row, (const char *)w + (size_t)idx[i] * row, row);
}

/* count: (num) scratch when scale_grad_by_freq, else NULL */
// dw: (num, dim), dy: (n, dim), idx: (n)
static void embedding_backward(nb_dtype dtype, void *dw, const void *dy, const int64_t *idx, int64_t *count,
                               const embedding_geom *g) {
    const int64_t n = g->n, num = g->num, dim = g->dim, pad = g->padding_idx;
    if (count) {
        memset(count, 0, (size_t)num * sizeof *count);
        for (int64_t i = 0; i < n; i++) count[idx[i]]++;
    }
    NBI_DISPATCH_FLOAT(dtype, {
        T *dW = dw;
        const T *dY = dy;
        _Pragma("omp parallel if (n * dim > NBI_PAR_MIN)")
        {
            /* this thread's rows [r0, r1) */
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            int64_t r0 = num * t / nt, r1 = num * (t + 1) / nt;
            memset(dW + r0 * dim, 0, (size_t)((r1 - r0) * dim) * sizeof(T));
            for (int64_t i = 0; i < n; i++) {
                int64_t k = idx[i];
                if (k < r0 || k >= r1 || k == pad) continue;
                const T s = count ? (T)(1.0 / (double)count[k]) : (T)1;
                T *dst = dW + k * dim;
                const T *src = dY + i * dim;
                for (int64_t d = 0; d < dim; d++) dst[d] += src[d] * s;
            }
        }
    });
}

/* ---- autograd: ctx is the embedding_geom, saved[0] the contiguous indices ---- */
static nb_status embedding_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const embedding_geom *g = node->ctx;
    nb_tensor *count = g->scale_grad_by_freq ? nbi_empty_op("embedding", NB_I64, 1, &g->num) : NULL;
    if (g->scale_grad_by_freq && !count) return nb_last_status();
    if (nbi_alloc_grads(node, gin) != NB_OK) {
        nbi_release(count);
        return nb_last_status();
    }
    embedding_backward(gout->dtype, nbi_data(gin[1]), nbi_data(gout), nbi_data(node->saved[0]),
                       count ? nbi_data(count) : NULL, g);
    nbi_release(count);
    return NB_OK;
}

static const nbi_op embedding_op = {"embedding", embedding_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_embedding(const nb_tensor *input, const nb_tensor *weight, int64_t padding_idx, bool scale_grad_by_freq) {
    embedding_geom g;
    if (!embedding_check(input, weight, padding_idx, scale_grad_by_freq, &g)) return NULL;
    nb_tensor *ic = nbi_contiguous_data(input);
    if (ic && !embedding_check_indices(nbi_data(ic), &g)) {
        nbi_release(ic);
        return NULL;
    }
    nb_tensor *wc = ic ? nbi_contiguous_data(weight) : NULL;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, input->shape, sizeof(int64_t) * (size_t)input->ndim);
    shape[input->ndim] = g.dim;
    nb_tensor *y = wc ? nbi_empty_op("embedding", weight->dtype, input->ndim + 1, shape) : NULL;
    if (y) embedding_forward(weight->dtype, nbi_data(y), nbi_data(wc), nbi_data(ic), &g);
    nbi_release(wc);
    return nbi_finish_op(y, &embedding_op, NBI_INPUTS(input, weight), NBI_SAVED(ic), &g, sizeof g);
}
