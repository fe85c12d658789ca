/* Gradient hooks (nabla/autograd.h: nb_tensor_register_hook), like PyTorch's
 * Tensor.register_hook. A leaf keeps its hooks itself; a non-leaf's hooks
 * are kept by the node that produced it, tagged with the tensor's output
 * number, as PyTorch keeps them on grad_fn: the engine runs them when it
 * reaches the node, and they live as long as the graph. */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nbi_hook {
    nbi_hook *next;
    uint64_t id;
    int output_nr;                /* which output of the node (non-leaf hooks) */
    nb_grad_hook_fn fn;
    void *ctx;
    void (*free_ctx)(void *ctx);
};

static atomic_uint_fast64_t next_id = 1; /* 0 is never a handle */

static void hook_free(nbi_hook *h) {
    if (h->free_ctx) h->free_ctx(h->ctx);
    free(h);
}

void nbi_hooks_free(nbi_hook *hooks) {
    while (hooks) {
        nbi_hook *next = hooks->next;
        hook_free(hooks);
        hooks = next;
    }
}

nb_hook_handle nb_tensor_register_hook(nb_tensor *t, nb_grad_hook_fn fn, void *ctx, void (*free_ctx)(void *ctx)) {
    nb_hook_handle none = {0};
    if (!nbi_check_tensor("register_hook", "t", t)) return none;
    if (!fn) {
        nbi_error(NB_ERR_ARG, "register_hook: hook is NULL");
        return none;
    }
    if (!t->requires_grad) {
        nbi_error(NB_ERR_STATE, "register_hook: cannot register a hook on a tensor that doesn't require gradient");
        return none;
    }
    nbi_hook *h = nbi_alloc_should_fail() ? NULL : calloc(1, sizeof *h);
    if (!h) {
        nbi_error(NB_ERR_NOMEM, "register_hook: out of memory");
        return none;
    }
    h->id = atomic_fetch_add(&next_id, 1);
    h->fn = fn;
    h->ctx = ctx;
    h->free_ctx = free_ctx;
    h->output_nr = t->output_nr;
    nbi_hook **tail = t->grad_fn ? &t->grad_fn->hooks : &t->hooks;
    while (*tail) tail = &(*tail)->next;
    *tail = h;
    return (nb_hook_handle){h->id};
}

nb_status nb_tensor_remove_hook(nb_tensor *t, nb_hook_handle handle) {
    if (!nbi_check_tensor("remove_hook", "t", t)) return nb_last_status();
    if (handle.id == 0) return nbi_error(NB_ERR_ARG, "remove_hook: handle 0 is not a hook (a failed nb_tensor_register_hook?)");
    for (nbi_hook **p = t->grad_fn ? &t->grad_fn->hooks : &t->hooks; *p; p = &(*p)->next) {
        if ((*p)->id != handle.id) continue;
        nbi_hook *h = *p;
        *p = h->next;
        hook_free(h);
        break;
    }
    return NB_OK; /* like handle.remove(): removing twice is harmless */
}

nb_status nbi_hooks_run(nbi_hook *hooks, int output_nr, nb_tensor **g, const char *what) {
    for (nbi_hook *h = hooks; h; h = h->next) {
        if (h->output_nr != output_nr) continue;
        nb_tensor *r = NULL;
        nb_status st = h->fn(*g, &r, h->ctx);
        r = nbi_own(r); /* the hook's result, now ours */
        if (st == NB_OK && r) {
            char a[128], b[128];
            if (r->dtype != (*g)->dtype)
                st = nbi_error(NB_ERR_DTYPE, "backward: a hook of %s changed the type of the gradient from %s to %s", what,
                               nb_dtype_name((*g)->dtype), nb_dtype_name(r->dtype));
            else if (r->ndim != (*g)->ndim || memcmp(r->shape, (*g)->shape, sizeof(int64_t) * (size_t)r->ndim) != 0)
                st = nbi_error(NB_ERR_SHAPE, "backward: a hook of %s changed the size of the gradient from %s to %s", what,
                               nb_shape_str((*g)->ndim, (*g)->shape, a, sizeof a), nb_shape_str(r->ndim, r->shape, b, sizeof b));
            if (st != NB_OK) {
                nbi_release(r);
                return st;
            }
            nbi_release(*g);
            *g = r;
        } else if (st != NB_OK) {
            nbi_release(r);
            if (nb_last_status() == NB_OK) nbi_error(st, "backward: a hook of %s failed (status %d) without an error message", what, (int)st);
            return st;
        }
    }
    return NB_OK;
}
