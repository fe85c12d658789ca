/* Elementwise ops (add/sub/mul/div with broadcasting, the scalar variants,
 * neg/exp/log/sqrt/relu/sigmoid/tanh): forward values against PyTorch
 * (tests/pytorch/ops_elementwise_reference.py) and exact identities,
 * broadcast shapes, gradcheck of every op in float64, bad input, and
 * bitwise equality across thread counts. */
#include "testutil.h"

#include "tensor/internal.h" /* NBI_PAR_MIN, to size the threading test */

#include <stdio.h>
#include <stdlib.h>

#define REF "ops_elementwise.h5"

typedef nb_tensor *(*unary_fn)(const nb_tensor *);
typedef nb_tensor *(*binary_fn)(const nb_tensor *, const nb_tensor *);
typedef nb_tensor *(*scalar_fn)(const nb_tensor *, double);

static const nb_dtype DTYPES[2] = {NB_F32, NB_F64};
static const char *DNAMES[2] = {"f32", "f64"};

/* got must have expected's shape and |got - exp| <= atol + rtol |exp| everywhere
 * (atol = rtol = 0: equal values; equal infinities and NaN with NaN pass). */
static void assert_close(const char *what, const nb_tensor *got, const nb_tensor *exp, double atol, double rtol) {
    ck_assert_msg(got != NULL, "%s: NULL result: %s", what, nb_last_error());
    nbt_assert_shape(got, nb_tensor_ndim(exp), nb_tensor_shape(exp));
    ck_assert_int_eq(nb_tensor_dtype(got), nb_tensor_dtype(exp));
    int64_t n = nb_tensor_numel(exp);
    double *g = malloc(sizeof(double) * (size_t)(n + 1)), *e = malloc(sizeof(double) * (size_t)(n + 1));
    NBT_OK(nb_tensor_copy_out(got, g, NB_F64));
    NBT_OK(nb_tensor_copy_out(exp, e, NB_F64));
    for (int64_t i = 0; i < n; i++) {
        if (g[i] == e[i] || (isnan(g[i]) && isnan(e[i])) || fabs(g[i] - e[i]) <= atol + rtol * fabs(e[i])) continue;
        double gi = g[i], ei = e[i];
        free(g);
        free(e);
        ck_abort_msg("%s: element %lld is %.17g, PyTorch gives %.17g", what, (long long)i, gi, ei);
    }
    free(g);
    free(e);
}

static nb_tensor *ref(nb_dtype dt, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dt == NB_F32 ? "f32" : "f64", name);
    return nbt_h5_read(nbt_data_path(REF), path, dt);
}

/* Tolerances for libm-style results (exp, log, tanh, sigmoid, general pow; ~3 ulp in float32):
 * PyTorch uses its own vectorised math, so allow a few ulp. Arithmetic,
 * sqrt and relu must match exactly. */
static double libm_rtol(nb_dtype dt) { return dt == NB_F32 ? 4e-7 : 1e-14; }

/* ---- forward values against PyTorch ---- */
START_TEST(test_unary_forward_reference) {
    static const struct { const char *name; unary_fn f; const char *input; bool exact; } cases[] = {
        {"neg", nb_neg, "x", true},          {"exp", nb_exp, "x", false},
        {"log", nb_log, "xpos", false},      {"sqrt", nb_sqrt, "xpos", true},
        {"relu", nb_relu, "x", true},        {"sigmoid", nb_sigmoid, "x", false},
        {"tanh", nb_tanh, "x", false},
    };
    for (int d = 0; d < 2; d++) {
        nb_scope *sc = nb_scope_begin();
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            char in[64], out[64], what[96];
            snprintf(in, sizeof in, "in/%s", cases[i].input);
            snprintf(out, sizeof out, "unary/%s", cases[i].name);
            snprintf(what, sizeof what, "%s %s", DNAMES[d], cases[i].name);
            nb_tensor *x = ref(DTYPES[d], in);
            double rtol = cases[i].exact ? 0 : libm_rtol(DTYPES[d]);
            assert_close(what, cases[i].f(x), ref(DTYPES[d], out), rtol * 1e-3, rtol);
        }
        nb_scope_end(sc);
    }
}
END_TEST

/* exp, sigmoid, tanh over the whole range (float32 uses its own vectorised
 * exp and tanh): within a few ulp of PyTorch, denormals within 1e-44. */
