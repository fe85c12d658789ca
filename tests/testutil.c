#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

/* No Check time limits: a verdict must not depend on how fast or how busy
 * the machine is. Check kills a forked test after CK_DEFAULT_TIMEOUT seconds
 * (4 unless set; 0 disables it), read when a TCase is created, so it is set
 * before main(); a value in the environment is kept. Hangs are CTest's to
 * catch (TIMEOUT in tests/CMakeLists.txt), and CTest runs Check with
 * CK_FORK=no anyway. */
__attribute__((constructor)) static void nbt_no_check_timeouts(void) { setenv("CK_DEFAULT_TIMEOUT", "0", 0); }

int nbt_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nb_memory_trim();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void nbt_assert_values(const nb_tensor *t, const double *expected, int64_t n, double atol, double rtol) {
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(nb_tensor_numel(t), n);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    ck_assert_int_eq(nb_tensor_copy_out(t, v, NB_F64), NB_OK);
    for (int64_t i = 0; i < n; i++) {
        double tol = atol + rtol * fabs(expected[i]);
        bool ok = fabs(v[i] - expected[i]) <= tol || (isnan(v[i]) && isnan(expected[i])) ||
                  (isinf(v[i]) && v[i] == expected[i]);
        if (!ok) {
            double got = v[i];
            free(v);
            ck_abort_msg("element %lld: got %.10g, expected %.10g (tol %g)", (long long)i, got, expected[i], tol);
        }
    }
    free(v);
}

void nbt_assert_shape(const nb_tensor *t, int ndim, const int64_t *shape) {
    char a[128], b[128];
    ck_assert_ptr_nonnull(t);
    bool same = nb_tensor_ndim(t) == ndim && memcmp(nb_tensor_shape(t), shape, sizeof(int64_t) * (size_t)ndim) == 0;
    ck_assert_msg(same, "shape %s, expected %s", nb_shape_str(nb_tensor_ndim(t), nb_tensor_shape(t), a, sizeof a),
                  nb_shape_str(ndim, shape, b, sizeof b));
}

void nbt_assert_bitwise_equal(const nb_tensor *a, const nb_tensor *b) {
    ck_assert_int_eq(nb_tensor_dtype(a), nb_tensor_dtype(b));
    nbt_assert_shape(b, nb_tensor_ndim(a), nb_tensor_shape(a));
    int64_t n = nb_tensor_numel(a);
    size_t sz = nb_dtype_size(nb_tensor_dtype(a)) * (size_t)(n ? n : 1);
    void *x = malloc(sz), *y = malloc(sz);
    nb_tensor_copy_out(a, x, nb_tensor_dtype(a));
    nb_tensor_copy_out(b, y, nb_tensor_dtype(b));
    int cmp = memcmp(x, y, nb_dtype_size(nb_tensor_dtype(a)) * (size_t)n);
    free(x);
    free(y);
    ck_assert_msg(cmp == 0, "tensors differ bitwise");
}

nb_tensor *nbt_randn(uint64_t seed, nb_dtype dtype, int ndim, const int64_t *shape, bool requires_grad) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_tensor *t = nb_rand_normal(&rng, dtype, ndim, shape, 0.0, 1.0);
    ck_assert_msg(t != NULL, "randn: %s", nb_last_error());
    if (requires_grad) ck_assert_int_eq(nb_requires_grad_(t, true), NB_OK);
    return t;
}

void nbt_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n, bool fast) {
    nb_gradcheck_options o = nb_gradcheck_defaults();
    o.fast_mode = fast;
    nb_gradcheck_report rep;
    nb_status st = nb_gradcheck(f, ctx, inputs, n, &o, &rep);
    ck_assert_msg(st == NB_OK, "gradcheck could not run: %s", nb_last_error());
    ck_assert_msg(rep.passed, "%s", rep.message);
}

/* ---- PyTorch reference files (HDF5) ---- */
#include <hdf5.h>

