/* fma_peak: the machine's measured float32 FMA peak, the ceiling every
 * benchmark figure in bench/ is compared with.
 *
 * Each thread runs independent chains of register-only FMAs (acc = acc * a + b,
 * no loads or stores), enough chains to cover the FMA latency on every port
 * (24 on 512-bit zmm, 12 on 256-bit ymm where only 16 registers exist), for
 * each vector width the CPU and the OS support: AVX-512F (512-bit) and
 * AVX2+FMA (256-bit). Each kernel is compiled for its ISA with a target
 * attribute and picked at run time from CPUID (__builtin_cpu_supports), so the
 * program itself runs on any x86-64, whatever -march the rest of the build uses.
 * GFLOP/s = 2 * lanes * chains * iterations * threads / wall time, best of
 * REPEATS timed runs of about SECONDS each at each thread count.
 *
 * Usage: fma_peak [-s SECONDS] [-r REPEATS] [THREADS ...]   (default 0.2 s, 5, "1 2")
 * Prints one JSON object: {"cpu": ..., "gflops": {"avx512": {"1": x, "2": y},
 * "avx2": {...}}, "best": {"1": x, "2": y}, ...}; widths the CPU lacks are absent. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FMA_X86 1
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The multiplier is just below 1 so the chains converge to b / (1 - a) and
 * never overflow or reach subnormals, however long they run. The sum of the
 * chains is returned (and printed by the caller only if odd) so the compiler
 * cannot drop the work. */
#define FMA_A 0.99999f
#define FMA_B 1e-6f

#ifdef FMA_X86
enum { CHAINS512 = 24, CHAINS256 = 12 };

__attribute__((target("avx512f"))) static float fma_chains_avx512(long iters) {
    __m512 acc[CHAINS512];
    const __m512 a = _mm512_set1_ps(FMA_A), b = _mm512_set1_ps(FMA_B);
#pragma GCC unroll 24
    for (int j = 0; j < CHAINS512; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 24
        for (int j = 0; j < CHAINS512; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    }
#pragma GCC unroll 24
    for (int j = 1; j < CHAINS512; j++) acc[0] = _mm512_add_ps(acc[0], acc[j]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float fma_chains_avx2(long iters) {
    __m256 acc[CHAINS256];
    const __m256 a = _mm256_set1_ps(FMA_A), b = _mm256_set1_ps(FMA_B);
#pragma GCC unroll 12
    for (int j = 0; j < CHAINS256; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS256; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    }
#pragma GCC unroll 12
    for (int j = 1; j < CHAINS256; j++) acc[0] = _mm256_add_ps(acc[0], acc[j]);
    float v[8];
    _mm256_storeu_ps(v, acc[0]);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}
#endif

typedef struct probe {
    const char *name;
    float (*run)(long iters);
    double flops_per_iter; /* 2 * lanes * chains */
} probe;

/* Best GFLOP/s of `repeats` runs of `iters` iterations on each of `threads` threads. */
static double measure(const probe *p, int threads, long iters, int repeats, float *sink) {
    double best = 0;
    for (int r = 0; r < repeats; r++) {
        float s = 0;
        double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : s)
        s += p->run(iters);
        double t = now_s() - t0;
        *sink += s;
        double g = p->flops_per_iter * (double)iters * threads / t / 1e9;
        if (g > best) best = g;
    }
    return best;
}

static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (!v) break;
            v += 1 + (v[1] == ' ');
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, n, "%s", v);
            break;
        }
    }
    fclose(f);
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    double seconds = 0.2;
    int repeats = 5, threads[16], nthreads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
            repeats = atoi(argv[++i]);
        } else if (atoi(argv[i]) > 0 && nthreads < 16) {
            threads[nthreads++] = atoi(argv[i]);
        } else {
            fprintf(stderr, "usage: %s [-s SECONDS] [-r REPEATS] [THREADS ...]\n", argv[0]);
            return 2;
        }
    }
    if (seconds <= 0 || repeats < 1) {
        fprintf(stderr, "fma_peak: SECONDS and REPEATS must be positive\n");
        return 2;
    }
    if (nthreads == 0) threads[nthreads++] = 1, threads[nthreads++] = 2;

    probe probes[2];
    int np = 0;
#ifdef FMA_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        probes[np++] = (probe){"avx512", fma_chains_avx512, 2.0 * 16 * CHAINS512};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        probes[np++] = (probe){"avx2", fma_chains_avx2, 2.0 * 8 * CHAINS256};
#endif

    char model[256];
    cpu_model(model, sizeof model);
    float sink = 0;
    double gf[2][16] = {{0}};
    for (int p = 0; p < np; p++) {
        /* Calibrate on one thread: iterations for about `seconds`. */
        long iters = 1 << 16;
        for (;;) {
            double t0 = now_s();
            sink += probes[p].run(iters);
            double t = now_s() - t0;
            if (t > seconds / 8 || iters > (1L << 40)) {
                iters = (long)(iters * seconds / (t > 0 ? t : 1e-9)) + 1;
                break;
            }
            iters *= 4;
        }
        for (int t = 0; t < nthreads; t++) gf[p][t] = measure(&probes[p], threads[t], iters, repeats, &sink);
    }

    printf("{\"cpu\": ");
    json_string(model);
    printf(", \"seconds\": %g, \"repeats\": %d, \"gflops\": {", seconds, repeats);
    for (int p = 0; p < np; p++) {
        printf("%s\"%s\": {", p ? ", " : "", probes[p].name);
        for (int t = 0; t < nthreads; t++) printf("%s\"%d\": %.1f", t ? ", " : "", threads[t], gf[p][t]);
        printf("}");
    }
    printf("}, \"best\": {");
    for (int t = 0; t < nthreads; t++) {
        double b = 0;
        for (int p = 0; p < np; p++) b = gf[p][t] > b ? gf[p][t] : b;
        if (np)
            printf("%s\"%d\": %.1f", t ? ", " : "", threads[t], b);
    }
    printf("}%s}\n", np ? "" : ", \"note\": \"no FMA3 vector unit detected (needs AVX2+FMA or AVX-512F)\"");
    /* Never true; keeps the chains' results live. */
    if (sink == 12345.678f) fprintf(stderr, "%g\n", sink);
    return 0;
}
