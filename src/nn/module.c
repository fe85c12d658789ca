/* The module tree (nabla/nn.h): a module owns named parameters, buffers and
 * children, has a training flag and a forward callback. This file builds,
 * frees, runs and switches modules; module_state.c enumerates and looks up
 * their state by PyTorch's state_dict names. */
#include "nn/module_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

nb_module *nb_module_new(const char *type_name, nb_forward_fn forward, void *ctx, void (*free_ctx)(void *ctx)) {
    nb_module *m = calloc(1, sizeof *m);
    if (!m || !(m->type = dup_str(type_name ? type_name : "Module"))) {
        free(m);
        if (free_ctx) free_ctx(ctx);
        nbi_error(NB_ERR_NOMEM, "module_new: out of memory");
        return NULL;
    }
    m->forward = forward;
    m->ctx = ctx;
    m->free_ctx = free_ctx;
    m->training = true; /* nn.Module starts in training mode */
    return m;
}

static void free_tree(nb_module *m) {
    for (int i = 0; i < m->nchildren; i++) {
        free_tree(m->children[i].m);
        free(m->children[i].name);
    }
    for (int i = 0; i < m->nparams; i++) {
        nbi_release(m->params[i].t);
        free(m->params[i].name);
    }
    for (int i = 0; i < m->nbuffers; i++) {
        nbi_release(m->buffers[i].t);
        free(m->buffers[i].name);
    }
    if (m->free_ctx) m->free_ctx(m->ctx);
    free(m->children);
    free(m->params);
    free(m->buffers);
    free(m->type);
    free(m);
}

void nb_module_free(nb_module *m) {
    if (!m) return;
    if (m->parent) {
        /* Freeing a child would leave a dangling pointer in its parent, which
         * frees it again: refuse, and say so. */
        nbi_error(NB_ERR_STATE, "module_free: this %s is a child of a %s; free the root module instead", m->type,
                  m->parent->type);
        return;
    }
    free_tree(m);
}

/* ---- registration ---- */

/* Grow a dynamic array of elem-sized items to hold one more. */
static bool grow(void **items, int *cap, int count, size_t elem) {
    if (count < *cap) return true;
    int ncap = *cap ? 2 * *cap : 4;
    void *p = realloc(*items, (size_t)ncap * elem);
    if (!p) return false;
    *items = p;
    *cap = ncap;
    return true;
}

bool nbi_module_has_name(const nb_module *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return true;
    for (int i = 0; i < m->nbuffers; i++)
        if (!strcmp(m->buffers[i].name, name)) return true;
    for (int i = 0; i < m->nchildren; i++)
        if (!strcmp(m->children[i].name, name)) return true;
    return false;
}

/* PyTorch's rules for attribute names: non-empty, no ".", not taken. */
static bool check_name(const char *op, const char *kind, const nb_module *m, const char *name) {
    if (!name) {
        nbi_error(NB_ERR_ARG, "%s: %s name is NULL", op, kind);
        return false;
    }
    if (!name[0]) {
        nbi_error(NB_ERR_ARG, "%s: %s name can't be empty string \"\"", op, kind);
        return false;
    }
    if (strchr(name, '.')) {
        nbi_error(NB_ERR_ARG, "%s: %s name can't contain \".\", got: %s", op, kind, name);
        return false;
    }
    if (nbi_module_has_name(m, name)) {
        nbi_error(NB_ERR_ARG, "%s: attribute '%s' already exists in %s", op, name, m->type);
        return false;
    }
    return true;
}

/* True when a is m or one of m's ancestors. */
static bool is_ancestor(const nb_module *a, const nb_module *m) {
    for (; m; m = m->parent)
        if (m == a) return true;
    return false;
}

nb_status nb_module_add_child(nb_module *m, const char *name, nb_module *child) {
    nb_status st = NB_OK;
    char *nm = NULL;
    if (!child) {
        st = nbi_null_arg("add_child", "child");
    } else if (!m) {
        st = nbi_error(NB_ERR_ARG, "add_child: module is NULL");
    } else if (child->parent) {
        /* A tree keeps ownership simple; the child is not ours to free either. */
        return nbi_error(NB_ERR_STATE, "add_child: this %s already has a parent (%s)", child->type,
                         child->parent->type);
    } else if (is_ancestor(child, m)) {
        /* not freed: it is m or holds m, and still belongs to the caller */
        return nbi_error(NB_ERR_ARG, "add_child: adding this %s under %s would make a cycle", child->type, m->type);
    } else if (check_name("add_child", "module", m, name)) {
        if (!grow((void **)&m->children, &m->cap_children, m->nchildren, sizeof *m->children) ||
            !(nm = dup_str(name)))
            st = nbi_error(NB_ERR_NOMEM, "add_child: out of memory");
    } else {
        st = nb_last_status();
    }
    if (st != NB_OK) {
        nb_module_free(child); /* taken over even on failure */
        return st;
    }
    m->children[m->nchildren].name = nm;
    m->children[m->nchildren].m = child;
    m->nchildren++;
    child->parent = m;
    return NB_OK;
}

