/* Private: one step of xoshiro256** (the generator of nabla/tensor.h's
 * nb_rng), inline for loops that draw per element (dropout's mask) and keep
 * the state in registers; rng.c's nb_rng_next and nb_rng_uniform are these. */
#ifndef NABLA_TENSOR_RNG_NEXT_H
#define NABLA_TENSOR_RNG_NEXT_H

#include "nabla/tensor.h"

#include <stdint.h>

static inline uint64_t nbi_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t nbi_rng_next(nb_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = nbi_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = nbi_rng_rotl(s[3], 45);
    return result;
}

/* U[0, 1) from the leading 53 bits of one step (nb_rng_uniform is this function). */
static inline double nbi_rng_uniform(nb_rng *rng) { return (double)(nbi_rng_next(rng) >> 11) * 0x1.0p-53; }

#endif
