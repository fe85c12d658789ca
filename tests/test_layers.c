/* The layers of issue 13 (nabla/functional.h, nabla/nn.h): adaptive pools,
 * max_pool2d's indices and max_unpool2d, avg_pool2d's divisor_override,
 * dropout2d, group_norm, layer_norm, interpolate, embedding, and the modules
 * around them (BatchNorm1d among them), against PyTorch's numbers
 * (tests/pytorch/layers_reference.py) in float32 and float64, forward and
 * backward; float64 gradchecks; PyTorch's messages for bad input; bitwise
 * equality at 1 and 2 threads; and an HDF5 round trip of the modules' state
 * with PyTorch (tests/pytorch/layers_check_nabla_file.py). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const nb_dtype DTYPES[2] = {NB_F32, NB_F64};

static const char *ref_file(void) {
    static char path[4096];
    if (!path[0]) snprintf(path, sizeof path, "%s", nbt_data_path("layers.h5"));
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

/* The int64 arguments of a case (the twin's `args`); the tensor is released by the scope. */
static const int64_t *case_args(const char *group) { return nb_tensor_i64(rd(group, "args", NB_I64, false)); }
static double case_scalar(const char *group, const char *name) {
    char full[256];
    double v = 0;
    snprintf(full, sizeof full, "%s/%s", group, name);
    ck_assert(nbt_h5_read_scalar(ref_file(), full, &v));
    return v;
}
/* y against group/y, backward with group/go, then each input's gradient against group/g_<name>. */
static void check_forward_backward(nb_tensor *y, const char *group, nb_tensor *const *inputs, const char *const *names,
                                   int n) {
    check_close(y, group, "y");
    NBT_OK(nb_backward_ex(y, rd(group, "go", nb_tensor_dtype(y), false), false));
    for (int i = 0; i < n; i++) {
        if (!inputs[i] || (i == 0 && !has(group, "g_x"))) continue; /* (no g_x: see the twin) */
        char g[64];
        snprintf(g, sizeof g, "g_%s", names[i]);
        check_close(nb_tensor_grad(inputs[i]), group, g);
    }
}
#define CHECK_FB(y, group, ...)                                                                                  \
    check_forward_backward(y, group, (nb_tensor *const[]){__VA_ARGS__}, (const char *const[]){"x", "w", "b"}, \
                           (int)(sizeof((nb_tensor *const[]){__VA_ARGS__}) / sizeof(nb_tensor *)))

static nb_pool2d_params pool_params(const int64_t *a, int nargs) {
    nb_pool2d_params p = nb_pool2d_defaults(a[0]);
    p.kernel[1] = a[1];
    p.stride[0] = a[2], p.stride[1] = a[3];
    p.padding[0] = a[4], p.padding[1] = a[5];
    if (nargs > 6) p.dilation[0] = a[6], p.dilation[1] = a[7], p.ceil_mode = a[8] != 0;
    return p;
}

/* ---------------- against PyTorch ---------------- */

static const char *ADAPTIVE[] = {"down", "none_h", "unbatched", "global", "up", "same", "odd", "ties"};

START_TEST(test_adaptive_pool_reference) {
    size_t before = nb_memory_in_use();
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 8; c++)
            for (int is_max = 0; is_max < 2; is_max++) {
                if (!is_max && c == 7) continue; /* ties: max only */
                nb_scope *sc = nb_scope_begin();
                char g[96];
                snprintf(g, sizeof g, "adaptive_%s_pool2d/%s", is_max ? "max" : "avg", ADAPTIVE[c]);
                const int64_t *a = case_args(g);
                nb_tensor *x = rd(g, "x", DTYPES[d], true), *idx = NULL;
                nb_tensor *y = NBT_NOTNULL(is_max ? nb_adaptive_max_pool2d(x, a[0], a[1], &idx)
                                                  : nb_adaptive_avg_pool2d(x, a[0], a[1]));
                ck_assert_str_eq(nb_tensor_grad_fn_name(y), is_max ? "adaptive_max_pool2d" : "adaptive_avg_pool2d");
                if (is_max) nbt_assert_bitwise_equal(idx, rd(g, "indices", NB_I64, false));
                CHECK_FB(y, g, x);
                nb_scope_end(sc);
            }
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

START_TEST(test_max_pool_indices_and_unpool_reference) {
    const char *pools[] = {"k2", "k2odd", "k3s2p1", "dilceil", "unbatched"};
    const char *unpools[] = {"k2", "k2odd", "k3s2p1", "unbatched", "size2", "size4", "duplicates"};
    size_t before = nb_memory_in_use();
    for (int d = 0; d < 2; d++) {
        for (int c = 0; c < 5; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[96];
            snprintf(g, sizeof g, "max_pool2d_indices/%s", pools[c]);
            nb_pool2d_params p = pool_params(case_args(g), 9);
            nb_tensor *x = rd(g, "x", DTYPES[d], true), *idx = NULL;
            nb_tensor *y = NBT_NOTNULL(nb_max_pool2d_with_indices(x, &p, &idx));
            nbt_assert_bitwise_equal(idx, rd(g, "indices", NB_I64, false));
            CHECK_FB(y, g, x);
            nb_scope_end(sc);
        }
        for (int c = 0; c < 7; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[96];
            snprintf(g, sizeof g, "max_unpool2d/%s", unpools[c]);
            nb_pool2d_params p = pool_params(case_args(g), 6);
            nb_tensor *x = rd(g, "x", DTYPES[d], true), *idx = rd(g, "indices", NB_I64, false);
            nb_tensor *osz = has(g, "output_size") ? rd(g, "output_size", NB_I64, false) : NULL;
            nb_tensor *y = NBT_NOTNULL(nb_max_unpool2d(x, idx, &p, osz ? nb_tensor_i64(osz) : NULL,
                                                       osz ? (int)nb_tensor_numel(osz) : 0));
            ck_assert_str_eq(nb_tensor_grad_fn_name(y), "max_unpool2d");
            CHECK_FB(y, g, x);
            nb_scope_end(sc);
        }
    }
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

START_TEST(test_avg_pool_divisor_reference) {
    const char *cases[] = {"d3", "pad", "neg"};
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 3; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[96];
            snprintf(g, sizeof g, "avg_pool2d_divisor/%s", cases[c]);
            const int64_t *a = case_args(g);
            nb_pool2d_params p = pool_params(a, 6);
            p.ceil_mode = a[6] != 0;
            p.count_include_pad = a[7] != 0;
            p.divisor_override = a[8];
            nb_tensor *x = rd(g, "x", DTYPES[d], true);
            CHECK_FB(NBT_NOTNULL(nb_avg_pool2d(x, &p)), g, x);
            nb_scope_end(sc);
        }
}
END_TEST

