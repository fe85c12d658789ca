/* module.double() / .float() (nb_module_to_dtype): a float32 model with
 * PyTorch's weights, converted, matches PyTorch's float64 model
 * (tests/pytorch/module_dtype_reference.py: forwards, BatchNorm's buffers,
 * gradients, Adam steps); the whole model passes gradcheck in float64; the
 * tensor objects users and optimizers hold stay the same; optimizer state
 * and HDF5 files follow the dtype; gradcheck on float32 says why it is
 * unreliable. */
#include "testutil.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define T(...) NB_SHAPE(__VA_ARGS__)
#define REF "module_dtype.h5"

static void assert_matches(const nb_tensor *t, const char *name, double atol, double rtol) {
    nb_tensor *e = nbt_h5_read(nbt_data_path(REF), name, NB_F64);
    int64_t n = nb_tensor_numel(e);
    double *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    NBT_OK(nb_tensor_copy_out(e, v, NB_F64));
    ck_assert_msg(t != NULL, "%s: no tensor", name);
    nbt_assert_shape(t, nb_tensor_ndim(e), nb_tensor_shape(e));
    nbt_assert_values(t, v, n, atol, rtol);
    free(v);
    nb_tensor_release(e);
}

/* Copy the reference's float32 state ("state/KEY") into the model. */
static int load_state(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param, (void)ctx;
    char path[256];
    snprintf(path, sizeof path, "state/%s", name);
    nb_tensor *v = nbt_h5_read(nbt_data_path(REF), path, nb_tensor_dtype(t));
    NBT_OK(nb_tensor_copy_(t, v));
    nb_tensor_release(v);
    return 0;
}

static nb_module *pytorch_net(void) {
    nb_module *net = nbt_small_net(NULL);
    ck_assert_ptr_nonnull(net);
    NBT_OK(nb_module_visit_state(net, load_state, NULL));
    return net;
}

/* Every float state tensor of net has dtype. */
static int check_dtype(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param;
    nb_dtype want = strstr(name, "num_batches_tracked") ? NB_I64 : *(nb_dtype *)ctx;
    ck_assert_msg(nb_tensor_dtype(t) == want, "%s is %s, expected %s", name, nb_dtype_name(nb_tensor_dtype(t)),
                  nb_dtype_name(want));
    return 0;
}
static void assert_module_dtype(const nb_module *net, nb_dtype dtype) {
    NBT_OK(nb_module_visit_state(net, check_dtype, &dtype));
}

typedef struct names { char name[16][64]; nb_tensor *t[16]; int n; } names;
static int collect(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param;
    names *c = ctx;
    ck_assert_int_lt(c->n, 16);
    snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
    c->t[c->n++] = t;
    return 0;
}