const char *nbt_data_path(const char *file) {
    static char buf[4096];
    const char *dir = getenv("NB_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : ".", file);
    return buf;
}

bool nbt_h5_exists(const char *file, const char *name) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return false;
    htri_t e = H5Lexists(f, name, H5P_DEFAULT);
    H5Fclose(f);
    return e > 0;
}

nb_tensor *nbt_h5_read(const char *file, const char *name, nb_dtype dtype) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s (was the PyTorch reference generated?)", file);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "%s: no dataset %s", file, name);
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    ck_assert(nd >= 0 && nd <= NB_MAX_DIMS);
    hsize_t dims[NB_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    int64_t shape[NB_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
    nb_tensor *t = nb_zeros(dtype, nd, shape);
    ck_assert_ptr_nonnull(t);
    hid_t mt = dtype == NB_F32 ? H5T_NATIVE_FLOAT : dtype == NB_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
    herr_t r = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, nb_tensor_data(t));
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    ck_assert_msg(r >= 0, "%s: cannot read %s", file, name);
    return t;
}

bool nbt_h5_read_scalar(const char *file, const char *name, double *out) {
    if (!nbt_h5_exists(file, name)) return false;
    nb_tensor *t = nbt_h5_read(file, name, NB_F64);
    bool ok = nb_tensor_numel(t) == 1 && nb_tensor_item(t, out) == NB_OK;
    nb_tensor_release(t);
    return ok;
}

/* ---- twin case tables ---- */
void nbt_assert_like(const nb_tensor *got, const nb_tensor *want, double tol, const char *what) {
    char a[128], b[128];
    ck_assert_msg(got != NULL, "%s: missing (%s)", what, nb_last_error());
    bool same = nb_tensor_ndim(got) == nb_tensor_ndim(want) &&
                memcmp(nb_tensor_shape(got), nb_tensor_shape(want), sizeof(int64_t) * (size_t)nb_tensor_ndim(want)) == 0;
    ck_assert_msg(same, "%s: shape %s, PyTorch %s", what, nb_shape_str(nb_tensor_ndim(got), nb_tensor_shape(got), a, sizeof a),
                  nb_shape_str(nb_tensor_ndim(want), nb_tensor_shape(want), b, sizeof b));
    ck_assert_msg(nb_tensor_dtype(got) == nb_tensor_dtype(want), "%s: dtype %s, PyTorch %s", what,
                  nb_dtype_name(nb_tensor_dtype(got)), nb_dtype_name(nb_tensor_dtype(want)));
    int64_t n = nb_tensor_numel(want), m = n ? n : 1;
    double *e = malloc((size_t)m * 2 * sizeof *e), *v = e + m;
    ck_assert_int_eq(nb_tensor_copy_out(want, e, NB_F64), NB_OK);
    ck_assert_int_eq(nb_tensor_copy_out(got, v, NB_F64), NB_OK);
    for (int64_t i = 0; i < n; i++) {
        bool ok = fabs(v[i] - e[i]) <= tol * (1 + fabs(e[i])) || (isnan(v[i]) && isnan(e[i])) || v[i] == e[i];
        if (!ok) {
            double g = v[i], w = e[i];
            free(e);
            ck_abort_msg("%s: element %lld is %.10g, PyTorch %.10g", what, (long long)i, g, w);
        }
    }
    free(e);
}

void nbt_assert_twin_cases(const char *file, const nbt_case *cases, int ncases) {
    double n = -1;
    ck_assert_msg(nbt_h5_read_scalar(file, "ncases", &n), "%s: no ncases", file);
    ck_assert_msg((int)n == ncases, "the twin has %d cases, the table %d", (int)n, ncases);
    for (int k = 0; k < ncases; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s/f32/y", cases[k].name);
        ck_assert_msg(nbt_h5_exists(file, path), "case %s is not in the twin's file", cases[k].name);
    }
}

