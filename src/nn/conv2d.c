/* nb_conv2d: argument checks in PyTorch's order and wording, resolution of
 * padding='valid'/'same' and of the padding modes, and the autograd node
 * whose backward calls the kernels (through conv2d_algo.c) directly. */
#include "nabla/conv.h"
#include "nn/conv_internal.h"
#include "nn/nn_util.h"

#include <stdlib.h>

nb_conv2d_params nb_conv2d_defaults(void) {
    return (nb_conv2d_params){.stride = {1, 1}, .padding = {0, 0}, .dilation = {1, 1}, .groups = 1,
                              .padding_kind = NB_PADDING_EXPLICIT, .padding_mode = NB_PAD_ZEROS};
}

nb_status nb_conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_begin, int64_t pad_end,
                              int64_t dilation, int64_t *out) {
    if (!out) return nbi_error(NB_ERR_ARG, "conv_output_size: out is NULL");
    if (in < 0) return nbi_error(NB_ERR_ARG, "conv_output_size: expected a non-negative input size, but got %lld", (long long)in);
    if (kernel < 1) return nbi_error(NB_ERR_ARG, "conv_output_size: expected a positive kernel size, but got %lld", (long long)kernel);
    if (stride < 1) return nbi_error(NB_ERR_ARG, "conv_output_size: non-positive stride is not supported (got %lld)", (long long)stride);
    if (dilation < 1)
        return nbi_error(NB_ERR_ARG, "conv_output_size: dilation should be greater than zero (got %lld)", (long long)dilation);
    if (pad_begin < 0 || pad_end < 0)
        return nbi_error(NB_ERR_ARG, "conv_output_size: negative padding is not supported (got %lld, %lld)",
                         (long long)pad_begin, (long long)pad_end);
    /* Sizes from untrusted callers may be huge: overflow is an error, not UB. */
    int64_t padded, extent;
    if (__builtin_add_overflow(in, pad_begin, &padded) || __builtin_add_overflow(padded, pad_end, &padded))
        return nbi_error(NB_ERR_ARG, "conv_output_size: padded input size %lld + %lld + %lld overflows int64",
                         (long long)in, (long long)pad_begin, (long long)pad_end);
    if (__builtin_mul_overflow(dilation, kernel - 1, &extent) || __builtin_add_overflow(extent, 1, &extent))
        return nbi_error(NB_ERR_ARG, "conv_output_size: dilated kernel size %lld * (%lld - 1) + 1 overflows int64",
                         (long long)dilation, (long long)kernel);
    if (extent > padded)
        return nbi_error(NB_ERR_SHAPE,
                         "conv_output_size: Calculated padded input size (%lld) is smaller than the dilated kernel "
                         "size (%lld). Kernel size can't be greater than actual input size",
                         (long long)padded, (long long)extent);
    *out = (padded - extent) / stride + 1;
    return NB_OK;
}

/* ---- checks: the parameters (shared with Conv2d's constructor), then the tensors; the geometry ---- */
bool nbi_conv2d_check_params(const char *op, const nb_conv2d_params *p) {
    if (p->padding_kind < NB_PADDING_EXPLICIT || p->padding_kind > NB_PADDING_SAME) {
        nbi_error(NB_ERR_ARG, "%s: Invalid padding kind %d, should be explicit, valid or same", op, (int)p->padding_kind);
        return false;
    }
    if (p->padding_mode < NB_PAD_ZEROS || p->padding_mode > NB_PAD_CIRCULAR) {
        nbi_error(NB_ERR_ARG,
                  "%s: padding_mode must be one of zeros, reflect, replicate or circular, but got padding_mode=%d", op,
                  (int)p->padding_mode);
        return false;
    }
    if (p->groups < 1) {
        nbi_error(NB_ERR_ARG, "%s: expected groups to be greater than 0, but got groups=%lld", op, (long long)p->groups);
        return false;
    }
    for (int d = 0; d < 2; d++) {
        if (p->stride[d] < 1) {
            nbi_error(NB_ERR_ARG, "%s: non-positive stride is not supported, but got stride=(%lld, %lld)", op,
                      (long long)p->stride[0], (long long)p->stride[1]);
            return false;
        }
        if (p->dilation[d] < 1) {
            nbi_error(NB_ERR_ARG, "%s: dilation should be greater than zero, but got dilation=(%lld, %lld)", op,
                      (long long)p->dilation[0], (long long)p->dilation[1]);
            return false;
        }
        if (p->padding_kind == NB_PADDING_EXPLICIT && p->padding[d] < 0) {
            nbi_error(NB_ERR_ARG, "%s: negative padding is not supported, but got padding=(%lld, %lld)", op,
                      (long long)p->padding[0], (long long)p->padding[1]);
            return false;
        }
    }
    if (p->padding_kind == NB_PADDING_SAME && (p->stride[0] != 1 || p->stride[1] != 1)) {
        nbi_error(NB_ERR_ARG, "%s: padding='same' is not supported for strided convolutions", op);
        return false;
    }
    return true;
}