START_TEST(test_transcendental_wide_range) {
    static const struct { const char *name; unary_fn f; } cases[] = {
        {"exp", nb_exp}, {"sigmoid", nb_sigmoid}, {"tanh", nb_tanh}};
    for (int d = 0; d < 2; d++) {
        nb_scope *sc = nb_scope_begin();
        nb_tensor *w = ref(DTYPES[d], "in/wide");
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            char out[64], what[96];
            snprintf(out, sizeof out, "wide/%s", cases[i].name);
            snprintf(what, sizeof what, "%s %s", DNAMES[d], out);
            assert_close(what, cases[i].f(w), ref(DTYPES[d], out), DTYPES[d] == NB_F32 ? 1e-44 : 1e-300,
                         libm_rtol(DTYPES[d]));
        }
        nb_scope_end(sc);
    }
}
END_TEST

START_TEST(test_scalar_forward_reference) {
    static const struct { const char *name; scalar_fn f; double s; } cases[] = {
        {"add_scalar", nb_add_scalar, 0.1}, {"sub_scalar", nb_sub_scalar, 0.3}, {"mul_scalar", nb_mul_scalar, 1.7},
        {"div_scalar", nb_div_scalar, 0.3}, {"rsub_scalar", nb_rsub_scalar, 2.5},
    };
    static const struct { const char *name; double p; bool exact; } pows[] = {
        {"2", 2, true},     {"3", 3, true},     {"0.5", 0.5, true}, {"-0.5", -0.5, true},
        {"-1", -1, true},   {"-2", -2, true},   {"1.3", 1.3, false}, {"0", 0, true},
    };
    for (int d = 0; d < 2; d++) {
        nb_scope *sc = nb_scope_begin();
        nb_tensor *x = ref(DTYPES[d], "in/x"), *xpos = ref(DTYPES[d], "in/xpos");
        char out[64], what[96];
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            snprintf(out, sizeof out, "scalar/%s", cases[i].name);
            snprintf(what, sizeof what, "%s %s", DNAMES[d], cases[i].name);
            assert_close(what, cases[i].f(x, cases[i].s), ref(DTYPES[d], out), 0, 0);
        }
        for (size_t i = 0; i < sizeof pows / sizeof *pows; i++) {
            double p = pows[i].p;
            snprintf(out, sizeof out, "pow/%s", pows[i].name);
            snprintf(what, sizeof what, "%s pow %s", DNAMES[d], pows[i].name);
            double rtol = pows[i].exact ? 0 : libm_rtol(DTYPES[d]);
            assert_close(what, nb_pow_scalar(p == (int)p ? x : xpos, p), ref(DTYPES[d], out), rtol * 1e-3, rtol);
        }
        nb_scope_end(sc);
    }
}
END_TEST

START_TEST(test_binary_forward_reference) {
    static const struct { const char *name; binary_fn f; } ops[] = {
        {"add", nb_add}, {"sub", nb_sub}, {"mul", nb_mul}, {"div", nb_div}};
    /* case name, then the two operands: input names, "at"/"bt" = a/b transposed (1, 2) */
    static const struct { const char *name, *u, *v; } cases[] = {
        {"ab", "a", "b"}, {"ac", "a", "c"}, {"ca", "c", "a"}, {"ad", "a", "d"}, {"ae", "a", "e"},
        {"ea", "e", "a"}, {"at_bt", "at", "bt"}, {"at_f", "at", "f"}, {"c_d", "c", "d"},
    };
    for (int d = 0; d < 2; d++) {
        nb_scope *sc = nb_scope_begin();
        for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
            for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                nb_tensor *uv[2];
                const char *names[2] = {cases[i].u, cases[i].v};
                for (int k = 0; k < 2; k++) {
                    char in[32];
                    bool tr = strlen(names[k]) == 2 && names[k][1] == 't';
                    snprintf(in, sizeof in, "in/%c%s", names[k][0], tr ? "" : names[k] + 1);
                    uv[k] = ref(DTYPES[d], in);
                    if (tr) {
                        uv[k] = NBT_NOTNULL(nb_transpose(uv[k], 1, 2));
                        ck_assert(!nb_tensor_is_contiguous(uv[k]));
                    }
                }
                char out[64], what[96];
                snprintf(out, sizeof out, "%s/%s", ops[o].name, cases[i].name);
                snprintf(what, sizeof what, "%s %s", DNAMES[d], out);
                assert_close(what, ops[o].f(uv[0], uv[1]), ref(DTYPES[d], out), 0, 0);
            }
        nb_scope_end(sc);
    }
}
END_TEST

