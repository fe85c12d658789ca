/* Conv2d per phase, nabla alone: the forward, the input gradient and the
 * weight gradient of each config timed separately, with the heuristic's
 * algorithm or with algorithms forced (each where it applies; the
 * heuristic's choice elsewhere), so that a kernel change can be measured on
 * the phase it touches; "bwd" is all three gradients in one call, as the
 * autograd asks for them (named by its dw algorithm). Calls the internal entry points
 * (src/nn/conv_internal.h) on plain arrays, so like gemm_bench it sees the
 * private headers.
 *
 * Several algorithms (--algo a,b,c) run interleaved: each repeat runs every
 * one of them in turn, so a burst of load from elsewhere hits them alike and
 * their medians can be compared within one run. Prints, per config, algorithm
 * and phase, the algorithm that ran and the minimum and median CPU time and
 * the median wall time of REPEATS runs (after two warm-ups), in ms.
 * --error also prints each phase's float32 error against the float64
 * reference kernel: the largest |error| over max(1, max |reference|) (the
 * form of the test suite's PyTorch tolerance, 2e-5) and the largest
 * |error| of an element over the sum of the |terms| of its sum.
 *
 * Usage: conv2d_phase_bench CONFIGS THREADS [REPEATS] [--only NAME,NAME]
 *                           [--algo NAME,NAME] [--error]
 *        algorithm names: reference im2col pointwise implicit winograd
 *        depthwise winograd4 direct, or auto (the heuristic) */
#include "nn/conv_internal.h"

#include <nabla.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool listed(const char *only, const char *name) {
    if (!only) return true;
    size_t n = strlen(name);
    for (const char *p = only; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static float *random_floats(int64_t n, uint64_t *state) {
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (float)((double)(*state >> 40) / (double)(1 << 24) - 0.5);
    }
    return v;
}

static double *widened(const float *v, int64_t n, bool absolute) {
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) d[i] = absolute ? fabs((double)v[i]) : v[i];
    return d;
}

/* The float64 reference of one phase: values and the sums of |terms|. */
typedef struct reference {
    double *val[3], *mag[3];
} reference;

static reference reference_of(const float *x, const float *w, const float *b, const float *dy, const nbi_conv_geom *g,
                              int64_t nx, int64_t nw, int64_t ny) {
    double *xd = widened(x, nx, false), *wd = widened(w, nw, false), *bd = widened(b, g->O, false);
    double *dyd = widened(dy, ny, false), *xa = widened(x, nx, true), *wa = widened(w, nw, true);
    double *ba = widened(b, g->O, true), *dya = widened(dy, ny, true);
    const int64_t n[3] = {ny, nx, nw};
    reference r;
    for (int f = 0; f < 3; f++) {
        r.val[f] = malloc(sizeof(double) * (size_t)(n[f] ? n[f] : 1));
        r.mag[f] = malloc(sizeof(double) * (size_t)(n[f] ? n[f] : 1));
    }
    nbi_conv2d_ref_forward(r.val[0], xd, wd, bd, g);
    nbi_conv2d_ref_forward(r.mag[0], xa, wa, ba, g);
    nbi_conv2d_ref_dx(r.val[1], dyd, wd, g);
    nbi_conv2d_ref_dx(r.mag[1], dya, wa, g);
    nbi_conv2d_ref_dw(r.val[2], dyd, xd, g);
    nbi_conv2d_ref_dw(r.mag[2], dya, xa, g);
    free(xd), free(wd), free(bd), free(dyd), free(xa), free(wa), free(ba), free(dya);
    return r;
}

/* parity: max |got - ref| / max(1, max |ref|); terms: max |got - ref| / mag */
static void errors(const float *got, const double *ref, const double *mag, int64_t n, double *parity, double *terms) {
    double maxref = 1, maxerr = 0, rel = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - ref[i]);
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
        if (e > maxerr) maxerr = e;
        if (mag[i] > 0 && e / mag[i] > rel) rel = e / mag[i];
    }
    *parity = maxerr / maxref;
    *terms = rel;
}

