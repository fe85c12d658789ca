/* matmul with torch.matmul's semantics, forward and backward, on the
 * internal GEMM (nbi_sgemm / nbi_dgemm).
 *
 * Both operands are promoted to at least 2-d (a 1-d a becomes [1, K], a 1-d
 * b becomes [K, 1]; the added dim is dropped from the result), then seen as
 * a batch of (M, K) and (K, N) matrices over their broadcast leading dims.
 * When b has no batch dims the whole batch of a is one (batch*M, K) matrix
 * and one GEMM does it (the common linear-layer case), in both directions.
 *
 * Determinism: every output matrix is computed by one GEMM call, and the GEMM
 * never splits K, so the bits do not depend on the thread count. Gradients of
 * broadcast batch dims are summed by nbi_sum_to_shape, which is sequential. */
#include "internal.h"

#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Per-GEMM work under which small batched products are spread over threads
 * one matrix per task (the GEMM then runs serially inside). */
#define MM_SMALL 262144

typedef struct {
    int na, nb;                 /* promoted ndims of a and b */
    int64_t ash[NB_MAX_DIMS];   /* promoted shape of a: (abatch..., M, K) */
    int64_t bsh[NB_MAX_DIMS];   /* promoted shape of b: (bbatch..., K, N) */
    int nbd;                    /* number of broadcast batch dims */
    int64_t bat[NB_MAX_DIMS];   /* broadcast batch shape */
    int64_t astr[NB_MAX_DIMS];  /* element offset of a's matrix per batch index step (0: broadcast) */
    int64_t bstr[NB_MAX_DIMS];
    int64_t nbat, M, N, K;
    int ndout;                  /* the output's shape */
    int64_t outsh[NB_MAX_DIMS];
} mm_geom;

