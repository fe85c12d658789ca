/* ConvTranspose2d (F.conv_transpose2d and the module) against PyTorch: the
 * configurations of tests/pytorch/conv_transpose2d_reference.py, forward and
 * the three gradients, with the conv algorithms the heuristic picks and with
 * every algorithm forced wherever it applies (each phase of the transposed
 * conv is a phase of the Conv2d it is the adjoint of: its forward is the
 * conv's dx, its input gradient the conv's forward, its weight gradient the
 * conv's dw); a grid of small geometries in float64 and, through every
 * algorithm, float32; gradcheck, bitwise determinism at 1, 2 and 3 threads,
 * the output-size formula, output_size, an empty batch, every error message,
 * the module's init and an HDF5 round trip of its state with PyTorch. CTest
 * runs this suite once per CPU kernel set (NB_CPU). */
#include "testutil.h"

#include "nabla/conv.h"
#include "nabla/gradcheck.h"
#include "nabla/io.h"
#include "nabla/nn.h"
#include "nn/conv_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ck_assert that a module constructor succeeded. */
#define MODULE_OK(expr)                                                                  \
    ({                                                                                   \
        nb_module *m_ = (expr);                                                          \
        ck_assert_msg(m_ != NULL, "%s returned NULL: %s", #expr, nb_last_error());       \
        m_;                                                                              \
    })

static const char *ref_file(void) {
    static char path[4096];
    if (!path[0]) snprintf(path, sizeof path, "%s", nbt_data_path("conv_transpose2d.h5"));
    return path;
}

/* max |got - ref| <= tol * max(1, max |ref|), test_conv2d.c's bound */
static void check_close(const char *what, const char *cfg, const nb_tensor *got, const nb_tensor *ref, double tol) {
    char sg[128], sr[128];
    ck_assert_msg(got != NULL, "%s %s: missing (%s)", cfg, what, nb_last_error());
    const int nd = nb_tensor_ndim(ref);
    ck_assert_msg(nb_tensor_ndim(got) == nd &&
                      !memcmp(nb_tensor_shape(got), nb_tensor_shape(ref), sizeof(int64_t) * (size_t)nd),
                  "%s %s: shape %s, PyTorch %s", cfg, what, nb_shape_str(nd, nb_tensor_shape(got), sg, sizeof sg),
                  nb_shape_str(nd, nb_tensor_shape(ref), sr, sizeof sr));
    const int64_t n = nb_tensor_numel(ref);
    double *a = malloc(sizeof(double) * (size_t)(n + 1)), *e = malloc(sizeof(double) * (size_t)(n + 1));
    NBT_OK(nb_tensor_copy_out(got, a, NB_F64));
    NBT_OK(nb_tensor_copy_out(ref, e, NB_F64));
    double scale = 1, worst = 0;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(e[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - e[i]) <= worst)) worst = fabs(a[i] - e[i]), wi = i; /* NaN counts as worst */
    const double gv = n ? a[wi] : 0, ev = n ? e[wi] : 0;
    free(a);
    free(e);
    ck_assert_msg(worst <= tol * scale, "%s %s: element %lld is %.10g, PyTorch %.10g (|diff| %g > %g)", cfg, what,
                  (long long)wi, gv, ev, worst, tol * scale);
}

/* ---- PyTorch's configurations ---- */

enum { P_DTYPE, P_UNBATCHED, P_N, P_CIN, P_H, P_W, P_COUT, P_KH, P_KW, P_SH, P_SW, P_PH, P_PW, P_OPH, P_OPW, P_DH,
       P_DW, P_GROUPS, P_BIAS, P_GRID, P_OSLEN, P_OS, P_COUNT = P_OS + 4 };

static nb_conv_transpose2d_params params_of(const int64_t *q) {
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.stride[0] = q[P_SH], p.stride[1] = q[P_SW];
    p.padding[0] = q[P_PH], p.padding[1] = q[P_PW];
    p.output_padding[0] = q[P_OPH], p.output_padding[1] = q[P_OPW];
    p.dilation[0] = q[P_DH], p.dilation[1] = q[P_DW];
    p.groups = q[P_GROUPS];
    return p;
}

/* How many runs ran each algorithm, per phase of the adjoint conv (forward, dx, dw). */
static int algo_runs[NBI_CONV_ALGOS][3];

/* Whether forcing a runs some phase of the conv of geometry g that the heuristic gave another algorithm. */
static bool forcing_adds(nbi_conv_algo a, const nbi_conv_geom *g, nbi_conv_plan heuristic) {
    return (nbi_conv2d_applies(a, NBI_CONV_FORWARD, g, NB_F32) && heuristic.forward != a) ||
           (nbi_conv2d_applies(a, NBI_CONV_DX, g, NB_F32) && heuristic.dx != a) ||
           (nbi_conv2d_applies(a, NBI_CONV_DW, g, NB_F32) && heuristic.dw != a);
}

