/* Conv2d and pad: forward and the three gradients against PyTorch (the
 * configurations of tests/pytorch/conv2d_reference.py), with the algorithms
 * the heuristic picks and with every algorithm forced wherever it applies;
 * every fast kernel against the reference kernel on a grid of geometries;
 * gradcheck on small grids, bitwise determinism across thread counts, the
 * output-size formula, and every error message. CTest runs this suite once
 * per CPU kernel set (NB_CPU). */
#include "testutil.h"

#include "nabla/conv.h"
#include "nabla/gradcheck.h"
#include "nn/conv_internal.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- PyTorch reference ---- */

enum { P_DTYPE, P_UNBATCHED, P_N, P_C, P_H, P_W, P_O, P_KH, P_KW, P_SH, P_SW, P_PH, P_PW, P_DH, P_DW, P_GROUPS,
       P_BIAS, P_KIND, P_MODE, P_PREPAD, P_PL, P_PR, P_PT, P_PB, P_PREPAD_MODE, P_COUNT };

/* How many runs of the configs ran each algorithm, per phase (forward, dx, dw). */
static int algo_runs[NBI_CONV_ALGOS][3];

/* Whether forcing algorithm a on the conv of geometry g in dtype dt runs
 * anything the heuristic's run did not: a applies to some phase the
 * heuristic gave to another algorithm. The reference is not forced on the
 * float32 configs of more than 50,000 outputs (the tutorial's: seconds of
 * direct loops, minutes under ASan, in every CPU set's run, while it is the
 * same code in all of them); the float64 configs and the smaller float32
 * ones run it. */
static bool forcing_adds(nbi_conv_algo a, const nbi_conv_geom *g, nb_dtype dt, nbi_conv_plan heuristic) {
    if (a == NBI_CONV_REFERENCE && dt == NB_F32 && g->N * g->O * g->Ho * g->Wo > 50000) return false;
    return (nbi_conv2d_applies(a, NBI_CONV_FORWARD, g, dt) && heuristic.forward != a) ||
           (nbi_conv2d_applies(a, NBI_CONV_DX, g, dt) && heuristic.dx != a) ||
           (nbi_conv2d_applies(a, NBI_CONV_DW, g, dt) && heuristic.dw != a);
}

/* Config i of conv2d.h5, with the heuristic's algorithms and then with each
 * algorithm forced (nbi_conv2d_force_algo: where it applies; the heuristic's
 * choice in the other phases) where that runs something new. The inputs are
 * read once. */
static void run_reference(int i) {
    const char *file = nbt_data_path("conv2d.h5");
    char cfg[64], group[16], name[32];
    snprintf(group, sizeof group, "cfg%03d", i);
    snprintf(name, sizeof name, "%s/params", group);
    nb_tensor *pt = nbt_h5_read(file, name, NB_I64);
    ck_assert_int_eq(nb_tensor_numel(pt), P_COUNT);
    const int64_t *q = nb_tensor_i64(pt);
    nb_dtype dt = q[P_DTYPE] ? NB_F64 : NB_F32;
    double tol = dt == NB_F32 ? 2e-5 : 1e-10;
    nb_conv2d_params p = nb_conv2d_defaults();
    p.stride[0] = q[P_SH], p.stride[1] = q[P_SW];
    p.padding[0] = q[P_PH], p.padding[1] = q[P_PW];
    p.dilation[0] = q[P_DH], p.dilation[1] = q[P_DW];
    p.groups = q[P_GROUPS];
    p.padding_kind = (nb_padding_kind)q[P_KIND];
    p.padding_mode = (nb_padding_mode)q[P_MODE];

    nbt_conv_ref r = nbt_conv_ref_read(file, group, dt, q[P_BIAS] != 0);
    nb_tensor *x = r.x, *w = r.w, *b = r.b;
    nbi_conv_plan heuristic = {NBI_CONV_AUTO, NBI_CONV_AUTO, NBI_CONV_AUTO};
    nbi_conv_geom geom = {0};
    for (int a = NBI_CONV_AUTO; a < NBI_CONV_ALGOS; a++) {
        if (a != NBI_CONV_AUTO && !forcing_adds((nbi_conv_algo)a, &geom, dt, heuristic)) continue;
        snprintf(cfg, sizeof cfg, "cfg%03d [%s, %s]", i, a == NBI_CONV_AUTO ? "heuristic" : nbi_conv_algo_name(a),
                 nb_cpu_kernels());
        nbi_conv2d_force_algo((nbi_conv_algo)a);
        nb_tensor *xin = x, *xp = NULL;
        if (q[P_PREPAD]) {
            const int64_t pad[4] = {q[P_PL], q[P_PR], q[P_PT], q[P_PB]};
            xp = NBT_NOTNULL(nb_pad(x, pad, 4, (nb_padding_mode)q[P_PREPAD_MODE], 0.0));
            xin = xp;
        }
        nb_tensor *y = nb_conv2d(xin, w, b, &p);
        ck_assert_msg(y != NULL, "%s: conv2d failed: %s", cfg, nb_last_error());
        ck_assert_str_eq(nb_tensor_grad_fn_name(y), "conv2d");
        nbt_assert_close_norm("output", cfg, y, r.y, tol);
        NBT_OK(nb_backward_ex(y, r.gy, false));
        nbt_assert_close_norm("grad input", cfg, nb_tensor_grad(x), r.gx, tol);
        nbt_assert_close_norm("grad weight", cfg, nb_tensor_grad(w), r.gw, tol);
        if (b) nbt_assert_close_norm("grad bias", cfg, nb_tensor_grad(b), r.gb, tol);
        const nbi_conv_plan plan = nbi_conv2d_last_plan();
        if (a == NBI_CONV_AUTO) {
            heuristic = plan;
            geom = nbi_conv2d_last_geom();
        }
        const nbi_conv_algo ran[3] = {plan.forward, plan.dx, plan.dw};
        for (int f = 0; f < 3; f++)
            if (ran[f] != NBI_CONV_AUTO) algo_runs[ran[f]][f]++;
        nb_zero_grad(x);
        nb_zero_grad(w);
        if (b) nb_zero_grad(b);
        nb_tensor_release(xp);
        nb_tensor_release(y);
    }
    nbi_conv2d_force_algo(NBI_CONV_AUTO);
    snprintf(name, sizeof name, "%s/gy", group);
    nb_tensor *gy_again = nbt_h5_read(file, name, dt);
    nbt_assert_bitwise_equal(r.gy, gy_again); /* every algorithm's backward only read it */
    nb_tensor_release(gy_again);
    nbt_conv_ref_release(&r);
    nb_tensor_release(pt);
}

