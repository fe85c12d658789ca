/* nabla/dist.h: data-parallel training over MPI, in the manner of PyTorch's
 * DistributedDataParallel. Built only when CMake finds MPI (option NB_MPI;
 * the library then defines NB_HAVE_MPI for its users). Not part of the
 * umbrella <nabla.h>: include <nabla/dist.h> yourself.
 *
 *     nb_dist_init(&argc, &argv);                   // MPI_Init_thread, or join MPI already running
 *     nb_module *net = ...;                         // same architecture on every rank
 *     nb_dist_broadcast_module(net, 0);             // rank 0's weights and buffers everywhere
 *     nb_dist_grad_sync *sync = nb_dist_grad_sync_new(net, NB_DIST_DEFAULT_BUCKET_BYTES, NB_DIST_ALLREDUCE);
 *     for (each batch of this rank's shard) {
 *         ... forward, loss, nb_optimizer_zero_grad, nb_backward(loss) ...
 *         nb_dist_grad_sync_run(sync);             // grads := mean over ranks
 *         nb_optimizer_step(opt);                  // identical step on every rank
 *     }
 *     nb_dist_grad_sync_free(sync);
 *     nb_dist_finalize();
 *
 * Every function here is COLLECTIVE (all ranks call it in the same order
 * with matching arguments) except the queries nb_dist_launched,
 * nb_dist_is_initialized, nb_dist_rank, nb_dist_world_size and the
 * nb_dist_grad_sync_* accessors. Before nb_dist_init (or after
 * nb_dist_finalize) the process is a world of one: rank 0, size 1, and the
 * collectives return at once leaving everything unchanged.
 *
 * Errors follow nabla/core.h: NB_ERR_ARG for bad arguments, NB_ERR_STATE for
 * calls out of order, NB_ERR_IO when MPI itself reports an error (its message
 * is included). Arguments that differ between ranks (a different model, say)
 * are detected by a consistency check and fail on every rank alike, so no
 * rank is left waiting. A rank that dies is not something MPI lets the others
 * recover from: Open MPI's mpirun then terminates the whole job with a
 * non-zero status, naming the rank that failed.
 *
 * DETERMINISM. The gradient average is sum / world_size. With
 * NB_DIST_ALLREDUCE the sum is MPI_Allreduce's: for 2 ranks it is a single
 * commutative addition, so bitwise reproducible; for more ranks the
 * association order is the MPI library's choice (it may change with the
 * message size, the number of ranks or the MPI version), so results agree
 * only to float rounding between runs or world sizes. NB_DIST_ORDERED gathers
 * every rank's bucket to rank 0, adds them in rank order
 * ((g0 + g1) + g2) + ..., and broadcasts the result: bitwise the same on every
 * rank and in every run for a given world size, independent of the MPI
 * implementation, at the cost of sending world_size buckets through rank 0.
 */
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include "nabla/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The bucket size cap PyTorch's DDP uses (bucket_cap_mb = 25). */
#define NB_DIST_DEFAULT_BUCKET_BYTES ((size_t)25 * 1024 * 1024)

/* Whether this process was started by an MPI launcher (mpirun / mpiexec of
 * Open MPI or MPICH, or a PMI-based launcher such as srun), judging by the
 * environment variables they set. Not collective; MPI need not be running. */
NB_API bool nb_dist_launched(void);
/* Start MPI (MPI_Init_thread asking for MPI_THREAD_FUNNELED: OpenMP threads
 * compute, only the calling thread talks to MPI) unless it is already
 * running, and use a duplicate of MPI_COMM_WORLD. argc/argv may be NULL. */
NB_API nb_status nb_dist_init(int *argc, char ***argv);
#ifdef MPI_VERSION
/* Use a duplicate of an existing communicator (MPI already initialised by
 * the caller, who also finalises it). Declared only when <mpi.h> was
 * included before this header. */
NB_API nb_status nb_dist_init_comm(MPI_Comm comm);
#endif
/* Free the communicator; MPI_Finalize if nb_dist_init started MPI. Safe
 * when not initialised. */
NB_API nb_status nb_dist_finalize(void);
/* Whether nb_dist_init / nb_dist_init_comm succeeded and nb_dist_finalize has not run. */
NB_API bool nb_dist_is_initialized(void);
/* This process's rank (0 when not initialised). */
NB_API int nb_dist_rank(void);
/* Number of processes (1 when not initialised). */
NB_API int nb_dist_world_size(void);

/* Wait until every rank gets here. */
NB_API nb_status nb_dist_barrier(void);
/* Overwrite every parameter and buffer of m (state_dict order) with root's
 * values, as DDP does at construction. The models must have the same state
 * names, shapes and dtypes on every rank. */
NB_API nb_status nb_dist_broadcast_module(nb_module *m, int root);
/* In-place sum over ranks of n values (results identical on every rank).
 * The int64 sum is exact; the double sum is MPI_Allreduce's (see DETERMINISM). */
NB_API nb_status nb_dist_allreduce_sum_i64(int64_t *values, int64_t n);
NB_API nb_status nb_dist_allreduce_sum_f64(double *values, int64_t n);

/* ---- gradient averaging ---- */
typedef enum nb_dist_reduce_mode {
    NB_DIST_ALLREDUCE = 0, /* MPI_Allreduce(MPI_SUM): fastest; order up to MPI */
    NB_DIST_ORDERED = 1    /* gather to rank 0, sum in rank order, broadcast: bitwise reproducible */
} nb_dist_reduce_mode;

typedef struct nb_dist_grad_sync nb_dist_grad_sync;

/* Plan gradient averaging for m's parameters: consecutive parameters (in
 * parameters() order, same dtype) are packed into buckets of at most
 * bucket_bytes (a larger parameter gets a bucket of its own), one collective
 * per bucket. Checks that every rank has the same parameter shapes. Returns
 * NULL with an error on failure. m must outlive the plan. */
NB_API nb_dist_grad_sync *nb_dist_grad_sync_new(nb_module *m, size_t bucket_bytes, nb_dist_reduce_mode mode);
/* After backward: replace each parameter's .grad with the mean over ranks.
 * A parameter without a gradient counts as zeros; if no rank has one it is
 * left without (as with PyTorch's unused parameters), otherwise ranks that
 * had none receive the mean too. Not overlapped with backward: it runs all
 * buckets when called. */
NB_API nb_status nb_dist_grad_sync_run(nb_dist_grad_sync *g);
/* Number of buckets, and payload bytes each rank contributes per run (the
 * sum of the bucket sizes; what goes on the wire depends on the MPI
 * algorithm, about 2 (W-1)/W times this for a ring all-reduce). */
NB_API int nb_dist_grad_sync_num_buckets(const nb_dist_grad_sync *g);
NB_API size_t nb_dist_grad_sync_bytes(const nb_dist_grad_sync *g);
/* Free the plan (NULL is ignored). Not collective. */
NB_API void nb_dist_grad_sync_free(nb_dist_grad_sync *g);

#ifdef __cplusplus
}
#endif
#endif
