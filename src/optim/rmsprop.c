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
static void rmsprop_update(const nb_optimizer *o, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                           bool first) {
    (void)first;
    const nb_rmsprop_options *r = &o->opt.rmsprop;
    const int64_t n = p->numel;
    *nbi_step_ptr(st) += 1; /* kept in the state like PyTorch's, not used by the update */
    /* buffer order: square_avg, then momentum_buffer and grad_avg when present */
    const int ibuf = r->momentum > 0 ? 1 : -1, igavg = r->centered ? (r->momentum > 0 ? 2 : 1) : -1;
    NBI_DISPATCH_FLOAT(p->dtype, {
        T *pd = nbi_data(p);                 // p: (n,)
        const T *gd = nbi_data(g);           // g: (n,)
        T *sq = nbi_data(st->buf[0]);        // square_avg: (n,)
        T *mb = ibuf >= 0 ? (T *)nbi_data(st->buf[ibuf]) : NULL;    // momentum_buffer: (n,)
        T *ga = igavg >= 0 ? (T *)nbi_data(st->buf[igavg]) : NULL;  // grad_avg: (n,)
        const T alpha = (T)r->alpha, omalpha = (T)(1 - r->alpha), eps = (T)r->eps, wd = (T)r->weight_decay;
        const T mom = (T)r->momentum, neglr = (T)(-o->lr), one = 1, minus1 = -1;
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

nb_optimizer *nb_rmsprop(nb_tensor *const *params, int n, const nb_rmsprop_options *opt) {
    nb_rmsprop_options d = nb_rmsprop_defaults();
    if (!opt) opt = &d;
    if (!(0.0 <= opt->lr)) {
        nbi_error(NB_ERR_ARG, "RMSprop: Invalid learning rate: %g", opt->lr);
        return NULL;
    }
    if (!(0.0 <= opt->eps)) {
        nbi_error(NB_ERR_ARG, "RMSprop: Invalid epsilon value: %g", opt->eps);
        return NULL;
    }
    if (!(0.0 <= opt->momentum)) {
        nbi_error(NB_ERR_ARG, "RMSprop: Invalid momentum value: %g", opt->momentum);
        return NULL;
    }
    if (!(0.0 <= opt->weight_decay)) {
        nbi_error(NB_ERR_ARG, "RMSprop: Invalid weight_decay value: %g", opt->weight_decay);
        return NULL;
    }
    if (!(0.0 <= opt->alpha)) {
        nbi_error(NB_ERR_ARG, "RMSprop: Invalid alpha value: %g", opt->alpha);
        return NULL;
    }
    nb_optimizer *o = nbi_optimizer_new("RMSprop", params, n);
    if (!o) return NULL;
    o->lr = opt->lr;
    o->opt.rmsprop = *opt;
    o->has_step = true;
    int k = 0;
    o->buf_names[k++] = "square_avg";
    if (opt->momentum > 0) o->buf_names[k++] = "momentum_buffer";
    if (opt->centered) o->buf_names[k++] = "grad_avg";
    o->nbufs = k;
    o->update = rmsprop_update;
    return o;
}