/* Each algorithm must run each of its phases on some config (forced or
 * chosen), or this could not fail for it. */
START_TEST(test_pytorch_reference) {
    double count = 0;
    ck_assert_msg(nbt_h5_read_scalar(nbt_data_path("conv2d.h5"), "count", &count), "no count in conv2d.h5");
    ck_assert_int_ge((int)count, 40);
    memset(algo_runs, 0, sizeof algo_runs);
    for (int i = 0; i < (int)count; i++) run_reference(i);
    for (int a = 0; a < NBI_CONV_ALGOS; a++)
        ck_assert_msg(algo_runs[a][0] > 0 && algo_runs[a][1] > 0 && algo_runs[a][2] > 0,
                      "%s ran forward on %d configs, dx on %d, dw on %d", nbi_conv_algo_name((nbi_conv_algo)a),
                      algo_runs[a][0], algo_runs[a][1], algo_runs[a][2]);
    ck_assert_int_eq(nb_memory_in_use(), 0);
}
END_TEST

/* ---- every fast kernel against the reference kernel ---- */

/* N, C, H, W, O, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, groups: around
 * each algorithm's domain and its tiles (odd sizes, partial Winograd tiles,
 * more channels than a K slice, rows longer than a depthwise block). */
static const int64_t kernel_geoms[][16] = {
    {2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},      /* plain 3x3 */
    {3, 20, 10, 11, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},  /* Winograd-sized */
    {2, 64, 26, 26, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1},  /* Winograd, 2 bands per item, the last short */
    {2, 64, 50, 50, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},  /* F(4x4, 3x3): 5 bands per item, the last short */
    {2, 17, 9, 6, 19, 3, 3, 1, 1, 0, 2, 2, 0, 1, 1, 1},    /* asymmetric padding */
    {5, 16, 9, 10, 20, 3, 3, 1, 1, 2, 1, 2, 0, 1, 1, 1},   /* asymmetric padding, 5 items in 4 pieces */
    {2, 16, 9, 10, 20, 3, 3, 1, 1, 3, 1, 2, 4, 1, 1, 1},   /* padding past the kernel (not winograd4's) */
    {2, 300, 5, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    /* C*9 > one K slice */
    {2, 6, 11, 13, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},   /* stride 2 */
    {2, 4, 9, 37, 6, 2, 3, 1, 2, 0, 1, 2, 1, 2, 1, 2},     /* groups, dilation, column stride 2 */
    {3, 5, 6, 7, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},      /* pointwise */
    {2, 6, 6, 7, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2},      /* pointwise, groups */
    {2, 5, 9, 8, 3, 1, 1, 2, 3, 0, 0, 0, 0, 1, 1, 1},      /* 1x1 strided */
    {2, 4, 7, 37, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4},     /* depthwise x2, rows of 2+ blocks */
    {2, 4, 10, 40, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4},    /* depthwise, stride 2 */
    {1, 3, 8, 23, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 3},     /* depthwise 5x5 */
    {2, 3, 6, 7, 6, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 3},      /* depthwise, padding wider than the kernel */
    {2, 8, 12, 12, 16, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},   /* 5x5 */
    {1, 48, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     /* 48 channels */
    {2, 1, 28, 28, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1},   /* MNIST conv1 */
    {3, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1},   /* LeNet conv2: direct, unpadded */
};

/* Values of one buffer: a fixed xorshift stream in [-1, 1). */
static float *random_floats(int64_t n, uint64_t seed) {
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        v[i] = (float)((double)((s * 2685821657736338717ull) >> 40) / 8388608.0 - 1.0);
    }
    return v;
}

static double *widened(const float *v, int64_t n, bool absolute) {
    double *d = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) d[i] = absolute ? fabs((double)v[i]) : v[i];
    return d;
}

/* |got - ref| <= tol * mag elementwise, mag the reference of the absolute
 * values (the sum of |terms|). 2e-6, about 30 float32 roundings of the
 * largest sum, for every algorithm but F(4x4, 3x3): its transforms
 * (coefficients up to 8 and 16/15) amplify the roundings, measured up to
 * 3e-6 of the sum of |terms| (docs/conv2d.md), so 1e-5 for it. A wrong
 * transform or tile is off by the size of a term, far above either. */
static double kernel_tolerance(const char *what) { return strncmp(what, "winograd4 ", 10) == 0 ? 1e-5 : 2e-6; }

