/* nb_cpu_kernels: the kernel set in use is the best one this CPU runs, or
 * the one NB_CPU asks for when the CPU runs it, else the best it can (never
 * one it cannot: that would be SIGILL). CTest runs this with NB_CPU unset,
 * set to each set, and set to a name that is no set. NBT_CPU_SETS (from the
 * build) lists the sets the library holds: "portable avx2 avx512", or
 * "single" for a one-set build (NB_NATIVE, or a CPU other than x86-64). */
#include "testutil.h"

#include <stdlib.h>

static int rank(const char *set) {
    return strcmp(set, "portable") == 0 ? 0 : strcmp(set, "avx2") == 0 ? 1 : strcmp(set, "avx512") == 0 ? 2 : -1;
}

/* The best set this CPU runs, by the compiler's own CPUID check. */
static int best_supported(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return 2;
    return avx2 ? 1 : 0;
#else
    return 0;
#endif
}

START_TEST(test_kernel_set) {
    const char *got = nb_cpu_kernels();
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(rank(got) >= 0, "nb_cpu_kernels() = '%s', not a kernel set", got);
    ck_assert_str_eq(nb_cpu_kernels(), got); /* chosen once */
    ck_assert_msg(rank(got) <= best_supported(), "'%s' chosen, but this CPU runs at most set %d", got,
                  best_supported());
    if (strcmp(NBT_CPU_SETS, "single") == 0) return; /* whatever the build was compiled for */
    const char *want = getenv("NB_CPU");
    const int expect = want && rank(want) >= 0 && rank(want) <= best_supported() ? rank(want) : best_supported();
    ck_assert_msg(rank(got) == expect, "NB_CPU=%s on a CPU whose best set is %d: got '%s'", want ? want : "(unset)",
                  best_supported(), got);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_kernel_set);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return nbt_run_suite(suite()); }
