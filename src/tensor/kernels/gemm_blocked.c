/* The blocked GEMM of one CPU set, behind nbi_sgemm / nbi_dgemm (contract in
 * tensor/internal.h and tensor/gemm.h), in the GotoBLAS/BLIS layout:
 *
 *   for each NC-wide column block of C            (jc)
 *     for each KC-deep slice of K                 (pc)  pack op(B) -> bpack (KC, NC)
 *       for each MC-tall row block                (ic)  pack op(A) -> apack (MC, KC)
 *         for each NR-wide micro-panel of bpack   (jr)  stays in L1/L2
 *           for each MR-tall micro-panel of apack (ir)  micro-kernel (gemm_micro.h)
 *
 * Packing (gemm_pack.h) makes every operand layout (the four transpose cases,
 * any leading dimension) look the same to the kernel and pads edges with
 * zeros.
 *
 * Determinism: K is never split between threads, and is cut into slices of
 * the constant NBI_GEMM_KC, so each element of C is always the same sequence
 * of FMAs (slice 0 from zero, then alpha*acc + C for every later slice)
 * whatever MC/NC, thread count or partition is used. Threads (only when
 * called outside a parallel region) each own a rectangle of C tiles and pack
 * their own panels; nothing is shared but the read-only inputs.
 *
 * Packing buffers come from the tensor pool (nbi_alloc), one fixed size per
 * dtype so the pool keeps serving the same block; if that fails we fall back
 * to one-micro-panel buffers on the stack, which is slower but gives the
 * same bits (nbi_*gemm_small_blocks runs that path, for the tests).
 *
 * Compiled once per CPU set (src/tensor/cpu.h); its table nbi_gemm_<set> is
 * at the end. */
#include "tensor/internal.h"

#include "tensor/kernels/gemm_micro.h"
#include "tensor/kernels/gemm_pack.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define KC NBI_GEMM_KC

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Below this many multiply-adds a thread team costs more than it saves. */
#define PARALLEL_MIN_WORK (1 << 19)

/* Split an mt x nt grid of MR x NR micro-tiles between at most `threads`
 * threads as a gm x gn grid of rectangles, minimising the busiest thread's
 * time per unit of K: its multiply-adds over `lanes` (one vector FMA per
 * cycle) plus about half a cycle per packed row of A and column of B (each
 * thread packs its own). Thin products (M = 32, 64) thus split N. */
static void thread_grid(int threads, int64_t mt, int64_t nt, int mr, int nr, int lanes, int *gm, int *gn) {
    double best = -1;
    *gm = *gn = 1;
    for (int a = 1; a <= threads && a <= mt; a++) {
        for (int b = 1; a * b <= threads && b <= nt; b++) {
            double rows = (double)((mt + a - 1) / a * mr), cols = (double)((nt + b - 1) / b * nr);
            double cost = rows * cols / lanes + 0.5 * (rows + cols);
            if (best < 0 || cost < best) {
                best = cost;
                *gm = a;
                *gn = b;
            }
        }
    }
}

/* One dtype's driver: NAME and SMALL_BLOCKS the entry points, RECT, SHARE,
 * WIDTH and TRIVIAL their helpers (every name spelled out at the use below). */
