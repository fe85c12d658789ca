/* Optimizers and lr schedulers against PyTorch (tests/pytorch/optim_reference.py):
 * every configuration replays PyTorch's gradients and compares the parameters
 * after each step and the final state; schedulers compare each epoch's lr.
 * Plus option/parameter validation, skipping parameters without grad,
 * checkpoint-style state save/restore, and thread-count determinism. */
#include "testutil.h"

#include <hdf5.h>
#include <stdio.h>

#include "nabla/optim.h"

#define NP 3 /* parameters in the reference file */

static char ref_file[4096];
static const char *ref(void) {
    if (!ref_file[0]) snprintf(ref_file, sizeof ref_file, "%s", nbt_data_path("optim.h5"));
    return ref_file;
}

static double must_scalar(const char *name) {
    double v = 0;
    ck_assert_msg(nbt_h5_read_scalar(ref(), name, &v), "%s: no scalar %s", ref(), name);
    return v;
}

/* Reads cfg/<c>/<key> into *v if the configuration sets it. */
static bool cfg_get(int c, const char *key, double *v) {
    char name[128];
    snprintf(name, sizeof name, "cfg/%d/%s", c, key);
    return nbt_h5_read_scalar(ref(), name, v);
}

/* Compare t with the reference dataset name, element by element. */
static void assert_matches(const nb_tensor *t, const char *name, double atol, double rtol) {
    nb_tensor *e = nbt_h5_read(ref(), name, NB_F64);
    int64_t n = nb_tensor_numel(e);
    ck_assert_msg(n == nb_tensor_numel(t), "%s: %lld elements, expected %lld", name, (long long)nb_tensor_numel(t),
                  (long long)n);
    nbt_assert_values(t, nb_tensor_f64(e), n, atol, rtol);
    nb_tensor_release(e);
}

/* The optimizer of configuration c: our defaults plus the options the file sets
 * (so the defaults themselves are checked against PyTorch's). */
static nb_optimizer *make_cfg_optimizer(int c, nb_tensor **params) {
    double v;
    int kind = (int)must_scalar(({
        static char k[64];
        snprintf(k, sizeof k, "cfg/%d/kind", c);
        k;
    }));
#define SET(field, key) \
    if (cfg_get(c, key, &v)) o.field = v
#define SETB(field, key) \
    if (cfg_get(c, key, &v)) o.field = v != 0
    switch (kind) {
    case 0: {
        nb_sgd_options o = nb_sgd_defaults();
        SET(lr, "lr"); SET(momentum, "momentum"); SET(dampening, "dampening"); SET(weight_decay, "weight_decay");
        SETB(nesterov, "nesterov"); SETB(maximize, "maximize");
        return nb_sgd(params, NP, &o);
    }
    case 1: case 2: {
        nb_adam_options o = kind == 1 ? nb_adam_defaults() : nb_adamw_defaults();
        SET(lr, "lr"); SET(beta1, "beta1"); SET(beta2, "beta2"); SET(eps, "eps"); SET(weight_decay, "weight_decay");
        SETB(amsgrad, "amsgrad"); SETB(maximize, "maximize");
        return kind == 1 ? nb_adam(params, NP, &o) : nb_adamw(params, NP, &o);
    }
    case 3: {
        nb_adadelta_options o = nb_adadelta_defaults();
        SET(lr, "lr"); SET(rho, "rho"); SET(eps, "eps"); SET(weight_decay, "weight_decay"); SETB(maximize, "maximize");
        return nb_adadelta(params, NP, &o);
    }
    case 4: {
        nb_rmsprop_options o = nb_rmsprop_defaults();
        SET(lr, "lr"); SET(alpha, "alpha"); SET(eps, "eps"); SET(weight_decay, "weight_decay");
        SET(momentum, "momentum"); SETB(centered, "centered"); SETB(maximize, "maximize");
        return nb_rmsprop(params, NP, &o);
    }
    }
#undef SET
#undef SETB
    ck_abort_msg("cfg %d: unknown kind %d", c, kind);
    return NULL;
}

