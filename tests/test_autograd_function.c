/* Custom autograd functions (nb_function, like torch.autograd.Function):
 * values and gradients against the same Function classes run by PyTorch
 * (tests/pytorch/autograd_function_reference.py), gradcheck passing a
 * correct backward and failing a wrong one, and the node's behaviour in a
 * graph: several outputs, non-differentiable and int64 outputs, saved
 * inputs and outputs, user data and its free function, retain_graph,
 * no_grad, anomaly detection, errors from forward and backward. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define T(...) NB_SHAPE(__VA_ARGS__)
#define REF "autograd_function.h5"

static nb_tensor *ref(const char *name) { return nbt_h5_read(nbt_data_path(REF), name, NB_F64); }

/* Compare t with the reference dataset name (any dtype, converted). */
static void expect_ref(const nb_tensor *t, const char *name, double tol) {
    nb_tensor *e = ref(name);
    int64_t n = nb_tensor_numel(e);
    double *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    NBT_OK(nb_tensor_copy_out(e, v, NB_F64));
    nbt_assert_shape(t, nb_tensor_ndim(e), nb_tensor_shape(e));
    nbt_assert_values(t, v, n, tol, tol);
    free(v);
    nb_tensor_release(e);
}

static nb_tensor *leaf(const char *name, nb_dtype dtype, bool requires_grad) {
    nb_tensor *r = ref(name), *t = NBT_NOTNULL(nb_to_dtype(r, dtype));
    nb_tensor *c = NBT_NOTNULL(nb_clone(t)); /* its own storage */
    nb_tensor_release(t);
    nb_tensor_release(r);
    if (requires_grad) NBT_OK(nb_requires_grad_(c, true));
    return c;
}

/* ---- the functions (the twins of the reference script's classes) ---- */

/* y = x^3, saving x; cube_scale scales the backward (1 is right, 1.01 wrong) */
static double cube_scale = 1.0;
static nb_status cube_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)nin, (void)nout, (void)arg;
    out[0] = nb_pow_scalar(in[0], 3.0);
    return out[0] ? nb_function_save_for_backward(ctx, in, 1) : nb_last_status();
}
static nb_status cube_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)nout, (void)nin;
    const nb_tensor *x = nb_function_saved_tensor(ctx, 0);
    nb_scope *s = nb_scope_begin();
    gin[0] = nb_tensor_retain(nb_mul(gout[0], nb_mul_scalar(nb_mul(x, x), 3.0 * cube_scale)));
    nb_scope_end(s);
    return gin[0] ? NB_OK : nb_last_status();
}
static const nb_function cube_fn = {"Cube", cube_forward, cube_backward};

static nb_tensor *cube(const nb_tensor *x) {
    nb_tensor *y = NULL;
    nb_tensor *in = (nb_tensor *)x;
    return nb_function_apply(&cube_fn, &in, 1, &y, 1, NULL) == NB_OK ? y : NULL;
}

/* (x * w, x + w non-differentiable, argmax(x) as int64 [1]); records what it sees */
static struct {
    bool needs[2];
    nb_tensor *gb, *gi;
    int backward_calls;
} two_seen;
static nb_status two_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)nin, (void)nout, (void)arg;
    two_seen.needs[0] = nb_function_needs_input_grad(ctx, 0);
    two_seen.needs[1] = nb_function_needs_input_grad(ctx, 1);
    nb_status st = nb_function_save_for_backward(ctx, in, 2);
    if (st != NB_OK) return st;
    out[0] = nb_mul(in[0], in[1]);
    out[1] = nb_add(in[0], in[1]);
    nb_tensor *idx = NULL;
    nb_tensor *m = nb_max_dim(in[0], 0, false, &idx);
    nb_tensor_release(m);
    out[2] = nb_reshape(idx, T(1));
    nb_tensor_release(idx);
    if (!out[0] || !out[1] || !out[2]) return nb_last_status();
    return nb_function_mark_non_differentiable(ctx, out[1]);
}
static nb_status two_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    ck_assert_int_eq(nout, 3);
    ck_assert_int_eq(nin, 2);
    ck_assert(!nb_grad_enabled());
    two_seen.backward_calls++;
    nb_tensor_release(two_seen.gb);
    nb_tensor_release(two_seen.gi);
    two_seen.gb = nb_clone(gout[1]);
    two_seen.gi = nb_clone(gout[2]);
    const nb_tensor *x = nb_function_saved_tensor(ctx, 0), *w = nb_function_saved_tensor(ctx, 1);
    if (nb_function_needs_input_grad(ctx, 0) && !(gin[0] = nb_mul(gout[0], w))) return nb_last_status();
    if (nb_function_needs_input_grad(ctx, 1) && !(gin[1] = nb_mul(gout[0], x))) return nb_last_status();
    return NB_OK;
}
static const nb_function two_fn = {"Two", two_forward, two_backward};

