/* The losses of nabla/functional.h beyond the defaults: cross_entropy and
 * nll_loss with class weights, ignore_index, label smoothing and probability
 * targets; l1, smooth_l1, huber and mse with broadcasting; binary
 * cross-entropy from probabilities and from logits. Against PyTorch's numbers
 * (tests/pytorch/losses_reference.py, every reduction, empty inputs, edge
 * values), float64 gradchecks, PyTorch's error messages, and bitwise equality
 * at 1 and 2 threads. */
#include "testutil.h"

#include "nabla/functional.h"

#include <stdio.h>
#include <stdlib.h>

#define T(...) NB_SHAPE(__VA_ARGS__)
#define FILE_ nbt_data_path("losses.h5")

/* ---- the twin's ops: p as losses_reference.py documents ---- */
static nb_class_loss_options class_options(nb_tensor *const *in, const double *p) {
    nb_class_loss_options o = nb_class_loss_defaults();
    o.reduction = (nb_reduction)p[0];
    o.ignore_index = (int64_t)p[1];
    o.label_smoothing = p[2];
    o.weight = p[3] != 0 ? in[2] : NULL;
    return o;
}
static nb_tensor *cross_entropy(nb_tensor *const *in, const double *p) {
    nb_class_loss_options o = class_options(in, p);
    return nb_cross_entropy_ex(in[0], in[1], &o);
}
static nb_tensor *nll_loss(nb_tensor *const *in, const double *p) {
    nb_class_loss_options o = class_options(in, p);
    return nb_nll_loss_ex(in[0], in[1], &o);
}
static nb_tensor *l1(nb_tensor *const *in, const double *p) { return nb_l1_loss(in[0], in[1], (nb_reduction)p[0]); }
static nb_tensor *mse(nb_tensor *const *in, const double *p) { return nb_mse_loss(in[0], in[1], (nb_reduction)p[0]); }
static nb_tensor *smooth_l1(nb_tensor *const *in, const double *p) {
    return nb_smooth_l1_loss(in[0], in[1], (nb_reduction)p[0], p[1]);
}
static nb_tensor *huber(nb_tensor *const *in, const double *p) {
    return nb_huber_loss(in[0], in[1], (nb_reduction)p[0], p[1]);
}
static nb_tensor *bce(nb_tensor *const *in, const double *p) {
    return nb_binary_cross_entropy(in[0], in[1], p[1] != 0 ? in[2] : NULL, (nb_reduction)p[0]);
}
static nb_tensor *bce_logits(nb_tensor *const *in, const double *p) {
    const nb_tensor *w = p[1] != 0 ? in[2] : NULL, *pw = p[2] != 0 ? in[p[1] != 0 ? 3 : 2] : NULL;
    return nb_binary_cross_entropy_with_logits(in[0], in[1], w, pw, (nb_reduction)p[0]);
}

static const nbt_twin_op OPS[] = {
    {"cross_entropy", cross_entropy}, {"nll_loss", nll_loss},
    {"l1_loss", l1},                  {"mse_loss", mse},
    {"smooth_l1_loss", smooth_l1},    {"huber_loss", huber},
    {"binary_cross_entropy", bce},    {"binary_cross_entropy_with_logits", bce_logits},
};

START_TEST(test_pytorch) {
    nbt_twin_run_all(FILE_, OPS, sizeof OPS / sizeof OPS[0], NB_F32);
    nbt_twin_run_all(FILE_, OPS, sizeof OPS / sizeof OPS[0], NB_F64);
}
END_TEST

/* ---- gradcheck (float64) ---- */
typedef struct {
    nb_class_loss_options o;
    const nb_tensor *target;
} class_args;

static nb_tensor *gc_ce(nb_tensor *const *in, int n, void *ctx) {
    class_args *a = ctx;
    nb_class_loss_options o = a->o;
    if (n > 2) o.weight = in[2];
    return nb_cross_entropy_ex(in[0], n > 1 ? in[1] : a->target, &o);
}
static nb_tensor *gc_nll(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    class_args *a = ctx;
    return nb_nll_loss_ex(in[0], a->target, &a->o);
}

