/* Helpers shared by the elementwise op files (ops_binary.c, ops_scalar.c,
 * ops_unary.c): the input check, the flat parallel maps their kernels are
 * made of, and float32 e^x and tanh. */
#ifndef NABLA_ELEMENTWISE_H
#define NABLA_ELEMENTWISE_H

#include "internal.h"

#include <string.h>

/* Fixed number of elements per OpenMP work item in elementwise loops: the
 * partition depends only on the size, never on the thread count. */
#define NBI_EW_CHUNK 16384

/* Check a float input of a one-input op (NULL, integer dtype). */
static inline bool nbi_ew_check_input(const char *op, const nb_tensor *a) {
    if (!nbi_check_tensor(op, "input", a)) return false;
    if (a->dtype != NB_F32 && a->dtype != NB_F64) {
        nbi_error(NB_ERR_DTYPE, "%s: expected a float32 or float64 tensor, but got %s (integer tensors are not supported)",
                  op, nb_dtype_name(a->dtype));
        return false;
    }
    return true;
}

/* Flat parallel maps over contiguous buffers, for use inside NBI_DISPATCH_FLOAT
 * with T, n (element count) and o (output pointer) in scope.
 * NBI_EW_MAP1: o[i] = EXPR of x = in[i] (x may go unused).
 * NBI_EW_MAP2: o[i] = EXPR of g = gp[i] and s = sp[i] (s may go unused). */
#define NBI_EW_MAP1(EXPR)                                                       \
    do {                                                                        \
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")       \
        for (int64_t i = 0; i < n; i++) {                                       \
            const T x = in[i];                                                  \
            (void)x;                                                            \
            o[i] = (EXPR);                                                      \
        }                                                                       \
    } while (0)
#define NBI_EW_MAP2(EXPR)                                                       \
    do {                                                                        \
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")       \
        for (int64_t i = 0; i < n; i++) {                                       \
            const T g = gp[i], s = sp[i];                                       \
            (void)s;                                                            \
            o[i] = (EXPR);                                                      \
        }                                                                       \
    } while (0)

/* float32 e^x and tanh x without libm calls, so that loops over them
 * vectorise (glibc's expf/tanhf are scalar calls, 5-20 ns an element).
 * Cephes' single-precision algorithms: e^x = 2^n * e^r with |r| <= ln2/2 and
 * a degree-7 polynomial for e^r (relative error below 2e-7, about 2 ulp);
 * tanh from a polynomial below |x| = 0.625 (no cancellation near 0) and
 * 1 - 2 / (e^2|x| + 1) above. Overflow gives inf, underflow denormals then 0,
 * NaN stays NaN. Branch-free so that GCC if-converts the loops. */
static inline float nbi_expf(float x) {
    /* Clamp first (NaN -> lo: the float-to-int conversion below must see a
     * number); beyond the clamp the scaling over/underflows to inf/0 anyway. */
    float xc = x >= -104.0f ? (x <= 89.0f ? x : 89.0f) : -104.0f;
    /* n = round(x / ln2) by the 1.5 * 2^23 trick: exact, no libm call */
    float fn = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - fn * 0.693359375f - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n in two factors so that n in [-150, 128] stays representable */
    int32_t n = (int32_t)fn, n1 = n / 2, n2 = n - n1;
    int32_t b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    float y = p * s1 * s2;
    return x != x ? x : y;
}

static inline float nbi_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
                   3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (nbi_expf(2.0f * ax) + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : (x != x ? x : big);
}

#endif
