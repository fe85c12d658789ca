/* Adadelta: PyTorch 1.13's _single_tensor_adadelta, one tensor op per
 * statement, rounded to the parameter's dtype like PyTorch's. */
#include "optim_internal.h"

#include <math.h>

nb_adadelta_options nb_adadelta_defaults(void) {
    return (nb_adadelta_options){.lr = 1.0, .rho = 0.9, .eps = 1e-6, .weight_decay = 0, .maximize = false};
}

/* Per element:
 *   g += weight_decay * p;  sq = sq * rho + (1 - rho) * g * g
 *   delta = sqrt(acc + eps) / sqrt(sq + eps) * g
 *   acc = acc * rho + (1 - rho) * delta * delta;  p += -lr * delta */
static void adadelta_update(const nb_optimizer *o, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                            bool first) {
    (void)first;
    const nb_adadelta_options *a = &o->opt.adadelta;
    const int64_t n = p->numel;
    *nbi_step_ptr(st) += 1; /* kept in the state like PyTorch's, not used by the update */
    NBI_DISPATCH_FLOAT(p->dtype, {
        T *pd = nbi_data(p);                 // p: (n,)
        const T *gd = nbi_data(g);           // g: (n,)
        T *sq = nbi_data(st->buf[0]);        // square_avg: (n,)
        T *acc = nbi_data(st->buf[1]);       // acc_delta: (n,)
        const T rho = (T)a->rho, omrho = (T)(1 - a->rho), eps = (T)a->eps, wd = (T)a->weight_decay;
        const T neglr = (T)(-o->lr);
        const bool use_wd = a->weight_decay != 0, maximize = a->maximize;
        _Pragma("omp parallel for schedule(static) if(n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            T gi = maximize ? -gd[i] : gd[i];
            if (use_wd) gi = gi + wd * pd[i];
            T s = sq[i] * rho;
            s = s + omrho * gi * gi;
            sq[i] = s;
            T std = s + eps;
            std = (T)sqrt(std);
            T delta = acc[i] + eps;
            delta = (T)sqrt(delta);
            delta = delta / std;
            delta = delta * gi;
            T ac = acc[i] * rho;
            acc[i] = ac + omrho * delta * delta;
            pd[i] = pd[i] + neglr * delta;
        }
    });
}

nb_optimizer *nb_adadelta(nb_tensor *const *params, int n, const nb_adadelta_options *opt) {
    nb_adadelta_options d = nb_adadelta_defaults();
    if (!opt) opt = &d;
    if (!(0.0 <= opt->lr)) {
        nbi_error(NB_ERR_ARG, "Adadelta: Invalid learning rate: %g", opt->lr);
        return NULL;
    }
    if (!(0.0 <= opt->rho && opt->rho <= 1.0)) {
        nbi_error(NB_ERR_ARG, "Adadelta: Invalid rho value: %g", opt->rho);
        return NULL;
    }
    if (!(0.0 <= opt->eps)) {
        nbi_error(NB_ERR_ARG, "Adadelta: Invalid epsilon value: %g", opt->eps);
        return NULL;
    }
    if (!(0.0 <= opt->weight_decay)) {
        nbi_error(NB_ERR_ARG, "Adadelta: Invalid weight_decay value: %g", opt->weight_decay);
        return NULL;
    }
    nb_optimizer *o = nbi_optimizer_new("Adadelta", params, n);
    if (!o) return NULL;
    o->lr = opt->lr;
    o->opt.adadelta = *opt;
    o->has_step = true;
    o->nbufs = 2;
    o->buf_names[0] = "square_avg";
    o->buf_names[1] = "acc_delta";
    o->update = adadelta_update;
    return o;
}
