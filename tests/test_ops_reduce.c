/* Reductions and log_softmax: values against PyTorch (tests/pytorch/ops_reduce_reference.py)
 * and exact identities, shapes, gradients (gradcheck), bad input, and
 * bitwise determinism across thread counts. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define REF nbt_data_path("ops_reduce.h5")

static const nb_dtype DTYPES[2] = {NB_F32, NB_F64};
static const char *DNAMES[2] = {"f32", "f64"};
/* float32 results are accumulated in double here and in float by PyTorch. */
static const double RTOL[2] = {1e-5, 1e-12}, ATOL[2] = {1e-6, 1e-12};

/* Compare t with reference dataset name (read as float64). */
static void assert_ref(const nb_tensor *t, const char *name, double atol, double rtol) {
    nb_tensor *e = nbt_h5_read(REF, name, NB_F64);
    nbt_assert_shape(t, nb_tensor_ndim(e), nb_tensor_shape(e));
    nbt_assert_values(t, nb_tensor_f64(e), nb_tensor_numel(e), atol, rtol);
    nb_tensor_release(e);
}

/* Compare an int64 tensor with reference dataset name exactly. */
static void assert_ref_i64(nb_tensor *t, const char *name) {
    nb_tensor *e = nbt_h5_read(REF, name, NB_I64);
    nbt_assert_shape(t, nb_tensor_ndim(e), nb_tensor_shape(e));
    ck_assert_int_eq(nb_tensor_dtype(t), NB_I64);
    for (int64_t i = 0; i < nb_tensor_numel(e); i++) ck_assert_int_eq(nb_tensor_i64(t)[i], nb_tensor_i64(e)[i]);
    nb_tensor_release(e);
}

START_TEST(test_sum_mean_exact) {
    for (int k = 0; k < 2; k++) {
        nb_tensor *x = NBT_NOTNULL(nb_arange(DTYPES[k], 0, 10, 1));
        nb_tensor *s = NBT_NOTNULL(nb_sum(x)), *m = NBT_NOTNULL(nb_mean(x));
        ck_assert_int_eq(nb_tensor_ndim(s), 0);
        ck_assert_int_eq(nb_tensor_ndim(m), 0);
        ck_assert_int_eq(nb_tensor_dtype(s), DTYPES[k]);
        nbt_assert_values(s, (double[]){45}, 1, 0, 0);
        nbt_assert_values(m, (double[]){4.5}, 1, 0, 0);
        /* Many chunks: 0 + 1 + ... + 99999 = 4999950000, exact in double. */
        nb_tensor *big = NBT_NOTNULL(nb_arange(DTYPES[k], 0, 100000, 1));
        nb_tensor *bs = NBT_NOTNULL(nb_sum(big));
        nbt_assert_values(bs, (double[]){4999950000.0}, 1, 0, k == 0 ? 6e-8 : 0);
        /* sum_dim of small integers: x = arange(12).reshape(3, 4). */
        nb_tensor *a = NBT_NOTNULL(nb_arange(DTYPES[k], 0, 12, 1));
        nb_tensor *a2 = NBT_NOTNULL(nb_reshape(a, NB_SHAPE(3, 4)));
        nb_tensor *s0 = NBT_NOTNULL(nb_sum_dim(a2, 0, false));
        nb_tensor *s1 = NBT_NOTNULL(nb_sum_dim(a2, -1, true));
        nb_tensor *m0 = NBT_NOTNULL(nb_mean_dim(a2, -2, true));
        nbt_assert_shape(s0, NB_SHAPE(4));
        nbt_assert_shape(s1, NB_SHAPE(3, 1));
        nbt_assert_shape(m0, NB_SHAPE(1, 4));
        nbt_assert_values(s0, (double[]){12, 15, 18, 21}, 4, 0, 0);
        nbt_assert_values(s1, (double[]){6, 22, 38}, 3, 0, 0);
        nbt_assert_values(m0, (double[]){4, 5, 6, 7}, 4, 0, 0);
        nb_tensor *r[] = {x, s, m, big, bs, a, a2, s0, s1, m0};
        for (int i = 0; i < 10; i++) nb_tensor_release(r[i]);
    }
}
END_TEST