/* The transposed conv of config q on (x, w, b): the functional op, or with
 * output_size the module's forward with w and b loaded (*m then holds it;
 * the gradients are its parameters'). */
static nb_tensor *run_op(const int64_t *q, nb_dtype dt, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_module **m) {
    const nb_conv_transpose2d_params p = params_of(q);
    *m = NULL;
    if (!q[P_OSLEN]) return nb_conv_transpose2d(x, w, b, &p);
    *m = MODULE_OK(nb_conv_transpose2d_module(q[P_CIN], q[P_COUT], q[P_KH], q[P_KW], &p, b != NULL, NULL));
    NBT_OK(nb_module_to_dtype(*m, dt));
    NBT_OK(nb_module_load_tensor(*m, "weight", w));
    if (b) NBT_OK(nb_module_load_tensor(*m, "bias", b));
    return nb_conv_transpose2d_module_forward(*m, x, q + P_OS, (int)q[P_OSLEN]);
}

/* Config i in dtype dt (a grid config, float64 in the file, also runs in
 * float32), with the heuristic's algorithms and then each algorithm forced
 * where that runs something new. */
static void run_config(int i, nb_dtype dt) {
    char group[32], cfg[96];
    snprintf(group, sizeof group, "cfg%03d", i);
    nb_scope *sc = nb_scope_begin();
    const int64_t *q = nb_tensor_i64(nbt_ref_read(ref_file(), group, "params", NB_I64, false));
    const bool bias = q[P_BIAS];
    const double tol = dt == NB_F32 ? 2e-5 : 1e-10;
    nb_tensor *x = nbt_ref_read(ref_file(), group, "x", dt, true), *w = nbt_ref_read(ref_file(), group, "w", dt, true);
    nb_tensor *b = bias ? nbt_ref_read(ref_file(), group, "b", dt, true) : NULL;
    nb_tensor *yr = nbt_ref_read(ref_file(), group, "y", dt, false), *gy = nbt_ref_read(ref_file(), group, "gy", dt, false);
    nb_tensor *gxr = nbt_ref_read(ref_file(), group, "gx", dt, false), *gwr = nbt_ref_read(ref_file(), group, "gw", dt, false);
    nb_tensor *gbr = bias ? nbt_ref_read(ref_file(), group, "gb", dt, false) : NULL;
    nbi_conv_plan heuristic = {NBI_CONV_AUTO, NBI_CONV_AUTO, NBI_CONV_AUTO};
    nbi_conv_geom geom = {0};
    const int last_algo = dt == NB_F32 ? NBI_CONV_ALGOS : NBI_CONV_AUTO + 1;
    for (int a = NBI_CONV_AUTO; a < last_algo; a++) {
        if (a != NBI_CONV_AUTO && !forcing_adds((nbi_conv_algo)a, &geom, heuristic)) continue;
        snprintf(cfg, sizeof cfg, "%s %s [%s, %s]", group, nb_dtype_name(dt),
                 a == NBI_CONV_AUTO ? "heuristic" : nbi_conv_algo_name((nbi_conv_algo)a), nb_cpu_kernels());
        nbi_conv2d_force_algo((nbi_conv_algo)a);
        nb_module *m;
        nb_tensor *y = run_op(q, dt, x, w, b, &m);
        ck_assert_msg(y != NULL, "%s: %s", cfg, nb_last_error());
        ck_assert_str_eq(nb_tensor_grad_fn_name(y), "conv_transpose2d");
        check_close("output", cfg, y, yr, tol);
        NBT_OK(nb_backward_ex(y, gy, false));
        check_close("grad input", cfg, nb_tensor_grad(x), gxr, tol);
        check_close("grad weight", cfg, nb_tensor_grad(m ? nb_module_param(m, "weight") : w), gwr, tol);
        if (bias) check_close("grad bias", cfg, nb_tensor_grad(m ? nb_module_param(m, "bias") : b), gbr, tol);
        const nbi_conv_plan plan = nbi_conv2d_last_plan();
        if (a == NBI_CONV_AUTO) {
            heuristic = plan;
            geom = nbi_conv2d_last_geom();
            if (plan.forward == NBI_CONV_AUTO) a = last_algo; /* no pixel reached: no conv ran, nothing to force */
        }
        const nbi_conv_algo ran[3] = {plan.forward, plan.dx, plan.dw};
        for (int f = 0; f < 3; f++)
            if (ran[f] != NBI_CONV_AUTO && dt == NB_F32) algo_runs[ran[f]][f]++;
        nb_zero_grad(x);
        nb_zero_grad(w);
        if (b) nb_zero_grad(b);
        nb_module_free(m);
    }
    nbi_conv2d_force_algo(NBI_CONV_AUTO);
    nb_scope_end(sc);
}

