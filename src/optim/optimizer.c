/* The optimizer object common to every algorithm: parameter checks, parameter
 * groups, the step loop (skipping parameters without grad, creating state
 * lazily), zero_grad, learning rates, and named state for checkpoints. */
#include "optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* calloc that the allocation-failure test can make fail like the pool. */
static void *opt_calloc(size_t n, size_t size) { return nbi_alloc_should_fail() ? NULL : calloc(n ? n : 1, size); }

/* Check n new parameters (float leaves, contiguous, each in one place only),
 * against the groups o already has (o NULL while creating). */
static bool check_params(const char *name, const nb_optimizer *o, nb_tensor *const *params, int n) {
    if (!params && (n != 0 || !o)) { /* a failed nb_module_parameter_list: keep its message (an added group may be empty) */
        nbi_null_arg(name, "params");
        return false;
    }
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "params[%d]", i);
        if (!nbi_check_float(name, arg, params[i])) return false;
        if (params[i]->grad_fn) {
            nbi_error(NB_ERR_ARG, "%s: can't optimize a non-leaf Tensor (params[%d] was produced by %s)", name, i,
                      params[i]->grad_fn->op->name);
            return false;
        }
        if (!nbi_is_contiguous(params[i])) {
            nbi_error(NB_ERR_ARG, "%s: expected contiguous parameters, but params[%d] is not contiguous", name, i);
            return false;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == params[i]) {
                nbi_error(NB_ERR_ARG, "%s: some parameters appear more than once (params[%d] and params[%d])", name,
                          j, i);
                return false;
            }
        for (int j = 0; o && j < o->n; j++)
            if (o->params[j] == params[i]) {
                nbi_error(NB_ERR_ARG, "%s: some parameters appear in more than one parameter group (params[%d])",
                          name, i);
                return false;
            }
    }
    return true;
}

/* Grow o by a group of n parameters with options opt, all or nothing. */
static nb_status append_group(nb_optimizer *o, nb_tensor *const *params, int n, const nbi_options *opt) {
    int total = o->n + n;
    nb_tensor **ps = opt_calloc((size_t)total, sizeof *ps);
    nbi_param_state *st = opt_calloc((size_t)total, sizeof *st);
    nbi_param_group *gs = opt_calloc((size_t)o->ngroups + 1, sizeof *gs);
    nbi_param_group *g = gs ? &gs[o->ngroups] : NULL;
    const nbi_momentum_kind mk = o->kind->momentum;
    if (g) { /* lr: 0-d; momentum: 0-d; betas: [2] */
        g->entry[0] = nbi_empty(NB_F64, 0, NULL);
        if (mk != NBI_MOMENTUM_NONE) g->entry[1] = nbi_empty(NB_F64, mk == NBI_BETA1 ? 1 : 0, (int64_t[]){2});
    }
    if (!ps || !st || !g || !g->entry[0] || (mk != NBI_MOMENTUM_NONE && !g->entry[1])) {
        if (g) nbi_release(g->entry[0]), nbi_release(g->entry[1]);
        free(ps), free(st), free(gs);
        return nbi_error(NB_ERR_NOMEM, "%s: out of memory", o->name);
    }
    if (o->n) {
        memcpy(ps, o->params, sizeof *ps * (size_t)o->n);
        memcpy(st, o->state, sizeof *st * (size_t)o->n);
    }
    if (o->ngroups) memcpy(gs, o->groups, sizeof *gs * (size_t)o->ngroups);
    for (int i = 0; i < n; i++) ps[o->n + i] = nbi_retain(params[i]);
    g->opt = *opt;
    g->first = o->n;
    g->n = n;
    free(o->params), free(o->state), free(o->groups);
    o->params = ps;
    o->state = st;
    o->groups = gs;
    o->n = total;
    o->ngroups++;
    return NB_OK;
}

