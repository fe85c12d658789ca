/* train_internal.h: what src/train/checkpoint.c uses from its neighbours. */
#ifndef NABLA_TRAIN_INTERNAL_H
#define NABLA_TRAIN_INTERNAL_H

#include <stdint.h>

#include "nabla/io.h"

/* The dataset holding the checksum; "checkpoint." is a reserved prefix. */
#define NBI_CHECKSUM_KEY "checkpoint.checksum"

/* The checksum of nabla/checkpoint.h over entries (in any order), or over
 * the file's datasets names[0..n) except NBI_CHECKSUM_KEY, read back. NB_OK,
 * or an error naming op (and the dataset that cannot be read). */
nb_status nbi_checksum_entries(const char *op, const nb_named_tensor *entries, int n, uint64_t *out);
nb_status nbi_checksum_file(const char *op, const char *path, char *const *names, int n, uint64_t *out);

/* Remove path.tmp.<pid> files that nb_hdf5_save left behind when process
 * pid died while writing (pid no longer exists). Best effort: errors are
 * ignored, as a failure to tidy up must not fail the save. */
void nbi_remove_stale_tmp(const char *path);

#endif
