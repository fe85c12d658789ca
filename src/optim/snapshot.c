/* Snapshots of an optimizer's and a scheduler's state (see optim_snapshot.h),
 * so that a checkpoint load changes everything or nothing. */
#include "optim_snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

struct nbi_optim_snapshot {
    int n, ngroups;
    nbi_param_state *state; /* [n], moved out of the optimizer */
    nbi_options *opts;      /* [ngroups] */
};

static void param_state_release(nbi_param_state *st) {
    nbi_release(st->step);
    for (int b = 0; b < NBI_OPT_MAX_BUFS; b++) nbi_release(st->buf[b]);
    memset(st, 0, sizeof *st);
}

nbi_optim_snapshot *nbi_optim_snapshot_take(nb_optimizer *opt) {
    nbi_optim_snapshot *s = nbi_alloc_should_fail() ? NULL : calloc(1, sizeof *s);
    if (s) {
        s->state = nbi_alloc_should_fail() ? NULL : calloc((size_t)(opt->n ? opt->n : 1), sizeof *s->state);
        s->opts = nbi_alloc_should_fail() ? NULL : calloc((size_t)opt->ngroups, sizeof *s->opts);
    }
    if (!s || !s->state || !s->opts) {
        if (s) free(s->state), free(s->opts);
        free(s);
        nbi_error(NB_ERR_NOMEM, "%s: out of memory saving its state", opt->name);
        return NULL;
    }
    s->n = opt->n;
    s->ngroups = opt->ngroups;
    memcpy(s->state, opt->state, sizeof *s->state * (size_t)opt->n);
    memset(opt->state, 0, sizeof *opt->state * (size_t)opt->n);
    for (int g = 0; g < opt->ngroups; g++) s->opts[g] = opt->groups[g].opt;
    return s;
}

void nbi_optim_snapshot_restore(nb_optimizer *opt, nbi_optim_snapshot *s) {
    for (int i = 0; i < s->n; i++) {
        param_state_release(&opt->state[i]);
        opt->state[i] = s->state[i];
    }
    for (int g = 0; g < s->ngroups; g++) opt->groups[g].opt = s->opts[g];
    free(s->state);
    free(s->opts);
    free(s);
}

void nbi_optim_snapshot_commit(nbi_optim_snapshot *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) param_state_release(&s->state[i]);
    free(s->state);
    free(s->opts);
    free(s);
}

/* ---- schedulers: every field's values, in nb_lr_scheduler_state_entry's order ---- */
typedef union { double d; int64_t i; } sched_value;
struct nbi_sched_snapshot {
    int64_t n;
    sched_value *v;
};

/* Copy s's values to v (save) or back from v; returns the number of values. */
static int64_t sched_values(nb_lr_scheduler *s, sched_value *v, bool save) {
    nbi_sched_field f[NBI_SCHED_MAX_FIELDS];
    const int nf = nbi_sched_own_fields(s, f);
    int64_t k = 0;
    for (int i = 0; i < nf; i++)
        for (int j = 0; j < f[i].n; j++, k++) {
            if (!v) continue;
            if (save && f[i].d) v[k].d = f[i].d[j];
            else if (save) v[k].i = f[i].i[j];
            else if (f[i].d) f[i].d[j] = v[k].d;
            else f[i].i[j] = v[k].i;
        }
    for (int c = 0; s->kind->children && c < s->u.seq.n; c++)
        k += sched_values(s->u.seq.children[c], v ? v + k : NULL, save);
    return k;
}

nbi_sched_snapshot *nbi_sched_snapshot_take(nb_lr_scheduler *s) {
    const int64_t n = sched_values(s, NULL, true);
    nbi_sched_snapshot *snap = nbi_alloc_should_fail() ? NULL : calloc(1, sizeof *snap);
    sched_value *v = snap && !nbi_alloc_should_fail() ? malloc(sizeof *v * (size_t)(n ? n : 1)) : NULL;
    if (!v) {
        free(snap);
        nbi_error(NB_ERR_NOMEM, "%s: out of memory saving its state", s->kind->name);
        return NULL;
    }
    snap->n = n;
    snap->v = v;
    sched_values(s, v, true);
    return snap;
}

void nbi_sched_snapshot_restore(nb_lr_scheduler *s, nbi_sched_snapshot *snap) {
    sched_values(s, snap->v, false);
    nbi_sched_snapshot_free(snap);
}

void nbi_sched_snapshot_free(nbi_sched_snapshot *snap) {
    if (!snap) return;
    free(snap->v);
    free(snap);
}
