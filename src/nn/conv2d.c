/* nb_conv2d: argument checks in PyTorch's order and wording, resolution of
 * padding='valid'/'same' and of the padding modes, and the autograd node
 * whose backward calls the kernels (through conv2d_algo.c) directly. */
#include "nabla/conv.h"
#include "nn/conv_internal.h"

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

/* ---- the autograd node ---- */
typedef struct conv_ctx {
    nbi_conv_geom g;
    nb_tensor *x, *w; /* contiguous input and weight (retained) */
} conv_ctx;

static void conv_free_ctx(void *p) {
    conv_ctx *c = p;
    if (!c) return;
    nbi_release(c->x);
    nbi_release(c->w);
    free(c);
}

static nb_status conv_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const conv_ctx *c = node->ctx;
    const nb_tensor *x = node->inputs[0];
    nb_tensor *g[3] = {NULL, NULL, NULL};
    for (int i = 0; i < node->ninputs; i++) {
        if (!nbi_node_needs_grad(node, i)) continue;
        const nb_tensor *t = node->inputs[i];
        g[i] = nbi_empty(t->dtype, t->ndim, t->shape);
        if (!g[i]) {
            for (int k = 0; k < 3; k++) nbi_release(g[k] ? nbi_own(g[k]) : NULL);
            return nb_last_status();
        }
    }
    nb_status st;
    if (x->dtype == NB_F32)
        st = nbi_conv2d_backward_f32(g[0] ? nbi_data(g[0]) : NULL, g[1] ? nbi_data(g[1]) : NULL,
                                     g[2] ? nbi_data(g[2]) : NULL, nbi_data(gout), nbi_data(c->x), nbi_data(c->w), &c->g);
    else
        st = nbi_conv2d_backward_f64(g[0] ? nbi_data(g[0]) : NULL, g[1] ? nbi_data(g[1]) : NULL,
                                     g[2] ? nbi_data(g[2]) : NULL, nbi_data(gout), nbi_data(c->x), nbi_data(c->w), &c->g);
    for (int i = 0; i < 3; i++) {
        if (st == NB_OK) gin[i] = g[i];
        else if (g[i]) nbi_release(nbi_own(g[i]));
    }
    return st;
}

static const nbi_op conv_op = {"conv2d", conv_backward, conv_free_ctx};

/* A contiguous version of t owned by the library (t itself, retained, when it
 * already is), made without recording anything. */
static nb_tensor *own_contiguous(const nb_tensor *t) {
    if (nbi_is_contiguous(t)) return nbi_retain((nb_tensor *)t);
    nb_no_grad_begin();
    nb_tensor *c = nbi_own(nb_contiguous(t));
    nb_no_grad_end();
    return c;
}

/* The convolution proper, with zero padding (possibly asymmetric) in g. */
static nb_tensor *conv_zeros(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias, nbi_conv_geom g) {
    nb_tensor *xc = own_contiguous(input), *wc = own_contiguous(weight), *bc = bias ? own_contiguous(bias) : NULL;
    nb_tensor *out = NULL;
    if (!xc || !wc || (bias && !bc)) goto done;
    int64_t shape[4] = {g.N, g.O, g.Ho, g.Wo};
    const bool unbatched = input->ndim == 3;
    out = nbi_empty(input->dtype, unbatched ? 3 : 4, unbatched ? shape + 1 : shape);
    if (!out) goto done;
    nb_status st = input->dtype == NB_F32
                       ? nbi_conv2d_forward_f32(nbi_data(out), nbi_data(xc), nbi_data(wc), bc ? nbi_data(bc) : NULL, &g)
                       : nbi_conv2d_forward_f64(nbi_data(out), nbi_data(xc), nbi_data(wc), bc ? nbi_data(bc) : NULL, &g);
    if (st != NB_OK) {
        nb_tensor_release(out);
        out = NULL;
        goto done;
    }
    nb_tensor *inputs[3] = {(nb_tensor *)input, (nb_tensor *)weight, (nb_tensor *)bias};
    int n = bias ? 3 : 2;
    if (nbi_should_record(inputs, n)) {
        conv_ctx *c = malloc(sizeof *c);
        if (!c) {
            nb_tensor_release(out);
            out = NULL;
            nbi_error(NB_ERR_NOMEM, "conv2d: out of memory recording the autograd node");
            goto done;
        }
        *c = (conv_ctx){.g = g, .x = nbi_retain(xc), .w = nbi_retain(wc)};
        out = nbi_finish(out, &conv_op, inputs, n, c);
    } else {
        out = nbi_finish(out, &conv_op, inputs, n, NULL); /* not recorded; anomaly mode still checks out */
    }
done:
    nbi_release(xc);
    nbi_release(wc);
    nbi_release(bc);
    return out;
}

