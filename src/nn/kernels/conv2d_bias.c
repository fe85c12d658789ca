/* Conv2d's float32 bias gradient (nn_kernels.h), compiled once per kernel set
 * (tensor/cpu.h). db[o] = sum over n and l of dy[n, o, l]: one thread per
 * channel, in a fixed order (four interleaved partial sums per row, so the
 * adds can overlap), in double so that float32 does not lose the small terms.
 * No operation is reassociated, so every set gives the same bits. The plain
 * reference is conv2d_ref.c's nbi_conv2d_ref_db. */
#include "nn/nn_kernels.h"
#include "tensor/cpu.h"
#include "tensor/internal.h"

static void grad_f32(float *db, const float *dy, int64_t N, int64_t O, int64_t L) {
#pragma omp parallel for schedule(static) if (N * O * L > NBI_PAR_MIN)
    for (int64_t o = 0; o < O; o++) {
        double s = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *r = dy + (n * O + o) * L;
            double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            int64_t l = 0;
            for (; l + 4 <= L; l += 4) {
                a0 += r[l];
                a1 += r[l + 1];
                a2 += r[l + 2];
                a3 += r[l + 3];
            }
            for (; l < L; l++) a0 += r[l];
            s += (a0 + a1) + (a2 + a3);
        }
        db[o] = (float)s;
    }
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_bias_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_bias_avx2
#else
#define THIS_SET nbi_conv2d_bias_portable
#endif
const nbi_conv2d_bias_kernels THIS_SET = {grad_f32};
