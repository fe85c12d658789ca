/* The activations gelu (none, tanh), silu, elu, softplus, hardswish and
 * softmax, and their modules: against PyTorch's numbers
 * (tests/pytorch/activations_reference.py: random inputs, special values,
 * empty inputs, a Sequential of the modules loaded from PyTorch's
 * state_dict), the float32 fast math against libm, the float32 kernels
 * against the float64 ones, float64 gradchecks, errors, and bitwise equality
 * at 1 and 2 threads. */
#include "testutil.h"

#include "nabla/functional.h"
#include "nabla/io.h"
#include "nabla/nn.h"
#include "tensor/fastmath.h"

#include <stdio.h>
#include <stdlib.h>

#define T(...) NB_SHAPE(__VA_ARGS__)
#define FILE_ nbt_data_path("activations.h5")

/* ---- the twin's ops: p as activations_reference.py documents ---- */
static nb_tensor *gelu(nb_tensor *const *in, const double *p) { return nb_gelu(in[0], (nb_gelu_approximate)p[0]); }
static nb_tensor *silu(nb_tensor *const *in, const double *p) {
    (void)p;
    return nb_silu(in[0]);
}
static nb_tensor *elu(nb_tensor *const *in, const double *p) { return nb_elu(in[0], p[0]); }
static nb_tensor *softplus(nb_tensor *const *in, const double *p) { return nb_softplus(in[0], p[0], p[1]); }
static nb_tensor *hardswish(nb_tensor *const *in, const double *p) {
    (void)p;
    return nb_hardswish(in[0]);
}
static nb_tensor *softmax(nb_tensor *const *in, const double *p) { return nb_softmax(in[0], (int)p[0]); }
static nb_tensor *log_softmax(nb_tensor *const *in, const double *p) { return nb_log_softmax(in[0], (int)p[0]); }

static const nbt_twin_op OPS[] = {
    {"gelu", gelu}, {"silu", silu}, {"elu", elu}, {"softplus", softplus}, {"hardswish", hardswish},
    {"softmax", softmax}, {"log_softmax", log_softmax},
};

START_TEST(test_pytorch) {
    nbt_twin_run_all(FILE_, OPS, sizeof OPS / sizeof OPS[0], NB_F32);
    nbt_twin_run_all(FILE_, OPS, sizeof OPS / sizeof OPS[0], NB_F64);
}
END_TEST

/* ---- the fast float32 math against libm in double ---- */
/* |got - want| in units in the last place of want as a float (NaN and infinities must match). */
static double ulps(float got, double want) {
    if (isnan(want) || isinf(want)) return (isnan(want) ? isnan(got) : got == want) ? 0 : INFINITY;
    double ulp = fabs(want) >= 1.17549435e-38 ? ldexp(1.0, ilogb(want) - 23) : ldexp(1.0, -149);
    return fabs((double)got - want) / ulp;
}

START_TEST(test_fast_math) {
    double worst[4] = {0};
    float at[4] = {0};
    /* every 10007th bit pattern: all signs, exponents (subnormals too) and specials */
    for (uint64_t b = 0; b <= 0xffffffffu; b += 10007) {
        uint32_t bits = (uint32_t)b;
        float x;
        memcpy(&x, &bits, 4);
        double e[4] = {ulps(nbi_logf(x), log((double)x)), ulps(nbi_log1pf(x), log1p((double)x)),
                       fabs(x) < 88 ? ulps(nbi_expm1f(x), expm1((double)x)) : 0, /* beyond: overflow or -1 */
                       isnan(x) ? (isnan(nbi_erff(x)) ? 0 : INFINITY) : fabs(nbi_erff(x) - erf((double)x))};
        for (int k = 0; k < 4; k++)
            if (!(e[k] <= worst[k])) {
                worst[k] = e[k];
                at[k] = x;
            }
    }
    ck_assert_msg(worst[0] <= 1.0, "logf: %g ulp at %a", worst[0], at[0]);
    ck_assert_msg(worst[1] <= 3.0, "log1pf: %g ulp at %a", worst[1], at[1]);
    ck_assert_msg(worst[2] <= 2.0, "expm1f: %g ulp at %a", worst[2], at[2]);
    ck_assert_msg(worst[3] <= 1e-6, "erff: absolute error %g at %a", worst[3], at[3]);
    /* the special values, exactly */
    ck_assert(nbi_logf(0) == -INFINITY && isnan(nbi_logf(-1)) && nbi_logf(INFINITY) == INFINITY);
    ck_assert(nbi_log1pf(-1) == -INFINITY && isnan(nbi_log1pf(-2)) && nbi_log1pf(INFINITY) == INFINITY);
    ck_assert(nbi_log1pf(1e-30f) == 1e-30f && nbi_expm1f(1e-30f) == 1e-30f);
    ck_assert(nbi_expm1f(-INFINITY) == -1 && nbi_expm1f(INFINITY) == INFINITY && isnan(nbi_expm1f(NAN)));
    ck_assert(nbi_erff(INFINITY) == 1 && nbi_erff(-INFINITY) == -1 && isnan(nbi_erff(NAN)));
}
END_TEST

