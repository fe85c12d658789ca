/* Out-of-memory error paths: with nb_debug_fail_allocations_after(k), every
 * allocation from the k-th on fails. For each k from 0 until the operation
 * succeeds, the operation must fail with NB_ERR_NOMEM and a message, crash
 * nowhere, and hand back every pool block it took (nb_memory_in_use returns to
 * its value before; AddressSanitizer's leak check covers the rest). */
#include "testutil.h"

#include "nn/conv_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define T(...) NB_SHAPE(__VA_ARGS__)

typedef nb_status (*operation)(void *ctx);

/* Run op with allocation k failing, for k = 0, 1, ... until it succeeds;
 * returns the number of failing runs. */
static int fail_at; /* the k of the run under way, for operations that set up before failing */
static int fail_each_allocation(const char *what, operation op, void *ctx) {
    for (int k = 0; k < 100000; k++) {
        fail_at = k;
        size_t before = nb_memory_in_use();
        nb_clear_error();
        if (getenv("NBT_TRACE")) /* to find the allocation behind a failure */ fprintf(stderr, "%s k=%d\n", what, k);
        nb_debug_fail_allocations_after(k);
        nb_status st = op(ctx);
        nb_debug_fail_allocations_after(-1);
        ck_assert_msg(nb_memory_in_use() == before, "%s, allocation %d failing: %zu bytes in use before, %zu after",
                      what, k, before, nb_memory_in_use());
        if (st == NB_OK) return k;
        ck_assert_msg(st == NB_ERR_NOMEM && nb_last_status() == NB_ERR_NOMEM,
                      "%s, allocation %d failing: status %d (last %d), message '%s'", what, k, (int)st,
                      (int)nb_last_status(), nb_last_error());
        ck_assert_msg(nb_last_error()[0] != '\0', "%s, allocation %d failing: empty message", what, k);
    }
    ck_abort_msg("%s never succeeded", what);
    return -1;
}

/* N(0, 1) tensor, NULL (not a test failure) when allocation fails. */
static nb_tensor *randn(uint64_t seed, nb_dtype dtype, int ndim, const int64_t *shape, bool requires_grad) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_tensor *t = nb_rand_normal(&rng, dtype, ndim, shape, 0.0, 1.0);
    if (t && requires_grad) ck_assert_int_eq(nb_requires_grad_(t, true), NB_OK);
    return t;
}

/* Status of a chain of tensor results: NB_OK when the last one exists. */
static nb_status chain_status(const nb_tensor *last) { return last ? NB_OK : nb_last_status(); }

/* ---- a sequence of ops, forward and backward, in a scope ---- */
static nb_status ops_sequence(void *ctx) {
    (void)ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *a = randn(1, NB_F32, T(4, 6), true);
    nb_tensor *b = randn(2, NB_F32, T(6, 3), true);
    nb_tensor *bias = randn(3, NB_F32, T(3), true);
    nb_status st = (a && b && bias) ? NB_OK : nb_last_status();
    if (st == NB_OK) {
        nb_tensor *h = nb_add(nb_matmul(a, b), bias);
        h = nb_tanh(nb_mul_scalar(h, 0.5));
        nb_tensor *parts[2] = {h, nb_exp(nb_neg(h))};
        nb_tensor *c = nb_cat((const nb_tensor *const *)parts, 2, 1);
        nb_tensor *idx = NULL;
        nb_tensor *m = nb_max_dim(nb_transpose(c, 0, 1), 0, false, &idx);
        nb_tensor *s = nb_log_softmax(nb_reshape(c, T(2, 12)), 1);
        nb_tensor *loss = nb_add(nb_mean(s), nb_sum(nb_div(m, nb_add_scalar(nb_sqrt(nb_mul(m, m)), 1.0))));
        loss = nb_sum_dim(nb_unsqueeze(loss, 0), 0, false);
        st = chain_status(loss);
        if (st == NB_OK) st = nb_backward(loss);
        if (st == NB_OK && !nb_tensor_grad(a)) st = NB_ERR_STATE;
    }
    nb_tensor *keep[3] = {a, b, bias};
    for (int i = 0; i < 3; i++) nb_zero_grad(keep[i]);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_ops_sequence) {
    int k = fail_each_allocation("ops sequence", ops_sequence, NULL);
    ck_assert_int_gt(k, 20); /* the sequence allocates: the failures were real */
}
END_TEST

/* ---- issue 13's tensor ops (selection, clamping, reductions over dims), forward and backward ---- */
static nb_status tensor_ops_sequence(void *ctx) {
    (void)ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *a = randn(31, NB_F32, T(3, 4, 5), true);
    nb_tensor *b = randn(32, NB_F32, T(4, 1), true);
    nb_tensor *c = randn(33, NB_F32, T(5), true);
    nb_tensor *cond = nb_from_data(NB_I64, T(4, 1), (const int64_t[]){1, 0, 2, 0});
    nb_tensor *index = nb_from_data(NB_I64, T(3, 2, 5), (const int64_t[]){0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 3, 3, 3, 3, 3,
                                                                         0, 0, 0, 0, 0, 1, 2, 1, 2, 1, 0, 3, 0, 3, 0});
    nb_status st = (a && b && c && cond && index) ? NB_OK : nb_last_status();
    if (st == NB_OK) {
        nb_tensor *h = nb_add_alpha(nb_abs(a), b, 0.5);
        h = nb_sub_alpha(nb_maximum(h, c), nb_minimum(b, c), 2.0);
        h = nb_clamp_tensor(nb_clamp(h, -2.0, 2.0), b, NULL);
        h = nb_where(cond, h, nb_clamp_tensor(a, NULL, c));
        nb_tensor *g = nb_gather(nb_transpose(h, 0, 0), 1, index);
        nb_tensor *parts[3] = {nb_sum_dims(g, (const int[]){1}, 1, false), nb_amax(a, (const int[]){1}, 1, false),
                               nb_min_dim(a, 1, false, NULL)};
        nb_tensor *s = nb_stack((const nb_tensor *const *)parts, 3, 0);
        nb_tensor *am = nb_argmax_dim(s, 0, false), *an = nb_argmin(s);
        nb_tensor *loss = nb_add(nb_mean_dims(s, (const int[]){0, 2}, 2, false), nb_amin(s, NULL, 0, false));
        loss = nb_sum(loss);
        st = chain_status(am && an ? loss : NULL);
        if (st == NB_OK) st = nb_backward(loss);
        if (st == NB_OK && !(nb_tensor_grad(a) && nb_tensor_grad(b) && nb_tensor_grad(c))) st = NB_ERR_STATE;
    }
    nb_tensor *keep[3] = {a, b, c};
    for (int i = 0; i < 3; i++) nb_zero_grad(keep[i]);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_tensor_ops_sequence) {
    int k = fail_each_allocation("tensor ops sequence", tensor_ops_sequence, NULL);
    ck_assert_int_gt(k, 20);
}
END_TEST

