/* The standard layers of nabla/nn.h as modules: each is a small config
 * struct (the module's ctx) and a forward that calls the functional API
 * (functional.h, conv.h, ops.h). They are built only with the public module
 * API, exactly as a user would write a custom module. Defaults and messages
 * follow torch.nn. */
#include "nabla/nn.h"

#include "nabla/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layer_util.h"
#include "nn/nn_util.h"

/* ---- Linear ---- */
typedef struct linear_ctx {
    nb_tensor *weight, *bias;   /* borrowed from the module; bias may be NULL */
} linear_ctx;

static nb_tensor *linear_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const linear_ctx *c = ctx;
    return nb_linear(x, c->weight, c->bias);
}

nb_module *nb_linear_module(int64_t in_features, int64_t out_features, bool bias, nb_rng *rng) {
    if (in_features < 0 || out_features < 0) {
        nbi_error(NB_ERR_ARG, "Linear: in_features and out_features must be non-negative, but got %lld and %lld",
                  (long long)in_features, (long long)out_features);
        return NULL;
    }
    linear_ctx *c = nbi_layer_ctx("Linear", sizeof *c);
    nb_module *m = nbi_layer_new("Linear", linear_forward, c);
    if (!m) return NULL;
    /* fan_in 0 gives bound 0, as PyTorch's bias rule (its weight init is then a no-op on 0 elements). */
    double bound = in_features > 0 ? 1.0 / sqrt((double)in_features) : 0.0;
    c->weight = nbi_layer_uniform(m, "weight", rng, NB_SHAPE(out_features, in_features), bound);
    if (!c->weight) goto fail;
    if (bias && !(c->bias = nbi_layer_uniform(m, "bias", rng, NB_SHAPE(out_features), bound))) goto fail;
    return m;
fail:
    nb_module_free(m);
    return NULL;
}

/* ---- Conv2d ---- */
typedef struct conv2d_ctx {
    nb_conv2d_params p;
    nb_tensor *weight, *bias;   /* borrowed from the module; bias may be NULL */
} conv2d_ctx;

static nb_tensor *conv2d_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const conv2d_ctx *c = ctx;
    return nb_conv2d(x, c->weight, c->bias, &c->p);
}

/* nn.Conv2d's constructor checks, with its messages, then the op's own checks
 * of the parameters (so a bad stride fails here with F.conv2d's message). */
static bool conv2d_check(int64_t in, int64_t out, int64_t kh, int64_t kw, const nb_conv2d_params *p) {
    const char *op = "Conv2d";
    if (!nbi_conv_module_check(op, in, out, kh, kw, p->groups)) return false;
    return nbi_conv2d_check_params(op, p);
}

nb_module *nb_conv2d_module(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                            const nb_conv2d_params *p, bool bias, nb_rng *rng) {
    nb_conv2d_params prm = p ? *p : nb_conv2d_defaults();
    if (!conv2d_check(in_channels, out_channels, kh, kw, &prm)) return NULL;
    conv2d_ctx *c = nbi_layer_ctx("Conv2d", sizeof *c);
    nb_module *m = nbi_layer_new("Conv2d", conv2d_forward, c);
    if (!m) return NULL;
    c->p = prm;
    int64_t fan_in = in_channels / prm.groups * kh * kw;
    double bound = 1.0 / sqrt((double)fan_in);
    c->weight = nbi_layer_uniform(m, "weight", rng, NB_SHAPE(out_channels, in_channels / prm.groups, kh, kw), bound);
    if (!c->weight) goto fail;
    if (bias && !(c->bias = nbi_layer_uniform(m, "bias", rng, NB_SHAPE(out_channels), bound))) goto fail;
    return m;
fail:
    nb_module_free(m);
    return NULL;
}

/* ---- BatchNorm1d, BatchNorm2d ---- */
typedef struct batch_norm_ctx {
    const char *name;             /* "BatchNorm1d" (2-d or 3-d input) or "BatchNorm2d" (4-d) */
    int min_dim, max_dim;
    int64_t num_features;
    double eps, momentum;         /* momentum < 0: cumulative average (PyTorch's None) */
    nb_tensor *weight, *bias;     /* borrowed; NULL unless affine */
    nb_tensor *running_mean, *running_var, *num_batches_tracked; /* borrowed; NULL unless tracking */
} batch_norm_ctx;