/* y = exp(x), saving the output y */
static nb_status exp_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)nin, (void)nout, (void)arg;
    out[0] = nb_exp(in[0]);
    return out[0] ? nb_function_save_for_backward(ctx, out, 1) : nb_last_status();
}
static nb_status exp_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)nout, (void)nin;
    gin[0] = nb_mul(gout[0], nb_function_saved_tensor(ctx, 0));
    return gin[0] ? NB_OK : nb_last_status();
}
static const nb_function exp_fn = {"ExpSaveOut", exp_forward, exp_backward};

/* returns its input as is; backward scales by 7 */
static nb_status id_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)ctx, (void)nin, (void)nout, (void)arg;
    out[0] = nb_tensor_retain(in[0]);
    return NB_OK;
}
static nb_status id_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)ctx, (void)nout, (void)nin;
    gin[0] = nb_mul_scalar(gout[0], 7.0);
    return gin[0] ? NB_OK : nb_last_status();
}
static const nb_function id_fn = {"Identity7", id_forward, id_backward};

/* y = 2x; backward returns a float64 [3, n] of ones (broadcast shape, other dtype),
 * or with arg "bad" a [n + 1] gradient, or with "none" NULL (None) */
static nb_status twice_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)nin, (void)nout;
    out[0] = nb_mul_scalar(in[0], 2.0);
    return nb_function_set_data(ctx, arg, NULL);
}
static nb_status twice_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)nout, (void)nin;
    const char *mode = nb_function_data(ctx);
    int64_t n = nb_tensor_numel(gout[0]);
    if (!strcmp(mode, "none")) return NB_OK;
    gin[0] = !strcmp(mode, "bad") ? nb_ones(NB_F64, 1, (int64_t[]){n + 1}) : nb_ones(NB_F64, 2, (int64_t[]){3, n});
    return gin[0] ? NB_OK : nb_last_status();
}
static const nb_function twice_fn = {"Twice", twice_forward, twice_backward};

static nb_tensor *apply1(const nb_function *fn, const nb_tensor *x, void *arg) {
    nb_tensor *y = NULL, *in = (nb_tensor *)x;
    return nb_function_apply(fn, &in, 1, &y, 1, arg) == NB_OK ? y : NULL;
}

/* ---- values and gradients against PyTorch ---- */

START_TEST(test_cube_in_a_graph) {
    nb_tensor *x = leaf("cube/x", NB_F64, true), *c = leaf("cube/c", NB_F64, false);
    nb_tensor *e = nb_exp(x);
    nb_tensor *y = NBT_NOTNULL(cube(e));
    ck_assert_str_eq(nb_tensor_grad_fn_name(y), "Cube");
    ck_assert(nb_tensor_requires_grad(y) && !nb_tensor_is_leaf(y));
    expect_ref(y, "cube/y", 1e-12);
    nb_tensor *yc = nb_mul(y, c), *loss = nb_sum(yc);
    NBT_OK(nb_backward(loss));
    expect_ref(nb_tensor_grad(x), "cube/x_grad", 1e-12);
    nb_tensor *all[] = {loss, yc, y, e, c, x};
    for (int i = 0; i < 6; i++) nb_tensor_release(all[i]);
}
END_TEST