START_TEST(test_zero_dim_and_empty) {
    /* 0-d input: dim 0 and -1 are valid and give a 0-d result. */
    nb_tensor *s = NBT_NOTNULL(nb_scalar(NB_F64, 3));
    nb_tensor *a = NBT_NOTNULL(nb_sum_dim(s, -1, true));
    nb_tensor *idx = NULL;
    nb_tensor *b = NBT_NOTNULL(nb_max_dim(s, 0, false, &idx));
    ck_assert_int_eq(nb_tensor_ndim(a), 0);
    ck_assert_int_eq(nb_tensor_ndim(b), 0);
    nbt_assert_values(a, (double[]){3}, 1, 0, 0);
    nbt_assert_values(idx, (double[]){0}, 1, 0, 0);
    /* Empty: sum 0, mean nan (as PyTorch), reduction over an empty dim. */
    nb_tensor *e = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 0)));
    nb_tensor *es = NBT_NOTNULL(nb_sum(e)), *em = NBT_NOTNULL(nb_mean(e));
    nbt_assert_values(es, (double[]){0}, 1, 0, 0);
    nbt_assert_values(em, (double[]){NAN}, 1, 0, 0);
    nb_tensor *ed = NBT_NOTNULL(nb_sum_dim(e, 1, false)), *emd = NBT_NOTNULL(nb_mean_dim(e, 1, false));
    nbt_assert_values(ed, (double[]){0, 0}, 2, 0, 0);
    nbt_assert_values(emd, (double[]){NAN, NAN}, 2, 0, 0);
    NBT_FAILS_WITH(nb_max_dim(e, 1, false, NULL), "max_dim: Expected reduction dim 1 to have non-zero size.");
    nb_tensor *el = NBT_NOTNULL(nb_log_softmax(e, 1));
    nbt_assert_shape(el, NB_SHAPE(2, 0));
    nb_tensor *r[] = {s, a, idx, b, e, es, em, ed, emd, el};
    for (int i = 0; i < 10; i++) nb_tensor_release(r[i]);
}
END_TEST

START_TEST(test_dim_reductions_vs_torch) {
    char name[64];
    for (int k = 0; k < 2; k++) {
        nb_tensor *x = nbt_h5_read(REF, "x", DTYPES[k]); /* (3, 4, 5) */
        nb_tensor *s = NBT_NOTNULL(nb_sum(x)), *m = NBT_NOTNULL(nb_mean(x));
        snprintf(name, sizeof name, "sum_%s", DNAMES[k]);
        assert_ref(s, name, ATOL[k], RTOL[k]);
        snprintf(name, sizeof name, "mean_%s", DNAMES[k]);
        assert_ref(m, name, ATOL[k], RTOL[k]);
        nb_tensor_release(s);
        nb_tensor_release(m);
        const int dims[4] = {0, 1, 2, -1};
        for (int di = 0; di < 4; di++)
            for (int kd = 0; kd < 2; kd++) {
                int d = dims[di];
                nb_tensor *sd = NBT_NOTNULL(nb_sum_dim(x, d, kd));
                nb_tensor *md = NBT_NOTNULL(nb_mean_dim(x, d, kd));
                nb_tensor *idx = NULL;
                nb_tensor *xd = NBT_NOTNULL(nb_max_dim(x, d, kd, &idx));
                snprintf(name, sizeof name, "sum_dim%d_k%d_%s", d, kd, DNAMES[k]);
                assert_ref(sd, name, ATOL[k], RTOL[k]);
                snprintf(name, sizeof name, "mean_dim%d_k%d_%s", d, kd, DNAMES[k]);
                assert_ref(md, name, ATOL[k], RTOL[k]);
                snprintf(name, sizeof name, "max_dim%d_k%d_%s", d, kd, DNAMES[k]);
                assert_ref(xd, name, 0, 0); /* a max is one of the inputs: exact */
                snprintf(name, sizeof name, "argmax_dim%d_k%d_%s", d, kd, DNAMES[k]);
                assert_ref_i64(idx, name);
                nb_tensor *r[] = {sd, md, idx, xd};
                for (int i = 0; i < 4; i++) nb_tensor_release(r[i]);
            }
        nb_tensor_release(x);
    }
}
END_TEST

