/* nabla/functional.h: linear, pooling, dropout, batch_norm, losses and
 * leaky_relu against PyTorch's numbers (tests/pytorch/functional_reference.py),
 * float64 gradchecks of every function, dropout statistics, PyTorch's error
 * messages for bad input, and bitwise equality at 1 and 2 threads. */
#include "testutil.h"

#include "nabla/functional.h"

#include <stdio.h>
#include <stdlib.h>

static const nb_dtype DTYPES[2] = {NB_F32, NB_F64};

static const char *ref_file(void) {
    static char path[4096];
    if (!path[0]) snprintf(path, sizeof path, "%s", nbt_data_path("functional.h5"));
    return path;
}

/* group/name of the reference file (see testutil.h). */
static nb_tensor *rd(const char *group, const char *name, nb_dtype dtype, bool requires_grad) {
    return nbt_ref_read(ref_file(), group, name, dtype, requires_grad);
}
static bool has(const char *group, const char *name) { return nbt_ref_has(ref_file(), group, name); }
static void check_close(const nb_tensor *got, const char *group, const char *name) {
    nbt_ref_close(got, ref_file(), group, name);
}

static void backward_with(nb_tensor *y, const char *group) {
    nb_tensor *go = rd(group, "go", nb_tensor_dtype(y), false);
    NBT_OK(nb_backward_ex(y, go, false));
}

/* ---------------- against PyTorch ---------------- */

START_TEST(test_linear_reference) {
    const char *cases[] = {"bias", "nobias", "3d", "1d"};
    size_t before = nb_memory_in_use();
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 4; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[64];
            snprintf(g, sizeof g, "linear/%s", cases[c]);
            nb_tensor *x = rd(g, "x", DTYPES[d], true), *w = rd(g, "w", DTYPES[d], true);
            nb_tensor *b = has(g, "b") ? rd(g, "b", DTYPES[d], true) : NULL;
            nb_tensor *y = NBT_NOTNULL(nb_linear(x, w, b));
            ck_assert_str_eq(nb_tensor_grad_fn_name(y), "linear");
            check_close(y, g, "y");
            backward_with(y, g);
            check_close(nb_tensor_grad(x), g, "g_x");
            check_close(nb_tensor_grad(w), g, "g_w");
            if (b) check_close(nb_tensor_grad(b), g, "g_b");
            nb_scope_end(sc);
        }
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

static nb_pool2d_params read_params(const char *g) {
    nb_tensor *p = rd(g, "params", NB_I64, false);
    const int64_t *v = nb_tensor_i64(p);
    nb_pool2d_params r = {{v[0], v[1]}, {v[2], v[3]}, {v[4], v[5]}, {v[6], v[7]}, v[8] != 0, v[9] != 0, 0};
    nb_tensor_release(p);
    return r;
}

static void pool_case(const char *kind, const char *name) {
    char g[64];
    snprintf(g, sizeof g, "%s_pool2d/%s", kind, name);
    nb_pool2d_params p = read_params(g);
    for (int d = 0; d < 2; d++) {
        nb_scope *sc = nb_scope_begin();
        nb_tensor *x = rd(g, "x", DTYPES[d], true);
        nb_tensor *y = NBT_NOTNULL(kind[0] == 'm' ? nb_max_pool2d(x, &p) : nb_avg_pool2d(x, &p));
        check_close(y, g, "y");
        backward_with(y, g);
        check_close(nb_tensor_grad(x), g, "g_x");
        nb_scope_end(sc);
    }
}

START_TEST(test_pool_reference) {
    const char *both[] = {"k2", "k3s2p1", "ceil", "ceilpad", "nonsq", "s1", "3d", "k2odd"};
    for (int i = 0; i < 8; i++) {
        pool_case("max", both[i]);
        pool_case("avg", both[i]);
    }
    pool_case("avg", "k3s2p1_nopad");
    pool_case("avg", "ceilpad_nopad");
    pool_case("max", "dil");
    pool_case("max", "dilceil");
    pool_case("max", "k2ties");
}
END_TEST

