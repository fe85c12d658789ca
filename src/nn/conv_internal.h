/* Private to src/nn: the resolved geometry of one 2-D convolution, the entry
 * points the differentiable op in conv2d.c calls (conv2d_algo.c), the
 * algorithms they choose from, and the kernels' tables.
 *
 * Files: conv2d_algo.c chooses an algorithm per phase (forward, input
 * gradient dx, weight gradient dw) from the geometry, the dtype and the CPU
 * set, and runs it; the table of choices is in docs/conv2d.md.
 * conv2d_ref.c is the direct-loop reference (float64's path and the tests'
 * oracle); conv2d_flip.c computes a stride-1 dx as a forward conv; the fast
 * float32 kernels are under kernels/, compiled once per CPU set
 * (src/tensor/cpu.h), each file with one table per algorithm and set. */
#ifndef NABLA_CONV_INTERNAL_H
#define NABLA_CONV_INTERNAL_H

#include "nabla/conv.h"
#include "tensor/internal.h"

#include <string.h>

/* Every size a kernel needs, after padding strings and defaults are resolved.
 * Padding may be asymmetric (padding='same' with an even dilated extent). */
typedef struct nbi_conv_geom {
    int64_t N, C, H, W;          /* input */
    int64_t O, kh, kw;           /* weight: (O, C/groups, kh, kw) */
    int64_t sh, sw;              /* stride */
    int64_t pt, pb, pl, pr;      /* zero padding: top, bottom, left, right */
    int64_t dh, dw;              /* dilation */
    int64_t groups;
    int64_t Ho, Wo;              /* output */
} nbi_conv_geom;

/* ---- entry points (conv2d_algo.c) ---- */

/* y: (N, O, Ho, Wo) <- conv(x: (N, C, H, W), w: (O, C/g, kh, kw)) + b: (O) or NULL.
 * All buffers contiguous. NB_ERR_NOMEM (with a message) if scratch fails. */
nb_status nbi_conv2d_forward_f32(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g);
nb_status nbi_conv2d_forward_f64(double *y, const double *x, const double *w, const double *b, const nbi_conv_geom *g);

/* Gradients from dy: (N, O, Ho, Wo). Each of dx: (N, C, H, W), dw: (O, C/g, kh, kw),
 * db: (O) may be NULL when not wanted; those given are overwritten. */
nb_status nbi_conv2d_backward_f32(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                  const nbi_conv_geom *g);
nb_status nbi_conv2d_backward_f64(double *dx, double *dw, double *db, const double *dy, const double *x,
                                  const double *w, const nbi_conv_geom *g);

/* ---- the op's checks (conv2d.c), shared with the fused op (conv2d_pool.c) ---- */

/* What one call does: the convolution's geometry, and for padding modes other
 * than zeros F.pad's (left, right, top, bottom) to apply first. */
typedef struct nbi_conv2d_call {
    nbi_conv_geom g;   /* zero padding in g.pt.. ; g.H, g.W are the padded sizes when pad_first */
    bool pad_first;
    nb_padding_mode mode;
    int64_t fpad[4];
} nbi_conv2d_call;

/* F.conv2d's checks of its arguments, in PyTorch's order and words (p NULL:
 * the defaults); false with the error set. */
bool nbi_conv2d_check(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                      const nb_conv2d_params *p, nbi_conv2d_call *call);

/* ---- algorithms ---- */

