/* A user's program as LeakSanitizer sees it: it trains a little (tensors,
 * autograd, an optimizer), releases everything it made, and exits WITHOUT
 * nb_memory_trim(), leaving the memory pool full of cached blocks. Run in the
 * ASan build with detect_leaks=1 (tests/CMakeLists.txt), it must report no
 * leak: the exit code is LeakSanitizer's verdict. Public headers only. */
#include <nabla.h>

#include <stdio.h>

static int fail(const char *what) {
    fprintf(stderr, "exit_without_trim: %s: %s\n", what, nb_last_error());
    return 1;
}

int main(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *w = nb_rand_normal(&rng, NB_F32, NB_SHAPE(64, 32), 0, 0.1);
    if (!w || nb_requires_grad_(w, true) != NB_OK) return fail("weights");
    nb_sgd_options so = nb_sgd_defaults();
    so.lr = 0.01;
    so.momentum = 0.9;
    nb_optimizer *opt = nb_sgd(&w, 1, &so);
    if (!opt) return fail("sgd");
    for (int step = 0; step < 5; step++) {
        nb_scope *s = nb_scope_begin();
        /* batches of several sizes: blocks of many size classes end up cached */
        nb_tensor *x = nb_rand_normal(&rng, NB_F32, NB_SHAPE(8 * (step + 1), 64), 0, 1);
        nb_tensor *loss = nb_mean(nb_tanh(nb_matmul(x, w)));
        nb_optimizer_zero_grad(opt);
        if (!loss || nb_backward(loss) != NB_OK || nb_optimizer_step(opt) != NB_OK) return fail("step");
        nb_scope_end(s);
    }
    nb_optimizer_free(opt);
    nb_tensor_release(w);
    /* The point of the test: the pool holds cached blocks at exit (more than
     * one per size class, so some were chained to others). */
    if (nb_memory_in_use() != 0) {
        fprintf(stderr, "exit_without_trim: %zu bytes still in use\n", nb_memory_in_use());
        return 1;
    }
    if (nb_memory_cached() == 0) {
        fprintf(stderr, "exit_without_trim: nothing cached in the pool: the test would prove nothing\n");
        return 1;
    }
    printf("exit_without_trim: %zu bytes cached at exit, not trimmed\n", nb_memory_cached());
    return 0;
}