START_TEST(test_gradcheck_class) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(1, NB_F64, T(5, 4), true), *x4 = nbt_randn(2, NB_F64, T(2, 3, 2, 2), true);
    nb_tensor *t = nb_from_data(NB_I64, T(5), (int64_t[]){3, 0, -100, 1, 2});
    nb_tensor *t4 = nb_from_data(NB_I64, T(2, 2, 2), (int64_t[]){0, 2, 1, 1, 2, 2, 0, 1});
    nb_tensor *w = nb_from_data(NB_F64, T(4), (double[]){0.5, 2.0, 1.0, 0.25});
    nb_tensor *w3 = nb_from_data(NB_F64, T(3), (double[]){1.5, 0.3, 0.8});
    for (int r = 0; r < 3; r++) {
        class_args a = {nb_class_loss_defaults(), t};
        a.o.reduction = (nb_reduction)r;
        a.o.weight = w;
        nbt_gradcheck(gc_nll, &a, &x, 1, false);
        a.o.label_smoothing = 0.2;
        nbt_gradcheck(gc_ce, &a, &x, 1, false);
        class_args a4 = {nb_class_loss_defaults(), t4};
        a4.o.reduction = (nb_reduction)r;
        a4.o.weight = w3;
        a4.o.ignore_index = 1;
        a4.o.label_smoothing = 0.3;
        nbt_gradcheck(gc_ce, &a4, &x4, 1, false);
        /* probabilities: logits, target and weight all differentiable */
        nb_tensor *q = nbt_randn(10 + r, NB_F64, T(5, 4), true), *wq = nbt_randn(20 + r, NB_F64, T(4), true);
        class_args ap = {nb_class_loss_defaults(), NULL};
        ap.o.reduction = (nb_reduction)r;
        ap.o.label_smoothing = 0.1 * r;
        nbt_gradcheck(gc_ce, &ap, (nb_tensor *[]){x, q, wq}, 3, false);
        nb_tensor *q4 = nbt_randn(30 + r, NB_F64, T(2, 3, 2, 2), true);
        nbt_gradcheck(gc_ce, &ap, (nb_tensor *[]){x4, q4}, 2, false);
    }
    nb_scope_end(sc);
}
END_TEST

typedef struct {
    int kind; /* 0 l1, 1 smooth_l1, 2 huber, 3 mse, 4 bce, 5 bce_logits */
    nb_reduction r;
    double param;
    const nb_tensor *w, *pw;
} pw_args;

static nb_tensor *gc_pointwise(nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const pw_args *a = ctx;
    switch (a->kind) {
    case 0: return nb_l1_loss(in[0], in[1], a->r);
    case 1: return nb_smooth_l1_loss(in[0], in[1], a->r, a->param);
    case 2: return nb_huber_loss(in[0], in[1], a->r, a->param);
    case 3: return nb_mse_loss(in[0], in[1], a->r);
    case 4: return nb_binary_cross_entropy(in[0], in[1], a->w, a->r);
    default: return nb_binary_cross_entropy_with_logits(in[0], in[1], a->w, a->pw, a->r);
    }
}

START_TEST(test_gradcheck_pointwise) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(3, NB_F64, T(2, 3), true), *t = nbt_randn(4, NB_F64, T(3), true);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *p = nb_rand_uniform(&rng, NB_F64, T(3, 4), 0.05, 0.95), *q = nb_rand_uniform(&rng, NB_F64, T(3, 4), 0, 1);
    nb_tensor *w = nb_rand_uniform(&rng, NB_F64, T(4), 0.2, 2), *pw = nb_rand_uniform(&rng, NB_F64, T(3, 1), 0.5, 3);
    nb_tensor *lg = nbt_randn(6, NB_F64, T(3, 4), true);
    NBT_OK(nb_requires_grad_(p, true));
    NBT_OK(nb_requires_grad_(q, true));
    for (int r = 0; r < 3; r++) {
        for (int kind = 0; kind < 4; kind++) {
            pw_args a = {kind, (nb_reduction)r, kind == 1 ? 0.6 : 0.8, NULL, NULL};
            nbt_gradcheck(gc_pointwise, &a, (nb_tensor *[]){x, t}, 2, false); /* broadcast [2, 3] with [3] */
            nbt_gradcheck(gc_pointwise, &a, (nb_tensor *[]){t, x}, 2, false);
        }
        pw_args b = {4, (nb_reduction)r, 0, w, NULL}, l = {5, (nb_reduction)r, 0, w, pw}, l0 = {5, (nb_reduction)r, 0, NULL, NULL};
        nbt_gradcheck(gc_pointwise, &b, (nb_tensor *[]){p, q}, 2, false);
        nbt_gradcheck(gc_pointwise, &l, (nb_tensor *[]){lg, q}, 2, false);
        nbt_gradcheck(gc_pointwise, &l0, (nb_tensor *[]){lg, q}, 2, false);
    }
    nb_scope_end(sc);
}
END_TEST

