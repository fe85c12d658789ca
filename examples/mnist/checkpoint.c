/* checkpoint.c: the trainer's own entries around nb_checkpoint_save/load (see checkpoint.h). */
#include "checkpoint.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *const mnist_model_names[] = {"default", "small", "resnet", NULL};
const char *const mnist_optimizer_names[] = {"adadelta", "sgd", "adam", "adamw", "rmsprop", NULL};

int name_index(const char *const *list, const char *name) {
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0) return i;
    return -1;
}

/* The run.<key> entries: the flag each comes from, and the names of an enumeration. */
static const struct {
    const char *key, *flag;
    size_t offset;
    const char *const *names;
} config_fields[] = {
    {"run.model", "--model", offsetof(run_config, model), mnist_model_names},
    {"run.width", "--width", offsetof(run_config, width), NULL},
    {"run.batch_size", "--batch-size", offsetof(run_config, batch_size), NULL},
    {"run.optimizer", "--optimizer", offsetof(run_config, optimizer), mnist_optimizer_names},
    {"run.train_images", "--limit-train (training images)", offsetof(run_config, train_images), NULL},
    {"run.fashion", "--fashion", offsetof(run_config, fashion), NULL},
    {"run.seed", "--seed", offsetof(run_config, seed), NULL},
};
#define NCONFIG ((int)(sizeof config_fields / sizeof config_fields[0]))
#define NOWN (4 + NCONFIG)

static int64_t config_value(const run_config *c, int i) {
    int64_t v;
    memcpy(&v, (const char *)c + config_fields[i].offset, sizeof v);
    return v;
}

/* A config value as the flag would say it. */
static const char *config_str(int i, int64_t v, char *buf, size_t n) {
    const char *const *names = config_fields[i].names;
    int count = 0;
    while (names && names[count]) count++;
    if (names && v >= 0 && v < count) snprintf(buf, n, "%s", names[v]);
    else if (config_fields[i].offset == offsetof(run_config, fashion)) snprintf(buf, n, "%s", v ? "on" : "off");
    else if (config_fields[i].offset == offsetof(run_config, seed)) snprintf(buf, n, "%llu", (unsigned long long)v);
    else snprintf(buf, n, "%lld", (long long)v);
    return buf;
}

static nb_checkpoint library_part(const train_state *s) {
    return (nb_checkpoint){.model = s->model, .optimizer = s->opt, .scheduler = s->sched, .rngs = s->rngs,
                           .rng_names = s->rng_names, .nrngs = s->nrngs};
}

nb_status checkpoint_save(const char *path, const train_state *s) {
    const int64_t n = s->nmetrics, p = s->curve_points;
    if (n < 1 || n != s->epoch || p < 1 || p > CHECKPOINT_CURVE_POINTS)
        return nb_set_error(NB_ERR_ARG, "checkpoint_save: %lld metrics rows for epoch %lld", (long long)n,
                            (long long)s->epoch);
    int64_t seed_bits;
    memcpy(&seed_bits, &s->shuffle_seed, sizeof seed_bits);
    nb_named_tensor e[NOWN] = {{"epoch", nb_scalar(NB_I64, (double)s->epoch)},
                               {"data.shuffle_seed", nb_from_data(NB_I64, NB_SHAPE(1), &seed_bits)},
                               {"metrics", nb_zeros(NB_F64, NB_SHAPE(n, 5))},
                               {"loss_curve", nb_zeros(NB_F64, NB_SHAPE(n, p))}};
    for (int i = 0; i < NCONFIG; i++) {
        e[4 + i] = (nb_named_tensor){config_fields[i].key, nb_scalar(NB_I64, 0)};
        if (e[4 + i].tensor) nb_tensor_i64(e[4 + i].tensor)[0] = config_value(&s->config, i); /* exact, not via double */
    }
    bool ok = true;
    for (int i = 0; i < NOWN; i++) ok = ok && e[i].tensor;
    for (int64_t i = 0; ok && i < n; i++) {
        const epoch_metrics *m = &s->metrics[i];
        const double row[5] = {m->epoch, m->train_loss, m->test_loss, m->test_accuracy, m->seconds};
        memcpy(nb_tensor_f64(e[2].tensor) + 5 * i, row, sizeof row);
        memcpy(nb_tensor_f64(e[3].tensor) + p * i, s->curve[i], sizeof(double) * (size_t)p);
    }
    nb_checkpoint c = library_part(s);
    c.extra = e;
    c.nextra = NOWN;
    nb_status st = ok ? nb_checkpoint_save(path, &c) : nb_last_status();
    for (int i = 0; i < NOWN; i++) nb_tensor_release(e[i].tensor);
    return st;
}

/* ---- load: the trainer's entries, read and checked before anything changes ---- */
static nb_status bad(const char *path, const char *fmt, const char *a, double x, double y) {
    char what[512];
    snprintf(what, sizeof what, fmt, a, x, y);
    return nb_set_error(NB_ERR_IO, "checkpoint '%s': %s", path, what);
}

