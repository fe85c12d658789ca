/* float32 unary elementwise kernels (ops_unary.c), compiled once per kernel
 * set (cpu.h) so that the loops use the widest vectors the CPU has. The same
 * formulas as ops_unary.c's float64 reference loops; each element is computed
 * by one thread, so the thread count never changes the bits. */
#include "tensor/cpu.h"
#include "tensor/elementwise.h"
#include "tensor/unary.h"

#include <math.h>

static void forward_f32(nbi_unary_kind kind, float *o, const float *in, int64_t n) {
    typedef float T;
    switch (kind) {
    case NBI_UN_NEG: NBI_EW_MAP1(-x); break;
    case NBI_UN_EXP: NBI_EW_MAP1(nbi_expf(x)); break;
    case NBI_UN_LOG: NBI_EW_MAP1(logf(x)); break;
    case NBI_UN_SQRT: NBI_EW_MAP1(sqrtf(x)); break;
    /* x < 0 rather than x > 0 so that NaN passes through, as in PyTorch */
    case NBI_UN_RELU: NBI_EW_MAP1(x < 0 ? (T)0 : x); break;
    case NBI_UN_SIGMOID: NBI_EW_MAP1((T)1 / ((T)1 + nbi_expf(-x))); break;
    case NBI_UN_TANH: NBI_EW_MAP1(nbi_tanhf(x)); break;
    case NBI_UN_ABS: NBI_EW_MAP1(fabsf(x)); break;
    }
}

static void backward_f32(nbi_unary_kind kind, float *o, const float *gp, const float *sp, int64_t n) {
    typedef float T;
    switch (kind) {
    case NBI_UN_NEG: NBI_EW_MAP2(-g); break;
    case NBI_UN_EXP: NBI_EW_MAP2(g * s); break;
    case NBI_UN_LOG: NBI_EW_MAP2(g / s); break;
    case NBI_UN_SQRT: NBI_EW_MAP2(g / ((T)2 * s)); break;
    case NBI_UN_RELU: NBI_EW_MAP2(s <= 0 ? (T)0 : g); break; /* threshold_backward: 0 where y <= 0 */
    case NBI_UN_SIGMOID: NBI_EW_MAP2(g * ((T)1 - s) * s); break;
    case NBI_UN_TANH: NBI_EW_MAP2(g * ((T)1 - s * s)); break;
    case NBI_UN_ABS: NBI_EW_MAP2(g * (T)((s > 0) - (s < 0))); break;
    }
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_unary_f32_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_unary_f32_avx2
#else
#define THIS_SET nbi_unary_f32_portable
#endif
const nbi_unary_f32_kernels THIS_SET = {forward_f32, backward_f32};
