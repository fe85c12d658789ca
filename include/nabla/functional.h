/* nabla/functional.h: the stateless layers and losses of torch.nn.functional
 * that CNN training needs. Ownership and errors: nabla/core.h. Each is
 * differentiable in float32 and float64 and deterministic at any thread count.
 * (Convolution and padding are in nabla/conv.h.)
 */
#ifndef NABLA_FUNCTIONAL_H
#define NABLA_FUNCTIONAL_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = x W^T + b. x [*, in] (1-d allowed), weight [out, in], bias [out] or
 * NULL; y [*, out] (F.linear). */
NB_API nb_tensor *nb_linear(const nb_tensor *x, const nb_tensor *weight, const nb_tensor *bias);

typedef struct nb_pool2d_params {
    int64_t kernel[2];     /* (h, w) */
    int64_t stride[2];     /* (h, w); 0 means "= kernel", PyTorch's default */
    int64_t padding[2];    /* implicit padding, at most half the kernel */
    int64_t dilation[2];   /* max_pool2d only; default 1 (0 is taken as 1) */
    bool ceil_mode;        /* default false */
    bool count_include_pad;/* avg_pool2d only; default true */
} nb_pool2d_params;
/* kernel (k, k), stride = kernel, no padding, dilation 1, floor mode, count_include_pad. */
NB_API nb_pool2d_params nb_pool2d_defaults(int64_t kernel);
/* x [N, C, H, W] or [C, H, W]; output sizes, checks and messages are
 * torch 1.13's (e.g. "pad should be at most half of kernel size, but got
 * pad=2 and kernel_size=2"). Max: padded positions never win (as -inf), ties
 * go to the first position in row-major window order, NaN propagates; the
 * gradient flows to the winner. */
NB_API nb_tensor *nb_max_pool2d(const nb_tensor *x, const nb_pool2d_params *p);
/* Average over each window clipped to the input; the divisor counts padded
 * positions (inside the padded input) only when count_include_pad. */
NB_API nb_tensor *nb_avg_pool2d(const nb_tensor *x, const nb_pool2d_params *p);

/* Inverted dropout: in training each element is zeroed with probability p
 * (0 <= p <= 1) and the rest scaled by 1/(1-p), the mask drawn from rng
 * (NULL: the default generator) one element at a time in row-major order, so
 * a seed fixes the mask at any thread count. When training is false, or p is
 * 0, it returns a view of x (identity; gradients pass through). */
NB_API nb_tensor *nb_dropout(const nb_tensor *x, double p, bool training, nb_rng *rng);

/* F.batch_norm over [N, C, H, W] (or [N, C]) per channel C. In training it
 * normalises with the batch mean and biased variance and, when running_mean /
 * running_var are given, updates them in place:
 *   running = (1 - momentum) * running + momentum * batch_stat (variance unbiased).
 * Out of training it normalises with the running statistics. weight/bias [C]
 * may be NULL (affine=False). Running statistics are never differentiated. */
NB_API nb_tensor *nb_batch_norm(const nb_tensor *x, nb_tensor *running_mean, nb_tensor *running_var,
                                const nb_tensor *weight, const nb_tensor *bias, bool training, double momentum,
                                double eps);

typedef enum nb_reduction { NB_REDUCTION_MEAN = 0, NB_REDUCTION_SUM, NB_REDUCTION_NONE } nb_reduction;

/* Class losses take input [N, C] with int64 targets [N], [N, C, d1, ...]
 * with targets [N, d1, ...], or [C] with a 0-d target. As PyTorch's defaults,
 * a target of -100 (ignore_index) contributes 0 and is not counted by the
 * mean; other targets outside [0, C) fail ("Target 12 is out of bounds.").
 * NB_REDUCTION_NONE returns the target's shape, the others a 0-d tensor. */
/* F.cross_entropy from logits (log_softmax over dim 1, then nll). */
NB_API nb_tensor *nb_cross_entropy(const nb_tensor *logits, const nb_tensor *target, nb_reduction reduction);
/* F.nll_loss from log-probabilities. */
NB_API nb_tensor *nb_nll_loss(const nb_tensor *log_probs, const nb_tensor *target, nb_reduction reduction);
/* F.mse_loss: mean, sum or elementwise (input - target)^2; the shapes must
 * be equal (no broadcasting). Differentiable in both arguments. */
NB_API nb_tensor *nb_mse_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction);

/* Elementwise activations not in ops.h. */
NB_API nb_tensor *nb_leaky_relu(const nb_tensor *x, double negative_slope); /* x if x > 0 else slope * x */

#ifdef __cplusplus
}
#endif
#endif
