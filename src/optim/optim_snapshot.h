/* Private to the library (src/optim, and src/train/checkpoint.c, which loads
 * an optimizer's and a scheduler's state all or nothing): take an object's
 * state aside, change the object, then either drop what was taken (commit)
 * or put it back (restore), which cannot fail. */
#ifndef NABLA_OPTIM_SNAPSHOT_H
#define NABLA_OPTIM_SNAPSHOT_H

#include "nabla/optim.h"

/* Moves every parameter's state out of opt (which is left with none, as
 * PyTorch's load_state_dict starts) and copies each group's options. NULL
 * after an error (out of memory), opt unchanged. */
typedef struct nbi_optim_snapshot nbi_optim_snapshot;
nbi_optim_snapshot *nbi_optim_snapshot_take(nb_optimizer *opt);
/* Put the taken state and options back (what opt has now is dropped); frees snap. */
void nbi_optim_snapshot_restore(nb_optimizer *opt, nbi_optim_snapshot *snap);
/* Keep what opt has now; frees snap and the state it took. NULL is ignored. */
void nbi_optim_snapshot_commit(nbi_optim_snapshot *snap);

/* A copy of every state entry's value of s (its children's too). NULL after an error. */
typedef struct nbi_sched_snapshot nbi_sched_snapshot;
nbi_sched_snapshot *nbi_sched_snapshot_take(nb_lr_scheduler *s);
/* Write the copied values back; frees snap. */
void nbi_sched_snapshot_restore(nb_lr_scheduler *s, nbi_sched_snapshot *snap);
/* Free snap (NULL is ignored). */
void nbi_sched_snapshot_free(nbi_sched_snapshot *snap);

#endif