/* The float32 kernels (fast math) against the float64 ones (libm), over a
 * wide range of inputs, forward and backward. */
typedef nb_tensor *(*act_fn)(const nb_tensor *x, const double *p);
static nb_tensor *a_gelu(const nb_tensor *x, const double *p) { return nb_gelu(x, (nb_gelu_approximate)p[0]); }
static nb_tensor *a_silu(const nb_tensor *x, const double *p) {
    (void)p;
    return nb_silu(x);
}
static nb_tensor *a_elu(const nb_tensor *x, const double *p) { return nb_elu(x, p[0]); }
static nb_tensor *a_softplus(const nb_tensor *x, const double *p) { return nb_softplus(x, p[0], p[1]); }
static nb_tensor *a_hardswish(const nb_tensor *x, const double *p) {
    (void)p;
    return nb_hardswish(x);
}
static const struct {
    const char *name;
    act_fn f;
    double p[2];
} ACTS[] = {
    {"gelu", a_gelu, {NB_GELU_NONE}}, {"gelu tanh", a_gelu, {NB_GELU_TANH}}, {"silu", a_silu, {0}},
    {"elu", a_elu, {1.0}},            {"elu 0.3", a_elu, {0.3}},             {"softplus", a_softplus, {1, 20}},
    {"softplus 2 5", a_softplus, {2, 5}}, {"hardswish", a_hardswish, {0}},
};
#define NACTS ((int)(sizeof ACTS / sizeof ACTS[0]))

START_TEST(test_float32_against_float64) {
    nb_scope *sc = nb_scope_begin();
    const int64_t n = 40000;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *x64 = nb_mul_scalar(nb_rand_normal(&rng, NB_F64, T(n), 0, 1), 6.0);
    nb_tensor *x32 = nb_to_dtype(x64, NB_F32), *x64r = nb_to_dtype(x32, NB_F64); /* the same values in both */
    nb_tensor *g32 = nb_ones(NB_F32, T(n)), *g64 = nb_ones(NB_F64, T(n));
    NBT_OK(nb_requires_grad_(x32, true));
    NBT_OK(nb_requires_grad_(x64r, true));
    double *a = malloc(sizeof(double) * (size_t)n), *b = malloc(sizeof(double) * (size_t)n);
    for (int k = 0; k < NACTS; k++) {
        nb_tensor *y32 = NBT_NOTNULL(ACTS[k].f(x32, ACTS[k].p)), *y64 = NBT_NOTNULL(ACTS[k].f(x64r, ACTS[k].p));
        NBT_OK(nb_backward_ex(y32, g32, false));
        NBT_OK(nb_backward_ex(y64, g64, false));
        for (int pass = 0; pass < 2; pass++) {
            NBT_OK(nb_tensor_copy_out(pass ? nb_tensor_grad(x32) : y32, a, NB_F64));
            NBT_OK(nb_tensor_copy_out(pass ? nb_tensor_grad(x64r) : y64, b, NB_F64));
            for (int64_t i = 0; i < n; i++)
                ck_assert_msg(fabs(a[i] - b[i]) <= 1e-6 * (1 + fabs(b[i])), "%s %s at x = %.9g: float32 %.9g, float64 %.9g",
                              ACTS[k].name, pass ? "gradient" : "output", nb_tensor_f64(x64r)[i], a[i], b[i]);
        }
        nb_zero_grad(x32);
        nb_zero_grad(x64r);
    }
    free(a);
    free(b);
    nb_scope_end(sc);
}
END_TEST

