/* nabla/optim.h: optimizers (SGD, Adam, AdamW, Adadelta, RMSprop) with
 * parameter groups, and learning-rate schedulers (StepLR, MultiStepLR,
 * ExponentialLR, ConstantLR, LinearLR, CosineAnnealingLR, OneCycleLR,
 * SequentialLR, ReduceLROnPlateau)
 * with PyTorch 1.13's exact update rules (its default single-tensor code path)
 * and lr sequences. Ownership and errors: see nabla/core.h.
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
 * PARAMETER GROUPS (PyTorch's param_groups). The parameters given at creation
 * are group 0, with the options given; nb_*_add_param_group appends a group
 * with its own options (lr, weight_decay, momentum, ...). PyTorch's
 *     SGD([{'params': decay}, {'params': no_decay, 'weight_decay': 0}],
 *         lr=0.1, momentum=0.9, weight_decay=5e-4)
 * is
 *     nb_sgd_options o = nb_sgd_defaults();
 *     o.lr = 0.1, o.momentum = 0.9, o.weight_decay = 5e-4;
 *     nb_optimizer *opt = nb_sgd(decay, ndecay, &o);
 *     o.weight_decay = 0;
 *     nb_sgd_add_param_group(opt, no_decay, nno_decay, &o);
 * Parameters are numbered across groups in order (group 0's first), as in
 * PyTorch's state_dict.
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
 * others have the parameter's shape and dtype. A buffer is created when its
 * group's options first use it (SGD's momentum_buffer when a scheduler turns
 * momentum on). A parameter converted to another dtype after its state was
 * made (nb_module_to_dtype) gets its state converted at the next step
 * (PyTorch keeps the state's dtype and rounds to it): create the optimizer
 * after the conversion to follow PyTorch exactly. After the parameters'
 * entries come the hyper-parameters that schedulers change, per group:
 * "param_groups.<g>.lr" (0-d) and "param_groups.<g>.momentum" (SGD, RMSprop;
 * 0-d) or "param_groups.<g>.betas" (Adam, AdamW; [2]), all float64.
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
/* Learning rate of group 0 (NAN for NULL); schedulers read and write it. */
NB_API double nb_optimizer_get_lr(const nb_optimizer *opt);
/* Set the learning rate of every group (lr >= 0). */
NB_API nb_status nb_optimizer_set_lr(nb_optimizer *opt, double lr);

/* ---- parameter groups ----
 * Append a group of n parameters (n >= 0; none may already be in a group)
 * with options o; o NULL means the options given at creation (PyTorch's
 * defaults). One function per options type (nb_adam_add_param_group serves
 * Adam and AdamW); it must match the optimizer's. Not allowed once a
 * learning-rate scheduler uses the optimizer: add groups first. */
NB_API nb_status nb_sgd_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n, const nb_sgd_options *o);
NB_API nb_status nb_adam_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n, const nb_adam_options *o);
NB_API nb_status nb_adadelta_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n,
                                             const nb_adadelta_options *o);
NB_API nb_status nb_rmsprop_add_param_group(nb_optimizer *opt, nb_tensor *const *params, int n,
                                            const nb_rmsprop_options *o);
/* Number of parameter groups (-1 for NULL). */
NB_API int nb_optimizer_num_param_groups(const nb_optimizer *opt);
/* Learning rate of group g (NAN with an error if out of range); set it (lr >= 0). */
NB_API double nb_optimizer_group_lr(const nb_optimizer *opt, int g);
NB_API nb_status nb_optimizer_set_group_lr(nb_optimizer *opt, int g, double lr);

/* ---- state, for checkpoints (names: see STATE above) ---- */
/* Number of named state tensors that exist now (-1 for NULL). */
NB_API int64_t nb_optimizer_state_count(const nb_optimizer *opt);
/* State entry k (0 <= k < count; parameters' by parameter, then key, then the
 * groups'): writes its name into name[size] and returns the tensor, BORROWED
 * (the optimizer updates a parameter's state in place at each step; a group's
 * entry holds the value at the time of the call). */
NB_API nb_tensor *nb_optimizer_state_entry(const nb_optimizer *opt, int64_t k, char *name, size_t size);
/* Copy value into the state tensor called name ("state.3.exp_avg"), first
 * creating that parameter's state (zeros, step 0) if it has none yet; or set
 * a group's hyper-parameter ("param_groups.1.lr": any number but NaN, as a
 * scheduler may have set it; momentum and betas checked like the options). */
NB_API nb_status nb_optimizer_load_state(nb_optimizer *opt, const char *name, const nb_tensor *value);

