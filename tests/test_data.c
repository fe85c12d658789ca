/* nabla/data.h beyond the IDX files (tests/test_idx.c): the tensor data set,
 * the loader (DataLoader's batching and len, DistributedSampler's positions
 * from PyTorch, the documented shuffle recomputed by the PyTorch twin,
 * prefetch giving bitwise the same batches), the transforms against
 * torchvision's tensor code paths run in PyTorch, and nb_set_error. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define REF "data.h5"

static nb_tensor *ref(const char *name, nb_dtype dtype) { return nbt_h5_read(nbt_data_path(REF), name, dtype); }

/* (n, 1, side, side) float32 images whose every pixel is the sample index
 * (so a batch row names its sample), and labels 100 + index. */
static nb_dataset *indexed_dataset(int64_t n, int64_t side) {
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(n, 1, side, side)), *y = nb_zeros(NB_I64, NB_SHAPE(n));
    float *xp = nb_tensor_f32(x);
    for (int64_t i = 0; i < n * side * side; i++) xp[i] = (float)(i / (side * side));
    for (int64_t i = 0; i < n; i++) nb_tensor_i64(y)[i] = 100 + i;
    nb_dataset *ds = nb_tensor_dataset(x, y);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    nb_tensor_release(x);
    nb_tensor_release(y);
    return ds;
}

static nb_loader *loader(const nb_dataset *ds, int64_t batch, bool shuffle, uint64_t seed, int rank, int world) {
    nb_loader_options o = nb_loader_defaults();
    o.batch_size = batch, o.shuffle = shuffle, o.seed = seed, o.rank = rank, o.world_size = world;
    nb_loader *l = nb_loader_new(ds, &o);
    ck_assert_msg(l != NULL, "%s", nb_last_error());
    return l;
}

START_TEST(test_tensor_dataset) {
    nb_tensor *x = nb_arange(NB_F64, 0, 30, 1), *y = nb_arange(NB_I64, 0, 5, 1);
    nb_tensor *x3 = nb_reshape(x, NB_SHAPE(5, 2, 3));
    nb_scope *s = nb_scope_begin();
    nb_dataset *ds = nb_tensor_dataset(x3, y); /* made in a scope: the data set keeps its own references */
    nb_scope_end(s);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_dataset_len(ds), 5);
    int64_t shape[NB_MAX_DIMS];
    ck_assert_int_eq(nb_dataset_sample_shape(ds, shape), 2);
    ck_assert(shape[0] == 2 && shape[1] == 3);
    nb_tensor *xi, *yi;
    NBT_OK(nb_dataset_get(ds, 3, &xi, &yi));
    nbt_assert_shape(xi, NB_SHAPE(2, 3));
    ck_assert_int_eq(nb_tensor_dtype(xi), NB_F64);
    for (int k = 0; k < 6; k++) ck_assert(nb_tensor_f64(xi)[k] == 18 + k);
    ck_assert_int_eq(nb_tensor_ndim(yi), 0);
    ck_assert_int_eq(nb_tensor_i64(yi)[0], 3);
    nb_tensor_release(xi);
    nb_tensor_release(yi);
    nb_dataset *mid = nb_dataset_narrow(ds, 1, 3);
    ck_assert_ptr_nonnull(mid);
    nb_dataset_free(ds); /* mid keeps the memory */
    ck_assert_int_eq(nb_dataset_len(mid), 3);
    NBT_OK(nb_dataset_get(mid, 0, &xi, NULL));
    ck_assert(nb_tensor_f64(xi)[0] == 6);
    nb_tensor_release(xi);
    NBT_STATUS_FAILS_WITH(nb_dataset_get(mid, 3, &xi, &yi), "index 3 is out of range for a data set of 3 samples");
    ck_assert_ptr_null(xi);
    NBT_FAILS_WITH(nb_dataset_narrow(mid, 1, 3), "start + length <= 3, but got start 1, length 3");
    nb_dataset_free(mid);

    /* a transposed (non-contiguous) input is read in its logical order; no targets */
    nb_tensor *x65 = nb_reshape(x, NB_SHAPE(6, 5));
    nb_tensor *t = nb_transpose(x65, 0, 1); /* (5, 6) */
    nb_tensor_release(x65);
    ds = nb_tensor_dataset(t, NULL);
    NBT_OK(nb_dataset_get(ds, 1, &xi, &yi));
    ck_assert_ptr_null(yi);
    for (int k = 0; k < 6; k++) ck_assert(nb_tensor_f64(xi)[k] == 1 + 5 * k);
    nb_tensor_release(xi);
    nb_loader *l = loader(ds, 4, false, 0, 0, 1);
    nb_tensor *bx, *by;
    ck_assert_int_eq(nb_loader_next(l, &bx, &by), 4);
    ck_assert_ptr_null(by); /* no targets, no y */
    nbt_assert_shape(bx, NB_SHAPE(4, 6));
    nb_tensor_release(bx);
    nb_loader_free(l);
    nb_dataset_free(ds);
    nb_tensor_release(t);

    NBT_FAILS_WITH(nb_tensor_dataset(x3, x), "Size mismatch between tensors");
    nb_tensor *zero = nb_zeros(NB_F32, NB_SHAPE(0, 3));
    NBT_FAILS_WITH(nb_tensor_dataset(zero, NULL), "expected inputs of shape (N, ...) with N >= 1, but got [0, 3]");
    nb_tensor_release(zero);
    nb_tensor_release(x3);
    nb_tensor_release(x);
    nb_tensor_release(y);
}
END_TEST

