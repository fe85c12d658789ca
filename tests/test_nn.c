/* Modules (nabla/nn.h): state names, order, shapes and dtypes against
 * PyTorch's state_dict (tests/pytorch/nn_reference.py), default init, train /
 * eval behaviour, ownership, errors, and forward outputs of nets loaded with
 * PyTorch's weights compared to PyTorch's outputs. */
#include "testutil.h"

#include <hdf5.h>
#include <stdlib.h>

#include "nabla/nn.h"

#define REF "nn.h5"

/* ---- reading the reference file ---- */

/* The variable-length string dataset `name` as a malloc'd array of malloc'd strings. */
static char **read_strings(const char *name, int *n) {
    const char *file = nbt_data_path(REF);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s (was the PyTorch reference generated?)", file);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "%s: no dataset %s", file, name);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[1] = {0};
    ck_assert_int_eq(H5Sget_simple_extent_ndims(sp), 1);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char **raw = calloc(dims[0] + 1, sizeof *raw);
    ck_assert(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0);
    char **out = calloc(dims[0] + 1, sizeof *out);
    for (hsize_t i = 0; i < dims[0]; i++) out[i] = strdup(raw[i]);
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
    free(raw);
    H5Tclose(mt);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    *n = (int)dims[0];
    return out;
}

static void free_strings(char **s, int n) {
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* Collects the names a visit produces. */
typedef struct names {
    char *name[64];
    nb_tensor *t[64];
    bool is_param[64];
    int n;
} names;

static int collect(const char *name, nb_tensor *t, bool is_parameter, void *ctx) {
    names *c = ctx;
    ck_assert_int_lt(c->n, 64);
    c->name[c->n] = strdup(name);
    c->t[c->n] = t;
    c->is_param[c->n] = is_parameter;
    c->n++;
    return 0;
}

static void free_names(names *c) {
    for (int i = 0; i < c->n; i++) free(c->name[i]);
    c->n = 0;
}

/* nabla's state names, order, shapes and dtypes equal PyTorch's for group. */
static void check_state_like_pytorch(const nb_module *net, const char *group) {
    char path[256];
    int nkeys, npk;
    snprintf(path, sizeof path, "%s/keys", group);
    char **keys = read_strings(path, &nkeys);
    snprintf(path, sizeof path, "%s/param_keys", group);
    char **pkeys = read_strings(path, &npk);
    snprintf(path, sizeof path, "%s/shapes", group);
    nb_tensor *shapes = nbt_h5_read(nbt_data_path(REF), path, NB_I64);
    const int64_t *sh = nb_tensor_i64(shapes);

    names st = {0};
    NBT_OK(nb_module_visit_state(net, collect, &st));
    ck_assert_int_eq(nb_module_state_count(net), st.n);
    ck_assert_msg(st.n == nkeys, "%s: nabla has %d state entries, PyTorch %d", group, st.n, nkeys);
    for (int i = 0; i < nkeys; i++) {
        ck_assert_msg(!strcmp(st.name[i], keys[i]), "%s: state key %d is '%s', PyTorch's is '%s'", group, i,
                      st.name[i], keys[i]);
        const int64_t *row = sh + 10 * i; /* ndim, is_int64, dims... */
        nb_tensor *t = st.t[i];
        ck_assert_msg(nb_tensor_ndim(t) == row[0], "%s: %s has %d dims, PyTorch %lld", group, keys[i],
                      nb_tensor_ndim(t), (long long)row[0]);
        for (int d = 0; d < row[0]; d++)
            ck_assert_msg(nb_tensor_shape(t)[d] == row[2 + d], "%s: %s dim %d is %lld, PyTorch %lld", group, keys[i], d,
                          (long long)nb_tensor_shape(t)[d], (long long)row[2 + d]);
        ck_assert_int_eq(nb_tensor_dtype(t), row[1] ? NB_I64 : NB_F32);
        ck_assert_ptr_eq(nb_module_state(net, keys[i]), t); /* lookup by full name agrees */
    }

    names ps = {0};
    NBT_OK(nb_module_visit_parameters(net, collect, &ps));
    ck_assert_int_eq(ps.n, npk);
    ck_assert_int_eq(nb_module_num_parameters(net), npk);
    nb_tensor *arr[64];
    ck_assert_int_eq(nb_module_parameters(net, arr, 64), npk);
    for (int i = 0; i < npk; i++) {
        ck_assert_msg(!strcmp(ps.name[i], pkeys[i]), "%s: parameter %d is '%s', PyTorch's is '%s'", group, i,
                      ps.name[i], pkeys[i]);
        ck_assert(ps.is_param[i]);
        ck_assert_ptr_eq(arr[i], ps.t[i]);
        ck_assert(nb_tensor_requires_grad(arr[i]) && nb_tensor_is_leaf(arr[i]));
    }
    free_names(&st);
    free_names(&ps);
    free_strings(keys, nkeys);
    free_strings(pkeys, npk);
    nb_tensor_release(shapes);
}

/* Load every state tensor of group/state/KEY into net. */
static void load_pytorch_state(nb_module *net, const char *group) {
    names st = {0};
    NBT_OK(nb_module_visit_state(net, collect, &st));
    for (int i = 0; i < st.n; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/state/%s", group, st.name[i]);
        nb_tensor *v = nbt_h5_read(nbt_data_path(REF), path, nb_tensor_dtype(st.t[i]));
        NBT_OK(nb_module_load_tensor(net, st.name[i], v));
        nb_tensor_release(v);
    }
    free_names(&st);
}

/* |t - ref| <= atol + rtol |ref| elementwise, ref read from the file. */
static void assert_matches(const nb_tensor *t, const char *ref_name, double atol, double rtol) {
    nb_tensor *ref = nbt_h5_read(nbt_data_path(REF), ref_name, NB_F64);
    nbt_assert_shape(t, nb_tensor_ndim(ref), nb_tensor_shape(ref));
    nbt_assert_values(t, nb_tensor_f64(ref), nb_tensor_numel(ref), atol, rtol);
    nb_tensor_release(ref);
}

/* ---- the nets, written as their PyTorch twins in nn_reference.py ---- */

/* Replace *h by next (releasing the old one): keeps forward code linear. */
static nb_tensor *then(nb_tensor *old, nb_tensor *next) {
    nb_tensor_release(old);
    return next;
}

/* MnistNet.forward */
static nb_tensor *mnist_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)ctx;
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    nb_tensor *h = nb_module_call(self, "conv1", x);
    h = then(h, nb_relu(h));
    h = then(h, nb_module_call(self, "conv2", h));
    h = then(h, nb_relu(h));
    h = then(h, nb_max_pool2d(h, &pool));
    h = then(h, nb_module_call(self, "dropout1", h));
    h = then(h, nb_flatten(h, 1, -1));
    h = then(h, nb_module_call(self, "fc1", h));
    h = then(h, nb_relu(h));
    h = then(h, nb_module_call(self, "dropout2", h));
    h = then(h, nb_module_call(self, "fc2", h));
    return then(h, nb_log_softmax(h, 1));
}

