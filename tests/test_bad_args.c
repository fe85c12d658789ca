/* Every public function of the headers in include/nabla/, header by header, called with
 * bad arguments: NULL tensors and pointers, wrong rank, wrong dtype (int64
 * where a float is needed, float32 mixed with float64), bad shapes and bad
 * values. Each call must fail (NULL or a negative status) without crashing
 * and leave a non-empty message that names the function's op.
 *
 * Some functions delegate and the message names the op that did the work
 * (nb_module_call -> module_child, nb_module_load_tensor -> module_state,
 * nb_sequential_append -> add_child, nb_module_save/load_hdf5 -> hdf5_save/load,
 * nb_optimizer_set_lr -> the optimizer's name, as PyTorch's message).
 * NULL is a documented default (not a bad argument) for: nb_conv2d's and
 * nb_conv2d_module's params (and nb_conv_transpose2d's and its module's),
 * nb_conv2d_pool_relu's params and pool (no pooling),
 * nb_conv_transpose2d_module_forward's output_size, nb_gradcheck's opts and report, the optimizers'
 * options except SGD's (lr is required), every rng.
 *
 * Functions with no bad argument to give (nothing they accept is invalid, or
 * they are documented to ignore NULL), so not in the table:
 *   version.h:   nb_version (no arguments)
 *   core.h:      nb_dtype_size, nb_dtype_name (queries: 0 / a name for any value),
 *                nb_last_error, nb_last_status, nb_clear_error, nb_get_num_threads,
 *                nb_cpu_kernels (no arguments),
 *                nb_memory_trim, nb_memory_in_use, nb_memory_cached,
 *                nb_debug_fail_allocations_after (any n is valid: negative disables)
 *   tensor.h:    nb_tensor_retain/nb_tensor_release/nb_scope_keep (NULL is
 *                allowed and ignored), nb_scope_begin, nb_scope_end (NULL ignored),
 *                nb_rng_next, nb_rng_uniform, nb_rng_normal, nb_default_rng,
 *                nb_manual_seed, nb_rng_seed (takes any seed);
 *                nb_tensor_dtype/ndim/shape/strides/numel/is_contiguous: plain
 *                accessors, checked below to return their documented sentinel
 *                for NULL (no message, as documented)
 *   autograd.h:  nb_tensor_requires_grad, nb_tensor_is_leaf, nb_tensor_grad,
 *                nb_tensor_grad_fn_name, nb_zero_grad (NULL-tolerant queries),
 *                nb_no_grad_begin/end, nb_grad_enabled, nb_set_detect_anomaly,
 *                nb_detect_anomaly_enabled, nb_function_num_saved (-1 for NULL),
 *                nb_function_data (NULL for NULL), nb_function_needs_input_grad
 *                (false for NULL or out of range): queries with sentinels
 *   gradcheck.h: nb_gradcheck_defaults
 *   conv.h:      nb_conv2d_defaults, nb_conv_transpose2d_defaults;  functional.h: nb_pool2d_defaults,
 *                nb_class_loss_defaults
 *   nn.h:        nb_module_new (NULL type means "Module"; a NULL forward is
 *                reported when the module is called), nb_module_free (NULL ignored), nb_module_train/eval/zero_grad
 *                (void, NULL ignored), nb_module_is_training, nb_module_type,
 *                nb_module_num_children, nb_module_num_parameters,
 *                nb_module_num_parameter_elements, nb_module_state_count
 *                (queries: sentinel for NULL), nb_param_list_free (NULL ignored), nb_relu_module, nb_sigmoid_module,
 *                nb_tanh_module, nb_leaky_relu_module (any slope is valid),
 *                nb_silu_module, nb_hardswish_module, nb_softmax_module (its dim
 *                is checked against the input, at forward: a row below)
 *   optim.h:     nb_*_defaults (incl. nb_one_cycle_lr_defaults,
 *                nb_reduce_lr_on_plateau_defaults), nb_optimizer_free,
 *                nb_optimizer_zero_grad, nb_lr_scheduler_free (NULL ignored),
 *                nb_optimizer_name, nb_optimizer_num_params,
 *                nb_optimizer_num_param_groups, nb_optimizer_get_lr,
 *                nb_lr_scheduler_name, nb_lr_scheduler_get_last_lr,
 *                nb_lr_scheduler_last_epoch, nb_lr_scheduler_base_lr,
 *                nb_lr_scheduler_state_count (queries: sentinel for NULL)
 *   io.h:        nb_load_report_free, nb_hdf5_names_free (NULL ignored)
 *   data.h:      nb_dataset_len, nb_loader_num_batches, nb_loader_num_samples
 *                (queries: -1 for NULL), nb_dataset_free, nb_loader_free (NULL
 *                ignored), nb_loader_defaults, and the transform values
 *                nb_normalize, nb_random_crop, nb_random_horizontal_flip,
 *                nb_random_affine (checked where they are used: their bad
 *                values are in the table through nb_transforms_apply and nb_loader_new)
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define T(...) NB_SHAPE(__VA_ARGS__)

/* Failures are listed (all of them, not just the first) and counted; each
 * test asserts the count is zero at its end. */
static int nfailed;

static void report_bad(const char *what, const char *why) {
    fprintf(stderr, "bad_args: %s: %s\n", what, why);
    nfailed++;
}

static void expect_error(const char *what, const char *op, bool failed) {
    char why[4600];
    if (!failed) report_bad(what, "should have failed");
    else if (nb_last_status() == NB_OK) report_bad(what, "failed but left no status");
    else if (nb_last_error()[0] == '\0') report_bad(what, "empty message");
    else if (!strstr(nb_last_error(), op)) {
        snprintf(why, sizeof why, "message '%s' does not name '%s'", nb_last_error(), op);
        report_bad(what, why);
    }
}

static void all_reported(void) {
    int n = nfailed;
    nfailed = 0;
    ck_assert_msg(n == 0, "%d bad calls were not reported correctly (listed on stderr)", n);
}

