/* idx.h: a strict reader for the unsigned-byte IDX files of MNIST-like data sets.
 *
 * IDX (LeCun's format): a 4-byte magic 00 00 <dtype> <ndim>, then ndim
 * big-endian uint32 sizes, then the data in row-major order. Images are
 * 0x00000803 (ubyte, 3 dims: count, rows, cols), labels 0x00000801 (ubyte,
 * 1 dim: count). Files may be raw or gzip-compressed (zlib reads both).
 *
 * Files are untrusted: the header must match exactly, the sizes must be
 * nonzero and sane, and the data must be exactly as long as the header says
 * (a truncated file or trailing bytes are errors). Memory grows only with the
 * data actually read, so a lying header cannot make the reader allocate more
 * than the file holds.
 *
 * ERRORS. nabla's own error slot is private to the library, so these
 * functions return an nb_status and, on failure, write a message that names
 * the file and what was expected versus found into the caller's buffer
 * err[errlen] (always NUL-terminated; err may be NULL when errlen is 0).
 */
#ifndef MNIST_IDX_H
#define MNIST_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "nabla/core.h"

/* Largest accepted rows or cols of an image file. */
#define IDX_MAX_SIDE 4096

/* Images as read: count x rows x cols bytes. */
typedef struct idx_images {
    uint8_t *pixels; // (count, rows, cols)
    int64_t count, rows, cols;
} idx_images;

/* Labels as read: count bytes, each below the num_classes given to the reader. */
typedef struct idx_labels {
    uint8_t *labels; // (count,)
    int64_t count;
} idx_labels;

/* Read an image file (magic 0x00000803). On failure *out is zeroed. */
nb_status idx_read_images(const char *path, idx_images *out, char *err, size_t errlen);
/* Read a label file (magic 0x00000801) whose labels must lie in [0, num_classes). */
nb_status idx_read_labels(const char *path, int num_classes, idx_labels *out, char *err, size_t errlen);
/* Free what a reader returned and zero the struct; safe on a zeroed struct. */
void idx_images_free(idx_images *im);
void idx_labels_free(idx_labels *lb);

/* Write a message into err (printf-style, truncated to errlen) and return status. */
nb_status idx_fail(char *err, size_t errlen, nb_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
