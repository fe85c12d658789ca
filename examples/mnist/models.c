/* models.c: the MNIST nets as custom nabla modules, written the way one
 * writes forward() in PyTorch. */
#include "models.h"

#include <string.h>

/* One step of a forward: y = op(x), releasing x (an intermediate) after. */
static nb_tensor *then(nb_tensor *x, nb_tensor *y) {
    nb_tensor_release(x);
    return y;
}

/* Without autograd (evaluation) a large batch goes through the net in chunks
 * of EVAL_CHUNK images, concatenated: every image's logits are computed
 * exactly as in one pass (no op mixes images), but the peak memory is that of
 * a 256-image batch instead of, say, the 1000-image test batch (~550 MiB of
 * activations and conv workspace). */
#define EVAL_CHUNK 256
#define EVAL_MAX_CHUNKS 64

static nb_tensor *default_forward(nb_module *self, const nb_tensor *x, void *ctx);

static nb_tensor *chunked_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    int64_t n = nb_tensor_shape(x)[0];
    int k = (int)((n + EVAL_CHUNK - 1) / EVAL_CHUNK);
    nb_tensor *parts[EVAL_MAX_CHUNKS] = {0};
    nb_tensor *out = NULL;
    int i = 0;
    for (; i < k; i++) {
        int64_t start = (int64_t)i * EVAL_CHUNK, len = n - start < EVAL_CHUNK ? n - start : EVAL_CHUNK;
        nb_tensor *xi = nb_narrow(x, 0, start, len);
        parts[i] = xi ? default_forward(self, xi, ctx) : NULL;
        nb_tensor_release(xi);
        if (!parts[i]) break;
    }
    if (i == k) out = nb_cat((const nb_tensor *const *)parts, k, 0);
    for (int j = 0; j < k; j++) nb_tensor_release(parts[j]);
    return out;
}

static nb_tensor *default_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    if (!nb_grad_enabled() && nb_tensor_ndim(x) == 4 && nb_tensor_shape(x)[0] > EVAL_CHUNK &&
        nb_tensor_shape(x)[0] <= (int64_t)EVAL_CHUNK * EVAL_MAX_CHUNKS)
        return chunked_forward(self, x, ctx);
    (void)ctx;
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    /* conv1 then relu as one op (relu in the conv's stores) */
    nb_module *conv1 = nb_module_child(self, "conv1"), *conv2 = nb_module_child(self, "conv2");
    nb_tensor *h = nb_conv2d_pool_relu(x, nb_module_param(conv1, "weight"), nb_module_param(conv1, "bias"), NULL, NULL,
                                       true);
    /* PyTorch's net does conv2, relu, then max_pool2d. max(relu(a), relu(b))
     * = relu(max(a, b)) and the gradient is the same (all of it to the first
     * maximum if it is positive, none otherwise), so pooling first gives the
     * same numbers (up to the sign of an all-nonpositive window's zero, which
     * no later op can tell apart); nb_conv2d_pool_relu does conv2, pool and
     * relu in one op, without storing conv2's full-size output. */
    h = then(h, nb_conv2d_pool_relu(h, nb_module_param(conv2, "weight"), nb_module_param(conv2, "bias"), NULL, &pool,
                                    true));
    h = then(h, nb_module_call(self, "dropout1", h));
    h = then(h, nb_flatten(h, 1, -1));
    h = then(h, nb_module_call(self, "fc1", h));
    h = then(h, nb_relu(h));
    h = then(h, nb_module_call(self, "dropout2", h));
    h = then(h, nb_module_call(self, "fc2", h));
    return then(h, nb_log_softmax(h, 1));
}

static nb_tensor *small_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)ctx;
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    nb_tensor *h = nb_module_call(self, "conv1", x);
    h = then(h, nb_max_pool2d(h, &pool)); /* before relu, as in default_forward */
    h = then(h, nb_relu(h));
    h = then(h, nb_module_call(self, "conv2", h));
    h = then(h, nb_max_pool2d(h, &pool));
    h = then(h, nb_relu(h));
    h = then(h, nb_flatten(h, 1, -1));
    h = then(h, nb_module_call(self, "fc1", h));
    h = then(h, nb_relu(h));
    h = then(h, nb_module_call(self, "fc2", h));
    return then(h, nb_log_softmax(h, 1));
}

bool mnist_model_outputs_logits(const char *name) { return strcmp(name, "resnet") == 0; }

nb_module *mnist_model_new(const char *name, int64_t width, nb_rng *init_rng, nb_rng *dropout_rng) {
    if (strcmp(name, "resnet") == 0) return mnist_resnet_new(width, init_rng);
    bool small = strcmp(name, "small") == 0;
    if (!small && strcmp(name, "default") != 0) {
        nb_set_error(NB_ERR_ARG, "mnist_model_new: no model '%s' (default, small, resnet)", name);
        return NULL;
    }
    nb_module *m = nb_module_new(small ? "SmallNet" : "Net", small ? small_forward : default_forward, NULL, NULL);
    if (!m) return NULL;
    nb_status st;
    if (small) {
        st = nb_module_add_child(m, "conv1", nb_conv2d_module(1, 8, 3, 3, NULL, true, init_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "conv2", nb_conv2d_module(8, 16, 3, 3, NULL, true, init_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "fc1", nb_linear_module(400, 64, true, init_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "fc2", nb_linear_module(64, 10, true, init_rng));
    } else {
        st = nb_module_add_child(m, "conv1", nb_conv2d_module(1, 32, 3, 3, NULL, true, init_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "conv2", nb_conv2d_module(32, 64, 3, 3, NULL, true, init_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "dropout1", nb_dropout_module(0.25, dropout_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "dropout2", nb_dropout_module(0.5, dropout_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "fc1", nb_linear_module(9216, 128, true, init_rng));
        if (st == NB_OK) st = nb_module_add_child(m, "fc2", nb_linear_module(128, 10, true, init_rng));
    }
    if (st != NB_OK) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}
