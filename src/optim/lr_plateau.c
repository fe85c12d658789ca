/* ReduceLROnPlateau (PyTorch 1.13): multiply every group's lr by factor
 * (down to its min_lr) once the metric has not improved for more than
 * patience epochs, then wait cooldown epochs. Not an _LRScheduler in PyTorch:
 * no initial step, no base lrs, stepped with the metric. */
#include "sched_internal.h"

#include <math.h>
#include <string.h>

nb_reduce_lr_on_plateau_options nb_reduce_lr_on_plateau_defaults(void) {
    return (nb_reduce_lr_on_plateau_options){.mode = "min", .factor = 0.1, .patience = 10, .threshold = 1e-4,
                                             .threshold_mode = "rel", .cooldown = 0, .min_lr = 0, .min_lrs = NULL,
                                             .n_min_lrs = 0, .eps = 1e-8};
}

/* PyTorch's is_better(a, best); comparisons with NaN are false. */
static bool is_better(const nb_lr_scheduler *s, double a, double best) {
    const double t = s->u.plateau.threshold;
    if (!s->u.plateau.max_mode) return s->u.plateau.abs_mode ? a < best - t : a < best * (1. - t);
    return s->u.plateau.abs_mode ? a > best + t : a > best * (t + 1.);
}

static nb_status plateau_step(nb_lr_scheduler *s, double current) {
    double best = s->u.plateau.best;
    int64_t bad = s->u.plateau.num_bad_epochs, cooldown = s->u.plateau.cooldown_counter;
    if (is_better(s, current, best)) {
        best = current;
        bad = 0;
    } else {
        bad++;
    }
    if (cooldown > 0) { /* ignore any bad epochs in cooldown */
        cooldown--;
        bad = 0;
    }
    const int G = s->ngroups;
    double *lrs = s->scratch;
    for (int g = 0; g < G; g++) lrs[g] = *nbi_group_lr(s->opt, g);
    if (bad > s->u.plateau.patience) {
        for (int g = 0; g < G; g++) {
            const double old_lr = lrs[g], prod = old_lr * s->u.plateau.factor, min_lr = s->extra[g];
            const double new_lr = min_lr > prod ? min_lr : prod; /* Python's max(prod, min_lr) */
            if (old_lr - new_lr > s->u.plateau.eps) lrs[g] = new_lr;
        }
        cooldown = s->u.plateau.cooldown;
        bad = 0;
    }
    for (int g = 0; g < G; g++) *nbi_group_lr(s->opt, g) = lrs[g];
    s->last_epoch++;
    s->u.plateau.best = best;
    s->u.plateau.num_bad_epochs = bad;
    s->u.plateau.cooldown_counter = cooldown;
    nbi_sched_read_lrs(s);
    return NB_OK;
}

static int plateau_fields(nb_lr_scheduler *s, nbi_sched_field *f) {
    f[0] = (nbi_sched_field){"last_epoch", NULL, &s->last_epoch, 1, false, 0};
    f[1] = (nbi_sched_field){"best", &s->u.plateau.best, NULL, 1, false, -INFINITY};
    f[2] = (nbi_sched_field){"num_bad_epochs", NULL, &s->u.plateau.num_bad_epochs, 1, false, 0};
    f[3] = (nbi_sched_field){"cooldown_counter", NULL, &s->u.plateau.cooldown_counter, 1, false, 0};
    f[4] = (nbi_sched_field){"_last_lr", s->last_lrs, NULL, s->ngroups, true, 0};
    return 5;
}

static const nbi_sched_kind plateau_kind = {"ReduceLROnPlateau", NULL, NULL, NULL, plateau_step, plateau_fields,
                                            false, false};

nb_lr_scheduler *nb_reduce_lr_on_plateau(nb_optimizer *opt, const nb_reduce_lr_on_plateau_options *o) {
    const char *op = "ReduceLROnPlateau";
    const nb_reduce_lr_on_plateau_options d = nb_reduce_lr_on_plateau_defaults();
    if (!o) o = &d;
    if (o->factor >= 1.0) {
        nbi_error(NB_ERR_ARG, "%s: Factor should be < 1.0. (got %g)", op, o->factor);
        return NULL;
    }
    if (!nbi_sched_check_opt(op, opt)) return NULL;
    if (o->min_lrs && o->n_min_lrs != opt->ngroups) {
        nbi_error(NB_ERR_ARG, "%s: expected %d min_lrs, got %d", op, opt->ngroups, o->n_min_lrs);
        return NULL;
    }
    const char *mode = o->mode ? o->mode : "min", *tmode = o->threshold_mode ? o->threshold_mode : "rel";
    if (strcmp(mode, "min") != 0 && strcmp(mode, "max") != 0) {
        nbi_error(NB_ERR_ARG, "%s: mode %s is unknown!", op, mode);
        return NULL;
    }
    if (strcmp(tmode, "rel") != 0 && strcmp(tmode, "abs") != 0) {
        nbi_error(NB_ERR_ARG, "%s: threshold mode %s is unknown!", op, tmode);
        return NULL;
    }
    nb_lr_scheduler *s = nbi_sched_new(&plateau_kind, opt, 1, true);
    if (!s) return NULL;
    for (int g = 0; g < s->ngroups; g++) s->extra[g] = o->min_lrs ? o->min_lrs[g] : o->min_lr;
    s->u.plateau.max_mode = strcmp(mode, "max") == 0;
    s->u.plateau.abs_mode = strcmp(tmode, "abs") == 0;
    s->u.plateau.factor = o->factor;
    s->u.plateau.threshold = o->threshold;
    s->u.plateau.eps = o->eps;
    s->u.plateau.patience = o->patience;
    s->u.plateau.cooldown = o->cooldown;
    s->u.plateau.best = s->u.plateau.max_mode ? -INFINITY : INFINITY; /* mode_worse */
    return s;
}