START_TEST(test_norm_reference) {
    const char *gn[] = {"g3", "g2_noaffine", "2d", "instance", "one_group"};
    const char *ln[] = {"last", "two", "all", "noaffine", "weight_only", "1d"};
    size_t before = nb_memory_in_use();
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 11; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[96];
            bool is_gn = c < 5;
            snprintf(g, sizeof g, "%s/%s", is_gn ? "group_norm" : "layer_norm", is_gn ? gn[c] : ln[c - 5]);
            nb_tensor *x = rd(g, "x", DTYPES[d], true);
            nb_tensor *w = has(g, "w") ? rd(g, "w", DTYPES[d], true) : NULL;
            nb_tensor *b = has(g, "b") ? rd(g, "b", DTYPES[d], true) : NULL;
            nb_tensor *args = rd(g, "args", NB_I64, false);
            double eps = case_scalar(g, "eps");
            nb_tensor *y = NBT_NOTNULL(is_gn ? nb_group_norm(x, nb_tensor_i64(args)[0], w, b, eps)
                                             : nb_layer_norm(x, (int)nb_tensor_numel(args), nb_tensor_i64(args), w, b, eps));
            ck_assert_str_eq(nb_tensor_grad_fn_name(y), is_gn ? "group_norm" : "layer_norm");
            CHECK_FB(y, g, x, w, b);
            nb_scope_end(sc);
        }
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

static const char *INTERP[] = {
    "nearest_size",   "nearest_down",        "nearest_x2",          "nearest_s17",         "nearest_s17_recompute",
    "nearest_s06",    "nearest_x3_same_w",   "bilinear_size",       "bilinear_size_align", "bilinear_down",
    "bilinear_down_align", "bilinear_x2",    "bilinear_s17",        "bilinear_s17_recompute", "bilinear_s17_align",
    "bilinear_same_h", "bilinear_to_1"};

static nb_interpolate_params interp_params(const char *g) {
    const int64_t *a = case_args(g);
    const double *s = nb_tensor_f64(rd(g, "scale", NB_F64, false));
    return (nb_interpolate_params){.size = {a[0], a[1]}, .scale_factor = {s[0], s[1]},
                                   .mode = a[2] ? NB_INTERPOLATE_BILINEAR : NB_INTERPOLATE_NEAREST,
                                   .align_corners = a[3] != 0, .recompute_scale_factor = a[4] != 0};
}

START_TEST(test_interpolate_reference) {
    size_t before = nb_memory_in_use();
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 17; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[96];
            snprintf(g, sizeof g, "interpolate/%s", INTERP[c]);
            nb_interpolate_params p = interp_params(g);
            nb_tensor *x = rd(g, "x", DTYPES[d], true);
            nb_tensor *y = NBT_NOTNULL(nb_interpolate(x, &p));
            ck_assert_str_eq(nb_tensor_grad_fn_name(y), "interpolate");
            CHECK_FB(y, g, x);
            nb_scope_end(sc);
        }
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

START_TEST(test_embedding_reference) {
    const char *cases[] = {"plain", "pad", "pad_neg", "freq", "freq_pad", "scalar"};
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 6; c++) {
            nb_scope *sc = nb_scope_begin();
            char g[96];
            snprintf(g, sizeof g, "embedding/%s", cases[c]);
            const int64_t *a = case_args(g);
            nb_tensor *in = rd(g, "input", NB_I64, false), *w = rd(g, "w", DTYPES[d], true);
            nb_tensor *y = NBT_NOTNULL(nb_embedding(in, w, a[0] == -9 ? NB_NO_PADDING_IDX : a[0], a[1] != 0));
            check_close(y, g, "y");
            NBT_OK(nb_backward_ex(y, rd(g, "go", DTYPES[d], false), false));
            check_close(nb_tensor_grad(w), g, "g_w");
            nb_scope_end(sc);
        }
}
END_TEST

/* BatchNorm1d (float32 module) over three training steps then eval, as the
 * twin; without running statistics eval normalises with the batch's own. */
START_TEST(test_batch_norm1d_reference) {
    const char *cases[] = {"2d", "3d", "2d_cumulative", "3d_noaffine", "3d_notrack"};
    for (int c = 0; c < 5; c++) {
        nb_scope *sc = nb_scope_begin();
        char g[96], name[32];
        snprintf(g, sizeof g, "batch_norm1d/%s", cases[c]);
        const double *h = nb_tensor_f64(rd(g, "hyper", NB_F64, false));
        bool track = h[2] != 0;
        nb_module *bn = nb_batch_norm1d_module(4, 1e-5, h[0], h[1] != 0, track);
        ck_assert_msg(bn != NULL, "%s", nb_last_error());
        ck_assert_str_eq(nb_module_type(bn), "BatchNorm1d");
        if (h[1] != 0) {
            NBT_OK(nb_module_load_tensor(bn, "weight", rd(g, "w", NB_F32, false)));
            NBT_OK(nb_module_load_tensor(bn, "bias", rd(g, "b", NB_F32, false)));
        }
        for (int step = 0; step < 3; step++) {
            snprintf(name, sizeof name, "x%d", step);
            nb_tensor *y = nb_module_forward(bn, rd(g, name, NB_F32, false));
            snprintf(name, sizeof name, "y%d", step);
            check_close(y, g, name);
        }
        ck_assert_int_eq(nb_module_state_count(bn), (h[1] != 0 ? 2 : 0) + (track ? 3 : 0));
        if (track) {
            check_close(nb_module_param(bn, "running_mean"), g, "running_mean");
            check_close(nb_module_param(bn, "running_var"), g, "running_var");
            nbt_assert_bitwise_equal(nb_module_param(bn, "num_batches_tracked"),
                                     rd(g, "num_batches_tracked", NB_I64, false));
        }
        nb_module_eval(bn);
        check_close(nb_module_forward(bn, rd(g, "x_eval", NB_F32, false)), g, "y_eval");
        nb_module_free(bn);
        nb_scope_end(sc);
    }
}
END_TEST

