/* Private: the CPU paths (kernel sets) and the one this process runs.
 *
 * The loops whose speed depends on the instruction set live under
 * src/tensor/kernels/ and src/nn/kernels/. The default x86-64 build compiles
 * those files three times (CMakeLists.txt), once per set, each compile with
 * one of
 *   NBI_KERNELS_AVX512     -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma
 *   NBI_KERNELS_AVX2       -mavx2 -mfma
 *   NBI_KERNELS_PORTABLE   the target's baseline (SSE2 on x86-64)
 * defined, and NBI_CPU_DISPATCH (as is every other library file). Each kernel
 * file ends with one table of its functions named for its set, e.g.
 * nbi_gemm_avx2; nbi_cpu_path() picks the set once per process, from CPUID
 * or the NB_CPU environment variable, and NBI_CPU_PICK takes that set's table.
 *
 * A build with one set (NB_NATIVE=ON, or a CPU other than x86-64) defines
 * none of these: the compiler's own target macros name the set, the same for
 * every file, so the kernel files and their callers agree on it.
 *
 * Kernels of one set call the other modules only through their dispatching
 * entry points (nbi_sgemm, nbi_sgemm_packed, ...), which take the tables of
 * the set in use: the same set, since a set's kernels run only when it is
 * the one in use. Compile-time tile sizes therefore always match. */
#ifndef NABLA_CPU_H
#define NABLA_CPU_H

typedef enum nbi_cpu_path {
    NBI_CPU_PORTABLE = 0,
    NBI_CPU_AVX2 = 1,
    NBI_CPU_AVX512 = 2,
} nbi_cpu_path;

/* The set in use: the best one this CPU runs, or the one NB_CPU asks for
 * when the CPU runs it. Decided on the first call; thread-safe. */
nbi_cpu_path nbi_cpu(void);

#if !defined(NBI_CPU_DISPATCH) && !defined(NBI_KERNELS_AVX512) && !defined(NBI_KERNELS_AVX2) &&                        \
    !defined(NBI_KERNELS_PORTABLE)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) &&                 \
    defined(__AVX2__) && defined(__FMA__)
#define NBI_KERNELS_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#define NBI_KERNELS_AVX2 1
#else
#define NBI_KERNELS_PORTABLE 1
#endif
#endif

/* &(the table of the set in use), given a module's three tables. */
#if defined(NBI_CPU_DISPATCH)
#define NBI_CPU_PICK(portable, avx2, avx512)                                                                           \
    (nbi_cpu() == NBI_CPU_AVX512 ? &(avx512) : nbi_cpu() == NBI_CPU_AVX2 ? &(avx2) : &(portable))
#elif defined(NBI_KERNELS_AVX512)
#define NBI_CPU_PICK(portable, avx2, avx512) (&(avx512))
#elif defined(NBI_KERNELS_AVX2)
#define NBI_CPU_PICK(portable, avx2, avx512) (&(avx2))
#else
#define NBI_CPU_PICK(portable, avx2, avx512) (&(portable))
#endif

#endif
