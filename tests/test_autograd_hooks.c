/* Tensor gradient hooks (nb_tensor_register_hook, like Tensor.register_hook)
 * and nb_autograd_grad (torch.autograd.grad): which hooks run, in which
 * order, on which gradient, and the resulting gradients, compared with
 * PyTorch running the same scenarios (tests/pytorch/autograd_hooks_reference.py);
 * then the rules PyTorch states in words (errors, removal, lifetimes,
 * retain_graph, allow_unused, create_graph). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define T(...) NB_SHAPE(__VA_ARGS__)
#define REF "autograd_hooks.h5"

static nb_tensor *ref(const char *name) { return nbt_h5_read(nbt_data_path(REF), name, NB_F64); }

static void expect_ref(const nb_tensor *t, const char *name) {
    nb_tensor *e = ref(name);
    int64_t n = nb_tensor_numel(e);
    double *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    NBT_OK(nb_tensor_copy_out(e, v, NB_F64));
    ck_assert_msg(t != NULL, "%s: nabla has no tensor, PyTorch has one", name);
    nbt_assert_shape(t, nb_tensor_ndim(e), nb_tensor_shape(e));
    nbt_assert_values(t, v, n, 1e-12, 1e-12);
    free(v);
    nb_tensor_release(e);
}

/* .grad or a result that PyTorch has as None is absent from the file */
static void expect_ref_or_none(const nb_tensor *t, const char *name) {
    if (nbt_h5_exists(nbt_data_path(REF), name)) expect_ref(t, name);
    else ck_assert_msg(t == NULL, "%s: PyTorch has None, nabla a tensor", name);
}

static nb_tensor *leaf(const char *name) {
    nb_tensor *t = ref(name);
    NBT_OK(nb_requires_grad_(t, true));
    return t;
}

/* ---- logging hooks: the twins of the script's hook(id, scale) ---- */
typedef struct hook_spec {
    int id;
    double scale; /* 0: observe only */
} hook_spec;

static struct { int id; nb_tensor *g; } calls[32];
static int ncalls;

static nb_status log_hook(const nb_tensor *g, nb_tensor **replacement, void *ctx) {
    const hook_spec *h = ctx;
    ck_assert(!nb_grad_enabled());
    ck_assert_int_lt(ncalls, 32);
    calls[ncalls].id = h->id;
    calls[ncalls].g = nb_scope_keep(nb_clone(g));
    ncalls++;
    if (h->scale == 0) return NB_OK;
    *replacement = nb_mul_scalar(g, h->scale);
    return *replacement ? NB_OK : nb_last_status();
}

static nb_hook_handle hook(nb_tensor *t, hook_spec *h) {
    nb_hook_handle hd = nb_tensor_register_hook(t, log_hook, h, NULL);
    ck_assert_msg(hd.id != 0, "%s", nb_last_error());
    return hd;
}

/* The calls logged since the last check equal PyTorch's for scenario. */
static void expect_calls(const char *scenario) {
    char name[96];
    snprintf(name, sizeof name, "%s/calls", scenario);
    nb_tensor *ids = nbt_h5_read(nbt_data_path(REF), name, NB_I64);
    ck_assert_msg(nb_tensor_numel(ids) == ncalls, "%s: %d hook calls, PyTorch %lld", scenario, ncalls,
                  (long long)nb_tensor_numel(ids));
    for (int i = 0; i < ncalls; i++) {
        ck_assert_msg(nb_tensor_i64(ids)[i] == calls[i].id, "%s: call %d is hook %d, PyTorch's hook %lld", scenario, i,
                      calls[i].id, (long long)nb_tensor_i64(ids)[i]);
        snprintf(name, sizeof name, "%s/call%d", scenario, i);
        expect_ref(calls[i].g, name);
        nb_tensor_release(calls[i].g);
    }
    ncalls = 0;
    nb_tensor_release(ids);
}

static void release_all(nb_tensor **ts, int n) {
    for (int i = 0; i < n; i++) nb_tensor_release(ts[i]);
}

/* ---- against PyTorch ---- */

