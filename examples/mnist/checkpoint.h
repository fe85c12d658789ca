/* checkpoint.h: the MNIST trainer's checkpoint. The library's
 * nb_checkpoint_save/load (nabla/checkpoint.h) keep the model, optimizer,
 * scheduler and random generators, and a checksum over everything; this adds
 * what only this trainer has, all required on load:
 *     epoch              int64 []          epochs finished, 1 .. CHECKPOINT_MAX_EPOCHS
 *     data.shuffle_seed  int64 [1]         the training loader's seed (the order is a
 *                                          function of seed and epoch, see nabla/data.h)
 *     metrics            float64 [epoch, 5]  one row per epoch: epoch (1, 2, ...),
 *                                          train loss, test loss, test accuracy %, seconds
 *     loss_curve         float64 [epoch, P]  the training loss per batch, as the mean of
 *                                          each of P = min(100, batches per epoch)
 *                                          equal slices of every epoch (for the plot)
 *     run.<flag>         int64 []          the flags the run must keep (model, width,
 *                                          batch size, optimizer, training images,
 *                                          dataset, seed): a resume with others fails
 * Resuming from epoch k's checkpoint gives bitwise the weights of an
 * uninterrupted run. */
#ifndef MNIST_CHECKPOINT_H
#define MNIST_CHECKPOINT_H

#include <nabla.h>

#include "report.h"

#define CHECKPOINT_MAX_RNGS 4
#define CHECKPOINT_MAX_EPOCHS 1000
#define CHECKPOINT_CURVE_POINTS 100 /* loss-curve points per epoch, at most */

/* What a resume must find as it was; enumerations are indices into the
 * names lists below. */
typedef struct run_config {
    int64_t model, width, batch_size, optimizer, train_images, fashion, seed;
} run_config;

extern const char *const mnist_model_names[];      /* NULL-terminated: --model's values */
extern const char *const mnist_optimizer_names[];  /* NULL-terminated: --optimizer's values */
/* The index of name in a NULL-terminated list, or -1. */
int name_index(const char *const *list, const char *name);

typedef struct train_state {
    nb_module *model;          /* borrowed */
    nb_optimizer *opt;         /* borrowed */
    nb_lr_scheduler *sched;    /* borrowed */
    nb_rng *rngs[CHECKPOINT_MAX_RNGS];
    const char *rng_names[CHECKPOINT_MAX_RNGS];
    int nrngs;
    run_config config;
    int curve_points;          /* P above, from the batches per epoch */
    uint64_t shuffle_seed;     /* the training loader's seed */
    int64_t epoch;             /* epochs finished */
    epoch_metrics metrics[CHECKPOINT_MAX_EPOCHS];
    int nmetrics;
    double curve[CHECKPOINT_MAX_EPOCHS][CHECKPOINT_CURVE_POINTS]; /* [epoch - 1][0 .. curve_points) */
} train_state;

/* NB_OK, or a status with nb_last_error() naming the problem. */
nb_status checkpoint_save(const char *path, const train_state *s);
/* Restores all of s, or nothing of it when the file does not fit: every
 * entry checked (ranges, shapes, one metrics row per epoch, the run's
 * flags in s->config, max_epochs = --epochs) before anything changes.
 * Messages name the file and the entry or flag. */
nb_status checkpoint_load(const char *path, train_state *s, int max_epochs);

#endif