static nb_module *mnist_net(nb_rng *rng) {
    nb_module *m = nb_module_new("MnistNet", mnist_forward, NULL, NULL);
    NBT_OK(nb_module_add_child(m, "conv1", nb_conv2d_module(1, 32, 3, 3, NULL, true, rng)));
    NBT_OK(nb_module_add_child(m, "conv2", nb_conv2d_module(32, 64, 3, 3, NULL, true, rng)));
    NBT_OK(nb_module_add_child(m, "dropout1", nb_dropout_module(0.25, rng)));
    NBT_OK(nb_module_add_child(m, "dropout2", nb_dropout_module(0.5, rng)));
    NBT_OK(nb_module_add_child(m, "fc1", nb_linear_module(9216, 128, true, rng)));
    NBT_OK(nb_module_add_child(m, "fc2", nb_linear_module(128, 10, true, rng)));
    return m;
}

static nb_module *mnist_sequential(nb_rng *rng) {
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    return nb_sequential_module(NB_MODULES(
        nb_conv2d_module(1, 32, 3, 3, NULL, true, rng), nb_relu_module(), nb_conv2d_module(32, 64, 3, 3, NULL, true, rng),
        nb_relu_module(), nb_max_pool2d_module(&pool), nb_dropout_module(0.25, rng), nb_flatten_module(1, -1),
        nb_linear_module(9216, 128, true, rng), nb_relu_module(), nb_dropout_module(0.5, rng),
        nb_linear_module(128, 10, true, rng), nb_log_softmax_module(1)));
}

/* BnNet: children and own state interleaved at registration, as in PyTorch. */
static nb_module *bn_net(nb_rng *rng) {
    nb_conv2d_params pad1 = nb_conv2d_defaults(), grouped = nb_conv2d_defaults();
    pad1.padding[0] = pad1.padding[1] = 1;
    grouped = pad1;
    grouped.groups = 2;
    nb_module *m = nb_module_new("BnNet", NULL, NULL, NULL);
    NBT_OK(nb_module_add_child(m, "conv1", nb_conv2d_module(3, 8, 3, 3, &pad1, false, rng)));
    NBT_OK(nb_module_add_child(m, "bn1", nb_batch_norm2d_module(8, 1e-5, 0.1, true, true)));
    nb_tensor *scale = nb_ones(NB_F32, NB_SHAPE(1));
    NBT_OK(nb_module_register_parameter(m, "scale", scale));
    nb_tensor_release(scale);
    NBT_OK(nb_module_add_child(m, "block", nb_sequential_module(NB_MODULES(
        nb_conv2d_module(8, 8, 3, 3, &grouped, true, rng), nb_batch_norm2d_module(8, 1e-5, 0.1, false, true),
        nb_relu_module(), nb_batch_norm2d_module(8, 1e-5, 0.1, true, false)))));
    nb_tensor *step = nb_zeros(NB_F32, NB_SHAPE(2));
    NBT_OK(nb_module_register_buffer(m, "step", step));
    nb_tensor_release(step);
    NBT_OK(nb_module_add_child(m, "fc", nb_linear_module(8, 4, true, rng)));
    return m;
}

/* TiedNet: dec.weight is enc.weight (one tensor registered twice). */
static nb_module *tied_net(nb_rng *rng) {
    nb_module *m = nb_module_new("TiedNet", NULL, NULL, NULL);
    NBT_OK(nb_module_add_child(m, "enc", nb_linear_module(4, 4, false, rng)));
    nb_module *dec = nb_module_new("Linear", NULL, NULL, NULL);
    NBT_OK(nb_module_register_parameter(dec, "weight", nb_module_state(m, "enc.weight")));
    nb_tensor *b = nb_zeros(NB_F32, NB_SHAPE(4));
    NBT_OK(nb_module_register_parameter(dec, "bias", b));
    nb_tensor_release(b);
    NBT_OK(nb_module_add_child(m, "dec", dec));
    return m;
}

/* ---- tests ---- */

START_TEST(test_state_dict_like_pytorch) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *nets[] = {mnist_net(&rng), mnist_sequential(&rng), bn_net(&rng), nbt_small_net(&rng), tied_net(&rng)};
    const char *groups[] = {"mnist", "mnist_seq", "bn", "small", "tied"};
    for (int i = 0; i < 5; i++) {
        ck_assert_ptr_nonnull(nets[i]);
        check_state_like_pytorch(nets[i], groups[i]);
        nb_module_free(nets[i]);
    }
}
END_TEST

