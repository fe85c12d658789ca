/* torch.nn.init against PyTorch (tests/pytorch/init_reference.py): the bounds
 * and standard deviations PyTorch's functions draw with, bit for bit (nabla's
 * values for a seed equal nb_rand_uniform / nb_rand_normal's with PyTorch's
 * bounds), calculate_gain, the fans, eye_ and dirac_, trunc_normal_'s
 * moments; in place on leaves and views without autograd; the errors. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/init.h"

static const char *const FNS[] = {"uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                                  "kaiming_normal_"};
static const char *const NONLINEARITIES[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                             "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh", "relu",
                                             "leaky_relu", "selu"};
static const char *const MODES[] = {"fan_in", "fan_out", "FAN_OUT"};

static char ref_file[4096];
static const char *ref(void) {
    if (!ref_file[0]) snprintf(ref_file, sizeof ref_file, "%s", nbt_data_path("init.h5"));
    return ref_file;
}

static bool get(const char *group, const char *key, double *v) {
    char name[128];
    snprintf(name, sizeof name, "%s/%s", group, key);
    return nbt_h5_read_scalar(ref(), name, v);
}

static double must(const char *group, const char *key) {
    double v = 0;
    ck_assert_msg(get(group, key, &v), "%s: no %s/%s", ref(), group, key);
    return v;
}

/* The shape stored at group/shape. */
static int read_shape(const char *group, int64_t *shape) {
    char name[128];
    snprintf(name, sizeof name, "%s/shape", group);
    nb_tensor *t = nbt_h5_read(ref(), name, NB_F64);
    int n = (int)nb_tensor_numel(t);
    for (int i = 0; i < n; i++) shape[i] = (int64_t)nb_tensor_f64(t)[i];
    nb_tensor_release(t);
    return n;
}

/* Each case in float32 and float64: the tensor equals, bit for bit, the
 * uniform / normal draws from the same seed with PyTorch's captured bounds. */
START_TEST(test_pytorch_bounds) {
    char g[32], name[64];
    snprintf(g, sizeof g, "case/%d", _i);
    const int fn = (int)must(g, "fn");
    int64_t shape[8];
    const int ndim = read_shape(g, shape);
    snprintf(name, sizeof name, "%s/args", g);
    nb_tensor *args = nbt_h5_read(ref(), name, NB_F64);
    const double lo = nb_tensor_f64(args)[0], hi = nb_tensor_f64(args)[1];
    double a = 0, b = 1, gain = 1, mode = 0, nl = 10;
    get(g, "a", &a), get(g, "b", &b), get(g, "gain", &gain), get(g, "mode", &mode), get(g, "nonlinearity", &nl);
    if (fn == 1) get(g, "mean", &a), get(g, "std", &b);
    for (int dt = 0; dt < 2; dt++) {
        const nb_dtype dtype = dt ? NB_F64 : NB_F32;
        nb_tensor *t = NBT_NOTNULL(nb_zeros(dtype, ndim, shape));
        nb_rng rng, rng2;
        nb_rng_seed(&rng, 42 + (uint64_t)_i);
        rng2 = rng;
        nb_status st = NB_OK;
        switch (fn) {
        case 0: st = nb_init_uniform_(t, a, b, &rng); break;
        case 1: st = nb_init_normal_(t, a, b, &rng); break;
        case 2: st = nb_init_xavier_uniform_(t, gain, &rng); break;
        case 3: st = nb_init_xavier_normal_(t, gain, &rng); break;
        case 4: st = nb_init_kaiming_uniform_(t, a, MODES[(int)mode], NONLINEARITIES[(int)nl], &rng); break;
        default: st = nb_init_kaiming_normal_(t, a, MODES[(int)mode], NONLINEARITIES[(int)nl], &rng); break;
        }
        ck_assert_msg(st == NB_OK, "%s: %s", FNS[fn], nb_last_error());
        const bool normal = fn == 1 || fn == 3 || fn == 5;
        nb_tensor *want = NBT_NOTNULL(normal ? nb_rand_normal(&rng2, dtype, ndim, shape, lo, hi)
                                             : nb_rand_uniform(&rng2, dtype, ndim, shape, lo, hi));
        nbt_assert_bitwise_equal(t, want);
        ck_assert_msg(memcmp(&rng, &rng2, sizeof rng) == 0, "%s drew a different number of values", FNS[fn]);
        nb_tensor_release(t);
        nb_tensor_release(want);
    }
    nb_tensor_release(args);
}
END_TEST

