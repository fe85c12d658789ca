/* Checkpoints (nabla/checkpoint.h): a model's state_dict, an optimizer's and
 * a scheduler's state, generators and the program's own entries in one HDF5
 * file. src/train builds on src/nn (modules, HDF5) and src/optim; neither
 * knows of it. A load reads and checks everything first, then changes the
 * optimizer and scheduler behind snapshots it can put back, and last copies
 * into the model, generators and extra tensors, which cannot fail. */
#include "nabla/checkpoint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/nn.h"
#include "optim/optim_snapshot.h"
#include "tensor/internal.h"
#include "train/train_internal.h"

static const char *const reserved_prefixes[] = {"model.", "optimizer.", "scheduler.", "rng.", "checkpoint."};

static bool has_prefix(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* prefix + name in a new string (NULL when out of memory). */
static char *join(const char *prefix, const char *name) {
    size_t a = strlen(prefix), b = strlen(name);
    char *s = nbi_alloc_should_fail() ? NULL : malloc(a + b + 1);
    if (!s) return NULL;
    memcpy(s, prefix, a);
    memcpy(s + a, name, b + 1);
    return s;
}

/* The last error again, with op in front (unless it names op already). */
static nb_status rewrap(const char *op) {
    const nb_status st = nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
    if (strncmp(nb_last_error(), op, strlen(op)) == 0) return st;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", nb_last_error()[0] ? nb_last_error() : "out of memory");
    return nbi_error(st, "%s: %s", op, msg);
}

static nb_status nomem(const char *op) { return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op); }

/* The arguments both functions take. */
static nb_status check_args(const char *op, const char *path, const nb_checkpoint *c) {
    if (!path) return nbi_error(NB_ERR_ARG, "%s: path is NULL", op);
    if (!c) return nbi_error(NB_ERR_ARG, "%s: checkpoint is NULL", op);
    if (c->nrngs < 0 || c->nextra < 0)
        return nbi_error(NB_ERR_ARG, "%s: expected nrngs >= 0 and nextra >= 0, but got %d and %d", op, c->nrngs,
                         c->nextra);
    if (c->nrngs > 0 && (!c->rngs || !c->rng_names))
        return nbi_error(NB_ERR_ARG, "%s: nrngs is %d but rngs or rng_names is NULL", op, c->nrngs);
    if (c->nextra > 0 && !c->extra) return nbi_error(NB_ERR_ARG, "%s: nextra is %d but extra is NULL", op, c->nextra);
    for (int i = 0; i < c->nrngs; i++) {
        if (!c->rngs[i]) return nbi_error(NB_ERR_ARG, "%s: rngs[%d] is NULL", op, i);
        if (!c->rng_names[i] || !c->rng_names[i][0])
            return nbi_error(NB_ERR_ARG, "%s: rng_names[%d] is NULL or empty", op, i);
        for (int j = 0; j < i; j++)
            if (strcmp(c->rng_names[i], c->rng_names[j]) == 0)
                return nbi_error(NB_ERR_ARG, "%s: rng name '%s' is given twice", op, c->rng_names[i]);
    }
    for (int i = 0; i < c->nextra; i++) {
        const char *name = c->extra[i].name;
        if (!name || !name[0]) return nbi_error(NB_ERR_ARG, "%s: extra[%d] has no name", op, i);
        if (!nbi_check_tensor(op, name, c->extra[i].tensor)) return nb_last_status();
        for (size_t p = 0; p < sizeof reserved_prefixes / sizeof *reserved_prefixes; p++)
            if (has_prefix(name, reserved_prefixes[p]))
                return nbi_error(NB_ERR_ARG, "%s: extra entry '%s' uses the reserved prefix '%s'", op, name,
                                 reserved_prefixes[p]);
        for (int j = 0; j < i; j++)
            if (strcmp(name, c->extra[j].name) == 0)
                return nbi_error(NB_ERR_ARG, "%s: extra entry '%s' is given twice", op, name);
    }
    return NB_OK;
}

/* ---- save ---- */
typedef struct {
    nb_named_tensor *e; /* names owned; tensors borrowed unless in owned */
    int n, cap;
    nb_tensor **owned;
    int nowned;
} entry_list;

