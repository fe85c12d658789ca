/* What every learning-rate scheduler shares, after PyTorch 1.13's
 * _LRScheduler: creation (base lrs from the groups' initial_lr) and the
 * initial step, step() and step(epoch), the public accessors, and the named
 * state for checkpoints. The kinds are in lr_chainable.c, lr_one_cycle.c,
 * lr_sequential.c and lr_plateau.c. */
#include "sched_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool nbi_sched_check_opt(const char *op, const nb_optimizer *opt) {
    if (opt) return true;
    nbi_null_arg(op, "opt");
    return false;
}

nb_lr_scheduler *nbi_sched_new(const nbi_sched_kind *kind, nb_optimizer *opt, int nextra, bool plain) {
    const size_t G = (size_t)opt->ngroups;
    nb_lr_scheduler *s = nbi_alloc_should_fail() ? NULL : calloc(1, sizeof *s);
    double *d = s && !nbi_alloc_should_fail() ? calloc(G * (size_t)(4 + nextra), sizeof *d) : NULL;
    if (!d) {
        free(s);
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", kind->name);
        return NULL;
    }
    s->kind = kind;
    s->opt = opt;
    nbi_optimizer_retain(opt);
    s->ngroups = (int)G;
    s->base_lrs = d;
    s->last_lrs = d + G;
    s->scratch = d + 2 * G;
    s->extra = d + 4 * G;
    for (size_t g = 0; g < G; g++) s->base_lrs[g] = NAN;
    s->last_epoch = plain ? 0 : -1;
    nbi_sched_read_lrs(s);
    return s;
}

void nbi_sched_read_lrs(nb_lr_scheduler *s) {
    for (int g = 0; g < s->ngroups; g++) s->last_lrs[g] = *nbi_group_lr(s->opt, g);
}

nb_lr_scheduler *nbi_sched_start(nb_lr_scheduler *s) {
    for (int g = 0; g < s->ngroups; g++) { /* group.setdefault('initial_lr', group['lr']) */
        nbi_param_group *grp = &s->opt->groups[g];
        if (!grp->has_initial_lr) grp->initial_lr = *nbi_group_lr(s->opt, g), grp->has_initial_lr = true;
        s->base_lrs[g] = grp->initial_lr;
    }
    s->step_count = 0;
    if (nbi_sched_step(s, false, 0) != NB_OK) {
        nbi_sched_destroy(s);
        return NULL;
    }
    return s;
}

nb_status nbi_sched_step(nb_lr_scheduler *s, bool closed, int64_t epoch) {
    const int64_t epoch0 = s->last_epoch, count0 = s->step_count;
    const int G = s->ngroups;
    double *lrs = s->scratch, *moms = s->scratch + G;
    bool set_moms = false, ok = true;
    s->step_count++;
    s->last_epoch = closed ? epoch : s->last_epoch + 1;
    if (closed && s->kind->closed_form) s->kind->closed_form(s, lrs);
    else ok = s->kind->get_lr(s, lrs, moms, &set_moms);
    for (int g = 0; g < G && ok; g++) /* PyTorch sets any value, even a negative one; NaN is refused */
        if (isnan(lrs[g])) {
            nbi_error(NB_ERR_ARG, "%s: Invalid learning rate: %g (parameter group %d at epoch %lld)",
                      s->kind->name, lrs[g], g, (long long)s->last_epoch);
            ok = false;
        }
    if (!ok) {
        s->last_epoch = epoch0;
        s->step_count = count0;
        return nb_last_status();
    }
    for (int g = 0; g < G; g++) {
        *nbi_group_lr(s->opt, g) = lrs[g];
        if (set_moms) *nbi_group_momentum(s->opt, g) = moms[g];
    }
    nbi_sched_read_lrs(s);
    return NB_OK;
}

nb_status nb_lr_scheduler_step(nb_lr_scheduler *s) {
    if (!s) return nbi_null_arg("lr_scheduler_step", "scheduler");
    if (s->has_parent)
        return nbi_error(NB_ERR_STATE, "%s: this scheduler belongs to a SequentialLR: step that one", s->kind->name);
    if (s->kind->step_metric)
        return nbi_error(NB_ERR_ARG,
                         "%s: step() missing 1 required positional argument: 'metrics' (use nb_lr_scheduler_step_metric)",
                         s->kind->name);
    return s->kind->step ? s->kind->step(s) : nbi_sched_step(s, false, 0);
}

nb_status nb_lr_scheduler_step_metric(nb_lr_scheduler *s, double metric) {
    if (!s) return nbi_null_arg("lr_scheduler_step_metric", "scheduler");
    if (!s->kind->step_metric)
        return nbi_error(NB_ERR_ARG, "%s: step() takes no metric (nb_lr_scheduler_step_metric is ReduceLROnPlateau's)",
                         s->kind->name);
    return s->kind->step_metric(s, metric);
}