/* ---------------- modules: state like PyTorch, HDF5 round trip ---------------- */

typedef struct {
    const char *key;
    nb_module *(*make)(void);
    const char *type;
    int nstate;
} roundtrip_case;

static nb_module *make_groupnorm(void) { return nb_group_norm_module(3, 6, 1e-5, true); }
static nb_module *make_layernorm(void) { return nb_layer_norm_module(NB_SHAPE(3, 4), 1e-5, true); }
static nb_module *make_batchnorm1d(void) { return nb_batch_norm1d_module(5, 1e-5, 0.1, true, true); }
static nb_module *make_embedding(void) { return nb_embedding_module(10, 3, 0, false, NULL); }

START_TEST(test_module_hdf5_roundtrip) {
    const roundtrip_case cases[] = {{"groupnorm", make_groupnorm, "GroupNorm", 2},
                                    {"layernorm", make_layernorm, "LayerNorm", 2},
                                    {"batchnorm1d", make_batchnorm1d, "BatchNorm1d", 5},
                                    {"embedding", make_embedding, "Embedding", 1}};
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/pytorch/layers_check_nabla_file.py", NB_TESTS_DIR);
    char nb_files[4][256];
    for (int c = 0; c < 4; c++) {
        nb_scope *sc = nb_scope_begin();
        char pt_file[4096], *nb_file = nb_files[c], g[64];
        snprintf(pt_file, sizeof pt_file, "%s", nbt_data_path("layers_"));
        snprintf(pt_file + strlen(pt_file), sizeof pt_file - strlen(pt_file), "%s.h5", cases[c].key);
        snprintf(nb_file, sizeof nb_files[c], "layers_%s_%d.h5", cases[c].key, (int)getpid());
        snprintf(g, sizeof g, "module/%s", cases[c].key);
        nb_module *m = cases[c].make();
        ck_assert_msg(m != NULL, "%s", nb_last_error());
        ck_assert_str_eq(nb_module_type(m), cases[c].type);
        ck_assert_int_eq(nb_module_state_count(m), cases[c].nstate);
        /* PyTorch's file loads strictly: same keys, shapes and dtypes */
        nb_load_report rep;
        nb_status st = nb_module_load_hdf5(m, pt_file, true, &rep);
        ck_assert_msg(st == NB_OK, "%s: %s", pt_file, nb_last_error());
        nb_load_report_free(&rep);
        nb_module_eval(m);
        bool ints = !strcmp(cases[c].key, "embedding");
        check_close(nb_module_forward(m, rd(g, "x", ints ? NB_I64 : NB_F32, false)), g, "y");
        /* and nabla's file loads strictly into PyTorch's module, with the same values (checked below) */
        NBT_OK(nb_module_save_hdf5(m, nb_file));
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s '%s' '%s'", cases[c].key, nb_file, pt_file);
        nb_module_free(m);
        nb_scope_end(sc);
    }
    int rc = system(cmd);
    for (int c = 0; c < 4; c++) remove(nb_files[c]);
    ck_assert_msg(rc == 0, "PyTorch could not load nabla's files: %s", cmd);
}
END_TEST

