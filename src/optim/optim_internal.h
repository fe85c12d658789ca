/* Private to src/optim: the optimizer object shared by optimizer.c (creation,
 * step loop, state, lr) and the per-algorithm files (sgd.c, adam.c,
 * adadelta.c, rmsprop.c), which supply option checks and update kernels. */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include "nabla/optim.h"
#include "tensor/internal.h"

#define NBI_OPT_MAX_BUFS 3

/* One parameter's state; all tensors owned by the optimizer. */
typedef struct nbi_param_state {
    bool init;                         /* created at the first update (or a load) */
    nb_tensor *step;                   /* 0-d float64 update count, or NULL (SGD) */
    nb_tensor *buf[NBI_OPT_MAX_BUFS];  /* param-shaped buffers, named by buf_names */
} nbi_param_state;

/* Update one parameter. p and g: contiguous, same shape and dtype. first is
 * true at the parameter's first update (its state was just zero-filled). The
 * kernel increments st->step itself when the algorithm has one. */
typedef void (*nbi_update_fn)(const nb_optimizer *o, nb_tensor *p, const nb_tensor *g, nbi_param_state *st,
                              bool first);

struct nb_optimizer {
    int refcount;                      /* the caller's handle + one per scheduler */
    const char *name;                  /* "SGD", "Adam", ... */
    double lr;
    int n;
    nb_tensor **params;                /* n owned references */
    nbi_param_state *state;            /* n entries */
    bool has_step;                     /* state has a "step" entry */
    int nbufs;
    const char *buf_names[NBI_OPT_MAX_BUFS];
    nbi_update_fn update;
    union {
        nb_sgd_options sgd;
        nb_adam_options adam;
        nb_adadelta_options adadelta;
        nb_rmsprop_options rmsprop;
    } opt;
};

/* Check params and build an optimizer with no state (refcount 1); the caller
 * fills in lr, has_step, buffers, update and options. NULL on error. */
nb_optimizer *nbi_optimizer_new(const char *name, nb_tensor *const *params, int n);
/* Keep / drop a reference (schedulers keep their optimizer alive). */
void nbi_optimizer_retain(nb_optimizer *o);
void nbi_optimizer_release(nb_optimizer *o);
/* The update count stored in a state's 0-d float64 step tensor. */
static inline double *nbi_step_ptr(nbi_param_state *st) { return (double *)nbi_data(st->step); }

#endif