/* One pass: batch sizes B, ..., tail (or none with drop_last), every row the
 * sample the loader's indices name; returns the number of batches. */
static int64_t check_pass(nb_loader *l, int64_t batch, bool drop_last, int64_t side) {
    int64_t n = nb_loader_num_samples(l);
    int64_t *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
    ck_assert_int_eq(nb_loader_indices(l, idx, n), n);
    size_t mem = nb_memory_in_use();
    nb_tensor *x, *y;
    int64_t b, seen = 0, batches = 0;
    while ((b = nb_loader_next(l, &x, &y)) > 0) {
        int64_t want = n - seen < batch ? n - seen : batch;
        ck_assert_int_eq(b, want);
        nbt_assert_shape(x, NB_SHAPE(b, 1, side, side));
        nbt_assert_shape(y, NB_SHAPE(b));
        for (int64_t k = 0; k < b; k++) {
            ck_assert_int_eq((int64_t)nb_tensor_f32(x)[k * side * side], idx[seen + k]);
            ck_assert_int_eq((int64_t)nb_tensor_f32(x)[(k + 1) * side * side - 1], idx[seen + k]);
            ck_assert_int_eq(nb_tensor_i64(y)[k], 100 + idx[seen + k]);
        }
        nb_tensor_release(x);
        nb_tensor_release(y);
        ck_assert_uint_eq(nb_memory_in_use(), mem); /* the batches were the caller's and are gone */
        seen += b;
        batches++;
    }
    ck_assert_int_eq(b, 0);
    ck_assert_ptr_null(x);
    ck_assert_ptr_null(y);
    ck_assert_int_eq(seen, drop_last ? n / batch * batch : n);
    ck_assert_int_eq(batches, nb_loader_num_batches(l));
    free(idx);
    return batches;
}

/* len(DataLoader(range(n), batch_size=b, drop_last=d)) as PyTorch counts it. */
START_TEST(test_loader_batches) {
    nb_tensor *lens = ref("loader_len", NB_I64);
    const int64_t *L = nb_tensor_i64(lens);
    for (int64_t r = 0; r < nb_tensor_shape(lens)[0]; r++) {
        int64_t n = L[4 * r], b = L[4 * r + 1], drop = L[4 * r + 2], want = L[4 * r + 3];
        nb_dataset *ds = indexed_dataset(n, 2);
        nb_loader_options o = nb_loader_defaults();
        o.batch_size = b, o.drop_last = drop, o.shuffle = r % 2, o.seed = (uint64_t)r;
        nb_loader *l = nb_loader_new(ds, &o);
        ck_assert_ptr_nonnull(l);
        ck_assert_msg(nb_loader_num_batches(l) == want, "n %lld batch %lld drop_last %lld: %lld batches, PyTorch %lld",
                      (long long)n, (long long)b, (long long)drop, (long long)nb_loader_num_batches(l), (long long)want);
        ck_assert_int_eq(check_pass(l, b, drop, 2), want);
        nb_loader_free(l);
        nb_dataset_free(ds);
    }
    nb_tensor_release(lens);
}
END_TEST

/* The shuffle is the documented algorithm (recomputed in Python by the twin),
 * so it is the same on every machine; set_epoch picks seed + epoch; the
 * pass after a finished one follows the next epoch; set_epoch rewinds. */
