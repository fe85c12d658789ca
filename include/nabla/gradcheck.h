/* nabla/gradcheck.h: numerical gradient checking, as torch.autograd.gradcheck.
 *
 * For every input that requires grad, the analytical Jacobian (from
 * nb_backward) is compared with central finite differences
 *     J[:, j] ~ (f(x + eps e_j) - f(x - eps e_j)) / (2 eps)
 * element by element with allclose: |analytical - numerical| <= atol + rtol * |numerical|.
 * Fast mode compares the scalar v^T J u for random u, v instead (2 forward and
 * 1 backward pass per input), which makes large inputs affordable.
 * Inputs should be float64; the defaults are PyTorch's and assume it. With a
 * float32 input that requires grad the check still runs, and the report's
 * message (pass or fail) says why it is unreliable, in PyTorch's words:
 * "Input #0 requires gradient and is not a double precision floating point...".
 */
#ifndef NABLA_GRADCHECK_H
#define NABLA_GRADCHECK_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The function under test: returns a new tensor (any shape) computed from
 * inputs[0..n-1], or NULL on error. ctx is passed through untouched. */
typedef nb_tensor *(*nb_gradcheck_fn)(nb_tensor *const *inputs, int n, void *ctx);

typedef struct nb_gradcheck_options {
    double eps;        /* finite-difference step, default 1e-6 */
    double atol;       /* default 1e-5 */
    double rtol;       /* default 1e-3 */
    bool fast_mode;    /* default false */
    uint64_t seed;     /* for fast mode's u and v, default 0 */
} nb_gradcheck_options;

/* The worst element of one input: the one that most exceeds the tolerance
 * (or, when all pass, has the largest |analytical - numerical|). */
typedef struct nb_gradcheck_worst {
    bool checked;        /* false when the input does not require grad */
    bool passed;
    int64_t out_index;   /* flat output index (slow mode; -1 in fast mode) */
    int64_t in_index;    /* flat input index (slow mode; -1 in fast mode) */
    double analytical, numerical, abs_err, rel_err;
} nb_gradcheck_worst;

#define NB_GRADCHECK_MAX_INPUTS 16
typedef struct nb_gradcheck_report {
    bool passed;
    int ninputs;
    nb_gradcheck_worst worst[NB_GRADCHECK_MAX_INPUTS];
    char message[1024];  /* one line per failing input, or "gradcheck passed"; then the float32 note */
} nb_gradcheck_report;

NB_API nb_gradcheck_options nb_gradcheck_defaults(void);
/* Runs the check. Returns NB_OK when it could be run (see report->passed for
 * the verdict) or an error when f fails or the arguments are invalid.
 * opts may be NULL for the defaults; report may be NULL. Each input's data is
 * perturbed in place during the check and restored exactly afterwards. */
NB_API nb_status nb_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n,
                              const nb_gradcheck_options *opts, nb_gradcheck_report *report);

#ifdef __cplusplus
}
#endif
#endif
