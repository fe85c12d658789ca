/* Named tensors to and from HDF5 (nabla/io.h). The file is untrusted input:
 * every HDF5 call is checked, HDF5's automatic error printing is switched off
 * for the duration of a call and restored after, and a load reads everything
 * into temporaries first so that a failed load changes nothing. */
#include "tensor/internal.h"

#include "nabla/io.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- HDF5 error printing off for one call ---- */
typedef struct { H5E_auto2_t func; void *data; } quiet_state;
static quiet_state quiet_begin(void) {
    quiet_state q;
    H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}
static void quiet_end(quiet_state q) { H5Eset_auto2(H5E_DEFAULT, q.func, q.data); }

/* ---- growing string for messages listing many problems ---- */
typedef struct { char *s; size_t len, cap; int count; } strbuf;
static void sb_add(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(strbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t need = b->len + (size_t)n + 3;
    if (need > b->cap) {
        size_t cap = need * 2;
        char *s = realloc(b->s, cap);
        if (!s) return;
        b->s = s;
        b->cap = cap;
    }
    b->len += (size_t)snprintf(b->s + b->len, b->cap - b->len, "%s%s", b->count ? "; " : "", tmp);
    b->count++;
}

/* ---- save ---- */
static hid_t file_type(nb_dtype d) {
    return d == NB_F32 ? H5T_IEEE_F32LE : d == NB_F64 ? H5T_IEEE_F64LE : H5T_STD_I64LE;
}
static hid_t mem_type(nb_dtype d) {
    return d == NB_F32 ? H5T_NATIVE_FLOAT : d == NB_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
}

static nb_status write_dataset(hid_t file, const char *name, const nb_tensor *t) {
    hsize_t dims[NB_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = (hsize_t)t->shape[i];
    hid_t space = t->ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(t->ndim, dims, NULL);
    if (space < 0) return nbi_error(NB_ERR_IO, "hdf5_save: cannot create the dataspace of '%s'", name);
    size_t bytes = (size_t)t->numel * nb_dtype_size(t->dtype);
    void *buf = malloc(bytes ? bytes : 1);
    nb_status st = NB_OK;
    hid_t ds = -1;
    if (!buf) st = nbi_error(NB_ERR_NOMEM, "hdf5_save: out of memory for '%s'", name);
    else if (nb_tensor_copy_out(t, buf, t->dtype) != NB_OK) st = nb_last_status();
    else if ((ds = H5Dcreate2(file, name, file_type(t->dtype), space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        st = nbi_error(NB_ERR_IO, "hdf5_save: cannot create dataset '%s' (duplicate or invalid name?)", name);
    else if (H5Dwrite(ds, mem_type(t->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        st = nbi_error(NB_ERR_IO, "hdf5_save: cannot write dataset '%s'", name);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(space);
    free(buf);
    return st;
}

static nb_status write_attributes(hid_t file) {
    const char *fmt = "nabla-state-dict";
    int version = 1;
    hid_t str = H5Tcopy(H5T_C_S1), scalar = H5Screate(H5S_SCALAR);
    H5Tset_size(str, strlen(fmt));
    hid_t a1 = H5Acreate2(file, "format", str, scalar, H5P_DEFAULT, H5P_DEFAULT);
    hid_t a2 = H5Acreate2(file, "format_version", H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a1 >= 0 && a2 >= 0 && H5Awrite(a1, str, fmt) >= 0 && H5Awrite(a2, H5T_NATIVE_INT, &version) >= 0;
    if (a1 >= 0) H5Aclose(a1);
    if (a2 >= 0) H5Aclose(a2);
    H5Sclose(scalar);
    H5Tclose(str);
    return ok ? NB_OK : nbi_error(NB_ERR_IO, "hdf5_save: cannot write the format attributes");
}

static nb_status fsync_path(const char *path, bool dir) {
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return nbi_error(NB_ERR_IO, "hdf5_save: cannot open '%s' to flush it: %s", path, strerror(errno));
    int r = fsync(fd);
    close(fd);
    return r == 0 ? NB_OK : nbi_error(NB_ERR_IO, "hdf5_save: fsync '%s' failed: %s", path, strerror(errno));
}

nb_status nb_hdf5_save(const char *path, const nb_named_tensor *entries, int n) {
    if (!path || !*path) return nbi_error(NB_ERR_ARG, "hdf5_save: path is NULL or empty");
    if (n < 0 || (n > 0 && !entries)) return nbi_error(NB_ERR_ARG, "hdf5_save: expected n >= 0 entries, got %d", n);
    for (int i = 0; i < n; i++) {
        if (!entries[i].name || !*entries[i].name)
            return nbi_error(NB_ERR_ARG, "hdf5_save: entry %d has no name", i);
        if (!nbi_check_tensor("hdf5_save", entries[i].name, entries[i].tensor)) return nb_last_status();
        for (int j = 0; j < i; j++)
            if (strcmp(entries[i].name, entries[j].name) == 0)
                return nbi_error(NB_ERR_ARG, "hdf5_save: duplicate key '%s'", entries[i].name);
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return nbi_error(NB_ERR_NOMEM, "hdf5_save: out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());

    quiet_state q = quiet_begin();
    nb_status st = NB_OK;
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) st = nbi_error(NB_ERR_IO, "hdf5_save: cannot create '%s'", tmp);
    for (int i = 0; st == NB_OK && i < n; i++) st = write_dataset(file, entries[i].name, entries[i].tensor);
    if (st == NB_OK) st = write_attributes(file);
    if (file >= 0 && H5Fclose(file) < 0 && st == NB_OK) st = nbi_error(NB_ERR_IO, "hdf5_save: closing '%s' failed", tmp);
    quiet_end(q);
    if (st == NB_OK) st = fsync_path(tmp, false);
    if (st == NB_OK && rename(tmp, path) != 0)
        st = nbi_error(NB_ERR_IO, "hdf5_save: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (st == NB_OK) {
        /* Make the rename itself durable. */
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (dir) {
            if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
            st = fsync_path(slash ? dir : ".", true);
            free(dir);
        }
    } else {
        unlink(tmp);
    }
    free(tmp);
    return st;
}

/* ---- load ---- */
typedef struct {
    char **keys;   /* state_dict keys ('/' of nested groups mapped to '.') */
    char **paths;  /* HDF5 paths */
    bool *used;
    int n, cap;
    int64_t visited; /* objects seen, of any type */
} dataset_list;

/* A corrupt file can make a group contain itself, and libhdf5 1.10 then
 * visits ever deeper paths (g/g/g/...) without end: the walk stops at these
 * bounds, far beyond any state_dict (nested modules are a few levels deep). */
#define MAX_GROUP_DEPTH 64
#define MAX_OBJECTS (1 << 20)

static int path_depth(const char *name) {
    int d = 0;
    for (; *name; name++) d += *name == '/';
    return d;
}

static herr_t visit_cb(hid_t obj, const char *name, const H5O_info_t *info, void *op_data) {
    (void)obj;
    dataset_list *l = op_data;
    if (++l->visited > MAX_OBJECTS || path_depth(name) > MAX_GROUP_DEPTH) return -1;
    if (info->type != H5O_TYPE_DATASET) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        char **k = realloc(l->keys, (size_t)cap * sizeof *k);
        if (!k) return -1;
        l->keys = k;
        char **p = realloc(l->paths, (size_t)cap * sizeof *p);
        if (!p) return -1;
        l->paths = p;
        bool *u = realloc(l->used, (size_t)cap * sizeof *u);
        if (!u) return -1;
        l->used = u;
        l->cap = cap;
    }
    char *key = strdup(name), *path = strdup(name);
    if (!key || !path) {
        free(key);
        free(path);
        return -1;
    }
    for (char *c = key; *c; c++)
        if (*c == '/') *c = '.';
    l->keys[l->n] = key;
    l->paths[l->n] = path;
    l->used[l->n] = false;
    l->n++;
    return 0;
}

static void dataset_list_free(dataset_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->keys[i]);
        free(l->paths[i]);
    }
    free(l->keys);
    free(l->paths);
    free(l->used);
}

void nb_load_report_free(nb_load_report *r) {
    if (!r) return;
    for (int i = 0; i < r->nmissing; i++) free(r->missing[i]);
    for (int i = 0; i < r->nunexpected; i++) free(r->unexpected[i]);
    free(r->missing);
    free(r->unexpected);
    memset(r, 0, sizeof *r);
}

static void note(nb_load_report *r, const char *fmt, const char *a, const char *b, const char *c) {
    size_t len = strlen(r->notes);
    if (len + 2 >= sizeof r->notes) return;
    snprintf(r->notes + len, sizeof r->notes - len, len ? "; " : "");
    len = strlen(r->notes);
    snprintf(r->notes + len, sizeof r->notes - len, fmt, a, b, c);
}

static const char *float_name(size_t size) {
    return size == 2 ? "float16" : size == 4 ? "float32" : size == 8 ? "float64" : "float";
}

/* Why a dataset's storage layout is refused, or NULL when it is fine.
 * Contiguous and compact data is what h5py's create_dataset and nb_hdf5_save
 * write. Chunked data (h5py's compression=, chunks=) is accepted only with
 * sane chunk dimensions (1 <= chunk <= extent, as HDF5 itself requires for
 * fixed-size datasets) and the standard filters (deflate, shuffle,
 * fletcher32): libhdf5 1.10 overflows its heap on corrupt chunk metadata
 * (tests/fuzz/regressions/hdf5), so anything else is refused up front. */
static const char *storage_problem(hid_t ds, hid_t space, hid_t dcpl, int nd, const hsize_t *dims, size_t type_size) {
    H5D_layout_t layout = H5Pget_layout(dcpl);
    hsize_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= dims[i];
    if (layout == H5D_CONTIGUOUS || layout == H5D_COMPACT) {
        /* Checked before anything is allocated for it: a corrupt header may
         * claim gigabytes that the file does not hold. */
        if (numel > 0 && H5Dget_storage_size(ds) != numel * type_size)
            return "stored data whose size does not match its shape (truncated or corrupt?)";
        return NULL;
    }
    if (layout != H5D_CHUNKED) return "a layout other than contiguous, compact or chunked";
    hsize_t chunk[NB_MAX_DIMS];
    if (nd < 1 || H5Pget_chunk(dcpl, NB_MAX_DIMS, chunk) != nd) return "chunk dimensions that do not match the rank";
    for (int i = 0; i < nd; i++)
        if (chunk[i] < 1 || chunk[i] > dims[i]) return "chunks larger than the dataset";
    int nfilters = H5Pget_nfilters(dcpl);
    if (nfilters < 0) return "unreadable filters";
    for (int i = 0; i < nfilters; i++) {
        unsigned flags;
        size_t nelem = 0;
        H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelem, NULL, 0, NULL, NULL);
        if (f != H5Z_FILTER_DEFLATE && f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32)
            return "a filter other than gzip, shuffle or fletcher32";
    }
    /* Every stored chunk must have a plausible size: exactly a chunk's bytes
     * when no filter applies to it, at most that (plus deflate's worst-case
     * overhead) when compressed. */
    hsize_t nchunks = 0, expected = 1;
    if (H5Dget_num_chunks(ds, space, &nchunks) < 0) return "an unreadable chunk index";
    for (int i = 0; i < nd; i++) expected *= (dims[i] + chunk[i] - 1) / chunk[i];
    if (nchunks != expected) return "chunks missing from the file (truncated or corrupt?)";
    hsize_t chunk_bytes = type_size;
    for (int i = 0; i < nd; i++) chunk_bytes *= chunk[i];
    for (hsize_t c = 0; c < nchunks; c++) {
        hsize_t offset[NB_MAX_DIMS], size = 0;
        haddr_t addr;
        unsigned mask = 0;
        if (H5Dget_chunk_info(ds, space, c, offset, &mask, &addr, &size) < 0) return "an unreadable chunk";
        bool filtered = nfilters > 0 && (mask & ((1u << nfilters) - 1)) != ((1u << nfilters) - 1);
        if (filtered ? size > chunk_bytes + chunk_bytes / 100 + 1024 : size != chunk_bytes)
            return "a chunk whose stored size does not match its dimensions";
    }
    return NULL;
}

/* Read one dataset into a new buffer of the tensor's dtype, or add a problem line. */
static void *read_entry(hid_t file, const char *path, const char *key, const nb_tensor *t, strbuf *problems,
                        nb_load_report *rep, nb_status *io) {
    hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
    if (ds < 0) {
        sb_add(problems, "%s: cannot open dataset", key);
        return NULL;
    }
    void *buf = NULL;
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[NB_MAX_DIMS];
    char want[160], have[160];
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    size_t tsize = type >= 0 ? H5Tget_size(type) : 0;
    if (nd < 0 || type < 0) {
        sb_add(problems, "%s: unreadable dataspace or type", key);
        goto out;
    }
    if (nd > NB_MAX_DIMS) {
        sb_add(problems, "%s: expected %s, file has a %d-dimensional dataset", key,
               nb_shape_str(t->ndim, t->shape, want, sizeof want), nd);
        goto out;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    int64_t shape[NB_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
    bool same = nd == t->ndim;
    for (int i = 0; same && i < nd; i++) same = shape[i] == t->shape[i];
    if (!same) {
        sb_add(problems, "%s: expected %s, file has %s", key, nb_shape_str(t->ndim, t->shape, want, sizeof want),
               nb_shape_str(nd, shape, have, sizeof have));
        goto out;
    }
    bool want_float = t->dtype != NB_I64;
    if (want_float && cls != H5T_FLOAT) {
        sb_add(problems, "%s: expected a %s dataset, file has %s", key, nb_dtype_name(t->dtype),
               cls == H5T_INTEGER ? "an integer dataset" : "a non-numeric dataset");
        goto out;
    }
    if (!want_float && cls != H5T_INTEGER) {
        sb_add(problems, "%s: expected an integer dataset, file has %s", key,
               cls == H5T_FLOAT ? float_name(tsize) : "a non-numeric dataset");
        goto out;
    }
    /* Only contiguous and compact layouts are read: Debian 12's libhdf5
     * 1.10.8 reads past its own buffers on corrupt chunked datasets, filtered
     * (reproducer tests/fuzz/regressions/hdf5/libhdf5_filtered_chunk_overflow)
     * or not (libhdf5_chunk_overflow); both found by tests/fuzz. h5py's
     * create_dataset and nb_hdf5_save write contiguous data unless asked for
     * chunks or compression. */
    hid_t dcpl = H5Dget_create_plist(ds);
    const char *bad_layout = dcpl < 0 ? "an unreadable creation property list" : storage_problem(ds, space, dcpl, nd, dims, tsize);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (bad_layout) {
        sb_add(problems, "%s: unsupported storage: %s", key, bad_layout);
        goto out;
    }
    if (want_float && tsize != nb_dtype_size(t->dtype))
        note(rep, "%s: %s converted to %s", key, float_name(tsize), nb_dtype_name(t->dtype));
    size_t bytes = (size_t)t->numel * nb_dtype_size(t->dtype);
    buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        *io = nbi_error(NB_ERR_NOMEM, "hdf5_load: out of memory reading '%s'", key);
        goto out;
    }
    if (t->numel > 0 && H5Dread(ds, mem_type(t->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        sb_add(problems, "%s: the data cannot be read (truncated or corrupt file?)", key);
        free(buf);
        buf = NULL;
    }
out:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    return buf;
}

nb_status nb_hdf5_load(const char *path, const nb_named_tensor *entries, int n, bool strict, nb_load_report *report) {
    nb_load_report local;
    nb_load_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (!path) return nbi_error(NB_ERR_ARG, "hdf5_load: path is NULL");
    if (n < 0 || (n > 0 && !entries)) return nbi_error(NB_ERR_ARG, "hdf5_load: expected n >= 0 entries, got %d", n);
    for (int i = 0; i < n; i++)
        if (!entries[i].name || !nbi_check_tensor("hdf5_load", entries[i].name ? entries[i].name : "entry", entries[i].tensor))
            return entries[i].name ? nb_last_status() : nbi_error(NB_ERR_ARG, "hdf5_load: entry %d has no name", i);
    if (access(path, R_OK) != 0)
        return nbi_error(NB_ERR_IO, "hdf5_load: cannot open '%s': %s", path, strerror(errno));

    quiet_state q = quiet_begin();
    nb_status st = NB_OK;
    dataset_list dl = {0};
    void **bufs = calloc((size_t)(n ? n : 1), sizeof *bufs);
    strbuf problems = {0};
    hid_t file = -1;
    if (!bufs) {
        st = nbi_error(NB_ERR_NOMEM, "hdf5_load: out of memory");
        goto done;
    }
    if (H5Fis_hdf5(path) <= 0) {
        st = nbi_error(NB_ERR_IO, "hdf5_load: '%s' is not an HDF5 file", path);
        goto done;
    }
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        st = nbi_error(NB_ERR_IO, "hdf5_load: cannot open '%s' (truncated or corrupt HDF5 file?)", path);
        goto done;
    }
    if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &dl, H5O_INFO_BASIC) < 0) {
        st = nbi_error(NB_ERR_IO, "hdf5_load: cannot list the datasets of '%s' (corrupt file, or more than %d objects or %d nested groups?)", path, MAX_OBJECTS, MAX_GROUP_DEPTH);
        goto done;
    }
    int nmissing = 0;
    for (int i = 0; i < n && st == NB_OK; i++) {
        int k = -1;
        for (int j = 0; j < dl.n && k < 0; j++)
            if (strcmp(dl.keys[j], entries[i].name) == 0) k = j;
        if (k < 0) {
            nmissing++;
            continue;
        }
        dl.used[k] = true;
        bufs[i] = read_entry(file, dl.paths[k], entries[i].name, entries[i].tensor, &problems, rep, &st);
    }
    if (st != NB_OK) goto done;
    /* Missing and unexpected keys, for the report and the strict error. */
    rep->missing = calloc((size_t)(nmissing ? nmissing : 1), sizeof(char *));
    rep->unexpected = calloc((size_t)(dl.n ? dl.n : 1), sizeof(char *));
    if (!rep->missing || !rep->unexpected) {
        st = nbi_error(NB_ERR_NOMEM, "hdf5_load: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < dl.n && !found; j++) found = strcmp(dl.keys[j], entries[i].name) == 0;
        if (!found) {
            rep->missing[rep->nmissing++] = strdup(entries[i].name);
            if (strict) sb_add(&problems, "missing key %s", entries[i].name);
        }
    }
    for (int j = 0; j < dl.n; j++)
        if (!dl.used[j]) {
            rep->unexpected[rep->nunexpected++] = strdup(dl.keys[j]);
            if (strict) sb_add(&problems, "unexpected key %s", dl.keys[j]);
        }
    if (problems.count > 0) {
        st = nbi_error(NB_ERR_SHAPE, "hdf5_load: %d problem%s loading '%s': %s", problems.count,
                       problems.count > 1 ? "s" : "", path, problems.s ? problems.s : "");
        goto done;
    }
    /* Everything read and checked: only now change the tensors. */
    for (int i = 0; i < n; i++) {
        if (!bufs[i]) continue;
        nb_tensor *t = entries[i].tensor;
        nb_tensor *src = nbi_own(nb_from_buffer(t->dtype, t->ndim, t->shape, bufs[i]));
        st = src ? nb_tensor_copy_(t, src) : nb_last_status();
        nbi_release(src);
        if (st != NB_OK) break;
    }
done:
    if (file >= 0) H5Fclose(file);
    quiet_end(q);
    for (int i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(problems.s);
    dataset_list_free(&dl);
    if (!report) nb_load_report_free(&local); /* a caller's report keeps its lists even on failure */
    return st;
}

/* ---- listing and single reads ---- */
static nb_status open_for_read(const char *op, const char *path, hid_t *file) {
    if (!path) return nbi_error(NB_ERR_ARG, "%s: path is NULL", op);
    if (access(path, R_OK) != 0) return nbi_error(NB_ERR_IO, "%s: cannot open '%s': %s", op, path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0) return nbi_error(NB_ERR_IO, "%s: '%s' is not an HDF5 file", op, path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0) return nbi_error(NB_ERR_IO, "%s: cannot open '%s' (truncated or corrupt HDF5 file?)", op, path);
    return NB_OK;
}

void nb_hdf5_names_free(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

nb_status nb_hdf5_list(const char *path, char ***names, int *n) {
    if (!names || !n) return nbi_error(NB_ERR_ARG, "hdf5_list: names or n is NULL");
    *names = NULL;
    *n = 0;
    quiet_state q = quiet_begin();
    hid_t file = -1;
    dataset_list dl = {0};
    nb_status st = open_for_read("hdf5_list", path, &file);
    if (st == NB_OK && H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &dl, H5O_INFO_BASIC) < 0)
        st = nbi_error(NB_ERR_IO, "hdf5_list: cannot list the datasets of '%s' (corrupt file, or more than %d objects or %d nested groups?)", path, MAX_OBJECTS, MAX_GROUP_DEPTH);
    if (file >= 0) H5Fclose(file);
    quiet_end(q);
    if (st == NB_OK) {
        *names = dl.keys; /* hand the keys over; free the rest */
        *n = dl.n;
        dl.keys = NULL;
        for (int i = 0; i < dl.n; i++) free(dl.paths[i]);
        free(dl.paths);
        free(dl.used);
        return NB_OK;
    }
    dataset_list_free(&dl);
    return st;
}

nb_tensor *nb_hdf5_read(const char *path, const char *name, nb_dtype dtype) {
    if (!name) {
        nbi_error(NB_ERR_ARG, "hdf5_read: name is NULL");
        return NULL;
    }
    if (dtype != NB_F32 && dtype != NB_F64 && dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "hdf5_read: unknown dtype %d", (int)dtype);
        return NULL;
    }
    quiet_state q = quiet_begin();
    hid_t file = -1, ds = -1, space = -1;
    nb_tensor *t = NULL;
    nb_status st = open_for_read("hdf5_read", path, &file);
    if (st != NB_OK) goto done;
    /* A key may be stored flat ("a.b") or nested ("a/b"). */
    char *nested = strdup(name);
    for (char *c = nested; c && *c; c++)
        if (*c == '.') *c = '/';
    if (H5Lexists(file, name, H5P_DEFAULT) > 0) ds = H5Dopen2(file, name, H5P_DEFAULT);
    else if (nested && H5Lexists(file, nested, H5P_DEFAULT) > 0) ds = H5Dopen2(file, nested, H5P_DEFAULT);
    if (ds < 0) {
        nbi_error(NB_ERR_IO, "hdf5_read: '%s' has no dataset '%s'", path, name);
        free(nested);
        goto done;
    }
    space = H5Dget_space(ds);
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (nd < 0 || nd > NB_MAX_DIMS) {
        nbi_error(NB_ERR_IO, "hdf5_read: dataset '%s' has an unsupported rank %d", name, nd);
        free(nested);
        goto done;
    }
    hsize_t dims[NB_MAX_DIMS];
    int64_t shape[NB_MAX_DIMS];
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
    hid_t dcpl = H5Dget_create_plist(ds), type = H5Dget_type(ds);
    const char *bad = dcpl < 0 || type < 0 ? "an unreadable type or creation property list"
                                           : storage_problem(ds, space, dcpl, nd, dims, H5Tget_size(type));
    if (dcpl >= 0) H5Pclose(dcpl);
    if (type >= 0) H5Tclose(type);
    if (bad) {
        nbi_error(NB_ERR_IO, "hdf5_read: '%s' in '%s' has unsupported storage: %s", name, path, bad);
        free(nested);
        goto done;
    }
    nb_tensor *proto = nbi_own(nb_zeros(dtype, nd, shape));
    if (proto) {
        strbuf problems = {0};
        nb_load_report rep = {0};
        nb_status io = NB_OK;
        void *buf = read_entry(file, H5Lexists(file, name, H5P_DEFAULT) > 0 ? name : nested, name, proto, &problems,
                               &rep, &io);
        if (buf) {
            memcpy(nbi_data(proto), buf, (size_t)proto->numel * nb_dtype_size(dtype));
            free(buf);
            t = nbi_give(proto);
        } else {
            if (io == NB_OK) nbi_error(NB_ERR_IO, "hdf5_read: %s", problems.s ? problems.s : name);
            nbi_release(proto);
        }
        free(problems.s);
    }
    free(nested);
done:
    if (space >= 0) H5Sclose(space);
    if (ds >= 0) H5Dclose(ds);
    if (file >= 0) H5Fclose(file);
    quiet_end(q);
    return t;
}
