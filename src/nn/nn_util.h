/* Small helpers shared by the kernels of nabla/functional.h (the files of src/nn):
 * contiguous access to inputs without recording, shape strings, ctx
 * allocation. Private to src/nn. */
#ifndef NABLA_NN_UTIL_H
#define NABLA_NN_UTIL_H

#include "nabla/functional.h"
#include "tensor/internal.h"

#include <stdlib.h>

/* malloc that leaves an error naming op on failure. */
static inline void *nnu_alloc(const char *op, size_t n) {
    void *p = nbi_alloc_should_fail() ? NULL : calloc(1, n ? n : 1); /* tests can force failures */
    if (!p) nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    return p;
}

/* "[2, 3]" for t's shape, into buf. */
static inline const char *nnu_shape(const nb_tensor *t, char *buf, size_t size) {
    return nb_shape_str(t->ndim, t->shape, buf, size);
}

#endif
