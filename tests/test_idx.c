/* The MNIST example's data library (examples/mnist): strict IDX reading of raw
 * and gzipped files, rejection of corrupt files, normalisation against
 * PyTorch, the shuffling batch iterator, and (when fetched) the real MNIST. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "idx.h"
#include "mnist.h"

/* ---- a temporary directory of test files ---- */
static char tmpdir[64];
static char pathbuf[512];

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

/* Assert that reading path as images (or labels) fails with a message naming
 * the file and containing frag, and leaves the output zeroed. */
static void images_fail(const char *name, nb_status want, const char *frag) {
    char err[512] = "";
    idx_images im = {(uint8_t *)1, 1, 1, 1};
    const char *p = tpath(name);
    nb_status st = idx_read_images(p, &im, err, sizeof err);
    ck_assert_msg(st == want, "%s: status %d, expected %d (%s)", name, (int)st, (int)want, err);
    ck_assert_msg(strstr(err, frag), "%s: message '%s' lacks '%s'", name, err, frag);
    ck_assert_msg(strstr(err, p), "%s: message '%s' does not name the file", name, err);
    ck_assert(im.pixels == NULL && im.count == 0);
}

static void labels_fail(const char *name, const char *frag) {
    char err[512] = "";
    idx_labels lb = {(uint8_t *)1, 1};
    const char *p = tpath(name);
    nb_status st = idx_read_labels(p, 10, &lb, err, sizeof err);
    ck_assert_msg(st == NB_ERR_IO, "%s: status %d (%s)", name, (int)st, err);
    ck_assert_msg(strstr(err, frag), "%s: message '%s' lacks '%s'", name, err, frag);
    ck_assert_msg(strstr(err, p), "%s: message '%s' does not name the file", name, err);
    ck_assert(lb.labels == NULL && lb.count == 0);
}

START_TEST(test_read_raw_and_gz) {
    uint8_t buf[16 + 3 * 4 * 5];
    size_t n = make_images(buf, 0x00000803, 3, 4, 5, 60, pix_mix);
    write_raw("im", buf, n);
    write_gz("im.gz", buf, n);
    uint8_t lab[] = {9, 0, 3, 7};
    uint8_t lbuf[12];
    size_t ln = make_labels(lbuf, 4, lab, 4);
    write_raw("lb", lbuf, ln);
    write_gz("lb.gz", lbuf, ln);
    const char *names[] = {"im", "im.gz"};
    for (int k = 0; k < 2; k++) {
        char err[256] = "";
        idx_images im;
        NBT_OK(idx_read_images(tpath(names[k]), &im, err, sizeof err));
        ck_assert_int_eq(im.count, 3);
        ck_assert_int_eq(im.rows, 4);
        ck_assert_int_eq(im.cols, 5);
        ck_assert_mem_eq(im.pixels, buf + 16, 60);
        idx_images_free(&im);
        ck_assert_ptr_null(im.pixels);
    }
    const char *lnames[] = {"lb", "lb.gz"};
    for (int k = 0; k < 2; k++) {
        char err[256] = "";
        idx_labels lb;
        NBT_OK(idx_read_labels(tpath(lnames[k]), 10, &lb, err, sizeof err));
        ck_assert_int_eq(lb.count, 4);
        ck_assert_mem_eq(lb.labels, lab, 4);
        idx_labels_free(&lb);
    }
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
    images_fail("float_dtype", NB_ERR_IO, "wrong IDX data type: expected 0x08 (unsigned byte), but got 0x0d");
    buf[2] = 0x08;
    buf[3] = 0x01; /* a labels file given as images */
    write_raw("labels_magic", buf, n);
    images_fail("labels_magic", NB_ERR_IO, "expected 0x00000803 (IDX images, 3 dimensions), but got 0x00000801 (1 dimensions)");
    buf[3] = 0x03;

    write_raw("truncated", buf, n - 1);
    images_fail("truncated", NB_ERR_IO, "truncated data: expected 18 bytes of pixels after the header, but found only 17");
    buf[n] = 0;
    write_raw("trailing", buf, n + 1);
    images_fail("trailing", NB_ERR_IO, "trailing data: expected the file to end after 18 bytes of pixels, but found 1 more bytes");
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
    make_images(buf, 0x00000803, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0, pix_mix);
    write_raw("huge_dims", buf, 16);
    images_fail("huge_dims", NB_ERR_IO, "but the header says 4294967295 x 4294967295");
    /* A header that claims 4294967295 x 28 x 28 (3.4 TB) over 18 bytes: rejected
     * as truncated without ever allocating what the header claims (ASan would
     * abort on a 3.4 TB malloc). */
    make_images(buf, 0x00000803, 0xFFFFFFFFu, 28, 28, 18, pix_mix);
    write_raw("huge_count", buf, 16 + 18);
    images_fail("huge_count", NB_ERR_IO, "truncated data: expected 3367254359280 bytes of pixels after the header, but found only 18");
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
}
END_TEST