START_TEST(test_float64_model_like_pytorch) {
    nb_module *net = pytorch_net();
    nb_param_list before = nb_module_parameter_list(net);
    NBT_OK(nb_module_to_dtype(net, NB_F64));
    assert_module_dtype(net, NB_F64);
    /* the same tensor objects, now float64, as PyTorch's parameters after .double() */
    nb_param_list after = nb_module_parameter_list(net);
    ck_assert_int_eq(before.n, after.n);
    for (int i = 0; i < after.n; i++) {
        ck_assert_ptr_eq(before.params[i], after.params[i]);
        ck_assert_int_eq(nb_tensor_dtype(before.params[i]), NB_F64);
        ck_assert(nb_tensor_requires_grad(after.params[i]) && nb_tensor_is_leaf(after.params[i]));
    }
    nb_param_list_free(&before);
    nb_param_list_free(&after);

    nb_tensor *x = nbt_h5_read(nbt_data_path(REF), "x", NB_F64);
    nb_module_eval(nb_module_child(net, "10"));
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(net, x));
    ck_assert_int_eq(nb_tensor_dtype(y), NB_F64);
    assert_matches(y, "y_train", 1e-12, 1e-10);
    assert_matches(nb_module_state(net, "1.running_mean"), "running_mean", 1e-13, 1e-11);
    assert_matches(nb_module_state(net, "1.running_var"), "running_var", 1e-13, 1e-11);
    assert_matches(nb_module_state(net, "1.num_batches_tracked"), "num_batches_tracked", 0, 0);
    nb_tensor_release(y);
    nb_module_eval(net);
    y = NBT_NOTNULL(nb_module_forward(net, x));
    assert_matches(y, "y_eval", 1e-12, 1e-10);
    nb_tensor_release(y);

    nb_module_train(net, true);
    nb_module_eval(nb_module_child(net, "10"));
    nb_tensor *target = nbt_h5_read(nbt_data_path(REF), "target", NB_I64);
    y = NBT_NOTNULL(nb_module_forward(net, x));
    nb_tensor *loss = NBT_NOTNULL(nb_nll_loss(y, target, NB_REDUCTION_MEAN));
    assert_matches(loss, "loss", 1e-13, 1e-12);
    NBT_OK(nb_backward(loss));
    names ps = {0};
    NBT_OK(nb_module_visit_parameters(net, collect, &ps));
    for (int i = 0; i < ps.n; i++) {
        char path[96];
        snprintf(path, sizeof path, "grad/%s", ps.name[i]);
        ck_assert_int_eq(nb_tensor_dtype(nb_tensor_grad(ps.t[i])), NB_F64);
        assert_matches(nb_tensor_grad(ps.t[i]), path, 1e-12, 1e-9);
    }
    nb_tensor *all[] = {loss, y, target, x};
    for (int i = 0; i < 4; i++) nb_tensor_release(all[i]);
    nb_module_free(net);
}
END_TEST

/* Adam created after the conversion follows PyTorch's float64 trajectory. */
START_TEST(test_optimizer_on_float64_model_like_pytorch) {
    nb_module *net = pytorch_net();
    NBT_OK(nb_module_to_dtype(net, NB_F64));
    nb_module_eval(nb_module_child(net, "10"));
    nb_param_list ps = nb_module_parameter_list(net);
    nb_adam_options o = nb_adam_defaults();
    o.lr = 0.01;
    nb_optimizer *opt = nb_adam(ps.params, ps.n, &o);
    ck_assert_msg(opt != NULL, "%s", nb_last_error());
    nb_param_list_free(&ps);
    nb_tensor *x = nbt_h5_read(nbt_data_path(REF), "x", NB_F64);
    nb_tensor *target = nbt_h5_read(nbt_data_path(REF), "target", NB_I64);
    for (int step = 0; step < 3; step++) {
        nb_scope *s = nb_scope_begin();
        nb_optimizer_zero_grad(opt);
        NBT_OK(nb_backward(nb_nll_loss(nb_module_forward(net, x), target, NB_REDUCTION_MEAN)));
        NBT_OK(nb_optimizer_step(opt));
        nb_scope_end(s);
    }
    names pn = {0};
    NBT_OK(nb_module_visit_parameters(net, collect, &pn));
    for (int i = 0; i < pn.n; i++) {
        char path[96];
        snprintf(path, sizeof path, "adam/%s", pn.name[i]);
        assert_matches(pn.t[i], path, 1e-11, 1e-9);
    }
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        char name[64];
        nb_tensor *st = nb_optimizer_state_entry(opt, k, name, sizeof name);
        ck_assert_int_eq(nb_tensor_dtype(st), NB_F64); /* "step" is float64 anyway, the rest follow the parameters */
    }
    nb_optimizer_free(opt);
    nb_tensor_release(x);
    nb_tensor_release(target);
    nb_module_free(net);
}
END_TEST

/* The whole model (conv, BatchNorm in training mode, pooling, linear, Dropout
 * in eval mode) passes gradcheck in float64, for its input and every parameter. */
static nb_tensor *model_forward(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_module_forward(ctx, in[0]); /* in[1..]: the model's own parameters, perturbed in place */
}