/* Each algorithm must run each phase on some config, or this could not fail for it. */
START_TEST(test_pytorch_reference) {
    double count = 0;
    ck_assert_msg(nbt_h5_read_scalar(ref_file(), "count", &count), "no count in %s", ref_file());
    ck_assert_int_ge((int)count, 100);
    memset(algo_runs, 0, sizeof algo_runs);
    for (int i = 0; i < (int)count; i++) {
        char name[32];
        snprintf(name, sizeof name, "cfg%03d/params", i);
        nb_tensor *pt = nbt_h5_read(ref_file(), name, NB_I64);
        ck_assert_int_eq(nb_tensor_numel(pt), P_COUNT);
        const nb_dtype dt = nb_tensor_i64(pt)[P_DTYPE] ? NB_F64 : NB_F32;
        const bool grid = nb_tensor_i64(pt)[P_GRID];
        nb_tensor_release(pt);
        run_config(i, dt);
        if (grid) run_config(i, NB_F32);
    }
    static const char *const phases[3] = {"input gradient (conv forward)", "forward (conv dx)", "weight gradient (conv dw)"};
    for (int a = 0; a < NBI_CONV_ALGOS; a++)
        for (int f = 0; f < 3; f++)
            ck_assert_msg(algo_runs[a][f] > 0, "%s never ran the %s", nbi_conv_algo_name((nbi_conv_algo)a), phases[f]);
    ck_assert_int_eq(nb_memory_in_use(), 0);
}
END_TEST

/* ---- gradcheck (float64) ---- */

typedef struct gc_case {
    int64_t N, Cin, H, W, Cout, kh, kw;
    nb_conv_transpose2d_params p;
    bool bias, unbatched;
} gc_case;

static nb_tensor *convt_fn(nb_tensor *const *in, int n, void *ctx) {
    const gc_case *c = ctx;
    return nb_conv_transpose2d(in[0], in[1], n > 2 ? in[2] : NULL, &c->p);
}

static gc_case mk(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t kh, int64_t kw) {
    return (gc_case){.N = N, .Cin = Cin, .H = H, .W = W, .Cout = Cout, .kh = kh, .kw = kw,
                     .p = nb_conv_transpose2d_defaults(), .bias = true};
}

START_TEST(test_gradcheck) {
    gc_case cases[16];
    int k = 0;
    cases[k++] = mk(2, 2, 3, 4, 3, 3, 3);
    cases[k] = mk(2, 2, 3, 3, 3, 3, 2), cases[k].p.stride[0] = 2, cases[k].p.stride[1] = 3;
    cases[k].p.padding[0] = 1, cases[k].p.output_padding[0] = 1, cases[k].p.output_padding[1] = 2, k++;
    cases[k] = mk(1, 2, 3, 4, 2, 2, 3), cases[k].p.dilation[0] = 2, cases[k].p.output_padding[0] = 1, k++; /* bias-only rows */
    cases[k] = mk(1, 2, 3, 3, 2, 3, 2), cases[k].p.stride[0] = 2, cases[k].p.dilation[0] = 3;
    cases[k].p.output_padding[0] = 2, cases[k].p.padding[1] = 1, k++;
    cases[k] = mk(1, 2, 3, 3, 2, 1, 1), cases[k].p.dilation[0] = cases[k].p.dilation[1] = 10;
    cases[k].p.padding[0] = 5, cases[k].p.output_padding[0] = 9, k++;                                        /* nothing reached */
    cases[k] = mk(2, 4, 3, 3, 2, 3, 3), cases[k].p.groups = 2, cases[k].p.stride[0] = 2, cases[k].p.padding[1] = 1, k++;
    cases[k] = mk(2, 3, 3, 4, 3, 3, 3), cases[k].p.groups = 3, cases[k].p.padding[0] = 1, k++;           /* depthwise-like */
    cases[k] = mk(2, 4, 3, 3, 2, 2, 2), cases[k].p.groups = 2, cases[k].p.stride[0] = cases[k].p.stride[1] = 2, k++;
    cases[k] = mk(2, 3, 3, 4, 2, 1, 1), k++;                                                              /* 1x1 */
    cases[k] = mk(1, 2, 3, 3, 3, 3, 3), cases[k].unbatched = true, cases[k].p.stride[1] = 2, k++;
    cases[k] = mk(2, 2, 3, 3, 3, 3, 2), cases[k].bias = false, cases[k].p.padding[0] = 2, cases[k].p.stride[0] = 3, k++;
    cases[k] = mk(18, 1, 2, 2, 2, 2, 2), k++; /* more items than the weight gradient's chunks */
    for (int i = 0; i < k; i++) {
        const gc_case *c = &cases[i];
        const uint64_t seed = 300 + 10 * (uint64_t)i;
        nb_tensor *in[3];
        in[0] = c->unbatched ? nbt_randn(seed, NB_F64, NB_SHAPE(c->Cin, c->H, c->W), true)
                             : nbt_randn(seed, NB_F64, NB_SHAPE(c->N, c->Cin, c->H, c->W), true);
        in[1] = nbt_randn(seed + 1, NB_F64, NB_SHAPE(c->Cin, c->Cout / c->p.groups, c->kh, c->kw), true);
        in[2] = c->bias ? nbt_randn(seed + 2, NB_F64, NB_SHAPE(c->Cout), true) : NULL;
        nbt_gradcheck(convt_fn, (void *)c, in, c->bias ? 3 : 2, false);
        for (int j = 0; j < 3; j++) nb_tensor_release(in[j]);
    }
}
END_TEST