START_TEST(test_batch_norm_reference) {
    const char *cases[] = {"train4d", "train2d", "train3d_noaffine", "train_nostats", "eval4d", "eval_noaffine"};
    size_t before = nb_memory_in_use();
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 6; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[64];
            snprintf(g, sizeof g, "batch_norm/%s", cases[c]);
            nb_tensor *hyper = rd(g, "hyper", NB_F64, false);
            const double *h = nb_tensor_f64(hyper);
            double momentum = h[0], eps = h[1];
            bool training = h[2] != 0;
            nb_tensor *x = rd(g, "x", DTYPES[d], true);
            nb_tensor *w = has(g, "w") ? rd(g, "w", DTYPES[d], true) : NULL;
            nb_tensor *b = has(g, "b") ? rd(g, "b", DTYPES[d], true) : NULL;
            nb_tensor *rm = has(g, "rm0") ? rd(g, "rm0", DTYPES[d], false) : NULL;
            nb_tensor *rv = has(g, "rv0") ? rd(g, "rv0", DTYPES[d], false) : NULL;
            nb_tensor *y = NBT_NOTNULL(nb_batch_norm(x, rm, rv, w, b, training, momentum, eps));
            check_close(y, g, "y");
            if (rm) {
                check_close(rm, g, "rm1");
                check_close(rv, g, "rv1");
            }
            backward_with(y, g);
            check_close(nb_tensor_grad(x), g, "g_x");
            if (w) {
                check_close(nb_tensor_grad(w), g, "g_w");
                check_close(nb_tensor_grad(b), g, "g_b");
            }
            /* a second call (no grad) updates the running statistics again */
            nb_tensor *x2 = rd(g, "x2", DTYPES[d], false);
            nb_no_grad_begin();
            nb_tensor *y2 = nb_batch_norm(x2, rm, rv, w, b, training, momentum, eps);
            nb_no_grad_end();
            check_close(y2, g, "y2");
            ck_assert(!nb_tensor_requires_grad(y2));
            if (rm) {
                check_close(rm, g, "rm2");
                check_close(rv, g, "rv2");
            }
            nb_scope_end(sc);
        }
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

static nb_reduction reduction_of(const char *suffix) {
    return !strcmp(suffix, "mean") ? NB_REDUCTION_MEAN : !strcmp(suffix, "sum") ? NB_REDUCTION_SUM : NB_REDUCTION_NONE;
}

START_TEST(test_loss_reference) {
    const char *shapes[] = {"2d", "4d", "ignore", "1d"}, *reds[] = {"mean", "sum", "none"};
    size_t before = nb_memory_in_use();
    for (int d = 0; d < 2; d++)
        for (int s = 0; s < 4; s++)
            for (int r = 0; r < 3; r++)
                for (int ce = 0; ce < 2; ce++) {
                    nb_scope *sc = nb_scope_begin();
                    char g[64];
                    snprintf(g, sizeof g, "%s/%s_%s", ce ? "cross_entropy" : "nll_loss", shapes[s], reds[r]);
                    nb_tensor *x = rd(g, "x", DTYPES[d], true), *t = rd(g, "t", NB_I64, false);
                    nb_reduction red = reduction_of(reds[r]);
                    nb_tensor *y = NBT_NOTNULL(ce ? nb_cross_entropy(x, t, red) : nb_nll_loss(x, t, red));
                    check_close(y, g, "y");
                    backward_with(y, g);
                    check_close(nb_tensor_grad(x), g, "g_x");
                    nb_scope_end(sc);
                }
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < 3; r++) {
            nb_scope *sc = nb_scope_begin();
            char g[64];
            snprintf(g, sizeof g, "mse_loss/%s", reds[r]);
            nb_tensor *x = rd(g, "x", DTYPES[d], true), *t = rd(g, "t", DTYPES[d], true);
            nb_tensor *y = NBT_NOTNULL(nb_mse_loss(x, t, reduction_of(reds[r])));
            check_close(y, g, "y");
            backward_with(y, g);
            check_close(nb_tensor_grad(x), g, "g_x");
            check_close(nb_tensor_grad(t), g, "g_t");
            nb_scope_end(sc);
        }
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

