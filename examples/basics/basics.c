/* The API tour from the README: build a tiny graph, run backward, and
 * gradcheck it; then train a small module with an optimizer, the README's
 * loop. Build: part of the default build (build/examples/basics/basics). */
#include <nabla.h>

#include <stdio.h>

/* f(x, w, b) = sum(tanh(x @ w + b)) */
static nb_tensor *f(nb_tensor *const *in, int n, void *ctx) {
    (void)n, (void)ctx;
    nb_scope *s = nb_scope_begin();
    nb_tensor *h = nb_add(nb_matmul(in[0], in[1]), in[2]);
    nb_tensor *y = nb_tensor_retain(nb_sum(nb_tanh(h))); /* keep y past the scope */
    nb_scope_end(s);
    return y; /* NULL if any op failed; nb_last_error() says which and why */
}

/* A module fitted by the README's training loop: y = 3 x0 - 2 x1 learned by
 * Linear(2, 16) -> Tanh -> Linear(16, 1) with Adam. Returns the final loss
 * (and the first one in *first), or a negative value on error. */
static double fit_module(double *first) {
    nb_module *net = nb_sequential_module(NB_MODULES(nb_linear_module(2, 16, true, NULL), nb_tanh_module(),
                                                     nb_linear_module(16, 1, true, NULL)));
    nb_param_list ps = nb_module_parameter_list(net); /* every parameter, however many */
    nb_adam_options o = nb_adam_defaults();
    o.lr = 0.05;
    nb_optimizer *opt = nb_adam(ps.params, ps.n, &o); /* NULL if net or the list failed */
    nb_param_list_free(&ps);                          /* the optimizer holds its own references */
    if (!opt) return -1;
    nb_tensor *x = nb_rand_normal(NULL, NB_F32, NB_SHAPE(64, 2), 0, 1);
    nb_tensor *w = nb_from_data(NB_F32, NB_SHAPE(2, 1), (const float[]){3, -2});
    nb_tensor *y = nb_matmul(x, w);
    double loss_value = -1;
    for (int step = 0; step < 200 && y; step++) {
        nb_scope *s = nb_scope_begin(); /* frees the step's graph at the end */
        nb_tensor *loss = nb_mse_loss(nb_module_forward(net, x), y, NB_REDUCTION_MEAN);
        nb_optimizer_zero_grad(opt);
        bool ok = loss && nb_backward(loss) == NB_OK && nb_optimizer_step(opt) == NB_OK;
        if (ok) nb_tensor_item(loss, &loss_value);
        if (ok && step == 0) *first = loss_value;
        nb_scope_end(s);
        if (!ok) {
            loss_value = -1;
            break;
        }
    }
    nb_tensor_release(x);
    nb_tensor_release(w);
    nb_tensor_release(y);
    nb_optimizer_free(opt);
    nb_module_free(net);
    return loss_value;
}

int main(void) {
    nb_manual_seed(0);
    nb_tensor *x = nb_rand_normal(NULL, NB_F64, NB_SHAPE(4, 3), 0, 1);
    nb_tensor *w = nb_rand_normal(NULL, NB_F64, NB_SHAPE(3, 2), 0, 1);
    nb_tensor *b = nb_zeros(NB_F64, NB_SHAPE(2));
    nb_requires_grad_(w, true);
    nb_requires_grad_(b, true);

    nb_tensor *inputs[] = {x, w, b};
    nb_tensor *y = f(inputs, 3, NULL);
    if (!y || nb_backward(y) != NB_OK) {
        fprintf(stderr, "error: %s\n", nb_last_error());
        return 1;
    }
    double value;
    nb_tensor_item(y, &value);
    printf("y = %.6f\n", value);
    printf("dy/db = [%.6f, %.6f]\n", nb_tensor_f64(nb_tensor_grad(b))[0], nb_tensor_f64(nb_tensor_grad(b))[1]);

    nb_gradcheck_report report;
    if (nb_gradcheck(f, NULL, inputs, 3, NULL, &report) != NB_OK) {
        fprintf(stderr, "error: %s\n", nb_last_error());
        return 1;
    }
    printf("%s\n", report.message);

    /* Errors are values, never crashes: */
    nb_tensor *bad = nb_matmul(x, x);
    if (!bad) printf("expected error: %s\n", nb_last_error());

    nb_tensor_release(y);
    nb_tensor_release(x);
    nb_tensor_release(w);
    nb_tensor_release(b);

    double first = 0, last = fit_module(&first);
    if (last < 0) {
        fprintf(stderr, "error: %s\n", nb_last_error());
        return 1;
    }
    printf("module fit: mse %.4f -> %.4f after 200 Adam steps\n", first, last);
    return report.passed && last < first / 10 ? 0 : 1;
}
