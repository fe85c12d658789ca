/* IDX files through nabla/data.h: nb_idx_read for every IDX data type
 * against PyTorch's conversions, the image data sets (nb_idx_dataset,
 * nb_mnist_dataset, nb_emnist_dataset) on raw and gzipped files, the
 * rejection of corrupt files with messages that name the file, ToTensor and
 * Normalize against PyTorch, and (when fetched) the real MNIST and Fashion-MNIST. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- a temporary directory of test files ---- */
static char tmpdir[64];
static char pathbuf[512], pathbuf2[512];

static void tmp_setup(void) {
    strcpy(tmpdir, "/tmp/nb_test_idx_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(tmpdir);
}

static const char *tpath(const char *name) {
    snprintf(pathbuf, sizeof pathbuf, "%s/%s", tmpdir, name);
    return pathbuf;
}

static const char *tpath2(const char *name) {
    snprintf(pathbuf2, sizeof pathbuf2, "%s/%s", tmpdir, name);
    return pathbuf2;
}

static void write_raw(const char *name, const uint8_t *b, size_t n) {
    FILE *f = fopen(tpath(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *name, const uint8_t *b, size_t n) {
    gzFile f = gzopen(tpath(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An image file: magic, count, rows, cols, then pixels[i] = pix(i); returns its size. */
static size_t make_images(uint8_t *buf, uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols,
                          size_t npix, uint8_t (*pix)(size_t)) {
    put_be32(buf, magic);
    put_be32(buf + 4, count);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t i = 0; i < npix; i++) buf[16 + i] = pix(i);
    return 16 + npix;
}

static size_t make_labels(uint8_t *buf, uint32_t count, const uint8_t *labels, size_t n) {
    put_be32(buf, 0x00000801);
    put_be32(buf + 4, count);
    memcpy(buf + 8, labels, n);
    return 8 + n;
}

static uint8_t pix_mix(size_t i) { return (uint8_t)(i * 37 + 11); }
static uint8_t pix_all(size_t i) { return (uint8_t)(i % 256); }

/* Valid companions for the failure tests: 2 labels, 2 images of 3 x 3. */
static void write_good_pair(void) {
    uint8_t lab[2] = {1, 2}, lbuf[16], ibuf[16 + 18];
    write_raw("good_labels", lbuf, make_labels(lbuf, 2, lab, 2));
    write_raw("good_images", ibuf, make_images(ibuf, 0x00000803, 2, 3, 3, 18, pix_mix));
}

/* Reading name as the images of a data set fails with status want, a message
 * naming the op, the file and containing frag. */
static void images_fail(const char *name, nb_status want, const char *frag) {
    write_good_pair();
    const char *p = tpath(name);
    nb_clear_error();
    nb_dataset *ds = nb_idx_dataset(p, tpath2("good_labels"), 10);
    ck_assert_msg(ds == NULL, "%s: should have failed", name);
    const char *err = nb_last_error();
    ck_assert_msg(nb_last_status() == want, "%s: status %d, expected %d (%s)", name, (int)nb_last_status(), (int)want, err);
    ck_assert_msg(strstr(err, frag), "%s: message '%s' lacks '%s'", name, err, frag);
    ck_assert_msg(strstr(err, p), "%s: message '%s' does not name the file", name, err);
    ck_assert_msg(strncmp(err, "idx_dataset: ", 13) == 0, "%s: message '%s' does not name the op", name, err);
}

static void labels_fail(const char *name, const char *frag) {
    write_good_pair();
    const char *p = tpath(name);
    nb_clear_error();
    nb_dataset *ds = nb_idx_dataset(tpath2("good_images"), p, 10);
    ck_assert_msg(ds == NULL, "%s: should have failed", name);
    const char *err = nb_last_error();
    ck_assert_msg(nb_last_status() == NB_ERR_IO, "%s: status %d (%s)", name, (int)nb_last_status(), err);
    ck_assert_msg(strstr(err, frag), "%s: message '%s' lacks '%s'", name, err, frag);
    ck_assert_msg(strstr(err, p), "%s: message '%s' does not name the file", name, err);
}

/* The first pixel byte of sample i, from the float32 ToTensor value PyTorch gives each byte. */
static void assert_sample_bytes(const nb_dataset *ds, int64_t i, const uint8_t *bytes, int64_t n) {
    nb_tensor *ref = nbt_h5_read(nbt_data_path("idx.h5"), "to_tensor", NB_F32);
    nb_tensor *x, *y;
    NBT_OK(nb_dataset_get(ds, i, &x, &y));
    ck_assert_int_eq(nb_tensor_numel(x), n);
    const float *xp = nb_tensor_f32(x), *r = nb_tensor_f32(ref);
    for (int64_t k = 0; k < n; k++)
        ck_assert_msg(memcmp(&xp[k], &r[bytes[k]], sizeof(float)) == 0, "sample %lld pixel %lld: %.9g, PyTorch %.9g",
                      (long long)i, (long long)k, xp[k], r[bytes[k]]);
    nb_tensor_release(x);
    nb_tensor_release(y);
    nb_tensor_release(ref);
}

START_TEST(test_read_raw_and_gz) {
    uint8_t buf[16 + 3 * 4 * 5];
    size_t n = make_images(buf, 0x00000803, 3, 4, 5, 60, pix_mix);
    write_raw("im", buf, n);
    write_gz("im.gz", buf, n);
    uint8_t lab[] = {9, 0, 3};
    uint8_t lbuf[12];
    size_t ln = make_labels(lbuf, 3, lab, 3);
    write_raw("lb", lbuf, ln);
    write_gz("lb.gz", lbuf, ln);
    const char *names[][2] = {{"im", "lb"}, {"im.gz", "lb.gz"}, {"im", "lb.gz"}};
    for (int k = 0; k < 3; k++) {
        char ip[600];
        snprintf(ip, sizeof ip, "%s", tpath(names[k][0]));
        nb_dataset *ds = nb_idx_dataset(ip, tpath(names[k][1]), 10);
        ck_assert_msg(ds != NULL, "%s", nb_last_error());
        ck_assert_int_eq(nb_dataset_len(ds), 3);
        int64_t shape[NB_MAX_DIMS];
        ck_assert_int_eq(nb_dataset_sample_shape(ds, shape), 3);
        ck_assert(shape[0] == 1 && shape[1] == 4 && shape[2] == 5);
        for (int64_t i = 0; i < 3; i++) {
            assert_sample_bytes(ds, i, buf + 16 + 20 * i, 20);
            nb_tensor *x, *y;
            NBT_OK(nb_dataset_get(ds, i, &x, &y));
            nbt_assert_shape(x, NB_SHAPE(1, 4, 5));
            ck_assert_int_eq(nb_tensor_ndim(y), 0);
            ck_assert_int_eq(nb_tensor_dtype(y), NB_I64);
            ck_assert_int_eq(nb_tensor_i64(y)[0], lab[i]);
            nb_tensor_release(x);
            nb_tensor_release(y);
        }
        nb_dataset_free(ds);
    }
    /* the same file through nb_idx_read, exactly the bytes in every dtype */
    for (int d = 0; d < 3; d++) {
        nb_dtype dt = (nb_dtype[]){NB_F32, NB_F64, NB_I64}[d];
        nb_tensor *t = NBT_NOTNULL(nb_idx_read(tpath("im.gz"), dt));
        nbt_assert_shape(t, NB_SHAPE(3, 4, 5));
        for (int64_t i = 0; i < 60; i++) {
            double v;
            NBT_OK(nb_tensor_get(t, (int64_t[]){i / 20, i / 5 % 4, i % 5}, &v));
            ck_assert_msg(v == buf[16 + i], "element %lld: %g, file byte %d", (long long)i, v, buf[16 + i]);
        }
        nb_tensor_release(t);
    }
}
END_TEST

/* Every IDX data type, converted to every dtype, equals PyTorch's .to(dtype). */
START_TEST(test_idx_types_match_pytorch) {
    const char *types[] = {"uint8", "int8", "int16", "int32", "float32", "float64"};
    char dir[1024], path[1200], name[64];
    snprintf(dir, sizeof dir, "%s", nbt_data_path("idx_files"));
    for (int k = 0; k < 6; k++) {
        snprintf(path, sizeof path, "%s/%s.idx", dir, types[k]);
        bool is_float = k >= 4;
        for (int d = 0; d < 3; d++) {
            nb_dtype dt = (nb_dtype[]){NB_F32, NB_F64, NB_I64}[d];
            nb_clear_error();
            nb_tensor *t = nb_idx_read(path, dt);
            if (is_float && dt == NB_I64) { /* float data to int64 is refused */
                ck_assert_ptr_null(t);
                ck_assert_int_eq(nb_last_status(), NB_ERR_DTYPE);
                ck_assert_ptr_nonnull(strstr(nb_last_error(), "cannot convert"));
                continue;
            }
            ck_assert_msg(t != NULL, "%s as %s: %s", types[k], nb_dtype_name(dt), nb_last_error());
            snprintf(name, sizeof name, "%s/%s", types[k], nb_dtype_name(dt));
            nb_tensor *ref = nbt_h5_read(nbt_data_path("idx.h5"), name, dt);
            nbt_assert_bitwise_equal(t, ref);
            nb_tensor_release(ref);
            nb_tensor_release(t);
        }
    }
}
END_TEST

START_TEST(test_idx_read_rejects) {
    uint8_t b[64] = {0, 0, 0x0A, 1, 0, 0, 0, 1, 7};
    write_raw("bad_type", b, 9);
    NBT_FAILS_WITH(nb_idx_read(tpath("bad_type"), NB_F32), "unknown IDX data type 0x0a");
    uint8_t nine[4 + 36] = {0, 0, 0x08, 9};
    write_raw("nine_dims", nine, sizeof nine);
    NBT_FAILS_WITH(nb_idx_read(tpath("nine_dims"), NB_F32), "expected 1 to 8 dimensions, but the magic number 0x00000809 says 9");
    uint8_t zero[4] = {0, 0, 0x08, 0};
    write_raw("zero_dims", zero, 4);
    NBT_FAILS_WITH(nb_idx_read(tpath("zero_dims"), NB_F32), "says 0");
    /* int32 data whose header promises 3 elements but holds 2 and a half */
    uint8_t i32[8 + 10] = {0, 0, 0x0C, 1, 0, 0, 0, 3};
    write_raw("short_i32", i32, sizeof i32);
    NBT_FAILS_WITH(nb_idx_read(tpath("short_i32"), NB_F64), "expected 12 bytes of int32 after the header, but found only 10");
    /* an empty dimension is a valid, empty tensor */
    uint8_t empty[12] = {0, 0, 0x0D, 2, 0, 0, 0, 0, 0, 0, 0, 5};
    write_raw("empty", empty, sizeof empty);
    nb_tensor *t = NBT_NOTNULL(nb_idx_read(tpath("empty"), NB_F32));
    nbt_assert_shape(t, NB_SHAPE(0, 5));
    nb_tensor_release(t);
    /* 2^32-1 x 2^32-1 x 2^32-1 float64: overflows before any allocation */
    uint8_t huge[16] = {0, 0, 0x0E, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    write_raw("huge", huge, sizeof huge);
    NBT_FAILS_WITH(nb_idx_read(tpath("huge"), NB_F64), "data size [4294967295, 4294967295, 4294967295] overflows");
    /* empty, but its strides would overflow (found by fuzz_idx) */
    uint8_t wide[16] = {0, 0, 0x0E, 3, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    write_raw("wide", wide, sizeof wide);
    NBT_FAILS_WITH(nb_idx_read(tpath("wide"), NB_F64), "data size [0, 4294967295, 4294967295] overflows");
    NBT_FAILS_WITH(nb_zeros(NB_F32, NB_SHAPE(0, 1LL << 40, 1LL << 40)), "zeros: shape is too large"); /* the same guard in tensors */
    NBT_FAILS_WITH(nb_idx_read(tpath("missing"), NB_F32), "cannot open: No such file or directory");
    NBT_FAILS_WITH(nb_idx_read(tpath("empty"), (nb_dtype)7), "idx_read: expected dtype float32, float64 or int64");
}
END_TEST

START_TEST(test_corrupt_images) {
    uint8_t buf[16 + 2 * 3 * 3 + 8];
    /* valid reference: 2 images of 3 x 3 */
    size_t n = make_images(buf, 0x00000803, 2, 3, 3, 18, pix_mix);

    write_raw("empty", buf, 0);
    images_fail("empty", NB_ERR_IO, "file is empty: expected an IDX images header");
    write_raw("short_header", buf, 10);
    images_fail("short_header", NB_ERR_IO, "truncated header: expected 16 header bytes, but the file has 10");
    write_raw("tiny", buf, 3);
    images_fail("tiny", NB_ERR_IO, "truncated header: expected a 4-byte IDX magic number, but the file has 3");
    images_fail("missing", NB_ERR_IO, "cannot open: No such file or directory");
    mkdir(tpath("a_dir"), 0700);
    images_fail("a_dir", NB_ERR_IO, "read error after 0 bytes: Is a directory");
    rmdir(tpath("a_dir"));

    buf[1] = 0x01; /* magic 0x00010803 */
    write_raw("bad_magic", buf, n);
    images_fail("bad_magic", NB_ERR_IO, "bad magic number: expected 0x00000803 (IDX images), but got 0x00010803");
    buf[1] = 0;
    buf[2] = 0x0D; /* IDX float32 */
    write_raw("float_dtype", buf, n);
    images_fail("float_dtype", NB_ERR_IO, "wrong IDX data type: expected 0x08 (uint8), but got 0x0d (float32");
    buf[2] = 0x08;
    buf[3] = 0x01; /* a labels file given as images */
    write_raw("labels_magic", buf, n);
    images_fail("labels_magic", NB_ERR_IO, "expected 0x00000803 (IDX images, 3 dimensions), but got 0x00000801 (1 dimensions)");
    buf[3] = 0x03;

    write_raw("truncated", buf, n - 1);
    images_fail("truncated", NB_ERR_IO, "truncated data: expected 18 bytes of images after the header, but found only 17");
    buf[n] = 0;
    write_raw("trailing", buf, n + 1);
    images_fail("trailing", NB_ERR_IO, "trailing data: expected the file to end after 18 bytes of images, but found 1 more bytes");
    write_gz("trailing.gz", buf, n + 1);
    images_fail("trailing.gz", NB_ERR_IO, "but found 1 more bytes");
    write_gz("truncated.gz", buf, n - 5);
    images_fail("truncated.gz", NB_ERR_IO, "but found only 13");

    make_images(buf, 0x00000803, 0, 3, 3, 0, pix_mix);
    write_raw("zero_count", buf, 16);
    images_fail("zero_count", NB_ERR_IO, "expected a nonzero number of images, but the header says 0");
    make_images(buf, 0x00000803, 2, 0, 3, 0, pix_mix);
    write_raw("zero_rows", buf, 16);
    images_fail("zero_rows", NB_ERR_IO, "expected image rows and cols in 1..4096, but the header says 0 x 3");
    make_images(buf, 0x00000803, 1, 5000, 3, 0, pix_mix);
    write_raw("tall", buf, 16);
    images_fail("tall", NB_ERR_IO, "but the header says 5000 x 3");
    /* A header that claims 4294967295 x 28 x 28 (3.4 TB) over 18 bytes: rejected
     * as truncated without ever allocating what the header claims (ASan would
     * abort on a 3.4 TB malloc). */
    make_images(buf, 0x00000803, 0xFFFFFFFFu, 28, 28, 18, pix_mix);
    write_raw("huge_count", buf, 16 + 18);
    images_fail("huge_count", NB_ERR_IO, "truncated data: expected 3367254359280 bytes of images after the header, but found only 18");
    write_gz("huge_count.gz", buf, 16 + 18);
    images_fail("huge_count.gz", NB_ERR_IO, "but found only 18");
}
END_TEST

START_TEST(test_corrupt_gzip) {
    uint8_t buf[16 + 64 * 64];
    size_t n = make_images(buf, 0x00000803, 4, 32, 32, 4096, pix_mix);
    write_gz("good.gz", buf, n);
    /* read the compressed bytes back to damage them */
    FILE *f = fopen(tpath("good.gz"), "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t z[8192];
    size_t zn = fread(z, 1, sizeof z, f);
    fclose(f);
    ck_assert(zn > 40 && zn < sizeof z);
    write_raw("cut.gz", z, zn / 2);
    images_fail("cut.gz", NB_ERR_IO, "gzip data is truncated or corrupt");
    write_raw("no_trailer.gz", z, zn - 4); /* all data, CRC present, length field cut */
    images_fail("no_trailer.gz", NB_ERR_IO, "gzip data is truncated or corrupt");
    z[zn - 6] ^= 0xFF; /* a byte of the CRC-32 */
    write_raw("bad_crc.gz", z, zn);
    images_fail("bad_crc.gz", NB_ERR_IO, "incorrect data check");
    NBT_FAILS_WITH(nb_idx_read(tpath("bad_crc.gz"), NB_F32), "idx_read: "); /* the generic reader too */
}
END_TEST

START_TEST(test_corrupt_labels) {
    uint8_t lbuf[32] = {0};
    uint8_t lab[] = {1, 10};
    size_t n = make_labels(lbuf, 2, lab, 2);
    write_raw("big_label", lbuf, n);
    labels_fail("big_label", "label 10 at index 1 is out of range: expected 0 to 9");
    lab[1] = 255;
    make_labels(lbuf, 2, lab, 2);
    write_gz("big_label.gz", lbuf, n);
    labels_fail("big_label.gz", "label 255 at index 1 is out of range");
    lab[1] = 2;
    n = make_labels(lbuf, 2, lab, 2);
    write_raw("trailing", lbuf, n + 1);
    labels_fail("trailing", "trailing data");
    write_raw("truncated", lbuf, n - 1);
    labels_fail("truncated", "truncated data: expected 2 bytes of labels after the header, but found only 1");
    lbuf[3] = 0x03; /* an images magic */
    write_raw("images_magic", lbuf, n);
    labels_fail("images_magic", "expected 0x00000801 (IDX labels, 1 dimensions), but got 0x00000803");
    make_labels(lbuf, 0, lab, 0);
    write_raw("zero", lbuf, 8);
    labels_fail("zero", "expected a nonzero number of labels");
    write_raw("empty", lbuf, 0);
    labels_fail("empty", "file is empty");
    /* three labels for two images */
    uint8_t three[] = {0, 1, 2};
    write_raw("three", lbuf, make_labels(lbuf, 3, three, 3));
    write_good_pair();
    NBT_FAILS_WITH(nb_idx_dataset(tpath2("good_images"), tpath("three"), 10),
                   "good_images has 2 images but ");
    ck_assert_int_eq(nb_last_status(), NB_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "three has 3 labels: expected equal counts"));
    NBT_FAILS_WITH(nb_idx_dataset(tpath2("good_images"), tpath("three"), 0), "expected num_classes in 1..256, but got 0");
    NBT_FAILS_WITH(nb_idx_dataset(tpath2("good_images"), tpath("three"), 257), "but got 257");
    /* num_classes 256 accepts every byte */
    lab[1] = 255;
    write_raw("all_bytes", lbuf, make_labels(lbuf, 2, lab, 2));
    nb_dataset *ds = nb_idx_dataset(tpath2("good_images"), tpath("all_bytes"), 256);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    nb_dataset_free(ds);
}
END_TEST

/* A 28 x 28 split in tmpdir: count images (pixel bytes from pix), labels lab. */
static void write_split(const char *prefix, uint32_t count, uint8_t (*pix)(size_t), const uint8_t *lab,
                        uint32_t nlab, bool gz) {
    size_t npix = (size_t)count * 784;
    uint8_t *buf = malloc(16 + npix);
    size_t n = make_images(buf, 0x00000803, count, 28, 28, npix, pix);
    char name[96];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    (gz ? write_gz : write_raw)(name, buf, n);
    free(buf);
    uint8_t lbuf[8 + 256];
    n = make_labels(lbuf, nlab, lab, nlab);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    (gz ? write_gz : write_raw)(name, lbuf, n);
}

START_TEST(test_normalisation_matches_pytorch) {
    /* 2 images whose 1568 pixels run through every byte value 0..255,
     * through a loader with Normalize((0.1307,), (0.3081,)) */
    uint8_t lab[] = {4, 2};
    write_split("train", 2, pix_all, lab, 2, true); /* gzipped */
    write_split("t10k", 2, pix_all, lab, 2, false); /* raw */
    nb_tensor *ref = nbt_h5_read(nbt_data_path("idx.h5"), "mnist_normalized", NB_F32);
    ck_assert_int_eq(nb_tensor_numel(ref), 256);
    const float *r = nb_tensor_f32(ref);
    double mean = 0.1307, std = 0.3081;
    nb_transform norm = nb_normalize(1, &mean, &std);
    for (int split = 0; split < 2; split++) {
        nb_dataset *ds = nb_mnist_dataset(tmpdir, split == 0);
        ck_assert_msg(ds != NULL, "%s", nb_last_error());
        ck_assert_int_eq(nb_dataset_len(ds), 2);
        nb_loader_options o = nb_loader_defaults();
        o.batch_size = 2, o.transforms = &norm, o.num_transforms = 1;
        nb_loader *l = nb_loader_new(ds, &o);
        ck_assert_msg(l != NULL, "%s", nb_last_error());
        nb_tensor *x, *y;
        ck_assert_int_eq(nb_loader_next(l, &x, &y), 2);
        nbt_assert_shape(x, NB_SHAPE(2, 1, 28, 28));
        nbt_assert_shape(y, NB_SHAPE(2));
        ck_assert_int_eq(nb_tensor_dtype(y), NB_I64);
        const float *xp = nb_tensor_f32(x);
        for (int i = 0; i < 2 * 784; i++)
            ck_assert_msg(memcmp(&xp[i], &r[i % 256], sizeof(float)) == 0, "pixel %d (byte %d): %.9g, PyTorch %.9g", i,
                          i % 256, xp[i], r[i % 256]);
        ck_assert_int_eq(nb_tensor_i64(y)[0], 4);
        ck_assert_int_eq(nb_tensor_i64(y)[1], 2);
        nb_tensor_release(x);
        nb_tensor_release(y);
        nb_loader_free(l);
        nb_dataset_free(ds);
    }
    nb_tensor_release(ref);
}
END_TEST

START_TEST(test_load_errors) {
    NBT_FAILS_WITH(nb_mnist_dataset(tmpdir, true), "mnist_dataset: found neither");
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "train-images-idx3-ubyte.gz"));

    uint8_t lab[] = {1, 2, 3};
    write_split("train", 3, pix_mix, lab, 2, false);
    NBT_FAILS_WITH(nb_mnist_dataset(tmpdir, true), "train-images-idx3-ubyte has 3 images but ");
    ck_assert_int_eq(nb_last_status(), NB_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "train-labels-idx1-ubyte has 2 labels: expected equal counts"));

    /* images of the wrong size */
    uint8_t buf[16 + 2 * 4 * 4];
    size_t n = make_images(buf, 0x00000803, 2, 4, 4, 32, pix_mix);
    write_raw("t10k-images-idx3-ubyte", buf, n);
    uint8_t lbuf[16];
    write_raw("t10k-labels-idx1-ubyte", lbuf, make_labels(lbuf, 2, lab, 2));
    NBT_FAILS_WITH(nb_mnist_dataset(tmpdir, false), "expected 28 x 28 images, but got 4 x 4");
    ck_assert_int_eq(nb_last_status(), NB_ERR_SHAPE);

    /* a corrupt file's message comes through unchanged */
    buf[2] = 0x0B;
    write_raw("t10k-images-idx3-ubyte", buf, n);
    NBT_FAILS_WITH(nb_mnist_dataset(tmpdir, false), "t10k-images-idx3-ubyte: wrong IDX data type");
}
END_TEST

/* EMNIST's file names and label ranges (letters: 1..26 of 27 classes). */
START_TEST(test_emnist_names) {
    uint8_t lab[] = {1, 26, 26};
    write_split("emnist-letters-train", 3, pix_mix, lab, 3, true);
    nb_dataset *ds = nb_emnist_dataset(tmpdir, "letters", true);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_dataset_len(ds), 3);
    nb_dataset_free(ds);
    NBT_FAILS_WITH(nb_emnist_dataset(tmpdir, "letters", false), "emnist-letters-test-images-idx3-ubyte");
    lab[2] = 27;
    write_split("emnist-letters-train", 3, pix_mix, lab, 3, true);
    NBT_FAILS_WITH(nb_emnist_dataset(tmpdir, "letters", true), "label 27 at index 2 is out of range: expected 0 to 26");
    write_split("emnist-balanced-test", 3, pix_mix, lab, 3, false);
    ds = nb_emnist_dataset(tmpdir, "balanced", false); /* 47 classes */
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    nb_dataset_free(ds);
    NBT_FAILS_WITH(nb_emnist_dataset(tmpdir, "kanji", true), "unknown split 'kanji'");
}
END_TEST

START_TEST(test_real_mnist) {
    const char *dir = getenv("MNIST_DIR") ? getenv("MNIST_DIR") : NB_TESTS_DIR "/../data/mnist";
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    bool have = stat(p, &sb) == 0;
    strcat(p, ".gz");
    have = have || stat(p, &sb) == 0;
    if (!have) {
        printf("test_idx: SKIPPED test_real_mnist: no MNIST in %s (run scripts/fetch_mnist.sh)\n", dir);
        fflush(stdout);
        return;
    }
    nb_dataset *train = nb_mnist_dataset(dir, true), *test = nb_mnist_dataset(dir, false);
    ck_assert_msg(train && test, "%s", nb_last_error());
    ck_assert_int_eq(nb_dataset_len(train), 60000);
    ck_assert_int_eq(nb_dataset_len(test), 10000);
    nb_tensor *x, *y;
    NBT_OK(nb_dataset_get(train, 0, &x, &y));
    nbt_assert_shape(x, NB_SHAPE(1, 28, 28));
    ck_assert_int_eq(nb_tensor_i64(y)[0], 5); /* the famous first training digit */
    nb_tensor_release(x);
    nb_tensor_release(y);
    NBT_OK(nb_dataset_get(test, 0, &x, &y));
    ck_assert_int_eq(nb_tensor_i64(y)[0], 7); /* and the first test digit */
    nb_tensor_release(x);
    nb_tensor_release(y);
    printf("test_idx: test_real_mnist ran on %s\n", dir);
    nb_dataset_free(train);
    nb_dataset_free(test);
}
END_TEST

START_TEST(test_real_fashion_mnist) {
    /* Debian's dataset-fashion-mnist (scripts/fetch_mnist.sh --fashion): gzipped files */
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", &sb) != 0) {
        printf("test_idx: SKIPPED test_real_fashion_mnist: no Fashion-MNIST in %s (run scripts/fetch_mnist.sh --fashion)\n",
               dir);
        fflush(stdout);
        return;
    }
    nb_dataset *train = nb_mnist_dataset(dir, true), *test = nb_mnist_dataset(dir, false);
    ck_assert_msg(train && test, "%s", nb_last_error());
    ck_assert_int_eq(nb_dataset_len(train), 60000);
    ck_assert_int_eq(nb_dataset_len(test), 10000);
    nb_tensor *x, *y;
    for (int s = 0; s < 2; s++) { /* both splits open with an ankle boot */
        NBT_OK(nb_dataset_get(s ? test : train, 0, &x, &y));
        ck_assert_int_eq(nb_tensor_i64(y)[0], 9);
        nb_tensor_release(x);
        nb_tensor_release(y);
    }
    printf("test_idx: test_real_fashion_mnist ran on %s\n", dir);
    nb_dataset_free(train);
    nb_dataset_free(test);
}
END_TEST

int main(void) {
    Suite *s = suite_create("idx");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_read_raw_and_gz);
    tcase_add_test(tc, test_idx_types_match_pytorch);
    tcase_add_test(tc, test_idx_read_rejects);
    tcase_add_test(tc, test_corrupt_images);
    tcase_add_test(tc, test_corrupt_gzip);
    tcase_add_test(tc, test_corrupt_labels);
    tcase_add_test(tc, test_normalisation_matches_pytorch);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_emnist_names);
    tcase_add_test(tc, test_real_mnist);
    tcase_add_test(tc, test_real_fashion_mnist);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