/* ---- gradcheck (float64) ---- */
static nb_tensor *gc_act(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    int k = *(const int *)ctx;
    return ACTS[k].f(in[0], ACTS[k].p);
}
static nb_tensor *gc_softmax(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_softmax(in[0], *(const int *)ctx);
}

START_TEST(test_gradcheck) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_mul_scalar(nbt_randn(11, NB_F64, T(4, 6), false), 3.0);
    x = nb_detach(x);
    NBT_OK(nb_requires_grad_(x, true));
    for (int k = 0; k < NACTS; k++) nbt_gradcheck(gc_act, &k, &x, 1, false);
    nb_tensor *x3 = nbt_randn(12, NB_F64, T(2, 3, 4), true);
    for (int dim = -1; dim < 3; dim++) nbt_gradcheck(gc_softmax, &dim, &x3, 1, false);
    nb_scope_end(sc);
}
END_TEST

/* ---- errors ---- */
START_TEST(test_bad_inputs) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_zeros(NB_F32, T(2, 3)), *l = nb_zeros(NB_I64, T(2, 3));
    NBT_FAILS_WITH(nb_gelu(x, (nb_gelu_approximate)2), "gelu: approximate argument must be either none or tanh");
    NBT_FAILS_WITH(nb_gelu(l, NB_GELU_NONE), "gelu: expected 'input' to be float32 or float64, but got int64");
    NBT_FAILS_WITH(nb_elu(x, NAN), "elu: expected a finite alpha, but got nan");
    NBT_FAILS_WITH(nb_softplus(x, INFINITY, 20), "softplus: expected a finite beta, but got inf");
    NBT_FAILS_WITH(nb_softplus(x, 1, NAN), "softplus: expected a finite threshold");
    NBT_FAILS_WITH(nb_silu(NULL), "silu: argument 'input' is NULL");
    NBT_FAILS_WITH(nb_hardswish(l), "hardswish: expected 'input' to be float32 or float64");
    NBT_FAILS_WITH(nb_softmax(x, 2), "softmax: dimension out of range");
    NBT_FAILS_WITH(nb_softmax(l, 0), "softmax");
    NBT_FAILS_WITH(nb_gelu_module((nb_gelu_approximate)-1), "GELU: approximate argument must be either none or tanh");
    NBT_FAILS_WITH(nb_elu_module(INFINITY), "ELU: expected a finite alpha");
    NBT_FAILS_WITH(nb_softplus_module(1, -INFINITY), "Softplus: expected a finite threshold");
    nb_module *sm = nb_softmax_module(3);
    NBT_FAILS_WITH(nb_module_forward(sm, x), "softmax: dimension out of range");
    nb_module_free(sm);
    nb_scope_end(sc);
}
END_TEST

/* ---- modules ---- */
START_TEST(test_modules_match_functional) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(13, NB_F32, T(3, 4), false);
    struct {
        nb_module *m;
        const char *type;
        nb_tensor *want;
    } cases[] = {
        {nb_gelu_module(NB_GELU_TANH), "GELU", nb_gelu(x, NB_GELU_TANH)},
        {nb_silu_module(), "SiLU", nb_silu(x)},
        {nb_elu_module(0.4), "ELU", nb_elu(x, 0.4)},
        {nb_softplus_module(1.5, 2.0), "Softplus", nb_softplus(x, 1.5, 2.0)},
        {nb_hardswish_module(), "Hardswish", nb_hardswish(x)},
        {nb_softmax_module(0), "Softmax", nb_softmax(x, 0)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(cases[i].m != NULL, "%s: %s", cases[i].type, nb_last_error());
        ck_assert_str_eq(nb_module_type(cases[i].m), cases[i].type);
        ck_assert_int_eq(nb_module_state_count(cases[i].m), 0);
        nbt_assert_bitwise_equal(NBT_NOTNULL(nb_module_forward(cases[i].m, x)), cases[i].want);
        nb_module_free(cases[i].m);
    }
    nb_scope_end(sc);
}
END_TEST

/* values of got against the twin's dataset name (float32 weights: 1e-5 relative to the largest). */
static void assert_like_twin(const nb_tensor *got, const char *name) {
    nb_tensor *e = nbt_h5_read(FILE_, name, NB_F64);
    nbt_assert_shape(got, nb_tensor_ndim(e), nb_tensor_shape(e));
    int64_t n = nb_tensor_numel(e);
    double scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(nb_tensor_f64(e)[i]));
    nbt_assert_values(got, nb_tensor_f64(e), n, 1e-5 * scale, 1e-5);
    nb_tensor_release(e);
}