/* Set p.grad to the reference gradient of step k (a backward on the leaf itself
 * with an explicit grad_output makes p.grad exactly that tensor). */
static void set_grad(nb_tensor *p, int k, int i) {
    char name[64];
    snprintf(name, sizeof name, "grads/s%d/p%d", k, i);
    nb_tensor *g = nbt_h5_read(ref(), name, nb_tensor_dtype(p));
    nb_zero_grad(p);
    NBT_OK(nb_backward_ex(p, g, false));
    nb_tensor_release(g);
}

static void load_params(nb_tensor **params, nb_dtype dtype) {
    for (int i = 0; i < NP; i++) {
        char name[32];
        snprintf(name, sizeof name, "init/p%d", i);
        params[i] = nbt_h5_read(ref(), name, dtype);
        NBT_OK(nb_requires_grad_(params[i], true));
    }
}

/* Steps [k0, k1) of configuration c, comparing parameters after each. */
static void run_steps(int c, nb_optimizer *opt, nb_tensor **params, int k0, int k1, double atol, double rtol) {
    double skip_p = -1, skip_k = -1;
    cfg_get(c, "skip_param", &skip_p);
    cfg_get(c, "skip_step", &skip_k);
    for (int k = k0; k < k1; k++) {
        nb_optimizer_zero_grad(opt);
        for (int i = 0; i < NP; i++)
            if (!(k == (int)skip_k && i == (int)skip_p)) set_grad(params[i], k, i);
        NBT_OK(nb_optimizer_step(opt));
        for (int i = 0; i < NP; i++) {
            char name[64];
            snprintf(name, sizeof name, "cfg/%d/after/s%d/p%d", c, k, i);
            assert_matches(params[i], name, atol, rtol);
        }
    }
}

/* Not bitwise: PyTorch's vectorized add/addcmul fuse multiply-adds (FMA) while
 * its scalar tails do not, so results differ from ours by an ulp or so;
 * float64 agrees to ~1e-15 relative, float32 to ~1 ulp (6e-8). */
static void tolerances(int c, nb_dtype *dtype, double *atol, double *rtol) {
    double f32 = 0;
    cfg_get(c, "f32", &f32);
    *dtype = f32 != 0 ? NB_F32 : NB_F64;
    *atol = f32 != 0 ? 1e-7 : 1e-15;
    *rtol = f32 != 0 ? 2e-6 : 1e-12;
}

/* Every configuration: 5 steps, parameters after each, and the final state. */
START_TEST(test_pytorch_trajectory) {
    int c = _i;
    nb_dtype dtype;
    double atol, rtol;
    tolerances(c, &dtype, &atol, &rtol);
    nb_tensor *params[NP];
    load_params(params, dtype);
    nb_optimizer *opt = make_cfg_optimizer(c, params);
    ck_assert_msg(opt, "cfg %d: %s", c, nb_last_error());
    int nsteps = (int)must_scalar("nsteps");
    run_steps(c, opt, params, 0, nsteps, atol, rtol);

    char key[64];
    snprintf(key, sizeof key, "cfg/%d/nstate", c);
    int64_t count = nb_optimizer_state_count(opt);
    ck_assert_int_eq(count, (int64_t)must_scalar(key));
    for (int64_t k = 0; k < count; k++) {
        char name[64], path[128];
        nb_tensor *t = nb_optimizer_state_entry(opt, k, name, sizeof name);
        ck_assert_ptr_nonnull(t);
        snprintf(path, sizeof path, "cfg/%d/state/%s", c, name);
        ck_assert_msg(nbt_h5_exists(ref(), path), "cfg %d: PyTorch has no state %s", c, name);
        assert_matches(t, path, atol, rtol);
    }
    nb_optimizer_free(opt);
    for (int i = 0; i < NP; i++) nb_tensor_release(params[i]);
}
END_TEST

