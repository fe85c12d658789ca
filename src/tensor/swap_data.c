/* Replacing a tensor's data in place (PyTorch's `param.data = new`), for
 * module.double() / .float() (src/nn/module_dtype.c): the tensor object, which
 * modules, optimizers and users hold, stays; its dtype, storage and layout
 * become another tensor's. */
#include "internal.h"

#include <string.h>

void nbi_swap_data(nb_tensor *a, nb_tensor *b) {
    nb_tensor tmp = *a;
    a->dtype = b->dtype;
    a->storage = b->storage;
    a->offset = b->offset;
    memcpy(a->strides, b->strides, sizeof a->strides);
    b->dtype = tmp.dtype;
    b->storage = tmp.storage;
    b->offset = tmp.offset;
    memcpy(b->strides, tmp.strides, sizeof b->strides);
}
