/* The API tour from the README: build a tiny graph, run backward, and
 * gradcheck it. Build: part of the default build (build/examples/basics/basics). */
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
    return report.passed ? 0 : 1;
}