/* ---- semantics and errors ---- */
START_TEST(test_defaults_and_names) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(7, NB_F32, T(6, 5), true);
    nb_tensor *t = nb_from_data(NB_I64, T(6), (int64_t[]){0, 4, -100, 2, 2, 1});
    nb_tensor *a = NBT_NOTNULL(nb_cross_entropy(x, t, NB_REDUCTION_SUM));
    nb_class_loss_options o = nb_class_loss_defaults();
    ck_assert(o.weight == NULL && o.ignore_index == -100 && o.reduction == NB_REDUCTION_MEAN && o.label_smoothing == 0);
    nb_tensor *m = NBT_NOTNULL(nb_cross_entropy_ex(x, t, NULL)); /* NULL: the defaults */
    o.reduction = NB_REDUCTION_SUM;
    nbt_assert_bitwise_equal(a, NBT_NOTNULL(nb_cross_entropy_ex(x, t, &o)));
    nbt_assert_bitwise_equal(m, NBT_NOTNULL(nb_cross_entropy(x, t, NB_REDUCTION_MEAN)));
    nbt_assert_bitwise_equal(NBT_NOTNULL(nb_nll_loss_ex(x, t, &o)), NBT_NOTNULL(nb_nll_loss(x, t, NB_REDUCTION_SUM)));
    ck_assert_str_eq(nb_tensor_grad_fn_name(a), "cross_entropy");
    nb_tensor *p = nb_sigmoid(x);
    const struct { nb_tensor *y; const char *name; } names[] = {
        {nb_nll_loss_ex(x, t, &o), "nll_loss"},
        {nb_l1_loss(x, p, NB_REDUCTION_MEAN), "l1_loss"},
        {nb_smooth_l1_loss(x, p, NB_REDUCTION_MEAN, 1.0), "smooth_l1_loss"},
        {nb_huber_loss(x, p, NB_REDUCTION_MEAN, 1.0), "huber_loss"},
        {nb_mse_loss(x, p, NB_REDUCTION_MEAN), "mse_loss"},
        {nb_binary_cross_entropy(p, p, NULL, NB_REDUCTION_MEAN), "binary_cross_entropy"},
        {nb_binary_cross_entropy_with_logits(x, p, NULL, NULL, NB_REDUCTION_MEAN), "binary_cross_entropy_with_logits"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ck_assert_msg(names[i].y != NULL, "%s: %s", names[i].name, nb_last_error());
        ck_assert_str_eq(nb_tensor_grad_fn_name(names[i].y), names[i].name);
    }
    /* smooth_l1 with beta 0 is l1 */
    nbt_assert_bitwise_equal(NBT_NOTNULL(nb_smooth_l1_loss(x, p, NB_REDUCTION_NONE, 0.0)),
                             NBT_NOTNULL(nb_l1_loss(x, p, NB_REDUCTION_NONE)));
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_weights_not_differentiable) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(8, NB_F32, T(3, 4), false), *w4 = nb_ones(NB_F32, T(4));
    nb_tensor *t = nb_zeros(NB_I64, T(3));
    NBT_OK(nb_requires_grad_(w4, true));
    nb_class_loss_options o = nb_class_loss_defaults();
    o.weight = w4;
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, t, &o), "is not differentiable with respect to argument 'weight'");
    NBT_FAILS_WITH(nb_nll_loss_ex(x, t, &o), "This input cannot have requires_grad True.");
    nb_tensor *pr = nb_sigmoid(x);
    NBT_FAILS_WITH(nb_binary_cross_entropy(pr, pr, w4, NB_REDUCTION_MEAN),
                   "binary_cross_entropy: the function is not differentiable with respect to argument 'weight'");
    NBT_FAILS_WITH(nb_binary_cross_entropy_with_logits(x, pr, NULL, w4, NB_REDUCTION_MEAN),
                   "not differentiable with respect to argument 'pos_weight'");
    /* with grad mode off they are plain constants, as in PyTorch */
    nb_no_grad_begin();
    ck_assert_ptr_nonnull(nb_cross_entropy_ex(x, t, &o));
    ck_assert_ptr_nonnull(nb_binary_cross_entropy_with_logits(x, pr, w4, w4, NB_REDUCTION_SUM));
    nb_no_grad_end();
    /* with probabilities the weight is differentiable */
    nb_tensor *q = nb_softmax(nbt_randn(9, NB_F32, T(3, 4), false), 1);
    nb_tensor *l = NBT_NOTNULL(nb_cross_entropy_ex(x, q, &o));
    NBT_OK(nb_backward(l));
    ck_assert_ptr_nonnull(nb_tensor_grad(w4));
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_bad_inputs) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_zeros(NB_F32, T(3, 5)), *t = nb_from_data(NB_I64, T(3), (int64_t[]){1, 7, 2});
    nb_class_loss_options o = nb_class_loss_defaults();
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, t, &o), "cross_entropy: Target 7 is out of bounds.");
    o.ignore_index = 7;
    ck_assert_ptr_nonnull(nb_cross_entropy_ex(x, t, &o)); /* any ignore_index, also >= C */
    o.ignore_index = -100;
    o.label_smoothing = 1.5;
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, t, &o), "label_smoothing must be between 0.0 and 1.0. Got: 1.5");
    o.label_smoothing = NAN;
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, t, &o), "label_smoothing must be between 0.0 and 1.0");
    o.label_smoothing = 0.1;
    NBT_FAILS_WITH(nb_nll_loss_ex(x, t, &o), "nll_loss: label_smoothing is an option of cross_entropy only");
    o = nb_class_loss_defaults();
    o.weight = nb_ones(NB_F32, T(4));
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, t, &o),
                   "weight tensor should be defined either for all 5 classes or no classes but got weight tensor of "
                   "shape: [4]");
    o.weight = nb_ones(NB_F64, T(5));
    NBT_FAILS_WITH(nb_nll_loss_ex(x, t, &o), "nll_loss: expected weight to have the input's dtype float32, but got float64");
    o.weight = NULL;
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, nb_zeros(NB_I64, T(3, 5)), &o),
                   "Expected floating point type for target with class probabilities, got Long");
    o.ignore_index = 0;
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, nb_zeros(NB_F32, T(3, 5)), &o),
                   "ignore_index is not supported for floating point target");
    NBT_FAILS_WITH(nb_cross_entropy_ex(x, nb_zeros(NB_F64, T(3, 5)), NULL), "same dtype");
    NBT_FAILS_WITH(nb_nll_loss_ex(x, nb_zeros(NB_F32, T(3, 5)), NULL), "expected scalar type Long but found Float");

    nb_tensor *a = nb_full(NB_F32, T(2, 3), 0.5), *b3 = nb_full(NB_F32, T(3), 0.5);
    NBT_FAILS_WITH(nb_l1_loss(a, nb_zeros(NB_F32, T(2)), NB_REDUCTION_MEAN),
                   "the size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1");
    NBT_FAILS_WITH(nb_smooth_l1_loss(a, a, NB_REDUCTION_MEAN, -1), "smooth_l1_loss does not support negative values for beta.");
    NBT_FAILS_WITH(nb_smooth_l1_loss(a, a, NB_REDUCTION_MEAN, NAN), "smooth_l1_loss does not support negative values");
    NBT_FAILS_WITH(nb_huber_loss(a, a, NB_REDUCTION_MEAN, 0), "huber_loss does not support non-positive values for delta.");
    NBT_FAILS_WITH(nb_binary_cross_entropy(a, b3, NULL, NB_REDUCTION_MEAN),
                   "Using a target size ([3]) that is different to the input size ([2, 3]) is deprecated. Please ensure "
                   "they have the same size.");
    NBT_FAILS_WITH(nb_binary_cross_entropy_with_logits(a, b3, NULL, NULL, NB_REDUCTION_MEAN),
                   "Target size ([3]) must be the same as input size ([2, 3])");
    NBT_FAILS_WITH(nb_binary_cross_entropy(nb_full(NB_F32, T(2, 3), 1.5), a, NULL, NB_REDUCTION_MEAN),
                   "all elements of input should be between 0 and 1");
    NBT_FAILS_WITH(nb_binary_cross_entropy(nb_full(NB_F32, T(2, 3), NAN), a, NULL, NB_REDUCTION_MEAN),
                   "all elements of input should be between 0 and 1");
    ck_assert_ptr_nonnull(nb_binary_cross_entropy(a, nb_full(NB_F32, T(2, 3), 1.5), NULL, NB_REDUCTION_MEAN)); /* targets are not checked */
    NBT_FAILS_WITH(nb_binary_cross_entropy(b3, b3, a, NB_REDUCTION_MEAN),
                   "output with shape [3] doesn't match the broadcast shape [2, 3]");
    NBT_FAILS_WITH(nb_binary_cross_entropy_with_logits(b3, b3, NULL, a, NB_REDUCTION_MEAN),
                   "output with shape [3] doesn't match the broadcast shape [2, 3]");
    NBT_FAILS_WITH(nb_binary_cross_entropy_with_logits(a, a, nb_zeros(NB_F32, T(2)), NULL, NB_REDUCTION_MEAN),
                   "the size of tensor a (3) must match the size of tensor b (2)");
    nb_scope_end(sc);
}
END_TEST

