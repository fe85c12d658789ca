/* checkpoint.c: save and restore a whole training state (see checkpoint.h). */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nb_named_tensor *e;
    int n, cap;
    nb_tensor **owned; /* tensors made here, released at the end */
    int nowned;
} entries;

static bool push(entries *l, const char *name, nb_tensor *t, bool owned) {
    if (!t) return false;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        nb_named_tensor *e = realloc(l->e, (size_t)cap * sizeof *e);
        nb_tensor **o = realloc(l->owned, (size_t)cap * sizeof *o);
        if (e) l->e = e;
        if (o) l->owned = o;
        if (!e || !o) return false;
        l->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return false;
    l->e[l->n++] = (nb_named_tensor){copy, t};
    if (owned) l->owned[l->nowned++] = t;
    return true;
}

static void entries_free(entries *l) {
    for (int i = 0; i < l->n; i++) free((char *)l->e[i].name);
    for (int i = 0; i < l->nowned; i++) nb_tensor_release(l->owned[i]);
    free(l->e);
    free(l->owned);
}

static int add_model_entry(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param;
    char key[512];
    snprintf(key, sizeof key, "model.%s", name);
    return push(ctx, key, t, false) ? 0 : 1;
}

static nb_tensor *rng_tensor(const nb_rng *r) {
    int64_t v[4];
    memcpy(v, r->s, sizeof v);
    return nb_from_data(NB_I64, NB_SHAPE(4), v);
}

nb_status checkpoint_save(const char *path, const train_state *s) {
    entries l = {0};
    bool ok = nb_module_visit_state(s->model, add_model_entry, &l) == NB_OK;
    char name[256], key[300];
    for (int64_t k = 0; ok && k < nb_optimizer_state_count(s->opt); k++) {
        nb_tensor *t = nb_optimizer_state_entry(s->opt, k, name, sizeof name);
        snprintf(key, sizeof key, "optimizer.%s", name);
        ok = push(&l, key, t, false);
    }
    for (int64_t k = 0; ok && s->sched && k < nb_lr_scheduler_state_count(s->sched); k++) {
        nb_tensor *t = nb_lr_scheduler_state_entry(s->sched, k, name, sizeof name); /* a new tensor */
        snprintf(key, sizeof key, "scheduler.%s", name);
        ok = push(&l, key, t, true);
    }
    nb_tensor *ep = nb_scalar(NB_I64, 0);
    if (ep) nb_tensor_i64(ep)[0] = s->epoch;
    ok = ok && push(&l, "epoch", ep, true);
    for (int i = 0; ok && i < s->nrngs; i++) {
        snprintf(key, sizeof key, "rng.%s", s->rng_names[i]);
        ok = push(&l, key, rng_tensor(s->rngs[i]), true);
    }
    int64_t seed_bits;
    memcpy(&seed_bits, &s->shuffle_seed, sizeof seed_bits);
    ok = ok && push(&l, "data.shuffle_seed", nb_from_data(NB_I64, NB_SHAPE(1), &seed_bits), true);
    if (ok && s->nmetrics > 0) {
        double *m = malloc(sizeof(double) * 5 * (size_t)s->nmetrics);
        for (int i = 0; m && i < s->nmetrics; i++) {
            const epoch_metrics *e = &s->metrics[i];
            double row[5] = {e->epoch, e->train_loss, e->test_loss, e->test_accuracy, e->seconds};
            memcpy(m + 5 * i, row, sizeof row);
        }
        ok = m && push(&l, "metrics", nb_from_data(NB_F64, NB_SHAPE(s->nmetrics, 5), m), true);
        free(m);
    }
    nb_status st = ok ? nb_hdf5_save(path, l.e, l.n) : (nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM);
    entries_free(&l);
    return st;
}

static bool read_scalar(const char *path, const char *name, nb_dtype dtype, double *out) {
    nb_tensor *t = nb_hdf5_read(path, name, dtype);
    bool ok = t && nb_tensor_item(t, out) == NB_OK;
    nb_tensor_release(t);
    return ok;
}

nb_status checkpoint_load(const char *path, train_state *s) {
    /* The model first, strictly, from the "model." entries. */
    entries l = {0};
    if (nb_module_visit_state(s->model, add_model_entry, &l) != NB_OK) {
        entries_free(&l);
        return nb_last_status();
    }
    nb_load_report rep;
    nb_status st = nb_hdf5_load(path, l.e, l.n, false, &rep);
    if (st == NB_OK && rep.nmissing > 0) {
        fprintf(stderr, "checkpoint '%s' lacks %d model entries, e.g. %s\n", path, rep.nmissing, rep.missing[0]);
        st = NB_ERR_IO;
    }
    nb_load_report_free(&rep);
    entries_free(&l);
    if (st != NB_OK) return st;

    /* Then everything else. */
    char **names = NULL;
    int n = 0;
    st = nb_hdf5_list(path, &names, &n);
    for (int i = 0; st == NB_OK && i < n; i++) { /* the optimizer's state and groups' lrs, the scheduler's state */
        const bool opt = strncmp(names[i], "optimizer.", 10) == 0, sched = strncmp(names[i], "scheduler.", 10) == 0;
        if (!opt && !(sched && s->sched)) continue;
        nb_tensor *t = nb_hdf5_read(path, names[i], NB_F64);
        st = !t     ? nb_last_status()
             : opt  ? nb_optimizer_load_state(s->opt, names[i] + 10, t)
                    : nb_lr_scheduler_load_state_entry(s->sched, names[i] + 10, t);
        nb_tensor_release(t);
    }
    nb_hdf5_names_free(names, n);
    if (st != NB_OK) return st;
    double v;
    if (!read_scalar(path, "epoch", NB_I64, &v)) return NB_ERR_IO;
    s->epoch = (int64_t)v;
    for (int i = 0; i < s->nrngs; i++) {
        char key[300];
        snprintf(key, sizeof key, "rng.%s", s->rng_names[i]);
        nb_tensor *t = nb_hdf5_read(path, key, NB_I64);
        if (!t || nb_tensor_numel(t) != 4) {
            nb_tensor_release(t);
            return NB_ERR_IO;
        }
        memcpy(s->rngs[i]->s, nb_tensor_i64(t), sizeof s->rngs[i]->s);
        nb_tensor_release(t);
    }
    nb_tensor *seed = nb_hdf5_read(path, "data.shuffle_seed", NB_I64); /* absent in older checkpoints */
    if (seed && nb_tensor_numel(seed) == 1) memcpy(&s->shuffle_seed, nb_tensor_i64(seed), sizeof s->shuffle_seed);
    nb_tensor_release(seed);
    s->nmetrics = 0;
    nb_tensor *m = nb_hdf5_read(path, "metrics", NB_F64);
    if (m && nb_tensor_ndim(m) == 2 && nb_tensor_shape(m)[1] == 5 && nb_tensor_shape(m)[0] <= CHECKPOINT_MAX_EPOCHS) {
        const double *d = nb_tensor_f64(m);
        for (int64_t i = 0; i < nb_tensor_shape(m)[0]; i++)
            s->metrics[s->nmetrics++] = (epoch_metrics){(int)d[5 * i], d[5 * i + 1], d[5 * i + 2], d[5 * i + 3], d[5 * i + 4]};
    }
    nb_tensor_release(m);
    nb_clear_error();
    return NB_OK;
}
