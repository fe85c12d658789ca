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
    int64_t divisor_override; /* avg_pool2d only: the divisor of every window; 0 (default): none */
} nb_pool2d_params;
/* kernel (k, k), stride = kernel, no padding, dilation 1, floor mode, count_include_pad, no divisor_override. */
NB_API nb_pool2d_params nb_pool2d_defaults(int64_t kernel);
/* x [N, C, H, W] or [C, H, W]; output sizes, checks and messages are
 * torch 1.13's (e.g. "pad should be at most half of kernel size, but got
 * pad=2 and kernel_size=2"). Max: padded positions never win (as -inf), ties
 * go to the first position in row-major window order, NaN propagates; the
 * gradient flows to the winner. */
NB_API nb_tensor *nb_max_pool2d(const nb_tensor *x, const nb_pool2d_params *p);
/* nb_max_pool2d that also returns, in *indices (a new int64 tensor of the
 * output's shape), each window's winner as a flat index h * W + w into its
 * input plane (F.max_pool2d(..., return_indices=True)); for nb_max_unpool2d.
 * indices may be NULL; *indices is NULL on failure. */
NB_API nb_tensor *nb_max_pool2d_with_indices(const nb_tensor *x, const nb_pool2d_params *p, nb_tensor **indices);
/* Average over each window clipped to the input; the divisor counts padded
 * positions (inside the padded input) only when count_include_pad, and is
 * divisor_override when that is not 0 (PyTorch's divisor_override; its 0,
 * an error there, means "none" here). */
NB_API nb_tensor *nb_avg_pool2d(const nb_tensor *x, const nb_pool2d_params *p);

/* An entry of output_size that keeps the input's size (PyTorch's None). */
#define NB_SIZE_NONE (-1)
/* F.adaptive_avg_pool2d(x, (out_h, out_w)) and F.adaptive_max_pool2d: x
 * [N, C, H, W] or [C, H, W] pooled to (out_h, out_w) (0 gives an empty
 * output); output (i, j) pools rows [floor(i H / out_h), ceil((i + 1) H /
 * out_h)) and the same for columns. Max: ties go to the first position,
 * NaN propagates; *indices (if indices is not NULL) gets a new int64 tensor
 * of the output's shape with each winner's flat in-plane index h * W + w
 * (return_indices=True), NULL on failure. */
NB_API nb_tensor *nb_adaptive_avg_pool2d(const nb_tensor *x, int64_t out_h, int64_t out_w);
NB_API nb_tensor *nb_adaptive_max_pool2d(const nb_tensor *x, int64_t out_h, int64_t out_w, nb_tensor **indices);
/* F.max_unpool2d(x, indices, kernel_size, stride, padding, output_size):
 * x [N, C, H, W] or [C, H, W] and int64 indices of the same shape (from
 * nb_max_pool2d_with_indices); p gives kernel, stride (0: the kernel) and
 * padding, its other fields are not read. The output is zero but for
 * y[n][c].flat[indices[n][c][h][w]] = x[n][c][h][w]; its size is
 * (H - 1) * stride - 2 * padding + kernel, or output_size (output_size_len 2:
 * (h, w), or 4: (n, c, h, w)), which must be within one stride of it. Indices
 * outside the output plane fail ("Found an invalid max index"). */
NB_API nb_tensor *nb_max_unpool2d(const nb_tensor *x, const nb_tensor *indices, const nb_pool2d_params *p,
                                  const int64_t *output_size, int output_size_len);

/* Inverted dropout: in training each element is zeroed with probability p
 * (0 <= p <= 1) and the rest scaled by 1/(1-p), the mask seeded by one 64-bit
 * draw of rng (NULL: the default generator) and drawn in fixed blocks of
 * elements in row-major order, so a seed fixes the mask at any thread count.
 * When training is false, or p is 0, it returns a view of x (identity;
 * gradients pass through). */
NB_API nb_tensor *nb_dropout(const nb_tensor *x, double p, bool training, nb_rng *rng);

/* F.dropout2d: nb_dropout of whole channels: one mask element per x[i][j]
 * (x of rank >= 2; for 4-d input (N, C, H, W) a channel is an (H, W) plane,
 * for 3-d input (N, C, L), as torch 1.13 treats it, an L vector), drawn as
 * nb_dropout's mask in row-major (i, j) order. Identity (a view) when not
 * training, p is 0 or x is empty. */
