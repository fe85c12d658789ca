/* nabla/checkpoint.h: training resumed from a checkpoint is bitwise an
 * uninterrupted run (SGD with momentum and two parameter groups under StepLR;
 * AMSGrad Adam under a SequentialLR; the generators that draw dropout masks
 * and batches); a checkpoint PyTorch wrote (tests/pytorch/checkpoint_reference.py)
 * continues as PyTorch continued it; and every bad, missing, mismatched or
 * corrupt entry fails with a message naming it and changes nothing, the
 * checksum catching what the other checks cannot (a flipped bit, an entry
 * added or removed); a save removes the temporaries of killed writers. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T(...) NB_SHAPE(__VA_ARGS__)

static char tmp_path[3][128];

static void make_paths(void) {
    for (int i = 0; i < 3; i++) snprintf(tmp_path[i], sizeof tmp_path[i], "checkpoint_%d_%d.h5", (int)getpid(), i);
}

static void remove_paths(void) {
    for (int i = 0; i < 3; i++) remove(tmp_path[i]);
}

/* ---- a training run: the small net of testutil, an optimizer, a scheduler,
 * two generators (init and dropout; batches), and an epoch counter ---- */
enum { RUN_SGD, RUN_ADAM };

typedef struct run {
    nb_rng net_rng, data_rng;
    nb_rng *rngs[2];
    const char *rng_names[2];
    nb_module *net;
    nb_optimizer *opt;
    nb_lr_scheduler *sched;
    nb_tensor *epoch; /* extra entry, 0-d int64 */
    nb_named_tensor extra[1];
    nb_checkpoint c;
} run;

static void run_init(run *r, int kind, uint64_t seed) {
    memset(r, 0, sizeof *r);
    nb_rng_seed(&r->net_rng, seed);
    nb_rng_seed(&r->data_rng, seed + 1000);
    r->net = nbt_small_net(&r->net_rng);
    ck_assert_ptr_nonnull(r->net);
    nb_param_list ps = nb_module_parameter_list(r->net);
    ck_assert_int_gt(ps.n, 4);
    if (kind == RUN_SGD) { /* conv weights and biases with weight decay, the rest without */
        nb_sgd_options o = nb_sgd_defaults();
        o.lr = 0.05, o.momentum = 0.9, o.weight_decay = 1e-3, o.nesterov = true;
        r->opt = nb_sgd(ps.params, 4, &o);
        o.weight_decay = 0, o.nesterov = false, o.dampening = 0.1;
        ck_assert_ptr_nonnull(r->opt);
        NBT_OK(nb_sgd_add_param_group(r->opt, ps.params + 4, ps.n - 4, &o));
        r->sched = nb_step_lr(r->opt, 2, 0.5);
    } else {
        nb_adam_options o = nb_adam_defaults();
        o.lr = 0.01, o.amsgrad = true, o.weight_decay = 1e-4;
        r->opt = nb_adam(ps.params, ps.n, &o);
        ck_assert_ptr_nonnull(r->opt);
        nb_lr_scheduler *parts[2] = {nb_linear_lr(r->opt, 0.2, 1.0, 2), nb_cosine_annealing_lr(r->opt, 5, 1e-4)};
        r->sched = nb_sequential_lr(r->opt, parts, 2, (int64_t[]){2}, 1);
    }
    nb_param_list_free(&ps);
    ck_assert_ptr_nonnull(r->sched);
    r->epoch = nb_scalar(NB_I64, 0);
    r->rngs[0] = &r->net_rng, r->rngs[1] = &r->data_rng;
    r->rng_names[0] = "init", r->rng_names[1] = "data";
    r->extra[0] = (nb_named_tensor){"epoch", r->epoch};
    r->c = (nb_checkpoint){.model = r->net, .optimizer = r->opt, .scheduler = r->sched, .rngs = r->rngs,
                           .rng_names = r->rng_names, .nrngs = 2, .extra = r->extra, .nextra = 1};
}

static void run_free(run *r) {
    nb_lr_scheduler_free(r->sched);
    nb_optimizer_free(r->opt);
    nb_module_free(r->net);
    nb_tensor_release(r->epoch);
}