#define MAX_ALGOS 8

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIGS THREADS [REPEATS] [--only NAME,...] [--algo NAME,...] [--error]\n",
                argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]), repeats = 10, nalgos = 1;
    const char *only = NULL;
    bool error = false;
    nbi_conv_algo algos[MAX_ALGOS] = {NBI_CONV_AUTO};
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--error") == 0) {
            error = true;
        } else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc) {
            const char *list = argv[++i];
            nalgos = 0;
            for (int k = NBI_CONV_AUTO; k < NBI_CONV_ALGOS; k++)
                if (listed(list, nbi_conv_algo_name((nbi_conv_algo)k)) && nalgos < MAX_ALGOS)
                    algos[nalgos++] = (nbi_conv_algo)k;
            if (nalgos == 0) {
                fprintf(stderr, "no known algorithm in %s\n", list);
                return 2;
            }
        } else {
            repeats = atoi(argv[i]);
        }
    }
    if (nb_set_num_threads(threads) != NB_OK || repeats < 1) {
        fprintf(stderr, "bad threads/repeats\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    printf("kernels %s, %d thread(s), %d repeats, interleaved; ms: cpu min / cpu median / wall median%s\n",
           nb_cpu_kernels(), threads, repeats,
           error ? "; error vs float64: max|e|/max(1,max|ref|), max |e|/sum|terms|" : "");
    char line[512];
    uint64_t seed = 1;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        long long N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, gr;
        if (line[0] == '#' ||
            sscanf(line, "%63s %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", name, &N, &C,
                   &H, &W, &O, &kh, &kw, &sh, &sw, &ph, &pw, &dh, &dw, &gr) != 15)
            continue;
        if (!listed(only, name)) continue;
        nbi_conv_geom g = {.N = N, .C = C, .H = H, .W = W, .O = O, .kh = kh, .kw = kw, .sh = sh, .sw = sw,
                           .pt = ph, .pb = ph, .pl = pw, .pr = pw, .dh = dh, .dw = dw, .groups = gr};
        g.Ho = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
        g.Wo = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
        const int64_t nx = N * C * H * W, nw = O * (C / gr) * kh * kw, ny = N * O * g.Ho * g.Wo;
        float *x = random_floats(nx, &seed), *w = random_floats(nw, &seed), *b = random_floats(O, &seed);
        float *dy = random_floats(ny, &seed), *out[3], *db = malloc(sizeof(float) * (size_t)O);
        out[0] = malloc(sizeof(float) * (size_t)ny);
        out[1] = malloc(sizeof(float) * (size_t)nx);
        out[2] = malloc(sizeof(float) * (size_t)nw);
        const size_t nt = (size_t)(repeats * MAX_ALGOS);
        double *tc = malloc(sizeof(double) * nt), *tw = malloc(sizeof(double) * nt);
        const double flops = 2.0 * N * O * g.Ho * g.Wo * (C / gr) * kh * kw;
        char result[MAX_ALGOS][4][160];
        for (int p = 0; p < 4; p++) { /* forward, dx, dw, and all three gradients as autograd asks for them */
            nbi_conv_algo ran[MAX_ALGOS];
            for (int r = -2; r < repeats; r++)
                for (int k = 0; k < nalgos; k++) {
                    nbi_conv2d_force_algo(algos[k]);
                    const double w0 = wall_ms(), c0 = cpu_ms();
                    const nb_status st = p == 0   ? nbi_conv2d_forward_f32(out[0], x, w, b, &g)
                                         : p == 1 ? nbi_conv2d_backward_f32(out[1], NULL, NULL, dy, x, w, &g)
                                         : p == 2 ? nbi_conv2d_backward_f32(NULL, out[2], NULL, dy, x, w, &g)
                                                  : nbi_conv2d_backward_f32(out[1], out[2], db, dy, x, w, &g);
                    const double w1 = wall_ms(), c1 = cpu_ms();
                    if (st != NB_OK) {
                        fprintf(stderr, "%s: %s\n", name, nb_last_error());
                        return 1;
                    }
                    if (r >= 0) tc[k * repeats + r] = c1 - c0, tw[k * repeats + r] = w1 - w0;
                    const nbi_conv_plan pl = nbi_conv2d_last_plan();
                    ran[k] = p == 0 ? pl.forward : p == 1 ? pl.dx : pl.dw; /* bwd: named by its dw */
                }
            for (int k = 0; k < nalgos; k++) {
                double *c = tc + k * repeats, *wl = tw + k * repeats;
                qsort(c, (size_t)repeats, sizeof *c, cmp_double);
                qsort(wl, (size_t)repeats, sizeof *wl, cmp_double);
                snprintf(result[k][p], sizeof result[k][p], "  %s %-9s %8.3f %8.3f %8.3f (%3.0f GF/s)",
                         (const char *[]){"fwd", "dx", "dw", "bwd"}[p], nbi_conv_algo_name(ran[k]), c[0],
                         c[repeats / 2], wl[repeats / 2], (p == 3 ? 2 : 1) * flops / c[repeats / 2] / 1e6);
            }
        }
        for (int k = 0; k < nalgos; k++)
            printf("%-14s %-9s%s%s%s%s\n", name, nbi_conv_algo_name(algos[k]), result[k][0], result[k][1], result[k][2],
                   result[k][3]);
        if (error) {
            const reference ref = reference_of(x, w, b, dy, &g, nx, nw, ny);
            const int64_t n[3] = {ny, nx, nw};
            for (int k = 0; k < nalgos; k++) {
                nbi_conv2d_force_algo(algos[k]);
                if (nbi_conv2d_forward_f32(out[0], x, w, b, &g) != NB_OK ||
                    nbi_conv2d_backward_f32(out[1], out[2], NULL, dy, x, w, &g) != NB_OK) {
                    fprintf(stderr, "%s: %s\n", name, nb_last_error());
                    return 1;
                }
                const nbi_conv_plan pl = nbi_conv2d_last_plan();
                const nbi_conv_algo ran[3] = {pl.forward, pl.dx, pl.dw};
                printf("%-14s %-9s error", name, nbi_conv_algo_name(algos[k]));
                for (int p = 0; p < 3; p++) {
                    double parity, terms;
                    errors(out[p], ref.val[p], ref.mag[p], n[p], &parity, &terms);
                    printf("  %s %-9s %.2e %.2e", p == 0 ? "fwd" : p == 1 ? "dx" : "dw", nbi_conv_algo_name(ran[p]),
                           parity, terms);
                }
                printf("\n");
            }
            for (int p = 0; p < 3; p++) free(ref.val[p]), free(ref.mag[p]);
        }
        fflush(stdout);
        free(x), free(w), free(b), free(dy), free(out[0]), free(out[1]), free(out[2]), free(db), free(tc), free(tw);
    }
    nbi_conv2d_force_algo(NBI_CONV_AUTO);
    fclose(f);
    return 0;
}
