/* nb_conv2d_pool_relu: against PyTorch's F.relu(F.max_pool2d(F.conv2d(...)))
 * (tests/pytorch/conv2d_pool_reference.py), and, where it runs as one op,
 * bit for bit against nb_conv2d, nb_max_pool2d and nb_relu one after the
 * other (its reference) in value and every gradient, on a grid of
 * geometries (forcing F(4x4, 3x3) where the heuristic would not pick it),
 * with NaNs, at 1 and 3 threads; errors are the three ops'. CTest runs this
 * suite once per CPU kernel set (NB_CPU). */
#include "testutil.h"

#include "nabla/conv.h"
#include "nn/conv_internal.h"

#include <stdio.h>

/* ---- PyTorch reference ---- */

enum { P_DTYPE, P_UNBATCHED, P_N, P_C, P_H, P_W, P_O, P_PAD, P_BIAS, P_POOL, P_RELU, P_FUSED, P_COUNT };

static void run_reference(int i) {
    const char *file = nbt_data_path("conv2d_pool.h5");
    char cfg[64], group[16], name[32];
    snprintf(group, sizeof group, "cfg%03d", i);
    snprintf(name, sizeof name, "%s/params", group);
    nb_tensor *pt = nbt_h5_read(file, name, NB_I64);
    ck_assert_int_eq(nb_tensor_numel(pt), P_COUNT);
    const int64_t *q = nb_tensor_i64(pt);
    const nb_dtype dt = q[P_DTYPE] ? NB_F64 : NB_F32;
    const double tol = dt == NB_F32 ? 2e-5 : 1e-10;
    snprintf(cfg, sizeof cfg, "%s [%s]", group, nb_cpu_kernels());
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding[0] = p.padding[1] = q[P_PAD];
    nb_pool2d_params pool = nb_pool2d_defaults(q[P_POOL] == 2 ? 3 : 2);
    if (q[P_POOL] == 2) pool.stride[0] = pool.stride[1] = 2;
    nbt_conv_ref r = nbt_conv_ref_read(file, group, dt, q[P_BIAS] != 0);

    nb_tensor *y = nb_conv2d_pool_relu(r.x, r.w, r.b, &p, q[P_POOL] ? &pool : NULL, q[P_RELU] != 0);
    ck_assert_msg(y != NULL, "%s: conv2d_pool_relu failed: %s", cfg, nb_last_error());
    const char *want = q[P_FUSED]  ? (q[P_POOL] ? "conv2d_pool_relu" : "conv2d_relu")
                       : q[P_RELU] ? "relu"
                       : q[P_POOL] ? "max_pool2d"
                                   : "conv2d";
    ck_assert_msg(strcmp(nb_tensor_grad_fn_name(y), want) == 0, "%s: the last op is %s, expected %s", cfg,
                  nb_tensor_grad_fn_name(y), want);
    nbt_assert_close_norm("output", cfg, y, r.y, tol);
    NBT_OK(nb_backward_ex(y, r.gy, false));
    nbt_assert_close_norm("grad input", cfg, nb_tensor_grad(r.x), r.gx, tol);
    nbt_assert_close_norm("grad weight", cfg, nb_tensor_grad(r.w), r.gw, tol);
    if (r.b) nbt_assert_close_norm("grad bias", cfg, nb_tensor_grad(r.b), r.gb, tol);
    nbt_conv_ref_release(&r);
    nb_tensor_release(pt);
    nb_tensor_release(y);
}

START_TEST(test_pytorch_reference) {
    double count = 0;
    ck_assert_msg(nbt_h5_read_scalar(nbt_data_path("conv2d_pool.h5"), "count", &count), "no count in conv2d_pool.h5");
    ck_assert_int_ge((int)count, 14);
    for (int i = 0; i < (int)count; i++) run_reference(i);
    ck_assert_int_eq(nb_memory_in_use(), 0);
}
END_TEST

/* ---- one op against the three ---- */

typedef struct {
    int64_t N, C, H, W, O, pad;
    bool force; /* F(4x4, 3x3) forced (too few channels for the heuristic) */
    bool pool;  /* conv -> max_pool2d(2) -> relu?, else conv -> relu */
} pool_geom;