START_TEST(test_whole_model_passes_gradcheck_in_float64) {
    nb_module *net = pytorch_net();
    NBT_OK(nb_module_to_dtype(net, NB_F64));
    nb_module_eval(nb_module_child(net, "10"));
    nb_tensor *in[NB_GRADCHECK_MAX_INPUTS];
    in[0] = nbt_randn(11, NB_F64, T(2, 3, 8, 8), true);
    int np = nb_module_parameters(net, in + 1, NB_GRADCHECK_MAX_INPUTS - 1);
    ck_assert_int_eq(np, 10);
    nb_gradcheck_report rep;
    NBT_OK(nb_gradcheck(model_forward, net, in, 1 + np, NULL, &rep));
    ck_assert_msg(rep.passed, "%s", rep.message);
    for (int i = 0; i <= np; i++) ck_assert(rep.worst[i].checked);
    nb_tensor_release(in[0]);

    /* and in float32 the same check says why it cannot be trusted */
    NBT_OK(nb_module_to_dtype(net, NB_F32));
    in[0] = nbt_randn(11, NB_F32, T(2, 3, 8, 8), true);
    nb_gradcheck_options fast = nb_gradcheck_defaults();
    fast.fast_mode = true;
    NBT_OK(nb_gradcheck(model_forward, net, in, 1 + np, &fast, &rep));
    ck_assert_msg(!rep.passed, "gradcheck passed in float32 with eps 1e-6: %s", rep.message);
    ck_assert_msg(strstr(rep.message, "\nInput #0 requires gradient and is not a double precision floating point"),
                  "%s", rep.message);
    nb_tensor_release(in[0]);
    nb_module_free(net);
}
END_TEST

static nb_tensor *square_sum(nb_tensor *const *in, int n, void *ctx) {
    (void)n, (void)ctx;
    nb_tensor *sq = nb_mul(in[0], in[0]), *s = nb_sum(sq);
    nb_tensor_release(sq);
    return s;
}

START_TEST(test_gradcheck_float32_note) {
    nb_tensor *x = nbt_randn(12, NB_F32, T(4), true), *c = nbt_randn(13, NB_F64, T(4), true);
    nb_tensor *in[2] = {c, x};
    nb_gradcheck_options o = nb_gradcheck_defaults();
    o.eps = 1e-2, o.atol = 1e-2, o.rtol = 1e-2; /* tolerances float32 can meet */
    nb_gradcheck_report rep;
    NBT_OK(nb_gradcheck(square_sum, NULL, in + 1, 1, &o, &rep));
    ck_assert_msg(rep.passed, "%s", rep.message);
    ck_assert_str_eq(rep.message, "gradcheck passed (note: Input #0 requires gradient and is not a double precision "
                                  "floating point (it is float32). This check will likely fail if all the inputs are "
                                  "not of double precision floating point: use float64 inputs (nb_to_dtype, or "
                                  "nb_module_to_dtype for a module).)");
    NBT_OK(nb_gradcheck(square_sum, NULL, in, 1, &o, &rep));
    ck_assert_str_eq(rep.message, "gradcheck passed"); /* float64, no note */
    nb_tensor_release(x);
    nb_tensor_release(c);
}
END_TEST