START_TEST(test_corrupt_labels) {
    uint8_t lbuf[32] = {0};
    uint8_t lab[] = {1, 2, 10, 3};
    size_t n = make_labels(lbuf, 4, lab, 4);
    write_raw("big_label", lbuf, n);
    labels_fail("big_label", "label 10 at index 2 is out of range: expected 0 to 9");
    lab[2] = 255;
    make_labels(lbuf, 4, lab, 4);
    write_gz("big_label.gz", lbuf, n);
    labels_fail("big_label.gz", "label 255 at index 2 is out of range");
    lab[2] = 2;
    n = make_labels(lbuf, 4, lab, 4);
    write_raw("trailing", lbuf, n + 1);
    labels_fail("trailing", "trailing data");
    write_raw("truncated", lbuf, n - 1);
    labels_fail("truncated", "truncated data: expected 4 bytes of labels after the header, but found only 3");
    lbuf[3] = 0x03; /* an images magic */
    write_raw("images_magic", lbuf, n);
    labels_fail("images_magic", "expected 0x00000801 (IDX labels, 1 dimensions), but got 0x00000803");
    make_labels(lbuf, 0, lab, 0);
    write_raw("zero", lbuf, 8);
    labels_fail("zero", "expected a nonzero number of labels");
    write_raw("empty", lbuf, 0);
    labels_fail("empty", "file is empty");
    char err[128];
    idx_labels lb;
    ck_assert_int_eq(idx_read_labels(tpath("zero"), 0, &lb, err, sizeof err), NB_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "expected num_classes in 1..256, but got 0"));
    /* a short buffer truncates the message but keeps it a string */
    char tiny[8];
    ck_assert_int_eq(idx_read_labels(tpath("empty"), 10, &lb, tiny, sizeof tiny), NB_ERR_IO);
    ck_assert_uint_eq(strlen(tiny), 7);
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
    /* 2 images whose 1568 pixels run through every byte value 0..255 */
    uint8_t lab[] = {4, 2};
    write_split("train", 2, pix_all, lab, 2, true);   /* gzipped */
    write_split("t10k", 2, pix_all, lab, 2, false);   /* raw */
    nb_tensor *ref = nbt_h5_read(nbt_data_path("idx.h5"), "mnist_normalized", NB_F32);
    ck_assert_int_eq(nb_tensor_numel(ref), 256);
    const float *r = nb_tensor_f32(ref);
    for (int split = 0; split < 2; split++) {
        char err[512] = "";
        mnist_dataset ds;
        nb_status st = mnist_load(tmpdir, split == 0, &ds, err, sizeof err);
        ck_assert_msg(st == NB_OK, "%s", err);
        ck_assert_int_eq(ds.count, 2);
        nbt_assert_shape(ds.images, NB_SHAPE(2, 1, 28, 28));
        nbt_assert_shape(ds.labels, NB_SHAPE(2));
        ck_assert_int_eq(nb_tensor_dtype(ds.labels), NB_I64);
        const float *x = nb_tensor_f32(ds.images);
        for (int i = 0; i < 2 * 784; i++)
            ck_assert_msg(memcmp(&x[i], &r[i % 256], sizeof(float)) == 0, "pixel %d (byte %d): %.9g, PyTorch %.9g", i,
                          i % 256, x[i], r[i % 256]);
        ck_assert_int_eq(nb_tensor_i64(ds.labels)[0], 4);
        ck_assert_int_eq(nb_tensor_i64(ds.labels)[1], 2);
        mnist_free(&ds);
        ck_assert_ptr_null(ds.images);
    }
    nb_tensor_release(ref);
}
END_TEST