/* ---- accessors ---- */
const char *nb_lr_scheduler_name(const nb_lr_scheduler *s) { return s ? s->kind->name : NULL; }
double nb_lr_scheduler_get_last_lr(const nb_lr_scheduler *s) { return s ? s->last_lrs[0] : NAN; }
int64_t nb_lr_scheduler_last_epoch(const nb_lr_scheduler *s) { return s ? s->last_epoch : -1; }
double nb_lr_scheduler_base_lr(const nb_lr_scheduler *s) { return s ? s->base_lrs[0] : NAN; }

double nb_lr_scheduler_group_last_lr(const nb_lr_scheduler *s, int g) {
    if (!s) {
        nbi_null_arg("lr_scheduler_group_last_lr", "scheduler");
        return NAN;
    }
    if (g < 0 || g >= s->ngroups) {
        nbi_error(NB_ERR_ARG, "lr_scheduler_group_last_lr: group index %d is out of range for %d parameter groups", g,
                  s->ngroups);
        return NAN;
    }
    return s->last_lrs[g];
}

void nbi_sched_destroy(nb_lr_scheduler *s) {
    if (s->kind->children) {
        for (int i = 0; i < s->u.seq.n; i++) nbi_sched_destroy(s->u.seq.children[i]);
        free(s->u.seq.children);
        free(s->u.seq.milestones);
    }
    if (s->kind->milestones) free(s->u.multi.milestones);
    nbi_optimizer_release(s->opt);
    free(s->base_lrs); /* the per-group block */
    free(s);
}

void nb_lr_scheduler_free(nb_lr_scheduler *s) {
    if (!s) return;
    if (s->has_parent) {
        nbi_error(NB_ERR_STATE, "%s: this scheduler belongs to a SequentialLR, which frees it", s->kind->name);
        return;
    }
    nbi_sched_destroy(s);
}

/* ---- named state ---- */
int nbi_sched_own_fields(nb_lr_scheduler *s, nbi_sched_field *f) {
    if (s->kind->fields) return s->kind->fields(s, f);
    f[0] = (nbi_sched_field){"last_epoch", NULL, &s->last_epoch, 1, false, -1};
    f[1] = (nbi_sched_field){"_step_count", NULL, &s->step_count, 1, false, 0};
    f[2] = (nbi_sched_field){"base_lrs", s->base_lrs, NULL, s->ngroups, true, 0};
    f[3] = (nbi_sched_field){"_last_lr", s->last_lrs, NULL, s->ngroups, true, 0};
    return 4;
}

int64_t nb_lr_scheduler_state_count(const nb_lr_scheduler *cs) {
    if (!cs) return -1;
    nb_lr_scheduler *s = (nb_lr_scheduler *)cs; /* fields point into s; nothing is written */
    nbi_sched_field f[NBI_SCHED_MAX_FIELDS];
    int64_t n = nbi_sched_own_fields(s, f);
    for (int i = 0; s->kind->children && i < s->u.seq.n; i++) n += nb_lr_scheduler_state_count(s->u.seq.children[i]);
    return n;
}

/* Entry k of s (k < count): its field, and its name in name[size]. */
static nbi_sched_field find_entry(nb_lr_scheduler *s, int64_t k, char *name, size_t size) {
    nbi_sched_field f[NBI_SCHED_MAX_FIELDS];
    int n = nbi_sched_own_fields(s, f);
    if (k < n) {
        snprintf(name, size, "%s", f[k].key);
        return f[k];
    }
    k -= n;
    for (int i = 0;; i++) { /* a child's, as k < count */
        nb_lr_scheduler *c = s->u.seq.children[i];
        int64_t cn = nb_lr_scheduler_state_count(c);
        if (k < cn) {
            int len = snprintf(name, size, "_schedulers.%d.", i);
            return find_entry(c, k, name + len, size - (size_t)len);
        }
        k -= cn;
    }
}

nb_tensor *nb_lr_scheduler_state_entry(const nb_lr_scheduler *cs, int64_t k, char *name, size_t size) {
    if (!cs) {
        nbi_null_arg("lr_scheduler_state_entry", "scheduler");
        return NULL;
    }
    nb_lr_scheduler *s = (nb_lr_scheduler *)cs;
    int64_t count = nb_lr_scheduler_state_count(s);
    if (k < 0 || k >= count) {
        nbi_error(NB_ERR_ARG, "lr_scheduler_state_entry: index %lld is out of range for %lld state entries",
                  (long long)k, (long long)count);
        return NULL;
    }
    char full[512];
    nbi_sched_field f = find_entry(s, k, full, sizeof full);
    if (name && size) snprintf(name, size, "%s", full);
    nb_tensor *t = nbi_empty_op("lr_scheduler_state_entry", NB_F64, f.vec ? 1 : 0, (int64_t[]){f.n});
    if (!t) return NULL;
    double *d = nbi_data(t);
    for (int j = 0; j < f.n; j++) d[j] = f.d ? f.d[j] : (double)f.i[j];
    return nbi_give(t);
}