static const pool_geom geoms[] = {
    {3, 32, 14, 14, 64, 0, false, true}, /* MNIST's conv2 on a smaller image */
    {2, 16, 13, 11, 24, 1, false, true}, /* odd output rows and columns */
    {2, 16, 12, 12, 16, 2, false, true}, {5, 16, 9, 16, 17, 0, false, true},
    {2, 64, 58, 58, 64, 0, false, true}, /* several bands of tile rows per item */
    {1, 16, 4, 5, 16, 0, false, true},   /* a 2x3 output: one window, a column in none */
    {2, 3, 10, 10, 5, 1, true, true},    {3, 1, 7, 12, 2, 2, true, true}, {1, 5, 6, 6, 33, 1, true, true},
    /* relu alone: in rowwise's stores (MNIST's conv1; 27 taps), else after the conv */
    {4, 1, 28, 28, 32, 0, false, false}, {3, 3, 11, 9, 8, 1, false, false}, {2, 16, 13, 11, 24, 1, false, false},
};

/* which inputs require grad: all, the input only, the weight and bias only */
static const bool grads[3][3] = {{true, true, true}, {true, false, false}, {false, true, true}};

/* y and the gradients of x, w, b (NULL where not wanted) in out[0..3], by
 * the one op (fused) or by the ops one after the other; gy: seeded from the
 * output's shape. */
static void run_one(const pool_geom *g, bool bias, bool relu, const bool *req, bool nan, bool fused, int threads,
                    nb_tensor **out) {
    NBT_OK(nb_set_num_threads(threads));
    nb_tensor *x = nbt_randn(11, NB_F32, NB_SHAPE(g->N, g->C, g->H, g->W), false);
    nb_tensor *w = nbt_randn(12, NB_F32, NB_SHAPE(g->O, g->C, 3, 3), req[1]);
    nb_tensor *b = bias ? nbt_randn(13, NB_F32, NB_SHAPE(g->O), req[2]) : NULL;
    if (nan) { /* NaN wins its window (max_pool2d's rule) and reaches the output's rows around it */
        float *xv = nb_tensor_f32(x);
        xv[g->W + 2] = NAN;
    }
    NBT_OK(nb_requires_grad_(x, req[0]));
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding[0] = p.padding[1] = g->pad;
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    if (g->force) nbi_conv2d_force_algo(NBI_CONV_WINOGRAD4);
    nb_tensor *y;
    if (fused) {
        y = NBT_NOTNULL(nb_conv2d_pool_relu(x, w, b, &p, g->pool ? &pool : NULL, relu));
        ck_assert_str_eq(nb_tensor_grad_fn_name(y), g->pool ? "conv2d_pool_relu" : "conv2d_relu");
    } else {
        y = NBT_NOTNULL(nb_conv2d(x, w, b, &p));
        if (g->pool) {
            nb_tensor *m = NBT_NOTNULL(nb_max_pool2d(y, &pool));
            nb_tensor_release(y);
            y = m;
        }
        if (relu) {
            nb_tensor *r = NBT_NOTNULL(nb_relu(y));
            nb_tensor_release(y);
            y = r;
        }
    }
    nb_tensor *gy = nbt_randn(14, NB_F32, nb_tensor_ndim(y), nb_tensor_shape(y), false);
    NBT_OK(nb_backward_ex(y, gy, false));
    if (g->pool) ck_assert_int_eq(nbi_conv2d_last_plan().forward, NBI_CONV_WINOGRAD4);
    if (!g->pool && g->C == 1) ck_assert_int_eq(nbi_conv2d_last_plan().forward, NBI_CONV_ROWWISE);
    nbi_conv2d_force_algo(NBI_CONV_AUTO);
    out[0] = nb_detach(y);
    nb_tensor *in[3] = {x, w, b};
    for (int k = 0; k < 3; k++) out[k + 1] = in[k] && req[k] ? nb_tensor_retain(nb_tensor_grad(in[k])) : NULL;
    nb_tensor *t[] = {x, w, b, y, gy};
    for (int k = 0; k < 5; k++) nb_tensor_release(t[k]);
}

