/* Private to src/optim: the learning-rate scheduler object. lr_scheduler.c
 * holds what every scheduler shares (PyTorch's _LRScheduler: creation with
 * the initial step, step(), step(epoch) for SequentialLR, state entries); each
 * kind supplies its get_lr() (and closed form) in lr_chainable.c (StepLR,
 * MultiStepLR, ExponentialLR, ConstantLR, LinearLR, CosineAnnealingLR),
 * lr_one_cycle.c, or its own step
 * (lr_sequential.c, lr_plateau.c). */
#ifndef NABLA_SCHED_INTERNAL_H
#define NABLA_SCHED_INTERNAL_H

#include "optim_internal.h"

/* PyTorch computes lrs with Python floats, one rounding per operation: the
 * files that include this header do the same, with no fused multiply-adds
 * (gnu11 with -march=native would contract a * b + c into an FMA). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* One named entry of a scheduler's state: n doubles at d, or n int64 at i
 * (integers); values below min are refused at load. vec: a 1-d tensor
 * (per group), else 0-d. */
typedef struct nbi_sched_field {
    const char *key;
    double *d;
    int64_t *i;
    int n;
    bool vec;
    double min;
} nbi_sched_field;
#define NBI_SCHED_MAX_FIELDS 8
#define NBI_SCHED_MAX_GROUPS_ON_STACK 16

typedef struct nbi_sched_kind {
    const char *name;
    /* PyTorch's get_lr() at s->last_epoch: lrs[g], and moms[g] when it cycles
     * momentum (then *set_moms = true). false after nbi_error. */
    bool (*get_lr)(nb_lr_scheduler *s, double *lrs, double *moms, bool *set_moms);
    /* _get_closed_form_lr() (what step(epoch) uses), NULL when PyTorch has none. */
    void (*closed_form)(nb_lr_scheduler *s, double *lrs);
    /* A step of its own (SequentialLR), NULL for the generic one; the
     * generic's metric step is ReduceLROnPlateau's. */
    nb_status (*step)(nb_lr_scheduler *s);
    nb_status (*step_metric)(nb_lr_scheduler *s, double metric);
    /* Its state entries (NULL: last_epoch, _step_count, base_lrs, _last_lr). */
    int (*fields)(nb_lr_scheduler *s, nbi_sched_field *f);
    bool children;   /* u.seq: owns child schedulers (whose entries follow its own) */
    bool milestones; /* u.multi.milestones is allocated */
} nbi_sched_kind;

struct nb_lr_scheduler {
    const nbi_sched_kind *kind;
    nb_optimizer *opt;     /* a reference: kept alive while the scheduler lives */
    bool has_parent;       /* one of a SequentialLR's schedulers */
    int ngroups;           /* the optimizer's (it cannot gain groups while a scheduler lives) */
    int64_t last_epoch;
    int64_t step_count;    /* PyTorch's _step_count */
    double *base_lrs;      /* [ngroups] */
    double *last_lrs;      /* [ngroups] */
    double *scratch;       /* [2 * ngroups]: lrs and momenta computed by a step */
    double *extra;         /* kind's per-group doubles (below), in the same allocation */
    union {
        struct { int64_t step_size; double gamma; } step; /* StepLR, ExponentialLR */
        struct { int64_t *milestones; int n; double gamma; } multi; /* milestones sorted */
        struct { int64_t T_max; double eta_min; } cosine;
        struct { double start, end; int64_t total_iters; } linear; /* LinearLR, ConstantLR (start: factor) */
        struct {
            int64_t total_steps;
            double pct_start;
            bool linear, cycle_momentum, three_phase;
            /* extra: initial_lr, max_lr, min_lr, max_momentum, base_momentum, each [ngroups] */
        } one_cycle;
        struct { nb_lr_scheduler **children; int n; int64_t *milestones; } seq;
        struct {
            bool max_mode, abs_mode;
            double factor, threshold, eps, best;
            int64_t patience, cooldown, cooldown_counter, num_bad_epochs;
            /* extra: min_lrs [ngroups] */
        } plateau;
    } u;
};

/* A scheduler of kind on opt with nextra per-group doubles (s->extra), last
 * lrs read from the optimizer, base lrs NAN, last_epoch -1 (0 when plain: a
 * scheduler without the initial step, ReduceLROnPlateau, SequentialLR).
 * Changes nothing outside it. NULL on error. */
nb_lr_scheduler *nbi_sched_new(const nbi_sched_kind *kind, nb_optimizer *opt, int nextra, bool plain);
/* Base lrs from the groups' initial_lr (set to the group's lr when missing,
 * as PyTorch's setdefault), then the initial step (PyTorch's _initial_step);
 * frees s and returns NULL when it fails. */
nb_lr_scheduler *nbi_sched_start(nb_lr_scheduler *s);
/* PyTorch's _LRScheduler.step(): to the next epoch, or to epoch `epoch` by
 * the closed form when closed (SequentialLR's step(0)). All or nothing. */
nb_status nbi_sched_step(nb_lr_scheduler *s, bool closed, int64_t epoch);
/* Record the optimizer's current lrs as the last ones. */
void nbi_sched_read_lrs(nb_lr_scheduler *s);
/* Free s and what it owns, whatever its parent. */
void nbi_sched_destroy(nb_lr_scheduler *s);
/* s's own state entries (not its children's) into f[NBI_SCHED_MAX_FIELDS]; their number. */
int nbi_sched_own_fields(nb_lr_scheduler *s, nbi_sched_field *f);
/* Check that opt is not NULL (message names op). */
bool nbi_sched_check_opt(const char *op, const nb_optimizer *opt);

#endif
