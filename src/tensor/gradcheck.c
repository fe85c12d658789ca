/* Numerical gradient checking (nabla/gradcheck.h), after torch.autograd.gradcheck:
 * analytical Jacobian rows from one-hot backward passes, numerical columns
 * from central differences, compared with allclose. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nb_gradcheck_options nb_gradcheck_defaults(void) {
    return (nb_gradcheck_options){.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3, .fast_mode = false, .seed = 0};
}

static double get_at(const nb_tensor *t, int64_t i) {
    return t->dtype == NB_F32 ? ((const float *)nbi_data(t))[i] : ((const double *)nbi_data(t))[i];
}
static void set_at(nb_tensor *t, int64_t i, double v) {
    if (t->dtype == NB_F32) ((float *)nbi_data(t))[i] = (float)v;
    else ((double *)nbi_data(t))[i] = v;
}

/* Evaluate f without recording and return its output as doubles (malloc'd). */
static double *eval_values(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n, int64_t *m) {
    nb_no_grad_begin();
    nb_tensor *out = nbi_own(f(inputs, n, ctx));
    nb_no_grad_end();
    if (!out) return NULL;
    double *v = malloc((size_t)(out->numel ? out->numel : 1) * sizeof *v);
    if (v) nb_tensor_copy_out(out, v, NB_F64);
    else nbi_error(NB_ERR_NOMEM, "gradcheck: out of memory");
    *m = out->numel;
    nbi_release(out);
    return v;
}

/* One backward pass with the given output gradient; grads[i] (numel of input
 * i) receives d(v . f)/d input i, zeros where no gradient arrived. */
static nb_status eval_vjp(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n, const double *v,
                          double **grads) {
    for (int i = 0; i < n; i++) nb_zero_grad(inputs[i]);
    nb_tensor *out = nbi_own(f(inputs, n, ctx));
    if (!out) return nb_last_status();
    nb_status st = NB_OK;
    if (!out->requires_grad) {
        /* No input reaches the output: every analytical gradient is zero. */
        for (int i = 0; i < n; i++)
            if (grads[i]) memset(grads[i], 0, (size_t)inputs[i]->numel * sizeof(double));
        nbi_release(out);
        return NB_OK;
    }
    nb_tensor *gout = nbi_empty(out->dtype, out->ndim, out->shape);
    if (!gout) st = nb_last_status();
    else {
        for (int64_t r = 0; r < out->numel; r++) set_at(gout, r, v[r]);
        st = nb_backward_ex(out, gout, false);
    }
    nbi_release(gout);
    nbi_release(out);
    for (int i = 0; st == NB_OK && i < n; i++) {
        if (!grads[i]) continue;
        nb_tensor *g = inputs[i]->grad;
        if (g) nb_tensor_copy_out(g, grads[i], NB_F64);
        else memset(grads[i], 0, (size_t)inputs[i]->numel * sizeof(double));
    }
    for (int i = 0; i < n; i++) nb_zero_grad(inputs[i]);
    return st;
}

/* Track the element that most exceeds the tolerance. */
static void consider(nb_gradcheck_worst *w, const nb_gradcheck_options *o, int64_t out_i, int64_t in_i, double a,
                     double num) {
    double abs_err = fabs(a - num);
    double excess = abs_err - (o->atol + o->rtol * fabs(num));
    bool ok = excess <= 0 && !isnan(a) && !isnan(num);
    double cur_excess = w->abs_err - (o->atol + o->rtol * fabs(w->numerical));
    bool first = w->out_index == -2;
    if (first || (!ok && (w->passed || excess > cur_excess || isnan(excess))) || (ok && w->passed && abs_err > w->abs_err)) {
        w->out_index = out_i;
        w->in_index = in_i;
        w->analytical = a;
        w->numerical = num;
        w->abs_err = abs_err;
        w->rel_err = abs_err / (fabs(num) > 0 ? fabs(num) : 1);
        w->passed = ok;
    }
    if (!ok) w->passed = false;
}