static void assert_near(const char *what, const nbi_conv_geom *g, const float *got, const double *ref,
                        const double *mag, int64_t n) {
    const double tol = kernel_tolerance(what);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - ref[i]) <= tol * mag[i] + 1e-30))
            ck_abort_msg("%s [%s] geometry N%lld C%lld %lldx%lld O%lld k%lldx%lld s%lld,%lld p%lld,%lld,%lld,%lld "
                         "d%lld,%lld g%lld: element %lld is %.9g, reference %.9g (sum of |terms| %.3g)",
                         what, nb_cpu_kernels(), (long long)g->N, (long long)g->C, (long long)g->H, (long long)g->W,
                         (long long)g->O, (long long)g->kh, (long long)g->kw, (long long)g->sh, (long long)g->sw,
                         (long long)g->pt, (long long)g->pb, (long long)g->pl, (long long)g->pr, (long long)g->dh,
                         (long long)g->dw, (long long)g->groups, (long long)i, (double)got[i], ref[i], mag[i]);
}

START_TEST(test_kernels_vs_reference) {
    const int saved = nb_get_num_threads();
    int ran[NBI_CONV_ALGOS][3] = {{0}};
    for (size_t k = 0; k < sizeof kernel_geoms / sizeof *kernel_geoms; k++) {
        const int64_t *q = kernel_geoms[k];
        nbi_conv_geom g = {.N = q[0], .C = q[1], .H = q[2], .W = q[3], .O = q[4], .kh = q[5], .kw = q[6],
                           .sh = q[7], .sw = q[8], .pt = q[9], .pb = q[10], .pl = q[11], .pr = q[12],
                           .dh = q[13], .dw = q[14], .groups = q[15]};
        g.Ho = (g.H + g.pt + g.pb - g.dh * (g.kh - 1) - 1) / g.sh + 1;
        g.Wo = (g.W + g.pl + g.pr - g.dw * (g.kw - 1) - 1) / g.sw + 1;
        const int64_t nx = g.N * g.C * g.H * g.W, nw = g.O * (g.C / g.groups) * g.kh * g.kw;
        const int64_t ny = g.N * g.O * g.Ho * g.Wo;
        float *x = random_floats(nx, 10 * k + 1), *w = random_floats(nw, 10 * k + 2);
        float *b = random_floats(g.O, 10 * k + 3), *dy = random_floats(ny, 10 * k + 4);
        double *xd = widened(x, nx, false), *wd = widened(w, nw, false), *bd = widened(b, g.O, false);
        double *dyd = widened(dy, ny, false), *xa = widened(x, nx, true), *wa = widened(w, nw, true);
        double *ba = widened(b, g.O, true), *dya = widened(dy, ny, true);
        double *y_ref = malloc(sizeof(double) * (size_t)ny), *y_mag = malloc(sizeof(double) * (size_t)ny);
        double *dx_ref = malloc(sizeof(double) * (size_t)nx), *dx_mag = malloc(sizeof(double) * (size_t)nx);
        double *dw_ref = malloc(sizeof(double) * (size_t)nw), *dw_mag = malloc(sizeof(double) * (size_t)nw);
        double *db_ref = malloc(sizeof(double) * (size_t)g.O), *db_mag = malloc(sizeof(double) * (size_t)g.O);
        nbi_conv2d_ref_forward(y_ref, xd, wd, bd, &g);
        nbi_conv2d_ref_forward(y_mag, xa, wa, ba, &g);
        nbi_conv2d_ref_dx(dx_ref, dyd, wd, &g);
        nbi_conv2d_ref_dx(dx_mag, dya, wa, &g);
        nbi_conv2d_ref_dw(dw_ref, dyd, xd, &g);
        nbi_conv2d_ref_dw(dw_mag, dya, xa, &g);
        nbi_conv2d_ref_db(db_ref, dyd, &g);
        nbi_conv2d_ref_db(db_mag, dya, &g);
        float *out[2][4];
        for (int a = 0; a < NBI_CONV_ALGOS; a++) {
            for (int t = 0; t < 2; t++) { /* 1 and 3 threads: the same bits */
                NBT_OK(nb_set_num_threads(t == 0 ? 1 : 3));
                nbi_conv2d_force_algo((nbi_conv_algo)a);
                out[t][0] = malloc(sizeof(float) * (size_t)ny);
                out[t][1] = malloc(sizeof(float) * (size_t)nx);
                out[t][2] = malloc(sizeof(float) * (size_t)nw);
                out[t][3] = malloc(sizeof(float) * (size_t)g.O);
                NBT_OK(nbi_conv2d_forward_f32(out[t][0], x, w, b, &g));
                NBT_OK(nbi_conv2d_backward_f32(out[t][1], out[t][2], out[t][3], dy, x, w, &g));
            }
            const nbi_conv_plan p = nbi_conv2d_last_plan();
            { /* each gradient alone: the same bits as all together (depthwise
               * computes dx and dw in one pass, winograd4 all three) */
                float *alone_dx = malloc(sizeof(float) * (size_t)nx), *alone_dw = malloc(sizeof(float) * (size_t)nw);
                float *alone_db = malloc(sizeof(float) * (size_t)g.O);
                NBT_OK(nbi_conv2d_backward_f32(alone_dx, NULL, NULL, dy, x, w, &g));
                NBT_OK(nbi_conv2d_backward_f32(NULL, alone_dw, NULL, dy, x, w, &g));
                NBT_OK(nbi_conv2d_backward_f32(NULL, NULL, alone_db, dy, x, w, &g));
                ck_assert_msg(memcmp(alone_dx, out[1][1], sizeof(float) * (size_t)nx) == 0 &&
                                  memcmp(alone_dw, out[1][2], sizeof(float) * (size_t)nw) == 0 &&
                                  memcmp(alone_db, out[1][3], sizeof(float) * (size_t)g.O) == 0,
                              "%s: a gradient computed alone differs", nbi_conv_algo_name((nbi_conv_algo)a));
                free(alone_dx);
                free(alone_dw);
                free(alone_db);
            }
            nbi_conv2d_force_algo(NBI_CONV_AUTO);
            const nbi_conv_algo ph[3] = {p.forward, p.dx, p.dw};
            const int64_t sizes[3] = {ny, nx, nw};
            for (int f = 0; f < 3; f++) {
                char what[64];
                snprintf(what, sizeof what, "%s %s", nbi_conv_algo_name(ph[f]),
                         (const char *[]){"forward", "dx", "dw"}[f]);
                ck_assert_msg(memcmp(out[0][f], out[1][f], sizeof(float) * (size_t)sizes[f]) == 0,
                              "%s: 1 vs 3 threads differ", what);
                if (ph[f] == (nbi_conv_algo)a) ran[a][f]++;
            }
            for (int f = 0; f < 3; f++) {
                char what[64];
                snprintf(what, sizeof what, "%s %s", nbi_conv_algo_name(ph[f]), (const char *[]){"forward", "dx", "dw"}[f]);
                assert_near(what, &g, out[0][f], (const double *[]){y_ref, dx_ref, dw_ref}[f],
                            (const double *[]){y_mag, dx_mag, dw_mag}[f], sizes[f]);
            }
            ck_assert_msg(memcmp(out[0][3], out[1][3], sizeof(float) * (size_t)g.O) == 0, "%s db: 1 vs 3 threads differ",
                          nbi_conv_algo_name(p.dw));
            assert_near("bias gradient", &g, out[0][3], db_ref, db_mag, g.O);
            for (int t = 0; t < 2; t++)
                for (int f = 0; f < 4; f++) free(out[t][f]);
        }
        void *all[] = {x, w, b, dy, xd, wd, bd, dyd, xa, wa, ba, dya, y_ref, y_mag, dx_ref, dx_mag, dw_ref, dw_mag, db_ref, db_mag};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    }
    NBT_OK(nb_set_num_threads(saved));
    for (int a = 0; a < NBI_CONV_ALGOS; a++)
        ck_assert_msg(ran[a][0] > 0 && ran[a][1] > 0 && ran[a][2] > 0, "%s ran forward %d times, dx %d, dw %d",
                      nbi_conv_algo_name((nbi_conv_algo)a), ran[a][0], ran[a][1], ran[a][2]);
}
END_TEST