bool nbi_conv2d_check(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                      const nb_conv2d_params *pp, nbi_conv2d_call *call) {
    char si[160], sw[160], sb[160];
    if (!nbi_check_float("conv2d", "input", input) || !nbi_check_float("conv2d", "weight", weight)) return false;
    if (bias && !nbi_check_float("conv2d", "bias", bias)) return false;
    const nb_conv2d_params p = pp ? *pp : nb_conv2d_defaults();
    nb_shape_str(input->ndim, input->shape, si, sizeof si);
    nb_shape_str(weight->ndim, weight->shape, sw, sizeof sw);

    if (input->ndim != 3 && input->ndim != 4) {
        nbi_error(NB_ERR_SHAPE, "conv2d: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: %s", si);
        return false;
    }
    if (weight->ndim != 4) {
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: expected a 4-dimensional weight (out_channels, in_channels/groups, kH, kW), but got weight "
                  "of size %s", sw);
        return false;
    }
    if (input->dtype != weight->dtype) {
        nbi_error(NB_ERR_DTYPE, "conv2d: Input type (%s) and weight type (%s) should be the same",
                  nb_dtype_name(input->dtype), nb_dtype_name(weight->dtype));
        return false;
    }
    if (bias && bias->dtype != input->dtype) {
        nbi_error(NB_ERR_DTYPE, "conv2d: Input type (%s) and bias type (%s) should be the same",
                  nb_dtype_name(input->dtype), nb_dtype_name(bias->dtype));
        return false;
    }
    if (!nbi_conv2d_check_params("conv2d", &p)) return false;

    const int64_t G = p.groups, O = weight->shape[0];
    if (O < G) {
        nbi_error(NB_ERR_SHAPE, "conv2d: Given groups=%lld, expected weight to be at least %lld at dimension 0, but got weight of size %s instead",
                  (long long)G, (long long)G, sw);
        return false;
    }
    if (O % G) {
        nbi_error(NB_ERR_SHAPE, "conv2d: Given groups=%lld, expected weight to be divisible by %lld at dimension 0, but got weight of size %s instead",
                  (long long)G, (long long)G, sw);
        return false;
    }
    /* Messages show the input as batched, as PyTorch's do for 3-d inputs. */
    const bool unbatched = input->ndim == 3;
    const int64_t N = unbatched ? 1 : input->shape[0];
    const int64_t *s = input->shape + (unbatched ? 0 : 1); /* C, H, W */
    const int64_t C = s[0], H = s[1], W = s[2];
    int64_t bshape[4] = {N, C, H, W};
    nb_shape_str(4, bshape, si, sizeof si);
    if (C % G) {
        nbi_error(NB_ERR_SHAPE, "conv2d: in_channels must be divisible by groups, but got input%s with %lld channels and groups=%lld",
                  si, (long long)C, (long long)G);
        return false;
    }
    if (C != weight->shape[1] * G) {
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: Given groups=%lld, weight of size %s, expected input%s to have %lld channels, but got %lld channels instead",
                  (long long)G, sw, si, (long long)(weight->shape[1] * G), (long long)C);
        return false;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != O)) {
        nb_shape_str(bias->ndim, bias->shape, sb, sizeof sb);
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: Given weight of size %s, expected bias to be 1-dimensional with %lld elements, but got bias of size %s instead",
                  sw, (long long)O, sb);
        return false;
    }

    /* Resolve the padding: (begin, end) per spatial dim. */
    const int64_t kh = weight->shape[2], kw = weight->shape[3];
    if (kh < 1 || kw < 1) {
        nbi_error(NB_ERR_SHAPE, "conv2d: kernel size should be greater than zero, but got kernel_height: %lld kernel_width: %lld",
                  (long long)kh, (long long)kw);
        return false;
    }
    int64_t pad[2][2] = {{0, 0}, {0, 0}};
    const int64_t k[2] = {kh, kw};
    for (int d = 0; d < 2; d++) {
        if (p.padding_kind == NB_PADDING_EXPLICIT) {
            pad[d][0] = pad[d][1] = p.padding[d];
        } else if (p.padding_kind == NB_PADDING_SAME) {
            /* PyTorch's split: the odd element goes at the end. */
            int64_t total;
            if (__builtin_mul_overflow(p.dilation[d], k[d] - 1, &total)) {
                nbi_error(NB_ERR_ARG, "conv2d: padding='same' with dilation %lld and kernel size %lld overflows int64",
                          (long long)p.dilation[d], (long long)k[d]);
                return false;
            }
            pad[d][0] = total / 2;
            pad[d][1] = total - pad[d][0];
        }
    }
    /* Huge paddings or dilations (untrusted arguments) are errors, not overflow. */
    int64_t ph, pw, eh, ew;
    if (__builtin_add_overflow(H, pad[0][0], &ph) || __builtin_add_overflow(ph, pad[0][1], &ph) ||
        __builtin_add_overflow(W, pad[1][0], &pw) || __builtin_add_overflow(pw, pad[1][1], &pw) ||
        __builtin_mul_overflow(p.dilation[0], kh - 1, &eh) || __builtin_add_overflow(eh, 1, &eh) ||
        __builtin_mul_overflow(p.dilation[1], kw - 1, &ew) || __builtin_add_overflow(ew, 1, &ew)) {
        nbi_error(NB_ERR_ARG,
                  "conv2d: padded input size or dilated kernel size overflows int64 (padding=(%lld, %lld), "
                  "dilation=(%lld, %lld))",
                  (long long)pad[0][0], (long long)pad[1][0], (long long)p.dilation[0], (long long)p.dilation[1]);
        return false;
    }
    if (eh > ph || ew > pw) {
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: Calculated padded input size per channel: (%lld x %lld). Kernel size: (%lld x %lld). Kernel size can't be greater than actual input size",
                  (long long)ph, (long long)pw, (long long)eh, (long long)ew);
        return false;
    }

    nbi_conv_geom g = {.N = N, .C = C, .H = H, .W = W, .O = O, .kh = kh, .kw = kw,
                       .sh = p.stride[0], .sw = p.stride[1], .dh = p.dilation[0], .dw = p.dilation[1], .groups = G,
                       .Ho = (ph - eh) / p.stride[0] + 1, .Wo = (pw - ew) / p.stride[1] + 1};
    bool padded = pad[0][0] || pad[0][1] || pad[1][0] || pad[1][1];
    *call = (nbi_conv2d_call){.pad_first = p.padding_mode != NB_PAD_ZEROS && padded, .mode = p.padding_mode,
                          .fpad = {pad[1][0], pad[1][1], pad[0][0], pad[0][1]}};
    if (call->pad_first) { /* nn.Conv2d's other modes: F.pad first, then a conv without padding */
        g.H = ph;
        g.W = pw;
    } else {
        g.pt = pad[0][0], g.pb = pad[0][1], g.pl = pad[1][0], g.pr = pad[1][1];
    }
    call->g = g;
    return true;
}

