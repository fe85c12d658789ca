/* consumer.c: a user's program built against an installed nabla (see
 * tests/install/run.sh, which builds it with find_package, pkg-config and
 * add_subdirectory). It trains a tiny CNN (conv, ReLU, max-pool, linear,
 * cross-entropy, SGD) for a few steps on fixed random data and checks that
 * the loss falls, saves the weights to HDF5, loads them into a fresh net and
 * checks both nets give bitwise the same output.
 * Usage: consumer WEIGHTS.h5 [mpi|nompi]   (the second argument: whether
 * NB_HAVE_MPI must be defined, i.e. whether the build passed it on). */
#include <nabla.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef NB_HAVE_MPI
#include <nabla/dist.h>
#endif

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "consumer: %s failed: %s\n", #cond, nb_last_error());      \
            return 1;                                                                 \
        }                                                                             \
    } while (0)

/* conv 1->4 3x3, ReLU, max-pool 2, flatten, linear 36->3: [N, 1, 8, 8] -> [N, 3]. */
static nb_module *tiny_cnn(uint64_t seed) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    return nb_sequential_module(NB_MODULES(nb_conv2d_module(1, 4, 3, 3, NULL, true, &rng), nb_relu_module(),
                                           nb_max_pool2d_module(&pool), nb_flatten_module(1, -1),
                                           nb_linear_module(4 * 3 * 3, 3, true, &rng)));
}

/* Cross-entropy of net on (x, y), as a double; NAN on error. */
static double loss_value(nb_module *net, const nb_tensor *x, const nb_tensor *y, nb_optimizer *opt) {
    nb_scope *s = nb_scope_begin();
    nb_tensor *loss = nb_cross_entropy(nb_module_forward(net, x), y, NB_REDUCTION_MEAN);
    double v = NAN;
    if (loss && nb_tensor_item(loss, &v) == NB_OK && opt) {
        nb_optimizer_zero_grad(opt);
        if (nb_backward(loss) != NB_OK || nb_optimizer_step(opt) != NB_OK) v = NAN;
    }
    nb_scope_end(s);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: consumer WEIGHTS.h5 [mpi|nompi]\n");
        return 2;
    }
    printf("nabla %s (headers %s)\n", nb_version(), NB_VERSION_STRING);
    CHECK(strcmp(nb_version(), NB_VERSION_STRING) == 0);
#ifdef NB_HAVE_MPI
    CHECK(argc < 3 || strcmp(argv[2], "mpi") == 0);
    CHECK(nb_dist_world_size() == 1); /* not under mpirun: a world of one */
#else
    CHECK(argc < 3 || strcmp(argv[2], "nompi") == 0);
#endif

    nb_rng data_rng;
    nb_rng_seed(&data_rng, 7);
    nb_tensor *x = nb_rand_normal(&data_rng, NB_F32, NB_SHAPE(12, 1, 8, 8), 0, 1);
    int64_t labels[12];
    for (int i = 0; i < 12; i++) labels[i] = i % 3;
    nb_tensor *y = nb_from_data(NB_I64, NB_SHAPE(12), labels);
    CHECK(x && y);

    nb_module *net = tiny_cnn(1);
    CHECK(net);
    nb_tensor *params[8];
    int n = nb_module_parameters(net, params, 8);
    CHECK(n == 4);
    nb_sgd_options sgd = nb_sgd_defaults();
    sgd.lr = 0.1;
    sgd.momentum = 0.9;
    nb_optimizer *opt = nb_sgd(params, n, &sgd);
    CHECK(opt);

    double first = loss_value(net, x, y, NULL), last = first;
    for (int step = 0; step < 30; step++) {
        last = loss_value(net, x, y, opt);
        CHECK(!isnan(last));
    }
    last = loss_value(net, x, y, NULL);
    printf("loss %.4f -> %.4f after 30 SGD steps\n", first, last);
    CHECK(last < 0.5 * first);

    /* HDF5 round trip into a differently initialised net. */
    CHECK(nb_module_save_hdf5(net, argv[1]) == NB_OK);
    nb_module *copy = tiny_cnn(2);
    CHECK(copy);
    CHECK(nb_module_load_hdf5(copy, argv[1], true, NULL) == NB_OK);
    nb_tensor *a = nb_module_forward(net, x), *b = nb_module_forward(copy, x);
    CHECK(a && b);
    float va[36], vb[36];
    CHECK(nb_tensor_numel(a) == 36 && nb_tensor_copy_out(a, va, NB_F32) == NB_OK);
    CHECK(nb_tensor_copy_out(b, vb, NB_F32) == NB_OK);
    CHECK(memcmp(va, vb, sizeof va) == 0);
    printf("weights saved to %s and loaded back: same outputs\n", argv[1]);

    nb_tensor_release(a);
    nb_tensor_release(b);
    nb_module_free(copy);
    nb_optimizer_free(opt);
    nb_module_free(net);
    nb_tensor_release(x);
    nb_tensor_release(y);
    printf("consumer: OK\n");
    return 0;
}