nb_optimizer *nbi_optimizer_new(const nbi_optim_kind *kind, nb_tensor *const *params, int n, const nbi_options *opt) {
    if (!kind->check(kind->name, opt) || !check_params(kind->name, NULL, params, n)) return NULL;
    if (n <= 0) {
        nbi_error(NB_ERR_ARG, "%s: optimizer got an empty parameter list (n = %d)", kind->name, n);
        return NULL;
    }
    nb_optimizer *o = opt_calloc(1, sizeof *o);
    if (!o) {
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", kind->name);
        return NULL;
    }
    o->refcount = 1;
    o->kind = kind;
    o->name = kind->name;
    o->defaults = *opt;
    if (append_group(o, params, n, opt) != NB_OK) {
        free(o);
        return NULL;
    }
    return o;
}

nb_status nbi_optimizer_add_group(nb_optimizer *o, nbi_options_type type, nb_tensor *const *params, int n,
                                  const nbi_options *opt) {
    static const char *const fn[] = {"sgd", "adam", "adadelta", "rmsprop"};
    if (!o) return nbi_null_arg("add_param_group", "opt");
    if (o->kind->options != type)
        return nbi_error(NB_ERR_ARG, "%s: add_param_group: nb_%s_add_param_group does not apply to a %s optimizer",
                         o->name, fn[type], o->name);
    if (o->refcount > 1)
        return nbi_error(NB_ERR_STATE,
                         "%s: add_param_group: add parameter groups before creating a learning-rate scheduler "
                         "(this optimizer has one)", o->name);
    if (n < 0) return nbi_error(NB_ERR_ARG, "%s: add_param_group: expected n >= 0, but got %d", o->name, n);
    if (!opt) opt = &o->defaults;
    if (!o->kind->check(o->name, opt) || !check_params(o->name, o, params, n)) return nb_last_status();
    return append_group(o, params, n, opt);
}

void nbi_optimizer_retain(nb_optimizer *o) { o->refcount++; }

void nbi_optimizer_release(nb_optimizer *o) {
    if (!o || --o->refcount > 0) return;
    for (int i = 0; i < o->n; i++) {
        nbi_release(o->params[i]);
        nbi_release(o->state[i].step);
        for (int b = 0; b < NBI_OPT_MAX_BUFS; b++) nbi_release(o->state[i].buf[b]);
    }
    for (int g = 0; g < o->ngroups; g++) nbi_release(o->groups[g].entry[0]), nbi_release(o->groups[g].entry[1]);
    free(o->params);
    free(o->state);
    free(o->groups);
    free(o);
}

void nb_optimizer_free(nb_optimizer *opt) { nbi_optimizer_release(opt); }

/* The lr and the cycled momentum (or NULL) among a group's options. */
static double *options_lr(const nbi_optim_kind *k, nbi_options *p) {
    switch (k->options) {
    case NBI_OPTS_SGD: return &p->sgd.lr;
    case NBI_OPTS_ADAM: return &p->adam.lr;
    case NBI_OPTS_ADADELTA: return &p->adadelta.lr;
    default: return &p->rmsprop.lr;
    }
}

static double *options_momentum(const nbi_optim_kind *k, nbi_options *p) {
    if (k->momentum == NBI_MOMENTUM_NONE) return NULL;
    if (k->momentum == NBI_BETA1) return &p->adam.beta1;
    return k->options == NBI_OPTS_SGD ? &p->sgd.momentum : &p->rmsprop.momentum;
}

double *nbi_group_lr(nb_optimizer *o, int g) { return options_lr(o->kind, &o->groups[g].opt); }
double *nbi_group_momentum(nb_optimizer *o, int g) { return options_momentum(o->kind, &o->groups[g].opt); }

/* ---- state ---- */
static void state_clear(nbi_param_state *st) {
    nbi_release(st->step);
    for (int b = 0; b < NBI_OPT_MAX_BUFS; b++) nbi_release(st->buf[b]);
    memset(st, 0, sizeof *st);
}

/* Make parameter i's state what its group's options use now: step 0 and zero
 * buffers for the missing ones (a buffer can appear later, when a scheduler
 * turns SGD's momentum on), and buffers of the parameter's dtype. *fresh: a
 * buffer was created. On failure the state is as it was. */
