/* Anomaly detection (nb_set_detect_anomaly): NaN/Inf in a forward output or a
 * backward gradient makes the op fail with a message naming the op, the
 * direction, the shapes and the first bad element; off, nothing is checked. */
#include "testutil.h"

#include "tensor/internal.h"

#include <stdlib.h>

#define T(...) NB_SHAPE(__VA_ARGS__)

static void assert_msg_has(const char *frag) {
    ck_assert_msg(strstr(nb_last_error(), frag) != NULL, "message '%s' lacks '%s'", nb_last_error(), frag);
}

/* ---- a test-only op: identity forward, backward plants a NaN at element k ---- */
static nb_status plant_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    (void)node;
    nb_tensor *g = nb_clone(gout);
    if (!g) return nb_last_status();
    ((double *)nbi_data(g))[*(int64_t *)node->ctx] = NAN;
    gin[0] = g;
    return NB_OK;
}
static const nbi_op plant_op = {"planted_nan", plant_backward, NULL};

static nb_tensor *plant_nan_in_backward(nb_tensor *x, int64_t k) {
    nb_tensor *y = nbi_empty_like(x);
    memcpy(nbi_data(y), nbi_data(x), (size_t)x->numel * sizeof(double));
    int64_t *c = malloc(sizeof *c);
    *c = k;
    return nbi_finish(y, &plant_op, &x, 1, c);
}

START_TEST(test_forward_log_of_nan_and_sqrt_of_negative) {
    nb_set_detect_anomaly(true);
    ck_assert(nb_detect_anomaly_enabled());
    const double xv[6] = {1, 2, 3, NAN, 5, 6};
    nb_tensor *x = NBT_NOTNULL(nb_from_data(NB_F64, T(2, 3), xv));
    NBT_FAILS_WITH(nb_log(x), "detect_anomaly: log produced NaN in forward at index 3");
    ck_assert_int_eq(nb_last_status(), NB_ERR_ANOMALY);
    assert_msg_has("(output [2, 3], inputs [2, 3])");

    const float nv[4] = {4, 1, -1, 9};
    nb_tensor *n = NBT_NOTNULL(nb_from_data(NB_F32, T(4), nv));
    NBT_FAILS_WITH(nb_sqrt(n), "detect_anomaly: sqrt produced NaN in forward at index 2");
    assert_msg_has("(output [4], inputs [4])");

    /* a binary op with broadcasting: both input shapes, and Inf as such */
    const double zv[3] = {1, 0, 2};
    nb_tensor *z = NBT_NOTNULL(nb_from_data(NB_F64, T(3), zv));
    nb_tensor *ones = NBT_NOTNULL(nb_ones(NB_F64, T(2, 3)));
    NBT_FAILS_WITH(nb_div(ones, z), "detect_anomaly: div produced Inf in forward at index 1, value inf");
    assert_msg_has("(output [2, 3], inputs [2, 3], [3])");

    /* a non-contiguous output: the index is the logical (row-major) one */
    const double tv[6] = {1, 2, 3, 4, INFINITY, 6}; /* (2, 3): element [1, 1] */
    nb_tensor *t = NBT_NOTNULL(nb_from_data(NB_F64, T(2, 3), tv));
    NBT_FAILS_WITH(nb_transpose(t, 0, 1), "transpose produced Inf in forward at index 3"); /* (3, 2): [1, 1] */

    /* ops that skip recording (no grad needed) are checked too */
    const float cv[1] = {NAN};
    nb_tensor *img = NBT_NOTNULL(nb_zeros(NB_F32, T(1, 1, 3, 3)));
    nb_tensor *w = NBT_NOTNULL(nb_from_data(NB_F32, T(1, 1, 1, 1), cv));
    nb_conv2d_params p = nb_conv2d_defaults();
    NBT_FAILS_WITH(nb_conv2d(img, w, NULL, &p), "detect_anomaly: conv2d produced NaN in forward at index 0");
    nb_set_detect_anomaly(false);
    nb_tensor *ok = NBT_NOTNULL(nb_conv2d(img, w, NULL, &p));
    nb_tensor_release(ok);
    nb_tensor_release(img);
    nb_tensor_release(w);
    nb_tensor_release(t);
    nb_tensor_release(z);
    nb_tensor_release(ones);
    nb_tensor_release(n);
    nb_tensor_release(x);
}
END_TEST

