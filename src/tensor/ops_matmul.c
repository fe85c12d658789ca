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
} mm_geom;

/* Shape checks (messages as torch.matmul) and the geometry. */
static bool mm_plan(const nb_tensor *a, const nb_tensor *b, mm_geom *g, int *ndout, int64_t *outsh) {
    char x[128], y[128];
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
    for (int i = 0; i < g->nbd; i++) outsh[n++] = g->bat[i];
    if (a->ndim > 1) outsh[n++] = g->M;
    if (b->ndim > 1) outsh[n++] = g->N;
    *ndout = n;
    return true;
}

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

/* Gradient for one operand: the full-batch result `full` (nbat, rows, cols)
 * summed over the batch dims where the operand broadcast, in its own shape. */
static nb_tensor *reduce_to_input(nb_tensor *full, int np, const int64_t *psh, const nb_tensor *in) {
    nb_tensor *r = nbi_sum_to_shape(full, np, psh);
    nb_tensor_release(full);
    if (!r) return NULL;
    nb_tensor *out = nb_reshape(r, in->ndim, in->shape); /* drops a 1-d operand's promoted dim */
    nb_tensor_release(r);
    return out;
}

static nb_status matmul_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *a0 = node->inputs[0], *b0 = node->inputs[1];
    mm_geom g;
    int nd;
    int64_t osh[NB_MAX_DIMS];
    if (!mm_plan(a0, b0, &g, &nd, osh)) return nb_last_status();
    nb_dtype dt = a0->dtype;
    nb_tensor *a = nbi_contiguous_data(a0), *b = nbi_contiguous_data(b0);
    nb_status st = NB_OK;
    if (!a || !b) goto fail;
    const void *dc = nbi_data(gout); /* contiguous (nbat, M, N) */
    bool b_flat = g.nb == 2;         /* b has no batch dims: fold a's batch into rows */
    if (nbi_node_needs_grad(node, 0)) {
        if (b_flat) {
            gin[0] = nbi_empty(dt, a0->ndim, a0->shape);
            if (!gin[0]) goto fail;
            /* dA (nbat*M, K) = dC (nbat*M, N) B^T */
            gemm(dt, false, true, g.nbat * g.M, g.K, g.N, dc, g.N, nbi_data(b), g.N, nbi_data(gin[0]), g.K);
        } else {
            int64_t fsh[NB_MAX_DIMS];
            for (int i = 0; i < g.nbd; i++) fsh[i] = g.bat[i];
            fsh[g.nbd] = g.M;
            fsh[g.nbd + 1] = g.K;
            nb_tensor *full = nbi_empty(dt, g.nbd + 2, fsh);
            if (!full) goto fail;
            mm_batched(MM_DA, &g, dt, nbi_data(full), nbi_data(a), nbi_data(b), dc);
            gin[0] = reduce_to_input(full, g.na, g.ash, a0);
            if (!gin[0]) goto fail;
        }
    }
    if (nbi_node_needs_grad(node, 1)) {
        if (b_flat) {
            gin[1] = nbi_empty(dt, b0->ndim, b0->shape);
            if (!gin[1]) goto fail;
            /* dB (K, N) = A^T (K, nbat*M) dC (nbat*M, N): the batch sum is part of the GEMM's K loop */
            gemm(dt, true, false, g.K, g.N, g.nbat * g.M, nbi_data(a), g.K, dc, g.N, nbi_data(gin[1]), g.N);
        } else {
            int64_t fsh[NB_MAX_DIMS];
            for (int i = 0; i < g.nbd; i++) fsh[i] = g.bat[i];
            fsh[g.nbd] = g.K;
            fsh[g.nbd + 1] = g.N;
            nb_tensor *full = nbi_empty(dt, g.nbd + 2, fsh);
            if (!full) goto fail;
            mm_batched(MM_DB, &g, dt, nbi_data(full), nbi_data(a), nbi_data(b), dc);
            gin[1] = reduce_to_input(full, g.nb, g.bsh, b0);
            if (!gin[1]) goto fail;
        }
    }
    nbi_release(a);
    nbi_release(b);
    return NB_OK;
fail:
    st = nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
    nbi_release(a);
    nbi_release(b);
    for (int i = 0; i < 2; i++) {
        nb_tensor_release(gin[i]);
        gin[i] = NULL;
    }
    return st;
}
static const nbi_op matmul_op = {"matmul", matmul_backward, NULL};

nb_tensor *nb_matmul(const nb_tensor *a, const nb_tensor *b) {
    if (!nbi_check_float("matmul", "a", a) || !nbi_check_float("matmul", "b", b)) return NULL;
    if (!nbi_check_same_dtype("matmul", a, b)) return NULL;
    mm_geom g;
    int nd;
    int64_t osh[NB_MAX_DIMS];
    if (!mm_plan(a, b, &g, &nd, osh)) return NULL;
    nb_tensor *out = nbi_empty(a->dtype, nd, osh);
    nb_tensor *ac = nbi_contiguous_data(a), *bc = nbi_contiguous_data(b);
    if (!out || !ac || !bc) {
        nb_tensor_release(out);
        nbi_release(ac);
        nbi_release(bc);
        return NULL;
    }
    if (g.nb == 2) /* C (nbat*M, N) = A (nbat*M, K) B (K, N) */
        gemm(a->dtype, false, false, g.nbat * g.M, g.N, g.K, nbi_data(ac), g.K, nbi_data(bc), g.N, nbi_data(out), g.N);
    else
        mm_batched(MM_FWD, &g, a->dtype, nbi_data(out), nbi_data(ac), nbi_data(bc), NULL);
    nbi_release(ac);
    nbi_release(bc);
    nb_tensor *in[2] = {(nb_tensor *)a, (nb_tensor *)b};
    return nbi_finish(out, &matmul_op, in, 2, NULL);
}
