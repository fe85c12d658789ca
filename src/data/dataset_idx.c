/* dataset_idx.c: image data sets from IDX files (MNIST, Fashion-MNIST,
 * KMNIST, EMNIST or any pair of uint8 image and label files). The bytes stay
 * bytes; the loader converts them per batch. */
#include "data_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static nb_status check_images(const char *op, const char *path, const nbd_idx_header *h) {
    if (h->dims[0] == 0)
        return nbi_error(NB_ERR_IO, "%s: %s: expected a nonzero number of images, but the header says 0", op, path);
    if (h->dims[1] < 1 || h->dims[1] > NB_IDX_MAX_SIDE || h->dims[2] < 1 || h->dims[2] > NB_IDX_MAX_SIDE)
        return nbi_error(NB_ERR_IO, "%s: %s: expected image rows and cols in 1..%d, but the header says %" PRId64 " x %" PRId64,
                         op, path, NB_IDX_MAX_SIDE, h->dims[1], h->dims[2]);
    return NB_OK;
}

static nb_status check_labels(const char *op, const char *path, const nbd_idx_header *h) {
    if (h->dims[0] == 0)
        return nbi_error(NB_ERR_IO, "%s: %s: expected a nonzero number of labels, but the header says 0", op, path);
    return NB_OK;
}

/* Read the pair and build the data set; errors name op. */
static nb_dataset *idx_pair(const char *op, const char *images_path, const char *labels_path, int num_classes) {
    if (num_classes < 1 || num_classes > 256) {
        nbi_error(NB_ERR_ARG, "%s: expected num_classes in 1..256, but got %d", op, num_classes);
        return NULL;
    }
    nbd_idx_header ih, lh;
    uint8_t *pixels = NULL, *lab = NULL;
    nb_status st = nbd_idx_load(op, images_path, 0x08, 3, "images", check_images, &ih, &pixels);
    if (st == NB_OK) st = nbd_idx_load(op, labels_path, 0x08, 1, "labels", check_labels, &lh, &lab);
    if (st == NB_OK && lh.dims[0] != ih.dims[0])
        st = nbi_error(NB_ERR_SHAPE,
                       "%s: %s has %" PRId64 " images but %s has %" PRId64 " labels: expected equal counts", op,
                       images_path, ih.dims[0], labels_path, lh.dims[0]);
    for (int64_t i = 0; st == NB_OK && i < lh.dims[0]; i++)
        if (lab[i] >= num_classes)
            st = nbi_error(NB_ERR_IO, "%s: %s: label %d at index %" PRId64 " is out of range: expected 0 to %d", op,
                           labels_path, lab[i], i, num_classes - 1);
    int64_t n = ih.dims[0];
    int64_t *labels = st == NB_OK ? nbd_alloc(op, (size_t)n * sizeof *labels) : NULL;
    nbd_store *store = labels ? nbd_alloc(op, sizeof *store) : NULL;
    if (!store) {
        free(pixels);
        free(lab);
        free(labels);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) labels[i] = lab[i];
    free(lab);
    *store = (nbd_store){.refcount = 1, .bytes = pixels, .labels = labels};
    nb_dataset *ds = nbd_dataset_new(op, store, n);
    if (!ds) return NULL;
    ds->x_ndim = 3;
    ds->x_shape[0] = 1;
    ds->x_shape[1] = ih.dims[1];
    ds->x_shape[2] = ih.dims[2];
    ds->x_numel = ih.dims[1] * ih.dims[2];
    ds->x_dtype = NB_F32;
    ds->has_targets = true;
    ds->y_ndim = 0;
    ds->y_numel = 1;
    ds->y_dtype = NB_I64;
    return ds;
}

nb_dataset *nb_idx_dataset(const char *images_path, const char *labels_path, int num_classes) {
    return idx_pair("idx_dataset", images_path, labels_path, num_classes);
}

/* dir/base if it is a file, else dir/base.gz if that is; else an error naming both. */
static nb_status find_file(const char *op, const char *dir, const char *base, char *path, size_t size) {
    struct stat sb;
    int n = snprintf(path, size, "%s/%s", dir, base);
    if (n < 0 || (size_t)n + 3 >= size) return nbi_error(NB_ERR_ARG, "%s: directory name too long: %s", op, dir);
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return NB_OK;
    strcat(path, ".gz");
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return NB_OK;
    return nbi_error(NB_ERR_IO, "%s: found neither %s/%s nor %s/%s.gz", op, dir, base, dir, base);
}

/* <prefix>-images-idx3-ubyte and <prefix>-labels-idx1-ubyte in dir (raw or .gz). */
static nb_dataset *idx_split(const char *op, const char *dir, const char *prefix, int num_classes, int side) {
    char base[128], ipath[4096], lpath[4096];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    if (find_file(op, dir, base, ipath, sizeof ipath) != NB_OK) return NULL;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if (find_file(op, dir, base, lpath, sizeof lpath) != NB_OK) return NULL;
    nb_dataset *ds = idx_pair(op, ipath, lpath, num_classes);
    if (ds && (ds->x_shape[1] != side || ds->x_shape[2] != side)) {
        nbi_error(NB_ERR_SHAPE, "%s: %s: expected %d x %d images, but got %" PRId64 " x %" PRId64, op, ipath, side, side,
                  ds->x_shape[1], ds->x_shape[2]);
        nb_dataset_free(ds);
        return NULL;
    }
    return ds;
}

nb_dataset *nb_mnist_dataset(const char *dir, bool train) {
    if (!dir) {
        nbi_error(NB_ERR_ARG, "mnist_dataset: argument 'dir' is NULL");
        return NULL;
    }
    return idx_split("mnist_dataset", dir, train ? "train" : "t10k", 10, 28);
}

nb_dataset *nb_emnist_dataset(const char *dir, const char *split, bool train) {
    static const struct {
        const char *name;
        int classes;
    } splits[] = {{"byclass", 62}, {"bymerge", 47}, {"balanced", 47}, {"letters", 27}, {"digits", 10}, {"mnist", 10}};
    if (!dir || !split) {
        nbi_error(NB_ERR_ARG, "emnist_dataset: argument '%s' is NULL", dir ? "split" : "dir");
        return NULL;
    }
    for (size_t i = 0; i < sizeof splits / sizeof *splits; i++) {
        if (strcmp(split, splits[i].name) != 0) continue;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "emnist-%s-%s", split, train ? "train" : "test");
        return idx_split("emnist_dataset", dir, prefix, splits[i].classes, 28);
    }
    nbi_error(NB_ERR_ARG,
              "emnist_dataset: unknown split '%s': expected byclass, bymerge, balanced, letters, digits or mnist", split);
    return NULL;
}
