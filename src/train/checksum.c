/* The checkpoint checksum (nabla/checkpoint.h): FNV-1a 64 over every
 * dataset's name, kind, shape and values, in strcmp order of the names. The
 * values are hashed as float64 (float data) or int64 (integer data), little
 * endian, so a file reads back to the same sum whatever float width a tool
 * stored, and the sum is easy to write in Python (tests/mnist/common.py). */
#include <stdlib.h>
#include <string.h>

#include "tensor/internal.h"
#include "train/train_internal.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

static bool little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* count 8-byte values (int64 or float64), each little endian. */
static uint64_t fnv_values(uint64_t h, const void *p, int64_t count) {
    if (little_endian()) return fnv(h, p, (size_t)count * 8);
    const unsigned char *b = p;
    for (int64_t i = 0; i < count; i++)
        for (int k = 7; k >= 0; k--) h = (h ^ b[8 * i + k]) * FNV_PRIME;
    return h;
}

/* One dataset: name, NUL, 'f' or 'i', ndim, dims, values. */
static uint64_t fnv_entry(uint64_t h, const char *name, bool is_float, int ndim, const int64_t *shape,
                          const void *values, int64_t numel) {
    h = fnv(h, name, strlen(name) + 1);
    h = fnv(h, is_float ? "f" : "i", 1);
    const int64_t nd = ndim;
    h = fnv_values(h, &nd, 1);
    h = fnv_values(h, shape, ndim);
    return fnv_values(h, values, numel);
}

typedef struct {
    const char *name;
    int index;
} named_index;

static int by_name(const void *a, const void *b) {
    return strcmp(((const named_index *)a)->name, ((const named_index *)b)->name);
}

/* The n names with their indices, in strcmp order (NULL when out of memory). */
static named_index *sorted_names(const char *const *names, int n) {
    named_index *order = nbi_alloc_should_fail() ? NULL : malloc(sizeof *order * (size_t)(n ? n : 1));
    if (!order) return NULL;
    for (int i = 0; i < n; i++) order[i] = (named_index){names[i], i};
    qsort(order, (size_t)n, sizeof *order, by_name);
    return order;
}

nb_status nbi_checksum_entries(const char *op, const nb_named_tensor *entries, int n, uint64_t *out) {
    const char **names = nbi_alloc_should_fail() ? NULL : malloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int i = 0; names && i < n; i++) names[i] = entries[i].name;
    named_index *order = names ? sorted_names(names, n) : NULL;
    free(names);
    if (!order) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    uint64_t h = FNV_OFFSET;
    nb_status st = NB_OK;
    for (int i = 0; st == NB_OK && i < n; i++) {
        const nb_tensor *t = entries[order[i].index].tensor;
        const bool is_float = nb_tensor_dtype(t) != NB_I64;
        const int64_t numel = nb_tensor_numel(t);
        void *buf = nbi_alloc_should_fail() ? NULL : malloc((size_t)(numel ? numel : 1) * 8);
        if (!buf) st = nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
        else if (nb_tensor_copy_out(t, buf, is_float ? NB_F64 : NB_I64) != NB_OK) st = nb_last_status();
        else h = fnv_entry(h, order[i].name, is_float, nb_tensor_ndim(t), nb_tensor_shape(t), buf, numel);
        free(buf);
    }
    free(order);
    *out = h;
    return st;
}

nb_status nbi_checksum_file(const char *op, const char *path, char *const *names, int n, uint64_t *out) {
    named_index *order = sorted_names((const char *const *)names, n);
    if (!order) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    uint64_t h = FNV_OFFSET;
    nb_status st = NB_OK;
    for (int i = 0; st == NB_OK && i < n; i++) {
        const char *name = order[i].name;
        if (strcmp(name, NBI_CHECKSUM_KEY) == 0) continue;
        bool is_float = true;
        nb_tensor *t = nbi_own(nb_hdf5_read(path, name, NB_F64));
        if (!t && nb_last_status() != NB_ERR_NOMEM) { /* integer data */
            is_float = false;
            t = nbi_own(nb_hdf5_read(path, name, NB_I64));
        }
        if (!t) {
            st = nb_last_status() == NB_ERR_NOMEM ? nbi_error(NB_ERR_NOMEM, "%s: out of memory", op)
                                                  : nbi_error(NB_ERR_IO, "%s: '%s': cannot read %s for the checksum",
                                                              op, path, name);
            break;
        }
        h = fnv_entry(h, name, is_float, nb_tensor_ndim(t), nb_tensor_shape(t), nb_tensor_data(t), nb_tensor_numel(t));
        nbi_release(t);
    }
    free(order);
    *out = h;
    return st;
}
