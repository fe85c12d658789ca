/* fuzz_entries.h: the per-input entry points shared by the libFuzzer targets
 * (tests/fuzz/fuzz_<name>.c built with -DNBF_LIBFUZZER) and the CTest that
 * replays the committed corpus and regression inputs (tests/test_fuzz_regressions.c),
 * so a replayed input takes exactly the path the fuzzer took.
 *
 * Each entry feeds one input to the library and checks the library's contract
 * on the way: it must return a result or an error with a message, never crash.
 * An entry returns 0 when the contract held and -1 (after printing what broke
 * to stderr) when it did not; the libFuzzer wrapper turns -1 into abort(). */
#ifndef NB_FUZZ_ENTRIES_H
#define NB_FUZZ_ENTRIES_H

#include <stddef.h>
#include <stdint.h>

/* The IDX readers of nabla/data.h (nb_idx_read, nb_idx_dataset, then a
 * loader pass), input written to temporary files. */
int nbf_idx_one(const uint8_t *data, size_t size);
/* nb_hdf5_list / nb_hdf5_read / nb_hdf5_load on the input as an HDF5 file. */
int nbf_hdf5_one(const uint8_t *data, size_t size);
/* nb_conv2d / nb_max_pool2d / nb_avg_pool2d / nb_pad / nb_conv_output_size /
 * nb_conv_transpose2d (and nn.ConvTranspose2d's forward) on shapes and
 * parameters decoded from the input. */
int nbf_conv_one(const uint8_t *data, size_t size);

/* A path this process may overwrite with one input (created on first use,
 * removed at exit). Separate files per user so the targets can share one. */
const char *nbf_scratch_path(int which);
/* Write data to path, replacing its contents; 0 or -1. */
int nbf_write_file(const char *path, const uint8_t *data, size_t size);

#endif