/* ---- determinism: parallel paths at 1 and 2 threads ---- */
static void det_losses(nb_tensor **o) {
    nb_tensor *x = nbt_randn(41, NB_F32, T(5000, 10), true), *q = nb_softmax(nbt_randn(42, NB_F32, T(5000, 10), false), 1);
    nb_tensor *t = nb_to_dtype(nb_mul_scalar(nb_sigmoid(nbt_randn(43, NB_F32, T(5000), false)), 9.99), NB_I64);
    nb_class_loss_options co = nb_class_loss_defaults();
    co.weight = nb_sigmoid(nbt_randn(44, NB_F32, T(10), false));
    co.label_smoothing = 0.1;
    nb_tensor *y = nbt_randn(45, NB_F32, T(10), true);
    nb_tensor *loss = nb_add(nb_cross_entropy_ex(x, NBT_NOTNULL(t), &co), nb_cross_entropy(x, q, NB_REDUCTION_SUM));
    loss = nb_add(loss, nb_huber_loss(x, y, NB_REDUCTION_MEAN, 0.5));
    loss = nb_add(loss, nb_binary_cross_entropy_with_logits(x, nb_sigmoid(x), NULL, nb_detach(nb_sigmoid(y)),
                                                             NB_REDUCTION_MEAN));
    o[0] = NBT_NOTNULL(loss);
    NBT_OK(nb_backward_ex(o[0], NULL, true));
    o[1] = nb_tensor_grad(x);
    o[2] = nb_tensor_grad(y);
}