/* What users and optimizers hold after a conversion. */
START_TEST(test_conversion_rules) {
    nb_module *net = pytorch_net();
    nb_tensor *w = nb_module_state(net, "0.weight");
    nb_param_list ps = nb_module_parameter_list(net);
    nb_adam_options ao = nb_adam_defaults();
    nb_optimizer *opt = nb_adam(ps.params, ps.n, &ao);
    ck_assert_ptr_nonnull(opt);
    nb_tensor *x = nbt_h5_read(nbt_data_path(REF), "x", NB_F32);
    nb_tensor *target = nbt_h5_read(nbt_data_path(REF), "target", NB_I64);
    nb_module_eval(nb_module_child(net, "10"));
    for (int step = 0; step < 2; step++) { /* float32 state exists */
        nb_scope *s = nb_scope_begin();
        nb_optimizer_zero_grad(opt);
        NBT_OK(nb_backward(nb_nll_loss(nb_module_forward(net, x), target, NB_REDUCTION_MEAN)));
        NBT_OK(nb_optimizer_step(opt));
        nb_scope_end(s);
    }
    /* a graph recorded in float32, then the conversion (grads are converted too) */
    nb_tensor *x64 = NBT_NOTNULL(nb_to_dtype(x, NB_F64));
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(net, x));
    nb_tensor *loss = NBT_NOTNULL(nb_nll_loss(y, target, NB_REDUCTION_MEAN));
    nb_tensor *grad32 = NBT_NOTNULL(nb_clone(nb_tensor_grad(w)));
    nb_tensor *w32 = NBT_NOTNULL(nb_clone(w));
    nb_tensor *view = NBT_NOTNULL(nb_detach(w)); /* a view taken before: keeps the old data */
    NBT_OK(nb_module_to_dtype(net, NB_F64));
    ck_assert_ptr_eq(nb_module_state(net, "0.weight"), w);
    ck_assert_int_eq(nb_tensor_dtype(w), NB_F64);
    ck_assert_int_eq(nb_tensor_dtype(nb_tensor_grad(w)), NB_F64);
    nb_tensor *g64 = NBT_NOTNULL(nb_to_dtype(grad32, NB_F64));
    nbt_assert_bitwise_equal(nb_tensor_grad(w), g64);
    ck_assert_int_eq(nb_tensor_dtype(view), NB_F32);
    nbt_assert_bitwise_equal(view, w32);
    ck_assert_ptr_eq(nb_optimizer_param(opt, 0), w);
    NBT_STATUS_FAILS_WITH(nb_backward(loss), "was converted from float32 to float64 after the graph was recorded");
    nb_tensor_release(loss);
    nb_tensor_release(y);

    /* the optimizer's float32 state follows at the next step: the same
     * update as a fresh float64 Adam given that state converted */
    nb_optimizer *twin = nb_adam(&w, 1, &ao);
    ck_assert_ptr_nonnull(twin);
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        char name[64];
        nb_tensor *st = nb_optimizer_state_entry(opt, k, name, sizeof name);
        if (strncmp(name, "state.0.", 8) == 0) NBT_OK(nb_optimizer_load_state(twin, name, st));
    }
    nb_tensor *w_before = NBT_NOTNULL(nb_clone(w));
    nb_scope *s = nb_scope_begin();
    nb_optimizer_zero_grad(opt);
    NBT_OK(nb_backward(nb_nll_loss(nb_module_forward(net, x64), target, NB_REDUCTION_MEAN)));
    nb_tensor *g = NBT_NOTNULL(nb_scope_keep(nb_clone(nb_tensor_grad(w))));
    NBT_OK(nb_optimizer_step(opt));
    nb_scope_end(s);
    nb_tensor *w_opt = NBT_NOTNULL(nb_clone(w));
    NBT_OK(nb_tensor_copy_(w, w_before)); /* the same step by the twin */
    nb_zero_grad(w);
    nb_tensor *gw = NBT_NOTNULL(nb_clone(g));
    NBT_OK(nb_backward_ex(w, gw, false)); /* w.grad = g */
    NBT_OK(nb_optimizer_step(twin));
    nbt_assert_bitwise_equal(w, w_opt);
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        char name[64];
        nb_tensor *st = nb_optimizer_state_entry(opt, k, name, sizeof name);
        ck_assert_msg(nb_tensor_dtype(st) == NB_F64, "%s is %s", name, nb_dtype_name(nb_tensor_dtype(st)));
    }

    /* back to float32: float32 values survive the round trip exactly; integers stay */
    nb_module *fresh = pytorch_net();
    NBT_OK(nb_module_to_dtype(fresh, NB_F64));
    NBT_OK(nb_module_to_dtype(fresh, NB_F64)); /* already: nothing to do */
    NBT_OK(nb_module_to_dtype(fresh, NB_F32));
    assert_module_dtype(fresh, NB_F32);
    nb_module *orig = pytorch_net();
    names a = {0}, b = {0};
    NBT_OK(nb_module_visit_state(fresh, collect, &a));
    NBT_OK(nb_module_visit_state(orig, collect, &b));
    for (int i = 0; i < a.n; i++) nbt_assert_bitwise_equal(a.t[i], b.t[i]);
    NBT_STATUS_FAILS_WITH(nb_module_to_dtype(fresh, NB_I64), "module_to_dtype: modules can be converted to float32 or float64, not int64");

    nb_tensor *all[] = {w32, view, x, x64, target, grad32, g64, w_before, g, w_opt, gw};
    for (int i = 0; i < 11; i++) nb_tensor_release(all[i]);
    nb_param_list_free(&ps);
    nb_optimizer_free(opt);
    nb_optimizer_free(twin);
    nb_module_free(orig);
    nb_module_free(fresh);
    nb_module_free(net);
}
END_TEST