/* Checkpoint round trip: save the state after 3 steps, restore it into a fresh
 * optimizer over copies of the parameters, and the last 2 steps still match
 * PyTorch's uninterrupted run. */
START_TEST(test_state_restore) {
    int ncfg = (int)must_scalar("ncfg");
    for (int c = 0; c < ncfg; c++) {
        nb_dtype dtype;
        double atol, rtol;
        tolerances(c, &dtype, &atol, &rtol);
        nb_tensor *params[NP], *copies[NP];
        load_params(params, dtype);
        nb_optimizer *opt = make_cfg_optimizer(c, params);
        run_steps(c, opt, params, 0, 3, atol, rtol);
        for (int i = 0; i < NP; i++) {
            copies[i] = NBT_NOTNULL(nb_detach(params[i]));
            nb_tensor *d = NBT_NOTNULL(nb_clone(copies[i]));
            nb_tensor_release(copies[i]);
            copies[i] = d;
            NBT_OK(nb_requires_grad_(copies[i], true));
        }
        nb_optimizer *fresh = make_cfg_optimizer(c, copies);
        NBT_OK(nb_optimizer_set_lr(fresh, nb_optimizer_get_lr(opt)));
        ck_assert_int_eq(nb_optimizer_state_count(fresh), 0);
        for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
            char name[64];
            nb_tensor *t = nb_optimizer_state_entry(opt, k, name, sizeof name);
            NBT_OK(nb_optimizer_load_state(fresh, name, t));
        }
        ck_assert_int_eq(nb_optimizer_state_count(fresh), nb_optimizer_state_count(opt));
        nb_optimizer_free(opt);
        run_steps(c, fresh, copies, 3, (int)must_scalar("nsteps"), atol, rtol);
        nb_optimizer_free(fresh);
        for (int i = 0; i < NP; i++) {
            nb_tensor_release(params[i]);
            nb_tensor_release(copies[i]);
        }
    }
}
END_TEST

START_TEST(test_load_state_errors) {
    nb_tensor *p = nbt_randn(1, NB_F64, NB_SHAPE(2, 3), true);
    nb_optimizer *opt = nb_adam(&p, 1, NULL);
    ck_assert_ptr_nonnull(opt);
    nb_tensor *z = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(3, 2)));
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "exp_avg", z), "expected a name like 'state.<index>.<key>'");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "state.1.exp_avg", z), "parameter index 1");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "state.0.momentum_buffer", z), "Adam: load_state: this optimizer has no state 'momentum_buffer'");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "state.0.exp_avg", z), "'state.0.exp_avg' expects shape [2, 3], but got [3, 2]");
    ck_assert_int_eq(nb_optimizer_state_count(opt), 0); /* a failed load creates no state */
    NBT_FAILS_WITH(nb_optimizer_state_entry(opt, 0, NULL, 0), "index 0 is out of range for 0 state entries");
    nb_tensor *one = NBT_NOTNULL(nb_scalar(NB_F64, 7));
    NBT_OK(nb_optimizer_load_state(opt, "state.0.step", one));
    ck_assert_int_eq(nb_optimizer_state_count(opt), 3);
    char name[32];
    double v;
    NBT_OK(nb_tensor_item(nb_optimizer_state_entry(opt, 0, name, sizeof name), &v));
    ck_assert_str_eq(name, "state.0.step");
    ck_assert(v == 7);
    nb_optimizer_free(opt);
    nb_tensor *r[] = {p, z, one};
    for (int i = 0; i < 3; i++) nb_tensor_release(r[i]);
}
END_TEST

