/* matmul and cat: values and gradients against PyTorch
 * (tests/pytorch/ops_matmul_reference.py) and exact identities, gradcheck,
 * bad input, and bitwise determinism across thread counts. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define REF nbt_data_path("ops_matmul.h5")

static const nb_dtype DTYPES[2] = {NB_F32, NB_F64};
static const char *DNAMES[2] = {"f32", "f64"};

static void assert_ref(const nb_tensor *t, const char *name, double atol, double rtol) {
    nb_tensor *e = nbt_h5_read(REF, name, NB_F64);
    nbt_assert_shape(t, nb_tensor_ndim(e), nb_tensor_shape(e));
    nbt_assert_values(t, nb_tensor_f64(e), nb_tensor_numel(e), atol, rtol);
    nb_tensor_release(e);
}

START_TEST(test_matmul_vs_torch) {
    double ncases = 0;
    ck_assert(nbt_h5_read_scalar(REF, "ncases", &ncases));
    ck_assert(ncases >= 10);
    char name[64];
    for (int c = 0; c < (int)ncases; c++)
        for (int k = 0; k < 2; k++) {
            double tol = k == 0 ? 1e-5 : 1e-12;
            snprintf(name, sizeof name, "case%d/a", c);
            nb_tensor *a = nbt_h5_read(REF, name, DTYPES[k]);
            snprintf(name, sizeof name, "case%d/b", c);
            nb_tensor *b = nbt_h5_read(REF, name, DTYPES[k]);
            snprintf(name, sizeof name, "case%d/g", c);
            nb_tensor *g = nbt_h5_read(REF, name, DTYPES[k]);
            NBT_OK(nb_requires_grad_(a, true));
            NBT_OK(nb_requires_grad_(b, true));
            nb_tensor *y = NBT_NOTNULL(nb_matmul(a, b));
            snprintf(name, sizeof name, "case%d/out_%s", c, DNAMES[k]);
            assert_ref(y, name, tol, tol);
            NBT_OK(nb_backward_ex(y, g, false));
            snprintf(name, sizeof name, "case%d/ga_%s", c, DNAMES[k]);
            assert_ref(nb_tensor_grad(a), name, tol, tol);
            snprintf(name, sizeof name, "case%d/gb_%s", c, DNAMES[k]);
            assert_ref(nb_tensor_grad(b), name, tol, tol);
            nb_tensor *r[] = {a, b, g, y};
            for (int i = 0; i < 4; i++) nb_tensor_release(r[i]);
        }
}
END_TEST

START_TEST(test_matmul_exact) {
    /* [[0 1 2], [3 4 5]] x [[0 1], [2 3], [4 5]] = [[10 13], [28 40]]; dot 0..3 . 0..3 = 14 */
    nb_tensor *a = NBT_NOTNULL(nb_arange(NB_F32, 0, 6, 1));
    nb_tensor *a2 = NBT_NOTNULL(nb_reshape(a, NB_SHAPE(2, 3)));
    nb_tensor *b2 = NBT_NOTNULL(nb_reshape(a, NB_SHAPE(3, 2)));
    nb_tensor *c = NBT_NOTNULL(nb_matmul(a2, b2));
    nbt_assert_values(c, (double[]){10, 13, 28, 40}, 4, 0, 0);
    nb_tensor *v = NBT_NOTNULL(nb_arange(NB_F64, 0, 4, 1));
    nb_tensor *d = NBT_NOTNULL(nb_matmul(v, v));
    ck_assert_int_eq(nb_tensor_ndim(d), 0);
    nbt_assert_values(d, (double[]){14}, 1, 0, 0);
    /* a transposed (non-contiguous) operand: a2^T a2 (3, 3) */
    nb_tensor *at = NBT_NOTNULL(nb_transpose(a2, 0, 1));
    nb_tensor *e = NBT_NOTNULL(nb_matmul(at, a2));
    nbt_assert_values(e, (double[]){9, 12, 15, 12, 17, 22, 15, 22, 29}, 9, 0, 0);
    nb_tensor *r[] = {a, a2, b2, c, v, d, at, e};
    for (int i = 0; i < 8; i++) nb_tensor_release(r[i]);
}
END_TEST

static nb_tensor *matmul_fn(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return nb_matmul(in[0], in[1]);
}

