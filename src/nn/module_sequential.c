/* nn.Sequential (nabla/nn.h): children named "0", "1", ... applied in
 * order, each output feeding the next. */
#include "nn/module_internal.h"

#include <stdio.h>

static nb_tensor *sequential_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)ctx;
    int n = self->nchildren;
    /* An empty Sequential is the identity; a view keeps "a new reference" true
     * (and scope-held, like any op's result). */
    if (n == 0) return nb_view(x, x->ndim, x->shape);
    nb_tensor *h = NULL;
    for (int i = 0; i < n; i++) {
        nb_tensor *next = nbi_own(nb_module_forward(self->children[i].m, i ? h : x));
        nbi_release(h); /* the graph keeps what backward needs */
        if (!next) return NULL;
        h = next;
    }
    return nbi_give(h);
}

nb_status nb_sequential_append(nb_module *seq, nb_module *module) {
    if (seq && module && seq->forward != sequential_forward) {
        nb_module_free(module); /* taken over even on failure */
        return nbi_error(NB_ERR_ARG, "sequential_append: expected a Sequential, but got a %s", seq->type);
    }
    char name[24];
    snprintf(name, sizeof name, "%d", seq ? seq->nchildren : 0);
    return nb_module_add_child(seq, name, module);
}

nb_module *nb_sequential_module(nb_module *const *modules, int n) {
    bool ok = n >= 0 && (n == 0 || modules);
    if (!ok) nbi_error(NB_ERR_ARG, "Sequential: expected an array of n >= 0 modules, but got n = %d%s", n,
                       modules ? "" : " and a NULL array");
    for (int i = 0; ok && i < n; i++)
        if (!modules[i]) {
            nbi_null_arg("Sequential", "module"); /* a failed constructor's message stays */
            ok = false;
        }
    nb_module *seq = ok ? nb_module_new("Sequential", sequential_forward, NULL, NULL) : NULL;
    if (!seq) {
        for (int i = 0; modules && i < n; i++) nb_module_free(modules[i]);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (nb_sequential_append(seq, modules[i]) != NB_OK) {
            /* append took over modules[i]; the rest are still ours to free */
            for (int j = i + 1; j < n; j++) nb_module_free(modules[j]);
            nb_module_free(seq);
            return NULL;
        }
    return seq;
}