START_TEST(test_module_init_and_state) {
    nb_scope *sc = nb_scope_begin();
    /* Embedding: N(0, 1) from the rng, the padding row zero; padding_idx -1 is the last row */
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_module *e = nb_embedding_module(400, 50, -1, false, &rng);
    ck_assert_ptr_nonnull(e);
    const float *w = nb_tensor_f32(nb_module_param(e, "weight"));
    double s = 0, s2 = 0;
    for (int i = 0; i < 399 * 50; i++) s += w[i], s2 += (double)w[i] * w[i];
    for (int i = 399 * 50; i < 400 * 50; i++) ck_assert(w[i] == 0.0f);
    s /= 399 * 50, s2 = s2 / (399 * 50) - s * s;
    ck_assert_msg(fabs(s) < 0.05 && fabs(s2 - 1) < 0.05, "mean %g variance %g", s, s2);
    ck_assert(nb_tensor_requires_grad(nb_module_param(e, "weight")));
    nb_module_free(e);
    /* GroupNorm / LayerNorm: ones and zeros, or no parameters without affine */
    nb_module *gn = nb_group_norm_module(2, 4, 1e-5, true), *gn0 = nb_group_norm_module(2, 4, 1e-5, false);
    nb_module *ln = nb_layer_norm_module(NB_SHAPE(2, 3), 1e-5, true), *ln0 = nb_layer_norm_module(NB_SHAPE(3), 1e-5, false);
    ck_assert(gn && gn0 && ln && ln0);
    nbt_assert_values(nb_module_param(gn, "weight"), (double[]){1, 1, 1, 1}, 4, 0, 0);
    nbt_assert_values(nb_module_param(gn, "bias"), (double[]){0, 0, 0, 0}, 4, 0, 0);
    nbt_assert_shape(nb_module_param(ln, "weight"), NB_SHAPE(2, 3));
    ck_assert_int_eq(nb_module_state_count(gn0), 0);
    ck_assert_int_eq(nb_module_state_count(ln0), 0);
    nb_tensor *x = nbt_randn(3, NB_F32, NB_SHAPE(2, 4, 3), false);
    nbt_assert_bitwise_equal(nb_module_forward(gn, x), nb_group_norm(x, 2, NULL, NULL, 1e-5));
    nbt_assert_bitwise_equal(nb_module_forward(ln0, x), nb_layer_norm(x, NB_SHAPE(3), NULL, NULL, 1e-5));
    nb_module *mods[4] = {gn, gn0, ln, ln0};
    for (int i = 0; i < 4; i++) nb_module_free(mods[i]);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_stateless_modules) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(7, NB_F32, NB_SHAPE(2, 3, 6, 5), false);
    nb_module *aap = nb_adaptive_avg_pool2d_module(1, 1), *amp = nb_adaptive_max_pool2d_module(NB_SIZE_NONE, 2);
    ck_assert(aap && amp);
    ck_assert_str_eq(nb_module_type(aap), "AdaptiveAvgPool2d");
    nbt_assert_bitwise_equal(nb_module_forward(aap, x), nb_adaptive_avg_pool2d(x, 1, 1));
    nbt_assert_bitwise_equal(nb_module_forward(amp, x), nb_adaptive_max_pool2d(x, 6, 2, NULL));
    nb_interpolate_params up = {.scale_factor = {2, 2}, .mode = NB_INTERPOLATE_BILINEAR, .align_corners = true};
    nb_module *ups = nb_upsample_module(&up);
    ck_assert_ptr_nonnull(ups);
    nbt_assert_bitwise_equal(nb_module_forward(ups, x), nb_interpolate(x, &up));
    /* MaxUnpool2d: its own forward with the indices; nb_module_forward says so */
    nb_pool2d_params p = nb_pool2d_defaults(2);
    nb_module *unpool = nb_max_unpool2d_module(&p);
    ck_assert_ptr_nonnull(unpool);
    nb_tensor *idx = NULL, *pooled = nb_max_pool2d_with_indices(x, &p, &idx);
    NBT_FAILS_WITH(nb_module_forward(unpool, pooled), "nb_max_unpool2d_module_forward");
    nb_tensor *u = NBT_NOTNULL(nb_max_unpool2d_module_forward(unpool, pooled, idx, (int64_t[]){6, 5}, 2));
    nbt_assert_bitwise_equal(u, nb_max_unpool2d(pooled, idx, &p, (int64_t[]){6, 5}, 2));
    NBT_FAILS_WITH(nb_max_unpool2d_module_forward(aap, pooled, idx, NULL, 0), "not a MaxUnpool2d");
    /* Dropout2d: the identity in eval mode, channel masks in training */
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_module *dr = nb_dropout2d_module(0.5, &rng);
    ck_assert_ptr_nonnull(dr);
    nb_module_eval(dr);
    ck_assert_ptr_eq(nb_tensor_data(nb_module_forward(dr, x)), nb_tensor_data(x));
    nb_module_train(dr, true);
    nb_rng r2;
    nb_rng_seed(&r2, 8);
    nbt_assert_bitwise_equal(nb_module_forward(dr, x), nb_dropout2d(x, 0.5, true, &r2));
    nb_module *mods[6] = {aap, amp, ups, unpool, dr, NULL};
    for (int i = 0; i < 5; i++) nb_module_free(mods[i]);
    nb_scope_end(sc);
}
END_TEST

/* ---------------- dropout2d semantics (no PyTorch values: its rng is not nabla's) ---------------- */

START_TEST(test_dropout2d) {
    nb_scope *sc = nb_scope_begin();
    for (int d = 0; d < 2; d++) {
        /* 4-d: whole (H, W) planes zeroed or scaled; 3-d (N, C, L): whole L vectors; 2-d: elements */
        const int64_t shapes[3][4] = {{40, 50, 3, 2}, {40, 50, 6, 0}, {40, 50, 0, 0}};
        const int nds[3] = {4, 3, 2};
        for (int s = 0; s < 3; s++) {
            const double p = 0.3;
            int64_t S = nds[s] == 4 ? 6 : nds[s] == 3 ? 6 : 1;
            nb_tensor *x = nb_ones(DTYPES[d], nds[s], shapes[s]);
            NBT_OK(nb_requires_grad_(x, true));
            nb_rng rng;
            nb_rng_seed(&rng, 11 + s);
            nb_tensor *y = NBT_NOTNULL(nb_dropout2d(x, p, true, &rng));
            double *v = malloc((size_t)nb_tensor_numel(y) * sizeof *v);
            NBT_OK(nb_tensor_copy_out(y, v, NB_F64));
            double scale = DTYPES[d] == NB_F32 ? (double)(float)(1 / (1 - p)) : 1 / (1 - p);
            int64_t zeros = 0;
            for (int64_t pl = 0; pl < 2000; pl++) {
                for (int64_t k = 0; k < S; k++)
                    ck_assert_msg(v[pl * S + k] == v[pl * S], "plane %lld is not dropped as a whole", (long long)pl);
                if (v[pl * S] == 0) zeros++;
                else ck_assert(v[pl * S] == scale);
            }
            free(v);
            /* binomial std of the fraction over 2000 planes: 0.0102; 0.05 is 5 sigma */
            ck_assert_msg(fabs((double)zeros / 2000 - p) < 0.05, "fraction zeroed %g", (double)zeros / 2000);
            NBT_OK(nb_backward_ex(y, nb_ones_like(y), false));
            nbt_assert_bitwise_equal(nb_tensor_grad(x), y);
        }
        /* the same seed gives the same masks at any thread count */
        nb_tensor *x = nbt_randn(5, DTYPES[d], NB_SHAPE(64, 32, 8, 8), false);
        nb_rng r1, r2;
        nb_rng_seed(&r1, 9);
        nb_rng_seed(&r2, 9);
        int threads = nb_get_num_threads();
        NBT_OK(nb_set_num_threads(1));
        nb_tensor *a = nb_dropout2d(x, 0.5, true, &r1);
        NBT_OK(nb_set_num_threads(2));
        nb_tensor *b = nb_dropout2d(x, 0.5, true, &r2);
        NBT_OK(nb_set_num_threads(threads));
        nbt_assert_bitwise_equal(a, b);
        /* p = 1 zeroes everything, p = 0 / eval / empty input are the identity (no draw) */
        nb_tensor *z = NBT_NOTNULL(nb_dropout2d(x, 1.0, true, NULL));
        double *zv = malloc(64 * 32 * 8 * 8 * sizeof *zv);
        NBT_OK(nb_tensor_copy_out(z, zv, NB_F64));
        for (int i = 0; i < 64 * 32 * 8 * 8; i++) ck_assert(zv[i] == 0);
        free(zv);
        nb_rng r3 = r1;
        ck_assert_ptr_eq(nb_tensor_data(nb_dropout2d(x, 0.0, true, &r3)), nb_tensor_data(x));
        ck_assert_ptr_eq(nb_tensor_data(nb_dropout2d(x, 0.5, false, &r3)), nb_tensor_data(x));
        nb_tensor *empty = nb_zeros(DTYPES[d], NB_SHAPE(0, 3, 2, 2));
        nbt_assert_shape(NBT_NOTNULL(nb_dropout2d(empty, 0.5, true, &r3)), NB_SHAPE(0, 3, 2, 2));
        ck_assert(memcmp(&r3, &r1, sizeof r3) == 0);
        /* 1-d input: fine when inactive (as PyTorch), an error when dropping */
        nb_tensor *v1 = nb_ones(DTYPES[d], NB_SHAPE(4));
        ck_assert_ptr_nonnull(nb_dropout2d(v1, 0.5, false, NULL));
        NBT_FAILS_WITH(nb_dropout2d(v1, 0.5, true, NULL), "Feature dropout requires at least 2 dimensions in the input");
    }
    nb_scope_end(sc);
}
END_TEST