typedef enum nbi_conv_algo {
    NBI_CONV_AUTO = -1,     /* (for nbi_conv2d_force_algo) the heuristic's choice */
    NBI_CONV_REFERENCE = 0, /* direct loops, any geometry and dtype (conv2d_ref.c) */
    NBI_CONV_IM2COL,        /* column matrix + GEMM, col2im for dx (kernels/conv2d_im2col.c) */
    NBI_CONV_POINTWISE,     /* 1x1, stride 1, unpadded: the input is the column matrix (same file) */
    NBI_CONV_IMPLICIT,      /* GEMM packing its operand straight from the input (kernels/conv2d_implicit.c) */
    NBI_CONV_WINOGRAD,      /* F(2x2, 3x3) for 3x3, stride 1 (kernels/conv2d_winograd.c) */
    NBI_CONV_DEPTHWISE,     /* one input channel per group, direct (kernels/conv2d_depthwise.c) */
    NBI_CONV_WINOGRAD4,     /* F(4x4, 3x3) for 3x3, stride 1 (kernels/conv2d_winograd4.c) */
    NBI_CONV_DIRECT,        /* direct sums, output channels in vector lanes (kernels/conv2d_direct.c) */
    NBI_CONV_ROWWISE,       /* direct sums along output rows, pixels in vector lanes (kernels/conv2d_rowwise.c) */
    NBI_CONV_ALGOS          /* the number of algorithms */
} nbi_conv_algo;

typedef enum nbi_conv_phase { NBI_CONV_FORWARD, NBI_CONV_DX, NBI_CONV_DW } nbi_conv_phase;

/* The algorithm of each phase. */
typedef struct nbi_conv_plan {
    nbi_conv_algo forward, dx, dw;
} nbi_conv_plan;

/* "reference", "im2col", ... */
const char *nbi_conv_algo_name(nbi_conv_algo a);
/* Whether algorithm a computes phase ph of this conv in this dtype (its
 * domain, not whether it is a good choice). REFERENCE applies to every one. */
bool nbi_conv2d_applies(nbi_conv_algo a, nbi_conv_phase ph, const nbi_conv_geom *g, nb_dtype dtype);
/* The heuristic's choice for the CPU set in use. */
nbi_conv_plan nbi_conv2d_choose(const nbi_conv_geom *g, nb_dtype dtype);

/* Tests: the calling thread's convs run algorithm a in every phase it
 * applies to (NBI_CONV_AUTO: the heuristic's choice everywhere), and
 * nbi_conv2d_last_plan() says what its last forward and backward ran
 * (NBI_CONV_AUTO for a phase not run since the last force call),
 * nbi_conv2d_last_geom() the geometry of its last forward. */
void nbi_conv2d_force_algo(nbi_conv_algo a);
nbi_conv_plan nbi_conv2d_last_plan(void);
nbi_conv_geom nbi_conv2d_last_geom(void);

/* nbi_conv2d_forward_f32, then relu on y as nb_relu computes it: in the
 * algorithm's stores where it has forward_relu, else over y afterwards. */
nb_status nbi_conv2d_forward_relu_f32(float *y, const float *x, const float *w, const float *b,
                                      const nbi_conv_geom *g);

/* nbi_conv2d_backward_f32 of relu's gradient of dy (0 where y <= 0, y the
 * rectified output): the same bits, without storing that gradient where the
 * dw algorithm has backward_relu (and dx is not wanted), else stored by a
 * pass that also sums the bias gradient where the conv's backward would sum
 * it in a pass of its own. NB_ERR_NOMEM (with a message) if scratch fails. */
nb_status nbi_conv2d_relu_backward_f32(float *dx, float *dw, float *db, const float *dy, const float *y,
                                       const float *x, const float *w, const nbi_conv_geom *g);

/* The fused conv -> max_pool2d(2) -> relu of conv2d_pool.c: the algorithm
 * that runs it as one op for geometry g (the one the plan gives every phase,
 * if its kernels have forward_pool; float32; a pooled output of at least
 * 1x1), else NBI_CONV_AUTO; and the float32 entry points running algorithm
 * a (the arguments of forward_pool and backward_pool). */
nbi_conv_algo nbi_conv2d_pool_algo(const nbi_conv_geom *g, nb_dtype dtype);
nb_status nbi_conv2d_pool_forward_f32(nbi_conv_algo a, float *y, uint8_t *tap, const float *x, const float *w,
                                      const float *b, const nbi_conv_geom *g, bool relu);
