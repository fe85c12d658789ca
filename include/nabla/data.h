/* nabla/data.h: data sets, a batch iterator like torch.utils.data.DataLoader,
 * and image transforms like torchvision's. Ownership and errors: nabla/core.h.
 *
 *     nb_dataset *train = nb_mnist_dataset("data/mnist", true);   // uint8 in memory
 *     nb_transform tf[] = {nb_random_affine(10), nb_normalize(1, (double[]){0.1307}, (double[]){0.3081})};
 *     tf[0].affine.translate[0] = tf[0].affine.translate[1] = 0.1;
 *     nb_loader_options o = nb_loader_defaults();
 *     o.batch_size = 64, o.shuffle = true, o.seed = 1, o.transforms = tf, o.num_transforms = 2;
 *     nb_loader *loader = nb_loader_new(train, &o);
 *     for (int64_t epoch = 0; epoch < 10; epoch++) {
 *         nb_loader_set_epoch(loader, epoch);            // as DistributedSampler.set_epoch
 *         nb_tensor *x, *y;                              // (B, 1, 28, 28) float32, (B,) int64
 *         int64_t b;
 *         while ((b = nb_loader_next(loader, &x, &y)) > 0) {
 *             ...                                        // then release x and y (or use a scope)
 *         }
 *         if (b < 0) fprintf(stderr, "%s\n", nb_last_error());
 *     }
 *     nb_loader_free(loader);
 *     nb_dataset_free(train);
 *
 * DATA SETS hold N samples, each an input and (optionally) a target. Image
 * files stay unsigned bytes in memory (MNIST's 60,000 images take 47 MB, not
 * the 188 MB of float32) and become float32 per batch, as torchvision's
 * ToTensor does: x = (float)byte / 255, a (C, H, W) image in [0, 1]. Data
 * sets are immutable and may be shared (nb_dataset_narrow); a loader keeps
 * the data set it reads alive, so nb_dataset_free may come first.
 *
 * FILES ARE UNTRUSTED. The IDX readers accept only what the format allows:
 * the magic number, data type and dimensions are checked, every size is
 * checked before use, the data must be exactly as long as the header says (a
 * truncated file or trailing bytes are errors), gzip streams must be intact,
 * and memory grows only with the data actually read, so a lying header cannot
 * make the reader allocate more than the file holds. Messages name the file
 * and what was expected versus found.
 *
 * RANDOMNESS is nabla's nb_rng (xoshiro256**, nabla/tensor.h), so a seed gives
 * the same batches on every machine, with or without prefetch, at any thread
 * count. Epoch e's order is DistributedSampler's with nabla's generator:
 * 0..N-1, shuffled (when shuffle is set) by Fisher-Yates from the last
 * position down, swapping position i with j = nb_rng_below(rng, i + 1) (the
 * first x = nb_rng_next(rng) below M - M % (i + 1), M = 2^64 - 1, taken mod
 * i + 1), rng seeded with nb_rng_seed(rng, seed + e) (uint64 arithmetic).
 * Random transforms of the sample at position p of that order (before the
 * ranks split it) draw from their own generator, seeded from (seed, e, p)
 * by a fixed function, so a sample's augmentation depends on nothing else
 * (not the batch size, the rank or prefetching). Each pass moves on to the
 * next epoch by itself (pass k follows epoch k's order, as a DataLoader
 * reshuffles every pass); nb_loader_set_epoch chooses the epoch explicitly,
 * as DistributedSampler.set_epoch does (to resume, or to repeat an order).
 *
 * THREADS. Data sets, loaders and tensors belong to the thread that made
 * them. A loader with prefetch runs one background thread that only fills
 * plain buffers from the (immutable) data set; tensors are made on the
 * caller's thread, in nb_loader_next.
 */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files (LeCun's format: MNIST, Fashion-MNIST, EMNIST, QMNIST, ...) ----
 * A 4-byte magic 00 00 <type> <ndim>, ndim big-endian uint32 sizes, then the
 * data in row-major order and big-endian byte order. Types: 0x08 uint8,
 * 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. Files may be
 * raw or gzip-compressed (detected from the content, not the name). */

/* Any IDX file (1 to NB_MAX_DIMS dimensions) as a tensor of dtype, the values
 * converted like torch's .to(dtype): integers to int64, float32 or float64
 * (int32 may round in float32), floats to float32 or float64. Float data to
 * int64 is an error (NB_ERR_DTYPE). */
NB_API nb_tensor *nb_idx_read(const char *path, nb_dtype dtype);

/* ---- data sets ---- */
typedef struct nb_dataset nb_dataset;

/* Largest rows or cols of an IDX image file accepted by the data sets. */
#define NB_IDX_MAX_SIDE 4096

/* Images from an IDX uint8 file of shape (N, H, W) (1 <= H, W <= NB_IDX_MAX_SIDE,
 * N >= 1), labels from an IDX uint8 file of shape (N,), each below
 * num_classes (1..256). Samples: a (1, H, W) image and an int64 label, as
 * torchvision's MNIST gives them (images as stored: EMNIST's are transposed
 * in the files, and torchvision's EMNIST returns them so too). */
NB_API nb_dataset *nb_idx_dataset(const char *images_path, const char *labels_path, int num_classes);
/* MNIST, Fashion-MNIST or KMNIST in dir: train-images-idx3-ubyte and
 * train-labels-idx1-ubyte (train) or t10k-* (test), each raw or with .gz
 * added; 28 x 28 images, 10 classes. */
NB_API nb_dataset *nb_mnist_dataset(const char *dir, bool train);
/* EMNIST's split ("byclass", "bymerge", "balanced", "letters", "digits",
 * "mnist") in dir: emnist-<split>-train-images-idx3-ubyte (train) or
 * emnist-<split>-test-* (test), raw or .gz; classes as torchvision's EMNIST
 * (62, 47, 47, 27 with labels 1..26, 10, 10). */
NB_API nb_dataset *nb_emnist_dataset(const char *dir, const char *split, bool train);

/* A data set over tensors, like torch.utils.data.TensorDataset: sample i is
 * inputs[i] and targets[i] (first dims equal, N >= 1; targets may be NULL).
 * Holds references to (contiguous copies of) the tensors; batches are copies
 * of their rows and never require grad. */
NB_API nb_dataset *nb_tensor_dataset(const nb_tensor *inputs, const nb_tensor *targets);

/* Samples start .. start+length-1 of ds, sharing its memory (like
 * torch.utils.data.Subset(ds, range(start, start + length))); length >= 1. */
NB_API nb_dataset *nb_dataset_narrow(const nb_dataset *ds, int64_t start, int64_t length);
/* Number of samples (len(ds)); -1 for NULL. */
NB_API int64_t nb_dataset_len(const nb_dataset *ds);
/* Shape of one input sample into shape[NB_MAX_DIMS]; returns ndim (-1 for bad arguments). */
NB_API int nb_dataset_sample_shape(const nb_dataset *ds, int64_t *shape);
/* Sample i (ds[i]): *x a new input tensor (float32 in [0, 1] for byte
 * images) and, if y is not NULL, *y a new target tensor (0-d int64 label;
 * NULL when the data set has no targets). */
NB_API nb_status nb_dataset_get(const nb_dataset *ds, int64_t i, nb_tensor **x, nb_tensor **y);
/* Release ds (the memory goes when no narrowed data set or loader uses it); NULL is ignored. */
NB_API void nb_dataset_free(nb_dataset *ds);

/* ---- transforms ----
 * Values, applied in order to each input sample, a float (C, H, W) image
 * (after the byte-to-float conversion of image files), with torchvision's
 * semantics on tensor images. Made by the functions below and adjusted by
 * setting fields; checked when a loader or nb_transforms_apply uses them (the
 * message names the transform: "RandomCrop: ..."). Values such as fill are in
 * the units of the float image (a byte image's 255 is 1.0). */
typedef enum nb_transform_kind {
    NB_TRANSFORM_NORMALIZE = 1,   /* Normalize(mean, std) */
    NB_TRANSFORM_RANDOM_CROP,     /* RandomCrop(size, padding, pad_if_needed, fill, padding_mode) */
    NB_TRANSFORM_RANDOM_HFLIP,    /* RandomHorizontalFlip(p) */
    NB_TRANSFORM_RANDOM_AFFINE    /* RandomAffine(degrees, translate, scale, shear, interpolation, fill) */
} nb_transform_kind;

/* torchvision's padding_mode: constant (fill), edge, reflect (without
 * repeating the edge), symmetric (repeating it). */
typedef enum nb_image_pad_mode { NB_IMAGE_PAD_CONSTANT = 0, NB_IMAGE_PAD_EDGE, NB_IMAGE_PAD_REFLECT, NB_IMAGE_PAD_SYMMETRIC } nb_image_pad_mode;
typedef enum nb_interpolation { NB_INTERP_NEAREST = 0, NB_INTERP_BILINEAR = 1 } nb_interpolation;

#define NB_NORMALIZE_MAX_CHANNELS 16

typedef struct nb_transform {
    nb_transform_kind kind;
    union {
        /* x[c] = (x[c] - mean[c]) / std[c], in the image's dtype (float32:
         * bitwise torchvision's). One value applies to every channel. */
        struct {
            int num_channels; /* 1 .. NB_NORMALIZE_MAX_CHANNELS */
            double mean[NB_NORMALIZE_MAX_CHANNELS], std[NB_NORMALIZE_MAX_CHANNELS];
        } normalize;
        /* Pad by padding (left, top, right, bottom), then, if pad_if_needed,
         * pad left and right by (width - W) and top and bottom by (height - H)
         * while smaller than the crop; then crop height x width at top i,
         * left j drawn uniformly (i in 0..H'-height, j in 0..W'-width; no draw
         * when the sizes are equal). */
        struct {
            int64_t height, width;
            int64_t padding[4];
            bool pad_if_needed;
            double fill;
            nb_image_pad_mode padding_mode;
        } crop;
        /* Flip left-right when a uniform draw u < p. */
        struct {
            double p;
        } hflip;
        /* Draws, in this order, angle ~ U(degrees[0], degrees[1]),
         * tx = round(U(-translate[0] * W, translate[0] * W)) and ty likewise
         * with H (round half to even, as Python's round), scale ~
         * U(scale[0], scale[1]), shear_x ~ U(shear[0], shear[1]), shear_y ~
         * U(shear[2], shear[3]) (every draw is made, a range of one value
         * gives that value), then applies nb_image_affine. */
        struct {
            double degrees[2];   /* default (-d, d) */
            double translate[2]; /* fractions of W and H in [0, 1]; default 0 */
            double scale[2];     /* default (1, 1) */
            double shear[4];     /* x range, y range in degrees; default 0 */
            nb_interpolation interpolation; /* default nearest, like torchvision */
            double fill;         /* default 0 */
        } affine;
    };
} nb_transform;

/* Normalize(mean, std) over num_channels channels (values past
 * NB_NORMALIZE_MAX_CHANNELS are an error when the transform is used). */
NB_API nb_transform nb_normalize(int num_channels, const double *mean, const double *std);
/* RandomCrop((height, width), padding) with the same padding on every side,
 * zero fill, constant mode. */
NB_API nb_transform nb_random_crop(int64_t height, int64_t width, int64_t padding);
/* RandomHorizontalFlip(p). */
NB_API nb_transform nb_random_horizontal_flip(double p);
/* RandomAffine(degrees): rotation by an angle in (-degrees, degrees); set
 * .affine.translate, .scale, .shear, .interpolation, .fill for more. */
NB_API nb_transform nb_random_affine(double degrees);

/* Apply transforms to each image of x, (N, C, H, W) or (C, H, W), float32
 * or float64, drawing for image 0, then image 1, ... from rng (NULL: the
 * default generator). A new tensor (RandomCrop changes H, W); not recorded
 * by autograd. */
NB_API nb_tensor *nb_transforms_apply(const nb_tensor *x, const nb_transform *transforms, int n, nb_rng *rng);
/* torchvision.transforms.functional.affine on a tensor image x, (N, C, H, W)
 * or (C, H, W), float32/float64: rotate by angle degrees (clockwise, in image
 * coordinates) and shear about the image center, scale (> 0), then translate
 * by (tx, ty) pixels; output pixel (i, j) samples the input at the inverse
 * map of its center, with nearest (ties to even) or bilinear interpolation;
 * outside the input: fill, as torchvision's fill (bilinear blends toward it
 * by the sampled coverage). Not recorded by autograd. */
NB_API nb_tensor *nb_image_affine(const nb_tensor *x, double angle, double tx, double ty, double scale,
                                  double shear_x, double shear_y, nb_interpolation interpolation, double fill);

/* ---- the batch iterator ---- */
typedef struct nb_loader nb_loader;

typedef struct nb_loader_options {
    int64_t batch_size;     /* default 1 (DataLoader's) */
    bool shuffle;           /* default false; see RANDOMNESS above for the order */
    uint64_t seed;          /* default 0 (DistributedSampler's) */
    bool drop_last;         /* DataLoader's: drop the last batch when it is smaller than batch_size */
    /* DistributedSampler(num_replicas=world_size, rank=rank, drop_last=sampler_drop_last):
     * this rank takes positions rank, rank + world_size, ... of the epoch's
     * order, padded by wrapping around to a multiple of world_size
     * (ceil(N / world_size) samples each), or, with sampler_drop_last, cut to
     * one (floor(N / world_size) each). Default rank 0 of 1: every sample. */
    int rank, world_size;
    bool sampler_drop_last;
    /* Prepare the next batch in a background thread while the caller trains
     * on this one (batches are bitwise the same either way). */
    bool prefetch;
    const nb_transform *transforms; /* applied to each input sample in order; copied */
    int num_transforms;
} nb_loader_options;

/* The defaults above. */
NB_API nb_loader_options nb_loader_defaults(void);
/* A loader over ds (kept alive by the loader); NULL opts means the defaults.
 * Starts at epoch 0. */
NB_API nb_loader *nb_loader_new(const nb_dataset *ds, const nb_loader_options *opts);
/* Set the epoch whose order the next pass follows (like
 * DistributedSampler.set_epoch; without it pass k follows epoch k) and
 * rewind to the start of a pass. epoch >= 0. */
NB_API nb_status nb_loader_set_epoch(nb_loader *loader, int64_t epoch);
/* The next batch of the pass: returns its size B (> 0) with *x a new
 * (B, sample shape...) input tensor and *y a new (B, target shape...) target
 * tensor (NULL without targets; y itself may be NULL). Returns 0 at the end
 * of the pass (*x, *y NULL; the next call starts the next pass, in the next
 * epoch's order) and a negative nb_status on error. */
NB_API int64_t nb_loader_next(nb_loader *loader, nb_tensor **x, nb_tensor **y);
/* Batches per pass (len(loader)); -1 for NULL. */
NB_API int64_t nb_loader_num_batches(const nb_loader *loader);
/* Samples per pass for this rank (len(sampler)); -1 for NULL. */
NB_API int64_t nb_loader_num_samples(const nb_loader *loader);
/* This rank's sample indices for the current epoch, in order, into
 * out[0 .. cap-1]; returns their number (as list(iter(sampler))). */
NB_API int64_t nb_loader_indices(nb_loader *loader, int64_t *out, int64_t cap);
/* Stop the prefetch thread and release the loader; NULL is ignored. */
NB_API void nb_loader_free(nb_loader *loader);

#ifdef __cplusplus
}
#endif
#endif
