/* float32 log, log1p, expm1 and erf without libm calls, so that loops over
 * them vectorise (nbi_expf and nbi_tanhf are in elementwise.h), and the
 * type-generic NBI_T_* forms kernels use inside NBI_DISPATCH_FLOAT: the fast
 * float32 function for T = float, libm for T = double (the reference the
 * float32 versions are tested against, tests/test_activations.c).
 *
 * Branch-free (selects between values computed beforehand, no early
 * returns) so that GCC if-converts the loops; special values (NaN, +-inf, 0,
 * subnormals) give libm's results. Kernels using them follow the same rule:
 * both arms of a select computed first. */
#ifndef NABLA_FASTMATH_H
#define NABLA_FASTMATH_H

#include "elementwise.h"

#include <math.h>

/* ln x: Cephes' logf, x = 2^e * (1 + m) with m in [sqrt(1/2) - 1, sqrt(2) - 1)
 * and a degree-9 polynomial for ln(1 + m) (about 1 ulp). Subnormals are
 * scaled by 2^25 first. */
static inline float nbi_logf(float x) {
    /* Both arms of every select are computed first: GCC does not speculate
     * float arithmetic into a select (it may trap), and branches would stop
     * the loops from vectorising. */
    const bool sub = x < 1.17549435e-38f; /* also 0, negatives and -inf: replaced below */
    const float scaled = x * 33554432.0f, xs = sub ? scaled : x;
    int32_t ix;
    memcpy(&ix, &xs, 4);
    int32_t im = (ix & 0x007fffff) | 0x3f000000; /* the mantissa as a float in [0.5, 1) */
    float m;
    memcpy(&m, &im, 4);
    const bool lo = m < 0.707106781186547524f;
    float e = (float)(((ix >> 23) & 0xff) - 126 - (sub ? 25 : 0));
    e = e - (lo ? 1.0f : 0.0f); /* (one integer select more and GCC branches) */
    const float mlo = m + m - 1.0f, mhi = m - 1.0f;
    m = lo ? mlo : mhi;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z + e * -2.12194440e-4f - 0.5f * z;
    float r = m + y + e * 0.693359375f;
    r = x == 0.0f ? -INFINITY : r;
    r = x < 0.0f ? NAN : r;
    r = x == INFINITY ? x : r;
    return x != x ? x : r;
}

/* ln(1 + x): ln u * x / (u - 1) with u = 1 + x rounded (Goldberg's
 * correction of the rounding of 1 + x), x itself when u == 1. */
static inline float nbi_log1pf(float x) {
    float u = 1.0f + x, d = u - 1.0f;
    float r = nbi_logf(u) * (x / (d == 0.0f ? 1.0f : d));
    r = d == 0.0f ? x : r;
    return u == INFINITY ? u : r;
}

/* e^x - 1: the Taylor polynomial to x^9 / 9! for |x| < 0.5 (no cancellation
 * near 0), e^x - 1 beyond (where e^x - 1 is at least 0.39, a few ulp). */
static inline float nbi_expm1f(float x) {
    float p = 2.75573192e-6f; /* 1/9! */
    p = p * x + 2.48015873e-5f;
    p = p * x + 1.98412698e-4f;
    p = p * x + 1.38888889e-3f;
    p = p * x + 8.33333333e-3f;
    p = p * x + 4.16666667e-2f;
    p = p * x + 1.66666667e-1f;
    p = p * x + 0.5f;
    float small = x + x * x * p;
    float big = nbi_expf(x) - 1.0f;
    return (x > -0.5f && x < 0.5f) ? small : big;
}

/* erf x: Abramowitz and Stegun 7.1.26, the formula of PyTorch's vectorised
 * float32 erf (absolute error below 1e-6, not relative: meant for 1 + erf, as
 * GELU uses it). */
static inline float nbi_erff(float x) {
    float ax = x < 0 ? -x : x;
    float t = 1.0f / (0.3275911f * ax + 1.0f);
    float r = (((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f;
    float y = 1.0f - r * t * nbi_expf(-x * x);
    return x < 0 ? -y : (x != x ? x : y);
}

/* Inside NBI_DISPATCH_FLOAT: the function for T (the dead branch folds away). */
#define NBI_T_FN(f32, f64, x) (sizeof(T) == sizeof(float) ? (T)f32((float)(x)) : (T)f64((double)(x)))
#define NBI_T_EXP(x) NBI_T_FN(nbi_expf, exp, x)
#define NBI_T_EXPM1(x) NBI_T_FN(nbi_expm1f, expm1, x)
#define NBI_T_LOG(x) NBI_T_FN(nbi_logf, log, x)
#define NBI_T_LOG1P(x) NBI_T_FN(nbi_log1pf, log1p, x)
#define NBI_T_ERF(x) NBI_T_FN(nbi_erff, erf, x)
#define NBI_T_TANH(x) NBI_T_FN(nbi_tanhf, tanh, x)

#endif
