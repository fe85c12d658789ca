/* nabla/clip_grad.h: gradient clipping, as torch.nn.utils.clip_grad_norm_ and
 * clip_grad_value_. Both act in place on the .grad of the parameters given
 * (those with a NULL grad are skipped), outside autograd, between
 * nb_backward and nb_optimizer_step:
 *
 *     nb_backward(loss);
 *     nb_clip_grad_norm_(params, n, 1.0, 2.0, false, &norm);
 *     nb_optimizer_step(opt);
 *
 * Ownership and errors: see nabla/core.h. */
#ifndef NABLA_CLIP_GRAD_H
#define NABLA_CLIP_GRAD_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scale every grad by clip_coef = min(max_norm / (total_norm + 1e-6), 1), where
 * total_norm is the norm_type-norm of all grads together (of their per-grad
 * norms: 2 for Euclidean, INFINITY for the largest |g|, 0 counts non-zeros,
 * any p otherwise), computed and applied in the grads' dtype as PyTorch does.
 * *total_norm (may be NULL) receives it (0 when no parameter has a grad). With
 * error_if_nonfinite, a NaN or infinite total norm fails and leaves the grads
 * as they were; without, they are scaled by it anyway (to NaN). */
NB_API nb_status nb_clip_grad_norm_(nb_tensor *const *params, int n, double max_norm, double norm_type,
                                    bool error_if_nonfinite, double *total_norm);
/* Clamp every grad element into [-clip_value, clip_value] (NaN stays NaN). */
NB_API nb_status nb_clip_grad_value_(nb_tensor *const *params, int n, double clip_value);

#ifdef __cplusplus
}
#endif
#endif