/* ---- the ops of functional.h and the views, forward and backward ---- */
static nb_status functional_sequence(void *ctx) {
    (void)ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(21, NB_F32, T(2, 3, 6, 6), true);
    nb_tensor *w = randn(22, NB_F32, T(3), true), *b = randn(23, NB_F32, T(3), true);
    nb_tensor *rm = nb_zeros(NB_F32, T(3)), *rv = nb_ones(NB_F32, T(3));
    nb_tensor *lw = randn(24, NB_F32, T(4, 18), true);
    nb_tensor *target = nb_zeros(NB_I64, T(2));
    nb_status st = (x && w && b && rm && rv && lw && target) ? NB_OK : nb_last_status();
    if (st == NB_OK) {
        nb_pool2d_params ap = nb_pool2d_defaults(3);
        ap.padding[0] = ap.padding[1] = 1;
        nb_tensor *h = nb_batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
        h = nb_leaky_relu(nb_pad(h, (const int64_t[]){1, 0, 0, 1}, 4, NB_PAD_REPLICATE, 0), 0.1);
        h = nb_avg_pool2d(nb_dropout(h, 0.3, true, NULL), &ap);
        h = nb_sigmoid(nb_pow_scalar(nb_permute(nb_narrow(h, 2, 0, 2), (const int[]){0, 2, 3, 1}), 2));
        h = nb_linear(nb_clone(nb_reshape(h, T(2, 18))), lw, NULL);
        nb_tensor *ce = nb_cross_entropy(h, target, NB_REDUCTION_MEAN);
        nb_tensor *nll = nb_nll_loss(nb_log_softmax(h, 1), target, NB_REDUCTION_SUM);
        nb_tensor *mse = nb_mse_loss(nb_select(h, 1, 0), nb_rsub_scalar(nb_select(h, 1, 1), 1), NB_REDUCTION_NONE);
        nb_tensor *loss = nb_add(nb_sub(ce, nll), nb_to_dtype(nb_sum(mse), NB_F32));
        st = chain_status(loss);
        if (st == NB_OK) st = nb_backward(loss);
        if (st == NB_OK && !(nb_tensor_grad(x) && nb_tensor_grad(w) && nb_tensor_grad(lw))) st = NB_ERR_STATE;
    }
    nb_tensor *keep[4] = {x, w, b, lw};
    for (int i = 0; i < 4; i++) nb_zero_grad(keep[i]);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_functional_sequence) {
    int k = fail_each_allocation("functional sequence", functional_sequence, NULL);
    ck_assert_int_gt(k, 20);
}
END_TEST

/* ---- the layers of issue 13, forward and backward ---- */
static nb_status layers_sequence(void *ctx) {
    (void)ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(31, NB_F32, T(2, 4, 6, 6), true);
    nb_tensor *w = randn(32, NB_F32, T(4), true), *b = randn(33, NB_F32, T(4), true);
    nb_tensor *lw = randn(34, NB_F32, T(3, 3), true), *ew = randn(35, NB_F32, T(5, 3), true);
    nb_tensor *ids = nb_from_data(NB_I64, T(2, 2), (int64_t[]){1, 4, 0, 1});
    nb_status st = (x && w && b && lw && ew && ids) ? NB_OK : nb_last_status();
    if (st == NB_OK) {
        nb_pool2d_params p = nb_pool2d_defaults(2), pd = nb_pool2d_defaults(3);
        pd.stride[0] = pd.stride[1] = 1;
        pd.divisor_override = 2;
        nb_interpolate_params up = {.scale_factor = {1.5, 1.5}, .mode = NB_INTERPOLATE_BILINEAR};
        nb_interpolate_params near = {.size = {6, 6}};
        nb_tensor *idx = NULL, *aidx = NULL;
        nb_tensor *h = nb_group_norm(x, 2, w, b, 1e-5);
        h = nb_dropout2d(nb_max_pool2d_with_indices(h, &p, &idx), 0.3, true, NULL);
        h = nb_max_unpool2d(h, idx, &p, NULL, 0);
        h = nb_interpolate(nb_avg_pool2d(h, &pd), &up);
        h = nb_interpolate(nb_adaptive_max_pool2d(h, 3, 3, &aidx), &near);
        h = nb_layer_norm(nb_adaptive_avg_pool2d(h, 3, 3), T(3, 3), lw, NULL, 1e-5);
        nb_tensor *e = nb_embedding(ids, ew, 1, true);
        nb_tensor *loss = nb_add(nb_sum(nb_mul(h, h)), nb_sum(nb_mul(e, e)));
        st = chain_status(loss);
        if (st == NB_OK) st = nb_backward(loss);
        if (st == NB_OK && !(nb_tensor_grad(x) && nb_tensor_grad(w) && nb_tensor_grad(lw) && nb_tensor_grad(ew)))
            st = NB_ERR_STATE;
    }
    nb_tensor *keep[5] = {x, w, b, lw, ew};
    for (int i = 0; i < 5; i++) nb_zero_grad(keep[i]);
    nb_scope_end(sc);
    return st;
}

/* ---- custom functions, hooks and nb_autograd_grad ---- */
/* (x * w, x + w non-differentiable), saving both inputs */
static nb_status pair_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin, nb_tensor **out, int nout, void *arg) {
    (void)nin, (void)nout, (void)arg;
    nb_status st = nb_function_save_for_backward(ctx, in, 2);
    if (st != NB_OK) return st;
    if (!(out[0] = nb_mul(in[0], in[1])) || !(out[1] = nb_add(in[0], in[1]))) return nb_last_status();
    return nb_function_mark_non_differentiable(ctx, out[1]);
}
static nb_status pair_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout, nb_tensor **gin, int nin) {
    (void)nout, (void)nin;
    if (!(gin[0] = nb_mul(gout[0], nb_function_saved_tensor(ctx, 1)))) return nb_last_status();
    if (!(gin[1] = nb_mul(gout[0], nb_function_saved_tensor(ctx, 0)))) return nb_last_status();
    return NB_OK;
}
static const nb_function pair_fn = {"Pair", pair_forward, pair_backward};
static nb_status double_hook(const nb_tensor *g, nb_tensor **rep, void *ctx) {
    (void)ctx;
    *rep = nb_mul_scalar(g, 2.0);
    return *rep ? NB_OK : nb_last_status();
}

