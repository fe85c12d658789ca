/* checkpoint.c: the trainer's own entries around nb_checkpoint_save/load (see checkpoint.h). */
#include "checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static nb_checkpoint library_part(const train_state *s) {
    return (nb_checkpoint){.model = s->model, .optimizer = s->opt, .scheduler = s->sched, .rngs = s->rngs,
                           .rng_names = s->rng_names, .nrngs = s->nrngs};
}

nb_status checkpoint_save(const char *path, const train_state *s) {
    int64_t seed_bits;
    memcpy(&seed_bits, &s->shuffle_seed, sizeof seed_bits);
    double *m = malloc(sizeof(double) * 5 * (size_t)(s->nmetrics > 0 ? s->nmetrics : 1));
    for (int i = 0; m && i < s->nmetrics; i++) {
        const epoch_metrics *e = &s->metrics[i];
        double row[5] = {e->epoch, e->train_loss, e->test_loss, e->test_accuracy, e->seconds};
        memcpy(m + 5 * i, row, sizeof row);
    }
    nb_named_tensor extra[3] = {{"epoch", nb_scalar(NB_I64, (double)s->epoch)},
                                {"data.shuffle_seed", nb_from_data(NB_I64, NB_SHAPE(1), &seed_bits)},
                                {"metrics", m ? nb_from_data(NB_F64, NB_SHAPE(s->nmetrics, 5), m) : NULL}};
    free(m);
    nb_checkpoint c = library_part(s);
    c.extra = extra;
    c.nextra = s->nmetrics > 0 ? 3 : 2;
    nb_status st = !m                   ? nb_set_error(NB_ERR_NOMEM, "checkpoint_save: out of memory")
                   : !extra[0].tensor || !extra[1].tensor || !extra[2].tensor ? nb_last_status()
                                                               : nb_checkpoint_save(path, &c);
    for (int i = 0; i < 3; i++) nb_tensor_release(extra[i].tensor);
    return st;
}

/* The trainer's entries, read and checked before anything changes. */
static nb_status read_own(const char *path, train_state *out) {
    nb_tensor *ep = nb_hdf5_read(path, "epoch", NB_I64);
    double v = -1;
    nb_status st = ep ? nb_tensor_item(ep, &v) : nb_last_status();
    nb_tensor_release(ep);
    if (st != NB_OK) return st;
    if (!(v >= 0 && v <= CHECKPOINT_MAX_EPOCHS))
        return nb_set_error(NB_ERR_IO, "checkpoint '%s': epoch %g is not in [0, %d]", path, v, CHECKPOINT_MAX_EPOCHS);
    out->epoch = (int64_t)v;

    char **names = NULL;
    int n = 0;
    if ((st = nb_hdf5_list(path, &names, &n)) != NB_OK) return st;
    bool has_seed = false, has_metrics = false;
    for (int i = 0; i < n; i++) {
        has_seed |= strcmp(names[i], "data.shuffle_seed") == 0;
        has_metrics |= strcmp(names[i], "metrics") == 0;
    }
    nb_hdf5_names_free(names, n);
    if (has_seed) { /* absent in older checkpoints: then the seed stays */
        nb_tensor *seed = nb_hdf5_read(path, "data.shuffle_seed", NB_I64);
        if (!seed) return nb_last_status();
        const bool ok = nb_tensor_numel(seed) == 1;
        if (ok) memcpy(&out->shuffle_seed, nb_tensor_i64(seed), sizeof out->shuffle_seed);
        nb_tensor_release(seed);
        if (!ok) return nb_set_error(NB_ERR_IO, "checkpoint '%s': data.shuffle_seed is not one number", path);
    }
    out->nmetrics = 0;
    if (!has_metrics) return NB_OK;
    nb_tensor *m = nb_hdf5_read(path, "metrics", NB_F64);
    if (!m) return nb_last_status();
    const int64_t *shape = nb_tensor_shape(m);
    st = nb_tensor_ndim(m) == 2 && shape[1] == 5 && shape[0] <= CHECKPOINT_MAX_EPOCHS
             ? NB_OK
             : nb_set_error(NB_ERR_IO, "checkpoint '%s': metrics must be [n <= %d, 5]", path, CHECKPOINT_MAX_EPOCHS);
    const double *d = st == NB_OK ? nb_tensor_f64(m) : NULL;
    for (int64_t i = 0; d && i < shape[0]; i++) {
        const double e = d[5 * i];
        if (!(e >= 0 && e <= CHECKPOINT_MAX_EPOCHS && e == floor(e))) {
            st = nb_set_error(NB_ERR_IO, "checkpoint '%s': metrics row %lld has epoch %g", path, (long long)i, e);
            break;
        }
        out->metrics[out->nmetrics++] = (epoch_metrics){(int)e, d[5 * i + 1], d[5 * i + 2], d[5 * i + 3], d[5 * i + 4]};
    }
    nb_tensor_release(m);
    return st;
}

nb_status checkpoint_load(const char *path, train_state *s) {
    static train_state own; /* large (metrics): not on the stack */
    own = *s;
    nb_status st = read_own(path, &own);
    if (st != NB_OK) return st;
    nb_checkpoint c = library_part(s);
    if ((st = nb_checkpoint_load(path, &c)) != NB_OK) return st;
    *s = own;
    return NB_OK;
}
