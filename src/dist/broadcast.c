/* broadcast.c: copy rank root's parameters and buffers to every rank, as
 * DistributedDataParallel does when it wraps a model, so all replicas start
 * from the same weights whatever each rank initialised or loaded. */
#include "dist/dist_internal.h"

#include <inttypes.h>

typedef struct bcast_ctx {
    int64_t count, elements, bytes, strided; /* for the consistency check */
    int root;
    nb_status st;
    bool send; /* second pass: broadcast */
} bcast_ctx;

static int visit(const char *name, nb_tensor *t, bool is_parameter, void *vctx) {
    (void)is_parameter;
    bcast_ctx *c = vctx;
    if (!c->send) {
        c->count++;
        c->elements += t->numel;
        /* dtype and rank count too, so a float64 twin or a reshaped tensor disagrees */
        c->bytes += t->numel * (int64_t)nb_dtype_size(t->dtype) * (t->ndim + 1);
        c->strided += !nbi_is_contiguous(t);
        return 0;
    }
    if (!nbi_is_contiguous(t)) {
        c->st = nbi_error(NB_ERR_ARG, "dist_broadcast_module: state '%s' is not contiguous", name);
        return 1;
    }
    /* MPI counts are int: send in chunks */
    const int64_t chunk = 1 << 30;
    size_t esz = nb_dtype_size(t->dtype);
    for (int64_t at = 0; at < t->numel && c->st == NB_OK; at += chunk) {
        int n = (int)(t->numel - at < chunk ? t->numel - at : chunk);
        c->st = nbi_mpi_check(MPI_Bcast((char *)nbi_data(t) + (size_t)at * esz, n, nbi_mpi_type(t->dtype), c->root,
                                        nbi_dist_comm),
                              "dist_broadcast_module", "MPI_Bcast");
    }
    return c->st == NB_OK ? 0 : 1;
}

nb_status nb_dist_broadcast_module(nb_module *m, int root) {
    if (!m) return nbi_null_arg("dist_broadcast_module", "m");
    if (root < 0 || root >= nbi_dist_size_)
        return nbi_error(NB_ERR_ARG, "dist_broadcast_module: expected 0 <= root < %d, but got %d", nbi_dist_size_, root);
    if (nbi_dist_comm == MPI_COMM_NULL) return NB_OK;
    bcast_ctx c = {.root = root, .st = NB_OK};
    nb_module_visit_state(m, visit, &c);
    int64_t vals[4] = {c.count, c.elements, c.bytes, c.strided};
    static const char *what[4] = {"number of state tensors", "number of state elements", "state layout (bytes x dims)",
                                  "number of non-contiguous state tensors"};
    nb_status st = nbi_dist_agree("dist_broadcast_module", vals, 4, what);
    if (st != NB_OK) return st;
    c.send = true;
    nb_module_visit_state(m, visit, &c);
    return c.st;
}