START_TEST(test_noncontiguous_input) {
    /* Reducing dim 2 of x^T (5, 4, 3) is reducing dim 0 of x, in the same order. */
    nb_tensor *x = nbt_h5_read(REF, "x", NB_F32);
    nb_tensor *xt = NBT_NOTNULL(nb_transpose(x, 0, 2));
    nb_tensor *a = NBT_NOTNULL(nb_sum_dim(xt, 2, false));
    nb_tensor *b0 = NBT_NOTNULL(nb_sum_dim(x, 0, false));
    nb_tensor *b = NBT_NOTNULL(nb_transpose(b0, 0, 1));
    nbt_assert_bitwise_equal(a, b);
    nb_tensor *l = NBT_NOTNULL(nb_log_softmax(xt, 0));
    nb_tensor *l0 = NBT_NOTNULL(nb_log_softmax(x, 2));
    nb_tensor *lt = NBT_NOTNULL(nb_transpose(l0, 0, 2));
    nbt_assert_bitwise_equal(l, lt);
    nb_tensor *r[] = {x, xt, a, b0, b, l, l0, lt};
    for (int i = 0; i < 8; i++) nb_tensor_release(r[i]);
}
END_TEST

START_TEST(test_max_ties_and_gradient) {
    char name[64];
    for (int k = 0; k < 2; k++) {
        nb_tensor *t = nbt_h5_read(REF, "ties", DTYPES[k]); /* (3, 4) with repeated maxima */
        NBT_OK(nb_requires_grad_(t, true));
        nb_tensor *idx = NULL, *idx0 = NULL;
        nb_tensor *v = NBT_NOTNULL(nb_max_dim(t, 1, false, &idx));
        nb_tensor *v0 = NBT_NOTNULL(nb_max_dim(t, 0, true, &idx0));
        snprintf(name, sizeof name, "ties_max_%s", DNAMES[k]);
        assert_ref(v, name, 0, 0);
        snprintf(name, sizeof name, "ties_argmax_%s", DNAMES[k]);
        assert_ref_i64(idx, name);
        snprintf(name, sizeof name, "ties_argmax0_%s", DNAMES[k]);
        nb_tensor *i0 = NBT_NOTNULL(nb_squeeze(idx0, 0));
        assert_ref_i64(i0, name);
        /* The gradient goes to the returned index only; releasing the indices
         * first must not disturb backward. */
        nb_tensor_release(idx);
        nb_tensor *s = NBT_NOTNULL(nb_sum(v));
        NBT_OK(nb_backward(s));
        /* first maxima of rows [1 3 3 0], [2 2 1 2], [5 5 5 5] are at 1, 0, 0 */
        nbt_assert_values(nb_tensor_grad(t), (double[]){0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, 12, 0, 0);
        ck_assert_str_eq(nb_tensor_grad_fn_name(v), "max_dim");
        nb_tensor *r[] = {t, idx0, v, v0, i0, s};
        for (int i = 0; i < 6; i++) nb_tensor_release(r[i]);
    }
}
END_TEST

START_TEST(test_log_softmax_vs_torch) {
    char name[64];
    for (int k = 0; k < 2; k++) {
        nb_tensor *x = nbt_h5_read(REF, "x", DTYPES[k]);
        nb_tensor *g = nbt_h5_read(REF, "gls", DTYPES[k]);
        const int dims[4] = {0, 1, 2, -1};
        for (int di = 0; di < 4; di++) {
            int d = dims[di];
            NBT_OK(nb_requires_grad_(x, true));
            nb_tensor *y = NBT_NOTNULL(nb_log_softmax(x, d));
            snprintf(name, sizeof name, "log_softmax%d_%s", d, DNAMES[k]);
            assert_ref(y, name, ATOL[k], RTOL[k]);
            nb_zero_grad(x);
            NBT_OK(nb_backward_ex(y, g, false));
            snprintf(name, sizeof name, "log_softmax%d_grad_%s", d, DNAMES[k]);
            assert_ref(nb_tensor_grad(x), name, ATOL[k], RTOL[k]);
            nb_tensor_release(y);
        }
        /* Inputs around +-3000: a naive exp would overflow to inf / nan. */
        nb_tensor *big = nbt_h5_read(REF, "big", DTYPES[k]);
        nb_tensor *yb = NBT_NOTNULL(nb_log_softmax(big, 1));
        snprintf(name, sizeof name, "log_softmax_big_%s", DNAMES[k]);
        assert_ref(yb, name, ATOL[k], RTOL[k]);
        nb_tensor *r[] = {x, g, big, yb};
        for (int i = 0; i < 4; i++) nb_tensor_release(r[i]);
    }
}
END_TEST

/* ---- gradcheck ---- */
typedef struct { int op, dim; bool keepdim; } red_args;
enum { OP_SUM, OP_MEAN, OP_SUM_DIM, OP_MEAN_DIM, OP_MAX_DIM, OP_LOG_SOFTMAX };

static nb_tensor *red_fn(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const red_args *a = ctx;
    switch (a->op) {
    case OP_SUM: return nb_sum(in[0]);
    case OP_MEAN: return nb_mean(in[0]);
    case OP_SUM_DIM: return nb_sum_dim(in[0], a->dim, a->keepdim);
    case OP_MEAN_DIM: return nb_mean_dim(in[0], a->dim, a->keepdim);
    case OP_MAX_DIM: return nb_max_dim(in[0], a->dim, a->keepdim, NULL);
    default: return nb_log_softmax(in[0], a->dim);
    }
}

/* max_dim with the indices also requested (and released at once). */
static nb_tensor *max_idx_fn(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const red_args *a = ctx;
    nb_tensor *idx = NULL;
    nb_tensor *v = nb_max_dim(in[0], a->dim, a->keepdim, &idx);
    nb_tensor_release(idx);
    return v;
}

START_TEST(test_gradcheck) {
    nb_tensor *x = nbt_randn(7, NB_F64, NB_SHAPE(3, 4, 5), true);
    red_args all[] = {{OP_SUM, 0, false}, {OP_MEAN, 0, false}};
    for (int i = 0; i < 2; i++) nbt_gradcheck(red_fn, &all[i], &x, 1, false);
    const int dims[3] = {0, 1, -1};
    for (int di = 0; di < 3; di++)
        for (int kd = 0; kd < 2; kd++)
            for (int op = OP_SUM_DIM; op <= OP_LOG_SOFTMAX; op++) {
                red_args a = {op, dims[di], kd};
                nbt_gradcheck(red_fn, &a, &x, 1, false);
            }
    red_args m = {OP_MAX_DIM, 1, true};
    nbt_gradcheck(max_idx_fn, &m, &x, 1, false);
    /* a non-contiguous input */
    nb_tensor *xt = NBT_NOTNULL(nb_transpose(x, 0, 2));
    nb_tensor *xc = NBT_NOTNULL(nb_contiguous(xt));
    nb_tensor *leaf = NBT_NOTNULL(nb_detach(xc));
    NBT_OK(nb_requires_grad_(leaf, true));
    red_args ls = {OP_LOG_SOFTMAX, 1, false};
    nbt_gradcheck(red_fn, &ls, &leaf, 1, false);
    nb_tensor *r[] = {x, xt, xc, leaf};
    for (int i = 0; i < 4; i++) nb_tensor_release(r[i]);
}
END_TEST

START_TEST(test_bad_input) {
    nb_tensor *x = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 3)));
    nb_tensor *i = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(2, 3)));
    NBT_FAILS_WITH(nb_sum(NULL), "sum: argument 'a' is NULL");
    NBT_FAILS_WITH(nb_mean(NULL), "mean: argument 'a' is NULL");
    NBT_FAILS_WITH(nb_sum_dim(NULL, 0, false), "sum_dim: argument 'a' is NULL");
    NBT_FAILS_WITH(nb_mean_dim(NULL, 0, false), "mean_dim: argument 'a' is NULL");
    NBT_FAILS_WITH(nb_max_dim(NULL, 0, false, NULL), "max_dim: argument 'a' is NULL");
    NBT_FAILS_WITH(nb_log_softmax(NULL, 0), "log_softmax: argument 'a' is NULL");
    const char *range = "dimension out of range (expected to be in range of [-2, 1], but got 2)";
    NBT_FAILS_WITH(nb_sum_dim(x, 2, false), range);
    NBT_FAILS_WITH(nb_mean_dim(x, -3, true), "(expected to be in range of [-2, 1], but got -3)");
    NBT_FAILS_WITH(nb_max_dim(x, 2, false, NULL), range);
    NBT_FAILS_WITH(nb_log_softmax(x, 2), range);
    const char *i64 = "expected 'a' to be float32 or float64, but got int64";
    NBT_FAILS_WITH(nb_sum(i), i64);
    NBT_FAILS_WITH(nb_mean(i), i64);
    NBT_FAILS_WITH(nb_sum_dim(i, 0, false), i64);
    NBT_FAILS_WITH(nb_mean_dim(i, 0, false), i64);
    NBT_FAILS_WITH(nb_log_softmax(i, 0), i64);
    nb_tensor *idx = (nb_tensor *)&idx; /* must be reset to NULL on failure */
    NBT_FAILS_WITH(nb_max_dim(i, 0, false, &idx), i64);
    ck_assert_ptr_null(idx);
    /* A failed earlier op's message survives a chain. */
    nb_clear_error();
    nb_tensor *bad = nb_sum_dim(x, 5, false);
    ck_assert_ptr_null(nb_sum(bad));
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "sum_dim: dimension out of range"));
    nb_tensor_release(x);
    nb_tensor_release(i);
}
END_TEST

