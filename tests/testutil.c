#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

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
