/* nb_conv2d_pool_relu: conv2d, then max_pool2d(2), then relu, as one op
 * where the convolution's algorithm can pool its output tiles as it writes
 * them (forward_pool in conv_internal.h): the full-size output is never
 * stored, nor its gradient, which the kernel rebuilds a few rows at a time
 * from the pooled gradient and the winning taps. conv2d then relu alone is
 * one op for any float32 conv (rectified in the algorithm's stores where it
 * has forward_relu, else in place). Anything else runs the ops one after
 * the other, which is also what the one op must equal bit for bit
 * (tests/test_conv2d_pool.c). */
#include "nabla/conv.h"
#include "nabla/ops.h"
#include "nn/conv_internal.h"

/* max_pool2d's parameters are the plain 2x2 window, stride 2 (F.max_pool2d(x, 2)) */
static bool pool_is_plain_2x2(const nb_pool2d_params *p) {
    for (int d = 0; d < 2; d++)
        if (p->kernel[d] != 2 || (p->stride[d] != 0 && p->stride[d] != 2) || p->padding[d] != 0 ||
            (p->dilation[d] != 0 && p->dilation[d] != 1))
            return false;
    return !p->ceil_mode;
}

/* ---- autograd: ctx as below; saved: input, weight (contiguous) and, when
 * pooling, the taps; node->out, the output, gives relu's gradient ---- */
typedef struct {
    nbi_conv_geom g;
    nbi_conv_algo algo; /* the algorithm that pools (pool) */
    bool pool, relu;
} conv_pool_ctx;

static nb_status conv2d_pool_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const conv_pool_ctx *c = node->ctx;
    const nb_tensor *x = node->saved[0], *w = node->saved[1];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    if (!c->pool) /* conv -> relu: relu's gradient, then the conv's */
        return nbi_conv2d_relu_backward_f32(nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]),
                                            nbi_data_or_null(gin[2]), nbi_data(gout), nbi_data(node->out),
                                            nbi_data(x), nbi_data(w), &c->g);
    return nbi_conv2d_pool_backward_f32(c->algo, nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]),
                                        nbi_data_or_null(gin[2]), nbi_data(gout), nbi_data(node->saved[2]),
                                        c->relu ? nbi_data(node->out) : NULL, nbi_data(x), nbi_data(w), &c->g);
}

static const nbi_op conv2d_pool_op = {"conv2d_pool_relu", conv2d_pool_grad_fn, NULL};
static const nbi_op conv2d_relu_op = {"conv2d_relu", conv2d_pool_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
static nb_tensor *conv2d_pool_run(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                                  const conv_pool_ctx *c) {
    const nbi_conv_geom *g = &c->g;
    const int64_t shape[4] = {g->N, g->O, c->pool ? g->Ho / 2 : g->Ho, c->pool ? g->Wo / 2 : g->Wo};
    const bool unbatched = input->ndim == 3;
    nb_tensor *xc = nbi_contiguous_data(input), *wc = xc ? nbi_contiguous_data(weight) : NULL;
    nb_tensor *bc = wc && bias ? nbi_contiguous_data(bias) : NULL;
    const bool args = wc && (bc || !bias);
    nb_tensor *tap = args && c->pool ? nbi_empty_bytes("conv2d_pool_relu", nbi_numel(4, shape)) : NULL;
    nb_tensor *y = args && (tap || !c->pool) ? nbi_empty(NB_F32, unbatched ? 3 : 4, unbatched ? shape + 1 : shape)
                                             : NULL;
    const float *x = y ? nbi_data(xc) : NULL, *w = y ? nbi_data(wc) : NULL, *b = nbi_data_or_null(bc);
    const nb_status st = !y       ? NB_OK
                         : c->pool ? nbi_conv2d_pool_forward_f32(c->algo, nbi_data(y), nbi_data(tap), x, w, b, g,
                                                                 c->relu)
                                   : nbi_conv2d_forward_relu_f32(nbi_data(y), x, w, b, g);
    if (st != NB_OK) {
        nbi_release(y);
        y = NULL;
    }
    nbi_release(bc);
    const nb_tensor *in[3] = {input, weight, bias};
    if (!c->pool) return nbi_finish_op(y, &conv2d_relu_op, in, bias ? 3 : 2, NBI_SAVED(xc, wc), c, sizeof *c);
    return nbi_finish_op(y, &conv2d_pool_op, in, bias ? 3 : 2, NBI_SAVED(xc, wc, tap), c, sizeof *c);
}

/* The three ops one after the other. */
static nb_tensor *conv2d_pool_composed(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                                       const nb_conv2d_params *p, const nb_pool2d_params *pool, bool relu) {
    nb_tensor *y = nbi_own(nb_conv2d(input, weight, bias, p));
    if (y && pool) {
        nb_tensor *m = nbi_own(nb_max_pool2d(y, pool));
        nbi_release(y);
        y = m;
    }
    if (y && relu) {
        nb_tensor *r = nbi_own(nb_relu(y));
        nbi_release(y);
        y = r;
    }
    return nbi_give(y);
}

nb_tensor *nb_conv2d_pool_relu(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                               const nb_conv2d_params *p, const nb_pool2d_params *pool, bool relu) {
    nbi_conv2d_call call;
    if (!nbi_conv2d_check(input, weight, bias, p, &call)) return NULL;
    conv_pool_ctx c = {.g = call.g, .algo = NBI_CONV_AUTO, .pool = pool != NULL, .relu = relu};
    bool one_op = !call.pad_first && input->dtype == NB_F32;
    if (one_op && pool) { /* pooling needs an algorithm that pools its tiles */
        if (pool_is_plain_2x2(pool)) c.algo = nbi_conv2d_pool_algo(&call.g, input->dtype);
        one_op = c.algo != NBI_CONV_AUTO;
    } else if (one_op) { /* relu alone: any float32 conv */
        one_op = relu;
    }
    if (!one_op) return conv2d_pool_composed(input, weight, bias, p, pool, relu);
    return conv2d_pool_run(input, weight, bias, &c);
}