START_TEST(test_leaky_relu_reference) {
    const char *cases[] = {"s001", "s02", "neg"};
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 3; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[64];
            snprintf(g, sizeof g, "leaky_relu/%s", cases[c]);
            char sp[96];
            snprintf(sp, sizeof sp, "%s/slope", g);
            double slope;
            ck_assert(nbt_h5_read_scalar(ref_file(), sp, &slope));
            nb_tensor *x = rd(g, "x", DTYPES[d], true);
            nb_tensor *y = NBT_NOTNULL(nb_leaky_relu(x, slope));
            check_close(y, g, "y");
            backward_with(y, g);
            check_close(nb_tensor_grad(x), g, "g_x");
            nb_scope_end(sc);
        }
}
END_TEST

/* ---------------- gradcheck (float64) ---------------- */

static nb_tensor *gc_linear(nb_tensor *const *in, int n, void *ctx) {
    (void)ctx;
    return nb_linear(in[0], in[1], n > 2 ? in[2] : NULL);
}
/* linear of a transposed (non-contiguous) x */
static nb_tensor *gc_linear_t(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    nb_tensor *xt = nb_transpose(in[0], 0, 1);
    nb_tensor *y = nb_linear(xt, in[1], NULL);
    nb_tensor_release(xt);
    return y;
}
static nb_tensor *gc_max_pool(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_max_pool2d(in[0], ctx);
}
static nb_tensor *gc_avg_pool(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_avg_pool2d(in[0], ctx);
}
static nb_tensor *gc_dropout(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    nb_rng rng;
    nb_rng_seed(&rng, 77); /* the same mask on every call */
    return nb_dropout(in[0], 0.4, true, &rng);
}
typedef struct { bool training; nb_tensor *rm, *rv; } bn_args;
static nb_tensor *gc_batch_norm(nb_tensor *const *in, int n, void *ctx) {
    const bn_args *a = ctx;
    return nb_batch_norm(in[0], a->rm, a->rv, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, a->training, 0.1, 1e-5);
}
typedef struct { nb_tensor *t; nb_reduction r; } loss_args;
static nb_tensor *gc_ce(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const loss_args *a = ctx;
    return nb_cross_entropy(in[0], a->t, a->r);
}
static nb_tensor *gc_nll(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const loss_args *a = ctx;
    return nb_nll_loss(in[0], a->t, a->r);
}
static nb_tensor *gc_mse(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_mse_loss(in[0], in[1], *(const nb_reduction *)ctx);
}
static nb_tensor *gc_leaky(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return nb_leaky_relu(in[0], 0.1);
}

