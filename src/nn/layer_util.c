/* Helpers shared by the layer constructors (layer_util.h). */
#include "nn/layer_util.h"

#include <stdlib.h>

#include "tensor/internal.h"

void *nbi_layer_ctx(const char *layer, size_t size) {
    void *c = calloc(1, size);
    if (!c) nbi_error(NB_ERR_NOMEM, "%s: out of memory", layer);
    return c;
}

nb_module *nbi_layer_new(const char *name, nb_forward_fn fwd, void *ctx) {
    if (!ctx) return NULL;
    return nb_module_new(name, fwd, ctx, free);
}

nb_tensor *nbi_layer_state(nb_module *m, const char *name, bool parameter, nb_tensor *t) {
    if (!t) return NULL;
    nb_status st = parameter ? nb_module_register_parameter(m, name, t) : nb_module_register_buffer(m, name, t);
    nbi_release(t); /* the module holds its own reference now */
    return st == NB_OK ? nb_module_param(m, name) : NULL;
}

nb_tensor *nbi_layer_uniform(nb_module *m, const char *name, nb_rng *rng, int ndim, const int64_t *shape,
                             double bound) {
    return nbi_layer_state(m, name, true, nbi_own(nb_rand_uniform(rng, NB_F32, ndim, shape, -bound, bound)));
}

nb_tensor *nbi_layer_const(nb_module *m, const char *name, bool parameter, nb_dtype dtype, int ndim,
                           const int64_t *shape, double value) {
    return nbi_layer_state(m, name, parameter, nbi_own(nb_full(dtype, ndim, shape, value)));
}

bool nbi_conv_module_check(const char *op, int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t groups) {
    if (in <= 0 || out <= 0)
        return nbi_error(NB_ERR_ARG, "%s: in_channels and out_channels must be positive, but got %lld and %lld", op,
                         (long long)in, (long long)out), false;
    if (kh <= 0 || kw <= 0)
        return nbi_error(NB_ERR_ARG, "%s: kernel_size must be positive, but got (%lld, %lld)", op, (long long)kh,
                         (long long)kw), false;
    if (groups <= 0) return nbi_error(NB_ERR_ARG, "%s: groups must be a positive integer", op), false;
    if (in % groups)
        return nbi_error(NB_ERR_ARG, "%s: in_channels must be divisible by groups (in_channels=%lld, groups=%lld)", op,
                         (long long)in, (long long)groups), false;
    if (out % groups)
        return nbi_error(NB_ERR_ARG, "%s: out_channels must be divisible by groups (out_channels=%lld, groups=%lld)",
                         op, (long long)out, (long long)groups), false;
    return true;
}
