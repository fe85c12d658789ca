/* dataset.c: the data set object shared by every kind of data set: windows
 * over a refcounted store, sample access, narrowing. */
#include "data_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void nbd_store_release(nbd_store *s) {
    if (!s || --s->refcount > 0) return;
    free(s->bytes);
    free(s->labels);
    nbi_release(s->inputs);
    nbi_release(s->targets);
    free(s);
}

nb_dataset *nbd_dataset_new(const char *op, nbd_store *store, int64_t count) {
    nb_dataset *ds = nbd_alloc(op, sizeof *ds);
    if (!ds) {
        nbd_store_release(store);
        return NULL;
    }
    memset(ds, 0, sizeof *ds);
    ds->refcount = 1;
    ds->store = store;
    ds->count = count;
    return ds;
}

nb_dataset *nbd_dataset_retain(nb_dataset *ds) {
    if (ds) ds->refcount++;
    return ds;
}

void nb_dataset_free(nb_dataset *ds) {
    if (!ds || --ds->refcount > 0) return;
    nbd_store_release(ds->store);
    free(ds);
}

static bool check_ds(const char *op, const nb_dataset *ds) {
    if (!ds) nbi_error(NB_ERR_ARG, "%s: argument 'ds' is NULL", op);
    return ds != NULL;
}

int64_t nb_dataset_len(const nb_dataset *ds) { return ds ? ds->count : -1; }

int nb_dataset_sample_shape(const nb_dataset *ds, int64_t *shape) {
    if (!check_ds("dataset_sample_shape", ds)) return -1;
    if (!shape) {
        nbi_error(NB_ERR_ARG, "dataset_sample_shape: argument 'shape' is NULL");
        return -1;
    }
    memcpy(shape, ds->x_shape, sizeof ds->x_shape);
    return ds->x_ndim;
}

nb_dataset *nb_dataset_narrow(const nb_dataset *ds, int64_t start, int64_t length) {
    if (!check_ds("dataset_narrow", ds)) return NULL;
    if (start < 0 || length < 1 || start > ds->count - length) {
        nbi_error(NB_ERR_ARG,
                  "dataset_narrow: expected 0 <= start and 1 <= length with start + length <= %" PRId64
                  ", but got start %" PRId64 ", length %" PRId64,
                  ds->count, start, length);
        return NULL;
    }
    nb_dataset *n = nbd_alloc("dataset_narrow", sizeof *n);
    if (!n) return NULL;
    *n = *ds;
    n->refcount = 1;
    n->store->refcount++;
    n->start = ds->start + start;
    n->count = length;
    return n;
}

void nbd_read_sample(const nb_dataset *ds, int64_t i, void *x, void *y) {
    const nbd_store *s = ds->store;
    int64_t k = ds->start + i;
    if (s->bytes) {
        /* torchvision's ToTensor: float32 byte / 255 (each step rounds to float32) */
        const uint8_t *src = s->bytes + k * ds->x_numel;
        float *dst = x;
        for (int64_t j = 0; j < ds->x_numel; j++) dst[j] = (float)src[j] / 255.0f;
        if (y) *(int64_t *)y = s->labels[k];
        return;
    }
    size_t xs = (size_t)ds->x_numel * nb_dtype_size(ds->x_dtype);
    memcpy(x, (const char *)nbi_data(s->inputs) + (size_t)k * xs, xs);
    if (y && s->targets) {
        size_t ys = (size_t)ds->y_numel * nb_dtype_size(ds->y_dtype);
        memcpy(y, (const char *)nbi_data(s->targets) + (size_t)k * ys, ys);
    }
}

nb_status nb_dataset_get(const nb_dataset *ds, int64_t i, nb_tensor **x, nb_tensor **y) {
    if (x) *x = NULL;
    if (y) *y = NULL;
    if (!check_ds("dataset_get", ds)) return NB_ERR_ARG;
    if (!x) return nbi_error(NB_ERR_ARG, "dataset_get: argument 'x' is NULL");
    if (i < 0 || i >= ds->count)
        return nbi_error(NB_ERR_ARG, "dataset_get: index %" PRId64 " is out of range for a data set of %" PRId64 " samples",
                         i, ds->count);
    nb_tensor *tx = nbi_empty_op("dataset_get", ds->x_dtype, ds->x_ndim, ds->x_shape);
    nb_tensor *ty = tx && y && ds->has_targets ? nbi_empty_op("dataset_get", ds->y_dtype, ds->y_ndim, ds->y_shape) : NULL;
    if (!tx || (y && ds->has_targets && !ty)) {
        nbi_release(tx);
        return nb_last_status();
    }
    nbd_read_sample(ds, i, nbi_data(tx), ty ? nbi_data(ty) : NULL);
    *x = nbi_give(tx);
    if (y) *y = nbi_give(ty);
    return NB_OK;
}
