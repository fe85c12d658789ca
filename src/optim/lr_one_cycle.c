/* OneCycleLR (PyTorch 1.13): the lr rises from max_lr / div_factor to max_lr
 * over the first pct_start of the steps, then anneals to the initial lr /
 * final_div_factor (three_phase: back to the initial lr first); momentum (SGD's
 * or RMSprop's momentum, Adam's beta1) moves inversely between max_momentum and
 * base_momentum. get_lr() is closed-form, in Python's order of operations. */
#include "sched_internal.h"

#include <math.h>
#include <string.h>

enum { INITIAL_LR, MAX_LR, MIN_LR, MAX_MOM, BASE_MOM, NVALUES }; /* s->extra: NVALUES blocks of [ngroups] */

nb_one_cycle_lr_options nb_one_cycle_lr_defaults(void) {
    return (nb_one_cycle_lr_options){.pct_start = 0.3, .anneal_strategy = "cos", .cycle_momentum = true,
                                     .base_momentum = 0.85, .max_momentum = 0.95, .div_factor = 25.,
                                     .final_div_factor = 1e4, .three_phase = false, .max_lrs = NULL, .n_max_lrs = 0};
}

static double anneal(bool linear, double start, double end, double pct) {
    if (linear) return (end - start) * pct + start;
    const double cos_out = cos(M_PI * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

/* The phases: where each ends (PyTorch's end_step, a float but for the last,
 * an int) and which values it anneals between. */
typedef struct { double end_step; int start_lr, end_lr, start_mom, end_mom; } phase;

static int phases(const nb_lr_scheduler *s, phase *p) {
    const double pct = s->u.one_cycle.pct_start, total = (double)s->u.one_cycle.total_steps;
    if (s->u.one_cycle.three_phase) {
        p[0] = (phase){(double)(pct * total) - 1, INITIAL_LR, MAX_LR, MAX_MOM, BASE_MOM};
        p[1] = (phase){(double)(2 * pct * total) - 2, MAX_LR, INITIAL_LR, BASE_MOM, MAX_MOM};
        p[2] = (phase){total - 1, INITIAL_LR, MIN_LR, MAX_MOM, MAX_MOM};
        return 3;
    }
    p[0] = (phase){(double)(pct * total) - 1, INITIAL_LR, MAX_LR, MAX_MOM, BASE_MOM};
    p[1] = (phase){total - 1, MAX_LR, MIN_LR, BASE_MOM, MAX_MOM};
    return 2;
}

static bool one_cycle_get_lr(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms) {
    const int64_t step = s->last_epoch, total = s->u.one_cycle.total_steps;
    if (step > total) {
        nbi_error(NB_ERR_ARG, "OneCycleLR: Tried to step %lld times. The specified number of total steps is %lld",
                  (long long)(step + 1), (long long)total);
        return false;
    }
    phase p[3];
    const int np = phases(s, p);
    const bool linear = s->u.one_cycle.linear;
    const int G = s->ngroups;
    const double *v = s->extra;
    for (int g = 0; g < G; g++) {
        double start_step = 0;
        for (int i = 0; i < np; i++) {
            const double end_step = p[i].end_step;
            if ((double)step <= end_step || i == np - 1) {
                if (end_step - start_step == 0) {
                    nbi_error(NB_ERR_ARG, "OneCycleLR: float division by zero (a phase of zero steps at step %lld)",
                              (long long)step);
                    return false;
                }
                const double pct = ((double)step - start_step) / (end_step - start_step);
                lrs[g] = anneal(linear, v[p[i].start_lr * G + g], v[p[i].end_lr * G + g], pct);
                moms[g] = anneal(linear, v[p[i].start_mom * G + g], v[p[i].end_mom * G + g], pct);
                break;
            }
            start_step = p[i].end_step;
        }
    }
    *set_moms = s->u.one_cycle.cycle_momentum;
    return true;
}

static const nbi_sched_kind one_cycle_kind = {"OneCycleLR", one_cycle_get_lr, NULL, NULL, NULL, NULL, false, false};

nb_lr_scheduler *nb_one_cycle_lr(nb_optimizer *opt, double max_lr, int64_t total_steps,
                                 const nb_one_cycle_lr_options *o) {
    const nb_one_cycle_lr_options d = nb_one_cycle_lr_defaults();
    if (!o) o = &d;
    if (!nbi_sched_check_opt("OneCycleLR", opt)) return NULL;
    if (total_steps <= 0) {
        nbi_error(NB_ERR_ARG, "OneCycleLR: Expected positive integer total_steps, but got %lld", (long long)total_steps);
        return NULL;
    }
    if (!(o->pct_start >= 0 && o->pct_start <= 1)) {
        nbi_error(NB_ERR_ARG, "OneCycleLR: Expected float between 0 and 1 pct_start, but got %g", o->pct_start);
        return NULL;
    }
    const char *strategy = o->anneal_strategy ? o->anneal_strategy : "cos";
    if (strcmp(strategy, "cos") != 0 && strcmp(strategy, "linear") != 0) {
        nbi_error(NB_ERR_ARG, "OneCycleLR: anneal_strategy must by one of 'cos' or 'linear', instead got %s", strategy);
        return NULL;
    }
    if (o->max_lrs && o->n_max_lrs != opt->ngroups) {
        nbi_error(NB_ERR_ARG, "OneCycleLR: expected %d values for max_lr, got %d", opt->ngroups, o->n_max_lrs);
        return NULL;
    }
    if (o->div_factor == 0 || o->final_div_factor == 0) {
        nbi_error(NB_ERR_ARG, "OneCycleLR: float division by zero (div_factor = %g, final_div_factor = %g)",
                  o->div_factor, o->final_div_factor);
        return NULL;
    }
    if (o->cycle_momentum && opt->kind->momentum == NBI_MOMENTUM_NONE) {
        nbi_error(NB_ERR_ARG, "OneCycleLR: optimizer must support momentum with `cycle_momentum` option enabled "
                              "(%s has neither momentum nor betas)", opt->name);
        return NULL;
    }
    nb_lr_scheduler *s = nbi_sched_new(&one_cycle_kind, opt, NVALUES, false);
    if (!s) return NULL;
    s->u.one_cycle.total_steps = total_steps;
    s->u.one_cycle.pct_start = o->pct_start;
    s->u.one_cycle.linear = strcmp(strategy, "linear") == 0;
    s->u.one_cycle.cycle_momentum = o->cycle_momentum;
    s->u.one_cycle.three_phase = o->three_phase;
    const int G = opt->ngroups;
    double *v = s->extra;
    for (int g = 0; g < G; g++) {
        nbi_param_group *grp = &opt->groups[g];
        v[MAX_LR * G + g] = o->max_lrs ? o->max_lrs[g] : max_lr;
        v[INITIAL_LR * G + g] = v[MAX_LR * G + g] / o->div_factor;
        v[MIN_LR * G + g] = v[INITIAL_LR * G + g] / o->final_div_factor;
        v[MAX_MOM * G + g] = o->max_momentum;
        v[BASE_MOM * G + g] = o->base_momentum;
        grp->initial_lr = v[INITIAL_LR * G + g]; /* set, not setdefault */
        grp->has_initial_lr = true;
        if (o->cycle_momentum) *nbi_group_momentum(opt, g) = o->max_momentum;
    }
    return nbi_sched_start(s);
}