/* expr returns a pointer: must be NULL */
#define BAD(op, expr)                                                 \
    do {                                                              \
        nb_clear_error();                                             \
        const void *r_ = (const void *)(expr);                        \
        expect_error(#expr, op, r_ == NULL);                          \
    } while (0)
/* expr returns an nb_status: must be negative */
#define BAD_ST(op, expr)                                              \
    do {                                                              \
        nb_clear_error();                                             \
        nb_status s_ = (expr);                                        \
        expect_error(#expr, op, s_ < 0);                              \
    } while (0)
/* expr returns a number: must be the sentinel, with a message */
#define BAD_VAL(op, expr, sentinel)                                   \
    do {                                                              \
        nb_clear_error();                                             \
        bool ok_ = (expr) == (sentinel);                              \
        expect_error(#expr, op, ok_);                                 \
    } while (0)

/* Fixtures: float32 and float64 (2, 3), int64 (2, 3), float32 images. */
static nb_tensor *f, *d, *l, *img, *f1, *w4;
static const nb_tensor *const N = NULL;

static void setup(void) {
    f = nb_ones(NB_F32, T(2, 3));
    d = nb_ones(NB_F64, T(2, 3));
    l = nb_zeros(NB_I64, T(2, 3));
    img = nb_ones(NB_F32, T(2, 3, 5, 5));
    f1 = nb_ones(NB_F32, T(3));
    w4 = nb_ones(NB_F32, T(4, 3, 3, 3));
    ck_assert(f && d && l && img && f1 && w4);
}
static void teardown(void) {
    nb_tensor *all[6] = {f, d, l, img, f1, w4};
    for (int i = 0; i < 6; i++) nb_tensor_release(all[i]);
}

START_TEST(test_core_h) {
    BAD_ST("set_num_threads", nb_set_num_threads(0));
    BAD_ST("set_num_threads", nb_set_num_threads(-3));
    BAD_ST("set_error", nb_set_error(NB_OK, "not an error"));
    BAD_ST("set_error", nb_set_error((nb_status)3, "not an error"));
    BAD_ST("set_error", nb_set_error(NB_ERR_IO, NULL));
    ck_assert_uint_eq(nb_dtype_size((nb_dtype)7), 0); /* a query: 0 is its sentinel, no message */
    all_reported();
}
END_TEST

START_TEST(test_tensor_h) {
    int64_t neg[2] = {2, -1}, idx[2] = {5, 0};
    float buf[6] = {0};
    double out[6];
    /* factories */
    BAD("zeros", nb_zeros(NB_F32, 2, NULL));
    BAD("zeros", nb_zeros(NB_F32, 2, neg));
    const int64_t ones9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    BAD("zeros", nb_zeros(NB_F32, NB_MAX_DIMS + 1, ones9));
    BAD("zeros", nb_zeros(NB_F32, -1, ones9));
    BAD("zeros", nb_zeros((nb_dtype)9, T(2)));
    BAD("ones", nb_ones(NB_F32, 2, neg));
    BAD("full", nb_full(NB_F64, 2, neg, 1.0));
    BAD("full", nb_full((nb_dtype)9, T(2), 1.0));
    BAD("scalar", nb_scalar((nb_dtype)9, 1.0));
    BAD("arange", nb_arange(NB_F32, 0, 10, 0));
    BAD("arange", nb_arange(NB_F32, 0, 10, -1));
    BAD("arange", nb_arange(NB_F32, 0, NAN, 1));
    BAD("from_data", nb_from_data(NB_F32, T(2, 3), NULL));
    BAD("from_data", nb_from_data(NB_F32, 2, neg, buf));
    BAD("from_buffer", nb_from_buffer(NB_F32, T(2, 3), NULL));
    BAD("from_buffer", nb_from_buffer(NB_F32, 2, neg, buf));
    BAD("from_buffer", nb_from_buffer(NB_F32, T(2), (char *)buf + 1));
    BAD("zeros_like", nb_zeros_like(N));
    BAD("ones_like", nb_ones_like(N));
    /* random */
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    BAD("rand_uniform", nb_rand_uniform(&rng, NB_F32, 2, neg, 0, 1));
    BAD("rand_uniform", nb_rand_uniform(&rng, NB_I64, T(2), 0, 1));
    BAD("rand_uniform", nb_rand_uniform(&rng, NB_F32, T(2), 1, 0));
    BAD("rand_normal", nb_rand_normal(&rng, NB_F32, T(2), 0, -1));
    BAD("rand_normal", nb_rand_normal(&rng, NB_I64, T(2), 0, 1));
    BAD("rand_normal", nb_rand_normal(&rng, NB_F32, 2, NULL, 0, 1));
    /* accessors: NULL gives the documented sentinel */
    ck_assert_int_eq(nb_tensor_ndim(N), -1);
    ck_assert_int_eq(nb_tensor_numel(N), -1);
    ck_assert_ptr_null(nb_tensor_shape(N));
    ck_assert_ptr_null(nb_tensor_strides(N));
    ck_assert(!nb_tensor_is_contiguous(N));
    BAD_VAL("size", nb_tensor_size(N, 0), -1);
    BAD_VAL("size", nb_tensor_size(f, 2), -1);
    BAD_VAL("size", nb_tensor_size(f, -3), -1);
    BAD("tensor_f32", nb_tensor_f32(d));
    BAD("tensor_f32", nb_tensor_f32(NULL));
    BAD("tensor_f64", nb_tensor_f64(f));
    BAD("tensor_i64", nb_tensor_i64(f));
    BAD("tensor_data", nb_tensor_data(NULL));
    BAD_ST("item", nb_tensor_item(N, out));
    BAD_ST("item", nb_tensor_item(f, out));
    BAD_ST("item", nb_tensor_item(f1, NULL));
    BAD_ST("get", nb_tensor_get(N, idx, out));
    BAD_ST("get", nb_tensor_get(f, idx, out));
    BAD_ST("get", nb_tensor_get(f, NULL, out));
    BAD_ST("copy_out", nb_tensor_copy_out(N, out, NB_F64));
    BAD_ST("copy_out", nb_tensor_copy_out(f, NULL, NB_F64));
    BAD_ST("copy_out", nb_tensor_copy_out(f, out, (nb_dtype)9));
    BAD_ST("copy_", nb_tensor_copy_(NULL, f));
    BAD_ST("copy_", nb_tensor_copy_(f, N));
    BAD_ST("copy_", nb_tensor_copy_(f, f1));
    BAD_ST("fill_", nb_tensor_fill_(NULL, 1.0));
    /* views */
    BAD("reshape", nb_reshape(N, T(6)));
    BAD("reshape", nb_reshape(f, T(4)));
    BAD("reshape", nb_reshape(f, T(-1, -1)));
    BAD("reshape", nb_reshape(f, 2, NULL));
    BAD("view", nb_view(N, T(6)));
    BAD("view", nb_view(f, T(5)));
    nb_tensor *ft = nb_transpose(f, 0, 1);
    BAD("view", nb_view(ft, T(6)));
    nb_tensor_release(ft);
    BAD("flatten", nb_flatten(N, 0, -1));
    BAD("flatten", nb_flatten(f, 0, 2));
    BAD("flatten", nb_flatten(f, 1, 0));
    BAD("transpose", nb_transpose(N, 0, 1));
    BAD("transpose", nb_transpose(f, 0, 2));
    int bad_perm[2] = {0, 0}, oob_perm[2] = {0, 5};
    BAD("permute", nb_permute(N, bad_perm));
    BAD("permute", nb_permute(f, bad_perm));
    BAD("permute", nb_permute(f, oob_perm));
    BAD("permute", nb_permute(f, NULL));
    BAD("narrow", nb_narrow(N, 0, 0, 1));
    BAD("narrow", nb_narrow(f, 0, 1, 2));
    BAD("narrow", nb_narrow(f, 2, 0, 1));
    BAD("narrow", nb_narrow(f, 0, -5, 1));
    BAD("select", nb_select(N, 0, 0));
    BAD("select", nb_select(f, 0, 2));
    BAD("select", nb_select(f, 3, 0));
    BAD("unsqueeze", nb_unsqueeze(N, 0));
    BAD("unsqueeze", nb_unsqueeze(f, 4));
    BAD("squeeze", nb_squeeze(N, 0));
    BAD("squeeze", nb_squeeze(f, 0));
    BAD("squeeze", nb_squeeze(f, 5));
    BAD("contiguous", nb_contiguous(N));
    BAD("clone", nb_clone(N));
    BAD("to_dtype", nb_to_dtype(N, NB_F64));
    BAD("to_dtype", nb_to_dtype(f, (nb_dtype)9));
    all_reported();
}
END_TEST

START_TEST(test_ops_h) {
    nb_tensor *(*bin[4])(const nb_tensor *, const nb_tensor *) = {nb_add, nb_sub, nb_mul, nb_div};
    const char *bin_names[4] = {"add", "sub", "mul", "div"};
    nb_tensor *f4 = nb_ones(NB_F32, T(4));
    for (int i = 0; i < 4; i++) {
        const char *op = bin_names[i];
        BAD(op, bin[i](N, f));
        BAD(op, bin[i](f, N));
        BAD(op, bin[i](f, d));   /* float32 with float64 */
        BAD(op, bin[i](l, l));   /* int64 */
        BAD(op, bin[i](f, l));
        BAD(op, bin[i](f, f4));  /* (2, 3) and (4) do not broadcast */
    }
    nb_tensor *(*sc[6])(const nb_tensor *, double) = {nb_add_scalar, nb_sub_scalar, nb_mul_scalar,
                                                      nb_div_scalar, nb_rsub_scalar, nb_pow_scalar};
    const char *sc_names[6] = {"add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "rsub_scalar", "pow_scalar"};
    for (int i = 0; i < 6; i++) {
        BAD(sc_names[i], sc[i](N, 1.0));
        BAD(sc_names[i], sc[i](l, 1.0));
    }
    nb_tensor *(*un[7])(const nb_tensor *) = {nb_neg, nb_exp, nb_log, nb_sqrt, nb_relu, nb_sigmoid, nb_tanh};
    const char *un_names[7] = {"neg", "exp", "log", "sqrt", "relu", "sigmoid", "tanh"};
    for (int i = 0; i < 7; i++) {
        BAD(un_names[i], un[i](N));
        BAD(un_names[i], un[i](l));
    }
    BAD("sum", nb_sum(N));
    BAD("sum", nb_sum(l));
    BAD("mean", nb_mean(N));
    BAD("mean", nb_mean(l));
    BAD("sum_dim", nb_sum_dim(N, 0, false));
    BAD("sum_dim", nb_sum_dim(f, 2, false));
    BAD("sum_dim", nb_sum_dim(l, 0, false));
    BAD("mean_dim", nb_mean_dim(N, 0, false));
    BAD("mean_dim", nb_mean_dim(f, -3, true));
    BAD("mean_dim", nb_mean_dim(l, 0, false));
    nb_tensor *idx = NULL;
    BAD("max_dim", nb_max_dim(N, 0, false, &idx));
    BAD("max_dim", nb_max_dim(f, 2, false, &idx));
    BAD("max_dim", nb_max_dim(l, 0, false, &idx));
    nb_tensor *empty = nb_zeros(NB_F32, T(2, 0));
    BAD("max_dim", nb_max_dim(empty, 1, false, &idx));
    ck_assert_ptr_null(idx);
    BAD("log_softmax", nb_log_softmax(N, 0));
    BAD("log_softmax", nb_log_softmax(f, 2));
    BAD("log_softmax", nb_log_softmax(l, 0));
    nb_tensor *s0 = nb_scalar(NB_F32, 1.0);
    BAD("matmul", nb_matmul(N, f));
    BAD("matmul", nb_matmul(f, N));
    BAD("matmul", nb_matmul(f, f));       /* (2, 3) @ (2, 3) */
    BAD("matmul", nb_matmul(f, d));       /* float32 @ float64 */
    BAD("matmul", nb_matmul(l, l));       /* int64 */
    BAD("matmul", nb_matmul(s0, f));      /* 0-d */
    const nb_tensor *two[2] = {f, f4}, *mixed[2] = {f, d}, *withnull[2] = {f, NULL}, *ints[2] = {l, l};
    BAD("cat", nb_cat(NULL, 2, 0));
    BAD("cat", nb_cat(two, 0, 0));
    BAD("cat", nb_cat(two, 2, 0));        /* ranks differ */
    BAD("cat", nb_cat(mixed, 2, 0));      /* dtypes differ */
    BAD("cat", nb_cat(withnull, 2, 0));
    BAD("cat", nb_cat(mixed, 1, 2));      /* dim out of range */
    (void)ints;
    BAD("stack", nb_stack(NULL, 2, 0));
    BAD("stack", nb_stack(two, 0, 0));
    BAD("stack", nb_stack(two, 2, 0));      /* shapes differ */
    BAD("stack", nb_stack(mixed, 2, 0));    /* dtypes differ */
    BAD("stack", nb_stack(withnull, 2, 0));
    BAD("stack", nb_stack(mixed, 1, 3));    /* dim out of range */
    BAD("abs", nb_abs(N));
    BAD("abs", nb_abs(l));
    nb_tensor *(*alpha[2])(const nb_tensor *, const nb_tensor *, double) = {nb_add_alpha, nb_sub_alpha};
    nb_tensor *(*mm[2])(const nb_tensor *, const nb_tensor *) = {nb_maximum, nb_minimum};
    const char *alpha_names[2] = {"add", "sub"}, *mm_names[2] = {"maximum", "minimum"};
    for (int i = 0; i < 2; i++) {
        BAD(alpha_names[i], alpha[i](N, f, 2.0));
        BAD(alpha_names[i], alpha[i](f, N, 2.0));
        BAD(alpha_names[i], alpha[i](f, d, 2.0));
        BAD(alpha_names[i], alpha[i](l, l, 2.0));
        BAD(alpha_names[i], alpha[i](f, f4, 2.0));
        BAD(mm_names[i], mm[i](N, f));
        BAD(mm_names[i], mm[i](f, N));
        BAD(mm_names[i], mm[i](f, d));
        BAD(mm_names[i], mm[i](l, l));
        BAD(mm_names[i], mm[i](f, f4));
    }
    BAD("clamp", nb_clamp(N, 0, 1));
    BAD("clamp", nb_clamp(l, 0, 1));
    BAD("clamp", nb_clamp_tensor(N, f, f));
    BAD("clamp", nb_clamp_tensor(f, NULL, NULL)); /* PyTorch: at least one bound */
    BAD("clamp", nb_clamp_tensor(f, d, NULL));
    BAD("clamp", nb_clamp_tensor(f, NULL, f4));
    BAD("clamp", nb_clamp_tensor(l, l, l));
    BAD("where", nb_where(N, f, f));
    BAD("where", nb_where(l, N, f));
    BAD("where", nb_where(l, f, N));
    BAD("where", nb_where(f, f, f));      /* a float condition */
    BAD("where", nb_where(l, f, d));
    BAD("where", nb_where(l, f4, f));     /* shapes do not broadcast */
    nb_tensor *idx_hi = nb_full(NB_I64, T(2, 2), 3), *idx_neg = nb_full(NB_I64, T(2, 2), -1);
    nb_tensor *idx_wide = nb_zeros(NB_I64, T(2, 4)), *idx_1d = nb_zeros(NB_I64, T(2)), *idx_f = nb_zeros(NB_F32, T(2, 2));
    BAD("gather", nb_gather(N, 1, idx_1d));
    BAD("gather", nb_gather(f, 1, N));
    BAD("gather", nb_gather(f, 2, idx_1d));
    BAD("gather", nb_gather(f, 1, idx_f));
    BAD("gather", nb_gather(f, 1, idx_1d));   /* ranks differ */
    BAD("gather", nb_gather(f, 1, idx_hi));   /* index 3 of 3 */
    BAD("gather", nb_gather(f, 1, idx_neg));
    BAD("gather", nb_gather(f, 0, idx_wide)); /* index wider than input */
    nb_tensor *(*rd[4])(const nb_tensor *, const int *, int, bool) = {nb_sum_dims, nb_mean_dims, nb_amax, nb_amin};
    const char *rd_names[4] = {"sum_dims", "mean_dims", "amax", "amin"};
    for (int i = 0; i < 4; i++) {
        BAD(rd_names[i], rd[i](N, NULL, 0, false));
        BAD(rd_names[i], rd[i](l, NULL, 0, false));
        BAD(rd_names[i], rd[i](f, (const int[]){0, 2}, 2, false));  /* out of range */
        BAD(rd_names[i], rd[i](f, (const int[]){1, -1}, 2, false)); /* repeated */
        BAD(rd_names[i], rd[i](f, NULL, 1, false));
        BAD(rd_names[i], rd[i](f, (const int[]){0}, -1, false));
    }
    BAD("amax", nb_amax(empty, NULL, 0, false));
    BAD("amin", nb_amin(empty, (const int[]){1}, 1, false));
    idx = (nb_tensor *)&idx; /* reset to NULL on failure */
    BAD("min_dim", nb_min_dim(N, 0, false, &idx));
    BAD("min_dim", nb_min_dim(f, 2, false, &idx));
    BAD("min_dim", nb_min_dim(l, 0, false, &idx));
    BAD("min_dim", nb_min_dim(empty, 1, false, &idx));
    ck_assert_ptr_null(idx);
    nb_tensor *(*argall[2])(const nb_tensor *) = {nb_argmax, nb_argmin};
    nb_tensor *(*argdim[2])(const nb_tensor *, int, bool) = {nb_argmax_dim, nb_argmin_dim};
    const char *arg_names[2] = {"argmax", "argmin"};
    for (int i = 0; i < 2; i++) {
        BAD(arg_names[i], argall[i](N));
        BAD(arg_names[i], argall[i](l));
        BAD(arg_names[i], argall[i](empty));
        BAD(arg_names[i], argdim[i](N, 0, false));
        BAD(arg_names[i], argdim[i](f, 2, false));
        BAD(arg_names[i], argdim[i](l, 0, false));
        BAD(arg_names[i], argdim[i](empty, 1, true));
    }
    nb_tensor *idxs[5] = {idx_hi, idx_neg, idx_wide, idx_1d, idx_f};
    for (int i = 0; i < 5; i++) nb_tensor_release(idxs[i]);
    nb_tensor_release(s0);
    nb_tensor_release(empty);
    nb_tensor_release(f4);
    all_reported();
}
END_TEST

START_TEST(test_autograd_h) {
    BAD_ST("requires_grad_", nb_requires_grad_(NULL, true));
    BAD_ST("requires_grad_", nb_requires_grad_(l, true));
    nb_tensor *x = nb_ones(NB_F32, T(2, 3));
    ck_assert_int_eq(nb_requires_grad_(x, true), NB_OK);
    nb_tensor *y = nb_mul_scalar(x, 2.0);
    BAD_ST("requires_grad_", nb_requires_grad_(y, false)); /* non-leaf */
    BAD_ST("backward", nb_backward(NULL));
    BAD_ST("backward", nb_backward(f));  /* does not require grad */
    BAD_ST("backward", nb_backward(y));  /* not a scalar */
    BAD_ST("backward", nb_backward_ex(y, f1, false)); /* wrong shape */
    BAD_ST("backward", nb_backward_ex(y, d, false));  /* wrong dtype */
    BAD_ST("backward", nb_backward_ex(NULL, f, false));
    BAD("detach", nb_detach(N));
    nb_tensor_release(y);
    nb_tensor_release(x);
    all_reported();
}
END_TEST

/* A custom function whose forward and backward call the context's functions
 * badly (the calls are checked where they happen), and whose forward marks a
 * tensor it does not return when arg says so. */
static nb_status bad_ctx_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout,
                                 void *arg) {
    (void)nin, (void)nout;
    BAD_ST("mark_non_differentiable", nb_function_mark_non_differentiable(ctx, NULL));
    BAD_ST("save_for_backward", nb_function_save_for_backward(ctx, NULL, 2));
    BAD_ST("save_for_backward", nb_function_save_for_backward(ctx, in, -1));
    BAD("saved_tensor", nb_function_saved_tensor(ctx, 0)); /* nothing saved */
    out[0] = nb_mul_scalar(in[0], 2.0);
    if (arg) return nb_function_mark_non_differentiable(ctx, in[0]); /* not an output */
    return nb_function_save_for_backward(ctx, in, 1);
}
static nb_status bad_ctx_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)nout, (void)nin;
    BAD_ST("save_for_backward", nb_function_save_for_backward(ctx, gout, 1)); /* only during forward */
    BAD_ST("mark_non_differentiable", nb_function_mark_non_differentiable(ctx, gout[0]));
    BAD("saved_tensor", nb_function_saved_tensor(ctx, 1));
    BAD("saved_tensor", nb_function_saved_tensor(ctx, -1));
    gin[0] = nb_mul_scalar(gout[0], 2.0);
    return NB_OK;
}
static const nb_function bad_ctx_fn = {"BadCtx", bad_ctx_forward, bad_ctx_backward};
static nb_status observe(const nb_tensor *g, nb_tensor **rep, void *ctx) {
    (void)g, (void)rep, (void)ctx;
    return NB_OK;
}

START_TEST(test_autograd_extensions) {
    nb_tensor *x = nb_ones(NB_F32, T(2, 3));
    ck_assert_int_eq(nb_requires_grad_(x, true), NB_OK);
    nb_tensor *y = nb_mul(x, x), *loss = nb_sum(y), *g[2] = {NULL, NULL};
    nb_tensor *outs[1] = {loss}, *ins[1] = {x}, *nulls[1] = {NULL}, *plain[1] = {f};
    /* nb_autograd_grad */
    BAD_ST("autograd_grad", nb_autograd_grad(NULL, 1, NULL, ins, 1, g, NULL));
    BAD_ST("autograd_grad", nb_autograd_grad(outs, 0, NULL, ins, 1, g, NULL));
    BAD_ST("autograd_grad", nb_autograd_grad(outs, 1, NULL, NULL, 1, g, NULL));
    BAD_ST("autograd_grad", nb_autograd_grad(outs, 1, NULL, ins, 0, g, NULL));
    BAD_ST("autograd_grad", nb_autograd_grad(outs, 1, NULL, ins, 1, NULL, NULL));
    BAD_ST("autograd_grad", nb_autograd_grad(nulls, 1, NULL, ins, 1, g, NULL));
    BAD_ST("autograd_grad", nb_autograd_grad(outs, 1, NULL, nulls, 1, g, NULL));
    BAD_ST("autograd_grad", nb_autograd_grad(plain, 1, NULL, ins, 1, g, NULL));  /* output without grad */
    BAD_ST("autograd_grad", nb_autograd_grad(outs, 1, NULL, plain, 1, g, NULL)); /* input without grad */
    nb_tensor *ys[1] = {y};
    BAD_ST("autograd_grad", nb_autograd_grad(ys, 1, NULL, ins, 1, g, NULL)); /* not a scalar */
    const nb_tensor *wrong[1] = {d};
    BAD_ST("autograd_grad", nb_autograd_grad(ys, 1, wrong, ins, 1, g, NULL)); /* float64 gradient for float32 */
    BAD_ST("autograd_grad", nb_autograd_grad(outs, 1, NULL, ins, 1, g, &(nb_grad_options){.create_graph = true}));
    ck_assert_ptr_null(g[0]);
    /* hooks */
    BAD_VAL("register_hook", nb_tensor_register_hook(NULL, observe, NULL, NULL).id, 0);
    BAD_VAL("register_hook", nb_tensor_register_hook(x, NULL, NULL, NULL).id, 0);
    BAD_VAL("register_hook", nb_tensor_register_hook(f, observe, NULL, NULL).id, 0); /* no grad */
    BAD_ST("remove_hook", nb_tensor_remove_hook(NULL, (nb_hook_handle){1}));
    BAD_ST("remove_hook", nb_tensor_remove_hook(x, (nb_hook_handle){0}));
    /* custom functions */
    nb_tensor *out[2];
    nb_function no_backward = {"NoBackward", bad_ctx_forward, NULL};
    BAD_ST("function_apply", nb_function_apply(NULL, ins, 1, out, 1, NULL));
    BAD_ST("function_apply", nb_function_apply(&no_backward, ins, 1, out, 1, NULL));
    BAD_ST("function_apply", nb_function_apply(&bad_ctx_fn, ins, 1, NULL, 1, NULL));
    BAD_ST("function_apply", nb_function_apply(&bad_ctx_fn, ins, 1, out, 0, NULL));
    BAD_ST("function_apply", nb_function_apply(&bad_ctx_fn, ins, 1, out, NB_FUNCTION_MAX_OUTPUTS + 1, NULL));
    BAD_ST("function_apply", nb_function_apply(&bad_ctx_fn, NULL, 1, out, 1, NULL));
    BAD_ST("function_apply", nb_function_apply(&bad_ctx_fn, ins, NB_FUNCTION_MAX_INPUTS + 1, out, 1, NULL));
    BAD_ST("BadCtx", nb_function_apply(&bad_ctx_fn, nulls, 1, out, 1, NULL)); /* NULL input: names the function */
    BAD_ST("BadCtx", nb_function_apply(&bad_ctx_fn, ins, 1, out, 1, (void *)1)); /* marked a non-output */
    BAD_ST("save_for_backward", nb_function_save_for_backward(NULL, ins, 1));
    BAD("saved_tensor", nb_function_saved_tensor(NULL, 0));
    BAD_ST("set_data", nb_function_set_data(NULL, NULL, NULL));
    BAD_ST("mark_non_differentiable", nb_function_mark_non_differentiable(NULL, x));
    ck_assert_int_eq(nb_function_num_saved(NULL), -1);
    ck_assert_ptr_null(nb_function_data(NULL));
    ck_assert(!nb_function_needs_input_grad(NULL, 0));
    /* the context calls inside forward and backward (checked there) */
    ck_assert_int_eq(nb_function_apply(&bad_ctx_fn, ins, 1, out, 1, NULL), NB_OK);
    nb_tensor *s = nb_sum(out[0]);
    ck_assert_int_eq(nb_backward(s), NB_OK);
    nb_tensor *all[] = {s, out[0], loss, y, x};
    for (int i = 0; i < 5; i++) nb_tensor_release(all[i]);
    all_reported();
}
END_TEST

static nb_tensor *gc_square(nb_tensor *const *in, int n, void *ctx) {
    (void)n, (void)ctx;
    return nb_mul(in[0], in[0]);
}

START_TEST(test_gradcheck_h) {
    nb_gradcheck_report rep;
    nb_gradcheck_options o = nb_gradcheck_defaults();
    nb_tensor *x = nb_ones(NB_F64, T(3));
    ck_assert_int_eq(nb_requires_grad_(x, true), NB_OK);
    nb_tensor *xs[1] = {x}, *fs[1] = {f}, *ns[1] = {NULL};
    BAD_ST("gradcheck", nb_gradcheck(NULL, NULL, xs, 1, &o, &rep));
    BAD_ST("gradcheck", nb_gradcheck(gc_square, NULL, NULL, 1, &o, &rep));
    BAD_ST("gradcheck", nb_gradcheck(gc_square, NULL, ns, 1, &o, &rep));
    BAD_ST("gradcheck", nb_gradcheck(gc_square, NULL, xs, NB_GRADCHECK_MAX_INPUTS + 1, &o, &rep));
    BAD_ST("gradcheck", nb_gradcheck(gc_square, NULL, fs, 1, &o, &rep)); /* float32 */
    nb_gradcheck_options neg = o;
    neg.eps = 0;
    BAD_ST("gradcheck", nb_gradcheck(gc_square, NULL, xs, 1, &neg, &rep));
    nb_tensor_release(x);
    all_reported();
}
END_TEST

START_TEST(test_conv_h) {
    nb_conv2d_params p = nb_conv2d_defaults();
    nb_tensor *w4d = nb_ones(NB_F64, T(4, 3, 3, 3)), *w2 = nb_ones(NB_F32, T(4, 2, 3, 3));
    nb_tensor *li = nb_zeros(NB_I64, T(2, 3, 5, 5)), *b5 = nb_ones(NB_F32, T(5));
    nb_tensor *big = nb_ones(NB_F32, T(4, 3, 7, 7));
    BAD("conv2d", nb_conv2d(N, w4, NULL, &p));
    BAD("conv2d", nb_conv2d(img, N, NULL, &p));
    BAD("conv2d", nb_conv2d(f, w4, NULL, &p));     /* rank 2 input */
    BAD("conv2d", nb_conv2d(img, f, NULL, &p));    /* rank 2 weight */
    BAD("conv2d", nb_conv2d(img, w4d, NULL, &p));  /* float32 with float64 */
    BAD("conv2d", nb_conv2d(li, w4, NULL, &p));    /* int64 */
    BAD("conv2d", nb_conv2d(img, w2, NULL, &p));   /* 3 channels vs weight's 2 */
    BAD("conv2d", nb_conv2d(img, w4, b5, &p));     /* bias of 5 for 4 outputs */
    BAD("conv2d", nb_conv2d(img, big, NULL, &p));  /* kernel larger than input */
    /* the fused conv -> max-pool -> relu: the conv's checks, then max_pool2d's */
    nb_pool2d_params pool2 = nb_pool2d_defaults(2);
    BAD("conv2d", nb_conv2d_pool_relu(N, w4, NULL, &p, &pool2, true));
    BAD("conv2d", nb_conv2d_pool_relu(img, N, NULL, &p, &pool2, true));
    BAD("conv2d", nb_conv2d_pool_relu(li, w4, NULL, &p, &pool2, true));
    BAD("conv2d", nb_conv2d_pool_relu(img, w2, NULL, &p, NULL, true));
    BAD("conv2d", nb_conv2d_pool_relu(img, w4, b5, &p, &pool2, false));
    pool2.padding[0] = 2;
    BAD("max_pool2d", nb_conv2d_pool_relu(img, w4, NULL, &p, &pool2, true));
    nb_conv2d_params q = p;
    q.stride[0] = 0;
    BAD("conv2d", nb_conv2d(img, w4, NULL, &q));
    q = p, q.groups = 2;
    BAD("conv2d", nb_conv2d(img, w4, NULL, &q));
    q = p, q.padding[1] = -1;
    BAD("conv2d", nb_conv2d(img, w4, NULL, &q));
    q = p, q.dilation[0] = 0;
    BAD("conv2d", nb_conv2d(img, w4, NULL, &q));
    q = p, q.padding_kind = NB_PADDING_SAME, q.stride[0] = 2;
    BAD("conv2d", nb_conv2d(img, w4, NULL, &q));
    q = p, q.padding_mode = (nb_padding_mode)42, q.padding[0] = 1;
    BAD("conv2d", nb_conv2d(img, w4, NULL, &q));
    int64_t pad2[2] = {1, 1}, pad3[3] = {1, 1, 1}, big_pad[2] = {9, 9};
    BAD("pad", nb_pad(N, pad2, 2, NB_PAD_ZEROS, 0));
    BAD("pad", nb_pad(img, NULL, 2, NB_PAD_ZEROS, 0));
    BAD("pad", nb_pad(img, pad3, 3, NB_PAD_ZEROS, 0));      /* odd length */
    BAD("pad", nb_pad(img, big_pad, 2, NB_PAD_REFLECT, 0)); /* reflect wider than input */
    BAD("pad", nb_pad(img, pad2, 2, (nb_padding_mode)42, 0));
    BAD("pad", nb_pad(li, pad2, 2, NB_PAD_ZEROS, 0));
    int64_t o;
    BAD_ST("conv_output_size", nb_conv_output_size(5, 3, 0, 0, 0, 1, &o));
    BAD_ST("conv_output_size", nb_conv_output_size(5, 7, 1, 0, 0, 1, &o));
    BAD_ST("conv_output_size", nb_conv_output_size(5, 3, 1, 0, 0, 1, NULL));
    BAD_ST("conv_output_size", nb_conv_output_size(5, 0, 1, 0, 0, 1, &o));
    /* conv_transpose2d: weight (in 3, out 4, 3, 3) for img's 3 channels */
    nb_conv_transpose2d_params tp = nb_conv_transpose2d_defaults(), tq;
    nb_tensor *wt = nb_ones(NB_F32, T(3, 4, 3, 3)), *wt0 = nb_ones(NB_F32, T(3, 0, 3, 3));
    BAD("conv_transpose2d", nb_conv_transpose2d(N, wt, NULL, &tp));
    BAD("conv_transpose2d", nb_conv_transpose2d(img, N, NULL, &tp));
    BAD("conv_transpose2d", nb_conv_transpose2d(f, wt, NULL, &tp));      /* rank 2 input */
    BAD("conv_transpose2d", nb_conv_transpose2d(img, f, NULL, &tp));     /* rank 2 weight */
    BAD("conv_transpose2d", nb_conv_transpose2d(img, w4d, NULL, &tp));   /* float32 with float64 */
    BAD("conv_transpose2d", nb_conv_transpose2d(li, wt, NULL, &tp));     /* int64 */
    BAD("conv_transpose2d", nb_conv_transpose2d(img, w4, NULL, &tp));    /* 3 channels vs weight's 4 */
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, b5, &tp));      /* bias of 5 for 4 outputs */
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt0, NULL, &tp));   /* no output channels */
    tq = tp, tq.stride[1] = 0;
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, NULL, &tq));
    tq = tp, tq.groups = 2;
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, NULL, &tq));
    tq = tp, tq.padding[0] = 4;                                           /* output size -1 */
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, NULL, &tq));
    tq = tp, tq.output_padding[0] = 1;                                    /* not below stride or dilation */
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, NULL, &tq));
    tq = tp, tq.output_padding[1] = -1;
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, NULL, &tq));
    tq = tp, tq.dilation[0] = 0;
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, NULL, &tq));
    tq = tp, tq.padding_mode = NB_PAD_REFLECT;
    BAD("conv_transpose2d", nb_conv_transpose2d(img, wt, NULL, &tq));
    BAD_ST("conv_transpose_output_size", nb_conv_transpose_output_size(5, 3, 1, 0, 0, 1, NULL));
    BAD_ST("conv_transpose_output_size", nb_conv_transpose_output_size(0, 3, 1, 0, 0, 1, &o));
    BAD_ST("conv_transpose_output_size", nb_conv_transpose_output_size(5, 3, 2, 0, 2, 1, &o));
    BAD_ST("conv_transpose_output_size", nb_conv_transpose_output_size(1, 3, 1, 3, 0, 1, &o));
    nb_tensor_release(wt);
    nb_tensor_release(wt0);
    nb_tensor *all[5] = {w4d, w2, li, b5, big};
    for (int i = 0; i < 5; i++) nb_tensor_release(all[i]);
    all_reported();
}
END_TEST