void nbt_run_twin_case(const char *file, const nbt_case *c, nb_dtype dt, double tol) {
    const char *dname = dt == NB_F32 ? "f32" : "f64";
    char path[256], what[320];
    nb_scope *sc = nb_scope_begin();
    const int n = (int)strlen(c->kinds);
    ck_assert(n <= 32);
    nb_tensor *in[32];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/in%d", c->name, dname, i);
        in[i] = nbt_h5_read(file, path, c->kinds[i] == 'i' ? NB_I64 : dt);
        if (c->kinds[i] == 'f') NBT_OK(nb_requires_grad_(in[i], true));
    }
    nb_clear_error();
    nb_tensor *y = c->f(in, n, c->arg);
    snprintf(what, sizeof what, "%s %s: output", c->name, dname);
    ck_assert_msg(y != NULL, "%s: %s", what, nb_last_error());
    nb_dtype ydt = nb_tensor_dtype(y) == NB_I64 ? NB_I64 : dt;
    snprintf(path, sizeof path, "%s/%s/y", c->name, dname);
    nbt_assert_like(y, nbt_h5_read(file, path, ydt), ydt == NB_I64 ? 0 : tol, what);
    if (strchr(c->kinds, 'f')) {
        snprintf(path, sizeof path, "%s/%s/go", c->name, dname);
        nb_tensor *go = nbt_h5_read(file, path, dt);
        nb_status st = nb_backward_ex(y, go, false);
        ck_assert_msg(st == NB_OK, "%s %s: backward: %s", c->name, dname, nb_last_error());
        nbt_assert_bitwise_equal(go, nbt_h5_read(file, path, dt)); /* backward only reads it */
    }
    for (int i = 0; i < n; i++) {
        if (c->kinds[i] != 'f' && c->kinds[i] != 'r') continue;
        bool grad = c->kinds[i] == 'f';
        snprintf(path, sizeof path, "%s/%s/%s%d", c->name, dname, grad ? "g" : "after", i);
        snprintf(what, sizeof what, "%s %s: %s of input %d", c->name, dname, grad ? "gradient" : "value after", i);
        nbt_assert_like(grad ? nb_tensor_grad(in[i]) : in[i], nbt_h5_read(file, path, dt), tol, what);
    }
    nb_scope_end(sc);
}

static const char *ref_path(const char *group, const char *name) {
    static char full[512];
    snprintf(full, sizeof full, "%s/%s", group, name);
    return full;
}

nb_tensor *nbt_ref_read(const char *file, const char *group, const char *name, nb_dtype dtype, bool requires_grad) {
    nb_tensor *t = nbt_h5_read(file, ref_path(group, name), dtype);
    if (requires_grad) NBT_OK(nb_requires_grad_(t, true));
    return t;
}

bool nbt_ref_has(const char *file, const char *group, const char *name) {
    return nbt_h5_exists(file, ref_path(group, name));
}

void nbt_ref_close(const nb_tensor *got, const char *file, const char *group, const char *name) {
    ck_assert_msg(got != NULL, "%s/%s: no tensor (%s)", group, name, nb_last_error());
    nb_tensor *e = nbt_h5_read(file, ref_path(group, name), NB_F64);
    nbt_assert_shape(got, nb_tensor_ndim(e), nb_tensor_shape(e));
    int64_t n = nb_tensor_numel(e);
    double *a = malloc((size_t)(n + 1) * sizeof *a);
    ck_assert_int_eq(nb_tensor_copy_out(got, a, NB_F64), NB_OK);
    const double *x = nb_tensor_f64(e);
    double scale = 1e-300, worst = 0;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(x[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - x[i]);
        if (!(d <= worst)) { /* NaN counts as worst */
            worst = d;
            wi = i;
        }
    }
    double tol = (nb_tensor_dtype(got) == NB_F32 ? 1e-5 : 1e-10) * scale;
    double got_v = n ? a[wi] : 0, exp_v = n ? x[wi] : 0;
    free(a);
    nb_tensor_release(e);
    ck_assert_msg(worst <= tol, "%s/%s (%s): element %lld got %.12g expected %.12g (|diff| %g > %g)", group, name,
                  nb_dtype_name(nb_tensor_dtype(got)), (long long)wi, got_v, exp_v, worst, tol);
}

