/* Resampling layers of nabla/nn.h as modules: nn.AdaptiveAvgPool2d,
 * nn.AdaptiveMaxPool2d, nn.MaxUnpool2d and nn.Upsample. Stateless: each is a
 * config struct around the functional op (functional.h), whose parameter
 * checks the constructor runs so a bad argument fails there. */
#include "nn/layer_util.h"
#include "nn/module_internal.h"
#include "nn/nn_util.h"

/* ---- AdaptiveAvgPool2d, AdaptiveMaxPool2d ---- */
typedef struct adaptive_ctx { int64_t out_h, out_w; } adaptive_ctx;

static nb_tensor *adaptive_avg_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const adaptive_ctx *c = ctx;
    return nb_adaptive_avg_pool2d(x, c->out_h, c->out_w);
}
static nb_tensor *adaptive_max_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const adaptive_ctx *c = ctx;
    return nb_adaptive_max_pool2d(x, c->out_h, c->out_w, NULL);
}

static nb_module *adaptive_module(const char *name, nb_forward_fn fwd, int64_t out_h, int64_t out_w) {
    if ((out_h < 0 && out_h != NB_SIZE_NONE) || (out_w < 0 && out_w != NB_SIZE_NONE)) {
        nbi_error(NB_ERR_ARG, "%s: elements of output_size must be greater than or equal to 0 but received {%lld, %lld}",
                  name, (long long)out_h, (long long)out_w);
        return NULL;
    }
    adaptive_ctx *c = nbi_layer_ctx(name, sizeof *c);
    if (c) *c = (adaptive_ctx){out_h, out_w};
    return nbi_layer_new(name, fwd, c);
}

nb_module *nb_adaptive_avg_pool2d_module(int64_t out_h, int64_t out_w) {
    return adaptive_module("AdaptiveAvgPool2d", adaptive_avg_forward, out_h, out_w);
}
nb_module *nb_adaptive_max_pool2d_module(int64_t out_h, int64_t out_w) {
    return adaptive_module("AdaptiveMaxPool2d", adaptive_max_forward, out_h, out_w);
}

/* ---- MaxUnpool2d: its forward needs the indices, so it has its own call ---- */
static nb_tensor *max_unpool_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)x, (void)ctx;
    nbi_error(NB_ERR_STATE, "%s.forward: MaxUnpool2d needs the indices of max_pool2d: call "
              "nb_max_unpool2d_module_forward(module, x, indices, output_size, n)", self->type);
    return NULL;
}

nb_module *nb_max_unpool2d_module(const nb_pool2d_params *p) {
    if (!nbi_max_unpool2d_check_params("MaxUnpool2d", p)) return NULL;
    nb_pool2d_params *c = nbi_layer_ctx("MaxUnpool2d", sizeof *c);
    if (c) *c = *p;
    return nbi_layer_new("MaxUnpool2d", max_unpool_forward, c);
}

nb_tensor *nb_max_unpool2d_module_forward(nb_module *m, const nb_tensor *x, const nb_tensor *indices,
                                          const int64_t *output_size, int output_size_len) {
    if (!m) {
        nbi_null_arg("max_unpool2d_module_forward", "module");
        return NULL;
    }
    if (m->forward != max_unpool_forward) {
        nbi_error(NB_ERR_ARG, "max_unpool2d_module_forward: the module is a %s, not a MaxUnpool2d", m->type);
        return NULL;
    }
    return nb_max_unpool2d(x, indices, m->ctx, output_size, output_size_len);
}

/* ---- Upsample ---- */
static nb_tensor *upsample_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_interpolate(x, ctx);
}

nb_module *nb_upsample_module(const nb_interpolate_params *p) {
    if (!nbi_interpolate_check_params("Upsample", p)) return NULL;
    nb_interpolate_params *c = nbi_layer_ctx("Upsample", sizeof *c);
    if (c) *c = *p;
    return nbi_layer_new("Upsample", upsample_forward, c);
}
