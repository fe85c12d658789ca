/* nn.ConvTranspose2d as a module around nb_conv_transpose2d: parameters
 * weight [in_channels, out_channels/groups, kh, kw] and bias [out_channels]
 * drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with PyTorch's fan_in of the
 * transposed weight, its dim 1 times the kernel: out_channels/groups * kh * kw
 * (kaiming_uniform_(a=sqrt(5)) and the bias rule). Its forward takes
 * PyTorch's optional output_size, which picks output_padding
 * (ConvTranspose2d._output_padding). */
#include "nn/layer_util.h"
#include "nn/module_internal.h"
#include "nn/nn_util.h"

#include <math.h>

typedef struct conv_transpose2d_ctx {
    nb_conv_transpose2d_params p;
    int64_t kh, kw;
    nb_tensor *weight, *bias; /* borrowed from the module; bias may be NULL */
} conv_transpose2d_ctx;

static nb_tensor *conv_transpose2d_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const conv_transpose2d_ctx *c = ctx;
    return nb_conv_transpose2d(x, c->weight, c->bias, &c->p);
}

/* nn.ConvTranspose2d's constructor checks, with its messages (padding mode,
 * then _ConvNd's), then the op's own checks of the parameters. */
static bool conv_transpose2d_module_check(int64_t in, int64_t out, int64_t kh, int64_t kw,
                                          const nb_conv_transpose2d_params *p) {
    const char *op = "ConvTranspose2d";
    if (p->padding_mode != NB_PAD_ZEROS)
        return nbi_error(NB_ERR_ARG, "%s: Only \"zeros\" padding mode is supported for ConvTranspose2d", op), false;
    if (!nbi_conv_module_check(op, in, out, kh, kw, p->groups)) return false;
    return nbi_conv_transpose2d_check_params(op, p);
}

nb_module *nb_conv_transpose2d_module(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                                      const nb_conv_transpose2d_params *p, bool bias, nb_rng *rng) {
    const char *name = "ConvTranspose2d";
    const nb_conv_transpose2d_params prm = p ? *p : nb_conv_transpose2d_defaults();
    if (!conv_transpose2d_module_check(in_channels, out_channels, kh, kw, &prm)) return NULL;
    /* every product below is bounded by the weight's shape, which nb_rand_uniform checks */
    conv_transpose2d_ctx *c = nbi_layer_ctx(name, sizeof *c);
    nb_module *m = nbi_layer_new(name, conv_transpose2d_forward, c);
    if (!m) return NULL;
    c->p = prm;
    c->kh = kh;
    c->kw = kw;
    const int64_t og = out_channels / prm.groups;
    const double bound = 1.0 / sqrt((double)og * (double)kh * (double)kw);
    c->weight = nbi_layer_uniform(m, "weight", rng, NB_SHAPE(in_channels, og, kh, kw), bound);
    if (!c->weight) goto fail;
    if (bias && !(c->bias = nbi_layer_uniform(m, "bias", rng, NB_SHAPE(out_channels), bound))) goto fail;
    return m;
fail:
    nb_module_free(m);
    return NULL;
}

/* ConvTranspose2d._output_padding: output_size ([h, w], or with the input's
 * leading dims) against the sizes without output_padding, min, and min +
 * stride - 1; *op = output_size - min. The input has 3 or 4 dims. */
static bool output_padding_from_size(const char *name, const nb_tensor *x, const conv_transpose2d_ctx *c,
                                     const int64_t *output_size, int n, int64_t op[2]) {
    const int lead = x->ndim - 2; /* the non-spatial dims */
    if (n == lead + 2) output_size += lead, n = 2;
    if (n != 2) {
        nbi_error(NB_ERR_ARG, "%s: for %dD input, output_size must have 2 or %d elements (got %d)", name, x->ndim,
                  lead + 2, n);
        return false;
    }
    const int64_t k[2] = {c->kh, c->kw}, *in = x->shape + x->ndim - 2;
    int64_t lo[2], hi[2];
    for (int d = 0; d < 2; d++) {
        const __int128 mn = (__int128)(in[d] - 1) * c->p.stride[d] - 2 * (__int128)c->p.padding[d] +
                            (__int128)c->p.dilation[d] * (k[d] - 1) + 1,
                       mx = mn + c->p.stride[d] - 1;
        if (mn < INT64_MIN || mx > INT64_MAX) {
            nbi_error(NB_ERR_ARG, "%s: the valid output sizes for an input of %lld overflow int64 (stride %lld, "
                      "padding %lld, dilation %lld)", name, (long long)in[d], (long long)c->p.stride[d],
                      (long long)c->p.padding[d], (long long)c->p.dilation[d]);
            return false;
        }
        lo[d] = (int64_t)mn, hi[d] = (int64_t)mx;
    }
    for (int d = 0; d < 2; d++)
        if (output_size[d] < lo[d] || output_size[d] > hi[d]) {
            nbi_error(NB_ERR_SHAPE, "%s: requested an output size of [%lld, %lld], but valid sizes range from [%lld, "
                      "%lld] to [%lld, %lld] (for an input of [%lld, %lld])", name, (long long)output_size[0],
                      (long long)output_size[1], (long long)lo[0], (long long)lo[1], (long long)hi[0],
                      (long long)hi[1], (long long)in[0], (long long)in[1]);
            return false;
        }
    op[0] = output_size[0] - lo[0], op[1] = output_size[1] - lo[1];
    return true;
}

nb_tensor *nb_conv_transpose2d_module_forward(nb_module *m, const nb_tensor *x, const int64_t *output_size,
                                              int output_size_len) {
    if (!m) {
        nbi_null_arg("conv_transpose2d_module_forward", "module");
        return NULL;
    }
    if (m->forward != conv_transpose2d_forward) {
        nbi_error(NB_ERR_ARG, "conv_transpose2d_module_forward: the module is a %s, not a ConvTranspose2d", m->type);
        return NULL;
    }
    const conv_transpose2d_ctx *c = m->ctx;
    nb_conv_transpose2d_params p = c->p;
    /* An input the op rejects anyway (NULL, wrong rank) gets the op's message. */
    if (output_size && x && (x->ndim == 3 || x->ndim == 4) &&
        !output_padding_from_size(m->type, x, c, output_size, output_size_len, p.output_padding))
        return NULL;
    return nb_conv_transpose2d(x, c->weight, c->bias, &p);
}