/* Append prefix + name -> t. An owned t (a library reference) is released on failure. */
static bool push(entry_list *l, const char *prefix, const char *name, nb_tensor *t, bool owned) {
    if (!t) return false;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        nb_named_tensor *e = nbi_alloc_should_fail() ? NULL : realloc(l->e, (size_t)cap * sizeof *e);
        if (e) l->e = e;
        nb_tensor **o = e && !nbi_alloc_should_fail() ? realloc(l->owned, (size_t)cap * sizeof *o) : NULL;
        if (o) l->owned = o;
        if (!o) {
            if (owned) nbi_release(t);
            nomem("checkpoint_save");
            return false;
        }
        l->cap = cap;
    }
    char *key = join(prefix, name);
    if (!key) {
        if (owned) nbi_release(t);
        nomem("checkpoint_save");
        return false;
    }
    l->e[l->n++] = (nb_named_tensor){key, t};
    if (owned) l->owned[l->nowned++] = t;
    return true;
}

static void entry_list_free(entry_list *l) {
    for (int i = 0; i < l->n; i++) free((char *)l->e[i].name);
    for (int i = 0; i < l->nowned; i++) nbi_release(l->owned[i]);
    free(l->e);
    free(l->owned);
}

static int add_model_entry(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param;
    return push(ctx, "model.", name, t, false) ? 0 : 1;
}

static nb_tensor *rng_tensor(const nb_rng *r) {
    int64_t v[4];
    memcpy(v, r->s, sizeof v); /* the state words' bits, as int64 (HDF5 and h5py read them back exactly) */
    return nbi_own(nb_from_data(NB_I64, 1, (int64_t[]){4}, v));
}

nb_status nb_checkpoint_save(const char *path, const nb_checkpoint *c) {
    if (check_args("checkpoint_save", path, c) != NB_OK) return nb_last_status();
    entry_list l = {0};
    bool ok = true;
    if (c->model && nb_module_visit_state(c->model, add_model_entry, &l) != NB_OK) ok = false;
    char name[512];
    for (int64_t k = 0; ok && c->optimizer && k < nb_optimizer_state_count(c->optimizer); k++) {
        nb_tensor *t = nb_optimizer_state_entry(c->optimizer, k, name, sizeof name); /* borrowed */
        ok = push(&l, "optimizer.", name, t, false);
    }
    for (int64_t k = 0; ok && c->scheduler && k < nb_lr_scheduler_state_count(c->scheduler); k++) {
        nb_tensor *t = nbi_own(nb_lr_scheduler_state_entry(c->scheduler, k, name, sizeof name)); /* new */
        ok = push(&l, "scheduler.", name, t, true);
    }
    for (int i = 0; ok && i < c->nrngs; i++) ok = push(&l, "rng.", c->rng_names[i], rng_tensor(c->rngs[i]), true);
    for (int i = 0; ok && i < c->nextra; i++) ok = push(&l, "", c->extra[i].name, c->extra[i].tensor, false);
    uint64_t sum = 0;
    if (ok && nbi_checksum_entries("checkpoint_save", l.e, l.n, &sum) != NB_OK) ok = false;
    int64_t sum_bits;
    memcpy(&sum_bits, &sum, sizeof sum_bits);
    if (ok) ok = push(&l, "", NBI_CHECKSUM_KEY, nbi_own(nb_scalar(NB_I64, 0)), true);
    if (ok) nb_tensor_i64(l.e[l.n - 1].tensor)[0] = sum_bits; /* the bits; a double would round them */
    if (ok) nbi_remove_stale_tmp(path);
    nb_status st = ok ? nb_hdf5_save(path, l.e, l.n) : nb_last_status();
    entry_list_free(&l);
    return st == NB_OK ? NB_OK : rewrap("checkpoint_save");
}

/* ---- load ---- */
/* What a load found wrong, all of it, in one message (as nb_hdf5_load). */
typedef struct {
    char *s;
    size_t len, cap;
    int count;
    nb_status first;
} problems;

