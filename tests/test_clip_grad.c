/* clip_grad_norm_ and clip_grad_value_ against PyTorch
 * (tests/pytorch/clip_grad_reference.py): the total norm and every grad after
 * the call, float32, float64 and mixed, every norm type, grads missing or
 * non-finite, errors leaving the grads unchanged; plus the argument errors. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>

#include "nabla/clip_grad.h"

#define NP 3

static char ref_file[4096];
static const char *ref(void) {
    if (!ref_file[0]) snprintf(ref_file, sizeof ref_file, "%s", nbt_data_path("clip_grad.h5"));
    return ref_file;
}

static bool get(int c, const char *key, double *v) {
    char name[128];
    snprintf(name, sizeof name, "case/%d/%s", c, key);
    return nbt_h5_read_scalar(ref(), name, v);
}

/* float64 agrees to the last bits; float32 norms are accumulated in another
 * order than PyTorch's vectorized kernels, so they (and the grads scaled by
 * them) may differ by an ulp or two. */
START_TEST(test_pytorch) {
    const int c = _i;
    double fn = 0, err = 0, max_norm = 0, norm_type = 2, nonfinite = 0, clip = 0, want_total = 0;
    ck_assert(get(c, "fn", &fn) && get(c, "error", &err));
    get(c, "max_norm", &max_norm), get(c, "norm_type", &norm_type), get(c, "error_if_nonfinite", &nonfinite);
    get(c, "clip_value", &clip), get(c, "total_norm", &want_total);
    nb_tensor *params[NP];
    bool any_f32 = false;
    for (int k = 0; k < NP; k++) {
        char name[64];
        double f32 = 0;
        snprintf(name, sizeof name, "p%d/f32", k);
        ck_assert(get(c, name, &f32));
        any_f32 |= f32 != 0;
        const nb_dtype dtype = f32 != 0 ? NB_F32 : NB_F64;
        snprintf(name, sizeof name, "case/%d/p%d/grad", c, k);
        nb_tensor *g = nbt_h5_exists(ref(), name) ? nbt_h5_read(ref(), name, dtype) : NULL;
        params[k] = g ? NBT_NOTNULL(nb_zeros(dtype, nb_tensor_ndim(g), nb_tensor_shape(g)))
                      : NBT_NOTNULL(nb_zeros(dtype, NB_SHAPE(1))); /* no grad: its shape does not matter */
        NBT_OK(nb_requires_grad_(params[k], true));
        if (g) NBT_OK(nb_backward_ex(params[k], g, false));
        nb_tensor_release(g);
    }
    const double rtol = any_f32 ? 4e-7 : 1e-14;
    double total = -1;
    nb_status st = fn == 0 ? nb_clip_grad_norm_(params, NP, max_norm, norm_type, nonfinite != 0, &total)
                           : nb_clip_grad_value_(params, NP, clip);
    ck_assert_msg((st != NB_OK) == (err != 0), "case %d: status %d (%s), PyTorch error %g", c, st, nb_last_error(), err);
    if (st == NB_OK && fn == 0) {
        nb_tensor *t = NBT_NOTNULL(nb_scalar(NB_F64, total));
        nbt_assert_values(t, &want_total, 1, 0, rtol);
        nb_tensor_release(t);
    }
    for (int k = 0; k < NP; k++) {
        char name[64];
        snprintf(name, sizeof name, "case/%d/p%d/after", c, k);
        if (nbt_h5_exists(ref(), name)) {
            nb_tensor *want = nbt_h5_read(ref(), name, NB_F64);
            nbt_assert_values(nb_tensor_grad(params[k]), nb_tensor_f64(want), nb_tensor_numel(want), 0, rtol);
            nb_tensor_release(want);
        } else {
            ck_assert_ptr_null(nb_tensor_grad(params[k]));
        }
        nb_tensor_release(params[k]);
    }
}
END_TEST

START_TEST(test_errors) {
    nb_tensor *p = nbt_randn(1, NB_F32, NB_SHAPE(3), true);
    double total = 5;
    NBT_STATUS_FAILS_WITH(nb_clip_grad_norm_(NULL, 1, 1, 2, false, &total), "clip_grad_norm_: argument 'parameters' is NULL");
    NBT_STATUS_FAILS_WITH(nb_clip_grad_norm_((nb_tensor *[]){p, NULL}, 2, 1, 2, false, NULL), "argument 'parameters[1]' is NULL");
    NBT_STATUS_FAILS_WITH(nb_clip_grad_value_(&p, -1, 1), "clip_grad_value_: expected n >= 0 parameters, but got -1");
    NBT_OK(nb_clip_grad_norm_(NULL, 0, 1, 2, false, &total)); /* nothing to clip: total norm 0 */
    ck_assert(total == 0);
    nb_tensor *e = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(0)));
    NBT_OK(nb_requires_grad_(e, true));
    nb_tensor *ge = NBT_NOTNULL(nb_zeros(NB_F32, NB_SHAPE(0)));
    NBT_OK(nb_backward_ex(e, ge, false));
    NBT_STATUS_FAILS_WITH(nb_clip_grad_norm_(&e, 1, 1, INFINITY, false, NULL), "max(): Expected reduction dim to be specified for input.numel() == 0");
    NBT_OK(nb_clip_grad_norm_(&e, 1, 1, 2, false, &total));
    ck_assert(total == 0);
    nb_tensor *r[] = {p, e, ge};
    for (int i = 0; i < 3; i++) nb_tensor_release(r[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("clip_grad");
    TCase *tc = tcase_create("clip_grad");
    tcase_add_loop_test(tc, test_pytorch, 0, nbt_h5_loop_count(ref(), "ncases"));
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
