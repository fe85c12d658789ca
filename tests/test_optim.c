/* Optimizers and lr schedulers against PyTorch (tests/pytorch/optim_reference.py):
 * every configuration replays PyTorch's gradients and compares the parameters
 * after each step and the final state; schedulers compare each epoch's lr.
 * Plus option/parameter validation, skipping parameters without grad,
 * checkpoint-style state save/restore, and thread-count determinism. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* Reads <prefix><key> into *v if the file has it. */
static bool opt_get(const char *prefix, const char *key, double *v) {
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, key);
    return nbt_h5_read_scalar(ref(), name, v);
}

#define SET(field, key) \
    if (opt_get(pre, key, &v)) o->field = v
#define SETB(field, key) \
    if (opt_get(pre, key, &v)) o->field = v != 0
/* Options of each kind set from the keys under prefix pre. */
static void read_sgd(const char *pre, nb_sgd_options *o) {
    double v;
    SET(lr, "lr"); SET(momentum, "momentum"); SET(dampening, "dampening"); SET(weight_decay, "weight_decay");
    SETB(nesterov, "nesterov"); SETB(maximize, "maximize");
}
static void read_adam(const char *pre, nb_adam_options *o) {
    double v;
    SET(lr, "lr"); SET(beta1, "beta1"); SET(beta2, "beta2"); SET(eps, "eps"); SET(weight_decay, "weight_decay");
    SETB(amsgrad, "amsgrad"); SETB(maximize, "maximize");
}
static void read_adadelta(const char *pre, nb_adadelta_options *o) {
    double v;
    SET(lr, "lr"); SET(rho, "rho"); SET(eps, "eps"); SET(weight_decay, "weight_decay"); SETB(maximize, "maximize");
}
static void read_rmsprop(const char *pre, nb_rmsprop_options *o) {
    double v;
    SET(lr, "lr"); SET(alpha, "alpha"); SET(eps, "eps"); SET(weight_decay, "weight_decay");
    SET(momentum, "momentum"); SETB(centered, "centered"); SETB(maximize, "maximize");
}
static void read_one_cycle(const char *pre, nb_one_cycle_lr_options *o) {
    double v;
    SET(pct_start, "pct_start"); SETB(cycle_momentum, "cycle_momentum"); SET(base_momentum, "base_momentum");
    SET(max_momentum, "max_momentum"); SET(div_factor, "div_factor"); SET(final_div_factor, "final_div_factor");
    SETB(three_phase, "three_phase");
    if (opt_get(pre, "anneal_strategy", &v)) o->anneal_strategy = v != 0 ? "linear" : "cos";
}
#undef SET
#undef SETB

/* The optimizer of configuration c: our defaults plus the options the file sets
 * (so the defaults themselves are checked against PyTorch's); with a group1,
 * params 0 and 1 are group 0 and param 2 is group 1 with its options changed
 * (nb_*_add_param_group). */
static nb_optimizer *make_cfg_optimizer(int c, nb_tensor **params) {
    char pre[64], pre1[64];
    snprintf(pre, sizeof pre, "cfg/%d/", c);
    snprintf(pre1, sizeof pre1, "cfg/%d/group1/", c);
    double kind = -1;
    ck_assert(opt_get(pre, "kind", &kind));
    char g1[64];
    snprintf(g1, sizeof g1, "cfg/%d/group1", c);
    const bool grouped = nbt_h5_exists(ref(), g1);
    const int n0 = grouped ? 2 : NP;
    nb_optimizer *opt = NULL;
    nb_status st = NB_OK;
    if (kind == 0) {
        nb_sgd_options o = nb_sgd_defaults();
        read_sgd(pre, &o);
        opt = nb_sgd(params, n0, &o);
        read_sgd(pre1, &o);
        if (opt && grouped) st = nb_sgd_add_param_group(opt, params + 2, 1, &o);
    } else if (kind == 1 || kind == 2) {
        nb_adam_options o = kind == 1 ? nb_adam_defaults() : nb_adamw_defaults();
        read_adam(pre, &o);
        opt = kind == 1 ? nb_adam(params, n0, &o) : nb_adamw(params, n0, &o);
        read_adam(pre1, &o);
        if (opt && grouped) st = nb_adam_add_param_group(opt, params + 2, 1, &o);
    } else if (kind == 3) {
        nb_adadelta_options o = nb_adadelta_defaults();
        read_adadelta(pre, &o);
        opt = nb_adadelta(params, n0, &o);
        read_adadelta(pre1, &o);
        if (opt && grouped) st = nb_adadelta_add_param_group(opt, params + 2, 1, &o);
    } else {
        nb_rmsprop_options o = nb_rmsprop_defaults();
        read_rmsprop(pre, &o);
        opt = nb_rmsprop(params, n0, &o);
        read_rmsprop(pre1, &o);
        if (opt && grouped) st = nb_rmsprop_add_param_group(opt, params + 2, 1, &o);
    }
    ck_assert_msg(opt && st == NB_OK, "cfg %d: %s", c, nb_last_error());
    ck_assert_int_eq(nb_optimizer_num_param_groups(opt), grouped ? 2 : 1);
    return opt;
}