START_TEST(test_backward_sqrt_at_zero) {
    nb_set_detect_anomaly(true);
    /* d sqrt(x)/dx = 1 / (2 sqrt x): Inf at x = 0, though the forward is finite */
    const double xv[4] = {1, 4, 0, 9};
    nb_tensor *x = NBT_NOTNULL(nb_from_data(NB_F64, T(2, 2), xv));
    NBT_OK(nb_requires_grad_(x, true));
    nb_tensor *y = NBT_NOTNULL(nb_sqrt(x));
    nb_tensor *s = NBT_NOTNULL(nb_sum(y));
    NBT_STATUS_FAILS_WITH(nb_backward(s), "detect_anomaly: function 'sqrt' returned Inf in its 1st gradient in backward at index 2");
    ck_assert_int_eq(nb_last_status(), NB_ERR_ANOMALY);
    assert_msg_has("(gradient [2, 2], output [2, 2], inputs [2, 2])");
    ck_assert_ptr_null(nb_tensor_grad(x)); /* nothing reached the leaf */
    nb_tensor_release(s);
    nb_tensor_release(y);

    /* the 2nd input's gradient of a binary op: d(a/b)/db = -a/b^2 */
    const double bv[2] = {2, 0};
    nb_tensor *a = NBT_NOTNULL(nb_ones(NB_F64, T(2)));
    nb_tensor *b = NBT_NOTNULL(nb_from_data(NB_F64, T(2), bv));
    NBT_OK(nb_requires_grad_(b, true));
    nb_set_detect_anomaly(false); /* the forward itself has an Inf */
    nb_tensor *q = NBT_NOTNULL(nb_div(a, b));
    nb_tensor *rs = NBT_NOTNULL(nb_sum(q));
    nb_set_detect_anomaly(true);
    NBT_STATUS_FAILS_WITH(nb_backward(rs), "function 'div' returned Inf in its 2nd gradient in backward at index 1, value -inf");
    assert_msg_has("(gradient [2], output [2], inputs [2], [2])");
    nb_tensor_release(rs);
    nb_tensor_release(q);
    nb_tensor_release(a);
    nb_tensor_release(b);
    nb_tensor_release(x);
    nb_set_detect_anomaly(false);
}
END_TEST

START_TEST(test_backward_planted_nan_and_root_gradient) {
    nb_tensor *x = NBT_NOTNULL(nbt_randn(1, NB_F64, T(3, 4), true));
    nb_tensor *h = NBT_NOTNULL(nb_tanh(x));
    nb_tensor *p = NBT_NOTNULL(plant_nan_in_backward(h, 7));
    nb_tensor *y = NBT_NOTNULL(nb_mul_scalar(p, 2.0));
    nb_set_detect_anomaly(true);
    NBT_STATUS_FAILS_WITH(nb_backward_ex(y, NULL, false), "scalar outputs"); /* unrelated check still first */
    nb_tensor *go = NBT_NOTNULL(nb_ones(NB_F64, T(3, 4)));
    NBT_STATUS_FAILS_WITH(nb_backward_ex(y, go, true),
                          "detect_anomaly: function 'planted_nan' returned NaN in its 1st gradient in backward at index 7, value nan");
    assert_msg_has("(gradient [3, 4], output [3, 4], inputs [3, 4])");
    ck_assert_ptr_null(nb_tensor_grad(x));

    /* a non-finite gradient handed to backward is reported as such */
    NBT_OK(nb_tensor_fill_(go, INFINITY));
    NBT_STATUS_FAILS_WITH(nb_backward_ex(h, go, true), "detect_anomaly: the gradient passed to backward has Inf at index 0");

    /* off: the same graph (rebuilt: a failed backward frees it) backpropagates the NaN without complaint */
    nb_set_detect_anomaly(false);
    nb_tensor_release(y);
    nb_tensor_release(p);
    nb_tensor_release(h);
    h = NBT_NOTNULL(nb_tanh(x));
    p = NBT_NOTNULL(plant_nan_in_backward(h, 7));
    y = NBT_NOTNULL(nb_mul_scalar(p, 2.0));
    NBT_OK(nb_tensor_fill_(go, 1.0));
    nb_clear_error();
    NBT_OK(nb_backward_ex(y, go, false));
    ck_assert_int_eq(nb_last_status(), NB_OK);
    const double *g = nb_tensor_f64(nb_tensor_grad(x));
    for (int k = 0; k < 12; k++) ck_assert_msg(isnan(g[k]) == (k == 7), "element %d: %g", k, g[k]);
    nb_tensor_release(go);
    nb_tensor_release(y);
    nb_tensor_release(p);
    nb_tensor_release(h);
    nb_tensor_release(x);
}
END_TEST