static int compare_grad(const char *name, nb_tensor *t, bool is_parameter, void *ctx) {
    (void)is_parameter, (void)ctx;
    char path[256];
    snprintf(path, sizeof path, "net/grad/%s", name);
    assert_like_twin(nb_tensor_grad(t), path);
    return 0;
}

/* A Sequential of every activation module, its weights loaded from the
 * state_dict file PyTorch wrote, reproduces PyTorch's output and gradients. */
START_TEST(test_sequential_from_pytorch) {
    nb_scope *sc = nb_scope_begin();
    nb_module *net = nb_sequential_module(NB_MODULES(
        nb_linear_module(6, 8, true, NULL), nb_gelu_module(NB_GELU_NONE), nb_linear_module(8, 8, true, NULL),
        nb_silu_module(), nb_elu_module(0.7), nb_softplus_module(2.0, 5.0), nb_linear_module(8, 8, true, NULL),
        nb_hardswish_module(), nb_gelu_module(NB_GELU_TANH), nb_leaky_relu_module(0.2), nb_linear_module(8, 4, true, NULL),
        nb_softmax_module(1)));
    ck_assert_msg(net != NULL, "%s", nb_last_error());
    NBT_OK(nb_module_load_hdf5(net, nbt_data_path("activations_net_state.h5"), true, NULL));
    nb_tensor *x = nbt_h5_read(FILE_, "net/x", NB_F32);
    NBT_OK(nb_requires_grad_(x, true));
    nb_tensor *y = NBT_NOTNULL(nb_module_forward(net, x));
    assert_like_twin(y, "net/y");
    NBT_OK(nb_backward_ex(y, nbt_h5_read(FILE_, "net/go", NB_F32), false));
    assert_like_twin(nb_tensor_grad(x), "net/gx");
    NBT_OK(nb_module_visit_parameters(net, compare_grad, NULL));
    nb_module_free(net);
    nb_scope_end(sc);
}
END_TEST

/* ---- determinism: the parallel paths at 1 and 2 threads ---- */
START_TEST(test_thread_determinism) {
    nb_scope *sc = nb_scope_begin();
    int threads = nb_get_num_threads();
    nb_tensor *x = nbt_randn(14, NB_F32, T(200, 200), true), *g = nbt_randn(15, NB_F32, T(200, 200), false);
    for (int k = 0; k <= NACTS; k++) {
        nb_tensor *y[2], *gx[2];
        for (int run = 0; run < 2; run++) {
            NBT_OK(nb_set_num_threads(run + 1));
            y[run] = NBT_NOTNULL(k < NACTS ? ACTS[k].f(x, ACTS[k].p) : nb_softmax(x, 0));
            NBT_OK(nb_backward_ex(y[run], g, false));
            gx[run] = nb_clone(nb_tensor_grad(x));
            nb_zero_grad(x);
        }
        nbt_assert_bitwise_equal(y[0], y[1]);
        nbt_assert_bitwise_equal(gx[0], gx[1]);
    }
    NBT_OK(nb_set_num_threads(threads));
    nb_scope_end(sc);
}
END_TEST

int main(void) {
    Suite *s = suite_create("activations");
    TCase *ref = tcase_create("pytorch");
    tcase_set_timeout(ref, 120);
    tcase_add_test(ref, test_pytorch);
    tcase_add_test(ref, test_sequential_from_pytorch);
    suite_add_tcase(s, ref);
    TCase *num = tcase_create("numerics");
    tcase_set_timeout(num, 300);
    tcase_add_test(num, test_fast_math);
    tcase_add_test(num, test_float32_against_float64);
    tcase_add_test(num, test_gradcheck);
    suite_add_tcase(s, num);
    TCase *misc = tcase_create("semantics");
    tcase_set_timeout(misc, 120);
    tcase_add_test(misc, test_bad_inputs);
    tcase_add_test(misc, test_modules_match_functional);
    tcase_add_test(misc, test_thread_determinism);
    suite_add_tcase(s, misc);
    return nbt_run_suite(s);
}
