/* test_fuzz_regressions.c: replays every committed fuzz input through the
 * same entry functions the libFuzzer targets call (tests/fuzz/fuzz_entries.h):
 * the seed corpus tests/fuzz/corpus/<name>/ and the inputs that once crashed
 * or broke a check, tests/fuzz/regressions/<name>/. An input passes when its
 * entry returns 0: the library returned a result or an error with a message,
 * and nothing crashed (in the ASan/UBSan build, no sanitizer report). */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "fuzz_entries.h"

typedef int (*entry_fn)(const uint8_t *, size_t);

static uint8_t *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    ck_assert(buf != NULL);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert(buf != NULL);
        }
    }
    fclose(f);
    *size = n;
    return buf;
}

/* Run fn on every regular file of NB_FUZZ_DIR/<kind>/<name>; returns how many. */
static int replay(const char *kind, const char *name, entry_fn fn) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s/%s", NB_FUZZ_DIR, kind, name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t size;
        uint8_t *data = slurp(path, &size);
        int rc = fn(data, size);
        free(data);
        ck_assert_msg(rc == 0, "%s: the fuzz entry's checks failed (see stderr)", path);
        count++;
    }
    closedir(d);
    return count;
}

static void run_target(const char *name, entry_fn fn) {
    int seeds = replay("corpus", name, fn);
    ck_assert_msg(seeds >= 3, "tests/fuzz/corpus/%s: expected at least 3 seed inputs, found %d", name, seeds);
    int regs = replay("regressions", name, fn);
    fprintf(stderr, "fuzz %s: %d seeds, %d regression inputs replayed\n", name, seeds, regs);
}

START_TEST(test_idx) { run_target("idx", nbf_idx_one); }
END_TEST

START_TEST(test_hdf5) { run_target("hdf5", nbf_hdf5_one); }
END_TEST

START_TEST(test_conv) { run_target("conv", nbf_conv_one); }
END_TEST

#if defined(__SANITIZE_ADDRESS__)
#define NBT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NBT_ASAN 1
#endif
#endif

/* Some regression inputs ask for tens or hundreds of gigabytes, which must
 * fail cleanly (an error, no crash). Linux overcommits, so without a cap
 * such an allocation may succeed and be filled for a minute before a later
 * one fails (pad_zero_channels_huge_padding_oom: 16 GiB of padding maps,
 * 30 s and 17 GB resident; more under ASan), or get the process killed for
 * memory on a smaller or busier machine: the verdict would depend on the
 * machine. The inputs themselves need a few megabytes. So: a 4 GiB address
 * space, or under AddressSanitizer (which reserves terabytes of shadow
 * address space) its own per-allocation cap, ASAN_OPTIONS=
 * max_allocation_size_mb=4096 set by tests/CMakeLists.txt. One thread, as
 * the fuzzers run: the cap is then independent of the core count (each
 * thread's malloc arena reserves address space). */
static void cap_memory(void) {
    nb_set_num_threads(1);
#ifndef NBT_ASAN
    struct rlimit lim;
    const rlim_t cap = (rlim_t)4 << 30;
    if (getrlimit(RLIMIT_AS, &lim) == 0 && (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > cap)) {
        lim.rlim_cur = cap;
        if (setrlimit(RLIMIT_AS, &lim) != 0) perror("test_fuzz_regressions: setrlimit(RLIMIT_AS)");
    }
#endif
}

int main(void) {
    cap_memory();
    Suite *s = suite_create("fuzz_regressions");
    TCase *tc = tcase_create("replay");
    tcase_add_test(tc, test_idx);
    tcase_add_test(tc, test_hdf5);
    tcase_add_test(tc, test_conv);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
