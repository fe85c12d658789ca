/* dist_support.c: the MNIST trainer's data-parallel glue over nabla/dist.h
 * (see dist_support.h). For the failure test, the environment variable
 * MNIST_DIST_DIE_AT_STEP=k makes the last rank die at training step k, by
 * SIGKILL, or by exit(1) when MNIST_DIST_DIE_HOW=exit. */
#include "dist_support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_MPI
#include <nabla/dist.h>

static nb_dist_grad_sync *sync_plan;
static long steps, die_at = -1;

int mnist_dist_setup(int *argc, char ***argv) {
    if (!nb_dist_launched()) return 0;
    if (nb_dist_init(argc, argv) != NB_OK) {
        fprintf(stderr, "mnist_train: %s\n", nb_last_error());
        return 1;
    }
    if (nb_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "mnist_train: rank %d: cannot silence stdout\n", nb_dist_rank());
        return 1;
    }
    const char *d = getenv("MNIST_DIST_DIE_AT_STEP");
    if (d) die_at = strtol(d, NULL, 10);
    return 0;
}

int mnist_dist_rank(void) { return nb_dist_rank(); }
int mnist_dist_world(void) { return nb_dist_world_size(); }

nb_status mnist_dist_prepare(nb_module *model, int64_t batch_size, int64_t samples_per_rank) {
    if (!nb_dist_is_initialized()) return NB_OK;
    nb_status st = nb_dist_broadcast_module(model, 0);
    if (st == NB_OK) {
        sync_plan = nb_dist_grad_sync_new(model, NB_DIST_DEFAULT_BUCKET_BYTES, NB_DIST_ALLREDUCE);
        if (!sync_plan) st = nb_last_status();
    }
    if (st != NB_OK) return st;
    printf("data-parallel: %d ranks, batch %lld per rank (%lld in all), %lld samples per rank per epoch, "
           "%d gradient buckets, %.2f MB all-reduced per step\n",
           nb_dist_world_size(), (long long)batch_size, (long long)batch_size * nb_dist_world_size(),
           (long long)samples_per_rank, nb_dist_grad_sync_num_buckets(sync_plan),
           (double)nb_dist_grad_sync_bytes(sync_plan) / 1e6);
    return NB_OK;
}

nb_status mnist_dist_sync_grads(void) {
    if (!sync_plan) return NB_OK;
    if (++steps == die_at && nb_dist_rank() == nb_dist_world_size() - 1) {
        const char *how = getenv("MNIST_DIST_DIE_HOW");
        fprintf(stderr, "mnist_train: rank %d dying at step %ld (MNIST_DIST_DIE_AT_STEP)\n", nb_dist_rank(), steps);
        if (how && !strcmp(how, "exit")) exit(1);
        raise(SIGKILL);
    }
    return nb_dist_grad_sync_run(sync_plan);
}

nb_status mnist_dist_sum_f64(double *values, int n) { return nb_dist_allreduce_sum_f64(values, n); }
nb_status mnist_dist_sum_i64(int64_t *values, int n) { return nb_dist_allreduce_sum_i64(values, n); }

void mnist_dist_finish(void) {
    nb_dist_grad_sync_free(sync_plan);
    sync_plan = NULL;
    if (nb_dist_finalize() != NB_OK) fprintf(stderr, "mnist_train: %s\n", nb_last_error());
}

#else /* built without MPI: one process */

int mnist_dist_setup(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}
int mnist_dist_rank(void) { return 0; }
int mnist_dist_world(void) { return 1; }
nb_status mnist_dist_prepare(nb_module *model, int64_t batch_size, int64_t samples_per_rank) {
    (void)model, (void)batch_size, (void)samples_per_rank;
    return NB_OK;
}
nb_status mnist_dist_sync_grads(void) { return NB_OK; }
nb_status mnist_dist_sum_f64(double *values, int n) {
    (void)values, (void)n;
    return NB_OK;
}
nb_status mnist_dist_sum_i64(int64_t *values, int n) {
    (void)values, (void)n;
    return NB_OK;
}
void mnist_dist_finish(void) {}

#endif

bool mnist_dist_is_main(void) { return mnist_dist_rank() == 0; }

void mnist_dist_slice(int64_t count, int64_t *lo, int64_t *hi) {
    int r = mnist_dist_rank(), w = mnist_dist_world();
    *lo = count * r / w;
    *hi = count * (r + 1) / w;
}