static nb_status autograd_extensions(void *ctx) {
    (void)ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *in[2] = {randn(20, NB_F64, T(3, 4), true), randn(21, NB_F64, T(3, 4), true)};
    nb_tensor *out[2] = {NULL, NULL}, *g[2] = {NULL, NULL};
    nb_status st = in[0] && in[1] ? NB_OK : nb_last_status();
    if (st == NB_OK) st = nb_function_apply(&pair_fn, in, 2, out, 2, NULL);
    if (st == NB_OK && nb_tensor_register_hook(out[0], double_hook, NULL, NULL).id == 0) st = nb_last_status();
    if (st == NB_OK && nb_tensor_register_hook(in[0], double_hook, NULL, NULL).id == 0) st = nb_last_status();
    nb_tensor *loss = st == NB_OK ? nb_sum(nb_exp(out[0])) : NULL;
    if (st == NB_OK) st = chain_status(loss);
    if (st == NB_OK) st = nb_autograd_grad(&loss, 1, NULL, in, 2, g, &(nb_grad_options){.retain_graph = true});
    if (st == NB_OK) st = nb_backward(loss);
    if (st == NB_OK && !(nb_tensor_grad(in[0]) && g[0] && g[1])) st = NB_ERR_STATE;
    nb_zero_grad(in[0]); /* the scope releases every result, out and g included */
    nb_zero_grad(in[1]);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_layers_sequence) {
    int k = fail_each_allocation("layers sequence", layers_sequence, NULL);
    ck_assert_int_gt(k, 20);
}
END_TEST

/* ---- the layer modules of issue 13: construction, one forward and backward ---- */
static nb_status layer_modules_run(void *ctx) {
    (void)ctx;
    static nb_rng rng; /* Dropout2d keeps a pointer to it */
    nb_rng_seed(&rng, 3);
    nb_interpolate_params up = {.scale_factor = {2, 2}};
    nb_module *net = nb_sequential_module(NB_MODULES(
        nb_group_norm_module(2, 4, 1e-5, true), nb_dropout2d_module(0.2, &rng), nb_upsample_module(&up),
        nb_adaptive_max_pool2d_module(3, NB_SIZE_NONE), nb_adaptive_avg_pool2d_module(2, 2),
        nb_layer_norm_module(T(2, 2), 1e-5, true), nb_flatten_module(2, -1), nb_batch_norm1d_module(4, 1e-5, 0.1, true, true)));
    nb_pool2d_params p = nb_pool2d_defaults(2);
    nb_module *emb = nb_embedding_module(6, 4, 0, false, &rng), *unpool = nb_max_unpool2d_module(&p);
    nb_status st = net && emb && unpool ? NB_OK : nb_last_status();
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = st == NB_OK ? randn(8, NB_F32, T(3, 4, 4, 4), false) : NULL;
    nb_tensor *ids = st == NB_OK ? nb_from_data(NB_I64, T(3, 2), (int64_t[]){1, 0, 5, 2, 2, 3}) : NULL;
    if (st == NB_OK) {
        nb_tensor *idx = NULL;
        nb_tensor *pooled = nb_max_pool2d_with_indices(x, &p, &idx);
        nb_tensor *u = nb_max_unpool2d_module_forward(unpool, pooled, idx, NULL, 0);
        nb_tensor *y = nb_module_forward(net, u);
        nb_tensor *loss = nb_add(nb_mean(y), nb_mean(nb_module_forward(emb, ids)));
        st = chain_status(loss);
        if (st == NB_OK) st = nb_backward(loss);
    }
    nb_scope_end(sc);
    nb_module_free(net);
    nb_module_free(emb);
    nb_module_free(unpool);
    return st;
}

START_TEST(test_layer_modules) { ck_assert_int_gt(fail_each_allocation("layer modules", layer_modules_run, NULL), 10); }
END_TEST

START_TEST(test_autograd_extensions) {
    ck_assert_int_gt(fail_each_allocation("custom function, hooks, autograd_grad", autograd_extensions, NULL), 10);
}
END_TEST

/* ---- the losses and activations (functional.h, nb_softmax), forward and backward ---- */
static nb_status losses_activations_sequence(void *ctx) {
    (void)ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(31, NB_F32, T(4, 3), true), *q = randn(32, NB_F32, T(4, 3), true);
    nb_tensor *w = randn(33, NB_F32, T(3), true), *cw = nb_full(NB_F32, T(3), 0.5);
    nb_tensor *target = nb_zeros(NB_I64, T(4));
    nb_status st = (x && q && w && cw && target) ? NB_OK : nb_last_status();
    if (st == NB_OK) {
        nb_tensor *h = nb_gelu(nb_silu(nb_elu(x, 0.5)), NB_GELU_TANH);
        h = nb_hardswish(nb_softplus(nb_gelu(h, NB_GELU_NONE), 2.0, 3.0));
        nb_class_loss_options o = nb_class_loss_defaults();
        o.weight = cw;
        o.label_smoothing = 0.1;
        nb_tensor *ce = nb_cross_entropy_ex(h, target, &o);
        o.weight = w; /* probabilities: the weight is differentiable */
        nb_tensor *cp = nb_cross_entropy_ex(h, nb_softmax(q, 1), &o);
        o.weight = cw;
        o.label_smoothing = 0;
        nb_tensor *nll = nb_nll_loss_ex(nb_log_softmax(h, 1), target, &o);
        nb_tensor *l1 = nb_l1_loss(h, w, NB_REDUCTION_MEAN); /* broadcast */
        nb_tensor *sl = nb_smooth_l1_loss(h, q, NB_REDUCTION_SUM, 0.5);
        nb_tensor *hu = nb_huber_loss(w, h, NB_REDUCTION_NONE, 2.0);
        nb_tensor *p = nb_sigmoid(h);
        nb_tensor *bce = nb_binary_cross_entropy(p, nb_sigmoid(q), cw, NB_REDUCTION_MEAN);
        nb_tensor *bl = nb_binary_cross_entropy_with_logits(h, p, cw, cw, NB_REDUCTION_SUM);
        nb_tensor *loss = nb_add(nb_add(nb_add(ce, cp), nb_add(nll, l1)), nb_add(nb_add(sl, nb_sum(hu)), nb_add(bce, bl)));
        st = chain_status(loss);
        if (st == NB_OK) st = nb_backward(loss);
        if (st == NB_OK && !(nb_tensor_grad(x) && nb_tensor_grad(q) && nb_tensor_grad(w))) st = NB_ERR_STATE;
    }
    nb_tensor *keep[3] = {x, q, w};
    for (int i = 0; i < 3; i++) nb_zero_grad(keep[i]);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_losses_activations) {
    ck_assert_int_gt(fail_each_allocation("losses and activations", losses_activations_sequence, NULL), 20);
}
END_TEST

