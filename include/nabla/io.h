/* nabla/io.h: named tensors to and from HDF5, in the layout PyTorch users
 * write with h5py: one dataset per state_dict key, named by the key, at the
 * file root, in PyTorch's shapes and dtypes:
 *     with h5py.File(path, "w") as f:
 *         for k, v in model.state_dict().items(): f.create_dataset(k, data=v.cpu().numpy())
 * Loading also accepts the nested form (group conv1, dataset weight), and
 * float64, float32 and float16 datasets for float tensors and any integer
 * dataset for int64 tensors (converted, with a note in the report).
 * Files are untrusted: every failure is an nb_status and a message; HDF5's
 * own error stack is never printed. Ownership and errors: nabla/core.h.
 */
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A state_dict entry: its key and its tensor (both borrowed). */
typedef struct nb_named_tensor {
    const char *name;
    nb_tensor *tensor;
} nb_named_tensor;

/* Write entries to path, atomically: a temporary file beside it is written,
 * flushed to disk and renamed over path, so a crash leaves either the old
 * file or the new one. The root gets attributes format = "nabla-state-dict"
 * and format_version = 1. */
NB_API nb_status nb_hdf5_save(const char *path, const nb_named_tensor *entries, int n);

/* What a load found besides the tensors it loaded. Free with nb_load_report_free. */
typedef struct nb_load_report {
    char **missing;        /* entry names the file lacks */
    int nmissing;
    char **unexpected;     /* dataset names the entries lack */
    int nunexpected;
    char notes[1024];      /* conversions made, e.g. "fc1.weight: float64 converted to float32" */
} nb_load_report;
NB_API void nb_load_report_free(nb_load_report *report);

/* Copy the file's datasets into the entries' tensors, like load_state_dict.
 * strict: any missing key, unexpected key, or shape or dtype mismatch fails
 * with ONE message listing all of them (`fc1.weight: expected [128, 9216],
 * file has [128, 4608]`), and no tensor changes. Not strict: missing and
 * unexpected keys are allowed and reported; mismatched shapes still fail.
 * report may be NULL. */
NB_API nb_status nb_hdf5_load(const char *path, const nb_named_tensor *entries, int n, bool strict,
                              nb_load_report *report);

/* Names of every dataset in the file ('/' of nested groups read as '.'), in
 * the file's order. *names is a malloc'd array of malloc'd strings; free it
 * with nb_hdf5_names_free. */
NB_API nb_status nb_hdf5_list(const char *path, char ***names, int *n);
NB_API void nb_hdf5_names_free(char **names, int n);
/* One dataset as a new tensor of dtype (converted; float datasets for float
 * dtypes, integer datasets for NB_I64). */
NB_API nb_tensor *nb_hdf5_read(const char *path, const char *name, nb_dtype dtype);

/* ---- modules (nabla/nn.h) ---- */
typedef struct nb_module nb_module;
/* A module's state_dict (parameters and buffers under their PyTorch keys). */
NB_API nb_status nb_module_save_hdf5(const nb_module *m, const char *path);
/* load_state_dict from a file, with nb_hdf5_load's rules (strict or not). */
NB_API nb_status nb_module_load_hdf5(nb_module *m, const char *path, bool strict, nb_load_report *report);

#ifdef __cplusplus
}
#endif
#endif
