/* The chainable schedulers StepLR, MultiStepLR, ExponentialLR, ConstantLR,
 * LinearLR, CosineAnnealingLR:
 * PyTorch 1.13's get_lr() (each epoch's lr from the group's current lr) and
 * _get_closed_form_lr() (from the base lr; what SequentialLR's step(0)
 * uses), each expression in Python's order of operations so that the lrs
 * are PyTorch's bit for bit. */
#include "sched_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double group_lr(const nb_lr_scheduler *s, int g) { return *nbi_group_lr(s->opt, g); }

/* Python's a // b for b > 0. */
static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && a < 0); }

/* ---- StepLR ---- */
static bool step_get_lr(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms) {
    (void)moms, (void)set_moms;
    const int64_t e = s->last_epoch;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = (e == 0 || e % s->u.step.step_size != 0) ? group_lr(s, g) : group_lr(s, g) * s->u.step.gamma;
    return true;
}

static void step_closed_form(nb_lr_scheduler *s, double *lrs) {
    const double k = (double)floor_div(s->last_epoch, s->u.step.step_size);
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * pow(s->u.step.gamma, k);
}

static const nbi_sched_kind step_kind = {"StepLR", step_get_lr, step_closed_form, NULL, NULL, NULL, false, false};

nb_lr_scheduler *nb_step_lr(nb_optimizer *opt, int64_t step_size, double gamma) {
    if (!nbi_sched_check_opt("StepLR", opt)) return NULL;
    if (step_size < 1) {
        nbi_error(NB_ERR_ARG, "StepLR: expected step_size >= 1, but got %lld", (long long)step_size);
        return NULL;
    }
    nb_lr_scheduler *s = nbi_sched_new(&step_kind, opt, 0, false);
    if (!s) return NULL;
    s->u.step.step_size = step_size;
    s->u.step.gamma = gamma;
    return nbi_sched_start(s);
}

/* ---- MultiStepLR ---- */
static bool multi_get_lr(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms) {
    (void)moms, (void)set_moms;
    int count = 0; /* Counter(milestones)[last_epoch] */
    for (int i = 0; i < s->u.multi.n; i++) count += s->u.multi.milestones[i] == s->last_epoch;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = count == 0 ? group_lr(s, g) : group_lr(s, g) * pow(s->u.multi.gamma, (double)count);
    return true;
}

static void multi_closed_form(nb_lr_scheduler *s, double *lrs) {
    int k = 0; /* bisect_right(sorted milestones, last_epoch) */
    while (k < s->u.multi.n && s->u.multi.milestones[k] <= s->last_epoch) k++;
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * pow(s->u.multi.gamma, (double)k);
}

static const nbi_sched_kind multi_kind = {"MultiStepLR", multi_get_lr, multi_closed_form, NULL, NULL, NULL,
                                          false, true};

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

nb_lr_scheduler *nb_multi_step_lr(nb_optimizer *opt, const int64_t *milestones, int n, double gamma) {
    if (!nbi_sched_check_opt("MultiStepLR", opt)) return NULL;
    if (n < 0 || (n > 0 && !milestones)) {
        nbi_error(NB_ERR_ARG, "MultiStepLR: expected n >= 0 milestones (non-NULL when n > 0), but got n = %d%s", n,
                  milestones ? "" : " and NULL");
        return NULL;
    }
    int64_t *m = nbi_alloc_should_fail() ? NULL : malloc(sizeof *m * (size_t)(n ? n : 1));
    nb_lr_scheduler *s = m ? nbi_sched_new(&multi_kind, opt, 0, false) : NULL;
    if (!s) {
        if (!m) nbi_error(NB_ERR_NOMEM, "MultiStepLR: out of memory");
        free(m);
        return NULL;
    }
    if (n) memcpy(m, milestones, sizeof *m * (size_t)n);
    qsort(m, (size_t)n, sizeof *m, cmp_i64);
    s->u.multi.milestones = m;
    s->u.multi.n = n;
    s->u.multi.gamma = gamma;
    return nbi_sched_start(s);
}

