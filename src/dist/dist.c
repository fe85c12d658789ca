/* dist.c: joining and leaving MPI, rank and size, and the small collectives
 * (barrier, scalar sums) plus the helpers the rest of src/dist shares.
 * nabla works on a duplicate of the communicator it is given, with
 * MPI_ERRORS_RETURN set, so its messages never collide with the caller's and
 * an MPI error becomes an nb_status instead of aborting the job. */
#include "dist/dist_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MPI_Comm nbi_dist_comm = MPI_COMM_NULL;
int nbi_dist_rank_ = 0, nbi_dist_size_ = 1;
static bool started_mpi; /* nb_dist_init called MPI_Init_thread, so finalize ends MPI */

nb_status nbi_mpi_check(int rc, const char *op, const char *call) {
    if (rc == MPI_SUCCESS) return NB_OK;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error code %d", rc);
    return nbi_error(NB_ERR_IO, "%s: %s failed on rank %d of %d: %s", op, call, nbi_dist_rank_, nbi_dist_size_, msg);
}

MPI_Datatype nbi_mpi_type(nb_dtype dtype) {
    return dtype == NB_F32 ? MPI_FLOAT : dtype == NB_F64 ? MPI_DOUBLE : MPI_INT64_T;
}

nb_status nbi_dist_agree(const char *op, const int64_t *values, int n, const char *const *what) {
    if (nbi_dist_comm == MPI_COMM_NULL) return NB_OK;
    int64_t lo[8], hi[8];
    memcpy(lo, values, (size_t)n * sizeof *lo);
    memcpy(hi, values, (size_t)n * sizeof *hi);
    nb_status st = nbi_mpi_check(MPI_Allreduce(MPI_IN_PLACE, lo, n, MPI_INT64_T, MPI_MIN, nbi_dist_comm), op,
                                 "MPI_Allreduce");
    if (st == NB_OK)
        st = nbi_mpi_check(MPI_Allreduce(MPI_IN_PLACE, hi, n, MPI_INT64_T, MPI_MAX, nbi_dist_comm), op,
                           "MPI_Allreduce");
    if (st != NB_OK) return st;
    for (int i = 0; i < n; i++)
        if (lo[i] != hi[i])
            return nbi_error(NB_ERR_ARG,
                             "%s: expected the same %s on every rank, but ranks have between %" PRId64 " and %" PRId64
                             " (this rank, %d: %" PRId64 ")",
                             op, what[i], lo[i], hi[i], nbi_dist_rank_, values[i]);
    return NB_OK;
}

bool nb_dist_launched(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return true;
    return false;
}

/* Adopt a duplicate of comm that returns errors instead of aborting. */
static nb_status adopt(MPI_Comm comm, const char *op) {
    MPI_Comm dup;
    nb_status st = nbi_mpi_check(MPI_Comm_dup(comm, &dup), op, "MPI_Comm_dup");
    if (st != NB_OK) return st;
    int rank = 0, size = 1;
    st = nbi_mpi_check(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN), op, "MPI_Comm_set_errhandler");
    if (st == NB_OK) st = nbi_mpi_check(MPI_Comm_rank(dup, &rank), op, "MPI_Comm_rank");
    if (st == NB_OK) st = nbi_mpi_check(MPI_Comm_size(dup, &size), op, "MPI_Comm_size");
    if (st != NB_OK) {
        MPI_Comm_free(&dup);
        return st;
    }
    nbi_dist_comm = dup;
    nbi_dist_rank_ = rank;
    nbi_dist_size_ = size;
    return NB_OK;
}

nb_status nb_dist_init(int *argc, char ***argv) {
    if (nbi_dist_comm != MPI_COMM_NULL) return nbi_error(NB_ERR_STATE, "dist_init: already initialised");
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) return nbi_error(NB_ERR_STATE, "dist_init: MPI has already been finalised");
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return nbi_error(NB_ERR_IO, "dist_init: MPI_Init_thread failed");
        started_mpi = true;
        /* MPI_THREAD_SINGLE also works in practice with OpenMP compute, which never calls MPI. */
    }
    /* MPI_COMM_WORLD aborts on errors by default; when MPI is ours, make even the dup return codes. */
    if (started_mpi) MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return adopt(MPI_COMM_WORLD, "dist_init");
}

nb_status nb_dist_init_comm(MPI_Comm comm) {
    if (nbi_dist_comm != MPI_COMM_NULL) return nbi_error(NB_ERR_STATE, "dist_init_comm: already initialised");
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return nbi_error(NB_ERR_STATE, "dist_init_comm: MPI is not initialised (call MPI_Init first)");
    if (comm == MPI_COMM_NULL) return nbi_error(NB_ERR_ARG, "dist_init_comm: comm is MPI_COMM_NULL");
    return adopt(comm, "dist_init_comm");
}

nb_status nb_dist_finalize(void) {
    nb_status st = NB_OK;
    if (nbi_dist_comm != MPI_COMM_NULL) st = nbi_mpi_check(MPI_Comm_free(&nbi_dist_comm), "dist_finalize", "MPI_Comm_free");
    nbi_dist_comm = MPI_COMM_NULL;
    nbi_dist_rank_ = 0;
    nbi_dist_size_ = 1;
    if (started_mpi) {
        started_mpi = false;
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized && MPI_Finalize() != MPI_SUCCESS && st == NB_OK)
            st = nbi_error(NB_ERR_IO, "dist_finalize: MPI_Finalize failed");
    }
    return st;
}

bool nb_dist_is_initialized(void) { return nbi_dist_comm != MPI_COMM_NULL; }
int nb_dist_rank(void) { return nbi_dist_rank_; }
int nb_dist_world_size(void) { return nbi_dist_size_; }

nb_status nb_dist_barrier(void) {
    if (nbi_dist_comm == MPI_COMM_NULL) return NB_OK;
    return nbi_mpi_check(MPI_Barrier(nbi_dist_comm), "dist_barrier", "MPI_Barrier");
}

/* MPI counts are int: reduce in chunks of at most INT_MAX / 2 elements. */
static nb_status allreduce_sum(void *values, int64_t n, size_t elem, MPI_Datatype type, const char *op) {
    if (n < 0 || (n > 0 && !values))
        return nbi_error(NB_ERR_ARG, "%s: expected n >= 0 values (not NULL), but got n = %" PRId64, op, n);
    if (nbi_dist_comm == MPI_COMM_NULL) return NB_OK;
    const int64_t chunk = 1 << 30;
    for (int64_t at = 0; at < n; at += chunk) {
        int c = (int)(n - at < chunk ? n - at : chunk);
        nb_status st = nbi_mpi_check(
            MPI_Allreduce(MPI_IN_PLACE, (char *)values + (size_t)at * elem, c, type, MPI_SUM, nbi_dist_comm), op,
            "MPI_Allreduce");
        if (st != NB_OK) return st;
    }
    return NB_OK;
}

nb_status nb_dist_allreduce_sum_i64(int64_t *values, int64_t n) {
    return allreduce_sum(values, n, sizeof *values, MPI_INT64_T, "dist_allreduce_sum_i64");
}

nb_status nb_dist_allreduce_sum_f64(double *values, int64_t n) {
    return allreduce_sum(values, n, sizeof *values, MPI_DOUBLE, "dist_allreduce_sum_f64");
}
