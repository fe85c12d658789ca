/* dataset_tensor.c: nb_tensor_dataset, a data set over tensors in memory
 * (torch.utils.data.TensorDataset). */
#include "data_internal.h"

#include <inttypes.h>
#include <string.h>

nb_dataset *nb_tensor_dataset(const nb_tensor *inputs, const nb_tensor *targets) {
    const char *op = "tensor_dataset";
    if (!nbi_check_tensor(op, "inputs", inputs)) return NULL;
    if (inputs->ndim < 1 || inputs->shape[0] < 1) {
        char s[128];
        nbi_error(NB_ERR_SHAPE, "%s: expected inputs of shape (N, ...) with N >= 1, but got %s", op,
                  nb_shape_str(inputs->ndim, inputs->shape, s, sizeof s));
        return NULL;
    }
    if (targets && (targets->ndim < 1 || targets->shape[0] != inputs->shape[0])) {
        char s[128];
        nbi_error(NB_ERR_SHAPE, "%s: Size mismatch between tensors: expected targets of shape (%" PRId64 ", ...), but got %s",
                  op, inputs->shape[0], nb_shape_str(targets->ndim, targets->shape, s, sizeof s));
        return NULL;
    }
    nbd_store *store = nbd_alloc(op, sizeof *store);
    if (!store) return NULL;
    *store = (nbd_store){.refcount = 1};
    store->inputs = nbi_contiguous_data(inputs);
    store->targets = targets ? nbi_contiguous_data(targets) : NULL;
    if (!store->inputs || (targets && !store->targets)) {
        nbd_store_release(store);
        return NULL;
    }
    nb_dataset *ds = nbd_dataset_new(op, store, inputs->shape[0]);
    if (!ds) return NULL;
    ds->x_ndim = inputs->ndim - 1;
    memcpy(ds->x_shape, inputs->shape + 1, sizeof(int64_t) * (size_t)ds->x_ndim);
    ds->x_numel = nbi_numel(ds->x_ndim, ds->x_shape);
    ds->x_dtype = inputs->dtype;
    ds->has_targets = targets != NULL;
    if (targets) {
        ds->y_ndim = targets->ndim - 1;
        memcpy(ds->y_shape, targets->shape + 1, sizeof(int64_t) * (size_t)ds->y_ndim);
        ds->y_numel = nbi_numel(ds->y_ndim, ds->y_shape);
        ds->y_dtype = targets->dtype;
    }
    return ds;
}