/* ---- determinism: 1, 2 and 3 threads give the same bits ---- */

/* C -> O channels with groups, 3x3, stride 2 or 1: the adjoint conv's C is
 * O here, so 6 -> 36 is a plain conv, 12 -> 12 in 12 groups a depthwise one,
 * 16 -> 20 Winograd, 8 -> 96 in 2 groups the implicit input gradient. */
static void fwd_bwd(int threads, nb_dtype dt, int64_t N, int64_t C, int64_t O, int64_t groups, int64_t stride,
                    nb_tensor **res) {
    NBT_OK(nb_set_num_threads(threads));
    nb_tensor *x = nbt_randn(1, dt, NB_SHAPE(N, C, 11, 10), true);
    nb_tensor *w = nbt_randn(2, dt, NB_SHAPE(C, O / groups, 3, 3), true);
    nb_tensor *b = nbt_randn(3, dt, NB_SHAPE(O), true);
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.padding[0] = p.padding[1] = 1;
    p.stride[0] = p.stride[1] = stride;
    p.output_padding[0] = stride - 1;
    p.groups = groups;
    nb_tensor *y = NBT_NOTNULL(nb_conv_transpose2d(x, w, b, &p));
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
    const int saved = nb_get_num_threads();
    static const int64_t shapes[][4] = {{6, 36, 1, 2}, {12, 12, 12, 2}, {12, 12, 12, 1}, {16, 20, 1, 1}, {8, 96, 2, 1}};
    const int64_t batches[] = {1, 5, 19};
    for (int dt = 0; dt < 2; dt++)
        for (int bi = 0; bi < 3; bi++)
            for (int si = 0; si < 5; si++) {
                const int64_t *s = shapes[si];
                if (dt == NB_F64 && si > 1) continue; /* float64 is the reference everywhere */
                nb_tensor *r[3][4];
                for (int t = 0; t < 3; t++) fwd_bwd(t + 1, (nb_dtype)dt, batches[bi], s[0], s[1], s[2], s[3], r[t]);
                for (int i = 0; i < 4; i++) {
                    nbt_assert_bitwise_equal(r[0][i], r[1][i]);
                    nbt_assert_bitwise_equal(r[0][i], r[2][i]);
                    for (int t = 0; t < 3; t++) nb_tensor_release(r[t][i]);
                }
            }
    NBT_OK(nb_set_num_threads(saved));
}
END_TEST

/* ---- sizes ---- */

START_TEST(test_output_size) {
    int64_t out = -1;
    /* the docs' ConvTranspose2d(16, 33, 3, stride=2) on 50x100: 101x201 */
    NBT_OK(nb_conv_transpose_output_size(50, 3, 2, 0, 0, 1, &out));
    ck_assert_int_eq(out, 101);
    NBT_OK(nb_conv_transpose_output_size(100, 3, 2, 0, 0, 1, &out));
    ck_assert_int_eq(out, 201);
    /* (3, 5) stride (2, 1) padding (4, 2) on 50x100: 93x100 */
    NBT_OK(nb_conv_transpose_output_size(50, 3, 2, 4, 0, 1, &out));
    ck_assert_int_eq(out, 93);
    NBT_OK(nb_conv_transpose_output_size(100, 5, 1, 2, 0, 1, &out));
    ck_assert_int_eq(out, 100);
    /* the downsample/upsample pair: 6 -> 11, 12 with output_padding 1 */
    NBT_OK(nb_conv_transpose_output_size(6, 3, 2, 1, 1, 1, &out));
    ck_assert_int_eq(out, 12);
    /* output_padding below the dilation only: (5 - 1) + 2*2 + 1 + 1 = 10 */
    NBT_OK(nb_conv_transpose_output_size(5, 3, 1, 0, 1, 2, &out));
    ck_assert_int_eq(out, 10);
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(1, 3, 1, 2, 0, 1, &out),
                          "Given input size: 1. Calculated output size: -1. Output size is too small");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(5, 3, 2, 0, 2, 1, &out),
                          "output padding must be smaller than either stride or dilation");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(0, 3, 1, 0, 0, 1, &out), "expected a positive input size");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(5, 0, 1, 0, 0, 1, &out), "expected a positive kernel size");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(5, 3, 0, 0, 0, 1, &out), "non-positive stride is not supported");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(5, 3, 1, 0, 0, 0, &out), "dilation should be greater than zero");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(5, 3, 1, -1, 0, 1, &out), "negative padding is not supported");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(5, 3, 1, 0, -1, 1, &out), "negative output_padding");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(INT64_MAX, 3, 4, 0, 0, 1, &out), "overflows int64");
    NBT_STATUS_FAILS_WITH(nb_conv_transpose_output_size(5, 3, 1, 0, 0, 1, NULL), "out is NULL");
}
END_TEST