START_TEST(test_gradcheck_linear) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(1, NB_F64, NB_SHAPE(2, 3, 5), true), *w = nbt_randn(2, NB_F64, NB_SHAPE(4, 5), true);
    nb_tensor *b = nbt_randn(3, NB_F64, NB_SHAPE(4), true);
    nbt_gradcheck(gc_linear, NULL, (nb_tensor *[]){x, w, b}, 3, false);
    nbt_gradcheck(gc_linear, NULL, (nb_tensor *[]){x, w}, 2, false);
    /* a transposed (non-contiguous) input */
    nb_tensor *xt = nbt_randn(4, NB_F64, NB_SHAPE(5, 3), true);
    nb_tensor *wt = nbt_randn(5, NB_F64, NB_SHAPE(5, 4), true);
    nb_tensor *xtt = nb_transpose(xt, 0, 1), *wtt = nb_transpose(wt, 0, 1);
    nb_tensor *y = NBT_NOTNULL(nb_linear(xtt, wtt, b));
    nbt_assert_shape(y, NB_SHAPE(3, 4));
    nbt_gradcheck(gc_linear_t, NULL, (nb_tensor *[]){xt, w}, 2, false);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gradcheck_pool) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(11, NB_F64, NB_SHAPE(2, 2, 7, 8), true);
    nb_pool2d_params ps[4] = {nb_pool2d_defaults(2), nb_pool2d_defaults(3), nb_pool2d_defaults(3),
                              nb_pool2d_defaults(2)};
    ps[1].stride[0] = ps[1].stride[1] = 2;
    ps[1].padding[0] = ps[1].padding[1] = 1;
    ps[1].ceil_mode = true;
    ps[2].stride[0] = 1;
    ps[2].padding[1] = 1;
    ps[2].dilation[0] = 2;
    ps[3].kernel[1] = 3;
    ps[3].stride[0] = 1;
    for (int i = 0; i < 4; i++) {
        nbt_gradcheck(gc_max_pool, &ps[i], &x, 1, false);
        ps[i].dilation[0] = 1;
        nbt_gradcheck(gc_avg_pool, &ps[i], &x, 1, false);
        ps[i].count_include_pad = false;
        nbt_gradcheck(gc_avg_pool, &ps[i], &x, 1, false);
    }
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gradcheck_dropout_bn) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(21, NB_F64, NB_SHAPE(3, 4, 5), true);
    nbt_gradcheck(gc_dropout, NULL, &x, 1, false);
    nb_tensor *w = nbt_randn(22, NB_F64, NB_SHAPE(4), true), *b = nbt_randn(23, NB_F64, NB_SHAPE(4), true);
    bn_args train = {true, NULL, NULL};
    nbt_gradcheck(gc_batch_norm, &train, (nb_tensor *[]){x, w, b}, 3, false);
    nbt_gradcheck(gc_batch_norm, &train, &x, 1, false);
    nb_tensor *x4 = nbt_randn(24, NB_F64, NB_SHAPE(3, 2, 3, 2), true);
    nb_tensor *w2 = nbt_randn(25, NB_F64, NB_SHAPE(2), true), *b2 = nbt_randn(26, NB_F64, NB_SHAPE(2), true);
    nbt_gradcheck(gc_batch_norm, &train, (nb_tensor *[]){x4, w2, b2}, 3, false);
    bn_args eval = {false, nb_full(NB_F64, NB_SHAPE(4), 0.3), nb_full(NB_F64, NB_SHAPE(4), 1.7)};
    nbt_gradcheck(gc_batch_norm, &eval, (nb_tensor *[]){x, w, b}, 3, false);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gradcheck_losses) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(31, NB_F64, NB_SHAPE(5, 4), true);
    nb_tensor *t = nb_from_data(NB_I64, NB_SHAPE(5), (int64_t[]){3, 0, -100, 1, 3});
    nb_tensor *x3 = nbt_randn(32, NB_F64, NB_SHAPE(2, 3, 4), true);
    nb_tensor *t3 = nb_from_data(NB_I64, NB_SHAPE(2, 4), (int64_t[]){0, 2, 1, 1, 2, 2, 0, 1});
    nb_tensor *tgt = nbt_randn(33, NB_F64, NB_SHAPE(5, 4), true);
    for (int r = 0; r < 3; r++) {
        loss_args a = {t, (nb_reduction)r}, a3 = {t3, (nb_reduction)r};
        nbt_gradcheck(gc_ce, &a, &x, 1, false);
        nbt_gradcheck(gc_nll, &a, &x, 1, false);
        nbt_gradcheck(gc_ce, &a3, &x3, 1, false);
        nbt_gradcheck(gc_nll, &a3, &x3, 1, false);
        nb_reduction red = (nb_reduction)r;
        nbt_gradcheck(gc_mse, &red, (nb_tensor *[]){x, tgt}, 2, false);
    }
    nbt_gradcheck(gc_leaky, NULL, &x, 1, false);
    nb_scope_end(sc);
}
END_TEST

