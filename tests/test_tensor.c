/* Tensors: creation, views and copies, element access, scopes, rng. */
#include "testutil.h"

START_TEST(test_creation) {
    nb_tensor *z = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 3)));
    nbt_assert_shape(z, NB_SHAPE(2, 3));
    nbt_assert_values(z, (double[]){0, 0, 0, 0, 0, 0}, 6, 0, 0);
    nb_tensor *f = NBT_NOTNULL(nb_full(NB_F64, NB_SHAPE(3), 2.5));
    nbt_assert_values(f, (double[]){2.5, 2.5, 2.5}, 3, 0, 0);
    nb_tensor *a = NBT_NOTNULL(nb_arange(NB_F64, 1, 2, 0.25));
    nbt_assert_values(a, (double[]){1, 1.25, 1.5, 1.75}, 4, 0, 0);
    nb_tensor *s = NBT_NOTNULL(nb_scalar(NB_F32, 7));
    ck_assert_int_eq(nb_tensor_ndim(s), 0);
    double v;
    NBT_OK(nb_tensor_item(s, &v));
    ck_assert(v == 7);
    float buf[4] = {1, 2, 3, 4};
    nb_tensor *c = NBT_NOTNULL(nb_from_data(NB_F32, NB_SHAPE(2, 2), buf));
    nb_tensor *b = NBT_NOTNULL(nb_from_buffer(NB_F32, NB_SHAPE(2, 2), buf));
    buf[0] = 10; /* the borrowed tensor sees it, the copy does not */
    nbt_assert_values(c, (double[]){1, 2, 3, 4}, 4, 0, 0);
    nbt_assert_values(b, (double[]){10, 2, 3, 4}, 4, 0, 0);
    nb_tensor *r[] = {z, f, a, s, c, b};
    for (int i = 0; i < 6; i++) nb_tensor_release(r[i]);
}
END_TEST

START_TEST(test_bad_creation) {
    NBT_FAILS_WITH(nb_zeros(NB_F32, NB_SHAPE(2, -1)), "negative dimension -1");
    NBT_FAILS_WITH(nb_zeros(NB_F32, 9, (int64_t[9]){1}), "expected 0 to 8 dimensions, but got 9");
    NBT_FAILS_WITH(nb_arange(NB_F32, 0, 1, 0), "arange");
    NBT_FAILS_WITH(nb_from_data(NB_F32, NB_SHAPE(2), NULL), "from_data: data is NULL");
    NBT_FAILS_WITH(nb_rand_uniform(NULL, NB_I64, NB_SHAPE(2), 0, 1), "expected float32 or float64, but got int64");
    NBT_FAILS_WITH(nb_tensor_f64(NULL), "is NULL");
    nb_tensor *t = nb_zeros(NB_F32, NB_SHAPE(2));
    NBT_FAILS_WITH(nb_tensor_f64(t), "expected a float64 tensor, but got float32");
    double v;
    NBT_STATUS_FAILS_WITH(nb_tensor_item(t, &v), "a Tensor with 2 elements cannot be converted to Scalar");
    NBT_STATUS_FAILS_WITH(nb_tensor_get(t, (int64_t[]){2}, &v), "index 2 is out of bounds for dimension 0 with size 2");
    NBT_STATUS_FAILS_WITH(nb_set_num_threads(0), "expected a positive number of threads, but got 0");
    nb_tensor_release(t);
}
END_TEST

START_TEST(test_views_share_storage) {
    nb_tensor *x = NBT_NOTNULL(nb_arange(NB_F64, 0, 24, 1));
    nb_tensor *r = NBT_NOTNULL(nb_reshape(x, NB_SHAPE(2, 3, 4)));
    ck_assert_ptr_eq(nb_tensor_data(r), nb_tensor_data(x));
    nb_tensor *t = NBT_NOTNULL(nb_transpose(r, 0, 2)); /* [4, 3, 2] */
    nbt_assert_shape(t, NB_SHAPE(4, 3, 2));
    ck_assert(!nb_tensor_is_contiguous(t));
    double v;
    NBT_OK(nb_tensor_get(t, (int64_t[]){3, 1, 1}, &v)); /* r[1][1][3] = 12 + 4 + 3 */
    ck_assert(v == 19);
    nb_tensor *c = NBT_NOTNULL(nb_contiguous(t));
    ck_assert(nb_tensor_is_contiguous(c));
    ck_assert_ptr_ne(nb_tensor_data(c), nb_tensor_data(x));
    NBT_OK(nb_tensor_get(c, (int64_t[]){3, 1, 1}, &v));
    ck_assert(v == 19);
    NBT_FAILS_WITH(nb_view(t, NB_SHAPE(24)), "view size is not compatible");
    nb_tensor *f = NBT_NOTNULL(nb_reshape(t, NB_SHAPE(-1))); /* copies */
    ck_assert_ptr_ne(nb_tensor_data(f), nb_tensor_data(x));
    NBT_OK(nb_tensor_get(f, (int64_t[]){1}, &v)); /* t[0][0][1] = r[1][0][0] */
    ck_assert(v == 12);
    nb_tensor *n = NBT_NOTNULL(nb_narrow(r, 0, 1, 1));
    nb_tensor *s = NBT_NOTNULL(nb_select(r, 0, 1));
    nbt_assert_shape(n, NB_SHAPE(1, 3, 4));
    nbt_assert_shape(s, NB_SHAPE(3, 4));
    NBT_OK(nb_tensor_fill_(s, -1)); /* writing through a view changes x */
    NBT_OK(nb_tensor_get(x, (int64_t[]){12}, &v));
    ck_assert(v == -1);
    NBT_OK(nb_tensor_get(x, (int64_t[]){11}, &v));
    ck_assert(v == 11);
    nb_tensor *fl = NBT_NOTNULL(nb_flatten(r, 1, -1));
    nbt_assert_shape(fl, NB_SHAPE(2, 12));
    nb_tensor *u = NBT_NOTNULL(nb_unsqueeze(fl, 1));
    nbt_assert_shape(u, NB_SHAPE(2, 1, 12));
    nb_tensor *q = NBT_NOTNULL(nb_squeeze(u, 1));
    nbt_assert_shape(q, NB_SHAPE(2, 12));
    NBT_FAILS_WITH(nb_squeeze(u, 0), "expected dimension 0 to have size 1, but got 2");
    NBT_FAILS_WITH(nb_reshape(x, NB_SHAPE(5, 5)), "shape '[5, 5]' is invalid for input of size 24");
    NBT_FAILS_WITH(nb_transpose(x, 0, 3), "dimension out of range (expected to be in range of [-1, 0], but got 3)");
    NBT_FAILS_WITH(nb_narrow(x, 0, 20, 5), "narrow: start (20) + length (5) exceeds dimension size (24)");
    NBT_FAILS_WITH(nb_permute(r, (int[]){0, 0, 1}), "repeated dim");
    nb_tensor *all[] = {x, r, t, c, f, n, s, fl, u, q};
    for (int i = 0; i < 10; i++) nb_tensor_release(all[i]);
}
END_TEST

