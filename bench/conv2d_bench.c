/* Conv2d benchmark, nabla side: forward and forward+backward (input, weight
 * and bias gradients) for the configurations in conv2d_configs.txt, at a
 * given thread count. Prints one JSON object per configuration; the PyTorch
 * twin (conv2d_bench_torch.py) prints the same fields, and conv2d_run.py
 * (through run_conv2d.sh) joins them into the ratio table. Times: median and minimum wall time, and
 * median process CPU time (all threads), of REPEATS runs after two warm-ups.
 * Usage: conv2d_bench CONFIGS THREADS [REPEATS] */
#include <nabla.h>
#include <nabla/conv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of the whole process (all threads): on a loaded machine it
 * leaves out the time spent waiting for a core, which wall time does not. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double minimum(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    /* The kernel set this build and CPU run (machine.py records it). */
    if (argc == 2 && strcmp(argv[1], "--cpu-kernels") == 0) {
        printf("%s\n", nb_cpu_kernels());
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIGS THREADS [REPEATS]\n       %s --cpu-kernels\n", argv[0], argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]), repeats = argc > 3 ? atoi(argv[3]) : 10;
    if (nb_set_num_threads(threads) != NB_OK || repeats < 1) {
        fprintf(stderr, "bad threads/repeats\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    char line[512];
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    while (fgets(line, sizeof line, f)) {
        char name[64];
        long long N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, g;
        if (line[0] == '#' || sscanf(line, "%63s %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
                                     name, &N, &C, &H, &W, &O, &kh, &kw, &sh, &sw, &ph, &pw, &dh, &dw, &g) != 15)
            continue;
        nb_tensor *x = nb_rand_normal(&rng, NB_F32, NB_SHAPE(N, C, H, W), 0, 1);
        nb_tensor *w = nb_rand_normal(&rng, NB_F32, NB_SHAPE(O, C / g, kh, kw), 0, 0.1);
        nb_tensor *b = nb_rand_normal(&rng, NB_F32, NB_SHAPE(O), 0, 0.1);
        nb_conv2d_params p = nb_conv2d_defaults();
        p.stride[0] = sh, p.stride[1] = sw, p.padding[0] = ph, p.padding[1] = pw;
        p.dilation[0] = dh, p.dilation[1] = dw, p.groups = g;
        nb_tensor *y0 = nb_conv2d(x, w, b, &p);
        if (!y0) {
            fprintf(stderr, "%s: %s\n", name, nb_last_error());
            return 1;
        }
        nb_tensor *gy = nb_rand_normal(&rng, NB_F32, nb_tensor_ndim(y0), nb_tensor_shape(y0), 0, 1);
        const int64_t *ys = nb_tensor_shape(y0);
        double flops = 2.0 * N * O * ys[2] * ys[3] * (C / g) * kh * kw;
        nb_tensor_release(y0);
        double *tf = malloc(sizeof(double) * repeats), *tb = malloc(sizeof(double) * repeats);
        double *cf = malloc(sizeof(double) * repeats), *cb = malloc(sizeof(double) * repeats);
        for (int pass = 0; pass < 2; pass++) {
            bool backward = pass == 1;
            nb_requires_grad_(x, backward);
            nb_requires_grad_(w, backward);
            nb_requires_grad_(b, backward);
            for (int r = -2; r < repeats; r++) { /* two warm-up runs */
                nb_scope *s = nb_scope_begin();
                double t0 = now_ms(), c0 = cpu_ms();
                nb_tensor *y = nb_conv2d(x, w, b, &p);
                if (backward && nb_backward_ex(y, gy, false) != NB_OK) {
                    fprintf(stderr, "%s: %s\n", name, nb_last_error());
                    return 1;
                }
                double t1 = now_ms(), c1 = cpu_ms();
                nb_scope_end(s);
                nb_zero_grad(x);
                nb_zero_grad(w);
                nb_zero_grad(b);
                if (r >= 0) {
                    (backward ? tb : tf)[r] = t1 - t0;
                    (backward ? cb : cf)[r] = c1 - c0;
                }
            }
        }
        double nf = minimum(tf, repeats), nb = minimum(tb, repeats);
        double mf = median(tf, repeats), mb = median(tb, repeats);
        printf("{\"impl\": \"nabla\", \"name\": \"%s\", \"threads\": %d, \"fwd_ms\": %.4f, \"fwdbwd_ms\": %.4f, "
               "\"fwd_min_ms\": %.4f, \"fwdbwd_min_ms\": %.4f, \"fwd_cpu_ms\": %.4f, \"fwdbwd_cpu_ms\": %.4f, "
               "\"fwd_gflops\": %.2f, \"fwdbwd_gflops\": %.2f}\n",
               name, threads, mf, mb, nf, nb, median(cf, repeats), median(cb, repeats), flops / mf / 1e6,
               3 * flops / mb / 1e6);
        fflush(stdout);
        free(tf);
        free(tb);
        free(cf);
        free(cb);
        nb_tensor_release(x);
        nb_tensor_release(w);
        nb_tensor_release(b);
        nb_tensor_release(gy);
    }
    fclose(f);
    nb_memory_trim();
    return 0;
}