START_TEST(test_thread_determinism) {
    nb_scope *sc = nb_scope_begin();
    int threads = nb_get_num_threads();
    nb_tensor *a[3], *b[3];
    NBT_OK(nb_set_num_threads(1));
    det_losses(a);
    NBT_OK(nb_set_num_threads(2));
    det_losses(b);
    NBT_OK(nb_set_num_threads(threads));
    for (int i = 0; i < 3; i++) nbt_assert_bitwise_equal(a[i], b[i]);
    nb_scope_end(sc);
}
END_TEST

int main(void) {
    Suite *s = suite_create("losses");
    TCase *ref = tcase_create("pytorch");
    tcase_set_timeout(ref, 120);
    tcase_add_test(ref, test_pytorch);
    suite_add_tcase(s, ref);
    TCase *gc = tcase_create("gradcheck");
    tcase_set_timeout(gc, 120);
    tcase_add_test(gc, test_gradcheck_class);
    tcase_add_test(gc, test_gradcheck_pointwise);
    suite_add_tcase(s, gc);
    TCase *misc = tcase_create("semantics");
    tcase_set_timeout(misc, 120);
    tcase_add_test(misc, test_defaults_and_names);
    tcase_add_test(misc, test_weights_not_differentiable);
    tcase_add_test(misc, test_bad_inputs);
    tcase_add_test(misc, test_thread_determinism);
    suite_add_tcase(s, misc);
    return nbt_run_suite(s);
}