/* parameters() of any size as an owned list, in the order and number of
 * PyTorch's (a tied weight once), valid after the module is freed. */
START_TEST(test_parameter_list) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *nets[] = {mnist_net(&rng), bn_net(&rng), nbt_small_net(&rng), tied_net(&rng)};
    const char *groups[] = {"mnist", "bn", "small", "tied"};
    for (int i = 0; i < 4; i++) {
        char path[64];
        int npk;
        snprintf(path, sizeof path, "%s/param_keys", groups[i]);
        char **pkeys = read_strings(path, &npk);
        nb_param_list ps = nb_module_parameter_list(nets[i]);
        ck_assert_ptr_nonnull(ps.params);
        ck_assert_int_eq(ps.n, npk);
        ck_assert_int_eq(nb_module_num_parameters(nets[i]), npk);
        int64_t elements = 0;
        for (int k = 0; k < npk; k++) {
            ck_assert_ptr_eq(ps.params[k], nb_module_state(nets[i], pkeys[k]));
            elements += nb_tensor_numel(ps.params[k]);
        }
        ck_assert_int_eq(nb_module_num_parameter_elements(nets[i]), elements);
        nb_tensor *first[1] = {NULL}; /* the count is returned even when the array is too small */
        ck_assert_int_eq(nb_module_parameters(nets[i], first, 1), npk);
        ck_assert_ptr_eq(first[0], ps.params[0]);
        nb_module_free(nets[i]);
        /* the list's references keep the tensors alive */
        for (int k = 0; k < npk; k++) ck_assert(nb_tensor_requires_grad(ps.params[k]));
        nb_param_list_free(&ps);
        ck_assert_ptr_null(ps.params);
        ck_assert_int_eq(ps.n, 0);
        nb_param_list_free(&ps); /* twice: harmless */
        free_strings(pkeys, npk);
    }
    double n, e;
    ck_assert(nbt_h5_read_scalar(nbt_data_path(REF), "tied/num_parameters", &n));
    ck_assert(nbt_h5_read_scalar(nbt_data_path(REF), "tied/num_parameter_elements", &e));
    nb_module *tied = tied_net(&rng);
    ck_assert_int_eq(nb_module_num_parameters(tied), (int)n);
    ck_assert_int_eq(nb_module_num_parameter_elements(tied), (int64_t)e);
    ck_assert_int_eq(nb_module_state_count(tied), 3); /* state_dict keeps both names of the tied weight */
    /* an optimizer accepts the list as it is (a duplicate would be refused) */
    nb_param_list ps = nb_module_parameter_list(tied);
    nb_optimizer *opt = nb_sgd(ps.params, ps.n, &(nb_sgd_options){.lr = 0.1});
    ck_assert_msg(opt != NULL, "%s", nb_last_error());
    nb_param_list_free(&ps);
    nb_optimizer_free(opt);
    nb_module_free(tied);
    /* a module without parameters: an empty list, not a failure; the optimizer says why it cannot use it */
    nb_module *relu = nb_relu_module();
    ps = nb_module_parameter_list(relu);
    ck_assert_ptr_nonnull(ps.params);
    ck_assert_int_eq(ps.n, 0);
    NBT_FAILS_WITH(nb_adam(ps.params, ps.n, NULL), "empty parameter list");
    nb_param_list_free(&ps);
    nb_module_free(relu);
    /* a failed list makes the optimizer fail with the list's message */
    ps = nb_module_parameter_list(NULL);
    ck_assert_ptr_null(ps.params);
    nb_clear_error();
    nb_module *none = nb_module_child(NULL, "x"); /* a failed call, as a user's chain would have */
    ps = nb_module_parameter_list(none);          /* keeps that error */
    ck_assert_ptr_null(ps.params);
    nb_optimizer *bad = nb_adam(ps.params, ps.n, NULL);
    ck_assert_ptr_null(bad);
    ck_assert_msg(strstr(nb_last_error(), "module_child"), "message '%s' lost the first error", nb_last_error());
}
END_TEST

/* Every weight and bias within +-1/sqrt(fan_in), spread over the range, and
 * the same seed gives the same model. */
static void check_uniform(const nb_tensor *t, double bound) {
    int64_t n = nb_tensor_numel(t);
    double *v = malloc((size_t)n * sizeof *v);
    NBT_OK(nb_tensor_copy_out(t, v, NB_F64));
    double lo = v[0], hi = v[0];
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(fabs(v[i]) <= bound, "value %g outside +-%g", v[i], bound);
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    ck_assert_msg(hi > lo, "all %lld values equal", (long long)n);
    if (n >= 100) ck_assert_msg(hi > 0.9 * bound && lo < -0.9 * bound, "range [%g, %g] vs bound %g", lo, hi, bound);
    free(v);
}