/* ---- learning-rate schedulers ----
 * Created with an optimizer (which the scheduler keeps alive) they act on the
 * lr of every parameter group, like PyTorch's: each group's base lr is its
 * 'initial_lr', which the first scheduler made on the optimizer sets to the
 * group's lr at that time (OneCycleLR sets its own); creation counts epoch 0
 * (the initial step, which LinearLR and OneCycleLR use to set their first lr)
 * and each nb_lr_scheduler_step advances one epoch and sets the lrs, by the
 * chainable (recursive) formulas PyTorch 1.13 uses, so the lr sequences are
 * PyTorch's to the last bit and follow outside changes to the lr. Call it
 * after nb_optimizer_step, as in PyTorch. A step sets whatever PyTorch's
 * formulas give, even a negative lr (OneCycleLR's linear anneal at step
 * total_steps), but one that would set a NaN fails and changes nothing. */
typedef struct nb_lr_scheduler nb_lr_scheduler;

/* StepLR: lr *= gamma every step_size epochs (step_size >= 1). */
NB_API nb_lr_scheduler *nb_step_lr(nb_optimizer *opt, int64_t step_size, double gamma);
/* MultiStepLR: lr *= gamma at each of the n milestones (epochs; a milestone
 * given k times multiplies by gamma^k). The milestones are copied. */
NB_API nb_lr_scheduler *nb_multi_step_lr(nb_optimizer *opt, const int64_t *milestones, int n, double gamma);
/* ExponentialLR: lr *= gamma every epoch. */
NB_API nb_lr_scheduler *nb_exponential_lr(nb_optimizer *opt, double gamma);
/* ConstantLR: the lr times factor (in [0, 1]) until epoch total_iters (>= 0),
 * then back (divided by factor). PyTorch's defaults: 1/3, 5. */
NB_API nb_lr_scheduler *nb_constant_lr(nb_optimizer *opt, double factor, int64_t total_iters);
/* CosineAnnealingLR: cosine annealing from the base lr to eta_min over T_max
 * epochs (T_max >= 1), then back up (PyTorch's recursive formula). */
NB_API nb_lr_scheduler *nb_cosine_annealing_lr(nb_optimizer *opt, int64_t T_max, double eta_min);
/* LinearLR: the lr times a factor going linearly from start_factor (epoch 0)
 * to end_factor (epoch total_iters), then constant; factors in [0, 1],
 * total_iters >= 0. PyTorch's defaults: 1/3, 1.0, 5. */
NB_API nb_lr_scheduler *nb_linear_lr(nb_optimizer *opt, double start_factor, double end_factor, int64_t total_iters);

/* OneCycleLR's options beyond max_lr and total_steps, with PyTorch's defaults
 * from nb_one_cycle_lr_defaults(). */
typedef struct nb_one_cycle_lr_options {
    double pct_start;            /* 0.3: fraction of the steps spent increasing the lr */
    const char *anneal_strategy; /* "cos" (NULL means "cos") or "linear" */
    bool cycle_momentum;         /* true: cycle SGD's / RMSprop's momentum or Adam's beta1 inversely */
    double base_momentum;        /* 0.85 */
    double max_momentum;         /* 0.95 */
    double div_factor;           /* 25: initial lr = max_lr / div_factor */
    double final_div_factor;     /* 1e4: min lr = initial lr / final_div_factor */
    bool three_phase;            /* false */
    const double *max_lrs;       /* NULL, or one max_lr per group (n_max_lrs = number of groups), */
    int n_max_lrs;               /* which then replaces the max_lr argument */
} nb_one_cycle_lr_options;
NB_API nb_one_cycle_lr_options nb_one_cycle_lr_defaults(void);
/* OneCycleLR over total_steps steps (>= 1; PyTorch's epochs * steps_per_epoch),
 * stepped once per batch; o NULL means the defaults. Stepping more than
 * total_steps times fails. Momentum cycling needs SGD, RMSprop, Adam or AdamW
 * (not Adadelta) and, like PyTorch's, sets SGD's momentum even if it was 0. */
NB_API nb_lr_scheduler *nb_one_cycle_lr(nb_optimizer *opt, double max_lr, int64_t total_steps,
                                        const nb_one_cycle_lr_options *o);

/* SequentialLR: schedulers[0] until epoch milestones[0], then schedulers[1]
 * (started with PyTorch's step(0), the closed form at its epoch 0), and so on;
 * n >= 1 schedulers made on opt (not SequentialLR or ReduceLROnPlateau), n - 1
 * increasing milestones. It TAKES OVER the schedulers, even when it fails
 * (except one that already belongs to a SequentialLR, which is left as it
 * was): they are freed with it and must not be stepped or freed by the
 * caller. E.g. a warm-up of w steps then cosine annealing:
 *     nb_lr_scheduler *parts[2] = {nb_linear_lr(opt, 0.1, 1.0, w), nb_cosine_annealing_lr(opt, total - w, 0)};
 *     nb_lr_scheduler *s = nb_sequential_lr(opt, parts, 2, (int64_t[]){w}, 1); */
