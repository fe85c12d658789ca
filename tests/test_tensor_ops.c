/* abs, add/sub with alpha, maximum/minimum, clamp, where, gather, stack,
 * argmax/argmin, min_dim, and sum/mean/amax/amin over several dims: values
 * and gradients against PyTorch (tests/pytorch/tensor_ops_reference.py, a
 * table of cases with the same names in the same order), gradcheck in
 * float64, errors in PyTorch's words, and the same bits at 1 and 2 threads. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define REF nbt_data_path("tensor_ops.h5")

/* ---- the cases (the twin's functions, with nabla) ---- */
static nb_tensor *abs_(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_abs(in[0]); }
static nb_tensor *add_alpha(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_add_alpha(in[0], in[1], 0.37); }
static nb_tensor *sub_alpha(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_sub_alpha(in[0], in[1], -2.5); }
static nb_tensor *add_alpha_t(nb_tensor *const *in, int n, int a) {
    (void)n, (void)a;
    return nb_add_alpha(nb_transpose(in[0], 0, 1), in[1], 3.0);
}
static nb_tensor *maximum(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_maximum(in[0], in[1]); }
static nb_tensor *minimum(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_minimum(in[0], in[1]); }
static nb_tensor *clamp_both(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp(in[0], -1.0, 1.0); }
static nb_tensor *clamp_min(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp(in[0], 0.0, INFINITY); }
static nb_tensor *clamp_max(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp(in[0], -INFINITY, 0.5); }
static nb_tensor *clamp_gt(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp(in[0], 1.0, -1.0); }
static nb_tensor *clamp_nan(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp(in[0], NAN, INFINITY); }
static nb_tensor *clamp_rand(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp(in[0], -0.3, 0.4); }
static nb_tensor *clamp_t_both(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp_tensor(in[0], in[1], in[2]); }
static nb_tensor *clamp_t_min(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp_tensor(in[0], in[1], NULL); }
static nb_tensor *clamp_t_max(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_clamp_tensor(in[0], NULL, in[1]); }
static nb_tensor *where(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_where(in[0], in[1], in[2]); }
static nb_tensor *where_t(nb_tensor *const *in, int n, int a) {
    (void)n, (void)a;
    return nb_where(in[0], nb_transpose(in[1], 0, 1), in[2]);
}
static nb_tensor *gather0(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_gather(in[0], 0, in[1]); }
static nb_tensor *gather1(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_gather(in[0], 1, in[1]); }
static nb_tensor *gather_neg(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_gather(in[0], -1, in[1]); }
static nb_tensor *gather_t(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_gather(nb_transpose(in[0], 0, 1), 1, in[1]); }
static nb_tensor *stack0(nb_tensor *const *in, int n, int a) { (void)a; return nb_stack((const nb_tensor *const *)in, n, 0); }
static nb_tensor *stack1(nb_tensor *const *in, int n, int a) { (void)a; return nb_stack((const nb_tensor *const *)in, n, 1); }
static nb_tensor *stack_last(nb_tensor *const *in, int n, int a) { (void)a; return nb_stack((const nb_tensor *const *)in, n, -1); }
static nb_tensor *stack_t(nb_tensor *const *in, int n, int a) {
    (void)n, (void)a;
    const nb_tensor *ts[2] = {nb_transpose(in[0], 0, 1), in[1]};
    return nb_stack(ts, 2, 1);
}
static nb_tensor *argmax_all(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_argmax(in[0]); }
static nb_tensor *argmin_all(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_argmin(in[0]); }
static nb_tensor *argmax1(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_argmax_dim(in[0], 1, false); }
static nb_tensor *argmin1(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_argmin_dim(in[0], 1, false); }
static nb_tensor *argmax0k(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_argmax_dim(in[0], 0, true); }
static nb_tensor *argmin_neg(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_argmin_dim(in[0], -2, false); }
static nb_tensor *argmax0(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_argmax_dim(in[0], 0, false); }
static nb_tensor *min1(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_min_dim(in[0], 1, false, NULL); }
static nb_tensor *min1_idx(nb_tensor *const *in, int n, int a) {
    (void)n, (void)a;
    nb_tensor *idx = NULL;
    nb_tensor_release(nb_min_dim(in[0], 1, false, &idx));
    return idx;
}
static nb_tensor *min0k(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_min_dim(in[0], 0, true, NULL); }
static nb_tensor *amax1(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_amax(in[0], (const int[]){1}, 1, false); }
static nb_tensor *amin1(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_amin(in[0], (const int[]){1}, 1, false); }
static nb_tensor *amax_all(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_amax(in[0], NULL, 0, false); }
static nb_tensor *amin0k(nb_tensor *const *in, int n, int a) { (void)n, (void)a; return nb_amin(in[0], (const int[]){0}, 1, true); }