/* ---- exact identities and broadcast shapes ---- */
START_TEST(test_exact_identities) {
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = DTYPES[d];
        nb_scope *sc = nb_scope_begin();
        nb_tensor *a = nb_from_data(NB_F64, NB_SHAPE(3), (double[]){1, -2, 3});
        nb_tensor *b = nb_from_data(NB_F64, NB_SHAPE(3), (double[]){4, 5, -6});
        a = nb_to_dtype(a, dt);
        b = nb_to_dtype(b, dt);
        nbt_assert_values(nb_add(a, b), (double[]){5, 3, -3}, 3, 0, 0);
        nbt_assert_values(nb_sub(a, b), (double[]){-3, -7, 9}, 3, 0, 0);
        nbt_assert_values(nb_mul(a, b), (double[]){4, -10, -18}, 3, 0, 0);
        nbt_assert_values(nb_div(b, a), (double[]){4, -2.5, -2}, 3, 0, 0);
        nbt_assert_values(nb_neg(a), (double[]){-1, 2, -3}, 3, 0, 0);
        nbt_assert_values(nb_relu(nb_from_data(NB_F64, NB_SHAPE(3), (double[]){-2, 0, 3})), (double[]){0, 0, 3}, 3, 0, 0);
        nb_tensor *sq = nb_to_dtype(nb_from_data(NB_F64, NB_SHAPE(3), (double[]){4, 9, 16}), dt);
        nbt_assert_values(nb_sqrt(sq), (double[]){2, 3, 4}, 3, 0, 0);
        nbt_assert_values(nb_exp(nb_zeros(dt, NB_SHAPE(2))), (double[]){1, 1}, 2, 0, 0);
        nbt_assert_values(nb_log(nb_ones(dt, NB_SHAPE(2))), (double[]){0, 0}, 2, 0, 0);
        nbt_assert_values(nb_tanh(nb_zeros(dt, NB_SHAPE(1))), (double[]){0}, 1, 0, 0);
        nbt_assert_values(nb_sigmoid(nb_zeros(dt, NB_SHAPE(1))), (double[]){0.5}, 1, 0, 0);
        nbt_assert_values(nb_add_scalar(a, 2), (double[]){3, 0, 5}, 3, 0, 0);
        nbt_assert_values(nb_sub_scalar(a, 2), (double[]){-1, -4, 1}, 3, 0, 0);
        nbt_assert_values(nb_mul_scalar(a, -2), (double[]){-2, 4, -6}, 3, 0, 0);
        nbt_assert_values(nb_div_scalar(a, 2), (double[]){0.5, -1, 1.5}, 3, 0, 0);
        nbt_assert_values(nb_rsub_scalar(a, 2), (double[]){1, 4, -1}, 3, 0, 0);
        nbt_assert_values(nb_pow_scalar(a, 2), (double[]){1, 4, 9}, 3, 0, 0);
        nbt_assert_values(nb_pow_scalar(a, 0), (double[]){1, 1, 1}, 3, 0, 0);
        nbt_assert_values(nb_pow_scalar(sq, 1.5), (double[]){8, 27, 64}, 3, 0, 0);
        nb_scope_end(sc);
    }
}
END_TEST

