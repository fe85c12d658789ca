#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

/* No Check time limits: a verdict must not depend on how fast or how busy
 * the machine is. Check kills a forked test after CK_DEFAULT_TIMEOUT seconds
 * (4 unless set; 0 disables it), read when a TCase is created, so it is set
 * before main(); a value in the environment is kept. Hangs are CTest's to
 * catch (TIMEOUT in tests/CMakeLists.txt), and CTest runs Check with
 * CK_FORK=no anyway. */
__attribute__((constructor)) static void nbt_no_check_timeouts(void) { setenv("CK_DEFAULT_TIMEOUT", "0", 0); }

int nbt_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nb_memory_trim();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void nbt_assert_values(const nb_tensor *t, const double *expected, int64_t n, double atol, double rtol) {
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(nb_tensor_numel(t), n);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    ck_assert_int_eq(nb_tensor_copy_out(t, v, NB_F64), NB_OK);
    for (int64_t i = 0; i < n; i++) {
        double tol = atol + rtol * fabs(expected[i]);
        bool ok = fabs(v[i] - expected[i]) <= tol || (isnan(v[i]) && isnan(expected[i])) ||
                  (isinf(v[i]) && v[i] == expected[i]);
        if (!ok) {
            double got = v[i];
            free(v);
            ck_abort_msg("element %lld: got %.10g, expected %.10g (tol %g)", (long long)i, got, expected[i], tol);
        }
    }
    free(v);
}

void nbt_assert_shape(const nb_tensor *t, int ndim, const int64_t *shape) {
    char a[128], b[128];
    ck_assert_ptr_nonnull(t);
    bool same = nb_tensor_ndim(t) == ndim && memcmp(nb_tensor_shape(t), shape, sizeof(int64_t) * (size_t)ndim) == 0;
    ck_assert_msg(same, "shape %s, expected %s", nb_shape_str(nb_tensor_ndim(t), nb_tensor_shape(t), a, sizeof a),
                  nb_shape_str(ndim, shape, b, sizeof b));
}

void nbt_assert_bitwise_equal(const nb_tensor *a, const nb_tensor *b) {
    ck_assert_int_eq(nb_tensor_dtype(a), nb_tensor_dtype(b));
    nbt_assert_shape(b, nb_tensor_ndim(a), nb_tensor_shape(a));
    int64_t n = nb_tensor_numel(a);
    size_t sz = nb_dtype_size(nb_tensor_dtype(a)) * (size_t)(n ? n : 1);
    void *x = malloc(sz), *y = malloc(sz);
    nb_tensor_copy_out(a, x, nb_tensor_dtype(a));
    nb_tensor_copy_out(b, y, nb_tensor_dtype(b));
    int cmp = memcmp(x, y, nb_dtype_size(nb_tensor_dtype(a)) * (size_t)n);
    free(x);
    free(y);
    ck_assert_msg(cmp == 0, "tensors differ bitwise");
}

nb_tensor *nbt_randn(uint64_t seed, nb_dtype dtype, int ndim, const int64_t *shape, bool requires_grad) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_tensor *t = nb_rand_normal(&rng, dtype, ndim, shape, 0.0, 1.0);
    ck_assert_msg(t != NULL, "randn: %s", nb_last_error());
    if (requires_grad) ck_assert_int_eq(nb_requires_grad_(t, true), NB_OK);
    return t;
}

void nbt_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n, bool fast) {
    nb_gradcheck_options o = nb_gradcheck_defaults();
    o.fast_mode = fast;
    nb_gradcheck_report rep;
    nb_status st = nb_gradcheck(f, ctx, inputs, n, &o, &rep);
    ck_assert_msg(st == NB_OK, "gradcheck could not run: %s", nb_last_error());
    ck_assert_msg(rep.passed, "%s", rep.message);
}

/* ---- PyTorch reference files (HDF5) ---- */
#include <hdf5.h>

const char *nbt_data_path(const char *file) {
    static char buf[4096];
    const char *dir = getenv("NB_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : ".", file);
    return buf;
}

bool nbt_h5_exists(const char *file, const char *name) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return false;
    htri_t e = H5Lexists(f, name, H5P_DEFAULT);
    H5Fclose(f);
    return e > 0;
}

nb_tensor *nbt_h5_read(const char *file, const char *name, nb_dtype dtype) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s (was the PyTorch reference generated?)", file);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "%s: no dataset %s", file, name);
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    ck_assert(nd >= 0 && nd <= NB_MAX_DIMS);
    hsize_t dims[NB_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    int64_t shape[NB_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
    nb_tensor *t = nb_zeros(dtype, nd, shape);
    ck_assert_ptr_nonnull(t);
    hid_t mt = dtype == NB_F32 ? H5T_NATIVE_FLOAT : dtype == NB_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
    herr_t r = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, nb_tensor_data(t));
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    ck_assert_msg(r >= 0, "%s: cannot read %s", file, name);
    return t;
}

bool nbt_h5_read_scalar(const char *file, const char *name, double *out) {
    if (!nbt_h5_exists(file, name)) return false;
    nb_tensor *t = nbt_h5_read(file, name, NB_F64);
    bool ok = nb_tensor_numel(t) == 1 && nb_tensor_item(t, out) == NB_OK;
    nb_tensor_release(t);
    return ok;
}