START_TEST(test_leaf_hooks_chain_and_removal) {
    nb_tensor *a = leaf("leaf/a");
    hook_spec h1 = {1, 0}, h2 = {2, 2.0}, h3 = {3, 0};
    hook(a, &h1);
    nb_hook_handle second = hook(a, &h2);
    hook(a, &h3);
    nb_scope *s = nb_scope_begin();
    NBT_OK(nb_backward(nb_sum(nb_add(nb_mul_scalar(a, 2), nb_mul(a, a))))); /* a used twice: one call per hook */
    NBT_OK(nb_tensor_remove_hook(a, second));
    NBT_OK(nb_tensor_remove_hook(a, second)); /* again: nothing to do, like handle.remove() */
    NBT_OK(nb_backward(nb_sum(nb_mul_scalar(a, 3))));
    nb_scope_end(s);
    expect_calls("leaf");
    expect_ref(nb_tensor_grad(a), "leaf/a_grad");
    nb_tensor_release(a);
}
END_TEST

START_TEST(test_hook_order_along_a_chain) {
    nb_tensor *b = leaf("chain/b");
    nb_scope *s = nb_scope_begin();
    nb_tensor *c = nb_tanh(b), *d = nb_mul_scalar(c, 3);
    hook_spec h[3] = {{1, 0}, {2, 0}, {3, 0}};
    hook(b, &h[0]);
    hook(c, &h[1]);
    hook(d, &h[2]);
    NBT_OK(nb_backward(nb_sum(nb_mul(d, d))));
    nb_scope_end(s);
    expect_calls("chain");
    expect_ref(nb_tensor_grad(b), "chain/b_grad");
    nb_tensor_release(b);
}
END_TEST

START_TEST(test_non_leaf_and_root_hooks_replace) {
    nb_tensor *x = leaf("nonleaf/x");
    nb_scope *s = nb_scope_begin();
    nb_tensor *y = nb_mul(x, x);
    hook_spec hy = {1, 10.0}, hr = {2, 3.0};
    hook(y, &hy);
    nb_tensor *r = nb_sum(nb_add(nb_mul_scalar(y, 2), nb_exp(y)));
    hook(r, &hr);
    NBT_OK(nb_backward(r));
    nb_scope_end(s);
    expect_calls("nonleaf");
    expect_ref(nb_tensor_grad(x), "nonleaf/x_grad");
    nb_tensor_release(x);
}
END_TEST

START_TEST(test_autograd_grad_like_pytorch) {
    nb_tensor *x = leaf("grad/x"), *w = leaf("grad/w");
    nb_scope *s = nb_scope_begin();
    hook_spec hx = {1, 2.0}, hz = {2, 10.0};
    hook(x, &hx);
    nb_tensor *z = nb_mul(x, w);
    hook(z, &hz);
    nb_tensor *out = nb_add(nb_sum(nb_mul(z, z)), nb_sum(nb_mul_scalar(x, 3)));
    nb_grad_options retain = {.retain_graph = true};
    nb_tensor *g[3];
    NBT_OK(nb_autograd_grad(&out, 1, NULL, &x, 1, g, &retain));
    expect_calls("grad_x");
    expect_ref(g[0], "grad_x/g0");
    nb_tensor_release(g[0]);
    NBT_OK(nb_autograd_grad(&out, 1, NULL, &z, 1, g, &retain));
    expect_calls("grad_z");
    expect_ref(g[0], "grad_z/g0");
    nb_tensor_release(g[0]);
    nb_tensor *zwx[3] = {z, w, x};
    NBT_OK(nb_autograd_grad(&out, 1, NULL, zwx, 3, g, &retain));
    expect_calls("grad_zwx");
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "grad_zwx/g%d", k);
        expect_ref(g[k], name);
    }
    release_all(g, 3);
    /* .grad untouched throughout, as PyTorch's */
    expect_ref_or_none(nb_tensor_grad(x), "grad_zwx/x_grad");
    expect_ref_or_none(nb_tensor_grad(w), "grad_zwx/w_grad");
    ck_assert_ptr_null(nb_tensor_grad(x));
    nb_scope_end(s);
    nb_tensor_release(x);
    nb_tensor_release(w);
}
END_TEST

