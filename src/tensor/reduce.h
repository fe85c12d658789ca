/* Private to the reductions along one dim (ops_reduce.c: sum / mean;
 * ops_argmax.c: max / min / argmax / argmin): the geometry and its check. */
#ifndef NABLA_REDUCE_H
#define NABLA_REDUCE_H

#include "internal.h"

/* Inner positions one task of a dim reduction covers (adjacent in memory). */
#define NBI_RED_BLK 64

typedef struct {
    int dim;                      /* normalised */
    int64_t outer, size, inner;   /* input seen as (outer, size, inner) around dim; a 0-d tensor is (1, 1, 1) */
    int ndim;                     /* output shape */
    int64_t shape[NB_MAX_DIMS];
    bool mean;                    /* sum_dim / mean_dim: which */
} nbi_dim_geom;

/* a is a float tensor and dim one of its dims (errors name `name`); g gets
 * the geometry, the output's shape with or without the reduced dim. */
bool nbi_reduce_dim_check(const char *name, const nb_tensor *a, int dim, bool keepdim, nbi_dim_geom *g);

#endif