START_TEST(test_load_errors) {
    char err[512] = "";
    mnist_dataset ds;
    ck_assert_int_eq(mnist_load(tmpdir, true, &ds, err, sizeof err), NB_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "found neither"));
    ck_assert_ptr_nonnull(strstr(err, "train-images-idx3-ubyte.gz"));
    ck_assert_ptr_null(ds.images);

    uint8_t lab[] = {1, 2, 3};
    write_split("train", 3, pix_mix, lab, 2, false);
    ck_assert_int_eq(mnist_load(tmpdir, true, &ds, err, sizeof err), NB_ERR_SHAPE);
    ck_assert_msg(strstr(err, "train-images-idx3-ubyte has 3 images but ") &&
                      strstr(err, "train-labels-idx1-ubyte has 2 labels: expected equal counts"),
                  "%s", err);
    ck_assert_ptr_null(ds.images);

    /* images of the wrong size */
    uint8_t buf[16 + 2 * 4 * 4];
    size_t n = make_images(buf, 0x00000803, 2, 4, 4, 32, pix_mix);
    write_raw("t10k-images-idx3-ubyte", buf, n);
    uint8_t lbuf[16];
    write_raw("t10k-labels-idx1-ubyte", lbuf, make_labels(lbuf, 2, lab, 2));
    ck_assert_int_eq(mnist_load(tmpdir, false, &ds, err, sizeof err), NB_ERR_SHAPE);
    ck_assert_msg(strstr(err, "expected 28 x 28 images, but got 4 x 4"), "%s", err);

    /* a corrupt file's message comes through mnist_load unchanged */
    buf[2] = 0x0B;
    write_raw("t10k-images-idx3-ubyte", buf, n);
    ck_assert_int_eq(mnist_load(tmpdir, false, &ds, err, sizeof err), NB_ERR_IO);
    ck_assert_msg(strstr(err, "t10k-images-idx3-ubyte: wrong IDX data type"), "%s", err);

    write_split("train", 3, pix_mix, lab, 3, false);
    ck_assert_int_eq(mnist_load_normalized(tmpdir, true, 0.5f, 0.0f, &ds, err, sizeof err), NB_ERR_ARG);
    ck_assert_msg(strstr(err, "expected finite mean and std > 0, but got mean=0.5 std=0"), "%s", err);
}
END_TEST

/* image i has every pixel equal to i, so a batch row names its sample */
static uint8_t pix_index(size_t i) { return (uint8_t)(i / 784); }

static bool is_permutation(const int64_t *p, int64_t n) {
    bool seen[64] = {false};
    for (int64_t i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= n || seen[p[i]]) return false;
        seen[p[i]] = true;
    }
    return true;
}

/* Run one epoch; check batch shapes (B, B, ..., N % B) and that every batch
 * row is the dataset row order[] says; record the order in out. */
