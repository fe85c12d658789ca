/* models.h: the MNIST nets, as nabla modules with PyTorch's parameter names
 * (their PyTorch twins are in tools/mnist_nets.py). */
#ifndef MNIST_MODELS_H
#define MNIST_MODELS_H

#include <nabla.h>

/* "default": the classic PyTorch MNIST example (conv 1->32 3x3, ReLU, conv
 * 32->64 3x3, ReLU, max-pool 2, dropout 0.25, flatten, linear 9216->128,
 * ReLU, dropout 0.5, linear 128->10, log-softmax).
 * "small": conv 1->8 3x3, ReLU, pool 2, conv 8->16 3x3, ReLU, pool 2,
 * linear 400->64, ReLU, linear 64->10, log-softmax (about 10x fewer FLOPs).
 * Weights are drawn from init_rng; dropout masks from dropout_rng, which
 * must outlive the model. NULL (with nb_last_error() set) on failure. */
nb_module *mnist_model_new(const char *name, nb_rng *init_rng, nb_rng *dropout_rng);

#endif