/* ---- gradcheck ---- */

typedef struct gc_case {
    int64_t N, C, H, W, O, kh, kw;
    nb_conv2d_params p;
    bool bias, unbatched;
} gc_case;

static nb_tensor *conv_fn(nb_tensor *const *in, int n, void *ctx) {
    const gc_case *c = ctx;
    return nb_conv2d(in[0], in[1], n > 2 ? in[2] : NULL, &c->p);
}

static gc_case mk(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw) {
    gc_case c = {.N = N, .C = C, .H = H, .W = W, .O = O, .kh = kh, .kw = kw, .p = nb_conv2d_defaults(), .bias = true};
    return c;
}

static void gradcheck_case(const gc_case *c, uint64_t seed) {
    nb_tensor *in[3];
    int n = c->bias ? 3 : 2;
    if (c->unbatched)
        in[0] = nbt_randn(seed, NB_F64, NB_SHAPE(c->C, c->H, c->W), true);
    else
        in[0] = nbt_randn(seed, NB_F64, NB_SHAPE(c->N, c->C, c->H, c->W), true);
    in[1] = nbt_randn(seed + 1, NB_F64, NB_SHAPE(c->O, c->C / c->p.groups, c->kh, c->kw), true);
    if (c->bias) in[2] = nbt_randn(seed + 2, NB_F64, NB_SHAPE(c->O), true);
    nbt_gradcheck(conv_fn, (void *)c, in, n, false);
    for (int i = 0; i < n; i++) nb_tensor_release(in[i]);
}

START_TEST(test_gradcheck_conv) {
    gc_case cases[32];
    int k = 0;
    cases[k++] = mk(2, 2, 5, 4, 3, 3, 3);                                       /* plain */
    cases[k] = mk(2, 2, 5, 6, 3, 3, 2), cases[k].p.stride[0] = 2, cases[k].p.stride[1] = 3, k++;
    cases[k] = mk(2, 2, 4, 5, 3, 3, 3), cases[k].p.padding[0] = 1, cases[k].p.padding[1] = 2, k++;
    cases[k] = mk(1, 2, 6, 6, 2, 2, 3), cases[k].p.dilation[0] = 2, cases[k].p.dilation[1] = 1,
    cases[k].p.padding[0] = 1, k++;
    cases[k] = mk(2, 4, 4, 4, 4, 3, 3), cases[k].p.groups = 2, cases[k].p.padding[0] = cases[k].p.padding[1] = 1, k++;
    cases[k] = mk(2, 3, 4, 4, 6, 3, 3), cases[k].p.groups = 3, k++;             /* depthwise x2 */
    cases[k] = mk(2, 2, 6, 7, 4, 2, 3), cases[k].p.groups = 2, cases[k].p.stride[0] = 2, cases[k].p.stride[1] = 2,
    cases[k].p.dilation[1] = 2, cases[k].p.padding[0] = 1, k++;                  /* strided depthwise */
    cases[k] = mk(2, 3, 4, 5, 2, 1, 1), k++;                                     /* 1x1 */
    cases[k] = mk(2, 3, 5, 5, 2, 1, 1), cases[k].p.stride[0] = cases[k].p.stride[1] = 2, k++;
    cases[k] = mk(1, 2, 4, 5, 3, 2, 2), cases[k].p.padding_kind = NB_PADDING_SAME, k++;
    cases[k] = mk(1, 2, 5, 4, 3, 3, 2), cases[k].p.padding_kind = NB_PADDING_SAME, cases[k].p.dilation[0] = 2, k++;
    cases[k] = mk(1, 2, 5, 4, 3, 3, 2), cases[k].p.padding_kind = NB_PADDING_VALID, k++;
    for (int m = 1; m <= 3; m++) {
        cases[k] = mk(2, 2, 4, 5, 3, 3, 3), cases[k].p.padding[0] = 1, cases[k].p.padding[1] = 2;
        cases[k].p.padding_mode = (nb_padding_mode)m, k++;
        cases[k] = mk(1, 2, 4, 5, 2, 2, 3), cases[k].p.padding_kind = NB_PADDING_SAME;
        cases[k].p.padding_mode = (nb_padding_mode)m, k++;
    }
    cases[k] = mk(2, 2, 4, 4, 3, 3, 3), cases[k].bias = false, k++;
    cases[k] = mk(1, 2, 4, 5, 3, 3, 3), cases[k].unbatched = true, cases[k].p.padding[1] = 1, k++;
    cases[k] = mk(18, 1, 3, 3, 2, 2, 2), k++;                                     /* > 16 gradient chunks */
    for (int i = 0; i < k; i++) gradcheck_case(&cases[i], 100 + 10 * (uint64_t)i);
}
END_TEST