/* ---------------- dropout semantics ---------------- */

START_TEST(test_dropout_statistics) {
    nb_scope *sc = nb_scope_begin();
    const int64_t n = 200000;
    for (int d = 0; d < 2; d++) {
        nb_tensor *x = nb_ones(DTYPES[d], NB_SHAPE(n));
        NBT_OK(nb_requires_grad_(x, true));
        const double ps[] = {0.1, 0.5, 0.75, 0.3};
        for (int k = 0; k < 4; k++) {
            double p = ps[k];
            nb_rng rng;
            nb_rng_seed(&rng, 100 + k);
            nb_tensor *y = NBT_NOTNULL(nb_dropout(x, p, true, &rng));
            double *v = malloc((size_t)n * sizeof *v);
            NBT_OK(nb_tensor_copy_out(y, v, NB_F64));
            double scale = DTYPES[d] == NB_F32 ? (double)(float)(1.0 / (1.0 - p)) : 1.0 / (1.0 - p);
            int64_t zeros = 0;
            for (int64_t i = 0; i < n; i++) {
                if (v[i] == 0) zeros++;
                else ck_assert_msg(v[i] == scale, "kept value %.17g != 1/(1-p) = %.17g", v[i], scale);
            }
            /* binomial std of the fraction is sqrt(p(1-p)/n) <= 0.0012: 0.006 is 5 sigma */
            ck_assert_msg(fabs((double)zeros / (double)n - p) < 0.006, "p=%g: fraction zeroed %g", p,
                          (double)zeros / (double)n);
            /* backward: the same mask and scale */
            NBT_OK(nb_backward_ex(y, nb_ones_like(y), false));
            nbt_assert_bitwise_equal(nb_tensor_grad(x), y);
            nb_zero_grad(x);
            free(v);
        }
        /* eval (and p = 0) is the identity, a view of x through which gradients pass */
        nb_tensor *e = NBT_NOTNULL(nb_dropout(x, 0.5, false, NULL));
        ck_assert_ptr_eq(nb_tensor_data(e), nb_tensor_data(x));
        nb_tensor *z = NBT_NOTNULL(nb_dropout(x, 0.0, true, NULL));
        ck_assert_ptr_eq(nb_tensor_data(z), nb_tensor_data(x));
        NBT_OK(nb_backward_ex(e, nb_full(DTYPES[d], NB_SHAPE(n), 3.0), false));
        double g;
        NBT_OK(nb_tensor_get(nb_tensor_grad(x), (int64_t[]){5}, &g));
        ck_assert(g == 3.0);
        /* p = 1 zeroes everything */
        nb_tensor *all = NBT_NOTNULL(nb_dropout(x, 1.0, true, NULL));
        double mx = 0;
        double *v = malloc((size_t)n * sizeof *v);
        NBT_OK(nb_tensor_copy_out(all, v, NB_F64));
        for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(v[i]));
        free(v);
        ck_assert(mx == 0);
    }
    /* the same seed gives the same mask at any thread count */
    nb_tensor *x = nbt_randn(5, NB_F32, NB_SHAPE(64, 1000), false);
    nb_rng r1, r2;
    nb_rng_seed(&r1, 9);
    nb_rng_seed(&r2, 9);
    int threads = nb_get_num_threads();
    NBT_OK(nb_set_num_threads(1));
    nb_tensor *a = nb_dropout(x, 0.5, true, &r1);
    NBT_OK(nb_set_num_threads(2));
    nb_tensor *b = nb_dropout(x, 0.5, true, &r2);
    NBT_OK(nb_set_num_threads(threads));
    nbt_assert_bitwise_equal(a, b);
    nb_scope_end(sc);
}
END_TEST

/* ---------------- errors ---------------- */

