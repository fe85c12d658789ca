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
 * nb_conv2d_module's params, nb_gradcheck's opts and report, the optimizers'
 * options except SGD's (lr is required), every rng.
 *
 * Functions with no bad argument to give (nothing they accept is invalid, or
 * they are documented to ignore NULL), so not in the table:
 *   version.h:   nb_version (no arguments)
 *   core.h:      nb_dtype_size, nb_dtype_name (queries: 0 / a name for any value),
 *                nb_last_error, nb_last_status, nb_clear_error, nb_get_num_threads,
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
 *                nb_detect_anomaly_enabled
 *   gradcheck.h: nb_gradcheck_defaults
 *   conv.h:      nb_conv2d_defaults;  functional.h: nb_pool2d_defaults
 *   nn.h:        nb_module_new (NULL type means "Module"; a NULL forward is
 *                reported when the module is called), nb_module_free (NULL ignored), nb_module_train/eval/zero_grad
 *                (void, NULL ignored), nb_module_is_training, nb_module_type,
 *                nb_module_num_children, nb_module_num_parameters,
 *                nb_module_num_parameter_elements, nb_module_state_count
 *                (queries: sentinel for NULL), nb_relu_module, nb_sigmoid_module,
 *                nb_tanh_module, nb_leaky_relu_module (any slope is valid)
 *   optim.h:     nb_*_defaults, nb_optimizer_free, nb_optimizer_zero_grad,
 *                nb_lr_scheduler_free (NULL ignored), nb_optimizer_name,
 *                nb_optimizer_num_params, nb_optimizer_get_lr,
 *                nb_lr_scheduler_get_last_lr, nb_lr_scheduler_last_epoch,
 *                nb_lr_scheduler_base_lr (queries: sentinel for NULL)
 *   io.h:        nb_load_report_free, nb_hdf5_names_free (NULL ignored)
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
    BAD("BatchNorm2d", nb_batch_norm2d_module(0, 1e-5, 0.1, true, true));
    BAD("BatchNorm2d", nb_batch_norm2d_module(3, -1, 0.1, true, true));
    BAD("MaxPool2d", nb_max_pool2d_module(NULL));
    nb_pool2d_params kz = nb_pool2d_defaults(0);
    BAD("MaxPool2d", nb_max_pool2d_module(&kz));
    BAD("AvgPool2d", nb_avg_pool2d_module(NULL));
    BAD("AvgPool2d", nb_avg_pool2d_module(&kz));
    BAD("Dropout", nb_dropout_module(-0.5, NULL));
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
    nb_lr_scheduler_free(s);
    nb_optimizer_free(opt);
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

int main(void) {
    Suite *s = suite_create("bad_args");
    TCase *tc = tcase_create("bad_args");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_core_h);
    tcase_add_test(tc, test_tensor_h);
    tcase_add_test(tc, test_ops_h);
    tcase_add_test(tc, test_autograd_h);
    tcase_add_test(tc, test_gradcheck_h);
    tcase_add_test(tc, test_conv_h);
    tcase_add_test(tc, test_functional_h);
    tcase_add_test(tc, test_nn_h);
    tcase_add_test(tc, test_optim_h);
    tcase_add_test(tc, test_io_h);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