START_TEST(test_bad_options) {
    nb_tensor *p = nbt_randn(1, NB_F64, NB_SHAPE(4), true);
    nb_sgd_options s = nb_sgd_defaults();
    NBT_FAILS_WITH(nb_sgd(&p, 1, &s), "SGD: parameter group didn't specify a value of required optimization parameter lr");
    NBT_FAILS_WITH(nb_sgd(&p, 1, NULL), "required optimization parameter lr");
    s.lr = -1;
    NBT_FAILS_WITH(nb_sgd(&p, 1, &s), "SGD: Invalid learning rate: -1");
    s.lr = 0.1;
    s.momentum = -0.5;
    NBT_FAILS_WITH(nb_sgd(&p, 1, &s), "SGD: Invalid momentum value: -0.5");
    s.momentum = 0;
    s.weight_decay = -1;
    NBT_FAILS_WITH(nb_sgd(&p, 1, &s), "SGD: Invalid weight_decay value: -1");
    s.weight_decay = 0;
    s.nesterov = true;
    NBT_FAILS_WITH(nb_sgd(&p, 1, &s), "SGD: Nesterov momentum requires a momentum and zero dampening");
    s.momentum = 0.9;
    s.dampening = 0.1;
    NBT_FAILS_WITH(nb_sgd(&p, 1, &s), "Nesterov momentum requires a momentum and zero dampening");

    nb_adam_options a = nb_adam_defaults();
    a.lr = -1;
    NBT_FAILS_WITH(nb_adam(&p, 1, &a), "Adam: Invalid learning rate: -1");
    a = nb_adam_defaults();
    a.eps = -1e-8;
    NBT_FAILS_WITH(nb_adam(&p, 1, &a), "Adam: Invalid epsilon value: -1e-08");
    a = nb_adam_defaults();
    a.beta1 = 1.0;
    NBT_FAILS_WITH(nb_adam(&p, 1, &a), "Adam: Invalid beta parameter at index 0: 1");
    a = nb_adam_defaults();
    a.beta2 = -0.1;
    NBT_FAILS_WITH(nb_adamw(&p, 1, &a), "AdamW: Invalid beta parameter at index 1: -0.1");
    a = nb_adamw_defaults();
    a.weight_decay = -0.01;
    NBT_FAILS_WITH(nb_adamw(&p, 1, &a), "AdamW: Invalid weight_decay value: -0.01");
    a = nb_adam_defaults();
    a.lr = NAN; /* PyTorch's `not 0.0 <= lr` rejects NaN too */
    NBT_FAILS_WITH(nb_adam(&p, 1, &a), "Adam: Invalid learning rate: nan");

    nb_adadelta_options d = nb_adadelta_defaults();
    d.rho = 1.5;
    NBT_FAILS_WITH(nb_adadelta(&p, 1, &d), "Adadelta: Invalid rho value: 1.5");
    d = nb_adadelta_defaults();
    d.eps = -1;
    NBT_FAILS_WITH(nb_adadelta(&p, 1, &d), "Adadelta: Invalid epsilon value: -1");
    d = nb_adadelta_defaults();
    d.lr = -2;
    NBT_FAILS_WITH(nb_adadelta(&p, 1, &d), "Adadelta: Invalid learning rate: -2");
    d = nb_adadelta_defaults();
    d.weight_decay = -2;
    NBT_FAILS_WITH(nb_adadelta(&p, 1, &d), "Adadelta: Invalid weight_decay value: -2");

    nb_rmsprop_options r = nb_rmsprop_defaults();
    r.alpha = -0.5;
    NBT_FAILS_WITH(nb_rmsprop(&p, 1, &r), "RMSprop: Invalid alpha value: -0.5");
    r = nb_rmsprop_defaults();
    r.momentum = -1;
    NBT_FAILS_WITH(nb_rmsprop(&p, 1, &r), "RMSprop: Invalid momentum value: -1");
    r = nb_rmsprop_defaults();
    r.eps = -1;
    NBT_FAILS_WITH(nb_rmsprop(&p, 1, &r), "RMSprop: Invalid epsilon value: -1");
    r = nb_rmsprop_defaults();
    r.lr = -1;
    NBT_FAILS_WITH(nb_rmsprop(&p, 1, &r), "RMSprop: Invalid learning rate: -1");
    r = nb_rmsprop_defaults();
    r.weight_decay = -1;
    NBT_FAILS_WITH(nb_rmsprop(&p, 1, &r), "RMSprop: Invalid weight_decay value: -1");

    nb_optimizer *opt = nb_adam(&p, 1, NULL);
    ck_assert_ptr_nonnull(opt);
    NBT_STATUS_FAILS_WITH(nb_optimizer_set_lr(opt, -0.5), "Adam: Invalid learning rate: -0.5");
    ck_assert(nb_optimizer_get_lr(opt) == 1e-3);
    ck_assert_str_eq(nb_optimizer_name(opt), "Adam");
    ck_assert_int_eq(nb_optimizer_num_params(opt), 1);
    ck_assert_ptr_eq(nb_optimizer_param(opt, 0), p);
    NBT_FAILS_WITH(nb_optimizer_param(opt, 1), "index 1 is out of range for 1 parameters");
    nb_optimizer_free(opt);
    NBT_STATUS_FAILS_WITH(nb_optimizer_step(NULL), "is NULL");
    nb_tensor_release(p);
}
END_TEST

