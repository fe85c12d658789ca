/* loader.c: nb_loader, batches of a data set in DistributedSampler's order
 * (see RANDOMNESS in nabla/data.h), optionally prepared one batch ahead by a
 * prefetch thread. Filling a batch (fill_batch) reads plain memory only and
 * is the same code on either thread, so batches are bitwise the same with
 * and without prefetch; tensors are made on the caller's thread. */
#include "data_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct nb_loader {
    nb_dataset *ds;          /* a reference of our own */
    nb_loader_options o;     /* transforms copied into pipe */
    nbd_pipeline pipe;
    int x_ndim;              /* batch geometry after the transforms: (B, x_shape...) */
    int64_t x_shape[NB_MAX_DIMS], x_numel;
    size_t x_esize, y_esize;
    int64_t num_samples, num_batches, batch_rows;
    int64_t epoch;
    int64_t *order;          /* (N,) epoch's order; valid when order_epoch == epoch */
    int64_t order_epoch;
    int64_t next_batch;      /* of the current pass */
    void *scratch_a, *scratch_b; /* pipeline scratch (one filler at a time) */
    /* prefetch: the thread fills xbuf, ybuf with batch `inflight` */
    nbd_prefetch *pf;
    void *xbuf, *ybuf;
    int64_t inflight;        /* batch submitted to the thread, -1: none */
};

nb_loader_options nb_loader_defaults(void) {
    return (nb_loader_options){.batch_size = 1, .shuffle = false, .seed = 0, .drop_last = false, .rank = 0,
                               .world_size = 1, .sampler_drop_last = false, .prefetch = false, .transforms = NULL,
                               .num_transforms = 0};
}

static int64_t rows_of(const nb_loader *l, int64_t batch) {
    int64_t left = l->num_samples - batch * l->o.batch_size;
    return left < l->o.batch_size ? left : l->o.batch_size;
}

/* Epoch `epoch`'s order into l->order: 0..N-1, Fisher-Yates shuffled from an
 * nb_rng seeded with seed + epoch (DistributedSampler's seed). */
static void compute_order(nb_loader *l) {
    int64_t n = l->ds->count;
    for (int64_t i = 0; i < n; i++) l->order[i] = i;
    if (l->o.shuffle) {
        nb_rng rng;
        nb_rng_seed(&rng, l->o.seed + (uint64_t)l->epoch);
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)nb_rng_below(&rng, (uint64_t)i + 1);
            int64_t t = l->order[i];
            l->order[i] = l->order[j];
            l->order[j] = t;
        }
    }
    l->order_epoch = l->epoch;
}

/* Rows of batch `batch` into x (rows * x_numel) and y: position k of this
 * rank's samples is position rank + k * world_size of the epoch's order,
 * wrapped around past N (DistributedSampler's padding). Plain memory only. */
static void fill_batch(const nb_loader *l, int64_t batch, void *x, void *y) {
    const nb_dataset *ds = l->ds;
    int64_t n = ds->count, rows = rows_of(l, batch);
    for (int64_t k = 0; k < rows; k++) {
        int64_t pos = l->o.rank + (batch * l->o.batch_size + k) * (int64_t)l->o.world_size;
        int64_t idx = l->order[pos % n];
        char *xk = (char *)x + (size_t)(k * l->x_numel) * l->x_esize;
        char *yk = y ? (char *)y + (size_t)(k * ds->y_numel) * l->y_esize : NULL;
        if (l->pipe.n == 0) {
            nbd_read_sample(ds, idx, xk, yk);
            continue;
        }
        nb_rng rng;
        nbd_sample_rng(&rng, l->o.seed, l->epoch, pos);
        nbd_read_sample(ds, idx, l->scratch_a, yk);
        nbd_pipeline_run(&l->pipe, l->scratch_a, l->scratch_b, xk, &rng);
    }
}

static void prefetch_job(void *ctx, int64_t batch) {
    const nb_loader *l = ctx;
    fill_batch(l, batch, l->xbuf, l->ybuf);
}

/* No job may run while the order or the buffers change. */
static void settle(nb_loader *l) {
    if (l->pf) nbd_prefetch_wait(l->pf);
    l->inflight = -1;
}

static void submit(nb_loader *l, int64_t batch) {
    if (!l->pf || batch >= l->num_batches) return;
    nbd_prefetch_submit(l->pf, batch);
    l->inflight = batch;
}

