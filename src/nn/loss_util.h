/* Private to the loss files of src/nn (loss_class.c, loss_pointwise.c,
 * loss_binary.c): the reduction argument, a loss's output, the reduction of
 * elementwise losses in a fixed order, and the gradient factor it implies. */
#ifndef NABLA_NN_LOSS_UTIL_H
#define NABLA_NN_LOSS_UTIL_H

#include "nn_util.h"

static inline bool loss_check_reduction(const char *op, nb_reduction r) {
    if (r != NB_REDUCTION_MEAN && r != NB_REDUCTION_SUM && r != NB_REDUCTION_NONE) {
        nbi_error(NB_ERR_ARG, "%s: %d is not a valid value for reduction", op, (int)r);
        return false;
    }
    return true;
}

/* A loss's output: shape (ndim, shape) for none, 0-d for sum and mean. */
static inline nb_tensor *loss_output(nb_dtype dtype, int ndim, const int64_t *shape, nb_reduction r) {
    return r == NB_REDUCTION_NONE ? nbi_empty(dtype, ndim, shape) : nbi_empty(dtype, 0, NULL);
}

/* Reductions cut the n elements into LOSS_BLOCKS blocks (their bounds depend
 * on n only), each summed in double by one thread, the block sums added in
 * order: the same bits at any thread count, and no scratch to allocate. */
#define LOSS_BLOCKS 64

/* Inside NBI_DISPATCH_FLOAT, with int64_t n, nb_reduction reduction and T *Y
 * (the output) in scope: EXPR (of type T, reading the element index i) for
 * every i in [0, n) goes to Y[i] for none, or Y[0] = their sum, or their sum
 * divided by DIVISOR for mean (a double; 0/0 gives PyTorch's NaN for the mean
 * of nothing). */
#define LOSS_MAP_REDUCE(EXPR, DIVISOR)                                                   \
    do {                                                                                 \
        if (reduction == NB_REDUCTION_NONE) {                                            \
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")            \
            for (int64_t i = 0; i < n; i++) Y[i] = (EXPR);                               \
        } else {                                                                         \
            double part_[LOSS_BLOCKS], total_ = 0;                                       \
            const int64_t blk_ = (n + LOSS_BLOCKS - 1) / LOSS_BLOCKS;                    \
            _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")            \
            for (int b_ = 0; b_ < LOSS_BLOCKS; b_++) {                                   \
                const int64_t lo_ = b_ * blk_, hi_ = lo_ + blk_ < n ? lo_ + blk_ : n;    \
                double s_ = 0;                                                           \
                for (int64_t i = lo_; i < hi_; i++) s_ += (double)(EXPR);                \
                part_[b_] = s_;                                                          \
            }                                                                            \
            for (int b_ = 0; b_ < LOSS_BLOCKS; b_++) total_ += part_[b_];                \
            Y[0] = (T)(reduction == NB_REDUCTION_MEAN ? total_ / (DIVISOR) : total_);    \
        }                                                                                \
    } while (0)

/* The gradient of a reduced loss with respect to element i's loss: dy[i] for
 * none, dy[0] for sum, dy[0] / DIVISOR for mean (T, dy a const T *). */
#define LOSS_GRAD_FACTOR(reduction, dy, i, DIVISOR)                                      \
    ((reduction) == NB_REDUCTION_NONE ? (dy)[i]                                          \
     : (reduction) == NB_REDUCTION_SUM ? (dy)[0] : (T)((dy)[0] / (DIVISOR)))

#endif
