/* The float32 kernels of every instruction set this CPU runs against the
 * portable set, their reference (which the PyTorch twins check): the
 * elementwise and layer loops moved into src/{tensor,nn,optim}/kernels for the
 * portable build's speed (unary ops, dropout, max-pool 2x2, conv2d's bias
 * gradient, the SGD, Adam and Adadelta updates). Selections, comparisons and
 * the bias sums (no reassociation) must agree bitwise; arithmetic that a set
 * may contract into fused multiply-adds to a few ulp. Built only when the
 * library holds several sets (tests/CMakeLists.txt); on a CPU that runs only
 * the portable set there is nothing to compare, and the cases check nothing. */
#include "testutil.h"

#include "nn/nn_kernels.h"
#include "optim/optim_kernels.h"
#include "tensor/unary.h"

#include <math.h>
#include <stdlib.h>

enum { NSETS = 3 };
static const char *const set_names[NSETS] = {"portable", "avx2", "avx512"};
static const nbi_unary_f32_kernels *const unary_sets[NSETS] = {&nbi_unary_f32_portable, &nbi_unary_f32_avx2,
                                                               &nbi_unary_f32_avx512};
static const nbi_dropout_f32_kernels *const dropout_sets[NSETS] = {&nbi_dropout_f32_portable, &nbi_dropout_f32_avx2,
                                                                   &nbi_dropout_f32_avx512};
static const nbi_maxpool2x2_kernels *const pool_sets[NSETS] = {&nbi_maxpool2x2_portable, &nbi_maxpool2x2_avx2,
                                                               &nbi_maxpool2x2_avx512};
static const nbi_conv2d_bias_kernels *const bias_sets[NSETS] = {&nbi_conv2d_bias_portable, &nbi_conv2d_bias_avx2,
                                                                &nbi_conv2d_bias_avx512};
static const nbi_optim_f32_kernels *const optim_sets[NSETS] = {&nbi_optim_f32_portable, &nbi_optim_f32_avx2,
                                                               &nbi_optim_f32_avx512};

/* How many sets (from portable up) this CPU runs. */
static int sets_supported(void) {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return 3;
    return avx2 ? 2 : 1;
}

/* n floats in [-scale, scale) from a fixed LCG, with exact zeros, ties and a NaN
 * sprinkled in (the rules for those differ between naive loops). Odd lengths
 * leave vector tails. */
static float *values(int64_t n, uint64_t seed, float scale, bool nan) {
    float *v = malloc((size_t)n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = scale * ((float)(s >> 40) / (float)(1 << 24) * 2 - 1);
        if (i % 17 == 5) v[i] = 0;
        if (i % 23 == 7 && i > 0) v[i] = v[i - 1];
        if (nan && i % 101 == 50) v[i] = NAN;
    }
    return v;
}

/* got == want bitwise (NaN included) when ulps == 0 and atol == 0, else within
 * atol + ulps units in the last place of want (NaN where want is NaN). */
static void assert_close(const char *what, const char *set, const float *got, const float *want, int64_t n, int ulps,
                         float atol) {
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            ck_assert_msg(isnan(got[i]), "%s, set %s, element %lld: %g, want NaN", what, set, (long long)i,
                          (double)got[i]);
            continue;
        }
        if (ulps == 0 && atol == 0) {
            ck_assert_msg(memcmp(&got[i], &want[i], sizeof(float)) == 0, "%s, set %s, element %lld: %a, want %a", what,
                          set, (long long)i, (double)got[i], (double)want[i]);
            continue;
        }
        const float tol = atol + (float)ulps * (nextafterf(fabsf(want[i]), INFINITY) - fabsf(want[i]));
        ck_assert_msg(fabsf(got[i] - want[i]) <= tol, "%s, set %s, element %lld: %a, want %a (%d ulp)", what, set,
                      (long long)i, (double)got[i], (double)want[i], ulps);
    }
}

START_TEST(test_unary) {
    const int64_t n = 70001; /* above NBI_PAR_MIN: the threaded loop */
    float *x = values(n, 1, 4, true), *g = values(n, 2, 1, false), *s = values(n, 3, 1, false);
    float *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
    ck_assert(want && got);
    static const char *const names[] = {"neg", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "abs"};
    for (nbi_unary_kind k = NBI_UN_NEG; k <= NBI_UN_ABS; k++) {
        /* fused multiply-adds: exp, sigmoid, tanh's polynomials; the rest is one rounding per element */
        const int ulps = k == NBI_UN_EXP || k == NBI_UN_SIGMOID || k == NBI_UN_TANH ? 4 : 0;
        const float *in = k == NBI_UN_LOG || k == NBI_UN_SQRT ? s : x; /* negative inputs give NaN both ways */
        for (int set = 1; set < sets_supported(); set++) {
            unary_sets[0]->forward(k, want, in, n);
            unary_sets[set]->forward(k, got, in, n);
            assert_close(names[k], set_names[set], got, want, n, ulps, 0);
            unary_sets[0]->backward(k, want, g, in, n);
            unary_sets[set]->backward(k, got, g, in, n);
            /* tanh's 1 - s * s fused cancels differently near |s| = 1: an absolute term (|g| <= 1) */
            const bool fused = k == NBI_UN_SIGMOID || k == NBI_UN_TANH;
            assert_close(names[k], set_names[set], got, want, n, fused ? 2 : 0, fused ? 1e-6f : 0);
        }
    }
    free(x), free(g), free(s), free(want), free(got);
}
END_TEST