/* ---------------- gradcheck (float64) ---------------- */

static nb_tensor *gc_adaptive_avg(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const int64_t *o = ctx;
    return nb_adaptive_avg_pool2d(in[0], o[0], o[1]);
}
static nb_tensor *gc_adaptive_max(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const int64_t *o = ctx;
    return nb_adaptive_max_pool2d(in[0], o[0], o[1], NULL);
}
static nb_tensor *gc_max_pool_idx(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    nb_tensor *idx = NULL;
    nb_tensor *y = nb_max_pool2d_with_indices(in[0], ctx, &idx);
    nb_tensor_release(idx);
    return y;
}
typedef struct { nb_tensor *idx; nb_pool2d_params p; const int64_t *osz; } unpool_args;
static nb_tensor *gc_unpool(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const unpool_args *a = ctx;
    return nb_max_unpool2d(in[0], a->idx, &a->p, a->osz, a->osz ? 2 : 0);
}
static nb_tensor *gc_avg_pool(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_avg_pool2d(in[0], ctx);
}
static nb_tensor *gc_group_norm(nb_tensor *const *in, int n, void *ctx) {
    return nb_group_norm(in[0], *(const int64_t *)ctx, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, 1e-3);
}
static nb_tensor *gc_layer_norm(nb_tensor *const *in, int n, void *ctx) {
    const int64_t *ns = ctx; /* ndim, dims... */
    return nb_layer_norm(in[0], (int)ns[0], ns + 1, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, 1e-3);
}
static nb_tensor *gc_interpolate(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_interpolate(in[0], ctx);
}
typedef struct { nb_tensor *idx; int64_t pad; bool freq; } emb_args;
static nb_tensor *gc_embedding(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const emb_args *a = ctx;
    return nb_embedding(a->idx, in[0], a->pad, a->freq);
}
static nb_tensor *gc_dropout2d(nb_tensor *const *in, int n, void *ctx) {
    (void)n, (void)ctx;
    nb_rng rng;
    nb_rng_seed(&rng, 77); /* the same masks on every call */
    return nb_dropout2d(in[0], 0.4, true, &rng);
}

START_TEST(test_gradcheck_pools) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(11, NB_F64, NB_SHAPE(2, 2, 7, 8), true), *x3 = nbt_randn(12, NB_F64, NB_SHAPE(2, 5, 6), true);
    const int64_t outs[4][2] = {{3, 5}, {1, 1}, {9, 11}, {NB_SIZE_NONE, 2}};
    for (int i = 0; i < 4; i++) {
        nbt_gradcheck(gc_adaptive_avg, (void *)outs[i], &x, 1, false);
        nbt_gradcheck(gc_adaptive_max, (void *)outs[i], &x, 1, false);
    }
    nbt_gradcheck(gc_adaptive_avg, (void *)outs[0], &x3, 1, false);
    nb_pool2d_params p2 = nb_pool2d_defaults(2), p3 = nb_pool2d_defaults(3);
    p3.stride[0] = p3.stride[1] = 2;
    p3.padding[0] = p3.padding[1] = 1;
    nbt_gradcheck(gc_max_pool_idx, &p2, &x, 1, false);
    nbt_gradcheck(gc_max_pool_idx, &p3, &x, 1, false);
    /* unpool at the indices of a pool (of disjoint windows: no index twice) */
    nb_tensor *idx = NULL, *pooled = nb_max_pool2d_with_indices(x, &p2, &idx);
    nb_tensor *xu = nbt_randn(13, NB_F64, nb_tensor_ndim(pooled), nb_tensor_shape(pooled), true);
    unpool_args ua = {idx, p2, (const int64_t[]){7, 8}};
    nbt_gradcheck(gc_unpool, &ua, &xu, 1, false);
    /* (repeated indices are not differentiable: the later value overwrites the
     * earlier, whose gradient PyTorch still gathers; the twin checks that case) */
    nb_pool2d_params pd = p3;
    pd.divisor_override = 4;
    pd.ceil_mode = true;
    nbt_gradcheck(gc_avg_pool, &pd, &x, 1, false);
    nbt_gradcheck(gc_dropout2d, NULL, &x, 1, false);
    nbt_gradcheck(gc_dropout2d, NULL, &x3, 1, false);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gradcheck_norms) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(21, NB_F64, NB_SHAPE(3, 6, 2, 3), true);
    nb_tensor *w = nbt_randn(22, NB_F64, NB_SHAPE(6), true), *b = nbt_randn(23, NB_F64, NB_SHAPE(6), true);
    const int64_t groups[3] = {1, 3, 6};
    for (int i = 0; i < 3; i++) {
        nbt_gradcheck(gc_group_norm, (void *)&groups[i], (nb_tensor *[]){x, w, b}, 3, false);
        nbt_gradcheck(gc_group_norm, (void *)&groups[i], &x, 1, false);
    }
    nb_tensor *xl = nbt_randn(24, NB_F64, NB_SHAPE(4, 3, 5), true);
    nb_tensor *wl = nbt_randn(25, NB_F64, NB_SHAPE(3, 5), true), *bl = nbt_randn(26, NB_F64, NB_SHAPE(3, 5), true);
    nb_tensor *wl1 = nbt_randn(27, NB_F64, NB_SHAPE(5), true);
    const int64_t ns2[3] = {2, 3, 5}, ns1[2] = {1, 5};
    nbt_gradcheck(gc_layer_norm, (void *)ns2, (nb_tensor *[]){xl, wl, bl}, 3, false);
    nbt_gradcheck(gc_layer_norm, (void *)ns1, (nb_tensor *[]){xl, wl1}, 2, false);
    nbt_gradcheck(gc_layer_norm, (void *)ns1, &xl, 1, false);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gradcheck_interpolate_embedding) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(31, NB_F64, NB_SHAPE(2, 2, 4, 5), true);
    nb_interpolate_params ps[6] = {
        {.size = {7, 3}},
        {.scale_factor = {1.7, 2.0}},
        {.scale_factor = {2.0, 1.1}}, /* W: out == in, indexed by 1 / 1.1 (where PyTorch's backward is not its forward's) */
        {.size = {7, 9}, .mode = NB_INTERPOLATE_BILINEAR},
        {.size = {3, 8}, .mode = NB_INTERPOLATE_BILINEAR, .align_corners = true},
        {.scale_factor = {1.5, 0.7}, .mode = NB_INTERPOLATE_BILINEAR, .recompute_scale_factor = true}};
    for (int i = 0; i < 6; i++) nbt_gradcheck(gc_interpolate, &ps[i], &x, 1, false);
    nb_tensor *w = nbt_randn(32, NB_F64, NB_SHAPE(6, 3), true);
    nb_tensor *idx = nb_from_data(NB_I64, NB_SHAPE(2, 4), (int64_t[]){1, 5, 1, 0, 2, 2, 5, 1});
    /* (padding_idx and scale_grad_by_freq change the gradient on purpose; the twin checks them) */
    emb_args ea = {idx, NB_NO_PADDING_IDX, false};
    nbt_gradcheck(gc_embedding, &ea, &w, 1, false);
    nb_scope_end(sc);
}
END_TEST