START_TEST(test_documented_order) {
    static const struct { int64_t n; uint64_t seed; int64_t epoch; } cases[] = {
        {10, 42, 0}, {10, 42, 1}, {10, 42, 2}, {1000, 7, 3}, {60000, 1 ^ 0x5eed0002ULL, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char name[96];
        snprintf(name, sizeof name, "order/n%lld_s%llu_e%lld", (long long)cases[c].n, (unsigned long long)cases[c].seed,
                 (long long)cases[c].epoch);
        nb_tensor *want = ref(name, NB_I64);
        nb_dataset *ds = indexed_dataset(cases[c].n, 1);
        nb_loader *l = loader(ds, 7, true, cases[c].seed, 0, 1);
        NBT_OK(nb_loader_set_epoch(l, cases[c].epoch));
        int64_t *got = malloc(sizeof *got * (size_t)cases[c].n);
        ck_assert_int_eq(nb_loader_indices(l, got, cases[c].n), cases[c].n);
        ck_assert_msg(memcmp(got, nb_tensor_i64(want), sizeof *got * (size_t)cases[c].n) == 0, "%s differs", name);
        free(got);
        nb_loader_free(l);
        nb_dataset_free(ds);
        nb_tensor_release(want);
    }
    /* no shuffle: 0..N-1 whatever the epoch */
    nb_dataset *ds = indexed_dataset(6, 1);
    nb_loader *l = loader(ds, 4, false, 9, 0, 1);
    NBT_OK(nb_loader_set_epoch(l, 5));
    int64_t got[6];
    nb_loader_indices(l, got, 6);
    for (int i = 0; i < 6; i++) ck_assert_int_eq(got[i], i);
    nb_loader_free(l);
    /* passes and rewinds */
    l = loader(ds, 4, true, 3, 0, 1);
    nb_tensor *x, *y;
    ck_assert_int_eq(nb_loader_next(l, &x, &y), 4);
    float first = nb_tensor_f32(x)[0];
    nb_tensor_release(x), nb_tensor_release(y);
    ck_assert_int_eq(nb_loader_next(l, &x, &y), 2);
    nb_tensor_release(x), nb_tensor_release(y);
    ck_assert_int_eq(nb_loader_next(l, &x, &y), 0);
    /* the next pass follows epoch 1's order, as set_epoch(1) gives it */
    nb_loader *l1 = loader(ds, 4, true, 3, 0, 1);
    NBT_OK(nb_loader_set_epoch(l1, 1));
    int64_t order0[6], order1[6], want1[6];
    ck_assert_int_eq(nb_loader_indices(l, order1, 6), 6);
    ck_assert_int_eq(nb_loader_indices(l1, want1, 6), 6);
    ck_assert(memcmp(order1, want1, sizeof order1) == 0);
    NBT_OK(nb_loader_set_epoch(l1, 0));
    ck_assert_int_eq(nb_loader_indices(l1, order0, 6), 6);
    ck_assert_msg(memcmp(order0, order1, sizeof order0) != 0, "epochs 0 and 1 have the same order");
    nb_loader_free(l1);
    ck_assert_int_eq(nb_loader_next(l, &x, &y), 4);
    ck_assert(nb_tensor_f32(x)[0] == (float)order1[0]);
    nb_tensor_release(x), nb_tensor_release(y);
    NBT_OK(nb_loader_set_epoch(l, 0)); /* back to epoch 0, rewinding mid-pass */
    ck_assert_int_eq(nb_loader_next(l, &x, &y), 4);
    ck_assert(nb_tensor_f32(x)[0] == first);
    nb_tensor_release(x), nb_tensor_release(y);
    nb_loader_free(l);
    nb_dataset_free(ds);
}
END_TEST

/* Ranks take PyTorch's DistributedSampler positions (padding by wrapping, or
 * cutting with sampler_drop_last) of the same permutation; W ranks with batch
 * B see together what one process with batch W * B sees. */
START_TEST(test_distributed_sampler) {
    static const int64_t cases[][2] = {{10, 3}, {10, 2}, {3, 4}, {2, 5}, {7, 7}, {11, 4}}; /* N, world */
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int64_t n = cases[c][0];
        int world = (int)cases[c][1];
        nb_dataset *ds = indexed_dataset(n, 1);
        for (int drop = 0; drop < 2; drop++) {
            const int64_t B = 2;
            nb_loader *whole = loader(ds, world * B, true, 42, 0, 1);
            NBT_OK(nb_loader_set_epoch(whole, 1));
            int64_t perm[16];
            nb_loader_indices(whole, perm, n);
            int64_t union_k[16][16], union_n[16] = {0};
            for (int r = 0; r < world; r++) {
                char name[64];
                snprintf(name, sizeof name, "dist/n%lld_w%d_d%d_r%d", (long long)n, world, drop, r);
                nb_tensor *pos = ref(name, NB_I64); /* PyTorch's positions */
                int64_t per = nb_tensor_numel(pos);
                nb_loader_options o = nb_loader_defaults();
                o.batch_size = B, o.shuffle = true, o.seed = 42, o.rank = r, o.world_size = world;
                o.sampler_drop_last = drop;
                nb_loader *l = nb_loader_new(ds, &o);
                ck_assert_ptr_nonnull(l);
                NBT_OK(nb_loader_set_epoch(l, 1));
                ck_assert_int_eq(nb_loader_num_samples(l), per);
                int64_t idx[16];
                ck_assert_int_eq(nb_loader_indices(l, idx, 16), per);
                for (int64_t k = 0; k < per; k++) ck_assert_int_eq(idx[k], perm[nb_tensor_i64(pos)[k]]);
                nb_tensor *x, *y;
                int64_t b, p = 0;
                for (int64_t k = 0; (b = nb_loader_next(l, &x, &y)) > 0; k++) {
                    for (int64_t j = 0; j < b; j++, p++) {
                        ck_assert_int_eq((int64_t)nb_tensor_f32(x)[j], idx[p]);
                        union_k[k][union_n[k]++] = idx[p];
                    }
                    nb_tensor_release(x), nb_tensor_release(y);
                }
                ck_assert_int_eq(p, per);
                nb_loader_free(l);
                nb_tensor_release(pos);
            }
            /* batch k of the whole run holds the samples of batch k of all
             * ranks (padding and cutting aside: when world does not divide N,
             * ranks repeat or skip samples) */
            nb_tensor *x, *y;
            for (int64_t k = 0, b; (b = nb_loader_next(whole, &x, &y)) > 0; k++) {
                if (n % world == 0) {
                    ck_assert_int_eq(union_n[k], b);
                    for (int64_t j = 0; j < b; j++) {
                        bool found = false;
                        for (int64_t q = 0; q < union_n[k]; q++) found |= union_k[k][q] == (int64_t)nb_tensor_f32(x)[j];
                        ck_assert(found);
                    }
                }
                nb_tensor_release(x), nb_tensor_release(y);
            }
            nb_loader_free(whole);
        }
        nb_dataset_free(ds);
    }
}
END_TEST

