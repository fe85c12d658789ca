/* nabla/conv.h: 2-D convolution, transposed convolution and padding with
 * PyTorch's semantics (torch.nn.functional.conv2d, the padding_mode of
 * torch.nn.Conv2d, F.conv_transpose2d, F.pad).
 * Ownership and errors: nabla/core.h. Differentiable with respect to input,
 * weight and bias, in float32 and float64; deterministic at any thread count.
 */
#ifndef NABLA_CONV_H
#define NABLA_CONV_H

#include "nabla/functional.h" /* nb_pool2d_params */
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the border is filled (torch.nn.Conv2d padding_mode, F.pad mode). */
typedef enum nb_padding_mode {
    NB_PAD_ZEROS = 0,   /* F.pad's 'constant' with value 0 */
    NB_PAD_REFLECT,     /* mirror without repeating the edge */
    NB_PAD_REPLICATE,   /* repeat the edge */
    NB_PAD_CIRCULAR     /* wrap around */
} nb_padding_mode;

/* padding='valid', padding='same', or explicit numbers. */
typedef enum nb_padding_kind {
    NB_PADDING_EXPLICIT = 0,
    NB_PADDING_VALID,
    NB_PADDING_SAME     /* PyTorch's split: left = total/2, the odd one at the end; stride must be 1 */
} nb_padding_kind;

typedef struct nb_conv2d_params {
    int64_t stride[2];          /* (h, w), >= 1 */
    int64_t padding[2];         /* (h, w) on both sides, >= 0; used when padding_kind is EXPLICIT */
    int64_t dilation[2];        /* (h, w), >= 1 */
    int64_t groups;             /* divides both channel counts */
    nb_padding_kind padding_kind;
    nb_padding_mode padding_mode; /* ZEROS is F.conv2d; others pad with nb_pad first, as nn.Conv2d */
} nb_conv2d_params;

/* stride 1, padding 0, dilation 1, groups 1, explicit zero padding. */
NB_API nb_conv2d_params nb_conv2d_defaults(void);

/* out[n, o] = bias[o] + sum_c weight[o, c] (cross-correlated with) input[n, c], per group.
 * input [N, C, H, W] or unbatched [C, H, W] (then the output is [O, Ho, Wo]);
 * weight [O, C/groups, kH, kW]; bias [O] or NULL. p may be NULL for the
 * defaults. Differentiable with respect to all three. */
NB_API nb_tensor *nb_conv2d(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                            const nb_conv2d_params *p);

/* relu(max_pool2d(conv2d(input, weight, bias, p), pool)) as one op: the
 * same values and gradients, bit for bit, as nb_conv2d, nb_max_pool2d and
 * nb_relu one after the other (and so as max_pool2d(relu(conv2d(...))),
 * the same function: PyTorch's MNIST net). pool NULL: no pooling; relu
 * false: no relu. Faster where the convolution can pool its output tiles as
 * it writes them, so the full-size output and its gradient are never stored
 * (float32, pool the plain 2x2 window of stride 2, a conv that runs F(4x4,
 * 3x3): docs/conv2d.md); anything else runs the three ops. Errors are those
 * of the three ops. */
NB_API nb_tensor *nb_conv2d_pool_relu(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                                      const nb_conv2d_params *p, const nb_pool2d_params *pool, bool relu);

/* F.pad on the last dim (npad 2: pad = (left, right)) or the last two dims
 * (npad 4: pad = (left, right, top, bottom), F.pad's order, last dim first).
 * NB_PAD_ZEROS is F.pad's constant mode, filling with value, for any tensor
 * with enough dims; the other modes (value unused) take a 2-d/3-d input for
 * npad 2 and a 3-d/4-d input for npad 4. Negative entries crop (in every mode,
 * as F.pad; circular wraps within the cropped part). Reflect needs each pad <
 * the dim's size, circular <= it. Differentiable; float32 and float64. */
NB_API nb_tensor *nb_pad(const nb_tensor *input, const int64_t *pad, int npad, nb_padding_mode mode, double value);

/* Output length of one spatial dim:
 *   floor((in + pad_begin + pad_end - dilation * (kernel - 1) - 1) / stride) + 1.
 * Fails (naming the values) when an argument is invalid or the result < 1. */
NB_API nb_status nb_conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_begin, int64_t pad_end,
                                     int64_t dilation, int64_t *out);

/* ---- transposed convolution (F.conv_transpose2d, nn.ConvTranspose2d) ---- */

typedef struct nb_conv_transpose2d_params {
    int64_t stride[2];          /* (h, w), >= 1 */
    int64_t padding[2];         /* (h, w), >= 0: dilation * (kernel - 1) - padding zeros around the input */
    int64_t output_padding[2];  /* (h, w), >= 0 and < stride or < dilation: extra rows/cols at the end */
    int64_t groups;             /* divides both channel counts */
    int64_t dilation[2];        /* (h, w), >= 1 */
    nb_padding_mode padding_mode; /* NB_PAD_ZEROS only (ConvTranspose2d's only mode) */
} nb_conv_transpose2d_params;

/* stride 1, padding 0, output_padding 0, groups 1, dilation 1, zeros. */
NB_API nb_conv_transpose2d_params nb_conv_transpose2d_defaults(void);

/* F.conv_transpose2d: the gradient of nb_conv2d with respect to its input
 * (each input pixel scatters weight-times-value over a kernel window placed
 * stride apart), plus bias. input [N, C_in, H, W] or unbatched [C_in, H, W];
 * weight [C_in, C_out/groups, kH, kW] (PyTorch's transposed layout); bias
 * [C_out] or NULL; output [N, C_out, H_out, W_out] (3-d for a 3-d input) with
 * H_out = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1.
 * p may be NULL for the defaults. Differentiable with respect to all three. */
NB_API nb_tensor *nb_conv_transpose2d(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                                      const nb_conv_transpose2d_params *p);

/* Output length of one spatial dim of a transposed conv:
 *   (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1.
 * Fails (naming the values) when an argument is invalid (in < 1, kernel < 1,
 * output_padding not below stride or dilation, ...) or the result < 1. */
NB_API nb_status nb_conv_transpose_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                                               int64_t output_padding, int64_t dilation, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