START_TEST(test_fused_equals_composed) {
    const int saved = nb_get_num_threads();
    for (size_t gi = 0; gi < sizeof geoms / sizeof *geoms; gi++)
        for (int v = 0; v < 12; v++) {
            const bool bias = v & 1, relu = v & 2 || !geoms[gi].pool, nan = v == 3;
            const bool *req = grads[v / 4];
            nb_tensor *want[4], *got[4], *got3[4];
            run_one(&geoms[gi], bias, relu, req, nan, false, 1, want);
            run_one(&geoms[gi], bias, relu, req, nan, true, 1, got);
            run_one(&geoms[gi], bias, relu, req, nan, true, 3, got3);
            for (int k = 0; k < 4; k++) {
                ck_assert_msg((want[k] == NULL) == (got[k] == NULL), "geometry %zu, variant %d: gradient %d", gi, v, k);
                if (want[k]) {
                    nbt_assert_bitwise_equal(got[k], want[k]);
                    nbt_assert_bitwise_equal(got3[k], want[k]);
                }
                nb_tensor_release(want[k]);
                nb_tensor_release(got[k]);
                nb_tensor_release(got3[k]);
            }
        }
    NBT_OK(nb_set_num_threads(saved));
    ck_assert_int_eq(nb_memory_in_use(), 0);
}
END_TEST

/* Without autograd (evaluation) the one op gives the same output. */
START_TEST(test_no_grad) {
    const pool_geom *g = &geoms[0];
    nb_tensor *x = nbt_randn(1, NB_F32, NB_SHAPE(g->N, g->C, g->H, g->W), false);
    nb_tensor *w = nbt_randn(2, NB_F32, NB_SHAPE(g->O, g->C, 3, 3), true);
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    nb_tensor *c = NBT_NOTNULL(nb_conv2d(x, w, NULL, NULL)), *m = NBT_NOTNULL(nb_max_pool2d(c, &pool));
    nb_tensor *want = NBT_NOTNULL(nb_relu(m));
    nb_no_grad_begin();
    nb_tensor *got = NBT_NOTNULL(nb_conv2d_pool_relu(x, w, NULL, NULL, &pool, true));
    nb_no_grad_end();
    ck_assert(!nb_tensor_requires_grad(got));
    nbt_assert_bitwise_equal(got, want);
    nb_tensor *t[] = {x, w, c, m, want, got};
    for (int k = 0; k < 6; k++) nb_tensor_release(t[k]);
    ck_assert_int_eq(nb_memory_in_use(), 0);
}
END_TEST

/* ---- errors: the three ops' own ---- */

START_TEST(test_errors) {
    nb_tensor *x = nbt_randn(1, NB_F32, NB_SHAPE(2, 16, 8, 8), false);
    nb_tensor *w = nbt_randn(2, NB_F32, NB_SHAPE(16, 16, 3, 3), false);
    nb_tensor *w8 = nbt_randn(3, NB_F32, NB_SHAPE(16, 8, 3, 3), false);
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    nb_clear_error();
    ck_assert_ptr_null(nb_conv2d_pool_relu(x, w8, NULL, NULL, &pool, true));
    ck_assert_msg(strstr(nb_last_error(), "conv2d: Given groups=1, weight of size [16, 8, 3, 3], expected input[2, 16, 8, 8] "
                                          "to have 8 channels, but got 16 channels instead") != NULL,
                  "%s", nb_last_error());
    pool.padding[0] = pool.padding[1] = 2;
    nb_clear_error();
    ck_assert_ptr_null(nb_conv2d_pool_relu(x, w, NULL, NULL, &pool, true));
    ck_assert_msg(strstr(nb_last_error(), "pad should be at most half of kernel size, but got pad=2 and kernel_size=2") != NULL,
                  "%s", nb_last_error());
    ck_assert_ptr_null(nb_conv2d_pool_relu(NULL, w, NULL, NULL, NULL, true));
    nb_tensor *t[] = {x, w, w8};
    for (int k = 0; k < 3; k++) nb_tensor_release(t[k]);
    ck_assert_int_eq(nb_memory_in_use(), 0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("conv2d_pool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pytorch_reference);
    tcase_add_test(tc, test_fused_equals_composed);
    tcase_add_test(tc, test_no_grad);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return nbt_run_suite(suite()); }