nb_status nb_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n,
                       const nb_gradcheck_options *opts, nb_gradcheck_report *report) {
    nb_gradcheck_report local;
    nb_gradcheck_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    nb_gradcheck_options o = opts ? *opts : nb_gradcheck_defaults();
    if (!f) return nbi_error(NB_ERR_ARG, "gradcheck: function is NULL");
    if (n < 1 || n > NB_GRADCHECK_MAX_INPUTS || !inputs)
        return nbi_error(NB_ERR_ARG, "gradcheck: expected 1 to %d inputs, but got %d", NB_GRADCHECK_MAX_INPUTS, n);
    if (!(o.eps > 0) || !(o.atol >= 0) || !(o.rtol >= 0))
        return nbi_error(NB_ERR_ARG, "gradcheck: expected eps > 0, atol >= 0, rtol >= 0, but got %g, %g, %g", o.eps,
                         o.atol, o.rtol);
    bool any = false;
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "inputs[%d]", i);
        if (!nbi_check_tensor("gradcheck", arg, inputs[i])) return nb_last_status();
        if (!inputs[i]->requires_grad) continue;
        if (!nbi_check_float("gradcheck", arg, inputs[i])) return nb_last_status();
        if (inputs[i]->grad_fn || !nbi_is_contiguous(inputs[i]))
            return nbi_error(NB_ERR_ARG, "gradcheck: inputs[%d] must be a contiguous leaf tensor", i);
        any = true;
    }
    if (!any) return nbi_error(NB_ERR_ARG, "gradcheck: at least one input must require grad");

    rep->ninputs = n;
    rep->passed = true;
    int64_t m = 0;
    double *base = eval_values(f, ctx, inputs, n, &m);
    if (!base) return nb_last_status();
    free(base);

    double *grads[NB_GRADCHECK_MAX_INPUTS] = {0};
    double *v = NULL, *fp = NULL, *fm = NULL, *saved = NULL;
    nb_status st = NB_OK;
    nb_rng rng;
    nb_rng_seed(&rng, o.seed);
    for (int i = 0; i < n; i++) {
        rep->worst[i].out_index = -2;
        rep->worst[i].passed = true;
        if (inputs[i]->requires_grad) {
            rep->worst[i].checked = true;
            grads[i] = malloc((size_t)(inputs[i]->numel ? inputs[i]->numel : 1) * sizeof(double));
            if (!grads[i]) goto nomem;
        }
    }
    v = calloc((size_t)(m ? m : 1), sizeof *v);
    if (!v) goto nomem;

    if (o.fast_mode) {
        for (int64_t r = 0; r < m; r++) v[r] = nb_rng_normal(&rng);
        st = eval_vjp(f, ctx, inputs, n, v, grads);
        if (st != NB_OK) goto done;
        for (int i = 0; i < n; i++) {
            nb_tensor *x = inputs[i];
            if (!grads[i]) continue;
            int64_t ni = x->numel;
            double *u = malloc((size_t)(ni ? ni : 1) * sizeof *u);
            saved = malloc((size_t)(ni ? ni : 1) * sizeof *saved);
            if (!u || !saved) {
                free(u);
                goto nomem;
            }
            double unorm = 0, analytical = 0;
            for (int64_t j = 0; j < ni; j++) {
                u[j] = nb_rng_normal(&rng);
                unorm += u[j] * u[j];
            }
            unorm = sqrt(unorm) > 0 ? sqrt(unorm) : 1;
            for (int64_t j = 0; j < ni; j++) {
                u[j] /= unorm;
                saved[j] = get_at(x, j);
                analytical += grads[i][j] * u[j];
            }
            for (int64_t j = 0; j < ni; j++) set_at(x, j, saved[j] + o.eps * u[j]);
            fp = eval_values(f, ctx, inputs, n, &m);
            for (int64_t j = 0; j < ni; j++) set_at(x, j, saved[j] - o.eps * u[j]);
            fm = fp ? eval_values(f, ctx, inputs, n, &m) : NULL;
            for (int64_t j = 0; j < ni; j++) set_at(x, j, saved[j]);
            free(u);
            free(saved);
            saved = NULL;
            if (!fp || !fm) {
                st = nb_last_status();
                goto done;
            }
            double numerical = 0;
            for (int64_t r = 0; r < m; r++) numerical += (fp[r] - fm[r]) / (2 * o.eps) * v[r];
            free(fp);
            free(fm);
            fp = fm = NULL;
            consider(&rep->worst[i], &o, -1, -1, analytical, numerical);
        }
    } else {
        /* Analytical Jacobians, one backward pass per output element. */
        double *rows[NB_GRADCHECK_MAX_INPUTS] = {0};
        for (int i = 0; i < n; i++) {
            if (!grads[i]) continue;
            rows[i] = malloc((size_t)(m ? m : 1) * (size_t)(inputs[i]->numel ? inputs[i]->numel : 1) * sizeof(double));
            if (!rows[i]) {
                for (int k = 0; k < i; k++) free(rows[k]);
                goto nomem;
            }
        }
        for (int64_t r = 0; r < m && st == NB_OK; r++) {
            v[r] = 1;
            st = eval_vjp(f, ctx, inputs, n, v, grads);
            v[r] = 0;
            for (int i = 0; i < n && st == NB_OK; i++)
                if (grads[i]) memcpy(rows[i] + r * inputs[i]->numel, grads[i], (size_t)inputs[i]->numel * sizeof(double));
        }
        /* Numerical Jacobians, column by column, compared as they come. */
        for (int i = 0; i < n && st == NB_OK; i++) {
            nb_tensor *x = inputs[i];
            if (!grads[i]) continue;
            for (int64_t j = 0; j < x->numel && st == NB_OK; j++) {
                double orig = get_at(x, j);
                set_at(x, j, orig + o.eps);
                fp = eval_values(f, ctx, inputs, n, &m);
                set_at(x, j, orig - o.eps);
                fm = fp ? eval_values(f, ctx, inputs, n, &m) : NULL;
                set_at(x, j, orig);
                if (!fp || !fm) {
                    st = nb_last_status();
                    break;
                }
                for (int64_t r = 0; r < m; r++)
                    consider(&rep->worst[i], &o, r, j, rows[i][r * x->numel + j], (fp[r] - fm[r]) / (2 * o.eps));
                free(fp);
                free(fm);
                fp = fm = NULL;
            }
        }
        for (int i = 0; i < n; i++) free(rows[i]);
    }
    if (st != NB_OK) goto done;

    /* PyTorch warns about float32 inputs; nabla says it in the verdict, always
     * with room kept for it: central differences with eps 1e-6 in float32
     * are mostly rounding error. */
    char note[400] = "";
    for (int i = 0; i < n; i++) {
        if (!rep->worst[i].checked || inputs[i]->dtype != NB_F32) continue;
        snprintf(note, sizeof note,
                 "Input #%d requires gradient and is not a double precision floating point (it is float32). This "
                 "check will likely fail if all the inputs are not of double precision floating point: use float64 "
                 "inputs (nb_to_dtype, or nb_module_to_dtype for a module).", i);
        break;
    }
    size_t len = 0, room = sizeof rep->message - (note[0] ? strlen(note) + 12 : 0);
    rep->message[0] = '\0';
    for (int i = 0; i < n; i++) {
        nb_gradcheck_worst *w = &rep->worst[i];
        if (!w->checked) continue;
        if (w->out_index == -2) w->out_index = w->in_index = -1; /* empty input: nothing compared */
        if (w->passed) continue;
        rep->passed = false;
        if (len < room)
            len += (size_t)snprintf(rep->message + len, room - len,
                                    "%sgradcheck: Jacobian mismatch for input %d: worst at input index %lld, output "
                                    "index %lld: analytical %.10g vs numerical %.10g (abs err %.3g, rel err %.3g; "
                                    "atol %g, rtol %g)",
                                    len ? "\n" : "", i, (long long)w->in_index, (long long)w->out_index, w->analytical,
                                    w->numerical, w->abs_err, w->rel_err, o.atol, o.rtol);
    }
    if (rep->passed) snprintf(rep->message, room, "gradcheck passed");
    len = strlen(rep->message);
    if (note[0])
        snprintf(rep->message + len, sizeof rep->message - len, rep->passed ? " (note: %s)" : "\n%s", note);
    goto done;
nomem:
    st = nbi_error(NB_ERR_NOMEM, "gradcheck: out of memory");
done:
    for (int i = 0; i < n; i++) free(grads[i]);
    free(v);
    free(fp);
    free(fm);
    free(saved);
    if (st != NB_OK) rep->passed = false;
    return st;
}