START_TEST(test_bad_inputs) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(5, 7)), *w = nb_zeros(NB_F32, NB_SHAPE(4, 6));
    NBT_FAILS_WITH(nb_linear(x, w, NULL), "mat1 and mat2 shapes cannot be multiplied (5x7 and 6x4)");
    NBT_FAILS_WITH(nb_linear(x, nb_zeros(NB_F64, NB_SHAPE(4, 7)), NULL), "expected scalar type Float but found Double");
    NBT_FAILS_WITH(nb_linear(x, nb_zeros(NB_F32, NB_SHAPE(4, 7)), nb_zeros(NB_F32, NB_SHAPE(5))),
                   "expected bias of shape [4]");
    NBT_FAILS_WITH(nb_linear(nb_scalar(NB_F32, 1), w, NULL), "need to be at least 1D");
    /* a NULL argument (a failed earlier op) keeps the earlier message */
    nb_tensor *bad = nb_linear(x, w, NULL);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_null(nb_linear(bad, w, NULL));
    ck_assert(strstr(nb_last_error(), "mat1 and mat2") != NULL);

    nb_tensor *img = nb_zeros(NB_F32, NB_SHAPE(2, 3, 8, 8));
    nb_pool2d_params p = nb_pool2d_defaults(2);
    p.padding[0] = p.padding[1] = 2;
    NBT_FAILS_WITH(nb_max_pool2d(img, &p), "pad should be at most half of kernel size, but got pad=2 and kernel_size=2");
    NBT_FAILS_WITH(nb_avg_pool2d(img, &p), "pad should be at most half of kernel size, but got pad=2 and kernel_size=2");
    p = nb_pool2d_defaults(2);
    p.kernel[1] = 4;
    p.padding[1] = 3;
    NBT_FAILS_WITH(nb_max_pool2d(img, &p), "pad=3 and kernel_size=4");
    p = nb_pool2d_defaults(0);
    NBT_FAILS_WITH(nb_max_pool2d(img, &p), "stride should not be zero");
    p.stride[0] = p.stride[1] = 1;
    NBT_FAILS_WITH(nb_max_pool2d(img, &p), "kernel size should be greater than zero, but got kH: 0 kW: 0");
    p = nb_pool2d_defaults(2);
    p.stride[0] = p.stride[1] = -1;
    NBT_FAILS_WITH(nb_max_pool2d(img, &p), "stride should be greater than zero, but got dH: -1 dW: -1");
    p = nb_pool2d_defaults(2);
    p.dilation[0] = -1;
    NBT_FAILS_WITH(nb_max_pool2d(img, &p), "dilation should be greater than zero");
    p.dilation[0] = 2;
    NBT_FAILS_WITH(nb_avg_pool2d(img, &p), "dilation is not supported");
    p = nb_pool2d_defaults(2);
    NBT_FAILS_WITH(nb_max_pool2d(nb_zeros(NB_F32, NB_SHAPE(8, 8)), &p),
                   "non-empty 3D or 4D (batch mode) tensor expected for input");
    NBT_FAILS_WITH(nb_max_pool2d(img, NULL), "params is NULL");
    p = nb_pool2d_defaults(3);
    NBT_FAILS_WITH(nb_max_pool2d(nb_zeros(NB_F32, NB_SHAPE(1, 1, 2, 2)), &p),
                   "Given input size: (1x2x2). Calculated output size: (1x0x0). Output size is too small");
    NBT_FAILS_WITH(nb_avg_pool2d(nb_zeros(NB_I64, NB_SHAPE(1, 1, 4, 4)), &p), "float32 or float64, but got int64");

    NBT_FAILS_WITH(nb_dropout(x, 1.5, true, NULL), "dropout probability has to be between 0 and 1, but got 1.5");
    NBT_FAILS_WITH(nb_dropout(x, -0.1, false, NULL), "dropout probability has to be between 0 and 1");

    nb_tensor *rm = nb_zeros(NB_F32, NB_SHAPE(3)), *rv = nb_ones(NB_F32, NB_SHAPE(3));
    NBT_FAILS_WITH(nb_batch_norm(nb_zeros(NB_F32, NB_SHAPE(1, 3)), NULL, NULL, NULL, NULL, true, 0.1, 1e-5),
                   "Expected more than 1 value per channel when training, got input size [1, 3]");
    NBT_FAILS_WITH(nb_batch_norm(nb_zeros(NB_F32, NB_SHAPE(4, 3)), NULL, NULL, NULL, NULL, false, 0.1, 1e-5),
                   "running_mean must be defined in evaluation mode");
    NBT_FAILS_WITH(nb_batch_norm(nb_zeros(NB_F32, NB_SHAPE(4, 4)), rm, rv, NULL, NULL, true, 0.1, 1e-5),
                   "running_mean should contain 4 elements not 3");
    NBT_FAILS_WITH(nb_batch_norm(nb_zeros(NB_F32, NB_SHAPE(4, 3)), rm, rv, nb_ones(NB_F32, NB_SHAPE(2)), NULL, true,
                                 0.1, 1e-5),
                   "weight should contain 3 elements not 2");
    NBT_FAILS_WITH(nb_batch_norm(nb_zeros(NB_F64, NB_SHAPE(4, 3)), rm, rv, NULL, NULL, true, 0.1, 1e-5),
                   "expected running_mean to have dtype float64");
    NBT_FAILS_WITH(nb_batch_norm(nb_zeros(NB_F32, NB_SHAPE(4)), NULL, NULL, NULL, NULL, true, 0.1, 1e-5),
                   "at least 2 dims");

    nb_tensor *lg = nb_zeros(NB_F32, NB_SHAPE(3, 5));
    NBT_FAILS_WITH(nb_cross_entropy(lg, nb_from_data(NB_I64, NB_SHAPE(3), (int64_t[]){1, 12, 2}), NB_REDUCTION_MEAN),
                   "Target 12 is out of bounds.");
    NBT_FAILS_WITH(nb_nll_loss(lg, nb_from_data(NB_I64, NB_SHAPE(3), (int64_t[]){1, -3, 2}), NB_REDUCTION_SUM),
                   "Target -3 is out of bounds.");
    NBT_FAILS_WITH(nb_cross_entropy(lg, nb_zeros(NB_I64, NB_SHAPE(4)), NB_REDUCTION_MEAN),
                   "Expected input batch_size (3) to match target batch_size (4).");
    NBT_FAILS_WITH(nb_nll_loss(lg, nb_zeros(NB_F32, NB_SHAPE(3)), NB_REDUCTION_MEAN),
                   "expected scalar type Long but found Float");
    NBT_FAILS_WITH(nb_nll_loss(lg, nb_zeros(NB_I64, NB_SHAPE(3, 2)), NB_REDUCTION_MEAN),
                   "1D target tensor expected, multi-target not supported");
    NBT_FAILS_WITH(nb_nll_loss(nb_zeros(NB_F32, NB_SHAPE(2, 3, 4)), nb_zeros(NB_I64, NB_SHAPE(2, 5)), NB_REDUCTION_MEAN),
                   "Expected target size [2, 4], got [2, 5]");
    NBT_FAILS_WITH(nb_nll_loss(lg, nb_zeros(NB_I64, NB_SHAPE(3)), (nb_reduction)7), "is not a valid value for reduction");
    NBT_FAILS_WITH(nb_mse_loss(nb_zeros(NB_F32, NB_SHAPE(3, 4)), nb_zeros(NB_F32, NB_SHAPE(3, 5)), NB_REDUCTION_MEAN),
                   "the size of tensor a (4) must match the size of tensor b (5) at non-singleton dimension 1");
    NBT_FAILS_WITH(nb_mse_loss(x, nb_zeros(NB_F64, NB_SHAPE(5, 7)), NB_REDUCTION_MEAN), "same dtype");
    NBT_FAILS_WITH(nb_leaky_relu(NULL, 0.1), "is NULL");
    nb_scope_end(sc);
}
END_TEST