/* ---- check: dtypes and shapes (messages as torch.matmul); the geometry ---- */
static bool matmul_check(const nb_tensor *a, const nb_tensor *b, mm_geom *g) {
    char x[128], y[128];
    if (!nbi_check_float("matmul", "a", a) || !nbi_check_float("matmul", "b", b)) return false;
    if (!nbi_check_same_dtype("matmul", a, b)) return false;
    if (a->ndim == 0 || b->ndim == 0) {
        nbi_error(NB_ERR_SHAPE, "matmul: both arguments to matmul need to be at least 1D, but they are %dD and %dD",
                  a->ndim, b->ndim);
        return false;
    }
    g->na = a->ndim == 1 ? 2 : a->ndim;
    g->nb = b->ndim == 1 ? 2 : b->ndim;
    if (a->ndim == 1) {
        g->ash[0] = 1;
        g->ash[1] = a->shape[0];
    } else {
        for (int i = 0; i < a->ndim; i++) g->ash[i] = a->shape[i];
    }
    if (b->ndim == 1) {
        g->bsh[0] = b->shape[0];
        g->bsh[1] = 1;
    } else {
        for (int i = 0; i < b->ndim; i++) g->bsh[i] = b->shape[i];
    }
    g->M = g->ash[g->na - 2];
    g->K = g->ash[g->na - 1];
    g->N = g->bsh[g->nb - 1];
    int64_t kb = g->bsh[g->nb - 2];
    if (g->K != kb) {
        nbi_error(NB_ERR_SHAPE, "matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                  nb_shape_str(a->ndim, a->shape, x, sizeof x), nb_shape_str(b->ndim, b->shape, y, sizeof y),
                  (long long)g->K, (long long)kb);
        return false;
    }
    int nab = g->na - 2, nbb = g->nb - 2;
    if (nbi_broadcast_shape("matmul", nab, g->ash, nbb, g->bsh, &g->nbd, g->bat) != NB_OK) return false;
    /* Batch strides, aligned from the right; 0 where an operand broadcasts. */
    int64_t sa = g->M * g->K, sb = g->K * g->N;
    g->nbat = 1;
    for (int i = g->nbd - 1; i >= 0; i--) {
        int ia = nab - g->nbd + i, ib = nbb - g->nbd + i;
        int64_t da = ia >= 0 ? g->ash[ia] : 1, db = ib >= 0 ? g->bsh[ib] : 1;
        g->astr[i] = da == 1 ? 0 : sa;
        g->bstr[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        g->nbat *= g->bat[i];
    }
    int n = 0;
    for (int i = 0; i < g->nbd; i++) g->outsh[n++] = g->bat[i];
    if (a->ndim > 1) g->outsh[n++] = g->M;
    if (b->ndim > 1) g->outsh[n++] = g->N;
    g->ndout = n;
    return true;
}

/* ---- kernels ---- */

/* Offsets of batch p's matrices in a and b. */
static void mm_offsets(const mm_geom *g, int64_t p, int64_t *ao, int64_t *bo) {
    int64_t oa = 0, ob = 0;
    for (int i = g->nbd - 1; i >= 0; i--) {
        int64_t ix = p % g->bat[i];
        p /= g->bat[i];
        oa += ix * g->astr[i];
        ob += ix * g->bstr[i];
    }
    *ao = oa;
    *bo = ob;
}

/* One GEMM C = op(A) op(B) (beta 0) in the tensor's dtype; pointers are element pointers. */
static void gemm(nb_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                 const void *B, int64_t ldb, void *C, int64_t ldc) {
    if (dt == NB_F32) nbi_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    else nbi_dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
}

/* The three products over the batch. Which of C = A B, dA = dC B^T, dB = A^T dC. */
typedef enum { MM_FWD, MM_DA, MM_DB } mm_kind;

/* For every batch p: out_p = product of the p-th matrices. out is contiguous
 * (nbat, rows, cols) over the full broadcast batch; x, y are a/b or dC. */
static void mm_batched(mm_kind kind, const mm_geom *g, nb_dtype dt, void *out, const void *A, const void *B,
                       const void *dC) {
    size_t es = nb_dtype_size(dt);
    int64_t M = g->M, N = g->N, K = g->K, nbat = g->nbat;
    int64_t work = M * N * K;
    const char *pa = A, *pb = B, *pc = dC;
    char *po = out;
    _Pragma("omp parallel for schedule(static) if (nbat > 1 && work < MM_SMALL && nbat * work >= MM_SMALL)")
    for (int64_t p = 0; p < nbat; p++) {
        int64_t ao, bo;
        mm_offsets(g, p, &ao, &bo);
        switch (kind) {
        case MM_FWD: /* C_p (M, N) = A_p (M, K) B_p (K, N) */
            gemm(dt, false, false, M, N, K, pa + (size_t)ao * es, K, pb + (size_t)bo * es, N,
                 po + (size_t)(p * M * N) * es, N);
            break;
        case MM_DA: /* dA_p (M, K) = dC_p (M, N) B_p^T (N, K) */
            gemm(dt, false, true, M, K, N, pc + (size_t)(p * M * N) * es, N, pb + (size_t)bo * es, N,
                 po + (size_t)(p * M * K) * es, K);
            break;
        case MM_DB: /* dB_p (K, N) = A_p^T (K, M) dC_p (M, N) */
            gemm(dt, true, false, K, N, M, pa + (size_t)ao * es, K, pc + (size_t)(p * M * N) * es, N,
                 po + (size_t)(p * K * N) * es, N);
            break;
        }
    }
}

/* ---- autograd: ctx is the mm_geom ---- */
/* The gradient of operand `which` (0: a, 1: b) in in's shape: one GEMM over
 * the folded batch when b has no batch dims, else one product per batch
 * matrix summed over the batch dims where the operand broadcast. */
static nb_tensor *matmul_input_grad(int which, const mm_geom *g, nb_dtype dt, const nb_tensor *in, const void *dc,
                                    const void *A, const void *B) {
    if (g->nb == 2) { /* b has no batch dims: fold a's batch into rows */
        nb_tensor *r = nbi_empty(dt, in->ndim, in->shape);
        if (r && which == 0) /* dA (nbat*M, K) = dC (nbat*M, N) B^T */
            gemm(dt, false, true, g->nbat * g->M, g->K, g->N, dc, g->N, B, g->N, nbi_data(r), g->K);
        else if (r) /* dB (K, N) = A^T (K, nbat*M) dC (nbat*M, N): the batch sum is part of the GEMM's K loop */
            gemm(dt, true, false, g->K, g->N, g->nbat * g->M, A, g->K, dc, g->N, nbi_data(r), g->N);
        return r;
    }
    int64_t fsh[NB_MAX_DIMS];
    for (int i = 0; i < g->nbd; i++) fsh[i] = g->bat[i];
    fsh[g->nbd] = which == 0 ? g->M : g->K;
    fsh[g->nbd + 1] = which == 0 ? g->K : g->N;
    nb_tensor *full = nbi_empty(dt, g->nbd + 2, fsh); /* (nbat, rows, cols) over the full broadcast batch */
    if (!full) return NULL;
    mm_batched(which == 0 ? MM_DA : MM_DB, g, dt, nbi_data(full), A, B, dc);
    nb_tensor *r = nbi_sum_to_shape(full, which == 0 ? g->na : g->nb, which == 0 ? g->ash : g->bsh);
    nbi_release(full);
    nb_tensor *out = r ? nbi_own(nb_reshape(r, in->ndim, in->shape)) : NULL; /* drops a 1-d operand's promoted dim */
    nbi_release(r);
    return out;
}

static nb_status matmul_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const mm_geom *g = node->ctx;
    const nb_tensor *a = node->inputs[0], *b = node->inputs[1];
    nb_tensor *ac = nbi_contiguous_data(a), *bc = ac ? nbi_contiguous_data(b) : NULL;
    nb_status st = bc ? NB_OK : nb_last_status();
    for (int i = 0; i < 2 && st == NB_OK; i++) {
        if (!nbi_node_needs_grad(node, i)) continue;
        gin[i] = matmul_input_grad(i, g, a->dtype, node->inputs[i], nbi_data(gout), nbi_data(ac), nbi_data(bc));
        if (!gin[i]) st = nb_last_status();
    }
    nbi_release(ac);
    nbi_release(bc);
    return st;
}
static const nbi_op matmul_op = {"matmul", matmul_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_matmul(const nb_tensor *a, const nb_tensor *b) {
    mm_geom g;
    if (!matmul_check(a, b, &g)) return NULL;
    nb_tensor *ac = nbi_contiguous_data(a), *bc = ac ? nbi_contiguous_data(b) : NULL;
    nb_tensor *y = bc ? nbi_empty(a->dtype, g.ndout, g.outsh) : NULL;
    if (y && g.nb == 2) /* C (nbat*M, N) = A (nbat*M, K) B (K, N) */
        gemm(a->dtype, false, false, g.nbat * g.M, g.N, g.K, nbi_data(ac), g.K, nbi_data(bc), g.N, nbi_data(y), g.N);
    else if (y)
        mm_batched(MM_FWD, &g, a->dtype, nbi_data(y), nbi_data(ac), nbi_data(bc), NULL);
    nbi_release(ac);
    nbi_release(bc);
    return nbi_finish_op(y, &matmul_op, NBI_INPUTS(a, b), NULL, 0, &g, sizeof g);
}