START_TEST(test_broadcast_shapes) {
    nb_scope *sc = nb_scope_begin();
    /* [2, 3] + [3] */
    nb_tensor *m = nb_arange(NB_F32, 0, 6, 1), *r = nb_arange(NB_F32, 10, 40, 10);
    m = nb_reshape(m, NB_SHAPE(2, 3));
    nb_tensor *s = NBT_NOTNULL(nb_add(m, r));
    nbt_assert_shape(s, NB_SHAPE(2, 3));
    nbt_assert_values(s, (double[]){10, 21, 32, 13, 24, 35}, 6, 0, 0);
    /* [2, 1, 4] * [3, 1] -> [2, 3, 4]: element (i, j, k) = (4i + k) * (j + 1) */
    nb_tensor *a = nb_reshape(nb_arange(NB_F64, 0, 8, 1), NB_SHAPE(2, 1, 4));
    nb_tensor *b = nb_reshape(nb_arange(NB_F64, 1, 4, 1), NB_SHAPE(3, 1));
    nb_tensor *p = NBT_NOTNULL(nb_mul(a, b));
    nbt_assert_shape(p, NB_SHAPE(2, 3, 4));
    double e[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) e[(i * 3 + j) * 4 + k] = (4 * i + k) * (j + 1);
    nbt_assert_values(p, e, 24, 0, 0);
    nbt_assert_shape(NBT_NOTNULL(nb_mul(b, a)), NB_SHAPE(2, 3, 4));
    /* 0-d with 0-d stays 0-d; 0-d with [2, 3] is [2, 3] */
    nb_tensor *x = nb_scalar(NB_F64, 3), *y = nb_scalar(NB_F64, 4);
    nb_tensor *xy = NBT_NOTNULL(nb_mul(x, y));
    ck_assert_int_eq(nb_tensor_ndim(xy), 0);
    nbt_assert_values(xy, (double[]){12}, 1, 0, 0);
    nb_tensor *ms = NBT_NOTNULL(nb_sub(nb_scalar(NB_F32, 1), m));
    nbt_assert_shape(ms, NB_SHAPE(2, 3));
    nbt_assert_values(ms, (double[]){1, 0, -1, -2, -3, -4}, 6, 0, 0);
    /* empty tensors broadcast too */
    nbt_assert_shape(NBT_NOTNULL(nb_add(nb_zeros(NB_F32, NB_SHAPE(0, 3)), r)), NB_SHAPE(0, 3));
    nbt_assert_shape(NBT_NOTNULL(nb_exp(nb_zeros(NB_F32, NB_SHAPE(0)))), NB_SHAPE(0));
    nb_scope_end(sc);
}
END_TEST

/* A large bias add whose rows ([37 * 41]) straddle the parallel chunks: every
 * element must be its own x + b (IEEE addition, nothing else involved). */
START_TEST(test_large_broadcast_values) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(5, NB_F32, NB_SHAPE(4, 6, 37, 41), false);
    nb_tensor *b = nbt_randn(6, NB_F32, NB_SHAPE(1, 6, 1, 1), false);
    ck_assert_int_gt(nb_tensor_numel(x), NBI_PAR_MIN);
    nb_tensor *y = NBT_NOTNULL(nb_add(x, b));
    const float *px = nb_tensor_f32(x), *pb = nb_tensor_f32(b), *py = nb_tensor_f32(y);
    for (int64_t i = 0; i < nb_tensor_numel(x); i++) {
        float want = px[i] + pb[(i / (37 * 41)) % 6];
        ck_assert_msg(py[i] == want, "element %lld", (long long)i);
    }
    /* the same through a transposed x ([4, 6, 41, 37] view) against its contiguous copy */
    nb_tensor *xt = nb_transpose(x, 2, 3);
    nbt_assert_bitwise_equal(NBT_NOTNULL(nb_mul(xt, b)), NBT_NOTNULL(nb_mul(nb_contiguous(xt), b)));
    nbt_assert_bitwise_equal(NBT_NOTNULL(nb_tanh(xt)), NBT_NOTNULL(nb_tanh(nb_contiguous(xt))));
    nb_scope_end(sc);
}
END_TEST

/* ---- gradients ---- */
typedef struct {
    unary_fn uf;
    binary_fn bf;
    scalar_fn sf;
    double s;
    bool transpose_first; /* apply the op to inputs[0] transposed (0, 1): a strided input */
    bool same;            /* binary op of inputs[0] with itself */
} gc_case;

static nb_tensor *gc_fn(nb_tensor *const *in, int n, void *ctx) {
    const gc_case *c = ctx;
    (void)n;
    /* (no retain/release of in[0]: releasing would take it out of the test's scope) */
    nb_tensor *t = c->transpose_first ? nb_transpose(in[0], 0, 1) : NULL, *x = t ? t : in[0];
    nb_tensor *y;
    if (c->uf) y = c->uf(x);
    else if (c->sf) y = c->sf(x, c->s);
    else y = c->bf(x, c->same ? x : in[1]);
    nb_tensor_release(t);
    return y;
}

/* A float64 leaf requiring grad with values in [lo, hi) (away from kinks and poles). */
static nb_tensor *leaf(uint64_t seed, int ndim, const int64_t *shape, double lo, double hi) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_tensor *t = NBT_NOTNULL(nb_rand_uniform(&rng, NB_F64, ndim, shape, lo, hi));
    NBT_OK(nb_requires_grad_(t, true));
    return t;
}

