/* HDF5 state_dict files: loading what PyTorch writes (flat, nested, float64,
 * float16), strict and non-strict errors, untrusted files, and saving what
 * PyTorch loads (checked by PyTorch itself). */
#include "testutil.h"

#include "nabla/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define NKEYS 9
static const char *keys[NKEYS] = {"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                  "bn1.running_var", "bn1.num_batches_tracked", "fc1.weight", "fc1.bias"};

typedef struct { nb_named_tensor e[NKEYS]; } model;

static model make_model(nb_dtype dtype) {
    model m;
    const int64_t shapes[NKEYS][4] = {{4, 1, 3, 3}, {4}, {4}, {4}, {4}, {4}, {0}, {3, 16}, {3}};
    const int ndims[NKEYS] = {4, 1, 1, 1, 1, 1, 0, 2, 1};
    for (int i = 0; i < NKEYS; i++) {
        m.e[i].name = keys[i];
        m.e[i].tensor = nb_full(i == 6 ? NB_I64 : dtype, ndims[i], shapes[i], -7);
        ck_assert_ptr_nonnull(m.e[i].tensor);
    }
    return m;
}

static void free_model(model *m) {
    for (int i = 0; i < NKEYS; i++) nb_tensor_release(m->e[i].tensor);
}

static const char *ref(const char *suffix) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s%s", nbt_data_path("io.h5"), suffix);
    return buf;
}

/* Every tensor equals the reference file's dataset (read independently). */
static void assert_matches_reference(model *m, double tol) {
    for (int i = 0; i < NKEYS; i++) {
        nb_dtype dt = nb_tensor_dtype(m->e[i].tensor);
        nb_tensor *r = nbt_h5_read(ref(""), keys[i], dt == NB_I64 ? NB_F64 : NB_F64);
        int64_t n = nb_tensor_numel(r);
        double *v = malloc((size_t)n * sizeof *v);
        nb_tensor_copy_out(r, v, NB_F64);
        nbt_assert_values(m->e[i].tensor, v, n, tol, tol);
        free(v);
        nb_tensor_release(r);
    }
}

START_TEST(test_load_pytorch_layouts) {
    const char *files[] = {"", ".nested.h5", ".f64.h5", ".f16.h5", ".gzip.h5"};
    for (int f = 0; f < 5; f++) {
        for (int d = 0; d < 2; d++) {
            model m = make_model(d ? NB_F64 : NB_F32);
            nb_load_report rep;
            NBT_OK(nb_hdf5_load(ref(files[f]), m.e, NKEYS, true, &rep));
            ck_assert_int_eq(rep.nmissing, 0);
            ck_assert_int_eq(rep.nunexpected, 0);
            /* float16 files hold rounded values: within half-precision resolution */
            assert_matches_reference(&m, f == 3 ? 2e-3 : d ? 1e-7 : 0);
            if (f == 2 && d == 0) ck_assert_msg(strstr(rep.notes, "conv1.weight: float64 converted to float32"), "%s", rep.notes);
            if (f == 3) ck_assert_msg(strstr(rep.notes, "float16 converted to"), "%s", rep.notes);
            if (f == 0 && d == 0) ck_assert_str_eq(rep.notes, "");
            nb_load_report_free(&rep);
            free_model(&m);
        }
    }
}
END_TEST

START_TEST(test_strict_lists_every_problem_and_changes_nothing) {
    model m = make_model(NB_F32);
    nb_load_report rep;
    NBT_STATUS_FAILS_WITH(nb_hdf5_load(ref(".wrong.h5"), m.e, NKEYS, true, &rep), "3 problems");
    const char *msg = nb_last_error();
    ck_assert_msg(strstr(msg, "fc1.weight: expected [3, 16], file has [3, 8]"), "%s", msg);
    ck_assert_msg(strstr(msg, "missing key fc1.bias"), "%s", msg);
    ck_assert_msg(strstr(msg, "unexpected key fc2.weight"), "%s", msg);
    for (int i = 0; i < NKEYS; i++) { /* nothing changed */
        double v;
        NBT_OK(nb_tensor_get(m.e[i].tensor, (int64_t[4]){0}, &v));
        ck_assert(v == -7);
    }
    ck_assert_int_eq(rep.nmissing, 1);
    ck_assert_str_eq(rep.missing[0], "fc1.bias");
    ck_assert_int_eq(rep.nunexpected, 1);
    ck_assert_str_eq(rep.unexpected[0], "fc2.weight");
    nb_load_report_free(&rep);
    /* Non-strict: the shape mismatch is still an error... */
    NBT_STATUS_FAILS_WITH(nb_hdf5_load(ref(".wrong.h5"), m.e, NKEYS, false, NULL), "1 problem loading");
    /* ...but without fc1.weight among the entries, the rest loads and the lists are reported. */
    nb_named_tensor some[NKEYS];
    int k = 0;
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(keys[i], "fc1.weight") != 0) some[k++] = m.e[i];
    NBT_OK(nb_hdf5_load(ref(".wrong.h5"), some, k, false, &rep));
    ck_assert_int_eq(rep.nmissing, 1);
    ck_assert_int_eq(rep.nunexpected, 2); /* fc1.weight and fc2.weight */
    double v;
    NBT_OK(nb_tensor_get(m.e[0].tensor, (int64_t[4]){0}, &v));
    ck_assert(v != -7);
    nb_load_report_free(&rep);
    free_model(&m);
}
END_TEST

