/* nabla/checkpoint.h: a whole training state in one HDF5 file, to resume
 * training bitwise as if it had never stopped (PyTorch's
 *     torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(), ...}, path)
 * and its load_state_dict calls). One dataset per entry, at the file root:
 *     model.<key>          the model's state_dict (parameters and buffers)
 *     optimizer.<name>     the optimizer's state (names: see STATE in nabla/optim.h)
 *     scheduler.<name>     the learning-rate scheduler's state (nabla/optim.h)
 *     rng.<rng_names[i]>   a generator's four state words, int64 [4]
 *     <name>               the program's own entries (epoch, metrics, ...)
 *     checkpoint.checksum  int64 []: FNV-1a 64 (its bits) over every other
 *                          dataset in strcmp order of the names: the name and
 *                          a NUL, 'f' (float data) or 'i' (integer), ndim and
 *                          each dim as int64, the values as float64 or int64,
 *                          all little endian (HDF5 keeps no checksum of its own)
 * The file is written atomically (nb_hdf5_save): a crash leaves the old
 * checkpoint or the new one, and the next save removes the path.tmp.<pid>
 * files of writers killed meanwhile (only that pattern, only if no process
 * pid exists). Every part is optional: a NULL member (0 count) is neither
 * written nor restored.
 *
 *     nb_rng *rngs[] = {&dropout_rng};
 *     const char *rng_names[] = {"dropout"};
 *     nb_tensor *epoch = nb_scalar(NB_I64, 0);
 *     nb_named_tensor extra[] = {{"epoch", epoch}};
 *     nb_checkpoint c = {.model = net, .optimizer = opt, .scheduler = sched, .rngs = rngs,
 *                        .rng_names = rng_names, .nrngs = 1, .extra = extra, .nextra = 1};
 *     nb_tensor_i64(epoch)[0] = e;
 *     nb_checkpoint_save("ck.h5", &c);    // after each epoch
 *     nb_checkpoint_load("ck.h5", &c);    // to resume: net, opt, sched, rng and epoch restored
 *
 * Ownership and errors: nabla/core.h. The checkpoint struct and everything it
 * points to are borrowed.
 */
#ifndef NABLA_CHECKPOINT_H
#define NABLA_CHECKPOINT_H

#include "nabla/io.h"
#include "nabla/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a checkpoint holds; any member may be NULL (counts 0). */
typedef struct nb_checkpoint {
    nb_module *model;              /* its state_dict, under "model." */
    nb_optimizer *optimizer;       /* its state, under "optimizer." */
    nb_lr_scheduler *scheduler;    /* its state, under "scheduler." */
    nb_rng *const *rngs;           /* nrngs generators, each under "rng." + rng_names[i] */
    const char *const *rng_names;
    int nrngs;
    const nb_named_tensor *extra;  /* nextra entries of the program's own, under their names */
    int nextra;
    bool allow_missing_checksum;   /* load a file without checkpoint.checksum (PyTorch's, or an older nabla's) */
} nb_checkpoint;

/* Write c's parts and their checksum to path (atomically). Names must be unique,
 * and extra names may not start with "model.", "optimizer.", "scheduler.",
 * "rng." or "checkpoint.". */
NB_API nb_status nb_checkpoint_save(const char *path, const nb_checkpoint *c);

/* Restore c's parts from path, all or nothing: every entry is read and checked
 * first, and on any failure (missing, unexpected or corrupt entry, shape
 * mismatch, value out of range, out of memory) nothing given in c changes.
 *  - checksum: must match the file's datasets, all of them (a flipped bit or
 *    an entry added or removed fails, naming the mismatch). A file without
 *    one fails unless c->allow_missing_checksum; then the checks below are
 *    all there is (an optimizer entry removed with all its parameter's state
 *    then goes unnoticed: PyTorch's state of a parameter never stepped).
 *  - model: strict, like load_state_dict: every "model." key of the module,
 *    no other, with the tensor's shape (float and integer datasets converted
 *    to the tensor's dtype, as nb_hdf5_load does).
 *  - optimizer: its state is REPLACED (PyTorch's load_state_dict): parameters
 *    without state in the file have none after it, so state tensors borrowed
 *    from nb_optimizer_state_entry before the call are no longer valid. The
 *    file must hold every parameter group's entries, and every state entry
 *    of each parameter it has state for (Adam's exp_avg_sq with its exp_avg).
 *  - scheduler: every entry of nb_lr_scheduler_state_entry must be in the file;
 *    make the scheduler as the saved one was, then load.
 *  - rngs: "rng.<name>" must be int64 [4] and not all zero.
 *  - extra: each entry is read into its tensor (same shape; converted to its
 *    dtype; contiguous). Entries of varying shape, or optional ones, read with
 *    nb_hdf5_read / nb_hdf5_list afterwards.
 * Datasets of parts not given in c are ignored. */
NB_API nb_status nb_checkpoint_load(const char *path, const nb_checkpoint *c);

#ifdef __cplusplus
}
#endif
#endif
