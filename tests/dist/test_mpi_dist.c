/* Check suite for nabla/dist.h, run by CTest under `mpirun -np W` (W = 2
 * and 3): every rank runs the same tests in the same order, so the
 * collectives inside them match. Expected values are exact identities:
 * each rank regenerates the other ranks' inputs from their seeds, and a
 * gradient mean is recomputed here by adding them in rank order. */
#include <nabla/dist.h>

#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

static int rank, world;

/* Linear(5, 4) -> BatchNorm-free tail Linear(4, 3) -> Linear(3, 2, bias=false):
 * five parameters of 20, 4, 12, 3 and 6 floats. */
static nb_module *make_net(uint64_t seed) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    return nb_sequential_module(NB_MODULES(nb_linear_module(5, 4, true, &rng), nb_linear_module(4, 3, true, &rng),
                                           nb_linear_module(3, 2, false, &rng)));
}

/* The gradient rank r produces for parameter i: N(0, 1) floats from seed 100 r + i. */
static nb_tensor *grad_of(int r, int i, const nb_tensor *p) {
    return nbt_randn(100 * (uint64_t)r + (uint64_t)i, NB_F32, nb_tensor_ndim(p), nb_tensor_shape(p), false);
}

/* Give every parameter (or those with skip[i] false) this rank's gradient, by backward of sum(p * g). */
static void set_grads(nb_module *m, const bool *skip) {
    nb_tensor *ps[8];
    int n = nb_module_parameters(m, ps, 8);
    nb_module_zero_grad(m);
    nb_scope *s = nb_scope_begin();
    nb_tensor *loss = NULL;
    for (int i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        nb_tensor *term = nb_sum(nb_mul(ps[i], grad_of(rank, i, ps[i])));
        loss = loss ? nb_add(loss, term) : term;
    }
    NBT_OK(nb_backward(loss));
    nb_scope_end(s);
}

/* ((g_0 + g_1) + g_2 ...) / W in float, over the ranks with has[r] (NULL: all). */
static void expected_mean(int i, const nb_tensor *p, const bool *has, float *out) {
    int64_t n = nb_tensor_numel(p);
    for (int64_t j = 0; j < n; j++) out[j] = 0;
    for (int r = 0; r < world; r++) {
        if (has && !has[r]) continue;
        nb_tensor *g = grad_of(r, i, p);
        const float *v = nb_tensor_f32(g);
        for (int64_t j = 0; j < n; j++) out[j] += v[j];
        nb_tensor_release(g);
    }
    for (int64_t j = 0; j < n; j++) out[j] /= (float)world;
}

START_TEST(test_rank_and_world) {
    ck_assert(nb_dist_launched());
    ck_assert(nb_dist_is_initialized());
    ck_assert_int_eq(nb_dist_world_size(), world);
    ck_assert(rank >= 0 && rank < world);
    int64_t ranks[2] = {rank, 1};
    NBT_OK(nb_dist_allreduce_sum_i64(ranks, 2));
    ck_assert_int_eq(ranks[0], (int64_t)world * (world - 1) / 2); /* every rank counted once */
    ck_assert_int_eq(ranks[1], world);
    double d[1] = {0.5 * (rank + 1)};
    NBT_OK(nb_dist_allreduce_sum_f64(d, 1));
    ck_assert(d[0] == 0.25 * world * (world + 1)); /* exact in binary */
    NBT_OK(nb_dist_allreduce_sum_f64(NULL, 0));
    NBT_STATUS_FAILS_WITH(nb_dist_allreduce_sum_i64(NULL, 3), "expected n >= 0 values (not NULL)");
    NBT_OK(nb_dist_barrier());
    NBT_STATUS_FAILS_WITH(nb_dist_init(NULL, NULL), "dist_init: already initialised");
}
END_TEST

START_TEST(test_broadcast_module) {
    /* Ranks start from different weights and buffers; afterwards all hold the last rank's. */
    int root = world - 1;
    nb_module *m = nb_sequential_module(NB_MODULES(make_net(7 + (uint64_t)rank), nb_batch_norm2d_module(3, 1e-5, 0.1, true, true)));
    NBT_OK(nb_tensor_fill_(nb_module_state(m, "1.running_mean"), rank + 0.5));
    NBT_OK(nb_tensor_fill_(nb_module_state(m, "1.num_batches_tracked"), 10 + rank));
    NBT_OK(nb_dist_broadcast_module(m, root));
    nb_module *want = nb_sequential_module(NB_MODULES(make_net(7 + (uint64_t)root), nb_batch_norm2d_module(3, 1e-5, 0.1, true, true)));
    for (const char *const *k = (const char *const[]){"0.0.weight", "0.0.bias", "0.1.weight", "0.2.weight", NULL}; *k; k++)
        nbt_assert_bitwise_equal(nb_module_state(m, *k), nb_module_state(want, *k));
    double v;
    NBT_OK(nb_tensor_get(nb_module_state(m, "1.running_mean"), (int64_t[]){2}, &v));
    ck_assert(v == root + 0.5);
    NBT_OK(nb_tensor_item(nb_module_state(m, "1.num_batches_tracked"), &v));
    ck_assert(v == 10 + root);
    NBT_STATUS_FAILS_WITH(nb_dist_broadcast_module(m, world), "expected 0 <= root <");
    nb_module_free(want);
    nb_module_free(m);
}
END_TEST

