/* module.double() / module.float() (nabla/nn.h: nb_module_to_dtype): every
 * float parameter and buffer of a tree, and every parameter's .grad, take a
 * new dtype in place. As PyTorch replaces param.data, the tensor objects
 * stay the same, so pointers users and optimizers hold (nb_module_parameter_list,
 * nb_optimizer_param) see the converted data. All new data is made first and
 * swapped in only when everything succeeded: a failure changes nothing. */
#include "nn/module_internal.h"

#include <stdlib.h>

/* One tensor to convert: its new data, and its grad's. */
typedef struct conversion {
    nb_tensor *t;
    nb_tensor *data;    /* t's values in the new dtype (library reference) */
    nb_tensor *grad;    /* t->grad in the new dtype, or NULL */
} conversion;

typedef struct plan {
    conversion *v;
    int n, cap;
} plan;

static bool planned(const plan *p, const nb_tensor *t) {
    for (int i = 0; i < p->n; i++)
        if (p->v[i].t == t) return true;
    return false;
}

static nb_status add(plan *p, nb_tensor *t, const char *kind, const char *name, nb_dtype dtype) {
    const char *op = "module_to_dtype";
    if (t->dtype == NB_I64 || t->dtype == dtype || planned(p, t)) return NB_OK; /* integers stay, as in PyTorch */
    if (t->grad_fn)
        return nbi_error(NB_ERR_STATE, "%s: %s '%s' was produced by %s (it has a history); only leaf tensors can be converted in place",
                         op, kind, name, nbi_node_name(t->grad_fn));
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        conversion *v = nbi_alloc_should_fail() ? NULL : realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (conversion){t, NULL, NULL};
    return NB_OK;
}

static nb_status collect(plan *p, const nb_module *m, nb_dtype dtype) {
    for (int i = 0; i < m->nparams; i++) {
        nb_status st = add(p, m->params[i].t, "parameter", m->params[i].name, dtype);
        if (st != NB_OK) return st;
    }
    for (int i = 0; i < m->nbuffers; i++) {
        nb_status st = add(p, m->buffers[i].t, "buffer", m->buffers[i].name, dtype);
        if (st != NB_OK) return st;
    }
    for (int i = 0; i < m->nchildren; i++) {
        nb_status st = collect(p, m->children[i].m, dtype);
        if (st != NB_OK) return st;
    }
    return NB_OK;
}

nb_status nb_module_to_dtype(nb_module *m, nb_dtype dtype) {
    const char *op = "module_to_dtype";
    if (!m) return nbi_null_arg(op, "module");
    if (dtype != NB_F32 && dtype != NB_F64)
        return nbi_error(NB_ERR_DTYPE, "%s: modules can be converted to float32 or float64, not %s", op, nb_dtype_name(dtype));
    plan p = {0};
    nb_status st = collect(&p, m, dtype);
    nb_no_grad_begin(); /* conversions, not ops of a graph */
    for (int i = 0; i < p.n && st == NB_OK; i++) {
        conversion *c = &p.v[i];
        if (!(c->data = nbi_empty(dtype, c->t->ndim, c->t->shape)) || (st = nb_tensor_copy_(c->data, c->t)) != NB_OK) {
            st = nb_last_status();
            break;
        }
        if (c->t->grad && !(c->grad = nbi_own(nb_to_dtype(c->t->grad, dtype)))) st = nb_last_status();
    }
    nb_no_grad_end();
    for (int i = 0; i < p.n; i++) {
        conversion *c = &p.v[i];
        if (st == NB_OK) {
            nbi_swap_data(c->t, c->data); /* c->data now holds the old values, released below */
            if (c->grad) {
                nbi_release(c->t->grad);
                c->t->grad = c->grad;
                c->grad = NULL;
            }
        }
        nbi_release(c->data);
        nbi_release(c->grad);
    }
    free(p.v);
    return st;
}