/* A pipeline with every random transform, over float images with distinct pixels. */
static nb_dataset *image_dataset(int64_t n) {
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *x = nb_rand_uniform(&rng, NB_F32, NB_SHAPE(n, 2, 9, 11), 0, 1);
    nb_tensor *y = nb_arange(NB_I64, 0, (double)n, 1);
    nb_dataset *ds = nb_tensor_dataset(x, y);
    nb_tensor_release(x);
    nb_tensor_release(y);
    return ds;
}

static void augmentations(nb_transform *t) {
    t[0] = nb_random_crop(8, 10, 2);
    t[0].crop.padding_mode = NB_IMAGE_PAD_REFLECT;
    t[1] = nb_random_horizontal_flip(0.5);
    t[2] = nb_random_affine(15);
    t[2].affine.translate[0] = t[2].affine.translate[1] = 0.2;
    t[2].affine.scale[0] = 0.9, t[2].affine.scale[1] = 1.1;
    t[2].affine.interpolation = NB_INTERP_BILINEAR;
    t[3] = nb_normalize(2, (double[]){0.5, 0.4}, (double[]){0.2, 0.3});
}

/* All batches of epochs 0..2 (with a restart and a rewind on the way) into buf. */
static int64_t collect(const nb_dataset *ds, bool prefetch, int64_t batch, int rank, int world, float *buf) {
    nb_transform t[4];
    augmentations(t);
    nb_loader_options o = nb_loader_defaults();
    o.batch_size = batch, o.shuffle = true, o.seed = 77, o.prefetch = prefetch, o.rank = rank, o.world_size = world;
    o.transforms = t, o.num_transforms = 4;
    nb_loader *l = nb_loader_new(ds, &o);
    ck_assert_msg(l != NULL, "%s", nb_last_error());
    int64_t used = 0;
    nb_tensor *x, *y;
    for (int64_t epoch = 0; epoch < 3; epoch++) {
        NBT_OK(nb_loader_set_epoch(l, epoch));
        if (epoch == 1) { /* take a batch, then rewind: the pass starts over */
            ck_assert_int_gt(nb_loader_next(l, &x, &y), 0);
            nb_tensor_release(x), nb_tensor_release(y);
            NBT_OK(nb_loader_set_epoch(l, epoch));
        }
        int64_t b;
        while ((b = nb_loader_next(l, &x, &y)) > 0) {
            nbt_assert_shape(x, NB_SHAPE(b, 2, 8, 10));
            memcpy(buf + used, nb_tensor_f32(x), sizeof(float) * (size_t)(b * 160));
            used += b * 160;
            nb_tensor_release(x), nb_tensor_release(y);
        }
        ck_assert_int_eq(b, 0);
    }
    nb_loader_free(l);
    return used;
}

