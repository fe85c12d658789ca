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
nb_tensor *nb_linear(const nb_tensor *x, const nb_tensor *weight, const nb_tensor *bias);

typedef struct nb_pool2d_params {
    int64_t kernel[2];     /* (h, w) */
    int64_t stride[2];     /* (h, w); 0 means "= kernel", PyTorch's default */
    int64_t padding[2];    /* implicit padding, at most half the kernel */
    int64_t dilation[2];   /* max_pool2d only; default 1 (0 is taken as 1) */
    bool ceil_mode;        /* default false */
    bool count_include_pad;/* avg_pool2d only; default true */
} nb_pool2d_params;
/* kernel (k, k), stride = kernel, no padding, dilation 1, floor mode, count_include_pad. */
nb_pool2d_params nb_pool2d_defaults(int64_t kernel);
/* x [N, C, H, W] or [C, H, W]; output sizes, checks and messages are
 * torch 1.13's (e.g. "pad should be at most half of kernel size, but got
 * pad=2 and kernel_size=2"). Max: padded positions never win (as -inf), ties
 * go to the first position in row-major window order, NaN propagates; the
 * gradient flows to the winner. */
nb_tensor *nb_max_pool2d(const nb_tensor *x, const nb_pool2d_params *p);
/* Average over each window clipped to the input; the divisor counts padded
 * positions (inside the padded input) only when count_include_pad. */
nb_tensor *nb_avg_pool2d(const nb_tensor *x, const nb_pool2d_params *p);

/* Inverted dropout: in training each element is zeroed with probability p
 * (0 <= p <= 1) and the rest scaled by 1/(1-p), the mask drawn from rng
 * (NULL: the default generator) one element at a time in row-major order, so
 * a seed fixes the mask at any thread count. When training is false, or p is
 * 0, it returns a view of x (identity; gradients pass through). */
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

/* Every loss reduces as PyTorch: none keeps one loss per element, sum adds
 * them, mean divides the sum (by the element count, or the total class weight
 * below); the mean of nothing is NaN, the sum 0. */

/* Class losses take input [N, C], [N, C, d1, ...] or [C] with int64 class
 * targets [N], [N, d1, ...] or [] (NB_REDUCTION_NONE returns the target's
 * shape, the others a 0-d tensor). A target equal to ignore_index contributes
 * 0 and is not counted by the mean; other targets outside [0, C) fail
 * ("Target 12 is out of bounds."). */
typedef struct nb_class_loss_options {
    const nb_tensor *weight;  /* [C] weight of each class (input's dtype), or NULL for 1; borrowed. The
                                 mean divides by the sum of the targets' weights, as PyTorch */
    int64_t ignore_index;     /* default -100 */
    nb_reduction reduction;   /* default NB_REDUCTION_MEAN */
    double label_smoothing;   /* cross_entropy only, in [0, 1]: the target mixed with the uniform
                                 distribution, (1 - e) onehot + e / C; default 0 */
} nb_class_loss_options;
/* PyTorch's defaults: no weight, ignore_index -100, mean, no label smoothing. */
NB_API nb_class_loss_options nb_class_loss_defaults(void);
/* F.cross_entropy from logits (log_softmax over dim 1, then nll), with the defaults but reduction. */
nb_tensor *nb_cross_entropy(const nb_tensor *logits, const nb_tensor *target, nb_reduction reduction);
/* F.nll_loss from log-probabilities, with the defaults but reduction. */
nb_tensor *nb_nll_loss(const nb_tensor *log_probs, const nb_tensor *target, nb_reduction reduction);
/* F.cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing); opt NULL: the
 * defaults. A float target of the logits' shape holds class probabilities (as PyTorch: then
 * ignore_index must be negative, the mean divides by the number of [N, d1, ...] positions, and the
 * target and weight are differentiable). With class indices the weight must not require grad. */
NB_API nb_tensor *nb_cross_entropy_ex(const nb_tensor *logits, const nb_tensor *target, const nb_class_loss_options *opt);
/* F.nll_loss(log_probs, target, weight, ignore_index, reduction); opt NULL: the defaults;
 * label_smoothing must be 0. The weight must not require grad. */
NB_API nb_tensor *nb_nll_loss_ex(const nb_tensor *log_probs, const nb_tensor *target, const nb_class_loss_options *opt);

/* Regression losses over d = input - target. Input and target broadcast as
 * PyTorch's do (where PyTorch warns that their sizes differ, nabla computes
 * the same result silently); none returns the broadcast shape. Both are
 * differentiable. */
/* F.mse_loss: d^2. */
nb_tensor *nb_mse_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction);
/* F.l1_loss: |d|. */
NB_API nb_tensor *nb_l1_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction);
/* F.smooth_l1_loss: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; beta >= 0 (0: l1_loss;
 * PyTorch's default 1). */
NB_API nb_tensor *nb_smooth_l1_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction,
                                    double beta);
/* F.huber_loss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); delta > 0 (default 1). */
NB_API nb_tensor *nb_huber_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction,
                                double delta);

/* Binary cross-entropy; input and target of the same shape and dtype. weight
 * (and pos_weight) may be NULL, broadcast to the input's shape, and must not
 * require grad; input and target are differentiable. */
/* F.binary_cross_entropy over probabilities x in [0, 1] (checked):
 * -w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as PyTorch. */
NB_API nb_tensor *nb_binary_cross_entropy(const nb_tensor *input, const nb_tensor *target, const nb_tensor *weight,
                                          nb_reduction reduction);
/* F.binary_cross_entropy_with_logits: the same over sigmoid(x), in PyTorch's
 * stable form; pos_weight p weighs the positive term: -w (p t log sigmoid(x) +
 * (1 - t) log(1 - sigmoid(x))). */
NB_API nb_tensor *nb_binary_cross_entropy_with_logits(const nb_tensor *input, const nb_tensor *target,
                                                      const nb_tensor *weight, const nb_tensor *pos_weight,
                                                      nb_reduction reduction);

/* Elementwise activations not in ops.h. */
nb_tensor *nb_leaky_relu(const nb_tensor *x, double negative_slope); /* x if x > 0 else slope * x */
/* The activations below follow PyTorch's CPU formulas and branches (NaN, the
 * gradient at kinks); their parameters must be finite. */
typedef enum nb_gelu_approximate {
    NB_GELU_NONE = 0, /* approximate='none': x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 */
    NB_GELU_TANH = 1  /* approximate='tanh': 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) */
} nb_gelu_approximate;
/* F.gelu(x, approximate). */
NB_API nb_tensor *nb_gelu(const nb_tensor *x, nb_gelu_approximate approximate);
/* F.silu: x * sigmoid(x). */
NB_API nb_tensor *nb_silu(const nb_tensor *x);
/* F.elu(x, alpha): x if x > 0 else alpha * (e^x - 1) (PyTorch's default alpha is 1). */
NB_API nb_tensor *nb_elu(const nb_tensor *x, double alpha);
/* F.softplus(x, beta, threshold): log(1 + e^(beta x)) / beta, or x where
 * beta x > threshold (PyTorch's defaults: 1, 20). */
NB_API nb_tensor *nb_softplus(const nb_tensor *x, double beta, double threshold);
/* F.hardswish: x * min(max(x + 3, 0), 6) / 6. */
NB_API nb_tensor *nb_hardswish(const nb_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
