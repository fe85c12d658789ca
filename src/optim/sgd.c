/* SGD with momentum, dampening, Nesterov and weight decay: PyTorch 1.13's
 * _single_tensor_sgd, one tensor op per statement, rounded to the parameter's
 * dtype like PyTorch's (scalars computed in double, then cast). */
#include "optim_internal.h"

#include <math.h>

nb_sgd_options nb_sgd_defaults(void) {
    return (nb_sgd_options){.lr = NAN, .momentum = 0, .dampening = 0, .weight_decay = 0, .nesterov = false,
                            .maximize = false};
}

/* Per element:
 *   d = g (or -g when maximizing); d += weight_decay * p
 *   buf = d at the first step, else buf = buf * momentum + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf;   p += -lr * d */
static void sgd_update(const nb_optimizer *o, nb_tensor *p, const nb_tensor *g, nbi_param_state *st, bool first) {
    const nb_sgd_options *s = &o->opt.sgd;
    const double lr = o->lr;
    const int64_t n = p->numel;
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

nb_optimizer *nb_sgd(nb_tensor *const *params, int n, const nb_sgd_options *opt) {
    if (!opt) {
        nbi_error(NB_ERR_ARG, "SGD: parameter group didn't specify a value of required optimization parameter lr "
                              "(options are NULL)");
        return NULL;
    }
    if (isnan(opt->lr)) {
        nbi_error(NB_ERR_ARG, "SGD: parameter group didn't specify a value of required optimization parameter lr");
        return NULL;
    }
    if (opt->lr < 0.0) {
        nbi_error(NB_ERR_ARG, "SGD: Invalid learning rate: %g", opt->lr);
        return NULL;
    }
    if (opt->momentum < 0.0) {
        nbi_error(NB_ERR_ARG, "SGD: Invalid momentum value: %g", opt->momentum);
        return NULL;
    }
    if (opt->weight_decay < 0.0) {
        nbi_error(NB_ERR_ARG, "SGD: Invalid weight_decay value: %g", opt->weight_decay);
        return NULL;
    }
    if (opt->nesterov && (opt->momentum <= 0 || opt->dampening != 0)) {
        nbi_error(NB_ERR_ARG, "SGD: Nesterov momentum requires a momentum and zero dampening (momentum %g, dampening %g)",
                  opt->momentum, opt->dampening);
        return NULL;
    }
    nb_optimizer *o = nbi_optimizer_new("SGD", params, n);
    if (!o) return NULL;
    o->lr = opt->lr;
    o->opt.sgd = *opt;
    o->has_step = false;
    if (opt->momentum != 0) {
        o->nbufs = 1;
        o->buf_names[0] = "momentum_buffer";
    }
    o->update = sgd_update;
    return o;
}