/* ---- ExponentialLR ---- */
static bool exponential_get_lr(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms) {
    (void)moms, (void)set_moms;
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->last_epoch == 0 ? group_lr(s, g) : group_lr(s, g) * s->u.step.gamma;
    return true;
}

static void exponential_closed_form(nb_lr_scheduler *s, double *lrs) {
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * pow(s->u.step.gamma, (double)s->last_epoch);
}

static const nbi_sched_kind exponential_kind = {"ExponentialLR", exponential_get_lr, exponential_closed_form, NULL,
                                                NULL, NULL, false, false};

nb_lr_scheduler *nb_exponential_lr(nb_optimizer *opt, double gamma) {
    if (!nbi_sched_check_opt("ExponentialLR", opt)) return NULL;
    nb_lr_scheduler *s = nbi_sched_new(&exponential_kind, opt, 0, false);
    if (!s) return NULL;
    s->u.step.gamma = gamma;
    return nbi_sched_start(s);
}

/* ---- ConstantLR ---- */
static bool constant_get_lr(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms) {
    (void)moms, (void)set_moms;
    const int64_t e = s->last_epoch, total = s->u.linear.total_iters;
    const double factor = s->u.linear.start;
    if (e != 0 && e == total && factor == 0) {
        nbi_error(NB_ERR_ARG, "ConstantLR: float division by zero (factor = 0 at epoch %lld)", (long long)e);
        return false;
    }
    for (int g = 0; g < s->ngroups; g++) {
        const double lr = group_lr(s, g);
        lrs[g] = e == 0 ? lr * factor : e != total ? lr : lr * (1.0 / factor);
    }
    return true;
}

static void constant_closed_form(nb_lr_scheduler *s, double *lrs) {
    const double factor = s->u.linear.start, after = s->last_epoch >= s->u.linear.total_iters;
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * (factor + after * (1 - factor));
}

static const nbi_sched_kind constant_kind = {"ConstantLR", constant_get_lr, constant_closed_form, NULL, NULL, NULL,
                                             false, false};

nb_lr_scheduler *nb_constant_lr(nb_optimizer *opt, double factor, int64_t total_iters) {
    if (!nbi_sched_check_opt("ConstantLR", opt)) return NULL;
    if (!(factor >= 0 && factor <= 1.0)) {
        nbi_error(NB_ERR_ARG, "ConstantLR: Constant multiplicative factor expected to be between 0 and 1, but got %g",
                  factor);
        return NULL;
    }
    if (total_iters < 0) {
        nbi_error(NB_ERR_ARG, "ConstantLR: expected total_iters >= 0, but got %lld", (long long)total_iters);
        return NULL;
    }
    nb_lr_scheduler *s = nbi_sched_new(&constant_kind, opt, 0, false);
    if (!s) return NULL;
    s->u.linear.start = factor; /* ConstantLR shares LinearLR's fields: factor and total_iters */
    s->u.linear.total_iters = total_iters;
    return nbi_sched_start(s);
}

/* ---- LinearLR ---- */
static bool linear_get_lr(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms) {
    (void)moms, (void)set_moms;
    const int64_t e = s->last_epoch, total = s->u.linear.total_iters;
    const double start = s->u.linear.start, end = s->u.linear.end;
    const double denom = (double)total * start + (double)(e - 1) * (end - start);
    if (e > 0 && e <= total && denom == 0.0) { /* start_factor 0 at epoch 1 */
        nbi_error(NB_ERR_ARG, "LinearLR: float division by zero (start_factor = %g at epoch %lld)", start,
                  (long long)e);
        return false;
    }
    for (int g = 0; g < s->ngroups; g++) {
        const double lr = group_lr(s, g);
        if (e == 0) lrs[g] = lr * start;
        else if (e > total) lrs[g] = lr;
        else lrs[g] = lr * (1. + (end - start) / denom);
    }
    return true;
}