/* The dims lists of the twin's dims_cases (which: the row), for each of the four reductions. */
typedef nb_tensor *(*dims_op)(const nb_tensor *, const int *, int, bool);
static nb_tensor *dims_case(dims_op op, int which, nb_tensor *x) {
    switch (which) {
    case 0: return op(x, (const int[]){0, 2}, 2, false);
    case 1: return op(x, (const int[]){0, 2}, 2, true);
    case 2: return op(x, (const int[]){-1, 1}, 2, false);
    case 3: return op(x, (const int[]){3}, 1, true);
    case 4: return op(x, (const int[]){1, 2, 3}, 3, false);
    case 5: return op(x, (const int[]){0, 1, 2, 3}, 4, false);
    case 6: return op(x, NULL, 0, false);
    case 7: return op(x, NULL, 0, true);
    case 8: return op(x, (const int[]){1, 2}, 2, false);
    case 9: return op(x, (const int[]){0}, 1, true);
    default: return op(nb_transpose(x, 0, 2), (const int[]){0, 1}, 2, false);
    }
}
static nb_tensor *sum_dims(nb_tensor *const *in, int n, int which) { (void)n; return dims_case(nb_sum_dims, which, in[0]); }
static nb_tensor *mean_dims(nb_tensor *const *in, int n, int which) { (void)n; return dims_case(nb_mean_dims, which, in[0]); }
static nb_tensor *amax_dims(nb_tensor *const *in, int n, int which) { (void)n; return dims_case(nb_amax, which, in[0]); }
static nb_tensor *amin_dims(nb_tensor *const *in, int n, int which) { (void)n; return dims_case(nb_amin, which, in[0]); }
#define DIMS_ROWS(name, fn)                                                                                 \
    {name "_02", "f", fn, 0}, {name "_02_keepdim", "f", fn, 1}, {name "_m1_1", "f", fn, 2},                    \
    {name "_3_keepdim", "f", fn, 3}, {name "_123", "f", fn, 4}, {name "_all_list", "f", fn, 5},                \
    {name "_empty_list", "f", fn, 6}, {name "_empty_list_keepdim", "f", fn, 7}, {name "_size1_dims", "f", fn, 8}, \
    {name "_0d", "f", fn, 9}, {name "_transposed", "f", fn, 10}

