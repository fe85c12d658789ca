/* The internal GEMM (nbi_sgemm / nbi_dgemm): the fast packed kernel against
 * the plain reference triple loop (nbi_*gemm_ref) for every transpose case,
 * alpha/beta, odd and edge sizes, padded leading dimensions; exact equality
 * on integer data (where any summation order gives the same bits); and
 * bitwise determinism: 1 vs 2 threads, inside vs outside a parallel region,
 * normal vs micro-panel (out-of-memory) blocking, narrow vs wide tiles.
 * The padding columns of A and B hold NaN and those of C a sentinel, so a
 * read or write outside the leading-dimension window shows up. */
#include "testutil.h"

#include "tensor/gemm.h"
#include "tensor/internal.h"

#include <float.h>
#include <omp.h>
#include <stdlib.h>

/* xorshift64*, uniform in [-1, 1), or small integers in [-3, 3] when ints. */
static uint64_t rng_state;
static double next_value(bool ints) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    if (ints) return (double)(int)(r >> 61) - 3.0; /* 0..7 -> -3..4, clamp below */
    return (double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

#define SENTINEL 1234.5

typedef struct {
    bool ta, tb;
    int64_t M, N, K;
    int64_t pad; /* extra columns in every leading dimension */
    double alpha, beta;
    bool ints;   /* integer data: results must be exact */
} gemm_case;

/* Run one case in type T: C from the fast GEMM vs the reference, with the
 * error bound of a reordered sum, gamma_(K+2) * (|alpha| sum|a||b| + |beta c|),
 * or exact for integer data. The padding columns of C must be untouched. */
#define CHECK_CASE(NAME, T, FAST, REF, EPS)                                                                           \
    static void NAME(const gemm_case *g) {                                                                            \
        int64_t ar = g->ta ? g->K : g->M, ac = g->ta ? g->M : g->K; /* A stored (ar, ac) */                           \
        int64_t br = g->tb ? g->N : g->K, bc = g->tb ? g->K : g->N;                                                   \
        int64_t lda = ac + g->pad, ldb = bc + g->pad, ldc = g->N + g->pad;                                            \
        T *A = malloc(sizeof(T) * (size_t)(ar * lda + 1)), *B = malloc(sizeof(T) * (size_t)(br * ldb + 1));           \
        T *C = malloc(sizeof(T) * (size_t)(g->M * ldc + 1)), *R = malloc(sizeof(T) * (size_t)(g->M * ldc + 1));       \
        T *C0 = malloc(sizeof(T) * (size_t)(g->M * ldc + 1));                                                         \
        for (int64_t i = 0; i < ar * lda; i++) A[i] = (T)(i % lda < ac ? fmin(next_value(g->ints), 3) : NAN);         \
        for (int64_t i = 0; i < br * ldb; i++) B[i] = (T)(i % ldb < bc ? fmin(next_value(g->ints), 3) : NAN);         \
        for (int64_t i = 0; i < g->M * ldc; i++) {                                                                    \
            /* beta == 0 must not read C: NaN there would poison the result */                                        \
            C0[i] = (T)(i % ldc >= g->N ? SENTINEL : g->beta == 0 ? NAN : fmin(next_value(g->ints), 3));              \
            C[i] = R[i] = C0[i];                                                                                      \
        }                                                                                                             \
        T alpha = (T)g->alpha, beta = (T)g->beta;                                                                     \
        FAST(g->ta, g->tb, g->M, g->N, g->K, alpha, A, lda, B, ldb, beta, C, ldc);                                    \
        REF(g->ta, g->tb, g->M, g->N, g->K, alpha, A, lda, B, ldb, beta, R, ldc);                                     \
        for (int64_t i = 0; i < g->M; i++)                                                                            \
            for (int64_t j = 0; j < ldc; j++) {                                                                       \
                T c = C[i * ldc + j], r = R[i * ldc + j];                                                             \
                /* ck_assert only on failure: each passing assert costs Check a write() */                            \
                if (j >= g->N) {                                                                                      \
                    if (c != (T)SENTINEL)                                                                             \
                        ck_abort_msg( "padding of C written at (%lld, %lld)", (long long)i,                           \
                                  (long long)j);                                                                      \
                    continue;                                                                                         \
                }                                                                                                     \
                double bound = 0;                                                                                     \
                if (!g->ints) {                                                                                       \
                    double s = 0;                                                                                     \
                    for (int64_t k = 0; k < g->K; k++) {                                                              \
                        double a = g->ta ? A[k * lda + i] : A[i * lda + k];                                           \
                        double b = g->tb ? B[j * ldb + k] : B[k * ldb + j];                                           \
                        s += fabs(a * b);                                                                             \
                    }                                                                                                 \
                    double c0 = g->beta == 0 ? 0 : fabs((double)C0[i * ldc + j]);                                     \
                    bound = 2.0 * (double)(g->K + 3) * EPS * (fabs(g->alpha) * s + fabs(g->beta) * c0);               \
                }                                                                                                     \
                if (!(isfinite(c) && fabs((double)c - (double)r) <= bound))                                           \
                    ck_abort_msg(                                                                                     \
                              "%s ta=%d tb=%d M=%lld N=%lld K=%lld pad=%lld alpha=%g beta=%g: C[%lld,%lld] = "        \
                              "%.17g, reference %.17g (bound %.3g)",                                                  \
                              #T, g->ta, g->tb, (long long)g->M, (long long)g->N, (long long)g->K,                    \
                              (long long)g->pad, g->alpha, g->beta, (long long)i, (long long)j, (double)c,            \
                              (double)r, bound);                                                                      \
            }                                                                                                         \
        free(A);                                                                                                      \
        free(B);                                                                                                      \
        free(C);                                                                                                      \
        free(R);                                                                                                      \
        free(C0);                                                                                                     \
    }

CHECK_CASE(check_f32, float, nbi_sgemm, nbi_sgemm_ref, (double)FLT_EPSILON)
CHECK_CASE(check_f64, double, nbi_dgemm, nbi_dgemm_ref, DBL_EPSILON)

/* Sizes around the tile (8 x 48 float, 8 x 24 double, and the 12 x 32 /
 * 12 x 16 used before), K-slice (256), row-block (128 / 96) and column-block
 * (2064 / 1032) edges, degenerate dimensions of 1, and mixes of odd sizes. */
static const int64_t triples[][3] = {
    {1, 1, 1},    {1, 7, 17},   {7, 1, 33},   {17, 33, 1},  {33, 65, 7},   {65, 17, 127}, {127, 33, 65},
    {7, 127, 17}, {1, 127, 65}, {127, 1, 33}, {13, 31, 2},  {12, 32, 256}, {12, 33, 257}, {25, 15, 300},
    {145, 70, 40}, {100, 40, 513}, {3, 2100, 5}, {64, 676, 9}, {8, 48, 256}, {9, 49, 255},
    {16, 24, 64},  {130, 50, 30}, {97, 25, 3},
};
static const double alphabeta[][2] = {{1, 0}, {0.75, 0}, {1, 1}, {-1.5, 0.25}};

static void sweep(bool dbl, bool ints) {
    rng_state = 0x9e3779b97f4a7c15ull;
    int n = (int)(sizeof triples / sizeof triples[0]);
    for (int t = 0; t < n; t++)
        for (int tr = 0; tr < 4; tr++) {
            gemm_case g = {.ta = tr & 1, .tb = tr >> 1, .M = triples[t][0], .N = triples[t][1],
                           .K = triples[t][2], .pad = (t + tr) % 3 == 0 ? 0 : 1 + t % 5, .ints = ints};
            const double *ab = alphabeta[(t + tr) % 4];
            g.alpha = ab[0];
            g.beta = ab[1];
            if (ints && g.alpha != 1 && g.alpha != -1.5) g.alpha = 2; /* keep integer data exact */
            if (dbl) check_f64(&g);
            else check_f32(&g);
        }
}

START_TEST(test_f32_vs_reference) { sweep(false, false); }
END_TEST

START_TEST(test_f64_vs_reference) { sweep(true, false); }
END_TEST

/* Integer data: every partial sum is exact, so the order cannot matter and
 * fast must equal reference bit for bit (bound 0). */
START_TEST(test_exact_on_integers) {
    sweep(false, true);
    sweep(true, true);
}
END_TEST

START_TEST(test_k_zero_and_empty) {
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
    nbi_sgemm(false, false, 2, 3, 0, 1, A, 1, B, 3, 2, C, 3); /* C = 2 C */
    for (int i = 0; i < 6; i++) ck_assert(C[i] == 2 * (i + 1));
    for (int i = 0; i < 6; i++) C[i] = NAN;
    nbi_sgemm(false, false, 2, 3, 0, 1, A, 1, B, 3, 0, C, 3); /* beta 0: zeros, C not read */
    for (int i = 0; i < 6; i++) ck_assert(C[i] == 0);
    nbi_sgemm(false, false, 0, 3, 4, 1, A, 4, B, 3, 0, C, 3); /* M = 0: nothing to do */
    nbi_sgemm(false, false, 2, 0, 4, 1, A, 4, B, 3, 0, C, 3);
    for (int i = 0; i < 6; i++) ck_assert(C[i] == 0);
}
END_TEST

/* Determinism: big enough to be threaded and to span several K slices and
 * M/N blocks; 1 vs 2 threads, a loop of independent products run inside an
 * omp parallel for (single-threaded GEMMs) vs one by one outside, and the
 * out-of-memory path (micro-panel-sized blocks) vs the normal blocking. */
#define BATCH 3
#define DETERMINISM(NAME, T, GEMM, SMALL_BLOCKS)                                                                      \
    static void NAME(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {                                             \
        size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * N);                                      \
        T *A = malloc(sizeof(T) * na * BATCH), *B = malloc(sizeof(T) * nb * BATCH);                                   \
        T *C1 = malloc(sizeof(T) * nc * BATCH), *C2 = malloc(sizeof(T) * nc * BATCH);                                 \
        T *C3 = malloc(sizeof(T) * nc * BATCH), *C4 = malloc(sizeof(T) * nc * BATCH);                                 \
        for (size_t i = 0; i < na * BATCH; i++) A[i] = (T)next_value(false);                                          \
        for (size_t i = 0; i < nb * BATCH; i++) B[i] = (T)next_value(false);                                          \
        for (size_t i = 0; i < nc * BATCH; i++) C1[i] = C2[i] = C3[i] = C4[i] = (T)next_value(false);                 \
        int64_t lda = ta ? M : K, ldb = tb ? K : N;                                                                   \
        T alpha = (T)0.7, beta = (T)-0.3;                                                                             \
        int saved = nb_get_num_threads();                                                                             \
        NBT_OK(nb_set_num_threads(1));                                                                                \
        for (int b = 0; b < BATCH; b++)                                                                               \
            GEMM(ta, tb, M, N, K, alpha, A + b * na, lda, B + b * nb, ldb, beta, C1 + b * nc, N);                     \
        NBT_OK(nb_set_num_threads(2));                                                                                \
        for (int b = 0; b < BATCH; b++)                                                                               \
            GEMM(ta, tb, M, N, K, alpha, A + b * na, lda, B + b * nb, ldb, beta, C2 + b * nc, N);                     \
        _Pragma("omp parallel for schedule(static)")                                                                  \
        for (int b = 0; b < BATCH; b++)                                                                               \
            GEMM(ta, tb, M, N, K, alpha, A + b * na, lda, B + b * nb, ldb, beta, C3 + b * nc, N);                     \
        for (int b = 0; b < BATCH; b++)                                                                               \
            SMALL_BLOCKS(ta, tb, M, N, K, alpha, A + b * na, lda, B + b * nb, ldb, beta, C4 + b * nc, N);             \
        NBT_OK(nb_set_num_threads(saved));                                                                            \
        ck_assert_msg(memcmp(C1, C2, sizeof(T) * nc * BATCH) == 0, "%s: 1 vs 2 threads differ", #T);                  \
        ck_assert_msg(memcmp(C1, C3, sizeof(T) * nc * BATCH) == 0, "%s: inside vs outside a parallel region",         \
                      #T);                                                                                            \
        ck_assert_msg(memcmp(C1, C4, sizeof(T) * nc * BATCH) == 0, "%s: blocked vs micro-panel blocks", #T);          \
        free(A);                                                                                                      \
        free(B);                                                                                                      \
        free(C1);                                                                                                     \
        free(C2);                                                                                                     \
        free(C3);                                                                                                     \
        free(C4);                                                                                                     \
    }

DETERMINISM(determinism_f32, float, nbi_sgemm, nbi_sgemm_small_blocks)
DETERMINISM(determinism_f64, double, nbi_dgemm, nbi_dgemm_small_blocks)

START_TEST(test_deterministic) {
    rng_state = 42;
    for (int tr = 0; tr < 4; tr++) {
        determinism_f32(tr & 1, tr >> 1, 157, 301, 530);
        determinism_f64(tr & 1, tr >> 1, 157, 301, 530);
    }
    determinism_f32(false, false, 64, 2200, 300); /* more than one NC block */
    determinism_f64(false, true, 40, 1100, 70);
}
END_TEST

/* Narrow products (N <= 2 NR_NARROW) use the one-vector tile; the columns
 * they share with a wider product (wide tile) must have the same bits. */
#define NARROW_VS_WIDE(NAME, T, GEMM, NRN)                                                                            \
    static void NAME(bool ta, bool tb) {                                                                              \
        const int M = 13, K = 300, NW = 2 * (NRN) + 5, NN = 2 * (NRN);                                                \
        T *A = malloc(sizeof(T) * M * K), *B = malloc(sizeof(T) * K * NW);                                          \
        T *Cw = malloc(sizeof(T) * M * NW), *Cn = malloc(sizeof(T) * M * NW);                                       \
        for (int i = 0; i < M * K; i++) A[i] = (T)next_value(false);                                                  \
        for (int i = 0; i < K * NW; i++) B[i] = (T)next_value(false);                                                 \
        for (int i = 0; i < M * NW; i++) Cw[i] = Cn[i] = (T)next_value(false);                                       \
        /* op(B)'s first NN columns: the same storage with a smaller N */                                            \
        GEMM(ta, tb, M, NW, K, (T)0.9, A, ta ? M : K, B, tb ? K : NW, (T)0.4, Cw, NW);                                \
        GEMM(ta, tb, M, NN, K, (T)0.9, A, ta ? M : K, B, tb ? K : NW, (T)0.4, Cn, NW);                                \
        for (int i = 0; i < M; i++)                                                                                   \
            ck_assert_msg(memcmp(Cw + i * NW, Cn + i * NW, sizeof(T) * NN) == 0, "%s row %d: narrow vs wide tile",   \
                          #T, i);                                                                                     \
        free(A);                                                                                                      \
        free(B);                                                                                                      \
        free(Cw);                                                                                                     \
        free(Cn);                                                                                                     \
    }

NARROW_VS_WIDE(narrow_vs_wide_f32, float, nbi_sgemm, nbi_gemm()->snr_narrow)
NARROW_VS_WIDE(narrow_vs_wide_f64, double, nbi_dgemm, nbi_gemm()->dnr_narrow)

START_TEST(test_narrow_tile_same_bits) {
    rng_state = 7;
    for (int tr = 0; tr < 4; tr++) {
        narrow_vs_wide_f32(tr & 1, tr >> 1);
        narrow_vs_wide_f64(tr & 1, tr >> 1);
    }
}
END_TEST

static Suite *gemm_suite(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_f32_vs_reference);
    tcase_add_test(tc, test_f64_vs_reference);
    tcase_add_test(tc, test_exact_on_integers);
    tcase_add_test(tc, test_k_zero_and_empty);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_narrow_tile_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return nbt_run_suite(gemm_suite()); }