START_TEST(test_autograd_grad_outputs_and_unused) {
    nb_tensor *m = leaf("multi/m"), *v = leaf("multi/v"), *u = leaf("multi/u");
    nb_tensor *go1 = ref("multi/go1"), *go2 = ref("multi/go2");
    nb_scope *s = nb_scope_begin();
    nb_tensor *o[2] = {nb_matmul(m, v), nb_sum_dim(nb_mul(m, m), 0, false)};
    const nb_tensor *go[2] = {go1, go2};
    nb_tensor *in[3] = {m, v, u}, *g[3];
    /* without allow_unused, u is an error (graph retained for the next call) */
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(o, 2, go, in, 3, g, &(nb_grad_options){.retain_graph = true}),
                          "One of the differentiated Tensors appears to not have been used in the graph");
    for (int k = 0; k < 3; k++) ck_assert_ptr_null(g[k]);
    NBT_OK(nb_autograd_grad(o, 2, go, in, 3, g, &(nb_grad_options){.allow_unused = true}));
    expect_calls("multi");
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "multi/g%d", k);
        expect_ref_or_none(g[k], name);
    }
    release_all(g, 3);
    /* retain_graph was false: the graph's saved tensors are gone */
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(o, 2, go, in, 2, g, NULL), "backward through the graph a second time");
    nb_scope_end(s);
    nb_tensor *all[] = {m, v, u, go1, go2};
    release_all(all, 5);
}
END_TEST

/* ---- the rules in words ---- */

static int freed;
static void count_free(void *ctx) { freed += *(int *)ctx; }
static nb_status failing_hook(const nb_tensor *g, nb_tensor **rep, void *ctx) {
    (void)g, (void)rep, (void)ctx;
    nb_tensor *bad = nb_reshape(g, T(7)); /* fails, setting an error */
    return bad ? NB_OK : nb_last_status();
}
static nb_status resizing_hook(const nb_tensor *g, nb_tensor **rep, void *ctx) {
    (void)ctx;
    *rep = nb_sum(g);
    return NB_OK;
}

START_TEST(test_hook_rules) {
    nb_tensor *x = nbt_randn(1, NB_F64, T(3), true), *c = nbt_randn(2, NB_F64, T(3), false);
    /* only on tensors that require grad; a NULL hook is an error */
    nb_hook_handle h = nb_tensor_register_hook(c, failing_hook, NULL, NULL);
    ck_assert_uint_eq(h.id, 0);
    ck_assert_msg(strstr(nb_last_error(), "cannot register a hook on a tensor that doesn't require gradient"), "%s",
                  nb_last_error());
    NBT_STATUS_FAILS_WITH(nb_tensor_remove_hook(x, h), "remove_hook");
    /* a hook's error stops backward with that error; .grad unchanged */
    h = nb_tensor_register_hook(x, failing_hook, NULL, NULL);
    nb_tensor *y = nb_mul(x, c), *loss = nb_sum(y);
    NBT_STATUS_FAILS_WITH(nb_backward(loss), "reshape: shape '[7]' is invalid");
    ck_assert_ptr_null(nb_tensor_grad(x));
    NBT_OK(nb_tensor_remove_hook(x, h));
    release_all((nb_tensor *[]){loss, y}, 2);
    /* a hook must keep the shape */
    y = nb_mul(x, c);
    h = nb_tensor_register_hook(y, resizing_hook, NULL, NULL);
    loss = nb_sum(y);
    NBT_STATUS_FAILS_WITH(nb_backward(loss), "changed the size of the gradient from [3] to []");
    release_all((nb_tensor *[]){loss, y}, 2);
    /* free_ctx: on removal, with a leaf, with the graph of a non-leaf (even
     * after the non-leaf itself was released: the hook lives on its node and
     * still runs) */
    freed = 0;
    int one = 1, ten = 10, hundred = 100;
    hook_spec obs = {7, 0};
    h = nb_tensor_register_hook(x, log_hook, &obs, NULL);
    nb_hook_handle h1 = nb_tensor_register_hook(x, failing_hook, &one, count_free);
    NBT_OK(nb_tensor_remove_hook(x, h1));
    ck_assert_int_eq(freed, 1);
    nb_tensor *x2 = nbt_randn(3, NB_F64, T(3), true);
    nb_tensor_register_hook(x2, failing_hook, &ten, count_free);
    nb_tensor_release(x2);
    ck_assert_int_eq(freed, 11);
    y = nb_mul(x, c);
    nb_tensor *z = nb_exp(y);
    hook_spec obs_y = {8, 0};
    nb_tensor_register_hook(y, log_hook, &obs_y, NULL);
    nb_tensor_register_hook(y, resizing_hook, &hundred, count_free);
    NBT_OK(nb_tensor_remove_hook(y, nb_tensor_register_hook(y, resizing_hook, &one, count_free)));
    ck_assert_int_eq(freed, 12);
    nb_tensor_release(y); /* z's node keeps y, and y's node its hooks */
    nb_tensor *out = nb_sum(z);
    ncalls = 0;
    /* the resizing hook is still there: remove it through... nothing (y is
     * gone); instead run nb_autograd_grad to x, which runs y's hooks: error */
    nb_tensor *g = NULL;
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(&out, 1, NULL, &x, 1, &g, &(nb_grad_options){.retain_graph = true}),
                          "changed the size");
    ck_assert_int_eq(ncalls, 1); /* the observer before it ran */
    ck_assert_int_eq(calls[0].id, 8);
    nb_tensor_release(calls[0].g);
    ncalls = 0;
    release_all((nb_tensor *[]){out, z}, 2);
    ck_assert_int_eq(freed, 112); /* y's node (and its hooks) died with z */
    NBT_OK(nb_tensor_remove_hook(x, h));
    nb_tensor_release(c);
    nb_tensor_release(x);
}
END_TEST