START_TEST(test_gradcheck_unary) {
    static const struct { unary_fn f; double lo; } cases[] = {
        {nb_neg, -2}, {nb_exp, -2}, {nb_log, 0.2}, {nb_sqrt, 0.2}, {nb_sigmoid, -2}, {nb_tanh, -2}};
    nb_scope *sc = nb_scope_begin();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int tr = 0; tr < 2; tr++) {
            nb_tensor *x = leaf(10 + i, NB_SHAPE(3, 4), cases[i].lo, 2);
            gc_case c = {.uf = cases[i].f, .transpose_first = tr};
            nbt_gradcheck(gc_fn, &c, &x, 1, false);
        }
    /* relu away from 0: values in +-[0.1, 2) */
    nb_tensor *x = leaf(20, NB_SHAPE(3, 4), 0.1, 2);
    nb_tensor *sign = nb_from_data(NB_F64, NB_SHAPE(4), (double[]){1, -1, -1, 1});
    nb_tensor *xs = nb_mul(nb_detach(x), sign);
    NBT_OK(nb_requires_grad_(xs, true));
    gc_case c = {.uf = nb_relu};
    nbt_gradcheck(gc_fn, &c, &xs, 1, false);
    c.transpose_first = true;
    nbt_gradcheck(gc_fn, &c, &xs, 1, false);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_relu_grad_at_zero) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_from_data(NB_F64, NB_SHAPE(3), (double[]){-1, 0, 2});
    NBT_OK(nb_requires_grad_(x, true));
    nb_tensor *y = NBT_NOTNULL(nb_relu(x));
    ck_assert_str_eq(nb_tensor_grad_fn_name(y), "relu");
    NBT_OK(nb_backward_ex(y, nb_ones(NB_F64, NB_SHAPE(3)), false));
    nbt_assert_values(nb_tensor_grad(x), (double[]){0, 0, 1}, 3, 0, 0);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gradcheck_scalar) {
    static const struct { scalar_fn f; double s, lo; } cases[] = {
        {nb_add_scalar, 0.7, -2},  {nb_sub_scalar, 0.7, -2}, {nb_mul_scalar, -1.3, -2}, {nb_div_scalar, 0.3, -2},
        {nb_rsub_scalar, 2.5, -2}, {nb_pow_scalar, 2, -2},   {nb_pow_scalar, 3, -2},     {nb_pow_scalar, 0.5, 0.2},
        {nb_pow_scalar, -0.5, 0.2}, {nb_pow_scalar, -1, 0.2}, {nb_pow_scalar, -2, 0.2},  {nb_pow_scalar, 1.3, 0.2},
        {nb_pow_scalar, 0, -2},    {nb_pow_scalar, 1, -2},
    };
    nb_scope *sc = nb_scope_begin();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int tr = 0; tr < 2; tr++) {
            nb_tensor *x = leaf(30 + i, NB_SHAPE(3, 4), cases[i].lo, 2);
            gc_case c = {.sf = cases[i].f, .s = cases[i].s, .transpose_first = tr};
            nbt_gradcheck(gc_fn, &c, &x, 1, false);
        }
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gradcheck_binary) {
    static const binary_fn ops[] = {nb_add, nb_sub, nb_mul, nb_div};
    /* shapes of the two operands; b stays in [0.5, 2) so div is smooth */
    static const struct { int na; int64_t sa[3]; int nb; int64_t sb[3]; bool tr; } shapes[] = {
        {2, {2, 3}, 2, {2, 3}, false},    /* same shape */
        {2, {2, 3}, 1, {3}, false},       /* [2, 3] op [3] */
        {1, {3}, 2, {2, 3}, false},       /* [3] op [2, 3] */
        {3, {2, 1, 4}, 2, {3, 1}, false}, /* both broadcast */
        {2, {2, 3}, 0, {0}, false},       /* with a 0-d tensor */
        {0, {0}, 2, {2, 3}, false},
        {2, {3, 2}, 2, {2, 3}, true},     /* a transposed to [2, 3] */
        {2, {3, 2}, 1, {1}, true},        /* transposed with a broadcast [1] */
    };
    nb_scope *sc = nb_scope_begin();
    for (size_t o = 0; o < 4; o++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            nb_tensor *in[2] = {leaf(40 + s, shapes[s].na, shapes[s].sa, -2, 2),
                                leaf(50 + s, shapes[s].nb, shapes[s].sb, 0.5, 2)};
            gc_case c = {.bf = ops[o], .transpose_first = shapes[s].tr};
            nbt_gradcheck(gc_fn, &c, in, 2, false);
            /* only one operand requiring grad */
            NBT_OK(nb_requires_grad_(in[0], false));
            nbt_gradcheck(gc_fn, &c, in, 2, false);
        }
    /* the same tensor twice: x * x, x / x, x - x, x + x */
    for (size_t o = 0; o < 4; o++) {
        nb_tensor *x = leaf(60, NB_SHAPE(2, 3), 0.5, 2);
        gc_case c = {.bf = ops[o], .same = true};
        nbt_gradcheck(gc_fn, &c, &x, 1, false);
    }
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_mul_same_tensor_grad) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_from_data(NB_F64, NB_SHAPE(3), (double[]){1, -2, 3});
    NBT_OK(nb_requires_grad_(x, true));
    NBT_OK(nb_backward_ex(nb_mul(x, x), nb_ones(NB_F64, NB_SHAPE(3)), false));
    nbt_assert_values(nb_tensor_grad(x), (double[]){2, -4, 6}, 3, 0, 0); /* d(x^2)/dx = 2x */
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_no_grad_records_nothing) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(1, NB_F64, NB_SHAPE(3), true);
    nb_no_grad_begin();
    nb_tensor *y = NBT_NOTNULL(nb_add(x, x));
    nb_tensor *z = NBT_NOTNULL(nb_exp(x));
    nb_no_grad_end();
    ck_assert(!nb_tensor_requires_grad(y) && !nb_tensor_requires_grad(z));
    ck_assert_str_eq(nb_tensor_grad_fn_name(nb_sub(x, x)), "sub");
    ck_assert_str_eq(nb_tensor_grad_fn_name(nb_pow_scalar(x, 2)), "pow_scalar");
    nb_tensor *c = nbt_randn(2, NB_F64, NB_SHAPE(3), false);
    ck_assert(!nb_tensor_requires_grad(nb_mul(c, c)));
    nb_scope_end(sc);
}
END_TEST