/* The twin's CASES, in its order. */
static const nbt_case cases[] = {
    {"abs_special", "f", abs_, 0},
    {"abs_rand", "f", abs_, 0},
    {"add_alpha_bcast", "ff", add_alpha, 0},
    {"sub_alpha_bcast", "ff", sub_alpha, 0},
    {"add_alpha_transposed", "ff", add_alpha_t, 0},
    {"maximum_ties_nan", "ff", maximum, 0},
    {"minimum_ties_nan", "ff", minimum, 0},
    {"maximum_bcast", "ff", maximum, 0},
    {"minimum_bcast", "ff", minimum, 0},
    {"clamp_both", "f", clamp_both, 0},
    {"clamp_min_only", "f", clamp_min, 0},
    {"clamp_max_only", "f", clamp_max, 0},
    {"clamp_min_gt_max", "f", clamp_gt, 0},
    {"clamp_nan_min", "f", clamp_nan, 0},
    {"clamp_rand", "f", clamp_rand, 0},
    {"clamp_tensor_both", "fff", clamp_t_both, 0},
    {"clamp_tensor_min", "ff", clamp_t_min, 0},
    {"clamp_tensor_max", "ff", clamp_t_max, 0},
    {"clamp_tensor_nan", "fff", clamp_t_both, 0},
    {"where_bcast", "iff", where, 0},
    {"where_same_shape", "iff", where, 0},
    {"where_transposed", "iff", where_t, 0},
    {"where_int64", "iii", where, 0},
    {"gather_dim0_repeats", "fi", gather0, 0},
    {"gather_dim1_smaller", "fi", gather1, 0},
    {"gather_dim_neg", "fi", gather_neg, 0},
    {"gather_transposed", "fi", gather_t, 0},
    {"gather_0d", "fi", gather0, 0},
    {"gather_int64", "ii", gather1, 0},
    {"stack_dim0", "fff", stack0, 0},
    {"stack_dim1", "fff", stack1, 0},
    {"stack_dim_last", "ff", stack_last, 0},
    {"stack_0d", "ff", stack0, 0},
    {"stack_transposed", "ff", stack_t, 0},
    {"stack_int64", "ii", stack1, 0},
    {"stack_20", "ffffffffffffffffffff", stack1, 0},
    {"argmax_all", "c", argmax_all, 0},
    {"argmin_all", "c", argmin_all, 0},
    {"argmax_dim1", "c", argmax1, 0},
    {"argmin_dim1", "c", argmin1, 0},
    {"argmax_dim0_keepdim", "c", argmax0k, 0},
    {"argmin_dim_neg", "c", argmin_neg, 0},
    {"argmax_0d", "c", argmax0, 0},
    {"argmax_rand_3d", "c", argmax1, 0},
    {"min_dim1", "f", min1, 0},
    {"min_dim1_indices", "c", min1_idx, 0},
    {"min_dim0_keepdim", "f", min0k, 0},
    {"amax_ties_dim1", "f", amax1, 0},
    {"amin_ties_dim1", "f", amin1, 0},
    {"amax_ties_all", "f", amax_all, 0},
    {"amax_nan_all", "f", amax_all, 0},
    {"amin_ties_dim0_keepdim", "f", amin0k, 0},
    DIMS_ROWS("sum_dims", sum_dims),
    DIMS_ROWS("mean_dims", mean_dims),
    DIMS_ROWS("amax", amax_dims),
    DIMS_ROWS("amin", amin_dims),
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_cases_match_the_twin) { nbt_assert_twin_cases(REF, cases, NCASES); }
END_TEST

START_TEST(test_vs_torch_float32) {
    for (int k = 0; k < NCASES; k++) nbt_run_twin_case(REF, &cases[k], NB_F32, 1e-5);
}
END_TEST

START_TEST(test_vs_torch_float64) {
    for (int k = 0; k < NCASES; k++) nbt_run_twin_case(REF, &cases[k], NB_F64, 1e-12);
}
END_TEST

/* ---- gradcheck in float64 (random inputs: no ties, no value on a clamp bound) ---- */
typedef struct {
    int op;
    const nb_tensor *aux; /* an int64 condition or index */
} gc_args;
enum { G_ABS, G_ADDA, G_SUBA, G_MAX, G_MIN, G_CLAMP, G_CLAMP_T, G_CLAMP_T_MIN, G_CLAMP_T_MAX, G_WHERE, G_GATHER,
       G_STACK, G_SUM_DIMS, G_MEAN_DIMS, G_AMAX, G_AMIN, G_MIN_DIM };

static nb_tensor *gc_fn(nb_tensor *const *in, int n, void *ctx) {
    const gc_args *a = ctx;
    switch (a->op) {
    case G_ABS: return nb_abs(in[0]);
    case G_ADDA: return nb_add_alpha(in[0], in[1], -0.7);
    case G_SUBA: return nb_sub_alpha(in[0], in[1], 1.9);
    case G_MAX: return nb_maximum(in[0], in[1]);
    case G_MIN: return nb_minimum(in[0], in[1]);
    case G_CLAMP: return nb_clamp(in[0], -0.5, 0.6);
    case G_CLAMP_T: return nb_clamp_tensor(in[0], in[1], in[2]); /* x broadcast too: PyTorch 1.13 cannot */
    case G_CLAMP_T_MIN: return nb_clamp_tensor(in[0], in[1], NULL);
    case G_CLAMP_T_MAX: return nb_clamp_tensor(in[0], NULL, in[1]);
    case G_WHERE: return nb_where(a->aux, in[0], in[1]);
    case G_GATHER: return nb_gather(in[0], 1, a->aux);
    case G_STACK: return nb_stack((const nb_tensor *const *)in, n, 1);
    case G_SUM_DIMS: return nb_sum_dims(in[0], (const int[]){2, 0}, 2, true);
    case G_MEAN_DIMS: return nb_mean_dims(in[0], (const int[]){1, -1}, 2, false);
    case G_AMAX: return nb_amax(in[0], (const int[]){0, 2}, 2, false);
    case G_AMIN: return nb_amin(in[0], NULL, 0, true);
    default: return nb_min_dim(in[0], -1, false, NULL);
    }
}