/* ---- determinism: the same bits with 1 and 2 threads ---- */
START_TEST(test_thread_determinism) {
    int saved = nb_get_num_threads();
    for (int k = 0; k < 2; k++) {
        nb_tensor *x = nbt_randn(11, DTYPES[k], NB_SHAPE(300, 1001), true); /* 300300 elements */
        nb_tensor *res[2][7];
        for (int th = 0; th < 2; th++) {
            NBT_OK(nb_set_num_threads(th + 1));
            res[th][0] = NBT_NOTNULL(nb_sum(x));
            res[th][1] = NBT_NOTNULL(nb_sum_dim(x, 0, false));
            res[th][2] = NBT_NOTNULL(nb_sum_dim(x, 1, false));
            res[th][3] = NBT_NOTNULL(nb_mean_dim(x, -1, true));
            res[th][4] = NBT_NOTNULL(nb_log_softmax(x, 0));
            res[th][5] = NBT_NOTNULL(nb_max_dim(x, 0, false, NULL));
            nb_tensor *s = NBT_NOTNULL(nb_sum(res[th][4]));
            NBT_OK(nb_backward(s));
            nb_tensor_release(s);
            res[th][6] = nb_tensor_retain(nb_tensor_grad(x));
            nb_zero_grad(x);
        }
        for (int j = 0; j < 7; j++) {
            nbt_assert_bitwise_equal(res[0][j], res[1][j]);
            nb_tensor_release(res[0][j]);
            nb_tensor_release(res[1][j]);
        }
        nb_tensor_release(x);
    }
    NBT_OK(nb_set_num_threads(saved));
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_reduce");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sum_mean_exact);
    tcase_add_test(tc, test_zero_dim_and_empty);
    tcase_add_test(tc, test_dim_reductions_vs_torch);
    tcase_add_test(tc, test_noncontiguous_input);
    tcase_add_test(tc, test_max_ties_and_gradient);
    tcase_add_test(tc, test_log_softmax_vs_torch);
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_thread_determinism);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
