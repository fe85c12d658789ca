/* Private: the unary elementwise ops (ops_unary.c) and their float32 kernels,
 * one table per kernel set (kernels/unary_f32.c, see cpu.h). The float64 loops
 * in ops_unary.c are the plain reference the float32 kernels follow. */
#ifndef NABLA_UNARY_H
#define NABLA_UNARY_H

#include <stdint.h>

typedef enum { NBI_UN_NEG, NBI_UN_EXP, NBI_UN_LOG, NBI_UN_SQRT, NBI_UN_RELU, NBI_UN_SIGMOID, NBI_UN_TANH, NBI_UN_ABS } nbi_unary_kind;

typedef struct nbi_unary_f32_kernels {
    // out: (n), inp: (n)
    void (*forward)(nbi_unary_kind kind, float *out, const float *inp, int64_t n);
    // dx: (n), dy: (n), saved: (n) (the output; the input for log and abs; unused for neg)
    void (*backward)(nbi_unary_kind kind, float *dx, const float *dy, const float *saved, int64_t n);
} nbi_unary_f32_kernels;

extern const nbi_unary_f32_kernels nbi_unary_f32_portable, nbi_unary_f32_avx2, nbi_unary_f32_avx512;

#endif