/* ---------------- errors: PyTorch's messages ---------------- */

START_TEST(test_bad_inputs) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *img = nb_zeros(NB_F32, NB_SHAPE(2, 3, 5, 7));
    NBT_FAILS_WITH(nb_adaptive_avg_pool2d(img, -2, 3),
                   "adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 but received {-2, 3}");
    NBT_FAILS_WITH(nb_adaptive_avg_pool2d(nb_zeros(NB_F32, NB_SHAPE(2, 3, 0, 7)), 2, 3),
                   "adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch dimensions, but input has "
                   "sizes [2, 3, 0, 7] with dimension 2 being empty");
    NBT_FAILS_WITH(nb_adaptive_max_pool2d(nb_zeros(NB_F32, NB_SHAPE(2, 0, 5, 7)), 2, 3, NULL),
                   "with dimension 1 being empty");
    NBT_FAILS_WITH(nb_adaptive_avg_pool2d(nb_zeros(NB_F32, NB_SHAPE(1, 2, 3, 5, 7)), 2, 3),
                   "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got [1, 2, 3, 5, 7]");
    nb_pool2d_params p2 = nb_pool2d_defaults(2);
    nb_tensor *idx = NULL, *y = nb_max_pool2d_with_indices(img, &p2, &idx);
    NBT_FAILS_WITH(nb_max_unpool2d(y, nb_full(NB_I64, NB_SHAPE(2, 3, 2, 3), 25), &p2, NULL, 0),
                   "Found an invalid max index: 25 (output volumes are of size 4x6");
    NBT_FAILS_WITH(nb_max_unpool2d(y, idx, &p2, (int64_t[]){2, 3, 5}, 3),
                   "output_size should be a sequence containing 2 or 4 elements, but it has a length of '3'");
    NBT_FAILS_WITH(nb_max_unpool2d(y, idx, &p2, (int64_t[]){6, 7}, 2),
                   "invalid output_size \"(6, 7)\" (dim 0 must be between 2 and 6)");
    NBT_FAILS_WITH(nb_max_unpool2d(y, nb_zeros(NB_F32, NB_SHAPE(2, 3, 2, 3)), &p2, NULL, 0),
                   "elements in indices should be type int64 but got: Float");
    NBT_FAILS_WITH(nb_max_unpool2d(y, nb_zeros(NB_I64, NB_SHAPE(2, 2, 2, 3)), &p2, NULL, 0),
                   "Expected shape of indices to be same as that of the input tensor ([2, 3, 2, 3]) but got indices "
                   "tensor with shape: [2, 2, 2, 3]");
    NBT_FAILS_WITH(nb_max_unpool2d(nb_zeros(NB_F32, NB_SHAPE(2, 3)), nb_zeros(NB_I64, NB_SHAPE(2, 3)), &p2, NULL, 0),
                   "Input to max_unpooling2d should be a 3d or 4d Tensor, but got a tensor with 2 dimensions.");
    NBT_FAILS_WITH(nb_max_unpool2d(nb_zeros(NB_F32, NB_SHAPE(2, 0, 2, 3)), nb_zeros(NB_I64, NB_SHAPE(2, 0, 2, 3)), &p2,
                                   NULL, 0),
                   "Expected input to have non-zero size for non-batch dimensions, but got [2, 0, 2, 3] with dimension 1");
    NBT_FAILS_WITH(nb_group_norm(nb_zeros(NB_F32, NB_SHAPE(2, 6, 3, 4)), 4, NULL, NULL, 1e-5),
                   "Expected number of channels in input to be divisible by num_groups, but got input of shape [2, 6, 3, "
                   "4] and num_groups=4");
    NBT_FAILS_WITH(nb_group_norm(img, -2, NULL, NULL, 1e-5), "Expected num groups to be greater than 0, got -2");
    NBT_FAILS_WITH(nb_group_norm(nb_zeros(NB_F32, NB_SHAPE(2, 6, 3, 4)), 3, nb_ones(NB_F32, NB_SHAPE(5)), NULL, 1e-5),
                   "Expected weight to be a vector of size equal to the number of channels in input, but got weight of "
                   "shape [5] and input of shape [2, 6, 3, 4]");
    NBT_FAILS_WITH(nb_group_norm(nb_zeros(NB_F32, NB_SHAPE(1, 6, 1)), 6, NULL, NULL, 1e-5),
                   "Expected more than 1 value per channel when training, got input size [1, 6, 1]");
    NBT_FAILS_WITH(nb_group_norm(img, 3, nb_ones(NB_F64, NB_SHAPE(3)), NULL, 1e-5),
                   "expected scalar type Float but found Double");
    nb_tensor *x3 = nb_zeros(NB_F32, NB_SHAPE(2, 3, 4));
    NBT_FAILS_WITH(nb_layer_norm(x3, NB_SHAPE(3), NULL, NULL, 1e-5),
                   "Given normalized_shape=[3], expected input with shape [*, 3], but got input of size[2, 3, 4]");
    NBT_FAILS_WITH(nb_layer_norm(x3, 0, NULL, NULL, NULL, 1e-5),
                   "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one element, but "
                   "got normalized_shape = []");
    NBT_FAILS_WITH(nb_layer_norm(x3, NB_SHAPE(3, 4), nb_ones(NB_F32, NB_SHAPE(12)), NULL, 1e-5),
                   "Expected weight to be of same shape as normalized_shape, but got weight of shape [12] and "
                   "normalized_shape = [3, 4]");
    NBT_FAILS_WITH(nb_layer_norm(x3, NB_SHAPE(4), NULL, nb_ones(NB_F32, NB_SHAPE(3)), 1e-5),
                   "Expected bias to be of same shape as normalized_shape");
    nb_interpolate_params ip = {.size = {0, 3}};
    NBT_FAILS_WITH(nb_interpolate(img, &ip),
                   "Input and output sizes should be greater than 0, but got input (H: 5, W: 7) output (H: 0, W: 3)");
    ip = (nb_interpolate_params){.scale_factor = {0.1, 0.1}};
    NBT_FAILS_WITH(nb_interpolate(img, &ip), "output (H: 0, W: 0)");
    ip = (nb_interpolate_params){.scale_factor = {INFINITY, 2}};
    NBT_FAILS_WITH(nb_interpolate(img, &ip), "is not a representable size");
    ip = (nb_interpolate_params){.size = {3, 4}, .scale_factor = {2, 2}};
    NBT_FAILS_WITH(nb_interpolate(img, &ip), "only one of size or scale_factor should be defined");
    ip = (nb_interpolate_params){.mode = NB_INTERPOLATE_NEAREST};
    NBT_FAILS_WITH(nb_interpolate(img, &ip), "either size or scale_factor should be defined");
    ip = (nb_interpolate_params){.size = {3, 4}, .recompute_scale_factor = true};
    NBT_FAILS_WITH(nb_interpolate(img, &ip), "recompute_scale_factor is not meaningful with an explicit size.");
    ip = (nb_interpolate_params){.scale_factor = {2, 2}, .align_corners = true};
    NBT_FAILS_WITH(nb_interpolate(img, &ip), "align_corners option can only be set with the interpolating modes");
    ip = (nb_interpolate_params){.scale_factor = {2, 2}, .mode = NB_INTERPOLATE_BILINEAR};
    NBT_FAILS_WITH(nb_interpolate(x3, &ip), "Got 3D input, but bilinear mode needs 4D input");
    NBT_FAILS_WITH(nb_interpolate(nb_zeros(NB_F32, NB_SHAPE(2, 0, 5, 7)), &ip),
                   "Non-empty 4D data tensor expected but got a tensor with sizes [2, 0, 5, 7]");
    nb_tensor *w = nb_zeros(NB_F32, NB_SHAPE(5, 3));
    NBT_FAILS_WITH(nb_embedding(nb_from_data(NB_I64, NB_SHAPE(2), (int64_t[]){1, 7}), w, NB_NO_PADDING_IDX, false),
                   "index out of range in self");
    NBT_FAILS_WITH(nb_embedding(nb_from_data(NB_I64, NB_SHAPE(2), (int64_t[]){1, -1}), w, NB_NO_PADDING_IDX, false),
                   "index out of range in self");
    NBT_FAILS_WITH(nb_embedding(nb_zeros(NB_F32, NB_SHAPE(2)), w, NB_NO_PADDING_IDX, false),
                   "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int");
    NBT_FAILS_WITH(nb_embedding(nb_zeros(NB_I64, NB_SHAPE(2)), nb_zeros(NB_F32, NB_SHAPE(5)), NB_NO_PADDING_IDX, false),
                   "'weight' must be 2-D");
    NBT_FAILS_WITH(nb_embedding(nb_zeros(NB_I64, NB_SHAPE(2)), w, 5, false), "Padding_idx must be within num_embeddings");
    NBT_FAILS_WITH(nb_embedding(nb_zeros(NB_I64, NB_SHAPE(2)), w, -6, false), "Padding_idx must be within num_embeddings");
    /* modules: the constructors check their arguments */
    NBT_FAILS_WITH(nb_group_norm_module(4, 6, 1e-5, true), "num_channels must be divisible by num_groups");
    NBT_FAILS_WITH(nb_embedding_module(5, 3, 5, false, NULL), "Padding_idx must be within num_embeddings");
    NBT_FAILS_WITH(nb_batch_norm1d_module(0, 1e-5, 0.1, true, true), "BatchNorm1d: num_features must be positive");
    nb_module *bn = nb_batch_norm1d_module(3, 1e-5, 0.1, true, true);
    NBT_FAILS_WITH(nb_module_forward(bn, nb_zeros(NB_F32, NB_SHAPE(4, 3, 5, 2))), "expected 2D or 3D input (got 4D input)");
    NBT_FAILS_WITH(nb_module_forward(bn, nb_zeros(NB_F32, NB_SHAPE(1, 3))),
                   "Expected more than 1 value per channel when training, got input size [1, 3]");
    nb_tensor *nbt = nb_module_param(bn, "num_batches_tracked");
    ck_assert_int_eq(nb_tensor_i64(nbt)[0], 0); /* a rejected input is not counted */
    nb_module_free(bn);
    nb_scope_end(sc);
}
END_TEST

