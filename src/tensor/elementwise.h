/* Helpers shared by the elementwise op files (ops_binary.c, ops_scalar.c,
 * ops_unary.c): argument checks and a contiguous read-only copy of an input
 * that autograd does not see (the op records the original input). */
#ifndef NABLA_ELEMENTWISE_H
#define NABLA_ELEMENTWISE_H

#include "internal.h"

/* Fixed number of elements per OpenMP work item in elementwise loops: the
 * partition depends only on the size, never on the thread count. */
#define NBI_EW_CHUNK 16384

/* t if it is contiguous (*tmp = NULL), else a contiguous copy made with grad
 * mode off and returned in *tmp for the caller to release. NULL on failure. */
static inline const nb_tensor *nbi_ew_contiguous(const nb_tensor *t, nb_tensor **tmp) {
    *tmp = NULL;
    if (nbi_is_contiguous(t)) return t;
    nb_no_grad_begin();
    *tmp = nb_contiguous(t);
    nb_no_grad_end();
    return *tmp;
}

/* Check a float input of a one-input op (NULL, integer dtype). */
static inline bool nbi_ew_check_input(const char *op, const nb_tensor *a) {
    if (!nbi_check_tensor(op, "input", a)) return false;
    if (a->dtype != NB_F32 && a->dtype != NB_F64) {
        nbi_error(NB_ERR_DTYPE, "%s: expected a float32 or float64 tensor, but got %s (integer tensors are not supported)",
                  op, nb_dtype_name(a->dtype));
        return false;
    }
    return true;
}

/* Flat parallel maps over contiguous buffers, for use inside NBI_DISPATCH_FLOAT
 * with T, n (element count) and o (output pointer) in scope.
 * NBI_EW_MAP1: o[i] = EXPR of x = in[i] (x may go unused).
 * NBI_EW_MAP2: o[i] = EXPR of g = gp[i] and s = sp[i] (s may go unused). */
#define NBI_EW_MAP1(EXPR)                                                       \
    do {                                                                        \
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")       \
        for (int64_t i = 0; i < n; i++) {                                       \
            const T x = in[i];                                                  \
            (void)x;                                                            \
            o[i] = (EXPR);                                                      \
        }                                                                       \
    } while (0)
#define NBI_EW_MAP2(EXPR)                                                       \
    do {                                                                        \
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")       \
        for (int64_t i = 0; i < n; i++) {                                       \
            const T g = gp[i], s = sp[i];                                       \
            (void)s;                                                            \
            o[i] = (EXPR);                                                      \
        }                                                                       \
    } while (0)

#endif
