/* nn.GroupNorm and nn.LayerNorm as modules around F.group_norm and
 * F.layer_norm: parameters weight (ones) and bias (zeros) when affine, named
 * and shaped as PyTorch's state_dict, the constructor checks in torch.nn's
 * words. */
#include "nn/layer_util.h"
#include "nn/nn_util.h"

#include <math.h>
#include <string.h>

/* eps: a non-negative number, as the ops require. */
static bool check_eps(const char *name, double eps) {
    if (!(eps >= 0) || !isfinite(eps)) {
        nbi_error(NB_ERR_ARG, "%s: eps must be a non-negative number, but got %g", name, eps);
        return false;
    }
    return true;
}

/* weight = ones(shape), bias = zeros(shape): PyTorch's reset_parameters. */
static bool affine_params(nb_module *m, int ndim, const int64_t *shape, nb_tensor **weight, nb_tensor **bias) {
    *weight = nbi_layer_const(m, "weight", true, NB_F32, ndim, shape, 1.0);
    *bias = *weight ? nbi_layer_const(m, "bias", true, NB_F32, ndim, shape, 0.0) : NULL;
    return *bias != NULL;
}

/* ---- GroupNorm ---- */
typedef struct group_norm_ctx {
    int64_t num_groups;
    double eps;
    nb_tensor *weight, *bias;   /* borrowed; NULL unless affine */
} group_norm_ctx;

static nb_tensor *group_norm_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const group_norm_ctx *c = ctx;
    return nb_group_norm(x, c->num_groups, c->weight, c->bias, c->eps);
}

nb_module *nb_group_norm_module(int64_t num_groups, int64_t num_channels, double eps, bool affine) {
    const char *name = "GroupNorm";
    if (num_groups <= 0 || num_channels < 0) {
        nbi_error(NB_ERR_ARG, "%s: num_groups must be positive and num_channels non-negative, but got %lld and %lld",
                  name, (long long)num_groups, (long long)num_channels);
        return NULL;
    }
    if (num_channels % num_groups) {
        nbi_error(NB_ERR_ARG, "%s: num_channels must be divisible by num_groups (num_channels=%lld, num_groups=%lld)",
                  name, (long long)num_channels, (long long)num_groups);
        return NULL;
    }
    if (!check_eps(name, eps)) return NULL;
    group_norm_ctx *c = nbi_layer_ctx(name, sizeof *c);
    nb_module *m = nbi_layer_new(name, group_norm_forward, c);
    if (!m) return NULL;
    c->num_groups = num_groups;
    c->eps = eps;
    if (affine && !affine_params(m, NB_SHAPE(num_channels), &c->weight, &c->bias)) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- LayerNorm ---- */
typedef struct layer_norm_ctx {
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    double eps;
    nb_tensor *weight, *bias;   /* borrowed; NULL unless elementwise_affine */
} layer_norm_ctx;

static nb_tensor *layer_norm_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const layer_norm_ctx *c = ctx;
    return nb_layer_norm(x, c->ndim, c->shape, c->weight, c->bias, c->eps);
}

nb_module *nb_layer_norm_module(int normalized_ndim, const int64_t *normalized_shape, double eps,
                                bool elementwise_affine) {
    const char *name = "LayerNorm";
    if (normalized_ndim < 1 || normalized_ndim > NB_MAX_DIMS || !normalized_shape) {
        nbi_error(NB_ERR_ARG, "%s: normalized_shape must have 1 to %d dims, but got %d%s", name, NB_MAX_DIMS,
                  normalized_ndim, normalized_ndim >= 1 && !normalized_shape ? " and a NULL shape" : "");
        return NULL;
    }
    for (int i = 0; i < normalized_ndim; i++)
        if (normalized_shape[i] < 0) {
            nbi_error(NB_ERR_ARG, "%s: Trying to create tensor with negative dimension %lld", name,
                      (long long)normalized_shape[i]);
            return NULL;
        }
    if (!check_eps(name, eps)) return NULL;
    layer_norm_ctx *c = nbi_layer_ctx(name, sizeof *c);
    nb_module *m = nbi_layer_new(name, layer_norm_forward, c);
    if (!m) return NULL;
    c->ndim = normalized_ndim;
    memcpy(c->shape, normalized_shape, sizeof(int64_t) * (size_t)normalized_ndim);
    c->eps = eps;
    if (elementwise_affine && !affine_params(m, normalized_ndim, normalized_shape, &c->weight, &c->bias)) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}
