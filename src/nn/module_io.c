/* A module's state_dict to and from HDF5: the module's named state gathered
 * into nb_named_tensor entries for nb_hdf5_save / nb_hdf5_load. */
#include "tensor/internal.h"

#include "nabla/io.h"
#include "nabla/nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct { nb_named_tensor *e; int n, cap; } entry_list;

static int collect(const char *name, nb_tensor *t, bool is_parameter, void *ctx) {
    (void)is_parameter;
    entry_list *l = ctx;
    if (l->n == l->cap) return 1; /* cannot happen: sized from nb_module_state_count */
    char *copy = strdup(name);
    if (!copy) return 1;
    l->e[l->n++] = (nb_named_tensor){copy, t};
    return 0;
}

static nb_status gather(const char *op, const nb_module *m, entry_list *l) {
    if (!m) return nbi_error(NB_ERR_ARG, "%s: module is NULL", op);
    int n = nb_module_state_count(m);
    l->e = calloc((size_t)(n > 0 ? n : 1), sizeof *l->e);
    l->cap = n;
    if (!l->e) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    if (nb_module_visit_state(m, collect, l) != NB_OK || l->n != n)
        return nb_last_status() != NB_OK ? nb_last_status() : nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    return NB_OK;
}

static void release(entry_list *l) {
    for (int i = 0; i < l->n; i++) free((char *)l->e[i].name);
    free(l->e);
}

nb_status nb_module_save_hdf5(const nb_module *m, const char *path) {
    entry_list l = {0};
    nb_status st = gather("module_save_hdf5", m, &l);
    if (st == NB_OK) st = nb_hdf5_save(path, l.e, l.n);
    release(&l);
    return st;
}

nb_status nb_module_load_hdf5(nb_module *m, const char *path, bool strict, nb_load_report *report) {
    entry_list l = {0};
    nb_status st = gather("module_load_hdf5", m, &l);
    if (st == NB_OK) st = nb_hdf5_load(path, l.e, l.n, strict, report);
    release(&l);
    return st;
}