START_TEST(test_functional_h) {
    nb_tensor *w = nb_ones(NB_F32, T(4, 3)), *wd = nb_ones(NB_F64, T(4, 3)), *w5 = nb_ones(NB_F32, T(4, 5));
    nb_tensor *b5 = nb_ones(NB_F32, T(5));
    BAD("linear", nb_linear(N, w, NULL));
    BAD("linear", nb_linear(f, N, NULL));
    BAD("linear", nb_linear(f, w5, NULL));   /* 3 features vs 5 */
    BAD("linear", nb_linear(f, wd, NULL));   /* float32 with float64 */
    BAD("linear", nb_linear(l, w, NULL));    /* int64 */
    BAD("linear", nb_linear(f, w, b5));      /* bias of 5 for 4 outputs */
    BAD("linear", nb_linear(f, f1, NULL));   /* weight of rank 1 */
    nb_pool2d_params p = nb_pool2d_defaults(2);
    nb_pool2d_params kz = p, pad = p;
    kz.kernel[0] = 0;
    pad.padding[0] = 2; /* more than half the kernel */
    nb_tensor *limg = nb_zeros(NB_I64, T(1, 1, 4, 4));
    BAD("max_pool2d", nb_max_pool2d(N, &p));
    BAD("max_pool2d", nb_max_pool2d(img, NULL));
    BAD("max_pool2d", nb_max_pool2d(f, &p));     /* rank 2 */
    BAD("max_pool2d", nb_max_pool2d(img, &kz));
    BAD("max_pool2d", nb_max_pool2d(img, &pad));
    BAD("max_pool2d", nb_max_pool2d(limg, &p));
    BAD("avg_pool2d", nb_avg_pool2d(N, &p));
    BAD("avg_pool2d", nb_avg_pool2d(img, NULL));
    BAD("avg_pool2d", nb_avg_pool2d(f1, &p));
    BAD("avg_pool2d", nb_avg_pool2d(img, &kz));
    BAD("avg_pool2d", nb_avg_pool2d(img, &pad));
    BAD("avg_pool2d", nb_avg_pool2d(limg, &p));
    BAD("dropout", nb_dropout(N, 0.5, true, NULL));
    BAD("dropout", nb_dropout(f, 1.5, true, NULL));
    BAD("dropout", nb_dropout(f, NAN, true, NULL));
    BAD("dropout", nb_dropout(l, 0.5, true, NULL));
    nb_tensor *rm = nb_zeros(NB_F32, T(3)), *rv = nb_ones(NB_F32, T(3)), *r4 = nb_zeros(NB_F32, T(4));
    nb_tensor *rmd = nb_zeros(NB_F64, T(3));
    BAD("batch_norm", nb_batch_norm(N, rm, rv, NULL, NULL, true, 0.1, 1e-5));
    BAD("batch_norm", nb_batch_norm(img, r4, rv, NULL, NULL, true, 0.1, 1e-5)); /* 4 stats for 3 channels */
    BAD("batch_norm", nb_batch_norm(img, rm, rv, r4, NULL, true, 0.1, 1e-5));  /* weight of 4 */
    BAD("batch_norm", nb_batch_norm(img, rmd, rv, NULL, NULL, true, 0.1, 1e-5)); /* float64 stats */
    BAD("batch_norm", nb_batch_norm(f1, rm, rv, NULL, NULL, true, 0.1, 1e-5));  /* rank 1 */
    BAD("batch_norm", nb_batch_norm(img, NULL, NULL, NULL, NULL, false, 0.1, 1e-5)); /* eval without stats */
    BAD("batch_norm", nb_batch_norm(limg, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    BAD("batch_norm", nb_batch_norm(img, rm, rv, NULL, NULL, true, 0.1, -1.0));
    int64_t tv[2] = {0, 7};
    nb_tensor *tgt = nb_from_data(NB_I64, T(2), tv), *tgt3 = nb_zeros(NB_I64, T(3)), *tgtf = nb_zeros(NB_F32, T(2));
    BAD("cross_entropy", nb_cross_entropy(N, tgt, NB_REDUCTION_MEAN));
    BAD("cross_entropy", nb_cross_entropy(f, N, NB_REDUCTION_MEAN));
    BAD("cross_entropy", nb_cross_entropy(f, tgt, NB_REDUCTION_MEAN));  /* class 7 of 3 */
    BAD("cross_entropy", nb_cross_entropy(f, tgt3, NB_REDUCTION_MEAN)); /* batch 3 vs 2 */
    BAD("cross_entropy", nb_cross_entropy(f, tgtf, NB_REDUCTION_MEAN)); /* float target */
    BAD("cross_entropy", nb_cross_entropy(l, tgt, NB_REDUCTION_MEAN));
    BAD("cross_entropy", nb_cross_entropy(f, tgt3, (nb_reduction)9));
    BAD("nll_loss", nb_nll_loss(N, tgt, NB_REDUCTION_MEAN));
    BAD("nll_loss", nb_nll_loss(f, tgt, NB_REDUCTION_SUM));
    BAD("nll_loss", nb_nll_loss(f, tgt3, NB_REDUCTION_NONE));
    BAD("nll_loss", nb_nll_loss(f, tgtf, NB_REDUCTION_MEAN));
    BAD("nll_loss", nb_nll_loss(l, tgt, NB_REDUCTION_MEAN));
    BAD("mse_loss", nb_mse_loss(N, f, NB_REDUCTION_MEAN));
    BAD("mse_loss", nb_mse_loss(f, N, NB_REDUCTION_MEAN));
    BAD("mse_loss", nb_mse_loss(f, d, NB_REDUCTION_MEAN));
    BAD("mse_loss", nb_mse_loss(l, l, NB_REDUCTION_MEAN));
    BAD("mse_loss", nb_mse_loss(f, w, NB_REDUCTION_MEAN)); /* (2, 3) vs (4, 3) */
    BAD("mse_loss", nb_mse_loss(f, f, (nb_reduction)9));
    BAD("leaky_relu", nb_leaky_relu(N, 0.1));
    BAD("leaky_relu", nb_leaky_relu(l, 0.1));
    nb_tensor *all[13] = {w, wd, w5, b5, limg, rm, rv, r4, rmd, tgt, tgt3, tgtf, NULL};
    for (int i = 0; i < 12; i++) nb_tensor_release(all[i]);
    all_reported();
}
END_TEST

/* functional.h, the layers of issue 13 (tests/test_layers.c pins their messages) */
START_TEST(test_functional_h_layers) {
    nb_pool2d_params p = nb_pool2d_defaults(2), kz = nb_pool2d_defaults(0);
    nb_tensor *limg = nb_zeros(NB_I64, T(1, 1, 4, 4)), *idx = NULL;
    BAD("max_pool2d", nb_max_pool2d_with_indices(N, &p, &idx));
    ck_assert_ptr_null(idx);
    BAD("max_pool2d", nb_max_pool2d_with_indices(img, &kz, &idx));
    BAD("max_pool2d", nb_max_pool2d_with_indices(limg, &p, NULL));
    nb_pool2d_params dz = p;
    dz.divisor_override = 3;
    BAD("avg_pool2d", nb_avg_pool2d(limg, &dz));
    BAD("adaptive_avg_pool2d", nb_adaptive_avg_pool2d(N, 2, 2));
    BAD("adaptive_avg_pool2d", nb_adaptive_avg_pool2d(f, 2, 2));        /* rank 2 */
    BAD("adaptive_avg_pool2d", nb_adaptive_avg_pool2d(img, -2, 2));
    BAD("adaptive_avg_pool2d", nb_adaptive_avg_pool2d(limg, 2, 2));
    BAD("adaptive_avg_pool2d", nb_adaptive_avg_pool2d(img, INT64_MAX, 2)); /* too large */
    BAD("adaptive_max_pool2d", nb_adaptive_max_pool2d(N, 2, 2, &idx));
    ck_assert_ptr_null(idx);
    BAD("adaptive_max_pool2d", nb_adaptive_max_pool2d(f1, 2, 2, NULL));
    BAD("adaptive_max_pool2d", nb_adaptive_max_pool2d(img, 2, -5, NULL));
    BAD("adaptive_max_pool2d", nb_adaptive_max_pool2d(limg, 2, 2, NULL));
    nb_tensor *x = nb_ones(NB_F32, T(2, 3, 2, 2)), *ix = nb_zeros(NB_I64, T(2, 3, 2, 2));
    nb_tensor *ix9 = nb_full(NB_I64, T(2, 3, 2, 2), 99);
    BAD("max_unpool2d", nb_max_unpool2d(N, ix, &p, NULL, 0));
    BAD("max_unpool2d", nb_max_unpool2d(x, N, &p, NULL, 0));
    BAD("max_unpool2d", nb_max_unpool2d(x, ix, NULL, NULL, 0));
    BAD("max_unpool2d", nb_max_unpool2d(x, ix, &kz, NULL, 0));
    BAD("max_unpool2d", nb_max_unpool2d(x, img, &p, NULL, 0));          /* float indices */
    BAD("max_unpool2d", nb_max_unpool2d(x, l, &p, NULL, 0));            /* shapes differ */
    BAD("max_unpool2d", nb_max_unpool2d(x, ix9, &p, NULL, 0));          /* index outside the output */
    BAD("max_unpool2d", nb_max_unpool2d(x, ix, &p, (int64_t[]){9, 9}, 2));
    BAD("max_unpool2d", nb_max_unpool2d(x, ix, &p, (int64_t[]){4, 4, 4}, 3));
    BAD("max_unpool2d", nb_max_unpool2d(f, l, &p, NULL, 0));            /* rank 2 */
    BAD("max_unpool2d", nb_max_unpool2d(limg, limg, &p, NULL, 0));
    BAD("dropout2d", nb_dropout2d(N, 0.5, true, NULL));
    BAD("dropout2d", nb_dropout2d(img, 1.5, true, NULL));
    BAD("dropout2d", nb_dropout2d(l, 0.5, true, NULL));
    BAD("dropout2d", nb_dropout2d(f1, 0.5, true, NULL));                /* rank 1 while dropping */
    nb_tensor *w3 = nb_ones(NB_F32, T(3)), *w5 = nb_ones(NB_F32, T(5)), *w3d = nb_ones(NB_F64, T(3));
    BAD("group_norm", nb_group_norm(N, 1, NULL, NULL, 1e-5));
    BAD("group_norm", nb_group_norm(f1, 1, NULL, NULL, 1e-5));           /* rank 1 */
    BAD("group_norm", nb_group_norm(img, 0, NULL, NULL, 1e-5));
    BAD("group_norm", nb_group_norm(img, 2, NULL, NULL, 1e-5));          /* 3 channels in 2 groups */
    BAD("group_norm", nb_group_norm(img, 3, w5, NULL, 1e-5));
    BAD("group_norm", nb_group_norm(img, 3, NULL, w5, 1e-5));
    BAD("group_norm", nb_group_norm(img, 3, w3d, NULL, 1e-5));           /* float64 weight */
    BAD("group_norm", nb_group_norm(img, 3, NULL, NULL, -1.0));
    BAD("group_norm", nb_group_norm(limg, 1, NULL, NULL, 1e-5));
    BAD("layer_norm", nb_layer_norm(N, T(3), NULL, NULL, 1e-5));
    BAD("layer_norm", nb_layer_norm(f, T(4), NULL, NULL, 1e-5));         /* (2, 3) is not [*, 4] */
    BAD("layer_norm", nb_layer_norm(f, 0, NULL, NULL, NULL, 1e-5));
    BAD("layer_norm", nb_layer_norm(f, 1, NULL, NULL, NULL, 1e-5));
    BAD("layer_norm", nb_layer_norm(f, T(3), w5, NULL, 1e-5));
    BAD("layer_norm", nb_layer_norm(f, T(3), NULL, w5, 1e-5));
    BAD("layer_norm", nb_layer_norm(f, T(3), w3d, NULL, 1e-5));
    BAD("layer_norm", nb_layer_norm(f, T(3), NULL, NULL, NAN));
    BAD("layer_norm", nb_layer_norm(l, T(3), NULL, NULL, 1e-5));
    nb_interpolate_params ip = {.scale_factor = {2, 2}}, both = {.size = {4, 4}, .scale_factor = {2, 2}};
    nb_interpolate_params none = {.mode = NB_INTERPOLATE_BILINEAR}, zero = {.size = {0, 4}};
    nb_interpolate_params bad_mode = {.size = {4, 4}, .mode = (nb_interpolate_mode)9};
    nb_interpolate_params nan_scale = {.scale_factor = {NAN, 2}};
    BAD("interpolate", nb_interpolate(N, &ip));
    BAD("interpolate", nb_interpolate(img, NULL));
    BAD("interpolate", nb_interpolate(img, &both));
    BAD("interpolate", nb_interpolate(img, &none));
    BAD("interpolate", nb_interpolate(img, &zero));
    BAD("interpolate", nb_interpolate(img, &bad_mode));
    BAD("interpolate", nb_interpolate(img, &nan_scale));
    BAD("interpolate", nb_interpolate(f, &ip));                          /* rank 2 */
    BAD("interpolate", nb_interpolate(limg, &ip));
    nb_tensor *ids = nb_zeros(NB_I64, T(2, 2)), *bad_ids = nb_full(NB_I64, T(2), 5);
    BAD("embedding", nb_embedding(N, f, NB_NO_PADDING_IDX, false));
    BAD("embedding", nb_embedding(ids, N, NB_NO_PADDING_IDX, false));
    BAD("embedding", nb_embedding(f, f, NB_NO_PADDING_IDX, false));     /* float indices */
    BAD("embedding", nb_embedding(ids, f1, NB_NO_PADDING_IDX, false));  /* 1-d weight */
    BAD("embedding", nb_embedding(ids, l, NB_NO_PADDING_IDX, false));   /* int64 weight */
    BAD("embedding", nb_embedding(bad_ids, f, NB_NO_PADDING_IDX, false)); /* index 5 of 2 rows */
    BAD("embedding", nb_embedding(ids, f, 2, false));                   /* padding_idx of 2 rows */
    BAD("embedding", nb_embedding(ids, f, -3, false));
    nb_tensor *all[10] = {limg, x, ix, ix9, w3, w5, w3d, ids, bad_ids, NULL};
    for (int i = 0; i < 9; i++) nb_tensor_release(all[i]);
    all_reported();
}
END_TEST

/* The losses and activations of functional.h, nb_softmax (ops.h) and their modules (nn.h). */
START_TEST(test_losses_activations_h) {
    nb_tensor *t2 = nb_zeros(NB_I64, T(2)), *w3 = nb_ones(NB_F32, T(3)), *w4 = nb_ones(NB_F32, T(4));
    nb_tensor *wd = nb_ones(NB_F64, T(3)), *wg = nb_ones(NB_F32, T(3)), *half = nb_full(NB_F32, T(2, 3), 0.5);
    ck_assert_int_eq(nb_requires_grad_(wg, true), NB_OK);
    nb_class_loss_options o = nb_class_loss_defaults(), bad = o;
    const char *cls[2] = {"cross_entropy", "nll_loss"};
    for (int k = 0; k < 2; k++) {
        nb_tensor *(*fn)(const nb_tensor *, const nb_tensor *, const nb_class_loss_options *) =
            k ? nb_nll_loss_ex : nb_cross_entropy_ex;
        BAD(cls[k], fn(N, t2, &o));
        BAD(cls[k], fn(f, N, &o));
        BAD(cls[k], fn(l, t2, &o));                       /* int64 input */
        BAD(cls[k], fn(f, d, &o));                        /* float64 target: probabilities of another dtype / not int64 */
        bad = o, bad.reduction = (nb_reduction)9;
        BAD(cls[k], fn(f, t2, &bad));
        bad = o, bad.label_smoothing = 1.5;
        BAD(cls[k], fn(f, t2, &bad));
        bad = o, bad.weight = w4;                         /* 4 weights for 3 classes */
        BAD(cls[k], fn(f, t2, &bad));
        bad = o, bad.weight = wd;                         /* float64 weight, float32 input */
        BAD(cls[k], fn(f, t2, &bad));
        bad = o, bad.weight = wg;                         /* requires grad, class indices */
        BAD(cls[k], fn(f, t2, &bad));
        bad = o, bad.ignore_index = 5;
        BAD(cls[k], fn(f, f1, &bad));                     /* a float target, not the input's shape */
    }
    bad = o, bad.ignore_index = 0;
    BAD("cross_entropy", nb_cross_entropy_ex(f, half, &bad)); /* probabilities with ignore_index >= 0 */
    BAD("cross_entropy", nb_cross_entropy_ex(f, l, &o));       /* int64 target of the input's shape */
    nb_tensor *t3 = nb_from_data(NB_I64, T(2), (int64_t[]){0, 3});
    BAD("nll_loss", nb_nll_loss_ex(f, t3, &o)); /* target 3 of 3 classes */
    nb_tensor_release(t3);
    nb_tensor_release(nb_nll_loss_ex(f, t2, NULL)); /* NULL options: the defaults */

    const char *reg[3] = {"l1_loss", "smooth_l1_loss", "huber_loss"};
    for (int k = 0; k < 3; k++) {
#define REG(x, t, r) (k == 0 ? nb_l1_loss(x, t, r) : k == 1 ? nb_smooth_l1_loss(x, t, r, 1.0) : nb_huber_loss(x, t, r, 1.0))
        BAD(reg[k], REG(N, f, NB_REDUCTION_MEAN));
        BAD(reg[k], REG(f, N, NB_REDUCTION_MEAN));
        BAD(reg[k], REG(f, d, NB_REDUCTION_MEAN));        /* float32 with float64 */
        BAD(reg[k], REG(l, l, NB_REDUCTION_MEAN));
        BAD(reg[k], REG(f, w4, NB_REDUCTION_SUM));        /* (2, 3) and (4) do not broadcast */
        BAD(reg[k], REG(f, f, (nb_reduction)-1));
#undef REG
    }
    BAD("smooth_l1_loss", nb_smooth_l1_loss(f, f, NB_REDUCTION_MEAN, -0.5));
    BAD("huber_loss", nb_huber_loss(f, f, NB_REDUCTION_MEAN, 0.0));
    BAD("huber_loss", nb_huber_loss(f, f, NB_REDUCTION_MEAN, NAN));

    BAD("binary_cross_entropy", nb_binary_cross_entropy(N, half, NULL, NB_REDUCTION_MEAN));
    BAD("binary_cross_entropy", nb_binary_cross_entropy(half, N, NULL, NB_REDUCTION_MEAN));
    BAD("binary_cross_entropy", nb_binary_cross_entropy(half, f1, NULL, NB_REDUCTION_MEAN)); /* sizes differ */
    nb_tensor *two = nb_full(NB_F32, T(2, 3), 2.0);
    BAD("binary_cross_entropy", nb_binary_cross_entropy(two, half, NULL, NB_REDUCTION_MEAN)); /* not a probability */
    nb_tensor_release(two);
    BAD("binary_cross_entropy", nb_binary_cross_entropy(half, d, NULL, NB_REDUCTION_MEAN));
    BAD("binary_cross_entropy", nb_binary_cross_entropy(half, half, w4, NB_REDUCTION_MEAN)); /* weight (4) */
    BAD("binary_cross_entropy", nb_binary_cross_entropy(half, half, wd, NB_REDUCTION_MEAN));
    BAD("binary_cross_entropy", nb_binary_cross_entropy(half, half, wg, NB_REDUCTION_MEAN));
    BAD("binary_cross_entropy", nb_binary_cross_entropy(half, half, NULL, (nb_reduction)5));
    BAD("binary_cross_entropy", nb_binary_cross_entropy(l, l, NULL, NB_REDUCTION_MEAN));
    const char *bl = "binary_cross_entropy_with_logits";
    BAD(bl, nb_binary_cross_entropy_with_logits(N, f, NULL, NULL, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, N, NULL, NULL, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, f1, NULL, NULL, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, d, NULL, NULL, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, f, w4, NULL, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, f, NULL, w4, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, f, NULL, wd, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, f, wg, NULL, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f, f, NULL, wg, NB_REDUCTION_MEAN));
    BAD(bl, nb_binary_cross_entropy_with_logits(f1, f1, NULL, f, NB_REDUCTION_MEAN)); /* pos_weight beyond the input */
    BAD(bl, nb_binary_cross_entropy_with_logits(f, f, NULL, NULL, (nb_reduction)3));
    BAD(bl, nb_binary_cross_entropy_with_logits(l, l, NULL, NULL, NB_REDUCTION_MEAN));

    BAD("gelu", nb_gelu(N, NB_GELU_NONE));
    BAD("gelu", nb_gelu(l, NB_GELU_TANH));
    BAD("gelu", nb_gelu(f, (nb_gelu_approximate)7));
    BAD("silu", nb_silu(N));
    BAD("silu", nb_silu(l));
    BAD("elu", nb_elu(N, 1.0));
    BAD("elu", nb_elu(l, 1.0));
    BAD("elu", nb_elu(f, NAN));
    BAD("softplus", nb_softplus(N, 1, 20));
    BAD("softplus", nb_softplus(l, 1, 20));
    BAD("softplus", nb_softplus(f, INFINITY, 20));
    BAD("softplus", nb_softplus(f, 1, NAN));
    BAD("hardswish", nb_hardswish(N));
    BAD("hardswish", nb_hardswish(l));
    BAD("softmax", nb_softmax(N, 0));
    BAD("softmax", nb_softmax(f, 2));
    BAD("softmax", nb_softmax(f, -3));
    BAD("softmax", nb_softmax(l, 0));
    BAD("GELU", nb_gelu_module((nb_gelu_approximate)-1));
    BAD("ELU", nb_elu_module(-INFINITY));
    BAD("Softplus", nb_softplus_module(NAN, 20));
    BAD("Softplus", nb_softplus_module(1, INFINITY));
    nb_module *sm = nb_softmax_module(5), *ge = nb_gelu_module(NB_GELU_NONE);
    BAD("softmax", nb_module_forward(sm, f)); /* dim 5 of a 2-d input */
    BAD("gelu", nb_module_forward(ge, l));
    nb_module_free(sm);
    nb_module_free(ge);
    nb_tensor *all[6] = {t2, w3, w4, wd, wg, half};
    for (int i = 0; i < 6; i++) nb_tensor_release(all[i]);
    all_reported();
}
END_TEST

static int visit_nop(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)name, (void)t, (void)is_param, (void)ctx;
    return 0;
}

START_TEST(test_nn_h) {
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_module *lin = nb_linear_module(3, 4, true, &rng);
    nb_module *relu = nb_relu_module();
    ck_assert(lin && relu);
    BAD_ST("add_child", nb_module_add_child(NULL, "a", NULL));
    BAD_ST("add_child", nb_module_add_child(lin, "a", NULL));
    BAD_ST("add_child", nb_module_add_child(lin, "bias", nb_relu_module())); /* name taken by a parameter */
    BAD_ST("add_child", nb_module_add_child(lin, NULL, nb_relu_module()));
    BAD_ST("add_child", nb_module_add_child(lin, "a.b", nb_relu_module()));
    BAD_ST("register_parameter", nb_module_register_parameter(NULL, "p", f));
    BAD_ST("register_parameter", nb_module_register_parameter(relu, "p", NULL));
    BAD_ST("register_parameter", nb_module_register_parameter(relu, NULL, f));
    BAD_ST("register_parameter", nb_module_register_parameter(lin, "weight", f)); /* taken */
    BAD_ST("register_parameter", nb_module_register_parameter(relu, "p", l));     /* int64 parameter */
    BAD_ST("register_buffer", nb_module_register_buffer(NULL, "b", f));
    BAD_ST("register_buffer", nb_module_register_buffer(relu, "b", NULL));
    BAD_ST("register_buffer", nb_module_register_buffer(lin, "bias", f));
    BAD("module_forward", nb_module_forward(NULL, f));
    BAD("Linear.forward", nb_module_forward(lin, N));
    BAD("linear", nb_module_forward(lin, d));    /* float64 input, float32 weights */
    BAD("module_child", nb_module_call(lin, "nope", f)); /* delegates to module_child */
    BAD("module_child", nb_module_child(NULL, "x"));
    BAD("module_child", nb_module_child(lin, "x"));
    BAD("module_child_at", nb_module_child_at(lin, 0, NULL));
    BAD("module_child_at", nb_module_child_at(NULL, 0, NULL));
    BAD("module_param", nb_module_param(lin, "nope"));
    BAD("module_param", nb_module_param(NULL, "weight"));
    BAD("module_state", nb_module_state(lin, "nope"));
    BAD("module_state", nb_module_state(NULL, "weight"));
    nb_tensor *ps[1];
    BAD_VAL("module_parameters", nb_module_parameters(NULL, ps, 1), -1);
    BAD_VAL("module_parameters", nb_module_parameters(lin, NULL, 2), -1);
    BAD("module_parameter_list", nb_module_parameter_list(NULL).params);
    BAD_ST("module_to_dtype", nb_module_to_dtype(NULL, NB_F64));
    BAD_ST("module_to_dtype", nb_module_to_dtype(lin, NB_I64));
    BAD_ST("module_to_dtype", nb_module_to_dtype(lin, (nb_dtype)9));
    nb_tensor *leafp = nb_ones(NB_F32, T(2));
    ck_assert_int_eq(nb_requires_grad_(leafp, true), NB_OK);
    nb_tensor *hist = nb_mul_scalar(leafp, 2.0); /* a buffer with a history cannot be converted in place */
    nb_module *hb = nb_module_new("HasHistory", NULL, NULL, NULL);
    ck_assert_int_eq(nb_module_register_buffer(hb, "h", hist), NB_OK);
    BAD_ST("module_to_dtype", nb_module_to_dtype(hb, NB_F64));
    nb_module_free(hb);
    nb_tensor_release(hist);
    nb_tensor_release(leafp);
    BAD_ST("module_visit_state", nb_module_visit_state(NULL, visit_nop, NULL));
    BAD_ST("module_visit_state", nb_module_visit_state(lin, NULL, NULL));
    BAD_ST("module_visit_parameters", nb_module_visit_parameters(NULL, visit_nop, NULL));
    BAD_ST("module_visit_parameters", nb_module_visit_parameters(lin, NULL, NULL));
    nb_tensor *w43 = nb_ones(NB_F32, T(4, 3));
    BAD_ST("module_state", nb_module_load_tensor(NULL, "weight", w43)); /* looks the name up with module_state */
    BAD_ST("module_state", nb_module_load_tensor(lin, "nope", w43));
    BAD_ST("load_tensor", nb_module_load_tensor(lin, "weight", f));   /* (2, 3) vs (4, 3) */
    BAD_ST("load_tensor", nb_module_load_tensor(lin, "weight", N));
    BAD_ST("load_tensor", nb_module_load_tensor(lin, "weight", l));   /* int64 */
    BAD("Sequential", nb_sequential_module(NULL, 2));
    BAD("Sequential", nb_sequential_module(NULL, -1));
    nb_module *const with_null[2] = {nb_relu_module(), NULL};
    BAD("Sequential", nb_sequential_module(with_null, 2));
    BAD_ST("sequential_append", nb_sequential_append(relu, nb_relu_module()));
    BAD_ST("add_child", nb_sequential_append(NULL, nb_relu_module())); /* delegates to add_child */
    BAD("Linear", nb_linear_module(-2, 4, true, &rng));
    BAD("Linear", nb_linear_module(3, -1, true, &rng));
    nb_conv2d_params cp = nb_conv2d_defaults();
    BAD("Conv2d", nb_conv2d_module(0, 4, 3, 3, &cp, true, &rng));
    BAD("Conv2d", nb_conv2d_module(3, 4, 0, 3, &cp, true, &rng));
    nb_conv2d_params g2 = cp;
    g2.groups = 2;
    BAD("Conv2d", nb_conv2d_module(3, 4, 3, 3, &g2, true, &rng));
    nb_conv_transpose2d_params ctp = nb_conv_transpose2d_defaults(), ctq = ctp;
    BAD("ConvTranspose2d", nb_conv_transpose2d_module(0, 4, 3, 3, &ctp, true, &rng));
    BAD("ConvTranspose2d", nb_conv_transpose2d_module(3, 4, 3, 0, &ctp, true, &rng));
    ctq.groups = 2;
    BAD("ConvTranspose2d", nb_conv_transpose2d_module(3, 4, 3, 3, &ctq, true, &rng));
    ctq = ctp, ctq.padding_mode = NB_PAD_REPLICATE;
    BAD("ConvTranspose2d", nb_conv_transpose2d_module(3, 4, 3, 3, &ctq, true, &rng));
    ctq = ctp, ctq.dilation[1] = -1;
    BAD("ConvTranspose2d", nb_conv_transpose2d_module(3, 4, 3, 3, &ctq, true, &rng));
    BAD("conv_transpose2d_module_forward", nb_conv_transpose2d_module_forward(NULL, img, NULL, 0));
    BAD("conv_transpose2d_module_forward", nb_conv_transpose2d_module_forward(lin, img, NULL, 0)); /* not one */
    nb_module *convt = nb_conv_transpose2d_module(3, 4, 3, 3, &ctp, true, &rng);
    BAD("ConvTranspose2d", nb_conv_transpose2d_module_forward(convt, img, (int64_t[]){9, 9}, 2));      /* valid: 7 only */
    BAD("ConvTranspose2d", nb_conv_transpose2d_module_forward(convt, img, (int64_t[]){4, 7, 7}, 3));   /* 3 elements, 4-d input */
    BAD("conv_transpose2d", nb_conv_transpose2d_module_forward(convt, f, (int64_t[]){7, 7}, 2));       /* rank 2 input */
    nb_module_free(convt);
    BAD("BatchNorm2d", nb_batch_norm2d_module(0, 1e-5, 0.1, true, true));
    BAD("BatchNorm2d", nb_batch_norm2d_module(3, -1, 0.1, true, true));
    BAD("MaxPool2d", nb_max_pool2d_module(NULL));
    nb_pool2d_params kz = nb_pool2d_defaults(0);
    BAD("MaxPool2d", nb_max_pool2d_module(&kz));
    BAD("AvgPool2d", nb_avg_pool2d_module(NULL));
    BAD("AvgPool2d", nb_avg_pool2d_module(&kz));
    BAD("Dropout", nb_dropout_module(-0.5, NULL));
    BAD("Dropout2d", nb_dropout2d_module(1.5, NULL));
    BAD("BatchNorm1d", nb_batch_norm1d_module(0, 1e-5, 0.1, true, true));
    BAD("BatchNorm1d", nb_batch_norm1d_module(3, NAN, 0.1, true, true));
    BAD("BatchNorm1d", nb_batch_norm1d_module(3, 1e-5, 2.0, true, true));
    BAD("GroupNorm", nb_group_norm_module(0, 4, 1e-5, true));
    BAD("GroupNorm", nb_group_norm_module(3, 4, 1e-5, true));
    BAD("GroupNorm", nb_group_norm_module(2, 4, -1, true));
    BAD("LayerNorm", nb_layer_norm_module(0, NULL, 1e-5, true));
    BAD("LayerNorm", nb_layer_norm_module(T(-2), 1e-5, true));
    BAD("LayerNorm", nb_layer_norm_module(T(3), -1, true));
    BAD("AdaptiveAvgPool2d", nb_adaptive_avg_pool2d_module(-3, 1));
    BAD("AdaptiveMaxPool2d", nb_adaptive_max_pool2d_module(1, -3));
    BAD("MaxUnpool2d", nb_max_unpool2d_module(NULL));
    BAD("MaxUnpool2d", nb_max_unpool2d_module(&kz));
    nb_interpolate_params ub = {.size = {2, 2}, .align_corners = true};
    BAD("Upsample", nb_upsample_module(NULL));
    BAD("Upsample", nb_upsample_module(&ub));
    BAD("Embedding", nb_embedding_module(-1, 3, NB_NO_PADDING_IDX, false, &rng));
    BAD("Embedding", nb_embedding_module(4, 3, 4, false, &rng));
    BAD("max_unpool2d_module_forward", nb_max_unpool2d_module_forward(NULL, f, l, NULL, 0));
    BAD("max_unpool2d_module_forward", nb_max_unpool2d_module_forward(lin, f, l, NULL, 0)); /* not a MaxUnpool2d */
    nb_pool2d_params p2 = nb_pool2d_defaults(2);
    nb_module *unpool = nb_max_unpool2d_module(&p2);
    BAD("MaxUnpool2d.forward", nb_module_forward(unpool, img));          /* needs the indices */
    BAD("max_unpool2d", nb_max_unpool2d_module_forward(unpool, img, f, NULL, 0));
    nb_module_free(unpool);
    /* dims are only known at forward time: the forward names the op */
    nb_module *fl = nb_flatten_module(0, 5), *ls = nb_log_softmax_module(4);
    BAD("flatten", nb_module_forward(fl, f));
    BAD("log_softmax", nb_module_forward(ls, f));
    nb_module_free(fl);
    nb_module_free(ls);
    nb_tensor_release(w43);
    nb_module_free(lin);
    nb_module_free(relu);
    all_reported();
}
END_TEST

START_TEST(test_optim_h) {
    nb_tensor *p = nb_ones(NB_F32, T(3));
    ck_assert_int_eq(nb_requires_grad_(p, true), NB_OK);
    nb_tensor *ps[1] = {p}, *ls[1] = {l}, *ns[1] = {NULL}, *dup[2] = {p, p};
    nb_sgd_options so = nb_sgd_defaults(); /* lr unset */
    BAD("SGD", nb_sgd(ps, 1, &so));
    so.lr = 0.1;
    BAD("SGD", nb_sgd(NULL, 1, &so));
    BAD("SGD", nb_sgd(ps, 0, &so));
    BAD("SGD", nb_sgd(ls, 1, &so));
    BAD("SGD", nb_sgd(ns, 1, &so));
    BAD("SGD", nb_sgd(dup, 2, &so));
    BAD("SGD", nb_sgd(ps, 1, NULL));
    nb_sgd_options sn = so;
    sn.nesterov = true; /* needs momentum */
    BAD("SGD", nb_sgd(ps, 1, &sn));
    sn = so, sn.momentum = -1;
    BAD("SGD", nb_sgd(ps, 1, &sn));
    nb_adam_options ao = nb_adam_defaults();
    ao.beta1 = 1.0;
    BAD("Adam", nb_adam(ps, 1, &ao));
    ao = nb_adam_defaults(), ao.lr = -1;
    BAD("Adam", nb_adam(ps, 1, &ao));
    BAD("Adam", nb_adam(ls, 1, &ao));
    nb_adam_options aw = nb_adamw_defaults();
    aw.eps = -1;
    BAD("AdamW", nb_adamw(ps, 1, &aw));
    BAD("AdamW", nb_adamw(NULL, 1, &aw));
    nb_adadelta_options ad = nb_adadelta_defaults();
    ad.rho = 1.5;
    BAD("Adadelta", nb_adadelta(ps, 1, &ad));
    BAD("Adadelta", nb_adadelta(NULL, 1, &ad));
    nb_rmsprop_options rp = nb_rmsprop_defaults();
    rp.alpha = -0.1;
    BAD("RMSprop", nb_rmsprop(ps, 1, &rp));
    BAD("RMSprop", nb_rmsprop(ls, 1, &rp));
    BAD_ST("optimizer_step", nb_optimizer_step(NULL));
    so = nb_sgd_defaults(), so.lr = 0.1;
    nb_optimizer *opt = nb_sgd(ps, 1, &so);
    ck_assert_ptr_nonnull(opt);
    BAD("optimizer_param", nb_optimizer_param(opt, 1));
    BAD("optimizer_param", nb_optimizer_param(NULL, 0));
    BAD_ST("SGD: Invalid learning rate", nb_optimizer_set_lr(opt, -1)); /* PyTorch's wording */
    BAD_ST("SGD: Invalid learning rate", nb_optimizer_set_lr(opt, NAN));
    BAD_ST("optimizer_set_lr", nb_optimizer_set_lr(NULL, 0.1));
    char name[64];
    ck_assert_int_eq(nb_optimizer_state_count(NULL), -1); /* documented sentinel */
    BAD("optimizer_state_entry", nb_optimizer_state_entry(opt, 99, name, sizeof name));
    BAD("optimizer_state_entry", nb_optimizer_state_entry(NULL, 0, name, sizeof name));
    BAD_ST("load_state", nb_optimizer_load_state(opt, "nope", f1));
    BAD_ST("load_state", nb_optimizer_load_state(opt, NULL, f1));
    BAD_ST("load_state", nb_optimizer_load_state(NULL, "0.step", f1));
    BAD("StepLR", nb_step_lr(NULL, 1, 0.1));
    BAD("StepLR", nb_step_lr(opt, 0, 0.1));
    BAD("CosineAnnealingLR", nb_cosine_annealing_lr(NULL, 10, 0));
    BAD("CosineAnnealingLR", nb_cosine_annealing_lr(opt, 0, 0));
    BAD_ST("lr_scheduler_step", nb_lr_scheduler_step(NULL));
    BAD_ST("lr_scheduler_load_state", nb_lr_scheduler_load_state(NULL, 1, 0.1));
    nb_lr_scheduler *s = nb_step_lr(opt, 2, 0.5);
    ck_assert_ptr_nonnull(s);
    BAD_ST("load_state", nb_lr_scheduler_load_state(s, -5, 0.1));
    BAD_ST("load_state", nb_lr_scheduler_load_state(s, 1, -0.1));
    BAD_ST("lr_scheduler_step_metric", nb_lr_scheduler_step_metric(NULL, 1.0));
    BAD_ST("StepLR", nb_lr_scheduler_step_metric(s, 1.0)); /* not a ReduceLROnPlateau */
    BAD_VAL("lr_scheduler_group_last_lr", isnan(nb_lr_scheduler_group_last_lr(NULL, 0)), true);
    BAD_VAL("lr_scheduler_group_last_lr", isnan(nb_lr_scheduler_group_last_lr(s, 1)), true);
    BAD("lr_scheduler_state_entry", nb_lr_scheduler_state_entry(NULL, 0, name, sizeof name));
    BAD("lr_scheduler_state_entry", nb_lr_scheduler_state_entry(s, 99, name, sizeof name));
    BAD_ST("lr_scheduler_load_state_entry", nb_lr_scheduler_load_state_entry(NULL, "last_epoch", f1));
    BAD_ST("lr_scheduler_load_state_entry", nb_lr_scheduler_load_state_entry(s, NULL, f1));
    BAD_ST("lr_scheduler_load_state_entry", nb_lr_scheduler_load_state_entry(s, "last_epoch", NULL));
    BAD_ST("StepLR: load_state", nb_lr_scheduler_load_state_entry(s, "gamma", f1));
    BAD_ST("StepLR: load_state", nb_lr_scheduler_load_state_entry(s, "last_epoch", f1)); /* 3 values for 1 */
    nb_lr_scheduler_free(s);
    BAD("MultiStepLR", nb_multi_step_lr(NULL, (int64_t[]){2}, 1, 0.1));
    BAD("MultiStepLR", nb_multi_step_lr(opt, NULL, 2, 0.1));
    BAD("ExponentialLR", nb_exponential_lr(NULL, 0.5));
    BAD("ConstantLR", nb_constant_lr(NULL, 0.5, 5));
    BAD("ConstantLR", nb_constant_lr(opt, 1.5, 5));
    BAD("LinearLR", nb_linear_lr(NULL, 0.5, 1, 5));
    BAD("LinearLR", nb_linear_lr(opt, 2, 1, 5));
    BAD("OneCycleLR", nb_one_cycle_lr(NULL, 1, 10, NULL));
    BAD("OneCycleLR", nb_one_cycle_lr(opt, 1, 0, NULL));
    BAD("SequentialLR", nb_sequential_lr(NULL, (nb_lr_scheduler *[]){nb_step_lr(opt, 1, 0.1)}, 1, NULL, 0));
    BAD("SequentialLR", nb_sequential_lr(opt, NULL, 0, NULL, 0));
    BAD("SequentialLR", nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_step_lr(opt, 1, 0.1)}, 1, (int64_t[]){1}, 1));
    BAD("ReduceLROnPlateau", nb_reduce_lr_on_plateau(NULL, NULL));
    nb_reduce_lr_on_plateau_options po = nb_reduce_lr_on_plateau_defaults();
    po.factor = 2;
    BAD("ReduceLROnPlateau", nb_reduce_lr_on_plateau(opt, &po));
    /* parameter groups */
    nb_tensor *q = nb_ones(NB_F32, T(2)), *qs[1] = {q};
    ck_assert_int_eq(nb_requires_grad_(q, true), NB_OK);
    BAD_ST("add_param_group", nb_sgd_add_param_group(NULL, qs, 1, NULL));
    BAD_ST("SGD", nb_sgd_add_param_group(opt, ps, 1, NULL)); /* p is in group 0 already */
    BAD_ST("SGD", nb_sgd_add_param_group(opt, ls, 1, NULL));
    BAD_ST("add_param_group", nb_adam_add_param_group(opt, qs, 1, NULL)); /* an SGD optimizer */
    BAD_ST("add_param_group", nb_adam_add_param_group(NULL, qs, 1, NULL));
    BAD_ST("add_param_group", nb_adadelta_add_param_group(opt, qs, 1, NULL));
    BAD_ST("add_param_group", nb_adadelta_add_param_group(NULL, qs, 1, NULL));
    BAD_ST("add_param_group", nb_rmsprop_add_param_group(opt, qs, 1, NULL));
    BAD_ST("add_param_group", nb_rmsprop_add_param_group(NULL, qs, 1, NULL));
    BAD_VAL("optimizer_group_lr", isnan(nb_optimizer_group_lr(NULL, 0)), true);
    BAD_VAL("optimizer_group_lr", isnan(nb_optimizer_group_lr(opt, 1)), true);
    BAD_ST("optimizer_set_group_lr", nb_optimizer_set_group_lr(NULL, 0, 0.1));
    BAD_ST("optimizer_set_group_lr", nb_optimizer_set_group_lr(opt, 1, 0.1));
    BAD_ST("SGD: Invalid learning rate", nb_optimizer_set_group_lr(opt, 0, -1));
    BAD_ST("SGD: load_state", nb_optimizer_load_state(opt, "param_groups.0.betas", f1));
    nb_optimizer_free(opt);
    nb_tensor_release(q);
    nb_tensor_release(p);
    all_reported();
}
END_TEST