START_TEST(test_default_init) {
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_module *fc = nb_linear_module(9216, 128, true, &rng);
    check_uniform(nb_module_param(fc, "weight"), 1 / sqrt(9216.0));
    check_uniform(nb_module_param(fc, "bias"), 1 / sqrt(9216.0));
    nb_conv2d_params g = nb_conv2d_defaults();
    g.groups = 4;
    nb_module *conv = nb_conv2d_module(32, 64, 3, 5, &g, true, &rng); /* fan_in = 32 / 4 * 3 * 5 = 120 */
    nbt_assert_shape(nb_module_param(conv, "weight"), NB_SHAPE(64, 8, 3, 5));
    check_uniform(nb_module_param(conv, "weight"), 1 / sqrt(120.0));
    check_uniform(nb_module_param(conv, "bias"), 1 / sqrt(120.0));
    nb_module *bn = nb_batch_norm2d_module(5, 1e-5, 0.1, true, true);
    nbt_assert_values(nb_module_param(bn, "weight"), (double[]){1, 1, 1, 1, 1}, 5, 0, 0);
    nbt_assert_values(nb_module_param(bn, "bias"), (double[]){0, 0, 0, 0, 0}, 5, 0, 0);
    nbt_assert_values(nb_module_param(bn, "running_mean"), (double[]){0, 0, 0, 0, 0}, 5, 0, 0);
    nbt_assert_values(nb_module_param(bn, "running_var"), (double[]){1, 1, 1, 1, 1}, 5, 0, 0);
    nb_tensor *nbt = nb_module_param(bn, "num_batches_tracked");
    ck_assert_int_eq(nb_tensor_dtype(nbt), NB_I64);
    ck_assert_int_eq(nb_tensor_ndim(nbt), 0);
    nbt_assert_values(nbt, (double[]){0}, 1, 0, 0);
    ck_assert_int_eq(nb_module_num_parameters(fc), 2);
    ck_assert_int_eq(nb_module_num_parameter_elements(fc), 9216 * 128 + 128);

    /* same seed, same model */
    nb_rng a, b;
    nb_rng_seed(&a, 3);
    nb_rng_seed(&b, 3);
    nb_module *m1 = nb_linear_module(20, 7, true, &a), *m2 = nb_linear_module(20, 7, true, &b);
    nbt_assert_bitwise_equal(nb_module_param(m1, "weight"), nb_module_param(m2, "weight"));
    nbt_assert_bitwise_equal(nb_module_param(m1, "bias"), nb_module_param(m2, "bias"));
    nb_module *nobias = nb_linear_module(20, 7, false, &a);
    ck_assert_int_eq(nb_module_state_count(nobias), 1);
    nb_module *mods[] = {fc, conv, bn, m1, m2, nobias};
    for (int i = 0; i < 6; i++) nb_module_free(mods[i]);
}
END_TEST

START_TEST(test_train_eval_flags) {
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_module *net = mnist_net(&rng);
    ck_assert(nb_module_is_training(net)); /* nn.Module starts in training mode */
    nb_module_eval(net);
    ck_assert(!nb_module_is_training(net));
    for (int i = 0; i < nb_module_num_children(net); i++) ck_assert(!nb_module_is_training(nb_module_child_at(net, i, NULL)));
    nb_module_train(net, true);
    for (int i = 0; i < nb_module_num_children(net); i++) ck_assert(nb_module_is_training(nb_module_child_at(net, i, NULL)));
    nb_module_eval(nb_module_child(net, "dropout1")); /* a child alone */
    ck_assert(nb_module_is_training(net) && !nb_module_is_training(nb_module_child(net, "dropout1")));
    ck_assert(nb_module_is_training(nb_module_child(net, "dropout2")));
    const char *name;
    ck_assert_ptr_eq(nb_module_child_at(net, 2, &name), nb_module_child(net, "dropout1"));
    ck_assert_str_eq(name, "dropout1");
    ck_assert_str_eq(nb_module_type(nb_module_child(net, "fc1")), "Linear");
    ck_assert_str_eq(nb_module_type(nb_module_child(net, "conv1")), "Conv2d");
    nb_module_free(net);
}
END_TEST

START_TEST(test_dropout_train_eval) {
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_module *d = nb_dropout_module(0.5, &rng);
    nb_tensor *x = nb_ones(NB_F32, NB_SHAPE(1000));
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(d, x));
    float *v = nb_tensor_f32(y);
    int zeros = 0;
    for (int i = 0; i < 1000; i++) {
        ck_assert_msg(v[i] == 0.0f || v[i] == 2.0f, "dropout value %g is neither 0 nor 1/(1-p)", v[i]);
        zeros += v[i] == 0.0f;
    }
    ck_assert_msg(zeros > 400 && zeros < 600, "%d of 1000 dropped at p = 0.5", zeros); /* +-6 sd */
    nb_tensor_release(y);
    nb_module_eval(d);
    y = NBT_NOTNULL(nb_module_forward(d, x));
    nbt_assert_bitwise_equal(y, x);
    nb_tensor_release(y);
    nb_tensor_release(x);
    nb_module_free(d);
}
END_TEST

/* Per-channel mean and (biased or unbiased) variance of x [N, C, H, W], in double. */
static void channel_stats(const nb_tensor *x, int c, double *mean, double *var, bool unbiased) {
    const int64_t *s = nb_tensor_shape(x);
    int64_t N = s[0], C = s[1], HW = s[2] * s[3], n = N * HW;
    double *v = malloc((size_t)nb_tensor_numel(x) * sizeof *v);
    NBT_OK(nb_tensor_copy_out(x, v, NB_F64));
    double m = 0, q = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < HW; j++) m += v[(i * C + c) * HW + j];
    m /= (double)n;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < HW; j++) q += (v[(i * C + c) * HW + j] - m) * (v[(i * C + c) * HW + j] - m);
    *mean = m;
    *var = q / (double)(unbiased ? n - 1 : n);
    free(v);
}

static double get1(const nb_tensor *t, int64_t i) {
    double v;
    NBT_OK(nb_tensor_get(t, &i, &v));
    return v;
}

