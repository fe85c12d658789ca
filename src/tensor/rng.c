/* xoshiro256** seeded by splitmix64; uniform and normal variates.
 * The algorithm is part of the API (nabla/tensor.h): changing it changes
 * every seeded result, so don't. */
#include "internal.h"
#include "rng_next.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void nb_rng_seed(nb_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

uint64_t nb_rng_next(nb_rng *rng) { return nbi_rng_next(rng); }

double nb_rng_uniform(nb_rng *rng) { return nbi_rng_uniform(rng); }

double nb_rng_normal(nb_rng *rng) {
    /* Box-Muller, one variate per call (no cached second value, so the state
     * is the whole story for checkpoints). 1 - u keeps log away from 0. */
    double u1 = 1.0 - nb_rng_uniform(rng);
    double u2 = nb_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t nb_rng_below(nb_rng *rng, uint64_t n) {
    if (n == 0) return 0;
    /* Rejection: reject the top partial copy of [0, n) so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = nb_rng_next(rng);
    while (x >= limit);
    return x % n;
}

static nb_rng default_rng = {{0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL, 0x94d049bb133111ebULL, 1}};

nb_rng *nb_default_rng(void) { return &default_rng; }
void nb_manual_seed(uint64_t seed) { nb_rng_seed(&default_rng, seed); }

static nb_tensor *rand_fill(const char *op, nb_rng *rng, nb_dtype dtype, int ndim, const int64_t *shape,
                            double a, double b, bool normal) {
    if (dtype != NB_F32 && dtype != NB_F64) {
        nbi_error(NB_ERR_DTYPE, "%s: expected float32 or float64, but got %s", op, nb_dtype_name(dtype));
        return NULL;
    }
    if (!isfinite(a) || !isfinite(b) || (normal ? b < 0 : a > b)) {
        nbi_error(NB_ERR_ARG, normal ? "%s: expected finite mean and std >= 0, but got mean=%g std=%g"
                                     : "%s: expected finite low <= high, but got low=%g high=%g",
                  op, a, b);
        return NULL;
    }
    nb_tensor *t = nbi_empty_op(op, dtype, ndim, shape);
    if (!t) return NULL;
    nbi_rng_fill(dtype, nbi_data(t), t->numel, rng, a, b, normal);
    return nbi_give(t);
}

void nbi_rng_fill(nb_dtype dtype, void *data, int64_t n, nb_rng *rng, double a, double b, bool normal) {
    if (!rng) rng = &default_rng;
    NBI_DISPATCH_FLOAT(dtype, {
        T *p = data; // p: (n,)
        for (int64_t i = 0; i < n; i++)
            p[i] = (T)(normal ? a + b * nb_rng_normal(rng) : a + (b - a) * nb_rng_uniform(rng));
    });
}

nb_tensor *nb_rand_uniform(nb_rng *rng, nb_dtype dtype, int ndim, const int64_t *shape, double low, double high) {
    return rand_fill("rand_uniform", rng, dtype, ndim, shape, low, high, false);
}

nb_tensor *nb_rand_normal(nb_rng *rng, nb_dtype dtype, int ndim, const int64_t *shape, double mean, double std) {
    return rand_fill("rand_normal", rng, dtype, ndim, shape, mean, std, true);
}
