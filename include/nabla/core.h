/* nabla/core.h: dtypes, status codes, errors, threads, and the ownership rule.
 *
 * ERRORS. The library never aborts, exits or prints on bad input. A function
 * that returns a pointer returns NULL on failure; one that returns nb_status
 * returns a negative code. Either way a message naming the op, what was
 * expected and what was found is left for the calling thread:
 *     nb_tensor *y = nb_matmul(a, b);
 *     if (!y) fprintf(stderr, "%s\n", nb_last_error());
 *     // "matmul: shapes [3, 4] and [5, 6] cannot be multiplied (4 != 5)"
 * An op given a NULL tensor (say, the failed result of an earlier op) fails
 * too and keeps the earlier message, so a chain can be checked once at its end.
 *
 * OWNERSHIP (the one rule, followed by every function in nabla):
 *  - A function that returns an nb_tensor* hands the caller ONE NEW REFERENCE.
 *    The caller gives it back with nb_tensor_release(). While an nb_scope is
 *    open (nb_scope_begin), the innermost scope holds that reference for the
 *    caller and releases it at nb_scope_end(); releasing it earlier by hand is
 *    still allowed. nb_tensor_retain() takes an extra reference that no scope
 *    holds (use it to keep a result alive past nb_scope_end).
 *  - The only exceptions are accessors whose name says so (nb_tensor_grad):
 *    they return a BORROWED pointer, valid while the tensor it came from lives.
 *  - Arguments are always borrowed: no function takes over a reference.
 *  - The autograd graph keeps what it needs alive by itself, so intermediate
 *    results may be released as soon as the caller is done with them.
 * Tensors are not thread-safe objects: one thread builds and runs a graph.
 * Kernels use OpenMP internally.
 */
#ifndef NABLA_CORE_H
#define NABLA_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NB_API marks every public declaration in include/: the shared library
 * exports those symbols and nothing else (it is built with hidden
 * visibility by default). */
#if defined(__GNUC__) || defined(__clang__)
#define NB_API __attribute__((visibility("default")))
#else
#define NB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_DIMS 8

typedef enum nb_dtype {
    NB_F32 = 0, /* float; the training dtype */
    NB_F64 = 1, /* double; for gradient checks */
    NB_I64 = 2  /* int64_t; indices and targets only, never differentiable */
} nb_dtype;

typedef enum nb_status {
    NB_OK = 0,
    NB_ERR_ARG = -1,    /* bad argument value or NULL */
    NB_ERR_SHAPE = -2,  /* shapes do not agree */
    NB_ERR_DTYPE = -3,  /* dtype not supported or mismatched */
    NB_ERR_NOMEM = -4,  /* allocation failed */
    NB_ERR_IO = -5,     /* file missing, unreadable or corrupt */
    NB_ERR_STATE = -6,  /* call not valid now (e.g. backward twice) */
    NB_ERR_ANOMALY = -7 /* NaN/Inf found by anomaly detection (nb_set_detect_anomaly) */
} nb_status;

/* The message of the calling thread's most recent error ("" if none). */
NB_API const char *nb_last_error(void);
/* The status code of the calling thread's most recent error (NB_OK if none). */
NB_API nb_status nb_last_status(void);
/* Forget the calling thread's last error. */
NB_API void nb_clear_error(void);
/* Report an error through the same channel, for code built on nabla (custom
 * ops, data readers): sets the calling thread's status to `status` (one of
 * the negative codes) and its message to the printf-style fmt, ..., and
 * returns `status`. Name the op and what was expected versus found, as
 * nabla does:  return nb_set_error(NB_ERR_ARG, "my_op: expected k >= 1, but got %d", k);
 * A status >= NB_OK or a NULL fmt is itself an error (NB_ERR_ARG,
 * "set_error: ..."). The message is truncated to 4095 bytes. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
NB_API nb_status nb_set_error(nb_status status, const char *fmt, ...);

/* Size in bytes of one element of dtype; name of dtype ("float32", ...). */
NB_API size_t nb_dtype_size(nb_dtype dtype);
NB_API const char *nb_dtype_name(nb_dtype dtype);

/* Number of OpenMP threads kernels use. n < 1 is an error. Results are
 * bitwise identical for every thread count. */
NB_API nb_status nb_set_num_threads(int n);
NB_API int nb_get_num_threads(void);

/* The kernel set this process runs: "avx512" (AVX-512 F/BW/DQ/VL with FMA),
 * "avx2" (AVX2 with FMA) or "portable" (plain C for the baseline CPU). The
 * default x86-64 build holds all three and takes the best one the CPU runs;
 * the environment variable NB_CPU=avx512|avx2|portable, read once at the
 * first call into the library's kernels, asks for another one, and a set the
 * CPU cannot run falls back to the best it can (this says which was taken).
 * Results are bitwise identical at any thread count within one set; sets may
 * differ in the last bits. A build with NB_NATIVE=ON, or for another CPU,
 * holds one set. */
NB_API const char *nb_cpu_kernels(void);

/* Hand every cached block of the tensor memory pool back to the system.
 * Training loops need not call it: the pool exists so that blocks are reused.
 * Nor need a program before it exits: cached blocks stay reachable from the
 * pool, so LeakSanitizer and valgrind do not report them as leaks. */
NB_API void nb_memory_trim(void);
/* Bytes currently held by live tensors, and cached in the pool for reuse. */
NB_API size_t nb_memory_in_use(void);
NB_API size_t nb_memory_cached(void);

/* ---- testing ----
 * Let the next n library allocations (tensor memory from the pool, autograd
 * nodes, op contexts of src/nn) succeed, then make every later one fail with
 * NB_ERR_NOMEM until called again; n = -1 turns failures off (the default).
 * For tests of out-of-memory error paths; thread-safe. */
NB_API void nb_debug_fail_allocations_after(int64_t n);

#ifdef __cplusplus
}
#endif
#endif