START_TEST(test_scope_releases) {
    size_t before = nb_memory_in_use();
    nb_tensor *keep;
    nb_scope *s = nb_scope_begin();
    nb_tensor *a = NBT_NOTNULL(nb_ones(NB_F32, NB_SHAPE(1000)));
    nb_tensor *b = NBT_NOTNULL(nb_reshape(a, NB_SHAPE(10, 100)));
    nb_tensor_release(b); /* releasing early inside a scope is allowed */
    keep = nb_tensor_retain(NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(10))));
    nb_scope_end(s);
    ck_assert(nb_memory_in_use() > before); /* keep survives */
    nbt_assert_values(keep, (double[10]){0}, 10, 0, 0);
    nb_tensor_release(keep);
    ck_assert_uint_eq(nb_memory_in_use(), before);
    /* Retained inside a scope and released once: the scope still releases its reference. */
    s = nb_scope_begin();
    nb_tensor *r = nb_tensor_retain(NBT_NOTNULL(nb_ones(NB_F32, NB_SHAPE(100))));
    nb_tensor_release(r);
    nb_scope_end(s);
    ck_assert_uint_eq(nb_memory_in_use(), before);
    /* Released by hand inside a scope: the scope does not release it again. */
    s = nb_scope_begin();
    nb_tensor_release(NBT_NOTNULL(nb_ones(NB_F32, NB_SHAPE(100))));
    nb_scope_end(s);
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

START_TEST(test_rng_reproducible) {
    nb_rng a, b;
    nb_rng_seed(&a, 42);
    nb_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(nb_rng_next(&a), nb_rng_next(&b));
    /* xoshiro256** reference: seeding state {1, 2, 3, 4} directly gives 11520 first
     * (value from the algorithm's published definition: rotl(2 * 5, 7) * 9). */
    nb_rng c = {{1, 2, 3, 4}};
    ck_assert_uint_eq(nb_rng_next(&c), 11520);
    /* Uniform samples stay in [0, 1) with the right mean; normals have mean 0, var 1. */
    double su = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < 100000; i++) {
        double u = nb_rng_uniform(&a), z = nb_rng_normal(&a);
        ck_assert(u >= 0 && u < 1);
        su += u;
        sn += z;
        sn2 += z * z;
    }
    ck_assert(fabs(su / 100000 - 0.5) < 0.01);
    ck_assert(fabs(sn / 100000) < 0.02);
    ck_assert(fabs(sn2 / 100000 - 1) < 0.02);
    for (int i = 0; i < 1000; i++) ck_assert_uint_lt(nb_rng_below(&a, 7), 7);
}
END_TEST

START_TEST(test_dtype_conversion) {
    nb_tensor *x = NBT_NOTNULL(nb_arange(NB_F32, 0, 4, 1));
    nb_tensor *d = NBT_NOTNULL(nb_to_dtype(x, NB_F64));
    ck_assert_int_eq(nb_tensor_dtype(d), NB_F64);
    nbt_assert_values(d, (double[]){0, 1, 2, 3}, 4, 0, 0);
    nb_tensor *i = NBT_NOTNULL(nb_to_dtype(d, NB_I64));
    ck_assert_int_eq(nb_tensor_i64(i)[3], 3);
    nb_tensor_release(x);
    nb_tensor_release(d);
    nb_tensor_release(i);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_creation);
    tcase_add_test(tc, test_bad_creation);
    tcase_add_test(tc, test_views_share_storage);
    tcase_add_test(tc, test_scope_releases);
    tcase_add_test(tc, test_rng_reproducible);
    tcase_add_test(tc, test_dtype_conversion);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