START_TEST(test_init_h) {
    nb_tensor *view = nb_transpose(f, 0, 1);
    BAD_VAL("calculate_gain", isnan(nb_init_calculate_gain(NULL, NAN)), true);
    BAD_VAL("calculate_gain", isnan(nb_init_calculate_gain("gelu", NAN)), true);
    int64_t fi, fo;
    BAD_ST("calculate_fan_in_and_fan_out", nb_init_calculate_fan_in_and_fan_out(NULL, &fi, &fo));
    BAD_ST("calculate_fan_in_and_fan_out", nb_init_calculate_fan_in_and_fan_out(f1, &fi, &fo));
    BAD_ST("uniform_", nb_init_uniform_(NULL, 0, 1, NULL));
    BAD_ST("uniform_", nb_init_uniform_(l, 0, 1, NULL));
    BAD_ST("uniform_", nb_init_uniform_(f, 1, 0, NULL));
    BAD_ST("uniform_", nb_init_uniform_(view, NAN, 0, NULL));
    BAD_ST("normal_", nb_init_normal_(NULL, 0, 1, NULL));
    BAD_ST("normal_", nb_init_normal_(d, 0, -1, NULL));
    BAD_ST("trunc_normal_", nb_init_trunc_normal_(NULL, 0, 1, -2, 2, NULL));
    BAD_ST("trunc_normal_", nb_init_trunc_normal_(l, 0, 1, -2, 2, NULL));
    BAD_ST("trunc_normal_", nb_init_trunc_normal_(f, 0, 0, -2, 2, NULL));
    BAD_ST("trunc_normal_", nb_init_trunc_normal_(f, 0, 1, 2, -2, NULL));
    BAD_ST("constant_", nb_init_constant_(NULL, 1));
    BAD_ST("ones_", nb_init_ones_(NULL));
    BAD_ST("zeros_", nb_init_zeros_(NULL));
    BAD_ST("eye_", nb_init_eye_(NULL));
    BAD_ST("eye_", nb_init_eye_(f1));
    BAD_ST("dirac_", nb_init_dirac_(NULL, 1));
    BAD_ST("dirac_", nb_init_dirac_(f, 1));
    BAD_ST("dirac_", nb_init_dirac_(w4, 3));
    BAD_ST("dirac_", nb_init_dirac_(w4, -1));
    BAD_ST("xavier_uniform_", nb_init_xavier_uniform_(NULL, 1, NULL));
    BAD_ST("xavier_uniform_", nb_init_xavier_uniform_(f1, 1, NULL));
    BAD_ST("xavier_uniform_", nb_init_xavier_uniform_(l, 1, NULL));
    BAD_ST("xavier_uniform_", nb_init_xavier_uniform_(f, -1, NULL));
    BAD_ST("xavier_normal_", nb_init_xavier_normal_(NULL, 1, NULL));
    BAD_ST("xavier_normal_", nb_init_xavier_normal_(f1, 1, NULL));
    BAD_ST("xavier_normal_", nb_init_xavier_normal_(d, -1, NULL));
    BAD_ST("kaiming_uniform_", nb_init_kaiming_uniform_(NULL, 0, NULL, NULL, NULL));
    BAD_ST("kaiming_uniform_", nb_init_kaiming_uniform_(f1, 0, NULL, NULL, NULL));
    BAD_ST("kaiming_uniform_", nb_init_kaiming_uniform_(l, 0, NULL, NULL, NULL));
    BAD_ST("kaiming_uniform_", nb_init_kaiming_uniform_(f, 0, "fan_x", NULL, NULL));
    BAD_ST("kaiming_uniform_", nb_init_kaiming_uniform_(w4, 0, "fan_in", "gelu", NULL));
    BAD_ST("kaiming_normal_", nb_init_kaiming_normal_(NULL, 0, NULL, NULL, NULL));
    BAD_ST("kaiming_normal_", nb_init_kaiming_normal_(f1, 0, NULL, NULL, NULL));
    BAD_ST("kaiming_normal_", nb_init_kaiming_normal_(d, 0, "fan_inn", "relu", NULL));
    BAD_ST("kaiming_normal_", nb_init_kaiming_normal_(d, 0, NULL, "swish", NULL));
    nb_tensor_release(view);
    all_reported();
}
END_TEST