/* n training steps, each on a fresh batch from data_rng, with dropout from net_rng. */
static void run_steps(run *r, int n) {
    for (int k = 0; k < n; k++) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *x = nb_rand_normal(&r->data_rng, NB_F32, T(6, 3, 8, 8), 0.0, 1.0);
        int64_t labels[6];
        for (int i = 0; i < 6; i++) labels[i] = (int64_t)nb_rng_below(&r->data_rng, 5);
        nb_tensor *y = nb_from_data(NB_I64, T(6), labels);
        nb_tensor *loss = nb_nll_loss(nb_module_forward(r->net, x), y, NB_REDUCTION_MEAN);
        ck_assert_ptr_nonnull(loss);
        nb_optimizer_zero_grad(r->opt);
        NBT_OK(nb_backward(loss));
        NBT_OK(nb_optimizer_step(r->opt));
        NBT_OK(nb_lr_scheduler_step(r->sched));
        nb_scope_end(s);
        nb_tensor_i64(r->epoch)[0]++;
    }
}

/* A dataset as float64 (float data) or int64, a new tensor. */
static nb_tensor *read_any(const char *path, const char *name) {
    nb_tensor *t = nb_hdf5_read(path, name, NB_F64);
    if (!t) t = nb_hdf5_read(path, name, NB_I64);
    ck_assert_msg(t != NULL, "%s in %s: %s", name, path, nb_last_error());
    return t;
}

/* Two files hold the same names and bitwise the same values. */
static void assert_same_files(const char *a, const char *b, const char *what) {
    char **na = NULL, **nb = NULL;
    int n = 0, m = 0;
    NBT_OK(nb_hdf5_list(a, &na, &n));
    NBT_OK(nb_hdf5_list(b, &nb, &m));
    ck_assert_msg(n == m, "%s: %d entries vs %d", what, n, m);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(strcmp(na[i], nb[i]) == 0, "%s: entry %s vs %s", what, na[i], nb[i]);
        nb_tensor *x = read_any(a, na[i]), *y = read_any(b, nb[i]);
        nbt_assert_bitwise_equal(x, y);
        nb_tensor_release(x);
        nb_tensor_release(y);
    }
    nb_hdf5_names_free(na, n);
    nb_hdf5_names_free(nb, m);
}

/* Two runs' whole states (saved as checkpoints) are bitwise equal. */
static void assert_same_state(run *a, run *b, const char *what) {
    NBT_OK(nb_checkpoint_save(tmp_path[1], &a->c));
    NBT_OK(nb_checkpoint_save(tmp_path[2], &b->c));
    assert_same_files(tmp_path[1], tmp_path[2], what);
}

static void resume_is_bitwise(int kind) {
    make_paths();
    run straight, first, second;
    run_init(&straight, kind, 1);
    run_steps(&straight, 5);

    run_init(&first, kind, 1);
    run_steps(&first, 2);
    NBT_OK(nb_checkpoint_save(tmp_path[0], &first.c));
    /* Another seed: the load must replace every weight, state and generator. */
    run_init(&second, kind, 77);
    run_steps(&second, 1);
    NBT_OK(nb_checkpoint_load(tmp_path[0], &second.c));
    ck_assert_int_eq(nb_tensor_i64(second.epoch)[0], 2);
    assert_same_state(&first, &second, "right after the load");
    ck_assert_int_eq(nb_lr_scheduler_last_epoch(second.sched), 2);
    ck_assert(nb_optimizer_get_lr(second.opt) == nb_optimizer_get_lr(first.opt));
    run_steps(&second, 3);
    assert_same_state(&straight, &second, "resumed vs uninterrupted");
    run_free(&straight);
    run_free(&first);
    run_free(&second);
    remove_paths();
}

START_TEST(test_resume_sgd_momentum_step_lr) { resume_is_bitwise(RUN_SGD); }
END_TEST

START_TEST(test_resume_adam_sequential_lr) { resume_is_bitwise(RUN_ADAM); }
END_TEST

