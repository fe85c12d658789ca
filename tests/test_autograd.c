/* The autograd engine and gradcheck: accumulation, no_grad, retain_graph,
 * graph freeing, memory stability, and gradcheck catching planted bugs. */
#include "testutil.h"

#include "tensor/internal.h"

#include <stdlib.h>

/* ---- a test-only op whose backward can be made wrong on purpose ----
 * y = a * b (elementwise, same shape). mode 0: correct backward; 1: dA scaled
 * by 1.01; 2: the dB term dropped. */
typedef struct { int mode; } planted_ctx;

static nb_status planted_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const planted_ctx *c = node->ctx;
    const nb_tensor *a = node->inputs[0], *b = node->inputs[1];
    for (int i = 0; i < 2; i++) {
        if (!nbi_node_needs_grad(node, i) || (i == 1 && c->mode == 2)) continue;
        nb_tensor *g = nbi_empty_like(i == 0 ? a : b);
        const double *go = nbi_data(gout), *other = nbi_data(i == 0 ? b : a);
        double *gd = nbi_data(g);
        for (int64_t k = 0; k < g->numel; k++) gd[k] = go[k] * other[k] * (i == 0 && c->mode == 1 ? 1.01 : 1.0);
        gin[i] = g;
    }
    return NB_OK;
}
static const nbi_op planted_op = {"planted_mul", planted_backward, NULL};

static nb_tensor *planted_mul(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    nb_tensor *y = nbi_empty_like(in[0]);
    const double *a = nbi_data(in[0]), *b = nbi_data(in[1]);
    double *o = nbi_data(y);
    for (int64_t k = 0; k < y->numel; k++) o[k] = a[k] * b[k];
    planted_ctx *c = malloc(sizeof *c);
    c->mode = *(int *)ctx;
    return nbi_finish(y, &planted_op, in, 2, c);
}

static void check_planted(int mode, bool fast, bool expect_pass, const char *fragment) {
    nb_tensor *a = nbt_randn(1, NB_F64, NB_SHAPE(3, 4), true);
    nb_tensor *b = nbt_randn(2, NB_F64, NB_SHAPE(3, 4), true);
    nb_tensor *in[] = {a, b};
    nb_gradcheck_options o = nb_gradcheck_defaults();
    o.fast_mode = fast;
    nb_gradcheck_report rep;
    NBT_OK(nb_gradcheck(planted_mul, &mode, in, 2, &o, &rep));
    ck_assert_msg(rep.passed == expect_pass, "mode %d fast %d: %s", mode, fast, rep.message);
    if (fragment) ck_assert_msg(strstr(rep.message, fragment), "message '%s' lacks '%s'", rep.message, fragment);
    nb_tensor_release(a);
    nb_tensor_release(b);
}

START_TEST(test_gradcheck_catches_planted_bugs) {
    check_planted(0, false, true, "gradcheck passed");
    check_planted(0, true, true, "gradcheck passed");
    check_planted(1, false, false, "Jacobian mismatch for input 0"); /* scaled by 1.01 */
    check_planted(1, true, false, "Jacobian mismatch for input 0");
    check_planted(2, false, false, "Jacobian mismatch for input 1"); /* term dropped */
    check_planted(2, true, false, "Jacobian mismatch for input 1");
}
END_TEST

START_TEST(test_gradcheck_report_worst) {
    int mode = 1;
    nb_tensor *a = nbt_randn(3, NB_F64, NB_SHAPE(5), true);
    nb_tensor *b = nbt_randn(4, NB_F64, NB_SHAPE(5), false);
    nb_tensor *in[] = {a, b};
    nb_gradcheck_report rep;
    NBT_OK(nb_gradcheck(planted_mul, &mode, in, 2, NULL, &rep));
    ck_assert(!rep.passed);
    ck_assert(rep.worst[0].checked && !rep.worst[0].passed);
    ck_assert(!rep.worst[1].checked);
    /* The Jacobian is diagonal: the worst element sits on it, and the
     * analytical value is 1.01 times the numerical one (b[i]). */
    ck_assert_int_eq(rep.worst[0].in_index, rep.worst[0].out_index);
    double bi;
    NBT_OK(nb_tensor_get(b, (int64_t[]){rep.worst[0].in_index}, &bi));
    ck_assert(fabs(rep.worst[0].numerical - bi) < 1e-8);
    ck_assert(fabs(rep.worst[0].analytical - 1.01 * bi) < 1e-12);
    /* Inputs are restored exactly after the check. */
    nb_tensor *a2 = nbt_randn(3, NB_F64, NB_SHAPE(5), false);
    nbt_assert_bitwise_equal(a, a2);
    NBT_STATUS_FAILS_WITH(nb_gradcheck(planted_mul, &mode, (nb_tensor *[]){b, b}, 2, NULL, &rep),
                          "at least one input must require grad");
    NBT_STATUS_FAILS_WITH(nb_gradcheck(NULL, &mode, in, 2, NULL, &rep), "function is NULL");
    nb_tensor_release(a);
    nb_tensor_release(a2);
    nb_tensor_release(b);
}
END_TEST