START_TEST(test_bad_params) {
    nb_tensor *p = nbt_randn(1, NB_F64, NB_SHAPE(2, 3), true);
    nb_tensor *q = nbt_randn(2, NB_F64, NB_SHAPE(3), false);
    NBT_FAILS_WITH(nb_adam(&p, 0, NULL), "Adam: optimizer got an empty parameter list");
    NBT_FAILS_WITH(nb_adam(NULL, 1, NULL), "Adam: argument 'params' is NULL");
    NBT_FAILS_WITH(nb_adam((nb_tensor *[]){p, NULL}, 2, NULL), "Adam: argument 'params[1]' is NULL");
    nb_tensor *v = NBT_NOTNULL(nb_reshape(p, NB_SHAPE(6)));
    NBT_FAILS_WITH(nb_adam(&v, 1, NULL), "Adam: can't optimize a non-leaf Tensor");
    nb_tensor *ints = NBT_NOTNULL(nb_zeros(NB_I64, NB_SHAPE(2)));
    NBT_FAILS_WITH(nb_rmsprop(&ints, 1, NULL), "RMSprop: expected 'params[0]' to be float32 or float64, but got int64");
    NBT_FAILS_WITH(nb_adadelta((nb_tensor *[]){p, q, p}, 3, NULL), "some parameters appear more than once (params[0] and params[2])");
    nb_tensor *d = NBT_NOTNULL(nb_detach(p));
    nb_tensor *t = NBT_NOTNULL(nb_transpose(d, 0, 1)); /* a leaf (no grad_fn), but not contiguous */
    NBT_FAILS_WITH(nb_adam(&t, 1, NULL), "params[0] is not contiguous");
    nb_tensor *r[] = {p, q, v, ints, d, t};
    for (int i = 0; i < 6; i++) nb_tensor_release(r[i]);
}
END_TEST