/* ---- conv2d forward and backward (padded modes too) ---- */
typedef struct conv_case {
    nb_padding_mode mode;
    int64_t C, O, groups, stride; /* 16 -> 16, stride 1: Winograd; groups = C: depthwise */
    int64_t k, pad;               /* kernel size, padding (0 means the default 3, 1) */
    nb_dtype dtype;
} conv_case;

static nb_status conv_fwd_bwd(void *ctx) {
    const conv_case *cc = ctx;
    nb_scope *sc = nb_scope_begin();
    const int64_t k = cc->k ? cc->k : 3, pad = cc->k ? cc->pad : 1;
    nb_tensor *x = randn(4, cc->dtype, T(2, cc->C, 7, 7), true);
    nb_tensor *w = randn(5, cc->dtype, T(cc->O, cc->C / cc->groups, k, k), true);
    nb_tensor *bias = randn(6, cc->dtype, T(cc->O), true);
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding[0] = p.padding[1] = pad;
    p.stride[0] = cc->stride;
    p.groups = cc->groups;
    p.padding_mode = cc->mode;
    nb_tensor *y = (x && w && bias) ? nb_conv2d(x, w, bias, &p) : NULL;
    nb_tensor *loss = nb_sum(nb_mul(y, y));
    nb_status st = chain_status(loss);
    if (st == NB_OK) st = nb_backward(loss);
    if (st == NB_OK && !(nb_tensor_grad(x) && nb_tensor_grad(w) && nb_tensor_grad(bias))) st = NB_ERR_STATE;
    if (x) nb_zero_grad(x);
    if (w) nb_zero_grad(w);
    if (bias) nb_zero_grad(bias);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_conv2d) {
    conv_case cases[] = {{NB_PAD_ZEROS, 3, 4, 1, 2, 0, 0, NB_F32}, {NB_PAD_REFLECT, 3, 4, 1, 2, 0, 0, NB_F32},
                         {NB_PAD_ZEROS, 16, 16, 1, 1, 0, 0, NB_F32}, {NB_PAD_ZEROS, 4, 8, 4, 1, 0, 0, NB_F32}};
    for (int i = 0; i < 4; i++) ck_assert_int_gt(fail_each_allocation("conv2d", conv_fwd_bwd, &cases[i]), 5);
}
END_TEST

/* Every conv algorithm (conv2d_algo.c), forced, on a conv in its domain;
 * and float64 (the reference). */
START_TEST(test_conv2d_algorithms) {
    const conv_case general = {NB_PAD_ZEROS, 16, 16, 1, 1, 3, 1, NB_F32};
    const conv_case pointwise = {NB_PAD_ZEROS, 4, 6, 1, 1, 1, 0, NB_F32};
    const conv_case depthwise = {NB_PAD_ZEROS, 4, 8, 4, 1, 3, 1, NB_F32};
    const conv_case *domain[NBI_CONV_ALGOS] = {
        [NBI_CONV_REFERENCE] = &general, [NBI_CONV_IM2COL] = &general,   [NBI_CONV_POINTWISE] = &pointwise,
        [NBI_CONV_IMPLICIT] = &general,  [NBI_CONV_WINOGRAD] = &general, [NBI_CONV_DEPTHWISE] = &depthwise,
        [NBI_CONV_WINOGRAD4] = &general, [NBI_CONV_DIRECT] = &general, [NBI_CONV_ROWWISE] = &general};
    for (int a = 0; a < NBI_CONV_ALGOS; a++) {
        nbi_conv2d_force_algo((nbi_conv_algo)a);
        const int k = fail_each_allocation(nbi_conv_algo_name((nbi_conv_algo)a), conv_fwd_bwd, (void *)domain[a]);
        const nbi_conv_plan p = nbi_conv2d_last_plan();
        nbi_conv2d_force_algo(NBI_CONV_AUTO);
        ck_assert_msg(p.forward == a && p.dx == a && p.dw == a, "%s did not run every phase",
                      nbi_conv_algo_name((nbi_conv_algo)a));
        ck_assert_int_gt(k, 5);
    }
    const conv_case f64 = {NB_PAD_ZEROS, 3, 4, 1, 2, 3, 1, NB_F64};
    ck_assert_int_gt(fail_each_allocation("conv2d float64", conv_fwd_bwd, (void *)&f64), 5);
}
END_TEST

/* ---- conv2d -> max_pool2d -> relu as one op (nb_conv2d_pool_relu): F(4x4,
 * 3x3) pooling its tiles; relu alone in rowwise, its gradient read from dy
 * (the input not requiring grad) or stored first ---- */
typedef struct conv_pool_case {
    int64_t C, O;
    bool pool, x_grad;
} conv_pool_case;

static nb_status conv_pool_fwd_bwd(void *ctx) {
    const conv_pool_case *cc = ctx;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(4, NB_F32, T(2, cc->C, 8, 8), cc->x_grad);
    nb_tensor *w = randn(5, NB_F32, T(cc->O, cc->C, 3, 3), true);
    nb_tensor *bias = randn(6, NB_F32, T(cc->O), true);
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    nb_tensor *y = (x && w && bias) ? nb_conv2d_pool_relu(x, w, bias, NULL, cc->pool ? &pool : NULL, true) : NULL;
    nb_status st = chain_status(y);
    if (st == NB_OK)
        ck_assert_str_eq(nb_tensor_grad_fn_name(y), cc->pool ? "conv2d_pool_relu" : "conv2d_relu");
    nb_tensor *loss = nb_sum(nb_mul(y, y));
    st = chain_status(loss);
    if (st == NB_OK) st = nb_backward(loss);
    if (st == NB_OK && !(nb_tensor_grad(w) && nb_tensor_grad(bias) && (!cc->x_grad || nb_tensor_grad(x))))
        st = NB_ERR_STATE;
    if (x) nb_zero_grad(x);
    if (w) nb_zero_grad(w);
    if (bias) nb_zero_grad(bias);
    nb_scope_end(sc);
    return st;
}