/* Parts left NULL are neither written nor read; the file's other datasets are ignored. */
START_TEST(test_parts_are_optional) {
    make_paths();
    run a, b;
    run_init(&a, RUN_ADAM, 3);
    run_steps(&a, 2);
    nb_checkpoint model_only = {.model = a.net};
    NBT_OK(nb_checkpoint_save(tmp_path[0], &model_only));
    char **names = NULL;
    int n = 0;
    NBT_OK(nb_hdf5_list(tmp_path[0], &names, &n));
    ck_assert_int_eq(n, nb_module_state_count(a.net) + 1); /* and the checksum */
    for (int i = 0; i < n; i++)
        ck_assert_msg(strncmp(names[i], "model.", 6) == 0 || strcmp(names[i], "checkpoint.checksum") == 0, "%s", names[i]);
    nb_hdf5_names_free(names, n);
    /* A whole checkpoint restores just the model into a model-only request. */
    NBT_OK(nb_checkpoint_save(tmp_path[0], &a.c));
    run_init(&b, RUN_ADAM, 4);
    nb_checkpoint b_model = {.model = b.net};
    NBT_OK(nb_checkpoint_load(tmp_path[0], &b_model));
    ck_assert_int_eq(nb_optimizer_state_count(b.opt), 1 * 2); /* still no per-parameter state: lr, betas */
    ck_assert_int_eq(nb_tensor_i64(b.epoch)[0], 0);
    nb_checkpoint am = {.model = a.net}, bm = {.model = b.net};
    NBT_OK(nb_checkpoint_save(tmp_path[1], &am));
    NBT_OK(nb_checkpoint_save(tmp_path[2], &bm));
    assert_same_files(tmp_path[1], tmp_path[2], "model only");
    run_free(&a);
    run_free(&b);
    remove_paths();
}
END_TEST

/* ---- untrusted files: every problem is named, nothing changes ---- */
typedef struct entries {
    char **names;
    nb_tensor **t;
    int n;
} entries;

static entries read_all(const char *path) {
    entries e = {0};
    NBT_OK(nb_hdf5_list(path, &e.names, &e.n));
    e.t = calloc((size_t)e.n + 1, sizeof *e.t);
    for (int i = 0; i < e.n; i++) e.t[i] = read_any(path, e.names[i]);
    return e;
}

static void entries_free(entries *e) {
    for (int i = 0; i < e->n; i++) nb_tensor_release(e->t[i]);
    free(e->t);
    nb_hdf5_names_free(e->names, e->n);
}

/* Write e to path with entry `name` dropped (replacement NULL) or replaced,
 * and `added` (if not NULL) appended; the checksum kept only if keep_sum. */
static void write_edited(const char *path, const entries *e, const char *name, nb_tensor *replacement,
                         const char *added, nb_tensor *added_t, bool keep_sum) {
    nb_named_tensor *out = calloc((size_t)e->n + 1, sizeof *out);
    int n = 0, found = 0;
    for (int i = 0; i < e->n; i++) {
        if (!keep_sum && strcmp(e->names[i], "checkpoint.checksum") == 0) continue;
        if (name && strcmp(e->names[i], name) == 0) {
            found = 1;
            if (replacement) out[n++] = (nb_named_tensor){e->names[i], replacement};
        } else {
            out[n++] = (nb_named_tensor){e->names[i], e->t[i]};
        }
    }
    ck_assert_msg(!name || found, "the good checkpoint has no %s", name);
    if (added) out[n++] = (nb_named_tensor){added, added_t};
    NBT_OK(nb_hdf5_save(path, out, n));
    free(out);
}

/* An edit without the checksum: what the other checks must catch alone. */
static void write_variant(const char *path, const entries *e, const char *name, nb_tensor *replacement,
                          const char *added, nb_tensor *added_t) {
    write_edited(path, e, name, replacement, added, added_t, false);
}

/* Loading `bad` into r (what c asks for of it) fails with `msg` and leaves
 * r's whole state as it was. */
static void assert_load_fails_unchanged(run *r, const nb_checkpoint *c, const char *bad, const char *msg) {
    NBT_OK(nb_checkpoint_save(tmp_path[1], &r->c));
    NBT_STATUS_FAILS_WITH(nb_checkpoint_load(bad, c), msg);
    NBT_OK(nb_checkpoint_save(tmp_path[2], &r->c));
    assert_same_files(tmp_path[1], tmp_path[2], msg);
}

