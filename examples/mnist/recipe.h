/* recipe.h: the trainer's optimizer and learning-rate schedule, made from
 * its options (shared with the tests, which check them against the PyTorch
 * twins' recipes in tools/). */
#ifndef MNIST_RECIPE_H
#define MNIST_RECIPE_H

#include <nabla.h>

typedef struct mnist_optim_options {
    const char *name;    /* "adadelta", "sgd", "adam", "adamw" or "rmsprop" */
    double lr;
    double momentum;     /* SGD's */
    /* 0: one group with the optimizer's default decay (AdamW's is 1e-2).
     * > 0: two groups, as the twin's param_groups(): the weights (parameters
     * of 2 or more dims: conv and linear weights) with this decay, then the
     * rest (BN weights and biases, biases) without. */
    double weight_decay;
} mnist_optim_options;

/* The optimizer over model's parameters; NULL with nb_last_error() on failure. */
nb_optimizer *mnist_optimizer_new(nb_module *model, const mnist_optim_options *o);

/* The residual net's schedule, stepped once per batch: LinearLR from 0.1x
 * the lr to the lr over the first epoch (steps_per_epoch steps), then
 * CosineAnnealingLR to 0 over the remaining epochs - 1 epochs (at least one
 * step, so that a one-epoch run has a schedule too), as a SequentialLR. */
nb_lr_scheduler *mnist_warmup_cosine(nb_optimizer *opt, int64_t steps_per_epoch, int64_t epochs);

#endif