static void run_epoch(mnist_batches *it, const mnist_dataset *ds, int64_t b, int64_t *out) {
    int64_t n = ds->count;
    size_t mem = nb_memory_in_use();
    mnist_batches_start_epoch(it);
    ck_assert(is_permutation(it->order, n));
    memcpy(out, it->order, (size_t)n * sizeof *out);
    nb_tensor *x, *y;
    int64_t seen = 0, batches = 0;
    const float *all = nb_tensor_f32(ds->images);
    const int64_t *labels = nb_tensor_i64(ds->labels);
    while (mnist_batches_next(it, &x, &y)) {
        int64_t want = n - seen < b ? n - seen : b;
        nbt_assert_shape(x, NB_SHAPE(want, 1, 28, 28));
        nbt_assert_shape(y, NB_SHAPE(want));
        ck_assert_ptr_eq(nb_tensor_data(x), nb_tensor_data(it->x)); /* the preallocated buffer */
        const float *xp = nb_tensor_f32(x);
        const int64_t *yp = nb_tensor_i64(y);
        for (int64_t k = 0; k < want; k++) {
            int64_t s = out[seen + k];
            ck_assert_mem_eq(xp + k * 784, all + s * 784, 784 * sizeof(float));
            ck_assert_int_eq(yp[k], labels[s]);
        }
        seen += want;
        batches++;
        ck_assert_uint_eq(nb_memory_in_use(), mem); /* nothing allocated per batch */
    }
    ck_assert_int_eq(seen, n);
    ck_assert_int_eq(batches, mnist_batches_per_epoch(it));
    ck_assert(!mnist_batches_next(it, &x, &y)); /* stays finished */
}

START_TEST(test_batches) {
    enum { N = 10 };
    uint8_t lab[N];
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)((i * 3) % 10);
    write_split("train", N, pix_index, lab, N, false);
    char err[512] = "";
    mnist_dataset ds;
    NBT_OK(mnist_load(tmpdir, true, &ds, err, sizeof err));

    /* before any epoch: no batch */
    mnist_batches a, b;
    NBT_OK(mnist_batches_init(&a, &ds, 4, true, 42, err, sizeof err));
    nb_tensor *x, *y;
    ck_assert(!mnist_batches_next(&a, &x, &y));
    ck_assert_int_eq(mnist_batches_per_epoch(&a), 3); /* 4 + 4 + 2: the partial batch is kept */
    NBT_OK(mnist_batches_init(&b, &ds, 4, true, 42, err, sizeof err));
    int64_t a1[N], a2[N], b1[N], b2[N];
    run_epoch(&a, &ds, 4, a1);
    run_epoch(&a, &ds, 4, a2);
    run_epoch(&b, &ds, 4, b1);
    run_epoch(&b, &ds, 4, b2);
    /* same seed, same sequence of epochs; a new permutation each epoch */
    ck_assert_mem_eq(a1, b1, sizeof a1);
    ck_assert_mem_eq(a2, b2, sizeof a2);
    ck_assert(memcmp(a1, a2, sizeof a1) != 0);
    mnist_batches_free(&b);
    NBT_OK(mnist_batches_init(&b, &ds, 4, true, 43, err, sizeof err));
    run_epoch(&b, &ds, 4, b1);
    ck_assert(memcmp(a1, b1, sizeof a1) != 0); /* another seed, another order */
    mnist_batches_free(&b);
    mnist_batches_free(&a);

    /* no shuffle: 0..N-1 every epoch; B divides N: no partial batch */
    NBT_OK(mnist_batches_init(&a, &ds, 5, false, 42, err, sizeof err));
    ck_assert_ptr_null(a.x_tail);
    run_epoch(&a, &ds, 5, a1);
    for (int i = 0; i < N; i++) ck_assert_int_eq(a1[i], i);
    mnist_batches_free(&a);
    /* B > N: one batch of N */
    NBT_OK(mnist_batches_init(&a, &ds, 64, true, 1, err, sizeof err));
    run_epoch(&a, &ds, N, a1);
    ck_assert_int_eq(mnist_batches_per_epoch(&a), 1);
    mnist_batches_free(&a);
    mnist_batches_free(&a); /* freeing twice is harmless */

    ck_assert_int_eq(mnist_batches_init(&a, &ds, 0, true, 1, err, sizeof err), NB_ERR_ARG);
    ck_assert_msg(strstr(err, "expected batch_size >= 1, but got 0"), "%s", err);
    mnist_dataset empty = {0};
    ck_assert_int_eq(mnist_batches_init(&a, &empty, 4, true, 1, err, sizeof err), NB_ERR_ARG);
    mnist_free(&ds);
}
END_TEST

/* The sample a batch row holds: image i has every pixel equal to i. */
static int64_t sample_of(const mnist_dataset *ds, const float *row) {
    const float *all = nb_tensor_f32(ds->images);
    for (int64_t s = 0; s < ds->count; s++)
        if (memcmp(row, all + s * 784, 784 * sizeof(float)) == 0) return s;
    return -1;
}

