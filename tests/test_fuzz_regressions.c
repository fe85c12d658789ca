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

int main(void) {
    Suite *s = suite_create("fuzz_regressions");
    TCase *tc = tcase_create("replay");
    tcase_add_test(tc, test_idx);
    tcase_add_test(tc, test_hdf5);
    tcase_add_test(tc, test_conv);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