nb_status nbi_conv2d_pool_backward_f32(nbi_conv_algo a, float *dx, float *dw, float *db, const float *dy,
                                       const uint8_t *tap, const float *y, const float *x, const float *w,
                                       const nbi_conv_geom *g);

/* ---- kernels ----
 * One algorithm's float32 kernels for one CPU set, on non-empty convs
 * (N, C, O >= 1; the entry points handle the rest), within the algorithm's
 * domain (nbi_conv2d_applies). Arguments as the entry points'; dx and dw are
 * overwritten. Each returns NB_ERR_NOMEM (with a message) if scratch fails.
 * A NULL member: the algorithm does not compute that phase. `backward`, where
 * an algorithm has it, computes dx, dw and db (any of them NULL), dx and dw
 * with the same bits as its dx and dw kernels and db its own way, in fewer
 * passes over dy; when an algorithm with `backward` computes dw, db comes
 * from it too, wanted with dw or alone (conv2d_algo.c). */
typedef struct nbi_conv2d_kernels {
    nb_status (*forward)(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g);
    nb_status (*dx)(float *dx, const float *dy, const float *w, const nbi_conv_geom *g);
    nb_status (*dw)(float *dw, const float *dy, const float *x, const nbi_conv_geom *g);
    nb_status (*backward)(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          const nbi_conv_geom *g);
    /* backward's dw and db (either NULL) of relu's gradient of dy (0 where
     * y <= 0, y the rectified output), the same bits, the gradient never stored. */
    nb_status (*backward_relu)(float *dw, float *db, const float *dy, const float *y, const float *x,
                               const nbi_conv_geom *g);
    /* forward, then relu on the output as nb_relu computes it (conv2d_pool.c). */
    nb_status (*forward_relu)(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g);
    /* The fused conv -> 2x2 max-pool -> relu (conv2d_pool.c), where an
     * algorithm has it: forward_pool writes y (N, O, Ho/2, Wo/2), the pooled
     * output (rectified if relu), and tap, each window's winning tap as
     * max_pool2d's 2x2 path saves it; backward_pool takes dy of y's shape,
     * those taps and, for the relu, y (NULL without). The same bits as the
     * three ops one after the other with this algorithm. */
    nb_status (*forward_pool)(float *y, uint8_t *tap, const float *x, const float *w, const float *b,
                              const nbi_conv_geom *g, bool relu);
    nb_status (*backward_pool)(float *dx, float *dw, float *db, const float *dy, const uint8_t *tap, const float *y,
                               const float *x, const float *w, const nbi_conv_geom *g);
} nbi_conv2d_kernels;

extern const nbi_conv2d_kernels nbi_conv2d_im2col_portable, nbi_conv2d_im2col_avx2, nbi_conv2d_im2col_avx512;
extern const nbi_conv2d_kernels nbi_conv2d_pointwise_portable, nbi_conv2d_pointwise_avx2,
    nbi_conv2d_pointwise_avx512;
extern const nbi_conv2d_kernels nbi_conv2d_implicit_portable, nbi_conv2d_implicit_avx2, nbi_conv2d_implicit_avx512;
extern const nbi_conv2d_kernels nbi_conv2d_winograd_portable, nbi_conv2d_winograd_avx2, nbi_conv2d_winograd_avx512;
extern const nbi_conv2d_kernels nbi_conv2d_depthwise_portable, nbi_conv2d_depthwise_avx2,
    nbi_conv2d_depthwise_avx512;
extern const nbi_conv2d_kernels nbi_conv2d_winograd4_portable, nbi_conv2d_winograd4_avx2,
    nbi_conv2d_winograd4_avx512;