START_TEST(test_pytorch_gain_and_fans) {
    for (int j = 0; j < (int)must(".", "ngains"); j++) {
        char g[32];
        snprintf(g, sizeof g, "gain/%d", j);
        double param = NAN; /* None */
        get(g, "param", &param);
        const char *nl = NONLINEARITIES[(int)must(g, "nonlinearity")];
        ck_assert_msg(nb_init_calculate_gain(nl, param) == must(g, "value"), "calculate_gain(%s, %g): %.17g, not %.17g",
                      nl, param, nb_init_calculate_gain(nl, param), must(g, "value"));
    }
    for (int j = 0; j < (int)must(".", "nfans"); j++) {
        char g[32];
        snprintf(g, sizeof g, "fan/%d", j);
        int64_t shape[8], fi = -1, fo = -1;
        const int ndim = read_shape(g, shape);
        nb_tensor *t = NBT_NOTNULL(nb_zeros(NB_F32, ndim, shape));
        NBT_OK(nb_init_calculate_fan_in_and_fan_out(t, &fi, &fo));
        ck_assert_int_eq(fi, (int64_t)must(g, "fan_in"));
        ck_assert_int_eq(fo, (int64_t)must(g, "fan_out"));
        nb_tensor_release(t);
    }
}
END_TEST

START_TEST(test_pytorch_eye_dirac) {
    for (int kind = 0; kind < 2; kind++) {
        for (int j = 0; j < (int)must(".", kind ? "ndirac" : "neye"); j++) {
            char g[32], name[64];
            snprintf(g, sizeof g, "%s/%d", kind ? "dirac" : "eye", j);
            int64_t shape[8];
            const int ndim = read_shape(g, shape);
            snprintf(name, sizeof name, "%s/value", g);
            nb_tensor *want = nbt_h5_read(ref(), name, NB_F64);
            nb_tensor *t = NBT_NOTNULL(nb_full(NB_F64, ndim, shape, 7.0));
            NBT_OK(kind ? nb_init_dirac_(t, (int64_t)must(g, "groups")) : nb_init_eye_(t));
            nbt_assert_values(t, nb_tensor_f64(want), nb_tensor_numel(want), 0, 0);
            nb_tensor_release(t);
            nb_tensor_release(want);
        }
    }
}
END_TEST

/* trunc_normal_: within [a, b], and its sample mean and std agree with
 * PyTorch's over 2e6 draws each, within 6 standard errors of the difference. */