START_TEST(test_backward_accumulates) {
    int mode = 0;
    nb_tensor *a = nbt_randn(5, NB_F64, NB_SHAPE(4), true);
    nb_tensor *b = nbt_randn(6, NB_F64, NB_SHAPE(4), false);
    nb_tensor *ones = nb_ones(NB_F64, NB_SHAPE(4));
    for (int step = 1; step <= 3; step++) {
        nb_tensor *y = planted_mul((nb_tensor *[]){a, b}, 2, &mode);
        ck_assert_str_eq(nb_tensor_grad_fn_name(y), "planted_mul");
        NBT_OK(nb_backward_ex(y, ones, false));
        nb_tensor_release(y);
        /* PyTorch accumulates: after k backward passes a.grad = k * b. */
        double bv[4], gv[4];
        nb_tensor_copy_out(b, bv, NB_F64);
        nb_tensor_copy_out(nb_tensor_grad(a), gv, NB_F64);
        for (int i = 0; i < 4; i++) ck_assert(gv[i] == step * bv[i] || fabs(gv[i] - step * bv[i]) < 1e-15);
    }
    ck_assert_ptr_null(nb_tensor_grad(b)); /* does not require grad */
    nb_zero_grad(a);
    ck_assert_ptr_null(nb_tensor_grad(a));
    nb_tensor_release(a);
    nb_tensor_release(b);
    nb_tensor_release(ones);
}
END_TEST

START_TEST(test_backward_errors_and_retain) {
    int mode = 0;
    nb_tensor *a = nbt_randn(7, NB_F64, NB_SHAPE(3), true);
    nb_tensor *y = planted_mul((nb_tensor *[]){a, a}, 2, &mode);
    NBT_STATUS_FAILS_WITH(nb_backward(y), "grad can be implicitly created only for scalar outputs");
    nb_tensor *g = nb_ones(NB_F64, NB_SHAPE(3));
    nb_tensor *g2 = nb_ones(NB_F64, NB_SHAPE(2));
    NBT_STATUS_FAILS_WITH(nb_backward_ex(y, g2, false), "mismatch in shape");
    NBT_OK(nb_backward_ex(y, g, true));  /* retain_graph */
    NBT_OK(nb_backward_ex(y, g, false)); /* second pass allowed, then freed */
    NBT_STATUS_FAILS_WITH(nb_backward_ex(y, g, false), "backward through the graph a second time");
    /* y = a * a: d/da = 2a per pass, two passes. */
    double av[3], gv[3];
    nb_tensor_copy_out(a, av, NB_F64);
    nb_tensor_copy_out(nb_tensor_grad(a), gv, NB_F64);
    for (int i = 0; i < 3; i++) ck_assert(fabs(gv[i] - 4 * av[i]) < 1e-14);
    nb_tensor *c = nb_ones(NB_F64, NB_SHAPE(1));
    NBT_STATUS_FAILS_WITH(nb_backward(c), "does not require grad");
    NBT_STATUS_FAILS_WITH(nb_backward(NULL), "is NULL");
    NBT_STATUS_FAILS_WITH(nb_requires_grad_(y, false), "leaf variables");
    nb_tensor *i64 = nb_zeros(NB_I64, NB_SHAPE(2));
    NBT_STATUS_FAILS_WITH(nb_requires_grad_(i64, true), "only float32 and float64 tensors can require gradients");
    nb_tensor *all[] = {a, y, g, g2, c, i64};
    for (int i = 0; i < 6; i++) nb_tensor_release(all[i]);
}
END_TEST