static nb_status state_prepare(nb_optimizer *o, int i, const nbi_param_group *g, bool *fresh) {
    nbi_param_state *st = &o->state[i];
    const nb_tensor *p = o->params[i];
    const unsigned used = o->kind->bufs(&g->opt);
    nb_tensor *made[NBI_OPT_MAX_BUFS + 1] = {0};
    *fresh = false;
    if (o->kind->has_step && !st->step && !(made[NBI_OPT_MAX_BUFS] = nbi_own(nb_scalar(NB_F64, 0.0)))) goto fail;
    for (int b = 0; b < NBI_OPT_MAX_BUFS; b++) {
        const nb_tensor *cur = st->buf[b];
        if (!(used & (1u << b)) || (cur && cur->dtype == p->dtype)) continue;
        /* state made before its parameter changed dtype (nb_module_to_dtype) takes the parameter's */
        made[b] = nbi_own(cur ? nb_to_dtype(cur, p->dtype) : nb_zeros_like(p));
        if (!made[b]) goto fail;
        *fresh |= !cur;
    }
    if (made[NBI_OPT_MAX_BUFS]) st->step = made[NBI_OPT_MAX_BUFS];
    for (int b = 0; b < NBI_OPT_MAX_BUFS; b++)
        if (made[b]) {
            nbi_release(st->buf[b]);
            st->buf[b] = made[b];
        }
    st->init = true;
    return NB_OK;
fail:
    for (int b = 0; b <= NBI_OPT_MAX_BUFS; b++) nbi_release(made[b]);
    return nb_last_status();
}

nb_status nb_optimizer_step(nb_optimizer *opt) {
    if (!opt) return nbi_null_arg("optimizer_step", "opt");
    /* Check every grad first so that a bad one leaves all parameters untouched. */
    for (int i = 0; i < opt->n; i++) {
        const nb_tensor *p = opt->params[i], *g = p->grad;
        if (!g) continue;
        char a[128], b[128];
        if (g->dtype != p->dtype)
            return nbi_error(NB_ERR_DTYPE, "%s: params[%d] is %s but its grad is %s", opt->name, i,
                             nb_dtype_name(p->dtype), nb_dtype_name(g->dtype));
        if (g->ndim != p->ndim || memcmp(g->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim) != 0)
            return nbi_error(NB_ERR_SHAPE, "%s: params[%d] has shape %s but its grad has shape %s", opt->name, i,
                             nb_shape_str(p->ndim, p->shape, a, sizeof a), nb_shape_str(g->ndim, g->shape, b, sizeof b));
    }
    nb_status st = NB_OK;
    nb_no_grad_begin();
    for (int gi = 0; gi < opt->ngroups && st == NB_OK; gi++) {
        const nbi_param_group *grp = &opt->groups[gi];
        for (int i = grp->first; i < grp->first + grp->n && st == NB_OK; i++) {
            nb_tensor *p = opt->params[i];
            if (!p->grad) continue;
            nb_tensor *g = nbi_contiguous_data(p->grad); /* kernels read grads as flat arrays */
            bool fresh = false;
            st = g ? state_prepare(opt, i, grp, &fresh) : nb_last_status();
            if (st == NB_OK) opt->kind->update(grp, p, g, &opt->state[i], fresh);
            nbi_release(g);
        }
    }
    nb_no_grad_end();
    return st;
}

void nb_optimizer_zero_grad(nb_optimizer *opt) {
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) nb_zero_grad(opt->params[i]);
}

const char *nb_optimizer_name(const nb_optimizer *opt) { return opt ? opt->name : NULL; }
int nb_optimizer_num_params(const nb_optimizer *opt) { return opt ? opt->n : -1; }
int nb_optimizer_num_param_groups(const nb_optimizer *opt) { return opt ? opt->ngroups : -1; }

