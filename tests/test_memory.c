/* Memory stays flat during training: a small MNIST-like net built from
 * modules (conv, batch norm, relu, max pool, dropout, linear, log_softmax),
 * Adam, on a synthetic data set. After the first step the bytes held by live
 * tensors must not change, the pool's cache must stop growing, and the
 * process's resident memory after epoch 3 must be within 5% of epoch 1's. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#define T(...) NB_SHAPE(__VA_ARGS__)

enum { NSAMPLES = 256, BATCH = 16, SIDE = 12, STEPS_PER_EPOCH = NSAMPLES / BATCH };

/* Resident set size in bytes, from /proc/self/statm (second field, in pages). */
static size_t resident_bytes(void) {
    FILE *fp = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(fp);
    unsigned long size = 0, resident = 0;
    ck_assert_int_eq(fscanf(fp, "%lu %lu", &size, &resident), 2);
    fclose(fp);
    return (size_t)resident * 4096u;
}

/* Train 200 steps with nthreads threads. The cache check needs one thread:
 * GEMM takes a packing buffer per thread from the pool, and how many of
 * those are out at once (so cached afterwards) depends on how the threads
 * happened to overlap, up to one per thread, at whatever step that first
 * happens. Bytes in use and resident memory are checked at any count. */
static void train(int nthreads, bool check_cache) {
    int saved_threads = nb_get_num_threads();
    NBT_OK(nb_set_num_threads(nthreads));
    static nb_rng rng; /* Dropout keeps a pointer to it */
    nb_rng_seed(&rng, 3);
    nb_conv2d_params cp = nb_conv2d_defaults();
    cp.padding[0] = cp.padding[1] = 1;
    nb_pool2d_params pp = nb_pool2d_defaults(2);
    nb_module *net = nb_sequential_module(NB_MODULES(
        nb_conv2d_module(1, 8, 3, 3, &cp, true, &rng), nb_batch_norm2d_module(8, 1e-5, 0.1, true, true),
        nb_relu_module(), nb_max_pool2d_module(&pp), nb_dropout_module(0.25, &rng), nb_flatten_module(1, -1),
        nb_linear_module(8 * 6 * 6, 32, true, &rng), nb_relu_module(), nb_linear_module(32, 10, true, &rng),
        nb_log_softmax_module(1)));
    ck_assert_ptr_nonnull(net);
    nb_tensor *params[32];
    int np = nb_module_parameters(net, params, 32);
    nb_adam_options ao = nb_adam_defaults();
    nb_optimizer *opt = nb_adam(params, np, &ao);
    ck_assert_ptr_nonnull(opt);

    /* the synthetic data set: images and labels */
    nb_tensor *images = NBT_NOTNULL(nb_rand_normal(&rng, NB_F32, T(NSAMPLES, 1, SIDE, SIDE), 0, 1));
    nb_tensor *labels = NBT_NOTNULL(nb_zeros(NB_I64, T(NSAMPLES)));
    int64_t *lp = nb_tensor_i64(labels);
    for (int i = 0; i < NSAMPLES; i++) lp[i] = (int64_t)nb_rng_below(&rng, 10);

    size_t in_use_1 = 0, cached_3 = 0, rss_epoch1 = 0, rss_epoch3 = 0;
    double first_loss = 0, last_loss = 0;
    for (int step = 1; step <= 200; step++) {
        int64_t b = (step - 1) % STEPS_PER_EPOCH;
        nb_scope *sc = nb_scope_begin();
        nb_tensor *x = nb_narrow(images, 0, b * BATCH, BATCH);
        nb_tensor *y = nb_narrow(labels, 0, b * BATCH, BATCH);
        nb_optimizer_zero_grad(opt);
        nb_tensor *loss = nb_nll_loss(nb_module_forward(net, x), y, NB_REDUCTION_MEAN);
        ck_assert_msg(loss != NULL, "step %d: %s", step, nb_last_error());
        NBT_OK(nb_backward(loss));
        NBT_OK(nb_optimizer_step(opt));
        NBT_OK(nb_tensor_item(loss, step == 1 ? &first_loss : &last_loss));
        nb_scope_end(sc);

        size_t in_use = nb_memory_in_use(), cached = nb_memory_cached();
        if (step == 1) in_use_1 = in_use;
        else ck_assert_msg(in_use == in_use_1, "step %d: %zu bytes in use, %zu after step 1", step, in_use, in_use_1);
        /* after the first steps (Adam's state appears on step 1) the pool has
         * every block a step needs: its cache must stop growing */
        if (step == 3) cached_3 = cached;
        if (step > 3 && check_cache) ck_assert_msg(cached <= cached_3, "step %d: %zu bytes cached, %zu at step 3", step, cached, cached_3);
        if (step == STEPS_PER_EPOCH) rss_epoch1 = resident_bytes();
        if (step == 3 * STEPS_PER_EPOCH) rss_epoch3 = resident_bytes();
    }
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer quarantines freed memory (and the pool's cached blocks
     * are poisoned, not reused by malloc), so resident memory grows by design
     * there; the byte counts above still hold. */
    (void)rss_epoch1, (void)rss_epoch3;
#else
    ck_assert_msg(rss_epoch3 <= rss_epoch1 + rss_epoch1 / 20 && rss_epoch3 + rss_epoch1 / 20 >= rss_epoch1,
                  "resident memory after epoch 3 is %zu bytes, after epoch 1 %zu (more than 5%% apart)", rss_epoch3,
                  rss_epoch1);
#endif
    ck_assert_msg(last_loss < first_loss, "the net does not train (loss %g -> %g): the loop is not the real thing",
                  first_loss, last_loss);
    nb_tensor_release(images);
    nb_tensor_release(labels);
    nb_optimizer_free(opt);
    nb_module_free(net);
    ck_assert_uint_eq(nb_memory_in_use(), 0);
    NBT_OK(nb_set_num_threads(saved_threads));
}

START_TEST(test_training_memory_is_flat) {
    train(1, true);
    train(nb_get_num_threads() > 1 ? nb_get_num_threads() : 2, false);
}
END_TEST

/* The pool hands a released block out again (same size class, most recent
 * first), and under AddressSanitizer a cached block is poisoned from its
 * first byte to its last, so a use after release is still reported although
 * the block was never handed back to malloc. */
START_TEST(test_pool_reuses_and_poisons_cached_blocks) {
    nb_memory_trim();
    nb_tensor *a = NBT_NOTNULL(nb_zeros(NB_F32, T(1000)));
    char *pa = nb_tensor_data(a);
    nb_tensor_release(a);
    ck_assert_uint_gt(nb_memory_cached(), 0);
#if defined(__SANITIZE_ADDRESS__)
    ck_assert(__asan_address_is_poisoned(pa));
    ck_assert(__asan_address_is_poisoned(pa + 4000 - 1));
    ck_assert_ptr_eq(__asan_region_is_poisoned(pa, 4000), pa);
#endif
    nb_tensor *b = NBT_NOTNULL(nb_ones(NB_F32, T(999))); /* same size class */
    ck_assert_ptr_eq(nb_tensor_data(b), pa);
#if defined(__SANITIZE_ADDRESS__)
    ck_assert_ptr_null(__asan_region_is_poisoned(pa, 999 * 4));
#endif
    nb_tensor_release(b);
    nb_memory_trim();
    ck_assert_uint_eq(nb_memory_cached(), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("memory");
    tcase_add_test(tc, test_training_memory_is_flat);
    tcase_add_test(tc, test_pool_reuses_and_poisons_cached_blocks);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
