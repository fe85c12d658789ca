/* nabla/optim.h: optimizers (SGD, Adam, AdamW, Adadelta, RMSprop) and
 * learning-rate schedulers (StepLR, CosineAnnealingLR) with PyTorch 1.13's
 * exact update rules (its default single-tensor code path), one parameter group.
 * Ownership and errors: see nabla/core.h.
 *
 *     nb_adam_options o = nb_adam_defaults();
 *     o.lr = 1e-2;
 *     nb_optimizer *opt = nb_adam(params, nparams, &o);
 *     for (...) {
 *         nb_optimizer_zero_grad(opt);
 *         ... loss = ...; nb_backward(loss);
 *         nb_optimizer_step(opt);
 *     }
 *     nb_optimizer_free(opt);
 *
 * The optimizer keeps its own reference to each parameter (a leaf float32 or
 * float64 contiguous tensor) until nb_optimizer_free. nb_optimizer_step writes
 * parameter data in place, outside autograd, and skips parameters whose grad
 * is NULL (as PyTorch does: their state and step count do not change).
 *
 * STATE. Per-parameter state is created at a parameter's first update, as in
 * PyTorch, and can be listed as named tensors for checkpoints, with PyTorch's
 * state_dict names: "state.<i>.<key>" where i is the parameter's index and key
 * is one of
 *   SGD:      momentum_buffer (only when momentum != 0)
 *   Adam(W):  step, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad only)
 *   Adadelta: step, square_avg, acc_delta
 *   RMSprop:  step, square_avg, momentum_buffer (momentum > 0), grad_avg (centered)
 * "step" is a 0-d float64 tensor holding the parameter's update count; the
 * others have the parameter's shape and dtype.
 */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_optimizer nb_optimizer;

/* ---- options, with PyTorch's defaults from nb_*_defaults() ---- */
typedef struct nb_sgd_options {
    double lr;           /* required: the default is NAN, which creation rejects */
    double momentum;     /* 0 */
    double dampening;    /* 0 */
    double weight_decay; /* 0 */
    bool nesterov;       /* false */
    bool maximize;       /* false */
} nb_sgd_options;

typedef struct nb_adam_options { /* for Adam and AdamW */
    double lr;           /* 1e-3 */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* Adam 0 (added to the gradient); AdamW 1e-2 (decoupled) */
    bool amsgrad;        /* false */
    bool maximize;       /* false */
} nb_adam_options;

typedef struct nb_adadelta_options {
    double lr;           /* 1.0 */
    double rho;          /* 0.9 */
    double eps;          /* 1e-6 */
    double weight_decay; /* 0 */
    bool maximize;       /* false */
} nb_adadelta_options;

typedef struct nb_rmsprop_options {
    double lr;           /* 1e-2 */
    double alpha;        /* 0.99 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0 */
    double momentum;     /* 0 */
    bool centered;       /* false */
    bool maximize;       /* false */
} nb_rmsprop_options;

NB_API nb_sgd_options nb_sgd_defaults(void);           /* SGD's defaults (lr unset: NAN) */
NB_API nb_adam_options nb_adam_defaults(void);         /* Adam's defaults */
NB_API nb_adam_options nb_adamw_defaults(void);        /* AdamW's defaults (weight_decay 1e-2) */
NB_API nb_adadelta_options nb_adadelta_defaults(void); /* Adadelta's defaults */
NB_API nb_rmsprop_options nb_rmsprop_defaults(void);   /* RMSprop's defaults */

/* ---- creation: n parameters (leaf, float, contiguous, no duplicates); opt NULL
 * means the defaults (not allowed for SGD, whose lr is required) ---- */
NB_API nb_optimizer *nb_sgd(nb_tensor *const *params, int n, const nb_sgd_options *opt);
NB_API nb_optimizer *nb_adam(nb_tensor *const *params, int n, const nb_adam_options *opt);
NB_API nb_optimizer *nb_adamw(nb_tensor *const *params, int n, const nb_adam_options *opt);
NB_API nb_optimizer *nb_adadelta(nb_tensor *const *params, int n, const nb_adadelta_options *opt);
NB_API nb_optimizer *nb_rmsprop(nb_tensor *const *params, int n, const nb_rmsprop_options *opt);
/* Release the caller's handle: parameters and state are released once no
 * scheduler uses the optimizer any more. NULL is ignored. */