nb_tensor *nb_optimizer_param(const nb_optimizer *opt, int i) {
    if (!opt) {
        nbi_null_arg("optimizer_param", "opt");
        return NULL;
    }
    if (i < 0 || i >= opt->n) {
        nbi_error(NB_ERR_ARG, "optimizer_param: index %d is out of range for %d parameters", i, opt->n);
        return NULL;
    }
    return opt->params[i];
}

static bool check_group(const char *op, const nb_optimizer *opt, int g) {
    if (!opt) {
        nbi_null_arg(op, "opt");
        return false;
    }
    if (g < 0 || g >= opt->ngroups) {
        nbi_error(NB_ERR_ARG, "%s: group index %d is out of range for %d parameter groups", op, g, opt->ngroups);
        return false;
    }
    return true;
}

double nb_optimizer_get_lr(const nb_optimizer *opt) { return opt ? *nbi_group_lr((nb_optimizer *)opt, 0) : NAN; }

double nb_optimizer_group_lr(const nb_optimizer *opt, int g) {
    return check_group("optimizer_group_lr", opt, g) ? *nbi_group_lr((nb_optimizer *)opt, g) : NAN;
}

static nb_status check_lr(const nb_optimizer *opt, double lr) {
    return nbi_opt_check(opt->name, lr >= 0.0, "learning rate", lr) ? NB_OK : nb_last_status();
}

nb_status nb_optimizer_set_group_lr(nb_optimizer *opt, int g, double lr) {
    if (!check_group("optimizer_set_group_lr", opt, g)) return nb_last_status();
    if (check_lr(opt, lr) != NB_OK) return nb_last_status();
    *nbi_group_lr(opt, g) = lr;
    return NB_OK;
}

nb_status nb_optimizer_set_lr(nb_optimizer *opt, double lr) {
    if (!opt) return nbi_null_arg("optimizer_set_lr", "opt");
    if (check_lr(opt, lr) != NB_OK) return nb_last_status();
    for (int g = 0; g < opt->ngroups; g++) *nbi_group_lr(opt, g) = lr;
    return NB_OK;
}

/* ---- named state: "state.<i>.<key>" by parameter, then "param_groups.<g>.<key>" ---- */
/* Entry e of parameter st: its key and tensor (NULL past the last). */
static nb_tensor *param_entry(const nb_optimizer *o, const nbi_param_state *st, int e, const char **key) {
    if (st->step && e-- == 0) {
        *key = "step";
        return st->step;
    }
    for (int b = 0; b < NBI_OPT_MAX_BUFS; b++)
        if (st->buf[b] && e-- == 0) {
            *key = o->kind->buf_names[b];
            return st->buf[b];
        }
    return NULL;
}

static int param_entries(const nb_optimizer *o, const nbi_param_state *st) {
    const char *key = NULL;
    int e = 0;
    while (st->init && param_entry(o, st, e, &key)) e++;
    return e;
}

static const char *group_key(const nb_optimizer *o, int e) {
    if (e == 0) return "lr";
    if (e == 1 && o->kind->momentum != NBI_MOMENTUM_NONE) return o->kind->momentum == NBI_BETA1 ? "betas" : "momentum";
    return NULL;
}

static int group_entries(const nb_optimizer *o) { return o->kind->momentum != NBI_MOMENTUM_NONE ? 2 : 1; }

int64_t nb_optimizer_state_count(const nb_optimizer *opt) {
    if (!opt) return -1;
    int64_t k = (int64_t)opt->ngroups * group_entries(opt);
    for (int i = 0; i < opt->n; i++) k += param_entries(opt, &opt->state[i]);
    return k;
}

/* Group g's entry e, refreshed from its options. */
static nb_tensor *group_entry(const nb_optimizer *opt, int g, int e) {
    nb_optimizer *o = (nb_optimizer *)opt; /* the snapshot tensors are refreshed, nothing else changes */
    nb_tensor *t = o->groups[g].entry[e];
    double *d = nbi_data(t);
    if (e == 0) {
        d[0] = *nbi_group_lr(o, g);
    } else {
        d[0] = *nbi_group_momentum(o, g);
        if (o->kind->momentum == NBI_BETA1) d[1] = o->groups[g].opt.adam.beta2;
    }
    return t;
}