/* ... with the checksum's absence allowed, to reach the other checks. */
static void assert_fails_unchanged(run *r, const char *bad, const char *msg) {
    nb_checkpoint c = r->c;
    c.allow_missing_checksum = true;
    assert_load_fails_unchanged(r, &c, bad, msg);
}

static nb_tensor *filled(int ndim, const int64_t *shape, double v) { return nb_full(NB_F64, ndim, shape, v); }

START_TEST(test_bad_files_change_nothing) {
    make_paths();
    char bad[160];
    snprintf(bad, sizeof bad, "checkpoint_bad_%d.h5", (int)getpid());
    /* A good checkpoint from another point of another run, then r, trained elsewhere. */
    run g, r;
    run_init(&g, RUN_ADAM, 5);
    run_steps(&g, 4);
    NBT_OK(nb_checkpoint_save(tmp_path[0], &g.c));
    entries e = read_all(tmp_path[0]);
    run_init(&r, RUN_ADAM, 6);
    run_steps(&r, 2);

    nb_tensor *t;
    struct { const char *name; nb_tensor *replacement; const char *added; nb_tensor *added_t; const char *msg; } cases[] = {
        {"model.0.weight", NULL, NULL, NULL, "missing key model.0.weight"},
        {"model.0.weight", filled(T(4, 3, 3, 2), 0), NULL, NULL, "model.0.weight: expected [4, 3, 3, 3], file has [4, 3, 3, 2]"},
        {NULL, NULL, "model.99.weight", filled(T(2), 0), "unexpected key model.99.weight"},
        {"model.1.num_batches_tracked", nb_zeros(NB_I64, T(2)), NULL, NULL, "model.1.num_batches_tracked: expected [], file has [2]"},
        {"optimizer.state.9.exp_avg", filled(T(7), 0), NULL, NULL, "optimizer.state.9.exp_avg: Adam: load_state: 'state.9.exp_avg' expects shape [5], but got [7]"},
        {"optimizer.state.2.step", filled(0, NULL, -1), NULL, NULL, "'state.2.step' expects a whole number >= 0, but got -1"},
        {"optimizer.state.2.step", filled(0, NULL, 2.5), NULL, NULL, "'state.2.step' expects a whole number >= 0, but got 2.5"},
        {"optimizer.state.2.exp_avg_sq", filled(T(4), -1), NULL, NULL, "'state.2.exp_avg_sq' expects values >= 0"},
        {NULL, NULL, "optimizer.state.0.bogus", filled(0, NULL, 0), "this optimizer has no state 'bogus'"},
        {NULL, NULL, "optimizer.state.99.exp_avg", filled(0, NULL, 0), "parameter index 99"},
        {"optimizer.param_groups.0.lr", NULL, NULL, NULL, "lacks optimizer.param_groups.0.lr"},
        {"optimizer.param_groups.0.betas", filled(T(2), 1.5), NULL, NULL, "Invalid beta parameter at index 0: 1.5"},
        {"scheduler.last_epoch", filled(0, NULL, 2.5), NULL, NULL, "'last_epoch' expects integers"},
        {"scheduler._schedulers.1._last_lr", NULL, NULL, NULL, "lacks scheduler._schedulers.1._last_lr"},
        {NULL, NULL, "scheduler.nope", filled(0, NULL, 0), "this scheduler has no state 'nope'"},
        {"rng.init", nb_zeros(NB_I64, T(4)), NULL, NULL, "rng.init: a generator's state cannot be all zero"},
        {"rng.data", nb_zeros(NB_I64, T(3)), NULL, NULL, "rng.data: expected [4], file has [3]"},
        {"rng.data", filled(T(4), 1), NULL, NULL, "rng.data"}, /* float data for a generator */
        {"epoch", NULL, NULL, NULL, "missing key epoch"},
        {"epoch", nb_zeros(NB_I64, T(2)), NULL, NULL, "epoch: expected [], file has [2]"},
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < ncases; i++) {
        write_variant(bad, &e, cases[i].name, cases[i].replacement, cases[i].added, cases[i].added_t);
        assert_fails_unchanged(&r, bad, cases[i].msg);
        nb_tensor_release(cases[i].replacement);
        nb_tensor_release(cases[i].added_t);
    }
    /* A parameter's state in part: the rest would come back as zeros. */
    write_variant(bad, &e, "optimizer.state.2.exp_avg_sq", NULL, NULL, NULL);
    assert_fails_unchanged(&r, bad, "lacks optimizer.state.2.exp_avg_sq");
    write_variant(bad, &e, "optimizer.state.0.step", NULL, NULL, NULL);
    assert_fails_unchanged(&r, bad, "lacks optimizer.state.0.step");
    /* What only the checksum sees: one flipped bit in a weight, a whole
     * parameter's state removed, an entry added; and no checksum at all. */
    nb_tensor *w = read_any(tmp_path[0], "model.0.weight");
    nb_tensor *w32 = nb_to_dtype(w, NB_F32);
    uint32_t bits;
    memcpy(&bits, nb_tensor_f32(w32), sizeof bits);
    bits ^= 1u << 3;
    memcpy(nb_tensor_f32(w32), &bits, sizeof bits);
    write_edited(bad, &e, "model.0.weight", w32, NULL, NULL, true);
    assert_load_fails_unchanged(&r, &r.c, bad, "checksum mismatch");
    nb_checkpoint model_only = {.model = r.net};
    assert_load_fails_unchanged(&r, &model_only, bad, "checksum mismatch"); /* whatever part is asked for */
    nb_tensor_release(w);
    nb_tensor_release(w32);
    entries e2 = {0};
    NBT_OK(nb_hdf5_list(tmp_path[0], &e2.names, &e2.n));
    e2.t = calloc((size_t)e2.n + 1, sizeof *e2.t);
    int kept = 0;
    for (int i = 0; i < e2.n; i++) { /* every optimizer.state.3.* gone */
        if (strncmp(e2.names[i], "optimizer.state.3.", 18) == 0) {
            free(e2.names[i]);
            continue;
        }
        e2.names[kept] = e2.names[i];
        e2.t[kept++] = read_any(tmp_path[0], e2.names[i]);
    }
    ck_assert_int_lt(kept, e2.n);
    e2.n = kept;
    write_edited(bad, &e2, NULL, NULL, NULL, NULL, true);
    assert_load_fails_unchanged(&r, &r.c, bad, "checksum mismatch");
    nb_checkpoint unverified = r.c;
    unverified.allow_missing_checksum = true; /* the checksum present is checked all the same */
    assert_load_fails_unchanged(&r, &unverified, bad, "checksum mismatch");
    entries_free(&e2);
    t = filled(0, NULL, 1);
    write_edited(bad, &e, NULL, NULL, "notes", t, true);
    assert_load_fails_unchanged(&r, &r.c, bad, "checksum mismatch");
    nb_tensor_release(t);
    write_variant(bad, &e, NULL, NULL, NULL, NULL);
    assert_load_fails_unchanged(&r, &r.c, bad, "no checkpoint.checksum");
    t = nb_zeros(NB_I64, T(2));
    write_edited(bad, &e, "checkpoint.checksum", t, NULL, NULL, true);
    assert_load_fails_unchanged(&r, &r.c, bad, "checkpoint.checksum: expected one int64");
    nb_tensor_release(t);
    /* Several problems: all listed in one message. */
    t = filled(T(5), 0);
    write_variant(bad, &e, "model.8.bias", t, "model.extra", t);
    assert_fails_unchanged(&r, bad, "2 problems loading");
    nb_tensor_release(t);
    /* Not a checkpoint at all, or no file. */
    FILE *f = fopen(bad, "wb");
    fputs("not an HDF5 file", f);
    fclose(f);
    assert_fails_unchanged(&r, bad, "not an HDF5 file");
    remove(bad);
    assert_fails_unchanged(&r, bad, bad);
    /* A checkpoint of another optimizer, another scheduler. */
    run s;
    run_init(&s, RUN_SGD, 5);
    run_steps(&s, 1);
    NBT_OK(nb_checkpoint_save(bad, &s.c));
    assert_fails_unchanged(&r, bad, "lacks scheduler._schedulers.0.last_epoch");
    nb_checkpoint no_sched = r.c;
    no_sched.scheduler = NULL;
    assert_load_fails_unchanged(&r, &no_sched, bad, "lacks optimizer.param_groups.0.betas");
    /* The good file still loads after all that. */
    NBT_OK(nb_checkpoint_load(tmp_path[0], &r.c));
    assert_same_state(&g, &r, "good file after bad ones");
    run_free(&s);
    run_free(&g);
    run_free(&r);
    entries_free(&e);
    remove(bad);
    remove_paths();
}
END_TEST

