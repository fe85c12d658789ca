/* Private to src/data (which builds on src/tensor only): the data set
 * layout, the IDX file reader, transform kernels and the sample pipeline
 * shared by the loader, its prefetch thread and nb_transforms_apply. */
#ifndef NABLA_DATA_INTERNAL_H
#define NABLA_DATA_INTERNAL_H

#include "nabla/data.h"
#include "tensor/internal.h"

/* ---- allocation: malloc that tests can make fail (nb_debug_fail_allocations_after),
 * with a message naming op on failure ---- */
void *nbd_alloc(const char *op, size_t n);

/* ---- data sets ----
 * The samples live in a shared, refcounted store: either image bytes
 * (count * sample_numel, converted to float32 / 255 when read) and int64
 * labels, or two contiguous tensors. A data set is a window [start, start +
 * count) of a store. */
typedef struct nbd_store {
    int refcount;
    uint8_t *bytes;        /* (N, sample...) image bytes, or NULL */
    int64_t *labels;       /* (N,) labels of byte data, or NULL */
    nb_tensor *inputs;     /* (N, sample...) contiguous, library reference, or NULL */
    nb_tensor *targets;    /* (N, target...) contiguous, library reference, or NULL */
} nbd_store;

struct nb_dataset {
    int refcount;           /* the caller's handle plus loaders using it */
    nbd_store *store;
    int64_t start, count;   /* window of the store */
    int x_ndim;             /* one input sample: shape and element count */
    int64_t x_shape[NB_MAX_DIMS];
    int64_t x_numel;
    nb_dtype x_dtype;       /* of the batches: float32 for bytes */
    bool has_targets;
    int y_ndim;             /* one target sample (0-d for labels) */
    int64_t y_shape[NB_MAX_DIMS];
    int64_t y_numel;
    nb_dtype y_dtype;
};

/* A new data set owning store (one reference taken over; released on failure). */
nb_dataset *nbd_dataset_new(const char *op, nbd_store *store, int64_t count);
void nbd_store_release(nbd_store *s);
/* Take / give back a reference to a data set (loaders keep theirs). */
nb_dataset *nbd_dataset_retain(nb_dataset *ds);

/* Copy sample i of ds (0 <= i < count) as x_dtype values into x (x_numel
 * elements) and its target into y (y_numel elements of y_dtype) if y. Plain
 * memory only: safe on the prefetch thread. */
void nbd_read_sample(const nb_dataset *ds, int64_t i, void *x, void *y);

/* ---- IDX files ---- */
typedef struct nbd_idx_header {
    int type;                  /* 0x08 .. 0x0E */
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    int64_t numel;
    size_t elem_size;
} nbd_idx_header;

/* A caller's check of the header before any data is read (NB_OK or an error). */
typedef nb_status (*nbd_idx_check_fn)(const char *op, const char *path, const nbd_idx_header *h);
/* Read the whole IDX file at path. want_type / want_ndim: required values
 * (0: any); kind names the expected content in messages ("images"); check
 * (may be NULL) vets the sizes first. On success *data (malloc'd,
 * header.numel * elem_size bytes, big-endian elements) is the caller's.
 * Errors name op and the file. */
nb_status nbd_idx_load(const char *op, const char *path, int want_type, int want_ndim, const char *kind,
                       nbd_idx_check_fn check, nbd_idx_header *header, uint8_t **data);
/* The name of an IDX type code ("uint8", ...), or NULL if it is not one. */
const char *nbd_idx_type_name(int type);

/* ---- transforms ---- */
/* x is a float32/float64 image (C, H, W) or batch (N, C, H, W): its sizes
 * (N = 1 for one image); otherwise an error naming op and false. */
bool nbd_check_images(const char *op, const nb_tensor *x, int64_t *N, int64_t *C, int64_t *H, int64_t *W);

/* RandomCrop's padded image: the input (size H, W) padded by pad1 (the
 * padding argument), then by pad2 on both sides (pad_if_needed), by mode. */