NB_API nb_lr_scheduler *nb_sequential_lr(nb_optimizer *opt, nb_lr_scheduler *const *schedulers, int n,
                                         const int64_t *milestones, int nmilestones);

/* ReduceLROnPlateau's options, with PyTorch's defaults from
 * nb_reduce_lr_on_plateau_defaults(). */
typedef struct nb_reduce_lr_on_plateau_options {
    const char *mode;           /* "min" (NULL means "min") or "max": whether lower or higher metrics are better */
    double factor;              /* 0.1: lr *= factor on a plateau (factor < 1) */
    int64_t patience;           /* 10: bad epochs tolerated before reducing */
    double threshold;           /* 1e-4 */
    const char *threshold_mode; /* "rel" (NULL means "rel") or "abs" */
    int64_t cooldown;           /* 0: epochs to wait after a reduction */
    double min_lr;              /* 0: lower bound of every group's lr */
    const double *min_lrs;      /* NULL, or one lower bound per group (n_min_lrs = */
    int n_min_lrs;              /* number of groups), which then replaces min_lr */
    double eps;                 /* 1e-8: smaller changes of the lr are skipped */
} nb_reduce_lr_on_plateau_options;
NB_API nb_reduce_lr_on_plateau_options nb_reduce_lr_on_plateau_defaults(void);
/* ReduceLROnPlateau (o NULL: the defaults): stepped with a metric by
 * nb_lr_scheduler_step_metric, not nb_lr_scheduler_step. It does not set or
 * use the groups' initial_lr and has no base lr (PyTorch's has none). */
NB_API nb_lr_scheduler *nb_reduce_lr_on_plateau(nb_optimizer *opt, const nb_reduce_lr_on_plateau_options *o);

/* Advance one epoch and set the optimizer's lrs (every scheduler but
 * ReduceLROnPlateau). */
NB_API nb_status nb_lr_scheduler_step(nb_lr_scheduler *s);
/* ReduceLROnPlateau's step(metrics): one epoch with its metric (NaN never
 * counts as an improvement). */
NB_API nb_status nb_lr_scheduler_step_metric(nb_lr_scheduler *s, double metric);
/* "StepLR", "MultiStepLR", ... (NULL for NULL). */
NB_API const char *nb_lr_scheduler_name(const nb_lr_scheduler *s);
/* Group 0's lr set by the latest step (or creation); NAN for NULL. */
NB_API double nb_lr_scheduler_get_last_lr(const nb_lr_scheduler *s);
/* Group g's lr set by the latest step (PyTorch's get_last_lr()[g]); NAN with an error if out of range. */
NB_API double nb_lr_scheduler_group_last_lr(const nb_lr_scheduler *s, int g);
/* Epoch counter (0 after creation), -1 for NULL; and group 0's base lr (NAN
 * for NULL and ReduceLROnPlateau; a SequentialLR's is its first scheduler's). */
NB_API int64_t nb_lr_scheduler_last_epoch(const nb_lr_scheduler *s);
NB_API double nb_lr_scheduler_base_lr(const nb_lr_scheduler *s);
NB_API void nb_lr_scheduler_free(nb_lr_scheduler *s); /* NULL is ignored */

/* ---- scheduler state, for checkpoints ----
 * Named float64 tensors with PyTorch's state_dict keys: "last_epoch",
 * "_step_count", "base_lrs" ([groups]), "_last_lr" ([groups]); for
 * ReduceLROnPlateau "last_epoch", "best", "num_bad_epochs",
 * "cooldown_counter", "_last_lr"; for SequentialLR "last_epoch", "_last_lr"
 * and "_schedulers.<i>.<key>" for each of its schedulers. The constructor's
 * arguments are not part of it: restore into a scheduler made like the saved
 * one, after creating it (creation steps to epoch 0) and after restoring the
 * optimizer's state (which holds the lrs). */
/* Number of entries (-1 for NULL). */
NB_API int64_t nb_lr_scheduler_state_count(const nb_lr_scheduler *s);
/* Entry k: writes its name into name[size] and returns a NEW tensor holding
 * its current value (release it). */
NB_API nb_tensor *nb_lr_scheduler_state_entry(const nb_lr_scheduler *s, int64_t k, char *name, size_t size);
/* Set the entry called name from value (same number of elements; counters
 * must be integers). */
NB_API nb_status nb_lr_scheduler_load_state_entry(nb_lr_scheduler *s, const char *name, const nb_tensor *value);
/* The older form for a StepLR, MultiStepLR, ExponentialLR, ConstantLR,
 * CosineAnnealingLR or LinearLR: restore the epoch counter and set every group's base lr (the
 * optimizer's lr is restored separately, before this call). */
NB_API nb_status nb_lr_scheduler_load_state(nb_lr_scheduler *s, int64_t last_epoch, double base_lr);

#ifdef __cplusplus
}
#endif
#endif