/* The op's output shape agrees with nb_conv_transpose_output_size on a grid. */
START_TEST(test_output_shape_grid) {
    nb_tensor *x = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(1, 1, 4, 3)));
    for (int64_t k = 1; k <= 3; k++)
        for (int64_t s = 1; s <= 3; s++)
            for (int64_t pd = 0; pd <= 2; pd++)
                for (int64_t d = 1; d <= 3; d++)
                    for (int64_t op = 0; op < (s > d ? s : d); op++) {
                        nb_tensor *w = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(1, 2, k, k)));
                        nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
                        p.stride[0] = p.stride[1] = s;
                        p.padding[0] = p.padding[1] = pd;
                        p.dilation[0] = p.dilation[1] = d;
                        p.output_padding[0] = p.output_padding[1] = op;
                        int64_t ho, wo;
                        nb_status sh = nb_conv_transpose_output_size(4, k, s, pd, op, d, &ho);
                        nb_status sw = nb_conv_transpose_output_size(3, k, s, pd, op, d, &wo);
                        nb_tensor *y = nb_conv_transpose2d(x, w, NULL, &p);
                        if (sh == NB_OK && sw == NB_OK) nbt_assert_shape(NBT_NOTNULL(y), NB_SHAPE(1, 2, ho, wo));
                        else ck_assert_msg(!y && strstr(nb_last_error(), "Output size is too small"), "%s", nb_last_error());
                        nb_tensor_release(y);
                        nb_tensor_release(w);
                    }
    nb_tensor_release(x);
}
END_TEST

/* ---- errors, in PyTorch's words ---- */

START_TEST(test_errors) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 4, 5, 5)));
    nb_tensor *w = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(4, 3, 3, 3)));
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
#define FAILS(pp, xx, ww, bb, msg) NBT_FAILS_WITH(nb_conv_transpose2d(xx, ww, bb, pp), msg)
    FAILS(NULL, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(1, 2, 4, 5, 5))), w, NULL,
          "Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, but got input of size: [1, 2, 4, 5, 5]");
    FAILS(NULL, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(5, 5))), w, NULL, "but got input of size: [5, 5]");
    FAILS(NULL, x, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(4, 3, 3))), NULL, "expected a 4-dimensional weight");
    FAILS(NULL, x, NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(4, 3, 3, 3))), NULL,
          "Input type (float32) and weight type (float64) should be the same");
    FAILS(NULL, x, w, NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(3))), "Input type (float32) and bias type (float64)");
    FAILS(NULL, x, NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(4, 3, 3, 3))), NULL, "float32 or float64");
    FAILS(NULL, NULL, w, NULL, "");
    p.groups = 0;
    FAILS(&p, x, w, NULL, "non-positive groups is not supported");
    p = nb_conv_transpose2d_defaults(), p.padding[1] = -1;
    FAILS(&p, x, w, NULL, "negative padding is not supported");
    p = nb_conv_transpose2d_defaults(), p.output_padding[0] = -1;
    FAILS(&p, x, w, NULL, "negative output_padding is not supported");
    p = nb_conv_transpose2d_defaults(), p.stride[0] = 0;
    FAILS(&p, x, w, NULL, "non-positive stride is not supported");
    p = nb_conv_transpose2d_defaults(), p.dilation[1] = 0;
    FAILS(&p, x, w, NULL, "dilation should be greater than zero, but got dilation_height: 1, dilation_width: 0");
    p = nb_conv_transpose2d_defaults(), p.padding_mode = NB_PAD_REFLECT;
    FAILS(&p, x, w, NULL, "Only \"zeros\" padding mode is supported for ConvTranspose2d");
    p = nb_conv_transpose2d_defaults(), p.groups = 3;
    FAILS(&p, x, w, NULL, "Given groups=3, expected weight to be divisible by 3 at dimension 0, but got weight of "
                          "size [4, 3, 3, 3] instead");
    p.groups = 8;
    FAILS(&p, x, w, NULL, "Given groups=8, expected weight to be at least 8 at dimension 0, but got weight of size "
                          "[4, 3, 3, 3] instead");
    FAILS(NULL, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 5, 5, 5))), w, NULL,
          "Given transposed=1, weight of size [4, 3, 3, 3], expected input[2, 5, 5, 5] to have 4 channels, but got 5 "
          "channels instead");
    FAILS(NULL, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(5, 5, 5))), w, NULL, "expected input[1, 5, 5, 5] to have 4 channels");
    FAILS(NULL, x, w, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(4))),
          "Given transposed=1, weight of size [4, 3, 3, 3], expected bias to be 1-dimensional with 3 elements, but got "
          "bias of size [4] instead");
    p = nb_conv_transpose2d_defaults(), p.groups = 2;
    FAILS(&p, x, w, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(3))), "expected bias to be 1-dimensional with 6 elements");
    FAILS(NULL, x, w, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(3, 1))), "but got bias of size [3, 1] instead");
    FAILS(NULL, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 4, 0, 5))), w, NULL,
          "Only zero batch or zero channel inputs are supported, but got input shape: [2, 4, 0, 5]");
    FAILS(NULL, x, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(4, 3, 0, 3))), NULL,
          "kernel size should be greater than zero, but got kernel_height: 0 kernel_width: 3");
    p = nb_conv_transpose2d_defaults(), p.stride[0] = p.stride[1] = 2, p.output_padding[1] = 2;
    FAILS(&p, x, w, NULL, "output padding must be smaller than either stride or dilation, but got "
                          "output_padding_height: 0 output_padding_width: 2 stride_height: 2 stride_width: 2 "
                          "dilation_height: 1 dilation_width: 1");
    FAILS(NULL, x, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(4, 0, 3, 3))), NULL,
          "non-empty 2D or 4D weight tensor expected, but got: [4, 0, 3, 3]");
    p = nb_conv_transpose2d_defaults(), p.padding[0] = p.padding[1] = 2;
    FAILS(&p, NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 4, 1, 1))), w, NULL,
          "Given input size per channel: (1 x 1). Calculated output size per channel: (-1 x -1). Output size is too small");
    p = nb_conv_transpose2d_defaults(), p.padding[0] = INT64_MAX / 2 + 1;
    FAILS(&p, x, w, NULL, "Calculated output size per channel: (-9223372036854775801 x 7)");
    p = nb_conv_transpose2d_defaults(), p.stride[0] = INT64_MAX;
    FAILS(&p, x, w, NULL, "overflows int64");
    p = nb_conv_transpose2d_defaults(), p.dilation[1] = INT64_MAX / 2 + 1;
    FAILS(&p, x, w, NULL, "overflows int64");