typedef struct nbd_crop_geometry {
    int64_t size[2]; /* H, W */
    int64_t pad1[4]; /* top, left, bottom, right */
    int64_t pad2[2]; /* top and bottom, left and right */
    nb_image_pad_mode mode;
    double fill;
} nbd_crop_geometry;

/* A checked pipeline for samples of one shape and dtype: each stage's
 * transform with its input shape (and RandomCrop's geometry), worked out
 * once, so that running it on a sample can neither fail nor allocate. */
typedef struct nbd_stage {
    nb_transform t;
    int64_t in_shape[3]; /* C, H, W before this stage */
    nbd_crop_geometry crop;
} nbd_stage;

typedef struct nbd_pipeline {
    nbd_stage *stages; /* owned; NULL when n is 0 */
    int n;
    nb_dtype dtype;
    int64_t in_shape[3], out_shape[3]; /* of image samples (zeros for other samples when n is 0) */
    int64_t scratch;                   /* elements per scratch buffer (two are needed) */
} nbd_pipeline;

/* Check n transforms (t may be NULL when n is 0) for samples of dtype and
 * shape in_shape (ndim must be 3 when n > 0); errors name op or the transform. */
nb_status nbd_pipeline_init(nbd_pipeline *p, const char *op, const nb_transform *t, int n, nb_dtype dtype, int ndim,
                            const int64_t *in_shape);
void nbd_pipeline_free(nbd_pipeline *p);
/* Run the pipeline on the sample held in scratch a (in_shape) and write the
 * result to out (out_shape), with scratch b; rng makes the random draws.
 * Plain memory only. */
void nbd_pipeline_run(const nbd_pipeline *p, void *a, void *b, void *out, nb_rng *rng);

/* Kernels over one (C, H, W) image of dtype (float32 or float64), in place
 * or x -> y; plain memory only. */
/* x[c] = (x[c] - mean[c]) / std[c] with mean, std rounded to dtype first
 * (nvals values: 1 applies to every channel). */
void nbd_normalize(nb_dtype dtype, void *x, int64_t C, int64_t HW, const double *mean, const double *std, int nvals);
/* Input row (axis 0) or column (axis 1) at position v of the padded image; -1: fill. */
int64_t nbd_crop_source(const nbd_crop_geometry *g, int axis, int64_t v);
/* y (C, oh, ow) = the window at (top, left) of x (C, H, W) padded as g says. */
void nbd_crop(nb_dtype dtype, void *y, const void *x, int64_t C, const nbd_crop_geometry *g, int64_t oh, int64_t ow,
              int64_t top, int64_t left);
void nbd_hflip(nb_dtype dtype, void *x, int64_t C, int64_t H, int64_t W);
/* The inverse affine map of torchvision's _get_inverse_affine_matrix for a
 * center at the image center: m[6] (2 x 3, row-major). */
void nbd_affine_inverse_matrix(double angle, double tx, double ty, double scale, double shear_x, double shear_y,
                               double *m);
/* y (C, H, W) = x resampled through the inverse map m. */
void nbd_affine(nb_dtype dtype, void *y, const void *x, int64_t C, int64_t H, int64_t W, const double *m,
                nb_interpolation interp, double fill);

/* ---- prefetch: one background thread running one job at a time ---- */
typedef struct nbd_prefetch nbd_prefetch;
typedef void (*nbd_job_fn)(void *ctx, int64_t job);
/* Start the thread (errors name op). */
nbd_prefetch *nbd_prefetch_new(const char *op, nbd_job_fn fn, void *ctx);
/* Run fn(ctx, job) on the thread (after the previous job has finished). */
void nbd_prefetch_submit(nbd_prefetch *pf, int64_t job);
/* Wait until the submitted job (if any) has finished. */
void nbd_prefetch_wait(nbd_prefetch *pf);
/* Wait, stop and join the thread, free; NULL is ignored. */
void nbd_prefetch_free(nbd_prefetch *pf);

/* The generator for the random transforms of the sample at position pos of
 * epoch's order (see RANDOMNESS in nabla/data.h). */
void nbd_sample_rng(nb_rng *rng, uint64_t seed, int64_t epoch, int64_t pos);

#endif