START_TEST(test_off_propagates_nan) {
    ck_assert(!nb_detect_anomaly_enabled()); /* the default */
    const double xv[3] = {-1, 0, 4};
    nb_tensor *x = NBT_NOTNULL(nb_from_data(NB_F64, T(3), xv));
    NBT_OK(nb_requires_grad_(x, true));
    nb_clear_error();
    nb_tensor *y = NBT_NOTNULL(nb_sqrt(x));
    nb_tensor *s = NBT_NOTNULL(nb_sum(y));
    NBT_OK(nb_backward(s));
    ck_assert_int_eq(nb_last_status(), NB_OK);
    double v;
    NBT_OK(nb_tensor_item(s, &v));
    ck_assert(isnan(v));
    const double *g = nb_tensor_f64(nb_tensor_grad(x));
    ck_assert(isnan(g[0]) && isinf(g[1]) && g[2] == 0.25);
    nb_tensor_release(s);
    nb_tensor_release(y);
    nb_tensor_release(x);
}
END_TEST

/* A small conv net's training steps, all of it checked: nothing to report,
 * and the same numbers as with anomaly detection off. */
static void train_steps(bool anomaly, nb_tensor **out_loss) {
    nb_set_detect_anomaly(anomaly);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_conv2d_params cp = nb_conv2d_defaults();
    cp.padding[0] = cp.padding[1] = 1;
    nb_pool2d_params pp = nb_pool2d_defaults(2);
    nb_module *net = nb_sequential_module(NB_MODULES(
        nb_conv2d_module(1, 4, 3, 3, &cp, true, &rng), nb_batch_norm2d_module(4, 1e-5, 0.1, true, true),
        nb_relu_module(), nb_max_pool2d_module(&pp), nb_flatten_module(1, -1), nb_linear_module(4 * 4 * 4, 10, true, &rng),
        nb_log_softmax_module(1)));
    ck_assert_ptr_nonnull(net);
    nb_tensor *params[16];
    int np = nb_module_parameters(net, params, 16);
    nb_adam_options ao = nb_adam_defaults();
    nb_optimizer *opt = nb_adam(params, np, &ao);
    ck_assert_ptr_nonnull(opt);
    nb_tensor *x = NBT_NOTNULL(nb_rand_normal(&rng, NB_F32, T(8, 1, 8, 8), 0, 1));
    int64_t tv[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    nb_tensor *target = NBT_NOTNULL(nb_from_data(NB_I64, T(8), tv));
    nb_tensor *loss = NULL;
    for (int step = 0; step < 3; step++) {
        nb_optimizer_zero_grad(opt);
        nb_tensor_release(loss);
        nb_tensor *logp = NBT_NOTNULL(nb_module_forward(net, x));
        loss = NBT_NOTNULL(nb_nll_loss(logp, target, NB_REDUCTION_MEAN));
        nb_tensor_release(logp);
        NBT_OK(nb_backward(loss));
        NBT_OK(nb_optimizer_step(opt));
    }
    *out_loss = loss;
    nb_tensor_release(x);
    nb_tensor_release(target);
    nb_optimizer_free(opt);
    nb_module_free(net);
    nb_set_detect_anomaly(false);
}

START_TEST(test_clean_training_passes) {
    nb_tensor *on, *off;
    nb_clear_error();
    train_steps(true, &on);
    ck_assert_int_eq(nb_last_status(), NB_OK);
    train_steps(false, &off);
    nbt_assert_bitwise_equal(on, off);
    nb_tensor_release(on);
    nb_tensor_release(off);
}
END_TEST

int main(void) {
    Suite *s = suite_create("anomaly");
    TCase *tc = tcase_create("anomaly");
    tcase_add_test(tc, test_off_propagates_nan);
    tcase_add_test(tc, test_forward_log_of_nan_and_sqrt_of_negative);
    tcase_add_test(tc, test_backward_sqrt_at_zero);
    tcase_add_test(tc, test_backward_planted_nan_and_root_gradient);
    tcase_add_test(tc, test_clean_training_passes);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
