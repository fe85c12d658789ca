/* idx.c: strict reading of unsigned-byte IDX image and label files, raw or gzipped.
 * Every size taken from a header is checked before it is used, and data is
 * read into a buffer that grows with what the file really holds. */
#include "idx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
#define CHUNK (1 << 20) /* first buffer size and largest single gzread */

nb_status idx_fail(char *err, size_t errlen, nb_status status, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* zlib's description of the stream's error state, or NULL if there is none. */
static const char *gz_problem(gzFile f, int *errnum) {
    const char *msg = gzerror(f, errnum);
    if (*errnum == Z_OK) return NULL;
    if (*errnum == Z_ERRNO) return strerror(errno);
    return msg;
}

/* Read up to n bytes; returns the count read (< n only at the end of data),
 * or -1 after writing an error. */
static int64_t read_some(gzFile f, const char *path, uint8_t *buf, int64_t n, char *err, size_t errlen) {
    int64_t got = 0;
    while (got < n) {
        int64_t want = n - got < CHUNK ? n - got : CHUNK;
        int r = gzread(f, buf + got, (unsigned)want);
        if (r < 0) {
            int e;
            const char *msg = gz_problem(f, &e);
            idx_fail(err, errlen, NB_ERR_IO, "%s: read error after %" PRId64 " bytes: %s", path, got,
                     msg ? msg : "unknown");
            return -1;
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* After a short read or at the end: was the gzip stream itself broken (cut
 * off, bad CRC)? zlib reports a cut-off stream as Z_BUF_ERROR without failing
 * the read, so the state must be asked explicitly. */
static nb_status check_stream(gzFile f, const char *path, int64_t done, int64_t total, char *err,
                              size_t errlen) {
    int e;
    const char *msg = gz_problem(f, &e);
    if (!msg) return NB_OK;
    return idx_fail(err, errlen, NB_ERR_IO,
                    "%s: gzip data is truncated or corrupt (zlib: %s) after %" PRId64 " of %" PRId64
                    " expected bytes",
                    path, msg, done, total);
}

/* Open path and check its magic: 00 00 0x08 ndim. On success *f is open. */
static nb_status open_checked(const char *path, int ndim, const char *kind, gzFile *f, char *err, size_t errlen) {
    *f = NULL;
    if (!path) return idx_fail(err, errlen, NB_ERR_ARG, "idx: path is NULL");
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return idx_fail(err, errlen, NB_ERR_IO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(g, 1 << 17);
    uint8_t m[4];
    int64_t got = read_some(g, path, m, 4, err, errlen);
    nb_status st = NB_OK;
    uint32_t want = (uint32_t)IDX_UBYTE << 8 | (uint32_t)ndim;
    if (got < 0) {
        st = NB_ERR_IO;
    } else if (got == 0) {
        st = check_stream(g, path, 0, 4, err, errlen);
        if (st == NB_OK)
            st = idx_fail(err, errlen, NB_ERR_IO, "%s: file is empty: expected an IDX %s header", path, kind);
    } else if (got < 4) {
        st = check_stream(g, path, got, 4, err, errlen);
        if (st == NB_OK)
            st = idx_fail(err, errlen, NB_ERR_IO,
                          "%s: truncated header: expected a 4-byte IDX magic number, but the file has %" PRId64
                          " bytes",
                          path, got);
    } else if (m[0] != 0 || m[1] != 0) {
        st = idx_fail(err, errlen, NB_ERR_IO,
                      "%s: bad magic number: expected 0x%08" PRIx32 " (IDX %s), but got 0x%08" PRIx32
                      " (not an IDX file)",
                      path, want, kind, be32(m));
    } else if (m[2] != IDX_UBYTE) {
        st = idx_fail(err, errlen, NB_ERR_IO,
                      "%s: wrong IDX data type: expected 0x08 (unsigned byte), but got 0x%02x (magic 0x%08" PRIx32
                      ")",
                      path, m[2], be32(m));
    } else if (m[3] != ndim) {
        st = idx_fail(err, errlen, NB_ERR_IO,
                      "%s: bad magic number: expected 0x%08" PRIx32 " (IDX %s, %d dimensions), but got 0x%08" PRIx32
                      " (%d dimensions)",
                      path, want, kind, ndim, be32(m), m[3]);
    }
    if (st != NB_OK) {
        gzclose(g);
        return st;
    }
    *f = g;
    return NB_OK;
}

/* Read the ndim sizes that follow the magic. */
static nb_status read_dims(gzFile f, const char *path, int ndim, int64_t *dims, char *err, size_t errlen) {
    uint8_t b[4 * 3];
    int64_t n = 4 * (int64_t)ndim;
    int64_t got = read_some(f, path, b, n, err, errlen);
    if (got < 0) return NB_ERR_IO;
    if (got < n) {
        nb_status st = check_stream(f, path, 4 + got, 4 + n, err, errlen);
        if (st != NB_OK) return st;
        return idx_fail(err, errlen, NB_ERR_IO,
                        "%s: truncated header: expected %" PRId64 " header bytes, but the file has %" PRId64, path,
                        4 + n, 4 + got);
    }
    for (int i = 0; i < ndim; i++) dims[i] = be32(b + 4 * i);
    return NB_OK;
}

/* Read exactly `total` data bytes and require the end of the file right after.
 * The buffer doubles from CHUNK as data arrives, so a header that claims far
 * more than the file holds costs at most twice the real size. */
static nb_status read_payload(gzFile f, const char *path, int64_t total, const char *what, uint8_t **out,
                              char *err, size_t errlen) {
    *out = NULL;
    int64_t cap = total < CHUNK ? total : CHUNK;
    uint8_t *buf = malloc((size_t)cap);
    if (!buf) return idx_fail(err, errlen, NB_ERR_NOMEM, "%s: out of memory for %" PRId64 " bytes", path, cap);
    int64_t got = 0;
    while (got < total) {
        if (got == cap) {
            int64_t ncap = cap > total / 2 ? total : cap * 2;
            uint8_t *nb = realloc(buf, (size_t)ncap);
            if (!nb) {
                free(buf);
                return idx_fail(err, errlen, NB_ERR_NOMEM, "%s: out of memory for %" PRId64 " bytes", path, ncap);
            }
            buf = nb;
            cap = ncap;
        }
        int64_t r = read_some(f, path, buf + got, cap - got, err, errlen);
        if (r < 0) {
            free(buf);
            return NB_ERR_IO;
        }
        got += r;
        if (got < cap) break; /* end of data */
    }
    nb_status st = check_stream(f, path, got, total, err, errlen);
    if (st == NB_OK && got < total)
        st = idx_fail(err, errlen, NB_ERR_IO,
                      "%s: truncated data: expected %" PRId64 " bytes of %s after the header, but found only %" PRId64,
                      path, total, what, got);
    if (st == NB_OK) {
        /* Anything after the data means the header and the file disagree. */
        uint8_t extra[4096];
        int64_t more = 0, r;
        while ((r = read_some(f, path, extra, sizeof extra, err, errlen)) > 0 && more < CHUNK) more += r;
        if (r < 0) st = NB_ERR_IO;
        if (st == NB_OK) st = check_stream(f, path, total, total, err, errlen);
        if (st == NB_OK && more > 0)
            st = idx_fail(err, errlen, NB_ERR_IO,
                          "%s: trailing data: expected the file to end after %" PRId64 " bytes of %s, but found %s%" PRId64
                          " more bytes",
                          path, total, what, more >= CHUNK ? "at least " : "", more);
    }
    if (st != NB_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return NB_OK;
}

/* a * b, or -1 if it would exceed INT64_MAX or SIZE_MAX (a, b >= 0). */
static int64_t mul_checked(int64_t a, int64_t b) {
    int64_t lim = (uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (int64_t)SIZE_MAX : INT64_MAX;
    if (a != 0 && b > lim / a) return -1;
    return a * b;
}

nb_status idx_read_images(const char *path, idx_images *out, char *err, size_t errlen) {
    if (!out) return idx_fail(err, errlen, NB_ERR_ARG, "idx_read_images: out is NULL");
    memset(out, 0, sizeof *out);
    gzFile f;
    nb_status st = open_checked(path, 3, "images", &f, err, errlen);
    if (st != NB_OK) return st;
    int64_t d[3];
    st = read_dims(f, path, 3, d, err, errlen);
    if (st == NB_OK && d[0] == 0)
        st = idx_fail(err, errlen, NB_ERR_IO, "%s: expected a nonzero number of images, but the header says 0", path);
    if (st == NB_OK && (d[1] < 1 || d[1] > IDX_MAX_SIDE || d[2] < 1 || d[2] > IDX_MAX_SIDE))
        st = idx_fail(err, errlen, NB_ERR_IO,
                      "%s: expected image rows and cols in 1..%d, but the header says %" PRId64 " x %" PRId64, path,
                      IDX_MAX_SIDE, d[1], d[2]);
    int64_t total = -1;
    if (st == NB_OK) {
        int64_t per_image = mul_checked(d[1], d[2]);
        total = per_image < 0 ? -1 : mul_checked(d[0], per_image);
        if (total < 0)
            st = idx_fail(err, errlen, NB_ERR_IO,
                          "%s: image data size %" PRId64 " x %" PRId64 " x %" PRId64 " overflows", path, d[0], d[1],
                          d[2]);
    }
    if (st == NB_OK) st = read_payload(f, path, total, "pixels", &out->pixels, err, errlen);
    gzclose(f);
    if (st != NB_OK) return st;
    out->count = d[0];
    out->rows = d[1];
    out->cols = d[2];
    return NB_OK;
}

nb_status idx_read_labels(const char *path, int num_classes, idx_labels *out, char *err, size_t errlen) {
    if (!out) return idx_fail(err, errlen, NB_ERR_ARG, "idx_read_labels: out is NULL");
    memset(out, 0, sizeof *out);
    if (num_classes < 1 || num_classes > 256)
        return idx_fail(err, errlen, NB_ERR_ARG, "idx_read_labels: expected num_classes in 1..256, but got %d",
                        num_classes);
    gzFile f;
    nb_status st = open_checked(path, 1, "labels", &f, err, errlen);
    if (st != NB_OK) return st;
    int64_t n = 0;
    st = read_dims(f, path, 1, &n, err, errlen);
    if (st == NB_OK && n == 0)
        st = idx_fail(err, errlen, NB_ERR_IO, "%s: expected a nonzero number of labels, but the header says 0", path);
    uint8_t *lab = NULL;
    if (st == NB_OK) st = read_payload(f, path, n, "labels", &lab, err, errlen);
    gzclose(f);
    for (int64_t i = 0; st == NB_OK && i < n; i++)
        if (lab[i] >= num_classes)
            st = idx_fail(err, errlen, NB_ERR_IO, "%s: label %d at index %" PRId64 " is out of range: expected 0 to %d",
                          path, lab[i], i, num_classes - 1);
    if (st != NB_OK) {
        free(lab);
        return st;
    }
    out->labels = lab;
    out->count = n;
    return NB_OK;
}

void idx_images_free(idx_images *im) {
    if (!im) return;
    free(im->pixels);
    memset(im, 0, sizeof *im);
}

void idx_labels_free(idx_labels *lb) {
    if (!lb) return;
    free(lb->labels);
    memset(lb, 0, sizeof *lb);
}