/* matmul of a transposed view of in[0] (so backward meets a non-contiguous input). */
static nb_tensor *matmul_t_fn(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    nb_tensor *t = nb_transpose(in[0], -1, -2);
    nb_tensor *y = nb_matmul(t, in[1]);
    nb_tensor_release(t);
    return y;
}

START_TEST(test_matmul_gradcheck) {
    static const struct { int na, nb; int64_t sa[4], sb[4]; } cases[] = {
        {1, 1, {4}, {4}},
        {2, 2, {3, 4}, {4, 2}},
        {1, 2, {4}, {4, 3}},
        {2, 1, {3, 4}, {4}},
        {3, 2, {2, 3, 4}, {4, 2}},
        {1, 3, {4}, {2, 4, 3}},
        {3, 1, {2, 3, 4}, {4}},
        {4, 3, {2, 1, 3, 4}, {3, 4, 2}},
        {2, 3, {3, 4}, {2, 4, 2}},
        {3, 3, {2, 3, 4}, {2, 4, 2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_tensor *in[2] = {nbt_randn(100 + i, NB_F64, cases[i].na, cases[i].sa, true),
                            nbt_randn(200 + i, NB_F64, cases[i].nb, cases[i].sb, true)};
        nbt_gradcheck(matmul_fn, NULL, in, 2, false);
        nb_tensor_release(in[0]);
        nb_tensor_release(in[1]);
    }
    nb_tensor *in[2] = {nbt_randn(300, NB_F64, NB_SHAPE(2, 4, 3), true), nbt_randn(301, NB_F64, NB_SHAPE(4, 5), true)};
    nbt_gradcheck(matmul_t_fn, NULL, in, 2, false);
    /* only one operand requiring grad */
    NBT_OK(nb_requires_grad_(in[1], false));
    nbt_gradcheck(matmul_t_fn, NULL, in, 2, false);
    nb_tensor_release(in[0]);
    nb_tensor_release(in[1]);
}
END_TEST

START_TEST(test_matmul_bad_input) {
    nb_tensor *a = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(3, 4)));
    nb_tensor *b = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(5, 6)));
    nb_tensor *d = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(4, 6)));
    nb_tensor *i = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(4, 6)));
    nb_tensor *s = NBT_NOTNULL(nb_scalar(NB_F32, 1));
    nb_tensor *v3 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(3)));
    nb_tensor *v4 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(4)));
    nb_tensor *ba = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 3, 4)));
    nb_tensor *bb = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(3, 4, 6)));
    NBT_FAILS_WITH(nb_matmul(NULL, b), "matmul: argument 'a' is NULL");
    NBT_FAILS_WITH(nb_matmul(a, NULL), "matmul: argument 'b' is NULL");
    NBT_FAILS_WITH(nb_matmul(a, b), "matmul: shapes [3, 4] and [5, 6] cannot be multiplied (4 != 5)");
    NBT_FAILS_WITH(nb_matmul(v3, v4), "matmul: shapes [3] and [4] cannot be multiplied (3 != 4)");
    NBT_FAILS_WITH(nb_matmul(a, d), "matmul: expected both operands to have the same dtype, but got float32 and float64");
    NBT_FAILS_WITH(nb_matmul(a, i), "matmul: expected 'b' to be float32 or float64, but got int64");
    NBT_FAILS_WITH(nb_matmul(s, a), "both arguments to matmul need to be at least 1D, but they are 0D and 2D");
    NBT_FAILS_WITH(nb_matmul(ba, bb),
                   "matmul: the size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0");
    nb_tensor *r[] = {a, b, d, i, s, v3, v4, ba, bb};
    for (int k = 0; k < 9; k++) nb_tensor_release(r[k]);
}
END_TEST

/* Forward and both gradients of a @ b with 1 and then 2 threads: the same bits. */
static void check_matmul_threads(nb_dtype dt, int na, const int64_t *sa, int nb, const int64_t *sb) {
    int saved = nb_get_num_threads();
    nb_tensor *a = nbt_randn(21, dt, na, sa, true), *b = nbt_randn(22, dt, nb, sb, true);
    nb_tensor *res[2][3];
    for (int th = 0; th < 2; th++) {
        NBT_OK(nb_set_num_threads(th + 1));
        res[th][0] = NBT_NOTNULL(nb_matmul(a, b));
        nb_tensor *s = NBT_NOTNULL(nb_sum(res[th][0]));
        NBT_OK(nb_backward(s));
        nb_tensor_release(s);
        res[th][1] = nb_tensor_retain(nb_tensor_grad(a));
        res[th][2] = nb_tensor_retain(nb_tensor_grad(b));
        nb_zero_grad(a);
        nb_zero_grad(b);
    }
    for (int j = 0; j < 3; j++) {
        nbt_assert_bitwise_equal(res[0][j], res[1][j]);
        nb_tensor_release(res[0][j]);
        nb_tensor_release(res[1][j]);
    }
    nb_tensor_release(a);
    nb_tensor_release(b);
    NBT_OK(nb_set_num_threads(saved));
}