/* Every bucket size and both modes give the mean of the ranks' gradients. */
START_TEST(test_grad_mean) {
    static const size_t caps[] = {1, 64, 100, NB_DIST_DEFAULT_BUCKET_BYTES};
    /* 16 floats at 64 bytes: {5 flags + w0 (20, alone as it overflows)} {b0 4 + w1 12} {b1 3 + w2 6};
     * 25 floats at 100 bytes: {5 flags + w0} {b0, w1, b1, w2} */
    static const int buckets[] = {5, 3, 2, 1};
    for (int mode = 0; mode < 2; mode++)
        for (size_t c = 0; c < sizeof caps / sizeof *caps; c++) {
            nb_module *m = make_net(3);
            nb_dist_grad_sync *g = nb_dist_grad_sync_new(m, caps[c], (nb_dist_reduce_mode)mode);
            ck_assert_msg(g != NULL, "%s", nb_last_error());
            ck_assert_int_eq(nb_dist_grad_sync_num_buckets(g), buckets[c]);
            ck_assert_uint_eq(nb_dist_grad_sync_bytes(g), (5 + 20 + 4 + 12 + 3 + 6) * sizeof(float));
            set_grads(m, NULL);
            NBT_OK(nb_dist_grad_sync_run(g));
            nb_tensor *ps[8];
            int n = nb_module_parameters(m, ps, 8);
            for (int i = 0; i < n; i++) {
                float want[32];
                expected_mean(i, ps[i], NULL, want);
                const float *got = nb_tensor_f32(nb_tensor_grad(ps[i]));
                int64_t len = nb_tensor_numel(ps[i]);
                for (int64_t j = 0; j < len; j++) {
                    /* The ordered mode adds in rank order, as expected_mean does: bitwise.
                     * MPI_Allreduce: bitwise for 2 ranks (one commutative addition), else within rounding. */
                    if (mode == NB_DIST_ORDERED || world == 2)
                        ck_assert_msg(got[j] == want[j], "mode %d cap %zu param %d [%lld]: %.9g != %.9g", mode,
                                      caps[c], i, (long long)j, got[j], want[j]);
                    else
                        ck_assert_float_eq_tol(got[j], want[j], 1e-6f * (1 + fabsf(want[j])));
                }
            }
            nb_dist_grad_sync_free(g);
            nb_module_free(m);
        }
}
END_TEST

/* A parameter no rank has a gradient for stays without; one only rank 0 has
 * becomes g_0 / W everywhere. */
START_TEST(test_grad_missing) {
    nb_module *m = make_net(3);
    nb_dist_grad_sync *g = nb_dist_grad_sync_new(m, 64, NB_DIST_ALLREDUCE);
    ck_assert_ptr_nonnull(g);
    bool skip[5] = {false, false, rank != 0, false, true}; /* param 2: rank 0 only; param 4: nobody */
    set_grads(m, skip);
    NBT_OK(nb_dist_grad_sync_run(g));
    nb_tensor *ps[8];
    nb_module_parameters(m, ps, 8);
    ck_assert_ptr_null(nb_tensor_grad(ps[4]));
    ck_assert_ptr_nonnull(nb_tensor_grad(ps[2]));
    bool has[16] = {true};
    float want[32];
    expected_mean(2, ps[2], has, want);
    const float *got = nb_tensor_f32(nb_tensor_grad(ps[2]));
    for (int64_t j = 0; j < nb_tensor_numel(ps[2]); j++) ck_assert(got[j] == want[j]);
    expected_mean(0, ps[0], NULL, want);
    got = nb_tensor_f32(nb_tensor_grad(ps[0]));
    for (int64_t j = 0; j < nb_tensor_numel(ps[0]); j++) ck_assert_float_eq_tol(got[j], want[j], 1e-6f * (1 + fabsf(want[j])));
    nb_dist_grad_sync_free(g);
    nb_module_free(m);
}
END_TEST

/* Ranks holding different models fail alike instead of exchanging garbage or hanging. */
START_TEST(test_mismatch_fails_everywhere) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = rank == 0 ? make_net(3) : nb_linear_module(5, 4, true, &rng);
    NBT_FAILS_WITH(nb_dist_grad_sync_new(m, 64, NB_DIST_ALLREDUCE), "expected the same number of parameters on every rank");
    NBT_STATUS_FAILS_WITH(nb_dist_broadcast_module(m, 0), "expected the same number of state tensors on every rank");
    nb_module_free(m);
    m = make_net(3);
    NBT_FAILS_WITH(nb_dist_grad_sync_new(m, rank == 0 ? 64 : 1, NB_DIST_ALLREDUCE), "number of buckets (bucket_bytes)");
    NBT_FAILS_WITH(nb_dist_grad_sync_new(m, 0, NB_DIST_ALLREDUCE), "expected bucket_bytes >= 1");
    NBT_FAILS_WITH(nb_dist_grad_sync_new(NULL, 64, NB_DIST_ALLREDUCE), "");
    NBT_STATUS_FAILS_WITH(nb_dist_grad_sync_run(NULL), "g is NULL");
    nb_module_free(m);
}
END_TEST

int main(int argc, char **argv) {
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "test_mpi_dist: %s\n", nb_last_error());
        return 1;
    }
    rank = nb_dist_rank();
    world = nb_dist_world_size();
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("mpi");
    tcase_add_test(tc, test_rank_and_world);
    tcase_add_test(tc, test_broadcast_module);
    tcase_add_test(tc, test_grad_mean);
    tcase_add_test(tc, test_grad_missing);
    tcase_add_test(tc, test_mismatch_fails_everywhere);
    suite_add_tcase(s, tc);
    int rc = nbt_run_suite(s);
    /* A failure on one rank only must fail the job: share the verdict. */
    int64_t failed = rc != 0;
    nb_dist_allreduce_sum_i64(&failed, 1);
    nb_status st = nb_dist_finalize();
    return failed || st != NB_OK ? 1 : 0;
}
