/* Broadcasting over several operands, for the elementwise ops that take more
 * than two tensors or compute several gradients at once (where, maximum /
 * minimum, clamp with tensor bounds); the two-operand arithmetic of
 * ops_binary.c has its own vectorised loops.
 *
 * nbi_bcast_init broadcasts up to NBI_BCAST_MAX operands as PyTorch does and
 * records each one's element strides over the output (0 where it broadcasts),
 * with neighbouring dims merged where every operand walks them contiguously.
 * A kernel then walks the output in order with NBI_BCAST_LOOP: `e` is the
 * output's (and any output-shaped buffer's) element index, `p.off[k]` the
 * element offset into operand k. The output is cut into fixed chunks of
 * NBI_EW_CHUNK elements for OpenMP, so every element is computed by one thread
 * whatever the thread count.
 *
 * The gradient of an operand is computed over the output's shape and then
 * summed down to the operand's shape (nbi_bcast_grads_begin / _end). */
#ifndef NABLA_BROADCAST_H
#define NABLA_BROADCAST_H

#include "elementwise.h"

#define NBI_BCAST_MAX 4

typedef struct {
    int ndim;                              /* the output's shape */
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
    int n;                                 /* operands */
    int m;                                 /* the output's dims after merging (m >= 1) */
    int64_t dims[NB_MAX_DIMS];
    int64_t st[NBI_BCAST_MAX][NB_MAX_DIMS]; /* operand k's element strides over dims */
} nbi_bcast;

typedef struct {
    int64_t idx[NB_MAX_DIMS];
    int64_t off[NBI_BCAST_MAX];
} nbi_bcast_pos;

/* The broadcast of ts[0..n) (n <= NBI_BCAST_MAX; a NULL entry is an absent
 * optional operand: it takes no part and gets zero strides). False after an
 * error naming op when the shapes do not broadcast. */
bool nbi_bcast_init(const char *op, nbi_bcast *g, const nb_tensor *const *ts, int n);
/* The position of output element e. */
void nbi_bcast_seek(const nbi_bcast *g, nbi_bcast_pos *p, int64_t e);

/* Step to the next output element (an odometer over the merged dims). */
static inline void nbi_bcast_next(const nbi_bcast *g, nbi_bcast_pos *p) {
    for (int d = g->m - 1; d >= 0; d--) {
        for (int k = 0; k < g->n; k++) p->off[k] += g->st[k][d];
        if (++p->idx[d] < g->dims[d]) return;
        for (int k = 0; k < g->n; k++) p->off[k] -= g->st[k][d] * g->dims[d];
        p->idx[d] = 0;
    }
}

/* Runs the body (the arguments after G) for every output element of the
 * nbi_bcast *G, with `e` the element index and `p` its nbi_bcast_pos, in
 * parallel over fixed chunks. */
#define NBI_BCAST_LOOP(G, ...)                                                       \
    do {                                                                             \
        const nbi_bcast *g_ = (G);                                                   \
        const int64_t n_ = g_->numel, nchunks_ = (n_ + NBI_EW_CHUNK - 1) / NBI_EW_CHUNK; \
        _Pragma("omp parallel for schedule(static) if (n_ > NBI_PAR_MIN)")           \
        for (int64_t c_ = 0; c_ < nchunks_; c_++) {                                  \
            const int64_t e1_ = (c_ + 1) * NBI_EW_CHUNK < n_ ? (c_ + 1) * NBI_EW_CHUNK : n_; \
            nbi_bcast_pos p;                                                         \
            nbi_bcast_seek(g_, &p, c_ * NBI_EW_CHUNK);                               \
            for (int64_t e = c_ * NBI_EW_CHUNK; e < e1_; e++) {                      \
                __VA_ARGS__;                                                         \
                nbi_bcast_next(g_, &p);                                              \
            }                                                                        \
        }                                                                            \
    } while (0)

/* For a grad_fn whose inputs were broadcast to gout's shape: full[i] = a new
 * output-shaped tensor for each input that needs a gradient (NULL for the
 * others), for a kernel to overwrite. On failure nothing is left allocated. */
nb_status nbi_bcast_grads_begin(const nbi_node *node, const nb_tensor *gout, nb_tensor **full);
/* Then gin[i] = full[i] summed to input i's shape; releases every full[i]. */
nb_status nbi_bcast_grads_end(const nbi_node *node, nb_tensor **full, nb_tensor **gin);

#endif