static void run_two(const char *group, bool w_grad) {
    char name[64];
    nb_tensor *x = leaf("two/x", NB_F64, true), *w = leaf("two/w", NB_F64, w_grad), *c = leaf("two/c", NB_F64, false);
    nb_tensor *in[2] = {x, w}, *out[3];
    two_seen.backward_calls = 0;
    NBT_OK(nb_function_apply(&two_fn, in, 2, out, 3, NULL));
    snprintf(name, sizeof name, "%s/needs", group);
    nb_tensor *needs = NBT_NOTNULL(nb_from_data(NB_F64, T(2), (double[]){two_seen.needs[0], two_seen.needs[1]}));
    expect_ref(needs, name, 0);
    double rg[3] = {nb_tensor_requires_grad(out[0]), nb_tensor_requires_grad(out[1]), nb_tensor_requires_grad(out[2])};
    nb_tensor *rgt = NBT_NOTNULL(nb_from_data(NB_F64, T(3), rg));
    snprintf(name, sizeof name, "%s/requires_grad", group);
    expect_ref(rgt, name, 0);
    ck_assert(nb_tensor_is_leaf(out[1]) && nb_tensor_is_leaf(out[2])); /* no grad_fn */
    ck_assert_int_eq(nb_tensor_dtype(out[2]), NB_I64);
    const char *outs[3] = {"a", "b", "i"};
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s/%s", group, outs[k]);
        expect_ref(out[k], name, 1e-15);
    }
    nb_tensor *ac = nb_mul(out[0], c), *loss = nb_sum(ac);
    NBT_OK(nb_backward(loss));
    ck_assert_int_eq(two_seen.backward_calls, 1);
    snprintf(name, sizeof name, "%s/x_grad", group);
    expect_ref(nb_tensor_grad(x), name, 1e-15);
    if (w_grad) {
        snprintf(name, sizeof name, "%s/w_grad", group);
        expect_ref(nb_tensor_grad(w), name, 1e-15);
    } else {
        ck_assert_ptr_null(nb_tensor_grad(w));
    }
    /* the non-differentiable and int64 outputs' gradients: PyTorch's zeros */
    snprintf(name, sizeof name, "%s/gout1", group);
    expect_ref(two_seen.gb, name, 0);
    snprintf(name, sizeof name, "%s/gout2", group);
    expect_ref(two_seen.gi, name, 0);
    ck_assert_int_eq(nb_tensor_dtype(two_seen.gi), NB_I64);
    nb_tensor *all[] = {loss, ac, out[0], out[1], out[2], x, w, c, needs, rgt, two_seen.gb, two_seen.gi};
    for (int i = 0; i < 12; i++) nb_tensor_release(all[i]);
    two_seen.gb = two_seen.gi = NULL;
}

START_TEST(test_several_outputs) {
    run_two("two", true);
    run_two("two_nw", false);
}
END_TEST