START_TEST(test_autograd_grad_rules) {
    nb_tensor *x = nbt_randn(4, NB_F64, T(3), true), *c = nbt_randn(5, NB_F64, T(3), false);
    nb_tensor *y = nb_mul(x, x), *loss = nb_sum(y), *g = (nb_tensor *)1;
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(&loss, 1, NULL, &x, 1, &g, &(nb_grad_options){.create_graph = true}),
                          "create_graph=true is not supported");
    ck_assert_ptr_null(g);
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(&loss, 1, NULL, &c, 1, &g, NULL), "One of the differentiated Tensors does not require grad");
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(&c, 1, NULL, &x, 1, &g, NULL), "element 0 of tensors does not require grad");
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(&y, 1, NULL, &x, 1, &g, NULL), "grad can be implicitly created only for scalar outputs");
    nb_tensor *wrong = nb_ones(NB_F64, T(4));
    const nb_tensor *gw[1] = {wrong};
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(&y, 1, gw, &x, 1, &g, NULL), "mismatch in shape");
    /* the gradient of an output with respect to itself is its grad_output */
    nb_tensor *go = nbt_randn(6, NB_F64, T(3), false);
    const nb_tensor *gos[1] = {go};
    NBT_OK(nb_autograd_grad(&y, 1, gos, &y, 1, &g, &(nb_grad_options){.retain_graph = true}));
    nbt_assert_bitwise_equal(g, go);
    nb_tensor_release(g);
    /* an intermediate input whose own graph was freed by an earlier backward:
     * its node does not run, so that is fine, as in PyTorch */
    NBT_OK(nb_backward(loss));
    nb_tensor *z = nb_mul_scalar(y, 3.0), *zs = nb_sum(z);
    NBT_OK(nb_autograd_grad(&zs, 1, NULL, &y, 1, &g, NULL));
    nbt_assert_values(g, (double[]){3, 3, 3}, 3, 0, 0);
    nb_tensor_release(g);
    /* but reaching x needs it */
    nb_tensor *zs2 = nb_sum(z);
    NBT_STATUS_FAILS_WITH(nb_autograd_grad(&zs2, 1, NULL, &x, 1, &g, NULL), "second time");
    /* a leaf output with respect to itself */
    NBT_OK(nb_autograd_grad(&x, 1, gos, &x, 1, &g, NULL));
    nbt_assert_bitwise_equal(g, go);
    nb_tensor_release(g);
    /* results are held by an open scope like any result */
    nb_tensor *y2 = nb_mul(x, c), *s2 = nb_sum(y2);
    nb_scope *s = nb_scope_begin();
    NBT_OK(nb_autograd_grad(&s2, 1, NULL, &x, 1, &g, NULL));
    nbt_assert_bitwise_equal(g, c);
    nb_scope_end(s); /* g released by the scope */
    nb_tensor *all[] = {s2, y2, zs2, zs, z, go, wrong, loss, y, c, x};
    release_all(all, 11);
}
END_TEST

int main(void) {
    Suite *s = suite_create("autograd_hooks");
    TCase *tc = tcase_create("autograd_hooks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_leaf_hooks_chain_and_removal);
    tcase_add_test(tc, test_hook_order_along_a_chain);
    tcase_add_test(tc, test_non_leaf_and_root_hooks_replace);
    tcase_add_test(tc, test_autograd_grad_like_pytorch);
    tcase_add_test(tc, test_autograd_grad_outputs_and_unused);
    tcase_add_test(tc, test_hook_rules);
    tcase_add_test(tc, test_autograd_grad_rules);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
