/* A module tree's state by name (nabla/nn.h): children, parameters and
 * buffers looked up by their own or full dotted names, and enumerated in
 * PyTorch's state_dict order (each module's parameters, then its buffers,
 * then its children recursively). */
#include "nn/module_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nb_module *nb_module_child(const nb_module *m, const char *name) {
    if (!m) {
        nbi_null_arg("module_child", "module");
        return NULL;
    }
    if (!name) {
        nbi_error(NB_ERR_ARG, "module_child: name is NULL");
        return NULL;
    }
    for (int i = 0; i < m->nchildren; i++)
        if (!strcmp(m->children[i].name, name)) return m->children[i].m;
    nbi_error(NB_ERR_ARG, "module_child: '%s' object has no child module '%s'", m->type, name);
    return NULL;
}

int nb_module_num_children(const nb_module *m) { return m ? m->nchildren : 0; }

nb_module *nb_module_child_at(const nb_module *m, int i, const char **name) {
    if (!m) {
        nbi_null_arg("module_child_at", "module");
        return NULL;
    }
    if (i < 0 || i >= m->nchildren) {
        nbi_error(NB_ERR_ARG, "module_child_at: index %d is out of range for a %s with %d children", i, m->type,
                  m->nchildren);
        return NULL;
    }
    if (name) *name = m->children[i].name;
    return m->children[i].m;
}

/* Own parameter or buffer by exact name, without setting an error. */
static nb_tensor *own_state(const nb_module *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return m->params[i].t;
    for (int i = 0; i < m->nbuffers; i++)
        if (!strcmp(m->buffers[i].name, name)) return m->buffers[i].t;
    return NULL;
}

nb_tensor *nb_module_param(const nb_module *m, const char *name) {
    if (!m) {
        nbi_null_arg("module_param", "module");
        return NULL;
    }
    nb_tensor *t = name ? own_state(m, name) : NULL;
    if (!t) nbi_error(NB_ERR_ARG, "module_param: '%s' object has no parameter or buffer '%s'", m->type, name ? name : "(null)");
    return t;
}

nb_tensor *nb_module_state(const nb_module *m, const char *name) {
    if (!m) {
        nbi_null_arg("module_state", "module");
        return NULL;
    }
    if (!name) {
        nbi_error(NB_ERR_ARG, "module_state: name is NULL");
        return NULL;
    }
    /* Own names have no dots, so "a.b.c" is child a's "b.c". */
    const nb_module *cur = m;
    const char *rest = name;
    const char *dot;
    while ((dot = strchr(rest, '.'))) {
        const nb_module *next = NULL;
        size_t len = (size_t)(dot - rest);
        for (int i = 0; i < cur->nchildren && !next; i++)
            if (strlen(cur->children[i].name) == len && !strncmp(cur->children[i].name, rest, len))
                next = cur->children[i].m;
        if (!next) break;
        cur = next;
        rest = dot + 1;
    }
    nb_tensor *t = dot ? NULL : own_state(cur, rest);
    if (!t) nbi_error(NB_ERR_ARG, "module_state: unexpected key \"%s\" for %s (no such parameter or buffer)", name, m->type);
    return t;
}

/* ---- enumeration ---- */

/* True when parameter i of module m is a tensor that an earlier parameter of
 * the tree under root (in named_parameters() order) already is: a tied
 * weight, registered in two places. parameters() and named_parameters() list
 * it once, as PyTorch's do; state_dict() keeps every name. Quadratic in the
 * number of parameters, which is small, and needs no memory. */
static bool tied_earlier(const nb_module *root, const nb_module *m, int i, bool *reached);
static bool param_seen_before(const nb_module *root, const nb_module *m, int i) {
    bool reached = false;
    return tied_earlier(root, m, i, &reached);
}
static bool tied_earlier(const nb_module *cur, const nb_module *m, int i, bool *reached) {
    const nb_tensor *t = m->params[i].t;
    for (int k = 0; k < cur->nparams; k++) {
        if (cur == m && k == i) {
            *reached = true;
            return false;
        }
        if (cur->params[k].t == t) return true;
    }
    for (int c = 0; c < cur->nchildren && !*reached; c++)
        if (tied_earlier(cur->children[c].m, m, i, reached)) return true;
    return false;
}

typedef struct walk {
    const nb_module *root;
    nb_state_visit_fn fn;
    void *ctx;
    bool buffers;          /* visit buffers too (state_dict) or only parameters */
    char name[4096];       /* the full name being built */
} walk;

/* Visit m's state with prefix name[0..plen). Returns NB_OK, or NB_ERR_STATE when stopped. */
static nb_status walk_module(walk *w, const nb_module *m, size_t plen) {
    for (int pass = 0; pass < (w->buffers ? 2 : 1); pass++) {
        const nbi_entry *items = pass ? m->buffers : m->params;
        int n = pass ? m->nbuffers : m->nparams;
        for (int i = 0; i < n; i++) {
            if (!w->buffers && param_seen_before(w->root, m, i)) continue;
            int k = snprintf(w->name + plen, sizeof w->name - plen, "%s", items[i].name);
            if (k < 0 || (size_t)k >= sizeof w->name - plen)
                return nbi_error(NB_ERR_ARG, "module state: a full name is longer than %zu characters", sizeof w->name);
            if (w->fn(w->name, items[i].t, pass == 0, w->ctx)) return NB_ERR_STATE;
        }
    }
    for (int i = 0; i < m->nchildren; i++) {
        int k = snprintf(w->name + plen, sizeof w->name - plen, "%s.", m->children[i].name);
        if (k < 0 || (size_t)k >= sizeof w->name - plen)
            return nbi_error(NB_ERR_ARG, "module state: a full name is longer than %zu characters", sizeof w->name);
        nb_status st = walk_module(w, m->children[i].m, plen + (size_t)k);
        if (st != NB_OK) return st;
    }
    return NB_OK;
}

