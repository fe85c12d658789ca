/* resnet.c: the residual net for Fashion-MNIST (--model resnet), the twin of
 * FashionResNet in tools/fashion_resnet.py: same layers, same order, same
 * state_dict keys ("layer2.downsample.0.weight", ...), so weights move both
 * ways through HDF5. Forward returns logits (no log-softmax), as the twin's. */
#include "models.h"

#include <string.h>

/* One step of a forward: y = op(x), releasing x (an intermediate) after. */
static nb_tensor *then(nb_tensor *x, nb_tensor *y) {
    nb_tensor_release(x);
    return y;
}

static bool has_child(const nb_module *m, const char *name) {
    for (int i = 0; i < nb_module_num_children(m); i++) {
        const char *n;
        nb_module_child_at(m, i, &n);
        if (!strcmp(n, name)) return true;
    }
    return false;
}

/* BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the
 * shortcut being x itself or downsample(x) (1x1 conv + BN) when the block
 * changes the size or the channels. */
static nb_tensor *block_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)ctx;
    nb_tensor *h = nb_module_call(self, "conv1", x);
    h = then(h, nb_module_call(self, "bn1", h));
    h = then(h, nb_relu(h));
    h = then(h, nb_module_call(self, "conv2", h));
    h = then(h, nb_module_call(self, "bn2", h));
    nb_tensor *shortcut = has_child(self, "downsample") ? nb_module_call(self, "downsample", x) : NULL;
    h = then(h, nb_add(h, shortcut ? shortcut : x));
    nb_tensor_release(shortcut);
    return then(h, nb_relu(h));
}

static nb_module *conv3x3(int64_t cin, int64_t cout, int64_t stride, nb_rng *rng) {
    nb_conv2d_params p = nb_conv2d_defaults();
    p.stride[0] = p.stride[1] = stride;
    p.padding[0] = p.padding[1] = 1;
    return nb_conv2d_module(cin, cout, 3, 3, &p, false, rng);
}

static nb_module *batch_norm(int64_t c) { return nb_batch_norm2d_module(c, 1e-5, 0.1, true, true); }

/* Children in the twin's order of construction: parameters draw from rng in
 * that order (the values differ from PyTorch's generator, the shapes and
 * initialisation rules do not). */
static nb_module *block_new(int64_t cin, int64_t cout, int64_t stride, nb_rng *rng) {
    nb_module *m = nb_module_new("BasicBlock", block_forward, NULL, NULL);
    nb_status st = m ? NB_OK : nb_last_status();
    if (st == NB_OK) st = nb_module_add_child(m, "conv1", conv3x3(cin, cout, stride, rng));
    if (st == NB_OK) st = nb_module_add_child(m, "bn1", batch_norm(cout));
    if (st == NB_OK) st = nb_module_add_child(m, "conv2", conv3x3(cout, cout, 1, rng));
    if (st == NB_OK) st = nb_module_add_child(m, "bn2", batch_norm(cout));
    if (st == NB_OK && (stride != 1 || cin != cout)) {
        nb_conv2d_params p = nb_conv2d_defaults();
        p.stride[0] = p.stride[1] = stride;
        nb_module *conv = nb_conv2d_module(cin, cout, 1, 1, &p, false, rng);
        st = nb_module_add_child(m, "downsample", nb_sequential_module(NB_MODULES(conv, batch_norm(cout))));
    }
    if (st != NB_OK) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

static nb_tensor *resnet_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)ctx;
    nb_tensor *h = nb_module_call(self, "conv1", x);
    h = then(h, nb_module_call(self, "bn1", h));
    h = then(h, nb_relu(h));
    h = then(h, nb_module_call(self, "layer1", h));
    h = then(h, nb_module_call(self, "layer2", h));
    h = then(h, nb_module_call(self, "layer3", h));
    h = then(h, nb_module_call(self, "pool", h));
    h = then(h, nb_flatten(h, 1, -1));
    return then(h, nb_module_call(self, "fc", h));
}

nb_module *mnist_resnet_new(int64_t width, nb_rng *rng) {
    if (width < 1 || width > MNIST_RESNET_MAX_WIDTH) {
        nb_set_error(NB_ERR_ARG, "FashionResNet: width must be in 1..%d, got %lld", MNIST_RESNET_MAX_WIDTH,
                     (long long)width);
        return NULL;
    }
    const int64_t w = width;
    nb_module *m = nb_module_new("FashionResNet", resnet_forward, NULL, NULL);
    nb_status st = m ? NB_OK : nb_last_status();
    if (st == NB_OK) st = nb_module_add_child(m, "conv1", conv3x3(1, w, 1, rng));
    if (st == NB_OK) st = nb_module_add_child(m, "bn1", batch_norm(w));
    if (st == NB_OK) st = nb_module_add_child(m, "layer1", block_new(w, w, 1, rng));
    if (st == NB_OK) st = nb_module_add_child(m, "layer2", block_new(w, 2 * w, 2, rng));
    if (st == NB_OK) st = nb_module_add_child(m, "layer3", block_new(2 * w, 4 * w, 2, rng));
    if (st == NB_OK) st = nb_module_add_child(m, "pool", nb_adaptive_avg_pool2d_module(1, 1));
    if (st == NB_OK) st = nb_module_add_child(m, "fc", nb_linear_module(4 * w, 10, true, rng));
    if (st != NB_OK) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}