/* ---------------- determinism ---------------- */

static void det_pools(nb_tensor **o) {
    nb_tensor *x = nbt_randn(41, NB_F32, NB_SHAPE(8, 16, 24, 24), true);
    nb_tensor *a = NBT_NOTNULL(nb_adaptive_avg_pool2d(x, 5, 7)), *idx = NULL;
    nb_tensor *m = NBT_NOTNULL(nb_adaptive_max_pool2d(x, 7, 5, &idx));
    nb_pool2d_params p = nb_pool2d_defaults(3);
    nb_tensor *pi = NULL, *pooled = NBT_NOTNULL(nb_max_pool2d_with_indices(x, &p, &pi));
    nb_tensor *u = NBT_NOTNULL(nb_max_unpool2d(pooled, pi, &p, NULL, 0));
    nb_tensor *s = nb_add(nb_sum(nb_mul(a, a)), nb_add(nb_sum(nb_mul(m, m)), nb_sum(nb_mul(u, u))));
    NBT_OK(nb_backward_ex(s, NULL, true));
    o[0] = a, o[1] = m, o[2] = idx, o[3] = nb_tensor_grad(x);
}
static void det_norms(nb_tensor **o) {
    nb_tensor *x = nbt_randn(51, NB_F32, NB_SHAPE(8, 32, 12, 12), true);
    nb_tensor *w = nbt_randn(52, NB_F32, NB_SHAPE(32), true), *b = nbt_randn(53, NB_F32, NB_SHAPE(32), true);
    nb_tensor *xl = nbt_randn(54, NB_F32, NB_SHAPE(256, 300), true), *wl = nbt_randn(55, NB_F32, NB_SHAPE(300), true);
    nb_tensor *g = NBT_NOTNULL(nb_group_norm(x, 8, w, b, 1e-5)), *l = NBT_NOTNULL(nb_layer_norm(xl, NB_SHAPE(300), wl, NULL, 1e-5));
    NBT_OK(nb_backward_ex(g, nbt_randn(56, NB_F32, NB_SHAPE(8, 32, 12, 12), false), true));
    NBT_OK(nb_backward_ex(l, nbt_randn(57, NB_F32, NB_SHAPE(256, 300), false), true));
    o[0] = nb_tensor_grad(x), o[1] = nb_tensor_grad(w), o[2] = nb_tensor_grad(xl), o[3] = nb_tensor_grad(wl);
}
static void det_interp_embedding(nb_tensor **o) {
    nb_tensor *x = nbt_randn(61, NB_F32, NB_SHAPE(8, 16, 20, 20), true);
    nb_interpolate_params p = {.size = {37, 41}, .mode = NB_INTERPOLATE_BILINEAR};
    o[0] = NBT_NOTNULL(nb_interpolate(x, &p));
    NBT_OK(nb_backward_ex(o[0], nbt_randn(62, NB_F32, NB_SHAPE(8, 16, 37, 41), false), true));
    o[1] = nb_tensor_grad(x);
    nb_tensor *w = nbt_randn(63, NB_F32, NB_SHAPE(50, 200), true);
    nb_rng rng;
    nb_rng_seed(&rng, 64);
    int64_t ids[2000];
    for (int i = 0; i < 2000; i++) ids[i] = (int64_t)nb_rng_below(&rng, 50);
    nb_tensor *e = NBT_NOTNULL(nb_embedding(nb_from_data(NB_I64, NB_SHAPE(40, 50), ids), w, 3, true));
    NBT_OK(nb_backward_ex(e, nbt_randn(65, NB_F32, NB_SHAPE(40, 50, 200), false), true));
    o[2] = e, o[3] = nb_tensor_grad(w);
}