/* ---------------- determinism ---------------- */

static void det_linear(nb_tensor **o) {
    nb_tensor *x = nbt_randn(41, NB_F32, NB_SHAPE(100, 60), true), *w = nbt_randn(42, NB_F32, NB_SHAPE(600, 60), true);
    nb_tensor *b = nbt_randn(43, NB_F32, NB_SHAPE(600), true);
    o[0] = NBT_NOTNULL(nb_linear(x, w, b));
    NBT_OK(nb_backward_ex(o[0], nbt_randn(44, NB_F32, NB_SHAPE(100, 600), false), true));
    o[1] = nb_tensor_grad(x);
    o[2] = nb_tensor_grad(w);
    o[3] = nb_tensor_grad(b);
}
static void det_batch_norm(nb_tensor **o) {
    nb_tensor *x = nbt_randn(51, NB_F32, NB_SHAPE(8, 16, 17, 17), true);
    nb_tensor *w = nbt_randn(52, NB_F32, NB_SHAPE(16), true), *b = nbt_randn(53, NB_F32, NB_SHAPE(16), true);
    nb_tensor *rm = nb_zeros(NB_F32, NB_SHAPE(16)), *rv = nb_ones(NB_F32, NB_SHAPE(16));
    o[0] = NBT_NOTNULL(nb_batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5));
    NBT_OK(nb_backward_ex(o[0], nbt_randn(54, NB_F32, NB_SHAPE(8, 16, 17, 17), false), true));
    o[1] = nb_tensor_grad(x);
    o[2] = nb_tensor_grad(w);
    o[3] = rv;
}
static void det_pool_loss(nb_tensor **o) {
    nb_tensor *x = nbt_randn(61, NB_F32, NB_SHAPE(8, 16, 24, 24), true);
    nb_pool2d_params p = nb_pool2d_defaults(2);
    nb_tensor *m = NBT_NOTNULL(nb_max_pool2d(x, &p));
    nb_tensor *a = NBT_NOTNULL(nb_avg_pool2d(m, &p));
    nb_tensor *flat = NBT_NOTNULL(nb_reshape(a, NB_SHAPE(96, 48)));
    nb_tensor *t = nb_zeros(NB_I64, NB_SHAPE(96));
    o[0] = NBT_NOTNULL(nb_cross_entropy(flat, t, NB_REDUCTION_MEAN));
    o[1] = m;
    NBT_OK(nb_backward_ex(o[0], NULL, true));
    o[2] = nb_tensor_grad(x);
}