START_TEST(test_clip_grad_h) {
    nb_tensor *p = nb_ones(NB_F32, T(3)), *ps[2] = {p, NULL};
    ck_assert_int_eq(nb_requires_grad_(p, true), NB_OK);
    ck_assert_int_eq(nb_backward_ex(p, f1, false), NB_OK);
    double total;
    BAD_ST("clip_grad_norm_", nb_clip_grad_norm_(NULL, 1, 1.0, 2.0, false, &total));
    BAD_ST("clip_grad_norm_", nb_clip_grad_norm_(ps, 2, 1.0, 2.0, false, &total));
    BAD_ST("clip_grad_norm_", nb_clip_grad_norm_(ps, -1, 1.0, 2.0, false, &total));
    nb_tensor *nan = nb_full(NB_F32, T(3), NAN);
    ck_assert_int_eq(nb_backward_ex(p, nan, false), NB_OK); /* grad NaN: non-finite total norm */
    BAD_ST("clip_grad_norm_", nb_clip_grad_norm_(ps, 1, 1.0, 2.0, true, &total));
    BAD_ST("clip_grad_value_", nb_clip_grad_value_(NULL, 1, 1.0));
    BAD_ST("clip_grad_value_", nb_clip_grad_value_(ps, 2, 1.0));
    BAD_ST("clip_grad_value_", nb_clip_grad_value_(ps, -3, 1.0));
    nb_tensor_release(nan);
    nb_tensor_release(p);
    all_reported();
}
END_TEST