START_TEST(test_conv2d_pool_relu) {
    const conv_pool_case cases[] = {{16, 16, true, true}, {1, 4, false, false}, {1, 4, false, true}};
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(fail_each_allocation("conv2d_pool_relu", conv_pool_fwd_bwd, (void *)&cases[i]), 5);
}
END_TEST

/* ---- conv_transpose2d through its module (construction, output_size), forward and backward ---- */
typedef struct convt_case {
    int64_t C, O, groups, k, stride, pad, out_pad, dilation; /* out_pad: rows only */
    nb_dtype dtype;
} convt_case;

static nb_status convt_module_run(void *ctx) {
    const convt_case *cc = ctx;
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.stride[0] = p.stride[1] = cc->stride;
    p.padding[0] = p.padding[1] = cc->pad;
    p.dilation[0] = p.dilation[1] = cc->dilation;
    p.groups = cc->groups;
    p.output_padding[0] = cc->out_pad;
    nb_module *m = nb_conv_transpose2d_module(cc->C, cc->O, cc->k, cc->k, &p, true, NULL);
    nb_status st = m ? nb_module_to_dtype(m, cc->dtype) : nb_last_status();
    nb_scope *sc = nb_scope_begin();
    /* output_size, when it can express output_padding (below the stride), asks for the same */
    int64_t os[2] = {0, 0};
    const bool by_size = cc->out_pad < cc->stride;
    if (st == NB_OK) st = nb_conv_transpose_output_size(5, cc->k, cc->stride, cc->pad, cc->out_pad, cc->dilation, &os[0]);
    if (st == NB_OK) st = nb_conv_transpose_output_size(6, cc->k, cc->stride, cc->pad, 0, cc->dilation, &os[1]);
    nb_tensor *x = st == NB_OK ? randn(40, cc->dtype, T(2, cc->C, 5, 6), true) : NULL;
    nb_tensor *y = x ? nb_conv_transpose2d_module_forward(m, x, by_size ? os : NULL, 2) : NULL;
    nb_tensor *loss = y ? nb_sum(nb_mul(y, y)) : NULL;
    if (st == NB_OK) st = chain_status(loss);
    if (st == NB_OK) st = nb_backward(loss);
    if (st == NB_OK && !(nb_tensor_grad(x) && nb_tensor_grad(nb_module_param(m, "weight")) &&
                         nb_tensor_grad(nb_module_param(m, "bias"))))
        st = NB_ERR_STATE;
    nb_scope_end(sc);
    nb_module_free(m);
    return st;
}

START_TEST(test_conv_transpose2d) {
    const convt_case cases[] = {
        {3, 4, 1, 3, 2, 1, 1, 1, NB_F32}, /* stride 2 */
        {3, 4, 1, 3, 1, 0, 1, 2, NB_F32}, /* output_padding below the dilation only: a bias-only row */
        {4, 4, 4, 3, 1, 1, 0, 1, NB_F32}, /* depthwise-like */
        {3, 4, 1, 3, 1, 0, 1, 2, NB_F64}, /* the reference */
    };
    for (int i = 0; i < 4; i++)
        ck_assert_int_gt(fail_each_allocation("conv_transpose2d", convt_module_run, (void *)&cases[i]), 5);
    /* every conv algorithm, forced, on a transposed conv whose adjoint conv is in its domain in every phase */
    const convt_case general = {16, 16, 1, 3, 1, 1, 0, 1, NB_F32}, pointwise = {4, 6, 1, 1, 1, 0, 0, 1, NB_F32};
    const convt_case depthwise = {4, 4, 4, 3, 1, 1, 0, 1, NB_F32};
    const convt_case *domain[NBI_CONV_ALGOS] = {
        [NBI_CONV_REFERENCE] = &general, [NBI_CONV_IM2COL] = &general,   [NBI_CONV_POINTWISE] = &pointwise,
        [NBI_CONV_IMPLICIT] = &general,  [NBI_CONV_WINOGRAD] = &general, [NBI_CONV_DEPTHWISE] = &depthwise,
        [NBI_CONV_WINOGRAD4] = &general, [NBI_CONV_DIRECT] = &general, [NBI_CONV_ROWWISE] = &general};
    for (int a = 0; a < NBI_CONV_ALGOS; a++) {
        nbi_conv2d_force_algo((nbi_conv_algo)a);
        const int k = fail_each_allocation(nbi_conv_algo_name((nbi_conv_algo)a), convt_module_run, (void *)domain[a]);
        const nbi_conv_plan p = nbi_conv2d_last_plan();
        nbi_conv2d_force_algo(NBI_CONV_AUTO);
        ck_assert_msg(p.forward == a && p.dx == a && p.dw == a, "%s did not run every phase",
                      nbi_conv_algo_name((nbi_conv_algo)a));
        ck_assert_int_gt(k, 5);
    }
}
END_TEST

/* ---- module construction and one forward/backward ---- */
static nb_module *small_net(void) {
    static nb_rng rng; /* Dropout keeps a pointer to it */
    nb_rng_seed(&rng, 9);
    nb_conv2d_params cp = nb_conv2d_defaults();
    nb_pool2d_params pp = nb_pool2d_defaults(2);
    return nb_sequential_module(NB_MODULES(
        nb_conv2d_module(1, 4, 3, 3, &cp, true, &rng), nb_batch_norm2d_module(4, 1e-5, 0.1, true, true),
        nb_relu_module(), nb_max_pool2d_module(&pp), nb_dropout_module(0.25, &rng), nb_flatten_module(1, -1),
        nb_linear_module(4 * 3 * 3, 5, true, &rng), nb_gelu_module(NB_GELU_TANH), nb_silu_module(),
        nb_elu_module(1.0), nb_softplus_module(1.0, 20.0), nb_hardswish_module(), nb_softmax_module(1),
        nb_log_softmax_module(1)));
}

static nb_status module_build_and_run(void *ctx) {
    (void)ctx;
    nb_module *net = small_net();
    if (!net) return nb_last_status();
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(7, NB_F32, T(3, 1, 8, 8), false);
    nb_tensor *y = x ? nb_module_forward(net, x) : NULL;
    nb_tensor *loss = nb_mean(y);
    nb_status st = chain_status(loss);
    if (st == NB_OK) st = nb_backward(loss);
    nb_scope_end(sc);
    nb_module_free(net);
    return st;
}

START_TEST(test_module) { ck_assert_int_gt(fail_each_allocation("module", module_build_and_run, NULL), 10); }
END_TEST