START_TEST(test_pytorch_trunc_normal) {
    for (int j = 0; j < (int)must(".", "ntrunc"); j++) {
        char g[32];
        snprintf(g, sizeof g, "trunc/%d", j);
        const double mean = must(g, "mean"), std = must(g, "std"), a = must(g, "a"), b = must(g, "b");
        const int64_t n = (int64_t)must(g, "n");
        for (int dt = 0; dt < 2; dt++) {
            nb_tensor *t = NBT_NOTNULL(nb_zeros(dt ? NB_F64 : NB_F32, NB_SHAPE(n)));
            nb_rng rng;
            nb_rng_seed(&rng, 7 + (uint64_t)j);
            NBT_OK(nb_init_trunc_normal_(t, mean, std, a, b, &rng));
            double *x = malloc(sizeof(double) * (size_t)n), s = 0, ss = 0, lo = INFINITY, hi = -INFINITY;
            NBT_OK(nb_tensor_copy_out(t, x, NB_F64));
            for (int64_t i = 0; i < n; i++) s += x[i], lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
            const double m = s / (double)n;
            for (int64_t i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
            const double sd = sqrt(ss / (double)(n - 1)), pm = must(g, "sample_mean"), psd = must(g, "sample_std");
            const double se_mean = psd * sqrt(2.0 / (double)n), se_std = psd * sqrt(1.0 / (double)n); /* both samples */
            ck_assert_msg(lo >= a && hi <= b, "trunc_normal_ %d: values in [%g, %g], outside [%g, %g]", j, lo, hi, a, b);
            ck_assert_msg(fabs(m - pm) < 6 * se_mean, "trunc_normal_ %d: mean %g, PyTorch's %g", j, m, pm);
            ck_assert_msg(fabs(sd - psd) < 6 * se_std, "trunc_normal_ %d: std %g, PyTorch's %g", j, sd, psd);
            free(x);
            nb_tensor_release(t);
        }
    }
}
END_TEST

/* In place, outside autograd: a leaf stays a leaf with its grad; a strided
 * view gets the values a contiguous tensor would, in its row-major order. */
START_TEST(test_in_place) {
    nb_tensor *w = nbt_randn(1, NB_F32, NB_SHAPE(4, 6), true);
    nb_tensor *g = NBT_NOTNULL(nb_ones_like(w));
    NBT_OK(nb_backward_ex(w, g, false));
    const nb_tensor *grad = nb_tensor_grad(w);
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    NBT_OK(nb_init_kaiming_uniform_(w, 0, NULL, NULL, &rng));
    ck_assert(nb_tensor_is_leaf(w) && nb_tensor_requires_grad(w));
    ck_assert_ptr_eq(nb_tensor_grad(w), grad);
    nbt_assert_bitwise_equal(grad, g);
    ck_assert_ptr_null(nb_tensor_grad_fn_name(w));

    nb_tensor *base = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(5, 3)));
    nb_tensor *view = NBT_NOTNULL(nb_transpose(base, 0, 1)); /* [3, 5], not contiguous */
    nb_tensor *flat = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(3, 5)));
    nb_rng r1, r2;
    nb_rng_seed(&r1, 9), nb_rng_seed(&r2, 9);
    NBT_OK(nb_init_xavier_normal_(view, 1.0, &r1));
    NBT_OK(nb_init_xavier_normal_(flat, 1.0, &r2));
    nb_tensor *vc = NBT_NOTNULL(nb_contiguous(view));
    nbt_assert_bitwise_equal(vc, flat);
    NBT_OK(nb_init_eye_(view));
    double v;
    NBT_OK(nb_tensor_get(base, (int64_t[]){1, 1}, &v));
    ck_assert(v == 1);
    NBT_OK(nb_tensor_get(base, (int64_t[]){1, 0}, &v));
    ck_assert(v == 0);
    NBT_OK(nb_init_constant_(view, 2.5));
    NBT_OK(nb_tensor_get(base, (int64_t[]){4, 2}, &v));
    ck_assert(v == 2.5);
    nb_tensor *ints = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(2, 2))); /* fill_ accepts any dtype, as PyTorch's */
    NBT_OK(nb_init_ones_(ints));
    NBT_OK(nb_init_eye_(ints));
    ck_assert(nb_tensor_i64(ints)[0] == 1 && nb_tensor_i64(ints)[1] == 0);
    NBT_OK(nb_init_zeros_(ints));
    ck_assert(nb_tensor_i64(ints)[0] == 0);

    /* a tensor with no elements: kaiming draws nothing */
    nb_tensor *empty = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(0, 3)));
    nb_rng before = rng;
    NBT_OK(nb_init_kaiming_normal_(empty, 0, "bad mode ignored: no-op first, as PyTorch", "relu", &rng));
    ck_assert(memcmp(&before, &rng, sizeof rng) == 0);
    nb_tensor *r[] = {w, g, base, view, flat, vc, ints, empty};
    for (int i = 0; i < 8; i++) nb_tensor_release(r[i]);
}
END_TEST

