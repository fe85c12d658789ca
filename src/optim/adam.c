/* Adam and AdamW (decoupled weight decay), with AMSGrad: PyTorch 1.13's
 * _single_tensor_adam / _single_tensor_adamw, one tensor op per statement,
 * rounded to the parameter's dtype like PyTorch's (scalars such as the bias
 * corrections are computed in double, then cast). */
#include "optim_internal.h"
#include "optim_kernels.h"
#include "tensor/cpu.h"

#include <math.h>

nb_adam_options nb_adam_defaults(void) {
    return (nb_adam_options){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0,
                             .amsgrad = false, .maximize = false};
}

nb_adam_options nb_adamw_defaults(void) {
    nb_adam_options o = nb_adam_defaults();
    o.weight_decay = 1e-2;
    return o;
}

/* Per element, at step t (counted per parameter):
 *   Adam:  g += weight_decay * p        AdamW: p *= 1 - lr * weight_decay
 *   m = m * beta1 + (1 - beta1) * g;  v = v * beta2 + (1 - beta2) * g * g
 *   vmax = max(vmax, v) (amsgrad; the denominator then uses vmax)
 *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *   p += -(lr / (1 - beta1^t)) * m / denom */
static void adam_common(const nbi_param_group *grp, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                        bool decoupled) {
    const nb_adam_options *a = &grp->opt.adam;
    const double lr = a->lr;
    const int64_t n = p->numel;
    double *stepp = nbi_step_ptr(st);
    *stepp += 1;
    const double step = *stepp;
    const double bc1 = 1 - pow(a->beta1, step), bc2 = 1 - pow(a->beta2, step);
    const double step_size = lr / bc1, bc2_sqrt = sqrt(bc2);
    if (p->dtype == NB_F32) { /* the per-set kernel; the loop below is its reference */
        const nbi_adam_f32 h = {(float)a->beta1, (float)(1 - a->beta1), (float)a->beta2, (float)(1 - a->beta2),
                                (float)a->weight_decay, (float)(1 - lr * a->weight_decay), (float)a->eps,
                                (float)bc2_sqrt, (float)(-step_size), a->weight_decay != 0, a->maximize, decoupled};
        float *vmax = a->amsgrad ? (float *)nbi_data(st->buf[2]) : NULL;
        NBI_CPU_PICK(nbi_optim_f32_portable, nbi_optim_f32_avx2, nbi_optim_f32_avx512)->adam(n, nbi_data(p), nbi_data(g), nbi_data(st->buf[0]), nbi_data(st->buf[1]), vmax, &h);
        return;
    }
    NBI_DISPATCH_FLOAT(p->dtype, {
        T *pd = nbi_data(p);                 // p: (n,)
        const T *gd = nbi_data(g);           // g: (n,)
        T *m = nbi_data(st->buf[0]);         // exp_avg: (n,)
        T *v = nbi_data(st->buf[1]);         // exp_avg_sq: (n,)
        T *vmax = a->amsgrad ? (T *)nbi_data(st->buf[2]) : NULL; // max_exp_avg_sq: (n,)
        const T b1 = (T)a->beta1, omb1 = (T)(1 - a->beta1), b2 = (T)a->beta2, omb2 = (T)(1 - a->beta2);
        const T wd = (T)a->weight_decay, decay = (T)(1 - lr * a->weight_decay);
        const T eps = (T)a->eps, bc2s = (T)bc2_sqrt, negstep = (T)(-step_size);
        const bool use_wd = a->weight_decay != 0, maximize = a->maximize;
        _Pragma("omp parallel for schedule(static) if(n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) {
            T gi = maximize ? -gd[i] : gd[i];
            T pi = pd[i];
            if (decoupled) pi = pi * decay;
            else if (use_wd) gi = gi + wd * pi;
            T mi = m[i] * b1;
            mi = mi + omb1 * gi;
            T vi = v[i] * b2;
            vi = vi + omb2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            T den = vi;
            if (vmax) { /* torch.maximum: NaN propagates */
                T mx = vmax[i];
                mx = (isnan(mx) || mx > vi) ? mx : vi;
                vmax[i] = mx;
                den = mx;
            }
            den = (T)sqrt(den); /* double sqrt rounded to T: the correctly rounded sqrt of T */
            den = den / bc2s;
            den = den + eps;
            pd[i] = pi + negstep * mi / den;
        }
    });
}

static void adam_update(const nbi_param_group *grp, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                        bool first) {
    (void)first;
    adam_common(grp, p, g, st, false);
}

static void adamw_update(const nbi_param_group *grp, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                         bool first) {
    (void)first;
    adam_common(grp, p, g, st, true);
}

static bool adam_check(const char *name, const nbi_options *opts) {
    const nb_adam_options *o = &opts->adam;
    return nbi_opt_check(name, 0.0 <= o->lr, "learning rate", o->lr) &&
           nbi_opt_check(name, 0.0 <= o->eps, "epsilon value", o->eps) &&
           nbi_opt_check(name, 0.0 <= o->beta1 && o->beta1 < 1.0, "beta parameter at index 0", o->beta1) &&
           nbi_opt_check(name, 0.0 <= o->beta2 && o->beta2 < 1.0, "beta parameter at index 1", o->beta2) &&
           nbi_opt_check(name, 0.0 <= o->weight_decay, "weight_decay value", o->weight_decay);
}

/* exp_avg, exp_avg_sq, and max_exp_avg_sq with amsgrad. */
static unsigned adam_bufs(const nbi_options *o) { return o->adam.amsgrad ? 7u : 3u; }

static const nbi_optim_kind adam_kind = {
    "Adam", NBI_OPTS_ADAM, true, {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, NBI_BETA1,
    adam_check, adam_bufs, adam_update,
};
static const nbi_optim_kind adamw_kind = {
    "AdamW", NBI_OPTS_ADAM, true, {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, NBI_BETA1,
    adam_check, adam_bufs, adamw_update,
};

nb_optimizer *nb_adam(nb_tensor *const *params, int n, const nb_adam_options *opt) {
    return nbi_optimizer_new(&adam_kind, params, n, &(nbi_options){.adam = opt ? *opt : nb_adam_defaults()});
}

nb_optimizer *nb_adamw(nb_tensor *const *params, int n, const nb_adam_options *opt) {
    return nbi_optimizer_new(&adamw_kind, params, n, &(nbi_options){.adam = opt ? *opt : nb_adamw_defaults()});
}

nb_status nb_adam_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n, const nb_adam_options *o) {
    return nbi_optimizer_add_group(opt, NBI_OPTS_ADAM, params, n, o ? &(nbi_options){.adam = *o} : NULL);
}
