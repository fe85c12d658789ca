/* float32 optimizer updates (optim_kernels.h), compiled once per kernel set
 * (tensor/cpu.h). The same statements, in the same order, as the reference
 * loops in sgd.c, adam.c and adadelta.c. */
#include "optim/optim_kernels.h"
#include "tensor/cpu.h"
#include "tensor/internal.h"

#include <math.h>

static void sgd_f32(int64_t n, float *pd, const float *gd, float *buf, const nbi_sgd_f32 *h) {
    const float wd = h->wd, mom = h->mom, damp1 = h->damp1, neglr = h->neglr;
    const bool use_wd = h->use_wd, nesterov = h->nesterov, maximize = h->maximize, first = h->first;
#pragma omp parallel for schedule(static) if (n > NBI_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = maximize ? -gd[i] : gd[i];
        if (use_wd) d = d + wd * pd[i];
        if (buf) {
            float b;
            if (first) {
                b = d;
            } else {
                b = buf[i] * mom;
                b = b + damp1 * d;
            }
            buf[i] = b;
            d = nesterov ? d + mom * b : b;
        }
        pd[i] = pd[i] + neglr * d;
    }
}

static void adam_f32(int64_t n, float *pd, const float *gd, float *m, float *v, float *vmax, const nbi_adam_f32 *h) {
    const float b1 = h->b1, omb1 = h->omb1, b2 = h->b2, omb2 = h->omb2, wd = h->wd, decay = h->decay;
    const float eps = h->eps, bc2s = h->bc2s, negstep = h->negstep;
    const bool use_wd = h->use_wd, maximize = h->maximize, decoupled = h->decoupled;
#pragma omp parallel for schedule(static) if (n > NBI_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = maximize ? -gd[i] : gd[i];
        float pi = pd[i];
        if (decoupled) pi = pi * decay;
        else if (use_wd) gi = gi + wd * pi;
        float mi = m[i] * b1;
        mi = mi + omb1 * gi;
        float vi = v[i] * b2;
        vi = vi + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float den = vi;
        if (vmax) { /* torch.maximum: NaN propagates */
            float mx = vmax[i];
            mx = (isnan(mx) || mx > vi) ? mx : vi;
            vmax[i] = mx;
            den = mx;
        }
        den = sqrtf(den); /* correctly rounded, as the reference's (float)sqrt((double)den) */
        den = den / bc2s;
        den = den + eps;
        pd[i] = pi + negstep * mi / den;
    }
}

static void adadelta_f32(int64_t n, float *pd, const float *gd, float *sq, float *acc, const nbi_adadelta_f32 *h) {
    const float rho = h->rho, omrho = h->omrho, eps = h->eps, wd = h->wd, neglr = h->neglr;
    const bool use_wd = h->use_wd, maximize = h->maximize;
#pragma omp parallel for schedule(static) if (n > NBI_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = maximize ? -gd[i] : gd[i];
        if (use_wd) gi = gi + wd * pd[i];
        float s = sq[i] * rho;
        s = s + omrho * gi * gi;
        sq[i] = s;
        float std = s + eps;
        std = sqrtf(std);
        float delta = acc[i] + eps;
        delta = sqrtf(delta);
        delta = delta / std;
        delta = delta * gi;
        float ac = acc[i] * rho;
        acc[i] = ac + omrho * delta * delta;
        pd[i] = pd[i] + neglr * delta;
    }
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_optim_f32_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_optim_f32_avx2
#else
#define THIS_SET nbi_optim_f32_portable
#endif
const nbi_optim_f32_kernels THIS_SET = {sgd_f32, adam_f32, adadelta_f32};
