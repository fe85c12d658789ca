/* nabla/ops.h: differentiable tensor ops. Ownership and errors: nabla/core.h.
 *
 * Every op here works in float32 and float64 (both inputs the same dtype; no
 * implicit promotion) and is recorded by autograd; ops that only move
 * elements (cat, stack, gather, where) take int64 tensors too, without
 * gradients, and index arguments and results are int64. Binary ops broadcast as
 * PyTorch does: shapes are aligned from the last dim, and each pair of sizes
 * must be equal or one of them 1. Dims are ints; a negative dim counts from
 * the end (-1 is the last).
 */
#ifndef NABLA_OPS_H
#define NABLA_OPS_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise, broadcasting ---- */
NB_API nb_tensor *nb_add(const nb_tensor *a, const nb_tensor *b);   /* a + b */
NB_API nb_tensor *nb_sub(const nb_tensor *a, const nb_tensor *b);   /* a - b */
NB_API nb_tensor *nb_mul(const nb_tensor *a, const nb_tensor *b);   /* a * b */
NB_API nb_tensor *nb_div(const nb_tensor *a, const nb_tensor *b);   /* a / b */

/* ---- with a scalar ---- */
NB_API nb_tensor *nb_add_scalar(const nb_tensor *a, double s);      /* a + s */
NB_API nb_tensor *nb_sub_scalar(const nb_tensor *a, double s);      /* a - s */
NB_API nb_tensor *nb_mul_scalar(const nb_tensor *a, double s);      /* a * s */
NB_API nb_tensor *nb_div_scalar(const nb_tensor *a, double s);      /* a / s */
NB_API nb_tensor *nb_rsub_scalar(const nb_tensor *a, double s);     /* s - a */
NB_API nb_tensor *nb_pow_scalar(const nb_tensor *a, double p);      /* a ^ p */

/* ---- unary ---- */
NB_API nb_tensor *nb_neg(const nb_tensor *a);                       /* -a */
NB_API nb_tensor *nb_exp(const nb_tensor *a);                       /* e^a */
NB_API nb_tensor *nb_log(const nb_tensor *a);                       /* ln a */
NB_API nb_tensor *nb_sqrt(const nb_tensor *a);                      /* sqrt a */
NB_API nb_tensor *nb_relu(const nb_tensor *a);                      /* max(0, a); gradient 0 at 0 as PyTorch */
NB_API nb_tensor *nb_sigmoid(const nb_tensor *a);                   /* 1 / (1 + e^-a) */
NB_API nb_tensor *nb_tanh(const nb_tensor *a);                      /* tanh a */

/* ---- reductions (deterministic: the same bits at any thread count) ---- */
NB_API nb_tensor *nb_sum(const nb_tensor *a);                       /* sum of all elements, 0-d */
NB_API nb_tensor *nb_mean(const nb_tensor *a);                      /* mean of all elements, 0-d */
NB_API nb_tensor *nb_sum_dim(const nb_tensor *a, int dim, bool keepdim);
NB_API nb_tensor *nb_mean_dim(const nb_tensor *a, int dim, bool keepdim);
/* Max along dim. If indices is not NULL it receives a new int64 tensor of
 * the positions (the first one on ties, as PyTorch on CPU). The gradient flows
 * to that position. */
NB_API nb_tensor *nb_max_dim(const nb_tensor *a, int dim, bool keepdim, nb_tensor **indices);
/* log(softmax(a)) along dim, computed stably. */
NB_API nb_tensor *nb_log_softmax(const nb_tensor *a, int dim);
/* softmax(a) along dim: e^a / sum e^a, computed stably (F.softmax(a, dim)). */
NB_API nb_tensor *nb_softmax(const nb_tensor *a, int dim);

/* ---- linear algebra and joining ---- */
/* torch.matmul: 1-d x 1-d dot, 2-d x 2-d matrix product, 1-d operands
 * promoted and squeezed back, and batched products over broadcast leading dims. */
NB_API nb_tensor *nb_matmul(const nb_tensor *a, const nb_tensor *b);
/* Concatenate n tensors along dim; all other sizes must agree. */
NB_API nb_tensor *nb_cat(const nb_tensor *const *tensors, int n, int dim);
/* torch.stack: join n tensors of one shape along a new dim
 * (-(ndim + 1) <= dim <= ndim): result[..., i, ...] = tensors[i]. */
NB_API nb_tensor *nb_stack(const nb_tensor *const *tensors, int n, int dim);