/* Prefetch changes nothing (bitwise), and a sample's augmentation depends
 * only on (seed, epoch, position): W ranks with batch B get the samples one
 * process with batch W * B gets. */
START_TEST(test_prefetch_and_augmentation) {
    const int64_t n = 23;
    nb_dataset *ds = image_dataset(n);
    float *a = calloc(3 * 24 * 160, sizeof *a), *b = calloc(3 * 24 * 160, sizeof *b);
    int64_t na = collect(ds, false, 5, 0, 1, a), nbv = collect(ds, true, 5, 0, 1, b);
    ck_assert_int_eq(na, 3 * n * 160);
    ck_assert_int_eq(nbv, na);
    ck_assert_msg(memcmp(a, b, sizeof *a * (size_t)na) == 0, "prefetch changed the batches");
    /* batch 3: the same samples in other batches */
    ck_assert_int_eq(collect(ds, true, 3, 0, 1, b), na);
    ck_assert(memcmp(a, b, sizeof *a * (size_t)na) == 0);
    /* the augmentation is random: epochs differ, not all flips equal */
    ck_assert(memcmp(a, a + n * 160, sizeof *a * n * 160) != 0);
    /* 2 ranks: rank r's k-th sample is global position r + 2k */
    float *r0 = calloc(3 * 12 * 160, sizeof *r0), *r1 = calloc(3 * 12 * 160, sizeof *r1);
    int64_t n0 = collect(ds, true, 2, 0, 2, r0), n1 = collect(ds, false, 2, 1, 2, r1);
    ck_assert_int_eq(n0, 3 * 12 * 160);
    ck_assert_int_eq(n1, 3 * 12 * 160);
    for (int64_t e = 0; e < 3; e++)
        for (int64_t k = 0; k < 12; k++)
            for (int r = 0; r < 2; r++) {
                int64_t pos = r + 2 * k;
                if (pos >= n) continue; /* the wrapped padding sample */
                const float *got = (r ? r1 : r0) + (e * 12 + k) * 160, *want = a + (e * n + pos) * 160;
                ck_assert_msg(memcmp(got, want, 160 * sizeof(float)) == 0, "epoch %lld rank %d sample %lld",
                              (long long)e, r, (long long)k);
            }
    free(r0), free(r1), free(a), free(b);
    nb_dataset_free(ds);
}
END_TEST

START_TEST(test_normalize_matches_pytorch) {
    double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    nb_transform t = nb_normalize(3, mean, std);
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *in = ref(d ? "normalize/float64/in" : "normalize/float32/in", dt);
        nb_tensor *want = ref(d ? "normalize/float64/out" : "normalize/float32/out", dt);
        nb_tensor *got = NBT_NOTNULL(nb_transforms_apply(in, &t, 1, NULL));
        nbt_assert_bitwise_equal(got, want);
        nb_tensor_release(got);
        nb_tensor_release(in);
        nb_tensor_release(want);
    }
    /* one value for every channel */
    nb_tensor *in = ref("normalize/float32/in", NB_F32);
    nb_transform one = nb_normalize(1, mean, std);
    nb_tensor *got = NBT_NOTNULL(nb_transforms_apply(in, &one, 1, NULL));
    float m = (float)mean[0], s = (float)std[0];
    for (int64_t i = 0; i < nb_tensor_numel(in); i++) ck_assert(nb_tensor_f32(got)[i] == (nb_tensor_f32(in)[i] - m) / s);
    nb_tensor_release(got);
    nb_transform zero = nb_normalize(1, (double[]){0.5}, (double[]){1e-60}); /* zero in float32 */
    NBT_FAILS_WITH(nb_transforms_apply(in, &zero, 1, NULL), "Normalize: std evaluated to zero after conversion to float32");
    nb_transform two = nb_normalize(2, mean, std);
    NBT_FAILS_WITH(nb_transforms_apply(in, &two, 1, NULL), "Normalize: 2 mean and std values cannot apply to an image of 3 channels");
    nb_tensor_release(in);
}
END_TEST

/* Offset (top, left) at which out (C, oh, ow) is a window of padded (C, ph, pw), or -1. */
static int64_t window_of(const float *out, int64_t C, int64_t oh, int64_t ow, const float *padded, int64_t ph, int64_t pw) {
    for (int64_t t = 0; t + oh <= ph; t++)
        for (int64_t l = 0; l + ow <= pw; l++) {
            bool same = true;
            for (int64_t c = 0; c < C && same; c++)
                for (int64_t i = 0; i < oh && same; i++)
                    same = memcmp(out + (c * oh + i) * ow, padded + (c * ph + t + i) * pw + l, sizeof(float) * (size_t)ow) == 0;
            if (same) return t * pw + l;
        }
    return -1;
}