START_TEST(test_matmul_thread_determinism) {
    for (int k = 0; k < 2; k++) {
        check_matmul_threads(DTYPES[k], NB_SHAPE(300, 400), NB_SHAPE(400, 350));       /* one large GEMM */
        check_matmul_threads(DTYPES[k], NB_SHAPE(64, 40, 50), NB_SHAPE(64, 50, 40));   /* many small GEMMs */
        check_matmul_threads(DTYPES[k], NB_SHAPE(2, 1, 200, 300), NB_SHAPE(3, 300, 100)); /* broadcast batch */
    }
}
END_TEST

/* ---- cat ---- */
START_TEST(test_cat_values) {
    for (int k = 0; k < 2; k++) {
        nb_tensor *a = NBT_NOTNULL(nb_arange(DTYPES[k], 0, 6, 1));
        nb_tensor *a2 = NBT_NOTNULL(nb_reshape(a, NB_SHAPE(2, 3)));
        nb_tensor *b = NBT_NOTNULL(nb_arange(DTYPES[k], 10, 12, 1));
        nb_tensor *b2 = NBT_NOTNULL(nb_reshape(b, NB_SHAPE(2, 1)));
        nb_tensor *c = NBT_NOTNULL(nb_arange(DTYPES[k], 20, 24, 1));
        nb_tensor *c2 = NBT_NOTNULL(nb_reshape(c, NB_SHAPE(2, 2)));
        const nb_tensor *l1[] = {a2, b2, c2};
        nb_tensor *y1 = NBT_NOTNULL(nb_cat(l1, 3, -1));
        nbt_assert_shape(y1, NB_SHAPE(2, 6));
        nbt_assert_values(y1, (double[]){0, 1, 2, 10, 20, 21, 3, 4, 5, 11, 22, 23}, 12, 0, 0);
        nb_tensor *at = NBT_NOTNULL(nb_transpose(a2, 0, 1)); /* (3, 2), non-contiguous */
        const nb_tensor *l0[] = {at, c2, b2};
        NBT_FAILS_WITH(nb_cat(l0, 3, 0), "Expected size 2 but got size 1 for tensor number 2 in the list.");
        const nb_tensor *l0b[] = {at, c2, at};
        nb_tensor *y0 = NBT_NOTNULL(nb_cat(l0b, 3, 0));
        nbt_assert_shape(y0, NB_SHAPE(8, 2));
        nbt_assert_values(y0, (double[]){0, 3, 1, 4, 2, 5, 20, 21, 22, 23, 0, 3, 1, 4, 2, 5}, 16, 0, 0);
        nb_tensor *r[] = {a, a2, b, b2, c, c2, y1, at, y0};
        for (int i = 0; i < 9; i++) nb_tensor_release(r[i]);
    }
}
END_TEST

static nb_tensor *cat_fn(nb_tensor *const *in, int n, void *ctx) {
    return nb_cat((const nb_tensor *const *)in, n, *(const int *)ctx);
}

START_TEST(test_cat_gradcheck) {
    int d0 = 0, d1 = 1, dm = -1;
    nb_tensor *r0[3] = {nbt_randn(1, NB_F64, NB_SHAPE(2, 3, 2), true), nbt_randn(2, NB_F64, NB_SHAPE(1, 3, 2), true),
                        nbt_randn(3, NB_F64, NB_SHAPE(3, 3, 2), true)};
    nbt_gradcheck(cat_fn, &d0, r0, 3, false);
    nb_tensor *r1[3] = {nbt_randn(4, NB_F64, NB_SHAPE(2, 1, 2), true), nbt_randn(5, NB_F64, NB_SHAPE(2, 3, 2), true),
                        nbt_randn(6, NB_F64, NB_SHAPE(2, 2, 2), false)};
    nbt_gradcheck(cat_fn, &d1, r1, 3, false);
    nb_tensor *r2[3] = {nbt_randn(7, NB_F64, NB_SHAPE(2, 3, 1), true), nbt_randn(8, NB_F64, NB_SHAPE(2, 3, 2), true),
                        nbt_randn(9, NB_F64, NB_SHAPE(2, 3, 3), true)};
    nbt_gradcheck(cat_fn, &dm, r2, 3, false);
    for (int i = 0; i < 3; i++) {
        nb_tensor_release(r0[i]);
        nb_tensor_release(r1[i]);
        nb_tensor_release(r2[i]);
    }
}
END_TEST