static void problem(problems *p, nb_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(problems *p, nb_status st, const char *fmt, ...) {
    if (p->count++ == 0) p->first = st;
    char one[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    size_t need = p->len + strlen(one) + 3;
    if (need > p->cap) {
        size_t cap = need * 2;
        char *s = nbi_alloc_should_fail() ? NULL : realloc(p->s, cap);
        if (!s) {
            p->first = NB_ERR_NOMEM; /* the count still says something went wrong */
            return;
        }
        p->s = s;
        p->cap = cap;
    }
    p->len += (size_t)snprintf(p->s + p->len, p->cap - p->len, "%s%s", p->len ? "; " : "", one);
}

/* A file entry's new value for a tensor of the program's (model, extra). */
typedef struct {
    nb_tensor *dst; /* borrowed */
    nb_tensor *src; /* a library reference: dst's shape and dtype, contiguous */
} staged_copy;

/* A value to hand to the optimizer or scheduler: name without its prefix. */
typedef struct {
    const char *name; /* points into the file's name list */
    nb_tensor *value; /* a library reference */
} staged_entry;

typedef struct {
    const char *path;
    char **names; /* the file's datasets */
    int nnames;
    bool *used;   /* [nnames]: claimed by a part being restored */
    problems p;
    staged_copy *copies;
    int ncopies, capcopies;
    staged_entry *opt, *sched;
    int nopt, nsched;
    uint64_t (*rng_words)[4];
} load_state;

static int find_name(const load_state *s, const char *name) {
    for (int i = 0; i < s->nnames; i++)
        if (strcmp(s->names[i], name) == 0) return i;
    return -1;
}

/* The message of the last error, for a problem line. */
static const char *last_msg(void) { return nb_last_error()[0] ? nb_last_error() : "out of memory"; }

/* Read file entry key as dst's new value, checked; false on a problem (noted). */
static bool stage_copy(load_state *s, const char *key, nb_tensor *dst) {
    int k = find_name(s, key);
    if (k < 0) {
        problem(&s->p, NB_ERR_IO, "missing key %s", key);
        return false;
    }
    s->used[k] = true;
    if (!nb_tensor_is_contiguous(dst)) {
        problem(&s->p, NB_ERR_ARG, "%s: the tensor to restore must be contiguous", key);
        return false;
    }
    nb_tensor *src = nbi_own(nb_hdf5_read(s->path, key, nb_tensor_dtype(dst)));
    if (!src) {
        problem(&s->p, nb_last_status(), "%s", last_msg());
        return false;
    }
    if (nb_tensor_ndim(src) != nb_tensor_ndim(dst) ||
        memcmp(nb_tensor_shape(src), nb_tensor_shape(dst), sizeof(int64_t) * (size_t)nb_tensor_ndim(dst)) != 0) {
        char a[128], b[128];
        problem(&s->p, NB_ERR_SHAPE, "%s: expected %s, file has %s", key,
                nb_shape_str(nb_tensor_ndim(dst), nb_tensor_shape(dst), a, sizeof a),
                nb_shape_str(nb_tensor_ndim(src), nb_tensor_shape(src), b, sizeof b));
        nbi_release(src);
        return false;
    }
    if (s->ncopies == s->capcopies) {
        int cap = s->capcopies ? 2 * s->capcopies : 64;
        staged_copy *c = nbi_alloc_should_fail() ? NULL : realloc(s->copies, (size_t)cap * sizeof *c);
        if (!c) {
            nbi_release(src);
            problem(&s->p, NB_ERR_NOMEM, "out of memory");
            return false;
        }
        s->copies = c;
        s->capcopies = cap;
    }
    s->copies[s->ncopies++] = (staged_copy){dst, src};
    return true;
}

static int stage_model_entry(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)is_param;
    load_state *s = ctx;
    char *key = join("model.", name);
    if (!key) {
        problem(&s->p, NB_ERR_NOMEM, "out of memory");
        return 1;
    }
    stage_copy(s, key, t);
    free(key);
    return 0;
}

static void stage_model(load_state *s, nb_module *m) {
    if (nb_module_visit_state(m, stage_model_entry, s) != NB_OK && s->p.count == 0)
        problem(&s->p, nb_last_status(), "%s", last_msg());
    for (int i = 0; i < s->nnames; i++)
        if (!s->used[i] && has_prefix(s->names[i], "model.")) problem(&s->p, NB_ERR_IO, "unexpected key %s", s->names[i]);
}

static void stage_rngs(load_state *s, const nb_checkpoint *c) {
    s->rng_words = nbi_alloc_should_fail() ? NULL : calloc((size_t)(c->nrngs ? c->nrngs : 1), sizeof *s->rng_words);
    if (!s->rng_words) {
        problem(&s->p, NB_ERR_NOMEM, "out of memory");
        return;
    }
    for (int i = 0; i < c->nrngs; i++) {
        char *key = join("rng.", c->rng_names[i]);
        int k = key ? find_name(s, key) : -1;
        nb_tensor *t = k >= 0 ? nbi_own(nb_hdf5_read(s->path, key, NB_I64)) : NULL;
        if (!key) problem(&s->p, NB_ERR_NOMEM, "out of memory");
        else if (k < 0) problem(&s->p, NB_ERR_IO, "missing key %s", key);
        else if (!t) problem(&s->p, nb_last_status(), "%s", last_msg());
        else if (nb_tensor_ndim(t) != 1 || nb_tensor_shape(t)[0] != 4) {
            char a[128];
            problem(&s->p, NB_ERR_SHAPE, "%s: expected [4], file has %s", key,
                    nb_shape_str(nb_tensor_ndim(t), nb_tensor_shape(t), a, sizeof a));
        } else {
            memcpy(s->rng_words[i], nb_tensor_i64(t), sizeof s->rng_words[i]);
            const uint64_t *w = s->rng_words[i];
            if ((w[0] | w[1] | w[2] | w[3]) == 0) /* xoshiro's one invalid state: it would give zeros forever */
                problem(&s->p, NB_ERR_IO, "%s: a generator's state cannot be all zero", key);
        }
        nbi_release(t);
        free(key);
    }
}

/* Every file entry under prefix, read as float64 (integer datasets too) into *out. */
static void stage_entries(load_state *s, const char *prefix, staged_entry **out, int *nout) {
    int n = 0;
    for (int i = 0; i < s->nnames; i++) n += has_prefix(s->names[i], prefix);
    *out = nbi_alloc_should_fail() ? NULL : calloc((size_t)(n ? n : 1), sizeof **out);
    if (!*out) {
        problem(&s->p, NB_ERR_NOMEM, "out of memory");
        return;
    }
    const size_t len = strlen(prefix);
    for (int i = 0; i < s->nnames; i++) {
        if (!has_prefix(s->names[i], prefix)) continue;
        nb_tensor *t = nbi_own(nb_hdf5_read(s->path, s->names[i], NB_F64));
        if (!t && nb_last_status() != NB_ERR_NOMEM) { /* an integer dataset (a step count written by another tool)? */
            char first[1024];
            snprintf(first, sizeof first, "%s", last_msg());
            nb_tensor *i64 = nbi_own(nb_hdf5_read(s->path, s->names[i], NB_I64));
            t = i64 ? nbi_own(nb_to_dtype(i64, NB_F64)) : NULL;
            nbi_release(i64);
            if (!t && nb_last_status() != NB_ERR_NOMEM) nbi_error(NB_ERR_IO, "%s", first);
        }
        if (!t) {
            problem(&s->p, nb_last_status(), "%s", last_msg());
            continue;
        }
        (*out)[(*nout)++] = (staged_entry){s->names[i] + len, t};
    }
}

/* The file's checksum against its datasets (see nabla/checkpoint.h). */
static void check_checksum(load_state *s, bool allow_missing) {
    const int k = find_name(s, NBI_CHECKSUM_KEY);
    if (k < 0) {
        if (!allow_missing)
            problem(&s->p, NB_ERR_IO,
                    "no " NBI_CHECKSUM_KEY " (written before nabla's checkpoints had checksums, or by another "
                    "program; set allow_missing_checksum to load it unverified)");
        return;
    }
    s->used[k] = true;
    nb_tensor *t = nbi_own(nb_hdf5_read(s->path, NBI_CHECKSUM_KEY, NB_I64));
    if (!t) {
        problem(&s->p, nb_last_status(), "%s", last_msg());
        return;
    }
    if (nb_tensor_ndim(t) != 0) {
        problem(&s->p, NB_ERR_IO, NBI_CHECKSUM_KEY ": expected one int64 (shape []), file has %d dimensions",
                nb_tensor_ndim(t));
        nbi_release(t);
        return;
    }
    uint64_t want, got = 0;
    memcpy(&want, nb_tensor_i64(t), sizeof want);
    nbi_release(t);
    if (nbi_checksum_file("checkpoint_load", s->path, s->names, s->nnames, &got) != NB_OK)
        problem(&s->p, nb_last_status(), "%s", last_msg());
    else if (got != want)
        problem(&s->p, NB_ERR_IO,
                "checksum mismatch (file says %016llx, its datasets give %016llx): an entry was changed, "
                "added or removed after nb_checkpoint_save wrote it",
                (unsigned long long)want, (unsigned long long)got);
}

static void load_state_free(load_state *s) {
    for (int i = 0; i < s->ncopies; i++) nbi_release(s->copies[i].src);
    for (int i = 0; i < s->nopt; i++) nbi_release(s->opt[i].value);
    for (int i = 0; i < s->nsched; i++) nbi_release(s->sched[i].value);
    free(s->copies);
    free(s->opt);
    free(s->sched);
    free(s->rng_words);
    free(s->used);
    free(s->p.s);
    nb_hdf5_names_free(s->names, s->nnames);
}

/* Re-raise the last error with the file and the entry in front. */
static nb_status wrap_error(const char *path, const char *prefix, const char *name) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", last_msg());
    nb_status st = nb_last_status() != NB_OK ? nb_last_status() : NB_ERR_NOMEM;
    return nbi_error(st, "checkpoint_load: '%s': %s%s: %s", path, prefix, name, msg);
}

