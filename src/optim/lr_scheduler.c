/* Learning-rate schedulers StepLR and CosineAnnealingLR, following PyTorch
 * 1.13's chainable get_lr() (each epoch's lr is computed from the optimizer's
 * current lr), so the printed lr values agree with PyTorch's. */
#include "optim_internal.h"

#include <math.h>
#include <stdlib.h>

typedef enum { SCHED_STEP, SCHED_COSINE } sched_kind;

struct nb_lr_scheduler {
    sched_kind kind;
    nb_optimizer *opt;   /* a reference: kept alive while the scheduler lives */
    int64_t last_epoch;
    double base_lr;
    double last_lr;
    int64_t period;      /* StepLR step_size or CosineAnnealingLR T_max */
    double gamma;        /* StepLR */
    double eta_min;      /* CosineAnnealingLR */
};

/* PyTorch's _LRScheduler.__init__ with last_epoch=-1: base lr from the
 * optimizer, then the initial step to epoch 0, which keeps the lr. */
static nb_lr_scheduler *sched_new(sched_kind kind, nb_optimizer *opt) {
    nb_lr_scheduler *s = calloc(1, sizeof *s);
    if (!s) {
        nbi_error(NB_ERR_NOMEM, "lr_scheduler: out of memory");
        return NULL;
    }
    s->kind = kind;
    s->opt = opt;
    nbi_optimizer_retain(opt);
    s->base_lr = opt->lr;
    s->last_epoch = 0;
    s->last_lr = opt->lr;
    return s;
}

nb_lr_scheduler *nb_step_lr(nb_optimizer *opt, int64_t step_size, double gamma) {
    if (!opt) {
        nbi_null_arg("StepLR", "opt");
        return NULL;
    }
    if (step_size < 1) {
        nbi_error(NB_ERR_ARG, "StepLR: expected step_size >= 1, but got %lld", (long long)step_size);
        return NULL;
    }
    nb_lr_scheduler *s = sched_new(SCHED_STEP, opt);
    if (!s) return NULL;
    s->period = step_size;
    s->gamma = gamma;
    return s;
}

nb_lr_scheduler *nb_cosine_annealing_lr(nb_optimizer *opt, int64_t T_max, double eta_min) {
    if (!opt) {
        nbi_null_arg("CosineAnnealingLR", "opt");
        return NULL;
    }
    if (T_max < 1) {
        nbi_error(NB_ERR_ARG, "CosineAnnealingLR: expected T_max >= 1, but got %lld", (long long)T_max);
        return NULL;
    }
    nb_lr_scheduler *s = sched_new(SCHED_COSINE, opt);
    if (!s) return NULL;
    s->period = T_max;
    s->eta_min = eta_min;
    return s;
}

/* The lr for epoch e = last_epoch (>= 1) from the current lr, as PyTorch's
 * get_lr() with _step_count > 1. */
static double next_lr(const nb_lr_scheduler *s, double lr) {
    const int64_t e = s->last_epoch;
    if (s->kind == SCHED_STEP) return e % s->period != 0 ? lr : lr * s->gamma;
    const double T = (double)s->period, eta = s->eta_min;
    if ((e - 1 - s->period) % (2 * s->period) == 0) /* restart of the cosine, where the ratio below is 0/0 */
        return lr + (s->base_lr - eta) * (1 - cos(M_PI / T)) / 2;
    return (1 + cos(M_PI * (double)e / T)) / (1 + cos(M_PI * (double)(e - 1) / T)) * (lr - eta) + eta;
}

nb_status nb_lr_scheduler_step(nb_lr_scheduler *s) {
    if (!s) return nbi_null_arg("lr_scheduler_step", "scheduler");
    s->last_epoch++;
    double lr = next_lr(s, s->opt->lr);
    nb_status st = nb_optimizer_set_lr(s->opt, lr);
    if (st != NB_OK) {
        s->last_epoch--;
        return st;
    }
    s->last_lr = lr;
    return NB_OK;
}

double nb_lr_scheduler_get_last_lr(const nb_lr_scheduler *s) { return s ? s->last_lr : NAN; }
int64_t nb_lr_scheduler_last_epoch(const nb_lr_scheduler *s) { return s ? s->last_epoch : -1; }
double nb_lr_scheduler_base_lr(const nb_lr_scheduler *s) { return s ? s->base_lr : NAN; }

nb_status nb_lr_scheduler_load_state(nb_lr_scheduler *s, int64_t last_epoch, double base_lr) {
    if (!s) return nbi_null_arg("lr_scheduler_load_state", "scheduler");
    if (last_epoch < 0)
        return nbi_error(NB_ERR_ARG, "lr_scheduler_load_state: expected last_epoch >= 0, but got %lld",
                         (long long)last_epoch);
    if (!(base_lr >= 0.0))
        return nbi_error(NB_ERR_ARG, "lr_scheduler_load_state: Invalid learning rate: %g", base_lr);
    s->last_epoch = last_epoch;
    s->base_lr = base_lr;
    s->last_lr = s->opt->lr;
    return NB_OK;
}

void nb_lr_scheduler_free(nb_lr_scheduler *s) {
    if (!s) return;
    nbi_optimizer_release(s->opt);
    free(s);
}
