/* Out-of-memory error paths: with nb_debug_fail_allocations_after(k), every
 * allocation from the k-th on fails. For each k from 0 until the operation
 * succeeds, the operation must fail with NB_ERR_NOMEM and a message, crash
 * nowhere, and hand back every pool block it took (nb_memory_in_use returns to
 * its value before; AddressSanitizer's leak check covers the rest). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define T(...) NB_SHAPE(__VA_ARGS__)

typedef nb_status (*operation)(void *ctx);

/* Run op with allocation k failing, for k = 0, 1, ... until it succeeds;
 * returns the number of failing runs. */
static int fail_each_allocation(const char *what, operation op, void *ctx) {
    for (int k = 0; k < 100000; k++) {
        size_t before = nb_memory_in_use();
        nb_clear_error();
        if (getenv("NBT_TRACE")) /* to find the allocation behind a failure */ fprintf(stderr, "%s k=%d\n", what, k);
        nb_debug_fail_allocations_after(k);
        nb_status st = op(ctx);
        nb_debug_fail_allocations_after(-1);
        ck_assert_msg(nb_memory_in_use() == before, "%s, allocation %d failing: %zu bytes in use before, %zu after",
                      what, k, before, nb_memory_in_use());
        if (st == NB_OK) return k;
        ck_assert_msg(st == NB_ERR_NOMEM && nb_last_status() == NB_ERR_NOMEM,
                      "%s, allocation %d failing: status %d (last %d), message '%s'", what, k, (int)st,
                      (int)nb_last_status(), nb_last_error());
        ck_assert_msg(nb_last_error()[0] != '\0', "%s, allocation %d failing: empty message", what, k);
    }
    ck_abort_msg("%s never succeeded", what);
    return -1;
}

/* N(0, 1) tensor, NULL (not a test failure) when allocation fails. */
static nb_tensor *randn(uint64_t seed, nb_dtype dtype, int ndim, const int64_t *shape, bool requires_grad) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_tensor *t = nb_rand_normal(&rng, dtype, ndim, shape, 0.0, 1.0);
    if (t && requires_grad) ck_assert_int_eq(nb_requires_grad_(t, true), NB_OK);
    return t;
}

/* Status of a chain of tensor results: NB_OK when the last one exists. */
static nb_status chain_status(const nb_tensor *last) { return last ? NB_OK : nb_last_status(); }

/* ---- a sequence of ops, forward and backward, in a scope ---- */
static nb_status ops_sequence(void *ctx) {
    (void)ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *a = randn(1, NB_F32, T(4, 6), true);
    nb_tensor *b = randn(2, NB_F32, T(6, 3), true);
    nb_tensor *bias = randn(3, NB_F32, T(3), true);
    nb_status st = (a && b && bias) ? NB_OK : nb_last_status();
    if (st == NB_OK) {
        nb_tensor *h = nb_add(nb_matmul(a, b), bias);
        h = nb_tanh(nb_mul_scalar(h, 0.5));
        nb_tensor *parts[2] = {h, nb_exp(nb_neg(h))};
        nb_tensor *c = nb_cat((const nb_tensor *const *)parts, 2, 1);
        nb_tensor *idx = NULL;
        nb_tensor *m = nb_max_dim(nb_transpose(c, 0, 1), 0, false, &idx);
        nb_tensor *s = nb_log_softmax(nb_reshape(c, T(2, 12)), 1);
        nb_tensor *loss = nb_add(nb_mean(s), nb_sum(nb_div(m, nb_add_scalar(nb_sqrt(nb_mul(m, m)), 1.0))));
        loss = nb_sum_dim(nb_unsqueeze(loss, 0), 0, false);
        st = chain_status(loss);
        if (st == NB_OK) st = nb_backward(loss);
        if (st == NB_OK && !nb_tensor_grad(a)) st = NB_ERR_STATE;
    }
    nb_tensor *keep[3] = {a, b, bias};
    for (int i = 0; i < 3; i++) nb_zero_grad(keep[i]);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_ops_sequence) {
    int k = fail_each_allocation("ops sequence", ops_sequence, NULL);
    ck_assert_int_gt(k, 20); /* the sequence allocates: the failures were real */
}
END_TEST

/* ---- conv2d forward and backward (padded modes too) ---- */
typedef struct conv_case {
    nb_padding_mode mode;
    int64_t C, O, groups, stride; /* 16 -> 16, stride 1: Winograd; groups = C: depthwise */
} conv_case;

static nb_status conv_fwd_bwd(void *ctx) {
    const conv_case *cc = ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(4, NB_F32, T(2, cc->C, 7, 7), true);
    nb_tensor *w = randn(5, NB_F32, T(cc->O, cc->C / cc->groups, 3, 3), true);
    nb_tensor *bias = randn(6, NB_F32, T(cc->O), true);
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding[0] = p.padding[1] = 1;
    p.stride[0] = cc->stride;
    p.groups = cc->groups;
    p.padding_mode = cc->mode;
    nb_tensor *y = (x && w && bias) ? nb_conv2d(x, w, bias, &p) : NULL;
    nb_tensor *loss = nb_sum(nb_mul(y, y));
    nb_status st = chain_status(loss);
    if (st == NB_OK) st = nb_backward(loss);
    if (st == NB_OK && !(nb_tensor_grad(x) && nb_tensor_grad(w) && nb_tensor_grad(bias))) st = NB_ERR_STATE;
    if (x) nb_zero_grad(x);
    if (w) nb_zero_grad(w);
    if (bias) nb_zero_grad(bias);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_conv2d) {
    conv_case cases[] = {{NB_PAD_ZEROS, 3, 4, 1, 2}, {NB_PAD_REFLECT, 3, 4, 1, 2}, {NB_PAD_ZEROS, 16, 16, 1, 1},
                         {NB_PAD_ZEROS, 4, 8, 4, 1}};
    for (int i = 0; i < 4; i++) ck_assert_int_gt(fail_each_allocation("conv2d", conv_fwd_bwd, &cases[i]), 5);
}
END_TEST