START_TEST(test_saved_output_input_returned_and_conversions) {
    /* saving the output: right values, and no cycle (the graph is freed
     * with its tensors: nothing left in use, and ASan's leak check agrees) */
    size_t before = nb_memory_in_use();
    nb_tensor *x = leaf("misc/x", NB_F64, true);
    nb_tensor *y = NBT_NOTNULL(apply1(&exp_fn, x, NULL));
    expect_ref(y, "misc/exp_y", 1e-15);
    nb_tensor *yy = nb_mul(y, y), *loss = nb_sum(yy);
    NBT_OK(nb_backward(loss));
    expect_ref(nb_tensor_grad(x), "misc/exp_x_grad", 1e-13);
    nb_tensor *all[] = {loss, yy, y};
    for (int i = 0; i < 3; i++) nb_tensor_release(all[i]);
    /* and when backward never runs */
    y = NBT_NOTNULL(apply1(&exp_fn, x, NULL));
    nb_tensor_release(y);
    nb_zero_grad(x);

    /* an input returned as is becomes a new tensor (PyTorch: y is not x) */
    y = NBT_NOTNULL(apply1(&id_fn, x, NULL));
    double is_input;
    ck_assert(nbt_h5_read_scalar(nbt_data_path(REF), "misc/identity_is_input", &is_input));
    ck_assert_int_eq(y == x, (int)is_input);
    ck_assert(nb_tensor_is_leaf(x));
    ck_assert_str_eq(nb_tensor_grad_fn_name(y), "Identity7");
    ck_assert_ptr_eq(nb_tensor_data(y), nb_tensor_data(x)); /* a view of it */
    loss = nb_sum(y);
    NBT_OK(nb_backward(loss));
    expect_ref(nb_tensor_grad(x), "misc/identity_x_grad", 0);
    nb_tensor_release(loss);
    nb_tensor_release(y);
    nb_tensor_release(x);

    /* a float64 gradient of a broadcast shape for a float32 input: summed and converted */
    nb_tensor *xf = leaf("misc/x", NB_F32, true);
    y = NBT_NOTNULL(apply1(&twice_fn, xf, "bcast"));
    loss = nb_sum(y);
    NBT_OK(nb_backward(loss));
    ck_assert_int_eq(nb_tensor_dtype(nb_tensor_grad(xf)), NB_F32);
    expect_ref(nb_tensor_grad(xf), "misc/bcast_x_grad", 0);
    nb_tensor_release(loss);
    nb_tensor_release(y);
    /* None: no gradient at all */
    nb_zero_grad(xf);
    y = NBT_NOTNULL(apply1(&twice_fn, xf, "none"));
    loss = nb_sum(y);
    NBT_OK(nb_backward(loss));
    ck_assert_ptr_null(nb_tensor_grad(xf));
    nb_tensor_release(loss);
    nb_tensor_release(y);
    /* a shape that does not broadcast: PyTorch's message, naming the function */
    y = NBT_NOTNULL(apply1(&twice_fn, xf, "bad"));
    loss = nb_sum(y);
    NBT_STATUS_FAILS_WITH(nb_backward(loss), "Twice: backward returned an invalid gradient at index 0 - got [6] but "
                                             "expected shape compatible with [5]");
    ck_assert_ptr_null(nb_tensor_grad(xf));
    nb_tensor_release(loss);
    nb_tensor_release(y);
    nb_tensor_release(xf);
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

/* ---- gradcheck ---- */

static nb_tensor *gc_cube(nb_tensor *const *in, int n, void *ctx) {
    (void)n, (void)ctx;
    nb_scope *s = nb_scope_begin();
    nb_tensor *y = nb_tensor_retain(nb_mul(cube(nb_tanh(in[0])), in[1]));
    nb_scope_end(s);
    return y;
}

static nb_tensor *gc_two(nb_tensor *const *in, int n, void *ctx) { /* 1-d inputs */
    (void)n, (void)ctx;
    nb_tensor *out[3];
    if (nb_function_apply(&two_fn, in, 2, out, 3, NULL) != NB_OK) return NULL;
    nb_tensor_release(out[1]);
    nb_tensor_release(out[2]);
    return out[0];
}

START_TEST(test_gradcheck_right_and_wrong_backward) {
    nb_tensor *x = nbt_randn(1, NB_F64, T(3, 4), true), *w = nbt_randn(2, NB_F64, T(3, 4), true);
    nb_tensor *x1 = nbt_randn(3, NB_F64, T(5), true), *w1 = nbt_randn(4, NB_F64, T(5), true);
    nb_tensor *in[2] = {x, w}, *in1[2] = {x1, w1};
    nb_gradcheck_report rep;
    for (int fast = 0; fast < 2; fast++) {
        nb_gradcheck_options o = nb_gradcheck_defaults();
        o.fast_mode = fast;
        cube_scale = 1.0;
        NBT_OK(nb_gradcheck(gc_cube, NULL, in, 2, &o, &rep));
        ck_assert_msg(rep.passed, "%s", rep.message);
        cube_scale = 1.01; /* a backward 1% off */
        NBT_OK(nb_gradcheck(gc_cube, NULL, in, 2, &o, &rep));
        ck_assert_msg(!rep.passed, "a wrong backward passed gradcheck (fast %d)", fast);
        ck_assert_msg(strstr(rep.message, "Jacobian mismatch for input 0"), "%s", rep.message);
        ck_assert_msg(!strstr(rep.message, "input 1"), "%s", rep.message); /* w's gradient does not involve Cube */
        cube_scale = 1.0;
        NBT_OK(nb_gradcheck(gc_two, NULL, in1, 2, &o, &rep));
        ck_assert_msg(rep.passed, "%s", rep.message);
    }
    nb_tensor_release(x);
    nb_tensor_release(w);
    nb_tensor_release(x1);
    nb_tensor_release(w1);
}
END_TEST

/* ---- behaviour in a graph ---- */

static int frees;
static void count_free(void *p) {
    frees++;
    free(p);
}
static nb_status data_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)nin, (void)nout, (void)arg;
    double *k = malloc(sizeof *k);
    *k = 5.0;
    nb_status st = nb_function_set_data(ctx, k, count_free);
    if (st != NB_OK) return st;
    out[0] = nb_mul_scalar(in[0], *k);
    return out[0] ? NB_OK : nb_last_status();
}
static nb_status data_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)nout, (void)nin;
    gin[0] = nb_mul_scalar(gout[0], *(double *)nb_function_data(ctx));
    return gin[0] ? NB_OK : nb_last_status();
}
static const nb_function data_fn = {"Scale5", data_forward, data_backward};