/* ---- autograd: ctx is the nbi_conv_geom; saved: input and weight (contiguous).
 * The kernels (conv2d_kernels.c) take NULL for a gradient not wanted. ---- */
static nb_status conv2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nbi_conv_geom *g = node->ctx;
    const nb_tensor *x = node->saved[0], *w = node->saved[1];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    if (x->dtype == NB_F32)
        return nbi_conv2d_backward_f32(nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]), nbi_data_or_null(gin[2]),
                                       nbi_data(gout), nbi_data(x), nbi_data(w), g);
    return nbi_conv2d_backward_f64(nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]), nbi_data_or_null(gin[2]),
                                   nbi_data(gout), nbi_data(x), nbi_data(w), g);
}

static const nbi_op conv2d_op = {"conv2d", conv2d_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
/* The convolution proper, with zero padding (possibly asymmetric) in g. */
static nb_tensor *conv2d_run(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                             const nbi_conv_geom *g) {
    nb_tensor *xc = nbi_contiguous_data(input), *wc = xc ? nbi_contiguous_data(weight) : NULL;
    nb_tensor *bc = wc && bias ? nbi_contiguous_data(bias) : NULL;
    int64_t shape[4] = {g->N, g->O, g->Ho, g->Wo};
    const bool unbatched = input->ndim == 3;
    nb_tensor *y = wc && (bc || !bias) ? nbi_empty(input->dtype, unbatched ? 3 : 4, unbatched ? shape + 1 : shape) : NULL;
    nb_status st = !y                       ? NB_OK
                   : input->dtype == NB_F32 ? nbi_conv2d_forward_f32(nbi_data(y), nbi_data(xc), nbi_data(wc), nbi_data_or_null(bc), g)
                                            : nbi_conv2d_forward_f64(nbi_data(y), nbi_data(xc), nbi_data(wc), nbi_data_or_null(bc), g);
    if (st != NB_OK) {
        nbi_release(y);
        y = NULL;
    }
    nbi_release(bc);
    const nb_tensor *in[3] = {input, weight, bias};
    return nbi_finish_op(y, &conv2d_op, in, bias ? 3 : 2, NBI_SAVED(xc, wc), g, sizeof *g);
}

nb_tensor *nb_conv2d(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                     const nb_conv2d_params *params) {
    nbi_conv2d_call call;
    if (!nbi_conv2d_check(input, weight, bias, params, &call)) return NULL;
    if (!call.pad_first) return conv2d_run(input, weight, bias, &call.g);
    /* F.pad is recorded as its own node, so the gradient flows through it */
    nb_tensor *xp = nbi_own(nb_pad(input, call.fpad, 4, call.mode, 0.0));
    nb_tensor *y = xp ? conv2d_run(xp, weight, bias, &call.g) : NULL;
    nbi_release(xp);
    return y;
}