static void gradcheck(int op, const nb_tensor *aux, nb_tensor *const *in, int n) {
    gc_args a = {op, aux};
    nbt_gradcheck(gc_fn, &a, in, n, false);
}

START_TEST(test_gradcheck) {
    nb_tensor *x = nbt_randn(1, NB_F64, NB_SHAPE(3, 4, 5), true);
    nb_tensor *r = nbt_randn(2, NB_F64, NB_SHAPE(4, 1), true);
    nb_tensor *c = nbt_randn(3, NB_F64, NB_SHAPE(5), true);
    nb_tensor *m = nbt_randn(4, NB_F64, NB_SHAPE(3, 4, 5), true);
    gradcheck(G_ABS, NULL, &x, 1);
    gradcheck(G_ADDA, NULL, (nb_tensor *[]){x, r}, 2);
    gradcheck(G_SUBA, NULL, (nb_tensor *[]){c, x}, 2);
    gradcheck(G_MAX, NULL, (nb_tensor *[]){x, r}, 2);
    gradcheck(G_MIN, NULL, (nb_tensor *[]){c, x}, 2);
    gradcheck(G_CLAMP, NULL, &x, 1);
    nb_tensor *lo = NBT_NOTNULL(nb_add_scalar(r, -0.5)), *hi = NBT_NOTNULL(nb_add_scalar(c, 0.5));
    nb_tensor *lo_leaf = NBT_NOTNULL(nb_detach(lo)), *hi_leaf = NBT_NOTNULL(nb_detach(hi));
    NBT_OK(nb_requires_grad_(lo_leaf, true));
    NBT_OK(nb_requires_grad_(hi_leaf, true));
    gradcheck(G_CLAMP_T, NULL, (nb_tensor *[]){c, lo_leaf, hi_leaf}, 3);
    gradcheck(G_CLAMP_T_MIN, NULL, (nb_tensor *[]){x, lo_leaf}, 2);
    gradcheck(G_CLAMP_T_MAX, NULL, (nb_tensor *[]){r, hi_leaf}, 2);
    nb_tensor *cond = NBT_NOTNULL(nb_from_data(NB_I64, NB_SHAPE(4, 1), (const int64_t[]){1, 0, 0, 3}));
    gradcheck(G_WHERE, cond, (nb_tensor *[]){c, m}, 2);
    nb_tensor *idx = NBT_NOTNULL(nb_from_data(NB_I64, NB_SHAPE(2, 6, 1), (const int64_t[]){0, 3, 3, 1, 2, 3, 0, 0, 0, 1, 1, 2}));
    gradcheck(G_GATHER, idx, &x, 1);
    nb_tensor *x2 = nbt_randn(5, NB_F64, NB_SHAPE(3, 4, 5), true);
    gradcheck(G_STACK, NULL, (nb_tensor *[]){x, m, x2}, 3);
    gradcheck(G_SUM_DIMS, NULL, &x, 1);
    gradcheck(G_MEAN_DIMS, NULL, &x, 1);
    gradcheck(G_AMAX, NULL, &m, 1);
    gradcheck(G_AMIN, NULL, &m, 1);
    gradcheck(G_MIN_DIM, NULL, &x, 1);
    nb_tensor *all[] = {x, r, c, m, lo, hi, lo_leaf, hi_leaf, cond, idx, x2};
    for (int i = 0; i < 11; i++) nb_tensor_release(all[i]);
}
END_TEST

