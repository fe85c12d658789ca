/* The trainer's residual net (examples/mnist: mnist_train --model resnet)
 * against its PyTorch twin, FashionResNet of tools/fashion_resnet.py, run by
 * tests/pytorch/resnet_reference.py: the twin's state_dict loads strictly
 * (the same keys and shapes), and from those weights, in float64, two SGD
 * steps of the recipe (its two parameter groups, the warm-up + cosine
 * schedule) give the twin's logits, loss, parameter gradients, parameters and
 * BN buffers; then its evaluation-mode logits. The schedule alone is compared
 * over whole runs, and the float32 net's logits within float32's accuracy.
 * A small batch (8 images): it proves the nets and recipes are the same,
 * not that training converges. */
#include "testutil.h"

#include <stdio.h>

#include "models.h"
#include "recipe.h"

static char ref_file[4096], state_file[4096];
static const char *ref(void) {
    if (!ref_file[0]) snprintf(ref_file, sizeof ref_file, "%s", nbt_data_path("resnet.h5"));
    return ref_file;
}
static const char *state(void) {
    if (!state_file[0]) snprintf(state_file, sizeof state_file, "%s", nbt_data_path("resnet_state.h5"));
    return state_file;
}

/* The default-width net (16) in dtype with the twin's initial weights. */
static nb_module *twin_net(nb_dtype dtype) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = mnist_model_new("resnet", 16, &rng, NULL);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    NBT_OK(nb_module_to_dtype(m, dtype));
    nb_load_report rep;
    nb_status st = nb_module_load_hdf5(m, state(), true, &rep); /* strict: same keys, same shapes */
    ck_assert_msg(st == NB_OK, "strict load of the twin's state_dict: %s", nb_last_error());
    ck_assert_int_eq(rep.nmissing, 0);
    ck_assert_int_eq(rep.nunexpected, 0);
    nb_load_report_free(&rep);
    return m;
}

START_TEST(test_state_dict_keys) {
    nb_module *m = twin_net(NB_F32);
    /* and back: nabla's file loads strictly into a fresh net, the same values */
    char path[4200];
    snprintf(path, sizeof path, "%s.nabla.h5", state());
    NBT_OK(nb_module_save_hdf5(m, path));
    nb_module *back = mnist_model_new("resnet", 16, NULL, NULL);
    NBT_OK(nb_module_load_hdf5(back, path, true, NULL));
    nbt_assert_bitwise_equal(nb_module_state(back, "layer3.downsample.0.weight"),
                             nb_module_state(m, "layer3.downsample.0.weight"));
    nbt_assert_bitwise_equal(nb_module_state(back, "fc.bias"), nb_module_state(m, "fc.bias"));
    ck_assert_int_eq(nb_module_state_count(back), nb_module_state_count(m));
    remove(path);
    nb_module_free(back);
    nb_module_free(m);
}
END_TEST

typedef struct {
    const char *group;
} visit_ctx;

static int check_grad(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param;
    char group[64];
    snprintf(group, sizeof group, "%s/grad", ((visit_ctx *)ctx)->group);
    nbt_ref_close(nb_tensor_grad(t), ref(), group, name);
    return 0;
}

static int check_state(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param;
    char group[64];
    snprintf(group, sizeof group, "%s/param", ((visit_ctx *)ctx)->group);
    if (nb_tensor_dtype(t) == NB_I64) { /* num_batches_tracked */
        char full[300];
        double want, got;
        snprintf(full, sizeof full, "%s/%s", group, name);
        ck_assert(nbt_h5_read_scalar(ref(), full, &want));
        NBT_OK(nb_tensor_item(t, &got));
        ck_assert_msg(got == want, "%s: got %g expected %g", full, got, want);
    } else {
        nbt_ref_close(t, ref(), group, name);
    }
    return 0;
}

/* m's logits of the first batch, x1 in dtype, against group/logits. */
static void check_logits_x1(nb_module *m, nb_dtype dtype, const char *group) {
    nb_tensor *x = nbt_h5_read(ref(), "x1", dtype);
    nb_tensor *logits = nb_module_forward(m, x);
    nbt_ref_close(logits, ref(), group, "logits");
    nb_tensor_release(logits);
    nb_tensor_release(x);
}

