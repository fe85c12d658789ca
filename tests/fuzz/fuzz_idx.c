/* fuzz_idx.c: fuzzing the MNIST example's IDX reader (examples/mnist/idx.c).
 *
 * Input layout: byte 0 picks the case, the rest is the file.
 *   bit 0     images (0) or labels (1)
 *   bit 1     write the rest gzip-compressed (so mutations of plain IDX bytes
 *             also exercise the gzip path); otherwise it is written as is, and
 *             seeds that are gzip files themselves exercise zlib's decoder
 *   bits 2-7  num_classes for labels: 0 -> 10, 1 -> 0 (invalid), 2 -> 257
 *             (invalid), otherwise 4 * value
 * Checks: a failure leaves a message and a zeroed struct; a success returns
 * sizes in range whose data length matches a raw file exactly, and labels
 * below num_classes. */
#include "fuzz_entries.h"
#include "idx.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

static int fail(const char *what) {
    fprintf(stderr, "fuzz_idx: contract broken: %s\n", what);
    return -1;
}

static int write_gzip(const char *path, const uint8_t *data, size_t size) {
    gzFile g = gzopen(path, "wb");
    if (!g) return -1;
    int ok = size == 0 || gzwrite(g, data, (unsigned)size) == (int)size;
    return gzclose(g) == Z_OK && ok ? 0 : -1;
}

int nbf_idx_one(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    const char *path = nbf_scratch_path(0);
    if (!path) return fail("no scratch file");
    uint8_t mode = data[0];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    bool labels = mode & 1, gz = mode & 2;
    int v = mode >> 2;
    int num_classes = v == 0 ? 10 : v == 1 ? 0 : v == 2 ? 257 : 4 * v;
    if ((gz ? write_gzip(path, body, n) : nbf_write_file(path, body, n)) != 0) return fail("cannot write scratch file");
    /* A raw (not gzip) file must hold exactly header + data bytes. */
    bool raw = !gz && !(n >= 2 && body[0] == 0x1f && body[1] == 0x8b);
    char err[512];
    err[0] = 0;
    if (!labels) {
        idx_images im;
        nb_status st = idx_read_images(path, &im, err, sizeof err);
        if (st != NB_OK) {
            if (st > 0) return fail("positive status");
            if (!err[0]) return fail("images: error without a message");
            if (im.pixels || im.count || im.rows || im.cols) return fail("images: struct not zeroed on failure");
            return 0;
        }
        if (!im.pixels || im.count < 1 || im.rows < 1 || im.rows > IDX_MAX_SIDE || im.cols < 1 ||
            im.cols > IDX_MAX_SIDE)
            return fail("images: success with sizes out of range");
        int64_t total = im.count * im.rows * im.cols;
        if (raw && (int64_t)n != 16 + total) return fail("images: success but the file length disagrees");
        volatile uint8_t last = im.pixels[total - 1]; /* ASan: the buffer really holds total bytes */
        (void)last;
        idx_images_free(&im);
        if (im.pixels) return fail("images: free did not zero");
    } else {
        idx_labels lb;
        nb_status st = idx_read_labels(path, num_classes, &lb, err, sizeof err);
        if (st != NB_OK) {
            if (st > 0) return fail("positive status");
            if (!err[0]) return fail("labels: error without a message");
            if (lb.labels || lb.count) return fail("labels: struct not zeroed on failure");
            return 0;
        }
        if (num_classes < 1 || num_classes > 256) return fail("labels: success with an invalid num_classes");
        if (!lb.labels || lb.count < 1) return fail("labels: success with no labels");
        if (raw && (int64_t)n != 8 + lb.count) return fail("labels: success but the file length disagrees");
        for (int64_t i = 0; i < lb.count; i++)
            if (lb.labels[i] >= num_classes) return fail("labels: a label out of range was accepted");
        idx_labels_free(&lb);
    }
    return 0;
}

#ifdef NBF_LIBFUZZER
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (nbf_idx_one(data, size) != 0) abort();
    return 0;
}
#endif