typedef struct pad_case { int64_t pad[4]; int npad; nb_padding_mode mode; } pad_case;

static nb_tensor *pad_fn(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const pad_case *c = ctx;
    return nb_pad(in[0], c->pad, c->npad, c->mode, 0.5);
}

START_TEST(test_gradcheck_pad) {
    const pad_case cases[] = {
        {{1, 2, 0, 3}, 4, NB_PAD_ZEROS},     {{-1, 2, 1, -2}, 4, NB_PAD_ZEROS},  {{2, 1}, 2, NB_PAD_ZEROS},
        {{2, 1, 1, 3}, 4, NB_PAD_REFLECT},   {{-1, 3, 2, -1}, 4, NB_PAD_REFLECT}, {{3, 2}, 2, NB_PAD_REFLECT},
        {{2, 3, 4, 1}, 4, NB_PAD_REPLICATE}, {{-2, 1, 0, 2}, 4, NB_PAD_REPLICATE},
        {{2, 4, 4, 1}, 4, NB_PAD_CIRCULAR},  {{2, -1, -1, 3}, 4, NB_PAD_CIRCULAR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nb_tensor *x = cases[i].npad == 4 ? nbt_randn(7 + i, NB_F64, NB_SHAPE(2, 2, 4, 5), true)
                                          : nbt_randn(7 + i, NB_F64, NB_SHAPE(2, 4), true);
        nbt_gradcheck(pad_fn, (void *)&cases[i], &x, 1, false);
        nb_tensor_release(x);
    }
}
END_TEST

/* Exact small values: F.pad of [[1, 2, 3]] by (2, 2) in each mode. */
START_TEST(test_pad_values) {
    nb_tensor *x = NBT_NOTNULL(nb_from_data(NB_F64, NB_SHAPE(1, 1, 3), (double[]){1, 2, 3}));
    const int64_t pad[2] = {2, 2};
    const double expect[4][7] = {{9, 9, 1, 2, 3, 9, 9}, {3, 2, 1, 2, 3, 2, 1}, {1, 1, 1, 2, 3, 3, 3},
                                 {2, 3, 1, 2, 3, 1, 2}};
    for (int m = 0; m < 4; m++) {
        nb_tensor *y = NBT_NOTNULL(nb_pad(x, pad, 2, (nb_padding_mode)m, 9));
        nbt_assert_shape(y, NB_SHAPE(1, 1, 7));
        nbt_assert_values(y, expect[m], 7, 0, 0);
        nb_tensor_release(y);
    }
    nb_tensor_release(x);
}
END_TEST

/* ---- determinism ---- */

/* groups 1, 2 and 6 (depthwise, the direct kernels) on 6 channels,
 * groups 2 on 96 channels (float32: the input gradient as a conv of dy), and
 * 128 -> 32 channels (float32: Winograd F(4x4, 3x3)).
 * CTest runs this once per CPU kernel set. */
static void fwd_bwd(int threads, nb_dtype dt, int64_t N, int64_t C, int64_t groups, nb_tensor **res) {
    NBT_OK(nb_set_num_threads(threads));
    const int64_t O = C == 6 ? 36 : C == 96 ? 12 : C == 8 ? 16 : 32;
    nb_tensor *x = nbt_randn(1, dt, NB_SHAPE(N, C, 20, 21), true);
    nb_tensor *w = nbt_randn(2, dt, NB_SHAPE(O, C / groups, 3, 3), true);
    nb_tensor *b = nbt_randn(3, dt, NB_SHAPE(O), true);
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding[0] = p.padding[1] = 1;
    p.groups = groups;
    nb_tensor *y = NBT_NOTNULL(nb_conv2d(x, w, b, &p));
    nb_tensor *gy = nbt_randn(4, dt, nb_tensor_ndim(y), nb_tensor_shape(y), false);
    NBT_OK(nb_backward_ex(y, gy, false));
    res[0] = nb_detach(y);
    res[1] = nb_tensor_retain(nb_tensor_grad(x));
    res[2] = nb_tensor_retain(nb_tensor_grad(w));
    res[3] = nb_tensor_retain(nb_tensor_grad(b));
    nb_tensor *t[] = {x, w, b, y, gy};
    for (int i = 0; i < 5; i++) nb_tensor_release(t[i]);
}

START_TEST(test_deterministic_threads) {
    int saved = nb_get_num_threads();
    const int64_t batches[] = {1, 5, 19};
    for (int dt = 0; dt < 2; dt++)
        for (int bi = 0; bi < 3; bi++)
            for (int gi = 0; gi < 6; gi++) {
                const int64_t g = (int64_t[]){1, 2, 6, 2, 1, 1}[gi], C = (int64_t[]){6, 6, 6, 96, 128, 8}[gi];
                /* the 96-, 128- and 8-channel cases pick float32 kernels (8 -> 16:
                 * direct in every phase); float64 runs the reference there too,
                 * already covered at 6 */
                if (dt == NB_F64 && C > 6) continue;
                nb_tensor *a[4], *b[4], *c[4];
                fwd_bwd(1, (nb_dtype)dt, batches[bi], C, g, a);
                fwd_bwd(2, (nb_dtype)dt, batches[bi], C, g, b);
                fwd_bwd(3, (nb_dtype)dt, batches[bi], C, g, c);
                for (int i = 0; i < 4; i++) {
                    nbt_assert_bitwise_equal(a[i], b[i]);
                    nbt_assert_bitwise_equal(a[i], c[i]);
                    nb_tensor_release(a[i]);
                    nb_tensor_release(b[i]);
                    nb_tensor_release(c[i]);
                }
            }
    NBT_OK(nb_set_num_threads(saved));
}
END_TEST

/* ---- output size: the tutorial's N = (W + P1 + P2 - F) / S + 1 ---- */

START_TEST(test_output_size) {
    int64_t out = -1;
    /* W=4, F=3, no padding, S=1: (4 - 3)/1 + 1 = 2 (the tutorial's 4x4 example) */
    NBT_OK(nb_conv_output_size(4, 3, 1, 0, 0, 1, &out));
    ck_assert_int_eq(out, 2);
    /* W=5, P1=P2=1, F=3, S=2: (5 + 2 - 3)/2 + 1 = 3 */
    NBT_OK(nb_conv_output_size(5, 3, 2, 1, 1, 1, &out));
    ck_assert_int_eq(out, 3);
    /* asymmetric: W=7, P1=1, P2=2, F=4, S=3: (7 + 3 - 4)/3 + 1 = 3 */
    NBT_OK(nb_conv_output_size(7, 4, 3, 1, 2, 1, &out));
    ck_assert_int_eq(out, 3);
    /* flooring: W=6, F=3, S=2: (6 - 3)/2 + 1 = 2 */
    NBT_OK(nb_conv_output_size(6, 3, 2, 0, 0, 1, &out));
    ck_assert_int_eq(out, 2);
    /* dilation: F_eff = 2*(3-1)+1 = 5; W=9, P=1+1: (11 - 5)/1 + 1 = 7 */
    NBT_OK(nb_conv_output_size(9, 3, 1, 1, 1, 2, &out));
    ck_assert_int_eq(out, 7);
    /* the tutorial's "same": P = F - 1 gives (W + S - 1)/S: W=10, F=3, S=3 -> (10 + 2)/3 = 4 */
    NBT_OK(nb_conv_output_size(10, 3, 3, 1, 1, 1, &out));
    ck_assert_int_eq(out, 4);
    /* the docs' examples on 50x100: k3 s2 -> 24x49; (3,5) s(2,1) p(4,2) -> 28x100; dilation (3,1) -> 26x100 */
    NBT_OK(nb_conv_output_size(50, 3, 2, 0, 0, 1, &out));
    ck_assert_int_eq(out, 24);
    NBT_OK(nb_conv_output_size(100, 3, 2, 0, 0, 1, &out));
    ck_assert_int_eq(out, 49);
    NBT_OK(nb_conv_output_size(50, 3, 2, 4, 4, 1, &out));
    ck_assert_int_eq(out, 28);
    NBT_OK(nb_conv_output_size(100, 5, 1, 2, 2, 1, &out));
    ck_assert_int_eq(out, 100);
    NBT_OK(nb_conv_output_size(50, 3, 2, 4, 4, 3, &out));
    ck_assert_int_eq(out, 26);
    NBT_STATUS_FAILS_WITH(nb_conv_output_size(2, 3, 1, 0, 0, 1, &out), "Kernel size can't be greater than actual input size");
    NBT_STATUS_FAILS_WITH(nb_conv_output_size(5, 3, 0, 0, 0, 1, &out), "non-positive stride is not supported");
    NBT_STATUS_FAILS_WITH(nb_conv_output_size(5, 3, 1, 0, 0, 0, &out), "dilation should be greater than zero");
    NBT_STATUS_FAILS_WITH(nb_conv_output_size(5, 3, 1, -1, 0, 1, &out), "negative padding is not supported");
    NBT_STATUS_FAILS_WITH(nb_conv_output_size(5, 0, 1, 0, 0, 1, &out), "expected a positive kernel size, but got 0");
}
END_TEST

/* The conv output shape agrees with nb_conv_output_size on a small grid. */
START_TEST(test_output_shape_grid) {
    nb_tensor *x = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(1, 1, 9, 8)));
    for (int64_t k = 1; k <= 4; k++)
        for (int64_t s = 1; s <= 3; s++)
            for (int64_t pd = 0; pd <= 2; pd++)
                for (int64_t d = 1; d <= 2; d++) {
                    nb_tensor *w = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(1, 1, k, k)));
                    nb_conv2d_params p = nb_conv2d_defaults();
                    p.stride[0] = p.stride[1] = s;
                    p.padding[0] = p.padding[1] = pd;
                    p.dilation[0] = p.dilation[1] = d;
                    nb_tensor *y = NBT_NOTNULL(nb_conv2d(x, w, NULL, &p));
                    int64_t ho, wo;
                    NBT_OK(nb_conv_output_size(9, k, s, pd, pd, d, &ho));
                    NBT_OK(nb_conv_output_size(8, k, s, pd, pd, d, &wo));
                    nbt_assert_shape(y, NB_SHAPE(1, 1, ho, wo));
                    nb_tensor_release(y);
                    nb_tensor_release(w);
                }
    nb_tensor_release(x);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_errors) {
    nb_tensor *x = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(20, 16, 50, 100)));
    nb_tensor *w = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(33, 32, 3, 5)));
    NBT_FAILS_WITH(nb_conv2d(x, w, NULL, NULL), "Given groups=1, weight of size [33, 32, 3, 5], expected "
                                                "input[20, 16, 50, 100] to have 32 channels, but got 16 channels instead");
    nb_tensor *x3 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(16, 50, 100)));
    NBT_FAILS_WITH(nb_conv2d(x3, w, NULL, NULL), "expected input[1, 16, 50, 100] to have 32 channels");
    nb_tensor *x5 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 2, 16, 5, 5)));
    NBT_FAILS_WITH(nb_conv2d(x5, w, NULL, NULL), "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
                                                 "input of size: [2, 2, 16, 5, 5]");
    nb_tensor *x2 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(5, 5)));
    NBT_FAILS_WITH(nb_conv2d(x2, w, NULL, NULL), "input of size: [5, 5]");

    nb_tensor *xs = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 4, 5, 5)));
    nb_tensor *w3 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(6, 4, 3)));
    NBT_FAILS_WITH(nb_conv2d(xs, w3, NULL, NULL), "expected a 4-dimensional weight");
    nb_tensor *w64 = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(6, 4, 3, 3)));
    NBT_FAILS_WITH(nb_conv2d(xs, w64, NULL, NULL), "Input type (float32) and weight type (float64) should be the same");
    nb_tensor *wi = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(6, 4, 3, 3)));
    NBT_FAILS_WITH(nb_conv2d(xs, wi, NULL, NULL), "float32 or float64");
    NBT_FAILS_WITH(nb_conv2d(NULL, w64, NULL, NULL), "");

    nb_tensor *wk = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(6, 4, 3, 3)));
    nb_tensor *b5 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(5)));
    NBT_FAILS_WITH(nb_conv2d(xs, wk, b5, NULL), "Given weight of size [6, 4, 3, 3], expected bias to be 1-dimensional "
                                                "with 6 elements, but got bias of size [5] instead");
    nb_tensor *b2d = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(6, 1)));
    NBT_FAILS_WITH(nb_conv2d(xs, wk, b2d, NULL), "but got bias of size [6, 1] instead");
    nb_tensor *b64 = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(6)));
    NBT_FAILS_WITH(nb_conv2d(xs, wk, b64, NULL), "Input type (float32) and bias type (float64) should be the same");

    nb_conv2d_params p = nb_conv2d_defaults();
    p.stride[1] = 0;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "non-positive stride is not supported");
    p = nb_conv2d_defaults(), p.dilation[0] = 0;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "dilation should be greater than zero");
    p = nb_conv2d_defaults(), p.padding[0] = -1;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "negative padding is not supported");
    p = nb_conv2d_defaults(), p.groups = 0;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "expected groups to be greater than 0, but got groups=0");
    p = nb_conv2d_defaults(), p.padding_kind = NB_PADDING_SAME, p.stride[0] = 2;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "padding='same' is not supported for strided convolutions");
    p = nb_conv2d_defaults(), p.padding_mode = (nb_padding_mode)7;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "padding_mode must be one of");

    /* groups: in_channels 4 not divisible by 3; weight dim 0 checks */
    nb_tensor *wg = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(6, 1, 3, 3)));
    p = nb_conv2d_defaults(), p.groups = 3;
    NBT_FAILS_WITH(nb_conv2d(xs, wg, NULL, &p), "in_channels must be divisible by groups, but got input[2, 4, 5, 5] "
                                                "with 4 channels and groups=3");
    nb_tensor *wd = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(5, 2, 3, 3)));
    p.groups = 2;
    NBT_FAILS_WITH(nb_conv2d(xs, wd, NULL, &p), "Given groups=2, expected weight to be divisible by 2 at dimension 0, "
                                                "but got weight of size [5, 2, 3, 3] instead");
    nb_tensor *ws = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 1, 3, 3)));
    p.groups = 4;
    NBT_FAILS_WITH(nb_conv2d(xs, ws, NULL, &p), "Given groups=4, expected weight to be at least 4 at dimension 0, but "
                                                "got weight of size [2, 1, 3, 3] instead");

    /* the dilated kernel is larger than the padded input */
    nb_tensor *xsmall = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 4, 2, 5)));
    NBT_FAILS_WITH(nb_conv2d(xsmall, wk, NULL, NULL), "Calculated padded input size per channel: (2 x 5). Kernel size: "
                                                      "(3 x 3). Kernel size can't be greater than actual input size");
    p = nb_conv2d_defaults(), p.dilation[1] = 3, p.padding[0] = 1;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "Calculated padded input size per channel: (7 x 5). Kernel size: "
                                                "(3 x 7). Kernel size can't be greater than actual input size");

    /* reflect padding wider than the input, through conv and through pad */
    p = nb_conv2d_defaults(), p.padding_mode = NB_PAD_REFLECT, p.padding[1] = 5;
    NBT_FAILS_WITH(nb_conv2d(xs, wk, NULL, &p), "Padding size should be less than the corresponding input dimension, "
                                                "but got: padding (5, 5) at dimension 3 of input [2, 4, 5, 5]");
    NBT_FAILS_WITH(nb_pad(xs, (int64_t[]){0, 0, 5, 1}, 4, NB_PAD_REFLECT, 0),
                   "but got: padding (5, 1) at dimension 2 of input [2, 4, 5, 5]");
    NBT_FAILS_WITH(nb_pad(xs, (int64_t[]){6, 0, 0, 0}, 4, NB_PAD_CIRCULAR, 0), "Padding value causes wrapping around more than once");
    NBT_FAILS_WITH(nb_pad(xs, (int64_t[]){1, 1, 1}, 3, NB_PAD_ZEROS, 0), "expected 2 or 4 padding values");
    NBT_FAILS_WITH(nb_pad(xs, NULL, 4, NB_PAD_ZEROS, 0), "pad is NULL");
    NBT_FAILS_WITH(nb_pad(xs, (int64_t[]){1, 1}, 2, NB_PAD_REFLECT, 0), "reflect padding with 2 values expects a 2D or 3D input");
    NBT_FAILS_WITH(nb_pad(x2, (int64_t[]){1, 1, 1, 1}, 4, NB_PAD_REPLICATE, 0), "expects a 3D or 4D input, but got input of size [5, 5]");
    NBT_FAILS_WITH(nb_pad(xs, (int64_t[]){-3, -3}, 2, NB_PAD_ZEROS, 0), "resulted in a negative output size");
    NBT_FAILS_WITH(nb_pad(xs, (int64_t[]){1, 1}, 2, (nb_padding_mode)9, 0), "unknown padding mode 9");

    nb_tensor *all[] = {x, w, x3, x5, x2, xs, w3, w64, wi, wk, b5, b2d, b64, wg, wd, ws, xsmall};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_release(all[i]);
}
END_TEST