nb_tensor *nb_conv2d(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                     const nb_conv2d_params *params) {
    char si[160], sw[160], sb[160];
    if (!nbi_check_float("conv2d", "input", input) || !nbi_check_float("conv2d", "weight", weight)) return NULL;
    if (bias && !nbi_check_float("conv2d", "bias", bias)) return NULL;
    const nb_conv2d_params p = params ? *params : nb_conv2d_defaults();
    nb_shape_str(input->ndim, input->shape, si, sizeof si);
    nb_shape_str(weight->ndim, weight->shape, sw, sizeof sw);

    if (input->ndim != 3 && input->ndim != 4) {
        nbi_error(NB_ERR_SHAPE, "conv2d: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: %s", si);
        return NULL;
    }
    if (weight->ndim != 4) {
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: expected a 4-dimensional weight (out_channels, in_channels/groups, kH, kW), but got weight "
                  "of size %s", sw);
        return NULL;
    }
    if (input->dtype != weight->dtype) {
        nbi_error(NB_ERR_DTYPE, "conv2d: Input type (%s) and weight type (%s) should be the same",
                  nb_dtype_name(input->dtype), nb_dtype_name(weight->dtype));
        return NULL;
    }
    if (bias && bias->dtype != input->dtype) {
        nbi_error(NB_ERR_DTYPE, "conv2d: Input type (%s) and bias type (%s) should be the same",
                  nb_dtype_name(input->dtype), nb_dtype_name(bias->dtype));
        return NULL;
    }
    if (p.padding_kind < NB_PADDING_EXPLICIT || p.padding_kind > NB_PADDING_SAME) {
        nbi_error(NB_ERR_ARG, "conv2d: Invalid padding kind %d, should be explicit, valid or same", (int)p.padding_kind);
        return NULL;
    }
    if (p.padding_mode < NB_PAD_ZEROS || p.padding_mode > NB_PAD_CIRCULAR) {
        nbi_error(NB_ERR_ARG,
                  "conv2d: padding_mode must be one of zeros, reflect, replicate or circular, but got padding_mode=%d",
                  (int)p.padding_mode);
        return NULL;
    }
    if (p.groups < 1) {
        nbi_error(NB_ERR_ARG, "conv2d: expected groups to be greater than 0, but got groups=%lld", (long long)p.groups);
        return NULL;
    }
    for (int d = 0; d < 2; d++) {
        if (p.stride[d] < 1) {
            nbi_error(NB_ERR_ARG, "conv2d: non-positive stride is not supported, but got stride=(%lld, %lld)",
                      (long long)p.stride[0], (long long)p.stride[1]);
            return NULL;
        }
        if (p.dilation[d] < 1) {
            nbi_error(NB_ERR_ARG, "conv2d: dilation should be greater than zero, but got dilation=(%lld, %lld)",
                      (long long)p.dilation[0], (long long)p.dilation[1]);
            return NULL;
        }
        if (p.padding_kind == NB_PADDING_EXPLICIT && p.padding[d] < 0) {
            nbi_error(NB_ERR_ARG, "conv2d: negative padding is not supported, but got padding=(%lld, %lld)",
                      (long long)p.padding[0], (long long)p.padding[1]);
            return NULL;
        }
    }
    if (p.padding_kind == NB_PADDING_SAME && (p.stride[0] != 1 || p.stride[1] != 1)) {
        nbi_error(NB_ERR_ARG, "conv2d: padding='same' is not supported for strided convolutions");
        return NULL;
    }

    const int64_t G = p.groups, O = weight->shape[0];
    if (O < G) {
        nbi_error(NB_ERR_SHAPE, "conv2d: Given groups=%lld, expected weight to be at least %lld at dimension 0, but got weight of size %s instead",
                  (long long)G, (long long)G, sw);
        return NULL;
    }
    if (O % G) {
        nbi_error(NB_ERR_SHAPE, "conv2d: Given groups=%lld, expected weight to be divisible by %lld at dimension 0, but got weight of size %s instead",
                  (long long)G, (long long)G, sw);
        return NULL;
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
        return NULL;
    }
    if (C != weight->shape[1] * G) {
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: Given groups=%lld, weight of size %s, expected input%s to have %lld channels, but got %lld channels instead",
                  (long long)G, sw, si, (long long)(weight->shape[1] * G), (long long)C);
        return NULL;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != O)) {
        nb_shape_str(bias->ndim, bias->shape, sb, sizeof sb);
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: Given weight of size %s, expected bias to be 1-dimensional with %lld elements, but got bias of size %s instead",
                  sw, (long long)O, sb);
        return NULL;
    }

    /* Resolve the padding: (begin, end) per spatial dim. */
    const int64_t kh = weight->shape[2], kw = weight->shape[3];
    if (kh < 1 || kw < 1) {
        nbi_error(NB_ERR_SHAPE, "conv2d: kernel size should be greater than zero, but got kernel_height: %lld kernel_width: %lld",
                  (long long)kh, (long long)kw);
        return NULL;
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
                return NULL;
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
        return NULL;
    }
    if (eh > ph || ew > pw) {
        nbi_error(NB_ERR_SHAPE,
                  "conv2d: Calculated padded input size per channel: (%lld x %lld). Kernel size: (%lld x %lld). Kernel size can't be greater than actual input size",
                  (long long)ph, (long long)pw, (long long)eh, (long long)ew);
        return NULL;
    }

    nbi_conv_geom g = {.N = N, .C = C, .H = H, .W = W, .O = O, .kh = kh, .kw = kw,
                       .sh = p.stride[0], .sw = p.stride[1], .dh = p.dilation[0], .dw = p.dilation[1], .groups = G,
                       .Ho = (ph - eh) / p.stride[0] + 1, .Wo = (pw - ew) / p.stride[1] + 1};
    bool padded = pad[0][0] || pad[0][1] || pad[1][0] || pad[1][1];
    if (p.padding_mode == NB_PAD_ZEROS || !padded) {
        g.pt = pad[0][0], g.pb = pad[0][1], g.pl = pad[1][0], g.pr = pad[1][1];
        return conv_zeros(input, weight, bias, g);
    }
    /* nn.Conv2d's other modes: F.pad first, then a conv without padding. */
    const int64_t fp[4] = {pad[1][0], pad[1][1], pad[0][0], pad[0][1]};
    nb_tensor *xp = nb_pad(input, fp, 4, p.padding_mode, 0.0);
    if (!xp) return NULL;
    g.H = ph, g.W = pw;
    nb_tensor *out = conv_zeros(xp, weight, bias, g);
    nb_tensor_release(xp);
    return out;
}
