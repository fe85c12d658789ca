/* dist_support.h: what the MNIST trainer needs to run data-parallel under
 * mpirun, in one place so train.c stays a single-process program with a few
 * calls. Built without MPI (or started without mpirun) every function is the
 * single-process identity: rank 0 of 1, nothing exchanged. */
#ifndef MNIST_DIST_SUPPORT_H
#define MNIST_DIST_SUPPORT_H

#include <nabla.h>

/* Join MPI if launched by mpirun/mpiexec (nb_dist_launched); ranks other
 * than 0 send stdout to /dev/null (errors still reach stderr). 0 on success. */
int mnist_dist_setup(int *argc, char ***argv);
/* This process's rank and the number of ranks (0 and 1 without MPI). */
int mnist_dist_rank(void);
int mnist_dist_world(void);
/* True on rank 0, the one that prints and writes files. */
bool mnist_dist_is_main(void);
/* Before training: rank 0's weights to every rank and the gradient-averaging
 * plan. Prints a line on rank 0 (batch_size and samples_per_rank: this
 * rank's loader, which takes its shard through nb_loader_options' rank and
 * world_size). NB_OK, or a status with nb_last_error() set. */
nb_status mnist_dist_prepare(nb_module *model, int64_t batch_size, int64_t samples_per_rank);
/* After backward: replace the gradients by their mean over ranks. */
nb_status mnist_dist_sync_grads(void);
/* In-place sums over ranks. */
nb_status mnist_dist_sum_f64(double *values, int n);
nb_status mnist_dist_sum_i64(int64_t *values, int n);
/* This rank's contiguous slice [*lo, *hi) of count evaluation samples (no padding, so sums are exact). */
void mnist_dist_slice(int64_t count, int64_t *lo, int64_t *hi);
/* Free the plan and leave MPI. */
void mnist_dist_finish(void);

#endif