START_TEST(test_dropout) {
    const int64_t n = 40003;
    float *x = values(n, 4, 3, true), *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
    uint8_t *mask = malloc((size_t)n);
    ck_assert(want && got && mask);
    for (int64_t i = 0; i < n; i++) mask[i] = (uint8_t)(i % 3 != 1);
    for (int set = 1; set < sets_supported(); set++) {
        dropout_sets[0]->apply(want, x, mask, n, 1.0f / 0.75f);
        dropout_sets[set]->apply(got, x, mask, n, 1.0f / 0.75f);
        assert_close("dropout", set_names[set], got, want, n, 0, 0);
    }
    free(x), free(want), free(got), free(mask);
}
END_TEST

/* Even and odd sides, rows shorter and longer than one vector of windows. */
START_TEST(test_maxpool2x2) {
    static const int64_t sizes[][2] = {{24, 24}, {7, 9}, {28, 31}, {2, 2}, {3, 1}};
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++) {
        const int64_t planes = 37, H = sizes[c][0], W = sizes[c][1], OH = H / 2, OW = W / 2;
        float *x = values(planes * H * W, 5 + c, 2, true), *dy = values(planes * OH * OW, 6 + c, 1, false);
        float *y0 = malloc((size_t)(planes * OH * OW) * sizeof *y0), *y1 = malloc((size_t)(planes * OH * OW) * sizeof *y1);
        float *dx0 = malloc((size_t)(planes * H * W) * sizeof *dx0), *dx1 = malloc((size_t)(planes * H * W) * sizeof *dx1);
        uint8_t *t0 = malloc((size_t)(planes * OH * OW)), *t1 = malloc((size_t)(planes * OH * OW));
        ck_assert(y0 && y1 && dx0 && dx1 && t0 && t1);
        for (int set = 1; set < sets_supported(); set++) {
            pool_sets[0]->forward_f32(y0, t0, x, planes, H, W, OH, OW);
            pool_sets[set]->forward_f32(y1, t1, x, planes, H, W, OH, OW);
            assert_close("max_pool2d forward", set_names[set], y1, y0, planes * OH * OW, 0, 0);
            ck_assert_msg(memcmp(t0, t1, (size_t)(planes * OH * OW)) == 0, "max_pool2d taps, set %s, %lldx%lld",
                          set_names[set], (long long)H, (long long)W);
            pool_sets[0]->backward_f32(dx0, dy, t0, planes, H, W, OH, OW);
            pool_sets[set]->backward_f32(dx1, dy, t0, planes, H, W, OH, OW);
            assert_close("max_pool2d backward", set_names[set], dx1, dx0, planes * H * W, 0, 0);
        }
        free(x), free(dy), free(y0), free(y1), free(dx0), free(dx1), free(t0), free(t1);
    }
}
END_TEST

START_TEST(test_conv2d_bias_grad) {
    const int64_t N = 5, O = 9, L = 143;
    float *dy = values(N * O * L, 7, 1, false), want[9], got[9];
    for (int set = 1; set < sets_supported(); set++) {
        bias_sets[0]->grad_f32(want, dy, N, O, L);
        bias_sets[set]->grad_f32(got, dy, N, O, L);
        assert_close("conv2d bias grad", set_names[set], got, want, O, 0, 0);
    }
    free(dy);
}
END_TEST

/* relu's gradient and the bias gradient in one pass: the portable set's
 * bits in every set, and grad_f32's sums of that gradient. y takes whole
 * values around 0 (ties at 0 and the value 1, which GCC 12 once
 * miscompiled in the AVX2 set). */
