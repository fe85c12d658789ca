/* RMSprop, optionally centered and with momentum: PyTorch 1.13's
 * _single_tensor_rmsprop, one tensor op per statement, rounded to the
 * parameter's dtype like PyTorch's. */
#include "optim_internal.h"

#include <math.h>

nb_rmsprop_options nb_rmsprop_defaults(void) {
    return (nb_rmsprop_options){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, .weight_decay = 0, .momentum = 0,
                                .centered = false, .maximize = false};
}

/* Per element:
 *   g += weight_decay * p;  sq = sq * alpha + (1 - alpha) * g * g
 *   centered: ga = ga * alpha + (1 - alpha) * g;  avg = sqrt(sq - ga * ga) + eps
 *   else:     avg = sqrt(sq) + eps
 *   momentum: buf = buf * momentum + g / avg;  p += -lr * buf
 *   else:     p += -lr * g / avg */
static void rmsprop_update(const nbi_param_group *grp, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                           bool first) {
    (void)first;
    const nb_rmsprop_options *r = &grp->opt.rmsprop;
    const int64_t n = p->numel;
    *nbi_step_ptr(st) += 1; /* kept in the state like PyTorch's, not used by the update */
    NBI_DISPATCH_FLOAT(p->dtype, {
        T *pd = nbi_data(p);                 // p: (n,)
        const T *gd = nbi_data(g);           // g: (n,)
        T *sq = nbi_data(st->buf[0]);        // square_avg: (n,)
        T *mb = r->momentum > 0 ? (T *)nbi_data(st->buf[1]) : NULL; // momentum_buffer: (n,)
        T *ga = r->centered ? (T *)nbi_data(st->buf[2]) : NULL;     // grad_avg: (n,)
        const T alpha = (T)r->alpha, omalpha = (T)(1 - r->alpha), eps = (T)r->eps, wd = (T)r->weight_decay;
        const T mom = (T)r->momentum, neglr = (T)(-r->lr), one = 1, minus1 = -1;
        const bool use_wd = r->weight_decay != 0, maximize = r->maximize;
        _Pragma("omp parallel for schedule(static) if(n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            T gi = maximize ? -gd[i] : gd[i];
            if (use_wd) gi = gi + wd * pd[i];
            T s = sq[i] * alpha;
            s = s + omalpha * gi * gi;
            sq[i] = s;
            T avg;
            if (ga) {
                T a = ga[i] * alpha;
                a = a + omalpha * gi;
                ga[i] = a;
                avg = s + minus1 * a * a;
                avg = (T)sqrt(avg);
            } else {
                avg = (T)sqrt(s);
            }
            avg = avg + eps;
            if (mb) {
                T b = mb[i] * mom;
                b = b + one * gi / avg;
                mb[i] = b;
                pd[i] = pd[i] + neglr * b;
            } else {
                pd[i] = pd[i] + neglr * gi / avg;
            }
        }
    });
}

static bool rmsprop_check(const char *name, const nbi_options *opts) {
    const nb_rmsprop_options *o = &opts->rmsprop;
    return nbi_opt_check(name, 0.0 <= o->lr, "learning rate", o->lr) &&
           nbi_opt_check(name, 0.0 <= o->eps, "epsilon value", o->eps) &&
           nbi_opt_check(name, 0.0 <= o->momentum, "momentum value", o->momentum) &&
           nbi_opt_check(name, 0.0 <= o->weight_decay, "weight_decay value", o->weight_decay) &&
           nbi_opt_check(name, 0.0 <= o->alpha, "alpha value", o->alpha);
}

/* square_avg; momentum_buffer when momentum > 0; grad_avg when centered. */
static unsigned rmsprop_bufs(const nbi_options *o) {
    return 1u | (o->rmsprop.momentum > 0 ? 2u : 0u) | (o->rmsprop.centered ? 4u : 0u);
}

static const nbi_optim_kind rmsprop_kind = {
    "RMSprop", NBI_OPTS_RMSPROP, true, {"square_avg", "momentum_buffer", "grad_avg"}, NBI_MOMENTUM,
    rmsprop_check, rmsprop_bufs, rmsprop_update,
};

nb_optimizer *nb_rmsprop(nb_tensor *const *params, int n, const nb_rmsprop_options *opt) {
    return nbi_optimizer_new(&rmsprop_kind, params, n, &(nbi_options){.rmsprop = opt ? *opt : nb_rmsprop_defaults()});
}

nb_status nb_rmsprop_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n,
                                     const nb_rmsprop_options *o) {
    return nbi_optimizer_add_group(opt, NBI_OPTS_RMSPROP, params, n, o ? &(nbi_options){.rmsprop = *o} : NULL);
}