static nb_status parameter_list(void *ctx) {
    nb_param_list ps = nb_module_parameter_list(ctx);
    if (!ps.params) return nb_last_status();
    nb_status st = ps.n == nb_module_num_parameters(ctx) ? NB_OK : NB_ERR_STATE;
    nb_param_list_free(&ps);
    return st;
}

/* Converting a model: a failure leaves every tensor as it was. */
static int expect_f32(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param, (void)ctx;
    if (nb_tensor_dtype(t) == NB_I64) return 0;
    ck_assert_msg(nb_tensor_dtype(t) == NB_F32, "%s was changed by a failed conversion", name);
    ck_assert_msg(!nb_tensor_grad(t) || nb_tensor_dtype(nb_tensor_grad(t)) == NB_F32, "%s's grad was changed", name);
    return 0;
}

static nb_status module_to_dtype(void *ctx) {
    (void)ctx;
    nb_debug_fail_allocations_after(-1); /* the model and its grads are not the subject */
    nb_module *net = small_net();
    ck_assert_ptr_nonnull(net);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = randn(8, NB_F32, T(2, 1, 8, 8), false);
    ck_assert_int_eq(nb_backward(nb_mean(nb_module_forward(net, x))), NB_OK);
    nb_scope_end(sc);
    nb_debug_fail_allocations_after(fail_at);
    nb_status st = nb_module_to_dtype(net, NB_F64);
    nb_debug_fail_allocations_after(-1);
    if (st != NB_OK) NBT_OK(nb_module_visit_state(net, expect_f32, NULL));
    nb_module_free(net);
    return st;
}

START_TEST(test_module_to_dtype) { ck_assert_int_gt(fail_each_allocation("module_to_dtype", module_to_dtype, NULL), 5); }
END_TEST

START_TEST(test_module_parameter_list) {
    nb_module *net = small_net();
    ck_assert_ptr_nonnull(net);
    ck_assert_int_ge(fail_each_allocation("module_parameter_list", parameter_list, net), 1);
    nb_module_free(net);
}
END_TEST

/* ---- optimizers: construction and steps (state is created on the first) ---- */
typedef struct { int which; int k; } opt_case;

static nb_status optimizer_run(void *ctx) {
    opt_case *c = ctx;
    nb_tensor *p[2] = {randn(10, NB_F32, T(5, 4), true), randn(11, NB_F32, T(4), true)};
    nb_status st = NB_OK;
    if (!p[0] || !p[1]) st = nb_last_status();
    for (int i = 0; st == NB_OK && i < 2; i++) {
        nb_scope *sc = nb_scope_begin();
        nb_tensor *l = nb_sum(nb_mul(p[i], p[i]));
        st = chain_status(l);
        if (st == NB_OK) st = nb_backward(l);
        nb_scope_end(sc);
    }
    nb_optimizer *opt = NULL;
    if (st == NB_OK) { /* two parameter groups: p[0] in the first, p[1] in the second */
        nb_sgd_options so = nb_sgd_defaults();
        so.lr = 0.1, so.momentum = 0.9, so.nesterov = true;
        nb_adam_options ao = nb_adam_defaults();
        ao.amsgrad = true;
        nb_adam_options aw = nb_adamw_defaults();
        nb_adadelta_options ad = nb_adadelta_defaults();
        nb_rmsprop_options rp = nb_rmsprop_defaults();
        rp.centered = true, rp.momentum = 0.5;
        switch (c->which) {
        case 0: opt = nb_sgd(p, 1, &so); break;
        case 1: opt = nb_adam(p, 1, &ao); break;
        case 2: opt = nb_adamw(p, 1, &aw); break;
        case 3: opt = nb_adadelta(p, 1, &ad); break;
        default: opt = nb_rmsprop(p, 1, &rp); break;
        }
        if (!opt) st = nb_last_status();
        if (st == NB_OK) {
            switch (c->which) {
            case 0: st = nb_sgd_add_param_group(opt, p + 1, 1, NULL); break;
            case 1: case 2: st = nb_adam_add_param_group(opt, p + 1, 1, NULL); break;
            case 3: st = nb_adadelta_add_param_group(opt, p + 1, 1, NULL); break;
            default: st = nb_rmsprop_add_param_group(opt, p + 1, 1, NULL); break;
            }
        }
    }
    for (int s = 0; st == NB_OK && s < 2; s++) st = nb_optimizer_step(opt);
    nb_optimizer_free(opt);
    nb_tensor_release(p[0]);
    nb_tensor_release(p[1]);
    return st;
}

START_TEST(test_optimizers) {
    for (int which = 0; which < 5; which++) {
        opt_case c = {which, 0};
        ck_assert_int_gt(fail_each_allocation("optimizer", optimizer_run, &c), 2);
    }
}
END_TEST

/* ---- schedulers: creation, steps, state entries saved and loaded ---- */
static nb_status scheduler_run(void *ctx) {
    const int which = *(const int *)ctx;
    nb_tensor *p = randn(12, NB_F32, T(3), true);
    nb_sgd_options so = nb_sgd_defaults();
    so.lr = 0.1;
    nb_optimizer *opt = p ? nb_sgd(&p, 1, &so) : NULL;
    nb_lr_scheduler *s = NULL;
    if (opt) {
        switch (which) {
        case 0: s = nb_multi_step_lr(opt, (int64_t[]){1, 3}, 2, 0.5); break;
        case 1: s = nb_one_cycle_lr(opt, 1.0, 10, NULL); break;
        case 2: s = nb_reduce_lr_on_plateau(opt, NULL); break;
        default:
            s = nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_linear_lr(opt, 0.1, 1.0, 2), nb_cosine_annealing_lr(opt, 5, 0)},
                                 2, (int64_t[]){2}, 1);
            break;
        }
    }
    nb_status st = s ? NB_OK : nb_last_status();
    for (int e = 0; st == NB_OK && e < 4; e++) st = which == 2 ? nb_lr_scheduler_step_metric(s, 1.0) : nb_lr_scheduler_step(s);
    for (int64_t k = 0; st == NB_OK && k < nb_lr_scheduler_state_count(s); k++) {
        char name[64];
        nb_tensor *t = nb_lr_scheduler_state_entry(s, k, name, sizeof name);
        st = t ? nb_lr_scheduler_load_state_entry(s, name, t) : nb_last_status();
        nb_tensor_release(t);
    }
    nb_lr_scheduler_free(s);
    nb_optimizer_free(opt);
    nb_tensor_release(p);
    return st;
}

START_TEST(test_schedulers) {
    for (int which = 0; which < 4; which++) ck_assert_int_gt(fail_each_allocation("scheduler", scheduler_run, &which), 2);
}
END_TEST