START_TEST(test_no_grad_records_nothing) {
    int mode = 0;
    nb_tensor *a = nbt_randn(8, NB_F64, NB_SHAPE(3), true);
    nb_no_grad_begin();
    ck_assert(!nb_grad_enabled());
    nb_tensor *y = planted_mul((nb_tensor *[]){a, a}, 2, &mode);
    ck_assert(!nb_tensor_requires_grad(y));
    ck_assert_ptr_null(nb_tensor_grad_fn_name(y));
    ck_assert_int_eq(a->refcount, 1); /* nothing saved a reference to a */
    nb_no_grad_end();
    ck_assert(nb_grad_enabled());
    nb_tensor *z = planted_mul((nb_tensor *[]){a, a}, 2, &mode);
    ck_assert(nb_tensor_requires_grad(z));
    ck_assert_int_eq(a->refcount, 3); /* the node holds both inputs */
    nb_tensor_release(z);
    ck_assert_int_eq(a->refcount, 1); /* freeing the output frees the graph */
    nb_tensor *d = nb_detach(a);
    ck_assert(!nb_tensor_requires_grad(d) && nb_tensor_is_leaf(d));
    nb_tensor_release(d);
    nb_tensor_release(y);
    nb_tensor_release(a);
}
END_TEST

/* Views are differentiable: gradcheck through reshape/transpose/narrow/select/permute/cat-free chains. */
static nb_tensor *view_chain(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    nb_scope *s = nb_scope_begin();
    nb_tensor *r = nb_reshape(in[0], NB_SHAPE(3, 4, 2));
    nb_tensor *t = nb_transpose(r, 0, 2);             /* [2, 4, 3] */
    nb_tensor *p = nb_permute(t, (int[]){1, 0, 2});   /* [4, 2, 3] */
    nb_tensor *w = nb_narrow(p, 0, 1, 2);             /* [2, 2, 3] */
    nb_tensor *e = nb_select(w, 2, 1);                /* [2, 2] */
    nb_tensor *u = nb_unsqueeze(e, 0);
    nb_tensor *f = nb_flatten(u, 0, -1);
    nb_tensor *c = nb_contiguous(f);
    int mode = 0;
    nb_tensor *y = nb_tensor_retain(planted_mul((nb_tensor *[]){c, c}, 2, &mode));
    nb_scope_end(s);
    return y;
}

START_TEST(test_gradcheck_views) {
    nb_tensor *x = nbt_randn(9, NB_F64, NB_SHAPE(24), true);
    nbt_gradcheck(view_chain, NULL, &x, 1, false);
    nbt_gradcheck(view_chain, NULL, &x, 1, true);
    nb_tensor_release(x);
}
END_TEST

/* 10,000 forward/backward steps inside scopes: live memory returns to the
 * same level after every step, and the pool stops growing. */
START_TEST(test_training_loop_memory_is_flat) {
    int mode = 0;
    nb_tensor *w = nbt_randn(10, NB_F64, NB_SHAPE(64, 64), true);
    nb_tensor *x = nbt_randn(11, NB_F64, NB_SHAPE(64, 64), false);
    nb_tensor *g = nb_ones(NB_F64, NB_SHAPE(64, 64));
    size_t live0 = nb_memory_in_use(), cached_after_first = 0;
    for (int step = 0; step < 10000; step++) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *h = planted_mul((nb_tensor *[]){w, x}, 2, &mode);
        nb_tensor *t = nb_transpose(h, 0, 1);
        nb_tensor *c = nb_contiguous(t);
        nb_tensor *y = planted_mul((nb_tensor *[]){c, c}, 2, &mode);
        NBT_OK(nb_backward_ex(y, g, false));
        nb_scope_end(s);
        nb_zero_grad(w);
        ck_assert_uint_eq(nb_memory_in_use(), live0);
        if (step == 0) cached_after_first = nb_memory_cached();
    }
    ck_assert_uint_eq(nb_memory_cached(), cached_after_first);
    nb_tensor_release(w);
    nb_tensor_release(x);
    nb_tensor_release(g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("engine");
    tcase_add_test(tc, test_gradcheck_catches_planted_bugs);
    tcase_add_test(tc, test_gradcheck_report_worst);
    tcase_add_test(tc, test_backward_accumulates);
    tcase_add_test(tc, test_backward_errors_and_retain);
    tcase_add_test(tc, test_no_grad_records_nothing);
    tcase_add_test(tc, test_gradcheck_views);
    tcase_add_test(tc, test_training_loop_memory_is_flat);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