/* RandomCrop: every output is a window of torchvision's padded image (each
 * padding mode), every offset occurs, and equal sizes draw nothing. */
START_TEST(test_random_crop) {
    nb_tensor *in = ref("crop/in", NB_F32); /* (2, 5, 6), padded by (l 1, t 2, r 3, b 2) to (2, 9, 10) */
    const char *modes[] = {"constant", "edge", "reflect", "symmetric"};
    for (int m = 0; m < 4; m++) {
        char name[64];
        snprintf(name, sizeof name, "crop/padded_%s", modes[m]);
        nb_tensor *padded = ref(name, NB_F32);
        nb_transform t = nb_random_crop(5, 6, 0);
        int64_t pads[4] = {1, 2, 3, 2};
        memcpy(t.crop.padding, pads, sizeof pads);
        t.crop.padding_mode = (nb_image_pad_mode)m;
        t.crop.fill = 0.5;
        bool seen[5 * 5] = {false};
        nb_rng rng;
        nb_rng_seed(&rng, (uint64_t)m);
        for (int k = 0; k < 400; k++) {
            nb_tensor *out = NBT_NOTNULL(nb_transforms_apply(in, &t, 1, &rng));
            nbt_assert_shape(out, NB_SHAPE(2, 5, 6));
            int64_t at = window_of(nb_tensor_f32(out), 2, 5, 6, nb_tensor_f32(padded), 9, 10);
            ck_assert_msg(at >= 0, "%s: crop %d is no window of PyTorch's padded image", modes[m], k);
            seen[at / 10 * 5 + at % 10] = true;
            nb_tensor_release(out);
        }
        for (int s = 0; s < 25; s++) ck_assert_msg(seen[s], "%s: offset (%d, %d) never drawn", modes[m], s / 5, s % 5);
        nb_tensor_release(padded);
    }
    /* pad_if_needed (reflect): torchvision pads twice */
    nb_tensor *small = ref("crop/small", NB_F32), *want = ref("crop/pad_if_needed_reflect", NB_F32); /* (1, 14, 11) */
    nb_transform t = nb_random_crop(10, 9, 1);
    t.crop.pad_if_needed = true;
    t.crop.padding_mode = NB_IMAGE_PAD_REFLECT;
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    for (int k = 0; k < 50; k++) {
        nb_tensor *out = NBT_NOTNULL(nb_transforms_apply(small, &t, 1, &rng));
        ck_assert_int_ge(window_of(nb_tensor_f32(out), 1, 10, 9, nb_tensor_f32(want), 14, 11), 0);
        nb_tensor_release(out);
    }
    t.crop.pad_if_needed = false;
    NBT_FAILS_WITH(nb_transforms_apply(small, &t, 1, &rng), "RandomCrop: Required crop size (10, 9) is larger than input image size (6, 7)");
    /* same size, no padding: the identity, and no draw */
    nb_transform same = nb_random_crop(5, 6, 0);
    nb_rng before = rng;
    nb_tensor *out = NBT_NOTNULL(nb_transforms_apply(in, &same, 1, &rng));
    nbt_assert_bitwise_equal(out, in);
    ck_assert_mem_eq(&before, &rng, sizeof rng);
    nb_tensor_release(out);
    nb_transform big = nb_random_crop(5, 6, 6);
    big.crop.padding_mode = NB_IMAGE_PAD_REFLECT;
    NBT_FAILS_WITH(nb_transforms_apply(in, &big, 1, &rng), "RandomCrop: reflect padding");
    nb_tensor_release(small);
    nb_tensor_release(want);
    nb_tensor_release(in);
}
END_TEST