/* Copy value into field f of s (entry `name`), checked first. */
static nb_status load_field(const nb_lr_scheduler *s, const nbi_sched_field *f, const char *name,
                            const nb_tensor *value) {
    const char *who = s->kind->name;
    if (value->numel != f->n)
        return nbi_error(NB_ERR_SHAPE, "%s: load_state: '%s' expects %d value%s, but got %lld", who, name, f->n,
                         f->n == 1 ? "" : "s", (long long)value->numel);
    double v[NBI_SCHED_MAX_GROUPS_ON_STACK], *buf = f->n <= NBI_SCHED_MAX_GROUPS_ON_STACK ? v : NULL;
    if (!buf && !(buf = nbi_alloc_should_fail() ? NULL : malloc(sizeof *buf * (size_t)f->n)))
        return nbi_error(NB_ERR_NOMEM, "%s: load_state: out of memory", who);
    nb_status st = nb_tensor_copy_out(value, buf, NB_F64);
    for (int j = 0; j < f->n && st == NB_OK; j++) {
        const double x = buf[j];
        if (f->i && !(x == floor(x) && x >= (double)f->min && x <= 9007199254740992.0))
            st = nbi_error(NB_ERR_ARG, "%s: load_state: '%s' expects integers >= %lld, but got %g", who, name,
                           (long long)f->min, x);
        else if (f->d && !(x >= (double)f->min))
            st = nbi_error(NB_ERR_ARG, "%s: load_state: '%s' expects values >= %g, but got %g", who, name,
                           (double)f->min, x);
    }
    for (int j = 0; j < f->n && st == NB_OK; j++) {
        if (f->d) f->d[j] = buf[j];
        else f->i[j] = (int64_t)buf[j];
    }
    if (buf != v) free(buf);
    return st;
}

static nb_status load_entry(nb_lr_scheduler *s, const char *full, const char *name, const nb_tensor *value) {
    int i = -1, len = 0;
    if (s->kind->children && sscanf(name, "_schedulers.%d.%n", &i, &len) == 1 && len > 0) {
        if (i < 0 || i >= s->u.seq.n)
            return nbi_error(NB_ERR_ARG, "%s: load_state: scheduler index %d in '%s' is out of range for %d schedulers",
                             s->kind->name, i, full, s->u.seq.n);
        return load_entry(s->u.seq.children[i], full, name + len, value);
    }
    nbi_sched_field f[NBI_SCHED_MAX_FIELDS];
    int n = nbi_sched_own_fields(s, f);
    for (int k = 0; k < n; k++)
        if (strcmp(f[k].key, name) == 0) return load_field(s, &f[k], full, value);
    return nbi_error(NB_ERR_ARG, "%s: load_state: this scheduler has no state '%s'", s->kind->name, full);
}

nb_status nb_lr_scheduler_load_state_entry(nb_lr_scheduler *s, const char *name, const nb_tensor *value) {
    if (!s) return nbi_null_arg("lr_scheduler_load_state_entry", "scheduler");
    if (!name) return nbi_error(NB_ERR_ARG, "lr_scheduler_load_state_entry: argument 'name' is NULL");
    if (!nbi_check_tensor("lr_scheduler_load_state_entry", "value", value)) return nb_last_status();
    return load_entry(s, name, name, value);
}

nb_status nb_lr_scheduler_load_state(nb_lr_scheduler *s, int64_t last_epoch, double base_lr) {
    if (!s) return nbi_null_arg("lr_scheduler_load_state", "scheduler");
    if (!s->kind->closed_form) /* the chainable kinds are the ones with a closed form */
        return nbi_error(NB_ERR_ARG, "%s: lr_scheduler_load_state restores the chainable schedulers (StepLR, "
                                     "CosineAnnealingLR, ...); use nb_lr_scheduler_load_state_entry", s->kind->name);
    if (last_epoch < 0)
        return nbi_error(NB_ERR_ARG, "lr_scheduler_load_state: expected last_epoch >= 0, but got %lld",
                         (long long)last_epoch);
    if (!(base_lr >= 0.0))
        return nbi_error(NB_ERR_ARG, "lr_scheduler_load_state: Invalid learning rate: %g", base_lr);
    s->last_epoch = last_epoch;
    s->step_count = last_epoch + 1; /* as if stepped from creation */
    for (int g = 0; g < s->ngroups; g++) s->base_lrs[g] = base_lr;
    nbi_sched_read_lrs(s);
    return NB_OK;
}