/* ---- identities and edge cases ---- */
START_TEST(test_stack_is_cat_of_unsqueezed) {
    /* stack of 40 tensors (more than a node's inputs: grouped) equals cat of the unsqueezed, with the same gradient */
    nb_scope *sc = nb_scope_begin();
    nb_tensor *ts[40], *us[40];
    for (int i = 0; i < 40; i++) {
        ts[i] = nbt_randn(100 + (uint64_t)i, NB_F64, NB_SHAPE(2, 3), true);
        us[i] = NBT_NOTNULL(nb_unsqueeze(ts[i], 1));
    }
    nb_tensor *s = NBT_NOTNULL(nb_stack((const nb_tensor *const *)ts, 40, 1));
    nb_tensor *c = NBT_NOTNULL(nb_cat((const nb_tensor *const *)us, 40, 1));
    nbt_assert_bitwise_equal(s, c);
    nb_tensor *w = nbt_randn(7, NB_F64, NB_SHAPE(2, 40, 3), false);
    NBT_OK(nb_backward(nb_sum(nb_mul(s, w))));
    nb_tensor *w9 = NBT_NOTNULL(nb_select(w, 1, 9));
    nbt_assert_bitwise_equal(nb_tensor_grad(ts[9]), w9);
    ck_assert_str_eq(nb_tensor_grad_fn_name(s), "cat"); /* a cat of grouped stacks */
    nb_tensor *s2 = NBT_NOTNULL(nb_stack((const nb_tensor *const *)ts, 3, 0));
    ck_assert_str_eq(nb_tensor_grad_fn_name(s2), "stack");
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_gather_index_is_copied) {
    /* writing to the index after the forward must not change (or break) backward */
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(3, NB_F32, NB_SHAPE(2, 3), true);
    nb_tensor *idx = NBT_NOTNULL(nb_from_data(NB_I64, NB_SHAPE(2, 2), (const int64_t[]){2, 2, 0, 1}));
    nb_tensor *y = NBT_NOTNULL(nb_gather(x, 1, idx));
    NBT_OK(nb_tensor_fill_(idx, 1e6));
    NBT_OK(nb_backward(nb_sum(y)));
    nbt_assert_values(nb_tensor_grad(x), (double[]){0, 0, 2, 1, 1, 0}, 6, 0, 0);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_argmax_results_are_plain_int64) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nbt_randn(5, NB_F32, NB_SHAPE(3, 4), true);
    nb_tensor *a = NBT_NOTNULL(nb_argmax_dim(x, 1, false)), *b = NBT_NOTNULL(nb_argmin(x));
    ck_assert(!nb_tensor_requires_grad(a) && !nb_tensor_requires_grad(b));
    ck_assert_int_eq(nb_tensor_dtype(a), NB_I64);
    /* argmax of x is the index max_dim returns */
    nb_tensor *idx = NULL;
    NBT_NOTNULL(nb_max_dim(x, 1, false, &idx));
    nb_scope_keep(idx);
    nbt_assert_bitwise_equal(a, idx);
    nb_tensor_release(idx);
    nb_scope_end(sc);
}
END_TEST

