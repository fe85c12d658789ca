/* Private to src/optim: the float32 update loops of the optimizers, one table
 * per kernel set (kernels/update_f32.c, see tensor/cpu.h), so that they use
 * the widest vectors the CPU has. Hyper-parameters arrive already rounded to
 * float, as the per-algorithm files (sgd.c, adam.c, adadelta.c) compute them;
 * those files keep the plain loops, the reference the kernels follow and the
 * float64 path. Each element is updated by one thread: the thread count never
 * changes the bits. */
#ifndef NABLA_OPTIM_KERNELS_H
#define NABLA_OPTIM_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct nbi_sgd_f32 {
    float wd, mom, damp1, neglr;
    bool use_wd, nesterov, maximize, first;
} nbi_sgd_f32;

typedef struct nbi_adam_f32 {
    float b1, omb1, b2, omb2, wd, decay, eps, bc2s, negstep;
    bool use_wd, maximize, decoupled;
} nbi_adam_f32;

typedef struct nbi_adadelta_f32 {
    float rho, omrho, eps, wd, neglr;
    bool use_wd, maximize;
} nbi_adadelta_f32;

typedef struct nbi_optim_f32_kernels {
    // p, g: (n); buf: (n) momentum_buffer or NULL (no momentum)
    void (*sgd)(int64_t n, float *p, const float *g, float *buf, const nbi_sgd_f32 *h);
    // p, g, m (exp_avg), v (exp_avg_sq): (n); vmax: (n) max_exp_avg_sq or NULL (no amsgrad)
    void (*adam)(int64_t n, float *p, const float *g, float *m, float *v, float *vmax, const nbi_adam_f32 *h);
    // p, g, sq (square_avg), acc (acc_delta): (n)
    void (*adadelta)(int64_t n, float *p, const float *g, float *sq, float *acc, const nbi_adadelta_f32 *h);
} nbi_optim_f32_kernels;

extern const nbi_optim_f32_kernels nbi_optim_f32_portable, nbi_optim_f32_avx2, nbi_optim_f32_avx512;

#endif