/* Non-contiguous arguments give the same result as their contiguous copies,
 * and gradients come back in the argument's shape. */
START_TEST(test_noncontiguous) {
    nb_tensor *xt = nbt_randn(5, NB_F64, NB_SHAPE(2, 3, 7, 6), true);
    nb_tensor *x = NBT_NOTNULL(nb_transpose(xt, 2, 3)); /* [2, 3, 6, 7] */
    nb_tensor *w = nbt_randn(6, NB_F64, NB_SHAPE(4, 3, 3, 2), true);
    nb_tensor *xc = NBT_NOTNULL(nb_contiguous(x));
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding[0] = 1;
    nb_tensor *y1 = NBT_NOTNULL(nb_conv2d(x, w, NULL, &p)), *y2 = NBT_NOTNULL(nb_conv2d(xc, w, NULL, &p));
    nbt_assert_bitwise_equal(y1, y2);
    nb_tensor *gy = nbt_randn(8, NB_F64, nb_tensor_ndim(y1), nb_tensor_shape(y1), false);
    NBT_OK(nb_backward_ex(y1, gy, false));
    nbt_assert_shape(nb_tensor_grad(xt), NB_SHAPE(2, 3, 7, 6));
    nb_tensor *t[] = {xt, x, w, xc, y1, y2, gy};
    for (int i = 0; i < 7; i++) nb_tensor_release(t[i]);
}
END_TEST

