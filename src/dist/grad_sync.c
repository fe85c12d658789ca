/* grad_sync.c: averaging gradients over ranks after backward, in buckets.
 * Consecutive parameters of one dtype are packed into a contiguous bucket of
 * at most bucket_bytes (DDP's bucket_cap_mb), reduced with one collective,
 * then unpacked and divided by the world size. One bucket buffer is reused,
 * so the extra memory is one bucket (plus world_size buckets on rank 0 in
 * the ordered mode), not a second copy of every gradient.
 * Which parameters have a gradient at all is agreed on in the same message:
 * bucket 0 starts with one presence flag (0 or 1) per parameter, whose sums
 * are exact small integers. */
#include "dist/dist_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct nbi_bucket {
    int first, count;  /* parameters first .. first+count-1 */
    int64_t elements;  /* including the presence flags in bucket 0 */
    nb_dtype dtype;
} nbi_bucket;

struct nb_dist_grad_sync {
    nb_tensor **params;    /* (n,) borrowed from the module */
    int64_t *offset;       /* (n,) element offset of each parameter in its bucket */
    int n;
    nbi_bucket *buckets;
    int nbuckets;
    nb_dist_reduce_mode mode;
    void *buf;             /* one bucket, the largest */
    void *gathered;        /* (world, largest bucket) on rank 0 in NB_DIST_ORDERED */
    size_t buf_bytes, bytes_per_run;
};

void nb_dist_grad_sync_free(nb_dist_grad_sync *g) {
    if (!g) return;
    free(g->params);
    free(g->offset);
    free(g->buckets);
    free(g->buf);
    free(g->gathered);
    free(g);
}

int nb_dist_grad_sync_num_buckets(const nb_dist_grad_sync *g) { return g ? g->nbuckets : 0; }
size_t nb_dist_grad_sync_bytes(const nb_dist_grad_sync *g) { return g ? g->bytes_per_run : 0; }

nb_dist_grad_sync *nb_dist_grad_sync_new(nb_module *m, size_t bucket_bytes, nb_dist_reduce_mode mode) {
    const char *op = "dist_grad_sync_new";
    if (!m) return nbi_null_arg(op, "m"), NULL;
    if (bucket_bytes < 1) return nbi_error(NB_ERR_ARG, "%s: expected bucket_bytes >= 1, but got 0", op), NULL;
    if (mode != NB_DIST_ALLREDUCE && mode != NB_DIST_ORDERED)
        return nbi_error(NB_ERR_ARG, "%s: unknown reduce mode %d", op, (int)mode), NULL;
    nb_dist_grad_sync *g = calloc(1, sizeof *g);
    int n = nb_module_num_parameters(m);
    if (!g || n < 0) goto nomem;
    g->n = n;
    g->mode = mode;
    g->params = calloc((size_t)(n ? n : 1), sizeof *g->params);
    g->offset = calloc((size_t)(n ? n : 1), sizeof *g->offset);
    g->buckets = calloc((size_t)(n ? n : 1), sizeof *g->buckets);
    if (!g->params || !g->offset || !g->buckets) goto nomem;
    nb_module_parameters(m, g->params, n);

    /* Plan: close a bucket when the next parameter would overflow it or has another dtype. */
    int64_t total = 0, signature = 0;
    size_t largest = 0;
    for (int i = 0; i < n; i++) {
        nb_tensor *p = g->params[i];
        size_t esz = nb_dtype_size(p->dtype);
        nbi_bucket *b = g->nbuckets ? &g->buckets[g->nbuckets - 1] : NULL;
        if (!b || b->dtype != p->dtype || (size_t)(b->elements + p->numel) * esz > bucket_bytes) {
            b = &g->buckets[g->nbuckets++];
            *b = (nbi_bucket){.first = i, .count = 0, .elements = g->nbuckets == 1 ? n : 0, .dtype = p->dtype};
        }
        g->offset[i] = b->elements;
        b->elements += p->numel;
        b->count++;
        total += p->numel;
        signature += (p->numel * (p->ndim + 1) + (int64_t)p->dtype) * (i + 1);
    }
    for (int k = 0; k < g->nbuckets; k++) {
        nbi_bucket *b = &g->buckets[k];
        if (b->elements > INT_MAX) {
            nbi_error(NB_ERR_ARG, "%s: parameter %d has %" PRId64 " elements, more than one MPI message can carry", op,
                      b->first, b->elements);
            goto fail;
        }
        size_t bytes = (size_t)b->elements * nb_dtype_size(b->dtype);
        g->bytes_per_run += bytes;
        if (bytes > largest) largest = bytes;
    }
    int64_t vals[5] = {n, total, signature, g->nbuckets, (int64_t)mode};
    static const char *what[5] = {"number of parameters", "number of parameter elements",
                                  "parameter shapes and dtypes", "number of buckets (bucket_bytes)", "reduce mode"};
    if (nbi_dist_agree(op, vals, 5, what) != NB_OK) goto fail;
    g->buf_bytes = largest;
    g->buf = malloc(largest ? largest : 1);
    if (!g->buf) goto nomem;
    if (mode == NB_DIST_ORDERED && nbi_dist_rank_ == 0 && nbi_dist_size_ > 1) {
        g->gathered = malloc(largest * (size_t)nbi_dist_size_);
        if (!g->gathered) goto nomem;
    }
    return g;
nomem:
    nbi_error(NB_ERR_NOMEM, "%s: cannot allocate the bucket plan", op);
fail:
    nb_dist_grad_sync_free(g);
    return NULL;
}

