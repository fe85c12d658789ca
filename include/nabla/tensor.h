/* nabla/tensor.h: the tensor type, creation, views, element access, random
 * numbers and scopes. Ownership and errors: see nabla/core.h.
 *
 * A tensor is an N-d (0 <= ndim <= NB_MAX_DIMS) row-major array over shared
 * storage, with a shape, element strides and an offset. Images are NCHW.
 *
 * VIEWS AND COPIES. These never copy; the result shares storage with the input:
 *   nb_view, nb_transpose, nb_permute, nb_narrow, nb_select, nb_unsqueeze,
 *   nb_squeeze, nb_detach, and nb_reshape / nb_flatten of a tensor whose
 *   layout allows it (always for a contiguous tensor).
 * These copy: nb_contiguous of a non-contiguous tensor, nb_reshape /
 * nb_flatten when no view is possible (a transposed tensor, say), nb_clone,
 * nb_to_dtype to another dtype, and nb_from_data. Every op that computes new
 * values writes a new contiguous tensor. Writing through a view changes the
 * tensor it came from.
 */
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include "nabla/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_tensor nb_tensor;

/* NB_SHAPE(2, 3) expands to the pair of arguments `ndim, shape` that every
 * shape-taking function expects: nb_zeros(NB_F32, NB_SHAPE(2, 3)). */
#define NB_SHAPE(...)                                                              \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* ---- reference counting (see the ownership rule in nabla/core.h) ---- */
NB_API nb_tensor *nb_tensor_retain(nb_tensor *t);  /* +1 reference not held by any scope; returns t */
NB_API void nb_tensor_release(nb_tensor *t);       /* -1 reference; NULL is allowed and ignored */

/* Scopes: every tensor returned while a scope is open is held by the innermost
 * scope and released when it ends. Scopes nest and must end in reverse order. */
typedef struct nb_scope nb_scope;
NB_API nb_scope *nb_scope_begin(void);
NB_API void nb_scope_end(nb_scope *scope);
/* Move the reference a scope holds for t to the caller (no scope holds it
 * any more; the caller releases it). Returns t. For objects that outlive the
 * scope they were made in. */
NB_API nb_tensor *nb_scope_keep(nb_tensor *t);

