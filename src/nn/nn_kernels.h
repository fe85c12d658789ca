/* Private to src/nn: small float32 loops of the layers, one table per kernel
 * set (src/nn/kernels/, see tensor/cpu.h), so that they use the widest vectors
 * the CPU has. The layer files keep the plain loops these follow (the float64
 * path, or the statement the kernel repeats). */
#ifndef NABLA_NN_KERNELS_H
#define NABLA_NN_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* Dropout (dropout.c), forward and backward alike: out[i] = in[i] * (mask[i] ? scale : 0). */
typedef struct nbi_dropout_f32_kernels {
    // out: (n), in: (n), mask: (n)
    void (*apply)(float *out, const float *in, const uint8_t *mask, int64_t n, float scale);
} nbi_dropout_f32_kernels;
extern const nbi_dropout_f32_kernels nbi_dropout_f32_portable, nbi_dropout_f32_avx2, nbi_dropout_f32_avx512;

/* Conv2d's bias gradient (conv2d_algo.c): db[o] = sum over n and l of dy[n, o, l]. */
typedef struct nbi_conv2d_bias_kernels {
    // db: (O), dy: (N, O, L)
    void (*grad_f32)(float *db, const float *dy, int64_t N, int64_t O, int64_t L);
    /* dm <- relu's gradient of dy (nb_relu's rule: 0 where y <= 0) and, if db
     * is not NULL, db <- grad_f32 of dm (the same bits), in one pass. */
    // dm, dy, y: (N, O, L), db: (O)
    void (*relu_grad_f32)(float *dm, float *db, const float *dy, const float *y, int64_t N, int64_t O, int64_t L);
} nbi_conv2d_bias_kernels;
extern const nbi_conv2d_bias_kernels nbi_conv2d_bias_portable, nbi_conv2d_bias_avx2, nbi_conv2d_bias_avx512;

/* F.max_pool2d(x, 2) (pool.c): window maxima and winning taps (0..3 in kh, kw order), and the gradient. */
typedef struct nbi_maxpool2x2_kernels {
    // y: (planes, OH, OW), tap: (planes, OH, OW), x: (planes, H, W)
    void (*forward_f32)(float *y, uint8_t *tap, const float *x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW);
    // dx: (planes, H, W), dy: (planes, OH, OW), tap: (planes, OH, OW)
    void (*backward_f32)(float *dx, const float *dy, const uint8_t *tap, int64_t planes, int64_t H, int64_t W,
                         int64_t OH, int64_t OW);
    /* One output row of each from input rows r0, r1 (2*OW columns): the rows
     * the two above are made of, for conv2d's fused pooling (conv2d_winograd4.c);
     * with relu, y then gets nb_relu's rule (y < 0 ? 0 : y). */
    void (*pool_row_f32)(float *y, uint8_t *t, const float *r0, const float *r1, int64_t OW, bool relu);
    void (*unpool_row_f32)(float *r0, float *r1, const float *dy, const uint8_t *t, int64_t OW);
} nbi_maxpool2x2_kernels;
extern const nbi_maxpool2x2_kernels nbi_maxpool2x2_portable, nbi_maxpool2x2_avx2, nbi_maxpool2x2_avx512;

#endif