START_TEST(test_io_h) {
    char path[64];
    snprintf(path, sizeof path, "bad_args_%d.h5", (int)getpid());
    nb_named_tensor good[1] = {{"x", f}}, nullt[1] = {{"x", NULL}}, nulln[1] = {{NULL, f}};
    nb_named_tensor twice[2] = {{"x", f}, {"x", d}};
    BAD_ST("hdf5_save", nb_hdf5_save(NULL, good, 1));
    BAD_ST("hdf5_save", nb_hdf5_save(path, NULL, 1));
    BAD_ST("hdf5_save", nb_hdf5_save(path, good, -1));
    BAD_ST("hdf5_save", nb_hdf5_save(path, nullt, 1));
    BAD_ST("hdf5_save", nb_hdf5_save(path, nulln, 1));
    BAD_ST("hdf5_save", nb_hdf5_save(path, twice, 2));
    BAD_ST("hdf5_save", nb_hdf5_save("/nonexistent-dir/x.h5", good, 1));
    ck_assert_int_eq(nb_hdf5_save(path, good, 1), NB_OK);
    nb_load_report rep;
    nb_named_tensor wrong_shape[1] = {{"x", f1}}, missing[1] = {{"y", f}};
    BAD_ST("hdf5_load", nb_hdf5_load(NULL, good, 1, true, &rep));
    nb_load_report_free(&rep); /* filled (and owned by us) even on failure */
    BAD_ST("hdf5_load", nb_hdf5_load("/nonexistent.h5", good, 1, true, &rep));
    nb_load_report_free(&rep); /* filled (and owned by us) even on failure */
    BAD_ST("hdf5_load", nb_hdf5_load(path, NULL, 1, true, &rep));
    nb_load_report_free(&rep); /* filled (and owned by us) even on failure */
    BAD_ST("hdf5_load", nb_hdf5_load(path, nullt, 1, true, &rep));
    nb_load_report_free(&rep); /* filled (and owned by us) even on failure */
    BAD_ST("hdf5_load", nb_hdf5_load(path, wrong_shape, 1, true, &rep));
    nb_load_report_free(&rep); /* filled (and owned by us) even on failure */
    BAD_ST("hdf5_load", nb_hdf5_load(path, missing, 1, true, NULL));
    nb_named_tensor into_int[1] = {{"x", l}};
    BAD_ST("hdf5_load", nb_hdf5_load(path, into_int, 1, true, NULL)); /* float32 data into int64 */
    char **names = NULL;
    int n = 0;
    BAD_ST("hdf5_list", nb_hdf5_list(NULL, &names, &n));
    BAD_ST("hdf5_list", nb_hdf5_list("/nonexistent.h5", &names, &n));
    BAD_ST("hdf5_list", nb_hdf5_list(path, NULL, &n));
    BAD_ST("hdf5_list", nb_hdf5_list(path, &names, NULL));
    BAD("hdf5_read", nb_hdf5_read(NULL, "x", NB_F32));
    BAD("hdf5_read", nb_hdf5_read(path, NULL, NB_F32));
    BAD("hdf5_read", nb_hdf5_read(path, "nope", NB_F32));
    BAD("hdf5_read", nb_hdf5_read(path, "x", (nb_dtype)9));
    BAD("hdf5_read", nb_hdf5_read("/nonexistent.h5", "x", NB_F32));
    nb_module *relu = nb_relu_module();
    BAD_ST("module_save_hdf5", nb_module_save_hdf5(NULL, path));
    BAD_ST("hdf5_save", nb_module_save_hdf5(relu, NULL)); /* delegates to hdf5_save */
    BAD_ST("module_load_hdf5", nb_module_load_hdf5(NULL, path, true, NULL));
    BAD_ST("hdf5_load", nb_module_load_hdf5(relu, NULL, true, NULL)); /* delegates to hdf5_load */
    BAD_ST("hdf5_load", nb_module_load_hdf5(relu, "/nonexistent.h5", true, NULL));
    BAD_ST("hdf5_load", nb_module_load_hdf5(relu, path, true, NULL)); /* strict: "x" is unexpected */
    nb_module_free(relu);
    remove(path);
    all_reported();
}
END_TEST