static void linear_closed_form(nb_lr_scheduler *s, double *lrs) {
    const int64_t total = s->u.linear.total_iters, k = total < s->last_epoch ? total : s->last_epoch;
    const double start = s->u.linear.start, end = s->u.linear.end;
    /* total_iters 0 divides 0 by 0, as PyTorch raises: the NaN is refused by the step */
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * (start + (end - start) * (double)k / (double)total);
}

static const nbi_sched_kind linear_kind = {"LinearLR", linear_get_lr, linear_closed_form, NULL, NULL, NULL,
                                           false, false};

nb_lr_scheduler *nb_linear_lr(nb_optimizer *opt, double start_factor, double end_factor, int64_t total_iters) {
    if (!nbi_sched_check_opt("LinearLR", opt)) return NULL;
    if (!(start_factor >= 0 && start_factor <= 1.0)) {
        nbi_error(NB_ERR_ARG, "LinearLR: Starting multiplicative factor expected to be between 0 and 1, but got %g",
                  start_factor);
        return NULL;
    }
    if (!(end_factor >= 0 && end_factor <= 1.0)) {
        nbi_error(NB_ERR_ARG, "LinearLR: Ending multiplicative factor expected to be between 0 and 1, but got %g",
                  end_factor);
        return NULL;
    }
    if (total_iters < 0) {
        nbi_error(NB_ERR_ARG, "LinearLR: expected total_iters >= 0, but got %lld", (long long)total_iters);
        return NULL;
    }
    nb_lr_scheduler *s = nbi_sched_new(&linear_kind, opt, 0, false);
    if (!s) return NULL;
    s->u.linear.start = start_factor;
    s->u.linear.end = end_factor;
    s->u.linear.total_iters = total_iters;
    return nbi_sched_start(s);
}

/* ---- CosineAnnealingLR ---- */
static bool cosine_get_lr(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms) {
    (void)moms, (void)set_moms;
    const int64_t e = s->last_epoch, T = s->u.cosine.T_max;
    const double eta = s->u.cosine.eta_min, Td = (double)T, ed = (double)e;
    for (int g = 0; g < s->ngroups; g++) {
        const double lr = group_lr(s, g), base = s->base_lrs[g];
        if (e == 0)
            lrs[g] = lr;
        else if (s->step_count == 1 && e > 0)
            lrs[g] = eta + (base - eta) * (1 + cos(ed * M_PI / Td)) / 2;
        else if ((e - 1 - T) % (2 * T) == 0) /* a restart, where the ratio below is 0/0 */
            lrs[g] = lr + (base - eta) * (1 - cos(M_PI / Td)) / 2;
        else
            lrs[g] = (1 + cos(M_PI * ed / Td)) / (1 + cos(M_PI * (ed - 1) / Td)) * (lr - eta) + eta;
    }
    return true;
}

static void cosine_closed_form(nb_lr_scheduler *s, double *lrs) {
    const double eta = s->u.cosine.eta_min, T = (double)s->u.cosine.T_max, e = (double)s->last_epoch;
    for (int g = 0; g < s->ngroups; g++) lrs[g] = eta + (s->base_lrs[g] - eta) * (1 + cos(M_PI * e / T)) / 2;
}

static const nbi_sched_kind cosine_kind = {"CosineAnnealingLR", cosine_get_lr, cosine_closed_form, NULL, NULL, NULL,
                                           false, false};

nb_lr_scheduler *nb_cosine_annealing_lr(nb_optimizer *opt, int64_t T_max, double eta_min) {
    if (!nbi_sched_check_opt("CosineAnnealingLR", opt)) return NULL;
    if (T_max < 1) {
        nbi_error(NB_ERR_ARG, "CosineAnnealingLR: expected T_max >= 1, but got %lld", (long long)T_max);
        return NULL;
    }
    nb_lr_scheduler *s = nbi_sched_new(&cosine_kind, opt, 0, false);
    if (!s) return NULL;
    s->u.cosine.T_max = T_max;
    s->u.cosine.eta_min = eta_min;
    return nbi_sched_start(s);
}