/* Entry key as a new tensor of dtype and exactly this shape. */
static nb_tensor *read_entry(const char *path, const char *key, nb_dtype dtype, int ndim, const int64_t *shape) {
    nb_tensor *t = nb_hdf5_read(path, key, dtype);
    if (!t) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        nb_set_error(NB_ERR_IO, "checkpoint '%s': %s", path, msg);
        return NULL;
    }
    if (nb_tensor_ndim(t) == ndim && (ndim == 0 || !memcmp(nb_tensor_shape(t), shape, sizeof(int64_t) * (size_t)ndim)))
        return t;
    char want[128], got[128];
    nb_set_error(NB_ERR_IO, "checkpoint '%s': %s: expected shape %s, file has %s", path, key,
                 nb_shape_str(ndim, shape, want, sizeof want),
                 nb_shape_str(nb_tensor_ndim(t), nb_tensor_shape(t), got, sizeof got));
    nb_tensor_release(t);
    return NULL;
}

static nb_status read_config(const char *path, const run_config *want) {
    for (int i = 0; i < NCONFIG; i++) {
        nb_tensor *t = read_entry(path, config_fields[i].key, NB_I64, 0, NULL);
        if (!t) return nb_last_status();
        const int64_t got = nb_tensor_i64(t)[0], expected = config_value(want, i);
        nb_tensor_release(t);
        if (got != expected) {
            char a[64], b[64];
            return nb_set_error(NB_ERR_ARG, "checkpoint '%s' was written with %s %s, this run has %s %s (%s)", path,
                                config_fields[i].flag, config_str(i, got, a, sizeof a), config_fields[i].flag,
                                config_str(i, expected, b, sizeof b), config_fields[i].key);
        }
    }
    return NB_OK;
}

static nb_status read_own(const char *path, train_state *out, int max_epochs) {
    nb_tensor *t = read_entry(path, "epoch", NB_I64, 0, NULL);
    if (!t) return nb_last_status();
    const int64_t epoch = nb_tensor_i64(t)[0];
    nb_tensor_release(t);
    if (epoch < 1 || epoch > CHECKPOINT_MAX_EPOCHS)
        return bad(path, "%s %.0f is not in [1, %.0f]", "epoch", (double)epoch, CHECKPOINT_MAX_EPOCHS);
    if (epoch > max_epochs)
        return nb_set_error(NB_ERR_ARG, "--epochs %d: checkpoint '%s' has %lld epochs done already (ask for at least "
                            "that many)", max_epochs, path, (long long)epoch);
    nb_status st = read_config(path, &out->config);
    if (st != NB_OK) return st;
    out->epoch = epoch;

    if (!(t = read_entry(path, "data.shuffle_seed", NB_I64, NB_SHAPE(1)))) return nb_last_status();
    memcpy(&out->shuffle_seed, nb_tensor_i64(t), sizeof out->shuffle_seed);
    nb_tensor_release(t);

    if (!(t = read_entry(path, "metrics", NB_F64, NB_SHAPE(epoch, 5)))) return nb_last_status();
    const double *d = nb_tensor_f64(t);
    for (int64_t i = 0; i < epoch && st == NB_OK; i++) {
        const double *r = d + 5 * i;
        if (r[0] != (double)(i + 1))
            st = bad(path, "%s row %.0f has epoch %g (rows are epochs 1, 2, ...)", "metrics", (double)i, r[0]);
        else if (r[1] < 0 || r[2] < 0) /* NaN passes: a diverged run's loss */
            st = bad(path, "%s row %.0f has a negative loss (%g)", "metrics", (double)i, fmin(r[1], r[2]));
        else if (!(r[3] >= 0 && r[3] <= 100))
            st = bad(path, "%s row %.0f has test accuracy %g%%, not in [0, 100]", "metrics", (double)i, r[3]);
        else if (!(r[4] >= 0 && isfinite(r[4])))
            st = bad(path, "%s row %.0f has %g seconds", "metrics", (double)i, r[4]);
        else
            out->metrics[i] = (epoch_metrics){(int)(i + 1), r[1], r[2], r[3], r[4]};
    }
    nb_tensor_release(t);
    if (st != NB_OK) return st;
    out->nmetrics = (int)epoch;

    const int64_t p = out->curve_points;
    if (!(t = read_entry(path, "loss_curve", NB_F64, NB_SHAPE(epoch, p)))) return nb_last_status();
    d = nb_tensor_f64(t);
    for (int64_t i = 0; i < epoch * p && st == NB_OK; i++)
        if (d[i] < 0) st = bad(path, "%s element %.0f is negative (%g)", "loss_curve", (double)i, d[i]);
    for (int64_t i = 0; i < epoch && st == NB_OK; i++) memcpy(out->curve[i], d + p * i, sizeof(double) * (size_t)p);
    nb_tensor_release(t);
    return st;
}

nb_status checkpoint_load(const char *path, train_state *s, int max_epochs) {
    static train_state own; /* large (metrics, curve): not on the stack */
    own = *s;
    nb_status st = read_own(path, &own, max_epochs);
    if (st != NB_OK) return st;
    nb_checkpoint c = library_part(s);
    if ((st = nb_checkpoint_load(path, &c)) != NB_OK) return st;
    *s = own;
    return NB_OK;
}