/* ---- creation ---- */
NB_API nb_tensor *nb_zeros(nb_dtype dtype, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_ones(nb_dtype dtype, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_full(nb_dtype dtype, int ndim, const int64_t *shape, double value);
NB_API nb_tensor *nb_scalar(nb_dtype dtype, double value);              /* 0-d tensor */
/* 1-d tensor start, start+step, ... up to but excluding end (step != 0). */
NB_API nb_tensor *nb_arange(nb_dtype dtype, double start, double end, double step);
/* Copy of the caller's buffer: numel elements of dtype, row-major. */
NB_API nb_tensor *nb_from_data(nb_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* Borrow the caller's buffer without copying: the tensor reads and writes it
 * in place and never frees it. The caller keeps it alive (and 8-byte aligned)
 * until every tensor and view made from it is released. */
NB_API nb_tensor *nb_from_buffer(nb_dtype dtype, int ndim, const int64_t *shape, void *data);
NB_API nb_tensor *nb_zeros_like(const nb_tensor *t);
NB_API nb_tensor *nb_ones_like(const nb_tensor *t);

/* ---- random numbers ----
 * nb_rng is xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64,
 * with uniform doubles from the top 53 bits and normals by Box-Muller; the
 * algorithm is fixed so a seed reproduces a run on every machine. Random
 * tensors are filled in order on one thread, so the thread count does not
 * change them. The state is a plain struct so checkpoints can save it. */
typedef struct nb_rng { uint64_t s[4]; } nb_rng;
NB_API void nb_rng_seed(nb_rng *rng, uint64_t seed);
NB_API uint64_t nb_rng_next(nb_rng *rng);                 /* 64 random bits */
NB_API double nb_rng_uniform(nb_rng *rng);                /* U[0, 1) */
NB_API double nb_rng_normal(nb_rng *rng);                 /* N(0, 1) */
NB_API uint64_t nb_rng_below(nb_rng *rng, uint64_t n);    /* uniform integer in [0, n), unbiased */
/* The process-wide generator used when an rng argument is NULL. */
NB_API nb_rng *nb_default_rng(void);
NB_API void nb_manual_seed(uint64_t seed);                /* seeds nb_default_rng() */
NB_API nb_tensor *nb_rand_uniform(nb_rng *rng, nb_dtype dtype, int ndim, const int64_t *shape, double low, double high);
NB_API nb_tensor *nb_rand_normal(nb_rng *rng, nb_dtype dtype, int ndim, const int64_t *shape, double mean, double std);

/* ---- properties ---- */
NB_API nb_dtype nb_tensor_dtype(const nb_tensor *t);
NB_API int nb_tensor_ndim(const nb_tensor *t);
NB_API const int64_t *nb_tensor_shape(const nb_tensor *t);   /* borrowed, ndim entries */
NB_API const int64_t *nb_tensor_strides(const nb_tensor *t); /* borrowed, in elements */
NB_API int64_t nb_tensor_size(const nb_tensor *t, int dim);  /* shape[dim], negative dims count from the end; -1 if invalid */
NB_API int64_t nb_tensor_numel(const nb_tensor *t);
NB_API bool nb_tensor_is_contiguous(const nb_tensor *t);
/* Writes "[2, 3]" into buf (always NUL-terminated); returns buf. */
NB_API char *nb_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

/* ---- element access ----
 * Pointer to the first element; the element at index (i0, i1, ...) is at
 * data[sum(ik * strides[k])]. NULL (with an error) if the dtype differs. */
NB_API float *nb_tensor_f32(nb_tensor *t);
NB_API double *nb_tensor_f64(nb_tensor *t);
NB_API int64_t *nb_tensor_i64(nb_tensor *t);
NB_API void *nb_tensor_data(nb_tensor *t);
/* The value of a one-element tensor, converted to double. */
NB_API nb_status nb_tensor_item(const nb_tensor *t, double *out);
/* The element at a full index (ndim entries), converted to double. */
NB_API nb_status nb_tensor_get(const nb_tensor *t, const int64_t *index, double *out);
/* Copy all elements in row-major order into dst as dtype dst_dtype (converted). */
NB_API nb_status nb_tensor_copy_out(const nb_tensor *t, void *dst, nb_dtype dst_dtype);
/* Copy src's values into dst (same shape; dtypes converted); not recorded by autograd. */
NB_API nb_status nb_tensor_copy_(nb_tensor *dst, const nb_tensor *src);
/* Set every element of t to value; not recorded by autograd. */
NB_API nb_status nb_tensor_fill_(nb_tensor *t, double value);

/* ---- views (see VIEWS AND COPIES above); all differentiable ---- */
/* New shape with the same numel; one entry may be -1 (inferred). */
NB_API nb_tensor *nb_reshape(const nb_tensor *t, int ndim, const int64_t *shape);
/* Like nb_reshape but fails instead of copying. */
NB_API nb_tensor *nb_view(const nb_tensor *t, int ndim, const int64_t *shape);
/* Merge dims start..end (inclusive, negative counts from the end) into one. */
NB_API nb_tensor *nb_flatten(const nb_tensor *t, int start_dim, int end_dim);
NB_API nb_tensor *nb_transpose(const nb_tensor *t, int dim0, int dim1);
/* dims: a permutation of 0..ndim-1; result dim i is input dim dims[i]. */
NB_API nb_tensor *nb_permute(const nb_tensor *t, const int *dims);
/* Elements start .. start+length-1 along dim (a slice such as x[10:20]). */
NB_API nb_tensor *nb_narrow(const nb_tensor *t, int dim, int64_t start, int64_t length);
/* Index `index` along dim, removing that dim (x[3] for dim 0). */
NB_API nb_tensor *nb_select(const nb_tensor *t, int dim, int64_t index);
NB_API nb_tensor *nb_unsqueeze(const nb_tensor *t, int dim);
NB_API nb_tensor *nb_squeeze(const nb_tensor *t, int dim);   /* dim must have size 1 */
/* A view of t when t is contiguous, else a contiguous copy. */
NB_API nb_tensor *nb_contiguous(const nb_tensor *t);
/* Differentiable copy with its own storage. */
NB_API nb_tensor *nb_clone(const nb_tensor *t);
/* Differentiable conversion (a view of t when dtype is already t's). */
NB_API nb_tensor *nb_to_dtype(const nb_tensor *t, nb_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
