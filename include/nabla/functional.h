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

/* y = x W^T + b. x [*, in], weight [out, in], bias [out] or NULL (F.linear). */
nb_tensor *nb_linear(const nb_tensor *x, const nb_tensor *weight, const nb_tensor *bias);

typedef struct nb_pool2d_params {
    int64_t kernel[2];     /* (h, w) */
    int64_t stride[2];     /* (h, w); 0 means "= kernel", PyTorch's default */
    int64_t padding[2];    /* implicit padding, at most half the kernel */
    int64_t dilation[2];   /* max_pool2d only; default 1 */
    bool ceil_mode;        /* default false */
    bool count_include_pad;/* avg_pool2d only; default true */
} nb_pool2d_params;
/* kernel (k, k), stride = kernel, no padding, dilation 1, floor mode, count_include_pad. */
nb_pool2d_params nb_pool2d_defaults(int64_t kernel);
/* x [N, C, H, W] or [C, H, W]; padded positions never win (as -inf). */
nb_tensor *nb_max_pool2d(const nb_tensor *x, const nb_pool2d_params *p);
nb_tensor *nb_avg_pool2d(const nb_tensor *x, const nb_pool2d_params *p);

/* Inverted dropout: in training each element is zeroed with probability p
 * and the rest scaled by 1/(1-p), the mask drawn from rng (NULL: the default
 * generator); when training is false it returns a view of x (identity). */
nb_tensor *nb_dropout(const nb_tensor *x, double p, bool training, nb_rng *rng);

/* F.batch_norm over [N, C, H, W] (or [N, C]) per channel C. In training it
 * normalises with the batch mean and biased variance and, when running_mean /
 * running_var are given, updates them in place:
 *   running = (1 - momentum) * running + momentum * batch_stat (variance unbiased).
 * Out of training it normalises with the running statistics. weight/bias [C]
 * may be NULL (affine=False). Running statistics are never differentiated. */
nb_tensor *nb_batch_norm(const nb_tensor *x, nb_tensor *running_mean, nb_tensor *running_var,
                         const nb_tensor *weight, const nb_tensor *bias, bool training, double momentum,
                         double eps);

typedef enum nb_reduction { NB_REDUCTION_MEAN = 0, NB_REDUCTION_SUM, NB_REDUCTION_NONE } nb_reduction;

/* F.cross_entropy from logits [N, C] and int64 class targets [N] (log_softmax + nll). */
nb_tensor *nb_cross_entropy(const nb_tensor *logits, const nb_tensor *target, nb_reduction reduction);
/* F.nll_loss from log-probabilities [N, C] and int64 targets [N]. */
nb_tensor *nb_nll_loss(const nb_tensor *log_probs, const nb_tensor *target, nb_reduction reduction);
/* F.mse_loss: mean (or sum) of (input - target)^2, same shapes. */
nb_tensor *nb_mse_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction);

/* Elementwise activations not in ops.h. */
nb_tensor *nb_leaky_relu(const nb_tensor *x, double negative_slope); /* x if x > 0 else slope * x */

#ifdef __cplusplus
}
#endif
#endif
