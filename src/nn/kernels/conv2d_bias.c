/* Conv2d's float32 bias gradient (nn_kernels.h), compiled once per kernel set
 * (tensor/cpu.h). db[o] = sum over n and l of dy[n, o, l]: one thread per
 * channel, in double so that float32 does not lose the small terms. Each
 * channel sums into BIAS_LANES partial sums, lane k taking the elements at
 * l = k mod BIAS_LANES of every row (a row's tail to lanes 0, 1, ...), and
 * the lanes are added in order at the end. That order is fixed whatever the
 * vector width: a set only changes how many lanes one instruction adds, and
 * no operation is reassociated, so every set gives the same bits (and a
 * thread count cannot change them). With four partial sums per row, added
 * one after another, this was ~6% of an MNIST step (latency-bound scalar
 * adds); 16 lanes keep it at memory speed. The plain reference is
 * conv2d_ref.c's nbi_conv2d_ref_db. */
#include "nn/nn_kernels.h"
#include "tensor/cpu.h"
#include "tensor/internal.h"

#define BIAS_LANES 16

static void grad_f32(float *db, const float *dy, int64_t N, int64_t O, int64_t L) {
#pragma omp parallel for schedule(static) if (N * O * L > NBI_PAR_MIN)
    for (int64_t o = 0; o < O; o++) {
        double acc[BIAS_LANES] = {0}; /* the compiler keeps these in vector registers */
        for (int64_t n = 0; n < N; n++) {
            const float *r = dy + (n * O + o) * L;
            int64_t l = 0;
            for (; l + BIAS_LANES <= L; l += BIAS_LANES)
                for (int k = 0; k < BIAS_LANES; k++) acc[k] += r[l + k];
            for (int k = 0; l < L; l++, k++) acc[k] += r[l];
        }
        double s = 0;
        for (int k = 0; k < BIAS_LANES; k++) s += acc[k];
        db[o] = (float)s;
    }
}

/* dm a row at a time, then grad_f32's loops over the row (in L1). (One
 * loop that wrote and summed each element was miscompiled by GCC 12 with
 * -O3 -mavx2 -mfma -fno-trapping-math: elements with y = 1 came out 0.) */
static void relu_grad_f32(float *dm, float *db, const float *dy, const float *y, int64_t N, int64_t O, int64_t L) {
#pragma omp parallel for schedule(static) if (N * O * L > NBI_PAR_MIN)
    for (int64_t o = 0; o < O; o++) {
        double acc[BIAS_LANES] = {0};
        for (int64_t n = 0; n < N; n++) {
            const int64_t e = (n * O + o) * L;
            const float *g = dy + e, *s = y + e;
            float *r = dm + e;
            for (int64_t l = 0; l < L; l++) r[l] = s[l] <= 0 ? 0.0f : g[l]; /* nb_relu's rule */
            if (!db) continue;
            int64_t l = 0;
            for (; l + BIAS_LANES <= L; l += BIAS_LANES)
                for (int k = 0; k < BIAS_LANES; k++) acc[k] += r[l + k];
            for (int k = 0; l < L; l++, k++) acc[k] += r[l];
        }
        if (!db) continue;
        double t = 0;
        for (int k = 0; k < BIAS_LANES; k++) t += acc[k];
        db[o] = (float)t;
    }
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_bias_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_bias_avx2
#else
#define THIS_SET nbi_conv2d_bias_portable
#endif
const nbi_conv2d_bias_kernels THIS_SET = {.grad_f32 = grad_f32, .relu_grad_f32 = relu_grad_f32};
