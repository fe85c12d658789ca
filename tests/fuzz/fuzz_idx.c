/* fuzz_idx.c: fuzzing the library's IDX readers (nabla/data.h: nb_idx_read,
 * nb_idx_dataset) and, on what they accept, a loader pass.
 *
 * Input layout: byte 0 picks the case, the rest is the file(s).
 *   bit 0     nb_idx_read (0) or nb_idx_dataset (1)
 *   bit 1     write the file(s) gzip-compressed (so mutations of plain IDX
 *             bytes also exercise the gzip path); otherwise as is, and seeds
 *             that are gzip files themselves exercise zlib's decoder
 *   nb_idx_read: bits 2-3 the dtype: 0 float32, 1 float64, 2 int64, 3 float32
 *   nb_idx_dataset: bits 2-7 num_classes: 0 -> 10, 1 -> 0 (invalid),
 *             2 -> 257 (invalid), otherwise 4 * value; bytes 1-2 (big-endian)
 *             split the rest into the images file and the labels file.
 * Checks: a failure returns NULL with a negative status and a message; a
 * success has sizes in range, a raw file's length matching its header
 * exactly, every element readable (ASan), and labels below num_classes. */
#include "fuzz_entries.h"

#include <nabla.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

static int fail(const char *what) {
    fprintf(stderr, "fuzz_idx: contract broken: %s\n", what);
    return -1;
}

static int write_file(const char *path, const uint8_t *data, size_t size, bool gz) {
    if (!gz) return nbf_write_file(path, data, size);
    gzFile g = gzopen(path, "wb");
    if (!g) return -1;
    int ok = size == 0 || gzwrite(g, data, (unsigned)size) == (int)size;
    return gzclose(g) == Z_OK && ok ? 0 : -1;
}

/* A plain (not gzip) file must hold exactly its header and data. */
static bool is_raw(const uint8_t *b, size_t n, bool gz) { return !gz && !(n >= 2 && b[0] == 0x1f && b[1] == 0x8b); }

static int failed_cleanly(const void *result) {
    if (result) return fail("a result and an error");
    if (nb_last_status() >= 0) return fail("failure without a negative status");
    if (!nb_last_error()[0]) return fail("error without a message");
    return 0;
}

static int read_one(const uint8_t *body, size_t n, bool gz, int code) {
    const char *path = nbf_scratch_path(0);
    if (!path || write_file(path, body, n, gz) != 0) return fail("cannot write scratch file");
    nb_dtype dtype = code == 1 ? NB_F64 : code == 2 ? NB_I64 : NB_F32;
    nb_clear_error();
    nb_tensor *t = nb_idx_read(path, dtype);
    if (!t) return failed_cleanly(t);
    int ndim = nb_tensor_ndim(t);
    if (ndim < 1 || ndim > NB_MAX_DIMS || nb_tensor_dtype(t) != dtype) return fail("read: bad rank or dtype");
    int type = n >= 3 ? body[2] : -1;
    size_t es = type == 0x0B ? 2 : type == 0x0C || type == 0x0D ? 4 : type == 0x0E ? 8 : 1;
    int64_t numel = nb_tensor_numel(t);
    if (is_raw(body, n, gz) && (int64_t)n != 4 + 4 * ndim + numel * (int64_t)es)
        return fail("read: success but the file length disagrees");
    double sum = 0, v;
    if (numel > 0 && nb_tensor_get(t, (int64_t[NB_MAX_DIMS]){0}, &v) == NB_OK) sum += v;
    const char *d = nb_tensor_data(t); /* ASan: the buffer really holds numel elements */
    volatile char last = numel > 0 ? d[numel * (int64_t)nb_dtype_size(dtype) - 1] : 0;
    (void)last, (void)sum;
    nb_tensor_release(t);
    return 0;
}

static int dataset_one(const uint8_t *data, size_t size, bool gz, int num_classes) {
    if (size < 3) return 0;
    size_t split = (size_t)data[1] << 8 | data[2];
    const uint8_t *body = data + 3;
    size_t n = size - 3;
    if (split > n) split = n;
    const char *ip = nbf_scratch_path(0), *lp = nbf_scratch_path(1);
    if (!ip || !lp || write_file(ip, body, split, gz) != 0 || write_file(lp, body + split, n - split, gz) != 0)
        return fail("cannot write scratch files");
    nb_clear_error();
    nb_dataset *ds = nb_idx_dataset(ip, lp, num_classes);
    if (!ds) return failed_cleanly(ds);
    if (num_classes < 1 || num_classes > 256) return fail("dataset: success with an invalid num_classes");
    int64_t count = nb_dataset_len(ds), shape[NB_MAX_DIMS];
    if (count < 1 || nb_dataset_sample_shape(ds, shape) != 3 || shape[0] != 1 || shape[1] < 1 ||
        shape[1] > NB_IDX_MAX_SIDE || shape[2] < 1 || shape[2] > NB_IDX_MAX_SIDE)
        return fail("dataset: success with sizes out of range");
    if (is_raw(body, split, gz) && (int64_t)split != 16 + count * shape[1] * shape[2])
        return fail("dataset: success but the image file's length disagrees");
    if (is_raw(body + split, n - split, gz) && (int64_t)(n - split) != 8 + count)
        return fail("dataset: success but the label file's length disagrees");
    /* one pass of a shuffling loader over (at most) the first 256 samples */
    nb_dataset *head = nb_dataset_narrow(ds, 0, count < 256 ? count : 256);
    nb_loader_options o = nb_loader_defaults();
    o.batch_size = 64, o.shuffle = true;
    nb_loader *l = head ? nb_loader_new(head, &o) : NULL;
    int rc = l ? 0 : fail("dataset: no loader over an accepted data set");
    nb_tensor *x, *y;
    int64_t b;
    while (rc == 0 && (b = nb_loader_next(l, &x, &y)) > 0) {
        const int64_t *lab = nb_tensor_i64(y);
        for (int64_t i = 0; i < b; i++)
            if (lab[i] < 0 || lab[i] >= num_classes) rc = fail("dataset: a label out of range was accepted");
        const float *px = nb_tensor_f32(x);
        for (int64_t i = 0; i < nb_tensor_numel(x); i++)
            if (!(px[i] >= 0 && px[i] <= 1)) rc = fail("dataset: a pixel outside [0, 1]");
        nb_tensor_release(x);
        nb_tensor_release(y);
    }
    nb_loader_free(l);
    nb_dataset_free(head);
    nb_dataset_free(ds);
    return rc;
}

int nbf_idx_one(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    uint8_t mode = data[0];
    bool dataset = mode & 1, gz = mode & 2;
    if (!dataset) return read_one(data + 1, size - 1, gz, (mode >> 2) & 3);
    int v = mode >> 2;
    int num_classes = v == 0 ? 10 : v == 1 ? 0 : v == 2 ? 257 : 4 * v;
    return dataset_one(data, size, gz, num_classes);
}

#ifdef NBF_LIBFUZZER
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (nbf_idx_one(data, size) != 0) abort();
    return 0;
}
#endif