/* The OneCycleLR of configuration c, or NULL when it has none. */
static nb_lr_scheduler *make_cfg_scheduler(int c, nb_optimizer *opt) {
    char pre[64];
    snprintf(pre, sizeof pre, "cfg/%d/onecycle/", c);
    double max_lr, total;
    if (!opt_get(pre, "max_lr", &max_lr)) return NULL;
    ck_assert(opt_get(pre, "total_steps", &total));
    nb_one_cycle_lr_options o = nb_one_cycle_lr_defaults();
    read_one_cycle(pre, &o);
    nb_lr_scheduler *s = nb_one_cycle_lr(opt, max_lr, (int64_t)total, &o);
    ck_assert_msg(s, "cfg %d: %s", c, nb_last_error());
    return s;
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

/* Steps [k0, k1) of configuration c (with its scheduler, if any, stepped
 * after the optimizer), comparing parameters after each. */
static void run_steps(int c, nb_optimizer *opt, nb_lr_scheduler *sched, nb_tensor **params, int k0, int k1,
                      double atol, double rtol) {
    double skip_p = -1, skip_k = -1;
    cfg_get(c, "skip_param", &skip_p);
    cfg_get(c, "skip_step", &skip_k);
    for (int k = k0; k < k1; k++) {
        nb_optimizer_zero_grad(opt);
        for (int i = 0; i < NP; i++)
            if (!(k == (int)skip_k && i == (int)skip_p)) set_grad(params[i], k, i);
        NBT_OK(nb_optimizer_step(opt));
        if (sched) NBT_OK(nb_lr_scheduler_step(sched));
        for (int i = 0; i < NP; i++) {
            char name[64];
            snprintf(name, sizeof name, "cfg/%d/after/s%d/p%d", c, k, i);
            assert_matches(params[i], name, atol, rtol);
        }
    }
}

/* Entries for "param_groups.*" (as many as groups times keys) come before any step. */
static int64_t group_entries(const nb_optimizer *opt) {
    int64_t n = 0;
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        char name[64];
        NBT_NOTNULL(nb_optimizer_state_entry(opt, k, name, sizeof name));
        n += strncmp(name, "param_groups.", 13) == 0;
    }
    return n;
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
    nb_lr_scheduler *sched = make_cfg_scheduler(c, opt);
    int nsteps = (int)must_scalar("nsteps");
    run_steps(c, opt, sched, params, 0, nsteps, atol, rtol);

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
    nb_lr_scheduler_free(sched);
    nb_optimizer_free(opt);
    for (int i = 0; i < NP; i++) nb_tensor_release(params[i]);
}
END_TEST

/* Checkpoint round trip: save the optimizer's (and scheduler's) state after 3
 * steps, restore it into a fresh optimizer (and scheduler) over copies of the
 * parameters, and the last 2 steps still match PyTorch's uninterrupted run. */
START_TEST(test_state_restore) {
    int ncfg = (int)must_scalar("ncfg");
    for (int c = 0; c < ncfg; c++) {
        nb_dtype dtype;
        double atol, rtol;
        tolerances(c, &dtype, &atol, &rtol);
        nb_tensor *params[NP], *copies[NP];
        load_params(params, dtype);
        nb_optimizer *opt = make_cfg_optimizer(c, params);
        nb_lr_scheduler *sched = make_cfg_scheduler(c, opt);
        run_steps(c, opt, sched, params, 0, 3, atol, rtol);
        for (int i = 0; i < NP; i++) {
            copies[i] = NBT_NOTNULL(nb_detach(params[i]));
            nb_tensor *d = NBT_NOTNULL(nb_clone(copies[i]));
            nb_tensor_release(copies[i]);
            copies[i] = d;
            NBT_OK(nb_requires_grad_(copies[i], true));
        }
        nb_optimizer *fresh = make_cfg_optimizer(c, copies);
        nb_lr_scheduler *fresh_sched = make_cfg_scheduler(c, fresh); /* made before the loads, as in a checkpoint */
        ck_assert_int_eq(nb_optimizer_state_count(fresh), group_entries(fresh));
        for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
            char name[64];
            nb_tensor *t = nb_optimizer_state_entry(opt, k, name, sizeof name);
            NBT_OK(nb_optimizer_load_state(fresh, name, t));
        }
        ck_assert_int_eq(nb_optimizer_state_count(fresh), nb_optimizer_state_count(opt));
        for (int64_t k = 0; sched && k < nb_lr_scheduler_state_count(sched); k++) {
            char name[64];
            nb_tensor *t = NBT_NOTNULL(nb_lr_scheduler_state_entry(sched, k, name, sizeof name));
            NBT_OK(nb_lr_scheduler_load_state_entry(fresh_sched, name, t));
            nb_tensor_release(t);
        }
        nb_lr_scheduler_free(sched);
        nb_optimizer_free(opt);
        run_steps(c, fresh, fresh_sched, copies, 3, (int)must_scalar("nsteps"), atol, rtol);
        nb_lr_scheduler_free(fresh_sched);
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
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "exp_avg", z), "expected a name like 'state.<index>.<key>' or 'param_groups.<index>.<key>'");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "state.1.exp_avg", z), "parameter index 1");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "state.0.momentum_buffer", z), "Adam: load_state: this optimizer has no state 'momentum_buffer'");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "state.0.exp_avg", z), "'state.0.exp_avg' expects shape [2, 3], but got [3, 2]");
    ck_assert_int_eq(nb_optimizer_state_count(opt), 2); /* a failed load creates no state: lr and betas only */
    NBT_FAILS_WITH(nb_optimizer_state_entry(opt, 2, NULL, 0), "index 2 is out of range for 2 state entries");
    nb_tensor *one = NBT_NOTNULL(nb_scalar(NB_F64, 7));
    NBT_OK(nb_optimizer_load_state(opt, "state.0.step", one));
    ck_assert_int_eq(nb_optimizer_state_count(opt), 5);
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
    ck_assert_int_eq(nb_optimizer_state_count(opt), 2); /* param_groups.0.lr and .momentum */
    nb_tensor *g = NBT_NOTNULL(nb_ones_like(b));
    NBT_OK(nb_backward_ex(b, g, false));
    NBT_OK(nb_optimizer_step(opt));
    nbt_assert_bitwise_equal(a, a0);
    ck_assert_int_eq(nb_optimizer_state_count(opt), 5); /* state.1.step, square_avg, momentum_buffer, the group's 2 */
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

