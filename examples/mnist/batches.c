/* batches.c: per-epoch seeded shuffling and batch copies into preallocated tensors.
 * Each epoch's permutation is Fisher-Yates over 0..N-1 with nb_rng_below, so
 * it depends only on the generator's state (which a checkpoint can save) and
 * a seed reproduces the whole sequence of epochs on every machine. A shard
 * reads that same permutation with stride world from offset rank, wrapping
 * around past N (DistributedSampler's padding). */
#include "mnist.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


/* (Re)allocate the batch tensors for it->count samples per epoch. */
static nb_status alloc_batches(mnist_batches *it) {
    nb_tensor_release(it->x_tail);
    nb_tensor_release(it->y_tail);
    nb_tensor_release(it->x);
    nb_tensor_release(it->y);
    it->x = it->y = it->x_tail = it->y_tail = NULL;
    int64_t n = it->count;
    int64_t b = it->batch_size < n ? it->batch_size : n; /* a batch never holds more than an epoch */
    it->x = nb_scope_keep(nb_zeros(NB_F32, NB_SHAPE(b, 1, MNIST_SIDE, MNIST_SIDE)));
    it->y = nb_scope_keep(nb_zeros(NB_I64, NB_SHAPE(b)));
    int64_t tail = n % b;
    if (tail && it->x && it->y) {
        it->x_tail = nb_scope_keep(nb_narrow(it->x, 0, 0, tail));
        it->y_tail = nb_scope_keep(nb_narrow(it->y, 0, 0, tail));
    }
    return !it->x || !it->y || (tail && (!it->x_tail || !it->y_tail)) ? NB_ERR_NOMEM : NB_OK;
}

nb_status mnist_batches_init(mnist_batches *it, const mnist_dataset *ds, int64_t batch_size, bool shuffle,
                             uint64_t seed, char *err, size_t errlen) {
    if (!it) return idx_fail(err, errlen, NB_ERR_ARG, "mnist_batches_init: it is NULL");
    memset(it, 0, sizeof *it);
    if (!ds || !ds->images || !ds->labels || ds->count < 1)
        return idx_fail(err, errlen, NB_ERR_ARG, "mnist_batches_init: expected a loaded, nonempty data set");
    if (batch_size < 1)
        return idx_fail(err, errlen, NB_ERR_ARG, "mnist_batches_init: expected batch_size >= 1, but got %" PRId64,
                        batch_size);
    int64_t n = ds->count;
    it->ds = ds;
    it->batch_size = batch_size;
    it->shuffle = shuffle;
    it->count = n;
    it->rank = 0;
    it->world = 1;
    nb_rng_seed(&it->rng, seed);
    it->order = malloc((size_t)n * sizeof *it->order);
    if (!it->order || alloc_batches(it) != NB_OK) {
        mnist_batches_free(it);
        return idx_fail(err, errlen, NB_ERR_NOMEM, "mnist_batches_init: cannot allocate batches of %" PRId64 ": %s",
                        batch_size < n ? batch_size : n, nb_last_error());
    }
    for (int64_t i = 0; i < n; i++) it->order[i] = i;
    it->pos = it->count; /* no epoch started yet */
    return NB_OK;
}

nb_status mnist_batches_shard(mnist_batches *it, int rank, int world, char *err, size_t errlen) {
    if (!it || !it->order) return idx_fail(err, errlen, NB_ERR_ARG, "mnist_batches_shard: expected an initialised iterator");
    if (world < 1 || rank < 0 || rank >= world)
        return idx_fail(err, errlen, NB_ERR_ARG, "mnist_batches_shard: expected 0 <= rank < world, but got rank %d, world %d",
                        rank, world);
    it->rank = rank;
    it->world = world;
    it->count = (it->ds->count + world - 1) / world;
    it->pos = it->count;
    if (alloc_batches(it) != NB_OK) {
        mnist_batches_free(it);
        return idx_fail(err, errlen, NB_ERR_NOMEM, "mnist_batches_shard: cannot allocate batches: %s", nb_last_error());
    }
    return NB_OK;
}

void mnist_batches_start_epoch(mnist_batches *it) {
    if (!it || !it->order) return;
    int64_t n = it->ds->count;
    for (int64_t i = 0; i < n; i++) it->order[i] = i;
    if (it->shuffle)
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)nb_rng_below(&it->rng, (uint64_t)i + 1);
            int64_t t = it->order[i];
            it->order[i] = it->order[j];
            it->order[j] = t;
        }
    it->pos = 0;
}

bool mnist_batches_next(mnist_batches *it, nb_tensor **x, nb_tensor **y) {
    if (!it || !it->order || it->pos >= it->count) return false;
    int64_t n = it->ds->count, left = it->count - it->pos;
    int64_t full = nb_tensor_size(it->x, 0);
    int64_t b = left < full ? left : full;
    const int64_t per = MNIST_SIDE * MNIST_SIDE;
    const float *src = nb_tensor_f32(it->ds->images);  // (N, 1, 28, 28)
    const int64_t *lab = nb_tensor_i64(it->ds->labels); // (N,)
    float *dx = nb_tensor_f32(it->x);                   // (B, 1, 28, 28)
    int64_t *dy = nb_tensor_i64(it->y);                 // (B,)
    for (int64_t k = 0; k < b; k++) {
        int64_t s = it->order[(it->rank + (it->pos + k) * it->world) % n];
        memcpy(dx + k * per, src + s * per, (size_t)per * sizeof *dx);
        dy[k] = lab[s];
    }
    it->pos += b;
    bool partial = b < full;
    if (x) *x = partial ? it->x_tail : it->x;
    if (y) *y = partial ? it->y_tail : it->y;
    return true;
}

int64_t mnist_batches_per_epoch(const mnist_batches *it) {
    if (!it || !it->ds || it->batch_size < 1) return 0;
    return (it->count + it->batch_size - 1) / it->batch_size;
}

void mnist_batches_free(mnist_batches *it) {
    if (!it) return;
    nb_tensor_release(it->x_tail);
    nb_tensor_release(it->y_tail);
    nb_tensor_release(it->x);
    nb_tensor_release(it->y);
    free(it->order);
    memset(it, 0, sizeof *it);
}