/* An empty batch: empty output, zero weight and bias gradients (as PyTorch). */
START_TEST(test_empty_batch) {
    nb_tensor *x = nbt_randn(1, NB_F64, NB_SHAPE(0, 2, 5, 5), true);
    nb_tensor *w = nbt_randn(2, NB_F64, NB_SHAPE(3, 2, 3, 3), true);
    nb_tensor *b = nbt_randn(3, NB_F64, NB_SHAPE(3), true);
    nb_tensor *y = NBT_NOTNULL(nb_conv2d(x, w, b, NULL));
    nbt_assert_shape(y, NB_SHAPE(0, 3, 3, 3));
    nb_tensor *gy = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(0, 3, 3, 3)));
    NBT_OK(nb_backward_ex(y, gy, false));
    nbt_assert_shape(nb_tensor_grad(x), NB_SHAPE(0, 2, 5, 5));
    double z[54] = {0};
    nbt_assert_values(nb_tensor_grad(w), z, 54, 0, 0);
    nbt_assert_values(nb_tensor_grad(b), z, 3, 0, 0);
    nb_tensor *t[] = {x, w, b, y, gy};
    for (int i = 0; i < 5; i++) nb_tensor_release(t[i]);
}
END_TEST

/* Inside a scope (with the nb_pad node of a padding mode in the graph)
 * everything is given back at scope end and after backward. */