nb_tensor *nb_optimizer_state_entry(const nb_optimizer *opt, int64_t k, char *name, size_t size) {
    if (!opt) {
        nbi_null_arg("optimizer_state_entry", "opt");
        return NULL;
    }
    int64_t count = nb_optimizer_state_count(opt);
    if (k < 0 || k >= count) {
        nbi_error(NB_ERR_ARG, "optimizer_state_entry: index %lld is out of range for %lld state entries",
                  (long long)k, (long long)count);
        return NULL;
    }
    for (int i = 0; i < opt->n; i++) {
        int per = param_entries(opt, &opt->state[i]);
        if (k < per) {
            const char *key = "";
            nb_tensor *t = param_entry(opt, &opt->state[i], (int)k, &key);
            if (name && size) snprintf(name, size, "state.%d.%s", i, key);
            return t;
        }
        k -= per;
    }
    int g = (int)(k / group_entries(opt)), e = (int)(k % group_entries(opt));
    if (name && size) snprintf(name, size, "param_groups.%d.%s", g, group_key(opt, e));
    return group_entry(opt, g, e);
}

/* param_groups.<g>.<key>: validated by the algorithm's own option check. */
static nb_status load_group(nb_optimizer *opt, int g, const char *name, const char *key, const nb_tensor *value) {
    nbi_options o = opt->groups[g].opt; /* changed, checked, then stored */
    int e = -1;
    for (int c = 0; c < group_entries(opt); c++)
        if (strcmp(group_key(opt, c), key) == 0) e = c;
    if (e < 0) return nbi_error(NB_ERR_ARG, "%s: load_state: this optimizer has no parameter group entry '%s'",
                                opt->name, key);
    const int64_t want = e == 1 && opt->kind->momentum == NBI_BETA1 ? 2 : 1;
    if (value->numel != want)
        return nbi_error(NB_ERR_SHAPE, "%s: load_state: '%s' expects %lld value%s, but got %lld", opt->name, name,
                         (long long)want, want > 1 ? "s" : "", (long long)value->numel);
    double v[2];
    nb_status st = nb_tensor_copy_out(value, v, NB_F64);
    if (st != NB_OK) return st;
    if (e == 0) { /* any lr a scheduler may have set (PyTorch's can be negative), but NaN */
        if (isnan(v[0])) return nbi_error(NB_ERR_ARG, "%s: Invalid learning rate: %g", opt->name, v[0]);
        *options_lr(opt->kind, &opt->groups[g].opt) = v[0];
        return NB_OK;
    } else {
        *options_momentum(opt->kind, &o) = v[0];
        if (want == 2) o.adam.beta2 = v[1];
    }
    if (!opt->kind->check(opt->name, &o)) return nb_last_status();
    opt->groups[g].opt = o;
    return NB_OK;
}

/* Values a state entry can hold (a file is untrusted): a step count is a
 * whole number >= 0; running averages of squares are >= 0 (NaN, the state of
 * a run that diverged, is let through as PyTorch would). */
static bool nonnegative_buffer(const char *key) {
    return strcmp(key, "exp_avg_sq") == 0 || strcmp(key, "max_exp_avg_sq") == 0 || strcmp(key, "square_avg") == 0 ||
           strcmp(key, "acc_delta") == 0;
}

static nb_status check_state_values(const nb_optimizer *opt, const char *name, const char *key, bool is_step,
                                     const nb_tensor *value) {
    if (!is_step && !nonnegative_buffer(key)) return NB_OK;
    nb_tensor *v = nbi_own(nb_to_dtype(value, NB_F64));
    nb_tensor *c = v ? nbi_contiguous_data(v) : NULL;
    nbi_release(v);
    if (!c) return nb_last_status();
    const double *d = nbi_data(c);
    nb_status st = NB_OK;
    for (int64_t j = 0; j < c->numel && st == NB_OK; j++) {
        if (is_step && !(d[j] >= 0 && d[j] == floor(d[j]) && d[j] <= 9007199254740992.0))
            st = nbi_error(NB_ERR_ARG, "%s: load_state: '%s' expects a whole number >= 0, but got %g", opt->name, name,
                           d[j]);
        else if (!is_step && d[j] < 0)
            st = nbi_error(NB_ERR_ARG, "%s: load_state: '%s' expects values >= 0, but element %lld is %g", opt->name,
                           name, (long long)j, d[j]);
    }
    nbi_release(c);
    return st;
}

