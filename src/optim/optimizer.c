/* The optimizer object common to every algorithm: parameter checks, the step
 * loop (skipping parameters without grad, creating state lazily), zero_grad,
 * the learning rate, and named state for checkpoints. */
#include "optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nb_optimizer *nbi_optimizer_new(const char *name, nb_tensor *const *params, int n) {
    if (!params) { /* perhaps a failed nb_module_parameter_list: keep its message */
        nbi_null_arg(name, "params");
        return NULL;
    }
    if (n <= 0) {
        nbi_error(NB_ERR_ARG, "%s: optimizer got an empty parameter list (n = %d)", name, n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "params[%d]", i);
        if (!nbi_check_float(name, arg, params[i])) return NULL;
        if (params[i]->grad_fn) {
            nbi_error(NB_ERR_ARG, "%s: can't optimize a non-leaf Tensor (params[%d] was produced by %s)", name, i,
                      params[i]->grad_fn->op->name);
            return NULL;
        }
        if (!nbi_is_contiguous(params[i])) {
            nbi_error(NB_ERR_ARG, "%s: expected contiguous parameters, but params[%d] is not contiguous", name, i);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == params[i]) {
                nbi_error(NB_ERR_ARG, "%s: some parameters appear more than once (params[%d] and params[%d])", name,
                          j, i);
                return NULL;
            }
    }
    nb_optimizer *o = calloc(1, sizeof *o);
    if (o) o->params = calloc((size_t)n, sizeof *o->params);
    if (o) o->state = calloc((size_t)n, sizeof *o->state);
    if (!o || !o->params || !o->state) {
        if (o) free(o->params);
        free(o);
        nbi_error(NB_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    o->refcount = 1;
    o->name = name;
    o->n = n;
    for (int i = 0; i < n; i++) o->params[i] = nbi_retain(params[i]);
    return o;
}

void nbi_optimizer_retain(nb_optimizer *o) { o->refcount++; }

void nbi_optimizer_release(nb_optimizer *o) {
    if (!o || --o->refcount > 0) return;
    for (int i = 0; i < o->n; i++) {
        nbi_release(o->params[i]);
        nbi_release(o->state[i].step);
        for (int b = 0; b < NBI_OPT_MAX_BUFS; b++) nbi_release(o->state[i].buf[b]);
    }
    free(o->params);
    free(o->state);
    free(o);
}

void nb_optimizer_free(nb_optimizer *opt) { nbi_optimizer_release(opt); }

/* Create parameter i's state: step 0 and zero buffers. */
static nb_status state_init(nb_optimizer *o, int i) {
    nbi_param_state *st = &o->state[i];
    if (st->init) return NB_OK;
    if (o->has_step) {
        st->step = nbi_own(nb_scalar(NB_F64, 0.0));
        if (!st->step) return nb_last_status();
    }
    for (int b = 0; b < o->nbufs; b++) {
        st->buf[b] = nbi_own(nb_zeros_like(o->params[i]));
        if (!st->buf[b]) {
            for (int c = 0; c < b; c++) nbi_release(st->buf[c]);
            nbi_release(st->step);
            memset(st, 0, sizeof *st);
            return nb_last_status();
        }
    }
    st->init = true;
    return NB_OK;
}

/* State made before its parameter changed dtype (nb_module_to_dtype) takes
 * the parameter's: the update kernels read both as one type. PyTorch would
 * keep the state's dtype and round to it at every step. */
static nb_status state_follow_dtype(nb_optimizer *o, int i) {
    nbi_param_state *st = &o->state[i];
    for (int b = 0; b < o->nbufs && st->init; b++) {
        if (st->buf[b]->dtype == o->params[i]->dtype) continue;
        nb_tensor *c = nbi_own(nb_to_dtype(st->buf[b], o->params[i]->dtype));
        if (!c) return nb_last_status();
        nbi_release(st->buf[b]);
        st->buf[b] = c;
    }
    return NB_OK;
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
    for (int i = 0; i < opt->n && st == NB_OK; i++) {
        nb_tensor *p = opt->params[i];
        if (!p->grad) continue;
        nb_tensor *g = nbi_retain(p->grad);
        if (!nbi_is_contiguous(g)) { /* kernels read grads as flat arrays */
            nb_tensor *c = nbi_own(nb_contiguous(g));
            nbi_release(g);
            if (!(g = c)) {
                st = nb_last_status();
                break;
            }
        }
        bool first = !opt->state[i].init;
        st = first ? state_init(opt, i) : state_follow_dtype(opt, i);
        if (st == NB_OK) opt->update(opt, p, g, &opt->state[i], first);
        nbi_release(g);
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

double nb_optimizer_get_lr(const nb_optimizer *opt) { return opt ? opt->lr : NAN; }

nb_status nb_optimizer_set_lr(nb_optimizer *opt, double lr) {
    if (!opt) return nbi_null_arg("optimizer_set_lr", "opt");
    if (!(lr >= 0.0)) return nbi_error(NB_ERR_ARG, "%s: Invalid learning rate: %g", opt->name, lr);
    opt->lr = lr;
    return NB_OK;
}

/* ---- named state ---- */
static int entries_per_param(const nb_optimizer *o) { return (o->has_step ? 1 : 0) + o->nbufs; }

int64_t nb_optimizer_state_count(const nb_optimizer *opt) {
    if (!opt) return -1;
    int64_t k = 0;
    for (int i = 0; i < opt->n; i++)
        if (opt->state[i].init) k += entries_per_param(opt);
    return k;
}

/* Entry e (0 <= e < entries_per_param) of a parameter: its key and tensor. */
static nb_tensor *entry(const nb_optimizer *o, const nbi_param_state *st, int e, const char **key) {
    if (o->has_step) {
        if (e == 0) {
            *key = "step";
            return st->step;
        }
        e--;
    }
    *key = o->buf_names[e];
    return st->buf[e];
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
    int per = entries_per_param(opt);
    for (int i = 0; i < opt->n; i++) {
        if (!opt->state[i].init) continue;
        if (k < per) {
            const char *key;
            nb_tensor *t = entry(opt, &opt->state[i], (int)k, &key);
            if (name && size) snprintf(name, size, "state.%d.%s", i, key);
            return t;
        }
        k -= per;
    }
    return NULL; /* unreachable: k < count */
}

nb_status nb_optimizer_load_state(nb_optimizer *opt, const char *name, const nb_tensor *value) {
    if (!opt) return nbi_null_arg("optimizer_load_state", "opt");
    if (!name) return nbi_error(NB_ERR_ARG, "optimizer_load_state: argument 'name' is NULL");
    if (!nbi_check_tensor("optimizer_load_state", "value", value)) return nb_last_status();
    int i = -1, len = 0;
    if (sscanf(name, "state.%d.%n", &i, &len) != 1 || len == 0)
        return nbi_error(NB_ERR_ARG, "%s: load_state: expected a name like 'state.<index>.<key>', but got '%s'",
                         opt->name, name);
    if (i < 0 || i >= opt->n)
        return nbi_error(NB_ERR_ARG, "%s: load_state: parameter index %d in '%s' is out of range for %d parameters",
                         opt->name, i, name, opt->n);
    const char *key = name + len;
    int e = -1;
    for (int c = 0; c < entries_per_param(opt); c++) {
        const char *kc;
        entry(opt, &opt->state[i], c, &kc);
        if (strcmp(kc, key) == 0) e = c;
    }
    if (e < 0) return nbi_error(NB_ERR_ARG, "%s: load_state: this optimizer has no state '%s'", opt->name, key);
    bool fresh = !opt->state[i].init;
    nb_status st = state_init(opt, i);
    if (st != NB_OK) return st;
    const char *kc;
    nb_tensor *dst = entry(opt, &opt->state[i], e, &kc);
    char a[128], b[128];
    if (value->ndim != dst->ndim || memcmp(value->shape, dst->shape, sizeof(int64_t) * (size_t)dst->ndim) != 0) {
        st = nbi_error(NB_ERR_SHAPE, "%s: load_state: '%s' expects shape %s, but got %s", opt->name, name,
                       nb_shape_str(dst->ndim, dst->shape, a, sizeof a),
                       nb_shape_str(value->ndim, value->shape, b, sizeof b));
    } else {
        st = nb_tensor_copy_(dst, value);
    }
    if (st != NB_OK && fresh) { /* leave a parameter without state as it was */
        nbi_param_state *ps = &opt->state[i];
        nbi_release(ps->step);
        for (int c = 0; c < NBI_OPT_MAX_BUFS; c++) nbi_release(ps->buf[c]);
        memset(ps, 0, sizeof *ps);
    }
    return st;
}