void nbt_same_at_1_and_2_threads(void (*f)(nb_tensor **outs)) {
    int threads = nb_get_num_threads();
    nb_tensor *a[4] = {0}, *b[4] = {0};
    NBT_OK(nb_set_num_threads(1));
    f(a);
    NBT_OK(nb_set_num_threads(2));
    f(b);
    NBT_OK(nb_set_num_threads(threads));
    for (int i = 0; i < 4; i++)
        if (a[i]) nbt_assert_bitwise_equal(a[i], b[i]);
}

nb_module *nbt_small_net(nb_rng *rng) {
    nb_conv2d_params reflect = nb_conv2d_defaults(), grouped = nb_conv2d_defaults();
    reflect.padding[0] = reflect.padding[1] = 1;
    reflect.padding_mode = NB_PAD_REFLECT;
    grouped.padding[0] = grouped.padding[1] = 1;
    grouped.groups = 2;
    nb_pool2d_params pool = nb_pool2d_defaults(2);
    return nb_sequential_module(NB_MODULES(
        nb_conv2d_module(3, 4, 3, 3, &reflect, true, rng), nb_batch_norm2d_module(4, 1e-5, 0.1, true, true),
        nb_leaky_relu_module(0.1), nb_max_pool2d_module(&pool), nb_conv2d_module(4, 6, 3, 3, &grouped, true, rng),
        nb_tanh_module(), nb_avg_pool2d_module(&pool), nb_flatten_module(1, -1), nb_linear_module(24, 16, true, rng),
        nb_sigmoid_module(), nb_dropout_module(0.5, rng), nb_linear_module(16, 5, true, rng), nb_relu_module(),
        nb_log_softmax_module(1)));
}

int nbt_h5_loop_count(const char *file, const char *name) {
    long long n = 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d >= 0) {
        if (H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, &n) < 0) n = 1;
        H5Dclose(d);
    }
    H5Fclose(f);
    return n > 0 ? (int)n : 1;
}

/* ---- table-driven PyTorch twins ---- */
/* got against file's dataset path: shape, then values as nbt_twin_run says. */
static void twin_compare(const char *file, const char *path, const nb_tensor *got, double tol) {
    char a[128], b[128];
    ck_assert_msg(got != NULL, "%s: no tensor (%s)", path, nb_last_error());
    nb_tensor *e = nbt_h5_read(file, path, NB_F64);
    int nd = nb_tensor_ndim(e);
    bool same = nb_tensor_ndim(got) == nd && memcmp(nb_tensor_shape(got), nb_tensor_shape(e), sizeof(int64_t) * (size_t)nd) == 0;
    ck_assert_msg(same, "%s: shape %s, PyTorch %s", path, nb_shape_str(nb_tensor_ndim(got), nb_tensor_shape(got), a, sizeof a),
                  nb_shape_str(nd, nb_tensor_shape(e), b, sizeof b));
    int64_t n = nb_tensor_numel(e);
    const double *x = nb_tensor_f64(e);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    ck_assert_int_eq(nb_tensor_copy_out(got, v, NB_F64), NB_OK);
    double scale = 1e-300;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) scale = fmax(scale, fabs(x[i]));
    for (int64_t i = 0; i < n; i++) {
        bool ok = fabs(v[i] - x[i]) <= tol * scale || (isnan(v[i]) && isnan(x[i])) || (isinf(x[i]) && v[i] == x[i]);
        if (!ok) {
            double g = v[i], w = x[i];
            free(v);
            ck_abort_msg("%s (%s): element %lld: got %.12g, PyTorch %.12g (tolerance %g)", path,
                         nb_dtype_name(nb_tensor_dtype(got)), (long long)i, g, w, tol * scale);
        }
    }
    free(v);
    nb_tensor_release(e);
}