/* Parameters without grad are not touched and get no state; the others are. */
START_TEST(test_skip_without_grad) {
    nb_tensor *a = nbt_randn(1, NB_F32, NB_SHAPE(3, 2), true);
    nb_tensor *b = nbt_randn(2, NB_F32, NB_SHAPE(4), true);
    nb_tensor *a0 = NBT_NOTNULL(nb_clone(a)), *b0 = NBT_NOTNULL(nb_clone(b));
    nb_rmsprop_options o = nb_rmsprop_defaults();
    o.momentum = 0.9;
    o.weight_decay = 0.1; /* would move a param even with a zero grad */
    nb_optimizer *opt = nb_rmsprop((nb_tensor *[]){a, b}, 2, &o);
    ck_assert_ptr_nonnull(opt);
    NBT_OK(nb_optimizer_step(opt)); /* no grads at all: nothing happens */
    nbt_assert_bitwise_equal(a, a0);
    nbt_assert_bitwise_equal(b, b0);
    ck_assert_int_eq(nb_optimizer_state_count(opt), 0);
    nb_tensor *g = NBT_NOTNULL(nb_ones_like(b));
    NBT_OK(nb_backward_ex(b, g, false));
    NBT_OK(nb_optimizer_step(opt));
    nbt_assert_bitwise_equal(a, a0);
    ck_assert_int_eq(nb_optimizer_state_count(opt), 3); /* state.1.step, square_avg, momentum_buffer */
    char name[32];
    nb_optimizer_state_entry(opt, 2, name, sizeof name);
    ck_assert_str_eq(name, "state.1.momentum_buffer");
    double v0, v1;
    NBT_OK(nb_tensor_get(b0, (int64_t[]){0}, &v0));
    NBT_OK(nb_tensor_get(b, (int64_t[]){0}, &v1));
    ck_assert(v1 < v0); /* moved against a positive gradient */
    nb_optimizer_zero_grad(opt);
    ck_assert_ptr_null(nb_tensor_grad(b));
    nb_optimizer_free(opt);
    nb_tensor *r[] = {a, b, a0, b0, g};
    for (int i = 0; i < 5; i++) nb_tensor_release(r[i]);
}
END_TEST

/* Same result bitwise at 1 and 2 threads, on a parameter large enough to be
 * split between threads. */
START_TEST(test_thread_determinism) {
    int saved = nb_get_num_threads();
    nb_tensor *res[2];
    for (int run = 0; run < 2; run++) {
        NBT_OK(nb_set_num_threads(run + 1));
        nb_tensor *p = nbt_randn(5, NB_F32, NB_SHAPE(300, 400), true);
        nb_tensor *g = nbt_randn(6, NB_F32, NB_SHAPE(300, 400), false);
        nb_adam_options o = nb_adamw_defaults();
        o.amsgrad = true;
        nb_optimizer *opt = nb_adamw(&p, 1, &o);
        for (int k = 0; k < 3; k++) {
            nb_optimizer_zero_grad(opt);
            NBT_OK(nb_backward_ex(p, g, false));
            NBT_OK(nb_optimizer_step(opt));
        }
        nb_optimizer_free(opt);
        nb_tensor_release(g);
        res[run] = p;
    }
    NBT_OK(nb_set_num_threads(saved));
    nbt_assert_bitwise_equal(res[0], res[1]);
    nb_tensor_release(res[0]);
    nb_tensor_release(res[1]);
}
END_TEST

START_TEST(test_pytorch_schedulers) {
    int nsched = (int)must_scalar("nsched");
    for (int j = 0; j < nsched; j++) {
        char key[64];
#define SCHED(k) (snprintf(key, sizeof key, "sched/%d/%s", j, k), must_scalar(key))
        int kind = (int)SCHED("kind");
        double lr = SCHED("lr");
        int64_t period = (int64_t)SCHED("period");
        nb_tensor *p = nbt_randn(1, NB_F64, NB_SHAPE(2), true);
        nb_sgd_options o = nb_sgd_defaults();
        o.lr = lr;
        nb_optimizer *opt = nb_sgd(&p, 1, &o);
        nb_lr_scheduler *s = kind == 0 ? nb_step_lr(opt, period, SCHED("gamma"))
                                       : nb_cosine_annealing_lr(opt, period, SCHED("eta_min"));
#undef SCHED
        ck_assert_msg(s, "%s", nb_last_error());
        nb_optimizer_free(opt); /* the scheduler keeps it alive */
        snprintf(key, sizeof key, "sched/%d/lrs", j);
        nb_tensor *lrs = nbt_h5_read(ref(), key, NB_F64);
        int64_t n = nb_tensor_numel(lrs);
        double got[64];
        ck_assert(n <= 64);
        for (int64_t e = 0; e < n; e++) {
            if (e > 0) NBT_OK(nb_lr_scheduler_step(s));
            ck_assert_int_eq(nb_lr_scheduler_last_epoch(s), e);
            got[e] = nb_lr_scheduler_get_last_lr(s);
        }
        nb_tensor *t = NBT_NOTNULL(nb_from_data(NB_F64, 1, (int64_t[]){n}, got));
        nbt_assert_values(t, nb_tensor_f64(lrs), n, 1e-18, 1e-12);
        nb_tensor_release(t);
        nb_tensor_release(lrs);
        nb_lr_scheduler_free(s);
        nb_tensor_release(p);
    }
}
END_TEST