static nb_status walk_tree(const nb_module *m, nb_state_visit_fn fn, void *ctx, bool buffers, const char *op) {
    if (!m) return nbi_null_arg(op, "module");
    if (!fn) return nbi_error(NB_ERR_ARG, "%s: visitor is NULL", op);
    walk *w = malloc(sizeof *w); /* the name buffer is too big for comfort on the stack */
    if (!w) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    w->root = m;
    w->fn = fn;
    w->ctx = ctx;
    w->buffers = buffers;
    w->name[0] = '\0';
    nb_status st = walk_module(w, m, 0);
    free(w);
    return st;
}

nb_status nb_module_visit_state(const nb_module *m, nb_state_visit_fn fn, void *ctx) {
    return walk_tree(m, fn, ctx, true, "module_visit_state");
}

nb_status nb_module_visit_parameters(const nb_module *m, nb_state_visit_fn fn, void *ctx) {
    return walk_tree(m, fn, ctx, false, "module_visit_parameters");
}

/* Parameters in parameters() order (a pre-order walk, like walk_module, each
 * tensor once): out[0 .. capacity-1] filled, *n counts them all. */
static void collect_params(const nb_module *root, const nb_module *m, nb_tensor **out, int capacity, int *n,
                           int64_t *elements) {
    for (int i = 0; i < m->nparams; i++) {
        if (param_seen_before(root, m, i)) continue;
        if (*n < capacity) out[*n] = m->params[i].t;
        *elements += m->params[i].t->numel;
        (*n)++;
    }
    for (int i = 0; i < m->nchildren; i++) collect_params(root, m->children[i].m, out, capacity, n, elements);
}

int nb_module_num_parameters(const nb_module *m) {
    int n = 0;
    int64_t e = 0;
    if (m) collect_params(m, m, NULL, 0, &n, &e);
    return n;
}

int64_t nb_module_num_parameter_elements(const nb_module *m) {
    int n = 0;
    int64_t e = 0;
    if (m) collect_params(m, m, NULL, 0, &n, &e);
    return e;
}

int nb_module_state_count(const nb_module *m) {
    if (!m) return 0;
    int n = m->nparams + m->nbuffers;
    for (int i = 0; i < m->nchildren; i++) n += nb_module_state_count(m->children[i].m);
    return n;
}

int nb_module_parameters(const nb_module *m, nb_tensor **out, int capacity) {
    if (!m) {
        nbi_null_arg("module_parameters", "module");
        return -1;
    }
    if (capacity > 0 && !out) {
        nbi_error(NB_ERR_ARG, "module_parameters: out is NULL but capacity is %d", capacity);
        return -1;
    }
    int n = 0;
    int64_t e = 0;
    collect_params(m, m, out, capacity < 0 ? 0 : capacity, &n, &e);
    return n;
}

nb_param_list nb_module_parameter_list(const nb_module *m) {
    nb_param_list l = {NULL, 0};
    if (!m) {
        nbi_null_arg("module_parameter_list", "module");
        return l;
    }
    int n = nb_module_num_parameters(m);
    /* at least one slot: a non-NULL array says the call succeeded, even for no parameters */
    nb_tensor **v = nbi_alloc_should_fail() ? NULL : malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) {
        nbi_error(NB_ERR_NOMEM, "module_parameter_list: out of memory for %d parameters", n);
        return l;
    }
    int64_t e = 0;
    int k = 0;
    collect_params(m, m, v, n, &k, &e);
    for (int i = 0; i < n; i++) nbi_retain(v[i]); /* the list's own references */
    l.params = v;
    l.n = n;
    return l;
}

void nb_param_list_free(nb_param_list *list) {
    if (!list) return;
    for (int i = 0; i < list->n; i++) nbi_release(list->params[i]);
    free(list->params);
    list->params = NULL;
    list->n = 0;
}

nb_status nb_module_load_tensor(nb_module *m, const char *name, const nb_tensor *src) {
    if (!nbi_check_tensor("module_load_tensor", "src", src)) return nb_last_status();
    nb_tensor *dst = nb_module_state(m, name);
    if (!dst) return nb_last_status();
    if (dst->ndim != src->ndim || memcmp(dst->shape, src->shape, (size_t)dst->ndim * sizeof *dst->shape)) {
        char a[128], b[128];
        return nbi_error(NB_ERR_SHAPE,
                         "module_load_tensor: size mismatch for %s: copying a param with shape %s, the shape in "
                         "current model is %s", name, nb_shape_str(src->ndim, src->shape, a, sizeof a),
                         nb_shape_str(dst->ndim, dst->shape, b, sizeof b));
    }
    return nb_tensor_copy_(dst, src);
}