START_TEST(test_scope) {
    size_t before = nb_memory_in_use();
    nb_tensor *x = nbt_randn(1, NB_F32, NB_SHAPE(2, 3, 6, 7), true);
    nb_tensor *w = nbt_randn(2, NB_F32, NB_SHAPE(4, 3, 3, 3), true);
    nb_scope *sc = nb_scope_begin();
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding_kind = NB_PADDING_SAME;
    p.padding_mode = NB_PAD_REFLECT;
    nb_tensor *y = NBT_NOTNULL(nb_conv2d(x, w, NULL, &p));
    nbt_assert_shape(y, NB_SHAPE(2, 4, 6, 7));
    nb_tensor *gy = NBT_NOTNULL(nb_ones_like(y));
    NBT_OK(nb_backward_ex(y, gy, false));
    nb_scope_end(sc);
    ck_assert_ptr_nonnull(nb_tensor_grad(x));
    nb_tensor_release(x);
    nb_tensor_release(w);
    ck_assert_int_eq(nb_memory_in_use(), before);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("conv2d");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pytorch_reference);
    tcase_add_test(tc, test_kernels_vs_reference);
    tcase_add_test(tc, test_gradcheck_conv);
    tcase_add_test(tc, test_gradcheck_pad);
    tcase_add_test(tc, test_pad_values);
    tcase_add_test(tc, test_deterministic_threads);
    tcase_add_test(tc, test_output_size);
    tcase_add_test(tc, test_output_shape_grid);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_noncontiguous);
    tcase_add_test(tc, test_empty_batch);
    tcase_add_test(tc, test_scope);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return nbt_run_suite(suite()); }