/* Every entry a part has must be in the file (names listed by count/entry). */
static nb_status require_optimizer_groups(load_state *s, const nb_optimizer *opt) {
    char name[512];
    /* Called with no per-parameter state left, so every entry is a group's. */
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        if (!nb_optimizer_state_entry(opt, k, name, sizeof name)) return nb_last_status();
        char *key = join("optimizer.", name);
        if (!key) return nomem("checkpoint_load");
        const bool found = find_name(s, key) >= 0;
        free(key);
        if (!found)
            return nbi_error(NB_ERR_IO, "checkpoint_load: '%s' lacks optimizer.%s (saved with another optimizer?)",
                             s->path, name);
    }
    return NB_OK;
}

/* After the file's entries went in: every state entry the optimizer now has
 * was in the file (a parameter's state is created whole at its first entry,
 * so a lost exp_avg_sq would otherwise come back as zeros). */
static nb_status require_optimizer_state(load_state *s, const nb_optimizer *opt) {
    char name[512];
    for (int64_t k = 0; k < nb_optimizer_state_count(opt); k++) {
        if (!nb_optimizer_state_entry(opt, k, name, sizeof name)) return nb_last_status();
        bool found = false;
        for (int i = 0; i < s->nopt && !found; i++) found = strcmp(s->opt[i].name, name) == 0;
        if (!found)
            return nbi_error(NB_ERR_IO, "checkpoint_load: '%s' lacks optimizer.%s (its parameter's other state is "
                             "there: the file is incomplete)", s->path, name);
    }
    return NB_OK;
}