static nb_tensor *batch_norm_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    const batch_norm_ctx *c = ctx;
    int nd = nb_tensor_ndim(x);
    if (nd < c->min_dim || nd > c->max_dim) {
        if (c->min_dim == c->max_dim)
            nbi_error(NB_ERR_SHAPE, "%s: expected %dD input (got %dD input)", c->name, c->min_dim, nd);
        else
            nbi_error(NB_ERR_SHAPE, "%s: expected %dD or %dD input (got %dD input)", c->name, c->min_dim, c->max_dim, nd);
        return NULL;
    }
    bool training = nb_module_is_training(self);
    bool track = c->running_mean != NULL;
    double factor = c->momentum < 0 ? 0.0 : c->momentum;
    int64_t *count = track ? nb_tensor_i64(c->num_batches_tracked) : NULL;
    if (training && track && c->momentum < 0) factor = 1.0 / (double)(*count + 1);
    /* Without running statistics it always normalises with the batch's own. */
    nb_tensor *y = nb_batch_norm(x, c->running_mean, c->running_var, c->weight, c->bias, training || !track, factor,
                                 c->eps);
    /* PyTorch counts before normalising; counting after success leaves the
     * state untouched when the input is rejected, with the same final count. */
    if (y && training && track) (*count)++;
    return y;
}

static nb_module *batch_norm_module(const char *name, int min_dim, int max_dim, int64_t num_features, double eps,
                                    double momentum, bool affine, bool track_running_stats) {
    if (num_features <= 0) {
        nbi_error(NB_ERR_ARG, "%s: num_features must be positive, but got %lld", name, (long long)num_features);
        return NULL;
    }
    if (!(eps >= 0) || !isfinite(eps)) {
        nbi_error(NB_ERR_ARG, "%s: eps must be a non-negative number, but got %g", name, eps);
        return NULL;
    }
    if (isnan(momentum) || momentum > 1) {
        nbi_error(NB_ERR_ARG, "%s: momentum must be in [0, 1] (or negative for a cumulative average), but got %g", name,
                  momentum);
        return NULL;
    }
    batch_norm_ctx *c = nbi_layer_ctx(name, sizeof *c);
    nb_module *m = nbi_layer_new(name, batch_norm_forward, c);
    if (!m) return NULL;
    c->name = name;
    c->min_dim = min_dim;
    c->max_dim = max_dim;
    c->num_features = num_features;
    c->eps = eps;
    c->momentum = momentum;
    /* Registration order = PyTorch's state_dict order: weight, bias, then the buffers. */
    if (affine) {
        if (!(c->weight = nbi_layer_const(m, "weight", true, NB_F32, NB_SHAPE(num_features), 1.0))) goto fail;
        if (!(c->bias = nbi_layer_const(m, "bias", true, NB_F32, NB_SHAPE(num_features), 0.0))) goto fail;
    }
    if (track_running_stats) {
        if (!(c->running_mean = nbi_layer_const(m, "running_mean", false, NB_F32, NB_SHAPE(num_features), 0.0))) goto fail;
        if (!(c->running_var = nbi_layer_const(m, "running_var", false, NB_F32, NB_SHAPE(num_features), 1.0))) goto fail;
        if (!(c->num_batches_tracked = nbi_layer_const(m, "num_batches_tracked", false, NB_I64, 0, NULL, 0.0))) goto fail;
    }
    return m;
fail:
    nb_module_free(m);
    return NULL;
}

nb_module *nb_batch_norm1d_module(int64_t num_features, double eps, double momentum, bool affine,
                                  bool track_running_stats) {
    return batch_norm_module("BatchNorm1d", 2, 3, num_features, eps, momentum, affine, track_running_stats);
}

nb_module *nb_batch_norm2d_module(int64_t num_features, double eps, double momentum, bool affine,
                                  bool track_running_stats) {
    return batch_norm_module("BatchNorm2d", 4, 4, num_features, eps, momentum, affine, track_running_stats);
}

/* ---- pooling ---- */
static nb_tensor *max_pool_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_max_pool2d(x, ctx);
}
static nb_tensor *avg_pool_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_avg_pool2d(x, ctx);
}