static nb_status check_options(const char *op, const nb_dataset *ds, const nb_loader_options *o) {
    if (!ds) return nbi_error(NB_ERR_ARG, "%s: argument 'ds' is NULL", op);
    if (o->batch_size < 1)
        return nbi_error(NB_ERR_ARG, "%s: batch_size should be a positive integer value, but got batch_size=%" PRId64, op,
                         o->batch_size);
    if (o->world_size < 1)
        return nbi_error(NB_ERR_ARG, "%s: expected world_size >= 1, but got %d", op, o->world_size);
    if (o->rank < 0 || o->rank >= o->world_size)
        return nbi_error(NB_ERR_ARG, "%s: Invalid rank %d, rank should be in the interval [0, %d]", op, o->rank,
                         o->world_size - 1);
    return NB_OK;
}

void nb_loader_free(nb_loader *l) {
    if (!l) return;
    nbd_prefetch_free(l->pf); /* first: the thread reads everything below */
    nbd_pipeline_free(&l->pipe);
    free(l->order);
    free(l->scratch_a);
    free(l->scratch_b);
    free(l->xbuf);
    free(l->ybuf);
    nb_dataset_free(l->ds);
    free(l);
}

nb_loader *nb_loader_new(const nb_dataset *ds, const nb_loader_options *opts) {
    const char *op = "loader";
    nb_loader_options o = opts ? *opts : nb_loader_defaults();
    if (check_options(op, ds, &o) != NB_OK) return NULL;
    nb_loader *l = nbd_alloc(op, sizeof *l);
    if (!l) return NULL;
    memset(l, 0, sizeof *l);
    l->ds = nbd_dataset_retain((nb_dataset *)ds); /* only read, never changed */
    l->inflight = -1;
    l->order_epoch = -1;
    if (nbd_pipeline_init(&l->pipe, op, o.transforms, o.num_transforms, ds->x_dtype, ds->x_ndim, ds->x_shape) != NB_OK) {
        nb_loader_free(l);
        return NULL;
    }
    o.transforms = NULL; /* the pipeline holds the copies */
    l->o = o;
    l->x_ndim = ds->x_ndim;
    memcpy(l->x_shape, ds->x_shape, sizeof l->x_shape);
    if (l->pipe.n > 0) memcpy(l->x_shape, l->pipe.out_shape, sizeof l->pipe.out_shape);
    l->x_numel = nbi_numel(l->x_ndim, l->x_shape);
    l->x_esize = nb_dtype_size(ds->x_dtype);
    l->y_esize = ds->has_targets ? nb_dtype_size(ds->y_dtype) : 0;
    int64_t n = ds->count, w = o.world_size;
    l->num_samples = o.sampler_drop_last ? n / w : (n + w - 1) / w;
    l->num_batches = o.drop_last ? l->num_samples / o.batch_size : (l->num_samples + o.batch_size - 1) / o.batch_size;
    l->batch_rows = l->num_samples < o.batch_size ? l->num_samples : o.batch_size;
    size_t scratch = (size_t)l->pipe.scratch * l->x_esize;
    bool ok = (l->order = nbd_alloc(op, (size_t)n * sizeof *l->order)) != NULL;
    if (ok && l->pipe.n > 0)
        ok = (l->scratch_a = nbd_alloc(op, scratch)) && (l->scratch_b = nbd_alloc(op, scratch));
    if (ok && o.prefetch) {
        if (l->x_numel > 0 && l->batch_rows > INT64_MAX / 8 / l->x_numel) {
            nbi_error(NB_ERR_ARG, "%s: a batch of %" PRId64 " samples of %" PRId64 " elements is too large", op,
                      l->batch_rows, l->x_numel);
            ok = false;
        }
        ok = ok && (l->xbuf = nbd_alloc(op, (size_t)(l->batch_rows * l->x_numel) * l->x_esize));
        ok = ok && (!ds->has_targets || (l->ybuf = nbd_alloc(op, (size_t)(l->batch_rows * ds->y_numel) * l->y_esize)));
        ok = ok && (l->pf = nbd_prefetch_new(op, prefetch_job, l));
    }
    if (!ok) {
        nb_loader_free(l);
        return NULL;
    }
    compute_order(l);
    submit(l, 0);
    return l;
}