/* A restored scheduler continues exactly like an uninterrupted one. */
START_TEST(test_scheduler_restore) {
    nb_tensor *p = nbt_randn(1, NB_F64, NB_SHAPE(2), true);
    nb_adam_options o = nb_adam_defaults();
    o.lr = 0.1;
    nb_optimizer *a = nb_adam(&p, 1, &o), *b = nb_adam(&p, 1, &o);
    nb_lr_scheduler *sa = nb_cosine_annealing_lr(a, 6, 0.01);
    for (int e = 0; e < 9; e++) NBT_OK(nb_lr_scheduler_step(sa));
    NBT_OK(nb_optimizer_set_lr(b, nb_optimizer_get_lr(a)));
    nb_lr_scheduler *sb = nb_cosine_annealing_lr(b, 6, 0.01);
    NBT_OK(nb_lr_scheduler_load_state(sb, nb_lr_scheduler_last_epoch(sa), nb_lr_scheduler_base_lr(sa)));
    for (int e = 0; e < 10; e++) {
        NBT_OK(nb_lr_scheduler_step(sa));
        NBT_OK(nb_lr_scheduler_step(sb));
        ck_assert(nb_lr_scheduler_get_last_lr(sa) == nb_lr_scheduler_get_last_lr(sb));
        ck_assert(nb_optimizer_get_lr(b) == nb_lr_scheduler_get_last_lr(sb));
    }
    NBT_FAILS_WITH(nb_step_lr(a, 0, 0.1), "StepLR: expected step_size >= 1, but got 0");
    NBT_FAILS_WITH(nb_cosine_annealing_lr(a, -3, 0), "CosineAnnealingLR: expected T_max >= 1, but got -3");
    NBT_FAILS_WITH(nb_step_lr(NULL, 1, 0.1), "StepLR: argument 'opt' is NULL");
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_load_state(sb, -1, 0.1), "expected last_epoch >= 0, but got -1");
    nb_lr_scheduler_free(sa);
    nb_lr_scheduler_free(sb);
    nb_optimizer_free(a);
    nb_optimizer_free(b);
    nb_tensor_release(p);
}
END_TEST

/* The number of configurations, read before any test runs (Check's asserts
 * cannot be used outside a test); 1 if the file is unreadable, so that one
 * case runs and fails loudly. */
static int count_configs(void) {
    long long n = 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(ref(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 1;
    hid_t d = H5Dopen2(f, "ncfg", H5P_DEFAULT);
    if (d >= 0) {
        if (H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, &n) < 0) n = 1;
        H5Dclose(d);
    }
    H5Fclose(f);
    return n > 0 ? (int)n : 1;
}

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    int ncfg = count_configs();
    tcase_add_loop_test(tc, test_pytorch_trajectory, 0, ncfg);
    tcase_add_test(tc, test_state_restore);
    tcase_add_test(tc, test_load_state_errors);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_skip_without_grad);
    tcase_add_test(tc, test_thread_determinism);
    tcase_add_test(tc, test_pytorch_schedulers);
    tcase_add_test(tc, test_scheduler_restore);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