/* ---- init and gradient clipping, on a strided view and on grads ---- */
static nb_status init_and_clip(void *ctx) {
    (void)ctx;
    nb_tensor *w = randn(13, NB_F32, T(4, 3, 2), true);
    nb_tensor *v = w ? nb_transpose(w, 0, 2) : NULL; /* [2, 3, 4], not contiguous: the fill goes through a buffer */
    nb_status st = v ? NB_OK : nb_last_status();
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    if (st == NB_OK) st = nb_init_kaiming_uniform_(v, 0, "fan_out", "relu", &rng);
    if (st == NB_OK) st = nb_init_xavier_normal_(v, 1.0, &rng);
    if (st == NB_OK) st = nb_init_trunc_normal_(v, 0, 1, -2, 2, &rng);
    if (st == NB_OK) st = nb_init_dirac_(v, 1);
    nb_tensor *row = st == NB_OK ? nb_select(v, 0, 1) : NULL;
    if (st == NB_OK) st = nb_init_eye_(row); /* a NULL row keeps nb_select's message */
    nb_tensor *g = st == NB_OK ? nb_ones_like(w) : NULL;
    if (st == NB_OK) st = g ? nb_backward_ex(w, g, false) : nb_last_status();
    double total;
    if (st == NB_OK) st = nb_clip_grad_norm_(&w, 1, 0.5, 2.0, true, &total);
    if (st == NB_OK) st = nb_clip_grad_value_(&w, 1, 0.1);
    nb_tensor_release(g);
    nb_tensor_release(row);
    nb_tensor_release(v);
    nb_tensor_release(w);
    return st;
}

START_TEST(test_init_and_clip) { ck_assert_int_gt(fail_each_allocation("init and clip", init_and_clip, NULL), 3); }
END_TEST

/* ---- HDF5: read one dataset, load into tensors, load a module ---- */
static char h5_path[256];

static nb_status hdf5_loads(void *ctx) {
    (void)ctx;
    nb_tensor *r = nb_hdf5_read(h5_path, "6.weight", NB_F64); /* converted on the way */
    if (!r) return nb_last_status();
    nb_tensor_release(r);
    nb_tensor *dst = nb_zeros(NB_F32, T(5, 36));
    if (!dst) return nb_last_status();
    nb_named_tensor e[1] = {{"6.weight", dst}};
    nb_load_report rep;
    nb_status st = nb_hdf5_load(h5_path, e, 1, false, &rep);
    nb_load_report_free(&rep); /* ours even on failure */
    nb_tensor_release(dst);
    return st;
}

static nb_status module_load(void *ctx) {
    nb_module *net = ctx;
    return nb_module_load_hdf5(net, h5_path, true, NULL);
}

START_TEST(test_hdf5) {
    snprintf(h5_path, sizeof h5_path, "nomem_%d.h5", (int)getpid());
    nb_module *net = small_net();
    ck_assert_ptr_nonnull(net);
    NBT_OK(nb_module_save_hdf5(net, h5_path));
    ck_assert_int_gt(fail_each_allocation("hdf5 read/load", hdf5_loads, NULL), 1);
    fail_each_allocation("module load", module_load, net); /* copies into existing tensors: may need no allocation */
    nb_module_free(net);
    remove(h5_path);
}
END_TEST

/* ---- nabla/checkpoint.h: save, and a load that changes nothing when it fails ---- */
static char ck_path[3][256];
typedef struct ck_run {
    nb_module *net;
    nb_optimizer *opt;
    nb_lr_scheduler *sched;
    nb_rng rng;
    nb_rng *rngs[1];
    const char *names[1];
    nb_tensor *epoch;
    nb_named_tensor extra[1];
    nb_checkpoint c;
} ck_run;

static void ck_step(ck_run *r) {
    nb_scope *s = nb_scope_begin();
    nb_tensor *x = nb_rand_normal(&r->rng, NB_F32, T(2, 1, 8, 8), 0.0, 1.0);
    nb_tensor *loss = nb_sum(nb_module_forward(r->net, x));
    nb_optimizer_zero_grad(r->opt);
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    ck_assert_int_eq(nb_optimizer_step(r->opt), NB_OK);
    ck_assert_int_eq(nb_lr_scheduler_step(r->sched), NB_OK);
    nb_scope_end(s);
    nb_tensor_i64(r->epoch)[0]++;
}

static nb_status checkpoint_save_op(void *ctx) { return nb_checkpoint_save(ck_path[2], &((ck_run *)ctx)->c); }

/* Every dataset of a and b bitwise equal. */
static void assert_same_checkpoints(const char *a, const char *b, int k) {
    char **na = NULL, **nb = NULL;
    int n = 0, m = 0;
    ck_assert_int_eq(nb_hdf5_list(a, &na, &n), NB_OK);
    ck_assert_int_eq(nb_hdf5_list(b, &nb, &m), NB_OK);
    ck_assert_int_eq(n, m);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(na[i], nb[i]);
        nb_tensor *x = nb_hdf5_read(a, na[i], NB_F64), *y = nb_hdf5_read(b, nb[i], NB_F64);
        if (!x) x = nb_hdf5_read(a, na[i], NB_I64), y = nb_hdf5_read(b, nb[i], NB_I64);
        ck_assert_msg(x && y, "allocation %d failing: %s changed", k, na[i]);
        nbt_assert_bitwise_equal(x, y);
        nb_tensor_release(x);
        nb_tensor_release(y);
    }
    nb_hdf5_names_free(na, n);
    nb_hdf5_names_free(nb, m);
}