nb_status nb_loader_set_epoch(nb_loader *l, int64_t epoch) {
    if (!l) return nbi_error(NB_ERR_ARG, "loader_set_epoch: argument 'loader' is NULL");
    if (epoch < 0) return nbi_error(NB_ERR_ARG, "loader_set_epoch: expected epoch >= 0, but got %" PRId64, epoch);
    l->next_batch = 0;
    if (epoch == l->epoch && l->inflight == 0) return NB_OK; /* batch 0 of this epoch is already on its way */
    settle(l);
    l->epoch = epoch;
    if (l->order_epoch != epoch) compute_order(l);
    submit(l, 0);
    return NB_OK;
}

/* New tensors for a batch of rows: x (rows, x_shape...), y (rows, y_shape...) or NULL. */
static nb_status make_batch(nb_loader *l, int64_t rows, nb_tensor **x, nb_tensor **y) {
    const nb_dataset *ds = l->ds;
    int64_t shape[NB_MAX_DIMS + 1];
    shape[0] = rows;
    memcpy(shape + 1, l->x_shape, sizeof(int64_t) * (size_t)l->x_ndim);
    *x = nbi_empty_op("loader_next", ds->x_dtype, l->x_ndim + 1, shape);
    *y = NULL;
    if (*x && ds->has_targets) {
        memcpy(shape + 1, ds->y_shape, sizeof(int64_t) * (size_t)ds->y_ndim);
        *y = nbi_empty_op("loader_next", ds->y_dtype, ds->y_ndim + 1, shape);
    }
    if (!*x || (ds->has_targets && !*y)) {
        nbi_release(*x);
        *x = NULL;
        return nb_last_status();
    }
    return NB_OK;
}

int64_t nb_loader_next(nb_loader *l, nb_tensor **x, nb_tensor **y) {
    if (x) *x = NULL;
    if (y) *y = NULL;
    if (!l) return nbi_error(NB_ERR_ARG, "loader_next: argument 'loader' is NULL");
    if (!x) return nbi_error(NB_ERR_ARG, "loader_next: argument 'x' is NULL");
    int64_t b = l->next_batch;
    if (b >= l->num_batches) { /* end of the pass: the next one follows the next epoch's order */
        settle(l);
        l->next_batch = 0;
        l->epoch++;
        compute_order(l);
        submit(l, 0);
        return 0;
    }
    int64_t rows = rows_of(l, b);
    nb_tensor *tx, *ty;
    if (l->pf && l->inflight != b) { /* nothing (or something else) on its way: ask for b */
        settle(l);
        submit(l, b);
    }
    if (l->pf) nbd_prefetch_wait(l->pf);
    nb_status st = make_batch(l, rows, &tx, &ty);
    if (st != NB_OK) return st; /* b stays next; a prefetched b stays in the buffers */
    if (l->pf) {
        memcpy(nbi_data(tx), l->xbuf, (size_t)(rows * l->x_numel) * l->x_esize);
        if (ty) memcpy(nbi_data(ty), l->ybuf, (size_t)(rows * l->ds->y_numel) * l->y_esize);
        l->inflight = -1;
        submit(l, b + 1); /* the buffers are free again: prepare the next batch while the caller trains */
    } else {
        fill_batch(l, b, nbi_data(tx), ty ? nbi_data(ty) : NULL);
    }
    l->next_batch = b + 1;
    *x = nbi_give(tx);
    if (y) *y = nbi_give(ty);
    else nbi_release(ty);
    return rows;
}

int64_t nb_loader_num_batches(const nb_loader *l) { return l ? l->num_batches : -1; }
int64_t nb_loader_num_samples(const nb_loader *l) { return l ? l->num_samples : -1; }

int64_t nb_loader_indices(nb_loader *l, int64_t *out, int64_t cap) {
    if (!l) return nbi_error(NB_ERR_ARG, "loader_indices: argument 'loader' is NULL");
    if (cap < 0 || (cap > 0 && !out))
        return nbi_error(NB_ERR_ARG, "loader_indices: expected out with cap >= 0 entries, but got %s and %" PRId64,
                         out ? "out" : "NULL", cap);
    int64_t n = l->ds->count;
    for (int64_t k = 0; k < l->num_samples && k < cap; k++)
        out[k] = l->order[(l->o.rank + k * (int64_t)l->o.world_size) % n];
    return l->num_samples;
}
