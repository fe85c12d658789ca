/* checkpoint.h: the MNIST trainer's checkpoint. The library's
 * nb_checkpoint_save/load (nabla/checkpoint.h) keep the model, optimizer,
 * scheduler and random generators; this adds what only this trainer has:
 * the number of finished epochs ("epoch"), the seed of the training loader's
 * shuffle ("data.shuffle_seed"; the order is a function of seed and epoch,
 * see nabla/data.h) and the metrics so far ("metrics", [epochs, 5]).
 * Resuming from epoch k's checkpoint gives bitwise the weights of an
 * uninterrupted run. */
#ifndef MNIST_CHECKPOINT_H
#define MNIST_CHECKPOINT_H

#include <nabla.h>

#include "report.h"

#define CHECKPOINT_MAX_RNGS 4
#define CHECKPOINT_MAX_EPOCHS 1000

typedef struct train_state {
    nb_module *model;          /* borrowed */
    nb_optimizer *opt;         /* borrowed */
    nb_lr_scheduler *sched;    /* borrowed */
    nb_rng *rngs[CHECKPOINT_MAX_RNGS];
    const char *rng_names[CHECKPOINT_MAX_RNGS];
    int nrngs;
    uint64_t shuffle_seed;     /* the training loader's seed */
    int64_t epoch;             /* epochs finished */
    epoch_metrics metrics[CHECKPOINT_MAX_EPOCHS];
    int nmetrics;
} train_state;

/* NB_OK, or a status with nb_last_error() naming the problem. */
nb_status checkpoint_save(const char *path, const train_state *s);
/* Restores all of s (the shuffle seed is kept as is if the file predates
 * it), or nothing of it when the file does not fit. */
nb_status checkpoint_load(const char *path, train_state *s);

#endif