/* state.<i>.<key>: copied into the parameter's state, made first if need be. */
static nb_status load_param(nb_optimizer *opt, int i, const char *name, const char *key, const nb_tensor *value) {
    const nbi_param_group *grp = &opt->groups[0];
    for (int g = 0; g < opt->ngroups; g++)
        if (i >= opt->groups[g].first && i < opt->groups[g].first + opt->groups[g].n) grp = &opt->groups[g];
    const unsigned used = opt->kind->bufs(&grp->opt);
    nbi_param_state *ps = &opt->state[i];
    int slot = -2; /* -1: step */
    if (opt->kind->has_step && strcmp(key, "step") == 0) slot = -1;
    for (int b = 0; b < NBI_OPT_MAX_BUFS; b++) /* a buffer the options use, or one kept from earlier options */
        if (((used & (1u << b)) || ps->buf[b]) && strcmp(opt->kind->buf_names[b], key) == 0) slot = b;
    if (slot == -2) return nbi_error(NB_ERR_ARG, "%s: load_state: this optimizer has no state '%s'", opt->name, key);
    const bool was_init = ps->init;
    bool fresh;
    nb_status st = state_prepare(opt, i, grp, &fresh);
    if (st != NB_OK) return st;
    nb_tensor *dst = slot < 0 ? ps->step : ps->buf[slot];
    char a[128], b[128];
    if (value->ndim != dst->ndim || memcmp(value->shape, dst->shape, sizeof(int64_t) * (size_t)dst->ndim) != 0) {
        st = nbi_error(NB_ERR_SHAPE, "%s: load_state: '%s' expects shape %s, but got %s", opt->name, name,
                       nb_shape_str(dst->ndim, dst->shape, a, sizeof a),
                       nb_shape_str(value->ndim, value->shape, b, sizeof b));
    } else {
        st = check_state_values(opt, name, key, slot < 0, value);
        if (st == NB_OK) st = nb_tensor_copy_(dst, value);
    }
    if (st != NB_OK && !was_init) state_clear(ps); /* leave a parameter without state as it was */
    return st;
}

nb_status nb_optimizer_load_state(nb_optimizer *opt, const char *name, const nb_tensor *value) {
    if (!opt) return nbi_null_arg("optimizer_load_state", "opt");
    if (!name) return nbi_error(NB_ERR_ARG, "optimizer_load_state: argument 'name' is NULL");
    if (!nbi_check_tensor("optimizer_load_state", "value", value)) return nb_last_status();
    int i = -1, len = 0;
    if (sscanf(name, "state.%d.%n", &i, &len) == 1 && len > 0) {
        if (i < 0 || i >= opt->n)
            return nbi_error(NB_ERR_ARG,
                             "%s: load_state: parameter index %d in '%s' is out of range for %d parameters",
                             opt->name, i, name, opt->n);
        return load_param(opt, i, name, name + len, value);
    }
    if (sscanf(name, "param_groups.%d.%n", &i, &len) == 1 && len > 0) {
        if (i < 0 || i >= opt->ngroups)
            return nbi_error(NB_ERR_ARG,
                             "%s: load_state: group index %d in '%s' is out of range for %d parameter groups",
                             opt->name, i, name, opt->ngroups);
        return load_group(opt, i, name, name + len, value);
    }
    return nbi_error(NB_ERR_ARG,
                     "%s: load_state: expected a name like 'state.<index>.<key>' or 'param_groups.<index>.<key>', "
                     "but got '%s'", opt->name, name);
}