static nb_status require_scheduler_entries(load_state *s, const nb_lr_scheduler *sched) {
    char name[512];
    for (int64_t k = 0; k < nb_lr_scheduler_state_count(sched); k++) {
        nb_tensor *t = nbi_own(nb_lr_scheduler_state_entry(sched, k, name, sizeof name));
        if (!t) return nb_last_status();
        nbi_release(t);
        char *key = join("scheduler.", name);
        if (!key) return nomem("checkpoint_load");
        const bool found = find_name(s, key) >= 0;
        free(key);
        if (!found)
            return nbi_error(NB_ERR_IO, "checkpoint_load: '%s' lacks scheduler.%s (saved with another scheduler?)",
                             s->path, name);
    }
    return NB_OK;
}

/* The optimizer and scheduler changed behind snapshots; restored on failure. */
static nb_status apply_optim(load_state *s, const nb_checkpoint *c, nbi_optim_snapshot **os,
                             nbi_sched_snapshot **ss) {
    if (c->scheduler) {
        nb_status st = require_scheduler_entries(s, c->scheduler);
        if (st != NB_OK) return st;
        if (!(*ss = nbi_sched_snapshot_take(c->scheduler))) return nb_last_status();
    }
    if (c->optimizer) {
        if (!(*os = nbi_optim_snapshot_take(c->optimizer))) return nb_last_status();
        nb_status st = require_optimizer_groups(s, c->optimizer);
        if (st != NB_OK) return st;
        for (int i = 0; i < s->nopt; i++)
            if (nb_optimizer_load_state(c->optimizer, s->opt[i].name, s->opt[i].value) != NB_OK)
                return wrap_error(s->path, "optimizer.", s->opt[i].name);
        if ((st = require_optimizer_state(s, c->optimizer)) != NB_OK) return st;
    }
    for (int i = 0; c->scheduler && i < s->nsched; i++)
        if (nb_lr_scheduler_load_state_entry(c->scheduler, s->sched[i].name, s->sched[i].value) != NB_OK)
            return wrap_error(s->path, "scheduler.", s->sched[i].name);
    return NB_OK;
}