/* ---- learning-rate schedules against PyTorch (sched/<j> in the file) ---- */
/* The int64 values of dataset name (a scalar or a 1-d array); returns the count. */
static int read_ints(const char *name, int64_t *out, int max) {
    nb_tensor *t = nbt_h5_read(ref(), name, NB_F64);
    int n = (int)nb_tensor_numel(t);
    ck_assert_int_le(n, max);
    for (int i = 0; i < n; i++) out[i] = (int64_t)nb_tensor_f64(t)[i];
    nb_tensor_release(t);
    return n;
}

/* The scheduler described under prefix g ("sched/3/spec/"), on opt. */
static nb_lr_scheduler *make_spec_scheduler(const char *g, nb_optimizer *opt) {
    double kind = -1, a = 0, b = 0, c = 0;
    ck_assert(opt_get(g, "kind", &kind));
    char name[160];
    int64_t ms[16];
    switch ((int)kind) {
    case 0:
        ck_assert(opt_get(g, "step_size", &a));
        if (!opt_get(g, "gamma", &b)) b = 0.1; /* PyTorch's default */
        return nb_step_lr(opt, (int64_t)a, b);
    case 1:
        ck_assert(opt_get(g, "T_max", &a));
        if (!opt_get(g, "eta_min", &b)) b = 0; /* PyTorch's default */
        return nb_cosine_annealing_lr(opt, (int64_t)a, b);
    case 2: {
        snprintf(name, sizeof name, "%smilestones", g);
        int n = read_ints(name, ms, 16);
        if (!opt_get(g, "gamma", &b)) b = 0.1; /* PyTorch's default */
        return nb_multi_step_lr(opt, ms, n, b);
    }
    case 3:
        ck_assert(opt_get(g, "start_factor", &a) && opt_get(g, "end_factor", &b) && opt_get(g, "total_iters", &c));
        return nb_linear_lr(opt, a, b, (int64_t)c);
    case 4: {
        nb_one_cycle_lr_options o = nb_one_cycle_lr_defaults();
        read_one_cycle(g, &o);
        ck_assert(opt_get(g, "total_steps", &c));
        snprintf(name, sizeof name, "%smax_lr", g);
        nb_tensor *m = nbt_h5_read(ref(), name, NB_F64);
        if (nb_tensor_ndim(m) == 1) { /* one per group */
            o.max_lrs = nb_tensor_f64(m);
            o.n_max_lrs = (int)nb_tensor_numel(m);
        }
        nb_lr_scheduler *s = nb_one_cycle_lr(opt, nb_tensor_f64(m)[0], (int64_t)c, &o);
        nb_tensor_release(m);
        return s;
    }
    case 5: {
        nb_lr_scheduler *kids[8];
        int n = 0;
        for (;; n++) {
            snprintf(name, sizeof name, "%schild/%d", g, n);
            if (!nbt_h5_exists(ref(), name)) break;
            strcat(name, "/");
            kids[n] = make_spec_scheduler(name, opt);
            ck_assert_msg(kids[n], "%s: %s", name, nb_last_error());
        }
        snprintf(name, sizeof name, "%smilestones", g);
        int nm = read_ints(name, ms, 16);
        return nb_sequential_lr(opt, kids, n, ms, nm);
    }
    case 7:
        ck_assert(opt_get(g, "gamma", &a));
        return nb_exponential_lr(opt, a);
    case 8:
        ck_assert(opt_get(g, "factor", &a) && opt_get(g, "total_iters", &c));
        return nb_constant_lr(opt, a, (int64_t)c);
    default: {
        nb_reduce_lr_on_plateau_options o = nb_reduce_lr_on_plateau_defaults();
        if (opt_get(g, "mode", &a)) o.mode = a != 0 ? "max" : "min";
        if (opt_get(g, "threshold_mode", &a)) o.threshold_mode = a != 0 ? "abs" : "rel";
        if (opt_get(g, "factor", &a)) o.factor = a;
        if (opt_get(g, "patience", &a)) o.patience = (int64_t)a;
        if (opt_get(g, "threshold", &a)) o.threshold = a;
        if (opt_get(g, "cooldown", &a)) o.cooldown = (int64_t)a;
        if (opt_get(g, "eps", &a)) o.eps = a;
        snprintf(name, sizeof name, "%smin_lr", g);
        nb_tensor *m = nbt_h5_exists(ref(), name) ? nbt_h5_read(ref(), name, NB_F64) : NULL;
        if (m && nb_tensor_ndim(m) == 1) {
            o.min_lrs = nb_tensor_f64(m);
            o.n_min_lrs = (int)nb_tensor_numel(m);
        } else if (m) {
            o.min_lr = nb_tensor_f64(m)[0];
        }
        nb_lr_scheduler *s = nb_reduce_lr_on_plateau(opt, &o);
        nb_tensor_release(m);
        return s;
    }
    }
}