/* ---- HDF5 with float64 modules ---- */
static size_t file_dataset_bytes(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert(d >= 0);
    hid_t t = H5Dget_type(d);
    size_t n = H5Tget_size(t);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    return n;
}

START_TEST(test_hdf5_with_float64_modules) {
    char path[64];
    snprintf(path, sizeof path, "module_dtype_%d.h5", (int)getpid());
    nb_module *net = pytorch_net();
    NBT_OK(nb_module_to_dtype(net, NB_F64));
    nb_tensor *w = nb_module_state(net, "8.weight");
    NBT_OK(nb_tensor_fill_(w, 0.1)); /* a value float32 cannot hold: the file must keep float64 */
    NBT_OK(nb_module_save_hdf5(net, path));
    ck_assert_uint_eq(file_dataset_bytes(path, "8.weight"), 8);
    ck_assert_uint_eq(file_dataset_bytes(path, "1.num_batches_tracked"), 8);
    /* into a float64 model: bitwise; into a float32 one: converted */
    nb_module *m64 = nbt_small_net(NULL), *m32 = nbt_small_net(NULL);
    NBT_OK(nb_module_to_dtype(m64, NB_F64));
    NBT_OK(nb_module_load_hdf5(m64, path, true, NULL));
    NBT_OK(nb_module_load_hdf5(m32, path, true, NULL));
    names a = {0}, b = {0};
    NBT_OK(nb_module_visit_state(net, collect, &a));
    NBT_OK(nb_module_visit_state(m64, collect, &b));
    for (int i = 0; i < a.n; i++) nbt_assert_bitwise_equal(a.t[i], b.t[i]);
    nb_tensor *w32 = nb_module_state(m32, "8.weight");
    ck_assert_int_eq(nb_tensor_dtype(w32), NB_F32);
    ck_assert(nb_tensor_f32(w32)[0] == 0.1f);
    /* a float32 file (PyTorch's usual) into a float64 model */
    NBT_OK(nb_module_save_hdf5(m32, path));
    NBT_OK(nb_module_load_hdf5(m64, path, true, NULL));
    ck_assert(nb_tensor_f64(nb_module_state(m64, "8.weight"))[0] == (double)0.1f);
    remove(path);
    nb_module_free(net);
    nb_module_free(m64);
    nb_module_free(m32);
}
END_TEST

int main(void) {
    Suite *s = suite_create("module_dtype");
    TCase *tc = tcase_create("module_dtype");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_float64_model_like_pytorch);
    tcase_add_test(tc, test_optimizer_on_float64_model_like_pytorch);
    tcase_add_test(tc, test_whole_model_passes_gradcheck_in_float64);
    tcase_add_test(tc, test_gradcheck_float32_note);
    tcase_add_test(tc, test_conversion_rules);
    tcase_add_test(tc, test_hdf5_with_float64_modules);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