/* ---- module construction and one forward/backward ---- */
static nb_module *small_net(void) {
    static nb_rng rng; /* Dropout keeps a pointer to it */
    nb_rng_seed(&rng, 9);
    nb_conv2d_params cp = nb_conv2d_defaults();
    nb_pool2d_params pp = nb_pool2d_defaults(2);
    return nb_sequential_module(NB_MODULES(
        nb_conv2d_module(1, 4, 3, 3, &cp, true, &rng), nb_batch_norm2d_module(4, 1e-5, 0.1, true, true),
        nb_relu_module(), nb_max_pool2d_module(&pp), nb_dropout_module(0.25, &rng), nb_flatten_module(1, -1),
        nb_linear_module(4 * 3 * 3, 5, true, &rng), nb_log_softmax_module(1)));
}

static nb_status module_build_and_run(void *ctx) {
    (void)ctx;
    nb_module *net = small_net();
    if (!net) return nb_last_status();
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(7, NB_F32, T(3, 1, 8, 8), false);
    nb_tensor *y = x ? nb_module_forward(net, x) : NULL;
    nb_tensor *loss = nb_mean(y);
    nb_status st = chain_status(loss);
    if (st == NB_OK) st = nb_backward(loss);
    nb_scope_end(sc);
    nb_module_free(net);
    return st;
}

START_TEST(test_module) { ck_assert_int_gt(fail_each_allocation("module", module_build_and_run, NULL), 10); }
END_TEST

/* ---- optimizers: construction and steps (state is created on the first) ---- */
typedef struct { int which; int k; } opt_case;

static nb_status optimizer_run(void *ctx) {
    opt_case *c = ctx;
    nb_tensor *p[2] = {randn(10, NB_F32, T(5, 4), true), randn(11, NB_F32, T(4), true)};
    nb_status st = NB_OK;
    if (!p[0] || !p[1]) st = nb_last_status();
    for (int i = 0; st == NB_OK && i < 2; i++) {
        nb_scope *sc = nb_scope_begin();
        nb_tensor *l = nb_sum(nb_mul(p[i], p[i]));
        st = chain_status(l);
        if (st == NB_OK) st = nb_backward(l);
        nb_scope_end(sc);
    }
    nb_optimizer *opt = NULL;
    if (st == NB_OK) {
        nb_sgd_options so = nb_sgd_defaults();
        so.lr = 0.1, so.momentum = 0.9, so.nesterov = true;
        nb_adam_options ao = nb_adam_defaults();
        ao.amsgrad = true;
        nb_adam_options aw = nb_adamw_defaults();
        nb_adadelta_options ad = nb_adadelta_defaults();
        nb_rmsprop_options rp = nb_rmsprop_defaults();
        rp.centered = true, rp.momentum = 0.5;
        switch (c->which) {
        case 0: opt = nb_sgd(p, 2, &so); break;
        case 1: opt = nb_adam(p, 2, &ao); break;
        case 2: opt = nb_adamw(p, 2, &aw); break;
        case 3: opt = nb_adadelta(p, 2, &ad); break;
        default: opt = nb_rmsprop(p, 2, &rp); break;
        }
        if (!opt) st = nb_last_status();
    }
    for (int s = 0; st == NB_OK && s < 2; s++) st = nb_optimizer_step(opt);
    nb_optimizer_free(opt);
    nb_tensor_release(p[0]);
    nb_tensor_release(p[1]);
    return st;
}

START_TEST(test_optimizers) {
    for (int which = 0; which < 5; which++) {
        opt_case c = {which, 0};
        ck_assert_int_gt(fail_each_allocation("optimizer", optimizer_run, &c), 2);
    }
}
END_TEST

/* ---- HDF5: read one dataset, load into tensors, load a module ---- */
static char h5_path[256];

static nb_status hdf5_loads(void *ctx) {
    (void)ctx;
    nb_tensor *r = nb_hdf5_read(h5_path, "6.weight", NB_F64); /* converted on the way */
    if (!r) return nb_last_status();
    nb_tensor_release(r);
    nb_tensor *dst = nb_zeros(NB_F32, T(5, 36));
    if (!dst) return nb_last_status();
    nb_named_tensor e[1] = {{"6.weight", dst}};
    nb_load_report rep;
    nb_status st = nb_hdf5_load(h5_path, e, 1, false, &rep);
    nb_load_report_free(&rep); /* ours even on failure */
    nb_tensor_release(dst);
    return st;
}

static nb_status module_load(void *ctx) {
    nb_module *net = ctx;
    return nb_module_load_hdf5(net, h5_path, true, NULL);
}

START_TEST(test_hdf5) {
    snprintf(h5_path, sizeof h5_path, "nomem_%d.h5", (int)getpid());
    nb_module *net = small_net();
    ck_assert_ptr_nonnull(net);
    NBT_OK(nb_module_save_hdf5(net, h5_path));
    ck_assert_int_gt(fail_each_allocation("hdf5 read/load", hdf5_loads, NULL), 1);
    fail_each_allocation("module load", module_load, net); /* copies into existing tensors: may need no allocation */
    nb_module_free(net);
    remove(h5_path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("nomem");
    TCase *tc = tcase_create("nomem");
    tcase_add_test(tc, test_ops_sequence);
    tcase_add_test(tc, test_conv2d);
    tcase_add_test(tc, test_module);
    tcase_add_test(tc, test_optimizers);
    tcase_add_test(tc, test_hdf5);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