nb_status nb_checkpoint_load(const char *path, const nb_checkpoint *c) {
    if (check_args("checkpoint_load", path, c) != NB_OK) return nb_last_status();
    load_state s = {.path = path};
    nb_status st = nb_hdf5_list(path, &s.names, &s.nnames);
    if (st != NB_OK) return rewrap("checkpoint_load");
    s.used = nbi_alloc_should_fail() ? NULL : calloc((size_t)(s.nnames ? s.nnames : 1), sizeof *s.used);
    if (!s.used) {
        load_state_free(&s);
        return nomem("checkpoint_load");
    }
    /* 1. Read and check everything; nothing changes yet. */
    if (c->model) stage_model(&s, c->model);
    stage_rngs(&s, c);
    for (int i = 0; i < c->nextra; i++) stage_copy(&s, c->extra[i].name, c->extra[i].tensor);
    if (c->optimizer) stage_entries(&s, "optimizer.", &s.opt, &s.nopt);
    if (c->scheduler) stage_entries(&s, "scheduler.", &s.sched, &s.nsched);
    check_checksum(&s, c->allow_missing_checksum);
    if (s.p.count > 0) {
        st = nbi_error(s.p.first, "checkpoint_load: %d problem%s loading '%s': %s", s.p.count,
                       s.p.count > 1 ? "s" : "", path, s.p.s ? s.p.s : "out of memory");
        load_state_free(&s);
        return st;
    }
    /* 2. The optimizer and scheduler, each behind a snapshot. */
    nbi_optim_snapshot *os = NULL;
    nbi_sched_snapshot *ss = NULL;
    st = apply_optim(&s, c, &os, &ss);
    if (st != NB_OK) {
        if (os) nbi_optim_snapshot_restore(c->optimizer, os);
        if (ss) nbi_sched_snapshot_restore(c->scheduler, ss);
        load_state_free(&s);
        return st;
    }
    /* 3. What cannot fail: same-dtype contiguous copies, generator words. */
    for (int i = 0; i < s.ncopies; i++) nb_tensor_copy_(s.copies[i].dst, s.copies[i].src);
    for (int i = 0; i < c->nrngs; i++) memcpy(c->rngs[i]->s, s.rng_words[i], sizeof c->rngs[i]->s);
    nbi_optim_snapshot_commit(os);
    nbi_sched_snapshot_free(ss);
    load_state_free(&s);
    nb_clear_error();
    return NB_OK;
}
