/* transform_kernels.c: Normalize, crop with padding, horizontal flip over
 * one (C, H, W) image in plain memory (torchvision's tensor semantics).
 * No allocation, no errors: the pipeline checked every size beforehand. */
#include "data_internal.h"

void nbd_normalize(nb_dtype dtype, void *x, int64_t C, int64_t HW, const double *mean, const double *std, int nvals) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *p = x; // (C, HW)
        for (int64_t c = 0; c < C; c++) {
            /* torchvision: mean and std become tensors of the image's dtype,
             * then x.sub_(mean).div_(std): two roundings in T. */
            T m = (T)mean[nvals == 1 ? 0 : c], s = (T)std[nvals == 1 ? 0 : c];
            T *row = p + c * HW;
            for (int64_t i = 0; i < HW; i++) row[i] = (row[i] - m) / s;
        }
    });
}

/* Index into an axis of n elements for position v of that axis extended by
 * mode (v < 0 or v >= n lie in the padding); -1 means "fill". Reflect and
 * symmetric padding are at most n - 1 and n wide (checked by the pipeline),
 * so one reflection suffices. */
static int64_t pad_index(int64_t v, int64_t n, nb_image_pad_mode mode) {
    if (v >= 0 && v < n) return v;
    switch (mode) {
    case NB_IMAGE_PAD_EDGE: return v < 0 ? 0 : n - 1;
    case NB_IMAGE_PAD_REFLECT: return v < 0 ? -v : 2 * (n - 1) - v;   /* [3 2 1 | 1 2 3 4 | 3 2] */
    case NB_IMAGE_PAD_SYMMETRIC: return v < 0 ? -v - 1 : 2 * n - 1 - v; /* [2 1 | 1 2 3 4 | 4 3] */
    default: return -1;
    }
}

int64_t nbd_crop_source(const nbd_crop_geometry *g, int axis, int64_t v) {
    /* Undo torchvision's two paddings in reverse order: the pad_if_needed
     * one (stage 2, around the first padded image), then the padding one. */
    int64_t n0 = g->size[axis], lo1 = g->pad1[axis], n1 = n0 + lo1 + g->pad1[axis + 2];
    int64_t v1 = pad_index(v - g->pad2[axis], n1, g->mode);
    if (v1 < 0) return -1;
    return pad_index(v1 - lo1, n0, g->mode);
}

void nbd_crop(nb_dtype dtype, void *y, const void *x, int64_t C, const nbd_crop_geometry *g, int64_t oh, int64_t ow,
              int64_t top, int64_t left) {
    int64_t H = g->size[0], W = g->size[1];
    NBI_DISPATCH_FLOAT(dtype, {
        T *out = y;       // (C, oh, ow)
        const T *in = x;  // (C, H, W)
        T fill = (T)g->fill;
        for (int64_t i = 0; i < oh; i++) {
            int64_t si = nbd_crop_source(g, 0, top + i);
            for (int64_t j = 0; j < ow; j++) {
                int64_t sj = nbd_crop_source(g, 1, left + j);
                for (int64_t c = 0; c < C; c++)
                    out[(c * oh + i) * ow + j] = si < 0 || sj < 0 ? fill : in[(c * H + si) * W + sj];
            }
        }
    });
}

void nbd_hflip(nb_dtype dtype, void *x, int64_t C, int64_t H, int64_t W) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *p = x; // (C, H, W)
        for (int64_t r = 0; r < C * H; r++) {
            T *row = p + r * W;
            for (int64_t a = 0, b = W - 1; a < b; a++, b--) {
                T t = row[a];
                row[a] = row[b];
                row[b] = t;
            }
        }
    });
}
