/* fuzz_hdf5.c: fuzzing the HDF5 state_dict reader (src/nn/hdf5_io.c).
 *
 * The whole input is written as a file, which is then listed (nb_hdf5_list),
 * each of its first datasets read as float32 and as int64 (nb_hdf5_read), and
 * loaded into a fixed small state_dict (nb_hdf5_load), strict and not.
 * Checks: every failure leaves a message; a failed load leaves every tensor
 * exactly as it was (the all-or-nothing rule of nabla/io.h); a listed name
 * that reads back gives a tensor of the requested dtype. */
#include "fuzz_entries.h"

#include <stdio.h>
#include <string.h>

#include "nabla.h"

#define MAX_READS 8

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_hdf5: contract broken: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return -1;
}

/* nb_last_error must be non-empty after a failure. */
static int check_message(const char *op) {
    const char *m = nb_last_error();
    if (!m || !m[0] || nb_last_status() >= 0) return fail("failure without a message or status", op);
    return 0;
}

static int read_all(const char *path) {
    char **names = NULL;
    int n = -1;
    nb_clear_error();
    nb_status st = nb_hdf5_list(path, &names, &n);
    if (st != NB_OK) {
        if (names || n != 0) return fail("hdf5_list: outputs not reset on failure", NULL);
        return check_message("hdf5_list");
    }
    if (n < 0 || (n > 0 && !names)) return fail("hdf5_list: bad count", NULL);
    int rc = 0;
    for (int i = 0; i < n && i < MAX_READS && rc == 0; i++) {
        if (!names[i]) {
            rc = fail("hdf5_list: NULL name", NULL);
            break;
        }
        const nb_dtype dts[2] = {NB_F32, NB_I64};
        for (int k = 0; k < 2 && rc == 0; k++) {
            nb_clear_error();
            nb_tensor *t = nb_hdf5_read(path, names[i], dts[k]);
            if (!t) {
                rc = check_message("hdf5_read");
                continue;
            }
            if (nb_tensor_dtype(t) != dts[k]) rc = fail("hdf5_read: wrong dtype", names[i]);
            nb_tensor_release(t);
        }
    }
    nb_hdf5_names_free(names, n);
    return rc;
}

/* The state_dict a load targets: names a PyTorch file would use, flat and nested. */
static int load_all(const char *path) {
    static const struct {
        const char *name;
        nb_dtype dtype;
        int ndim;
        int64_t shape[4];
    } spec[] = {
        {"weight", NB_F32, 2, {2, 3}},     {"bias", NB_F32, 1, {3}},
        {"fc.weight", NB_F64, 1, {4}},     {"conv.weight", NB_F32, 4, {1, 1, 2, 2}},
        {"bn.num_batches_tracked", NB_I64, 0, {0}},
    };
    enum { NSPEC = sizeof spec / sizeof spec[0] };
    nb_named_tensor e[NSPEC];
    int rc = 0;
    for (int i = 0; i < NSPEC; i++) {
        e[i].name = spec[i].name;
        e[i].tensor = nb_full(spec[i].dtype, spec[i].ndim, spec[i].shape, 7.0);
        if (!e[i].tensor) rc = fail("cannot make the target tensors", nb_last_error());
    }
    for (int strict = 0; strict < 2 && rc == 0; strict++) {
        nb_load_report rep;
        nb_clear_error();
        nb_status st = nb_hdf5_load(path, e, NSPEC, strict, &rep);
        if (st != NB_OK) {
            rc = check_message("hdf5_load");
            /* All or nothing: a failed load changed no tensor. */
            for (int i = 0; i < NSPEC && rc == 0; i++) {
                int64_t m = nb_tensor_numel(e[i].tensor);
                for (int64_t j = 0; j < m && rc == 0; j++) {
                    int64_t idx[4] = {0}, r = j;
                    for (int d = spec[i].ndim - 1; d >= 0; d--) {
                        idx[d] = r % spec[i].shape[d];
                        r /= spec[i].shape[d];
                    }
                    double v = 0;
                    if (nb_tensor_get(e[i].tensor, idx, &v) != NB_OK || v != 7.0)
                        rc = fail("hdf5_load: a failed load changed a tensor", spec[i].name);
                }
            }
        } else if (strict && (rep.nmissing || rep.nunexpected)) {
            rc = fail("hdf5_load: strict load succeeded with missing or unexpected keys", NULL);
        }
        nb_load_report_free(&rep);
        /* Later rounds compare against 7 again. */
        for (int i = 0; i < NSPEC && rc == 0; i++)
            if (nb_tensor_fill_(e[i].tensor, 7.0) != NB_OK) rc = fail("fill_", nb_last_error());
    }
    for (int i = 0; i < NSPEC; i++) nb_tensor_release(e[i].tensor);
    return rc;
}

int nbf_hdf5_one(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *path = nbf_scratch_path(1);
    if (!path) return fail("no scratch file", NULL);
    if (nbf_write_file(path, data, size) != 0) return fail("cannot write scratch file", path);
    int rc = read_all(path);
    if (rc == 0) rc = load_all(path);
    return rc;
}

#ifdef NBF_LIBFUZZER
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (nbf_hdf5_one(data, size) != 0) abort();
    return 0;
}
#endif
