/* Small helpers shared by the ops of nabla/functional.h and nabla/conv.h (the
 * files of src/nn), and the parameter checks an op shares with its module's
 * constructor (src/nn/layers.c). Private to src/nn. */
#ifndef NABLA_NN_UTIL_H
#define NABLA_NN_UTIL_H

#include "nabla/conv.h"
#include "nabla/functional.h"
#include "tensor/internal.h"

#include <stdlib.h>

/* malloc that leaves an error naming op on failure. */
static inline void *nnu_alloc(const char *op, size_t n) {
    void *p = nbi_alloc_should_fail() ? NULL : calloc(1, n ? n : 1); /* tests can force failures */
    if (!p) nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    return p;
}

/* The end of an op with a second, int64 result (the winners of a max pool):
 * after y = nbi_finish_op(...), hand idx (a library reference) out through
 * *out when y exists and out is not NULL, else release it; returns y. */
static inline nb_tensor *nnu_give_second(nb_tensor *y, nb_tensor *idx, nb_tensor **out) {
    if (y && out) *out = nbi_give(idx);
    else nbi_release(idx);
    return y;
}

/* ---- parameter checks shared by an op and its module ----
 * Each reports with op's name ("dropout" from the op, "Dropout" from the
 * module) and the op's words, and returns false on a bad value. */
/* 0 <= p <= 1 (dropout.c). */
bool nbi_dropout_check_p(const char *op, double p);
/* Everything of nb_pool2d_params but the input: stride, padding (at most half
 * the kernel), kernel, dilation (max pooling only), in PyTorch's order (pool.c). */
bool nbi_pool2d_check_params(const char *op, const nb_pool2d_params *p, bool is_max);
/* kernel > 0, stride > 0 (0: the kernel), padding >= 0 of max_unpool2d (unpool.c). */
bool nbi_max_unpool2d_check_params(const char *op, const nb_pool2d_params *p);
/* size xor scale_factor, the mode, align_corners only for bilinear,
 * recompute_scale_factor only with a scale (upsample.c). */
bool nbi_interpolate_check_params(const char *op, const nb_interpolate_params *p);
/* padding_idx within [-num, num) or NB_NO_PADDING_IDX; *resolved in [0, num) or -1 (embedding.c). */
bool nbi_embedding_check_padding_idx(const char *op, int64_t padding_idx, int64_t num, int64_t *resolved);
/* Everything of nb_conv2d_params: padding kind and mode, groups, stride,
 * dilation, explicit padding, 'same' with a stride, in F.conv2d's order (conv2d.c). */
bool nbi_conv2d_check_params(const char *op, const nb_conv2d_params *p);
/* Everything of nb_conv_transpose2d_params but output_padding's bound (which
 * nn.ConvTranspose2d checks only when its forward uses it): padding mode,
 * groups, padding, output_padding, stride, dilation (conv_transpose2d.c). */
bool nbi_conv_transpose2d_check_params(const char *op, const nb_conv_transpose2d_params *p);

/* A finite value for an activation's parameter `name` (ELU's alpha,
 * Softplus's beta and threshold), and GELU's approximate (activation_pointwise.c). */
bool nbi_activation_check_param(const char *op, const char *name, double value);
bool nbi_gelu_check_approximate(const char *op, nb_gelu_approximate approximate);

/* ---- kernels shared by the pools (pool.c) ----
 * dx[pl][idx[pl][o]] += dy[pl][o] for every plane pl, dx zeroed first (the
 * backward of a max pool given its winners' flat in-plane indices; an index
 * of -1 is skipped). One thread per plane, outputs in order: deterministic. */
// dx: (planes, plane_in), dy: (planes, plane_out), idx: (planes, plane_out)
void nbi_pool_scatter_add(nb_dtype dtype, void *dx, const void *dy, const int64_t *idx, int64_t planes,
                          int64_t plane_in, int64_t plane_out);

/* "[2, 3]" for t's shape, into buf. */
static inline const char *nnu_shape(const nb_tensor *t, char *buf, size_t size) {
    return nb_shape_str(t->ndim, t->shape, buf, size);
}

#endif