START_TEST(test_batch_norm_train_eval) {
    nb_tensor *x = nbt_randn(11, NB_F32, NB_SHAPE(4, 3, 5, 5), false);
    nb_module *bn = nb_batch_norm2d_module(3, 1e-5, 0.1, true, true);
    nb_tensor *rm = nb_module_param(bn, "running_mean"), *rv = nb_module_param(bn, "running_var");
    nb_tensor *count = nb_module_param(bn, "num_batches_tracked");

    /* training: batch statistics normalise, and the running ones move by momentum */
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(bn, x));
    for (int c = 0; c < 3; c++) {
        double m, v, bm, bv;
        channel_stats(y, c, &m, &v, false);
        ck_assert_msg(fabs(m) < 1e-5 && fabs(v - 1) < 1e-3, "channel %d: mean %g var %g", c, m, v);
        channel_stats(x, c, &bm, &bv, true);
        ck_assert_msg(fabs(get1(rm, c) - 0.1 * bm) < 1e-6, "running_mean %g vs %g", get1(rm, c), 0.1 * bm);
        ck_assert_msg(fabs(get1(rv, c) - (0.9 + 0.1 * bv)) < 1e-6, "running_var %g vs %g", get1(rv, c), 0.9 + 0.1 * bv);
    }
    nbt_assert_values(count, (double[]){1}, 1, 0, 0);
    nb_tensor_release(y);

    /* eval: the running statistics normalise and nothing is counted */
    nb_module_eval(bn);
    double rmv[3], rvv[3];
    NBT_OK(nb_tensor_copy_out(rm, rmv, NB_F64));
    NBT_OK(nb_tensor_copy_out(rv, rvv, NB_F64));
    y = NBT_NOTNULL(nb_module_forward(bn, x));
    double *xv = malloc(300 * sizeof *xv), *yv = malloc(300 * sizeof *yv);
    NBT_OK(nb_tensor_copy_out(x, xv, NB_F64));
    NBT_OK(nb_tensor_copy_out(y, yv, NB_F64));
    for (int i = 0; i < 300; i++) {
        int c = (i / 25) % 3;
        double e = (xv[i] - rmv[c]) / sqrt(rvv[c] + 1e-5);
        ck_assert_msg(fabs(yv[i] - e) < 1e-5, "eval bn %d: %g vs %g", i, yv[i], e);
    }
    nbt_assert_values(count, (double[]){1}, 1, 0, 0);
    nbt_assert_values(rm, rmv, 3, 0, 0);
    free(xv);
    free(yv);
    nb_tensor_release(y);
    nb_module_free(bn);

    /* momentum None (< 0): a cumulative average, 1/count each step */
    nb_tensor *x2 = nbt_randn(12, NB_F32, NB_SHAPE(4, 3, 5, 5), false);
    bn = nb_batch_norm2d_module(3, 1e-5, -1, true, true);
    nb_tensor_release(NBT_NOTNULL(nb_module_forward(bn, x)));
    nb_tensor_release(NBT_NOTNULL(nb_module_forward(bn, x2)));
    for (int c = 0; c < 3; c++) {
        double m1, v1, m2, v2;
        channel_stats(x, c, &m1, &v1, true);
        channel_stats(x2, c, &m2, &v2, true);
        ck_assert(fabs(get1(nb_module_param(bn, "running_mean"), c) - (m1 + m2) / 2) < 1e-6);
        ck_assert(fabs(get1(nb_module_param(bn, "running_var"), c) - (v1 + v2) / 2) < 1e-6);
    }
    nbt_assert_values(nb_module_param(bn, "num_batches_tracked"), (double[]){2}, 1, 0, 0);
    nb_module_free(bn);

    /* track_running_stats=False: no buffers, batch statistics even in eval */
    bn = nb_batch_norm2d_module(3, 1e-5, 0.1, false, false);
    ck_assert_int_eq(nb_module_state_count(bn), 0);
    nb_tensor *yt = NBT_NOTNULL(nb_module_forward(bn, x));
    nb_module_eval(bn);
    nb_tensor *ye = NBT_NOTNULL(nb_module_forward(bn, x));
    nbt_assert_bitwise_equal(yt, ye);
    nb_tensor_release(yt);
    nb_tensor_release(ye);
    nb_module_free(bn);
    nb_tensor_release(x);
    nb_tensor_release(x2);
}
END_TEST

/* exp of each row of log-probabilities y [N, C] sums to 1 within tol. */
static void assert_log_probs(const nb_tensor *y, double tol) {
    int64_t N = nb_tensor_shape(y)[0], C = nb_tensor_shape(y)[1];
    double *v = malloc((size_t)(N * C) * sizeof *v);
    NBT_OK(nb_tensor_copy_out(y, v, NB_F64));
    for (int64_t i = 0; i < N; i++) {
        double s = 0;
        for (int64_t j = 0; j < C; j++) s += exp(v[i * C + j]);
        ck_assert_msg(fabs(s - 1) <= tol, "row %lld: sum of probabilities %.9g", (long long)i, s);
    }
    free(v);
}

START_TEST(test_mnist_forward) {
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_module *net = mnist_net(&rng);
    nb_tensor *x = nbt_h5_read(nbt_data_path(REF), "mnist/x", NB_F32);
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(net, x)); /* training mode: dropout active */
    nbt_assert_shape(y, NB_SHAPE(2, 10));
    assert_log_probs(y, 1e-6);
    nb_tensor_release(y);

    /* PyTorch's weights give PyTorch's output (eval: dropout is the identity) */
    load_pytorch_state(net, "mnist");
    nb_module_eval(net);
    y = NBT_NOTNULL(nb_module_forward(net, x));
    assert_log_probs(y, 1e-6);
    assert_matches(y, "mnist/y_eval", 1e-5, 1e-4);
    nb_tensor_release(y);

    /* the Sequential twin with the same weights gives the same numbers */
    nb_module *seq = mnist_sequential(&rng);
    const char *map[][2] = {{"0.weight", "conv1.weight"}, {"0.bias", "conv1.bias"}, {"2.weight", "conv2.weight"},
                            {"2.bias", "conv2.bias"},     {"7.weight", "fc1.weight"},  {"7.bias", "fc1.bias"},
                            {"10.weight", "fc2.weight"},  {"10.bias", "fc2.bias"}};
    for (int i = 0; i < 8; i++) NBT_OK(nb_module_load_tensor(seq, map[i][0], nb_module_state(net, map[i][1])));
    nb_module_eval(seq);
    nb_tensor *ys = NBT_NOTNULL(nb_module_forward(seq, x));
    assert_matches(ys, "mnist/y_eval", 1e-5, 1e-4);
    nb_tensor_release(ys);
    nb_tensor_release(x);
    nb_module_free(seq);
    nb_module_free(net);
}
END_TEST