/* Sum the bucket over ranks in place. */
static nb_status reduce_bucket(nb_dist_grad_sync *g, const nbi_bucket *b) {
    const char *op = "dist_grad_sync";
    int count = (int)b->elements;
    MPI_Datatype type = nbi_mpi_type(b->dtype);
    if (g->mode == NB_DIST_ALLREDUCE)
        return nbi_mpi_check(MPI_Allreduce(MPI_IN_PLACE, g->buf, count, type, MPI_SUM, nbi_dist_comm), op,
                             "MPI_Allreduce");
    nb_status st = nbi_mpi_check(MPI_Gather(g->buf, count, type, g->gathered, count, type, 0, nbi_dist_comm), op,
                                 "MPI_Gather");
    if (st != NB_OK) return st;
    if (nbi_dist_rank_ == 0) {
        int world = nbi_dist_size_;
        NBI_DISPATCH_FLOAT(b->dtype, {
            T *out = g->buf;                   // (count,)
            const T *in = g->gathered;         // (world, count), rank-major
            for (int64_t j = 0; j < count; j++) {
                T s = in[j];
                for (int r = 1; r < world; r++) s += in[(int64_t)r * count + j]; /* rank order, always */
                out[j] = s;
            }
        });
    }
    return nbi_mpi_check(MPI_Bcast(g->buf, count, type, 0, nbi_dist_comm), op, "MPI_Bcast");
}

nb_status nb_dist_grad_sync_run(nb_dist_grad_sync *g) {
    const char *op = "dist_grad_sync";
    if (!g) return nbi_error(NB_ERR_ARG, "%s: g is NULL", op);
    if (nbi_dist_comm == MPI_COMM_NULL || g->n == 0) return NB_OK;
    bool *had = malloc((size_t)g->n * sizeof *had); /* presence flags after the reduction */
    if (!had) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    nb_status st = NB_OK;
    int world = nbi_dist_size_;
    for (int k = 0; k < g->nbuckets; k++) {
        const nbi_bucket *b = &g->buckets[k];
        size_t esz = nb_dtype_size(b->dtype);
        char *buf = g->buf;
        if (k == 0 && st == NB_OK)
            for (int i = 0; i < g->n; i++) { /* presence flags, in bucket 0's dtype */
                bool has = nb_tensor_grad(g->params[i]) != NULL;
                if (b->dtype == NB_F32) ((float *)buf)[i] = has;
                else ((double *)buf)[i] = has;
            }
        for (int i = b->first; i < b->first + b->count && st == NB_OK; i++) {
            nb_tensor *grad = nb_tensor_grad(g->params[i]);
            void *dst = buf + (size_t)g->offset[i] * esz;
            if (grad) st = nb_tensor_copy_out(grad, dst, b->dtype);
            else memset(dst, 0, (size_t)g->params[i]->numel * esz);
        }
        /* A failed pack is local: keep taking part in every collective so no
         * rank waits forever, and report the error once all are done. */
        nb_status rst = reduce_bucket(g, b);
        if (rst != NB_OK) {
            st = rst;
            break;
        }
        if (st != NB_OK) continue;
        if (k == 0)
            for (int i = 0; i < g->n; i++)
                had[i] = (b->dtype == NB_F32 ? ((float *)buf)[i] : ((double *)buf)[i]) > 0;
        int64_t lo = k == 0 ? g->n : 0;
        NBI_DISPATCH_FLOAT(b->dtype, {
            T *v = (T *)buf; // (elements,)
            const T w = (T)world;
            for (int64_t j = lo; j < b->elements; j++) v[j] /= w;
        });
        for (int i = b->first; i < b->first + b->count && st == NB_OK; i++) {
            nb_tensor *p = g->params[i];
            if (!had[i]) continue; /* no rank had a gradient: leave it None */
            if (!p->grad) {
                p->grad = nbi_own(nb_zeros_like(p));
                if (!p->grad) {
                    st = nb_last_status();
                    break;
                }
            }
            const char *src = buf + (size_t)g->offset[i] * esz;
            if (nbi_is_contiguous(p->grad) && p->grad->dtype == b->dtype) {
                memcpy(nbi_data(p->grad), src, (size_t)p->numel * esz);
            } else {
                nb_tensor *tmp = nbi_own(nb_from_data(b->dtype, p->ndim, p->shape, src));
                st = tmp ? nb_tensor_copy_(p->grad, tmp) : nb_last_status();
                nbi_release(tmp);
            }
        }
    }
    free(had);
    return st;
}