START_TEST(test_thread_determinism) {
    nb_scope *sc = nb_scope_begin();
    nbt_same_at_1_and_2_threads(det_pools);
    nbt_same_at_1_and_2_threads(det_norms);
    nbt_same_at_1_and_2_threads(det_interp_embedding);
    nb_scope_end(sc);
}
END_TEST

int main(void) {
    Suite *s = suite_create("layers");
    TCase *ref = tcase_create("pytorch");
    tcase_set_timeout(ref, 120);
    tcase_add_test(ref, test_adaptive_pool_reference);
    tcase_add_test(ref, test_max_pool_indices_and_unpool_reference);
    tcase_add_test(ref, test_avg_pool_divisor_reference);
    tcase_add_test(ref, test_norm_reference);
    tcase_add_test(ref, test_interpolate_reference);
    tcase_add_test(ref, test_embedding_reference);
    tcase_add_test(ref, test_batch_norm1d_reference);
    suite_add_tcase(s, ref);
    TCase *mod = tcase_create("modules");
    tcase_set_timeout(mod, 120);
    tcase_add_test(mod, test_module_hdf5_roundtrip);
    tcase_add_test(mod, test_module_init_and_state);
    tcase_add_test(mod, test_stateless_modules);
    suite_add_tcase(s, mod);
    TCase *gc = tcase_create("gradcheck");
    tcase_set_timeout(gc, 120);
    tcase_add_test(gc, test_gradcheck_pools);
    tcase_add_test(gc, test_gradcheck_norms);
    tcase_add_test(gc, test_gradcheck_interpolate_embedding);
    suite_add_tcase(s, gc);
    TCase *misc = tcase_create("semantics");
    tcase_set_timeout(misc, 120);
    tcase_add_test(misc, test_dropout2d);
    tcase_add_test(misc, test_bad_inputs);
    tcase_add_test(misc, test_thread_determinism);
    suite_add_tcase(s, misc);
    return nbt_run_suite(s);
}