#undef FAILS
    nb_scope_end(sc);
}
END_TEST

/* ---- an empty batch, non-contiguous arguments ---- */

START_TEST(test_empty_batch) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(1, NB_F64, NB_SHAPE(0, 2, 4, 5), true);
    nb_tensor *w = nbt_randn(2, NB_F64, NB_SHAPE(2, 3, 3, 3), true), *b = nbt_randn(3, NB_F64, NB_SHAPE(3), true);
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.stride[0] = p.stride[1] = 2;
    p.output_padding[0] = 1;
    nb_tensor *y = NBT_NOTNULL(nb_conv_transpose2d(x, w, b, &p));
    nbt_assert_shape(y, NB_SHAPE(0, 3, 10, 11));
    NBT_OK(nb_backward_ex(y, NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(0, 3, 10, 11))), false));
    nbt_assert_shape(nb_tensor_grad(x), NB_SHAPE(0, 2, 4, 5));
    const double z[54] = {0};
    nbt_assert_values(nb_tensor_grad(w), z, 54, 0, 0);
    nbt_assert_values(nb_tensor_grad(b), z, 3, 0, 0);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_noncontiguous) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *xt = nbt_randn(5, NB_F64, NB_SHAPE(2, 3, 5, 4), true);
    nb_tensor *x = NBT_NOTNULL(nb_transpose(xt, 2, 3)); /* [2, 3, 4, 5] */
    nb_tensor *wt = nbt_randn(6, NB_F64, NB_SHAPE(2, 3, 3, 3), true);
    nb_tensor *w = NBT_NOTNULL(nb_transpose(wt, 0, 1)); /* [3, 2, 3, 3] */
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.stride[0] = 2;
    nb_tensor *y1 = NBT_NOTNULL(nb_conv_transpose2d(x, w, NULL, &p));
    nb_tensor *y2 = NBT_NOTNULL(nb_conv_transpose2d(NBT_NOTNULL(nb_contiguous(x)), NBT_NOTNULL(nb_contiguous(w)), NULL, &p));
    nbt_assert_bitwise_equal(y1, y2);
    NBT_OK(nb_backward_ex(y1, nbt_randn(8, NB_F64, nb_tensor_ndim(y1), nb_tensor_shape(y1), false), false));
    nbt_assert_shape(nb_tensor_grad(xt), NB_SHAPE(2, 3, 5, 4));
    nbt_assert_shape(nb_tensor_grad(wt), NB_SHAPE(2, 3, 3, 3));
    nb_scope_end(sc);
}
END_TEST

/* ---- the module ---- */

