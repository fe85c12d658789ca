/* idx_file.c: strict reading of IDX files, raw or gzipped (zlib reads both).
 * Every size taken from a header is checked before it is used, and data is
 * read into a buffer that grows with what the file really holds, so a header
 * that lies costs at most the file's real size. */
#include "data_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK (1 << 20) /* first buffer size and largest single gzread */

void *nbd_alloc(const char *op, size_t n) {
    void *p = nbi_alloc_should_fail() ? NULL : malloc(n ? n : 1); /* tests can force failures */
    if (!p) nbi_error(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", op, n);
    return p;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

const char *nbd_idx_type_name(int type) {
    switch (type) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return NULL;
}

static size_t idx_type_size(int type) {
    switch (type) {
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    }
    return 1;
}

/* zlib's description of the stream's error state, or NULL if there is none. */
static const char *gz_problem(gzFile f, int *errnum) {
    const char *msg = gzerror(f, errnum);
    if (*errnum == Z_OK) return NULL;
    if (*errnum == Z_ERRNO) return strerror(errno);
    return msg;
}

typedef struct reader {
    const char *op, *path;
    gzFile f;
} reader;

/* Read up to n bytes; returns the count read (< n only at the end of data),
 * or -1 after reporting an error. */
static int64_t read_some(const reader *r, uint8_t *buf, int64_t n) {
    int64_t got = 0;
    while (got < n) {
        int64_t want = n - got < CHUNK ? n - got : CHUNK;
        int k = gzread(r->f, buf + got, (unsigned)want);
        if (k < 0) {
            int e;
            const char *msg = gz_problem(r->f, &e);
            nbi_error(NB_ERR_IO, "%s: %s: read error after %" PRId64 " bytes: %s", r->op, r->path, got,
                      msg ? msg : "unknown");
            return -1;
        }
        if (k == 0) break;
        got += k;
    }
    return got;
}

/* After a short read or at the end: was the gzip stream itself broken (cut
 * off, bad CRC)? zlib reports a cut-off stream as Z_BUF_ERROR without failing
 * the read, so the state must be asked explicitly. */
static nb_status check_stream(const reader *r, int64_t done, int64_t total) {
    int e;
    const char *msg = gz_problem(r->f, &e);
    if (!msg) return NB_OK;
    return nbi_error(NB_ERR_IO,
                     "%s: %s: gzip data is truncated or corrupt (zlib: %s) after %" PRId64 " of %" PRId64
                     " expected bytes",
                     r->op, r->path, msg, done, total);
}

/* What an expected header looks like, for messages: "0x00000803 (IDX images, 3 dimensions)". */
static void describe_want(char *buf, size_t size, int want_type, int want_ndim, const char *kind) {
    if (want_type && want_ndim)
        snprintf(buf, size, "0x%08" PRIx32 " (IDX %s)", (uint32_t)want_type << 8 | (uint32_t)want_ndim, kind);
    else
        snprintf(buf, size, "00 00 <type> <ndim> (an IDX %s)", kind);
}

/* Check the 4-byte magic: 00 00 type ndim. */
static nb_status read_magic(const reader *r, int want_type, int want_ndim, const char *kind, nbd_idx_header *h) {
    uint8_t m[4];
    int64_t got = read_some(r, m, 4);
    char want[96];
    describe_want(want, sizeof want, want_type, want_ndim, kind);
    if (got < 0) return NB_ERR_IO;
    if (got < 4) {
        nb_status st = check_stream(r, got, 4);
        if (st != NB_OK) return st;
        if (got == 0) return nbi_error(NB_ERR_IO, "%s: %s: file is empty: expected an IDX %s header", r->op, r->path, kind);
        return nbi_error(NB_ERR_IO,
                         "%s: %s: truncated header: expected a 4-byte IDX magic number, but the file has %" PRId64 " bytes",
                         r->op, r->path, got);
    }
    if (m[0] != 0 || m[1] != 0)
        return nbi_error(NB_ERR_IO, "%s: %s: bad magic number: expected %s, but got 0x%08" PRIx32 " (not an IDX file)",
                         r->op, r->path, want, be32(m));
    if (!nbd_idx_type_name(m[2]))
        return nbi_error(NB_ERR_IO,
                         "%s: %s: unknown IDX data type 0x%02x (magic 0x%08" PRIx32
                         "): expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e",
                         r->op, r->path, m[2], be32(m));
    if (want_type && m[2] != want_type)
        return nbi_error(NB_ERR_IO, "%s: %s: wrong IDX data type: expected 0x%02x (%s), but got 0x%02x (%s, magic 0x%08" PRIx32 ")",
                         r->op, r->path, want_type, nbd_idx_type_name(want_type), m[2], nbd_idx_type_name(m[2]), be32(m));
    if (want_ndim && m[3] != want_ndim)
        return nbi_error(NB_ERR_IO,
                         "%s: %s: bad magic number: expected 0x%08" PRIx32 " (IDX %s, %d dimensions), but got 0x%08" PRIx32
                         " (%d dimensions)",
                         r->op, r->path, (uint32_t)m[2] << 8 | (uint32_t)want_ndim, kind, want_ndim, be32(m), m[3]);
    if (m[3] < 1 || m[3] > NB_MAX_DIMS)
        return nbi_error(NB_ERR_IO, "%s: %s: expected 1 to %d dimensions, but the magic number 0x%08" PRIx32 " says %d",
                         r->op, r->path, NB_MAX_DIMS, be32(m), m[3]);
    h->type = m[2];
    h->ndim = m[3];
    h->elem_size = idx_type_size(h->type);
    return NB_OK;
}

/* Read the ndim sizes that follow the magic and their product (bytes must fit int64 and size_t). */
static nb_status read_dims(const reader *r, nbd_idx_header *h) {
    uint8_t b[4 * NB_MAX_DIMS];
    int64_t n = 4 * (int64_t)h->ndim;
    int64_t got = read_some(r, b, n);
    if (got < 0) return NB_ERR_IO;
    if (got < n) {
        nb_status st = check_stream(r, 4 + got, 4 + n);
        if (st != NB_OK) return st;
        return nbi_error(NB_ERR_IO, "%s: %s: truncated header: expected %" PRId64 " header bytes, but the file has %" PRId64,
                         r->op, r->path, 4 + n, 4 + got);
    }
    int64_t lim = (uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (int64_t)SIZE_MAX : INT64_MAX;
    lim /= (int64_t)h->elem_size;
    /* span: the product with empty dimensions counted as 1, which bounds
     * every stride too (a tensor of shape [0, 2^31, 2^31] is empty, but its
     * strides must still fit) */
    int64_t numel = 1, span = 1;
    bool overflow = false;
    for (int i = 0; i < h->ndim; i++) {
        h->dims[i] = be32(b + 4 * i);
        int64_t d = h->dims[i] > 1 ? h->dims[i] : 1;
        if (overflow || span > lim / d) {
            overflow = true;
            continue;
        }
        span *= d;
        numel *= h->dims[i]; /* <= span */
    }
    if (overflow) {
        char shape[256];
        return nbi_error(NB_ERR_IO, "%s: %s: data size %s overflows", r->op, r->path,
                         nb_shape_str(h->ndim, h->dims, shape, sizeof shape));
    }
    h->numel = numel;
    return NB_OK;
}

/* Read exactly `total` data bytes and require the end of the file right after.
 * The buffer doubles from CHUNK as data arrives. */
static nb_status read_payload(const reader *r, int64_t total, const char *what, uint8_t **out) {
    *out = NULL;
    int64_t cap = total < CHUNK ? total : CHUNK;
    uint8_t *buf = nbd_alloc(r->op, (size_t)cap);
    if (!buf) return NB_ERR_NOMEM;
    int64_t got = 0;
    while (got < total) {
        if (got == cap) {
            int64_t ncap = cap > total / 2 ? total : cap * 2;
            uint8_t *nb = nbi_alloc_should_fail() ? NULL : realloc(buf, (size_t)ncap);
            if (!nb) {
                free(buf);
                return nbi_error(NB_ERR_NOMEM, "%s: %s: out of memory for %" PRId64 " bytes", r->op, r->path, ncap);
            }
            buf = nb;
            cap = ncap;
        }
        int64_t k = read_some(r, buf + got, cap - got);
        if (k < 0) {
            free(buf);
            return NB_ERR_IO;
        }
        got += k;
        if (got < cap) break; /* end of data */
    }
    nb_status st = check_stream(r, got, total);
    if (st == NB_OK && got < total)
        st = nbi_error(NB_ERR_IO,
                       "%s: %s: truncated data: expected %" PRId64 " bytes of %s after the header, but found only %" PRId64,
                       r->op, r->path, total, what, got);
    if (st == NB_OK) {
        /* Anything after the data means the header and the file disagree. */
        uint8_t extra[4096];
        int64_t more = 0, k;
        while ((k = read_some(r, extra, sizeof extra)) > 0 && more < CHUNK) more += k;
        if (k < 0) st = NB_ERR_IO;
        if (st == NB_OK) st = check_stream(r, total, total);
        if (st == NB_OK && more > 0)
            st = nbi_error(NB_ERR_IO,
                           "%s: %s: trailing data: expected the file to end after %" PRId64
                           " bytes of %s, but found %s%" PRId64 " more bytes",
                           r->op, r->path, total, what, more >= CHUNK ? "at least " : "", more);
    }
    if (st != NB_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return NB_OK;
}

nb_status nbd_idx_load(const char *op, const char *path, int want_type, int want_ndim, const char *kind,
                       nbd_idx_check_fn check, nbd_idx_header *h, uint8_t **data) {
    memset(h, 0, sizeof *h);
    *data = NULL;
    if (!path) return nbi_error(NB_ERR_ARG, "%s: path is NULL", op);
    errno = 0;
    reader r = {op, path, gzopen(path, "rb")};
    if (!r.f)
        return nbi_error(NB_ERR_IO, "%s: %s: cannot open: %s", op, path, errno ? strerror(errno) : "out of memory");
    gzbuffer(r.f, 1 << 17);
    nb_status st = read_magic(&r, want_type, want_ndim, kind, h);
    if (st == NB_OK) st = read_dims(&r, h);
    if (st == NB_OK && check) st = check(op, path, h);
    if (st == NB_OK) {
        char what[64];
        snprintf(what, sizeof what, "%s", h->type == 0x08 ? kind : nbd_idx_type_name(h->type));
        st = read_payload(&r, h->numel * (int64_t)h->elem_size, what, data);
    }
    gzclose(r.f);
    if (st != NB_OK) memset(h, 0, sizeof *h);
    return st;
}