START_TEST(test_retain_graph_no_grad_and_user_data) {
    nb_tensor *x = nbt_randn(3, NB_F64, T(4), true);
    frees = 0;
    nb_tensor *y = NBT_NOTNULL(apply1(&data_fn, x, NULL));
    nb_tensor *loss = nb_sum(y);
    NBT_OK(nb_backward_ex(loss, NULL, true));
    ck_assert_int_eq(frees, 0); /* retained for another pass */
    NBT_OK(nb_backward(loss));
    ck_assert_int_eq(frees, 1); /* freed with the saved state */
    nbt_assert_values(nb_tensor_grad(x), (double[]){10, 10, 10, 10}, 4, 0, 0);
    NBT_STATUS_FAILS_WITH(nb_backward(loss), "backward through the graph a second time");
    nb_tensor_release(loss);
    nb_tensor_release(y);
    ck_assert_int_eq(frees, 1);

    /* never backpropagated: freed with the graph */
    y = NBT_NOTNULL(apply1(&data_fn, x, NULL));
    ck_assert_int_eq(frees, 1);
    nb_tensor_release(y);
    ck_assert_int_eq(frees, 2);

    /* no_grad: nothing recorded, the data freed at once; inputs not requiring grad: the same */
    nb_no_grad_begin();
    y = NBT_NOTNULL(apply1(&data_fn, x, NULL));
    nb_no_grad_end();
    ck_assert_int_eq(frees, 3);
    ck_assert(!nb_tensor_requires_grad(y) && nb_tensor_is_leaf(y));
    nb_tensor_release(y);
    nb_tensor *c = nbt_randn(4, NB_F64, T(4), false);
    y = NBT_NOTNULL(apply1(&data_fn, c, NULL));
    ck_assert_int_eq(frees, 4);
    ck_assert(!nb_tensor_requires_grad(y));
    nb_tensor_release(y);
    nb_tensor_release(c);
    nb_tensor_release(x);
}
END_TEST

static nb_status nan_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)ctx, (void)nout, (void)nin;
    gin[0] = nb_mul_scalar(gout[0], NAN);
    return NB_OK;
}
/* an Inf no op of its own would catch: written into the output's data */
static nb_status inf_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)ctx, (void)nin, (void)nout, (void)arg;
    out[0] = nb_clone(in[0]);
    if (!out[0]) return nb_last_status();
    nb_tensor_f64(out[0])[1] = INFINITY;
    return NB_OK;
}
static const nb_function nan_fn = {"NanB", id_forward, nan_backward};
static const nb_function inf_fn = {"InfF", inf_forward, id_backward};

START_TEST(test_anomaly_names_the_function) {
    nb_tensor *x = nbt_randn(5, NB_F64, T(3), true);
    nb_set_detect_anomaly(true);
    nb_tensor *y = NBT_NOTNULL(apply1(&nan_fn, x, NULL));
    nb_tensor *loss = nb_sum(y);
    nb_clear_error();
    ck_assert_int_eq(nb_backward(loss), NB_ERR_ANOMALY);
    ck_assert_msg(strstr(nb_last_error(), "function 'NanB' returned NaN in its 1st gradient"), "%s", nb_last_error());
    ck_assert_ptr_null(nb_tensor_grad(x));
    nb_tensor_release(loss);
    nb_tensor_release(y);
    NBT_FAILS_WITH(apply1(&inf_fn, x, NULL), "detect_anomaly: InfF produced Inf in forward");
    nb_set_detect_anomaly(false);
    /* off: the NaN flows into .grad */
    y = NBT_NOTNULL(apply1(&nan_fn, x, NULL));
    loss = nb_sum(y);
    NBT_OK(nb_backward(loss));
    ck_assert(isnan(nb_tensor_f64(nb_tensor_grad(x))[0]));
    nb_tensor_release(loss);
    nb_tensor_release(y);
    nb_tensor_release(x);
}
END_TEST

static nb_status failing_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)ctx, (void)nin, (void)nout;
    out[0] = nb_clone(in[0]);             /* made before the failure: apply releases it */
    if (arg) return NB_ERR_STATE;         /* an error without a message */
    nb_tensor *bad = nb_matmul(in[0], in[0]); /* [3] @ [3] is fine: a dot product; [2, 3] @ [2, 3] fails */
    nb_tensor_release(bad);
    return bad ? NB_OK : nb_last_status();
}
static nb_status failing_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)ctx, (void)gout, (void)nout, (void)nin;
    gin[0] = nb_ones(NB_F64, T(2, 3)); /* set before failing: the engine releases it */
    nb_tensor *r = nb_reshape(gout[0], T(2)); /* gout is [3]: fails */
    nb_tensor_release(r);
    return r ? NB_OK : nb_last_status();
}
static const nb_function failing_fn = {"Failing", failing_forward, failing_backward};