START_TEST(test_conv2d_relu_grad) {
    const int64_t N = 5, O = 9, L = 143, n = N * O * L;
    float *dy = values(n, 7, 1, false), *y = values(n, 11, 1, false), want[9], got[9], sums[9];
    float *m0 = malloc((size_t)n * sizeof(float)), *m1 = malloc((size_t)n * sizeof(float));
    for (int64_t e = 0; e < n; e++) y[e] = (float)(e % 5) - 2;
    bias_sets[0]->relu_grad_f32(m0, want, dy, y, N, O, L);
    for (int64_t e = 0; e < n; e++) ck_assert(m0[e] == (y[e] <= 0 ? 0.0f : dy[e]));
    bias_sets[0]->grad_f32(sums, m0, N, O, L);
    assert_close("conv2d relu grad's bias sums", set_names[0], want, sums, O, 0, 0);
    for (int set = 1; set < sets_supported(); set++) {
        bias_sets[set]->relu_grad_f32(m1, got, dy, y, N, O, L);
        assert_close("conv2d relu grad", set_names[set], m1, m0, n, 0, 0);
        assert_close("conv2d relu grad's bias sums", set_names[set], got, want, O, 0, 0);
        bias_sets[set]->relu_grad_f32(m1, NULL, dy, y, N, O, L);
        assert_close("conv2d relu grad without bias", set_names[set], m1, m0, n, 0, 0);
    }
    free(dy), free(y), free(m0), free(m1);
}
END_TEST

/* Three steps of each update, from the same state, with every option that
 * changes the loop (weight decay, maximize, momentum, Nesterov, AdamW, AMSGrad). */
enum { OPT_N = 40009 };
typedef struct {
    float *p, *g, *b0, *b1, *b2;
} opt_state;

static void opt_init(opt_state *s) {
    s->p = values(OPT_N, 8, 1, false);
    s->g = values(OPT_N, 9, 0.1f, false);
    s->b0 = calloc(OPT_N, sizeof(float));
    s->b1 = calloc(OPT_N, sizeof(float));
    s->b2 = calloc(OPT_N, sizeof(float));
    ck_assert(s->b0 && s->b1 && s->b2);
}

static void opt_free(opt_state *s) { free(s->p), free(s->g), free(s->b0), free(s->b1), free(s->b2); }

/* Fused multiply-adds round once where the reference rounds twice; a
 * parameter that an update nearly cancels can lose the difference's ulps, so
 * an absolute term too (the updates are ~1e-3 to 1). */
static void opt_compare(const char *what, int set, const opt_state *a, const opt_state *b) {
    assert_close(what, set_names[set], b->p, a->p, OPT_N, 8, 1e-6f);
    assert_close(what, set_names[set], b->b0, a->b0, OPT_N, 8, 1e-6f);
    assert_close(what, set_names[set], b->b1, a->b1, OPT_N, 8, 1e-6f);
    assert_close(what, set_names[set], b->b2, a->b2, OPT_N, 8, 1e-6f);
}

START_TEST(test_optimizers) {
    for (int set = 1; set < sets_supported(); set++)
        for (int variant = 0; variant < 2; variant++) {
            const bool alt = variant == 1;
            opt_state ref, fast;
            opt_init(&ref), opt_init(&fast);
            for (int step = 0; step < 3; step++) {
                const nbi_sgd_f32 sgd = {alt ? 1e-2f : 0, 0.9f, alt ? 1 : 0.9f, -0.05f, alt, alt, alt, step == 0};
                optim_sets[0]->sgd(OPT_N, ref.p, ref.g, ref.b0, &sgd);
                optim_sets[set]->sgd(OPT_N, fast.p, fast.g, fast.b0, &sgd);
                const float bc2s = sqrtf(1 - powf(0.999f, (float)(step + 1)));
                const nbi_adam_f32 adam = {0.9f, 0.1f, 0.999f, 1e-3f, 1e-2f, 1 - 1e-5f, 1e-8f, bc2s, -1e-3f,
                                           true, alt, alt};
                optim_sets[0]->adam(OPT_N, ref.p, ref.g, ref.b1, ref.b2, alt ? ref.b0 : NULL, &adam);
                optim_sets[set]->adam(OPT_N, fast.p, fast.g, fast.b1, fast.b2, alt ? fast.b0 : NULL, &adam);
                const nbi_adadelta_f32 ada = {0.9f, 0.1f, 1e-6f, alt ? 1e-2f : 0, -1.0f, alt, alt};
                optim_sets[0]->adadelta(OPT_N, ref.p, ref.g, ref.b1, ref.b2, &ada);
                optim_sets[set]->adadelta(OPT_N, fast.p, fast.g, fast.b1, fast.b2, &ada);
                opt_compare(alt ? "optimizers (weight decay, maximize, Nesterov, AdamW, AMSGrad)" : "optimizers", set,
                            &ref, &fast);
            }
            opt_free(&ref), opt_free(&fast);
        }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("kernel_sets");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_unary);
    tcase_add_test(tc, test_dropout);
    tcase_add_test(tc, test_maxpool2x2);
    tcase_add_test(tc, test_conv2d_bias_grad);
    tcase_add_test(tc, test_conv2d_relu_grad);
    tcase_add_test(tc, test_optimizers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return nbt_run_suite(suite()); }