START_TEST(test_extra_entries) {
    make_paths();
    nb_tensor *a = nb_from_data(NB_F32, T(3), (float[]){1.5f, -2, 3});
    nb_tensor *b = nb_scalar(NB_I64, 42);
    nb_named_tensor ex[2] = {{"stats.a", a}, {"step", b}};
    nb_checkpoint c = {.extra = ex, .nextra = 2};
    NBT_OK(nb_checkpoint_save(tmp_path[0], &c));
    nb_tensor *a2 = nb_zeros(NB_F64, T(3)), *b2 = nb_zeros(NB_I64, 0, NULL);
    nb_named_tensor in[2] = {{"stats.a", a2}, {"step", b2}};
    nb_checkpoint d = {.extra = in, .nextra = 2};
    NBT_OK(nb_checkpoint_load(tmp_path[0], &d));
    nbt_assert_values(a2, (double[]){1.5, -2, 3}, 3, 0, 0); /* converted to the tensor's dtype */
    ck_assert_int_eq(nb_tensor_i64(b2)[0], 42);
    /* A missing or misshapen extra fails, and the others are untouched too. */
    nb_tensor *wrong = nb_zeros(NB_F32, T(4));
    nb_named_tensor bad[2] = {{"step", b2}, {"stats.a", wrong}};
    nb_tensor_i64(b2)[0] = 7;
    nb_checkpoint e = {.extra = bad, .nextra = 2};
    NBT_STATUS_FAILS_WITH(nb_checkpoint_load(tmp_path[0], &e), "stats.a: expected [4], file has [3]");
    ck_assert_int_eq(nb_tensor_i64(b2)[0], 7);
    nb_named_tensor missing[1] = {{"nope", wrong}};
    nb_checkpoint m = {.extra = missing, .nextra = 1};
    NBT_STATUS_FAILS_WITH(nb_checkpoint_load(tmp_path[0], &m), "missing key nope");
    /* A non-contiguous tensor cannot be filled without allocating: refused. */
    nb_tensor *mat = nb_zeros(NB_F32, T(3, 1)), *tr = nb_transpose(mat, 0, 1);
    nb_tensor *col = nb_zeros(NB_F32, T(3, 2)), *view = nb_narrow(col, 1, 0, 1);
    nb_named_tensor nc[1] = {{"stats.a", view}};
    nb_checkpoint n = {.extra = nc, .nextra = 1};
    NBT_STATUS_FAILS_WITH(nb_checkpoint_load(tmp_path[0], &n), "must be contiguous");
    nb_tensor *list[] = {a, b, a2, b2, wrong, mat, tr, col, view};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) nb_tensor_release(list[i]);
    remove_paths();
}
END_TEST