/* ---- more elementwise ops ---- */
NB_API nb_tensor *nb_abs(const nb_tensor *a);                /* |a|; gradient sign(a), 0 at 0 as PyTorch */
/* torch.add(a, b, alpha=alpha) = a + alpha * b and torch.sub(a, b, alpha=alpha)
 * = a - alpha * b, broadcasting; alpha is rounded to the operands' dtype. */
NB_API nb_tensor *nb_add_alpha(const nb_tensor *a, const nb_tensor *b, double alpha);
NB_API nb_tensor *nb_sub_alpha(const nb_tensor *a, const nb_tensor *b, double alpha);
/* torch.maximum / torch.minimum, broadcasting; NaN if either is NaN. On a tie
 * each input gets half the gradient (PyTorch's rule). */
NB_API nb_tensor *nb_maximum(const nb_tensor *input, const nb_tensor *other);
NB_API nb_tensor *nb_minimum(const nb_tensor *input, const nb_tensor *other);
/* torch.clamp(input, min, max) with scalar bounds: min(max(input, min), max).
 * Pass -INFINITY (INFINITY) for no lower (upper) bound, PyTorch's None; min >
 * max gives max everywhere. The gradient passes where min <= input <= max. */
NB_API nb_tensor *nb_clamp(const nb_tensor *input, double min, double max);
/* torch.clamp with tensor bounds, broadcast with input; NULL for an absent
 * one (not both). NaN in any of the three gives NaN. Gradients as PyTorch's:
 * to min where input < min < max, to max where input > max or max < min. */
NB_API nb_tensor *nb_clamp_tensor(const nb_tensor *input, const nb_tensor *min, const nb_tensor *max);

/* ---- selection ---- */
/* torch.where(condition, input, other): input where condition, else other,
 * all three broadcast. nabla has no bool dtype: condition is an int64 tensor,
 * nonzero meaning true (PyTorch's bool mask as cond.long()); any other dtype
 * is an error, as PyTorch refuses non-bool masks. input and other: the same
 * dtype (float, or int64 without gradient). */
NB_API nb_tensor *nb_where(const nb_tensor *condition, const nb_tensor *input, const nb_tensor *other);
/* torch.gather: out[i][j][k] = input[index[i][j][k]][j][k] for dim 0 (and so
 * on), out shaped like index (int64, values in [0, input's size along dim),
 * same number of dims as input, sizes at most input's except along dim). The
 * gradient is scatter-added back (the same order at any thread count). */
NB_API nb_tensor *nb_gather(const nb_tensor *input, int dim, const nb_tensor *index);

/* ---- more reductions ----
 * With a list of dims (torch.sum(a, dim=(0, 2), keepdim)): negative dims count
 * from the end, a repeated dim is an error, and an empty list (ndims 0, dims
 * may be NULL) reduces every dim, as torch 1.13 does. */
NB_API nb_tensor *nb_sum_dims(const nb_tensor *a, const int *dims, int ndims, bool keepdim);
NB_API nb_tensor *nb_mean_dims(const nb_tensor *a, const int *dims, int ndims, bool keepdim);
/* torch.amax / torch.amin over dims (NaN propagates; an empty input needs
 * non-empty dims). The gradient is shared evenly among the elements equal to
 * the result, as PyTorch's. */
NB_API nb_tensor *nb_amax(const nb_tensor *a, const int *dims, int ndims, bool keepdim);
NB_API nb_tensor *nb_amin(const nb_tensor *a, const int *dims, int ndims, bool keepdim);
/* torch.min(a, dim, keepdim): nb_max_dim's twin for the minimum. */
NB_API nb_tensor *nb_min_dim(const nb_tensor *a, int dim, bool keepdim, nb_tensor **indices);
/* torch.argmax / torch.argmin along dim: int64 positions, the first on ties,
 * NaN counting as the largest (argmax) and the smallest (argmin), as PyTorch. */
NB_API nb_tensor *nb_argmax_dim(const nb_tensor *a, int dim, bool keepdim);
NB_API nb_tensor *nb_argmin_dim(const nb_tensor *a, int dim, bool keepdim);
/* torch.argmax(a) / torch.argmin(a): the index into the flattened a, a 0-d int64 tensor. */
NB_API nb_tensor *nb_argmax(const nb_tensor *a);
NB_API nb_tensor *nb_argmin(const nb_tensor *a);

#ifdef __cplusplus
}
#endif
#endif