START_TEST(test_errors) {
    nb_scope *sc = nb_scope_begin();
    nb_tensor *f = NBT_NOTNULL(nb_ones(NB_F32, NB_SHAPE(2, 3))), *d = NBT_NOTNULL(nb_ones(NB_F64, NB_SHAPE(2, 3)));
    nb_tensor *l = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(2, 3))), *f4 = NBT_NOTNULL(nb_ones(NB_F32, NB_SHAPE(4)));
    nb_tensor *e = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 0)));
    NBT_FAILS_WITH(nb_maximum(f, f4), "maximum: the size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1");
    NBT_FAILS_WITH(nb_minimum(f, d), "minimum: expected both operands to have the same dtype, but got float32 and float64");
    NBT_FAILS_WITH(nb_maximum(l, l), "maximum: expected 'input' to be float32 or float64, but got int64");
    NBT_FAILS_WITH(nb_clamp_tensor(f, NULL, NULL), "clamp: At least one of 'min' or 'max' must not be None");
    NBT_FAILS_WITH(nb_clamp_tensor(f, f4, NULL), "clamp: the size of tensor a (3) must match the size of tensor b (4)");
    NBT_FAILS_WITH(nb_clamp(l, 0, 1), "clamp: expected 'input' to be float32 or float64, but got int64");
    NBT_FAILS_WITH(nb_where(f, f, f), "where: expected condition to be a boolean tensor (in nabla an int64 tensor, "
                                      "nonzero meaning true), but got a tensor with dtype float32");
    NBT_FAILS_WITH(nb_where(l, f, d), "where: expected both operands to have the same dtype, but got float32 and float64");
    NBT_FAILS_WITH(nb_where(l, f4, f), "where: the size of tensor a (3) must match the size of tensor b (4)");
    nb_tensor *idx = NBT_NOTNULL(nb_from_data(NB_I64, NB_SHAPE(2, 2), (const int64_t[]){0, 3, 1, 0}));
    nb_tensor *neg = NBT_NOTNULL(nb_from_data(NB_I64, NB_SHAPE(2, 2), (const int64_t[]){0, -1, 1, 0}));
    nb_tensor *wide = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(2, 4)));
    nb_tensor *flat = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(2)));
    nb_tensor *fidx = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(2, 2)));
    NBT_FAILS_WITH(nb_gather(f, 1, idx), "gather: index 3 is out of bounds for dimension 1 with size 3");
    NBT_FAILS_WITH(nb_gather(f, 1, neg), "gather: index -1 is out of bounds for dimension 1 with size 3");
    NBT_FAILS_WITH(nb_gather(f, 0, wide),
                   "gather: Size does not match at dimension 1 expected index [2, 4] to be smaller than self [2, 3] "
                   "apart from dimension 0");
    NBT_FAILS_WITH(nb_gather(f, 1, flat), "gather: Index tensor must have the same number of dimensions as input tensor");
    NBT_FAILS_WITH(nb_gather(f, 1, fidx), "gather: Expected dtype int64 for index, but got float32");
    NBT_FAILS_WITH(nb_gather(f, 2, idx), "gather: dimension out of range (expected to be in range of [-2, 1], but got 2)");
    const nb_tensor *two[2] = {f, f4}, *mixed[2] = {f, d};
    NBT_FAILS_WITH(nb_stack(two, 0, 0), "stack: expects a non-empty TensorList");
    NBT_FAILS_WITH(nb_stack(two, 2, 0), "stack: expects each tensor to be equal size, but got [2, 3] at entry 0 and [4] at entry 1");
    NBT_FAILS_WITH(nb_stack(mixed, 2, 0), "stack: expected all tensors to have dtype float32, but got float64 for tensor number 1");
    NBT_FAILS_WITH(nb_stack(mixed, 1, 3), "stack: dimension out of range (expected to be in range of [-3, 2], but got 3)");
    NBT_FAILS_WITH(nb_argmax(e), "argmax: Expected reduction dim to be specified for input.numel() == 0.");
    NBT_FAILS_WITH(nb_argmin_dim(e, 1, false), "argmin: Expected reduction dim 1 to have non-zero size.");
    NBT_FAILS_WITH(nb_min_dim(e, -1, false, NULL), "min_dim: Expected reduction dim 1 to have non-zero size.");
    NBT_FAILS_WITH(nb_argmax_dim(l, 0, false), "argmax: expected 'a' to be float32 or float64, but got int64");
    NBT_FAILS_WITH(nb_sum_dims(f, (const int[]){0, -2}, 2, false), "sum_dims: dim 0 appears multiple times in the list of dims");
    NBT_FAILS_WITH(nb_mean_dims(f, (const int[]){0, 0, 5}, 3, false),
                   "mean_dims: dimension out of range (expected to be in range of [-2, 1], but got 5)");
    NBT_FAILS_WITH(nb_sum_dims(f, NULL, 1, false), "sum_dims: expected a list of ndims >= 0 dims");
    NBT_FAILS_WITH(nb_amax(e, NULL, 0, false), "amax: Expected reduction dim to be specified for input.numel() == 0.");
    NBT_FAILS_WITH(nb_amin(e, (const int[]){-1}, 1, false), "amin: Expected reduction dim -1 to have non-zero size.");
    /* an empty input passes along a non-empty dim, as in PyTorch: an empty result */
    nb_tensor *e2 = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(0, 4)));
    nbt_assert_shape(NBT_NOTNULL(nb_amax(e, (const int[]){0}, 1, false)), NB_SHAPE(0));
    nbt_assert_shape(NBT_NOTNULL(nb_argmax_dim(e2, 1, false)), NB_SHAPE(0));
    nbt_assert_shape(NBT_NOTNULL(nb_argmin_dim(e2, 1, true)), NB_SHAPE(0, 1));
    nb_scope_end(sc);
}
END_TEST

