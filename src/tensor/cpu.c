/* Which kernel set runs (cpu.h): chosen once per process, like OpenBLAS's
 * DYNAMIC_ARCH or PyTorch's ATEN_CPU_CAPABILITY. The best set the CPU (and
 * the OS, which must save the wider registers: __builtin_cpu_supports checks
 * XGETBV too) can run, unless NB_CPU=avx512|avx2|portable asks for another
 * one; a request the CPU cannot run gets the best it can, which
 * nb_cpu_kernels() then names. The library prints nothing either way. */
#include "internal.h"

#include "cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"portable", "avx2", "avx512"};

static nbi_cpu_path best(void) {
#if defined(NBI_CPU_DISPATCH)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return NBI_CPU_AVX512;
    return avx2 ? NBI_CPU_AVX2 : NBI_CPU_PORTABLE;
#elif defined(NBI_KERNELS_AVX512)
    return NBI_CPU_AVX512; /* the only set this build has */
#elif defined(NBI_KERNELS_AVX2)
    return NBI_CPU_AVX2;
#else
    return NBI_CPU_PORTABLE;
#endif
}

static nbi_cpu_path choose(void) {
    nbi_cpu_path path = best();
#if defined(NBI_CPU_DISPATCH) /* a single-set build has nothing else to offer */
    const char *want = getenv("NB_CPU");
    if (want)
        for (int p = 0; p < (int)(sizeof names / sizeof *names); p++)
            if (strcmp(want, names[p]) == 0 && p < (int)path) path = (nbi_cpu_path)p;
#endif
    return path;
}

nbi_cpu_path nbi_cpu(void) {
    /* -1 until decided; racing first calls compute the same value */
    static _Atomic int chosen = -1;
    int p = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (p < 0) {
        p = (int)choose();
        atomic_store_explicit(&chosen, p, memory_order_relaxed);
    }
    return (nbi_cpu_path)p;
}

const char *nb_cpu_kernels(void) { return names[nbi_cpu()]; }