START_TEST(test_errors_from_forward_and_backward) {
    size_t before = nb_memory_in_use();
    nb_tensor *x = nbt_randn(6, NB_F64, T(2, 3), true);
    nb_tensor *y = (nb_tensor *)1;
    nb_tensor *in[1] = {x};
    NBT_STATUS_FAILS_WITH(nb_function_apply(&failing_fn, in, 1, &y, 1, NULL), "matmul: shapes [2, 3] and [2, 3]");
    ck_assert_ptr_null(y);
    NBT_STATUS_FAILS_WITH(nb_function_apply(&failing_fn, in, 1, &y, 1, (void *)1), "Failing: forward failed");
    nb_tensor *v = nbt_randn(7, NB_F64, T(3), true);
    in[0] = v;
    NBT_OK(nb_function_apply(&failing_fn, in, 1, &y, 1, NULL)); /* a vector: forward works */
    nb_tensor *loss = nb_sum(y);
    NBT_STATUS_FAILS_WITH(nb_backward(loss), "reshape: shape '[2]' is invalid"); /* the backward's own error */
    ck_assert_ptr_null(nb_tensor_grad(v));
    nb_tensor_release(loss);
    nb_tensor_release(y);
    nb_tensor *out2[2];
    in[0] = x;
    NBT_STATUS_FAILS_WITH(nb_function_apply(&cube_fn, in, 1, out2, 2, NULL), "Cube: forward returned NULL for output 1");
    ck_assert_ptr_null(out2[0]);
    nb_tensor_release(v);
    nb_tensor_release(x);
    ck_assert_uint_eq(nb_memory_in_use(), before);
}
END_TEST

/* A hook on a custom function's output, and nb_autograd_grad through the function. */
static nb_status times3_hook(const nb_tensor *g, nb_tensor **rep, void *ctx) {
    ++*(int *)ctx;
    *rep = nb_mul_scalar(g, 3.0);
    return *rep ? NB_OK : nb_last_status();
}

START_TEST(test_hooks_and_autograd_grad_through_a_function) {
    nb_tensor *x = nbt_randn(8, NB_F64, T(4), true), *w = nbt_randn(9, NB_F64, T(4), true);
    nb_tensor *in[2] = {x, w}, *out[3];
    NBT_OK(nb_function_apply(&two_fn, in, 2, out, 3, NULL));
    int called = 0;
    nb_hook_handle h = nb_tensor_register_hook(out[0], times3_hook, &called, NULL);
    ck_assert_uint_ne(h.id, 0);
    nb_tensor *loss = nb_sum(out[0]);
    nb_tensor *g[2];
    NBT_OK(nb_autograd_grad(&loss, 1, NULL, in, 2, g, &(nb_grad_options){.retain_graph = true}));
    ck_assert_int_eq(called, 1);
    nb_tensor *w3 = nb_mul_scalar(w, 3.0), *x3 = nb_mul_scalar(x, 3.0);
    nbt_assert_bitwise_equal(g[0], w3); /* d sum(3 x w)/dx with the hook's factor */
    nbt_assert_bitwise_equal(g[1], x3);
    ck_assert_ptr_null(nb_tensor_grad(x));
    nb_tensor *ga = NULL;
    NBT_OK(nb_autograd_grad(&loss, 1, NULL, &out[0], 1, &ga, NULL)); /* the output's own gradient: before its hook */
    ck_assert_int_eq(called, 1);
    nbt_assert_values(ga, (double[]){1, 1, 1, 1}, 4, 0, 0);
    nb_tensor *all[] = {ga, g[0], g[1], w3, x3, loss, out[0], out[1], out[2], x, w};
    for (int i = 0; i < 11; i++) nb_tensor_release(all[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("autograd_function");
    TCase *tc = tcase_create("autograd_function");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cube_in_a_graph);
    tcase_add_test(tc, test_several_outputs);
    tcase_add_test(tc, test_saved_output_input_returned_and_conversions);
    tcase_add_test(tc, test_gradcheck_right_and_wrong_backward);
    tcase_add_test(tc, test_retain_graph_no_grad_and_user_data);
    tcase_add_test(tc, test_anomaly_names_the_function);
    tcase_add_test(tc, test_errors_from_forward_and_backward);
    tcase_add_test(tc, test_hooks_and_autograd_grad_through_a_function);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