/* Every layer type with PyTorch's weights: a training-mode forward (batch
 * norm with batch statistics, updating its running ones; the dropout child
 * alone in eval mode), an eval-mode forward, and the parameter gradients of
 * an NLL loss, against PyTorch. */
START_TEST(test_small_net_like_pytorch) {
    nb_module *net = nbt_small_net(NULL);
    load_pytorch_state(net, "small");
    nb_tensor *x = nbt_h5_read(nbt_data_path(REF), "small/x", NB_F32);
    nb_module_eval(nb_module_child(net, "10"));
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(net, x));
    assert_matches(y, "small/y_train", 1e-5, 1e-4);
    assert_matches(nb_module_state(net, "1.running_mean"), "small/running_mean", 1e-6, 1e-5);
    assert_matches(nb_module_state(net, "1.running_var"), "small/running_var", 1e-6, 1e-5);
    assert_matches(nb_module_state(net, "1.num_batches_tracked"), "small/num_batches_tracked", 0, 0);
    nb_tensor_release(y);
    nb_module_eval(net);
    y = NBT_NOTNULL(nb_module_forward(net, x));
    assert_matches(y, "small/y_eval", 1e-5, 1e-4);
    nb_tensor_release(y);

    /* backward through every layer reaches every parameter, as in PyTorch */
    y = NBT_NOTNULL(nb_module_forward(net, x));
    nb_tensor *target = nbt_h5_read(nbt_data_path(REF), "small/target", NB_I64);
    nb_tensor *loss = NBT_NOTNULL(nb_nll_loss(y, target, NB_REDUCTION_MEAN));
    assert_matches(loss, "small/loss", 1e-6, 1e-5);
    NBT_OK(nb_backward(loss));
    names ps = {0};
    NBT_OK(nb_module_visit_parameters(net, collect, &ps));
    ck_assert_int_eq(ps.n, 10);
    for (int i = 0; i < ps.n; i++) {
        char path[256];
        snprintf(path, sizeof path, "small/grad/%s", ps.name[i]);
        ck_assert_msg(nb_tensor_grad(ps.t[i]) != NULL, "%s has no gradient", ps.name[i]);
        assert_matches(nb_tensor_grad(ps.t[i]), path, 1e-6, 1e-4);
    }
    free_names(&ps);
    nb_tensor_release(loss);
    nb_tensor_release(target);
    nb_tensor_release(y);
    nb_tensor_release(x);
    nb_module_free(net);
}
END_TEST

/* A custom module: y = flatten(inner(x)) * w, with a child "inner" that
 * transposes. Only tensor ops (no layers), like a user's own nn.Module. */
static nb_tensor *transpose_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self, (void)ctx;
    return nb_transpose(x, 0, 1);
}

static int scale_frees;
static void count_free(void *ctx) {
    scale_frees++;
    free(ctx);
}

static nb_tensor *scale_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    ck_assert_int_eq(*(int *)ctx, 42); /* the ctx given at construction */
    nb_tensor *h = nb_module_call(self, "inner", x);
    h = then(h, nb_flatten(h, 0, -1));
    return then(h, nb_mul(h, nb_module_param(self, "w")));
}

static nb_module *scale_module(nb_tensor *w) {
    int *ctx = malloc(sizeof *ctx);
    *ctx = 42;
    nb_module *m = nb_module_new("Scale", scale_forward, ctx, count_free);
    NBT_OK(nb_module_register_parameter(m, "w", w));
    NBT_OK(nb_module_add_child(m, "inner", nb_module_new("Transpose", transpose_forward, NULL, NULL)));
    return m;
}