#define GEMM_DRIVER(NAME, RECT, SHARE, WIDTH, TRIVIAL, SMALL_BLOCKS, T, MR, NR, NRN, MC, NC, KERNEL, KERNEL_NARROW,    \
                    PACK_A, PACK_B)                                                                                    \
    /* C[m0:m1, n0:n1] with the given buffers and block sizes (mcb % MR == 0, ncb % nrp == 0); nrp is                  \
     * the tile width, NR or NRN (n0 a multiple of it). */                                                             \
    static void RECT(int nrp, bool ta, bool tb, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, T alpha,   \
                     const T *A, int64_t lda, const T *B, int64_t ldb, T beta, T *C, int64_t ldc, T *apack, T *bpack,  \
                     int64_t mcb, int64_t ncb) {                                                                       \
        for (int64_t jc = n0; jc < n1; jc += ncb) {                                                                    \
            int64_t nc = min64(ncb, n1 - jc);                                                                          \
            for (int64_t pc = 0; pc < K; pc += KC) {                                                                   \
                int64_t kc = min64(KC, K - pc);                                                                        \
                PACK_B(bpack, nrp, tb, B, ldb, pc, kc, jc, nc);                                                        \
                for (int64_t ic = m0; ic < m1; ic += mcb) {                                                            \
                    int64_t mc = min64(mcb, m1 - ic);                                                                  \
                    PACK_A(apack, ta, A, lda, ic, mc, pc, kc);                                                         \
                    for (int64_t jr = 0; jr < nc; jr += nrp)                                                           \
                        for (int64_t ir = 0; ir < mc; ir += MR)                                                        \
                            (nrp == NR ? KERNEL : KERNEL_NARROW)(                                                      \
                                kc, apack + ir * kc, bpack + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,              \
                                (int)min64(MR, mc - ir), (int)min64(nrp, nc - jr), alpha, beta, pc == 0);              \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    /* One thread's share: rectangle (gi, gj) of a gm x gn grid over the MR x nrp tiles, with pool                     \
     * buffers, or with one-micro-panel stack buffers if `small` or the pool is out of memory. */                      \
    static void SHARE(int nrp, int gi, int gj, int gm, int gn, bool small, bool ta, bool tb, int64_t M, int64_t N,    \
                      int64_t K, T alpha, const T *A, int64_t lda, const T *B, int64_t ldb, T beta, T *C,              \
                      int64_t ldc) {                                                                                   \
        int64_t mt = (M + MR - 1) / MR, nt = (N + nrp - 1) / nrp;                                                      \
        int64_t m0 = gi * mt / gm * MR, m1 = min64((gi + 1) * mt / gm * MR, M);                                        \
        int64_t n0 = gj * nt / gn * nrp, n1 = min64((gj + 1) * nt / gn * nrp, N);                                      \
        if (m0 >= m1 || n0 >= n1) return;                                                                              \
        size_t bytes = (size_t)(MC + NC) * KC * sizeof(T);                                                             \
        T *buf = small ? NULL : nbi_alloc(bytes);                                                                      \
        if (buf) {                                                                                                     \
            RECT(nrp, ta, tb, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, buf,                             \
                        buf + (size_t)MC * KC, MC, NC);                                                                \
            nbi_free(buf, bytes);                                                                                      \
        } else {                                                                                                       \
            _Alignas(64) T apack[MR * KC];                                                                             \
            _Alignas(64) T bpack[NR * KC];                                                                             \
            RECT(nrp, ta, tb, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, apack, bpack,                    \
                        MR, nrp);                                                                                      \
        }                                                                                                              \
    }                                                                                                                  \
    /* Tile width: products no wider than two narrow tiles use those rather than pad a wide one. */                    \
    static int WIDTH(int64_t N) { return N <= 2 * NRN ? NRN : NR; }                                                    \
    /* The trivial cases; false if there is a product to compute. */                                                   \
    static bool TRIVIAL(int64_t M, int64_t N, int64_t K, T alpha, T beta, T *C, int64_t ldc) {                         \
        if (M <= 0 || N <= 0) return true;                                                                             \
        if (K > 0) return false;                                                                                       \
        for (int64_t i = 0; i < M; i++) /* what the kernel does with an all-zero accumulator */                        \
            for (int64_t j = 0; j < N; j++) {                                                                          \
                T *c = C + i * ldc + j;                                                                                \
                *c = beta == 0 ? alpha * (T)0 : alpha * (T)0 + beta * *c;                                              \
            }                                                                                                          \
        return true;                                                                                                   \
    }                                                                                                                  \
    static void NAME(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda,              \
                     const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {                                             \
        if (TRIVIAL(M, N, K, alpha, beta, C, ldc)) return;                                                             \
        int nrp = WIDTH(N);                                                                                            \
        int threads = 1;                                                                                               \
        if ((double)M * (double)N * (double)K >= PARALLEL_MIN_WORK && !in_parallel())                                  \
            threads = max_threads();                                                                                   \
        int gm = 1, gn = 1;                                                                                            \
        thread_grid(threads, (M + MR - 1) / MR, (N + nrp - 1) / nrp, MR, nrp, NBI_GEMM_VEC_BYTES / (int)sizeof(T),     \
                    &gm, &gn);                                                                                         \
        if (gm * gn == 1) {                                                                                            \
            SHARE(nrp, 0, 0, 1, 1, false, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);                       \
            return;                                                                                                    \
        }                                                                                                              \
        _Pragma("omp parallel for schedule(static, 1) num_threads(gm * gn)")                                           \
        for (int t = 0; t < gm * gn; t++)                                                                              \
            SHARE(nrp, t / gn, t % gn, gm, gn, false, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);           \
    }                                                                                                                  \
    static void SMALL_BLOCKS(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A,                   \
                             int64_t lda, const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {                        \
        if (TRIVIAL(M, N, K, alpha, beta, C, ldc)) return;                                                             \
        SHARE(WIDTH(N), 0, 0, 1, 1, true, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);                       \
    }

#ifdef _OPENMP
static int in_parallel(void) { return omp_in_parallel(); }
static int max_threads(void) { return omp_get_max_threads(); }
#else
static int in_parallel(void) { return 0; }
static int max_threads(void) { return 1; }
#endif

/* Block sizes, whole tiles: an MC x KC block of A (64 KiB float) sits in
 * L2, the micro-panel of B being reused in L1; the KC x NC block of B
 * (~1 MiB float) in L2 / L3. */
#define SGEMM_MC (16 * NBI_SGEMM_MR)
#define SGEMM_NC (43 * NBI_SGEMM_NR)
#define DGEMM_MC (12 * NBI_DGEMM_MR)
#define DGEMM_NC (43 * NBI_DGEMM_NR)

GEMM_DRIVER(sgemm, sgemm_rect, sgemm_share, sgemm_width, sgemm_trivial, sgemm_small_blocks, float, NBI_SGEMM_MR,
            NBI_SGEMM_NR, NBI_SGEMM_NR_NARROW, SGEMM_MC, SGEMM_NC, nbi_sgemm_kernel, nbi_sgemm_kernel_narrow,
            nbi_sgemm_pack_a, nbi_sgemm_pack_b)
GEMM_DRIVER(dgemm, dgemm_rect, dgemm_share, dgemm_width, dgemm_trivial, dgemm_small_blocks, double, NBI_DGEMM_MR,
            NBI_DGEMM_NR, NBI_DGEMM_NR_NARROW, DGEMM_MC, DGEMM_NC, nbi_dgemm_kernel, nbi_dgemm_kernel_narrow,
            nbi_dgemm_pack_a, nbi_dgemm_pack_b)

/* ---- nbi_sgemm_packed: the same loops with the caller's packers ---- */

typedef struct packed_job {
    int64_t M, N, K;
    nbi_spack_fn pack_a, pack_b;
    const void *actx, *bctx;
    float *C;
    int64_t ldc;
} packed_job;

/* C[m0:m1, n0:n1], as sgemm_rect with the caller's packers. */
static void packed_rect(const packed_job *j, int nrp, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *apack,
                        float *bpack, int64_t mcb, int64_t ncb) {
    enum { MR = NBI_SGEMM_MR };
    for (int64_t jc = n0; jc < n1; jc += ncb) {
        int64_t nc = min64(ncb, n1 - jc);
        for (int64_t pc = 0; pc < j->K; pc += KC) {
            int64_t kc = min64(KC, j->K - pc);
            j->pack_b(bpack, nrp, j->bctx, pc, kc, jc, nc);
            for (int64_t ic = m0; ic < m1; ic += mcb) {
                int64_t mc = min64(mcb, m1 - ic);
                j->pack_a(apack, MR, j->actx, pc, kc, ic, mc);
                for (int64_t jr = 0; jr < nc; jr += nrp)
                    for (int64_t ir = 0; ir < mc; ir += MR)
                        (nrp == NBI_SGEMM_NR ? nbi_sgemm_kernel : nbi_sgemm_kernel_narrow)(
                            kc, apack + ir * kc, bpack + jr * kc, j->C + (ic + ir) * j->ldc + jc + jr, j->ldc,
                            (int)min64(MR, mc - ir), (int)min64(nrp, nc - jr), 1.0f, 0.0f, pc == 0);
            }
        }
    }
}

static void packed_share(const packed_job *j, int nrp, int gi, int gj, int gm, int gn) {
    enum { MR = NBI_SGEMM_MR };
    int64_t mt = (j->M + MR - 1) / MR, nt = (j->N + nrp - 1) / nrp;
    int64_t m0 = gi * mt / gm * MR, m1 = min64((gi + 1) * mt / gm * MR, j->M);
    int64_t n0 = gj * nt / gn * nrp, n1 = min64((gj + 1) * nt / gn * nrp, j->N);
    if (m0 >= m1 || n0 >= n1) return;
    size_t bytes = (size_t)(SGEMM_MC + SGEMM_NC) * KC * sizeof(float);
    float *buf = nbi_alloc(bytes);
    if (buf) {
        packed_rect(j, nrp, m0, m1, n0, n1, buf, buf + (size_t)SGEMM_MC * KC, SGEMM_MC, SGEMM_NC);
        nbi_free(buf, bytes);
    } else { /* out of memory: one micro-panel at a time, same bits */
        _Alignas(64) float apack[NBI_SGEMM_MR * KC];
        _Alignas(64) float bpack[NBI_SGEMM_NR * KC];
        packed_rect(j, nrp, m0, m1, n0, n1, apack, bpack, MR, nrp);
    }
}

static void sgemm_packed(int64_t M, int64_t N, int64_t K, nbi_spack_fn pack_a, const void *actx, nbi_spack_fn pack_b,
                         const void *bctx, float *C, int64_t ldc) {
    if (sgemm_trivial(M, N, K, 1.0f, 0.0f, C, ldc)) return;
    const packed_job j = {M, N, K, pack_a, pack_b, actx, bctx, C, ldc};
    int nrp = sgemm_width(N);
    int threads = 1;
    if ((double)M * (double)N * (double)K >= PARALLEL_MIN_WORK && !in_parallel()) threads = max_threads();
    int gm = 1, gn = 1;
    thread_grid(threads, (M + NBI_SGEMM_MR - 1) / NBI_SGEMM_MR, (N + nrp - 1) / nrp, NBI_SGEMM_MR, nrp,
                NBI_GEMM_VEC_BYTES / 4, &gm, &gn);
    if (gm * gn == 1) {
        packed_share(&j, nrp, 0, 0, 1, 1);
        return;
    }
    _Pragma("omp parallel for schedule(static, 1) num_threads(gm * gn)")
    for (int t = 0; t < gm * gn; t++) packed_share(&j, nrp, t / gn, t % gn, gm, gn);
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_gemm_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_gemm_avx2
#else
#define THIS_SET nbi_gemm_portable
#endif
const nbi_gemm_kernels THIS_SET = {
    .smr = NBI_SGEMM_MR, .snr = NBI_SGEMM_NR, .snr_narrow = NBI_SGEMM_NR_NARROW,
    .dmr = NBI_DGEMM_MR, .dnr = NBI_DGEMM_NR, .dnr_narrow = NBI_DGEMM_NR_NARROW,
    .sgemm = sgemm, .dgemm = dgemm, .sgemm_small_blocks = sgemm_small_blocks,
    .dgemm_small_blocks = dgemm_small_blocks, .sgemm_packed = sgemm_packed,
};