START_TEST(test_two_sgd_steps_float64) {
    nb_module *m = twin_net(NB_F64);
    mnist_optim_options oo = {.name = "sgd", .lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4};
    nb_optimizer *opt = mnist_optimizer_new(m, &oo);
    ck_assert_msg(opt != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_optimizer_num_param_groups(opt), 2);
    nb_lr_scheduler *sched = mnist_warmup_cosine(opt, 4, 3);
    ck_assert_msg(sched != NULL, "%s", nb_last_error());
    for (int step = 1; step <= 2; step++) {
        char xname[8], yname[8], group[16];
        snprintf(xname, sizeof xname, "x%d", step);
        snprintf(yname, sizeof yname, "y%d", step);
        snprintf(group, sizeof group, "step%d", step);
        nb_tensor *x = nbt_h5_read(ref(), xname, NB_F64), *y = nbt_h5_read(ref(), yname, NB_I64);
        nb_tensor *logits = nb_module_forward(m, x);
        nbt_ref_close(logits, ref(), group, "logits");
        nb_tensor *loss = NBT_NOTNULL(nb_cross_entropy(logits, y, NB_REDUCTION_MEAN));
        nbt_ref_close(loss, ref(), group, "loss");
        nb_optimizer_zero_grad(opt);
        NBT_OK(nb_backward(loss));
        visit_ctx c = {group};
        NBT_OK(nb_module_visit_parameters(m, check_grad, &c));
        NBT_OK(nb_optimizer_step(opt));
        NBT_OK(nb_lr_scheduler_step(sched));
        NBT_OK(nb_module_visit_state(m, check_state, &c));
        nb_tensor_release(loss);
        nb_tensor_release(logits);
        nb_tensor_release(x);
        nb_tensor_release(y);
    }
    nb_module_eval(m);
    check_logits_x1(m, NB_F64, "eval");
    nb_lr_scheduler_free(sched);
    nb_optimizer_free(opt);
    nb_module_free(m);
}
END_TEST

/* The float32 net (the trainer's) from the same weights: logits within
 * float32's accuracy of the float64 twin's. */
START_TEST(test_logits_float32) {
    nb_module *m = twin_net(NB_F32);
    check_logits_x1(m, NB_F32, "step1");
    nb_module_free(m);
}
END_TEST

/* The schedule over whole runs (steps per epoch, epochs), both groups, as
 * the trainer steps it: once per batch. */
START_TEST(test_schedule) {
    static const int64_t runs[2][2] = {{3, 3}, {5, 1}};
    const int64_t steps = runs[_i][0], epochs = runs[_i][1];
    nb_module *m = mnist_model_new("resnet", 2, NULL, NULL);
    mnist_optim_options oo = {.name = "sgd", .lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4};
    nb_optimizer *opt = mnist_optimizer_new(m, &oo);
    nb_lr_scheduler *sched = mnist_warmup_cosine(opt, steps, epochs);
    ck_assert_msg(sched != NULL, "%s", nb_last_error());
    char name[32];
    snprintf(name, sizeof name, "lrs/%lld_%lld", (long long)steps, (long long)epochs);
    nb_tensor *want = nbt_h5_read(ref(), name, NB_F64);
    ck_assert_int_eq(nb_tensor_shape(want)[0], 1 + steps * epochs);
    const double *w = nb_tensor_f64(want);
    for (int64_t k = 0; k <= steps * epochs; k++) {
        if (k > 0) NBT_OK(nb_lr_scheduler_step(sched));
        for (int g = 0; g < 2; g++)
            ck_assert_msg(fabs(nb_optimizer_group_lr(opt, g) - w[2 * k + g]) <= 1e-15, "step %lld group %d: %.17g vs %.17g",
                          (long long)k, g, nb_optimizer_group_lr(opt, g), w[2 * k + g]);
    }
    nb_tensor_release(want);
    nb_lr_scheduler_free(sched);
    nb_optimizer_free(opt);
    nb_module_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("resnet");
    TCase *tc = tcase_create("twin");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_state_dict_keys);
    tcase_add_test(tc, test_two_sgd_steps_float64);
    tcase_add_test(tc, test_logits_float32);
    tcase_add_loop_test(tc, test_schedule, 0, 2);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