/* ---- bad input ---- */
START_TEST(test_bad_input) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *f32 = nb_zeros(NB_F32, NB_SHAPE(2, 3)), *f64 = nb_zeros(NB_F64, NB_SHAPE(2, 3));
    nb_tensor *i64 = nb_to_dtype(f32, NB_I64), *c4 = nb_zeros(NB_F32, NB_SHAPE(4));
    static const struct { const char *name; binary_fn f; } bins[] = {
        {"add", nb_add}, {"sub", nb_sub}, {"mul", nb_mul}, {"div", nb_div}};
    char msg[160];
    for (int i = 0; i < 4; i++) {
        NBT_FAILS_WITH(bins[i].f(NULL, f32), "is NULL");
        NBT_FAILS_WITH(bins[i].f(f32, NULL), "is NULL");
        snprintf(msg, sizeof msg, "%s: expected both operands to have the same dtype, but got float32 and float64",
                 bins[i].name);
        NBT_FAILS_WITH(bins[i].f(f32, f64), msg);
        NBT_FAILS_WITH(bins[i].f(i64, i64), "int64");
        snprintf(msg, sizeof msg, "%s: the size of tensor a (3) must match the size of tensor b (4)", bins[i].name);
        NBT_FAILS_WITH(bins[i].f(f32, c4), msg);
        NBT_FAILS_WITH(bins[i].f(f32, c4), "[2, 3] and [4]");
    }
    static const struct { const char *name; unary_fn f; } uns[] = {
        {"neg", nb_neg}, {"exp", nb_exp}, {"log", nb_log}, {"sqrt", nb_sqrt},
        {"relu", nb_relu}, {"sigmoid", nb_sigmoid}, {"tanh", nb_tanh}};
    for (int i = 0; i < 7; i++) {
        NBT_FAILS_WITH(uns[i].f(NULL), "is NULL");
        snprintf(msg, sizeof msg, "%s: expected a float32 or float64 tensor, but got int64", uns[i].name);
        NBT_FAILS_WITH(uns[i].f(i64), msg);
    }
    static const struct { const char *name; scalar_fn f; } scs[] = {
        {"add_scalar", nb_add_scalar}, {"sub_scalar", nb_sub_scalar}, {"mul_scalar", nb_mul_scalar},
        {"div_scalar", nb_div_scalar}, {"rsub_scalar", nb_rsub_scalar}, {"pow_scalar", nb_pow_scalar}};
    for (int i = 0; i < 6; i++) {
        NBT_FAILS_WITH(scs[i].f(NULL, 1), "is NULL");
        snprintf(msg, sizeof msg, "%s: expected a float32 or float64 tensor, but got int64", scs[i].name);
        NBT_FAILS_WITH(scs[i].f(i64, 1), msg);
    }
    /* a failed op's NULL result keeps that op's message down a chain */
    nb_clear_error();
    nb_tensor *bad = nb_add(f32, c4);
    ck_assert_ptr_null(nb_exp(nb_mul(bad, f32)));
    ck_assert_msg(strstr(nb_last_error(), "add: the size of tensor a (3)") != NULL, "%s", nb_last_error());
    nb_scope_end(sc);
}
END_TEST