/* Sharded iterators take PyTorch's DistributedSampler positions of the
 * epoch's permutation (padding by wrapping), and world ranks with batch B
 * together see batch k of one process with batch world * B. */
START_TEST(test_batches_shard) {
    static const int64_t cases[][2] = {{10, 3}, {10, 2}, {3, 4}, {2, 5}}; /* N, world */
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int64_t n = cases[c][0];
        int world = (int)cases[c][1];
        uint8_t lab[10];
        for (int64_t i = 0; i < n; i++) lab[i] = (uint8_t)i;
        write_split("train", (uint32_t)n, pix_index, lab, (uint32_t)n, false);
        char err[512] = "";
        mnist_dataset ds;
        NBT_OK(mnist_load(tmpdir, true, &ds, err, sizeof err));
        const int64_t B = 2;
        mnist_batches whole; /* one process, batch world * B, same seed */
        NBT_OK(mnist_batches_init(&whole, &ds, world * B, true, 42, err, sizeof err));
        mnist_batches_start_epoch(&whole);
        mnist_batches_start_epoch(&whole); /* second epoch: ranks must follow the generator too */
        int64_t union_k[64][16], union_n[64] = {0};
        for (int r = 0; r < world; r++) {
            char name[64];
            snprintf(name, sizeof name, "dist_sampler_n%lld_w%d_r%d", (long long)n, world, r);
            nb_tensor *ref = nbt_h5_read(nbt_data_path("idx.h5"), name, NB_I64); /* PyTorch's positions */
            ck_assert_ptr_nonnull(ref);
            int64_t per = nb_tensor_numel(ref);
            mnist_batches it;
            NBT_OK(mnist_batches_init(&it, &ds, B, true, 42, err, sizeof err));
            NBT_OK(mnist_batches_shard(&it, r, world, err, sizeof err));
            ck_assert_int_eq(it.count, per);
            ck_assert_int_eq(mnist_batches_per_epoch(&it), (per + B - 1) / B);
            mnist_batches_start_epoch(&it);
            mnist_batches_start_epoch(&it);
            ck_assert_mem_eq(it.order, whole.order, (size_t)n * sizeof *it.order); /* same permutation */
            nb_tensor *x, *y;
            int64_t p = 0, k = 0;
            while (mnist_batches_next(&it, &x, &y)) {
                int64_t b = nb_tensor_size(x, 0);
                ck_assert_int_eq(b, per - p < B ? per - p : B);
                for (int64_t j = 0; j < b; j++, p++) {
                    int64_t s = sample_of(&ds, nb_tensor_f32(x) + j * 784);
                    ck_assert_int_eq(s, it.order[nb_tensor_i64(ref)[p]]);
                    ck_assert_int_eq(nb_tensor_i64(y)[j], s);
                    union_k[k][union_n[k]++] = s;
                }
                k++;
            }
            ck_assert_int_eq(p, per);
            mnist_batches_free(&it);
            nb_tensor_release(ref);
        }
        /* batch k of the whole run holds the samples of batch k of all ranks
         * (the padded tail aside: when world does not divide N, ranks repeat
         * samples the whole run does not) */
        nb_tensor *x, *y;
        for (int64_t k = 0; mnist_batches_next(&whole, &x, &y); k++) {
            int64_t b = nb_tensor_size(x, 0);
            ck_assert_int_ge(union_n[k], b);
            for (int64_t j = 0; j < b; j++) {
                int64_t s = sample_of(&ds, nb_tensor_f32(x) + j * 784);
                bool found = false;
                for (int64_t q = 0; q < union_n[k]; q++) found |= union_k[k][q] == s;
                ck_assert_msg(found, "N %lld world %d: batch %lld sample %lld not on any rank", (long long)n, world,
                              (long long)k, (long long)s);
            }
            if (n % world == 0) ck_assert_int_eq(union_n[k], b);
        }
        mnist_batches_free(&whole);
        mnist_free(&ds);
    }
    char err[512] = "";
    mnist_batches it = {0};
    ck_assert_int_eq(mnist_batches_shard(&it, 0, 2, err, sizeof err), NB_ERR_ARG);
    uint8_t lab[2] = {0, 1};
    write_split("train", 2, pix_index, lab, 2, false);
    mnist_dataset ds;
    NBT_OK(mnist_load(tmpdir, true, &ds, err, sizeof err));
    NBT_OK(mnist_batches_init(&it, &ds, 2, true, 1, err, sizeof err));
    ck_assert_int_eq(mnist_batches_shard(&it, 2, 2, err, sizeof err), NB_ERR_ARG);
    ck_assert_msg(strstr(err, "expected 0 <= rank < world, but got rank 2, world 2"), "%s", err);
    mnist_batches_free(&it);
    mnist_free(&ds);
}
END_TEST

