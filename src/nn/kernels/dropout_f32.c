/* Dropout's float32 apply (nn_kernels.h), compiled once per kernel set
 * (tensor/cpu.h); the same statement as dropout.c's float64 loop. */
#include "nn/nn_kernels.h"
#include "tensor/cpu.h"
#include "tensor/internal.h"

static void apply_f32(float *out, const float *in, const uint8_t *mask, int64_t n, float scale) {
#pragma omp parallel for schedule(static) if (n > NBI_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = in[i] * (mask[i] ? scale : 0.0f); /* x * 0 as PyTorch: NaN stays NaN */
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_dropout_f32_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_dropout_f32_avx2
#else
#define THIS_SET nbi_dropout_f32_portable
#endif
const nbi_dropout_f32_kernels THIS_SET = {apply_f32};