/* ---- determinism: the same bits at 1 and 2 threads, above the parallel threshold ---- */
START_TEST(test_thread_determinism) {
    int saved = nb_get_num_threads();
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *x = nbt_randn(21, dt, NB_SHAPE(64, 33, 40), true);
        nb_tensor *r = nbt_randn(22, dt, NB_SHAPE(33, 1), true);
        int64_t *cd = malloc(64 * 33 * 40 * sizeof *cd), *id = malloc(64 * 20 * 40 * sizeof *id);
        for (int64_t i = 0; i < 64 * 33 * 40; i++) cd[i] = (i * 7919) % 3;
        for (int64_t i = 0; i < 64 * 20 * 40; i++) id[i] = (i * 104729) % 33;
        nb_tensor *cond = NBT_NOTNULL(nb_from_data(NB_I64, NB_SHAPE(64, 33, 40), cd));
        nb_tensor *idx = NBT_NOTNULL(nb_from_data(NB_I64, NB_SHAPE(64, 20, 40), id));
        free(cd);
        free(id);
        enum { NRES = 11 };
        nb_tensor *res[2][NRES];
        for (int th = 0; th < 2; th++) {
            NBT_OK(nb_set_num_threads(th + 1));
            nb_scope *sc = nb_scope_begin();
            nb_tensor *xt = nb_transpose(x, 0, 2);
            nb_tensor *parts[] = {
                nb_maximum(x, r), nb_clamp_tensor(x, r, NULL), nb_where(cond, x, r), nb_gather(x, 1, idx),
                nb_sum_dims(x, (const int[]){0, 2}, 2, false), nb_amax(xt, (const int[]){1}, 1, true),
                nb_mean_dims(xt, (const int[]){0, 2}, 2, true), nb_abs(x), nb_clamp(x, -0.1, 0.2),
            };
            nb_tensor *flat[9];
            for (int i = 0; i < 9; i++) flat[i] = nb_reshape(parts[i], NB_SHAPE(-1));
            nb_tensor *all = NBT_NOTNULL(nb_cat((const nb_tensor *const *)flat, 9, 0));
            NBT_OK(nb_backward(nb_sum(nb_mul(all, all))));
            res[th][0] = nb_scope_keep(all);
            res[th][1] = nb_tensor_retain(nb_tensor_grad(x));
            res[th][2] = nb_tensor_retain(nb_tensor_grad(r));
            res[th][3] = nb_scope_keep(nb_argmax_dim(xt, 1, false));
            res[th][4] = nb_scope_keep(nb_argmin(x));
            res[th][5] = nb_scope_keep(nb_stack((const nb_tensor *const *)parts, 1, 2));
            res[th][6] = nb_scope_keep(nb_min_dim(x, 0, false, NULL));
            res[th][7] = nb_scope_keep(nb_add_alpha(x, r, 0.3));
            res[th][8] = nb_scope_keep(nb_amin(x, NULL, 0, false));
            res[th][9] = nb_scope_keep(nb_minimum(xt, xt));
            res[th][10] = nb_scope_keep(nb_sum_dims(xt, (const int[]){2}, 1, false));
            nb_zero_grad(x);
            nb_zero_grad(r);
            nb_scope_end(sc);
        }
        for (int j = 0; j < NRES; j++) {
            ck_assert_msg(res[0][j] && res[1][j], "result %d missing", j);
            nbt_assert_bitwise_equal(res[0][j], res[1][j]);
            nb_tensor_release(res[0][j]);
            nb_tensor_release(res[1][j]);
        }
        nb_tensor *rel[] = {x, r, cond, idx};
        for (int i = 0; i < 4; i++) nb_tensor_release(rel[i]);
    }
    NBT_OK(nb_set_num_threads(saved));
}
END_TEST

int main(void) {
    Suite *s = suite_create("tensor_ops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_cases_match_the_twin);
    tcase_add_test(tc, test_vs_torch_float32);
    tcase_add_test(tc, test_vs_torch_float64);
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_stack_is_cat_of_unsqueezed);
    tcase_add_test(tc, test_gather_index_is_copied);
    tcase_add_test(tc, test_argmax_results_are_plain_int64);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_thread_determinism);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