START_TEST(test_scope_does_not_take_tensors) {
    /* Tensors made while the caller has a scope open stay the data set's. */
    uint8_t lab[] = {0, 1, 2};
    write_split("train", 3, pix_index, lab, 3, false);
    char err[512] = "";
    mnist_dataset ds;
    mnist_batches it;
    nb_scope *s = nb_scope_begin();
    NBT_OK(mnist_load(tmpdir, true, &ds, err, sizeof err));
    NBT_OK(mnist_batches_init(&it, &ds, 2, true, 7, err, sizeof err));
    nb_scope_end(s);
    int64_t order[3];
    run_epoch(&it, &ds, 2, order); /* would be use-after-free under ASan if the scope had released them */
    mnist_batches_free(&it);
    mnist_free(&ds);
}
END_TEST

START_TEST(test_real_mnist) {
    const char *dir = getenv("MNIST_DIR") ? getenv("MNIST_DIR") : MNIST_DEFAULT_DIR;
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
    char err[512] = "";
    mnist_dataset train, test;
    nb_status st = mnist_load(dir, true, &train, err, sizeof err);
    ck_assert_msg(st == NB_OK, "%s", err);
    st = mnist_load(dir, false, &test, err, sizeof err);
    ck_assert_msg(st == NB_OK, "%s", err);
    ck_assert_int_eq(train.count, 60000);
    ck_assert_int_eq(test.count, 10000);
    nbt_assert_shape(train.images, NB_SHAPE(60000, 1, 28, 28));
    ck_assert_int_eq(nb_tensor_i64(train.labels)[0], 5); /* the famous first training digit */
    ck_assert_int_eq(nb_tensor_i64(test.labels)[0], 7);  /* and the first test digit */
    printf("test_idx: test_real_mnist ran on %s\n", dir);
    mnist_free(&train);
    mnist_free(&test);
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
    char err[512] = "";
    mnist_dataset train, test;
    nb_status st = mnist_load(dir, true, &train, err, sizeof err);
    ck_assert_msg(st == NB_OK, "%s", err);
    st = mnist_load(dir, false, &test, err, sizeof err);
    ck_assert_msg(st == NB_OK, "%s", err);
    ck_assert_int_eq(train.count, 60000);
    ck_assert_int_eq(test.count, 10000);
    ck_assert_int_eq(nb_tensor_i64(train.labels)[0], 9); /* both splits open with an ankle boot */
    ck_assert_int_eq(nb_tensor_i64(test.labels)[0], 9);
    printf("test_idx: test_real_fashion_mnist ran on %s\n", dir);
    mnist_free(&train);
    mnist_free(&test);
}
END_TEST

int main(void) {
    Suite *s = suite_create("idx");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_read_raw_and_gz);
    tcase_add_test(tc, test_corrupt_images);
    tcase_add_test(tc, test_corrupt_gzip);
    tcase_add_test(tc, test_corrupt_labels);
    tcase_add_test(tc, test_normalisation_matches_pytorch);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_batches);
    tcase_add_test(tc, test_batches_shard);
    tcase_add_test(tc, test_scope_does_not_take_tensors);
    tcase_add_test(tc, test_real_mnist);
    tcase_add_test(tc, test_real_fashion_mnist);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