/* Schedule j's optimizer: one parameter per group, with the group lrs of the
 * file (and its momentum). */
static nb_optimizer *make_sched_optimizer(int j, nb_tensor **ps, int *ngroups) {
    char name[64];
    snprintf(name, sizeof name, "sched/%d/lrs", j);
    nb_tensor *lrs = nbt_h5_read(ref(), name, NB_F64);
    const int G = (int)nb_tensor_numel(lrs);
    const double *lr = nb_tensor_f64(lrs);
    double kind = 0, mom = 0;
    snprintf(name, sizeof name, "sched/%d/", j);
    ck_assert(opt_get(name, "opt", &kind));
    const bool has_mom = opt_get(name, "momentum", &mom);
    nb_optimizer *opt = NULL;
    for (int g = 0; g < G; g++) {
        ps[g] = nbt_randn((uint64_t)g, NB_F64, NB_SHAPE(1), true);
        if (kind == 0) {
            nb_sgd_options o = nb_sgd_defaults();
            o.lr = lr[g];
            if (has_mom) o.momentum = mom;
            if (g == 0) opt = nb_sgd(ps, 1, &o);
            else NBT_OK(nb_sgd_add_param_group(opt, ps + g, 1, &o));
        } else if (kind == 1) {
            nb_adam_options o = nb_adam_defaults();
            o.lr = lr[g];
            if (g == 0) opt = nb_adam(ps, 1, &o);
            else NBT_OK(nb_adam_add_param_group(opt, ps + g, 1, &o));
        } else {
            nb_adadelta_options o = nb_adadelta_defaults();
            o.lr = lr[g];
            if (g == 0) opt = nb_adadelta(ps, 1, &o);
            else NBT_OK(nb_adadelta_add_param_group(opt, ps + g, 1, &o));
        }
        ck_assert_msg(opt, "%s", nb_last_error());
    }
    nb_tensor_release(lrs);
    *ngroups = G;
    return opt;
}

/* Group g's momentum (SGD) or beta1 (Adam) from the optimizer's state entries; NAN if it has none. */
static double group_momentum(const nb_optimizer *opt, int g) {
    char want_m[64], want_b[64], name[64];
    snprintf(want_m, sizeof want_m, "param_groups.%d.momentum", g);
    snprintf(want_b, sizeof want_b, "param_groups.%d.betas", g);
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        nb_tensor *t = nb_optimizer_state_entry(opt, k, name, sizeof name);
        if (strcmp(name, want_m) == 0 || strcmp(name, want_b) == 0) return nb_tensor_f64(t)[0];
    }
    return NAN;
}

/* Epochs [e0, e1) of schedule j: step (with the metric, for ReduceLROnPlateau)
 * and compare every group's lr and momentum with PyTorch's, bit for bit (the
 * same float64 formulas, in the same order, with the same libm). */
static void run_schedule(int j, nb_optimizer *opt, nb_lr_scheduler *s, int G, int e0, int e1) {
    char name[64];
    snprintf(name, sizeof name, "sched/%d/lrs_out", j);
    nb_tensor *want = nbt_h5_read(ref(), name, NB_F64);
    snprintf(name, sizeof name, "sched/%d/moms_out", j);
    nb_tensor *want_m = nbt_h5_read(ref(), name, NB_F64);
    snprintf(name, sizeof name, "sched/%d/metrics", j);
    nb_tensor *metrics = nbt_h5_exists(ref(), name) ? nbt_h5_read(ref(), name, NB_F64) : NULL;
    for (int e = e0; e < e1; e++) {
        if (e > 0) NBT_OK(metrics ? nb_lr_scheduler_step_metric(s, nb_tensor_f64(metrics)[e]) : nb_lr_scheduler_step(s));
        ck_assert_int_eq(nb_lr_scheduler_last_epoch(s), e);
        double got[16], got_m[16];
        for (int g = 0; g < G; g++) {
            got[g] = nb_lr_scheduler_group_last_lr(s, g);
            ck_assert(got[g] == nb_optimizer_group_lr(opt, g));
            got_m[g] = group_momentum(opt, g);
        }
        nb_tensor *t = NBT_NOTNULL(nb_from_data(NB_F64, 1, (int64_t[]){G}, got));
        nb_tensor *tm = NBT_NOTNULL(nb_from_data(NB_F64, 1, (int64_t[]){G}, got_m));
        nbt_assert_values(t, nb_tensor_f64(want) + (size_t)e * G, G, 0, 0);
        const double *wm = nb_tensor_f64(want_m) + (size_t)e * G;
        if (!isnan(wm[0])) nbt_assert_values(tm, wm, G, 0, 0);
        nb_tensor_release(t);
        nb_tensor_release(tm);
    }
    nb_tensor_release(want);
    nb_tensor_release(want_m);
    nb_tensor_release(metrics);
}