NB_API nb_tensor *nb_dropout2d(const nb_tensor *x, double p, bool training, nb_rng *rng);

/* F.batch_norm over [N, C, H, W] (or [N, C]) per channel C. In training it
 * normalises with the batch mean and biased variance and, when running_mean /
 * running_var are given, updates them in place:
 *   running = (1 - momentum) * running + momentum * batch_stat (variance unbiased).
 * Out of training it normalises with the running statistics. weight/bias [C]
 * may be NULL (affine=False). Running statistics are never differentiated. */
NB_API nb_tensor *nb_batch_norm(const nb_tensor *x, nb_tensor *running_mean, nb_tensor *running_var,
                                const nb_tensor *weight, const nb_tensor *bias, bool training, double momentum,
                                double eps);

/* F.group_norm: x [N, C, *] in num_groups groups of C / num_groups channels,
 * each (sample, group) normalised with its own mean and biased variance:
 * y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c]; weight and bias [C]
 * or NULL. */
NB_API nb_tensor *nb_group_norm(const nb_tensor *x, int64_t num_groups, const nb_tensor *weight,
                                const nb_tensor *bias, double eps);
/* F.layer_norm: normalise x [*, normalized_shape] over its last
 * normalized_ndim dims (which must equal normalized_shape), then
 * * weight + bias, both of normalized_shape or NULL. With NB_SHAPE:
 * nb_layer_norm(x, NB_SHAPE(3, 4), w, b, 1e-5). */
NB_API nb_tensor *nb_layer_norm(const nb_tensor *x, int normalized_ndim, const int64_t *normalized_shape,
                                const nb_tensor *weight, const nb_tensor *bias, double eps);

/* F.interpolate over [N, C, H, W] (4-d input only), modes nearest and bilinear. */
typedef enum nb_interpolate_mode { NB_INTERPOLATE_NEAREST = 0, NB_INTERPOLATE_BILINEAR } nb_interpolate_mode;
typedef struct nb_interpolate_params {
    int64_t size[2];             /* output (H, W); {0, 0}: not given */
    double scale_factor[2];      /* (h, w) multipliers; {0, 0}: not given. Exactly one of the two is given. */
    nb_interpolate_mode mode;    /* default NB_INTERPOLATE_NEAREST */
    bool align_corners;          /* bilinear only (setting it for nearest is an error, as PyTorch) */
    bool recompute_scale_factor; /* scale_factor only: output floor(in * scale) and interpolate by in / out;
                                  * false (PyTorch's None): interpolate by the scale_factor itself */
} nb_interpolate_params;
/* torch 1.13's sizes, source indices and weights (nearest: the "nearest"
 * mode, not "nearest-exact"), checks and messages. Differentiable in x. */
NB_API nb_tensor *nb_interpolate(const nb_tensor *x, const nb_interpolate_params *p);

/* F.embedding's padding_idx=None. */
#define NB_NO_PADDING_IDX INT64_MIN
/* F.embedding(input, weight, padding_idx, scale_grad_by_freq=...): int64
 * input of any shape, weight [num_embeddings, dim]; y = input.shape + [dim],
 * rows of weight. padding_idx (negative counts from the end) gets no gradient;
 * scale_grad_by_freq divides each row's gradient by its index's count in
 * input. Indices outside [0, num_embeddings) fail. (max_norm: not supported.) */
NB_API nb_tensor *nb_embedding(const nb_tensor *input, const nb_tensor *weight, int64_t padding_idx,
                               bool scale_grad_by_freq);

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
NB_API nb_tensor *nb_cross_entropy(const nb_tensor *logits, const nb_tensor *target, nb_reduction reduction);
/* F.nll_loss from log-probabilities, with the defaults but reduction. */
NB_API nb_tensor *nb_nll_loss(const nb_tensor *log_probs, const nb_tensor *target, nb_reduction reduction);
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
NB_API nb_tensor *nb_mse_loss(const nb_tensor *input, const nb_tensor *target, nb_reduction reduction);
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
NB_API nb_tensor *nb_leaky_relu(const nb_tensor *x, double negative_slope); /* x if x > 0 else slope * x */
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