START_TEST(test_horizontal_flip) {
    nb_tensor *in = ref("crop/in", NB_F32); /* (2, 5, 6) */
    nb_transform always = nb_random_horizontal_flip(1.0), never = nb_random_horizontal_flip(0.0);
    nb_tensor *f1 = NBT_NOTNULL(nb_transforms_apply(in, &always, 1, NULL));
    for (int64_t r = 0; r < 10; r++)
        for (int64_t j = 0; j < 6; j++) ck_assert(nb_tensor_f32(f1)[r * 6 + j] == nb_tensor_f32(in)[r * 6 + 5 - j]);
    nb_transform twice[2] = {always, always};
    nb_tensor *f2 = NBT_NOTNULL(nb_transforms_apply(in, twice, 2, NULL));
    nbt_assert_bitwise_equal(f2, in);
    nb_tensor *f0 = NBT_NOTNULL(nb_transforms_apply(in, &never, 1, NULL));
    nbt_assert_bitwise_equal(f0, in);
    /* p = 0.5 on a batch of 2000 identical images: about half flipped */
    nb_tensor *batch = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2000, 1, 1, 2)));
    for (int64_t i = 0; i < 2000; i++) nb_tensor_f32(batch)[2 * i + 1] = 1;
    nb_transform half = nb_random_horizontal_flip(0.5);
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *fb = NBT_NOTNULL(nb_transforms_apply(batch, &half, 1, &rng));
    int flipped = 0;
    for (int64_t i = 0; i < 2000; i++) flipped += nb_tensor_f32(fb)[2 * i] == 1;
    ck_assert_msg(flipped > 900 && flipped < 1100, "%d of 2000 flipped", flipped);
    NBT_FAILS_WITH(nb_transforms_apply(in, (nb_transform[]){nb_random_horizontal_flip(1.5)}, 1, NULL),
                   "RandomHorizontalFlip: expected p in [0, 1], but got 1.5");
    nb_tensor *all[] = {f0, f1, f2, batch, fb, in};
    for (int i = 0; i < 6; i++) nb_tensor_release(all[i]);
}
END_TEST

/* nb_image_affine against torchvision's F.affine on a tensor, run in PyTorch:
 * nearest bitwise (the twin keeps every sample away from rounding ties),
 * bilinear to float rounding. */
START_TEST(test_affine_matches_pytorch) {
    nb_tensor *params = ref("affine/params", NB_F64);
    nb_tensor *in = ref("affine/in", NB_F32), *in64 = ref("affine/in64", NB_F64);
    const double *P = nb_tensor_f64(params);
    for (int64_t i = 0; i < nb_tensor_shape(params)[0]; i++) {
        const double *p = P + 8 * i;
        nb_interpolation mode = p[6] ? NB_INTERP_BILINEAR : NB_INTERP_NEAREST;
        char name[64];
        for (int d = 0; d < 2; d++) {
            snprintf(name, sizeof name, d ? "affine/out64_%lld" : "affine/out%lld", (long long)i);
            nb_tensor *want = ref(name, d ? NB_F64 : NB_F32);
            nb_tensor *got = NBT_NOTNULL(nb_image_affine(d ? in64 : in, p[0], p[1], p[2], p[3], p[4], p[5], mode, p[7]));
            if (mode == NB_INTERP_NEAREST) {
                nbt_assert_bitwise_equal(got, want);
            } else {
                int64_t n = nb_tensor_numel(want);
                double *w = malloc(sizeof *w * (size_t)n);
                NBT_OK(nb_tensor_copy_out(want, w, NB_F64));
                nbt_assert_values(got, w, n, d ? 1e-12 : 2e-6, d ? 1e-12 : 1e-5);
                free(w);
            }
            nb_tensor_release(got);
            nb_tensor_release(want);
        }
    }
    /* a batch is each image transformed alike */
    nb_tensor *u = nb_unsqueeze(in, 0);
    nb_tensor *two = nb_cat((const nb_tensor *const[]){u, u}, 2, 0);
    nb_tensor_release(u);
    nb_tensor *got = NBT_NOTNULL(nb_image_affine(two, 17.3, 0, 0, 1, 0, 0, NB_INTERP_NEAREST, 0));
    nb_tensor *want = ref("affine/out4", NB_F32);
    nb_tensor *g1 = nb_select(got, 0, 1);
    nbt_assert_bitwise_equal(g1, want);
    NBT_FAILS_WITH(nb_image_affine(in, 0, 0, 0, 0, 0, 0, NB_INTERP_NEAREST, 0), "image_affine: Argument scale should be positive");
    nb_tensor *all[] = {params, in, in64, two, got, want, g1};
    for (int k = 0; k < 7; k++) nb_tensor_release(all[k]);
}
END_TEST

/* RandomAffine: a zero range is the identity; a one-angle range is
 * nb_image_affine at that angle; translations are whole pixels within
 * round(translate * size); the same seed gives the same images. */
