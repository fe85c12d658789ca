/* Shared helpers for nabla's Check suites. */
#ifndef NB_TESTUTIL_H
#define NB_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <string.h>

#include "nabla.h"

/* Run one suite; the exit code is what CTest judges. */
int nbt_run_suite(Suite *s);

/* ck_assert that a status is NB_OK, printing nabla's message otherwise. */
#define NBT_OK(expr)                                                                     \
    do {                                                                                 \
        nb_status st_ = (expr);                                                          \
        ck_assert_msg(st_ == NB_OK, "%s failed (%d): %s", #expr, (int)st_, nb_last_error()); \
    } while (0)

/* ck_assert that a tensor-returning expression succeeded. */
#define NBT_NOTNULL(expr)                                                                \
    ({                                                                                   \
        nb_tensor *t_ = (expr);                                                          \
        ck_assert_msg(t_ != NULL, "%s returned NULL: %s", #expr, nb_last_error());       \
        t_;                                                                              \
    })

/* Assert that expr (a pointer) is NULL and the error message contains substr. */
#define NBT_FAILS_WITH(expr, substr)                                                     \
    do {                                                                                 \
        nb_clear_error();                                                                \
        const void *p_ = (expr);                                                         \
        ck_assert_msg(p_ == NULL, "%s should have failed", #expr);                       \
        ck_assert_msg(strstr(nb_last_error(), (substr)) != NULL,                         \
                      "%s: message '%s' lacks '%s'", #expr, nb_last_error(), (substr));  \
    } while (0)

/* Assert that expr (an nb_status) failed and the message contains substr. */
#define NBT_STATUS_FAILS_WITH(expr, substr)                                              \
    do {                                                                                 \
        nb_clear_error();                                                                \
        nb_status s_ = (expr);                                                           \
        ck_assert_msg(s_ != NB_OK, "%s should have failed", #expr);                      \
        ck_assert_msg(strstr(nb_last_error(), (substr)) != NULL,                         \
                      "%s: message '%s' lacks '%s'", #expr, nb_last_error(), (substr));  \
    } while (0)

/* Compare every element of t (any dtype/layout) with expected[] within
 * |a - e| <= atol + rtol * |e|. */
void nbt_assert_values(const nb_tensor *t, const double *expected, int64_t n, double atol, double rtol);
/* Assert shape equality. */
void nbt_assert_shape(const nb_tensor *t, int ndim, const int64_t *shape);
/* Assert two tensors are bitwise equal (same shape and dtype). */
void nbt_assert_bitwise_equal(const nb_tensor *a, const nb_tensor *b);
/* A float64 leaf with N(0,1) values (seeded), optionally requiring grad. */
nb_tensor *nbt_randn(uint64_t seed, nb_dtype dtype, int ndim, const int64_t *shape, bool requires_grad);
/* The net of tests/pytorch/nn_reference.py's small_net(), every layer type:
 * Sequential(Conv2d(3, 4, 3, padding 1 reflect), BatchNorm2d(4), LeakyReLU(0.1),
 * MaxPool2d(2), Conv2d(4, 6, 3, padding 1, groups 2), Tanh, AvgPool2d(2),
 * Flatten, Linear(24, 16), Sigmoid, Dropout(0.5), Linear(16, 5), ReLU,
 * LogSoftmax(1)), for [N, 3, 8, 8] inputs. rng (borrowed by Dropout) may be NULL. */
nb_module *nbt_small_net(nb_rng *rng);
/* Run nb_gradcheck with defaults (or fast mode) and assert it passes. */
void nbt_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n, bool fast);



/* ---- table-driven PyTorch twins (the layout: tests/pytorch/twin.py) ----
 * Each case of the twin's file names the op of the C table that computes it
 * from the case's inputs and its parameters p (NULL when it has none). */
typedef nb_tensor *(*nbt_twin_fn)(nb_tensor *const *in, const double *p);
typedef struct nbt_twin_op {
    const char *name;
    nbt_twin_fn f;
} nbt_twin_op;
/* Run every case of file in dtype (the float inputs read back in dtype) and
 * compare the output and the gradients with PyTorch's: shapes equal, values
 * within tol times the tensor's largest finite |value| (1e-5 for float32,
 * 1e-10 for float64), NaN matching NaN and an infinity itself; and every
 * case leaves the memory in use as it found it. Fails for a case whose op is
 * not in the table and for an op that no case uses. */
void nbt_twin_run_all(const char *file, const nbt_twin_op *ops, int nops, nb_dtype dtype);

/* Path of a PyTorch reference file in $NB_TEST_DATA (written by the CTest
 * fixture that runs tests/pytorch/<area>_reference.py). Static buffer. */
const char *nbt_data_path(const char *file);
/* Read HDF5 dataset `name` from file as a tensor of dtype (converted), or abort the test. */
nb_tensor *nbt_h5_read(const char *file, const char *name, nb_dtype dtype);
/* Read an integer/float scalar attribute or 0-d/1-element dataset as double; false if absent. */
bool nbt_h5_read_scalar(const char *file, const char *name, double *out);
/* A twin's cases are groups of datasets (group/name):
 * nbt_ref_read reads one as dtype, a leaf requiring grad if asked;
 * nbt_ref_has says whether the group has it;
 * nbt_ref_close asserts got ~ it in shape and values, within 1e-5 (float32)
 * or 1e-10 (float64) times the largest |expected| (NaN fails). */
nb_tensor *nbt_ref_read(const char *file, const char *group, const char *name, nb_dtype dtype, bool requires_grad);
bool nbt_ref_has(const char *file, const char *group, const char *name);
void nbt_ref_close(const nb_tensor *got, const char *file, const char *group, const char *name);
/* Run f at 1 and at 2 threads: the tensors it leaves in outs[0..3] (NULL
 * when unused) must be bitwise equal. */
void nbt_same_at_1_and_2_threads(void (*f)(nb_tensor **outs));
/* True if the file has a dataset/group at this path. */
bool nbt_h5_exists(const char *file, const char *name);
/* The integer scalar dataset name, for a loop test's count (read before any
 * test runs, so it asserts nothing): 1 when unreadable, so that one case runs
 * and fails loudly. */
int nbt_h5_loop_count(const char *file, const char *name);

/* got against PyTorch's want: the same shape and dtype, every value within
 * |got - want| <= tol * (1 + |want|) (NaN matches NaN); what names the check. */
void nbt_assert_like(const nb_tensor *got, const nb_tensor *want, double tol, const char *what);

/* a (cfg's what) against PyTorch's ref: the same shape, max |a - ref| <= tol
 * * max(1, max |ref|) (NaN fails): for sums whose float32 error scales with
 * the tensor's largest terms (convolutions) rather than each element. */
void nbt_assert_close_norm(const char *what, const char *cfg, const nb_tensor *a, const nb_tensor *ref, double tol);

/* A conv twin's config (tests/pytorch/reference_util.py's conv_datasets),
 * read from group/ of file as dtype: the inputs x, w and, with bias, b
 * (leaves requiring grad), PyTorch's output y and the upstream gradient gy,
 * and PyTorch's gradients gx, gw, gb (b and gb NULL without bias). */
typedef struct nbt_conv_ref {
    nb_tensor *x, *w, *b, *y, *gy, *gx, *gw, *gb;
} nbt_conv_ref;
nbt_conv_ref nbt_conv_ref_read(const char *file, const char *group, nb_dtype dtype, bool bias);
void nbt_conv_ref_release(nbt_conv_ref *r);

/* ---- tables of cases computed by a PyTorch twin ----
 * The twin writes, for each case NAME and dtype DT in (f32, f64), the group
 * NAME/DT with in<i> (the inputs, one kind letter each: f float requiring
 * grad, c float, r float whose value after the op is compared with after<i>
 * (running statistics), i int64), y (the output), and, when some input is f,
 * go (the upstream gradient) and g<i> (the gradient of each f input); and
 * "ncases", the number of cases. The C test lists the same cases in the same
 * order, each with a function computing y with nabla (arg: the case's int). */
typedef nb_tensor *(*nbt_case_fn)(nb_tensor *const *in, int n, int arg);
typedef struct {
    const char *name;
    const char *kinds;
    nbt_case_fn f;
    int arg;
} nbt_case;
/* The twin's file has the table's cases, and as many. */
void nbt_assert_twin_cases(const char *file, const nbt_case *cases, int ncases);
/* Run one case in dtype dt (f32 or f64) and compare everything with tolerance tol. */
void nbt_run_twin_case(const char *file, const nbt_case *c, nb_dtype dt, double tol);
#endif