/* The op's own parameter checks, so a bad one fails here with its message. */
static nb_module *pool_module(const char *name, nb_forward_fn fwd, const nb_pool2d_params *p, bool is_max) {
    if (!p) {
        nbi_error(NB_ERR_ARG, "%s: params is NULL (use nb_pool2d_defaults(kernel_size))", name);
        return NULL;
    }
    if (!nbi_pool2d_check_params(name, p, is_max)) return NULL;
    nb_pool2d_params *c = nbi_layer_ctx(name, sizeof *c);
    if (c) *c = *p;
    return nbi_layer_new(name, fwd, c);
}

nb_module *nb_max_pool2d_module(const nb_pool2d_params *p) { return pool_module("MaxPool2d", max_pool_forward, p, true); }
nb_module *nb_avg_pool2d_module(const nb_pool2d_params *p) { return pool_module("AvgPool2d", avg_pool_forward, p, false); }

/* ---- Dropout ---- */
typedef struct dropout_ctx {
    double p;
    nb_rng *rng;    /* borrowed; NULL: the default generator */
} dropout_ctx;

static nb_tensor *dropout_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    const dropout_ctx *c = ctx;
    return nb_dropout(x, c->p, nb_module_is_training(self), c->rng);
}
static nb_tensor *dropout2d_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    const dropout_ctx *c = ctx;
    return nb_dropout2d(x, c->p, nb_module_is_training(self), c->rng);
}

static nb_module *dropout_module(const char *name, nb_forward_fn fwd, double p, nb_rng *rng) {
    if (!nbi_dropout_check_p(name, p)) return NULL;
    dropout_ctx *c = nbi_layer_ctx(name, sizeof *c);
    if (c) {
        c->p = p;
        c->rng = rng;
    }
    return nbi_layer_new(name, fwd, c);
}

nb_module *nb_dropout_module(double p, nb_rng *rng) { return dropout_module("Dropout", dropout_forward, p, rng); }
nb_module *nb_dropout2d_module(double p, nb_rng *rng) { return dropout_module("Dropout2d", dropout2d_forward, p, rng); }

/* ---- shape and normalisation ---- */
typedef struct dims_ctx { int a, b; } dims_ctx;

static nb_tensor *flatten_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const dims_ctx *c = ctx;
    return nb_flatten(x, c->a, c->b);
}

nb_module *nb_flatten_module(int start_dim, int end_dim) {
    dims_ctx *c = nbi_layer_ctx("Flatten", sizeof *c);
    if (c) {
        c->a = start_dim;
        c->b = end_dim;
    }
    return nbi_layer_new("Flatten", flatten_forward, c);
}

static nb_tensor *log_softmax_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_log_softmax(x, ((const dims_ctx *)ctx)->a);
}

nb_module *nb_log_softmax_module(int dim) {
    dims_ctx *c = nbi_layer_ctx("LogSoftmax", sizeof *c);
    if (c) c->a = dim;
    return nbi_layer_new("LogSoftmax", log_softmax_forward, c);
}

/* ---- activations ---- */
static nb_tensor *relu_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self, (void)ctx;
    return nb_relu(x);
}
static nb_tensor *sigmoid_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self, (void)ctx;
    return nb_sigmoid(x);
}
static nb_tensor *tanh_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self, (void)ctx;
    return nb_tanh(x);
}
static nb_tensor *leaky_relu_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    return nb_leaky_relu(x, *(const double *)ctx);
}

nb_module *nb_relu_module(void) { return nb_module_new("ReLU", relu_forward, NULL, NULL); }
nb_module *nb_sigmoid_module(void) { return nb_module_new("Sigmoid", sigmoid_forward, NULL, NULL); }
nb_module *nb_tanh_module(void) { return nb_module_new("Tanh", tanh_forward, NULL, NULL); }

nb_module *nb_leaky_relu_module(double negative_slope) {
    if (isnan(negative_slope)) {
        nbi_error(NB_ERR_ARG, "LeakyReLU: negative_slope is NaN");
        return NULL;
    }
    double *c = nbi_layer_ctx("LeakyReLU", sizeof *c);
    if (c) *c = negative_slope;
    return nbi_layer_new("LeakyReLU", leaky_relu_forward, c);
}
