/* nabla/init.h: parameter initialisation, as torch.nn.init. Each function
 * fills an existing tensor in place, outside autograd (like PyTorch's, which
 * run under torch.no_grad()): a leaf that requires grad stays a leaf, and the
 * grad is untouched. The tensor may be a view (a slice of a larger tensor).
 * Ownership and errors: see nabla/core.h.
 *
 *     nb_init_kaiming_normal_(conv_weight, 0, "fan_out", "relu", rng);
 *     nb_init_zeros_(conv_bias);
 *
 * RANDOM NUMBERS come from the rng given (NULL: nb_default_rng()), drawn in
 * the tensor's row-major element order, so a seed reproduces the values on
 * every machine. They are nabla's generator, not PyTorch's: the values differ
 * from PyTorch's for the same seed, but the distributions, bounds and
 * standard deviations are PyTorch's to the last bit (uniform_(t, a, b) gives
 * exactly nb_rand_uniform's values for a and b, normal_ nb_rand_normal's).
 *
 * FANS (PyTorch's _calculate_fan_in_and_fan_out): for a weight of shape
 * [out, in, k1, k2, ...] (Linear [out, in], Conv2d [out, in / groups, kH, kW]),
 * fan_in = in * k1 * k2 * ..., fan_out = out * k1 * k2 * ...; tensors of
 * fewer than 2 dims have none.
 *
 * NONLINEARITY names are PyTorch's: "linear", "conv1d", "conv2d", "conv3d",
 * "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid"
 * (gain 1), "tanh" (5/3), "relu" (sqrt(2)), "leaky_relu" (sqrt(2 / (1 +
 * negative_slope^2))), "selu" (3/4). MODE is "fan_in" or "fan_out" (any case).
 */
#ifndef NABLA_INIT_H
#define NABLA_INIT_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* calculate_gain(nonlinearity, param): param is leaky_relu's negative slope,
 * NAN for PyTorch's None (slope 0.01). NAN with an error for an unknown name. */
NB_API double nb_init_calculate_gain(const char *nonlinearity, double param);
/* fan_in and fan_out of t (see FANS); either pointer may be NULL. */
NB_API nb_status nb_init_calculate_fan_in_and_fan_out(const nb_tensor *t, int64_t *fan_in, int64_t *fan_out);

/* uniform_: U(a, b) (a <= b, both finite, b - a within the dtype's range). */
NB_API nb_status nb_init_uniform_(nb_tensor *t, double a, double b, nb_rng *rng);
/* normal_: N(mean, std^2) (std >= 0). */
NB_API nb_status nb_init_normal_(nb_tensor *t, double mean, double std, nb_rng *rng);
/* trunc_normal_: N(mean, std^2) truncated to [a, b] (std > 0, a <= b), by
 * PyTorch's method (inverse CDF of a uniform draw between the bounds' CDFs). */
NB_API nb_status nb_init_trunc_normal_(nb_tensor *t, double mean, double std, double a, double b, nb_rng *rng);
/* constant_, ones_, zeros_: every element set (any dtype, as PyTorch's fill_). */
NB_API nb_status nb_init_constant_(nb_tensor *t, double val);
NB_API nb_status nb_init_ones_(nb_tensor *t);
NB_API nb_status nb_init_zeros_(nb_tensor *t);
/* eye_: the identity matrix (t 2-d). */
NB_API nb_status nb_init_eye_(nb_tensor *t);
/* dirac_: the Dirac delta of a 3-, 4- or 5-d conv weight (out % groups == 0):
 * a convolution with it keeps as many input channels as it can, per group. */
NB_API nb_status nb_init_dirac_(nb_tensor *t, int64_t groups);
/* xavier_uniform_: U(-bound, bound), bound = gain * sqrt(3) * sqrt(2 / (fan_in + fan_out)). */
NB_API nb_status nb_init_xavier_uniform_(nb_tensor *t, double gain, nb_rng *rng);
/* xavier_normal_: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)). */
NB_API nb_status nb_init_xavier_normal_(nb_tensor *t, double gain, nb_rng *rng);
/* kaiming_uniform_: U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan),
 * gain = calculate_gain(nonlinearity, a), fan by mode. NULL mode means
 * "fan_in", NULL nonlinearity "leaky_relu" (PyTorch's defaults, with a = 0).
 * A tensor with no elements is left as it is (no draws). */
NB_API nb_status nb_init_kaiming_uniform_(nb_tensor *t, double a, const char *mode, const char *nonlinearity,
                                          nb_rng *rng);
/* kaiming_normal_: N(0, std^2), std = gain / sqrt(fan); as kaiming_uniform_ otherwise. */
NB_API nb_status nb_init_kaiming_normal_(nb_tensor *t, double a, const char *mode, const char *nonlinearity,
                                         nb_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