extern const nbi_conv2d_kernels nbi_conv2d_direct_portable, nbi_conv2d_direct_avx2, nbi_conv2d_direct_avx512;
extern const nbi_conv2d_kernels nbi_conv2d_rowwise_portable, nbi_conv2d_rowwise_avx2, nbi_conv2d_rowwise_avx512;
/* Both gradients in one pass where an algorithm has that (depthwise, stride
 * 1): the same bits as its dx and dw kernels, less memory traffic. */
typedef nb_status (*nbi_conv2d_dxdw_fn)(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                        const nbi_conv_geom *g);
extern const nbi_conv2d_dxdw_fn nbi_conv2d_depthwise_dxdw_portable, nbi_conv2d_depthwise_dxdw_avx2,
    nbi_conv2d_depthwise_dxdw_avx512;
/* The reference's float32 form (conv2d_ref.c): widened to float64, computed
 * there, rounded back. The same for every set. */
extern const nbi_conv2d_kernels nbi_conv2d_reference_f32;

/* ---- the reference (conv2d_ref.c): plain loops, float64, any geometry ----
 * Each output element is one sum in a fixed order, whatever the threads. */
void nbi_conv2d_ref_forward(double *y, const double *x, const double *w, const double *b, const nbi_conv_geom *g);
void nbi_conv2d_ref_dx(double *dx, const double *dy, const double *w, const nbi_conv_geom *g);
void nbi_conv2d_ref_dw(double *dw, const double *dy, const double *x, const nbi_conv_geom *g);
void nbi_conv2d_ref_db(double *db, const double *dy, const nbi_conv_geom *g);

/* ---- the input gradient as a forward conv (conv2d_flip.c) ----
 * With stride 1, dx is a forward conv of dy by the flipped, transposed weight
 * with the complementary padding (kh-1)*dh - pt etc., which must not be
 * negative. nbi_conv2d_flip_geom gives that conv's geometry;
 * nbi_conv2d_dx_by_forward computes dx with the given forward kernel. */
bool nbi_conv2d_flip_ok(const nbi_conv_geom *g);
nbi_conv_geom nbi_conv2d_flip_geom(const nbi_conv_geom *g);
nb_status nbi_conv2d_dx_by_forward(float *dx, const float *dy, const float *w, const nbi_conv_geom *g,
                                   nb_status (*forward)(float *y, const float *x, const float *w, const float *b,
                                                        const nbi_conv_geom *g));

/* dw[e] <- dw[e] + part[0][e] + part[1][e] + ... for e < n, left to right:
 * the weight gradient of a batch cut into a fixed number of pieces, piece 0
 * summed in dw, the others in part (nparts of them, n floats each). */
static inline void nbi_conv_add_partials(float *dw, const float *part, int64_t nparts, int64_t n) {
    _Pragma("omp parallel for schedule(static) if (n * nparts > NBI_PAR_MIN)")
    for (int64_t e = 0; e < n; e++) {
        float s = dw[e];
        for (int64_t p = 0; p < nparts; p++) s += part[p * n + e];
        dw[e] = s;
    }
}

/* A thread's scratch buffer of a kernel's parallel region, zeroed (so that
 * padding lanes read by the kernel are finite); NULL with *st = NB_ERR_NOMEM
 * if out of memory (set under a critical section: any thread may fail). */
static inline float *nbi_conv_zeroed_buffer(size_t bytes, nb_status *st) {
    float *buf = nbi_alloc(bytes);
    if (!buf) {
        _Pragma("omp critical(nbi_conv_scratch)") *st = NB_ERR_NOMEM;
    } else {
        memset(buf, 0, bytes);
    }
    return buf;
}

/* Output columns [lo, hi) whose input column ow*s + off lies in [0, W). */
static inline void nbi_conv_valid_range(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : -off / s + (-off % s != 0); /* ceil without -off + s - 1: s may be huge */
    int64_t h = W - 1 - off < 0 ? 0 : (W - 1 - off) / s + 1;
    if (l > Wo) l = Wo;
    if (h > Wo) h = Wo;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

#endif
