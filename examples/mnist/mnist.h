/* mnist.h: the MNIST data set as nabla tensors, and a shuffling batch iterator.
 *
 *     char err[512];
 *     mnist_dataset train;
 *     if (mnist_load("data/mnist", true, &train, err, sizeof err) != NB_OK) {
 *         fprintf(stderr, "%s\n", err);
 *         return 1;
 *     }
 *     mnist_batches it;
 *     mnist_batches_init(&it, &train, 64, true, 1234, err, sizeof err);
 *     for (int epoch = 0; epoch < 10; epoch++) {
 *         mnist_batches_start_epoch(&it);
 *         nb_tensor *x, *y;                          // borrowed
 *         while (mnist_batches_next(&it, &x, &y)) {  // x: (B,1,28,28) f32, y: (B,) i64
 *             ...
 *         }
 *     }
 *     mnist_batches_free(&it);
 *     mnist_free(&train);
 *
 * Images are normalised the way torchvision's MNIST examples do it,
 * ToTensor() then Normalize((0.1307,), (0.3081,)): in float32,
 * x = (byte / 255 - 0.1307) / 0.3081, so the values are bitwise PyTorch's.
 * Tensors held by these structs are owned by them, never by an open nb_scope.
 * Errors: an nb_status plus a message in the caller's err buffer (see idx.h).
 */
#ifndef MNIST_MNIST_H
#define MNIST_MNIST_H

#include <stdbool.h>

#include "idx.h"
#include "nabla/tensor.h"

#define MNIST_MEAN 0.1307f
#define MNIST_STD 0.3081f
#define MNIST_SIDE 28
#define MNIST_CLASSES 10

/* Default data directory (set by CMake to <repo>/data/mnist, where
 * scripts/fetch_mnist.sh puts the files). */
#ifndef MNIST_DEFAULT_DIR
#define MNIST_DEFAULT_DIR "data/mnist"
#endif

typedef struct mnist_dataset {
    nb_tensor *images; // (N, 1, 28, 28) float32, normalised
    nb_tensor *labels; // (N,) int64, 0..9
    int64_t count;     // N
} mnist_dataset;

/* Load the training (train-*) or test (t10k-*) split from dir, taking
 * <name>-idx?-ubyte if present, else <name>-idx?-ubyte.gz. Images must be
 * 28 x 28 and as many as the labels. Normalised with MNIST_MEAN / MNIST_STD. */
nb_status mnist_load(const char *dir, bool train, mnist_dataset *ds, char *err, size_t errlen);
/* Like mnist_load with another normalisation (Fashion-MNIST, say); std > 0. */
nb_status mnist_load_normalized(const char *dir, bool train, float mean, float std, mnist_dataset *ds, char *err,
                                size_t errlen);
/* Build a data set from bytes already read (pixels: count*28*28, labels < 10). */
nb_status mnist_from_idx(const idx_images *im, const idx_labels *lb, float mean, float std, mnist_dataset *ds,
                         char *err, size_t errlen);
/* Release the tensors and zero the struct; safe on a zeroed struct. */
void mnist_free(mnist_dataset *ds);

/* Batches of a data set in a fixed or seeded shuffled order, copied into two
 * tensors allocated once. Like PyTorch's DataLoader with drop_last=False, the
 * last batch of an epoch is smaller when N is not a multiple of B.
 * Sharded (mnist_batches_shard) it is DataLoader over DistributedSampler:
 * every rank draws the same permutation (same seed), pads it by wrapping
 * around to a multiple of the world size W, and takes positions
 * rank, rank + W, rank + 2W, ... of it: ceil(N / W) samples per rank, disjoint
 * when W divides N. Then batch k of rank r holds the samples W*B*k + r + W*j
 * of the permutation, so W ranks with batch B see together exactly what one
 * process with batch W*B sees. */
typedef struct mnist_batches {
    const mnist_dataset *ds; // borrowed: must outlive the iterator
    int64_t batch_size;      // B
    bool shuffle;
    nb_rng rng;              // draws each epoch's permutation
    int64_t *order;          // (N,) sample indices of the current epoch
    int64_t pos;             // next position in this rank's shard
    int64_t count;           // samples per epoch for this rank: N, or ceil(N / world) when sharded
    int rank, world;         // shard: 0, 1 unless mnist_batches_shard was called
    nb_tensor *x, *y;        // (B, 1, 28, 28) float32, (B,) int64
    nb_tensor *x_tail, *y_tail; // views of the first N % B rows of x, y; NULL if B divides N
} mnist_batches;

/* Prepare an iterator over ds with batch size B >= 1; shuffle draws a new
 * permutation each epoch from an nb_rng seeded with seed. No epoch is started. */
nb_status mnist_batches_init(mnist_batches *it, const mnist_dataset *ds, int64_t batch_size, bool shuffle,
                             uint64_t seed, char *err, size_t errlen);
/* Make the iterator yield only rank's shard of each epoch (0 <= rank < world),
 * as DistributedSampler(num_replicas=world, rank=rank, drop_last=False);
 * call after init, before the first epoch. */
nb_status mnist_batches_shard(mnist_batches *it, int rank, int world, char *err, size_t errlen);
/* Start an epoch: order becomes 0..N-1, Fisher-Yates shuffled if shuffle is set. */
void mnist_batches_start_epoch(mnist_batches *it);
/* The next batch of the epoch into *x, *y (borrowed, overwritten by the next
 * call, so finish backward first); false when the epoch is over. */
bool mnist_batches_next(mnist_batches *it, nb_tensor **x, nb_tensor **y);
/* Batches per epoch: ceil(count / B) (count = N unless sharded). */
int64_t mnist_batches_per_epoch(const mnist_batches *it);
/* Release everything the iterator holds and zero it; safe on a zeroed struct. */
void mnist_batches_free(mnist_batches *it);

#endif
