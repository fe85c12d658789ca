/* SequentialLR (PyTorch 1.13): one scheduler after another, switching at the
 * milestones; the scheduler that takes over at a milestone is stepped with
 * step(0), its closed form at its epoch 0. */
#include "sched_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nb_status sequential_step(nb_lr_scheduler *s) {
    const int64_t e = ++s->last_epoch;
    int idx = 0; /* bisect_right(milestones, last_epoch) */
    while (idx < s->u.seq.n - 1 && s->u.seq.milestones[idx] <= e) idx++;
    nb_lr_scheduler *c = s->u.seq.children[idx];
    nb_status st = (idx > 0 && s->u.seq.milestones[idx - 1] == e) ? nbi_sched_step(c, true, 0)
                                                                    : nbi_sched_step(c, false, 0);
    if (st != NB_OK) {
        s->last_epoch--;
        return st;
    }
    memcpy(s->last_lrs, c->last_lrs, sizeof *s->last_lrs * (size_t)s->ngroups);
    return NB_OK;
}

static int sequential_fields(nb_lr_scheduler *s, nbi_sched_field *f) {
    f[0] = (nbi_sched_field){"last_epoch", NULL, &s->last_epoch, 1, false, 0};
    f[1] = (nbi_sched_field){"_last_lr", s->last_lrs, NULL, s->ngroups, true, 0};
    return 2;
}

static const nbi_sched_kind sequential_kind = {"SequentialLR", NULL, NULL, sequential_step, NULL, sequential_fields,
                                               true, false};

/* Free what nb_sequential_lr takes over after a failure: every scheduler but
 * those that already had a parent, each once. */
static nb_lr_scheduler *give_up(nb_lr_scheduler *const *scheds, int n) {
    for (int i = 0; scheds && i < n; i++) {
        bool seen = !scheds[i];
        for (int j = 0; j < i && !seen; j++) seen = scheds[j] == scheds[i]; /* freed already: compare pointers only */
        if (!seen && !scheds[i]->has_parent) nbi_sched_destroy(scheds[i]);
    }
    return NULL;
}

nb_lr_scheduler *nb_sequential_lr(nb_optimizer *opt, nb_lr_scheduler *const *schedulers, int n,
                                  const int64_t *milestones, int nmilestones) {
    const char *op = "SequentialLR";
    if (!nbi_sched_check_opt(op, opt)) return give_up(schedulers, n);
    if (!schedulers || n < 1) {
        nbi_error(NB_ERR_ARG, "%s: expected at least one scheduler, but got %s (n = %d)", op,
                  schedulers ? "none" : "NULL", n);
        return give_up(schedulers, n);
    }
    for (int i = 0; i < n; i++) {
        char arg[40];
        snprintf(arg, sizeof arg, "schedulers[%d]", i);
        if (!schedulers[i]) {
            nbi_null_arg(op, arg);
            return give_up(schedulers, n);
        }
    }
    for (int i = 0; i < n; i++) {
        const nb_lr_scheduler *c = schedulers[i];
        const char *why = c->has_parent ? "already belongs to a SequentialLR"
                        : !c->kind->get_lr ? "cannot be sequenced (a SequentialLR or a ReduceLROnPlateau)"
                        : NULL;
        for (int j = 0; j < i && !why; j++)
            if (schedulers[j] == c) why = "appears more than once";
        if (why) {
            nbi_error(NB_ERR_ARG, "%s: schedulers[%d] %s", op, i, why);
            return give_up(schedulers, n);
        }
        if (c->opt != opt) {
            nbi_error(NB_ERR_ARG, "%s: Sequential Schedulers expects all schedulers to belong to the same optimizer, "
                                  "but got schedulers at index %d to be different than the optimizer passed in.",
                      op, i);
            return give_up(schedulers, n);
        }
    }
    if (nmilestones != n - 1) {
        nbi_error(NB_ERR_ARG, "%s: Sequential Schedulers expects number of schedulers provided to be one more than "
                              "the number of milestone points, but got number of schedulers %d and the number of "
                              "milestones to be equal to %d", op, n, nmilestones);
        return give_up(schedulers, n);
    }
    for (int i = 0; i < nmilestones; i++)
        if (!milestones || (i > 0 && milestones[i] <= milestones[i - 1])) {
            nbi_error(NB_ERR_ARG, "%s: expected increasing milestones, but got %s", op,
                      milestones ? "a milestone not above the one before" : "NULL");
            return give_up(schedulers, n);
        }
    nb_lr_scheduler *s = nbi_sched_new(&sequential_kind, opt, 0, true);
    nb_lr_scheduler **children = s && !nbi_alloc_should_fail() ? calloc((size_t)n, sizeof *children) : NULL;
    int64_t *ms = children && !nbi_alloc_should_fail() ? calloc((size_t)n, sizeof *ms) : NULL;
    if (!ms) {
        if (s) nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
        free(children);
        if (s) nbi_sched_destroy(s);
        return give_up(schedulers, n);
    }
    memcpy(children, schedulers, sizeof *children * (size_t)n);
    if (nmilestones) memcpy(ms, milestones, sizeof *ms * (size_t)nmilestones);
    s->u.seq.children = children;
    s->u.seq.milestones = ms;
    s->u.seq.n = n;
    for (int i = 0; i < n; i++) children[i]->has_parent = true;

    /* PyTorch's constructor: every group back to its initial lr, undo each
     * scheduler's initial step, redo the first one's. */
    double *saved = s->scratch; /* the lrs, to restore if the step fails */
    for (int g = 0; g < s->ngroups; g++) {
        saved[g] = *nbi_group_lr(opt, g);
        *nbi_group_lr(opt, g) = opt->groups[g].initial_lr;
    }
    for (int i = 0; i < n; i++) children[i]->last_epoch--;
    children[0]->step_count = 0;
    if (nbi_sched_step(children[0], false, 0) != NB_OK) {
        for (int g = 0; g < s->ngroups; g++) *nbi_group_lr(opt, g) = saved[g];
        nbi_sched_destroy(s);
        return NULL;
    }
    memcpy(s->last_lrs, children[0]->last_lrs, sizeof *s->last_lrs * (size_t)s->ngroups);
    memcpy(s->base_lrs, children[0]->base_lrs, sizeof *s->base_lrs * (size_t)s->ngroups);
    return s;
}
