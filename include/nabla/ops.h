/* nabla/ops.h: differentiable tensor ops. Ownership and errors: nabla/core.h.
 *
 * Every op here works in float32 and float64 (both inputs the same dtype; no
 * implicit promotion) and is recorded by autograd. Binary ops broadcast as
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
nb_tensor *nb_add(const nb_tensor *a, const nb_tensor *b);   /* a + b */
nb_tensor *nb_sub(const nb_tensor *a, const nb_tensor *b);   /* a - b */
nb_tensor *nb_mul(const nb_tensor *a, const nb_tensor *b);   /* a * b */
nb_tensor *nb_div(const nb_tensor *a, const nb_tensor *b);   /* a / b */

/* ---- with a scalar ---- */
nb_tensor *nb_add_scalar(const nb_tensor *a, double s);      /* a + s */
nb_tensor *nb_sub_scalar(const nb_tensor *a, double s);      /* a - s */
nb_tensor *nb_mul_scalar(const nb_tensor *a, double s);      /* a * s */
nb_tensor *nb_div_scalar(const nb_tensor *a, double s);      /* a / s */
nb_tensor *nb_rsub_scalar(const nb_tensor *a, double s);     /* s - a */
nb_tensor *nb_pow_scalar(const nb_tensor *a, double p);      /* a ^ p */

/* ---- unary ---- */
nb_tensor *nb_neg(const nb_tensor *a);                       /* -a */
nb_tensor *nb_exp(const nb_tensor *a);                       /* e^a */
nb_tensor *nb_log(const nb_tensor *a);                       /* ln a */
nb_tensor *nb_sqrt(const nb_tensor *a);                      /* sqrt a */
nb_tensor *nb_relu(const nb_tensor *a);                      /* max(0, a); gradient 0 at 0 as PyTorch */
nb_tensor *nb_sigmoid(const nb_tensor *a);                   /* 1 / (1 + e^-a) */
nb_tensor *nb_tanh(const nb_tensor *a);                      /* tanh a */

/* ---- reductions (deterministic: the same bits at any thread count) ---- */
nb_tensor *nb_sum(const nb_tensor *a);                       /* sum of all elements, 0-d */
nb_tensor *nb_mean(const nb_tensor *a);                      /* mean of all elements, 0-d */
nb_tensor *nb_sum_dim(const nb_tensor *a, int dim, bool keepdim);
nb_tensor *nb_mean_dim(const nb_tensor *a, int dim, bool keepdim);
/* Max along dim. If indices is not NULL it receives a new int64 tensor of
 * the positions (the first one on ties, as PyTorch on CPU). The gradient flows
 * to that position. */
nb_tensor *nb_max_dim(const nb_tensor *a, int dim, bool keepdim, nb_tensor **indices);
/* log(softmax(a)) along dim, computed stably. */
nb_tensor *nb_log_softmax(const nb_tensor *a, int dim);
/* softmax(a) along dim: e^a / sum e^a, computed stably (F.softmax(a, dim)). */
NB_API nb_tensor *nb_softmax(const nb_tensor *a, int dim);

/* ---- linear algebra and joining ---- */
/* torch.matmul: 1-d x 1-d dot, 2-d x 2-d matrix product, 1-d operands
 * promoted and squeezed back, and batched products over broadcast leading dims. */
nb_tensor *nb_matmul(const nb_tensor *a, const nb_tensor *b);
/* Concatenate n tensors along dim; all other sizes must agree. */
nb_tensor *nb_cat(const nb_tensor *const *tensors, int n, int dim);

#ifdef __cplusplus
}
#endif
#endif