START_TEST(test_custom_module_ownership) {
    scale_frees = 0;
    nb_scope *scope = nb_scope_begin();
    nb_tensor *w = nb_arange(NB_F64, 1, 7, 1); /* held by the scope */
    nb_module *m = scale_module(w);
    ck_assert(nb_tensor_requires_grad(w)); /* registration made it a parameter */
    nb_scope_end(scope);                   /* the module keeps w alive */
    nb_tensor *p = nb_module_param(m, "w");
    ck_assert_ptr_eq(p, w);
    nbt_assert_values(p, (double[]){1, 2, 3, 4, 5, 6}, 6, 0, 0);

    /* forward, backward through the custom module into its parameter */
    nb_tensor *x = nb_arange(NB_F64, 0, 6, 1);
    nb_tensor *x23 = nb_reshape(x, NB_SHAPE(2, 3));
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(m, x23)); /* x^T flattened: 0 3 1 4 2 5, times w */
    nbt_assert_values(y, (double[]){0, 6, 3, 16, 10, 30}, 6, 0, 0);
    nb_tensor *s = nb_sum(y);
    NBT_OK(nb_backward(s));
    nbt_assert_values(nb_tensor_grad(p), (double[]){0, 3, 1, 4, 2, 5}, 6, 0, 0);
    nb_module_zero_grad(m);
    ck_assert_ptr_null(nb_tensor_grad(p));

    /* inside a scope, forward results belong to the scope, like any op's */
    scope = nb_scope_begin();
    nb_tensor *ys = NBT_NOTNULL(nb_module_forward(m, x23));
    nbt_assert_values(ys, (double[]){0, 6, 3, 16, 10, 30}, 6, 0, 0);
    nb_scope_end(scope);

    /* parameters(): a tensor registered twice (m's w is also the second
     * Scale's) is one parameter, as in PyTorch; the state names it twice */
    nb_module *seq = nb_sequential_module(NB_MODULES(m, scale_module(w), nb_sequential_module(NULL, 0)));
    ck_assert_ptr_nonnull(seq);
    nb_tensor *arr[1];
    ck_assert_int_eq(nb_module_parameters(seq, arr, 1), 1);
    ck_assert_ptr_eq(arr[0], w);
    ck_assert_int_eq(nb_module_parameters(seq, NULL, 0), 1);
    ck_assert_ptr_eq(nb_module_state(seq, "1.w"), w);
    ck_assert_int_eq(nb_module_state_count(seq), 2);
    ck_assert_ptr_nonnull(nb_module_child(seq, "2"));
    /* an empty Sequential is the identity (a new reference of a view) */
    nb_tensor *id = NBT_NOTNULL(nb_module_call(seq, "2", x));
    ck_assert_ptr_eq(nb_tensor_data(id), nb_tensor_data(x));
    nb_tensor_release(id);
    /* append names the next child "3" */
    NBT_OK(nb_sequential_append(seq, nb_module_new("Transpose", transpose_forward, NULL, NULL)));
    ck_assert_str_eq(nb_module_type(nb_module_child(seq, "3")), "Transpose");
    /* Sequential applies its children in order: Scale(Transpose(x)) = x flattened * w
     * (the other order fails: a 1-d tensor has no dim 1 to transpose) */
    nb_module *two = nb_sequential_module(NB_MODULES(nb_module_new("T", transpose_forward, NULL, NULL), scale_module(w)));
    nb_tensor *y2 = NBT_NOTNULL(nb_module_forward(two, x23));
    nbt_assert_values(y2, (double[]){0, 2, 6, 12, 20, 30}, 6, 0, 0);
    nb_tensor_release(y2);
    nb_module_free(two);

    nb_tensor_release(s);
    nb_tensor_release(y);
    nb_tensor_release(x23);
    nb_tensor_release(x);
    nb_module_free(seq);
    ck_assert_int_eq(scale_frees, 3); /* every ctx freed with its module */
}
END_TEST

/* Constructor and registration errors, with PyTorch's wording. */
START_TEST(test_errors_building) {
    nb_conv2d_params g = nb_conv2d_defaults();
    g.groups = 2;
    NBT_FAILS_WITH(nb_conv2d_module(3, 8, 3, 3, &g, true, NULL), "in_channels must be divisible by groups");
    NBT_FAILS_WITH(nb_conv2d_module(4, 7, 3, 3, &g, true, NULL), "out_channels must be divisible by groups");
    g.groups = 0;
    NBT_FAILS_WITH(nb_conv2d_module(4, 8, 3, 3, &g, true, NULL), "groups must be a positive integer");
    nb_conv2d_params same = nb_conv2d_defaults();
    same.padding_kind = NB_PADDING_SAME;
    same.stride[0] = 2;
    NBT_FAILS_WITH(nb_conv2d_module(4, 8, 3, 3, &same, true, NULL),
                   "padding='same' is not supported for strided convolutions");
    NBT_FAILS_WITH(nb_conv2d_module(4, 8, 0, 3, NULL, true, NULL), "kernel_size must be positive, but got (0, 3)");
    NBT_FAILS_WITH(nb_dropout_module(1.5, NULL), "dropout probability has to be between 0 and 1, but got 1.5");
    NBT_FAILS_WITH(nb_batch_norm2d_module(0, 1e-5, 0.1, true, true), "num_features must be positive, but got 0");
    NBT_FAILS_WITH(nb_linear_module(-1, 3, true, NULL), "in_features and out_features must be non-negative");
    NBT_FAILS_WITH(nb_max_pool2d_module(NULL), "MaxPool2d: params is NULL");

    nb_module *net = nb_module_new("Net", NULL, NULL, NULL);
    NBT_STATUS_FAILS_WITH(nb_module_add_child(net, "a.b", nb_relu_module()), "module name can't contain \".\", got: a.b");
    NBT_STATUS_FAILS_WITH(nb_module_add_child(net, "", nb_relu_module()), "module name can't be empty string");
    NBT_OK(nb_module_add_child(net, "fc", nb_linear_module(4, 3, true, NULL)));
    NBT_STATUS_FAILS_WITH(nb_module_add_child(net, "fc", nb_relu_module()), "attribute 'fc' already exists");
    /* a failed constructor passed straight in: its message survives */
    g.groups = 2;
    NBT_STATUS_FAILS_WITH(nb_module_add_child(net, "c", nb_conv2d_module(3, 8, 3, 3, &g, true, NULL)),
                          "in_channels must be divisible by groups");
    NBT_FAILS_WITH(nb_sequential_module(NB_MODULES(nb_relu_module(), nb_conv2d_module(3, 8, 3, 3, &g, true, NULL),
                                                   nb_tanh_module())),
                   "in_channels must be divisible by groups");
    /* a tree: one parent per module, and only roots are freed */
    nb_module *other = nb_module_new("Other", NULL, NULL, NULL);
    NBT_STATUS_FAILS_WITH(nb_module_add_child(other, "fc", nb_module_child(net, "fc")), "already has a parent (Net)");
    nb_clear_error();
    nb_module_free(nb_module_child(net, "fc"));
    ck_assert_msg(strstr(nb_last_error(), "free the root module instead"), "%s", nb_last_error());
    ck_assert_ptr_nonnull(nb_module_param(nb_module_child(net, "fc"), "weight")); /* still there */
    nb_module_free(other);
    NBT_STATUS_FAILS_WITH(nb_module_add_child(net, "self", net), "would make a cycle");
    NBT_STATUS_FAILS_WITH(nb_module_add_child(nb_module_child(net, "fc"), "up", net), "would make a cycle");

    nb_tensor *t = nb_zeros(NB_F32, NB_SHAPE(2));
    NBT_STATUS_FAILS_WITH(nb_module_register_parameter(net, "w.x", t), "parameter name can't contain \".\"");
    NBT_STATUS_FAILS_WITH(nb_module_register_buffer(net, "fc", t), "attribute 'fc' already exists");
    nb_tensor *i = nb_zeros(NB_I64, NB_SHAPE(2));
    NBT_STATUS_FAILS_WITH(nb_module_register_parameter(net, "i", i), "only float32 and float64 tensors can be parameters");
    NBT_OK(nb_module_register_buffer(net, "i", i)); /* an int64 buffer is fine */
    NBT_OK(nb_requires_grad_(t, true));
    nb_tensor *nonleaf = nb_mul_scalar(t, 2);
    NBT_STATUS_FAILS_WITH(nb_module_register_parameter(net, "nl", nonleaf), "cannot assign non-leaf Tensor to parameter 'nl'");

    /* lookups */
    NBT_FAILS_WITH(nb_module_child(net, "conv3"), "'Net' object has no child module 'conv3'");
    NBT_FAILS_WITH(nb_module_state(net, "fc.weights"), "unexpected key \"fc.weights\"");
    NBT_FAILS_WITH(nb_module_state(net, "nope.weight"), "unexpected key \"nope.weight\"");
    NBT_FAILS_WITH(nb_module_param(net, "weight"), "'Net' object has no parameter or buffer 'weight'");
    ck_assert_ptr_eq(nb_module_state(net, "i"), i);
    nb_tensor *wrong = nb_zeros(NB_F32, NB_SHAPE(4));
    NBT_STATUS_FAILS_WITH(nb_module_load_tensor(net, "fc.bias", wrong),
                          "size mismatch for fc.bias: copying a param with shape [4], the shape in current model is [3]");
    NBT_FAILS_WITH(nb_module_child_at(net, 5, NULL), "index 5 is out of range");

    /* a module without forward */
    NBT_FAILS_WITH(nb_module_forward(net, t), "Module [Net] is missing the required \"forward\" function");
    /* NULL module (a failed constructor) keeps the earlier message */
    NBT_FAILS_WITH(nb_module_forward(nb_dropout_module(-1, NULL), t), "dropout probability has to be between 0 and 1");
    nb_tensor *r[] = {t, i, nonleaf, wrong};
    for (int k = 0; k < 4; k++) nb_tensor_release(r[k]);
    nb_module_free(net);
}
END_TEST

