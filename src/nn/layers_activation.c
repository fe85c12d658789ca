/* The activation modules of nabla/nn.h beyond ReLU, LeakyReLU, Sigmoid and
 * Tanh (layers.c): GELU, SiLU, ELU, Softplus, Hardswish, Softmax. None has
 * state; each keeps its constructor arguments in a small ctx, checked at
 * construction with the functional op's own checks, and its forward calls
 * the functional op. Built with the public module API only, as layers.c. */
#include "nabla/nn.h"

#include "nabla/ops.h"

#include "nn/nn_util.h"

typedef struct act_module_ctx {
    nb_gelu_approximate approximate; /* GELU */
    double alpha;                    /* ELU */
    double beta, threshold;          /* Softplus */
    int dim;                         /* Softmax */
} act_module_ctx;

static nb_tensor *gelu_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_gelu(x, ((const act_module_ctx *)ctx)->approximate);
}
static nb_tensor *silu_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self, (void)ctx;
    return nb_silu(x);
}
static nb_tensor *elu_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_elu(x, ((const act_module_ctx *)ctx)->alpha);
}
static nb_tensor *softplus_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const act_module_ctx *c = ctx;
    return nb_softplus(x, c->beta, c->threshold);
}
static nb_tensor *hardswish_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self, (void)ctx;
    return nb_hardswish(x);
}
static nb_tensor *softmax_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_softmax(x, ((const act_module_ctx *)ctx)->dim);
}

/* A module of type name running forward with a copy of c; NULL with an error. */
static nb_module *act_module(const char *name, nb_forward_fn forward, act_module_ctx c) {
    act_module_ctx *p = nnu_alloc(name, sizeof *p);
    if (!p) return NULL;
    *p = c;
    return nb_module_new(name, forward, p, free);
}

nb_module *nb_gelu_module(nb_gelu_approximate approximate) {
    if (!nbi_gelu_check_approximate("GELU", approximate)) return NULL;
    return act_module("GELU", gelu_forward, (act_module_ctx){.approximate = approximate});
}

nb_module *nb_silu_module(void) { return act_module("SiLU", silu_forward, (act_module_ctx){0}); }

nb_module *nb_elu_module(double alpha) {
    if (!nbi_activation_check_param("ELU", "alpha", alpha)) return NULL;
    return act_module("ELU", elu_forward, (act_module_ctx){.alpha = alpha});
}

nb_module *nb_softplus_module(double beta, double threshold) {
    if (!nbi_activation_check_param("Softplus", "beta", beta) ||
        !nbi_activation_check_param("Softplus", "threshold", threshold))
        return NULL;
    return act_module("Softplus", softplus_forward, (act_module_ctx){.beta = beta, .threshold = threshold});
}

nb_module *nb_hardswish_module(void) { return act_module("Hardswish", hardswish_forward, (act_module_ctx){0}); }

/* The dim is checked against the input at forward time, as nn.Softmax does. */
nb_module *nb_softmax_module(int dim) { return act_module("Softmax", softmax_forward, (act_module_ctx){.dim = dim}); }