NB_API void nb_optimizer_free(nb_optimizer *opt);

/* One update of every parameter that has a grad (in no-grad mode). */
NB_API nb_status nb_optimizer_step(nb_optimizer *opt);
/* Drop every parameter's grad (PyTorch's zero_grad(set_to_none=True)). */
NB_API void nb_optimizer_zero_grad(nb_optimizer *opt);

/* "SGD", "Adam", "AdamW", "Adadelta" or "RMSprop" (NULL for NULL). */
NB_API const char *nb_optimizer_name(const nb_optimizer *opt);
/* Number of parameters (-1 for NULL). */
NB_API int nb_optimizer_num_params(const nb_optimizer *opt);
/* Parameter i, BORROWED (NULL with an error if out of range). */
NB_API nb_tensor *nb_optimizer_param(const nb_optimizer *opt, int i);
/* Current learning rate (NAN for NULL); schedulers read and write it. */
NB_API double nb_optimizer_get_lr(const nb_optimizer *opt);
/* Set the learning rate (lr >= 0). */
NB_API nb_status nb_optimizer_set_lr(nb_optimizer *opt, double lr);

/* ---- state, for checkpoints (names: see STATE above) ---- */
/* Number of named state tensors that exist now (-1 for NULL). */
NB_API int64_t nb_optimizer_state_count(const nb_optimizer *opt);
/* State entry k (0 <= k < count, ordered by parameter, then key): writes its
 * name into name[size] and returns the tensor, BORROWED (the optimizer updates
 * it in place at each step). */
NB_API nb_tensor *nb_optimizer_state_entry(const nb_optimizer *opt, int64_t k, char *name, size_t size);
/* Copy value into the state tensor called name ("state.3.exp_avg"), first
 * creating that parameter's state (zeros, step 0) if it has none yet. */
NB_API nb_status nb_optimizer_load_state(nb_optimizer *opt, const char *name, const nb_tensor *value);

/* ---- learning-rate schedulers ----
 * Created with an optimizer (which the scheduler keeps alive) they, like
 * PyTorch's, take the optimizer's current lr as base lr, count epoch 0 at
 * creation, and set the optimizer's lr at each nb_lr_scheduler_step. */
typedef struct nb_lr_scheduler nb_lr_scheduler;

/* lr *= gamma every step_size epochs (step_size >= 1). */
NB_API nb_lr_scheduler *nb_step_lr(nb_optimizer *opt, int64_t step_size, double gamma);
/* Cosine annealing from the base lr to eta_min over T_max epochs (T_max >= 1),
 * by PyTorch's recursive formula (so it follows outside changes to the lr). */
NB_API nb_lr_scheduler *nb_cosine_annealing_lr(nb_optimizer *opt, int64_t T_max, double eta_min);
/* Advance one epoch and set the optimizer's lr. */
NB_API nb_status nb_lr_scheduler_step(nb_lr_scheduler *s);
/* The lr set by the latest step (or creation); NAN for NULL. */
NB_API double nb_lr_scheduler_get_last_lr(const nb_lr_scheduler *s);
/* Epoch counter (0 after creation), -1 for NULL; and the base lr. */
NB_API int64_t nb_lr_scheduler_last_epoch(const nb_lr_scheduler *s);
NB_API double nb_lr_scheduler_base_lr(const nb_lr_scheduler *s);
/* Restore a checkpointed epoch counter and base lr (the optimizer's lr is
 * restored separately, with nb_optimizer_set_lr, before this call). */
NB_API nb_status nb_lr_scheduler_load_state(nb_lr_scheduler *s, int64_t last_epoch, double base_lr);
NB_API void nb_lr_scheduler_free(nb_lr_scheduler *s); /* NULL is ignored */

#ifdef __cplusplus
}
#endif
#endif