START_TEST(test_module_init_and_state) {
    nb_scope *sc = nb_scope_begin();
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.groups = 2;
    nb_module *m = MODULE_OK(nb_conv_transpose2d_module(6, 8, 3, 2, &p, true, &rng));
    ck_assert_str_eq(nb_module_type(m), "ConvTranspose2d");
    ck_assert_int_eq(nb_module_state_count(m), 2);
    nb_tensor *w = nb_module_state(m, "weight"), *b = nb_module_state(m, "bias");
    nbt_assert_shape(w, NB_SHAPE(6, 4, 3, 2));
    nbt_assert_shape(b, NB_SHAPE(8));
    ck_assert(nb_tensor_requires_grad(w) && nb_tensor_requires_grad(b));
    /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = out/groups * kh * kw = 24 (the weight's dim 1) */
    const double bound = 1.0 / sqrt(24.0);
    const float *wv = nb_tensor_f32(w), *bv = nb_tensor_f32(b);
    double lo = 1, hi = -1;
    for (int i = 0; i < 144; i++) lo = fmin(lo, wv[i]), hi = fmax(hi, wv[i]);
    for (int i = 0; i < 8; i++) ck_assert(fabs(bv[i]) <= bound);
    ck_assert_msg(lo >= -bound && hi <= bound && lo < -0.8 * bound && hi > 0.8 * bound, "weights in [%g, %g], bound %g",
                  lo, hi, bound);
    nb_module_free(m);
    /* the same seed gives the same model; no bias: weight only */
    nb_rng_seed(&rng, 11);
    nb_module *m2 = MODULE_OK(nb_conv_transpose2d_module(6, 8, 3, 2, &p, false, &rng));
    ck_assert_int_eq(nb_module_state_count(m2), 1);
    ck_assert_float_eq(nb_tensor_f32(nb_module_state(m2, "weight"))[5], wv[5]);
    /* forward without output_size: the functional op with the module's output_padding */
    nb_tensor *x = nbt_randn(4, NB_F32, NB_SHAPE(2, 6, 3, 4), false);
    p.stride[0] = 2, p.output_padding[0] = 1;
    nb_module *m3 = MODULE_OK(nb_conv_transpose2d_module(6, 8, 3, 2, &p, true, &rng));
    nbt_assert_bitwise_equal(NBT_NOTNULL(nb_module_forward(m3, x)),
                             NBT_NOTNULL(nb_conv_transpose2d(x, nb_module_state(m3, "weight"),
                                                             nb_module_state(m3, "bias"), &p)));
    nbt_assert_shape(NBT_NOTNULL(nb_conv_transpose2d_module_forward(m3, x, NULL, 0)), NB_SHAPE(2, 8, 8, 5));
    nb_module_free(m2);
    nb_module_free(m3);
    nb_scope_end(sc);
}
END_TEST

/* Module constructor and output_size messages, in PyTorch's words. */
START_TEST(test_module_errors) {
    nb_scope *sc = nb_scope_begin();
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.padding_mode = NB_PAD_CIRCULAR;
    NBT_FAILS_WITH(nb_conv_transpose2d_module(4, 3, 3, 3, &p, true, NULL),
                   "ConvTranspose2d: Only \"zeros\" padding mode is supported for ConvTranspose2d");
    p = nb_conv_transpose2d_defaults(), p.groups = 0;
    NBT_FAILS_WITH(nb_conv_transpose2d_module(4, 3, 3, 3, &p, true, NULL), "groups must be a positive integer");
    p.groups = 3;
    NBT_FAILS_WITH(nb_conv_transpose2d_module(4, 3, 3, 3, &p, true, NULL), "in_channels must be divisible by groups");
    p.groups = 2;
    NBT_FAILS_WITH(nb_conv_transpose2d_module(4, 3, 3, 3, &p, true, NULL), "out_channels must be divisible by groups");
    p = nb_conv_transpose2d_defaults(), p.stride[1] = -2;
    NBT_FAILS_WITH(nb_conv_transpose2d_module(4, 3, 3, 3, &p, true, NULL), "non-positive stride is not supported");
    NBT_FAILS_WITH(nb_conv_transpose2d_module(4, 0, 3, 3, NULL, true, NULL), "must be positive");
    NBT_FAILS_WITH(nb_conv_transpose2d_module(4, 3, 3, 0, NULL, true, NULL), "kernel_size must be positive");
    /* output_padding >= stride and dilation is accepted at construction (output_size may replace it) */
    p = nb_conv_transpose2d_defaults(), p.stride[0] = p.stride[1] = 2, p.padding[0] = p.padding[1] = 1;
    p.output_padding[0] = p.output_padding[1] = 2;
    nb_module *m = MODULE_OK(nb_conv_transpose2d_module(4, 3, 3, 3, &p, true, NULL));
    nb_tensor *x = nbt_randn(1, NB_F32, NB_SHAPE(2, 4, 5, 5), false);
    NBT_FAILS_WITH(nb_module_forward(m, x), "output padding must be smaller than either stride or dilation");
    nbt_assert_shape(NBT_NOTNULL(nb_conv_transpose2d_module_forward(m, x, (int64_t[]){10, 9}, 2)), NB_SHAPE(2, 3, 10, 9));
    nbt_assert_shape(NBT_NOTNULL(nb_conv_transpose2d_module_forward(m, x, (int64_t[]){2, 3, 9, 10}, 4)),
                     NB_SHAPE(2, 3, 9, 10));
    NBT_FAILS_WITH(nb_conv_transpose2d_module_forward(m, x, (int64_t[]){11, 10}, 2),
                   "ConvTranspose2d: requested an output size of [11, 10], but valid sizes range from [9, 9] to [10, "
                   "10] (for an input of [5, 5])");
    NBT_FAILS_WITH(nb_conv_transpose2d_module_forward(m, x, (int64_t[]){8, 10}, 2), "requested an output size of [8, 10]");
    NBT_FAILS_WITH(nb_conv_transpose2d_module_forward(m, x, (int64_t[]){3, 9, 10}, 3),
                   "for 4D input, output_size must have 2 or 4 elements (got 3)");
    nb_tensor *xu = nbt_randn(2, NB_F32, NB_SHAPE(4, 5, 5), false);
    nbt_assert_shape(NBT_NOTNULL(nb_conv_transpose2d_module_forward(m, xu, (int64_t[]){3, 10, 10}, 3)),
                     NB_SHAPE(3, 10, 10));
    NBT_FAILS_WITH(nb_conv_transpose2d_module_forward(m, xu, (int64_t[]){1, 3, 10, 10}, 4),
                   "for 3D input, output_size must have 2 or 3 elements (got 4)");
    NBT_FAILS_WITH(nb_conv_transpose2d_module_forward(m, nbt_randn(3, NB_F32, NB_SHAPE(5, 5), false),
                                                      (int64_t[]){10, 10}, 2),
                   "Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d");
    NBT_FAILS_WITH(nb_conv_transpose2d_module_forward(NULL, x, NULL, 0), "module");
    nb_module *lin = MODULE_OK(nb_linear_module(2, 2, true, NULL));
    NBT_FAILS_WITH(nb_conv_transpose2d_module_forward(lin, x, NULL, 0), "the module is a Linear, not a ConvTranspose2d");
    nb_module_free(lin);
    nb_module_free(m);
    nb_scope_end(sc);
}
END_TEST

/* PyTorch's state_dict file loads strictly and reproduces its outputs (with
 * and without output_size); nabla's file loads strictly into PyTorch's module
 * with the same values (tests/pytorch/conv_transpose2d_check_nabla_file.py). */
START_TEST(test_module_hdf5_roundtrip) {
    nb_scope *sc = nb_scope_begin();
    char pt_file[4096], nb_file[256], cmd[8192];
    snprintf(pt_file, sizeof pt_file, "%s", nbt_data_path("conv_transpose2d_module.h5"));
    snprintf(nb_file, sizeof nb_file, "conv_transpose2d_module_%d.h5", (int)getpid());
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.stride[0] = p.stride[1] = 2;
    p.padding[0] = 1, p.output_padding[0] = 1;
    p.groups = 2;
    p.dilation[1] = 2;
    nb_module *m = MODULE_OK(nb_conv_transpose2d_module(4, 6, 3, 2, &p, true, NULL));
    nb_load_report rep;
    nb_status st = nb_module_load_hdf5(m, pt_file, true, &rep);
    ck_assert_msg(st == NB_OK, "%s: %s", pt_file, nb_last_error());
    nb_load_report_free(&rep);
    nb_tensor *x = nbt_ref_read(ref_file(), "module", "x", NB_F32, false);
    nbt_ref_close(nb_module_forward(m, x), ref_file(), "module", "y");
    nbt_ref_close(nb_conv_transpose2d_module_forward(m, x, (int64_t[]){10, 13}, 2), ref_file(), "module", "y_os");
    NBT_OK(nb_module_save_hdf5(m, nb_file));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/pytorch/conv_transpose2d_check_nabla_file.py '%s' '%s'", NB_TESTS_DIR,
             nb_file, pt_file);
    const int rc = system(cmd);
    remove(nb_file);
    ck_assert_msg(rc == 0, "PyTorch could not load nabla's file: %s", cmd);
    nb_module_free(m);
    nb_scope_end(sc);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("conv_transpose2d");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pytorch_reference);
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_deterministic_threads);
    tcase_add_test(tc, test_output_size);
    tcase_add_test(tc, test_output_shape_grid);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_empty_batch);
    tcase_add_test(tc, test_noncontiguous);
    tcase_add_test(tc, test_module_init_and_state);
    tcase_add_test(tc, test_module_errors);
    tcase_add_test(tc, test_module_hdf5_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return nbt_run_suite(suite()); }