/* Every schedule from creation to the end; then again interrupted halfway:
 * optimizer and scheduler state saved, restored into new ones (made like the
 * first), and the rest of the schedule still PyTorch's. */
START_TEST(test_pytorch_schedulers) {
    const int j = _i;
    char g[64], name[64];
    snprintf(g, sizeof g, "sched/%d/spec/", j);
    snprintf(name, sizeof name, "sched/%d/", j);
    double epochs = 0;
    ck_assert(opt_get(name, "epochs", &epochs));
    const int E = (int)epochs;
    nb_tensor *ps[16], *ps2[16];
    int G;
    nb_optimizer *opt = make_sched_optimizer(j, ps, &G);
    nb_lr_scheduler *s = make_spec_scheduler(g, opt);
    ck_assert_msg(s, "schedule %d: %s", j, nb_last_error());
    run_schedule(j, opt, s, G, 0, E);
    nb_lr_scheduler_free(s);
    nb_optimizer_free(opt);
    for (int i = 0; i < G; i++) nb_tensor_release(ps[i]);

    opt = make_sched_optimizer(j, ps, &G);
    s = make_spec_scheduler(g, opt);
    run_schedule(j, opt, s, G, 0, E / 2);
    nb_optimizer *opt2 = make_sched_optimizer(j, ps2, &G);
    nb_lr_scheduler *s2 = make_spec_scheduler(g, opt2);
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        nb_tensor *t = nb_optimizer_state_entry(opt, k, name, sizeof name);
        NBT_OK(nb_optimizer_load_state(opt2, name, t));
    }
    ck_assert_int_eq(nb_lr_scheduler_state_count(s2), nb_lr_scheduler_state_count(s));
    for (int64_t k = 0; k < nb_lr_scheduler_state_count(s); k++) {
        nb_tensor *t = NBT_NOTNULL(nb_lr_scheduler_state_entry(s, k, name, sizeof name));
        NBT_OK(nb_lr_scheduler_load_state_entry(s2, name, t));
        nb_tensor_release(t);
    }
    nb_lr_scheduler_free(s);
    nb_optimizer_free(opt);
    run_schedule(j, opt2, s2, G, E / 2, E);
    nb_lr_scheduler_free(s2);
    nb_optimizer_free(opt2);
    for (int i = 0; i < G; i++) {
        nb_tensor_release(ps[i]);
        nb_tensor_release(ps2[i]);
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

/* Parameter groups: options per group, NULL options (the creation ones),
 * lrs per group, and the errors. */
START_TEST(test_param_groups_api) {
    nb_tensor *a = nbt_randn(1, NB_F64, NB_SHAPE(2), true), *b = nbt_randn(2, NB_F64, NB_SHAPE(3), true);
    nb_tensor *c = nbt_randn(3, NB_F64, NB_SHAPE(1), true);
    nb_sgd_options o = nb_sgd_defaults();
    o.lr = 0.1, o.momentum = 0.9;
    nb_optimizer *opt = nb_sgd(&a, 1, &o);
    ck_assert_ptr_nonnull(opt);
    NBT_STATUS_FAILS_WITH(nb_sgd_add_param_group(opt, &a, 1, &o), "some parameters appear in more than one parameter group");
    NBT_STATUS_FAILS_WITH(nb_adam_add_param_group(opt, &b, 1, NULL), "nb_adam_add_param_group does not apply to a SGD optimizer");
    NBT_STATUS_FAILS_WITH(nb_sgd_add_param_group(opt, (nb_tensor *[]){b, b}, 2, NULL), "some parameters appear more than once");
    NBT_STATUS_FAILS_WITH(nb_sgd_add_param_group(opt, &b, -1, NULL), "expected n >= 0, but got -1");
    o.nesterov = true, o.momentum = 0;
    NBT_STATUS_FAILS_WITH(nb_sgd_add_param_group(opt, &b, 1, &o), "SGD: Nesterov momentum requires a momentum");
    o.nesterov = false, o.lr = NAN;
    NBT_STATUS_FAILS_WITH(nb_sgd_add_param_group(opt, &b, 1, &o), "required optimization parameter lr");
    ck_assert_int_eq(nb_optimizer_num_param_groups(opt), 1); /* failures add nothing */
    ck_assert_int_eq(nb_optimizer_num_params(opt), 1);
    NBT_OK(nb_optimizer_set_group_lr(opt, 0, 0.5));
    NBT_OK(nb_sgd_add_param_group(opt, &b, 1, NULL)); /* the creation options, lr 0.1 */
    NBT_OK(nb_sgd_add_param_group(opt, NULL, 0, NULL)); /* an empty group, as PyTorch allows */
    ck_assert_int_eq(nb_optimizer_num_param_groups(opt), 3);
    ck_assert_int_eq(nb_optimizer_num_params(opt), 2);
    ck_assert_ptr_eq(nb_optimizer_param(opt, 1), b);
    ck_assert(nb_optimizer_group_lr(opt, 0) == 0.5 && nb_optimizer_group_lr(opt, 1) == 0.1);
    ck_assert(nb_optimizer_get_lr(opt) == 0.5);
    ck_assert(isnan(nb_optimizer_group_lr(opt, 3)));
    ck_assert(strstr(nb_last_error(), "group index 3 is out of range for 3 parameter groups"));
    NBT_STATUS_FAILS_WITH(nb_optimizer_set_group_lr(opt, 1, -1), "SGD: Invalid learning rate: -1");
    NBT_OK(nb_optimizer_set_lr(opt, 0.25)); /* every group */
    ck_assert(nb_optimizer_group_lr(opt, 1) == 0.25 && nb_optimizer_group_lr(opt, 2) == 0.25);

    /* state entries of the groups, and loading them */
    nb_tensor *v = NBT_NOTNULL(nb_scalar(NB_F64, -0.5));
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "param_groups.1.momentum", v), "SGD: Invalid momentum value: -0.5");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "param_groups.3.lr", v), "group index 3 in 'param_groups.3.lr' is out of range for 3 parameter groups");
    NBT_STATUS_FAILS_WITH(nb_optimizer_load_state(opt, "param_groups.0.betas", v), "SGD: load_state: this optimizer has no parameter group entry 'betas'");
    NBT_OK(nb_optimizer_load_state(opt, "param_groups.2.lr", v)); /* a scheduler may have set a negative lr */
    ck_assert(nb_optimizer_group_lr(opt, 2) == -0.5);
    char name[64];
    ck_assert_int_eq(nb_optimizer_state_count(opt), 6);
    nb_tensor *t = NBT_NOTNULL(nb_optimizer_state_entry(opt, 3, name, sizeof name));
    ck_assert_str_eq(name, "param_groups.1.momentum");
    ck_assert(nb_tensor_f64(t)[0] == 0.9);

    /* no new group while a scheduler uses the optimizer */
    nb_lr_scheduler *s = nb_step_lr(opt, 2, 0.5);
    ck_assert_ptr_nonnull(s);
    NBT_STATUS_FAILS_WITH(nb_sgd_add_param_group(opt, &c, 1, NULL), "add parameter groups before creating a learning-rate scheduler");
    nb_lr_scheduler_free(s);
    NBT_OK(nb_sgd_add_param_group(opt, &c, 1, NULL));

    /* a group's options are its own: lr 0 leaves its parameter alone */
    nb_adam_options ao = nb_adam_defaults();
    nb_optimizer *adam = nb_adam(&a, 1, &ao);
    ao.lr = 0;
    NBT_OK(nb_adam_add_param_group(adam, &b, 1, &ao));
    nb_tensor *a0 = NBT_NOTNULL(nb_clone(a)), *b0 = NBT_NOTNULL(nb_clone(b));
    nb_scope *sc = nb_scope_begin();
    NBT_OK(nb_backward(nb_sum(nb_add(nb_sum(nb_mul(a, a)), nb_sum(nb_mul(b, b))))));
    nb_scope_end(sc);
    NBT_OK(nb_optimizer_step(adam));
    nbt_assert_bitwise_equal(b, b0);
    double x, y;
    NBT_OK(nb_tensor_get(a, (int64_t[]){0}, &x));
    NBT_OK(nb_tensor_get(a0, (int64_t[]){0}, &y));
    ck_assert(x != y);
    nb_optimizer_free(adam);
    nb_optimizer_free(opt);
    nb_tensor *r[] = {a, b, c, v, a0, b0};
    for (int i = 0; i < 6; i++) nb_tensor_release(r[i]);
}
END_TEST