START_TEST(test_checkpoint) {
    for (int i = 0; i < 3; i++) snprintf(ck_path[i], sizeof ck_path[i], "nomem_ck_%d_%d.h5", (int)getpid(), i);
    ck_run r = {0};
    r.net = small_net();
    nb_param_list ps = nb_module_parameter_list(r.net);
    nb_adam_options o = nb_adam_defaults();
    o.amsgrad = true;
    r.opt = nb_adam(ps.params, ps.n, &o);
    nb_param_list_free(&ps);
    r.sched = nb_sequential_lr(r.opt, (nb_lr_scheduler *[]){nb_linear_lr(r.opt, 0.1, 1.0, 2), nb_cosine_annealing_lr(r.opt, 5, 0)},
                               2, (int64_t[]){2}, 1);
    ck_assert_ptr_nonnull(r.sched);
    nb_rng_seed(&r.rng, 3);
    r.rngs[0] = &r.rng;
    r.names[0] = "data";
    r.epoch = nb_scalar(NB_I64, 0);
    r.extra[0] = (nb_named_tensor){"epoch", r.epoch};
    r.c = (nb_checkpoint){.model = r.net, .optimizer = r.opt, .scheduler = r.sched, .rngs = r.rngs,
                          .rng_names = r.names, .nrngs = 1, .extra = r.extra, .nextra = 1};
    ck_step(&r);
    ck_assert_int_gt(fail_each_allocation("checkpoint save", checkpoint_save_op, &r), 3);
    ck_step(&r); /* now the state differs from the file's */
    for (int k = 0;; k++) {
        ck_assert_int_lt(k, 100000);
        ck_assert_int_eq(nb_checkpoint_save(ck_path[0], &r.c), NB_OK);
        size_t before = nb_memory_in_use();
        nb_clear_error();
        nb_debug_fail_allocations_after(k);
        nb_status st = nb_checkpoint_load(ck_path[2], &r.c);
        nb_debug_fail_allocations_after(-1);
        ck_assert_msg(nb_memory_in_use() == before, "checkpoint load, allocation %d failing: %zu bytes before, %zu after",
                      k, before, nb_memory_in_use());
        if (st == NB_OK) {
            ck_assert_int_gt(k, 3);
            break;
        }
        ck_assert_msg(st == NB_ERR_NOMEM && nb_last_status() == NB_ERR_NOMEM,
                      "checkpoint load, allocation %d failing: status %d, message '%s'", k, (int)st, nb_last_error());
        ck_assert_int_eq(nb_checkpoint_save(ck_path[1], &r.c), NB_OK);
        assert_same_checkpoints(ck_path[0], ck_path[1], k);
    }
    ck_assert_int_eq(nb_tensor_i64(r.epoch)[0], 1); /* the file's */
    nb_lr_scheduler_free(r.sched);
    nb_optimizer_free(r.opt);
    nb_module_free(r.net);
    nb_tensor_release(r.epoch);
    for (int i = 0; i < 3; i++) remove(ck_path[i]);
}
END_TEST

/* ---- nabla/data.h: IDX files, data sets, a prefetching loader with transforms ---- */
static char idx_images[256], idx_labels[256];

static nb_status data_pipeline(void *ctx) {
    (void)ctx;
    nb_status st = NB_OK;
    nb_tensor *raw = nb_idx_read(idx_images, NB_F64);
    if (!raw) return nb_last_status();
    nb_tensor_release(raw);
    nb_dataset *ds = nb_idx_dataset(idx_images, idx_labels, 10);
    nb_dataset *part = ds ? nb_dataset_narrow(ds, 1, 4) : NULL;
    nb_transform t[4] = {nb_random_crop(6, 6, 1), nb_random_horizontal_flip(0.5), nb_random_affine(10),
                         nb_normalize(1, (double[]){0.5}, (double[]){0.25})};
    nb_loader_options o = nb_loader_defaults();
    o.batch_size = 3, o.shuffle = true, o.prefetch = true, o.transforms = t, o.num_transforms = 4;
    nb_loader *l = part ? nb_loader_new(part, &o) : NULL;
    if (!l) st = nb_last_status();
    for (int epoch = 0; st == NB_OK && epoch < 2; epoch++) {
        st = nb_loader_set_epoch(l, epoch);
        nb_tensor *x, *y;
        int64_t b;
        while (st == NB_OK && (b = nb_loader_next(l, &x, &y)) != 0) {
            if (b < 0) st = (nb_status)b;
            nb_tensor_release(x);
            nb_tensor_release(y);
        }
    }
    nb_tensor *x = NULL, *y = NULL;
    if (st == NB_OK) st = nb_dataset_get(part, 2, &x, &y);
    nb_tensor *batch = NULL, *tx = NULL, *ax = NULL;
    if (st == NB_OK) batch = nb_unsqueeze(x, 0);
    if (batch) tx = nb_transforms_apply(batch, t, 4, NULL);
    if (tx) ax = nb_image_affine(x, 5, 1, -1, 1.1, 2, 0, NB_INTERP_BILINEAR, 0);
    nb_dataset *tds = ax ? nb_tensor_dataset(ax, NULL) : NULL;
    if (st == NB_OK && !tds) st = nb_last_status();
    nb_tensor *all[] = {x, y, batch, tx, ax};
    for (int i = 0; i < 5; i++) nb_tensor_release(all[i]);
    nb_dataset_free(tds);
    nb_loader_free(l);
    nb_dataset_free(part);
    nb_dataset_free(ds);
    return st;
}

static void write_file(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_data) {
    snprintf(idx_images, sizeof idx_images, "nomem_%d_images.idx", (int)getpid());
    snprintf(idx_labels, sizeof idx_labels, "nomem_%d_labels.idx", (int)getpid());
    uint8_t im[16 + 6 * 7 * 5] = {0, 0, 8, 3, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 5};
    for (int i = 16; i < (int)sizeof im; i++) im[i] = (uint8_t)(i * 29);
    uint8_t lb[8 + 6] = {0, 0, 8, 1, 0, 0, 0, 6, 3, 1, 4, 1, 5, 9};
    write_file(idx_images, im, sizeof im);
    write_file(idx_labels, lb, sizeof lb);
    ck_assert_int_gt(fail_each_allocation("data", data_pipeline, NULL), 10);
    remove(idx_images);
    remove(idx_labels);
}
END_TEST

int main(void) {
    Suite *s = suite_create("nomem");
    TCase *tc = tcase_create("nomem");
    tcase_add_test(tc, test_ops_sequence);
    tcase_add_test(tc, test_tensor_ops_sequence);
    tcase_add_test(tc, test_functional_sequence);
    tcase_add_test(tc, test_losses_activations);
    tcase_add_test(tc, test_layers_sequence);
    tcase_add_test(tc, test_layer_modules);
    tcase_add_test(tc, test_autograd_extensions);
    tcase_add_test(tc, test_conv2d);
    tcase_add_test(tc, test_conv2d_algorithms);
    tcase_add_test(tc, test_conv2d_pool_relu);
    tcase_add_test(tc, test_conv_transpose2d);
    tcase_add_test(tc, test_module);
    tcase_add_test(tc, test_module_parameter_list);
    tcase_add_test(tc, test_module_to_dtype);
    tcase_add_test(tc, test_optimizers);
    tcase_add_test(tc, test_schedulers);
    tcase_add_test(tc, test_init_and_clip);
    tcase_add_test(tc, test_hdf5);
    tcase_add_test(tc, test_checkpoint);
    tcase_add_test(tc, test_data);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
