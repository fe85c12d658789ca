/* Adadelta: PyTorch 1.13's _single_tensor_adadelta, one tensor op per
 * statement, rounded to the parameter's dtype like PyTorch's. */
#include "optim_internal.h"
#include "optim_kernels.h"
#include "tensor/cpu.h"

#include <math.h>

nb_adadelta_options nb_adadelta_defaults(void) {
    return (nb_adadelta_options){.lr = 1.0, .rho = 0.9, .eps = 1e-6, .weight_decay = 0, .maximize = false};
}

/* Per element:
 *   g += weight_decay * p;  sq = sq * rho + (1 - rho) * g * g
 *   delta = sqrt(acc + eps) / sqrt(sq + eps) * g
 *   acc = acc * rho + (1 - rho) * delta * delta;  p += -lr * delta */
static void adadelta_update(const nbi_param_group *grp, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                            bool first) {
    (void)first;
    const nb_adadelta_options *a = &grp->opt.adadelta;
    const int64_t n = p->numel;
    *nbi_step_ptr(st) += 1; /* kept in the state like PyTorch's, not used by the update */
    if (p->dtype == NB_F32) { /* the per-set kernel; the loop below is its reference */
        const nbi_adadelta_f32 h = {(float)a->rho, (float)(1 - a->rho), (float)a->eps, (float)a->weight_decay,
                                    (float)(-a->lr), a->weight_decay != 0, a->maximize};
        NBI_CPU_PICK(nbi_optim_f32_portable, nbi_optim_f32_avx2, nbi_optim_f32_avx512)->adadelta(n, nbi_data(p), nbi_data(g), nbi_data(st->buf[0]), nbi_data(st->buf[1]), &h);
        return;
    }
    NBI_DISPATCH_FLOAT(p->dtype, {
        T *pd = nbi_data(p);                 // p: (n,)
        const T *gd = nbi_data(g);           // g: (n,)
        T *sq = nbi_data(st->buf[0]);        // square_avg: (n,)
        T *acc = nbi_data(st->buf[1]);       // acc_delta: (n,)
        const T rho = (T)a->rho, omrho = (T)(1 - a->rho), eps = (T)a->eps, wd = (T)a->weight_decay;
        const T neglr = (T)(-a->lr);
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

static bool adadelta_check(const char *name, const nbi_options *opts) {
    const nb_adadelta_options *o = &opts->adadelta;
    return nbi_opt_check(name, 0.0 <= o->lr, "learning rate", o->lr) &&
           nbi_opt_check(name, 0.0 <= o->rho && o->rho <= 1.0, "rho value", o->rho) &&
           nbi_opt_check(name, 0.0 <= o->eps, "epsilon value", o->eps) &&
           nbi_opt_check(name, 0.0 <= o->weight_decay, "weight_decay value", o->weight_decay);
}

static unsigned adadelta_bufs(const nbi_options *o) {
    (void)o;
    return 3u; /* square_avg, acc_delta */
}

static const nbi_optim_kind adadelta_kind = {
    "Adadelta", NBI_OPTS_ADADELTA, true, {"square_avg", "acc_delta"}, NBI_MOMENTUM_NONE,
    adadelta_check, adadelta_bufs, adadelta_update,
};

nb_optimizer *nb_adadelta(nb_tensor *const *params, int n, const nb_adadelta_options *opt) {
    return nbi_optimizer_new(&adadelta_kind, params, n,
                             &(nbi_options){.adadelta = opt ? *opt : nb_adadelta_defaults()});
}

nb_status nb_adadelta_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n,
                                      const nb_adadelta_options *o) {
    return nbi_optimizer_add_group(opt, NBI_OPTS_ADADELTA, params, n, o ? &(nbi_options){.adadelta = *o} : NULL);
}
