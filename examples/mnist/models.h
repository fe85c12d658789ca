/* models.h: the MNIST nets, as nabla modules with PyTorch's parameter names
 * (their PyTorch twins are in tools/mnist_nets.py and, for the residual net,
 * tools/fashion_resnet.py). */
#ifndef MNIST_MODELS_H
#define MNIST_MODELS_H

#include <nabla.h>

/* "default": the classic PyTorch MNIST example (conv 1->32 3x3, ReLU, conv
 * 32->64 3x3, ReLU, max-pool 2, dropout 0.25, flatten, linear 9216->128,
 * ReLU, dropout 0.5, linear 128->10, log-softmax).
 * "small": conv 1->8 3x3, ReLU, pool 2, conv 8->16 3x3, ReLU, pool 2,
 * linear 400->64, ReLU, linear 64->10, log-softmax (about 10x fewer FLOPs).
 * "resnet": mnist_resnet_new(width) below; the others ignore width.
 * Weights are drawn from init_rng; dropout masks from dropout_rng, which
 * must outlive the model. NULL (with nb_last_error() set) on failure. */
nb_module *mnist_model_new(const char *name, int64_t width, nb_rng *init_rng, nb_rng *dropout_rng);

/* Whether the named model's forward returns logits (train with
 * cross-entropy) rather than log-probabilities (train with NLL). */
bool mnist_model_outputs_logits(const char *name);

#define MNIST_RESNET_MAX_WIDTH 1024
/* FashionResNet(width) of tools/fashion_resnet.py: a conv-BN-ReLU stem
 * (1 -> w channels, 3x3), three stages of one BasicBlock each (w, 2w, 4w
 * channels; the second and third with stride 2 and a 1x1 conv + BN
 * shortcut, "downsample"), adaptive average pooling to 1x1, a linear head
 * to 10 logits. Convs have no bias; BN eps 1e-5, momentum 0.1. */
nb_module *mnist_resnet_new(int64_t width, nb_rng *rng);

#endif