/* A checkpoint PyTorch wrote (optimizer.state_dict() and scheduler.state_dict()
 * under nabla's names, the step as a float32 0-d) resumes as PyTorch resumed it. */
START_TEST(test_pytorch_checkpoint) {
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.h5", getenv("NB_TEST_DATA") ? getenv("NB_TEST_DATA") : ".");
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_module *net = nb_linear_module(4, 3, true, &rng);
    NBT_OK(nb_module_to_dtype(net, NB_F64));
    nb_param_list ps = nb_module_parameter_list(net);
    nb_adam_options o = nb_adam_defaults();
    o.lr = 0.1, o.weight_decay = 0.01;
    nb_optimizer *opt = nb_adam(ps.params, ps.n, &o);
    nb_param_list_free(&ps);
    nb_lr_scheduler *sched = nb_step_lr(opt, 2, 0.5);
    ck_assert_ptr_nonnull(sched);
    nb_checkpoint c = {.model = net, .optimizer = opt, .scheduler = sched};
    NBT_STATUS_FAILS_WITH(nb_checkpoint_load(path, &c), "no checkpoint.checksum"); /* h5py wrote none */
    c.allow_missing_checksum = true;
    NBT_OK(nb_checkpoint_load(path, &c));
    nb_tensor *x = NBT_NOTNULL(nb_hdf5_read(path, "x", NB_F64)), *y = NBT_NOTNULL(nb_hdf5_read(path, "y", NB_F64));
    nb_tensor *n = NBT_NOTNULL(nb_hdf5_read(path, "nafter", NB_I64));
    for (int64_t k = 0; k < nb_tensor_i64(n)[0]; k++) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *loss = nb_mse_loss(nb_module_forward(net, x), y, NB_REDUCTION_MEAN);
        nb_optimizer_zero_grad(opt);
        NBT_OK(nb_backward(loss));
        NBT_OK(nb_optimizer_step(opt));
        NBT_OK(nb_lr_scheduler_step(sched));
        nb_scope_end(s);
    }
    const char *names[2] = {"weight", "bias"};
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof key, "after.%s", names[i]);
        nb_tensor *want = NBT_NOTNULL(nb_hdf5_read(path, key, NB_F64));
        nbt_assert_values(nb_module_state(net, names[i]), nb_tensor_f64(want), nb_tensor_numel(want), 1e-12, 1e-10);
        nb_tensor_release(want);
    }
    nb_tensor *lr = NBT_NOTNULL(nb_hdf5_read(path, "after.lr", NB_F64));
    ck_assert(nb_optimizer_get_lr(opt) == nb_tensor_f64(lr)[0]);
    nb_tensor *list[] = {x, y, n, lr};
    for (int i = 0; i < 4; i++) nb_tensor_release(list[i]);
    nb_lr_scheduler_free(sched);
    nb_optimizer_free(opt);
    nb_module_free(net);
}
END_TEST

