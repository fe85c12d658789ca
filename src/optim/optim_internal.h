/* Private to src/optim: the optimizer object shared by optimizer.c (creation,
 * parameter groups, step loop, state, lr) and the per-algorithm files (sgd.c,
 * adam.c, adadelta.c, rmsprop.c), which supply an nbi_optim_kind (option
 * checks, which state buffers a group's options use, the update kernel), and
 * by the schedulers (lr_scheduler*.c), which read and write each group's lr
 * and momentum. */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include "nabla/optim.h"
#include "tensor/internal.h"

#define NBI_OPT_MAX_BUFS 3

/* A parameter group's hyper-parameters (PyTorch's param_group dict): the
 * options struct of the optimizer's algorithm, lr included. */
typedef union nbi_options {
    nb_sgd_options sgd;
    nb_adam_options adam; /* Adam and AdamW */
    nb_adadelta_options adadelta;
    nb_rmsprop_options rmsprop;
} nbi_options;

typedef enum { NBI_OPTS_SGD, NBI_OPTS_ADAM, NBI_OPTS_ADADELTA, NBI_OPTS_RMSPROP } nbi_options_type;

/* The hyper-parameter OneCycleLR cycles: SGD's and RMSprop's momentum, Adam's beta1. */
typedef enum { NBI_MOMENTUM_NONE, NBI_MOMENTUM, NBI_BETA1 } nbi_momentum_kind;

typedef struct nbi_param_group {
    nbi_options opt;
    double initial_lr;   /* PyTorch's group['initial_lr'], set by the first scheduler */
    bool has_initial_lr;
    int first, n;        /* its parameters: params[first .. first + n) */
    nb_tensor *entry[2]; /* 0-d / 1-d float64 snapshots handed out as state entries (lr, momentum or betas) */
} nbi_param_group;

/* One parameter's state; all tensors owned by the optimizer. Buffer slot k is
 * named kind->buf_names[k] and is NULL while the group's options do not use it. */
typedef struct nbi_param_state {
    bool init;                         /* created at the first update (or a load) */
    nb_tensor *step;                   /* 0-d float64 update count, or NULL (SGD) */
    nb_tensor *buf[NBI_OPT_MAX_BUFS];
} nbi_param_state;

/* Update one parameter of group g. p and grad: contiguous, same shape and
 * dtype. first is true when the parameter's buffers were just created
 * (zero-filled). The kernel increments st->step itself when the algorithm
 * has one. */
typedef void (*nbi_update_fn)(const nbi_param_group *g, nb_tensor *p, const nb_tensor *grad, nbi_param_state *st,
                              bool first);

/* What makes an algorithm: one constant per optimizer (sgd.c, adam.c, ...). */
typedef struct nbi_optim_kind {
    const char *name;                            /* "SGD", "Adam", ... */
    nbi_options_type options;                    /* which member of nbi_options */
    bool has_step;                               /* state has a "step" entry */
    const char *buf_names[NBI_OPT_MAX_BUFS];     /* state buffer slots (NULL: unused slot) */
    nbi_momentum_kind momentum;
    /* Validate a group's options (lr included): false after nbi_error. */
    bool (*check)(const char *name, const nbi_options *o);
    /* The buffer slots a group with these options uses (bit k: slot k). */
    unsigned (*bufs)(const nbi_options *o);
    nbi_update_fn update;
} nbi_optim_kind;

struct nb_optimizer {
    int refcount;                      /* the caller's handle + one per scheduler */
    const nbi_optim_kind *kind;
    const char *name;                  /* kind->name */
    int n;                             /* parameters over all groups */
    nb_tensor **params;                /* n owned references, group by group */
    nbi_param_state *state;            /* n entries */
    int ngroups;
    nbi_param_group *groups;
    nbi_options defaults;              /* the options given at creation */
};

/* Check the options and params and build an optimizer with one group and no
 * state (refcount 1). NULL on error. */
nb_optimizer *nbi_optimizer_new(const nbi_optim_kind *kind, nb_tensor *const *params, int n, const nbi_options *o);
/* Append a group (the typed nb_*_add_param_group functions); o NULL means the
 * creation options. */
nb_status nbi_optimizer_add_group(nb_optimizer *opt, nbi_options_type type, nb_tensor *const *params, int n,
                                  const nbi_options *o);
/* Keep / drop a reference (schedulers keep their optimizer alive). */
void nbi_optimizer_retain(nb_optimizer *o);
void nbi_optimizer_release(nb_optimizer *o);
/* Group g's learning rate, and its cycled momentum (NULL when the algorithm has none). */
double *nbi_group_lr(nb_optimizer *o, int g);
double *nbi_group_momentum(nb_optimizer *o, int g);
/* An option check in PyTorch's words: false after "<name>: Invalid <what>: <v>" unless ok. */
static inline bool nbi_opt_check(const char *name, bool ok, const char *what, double v) {
    if (!ok) nbi_error(NB_ERR_ARG, "%s: Invalid %s: %g", name, what, v);
    return ok;
}
/* The update count stored in a state's 0-d float64 step tensor. */
static inline double *nbi_step_ptr(nbi_param_state *st) { return (double *)nbi_data(st->step); }

#endif