START_TEST(test_checkpoint_h) {
    char path[64];
    snprintf(path, sizeof path, "bad_args_ck_%d.h5", (int)getpid());
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_rng *rngs[2] = {&rng, &rng}, *null_rng[1] = {NULL};
    const char *names[2] = {"a", "a"}, *null_name[1] = {NULL}, *empty_name[1] = {""};
    nb_named_tensor good[1] = {{"x", f}}, nullt[1] = {{"x", NULL}}, nulln[1] = {{NULL, f}};
    nb_named_tensor reserved[1] = {{"model.x", f}}, twice[2] = {{"x", f}, {"x", d}}, wrong[1] = {{"x", f1}};
    const nb_checkpoint ok = {.rngs = rngs, .rng_names = names, .nrngs = 1, .extra = good, .nextra = 1};
    const nb_checkpoint bad[] = {
        {.nrngs = -1},
        {.nextra = -1},
        {.nrngs = 1, .rng_names = names},
        {.nrngs = 1, .rngs = rngs},
        {.nrngs = 1, .rngs = null_rng, .rng_names = names},
        {.nrngs = 1, .rngs = rngs, .rng_names = null_name},
        {.nrngs = 1, .rngs = rngs, .rng_names = empty_name},
        {.nrngs = 2, .rngs = rngs, .rng_names = names},
        {.nextra = 1},
        {.extra = nullt, .nextra = 1},
        {.extra = nulln, .nextra = 1},
        {.extra = reserved, .nextra = 1},
        {.extra = twice, .nextra = 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        BAD_ST("checkpoint_save", nb_checkpoint_save(path, &bad[i]));
        BAD_ST("checkpoint_load", nb_checkpoint_load(path, &bad[i]));
    }
    BAD_ST("checkpoint_save", nb_checkpoint_save(NULL, &ok));
    BAD_ST("checkpoint_save", nb_checkpoint_save(path, NULL));
    BAD_ST("checkpoint_save", nb_checkpoint_save("/nonexistent-dir/x.h5", &ok));
    ck_assert_int_eq(nb_checkpoint_save(path, &ok), NB_OK);
    BAD_ST("checkpoint_load", nb_checkpoint_load(NULL, &ok));
    BAD_ST("checkpoint_load", nb_checkpoint_load(path, NULL));
    BAD_ST("checkpoint_load", nb_checkpoint_load("/nonexistent.h5", &ok));
    const nb_checkpoint wrong_shape = {.extra = wrong, .nextra = 1};
    BAD_ST("checkpoint_load", nb_checkpoint_load(path, &wrong_shape));
    remove(path);
    all_reported();
}
END_TEST

START_TEST(test_data_h) {
    BAD("idx_read", nb_idx_read(NULL, NB_F32));
    BAD("idx_read", nb_idx_read("/nonexistent.idx", NB_F32));
    BAD("idx_read", nb_idx_read("/nonexistent.idx", (nb_dtype)9));
    BAD("idx_dataset", nb_idx_dataset(NULL, "/nonexistent", 10));
    BAD("idx_dataset", nb_idx_dataset("/nonexistent", NULL, 10));
    BAD("idx_dataset", nb_idx_dataset("/nonexistent", "/nonexistent", 0));
    BAD("idx_dataset", nb_idx_dataset("/nonexistent", "/nonexistent", 10));
    BAD("mnist_dataset", nb_mnist_dataset(NULL, true));
    BAD("mnist_dataset", nb_mnist_dataset("/nonexistent", false));
    BAD("emnist_dataset", nb_emnist_dataset(NULL, "letters", true));
    BAD("emnist_dataset", nb_emnist_dataset("/nonexistent", NULL, true));
    BAD("emnist_dataset", nb_emnist_dataset("/nonexistent", "kanji", true));
    BAD("emnist_dataset", nb_emnist_dataset("/nonexistent", "letters", true));
    BAD("tensor_dataset", nb_tensor_dataset(N, f1));
    BAD("tensor_dataset", nb_tensor_dataset(f, f1));          /* 2 vs 3 samples */
    nb_tensor *s0 = nb_scalar(NB_F32, 1);
    BAD("tensor_dataset", nb_tensor_dataset(s0, NULL));       /* no sample dim */
    nb_dataset *ds = nb_tensor_dataset(img, l);               /* (2, 3, 5, 5) float32 images, (2, 3) targets */
    ck_assert_ptr_nonnull(ds);
    nb_dataset *tds = nb_tensor_dataset(l, NULL);             /* int64 samples */
    ck_assert_ptr_nonnull(tds);
    BAD("dataset_narrow", nb_dataset_narrow(NULL, 0, 1));
    BAD("dataset_narrow", nb_dataset_narrow(ds, -1, 1));
    BAD("dataset_narrow", nb_dataset_narrow(ds, 1, 2));
    BAD("dataset_narrow", nb_dataset_narrow(ds, 0, 0));
    int64_t shape[NB_MAX_DIMS];
    BAD_VAL("dataset_sample_shape", nb_dataset_sample_shape(NULL, shape), -1);
    BAD_VAL("dataset_sample_shape", nb_dataset_sample_shape(ds, NULL), -1);
    nb_tensor *x, *y;
    BAD_ST("dataset_get", nb_dataset_get(NULL, 0, &x, &y));
    BAD_ST("dataset_get", nb_dataset_get(ds, 2, &x, &y));
    BAD_ST("dataset_get", nb_dataset_get(ds, -1, &x, &y));
    BAD_ST("dataset_get", nb_dataset_get(ds, 0, NULL, &y));
    /* transforms: checked by nb_transforms_apply (and nb_loader_new) */
    nb_transform crop_big = nb_random_crop(6, 6, 0), crop_neg = nb_random_crop(3, 3, -1), crop_zero = nb_random_crop(0, 3, 0);
    nb_transform crop_reflect = nb_random_crop(5, 5, 5), crop_mode = nb_random_crop(5, 5, 0);
    crop_reflect.crop.padding_mode = NB_IMAGE_PAD_REFLECT;
    crop_mode.crop.padding_mode = (nb_image_pad_mode)9;
    nb_transform norm_null = nb_normalize(1, NULL, NULL), norm_many = nb_normalize(17, NULL, NULL);
    nb_transform norm_zero = nb_normalize(1, (double[]){0}, (double[]){0});
    nb_transform norm_nan = nb_normalize(1, (double[]){NAN}, (double[]){1});
    nb_transform norm_ch = nb_normalize(2, (double[]){0, 0}, (double[]){1, 1}); /* img has 3 channels */
    nb_transform flip = nb_random_horizontal_flip(-0.1);
    nb_transform aff_deg = nb_random_affine(-5), aff_tr = nb_random_affine(5), aff_sc = nb_random_affine(5);
    nb_transform aff_sh = nb_random_affine(5), aff_int = nb_random_affine(5), aff_fill = nb_random_affine(5);
    aff_tr.affine.translate[1] = 2;
    aff_sc.affine.scale[0] = 0;
    aff_sh.affine.shear[0] = 10;      /* min 10 > max 0 */
    aff_int.affine.interpolation = (nb_interpolation)5;
    aff_fill.affine.fill = INFINITY;
    nb_transform unknown = {.kind = (nb_transform_kind)42};
    const struct { const char *op; nb_transform t; } bad_t[] = {
        {"RandomCrop", crop_big}, {"RandomCrop", crop_neg}, {"RandomCrop", crop_zero}, {"RandomCrop", crop_reflect},
        {"RandomCrop", crop_mode}, {"Normalize", norm_null}, {"Normalize", norm_many}, {"Normalize", norm_zero},
        {"Normalize", norm_nan}, {"Normalize", norm_ch}, {"RandomHorizontalFlip", flip}, {"RandomAffine", aff_deg},
        {"RandomAffine", aff_tr}, {"RandomAffine", aff_sc}, {"RandomAffine", aff_sh}, {"RandomAffine", aff_int},
        {"RandomAffine", aff_fill}, {"transforms_apply", unknown}};
    for (size_t i = 0; i < sizeof bad_t / sizeof *bad_t; i++) {
        BAD(bad_t[i].op, nb_transforms_apply(img, &bad_t[i].t, 1, NULL));
        nb_loader_options o = nb_loader_defaults();
        o.transforms = &bad_t[i].t, o.num_transforms = 1;
        BAD(strcmp(bad_t[i].op, "transforms_apply") ? bad_t[i].op : "loader", nb_loader_new(ds, &o));
    }
    nb_transform ok = nb_random_horizontal_flip(0.5);
    BAD("transforms_apply", nb_transforms_apply(N, &ok, 1, NULL));
    BAD("transforms_apply", nb_transforms_apply(l, &ok, 1, NULL));     /* int64 */
    BAD("transforms_apply", nb_transforms_apply(f1, &ok, 1, NULL));    /* not an image */
    BAD("transforms_apply", nb_transforms_apply(img, NULL, 1, NULL));
    BAD("transforms_apply", nb_transforms_apply(img, &ok, -1, NULL));
    BAD("image_affine", nb_image_affine(N, 0, 0, 0, 1, 0, 0, NB_INTERP_NEAREST, 0));
    BAD("image_affine", nb_image_affine(l, 0, 0, 0, 1, 0, 0, NB_INTERP_NEAREST, 0));
    BAD("image_affine", nb_image_affine(f, 0, 0, 0, 1, 0, 0, NB_INTERP_NEAREST, 0));  /* 2-d */
    BAD("image_affine", nb_image_affine(img, 0, 0, 0, -1, 0, 0, NB_INTERP_NEAREST, 0));
    BAD("image_affine", nb_image_affine(img, NAN, 0, 0, 1, 0, 0, NB_INTERP_NEAREST, 0));
    BAD("image_affine", nb_image_affine(img, 0, 0, 0, 1, 0, 0, (nb_interpolation)3, 0));
    /* the loader */
    nb_loader_options o = nb_loader_defaults();
    BAD("loader", nb_loader_new(NULL, &o));
    o.batch_size = 0;
    BAD("loader", nb_loader_new(ds, &o));
    o = nb_loader_defaults(), o.world_size = 0;
    BAD("loader", nb_loader_new(ds, &o));
    o = nb_loader_defaults(), o.rank = 2, o.world_size = 2;
    BAD("loader", nb_loader_new(ds, &o));
    o = nb_loader_defaults(), o.rank = -1;
    BAD("loader", nb_loader_new(ds, &o));
    o = nb_loader_defaults(), o.transforms = &ok, o.num_transforms = 1;
    BAD("loader", nb_loader_new(tds, &o));                         /* transforms need float images */
    o.num_transforms = -1;
    BAD("loader", nb_loader_new(ds, &o));
    nb_loader *ld = nb_loader_new(ds, NULL);
    ck_assert_ptr_nonnull(ld);
    BAD_ST("loader_set_epoch", nb_loader_set_epoch(NULL, 0));
    BAD_ST("loader_set_epoch", nb_loader_set_epoch(ld, -1));
    BAD_ST("loader_next", (nb_status)nb_loader_next(NULL, &x, &y));
    BAD_ST("loader_next", (nb_status)nb_loader_next(ld, NULL, &y));
    int64_t out[4];
    BAD_ST("loader_indices", (nb_status)nb_loader_indices(NULL, out, 4));
    BAD_ST("loader_indices", (nb_status)nb_loader_indices(ld, NULL, 4));
    BAD_ST("loader_indices", (nb_status)nb_loader_indices(ld, out, -1));
    ck_assert_int_eq(nb_dataset_len(NULL), -1);
    ck_assert_int_eq(nb_loader_num_batches(NULL), -1);
    ck_assert_int_eq(nb_loader_num_samples(NULL), -1);
    nb_loader_free(ld);
    nb_dataset_free(ds);
    nb_dataset_free(tds);
    nb_tensor_release(s0);
    all_reported();
}
END_TEST

int main(void) {
    Suite *s = suite_create("bad_args");
    TCase *tc = tcase_create("bad_args");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_core_h);
    tcase_add_test(tc, test_tensor_h);
    tcase_add_test(tc, test_ops_h);
    tcase_add_test(tc, test_autograd_h);
    tcase_add_test(tc, test_autograd_extensions);
    tcase_add_test(tc, test_gradcheck_h);
    tcase_add_test(tc, test_conv_h);
    tcase_add_test(tc, test_functional_h);
    tcase_add_test(tc, test_losses_activations_h);
    tcase_add_test(tc, test_functional_h_layers);
    tcase_add_test(tc, test_nn_h);
    tcase_add_test(tc, test_optim_h);
    tcase_add_test(tc, test_init_h);
    tcase_add_test(tc, test_clip_grad_h);
    tcase_add_test(tc, test_io_h);
    tcase_add_test(tc, test_checkpoint_h);
    tcase_add_test(tc, test_data_h);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
