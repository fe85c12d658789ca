/* Conv2d kernels: im2col + GEMM forward, and the backward as two GEMMs per
 * item (dW += dY colᵀ, dcol = Wᵀ dY, then col2im). The derivation is in
 * docs/conv2d.md. The body is written once in conv2d_kernels.inc and
 * instantiated here for float and double.
 *
 * Threads: the forward splits the batch (each item's output belongs to one
 * thread); the backward splits the batch into a fixed number of chunks whose
 * weight-gradient partials are added in chunk order. Inside a parallel region
 * the GEMM runs on one thread; with a single item the region is inactive and
 * the GEMM spreads its tiles instead. The GEMM never splits K, so no choice
 * here changes any element's summation order. */
#include "nn/conv_internal.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
static int max_threads(void) { return omp_get_max_threads(); }
static int thread_num(void) { return omp_get_thread_num(); }
#else
static int max_threads(void) { return 1; }
static int thread_num(void) { return 0; }
#endif

/* Upper bound on the batch chunks of the weight gradient, and on the memory
 * their partial sums may take (fewer chunks for very large weights). */
#define MAX_CHUNKS 16
#define PARTIAL_BUDGET ((size_t)64 << 20)

/* A 1x1, stride-1, unpadded conv: the input already is its column matrix. */
static bool is_pointwise(const nbi_conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pb == 0 && g->pl == 0 &&
           g->pr == 0;
}

/* Depthwise (one input channel per group, groups > 1) with a real spatial
 * kernel: the direct loops of conv2d_depthwise.inc. Per group the GEMM would
 * have M = the channel multiplier and K = kh*kw, far too small to pay off
 * (measured on 32x64x56x56, 3x3, pad 1: about 2x faster forward and 5x
 * backward than im2col + the reference GEMM). A 1-channel input with groups 1
 * (MNIST's first layer) stays on the GEMM path, which was faster there: its
 * GEMM has M = O. */
static bool use_direct(const nbi_conv_geom *g) {
    return g->groups > 1 && g->C == g->groups && !is_pointwise(g);
}

#define T float
#define ITYPE int32_t
#define FN(name) name##_f32
#define GEMM nbi_sgemm
#define IMPLICIT 1
#define IS_F32 1
#include "conv2d_depthwise.inc"
#include "conv2d_kernels.inc"
#undef T
#undef ITYPE
#undef FN
#undef GEMM
#undef IMPLICIT
#undef IS_F32

#define T double
#define ITYPE int64_t
#define FN(name) name##_f64
#define GEMM nbi_dgemm
#define IMPLICIT 0
#define IS_F32 0
#include "conv2d_depthwise.inc"
#include "conv2d_kernels.inc"
#undef T
#undef ITYPE
#undef FN
#undef GEMM
#undef IMPLICIT
#undef IS_F32
