/* GEMM micro-benchmark: GFLOP/s of nbi_sgemm / nbi_dgemm on square sizes and
 * the shapes conv2d (im2col) and Linear produce, at 1 and 2 threads.
 *
 * Unlike the other benchmarks this one includes the library's private
 * headers (src/tensor/internal.h, gemm.h): the GEMM is internal and there is
 * no public entry point that times it alone.
 *
 * Usage: gemm_bench [seconds-per-case] (default 0.3). */
#include "tensor/internal.h"
#include "tensor/gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    const char *what;
    bool ta, tb;
    int64_t M, N, K;
} shape;

static const shape shapes[] = {
    {"square", false, false, 256, 256, 256},
    {"square", false, false, 512, 512, 512},
    {"square", false, false, 1024, 1024, 1024},
    {"conv fwd W*col", false, false, 64, 676, 288},
    {"conv fwd W*col", false, false, 32, 3136, 144},
    {"conv fwd W*col", false, false, 32, 2400, 9},
    {"conv fwd W*col", false, false, 64, 3136, 576},
    {"conv dW gy*colT", false, true, 64, 288, 676},
    {"conv dW gy*colT", false, true, 32, 144, 3136},
    {"conv dcol WT*gy", true, false, 288, 676, 64},
    {"conv dW 1st layer", false, true, 32, 9, 3136},
    {"conv dW 1st layer", false, true, 32, 27, 3136},
    {"linear x*WT", false, true, 64, 128, 9216},
    {"linear out x*WT", false, true, 64, 10, 128},
    {"linear dW gyT*x", true, false, 128, 9216, 64},
    {"linear dx gy*W", false, false, 64, 9216, 128},
};

static double run(bool dbl, const shape *s, double seconds) {
    size_t es = dbl ? sizeof(double) : sizeof(float);
    int64_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    void *A = malloc((size_t)(s->M * s->K) * es), *B = malloc((size_t)(s->K * s->N) * es);
    void *C = malloc((size_t)(s->M * s->N) * es);
    for (int64_t i = 0; i < s->M * s->K; i++) {
        if (dbl) ((double *)A)[i] = (double)(i % 7) - 3;
        else ((float *)A)[i] = (float)(i % 7) - 3;
    }
    for (int64_t i = 0; i < s->K * s->N; i++) {
        if (dbl) ((double *)B)[i] = (double)(i % 5) - 2;
        else ((float *)B)[i] = (float)(i % 5) - 2;
    }
    double flops = 2.0 * s->M * s->N * s->K, best = 1e30, total = 0;
    for (int rep = 0; total < seconds || rep < 3; rep++) {
        double t = now();
        if (dbl) nbi_dgemm(s->ta, s->tb, s->M, s->N, s->K, 1, A, lda, B, ldb, 0, C, s->N);
        else nbi_sgemm(s->ta, s->tb, s->M, s->N, s->K, 1, A, lda, B, ldb, 0, C, s->N);
        t = now() - t;
        total += t;
        if (t < best) best = t;
    }
    free(A);
    free(B);
    free(C);
    return flops / best / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    printf("%-17s %2s %2s %5s %5s %5s | f32 1T  f32 2T | f64 1T  f64 2T  (GFLOP/s, best of runs)\n", "shape", "tA",
           "tB", "M", "N", "K");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        double g[4];
        for (int d = 0; d < 2; d++)
            for (int t = 1; t <= 2; t++) {
                nb_set_num_threads(t);
                g[d * 2 + t - 1] = run(d == 1, s, seconds);
            }
        printf("%-17s %2d %2d %5lld %5lld %5lld | %6.1f  %6.1f | %6.1f  %6.1f\n", s->what, s->ta, s->tb,
               (long long)s->M, (long long)s->N, (long long)s->K, g[0], g[1], g[2], g[3]);
        fflush(stdout);
    }
    return 0;
}