/* The fixed-length strings of dataset name (a scalar or a vector), each
 * NUL-terminated in one calloc'd block: *count of them, every stride bytes. */
static char *h5_read_strings(const char *file, const char *name, int *count, size_t *stride) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s", file);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "%s: no dataset %s", file, name);
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
    size_t len = H5Tget_size(ft);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    ck_assert(H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft) && n >= 0);
    char *raw = calloc((size_t)n * len + 1, 1), *out = calloc((size_t)n * (len + 1) + 1, 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, len);
    H5Tset_strpad(mt, H5T_STR_NULLPAD);
    ck_assert_msg(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0, "%s: cannot read %s", file, name);
    for (hssize_t i = 0; i < n; i++) memcpy(out + i * (len + 1), raw + i * len, len);
    free(raw);
    H5Tclose(mt);
    H5Tclose(ft);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    *count = (int)n;
    *stride = len + 1;
    return out;
}

static void twin_run(const char *file, const char *name, const nbt_twin_op *op, nb_dtype dtype) {
    size_t before = nb_memory_in_use();
    char path[256];
    int one;
    size_t stride;
    snprintf(path, sizeof path, "%s/kinds", name);
    char *kinds = h5_read_strings(file, path, &one, &stride);
    nb_scope *sc = nb_scope_begin();
    const int n = (int)strlen(kinds);
    nb_tensor *in[16];
    ck_assert(n <= 16);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/in%d", name, i);
        in[i] = nbt_h5_read(file, path, kinds[i] == 'i' ? NB_I64 : dtype);
        if (kinds[i] == 'f') NBT_OK(nb_requires_grad_(in[i], true));
    }
    snprintf(path, sizeof path, "%s/p", name);
    nb_tensor *p = nbt_h5_exists(file, path) ? nbt_h5_read(file, path, NB_F64) : NULL;
    nb_clear_error();
    nb_tensor *y = op->f(in, p ? nb_tensor_f64(p) : NULL);
    ck_assert_msg(y != NULL, "%s (%s): %s", name, nb_dtype_name(dtype), nb_last_error());
    const double tol = dtype == NB_F32 ? 1e-5 : 1e-10;
    snprintf(path, sizeof path, "%s/y", name);
    twin_compare(file, path, y, tol);
    if (nb_tensor_requires_grad(y)) {
        snprintf(path, sizeof path, "%s/go", name);
        nb_tensor *go = nbt_h5_read(file, path, dtype);
        nb_status st = nb_backward_ex(y, go, false);
        ck_assert_msg(st == NB_OK, "%s (%s): backward: %s", name, nb_dtype_name(dtype), nb_last_error());
        nbt_assert_bitwise_equal(go, nbt_h5_read(file, path, dtype)); /* backward only reads it */
    }
    for (int i = 0; i < n; i++) {
        if (kinds[i] != 'f') continue;
        snprintf(path, sizeof path, "%s/g%d", name, i);
        nb_tensor *g = nb_tensor_grad(in[i]);
        twin_compare(file, path, g ? g : nb_zeros_like(in[i]), tol); /* no gradient reached it: PyTorch's is zeros */
    }
    nb_scope_end(sc);
    free(kinds);
    ck_assert_msg(nb_memory_in_use() == before, "%s (%s): %zu bytes in use before, %zu after", name,
                  nb_dtype_name(dtype), before, nb_memory_in_use());
}

