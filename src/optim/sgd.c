/* SGD with momentum, dampening, Nesterov and weight decay: PyTorch 1.13's
 * _single_tensor_sgd, one tensor op per statement, rounded to the parameter's
 * dtype like PyTorch's (scalars computed in double, then cast). */
#include "optim_internal.h"
#include "optim_kernels.h"
#include "tensor/cpu.h"

#include <math.h>

nb_sgd_options nb_sgd_defaults(void) {
    return (nb_sgd_options){.lr = NAN, .momentum = 0, .dampening = 0, .weight_decay = 0, .nesterov = false,
                            .maximize = false};
}

/* Per element:
 *   d = g (or -g when maximizing); d += weight_decay * p
 *   buf = d at the buffer's first use, else buf = buf * momentum + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf;   p += -lr * d */
static void sgd_update(const nbi_param_group *grp, nb_tensor *p, const nb_tensor *g, nbi_param_state *st, bool first) {
    const nb_sgd_options *s = &grp->opt.sgd;
    const double lr = s->lr;
    const int64_t n = p->numel;
    if (p->dtype == NB_F32) { /* the per-set kernel; the loop below is its reference */
        const nbi_sgd_f32 h = {(float)s->weight_decay, (float)s->momentum, (float)(1.0 - s->dampening), (float)(-lr),
                               s->weight_decay != 0, s->nesterov, s->maximize, first};
        float *buf = s->momentum != 0 ? (float *)nbi_data(st->buf[0]) : NULL;
        NBI_CPU_PICK(nbi_optim_f32_portable, nbi_optim_f32_avx2, nbi_optim_f32_avx512)->sgd(n, nbi_data(p), nbi_data(g), buf, &h);
        return;
    }
    NBI_DISPATCH_FLOAT(p->dtype, {
        T *pd = nbi_data(p);              // p: (n,)
        const T *gd = nbi_data(g);        // g: (n,)
        T *buf = s->momentum != 0 ? (T *)nbi_data(st->buf[0]) : NULL; // momentum_buffer: (n,)
        const T wd = (T)s->weight_decay, mom = (T)s->momentum, damp1 = (T)(1.0 - s->dampening);
        const T neglr = (T)(-lr);
        const bool use_wd = s->weight_decay != 0, nesterov = s->nesterov, maximize = s->maximize;
        _Pragma("omp parallel for schedule(static) if(n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            T d = maximize ? -gd[i] : gd[i];
            if (use_wd) d = d + wd * pd[i];
            if (buf) {
                T b;
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
    });
}

static bool sgd_check(const char *name, const nbi_options *opts) {
    const nb_sgd_options *o = &opts->sgd;
    if (isnan(o->lr)) {
        nbi_error(NB_ERR_ARG, "%s: parameter group didn't specify a value of required optimization parameter lr", name);
        return false;
    }
    if (!nbi_opt_check(name, o->lr >= 0.0, "learning rate", o->lr) ||
        !nbi_opt_check(name, o->momentum >= 0.0, "momentum value", o->momentum) ||
        !nbi_opt_check(name, o->weight_decay >= 0.0, "weight_decay value", o->weight_decay))
        return false;
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0)) {
        nbi_error(NB_ERR_ARG, "%s: Nesterov momentum requires a momentum and zero dampening (momentum %g, dampening %g)",
                  name, o->momentum, o->dampening);
        return false;
    }
    return true;
}

/* The momentum buffer exists while momentum != 0 (PyTorch keeps None otherwise). */
static unsigned sgd_bufs(const nbi_options *o) { return o->sgd.momentum != 0 ? 1u : 0u; }

static const nbi_optim_kind sgd_kind = {
    "SGD", NBI_OPTS_SGD, false, {"momentum_buffer"}, NBI_MOMENTUM, sgd_check, sgd_bufs, sgd_update,
};

nb_optimizer *nb_sgd(nb_tensor *const *params, int n, const nb_sgd_options *opt) {
    if (!opt) {
        nbi_error(NB_ERR_ARG, "SGD: parameter group didn't specify a value of required optimization parameter lr "
                              "(options are NULL)");
        return NULL;
    }
    return nbi_optimizer_new(&sgd_kind, params, n, &(nbi_options){.sgd = *opt});
}

nb_status nb_sgd_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n, const nb_sgd_options *o) {
    return nbi_optimizer_add_group(opt, NBI_OPTS_SGD, params, n, o ? &(nbi_options){.sgd = *o} : NULL);
}