START_TEST(test_thread_determinism) {
    nb_scope *sc = nb_scope_begin();
    nbt_same_at_1_and_2_threads(det_linear);
    nbt_same_at_1_and_2_threads(det_batch_norm);
    nbt_same_at_1_and_2_threads(det_pool_loss);
    nb_scope_end(sc);
}
END_TEST

int main(void) {
    Suite *s = suite_create("functional");
    TCase *ref = tcase_create("pytorch");
    tcase_add_test(ref, test_linear_reference);
    tcase_add_test(ref, test_pool_reference);
    tcase_add_test(ref, test_batch_norm_reference);
    tcase_add_test(ref, test_loss_reference);
    tcase_add_test(ref, test_leaky_relu_reference);
    suite_add_tcase(s, ref);
    TCase *gc = tcase_create("gradcheck");
    tcase_add_test(gc, test_gradcheck_linear);
    tcase_add_test(gc, test_gradcheck_pool);
    tcase_add_test(gc, test_gradcheck_dropout_bn);
    tcase_add_test(gc, test_gradcheck_losses);
    suite_add_tcase(s, gc);
    TCase *misc = tcase_create("semantics");
    tcase_add_test(misc, test_dropout_statistics);
    tcase_add_test(misc, test_bad_inputs);
    tcase_add_test(misc, test_thread_determinism);
    suite_add_tcase(s, misc);
    return nbt_run_suite(s);
}