START_TEST(test_untrusted_files) {
    model m = make_model(NB_F32);
    NBT_STATUS_FAILS_WITH(nb_hdf5_load("/nonexistent/x.h5", m.e, NKEYS, true, NULL), "cannot open '/nonexistent/x.h5'");
    char path[] = "/tmp/nb_io_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    ck_assert(write(fd, "this is not hdf5 at all\n", 24) == 24);
    close(fd);
    NBT_STATUS_FAILS_WITH(nb_hdf5_load(path, m.e, NKEYS, true, NULL), "is not an HDF5 file");
    /* A truncated copy of a real file. */
    FILE *src = fopen(ref(""), "rb");
    ck_assert_ptr_nonnull(src);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, src);
    fclose(src);
    for (size_t cut = 64; cut < n; cut += n / 7) {
        FILE *dst = fopen(path, "wb");
        fwrite(buf, 1, cut, dst);
        fclose(dst);
        nb_clear_error();
        nb_status st = nb_hdf5_load(path, m.e, NKEYS, true, NULL);
        ck_assert_msg(st != NB_OK, "truncated at %zu loaded", cut);
        ck_assert_msg(strstr(nb_last_error(), "hdf5_load:"), "%s", nb_last_error());
    }
    unlink(path);
    NBT_STATUS_FAILS_WITH(nb_hdf5_load(ref(".rank.h5"), m.e, NKEYS, true, NULL),
                          "conv1.weight: expected [4, 1, 3, 3], file has [36]");
    /* An integer buffer cannot come from a float dataset, nor a float tensor from an integer one. */
    nb_named_tensor wrong = {"bn1.num_batches_tracked", m.e[1].tensor};
    NBT_STATUS_FAILS_WITH(nb_hdf5_load(ref(""), &wrong, 1, false, NULL), "expected [4], file has []");
    NBT_STATUS_FAILS_WITH(nb_hdf5_load(NULL, m.e, NKEYS, true, NULL), "path is NULL");
    free_model(&m);
}
END_TEST

START_TEST(test_save_loads_in_pytorch) {
    model m = make_model(NB_F32);
    NBT_OK(nb_hdf5_load(ref(""), m.e, NKEYS, true, NULL));
    char path[4096];
    snprintf(path, sizeof path, "%s", nbt_data_path("io_saved_by_nabla.h5"));
    NBT_OK(nb_hdf5_save(path, m.e, NKEYS));
    /* Round trip in nabla: bitwise. */
    model m2 = make_model(NB_F32);
    NBT_OK(nb_hdf5_load(path, m2.e, NKEYS, true, NULL));
    for (int i = 0; i < NKEYS; i++) nbt_assert_bitwise_equal(m.e[i].tensor, m2.e[i].tensor);
    /* And PyTorch loads it with load_state_dict(strict=True), equal to its own. */
    char cmd[12288];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/pytorch/io_check_nabla_file.py '%s' '%s'", NB_TESTS_DIR, path, ref(""));
    ck_assert_msg(system(cmd) == 0, "PyTorch could not load nabla's file: %s", cmd);
    NBT_STATUS_FAILS_WITH(nb_hdf5_save("/nonexistent/dir/x.h5", m.e, NKEYS), "cannot create");
    nb_named_tensor dup[2] = {m.e[0], m.e[0]};
    NBT_STATUS_FAILS_WITH(nb_hdf5_save(path, dup, 2), "duplicate key 'conv1.weight'");
    free_model(&m);
    free_model(&m2);
}
END_TEST

/* A writer killed at any moment leaves the previous file loadable: nb_hdf5_save
 * writes a temporary file, flushes it and renames it over the old one. */
START_TEST(test_kill_during_save_keeps_previous_file) {
    char path[4096];
    snprintf(path, sizeof path, "%s", nbt_data_path("io_kill.h5"));
    const int64_t n = 2 << 20; /* 8 MiB of float32: a save takes a while */
    nb_tensor *t = nb_full(NB_F32, NB_SHAPE(n), 1.0);
    nb_named_tensor e = {"w", t};
    NBT_OK(nb_hdf5_save(path, &e, 1));
    for (int round = 0; round < 8; round++) {
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) { /* the writer: saves the other version forever */
            nb_tensor_fill_(t, 2.0);
            for (;;) nb_hdf5_save(path, &e, 1);
        }
        usleep(5000 + 9000 * round); /* kill it at varying points of a save */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        nb_tensor *r = nb_zeros(NB_F32, NB_SHAPE(n));
        nb_named_tensor re = {"w", r};
        NBT_OK(nb_hdf5_load(path, &re, 1, true, NULL));
        const float *v = nb_tensor_f32(r);
        for (int64_t i = 1; i < n; i++) ck_assert_msg(v[i] == v[0], "round %d: mixed file at %lld", round, (long long)i);
        ck_assert(v[0] == 1.0f || v[0] == 2.0f);
        printf("kill round %d: file holds version %g\n", round, v[0]);
        nb_tensor_release(r);
        char tmp[4200]; /* the killed writer's temporary file, if any */
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
        unlink(tmp);
    }
    nb_tensor_release(t);
    unlink(path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("hdf5");
    tcase_add_test(tc, test_load_pytorch_layouts);
    tcase_add_test(tc, test_strict_lists_every_problem_and_changes_nothing);
    tcase_add_test(tc, test_untrusted_files);
    tcase_add_test(tc, test_save_loads_in_pytorch);
    suite_add_tcase(s, tc);
    /* Tagged slow, so scripts/valgrind.sh can leave it out (CK_EXCLUDE_TAGS=slow):
     * forked writers saving megabytes are a question of atomicity, not memory. */
    TCase *kill = tcase_create("kill");
    tcase_set_tags(kill, "slow");
    tcase_add_test(kill, test_kill_during_save_keeps_previous_file);
    suite_add_tcase(s, kill);
    return nbt_run_suite(s);
}
