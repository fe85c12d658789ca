/* Private to src/dist: the process-wide communicator and MPI error helpers.
 * src/dist builds on tensor and nn (it may include src/tensor/internal.h);
 * nothing else in the library includes this. */
#ifndef NABLA_DIST_INTERNAL_H
#define NABLA_DIST_INTERNAL_H

#include <mpi.h>

#include "nabla/dist.h"
#include "tensor/internal.h"

/* The communicator nabla uses (a duplicate, with MPI_ERRORS_RETURN), or
 * MPI_COMM_NULL when not initialised. */
extern MPI_Comm nbi_dist_comm;
extern int nbi_dist_rank_, nbi_dist_size_;

/* Turn an MPI return code into an nb_status with a message naming the op
 * and the MPI call ("dist_grad_sync: MPI_Allreduce failed: ..."). */
nb_status nbi_mpi_check(int rc, const char *op, const char *call);
/* Whether all ranks passed the same values (min == max over ranks for each
 * of the n <= 8 values); on disagreement sets an error naming op and what
 * and returns NB_ERR_ARG on every rank. */
nb_status nbi_dist_agree(const char *op, const int64_t *values, int n, const char *const *what);
/* The MPI datatype of a nabla dtype. */
MPI_Datatype nbi_mpi_type(nb_dtype dtype);

#endif
