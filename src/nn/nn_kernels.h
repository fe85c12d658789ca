/* Private to src/nn: small float32 loops of the layers, one table per kernel
 * set (src/nn/kernels/, see tensor/cpu.h), so that they use the widest vectors
 * the CPU has. The layer files keep the plain loops these follow (the float64
 * path, or the statement the kernel repeats). */
#ifndef NABLA_NN_KERNELS_H
#define NABLA_NN_KERNELS_H

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
} nbi_conv2d_bias_kernels;
extern const nbi_conv2d_bias_kernels nbi_conv2d_bias_portable, nbi_conv2d_bias_avx2, nbi_conv2d_bias_avx512;

#endif