START_TEST(test_cat_many) {
    /* More tensors than one autograd node holds (cat groups them): x_i = full(i),
     * so row i of y is i, and the max over dim 0 (in the last tensor) sends
     * gradient 1 to x_39 only; a wrong grouping would route it elsewhere. */
    enum { N = 40 };
    nb_tensor *xs[N];
    for (int i = 0; i < N; i++) {
        xs[i] = NBT_NOTNULL(nb_full(NB_F64, NB_SHAPE(1, 2), i));
        NBT_OK(nb_requires_grad_(xs[i], true));
    }
    nb_tensor *y = NBT_NOTNULL(nb_cat((const nb_tensor *const *)xs, N, 0));
    nbt_assert_shape(y, NB_SHAPE(N, 2));
    double exp[2 * N];
    for (int i = 0; i < 2 * N; i++) exp[i] = i / 2;
    nbt_assert_values(y, exp, 2 * N, 0, 0);
    nb_tensor *m = NBT_NOTNULL(nb_max_dim(y, 0, false, NULL)); /* the max is in the last tensor */
    nb_tensor *s = NBT_NOTNULL(nb_sum(m));
    NBT_OK(nb_backward(s));
    for (int i = 0; i < N; i++) {
        double g = i == N - 1 ? 1 : 0;
        nbt_assert_values(nb_tensor_grad(xs[i]), (double[]){g, g}, 2, 0, 0);
    }
    nb_tensor_release(y);
    nb_tensor_release(m);
    nb_tensor_release(s);
    for (int i = 0; i < N; i++) nb_tensor_release(xs[i]);
}
END_TEST

START_TEST(test_cat_bad_input) {
    nb_tensor *a = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 3)));
    nb_tensor *b = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 4)));
    nb_tensor *c = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 3, 1)));
    nb_tensor *d = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(2, 3)));
    nb_tensor *i = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(2, 3)));
    nb_tensor *s = NBT_NOTNULL(nb_scalar(NB_F32, 1));
    NBT_FAILS_WITH(nb_cat(NULL, 2, 0), "cat: expected a non-empty list of Tensors");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){a}, 0, 0), "cat: expected a non-empty list of Tensors");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){a, NULL}, 2, 0), "cat: argument 'tensors[1]' is NULL");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){a, b}, 2, 0),
                   "cat: Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor "
                   "number 1 in the list.");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){a, c}, 2, 0), "Tensors must have same number of dimensions: got 2 and 3");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){a, d}, 2, 0),
                   "cat: expected all tensors to have dtype float32, but got float64 for tensor number 1 in the list");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){a, i}, 2, 0), "cat: expected all tensors to have dtype float32, but got int64 for tensor number 1");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){s, s}, 2, 0), "zero-dimensional tensor (at position 0) cannot be concatenated");
    NBT_FAILS_WITH(nb_cat((const nb_tensor *[]){a, b}, 2, 2),
                   "cat: dimension out of range (expected to be in range of [-2, 1], but got 2)");
    nb_tensor *ok = NBT_NOTNULL(nb_cat((const nb_tensor *[]){a, b}, 2, 1));
    nbt_assert_shape(ok, NB_SHAPE(2, 7));
    nb_tensor *r[] = {a, b, c, d, i, s, ok};
    for (int k = 0; k < 7; k++) nb_tensor_release(r[k]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_matmul");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_matmul_vs_torch);
    tcase_add_test(tc, test_matmul_exact);
    tcase_add_test(tc, test_matmul_gradcheck);
    tcase_add_test(tc, test_matmul_bad_input);
    tcase_add_test(tc, test_matmul_thread_determinism);
    tcase_add_test(tc, test_cat_values);
    tcase_add_test(tc, test_cat_gradcheck);
    tcase_add_test(tc, test_cat_many);
    tcase_add_test(tc, test_cat_bad_input);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