/* A save removes path.tmp.<pid> of a process that no longer exists, and
 * nothing else: not a live process's, not another file's, not other names. */
START_TEST(test_stale_temporaries) {
    make_paths();
    pid_t child = fork();
    if (child == 0) _exit(0);
    ck_assert_int_gt(child, 0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child); /* now no process has that pid (until it is reused) */
    char names[6][300];
    snprintf(names[0], sizeof names[0], "%s.tmp.%d", tmp_path[0], (int)child);      /* stale: removed */
    snprintf(names[1], sizeof names[1], "%s.tmp.%d", tmp_path[0], (int)getppid());  /* a live writer */
    snprintf(names[2], sizeof names[2], "%s.tmp.%d", tmp_path[1], (int)child);      /* another checkpoint's */
    snprintf(names[3], sizeof names[3], "%s.tmp.%dx", tmp_path[0], (int)child);     /* not the pattern */
    snprintf(names[4], sizeof names[4], "%s.tmp.0%d", tmp_path[0], (int)child);     /* nor this */
    snprintf(names[5], sizeof names[5], "%s.bak.%d", tmp_path[0], (int)child);
    for (int i = 0; i < 6; i++) {
        FILE *f = fopen(names[i], "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    run r;
    run_init(&r, RUN_SGD, 1);
    NBT_OK(nb_checkpoint_save(tmp_path[0], &r.c));
    struct stat sb;
    ck_assert_msg(stat(names[0], &sb) != 0, "%s was not removed", names[0]);
    for (int i = 1; i < 6; i++) {
        ck_assert_msg(stat(names[i], &sb) == 0, "%s was removed", names[i]);
        remove(names[i]);
    }
    run_free(&r);
    remove_paths();
}
END_TEST

int main(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, test_resume_sgd_momentum_step_lr);
    tcase_add_test(tc, test_resume_adam_sequential_lr);
    tcase_add_test(tc, test_parts_are_optional);
    tcase_add_test(tc, test_bad_files_change_nothing);
    tcase_add_test(tc, test_extra_entries);
    tcase_add_test(tc, test_pytorch_checkpoint);
    tcase_add_test(tc, test_stale_temporaries);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