static nb_status add_entry(const char *op, const char *kind, nb_module *m, const char *name, nb_tensor *t,
                           nbi_entry **items, int *count, int *cap) {
    if (!m) return nbi_error(NB_ERR_ARG, "%s: module is NULL", op);
    if (!nbi_check_tensor(op, name ? name : "t", t)) return nb_last_status();
    if (!check_name(op, kind, m, name)) return nb_last_status();
    char *nm = NULL;
    if (!grow((void **)items, cap, *count, sizeof **items) || !(nm = dup_str(name)))
        return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    (*items)[*count].name = nm;
    (*items)[*count].t = nbi_retain(t); /* the module's own reference, held by no scope */
    (*count)++;
    return NB_OK;
}

nb_status nb_module_register_parameter(nb_module *m, const char *name, nb_tensor *t) {
    const char *op = "register_parameter";
    if (t && t->dtype != NB_F32 && t->dtype != NB_F64)
        return nbi_error(NB_ERR_DTYPE, "%s: only float32 and float64 tensors can be parameters, but '%s' is %s", op,
                         name ? name : "", nb_dtype_name(t->dtype));
    if (t && t->grad_fn)
        return nbi_error(NB_ERR_ARG,
                         "%s: cannot assign non-leaf Tensor to parameter '%s'. Model parameters must be created "
                         "explicitly (use nb_detach or nb_clone of a detached tensor)", op, name ? name : "");
    if (!m) return nbi_error(NB_ERR_ARG, "%s: module is NULL", op); /* before &m->params: UB on NULL */
    nb_status st = add_entry(op, "parameter", m, name, t, &m->params, &m->nparams, &m->cap_params);
    if (st != NB_OK) return st;
    return nb_requires_grad_(t, true);
}

nb_status nb_module_register_buffer(nb_module *m, const char *name, nb_tensor *t) {
    if (!m) return nbi_error(NB_ERR_ARG, "register_buffer: module is NULL"); /* before &m->buffers: UB on NULL */
    return add_entry("register_buffer", "buffer", m, name, t, &m->buffers, &m->nbuffers, &m->cap_buffers);
}

/* ---- running ---- */

nb_tensor *nb_module_forward(nb_module *m, const nb_tensor *x) {
    if (!m) {
        nbi_null_arg("module_forward", "module");
        return NULL;
    }
    if (!x) {
        char op[160];
        snprintf(op, sizeof op, "%s.forward", m->type);
        nbi_null_arg(op, "input");
        return NULL;
    }
    if (!m->forward) {
        nbi_error(NB_ERR_STATE, "Module [%s] is missing the required \"forward\" function", m->type);
        return NULL;
    }
    nb_tensor *y = m->forward(m, x, m->ctx);
    if (!y && nb_last_status() == NB_OK)
        nbi_error(NB_ERR_STATE, "%s.forward returned NULL without setting an error", m->type);
    return y;
}

nb_tensor *nb_module_call(nb_module *m, const char *name, const nb_tensor *x) {
    nb_module *c = nb_module_child(m, name);
    return c ? nb_module_forward(c, x) : NULL;
}

void nb_module_train(nb_module *m, bool mode) {
    if (!m) return;
    m->training = mode;
    for (int i = 0; i < m->nchildren; i++) nb_module_train(m->children[i].m, mode);
}

void nb_module_eval(nb_module *m) { nb_module_train(m, false); }

bool nb_module_is_training(const nb_module *m) { return m && m->training; }

void nb_module_zero_grad(nb_module *m) {
    if (!m) return;
    for (int i = 0; i < m->nparams; i++) nb_zero_grad(m->params[i].t);
    for (int i = 0; i < m->nchildren; i++) nb_module_zero_grad(m->children[i].m);
}

const char *nb_module_type(const nb_module *m) { return m ? m->type : NULL; }