/* ---- threads ---- */
/* Forward and backward of a few ops at 1 and at 2 threads: bitwise equal. */
static void run_for_threads(int nthreads, nb_tensor **res, int *nres) {
    NBT_OK(nb_set_num_threads(nthreads));
    nb_tensor *x = nbt_randn(7, NB_F32, NB_SHAPE(8, 16, 17, 19), true); /* 41344 elements */
    nb_tensor *b = nbt_randn(8, NB_F32, NB_SHAPE(1, 16, 1, 1), true);
    nb_tensor *y = nbt_randn(9, NB_F32, NB_SHAPE(8, 16, 17, 19), false);
    ck_assert_int_gt(nb_tensor_numel(x), NBI_PAR_MIN);
    int n = 0;
    res[n++] = nb_add(x, y);
    res[n++] = nb_mul(nb_transpose(x, 2, 3), nb_transpose(y, 2, 3)); /* both strided */
    res[n++] = nb_div(x, nb_add_scalar(nb_exp(y), 0.5));
    res[n++] = nb_sigmoid(x);
    res[n++] = nb_tanh(nb_transpose(x, 1, 2));
    res[n++] = nb_pow_scalar(x, 1.5);
    nb_tensor *h = nb_relu(nb_mul(nb_add(x, b), y));
    res[n++] = h;
    NBT_OK(nb_backward_ex(h, y, false));
    res[n++] = nb_tensor_retain(nb_tensor_grad(x));
    res[n++] = nb_tensor_retain(nb_tensor_grad(b));
    for (int i = 0; i < n; i++) ck_assert_msg(res[i] != NULL, "result %d: %s", i, nb_last_error());
    *nres = n;
}

START_TEST(test_threads_bitwise) {
    int saved = nb_get_num_threads();
    nb_scope *sc = nb_scope_begin();
    nb_tensor *r1[16], *r2[16];
    int n1, n2;
    run_for_threads(1, r1, &n1);
    run_for_threads(2, r2, &n2);
    NBT_OK(nb_set_num_threads(saved));
    ck_assert_int_eq(n1, n2);
    for (int i = 0; i < n1; i++) nbt_assert_bitwise_equal(r1[i], r2[i]);
    nb_scope_end(sc);
    for (int i = n1 - 2; i < n1; i++) {
        nb_tensor_release(r1[i]);
        nb_tensor_release(r2[i]);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_elementwise");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_unary_forward_reference);
    tcase_add_test(tc, test_transcendental_wide_range);
    tcase_add_test(tc, test_scalar_forward_reference);
    tcase_add_test(tc, test_binary_forward_reference);
    tcase_add_test(tc, test_exact_identities);
    tcase_add_test(tc, test_broadcast_shapes);
    tcase_add_test(tc, test_large_broadcast_values);
    tcase_add_test(tc, test_gradcheck_unary);
    tcase_add_test(tc, test_relu_grad_at_zero);
    tcase_add_test(tc, test_gradcheck_scalar);
    tcase_add_test(tc, test_gradcheck_binary);
    tcase_add_test(tc, test_mul_same_tensor_grad);
    tcase_add_test(tc, test_no_grad_records_nothing);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_threads_bitwise);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