START_TEST(test_random_affine) {
    nb_tensor *in = ref("affine/in", NB_F32); /* (3, 13, 17) */
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_transform id = nb_random_affine(0);
    for (int interp = 0; interp < 2; interp++) {
        id.affine.interpolation = (nb_interpolation)interp;
        nb_tensor *out = NBT_NOTNULL(nb_transforms_apply(in, &id, 1, &rng));
        nbt_assert_bitwise_equal(out, in);
        nb_tensor_release(out);
    }
    nb_transform fixed = nb_random_affine(0);
    fixed.affine.degrees[0] = fixed.affine.degrees[1] = 17.3;
    nb_tensor *out = NBT_NOTNULL(nb_transforms_apply(in, &fixed, 1, &rng));
    nb_tensor *want = ref("affine/out4", NB_F32);
    nbt_assert_bitwise_equal(out, want);
    nb_tensor_release(out);
    nb_tensor_release(want);
    nb_transform shift = nb_random_affine(0);
    shift.affine.translate[0] = 0.2, shift.affine.translate[1] = 0.1; /* max 3.4 and 1.3 pixels */
    bool seen[9][5] = {{false}};
    for (int k = 0; k < 300; k++) {
        nb_tensor *o = NBT_NOTNULL(nb_transforms_apply(in, &shift, 1, &rng));
        bool found = false;
        for (int tx = -4; tx <= 4 && !found; tx++)
            for (int ty = -2; ty <= 2 && !found; ty++) {
                nb_tensor *c = nb_image_affine(in, 0, tx, ty, 1, 0, 0, NB_INTERP_NEAREST, 0);
                if (memcmp(nb_tensor_f32(c), nb_tensor_f32(o), sizeof(float) * 3 * 13 * 17) == 0) {
                    found = true;
                    seen[tx + 4][ty + 2] = true;
                }
                nb_tensor_release(c);
            }
        ck_assert_msg(found, "draw %d is no whole-pixel translation", k);
        nb_tensor_release(o);
    }
    for (int tx = -3; tx <= 3; tx++)
        for (int ty = -1; ty <= 1; ty++) ck_assert_msg(seen[tx + 4][ty + 2], "translation (%d, %d) never drawn", tx, ty);
    ck_assert(!seen[0][2] && !seen[8][2] && !seen[4][0] && !seen[4][4]); /* beyond round(max) */
    /* same seed, same images */
    nb_transform t[4];
    augmentations(t);
    nb_rng a, b;
    nb_rng_seed(&a, 1), nb_rng_seed(&b, 1);
    nb_tensor *x = nb_rand_uniform(&rng, NB_F32, NB_SHAPE(4, 2, 9, 11), 0, 1);
    nb_tensor *ya = NBT_NOTNULL(nb_transforms_apply(x, t, 4, &a)), *yb = NBT_NOTNULL(nb_transforms_apply(x, t, 4, &b));
    nbt_assert_bitwise_equal(ya, yb);
    nb_transform bad = nb_random_affine(10);
    bad.affine.translate[0] = 1.5;
    NBT_FAILS_WITH(nb_transforms_apply(x, &bad, 1, NULL), "RandomAffine: translation values should be between 0 and 1");
    nb_tensor_release(x), nb_tensor_release(ya), nb_tensor_release(yb);
    nb_tensor_release(in);
}
END_TEST

START_TEST(test_set_error) {
    nb_clear_error();
    ck_assert_int_eq(nb_set_error(NB_ERR_SHAPE, "my_op: expected %d rows, but got %s", 3, "four"), NB_ERR_SHAPE);
    ck_assert_int_eq(nb_last_status(), NB_ERR_SHAPE);
    ck_assert_str_eq(nb_last_error(), "my_op: expected 3 rows, but got four");
    /* an op given the failed result of a custom op keeps its message */
    NBT_FAILS_WITH(nb_relu(NULL), "is NULL"); /* (cleared first by the macro) */
    nb_set_error(NB_ERR_IO, "reader: broken");
    ck_assert_ptr_null(nb_relu(NULL));
    ck_assert_str_eq(nb_last_error(), "reader: broken");
    ck_assert_int_eq(nb_set_error(NB_OK, "fine"), NB_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "set_error: expected a negative nb_status (an error), but got 0"));
    ck_assert_int_eq(nb_set_error(NB_ERR_IO, NULL), NB_ERR_ARG);
    ck_assert_str_eq(nb_last_error(), "set_error: fmt is NULL");
    char longmsg[5000];
    memset(longmsg, 'a', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = 0;
    nb_set_error(NB_ERR_ARG, "%s", longmsg);
    ck_assert_uint_eq(strlen(nb_last_error()), 4095);
    nb_clear_error();
}
END_TEST

int main(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_add_test(tc, test_tensor_dataset);
    tcase_add_test(tc, test_loader_batches);
    tcase_add_test(tc, test_documented_order);
    tcase_add_test(tc, test_distributed_sampler);
    tcase_add_test(tc, test_prefetch_and_augmentation);
    tcase_add_test(tc, test_normalize_matches_pytorch);
    tcase_add_test(tc, test_random_crop);
    tcase_add_test(tc, test_horizontal_flip);
    tcase_add_test(tc, test_affine_matches_pytorch);
    tcase_add_test(tc, test_random_affine);
    tcase_add_test(tc, test_set_error);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