void nbt_twin_run_all(const char *file, const nbt_twin_op *ops, int nops, nb_dtype dtype) {
    int ncases, one;
    size_t stride, ostride;
    char *names = h5_read_strings(file, "cases", &ncases, &stride);
    int used[64] = {0};
    ck_assert(nops <= 64);
    for (int k = 0; k < ncases; k++) {
        const char *name = names + (size_t)k * stride;
        char path[256];
        snprintf(path, sizeof path, "%s/op", name);
        char *op = h5_read_strings(file, path, &one, &ostride);
        int j = 0;
        while (j < nops && strcmp(ops[j].name, op) != 0) j++;
        ck_assert_msg(j < nops, "%s: case %s names op %s, which the C table lacks", file, name, op);
        free(op);
        used[j]++;
        twin_run(file, name, &ops[j], dtype);
    }
    free(names);
    for (int j = 0; j < nops; j++) ck_assert_msg(used[j] > 0, "%s: no case runs op %s of the C table", file, ops[j].name);
}

void nbt_assert_close_norm(const char *what, const char *cfg, const nb_tensor *a, const nb_tensor *ref, double tol) {
    char sa[128], sr[128];
    ck_assert_ptr_nonnull(a);
    ck_assert_msg(nb_tensor_ndim(a) == nb_tensor_ndim(ref) &&
                      memcmp(nb_tensor_shape(a), nb_tensor_shape(ref), sizeof(int64_t) * (size_t)nb_tensor_ndim(a)) == 0,
                  "%s %s: shape %s, expected %s", cfg, what,
                  nb_shape_str(nb_tensor_ndim(a), nb_tensor_shape(a), sa, sizeof sa),
                  nb_shape_str(nb_tensor_ndim(ref), nb_tensor_shape(ref), sr, sizeof sr));
    int64_t n = nb_tensor_numel(a);
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    NBT_OK(nb_tensor_copy_out(a, x, NB_F64));
    NBT_OK(nb_tensor_copy_out(ref, y, NB_F64));
    double maxref = 1, maxerr = 0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(y[i]) > maxref) maxref = fabs(y[i]);
        double e = fabs(x[i] - y[i]);
        if (!(e <= maxerr)) { /* also catches NaN */
            maxerr = e;
            worst = i;
        }
    }
    double got = n ? x[worst] : 0, exp = n ? y[worst] : 0;
    free(x);
    free(y);
    ck_assert_msg(maxerr <= tol * maxref, "%s %s: max abs error %g at %lld (got %.10g, PyTorch %.10g) > %g", cfg, what,
                  maxerr, (long long)worst, got, exp, tol * maxref);
}

nbt_conv_ref nbt_conv_ref_read(const char *file, const char *group, nb_dtype dtype, bool bias) {
    char name[256];
#define DS(s) (snprintf(name, sizeof name, "%s/%s", group, s), name)
    nbt_conv_ref r = {.x = nbt_h5_read(file, DS("x"), dtype), .w = nbt_h5_read(file, DS("w"), dtype)};
    r.b = bias ? nbt_h5_read(file, DS("b"), dtype) : NULL;
    NBT_OK(nb_requires_grad_(r.x, true));
    NBT_OK(nb_requires_grad_(r.w, true));
    if (r.b) NBT_OK(nb_requires_grad_(r.b, true));
    r.y = nbt_h5_read(file, DS("y"), dtype);
    r.gy = nbt_h5_read(file, DS("gy"), dtype);
    r.gx = nbt_h5_read(file, DS("gx"), dtype);
    r.gw = nbt_h5_read(file, DS("gw"), dtype);
    r.gb = bias ? nbt_h5_read(file, DS("gb"), dtype) : NULL;
#undef DS
    return r;
}

void nbt_conv_ref_release(nbt_conv_ref *r) {
    nb_tensor *all[] = {r->x, r->w, r->b, r->y, r->gy, r->gx, r->gw, r->gb};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) nb_tensor_release(all[k]);
    *r = (nbt_conv_ref){0};
}
