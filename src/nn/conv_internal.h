/* Private to src/nn: the resolved geometry of one 2-D convolution and the
 * im2col + GEMM kernels that compute it (conv2d_kernels.c), shared by the
 * differentiable op in conv2d.c. */
#ifndef NABLA_CONV_INTERNAL_H
#define NABLA_CONV_INTERNAL_H

#include "tensor/internal.h"

/* Every size a kernel needs, after padding strings and defaults are resolved.
 * Padding may be asymmetric (padding='same' with an even dilated extent). */
typedef struct nbi_conv_geom {
    int64_t N, C, H, W;          /* input */
    int64_t O, kh, kw;           /* weight: (O, C/groups, kh, kw) */
    int64_t sh, sw;              /* stride */
    int64_t pt, pb, pl, pr;      /* zero padding: top, bottom, left, right */
    int64_t dh, dw;              /* dilation */
    int64_t groups;
    int64_t Ho, Wo;              /* output */
} nbi_conv_geom;

/* y: (N, O, Ho, Wo) <- conv(x: (N, C, H, W), w: (O, C/g, kh, kw)) + b: (O) or NULL.
 * All buffers contiguous. NB_ERR_NOMEM (with a message) if scratch fails. */
nb_status nbi_conv2d_forward_f32(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g);
nb_status nbi_conv2d_forward_f64(double *y, const double *x, const double *w, const double *b, const nbi_conv_geom *g);

/* Gradients from dy: (N, O, Ho, Wo). Each of dx: (N, C, H, W), dw: (O, C/g, kh, kw),
 * db: (O) may be NULL when not wanted; those given are overwritten. */
nb_status nbi_conv2d_backward_f32(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                  const nbi_conv_geom *g);
nb_status nbi_conv2d_backward_f64(double *dx, double *dw, double *db, const double *dy, const double *x,
                                  const double *w, const nbi_conv_geom *g);

/* Output columns [lo, hi) whose input column ow*s + off lies in [0, W). */
static inline void nbi_conv_valid_range(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : -off / s + (-off % s != 0); /* ceil without -off + s - 1: s may be huge */
    int64_t h = W - 1 - off < 0 ? 0 : (W - 1 - off) / s + 1;
    if (l > Wo) l = Wo;
    if (h > Wo) h = Wo;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* ---- implicit GEMM, float32 (conv2d_implicit.c) ----
 * The im2col matrix is never built: the GEMM's B panels are packed straight
 * from the input (nbi_sgemm_packed). For every float conv that is neither
 * 1x1 pointwise nor depthwise. */

/* y: (N, O, Ho, Wo) <- conv(x, w) + b (b may be NULL), as nbi_conv2d_forward_f32. */
nb_status nbi_conv2d_forward_implicit(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g);
/* dw: (O, C/g, kh, kw) <- the weight gradient, one GEMM over the whole batch
 * per group (K = N*Ho*Wo), its threads splitting dw's tiles. */
nb_status nbi_conv2d_dw_implicit(float *dw, const float *dy, const float *x, const nbi_conv_geom *g);
/* Whether dx can be computed as a stride-1 convolution of dy with the
 * flipped, transposed weight (and is worth it: enough input channels). */
bool nbi_conv2d_dx_implicit_ok(const nbi_conv_geom *g);
/* dx: (N, C, H, W) <- the input gradient that way; needs nbi_conv2d_dx_implicit_ok. */
nb_status nbi_conv2d_dx_implicit(float *dx, const float *dy, const float *w, const nbi_conv_geom *g);

#endif
