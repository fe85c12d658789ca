/* mnist.c: load an MNIST split from IDX files into normalised nabla tensors. */
#include "mnist.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* dir/base if it is a file, else dir/base.gz if that is; else an error naming both. */
static nb_status find_file(const char *dir, const char *base, char *path, size_t size, char *err, size_t errlen) {
    struct stat sb;
    int n = snprintf(path, size, "%s/%s", dir, base);
    if (n < 0 || (size_t)n + 3 >= size) return idx_fail(err, errlen, NB_ERR_ARG, "mnist_load: directory name too long: %s", dir);
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return NB_OK;
    strcat(path, ".gz");
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return NB_OK;
    return idx_fail(err, errlen, NB_ERR_IO,
                    "mnist_load: found neither %s/%s nor %s/%s.gz (run scripts/fetch_mnist.sh to fetch MNIST)", dir,
                    base, dir, base);
}

nb_status mnist_from_idx(const idx_images *im, const idx_labels *lb, float mean, float std, mnist_dataset *ds,
                         char *err, size_t errlen) {
    if (!ds) return idx_fail(err, errlen, NB_ERR_ARG, "mnist_from_idx: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!im || !lb || !im->pixels || !lb->labels)
        return idx_fail(err, errlen, NB_ERR_ARG, "mnist_from_idx: images or labels are NULL");
    if (!(std > 0) || !isfinite(std) || !isfinite(mean))
        return idx_fail(err, errlen, NB_ERR_ARG, "mnist_from_idx: expected finite mean and std > 0, but got mean=%g std=%g",
                        mean, std);
    if (im->rows != MNIST_SIDE || im->cols != MNIST_SIDE)
        return idx_fail(err, errlen, NB_ERR_SHAPE, "mnist: expected %d x %d images, but got %" PRId64 " x %" PRId64,
                        MNIST_SIDE, MNIST_SIDE, im->rows, im->cols);
    if (im->count != lb->count)
        return idx_fail(err, errlen, NB_ERR_SHAPE,
                        "mnist: image and label counts differ: %" PRId64 " images but %" PRId64 " labels", im->count,
                        lb->count);
    for (int64_t i = 0; i < lb->count; i++)
        if (lb->labels[i] >= MNIST_CLASSES)
            return idx_fail(err, errlen, NB_ERR_ARG, "mnist: label %d at index %" PRId64 " is out of range: expected 0 to %d",
                            lb->labels[i], i, MNIST_CLASSES - 1);
    int64_t n = im->count;
    nb_tensor *x = nb_scope_keep(nb_zeros(NB_F32, NB_SHAPE(n, 1, MNIST_SIDE, MNIST_SIDE)));
    nb_tensor *y = nb_scope_keep(nb_zeros(NB_I64, NB_SHAPE(n)));
    if (!x || !y) {
        nb_tensor_release(x);
        nb_tensor_release(y);
        return idx_fail(err, errlen, NB_ERR_NOMEM, "mnist: cannot allocate %" PRId64 " images: %s", n, nb_last_error());
    }
    /* One table for the 256 byte values, computed as torchvision does:
     * ToTensor's float32 byte / 255, then Normalize's float32 (v - mean) / std. */
    float table[256];
    for (int b = 0; b < 256; b++) {
        float v = (float)b / 255.0f; /* no -ffast-math: each step rounds to float32 */
        table[b] = (v - mean) / std;
    }
    float *xp = nb_tensor_f32(x);       // (N, 1, 28, 28)
    int64_t *yp = nb_tensor_i64(y);     // (N,)
    const uint8_t *px = im->pixels;     // (N, 28, 28)
    int64_t total = n * MNIST_SIDE * MNIST_SIDE;
    for (int64_t i = 0; i < total; i++) xp[i] = table[px[i]];
    for (int64_t i = 0; i < n; i++) yp[i] = lb->labels[i];
    ds->images = x;
    ds->labels = y;
    ds->count = n;
    return NB_OK;
}

nb_status mnist_load_normalized(const char *dir, bool train, float mean, float std, mnist_dataset *ds, char *err,
                                size_t errlen) {
    if (!ds) return idx_fail(err, errlen, NB_ERR_ARG, "mnist_load: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!dir) return idx_fail(err, errlen, NB_ERR_ARG, "mnist_load: dir is NULL");
    if (!(std > 0) || !isfinite(std) || !isfinite(mean))
        return idx_fail(err, errlen, NB_ERR_ARG, "mnist_load: expected finite mean and std > 0, but got mean=%g std=%g",
                        mean, std);
    const char *split = train ? "train" : "t10k";
    char base[64], ipath[4096], lpath[4096];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    nb_status st = find_file(dir, base, ipath, sizeof ipath, err, errlen);
    if (st != NB_OK) return st;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    st = find_file(dir, base, lpath, sizeof lpath, err, errlen);
    if (st != NB_OK) return st;

    idx_images im;
    idx_labels lb = {0};
    st = idx_read_images(ipath, &im, err, errlen);
    if (st == NB_OK) st = idx_read_labels(lpath, MNIST_CLASSES, &lb, err, errlen);
    if (st == NB_OK && (im.rows != MNIST_SIDE || im.cols != MNIST_SIDE))
        st = idx_fail(err, errlen, NB_ERR_SHAPE, "%s: expected %d x %d images, but got %" PRId64 " x %" PRId64, ipath,
                      MNIST_SIDE, MNIST_SIDE, im.rows, im.cols);
    if (st == NB_OK && im.count != lb.count)
        st = idx_fail(err, errlen, NB_ERR_SHAPE,
                      "mnist_load: %s has %" PRId64 " images but %s has %" PRId64 " labels: expected equal counts",
                      ipath, im.count, lpath, lb.count);
    if (st == NB_OK) st = mnist_from_idx(&im, &lb, mean, std, ds, err, errlen);
    idx_images_free(&im);
    idx_labels_free(&lb);
    return st;
}

nb_status mnist_load(const char *dir, bool train, mnist_dataset *ds, char *err, size_t errlen) {
    return mnist_load_normalized(dir, train, MNIST_MEAN, MNIST_STD, ds, err, errlen);
}

void mnist_free(mnist_dataset *ds) {
    if (!ds) return;
    nb_tensor_release(ds->images);
    nb_tensor_release(ds->labels);
    memset(ds, 0, sizeof *ds);
}