/* The schedulers' argument errors, in PyTorch's words where it has them. */
START_TEST(test_scheduler_errors) {
    nb_tensor *p = nbt_randn(1, NB_F64, NB_SHAPE(2), true), *q = nbt_randn(2, NB_F64, NB_SHAPE(2), true);
    nb_sgd_options so = nb_sgd_defaults();
    so.lr = 0.1;
    nb_optimizer *opt = nb_sgd(&p, 1, &so), *other = nb_sgd(&q, 1, &so);
    nb_optimizer *ada = nb_adadelta(&q, 1, NULL);
    NBT_FAILS_WITH(nb_linear_lr(opt, 1.5, 1.0, 5), "LinearLR: Starting multiplicative factor expected to be between 0 and 1");
    NBT_FAILS_WITH(nb_linear_lr(opt, 0.5, -1, 5), "LinearLR: Ending multiplicative factor expected to be between 0 and 1");
    NBT_FAILS_WITH(nb_linear_lr(opt, 0.5, 1, -1), "LinearLR: expected total_iters >= 0, but got -1");
    NBT_FAILS_WITH(nb_multi_step_lr(opt, NULL, 2, 0.1), "MultiStepLR: expected n >= 0 milestones");
    NBT_FAILS_WITH(nb_constant_lr(opt, -0.5, 5), "ConstantLR: Constant multiplicative factor expected to be between 0 and 1");
    NBT_FAILS_WITH(nb_constant_lr(opt, 0.5, -5), "ConstantLR: expected total_iters >= 0, but got -5");
    NBT_FAILS_WITH(nb_exponential_lr(NULL, 0.5), "ExponentialLR: argument 'opt' is NULL");
    NBT_FAILS_WITH(nb_one_cycle_lr(opt, 1.0, 0, NULL), "OneCycleLR: Expected positive integer total_steps, but got 0");
    nb_one_cycle_lr_options oc = nb_one_cycle_lr_defaults();
    oc.pct_start = 1.5;
    NBT_FAILS_WITH(nb_one_cycle_lr(opt, 1.0, 10, &oc), "OneCycleLR: Expected float between 0 and 1 pct_start, but got 1.5");
    oc = nb_one_cycle_lr_defaults(), oc.anneal_strategy = "exp";
    NBT_FAILS_WITH(nb_one_cycle_lr(opt, 1.0, 10, &oc), "anneal_strategy must by one of 'cos' or 'linear', instead got exp");
    oc = nb_one_cycle_lr_defaults(), oc.max_lrs = (double[]){1, 2}, oc.n_max_lrs = 2;
    NBT_FAILS_WITH(nb_one_cycle_lr(opt, 1.0, 10, &oc), "OneCycleLR: expected 1 values for max_lr, got 2");
    NBT_FAILS_WITH(nb_one_cycle_lr(ada, 1.0, 10, NULL), "optimizer must support momentum with `cycle_momentum` option enabled");
    oc = nb_one_cycle_lr_defaults(), oc.div_factor = 0;
    NBT_FAILS_WITH(nb_one_cycle_lr(opt, 1.0, 10, &oc), "OneCycleLR: float division by zero");
    nb_lr_scheduler *s = nb_one_cycle_lr(opt, 1.0, 2, NULL);
    ck_assert_ptr_nonnull(s);
    NBT_OK(nb_lr_scheduler_step(s));
    NBT_OK(nb_lr_scheduler_step(s));
    const double lr = nb_optimizer_get_lr(opt);
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_step(s), "OneCycleLR: Tried to step 4 times. The specified number of total steps is 2");
    ck_assert(nb_lr_scheduler_last_epoch(s) == 2 && nb_optimizer_get_lr(opt) == lr); /* a failed step changes nothing */
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_step_metric(s, 1.0), "OneCycleLR: step() takes no metric");
    nb_lr_scheduler_free(s);
    s = nb_linear_lr(opt, 0, 1, 4); /* PyTorch accepts start_factor 0 and divides by zero at the first step */
    ck_assert_ptr_nonnull(s);
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_step(s), "LinearLR: float division by zero");
    nb_lr_scheduler_free(s);
    s = nb_constant_lr(opt, 0, 1); /* and ConstantLR factor 0 at total_iters */
    ck_assert_ptr_nonnull(s);
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_step(s), "ConstantLR: float division by zero");
    nb_lr_scheduler_free(s);
    NBT_OK(nb_optimizer_set_lr(opt, 0.1));

    nb_reduce_lr_on_plateau_options po = nb_reduce_lr_on_plateau_defaults();
    po.factor = 1.0;
    NBT_FAILS_WITH(nb_reduce_lr_on_plateau(opt, &po), "ReduceLROnPlateau: Factor should be < 1.0.");
    po = nb_reduce_lr_on_plateau_defaults(), po.mode = "up";
    NBT_FAILS_WITH(nb_reduce_lr_on_plateau(opt, &po), "ReduceLROnPlateau: mode up is unknown!");
    po = nb_reduce_lr_on_plateau_defaults(), po.threshold_mode = "pct";
    NBT_FAILS_WITH(nb_reduce_lr_on_plateau(opt, &po), "ReduceLROnPlateau: threshold mode pct is unknown!");
    po = nb_reduce_lr_on_plateau_defaults(), po.min_lrs = (double[]){0, 0}, po.n_min_lrs = 2;
    NBT_FAILS_WITH(nb_reduce_lr_on_plateau(opt, &po), "ReduceLROnPlateau: expected 1 min_lrs, got 2");
    nb_lr_scheduler *plateau = nb_reduce_lr_on_plateau(opt, NULL);
    ck_assert_ptr_nonnull(plateau);
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_step(plateau), "step() missing 1 required positional argument: 'metrics'");
    ck_assert(isnan(nb_lr_scheduler_base_lr(plateau)));

    /* SequentialLR: takes over its schedulers even when it fails (ASan checks the frees) */
    NBT_FAILS_WITH(nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_step_lr(opt, 1, 0.5), nb_step_lr(opt, 1, 0.5)}, 2,
                                    (int64_t[]){1, 2}, 2),
                   "Sequential Schedulers expects number of schedulers provided to be one more than the number of "
                   "milestone points, but got number of schedulers 2 and the number of milestones to be equal to 2");
    NBT_FAILS_WITH(nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_step_lr(opt, 1, 0.5), nb_step_lr(other, 1, 0.5)}, 2,
                                    (int64_t[]){3}, 1),
                   "got schedulers at index 1 to be different than the optimizer passed in");
    NBT_FAILS_WITH(nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_step_lr(opt, 1, 0.5), NULL}, 2, (int64_t[]){3}, 1),
                   "SequentialLR: argument 'schedulers[1]' is NULL");
    NBT_FAILS_WITH(nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_step_lr(opt, 1, 0.5), nb_step_lr(opt, 1, 0.5)}, 2,
                                    NULL, 1),
                   "SequentialLR: expected increasing milestones, but got NULL");
    NBT_FAILS_WITH(nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_step_lr(opt, 1, 0.5), nb_step_lr(opt, 1, 0.5),
                                                                 nb_step_lr(opt, 1, 0.5)}, 3, (int64_t[]){4, 4}, 2),
                   "SequentialLR: expected increasing milestones");
    NBT_FAILS_WITH(nb_sequential_lr(opt, (nb_lr_scheduler *[]){nb_reduce_lr_on_plateau(opt, NULL)}, 1, NULL, 0),
                   "SequentialLR: schedulers[0] cannot be sequenced");
    nb_lr_scheduler *one = nb_step_lr(opt, 1, 0.5);
    NBT_FAILS_WITH(nb_sequential_lr(opt, (nb_lr_scheduler *[]){one, one}, 2, (int64_t[]){3}, 1),
                   "SequentialLR: schedulers[1] appears more than once");
    nb_lr_scheduler *kid = nb_step_lr(opt, 1, 0.5);
    nb_lr_scheduler *seq = nb_sequential_lr(opt, &kid, 1, NULL, 0);
    ck_assert_ptr_nonnull(seq);
    NBT_FAILS_WITH(nb_sequential_lr(opt, &kid, 1, NULL, 0), "SequentialLR: schedulers[0] already belongs to a SequentialLR");
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_step(kid), "StepLR: this scheduler belongs to a SequentialLR: step that one");
    nb_lr_scheduler_free(kid); /* refused: the SequentialLR frees it */
    ck_assert(strstr(nb_last_error(), "belongs to a SequentialLR, which frees it"));
    NBT_OK(nb_lr_scheduler_step(seq));
    ck_assert_str_eq(nb_lr_scheduler_name(seq), "SequentialLR");

    /* state entries: names, counts and values are checked */
    char name[64];
    ck_assert_int_eq(nb_lr_scheduler_state_count(seq), 6); /* last_epoch, _last_lr, and the StepLR's 4 */
    nb_tensor *t = NBT_NOTNULL(nb_lr_scheduler_state_entry(seq, 3, name, sizeof name));
    ck_assert_str_eq(name, "_schedulers.0._step_count");
    NBT_FAILS_WITH(nb_lr_scheduler_state_entry(seq, 6, name, sizeof name), "index 6 is out of range for 6 state entries");
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_load_state_entry(seq, "_schedulers.1.last_epoch", t), "scheduler index 1 in '_schedulers.1.last_epoch' is out of range for 1 schedulers");
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_load_state_entry(seq, "_schedulers.0.gamma", t), "StepLR: load_state: this scheduler has no state '_schedulers.0.gamma'");
    nb_tensor *half = NBT_NOTNULL(nb_scalar(NB_F64, 2.5)), *two = NBT_NOTNULL(nb_zeros(NB_F64, NB_SHAPE(2)));
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_load_state_entry(seq, "last_epoch", half), "SequentialLR: load_state: 'last_epoch' expects integers >= 0, but got 2.5");
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_load_state_entry(seq, "_last_lr", two), "'_last_lr' expects 1 value, but got 2");
    NBT_STATUS_FAILS_WITH(nb_lr_scheduler_load_state(seq, 3, 0.1), "use nb_lr_scheduler_load_state_entry");
    NBT_OK(nb_lr_scheduler_load_state_entry(seq, "_schedulers.0._step_count", t));
    nb_lr_scheduler_free(seq);
    nb_lr_scheduler_free(plateau);
    nb_optimizer_free(opt);
    nb_optimizer_free(other);
    nb_optimizer_free(ada);
    nb_tensor *r[] = {p, q, t, half, two};
    for (int i = 0; i < 5; i++) nb_tensor_release(r[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_loop_test(tc, test_pytorch_trajectory, 0, nbt_h5_loop_count(ref(), "ncfg"));
    tcase_add_test(tc, test_state_restore);
    tcase_add_test(tc, test_load_state_errors);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_skip_without_grad);
    tcase_add_test(tc, test_thread_determinism);
    tcase_add_loop_test(tc, test_pytorch_schedulers, 0, nbt_h5_loop_count(ref(), "nsched"));
    tcase_add_test(tc, test_scheduler_restore);
    tcase_add_test(tc, test_param_groups_api);
    tcase_add_test(tc, test_scheduler_errors);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