START_TEST(test_errors) {
    nb_tensor *v = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(3)));
    nb_tensor *m = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(3, 4)));
    nb_tensor *d = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(3)));
    nb_tensor *ints = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(3, 4)));
    nb_tensor *z = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(0, 0)));
    const char *fewer = "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions";
    NBT_STATUS_FAILS_WITH(nb_init_xavier_uniform_(v, 1, NULL), fewer);
    NBT_STATUS_FAILS_WITH(nb_init_kaiming_uniform_(v, 0, NULL, NULL, NULL), fewer);
    NBT_STATUS_FAILS_WITH(nb_init_calculate_fan_in_and_fan_out(v, NULL, NULL), fewer);
    NBT_STATUS_FAILS_WITH(nb_init_xavier_uniform_(z, 1, NULL), "xavier_uniform_: float division by zero");
    NBT_STATUS_FAILS_WITH(nb_init_kaiming_uniform_(m, 0, "fan_x", NULL, NULL),
                          "kaiming_uniform_: Mode fan_x not supported, please use one of ['fan_in', 'fan_out']");
    NBT_OK(nb_init_kaiming_uniform_(m, 0, "FAN_OUT", NULL, NULL));
    NBT_STATUS_FAILS_WITH(nb_init_kaiming_normal_(m, 0, NULL, "gelu", NULL), "kaiming_normal_: Unsupported nonlinearity gelu");
    ck_assert(isnan(nb_init_calculate_gain("gelu", NAN)));
    ck_assert(strstr(nb_last_error(), "calculate_gain: Unsupported nonlinearity gelu"));
    NBT_STATUS_FAILS_WITH(nb_init_uniform_(v, 1, 0, NULL), "uniform_: uniform_ expects to return a [from, to) range, but found from=1 > to=0");
    NBT_STATUS_FAILS_WITH(nb_init_uniform_(v, -INFINITY, 1, NULL), "uniform_: from is out of bounds for float");
    NBT_STATUS_FAILS_WITH(nb_init_uniform_(v, 0, 1e39, NULL), "uniform_: to is out of bounds for float");
    NBT_STATUS_FAILS_WITH(nb_init_uniform_(v, -3e38, 3e38, NULL),
                          "uniform_: uniform_ expects to-from <= std::numeric_limits<Float>::max(), but found to=3e+38 "
                          "and from=-3e+38 which result in to-from to exceed the limit");
    NBT_STATUS_FAILS_WITH(nb_init_uniform_(d, -1e308, 1e308, NULL), "std::numeric_limits<Double>::max()");
    NBT_STATUS_FAILS_WITH(nb_init_normal_(v, 0, -1, NULL), "normal_: normal expects std >= 0.0, but found std -1");
    NBT_STATUS_FAILS_WITH(nb_init_xavier_normal_(m, -1, NULL), "xavier_normal_: normal expects std >= 0.0");
    NBT_STATUS_FAILS_WITH(nb_init_uniform_(ints, 0, 1, NULL), "uniform_: expected 'tensor' to be float32 or float64, but got int64");
    NBT_STATUS_FAILS_WITH(nb_init_trunc_normal_(v, 0, 0, -2, 2, NULL), "trunc_normal_: expected a finite mean and std > 0");
    NBT_STATUS_FAILS_WITH(nb_init_trunc_normal_(v, 0, 1, 2, -2, NULL), "trunc_normal_: expected a <= b, but got a=2 b=-2");
    NBT_STATUS_FAILS_WITH(nb_init_eye_(v), "eye_: Only tensors with 2 dimensions are supported");
    NBT_STATUS_FAILS_WITH(nb_init_dirac_(m, 1), "dirac_: Only tensors with 3, 4, or 5 dimensions are supported");
    nb_tensor *w = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(4, 3, 3, 3)));
    NBT_STATUS_FAILS_WITH(nb_init_dirac_(w, 3), "dirac_: dim 0 must be divisible by groups");
    NBT_STATUS_FAILS_WITH(nb_init_dirac_(w, 0), "dirac_: expected groups >= 1, but got 0");
    nb_tensor *r[] = {v, m, d, ints, z, w};
    for (int i = 0; i < 6; i++) nb_tensor_release(r[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("init");
    TCase *tc = tcase_create("init");
    tcase_add_loop_test(tc, test_pytorch_bounds, 0, nbt_h5_loop_count(ref(), "ncases"));
    tcase_add_test(tc, test_pytorch_gain_and_fans);
    tcase_add_test(tc, test_pytorch_eye_dirac);
    tcase_add_test(tc, test_pytorch_trunc_normal);
    tcase_add_test(tc, test_in_place);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