/* A forward input of the wrong shape fails with the underlying op's message. */
START_TEST(test_errors_forward) {
    nb_module *fc = nb_linear_module(4, 3, true, NULL);
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(2, 5));
    nb_clear_error();
    ck_assert_ptr_null(nb_module_forward(fc, x));
    ck_assert_msg(strstr(nb_last_error(), "linear") && strstr(nb_last_error(), "5"), "%s", nb_last_error());
    nb_module *bn = nb_batch_norm2d_module(3, 1e-5, 0.1, true, true);
    nb_tensor *x3 = nb_zeros(NB_F32, NB_SHAPE(3, 4, 4));
    NBT_FAILS_WITH(nb_module_forward(bn, x3), "BatchNorm2d: expected 4D input (got 3D input)");
    nb_tensor *x4 = nb_zeros(NB_F32, NB_SHAPE(2, 5, 4, 4)); /* 5 channels for 3 features */
    nb_clear_error();
    ck_assert_ptr_null(nb_module_forward(bn, x4));
    ck_assert_msg(nb_last_error()[0], "no message");
    nbt_assert_values(nb_module_param(bn, "num_batches_tracked"), (double[]){0}, 1, 0, 0); /* not counted */
    nb_module *conv = nb_conv2d_module(3, 8, 3, 3, NULL, true, NULL);
    nb_clear_error();
    ck_assert_ptr_null(nb_module_forward(conv, x4));
    ck_assert_msg(strstr(nb_last_error(), "conv2d"), "%s", nb_last_error());
    /* a failure deep inside a Sequential surfaces unchanged */
    nb_module *seq = nb_sequential_module(NB_MODULES(nb_relu_module(), nb_linear_module(4, 3, true, NULL)));
    nb_clear_error();
    ck_assert_ptr_null(nb_module_forward(seq, x));
    ck_assert_msg(strstr(nb_last_error(), "linear"), "%s", nb_last_error());
    NBT_FAILS_WITH(nb_module_forward(seq, NULL), "Sequential.forward: argument 'input' is NULL");
    nb_tensor *r[] = {x, x3, x4};
    for (int k = 0; k < 3; k++) nb_tensor_release(r[k]);
    nb_module *m[] = {fc, bn, conv, seq};
    for (int k = 0; k < 4; k++) nb_module_free(m[k]);
}
END_TEST

static Suite *nn_suite(void) {
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("modules");
    tcase_add_test(tc, test_custom_module_ownership);
    tcase_add_test(tc, test_train_eval_flags);
    tcase_add_test(tc, test_errors_building);
    tcase_add_test(tc, test_state_dict_like_pytorch);
    tcase_add_test(tc, test_parameter_list);
    tcase_add_test(tc, test_default_init);
    tcase_add_test(tc, test_dropout_train_eval);
    tcase_add_test(tc, test_batch_norm_train_eval);
    tcase_add_test(tc, test_errors_forward);
    tcase_add_test(tc, test_mnist_forward);
    tcase_add_test(tc, test_small_net_like_pytorch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return nbt_run_suite(nn_suite()); }
