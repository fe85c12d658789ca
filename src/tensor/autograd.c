/* The autograd engine: recording nodes, and the reverse walk of nb_backward
 * and nb_autograd_grad.
 *
 * Each non-leaf tensor holds a counted reference to the node of the op that
 * made it (the outputs of a custom function share one node); the node holds
 * references to the op's inputs, so a graph lives exactly as long as the
 * tensors at its outputs. A backward pass sorts what its roots reach
 * topologically (iterative DFS, so deep graphs do not overflow the stack):
 * the nodes, and the leaves that require grad. It then visits them from the
 * roots down. A node has a gradient slot per output (bgrads) where the
 * contributions of its consumers add up; at the node's turn its outputs'
 * hooks run on them, its op's backward turns them into its inputs'
 * gradients, and those are added to the inputs' slots (a leaf's slot is its
 * bgrad). A leaf's turn comes once all its contributions are in: its hooks
 * run, then the sum is added to .grad. nb_autograd_grad runs the same walk
 * but takes the gradients of chosen tensors as they are reached, runs only
 * the nodes between its outputs and those tensors, and leaves .grad alone.
 *
 * Anomaly detection (nb_set_detect_anomaly) hooks the two places every value
 * passes: nbi_finish (every op's forward output) and the engine's loop (every
 * gradient an op's backward returns, and the root gradient). */
#include "internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local int no_grad_depth;
static _Thread_local uint64_t epoch;
/* Nonzero while the engine runs ops' backward functions: their intermediate
 * results are not forward outputs; the engine checks what they return. */
static _Thread_local int in_backward;

/* ---- anomaly detection ---- */
/* Global like torch.autograd.set_detect_anomaly; relaxed: a flag, not a fence. */
static atomic_bool detect_anomaly;

void nb_set_detect_anomaly(bool enabled) { atomic_store_explicit(&detect_anomaly, enabled, memory_order_relaxed); }
bool nb_detect_anomaly_enabled(void) { return atomic_load_explicit(&detect_anomaly, memory_order_relaxed); }

/* Flat (row-major logical) index of t's first NaN/Inf, or -1; its value in *val. */
static int64_t first_nonfinite(const nb_tensor *t, double *val) {
    if (t->dtype == NB_I64 || t->numel == 0) return -1;
    int64_t idx[NB_MAX_DIMS] = {0};
    int64_t off = 0;
    const bool contig = nbi_is_contiguous(t);
    for (int64_t k = 0; k < t->numel; k++) {
        double v;
        int64_t e = contig ? k : off;
        if (t->dtype == NB_F32) v = ((const float *)nbi_data(t))[e];
        else v = ((const double *)nbi_data(t))[e];
        if (!isfinite(v)) {
            *val = v;
            return k;
        }
        if (contig) continue;
        for (int d = t->ndim - 1; d >= 0; d--) { /* odometer step over the strided view */
            off += t->strides[d];
            if (++idx[d] < t->shape[d]) break;
            off -= t->strides[d] * t->shape[d];
            idx[d] = 0;
        }
    }
    return -1;
}

/* "[2, 3], [3]" for the shapes of inputs ("none" for an absent one). */
static void shapes_str(nb_tensor *const *inputs, int n, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < size; i++) {
        char s[128];
        const char *txt = inputs[i] ? nb_shape_str(inputs[i]->ndim, inputs[i]->shape, s, sizeof s) : "none";
        int w = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", txt);
        if (w < 0) break;
        len += (size_t)w;
    }
}

static const char *ordinal_suffix(int k) {
    if (k % 100 >= 11 && k % 100 <= 13) return "th";
    return k % 10 == 1 ? "st" : k % 10 == 2 ? "nd" : k % 10 == 3 ? "rd" : "th";
}

nb_status nbi_check_forward_output(const nb_tensor *out, const char *name, nb_tensor *const *inputs, int n) {
    double v;
    int64_t at = first_nonfinite(out, &v);
    if (at < 0) return NB_OK;
    char os[128], is[512];
    shapes_str(inputs, n, is, sizeof is);
    return nbi_error(NB_ERR_ANOMALY, "detect_anomaly: %s produced %s in forward at index %lld, value %g (output %s, inputs %s)",
                     name, isnan(v) ? "NaN" : "Inf", (long long)at, v, nb_shape_str(out->ndim, out->shape, os, sizeof os),
                     is);
}

/* Backward check of the gradient a node returned for its input i (gout:
 * the gradient of its output, or NULL for a node with several). */
static nb_status check_backward(const nbi_node *node, int i, const nb_tensor *gout, const nb_tensor *g) {
    double v;
    int64_t at = first_nonfinite(g, &v);
    if (at < 0) return NB_OK;
    char gs[128], os[160], is[512];
    shapes_str(node->inputs, node->ninputs, is, sizeof is);
    os[0] = '\0';
    if (gout) {
        char o[128];
        snprintf(os, sizeof os, "output %s, ", nb_shape_str(gout->ndim, gout->shape, o, sizeof o));
    }
    return nbi_error(NB_ERR_ANOMALY,
                     "detect_anomaly: function '%s' returned %s in its %d%s gradient in backward at index %lld, value %g "
                     "(gradient %s, %sinputs %s)",
                     nbi_node_name(node), isnan(v) ? "NaN" : "Inf", i + 1, ordinal_suffix(i + 1), (long long)at, v,
                     nb_shape_str(g->ndim, g->shape, gs, sizeof gs), os, is);
}

bool nbi_in_backward(void) { return in_backward > 0; }

void nb_no_grad_begin(void) { no_grad_depth++; }
void nb_no_grad_end(void) {
    if (no_grad_depth > 0) no_grad_depth--;
}
bool nb_grad_enabled(void) { return no_grad_depth == 0; }

bool nbi_should_record(nb_tensor *const *inputs, int n) {
    if (no_grad_depth > 0) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

static void free_ctx(nbi_node *node) {
    if (node->ctx) {
        if (node->op->free_ctx) node->op->free_ctx(node->ctx);
        else free(node->ctx);
        node->ctx = NULL;
    }
}

/* Free what the node saved for backward: its context, saved tensors and inputs. */
static void node_release_saved(nbi_node *node) {
    if (node->released) return;
    node->released = true;
    free_ctx(node);
    for (int i = 0; i < node->nsaved; i++) {
        nbi_release(node->saved[i]);
        node->saved[i] = NULL;
    }
    for (int i = 0; i < node->ninputs; i++) {
        nbi_release(node->inputs[i]);
        node->inputs[i] = NULL;
    }
}

/* A tensor's reference to its node is gone (tensor.c): the node dies with
 * the last of its outputs. */
void nbi_graph_release(nbi_node *node) {
    if (--node->refcount > 0) return;
    node_release_saved(node);
    nbi_hooks_free(node->hooks);
    for (int k = 0; k < node->noutputs; k++) nbi_release(node->bgrads[k]);
    if (node->bgrads != &node->bgrad1) free(node->bgrads);
    free(node->name);
    free(node);
}

nb_status nbi_record(nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n, void *ctx) {
    return nbi_record_outputs(&out, 1, op, inputs, n, ctx, NULL);
}

nb_status nbi_record_outputs(nb_tensor *const *outs, int nouts, const nbi_op *op, nb_tensor *const *inputs, int n,
                             void *ctx, const char *name) {
    const char *shown = name ? name : op->name;
    if (nouts < 1 || nouts > NBI_MAX_OUTPUTS || n < 0 || n > NBI_MAX_INPUTS) {
        nbi_node tmp = {.op = op, .ctx = ctx};
        free_ctx(&tmp);
        return nbi_error(NB_ERR_ARG, "%s: a node takes at most %d inputs and 1 to %d outputs, not %d and %d", shown,
                         NBI_MAX_INPUTS, NBI_MAX_OUTPUTS, n, nouts);
    }
    nbi_node *node = nbi_alloc_should_fail() ? NULL : calloc(1, sizeof *node);
    nb_tensor **slots = NULL;
    char *nm = NULL;
    if (node) slots = nouts == 1 ? &node->bgrad1 : nbi_alloc_should_fail() ? NULL : calloc((size_t)nouts, sizeof *slots);
    if (slots && name) {
        nm = nbi_alloc_should_fail() ? NULL : malloc(strlen(name) + 1);
        if (nm) strcpy(nm, name);
    }
    if (!node || !slots || (name && !nm)) {
        if (node && slots != &node->bgrad1) free(slots);
        free(node);
        nbi_node tmp = {.op = op, .ctx = ctx};
        free_ctx(&tmp);
        return nbi_error(NB_ERR_NOMEM, "%s: out of memory recording the autograd node", shown);
    }
    node->op = op;
    node->ninputs = n;
    node->ctx = ctx;
    node->out = nouts == 1 ? outs[0] : NULL;
    node->noutputs = nouts;
    node->bgrads = slots;
    node->name = nm;
    for (int i = 0; i < n; i++) {
        node->inputs[i] = nbi_retain(inputs[i]);
        node->needs_grad[i] = inputs[i] && inputs[i]->requires_grad;
        node->in_dtype[i] = inputs[i] ? inputs[i]->dtype : NB_F32;
    }
    for (int k = 0; k < nouts; k++) {
        if (!outs[k]) continue;
        outs[k]->grad_fn = node;
        outs[k]->output_nr = k;
        outs[k]->requires_grad = true;
        node->refcount++;
    }
    if (node->refcount == 0) { /* no differentiable output to hang it on */
        node->refcount = 1;
        nbi_graph_release(node);
    }
    return NB_OK;
}

/* nbi_finish and nbi_finish_op: check out (anomaly mode), record it when
 * autograd needs it (taking over ctx and the saved tensors), hand it out. */
static nb_tensor *finish(nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n, void *ctx,
                         nb_tensor *const *saved, int nsaved) {
    if (out && !in_backward && nb_detect_anomaly_enabled() && nbi_check_forward_output(out, op->name, inputs, n) != NB_OK) {
        nbi_release(out);
        out = NULL;
    }
    if (out && nbi_should_record(inputs, n)) {
        if (nbi_record(out, op, inputs, n, ctx) == NB_OK) { /* nbi_record frees ctx when it fails */
            for (int i = 0; i < nsaved; i++) out->grad_fn->saved[i] = saved[i];
            out->grad_fn->nsaved = nsaved;
            return nbi_give(out);
        }
        nbi_release(out);
        out = NULL;
    } else {
        nbi_node tmp = {.op = op, .ctx = ctx};
        free_ctx(&tmp);
    }
    for (int i = 0; i < nsaved; i++) nbi_release(saved[i]);
    return nbi_give(out);
}

nb_tensor *nbi_finish(nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n, void *ctx) {
    return finish(out, op, inputs, n, ctx, NULL, 0);
}

nb_tensor *nbi_finish_op(nb_tensor *out, const nbi_op *op, const nb_tensor *const *inputs, int n,
                         nb_tensor *const *saved, int nsaved, const void *ctx, size_t ctx_size) {
    nb_tensor *const *in = (nb_tensor *const *)inputs; /* the node retains them */
    void *copy = NULL;
    if (nsaved > NBI_MAX_SAVED) { /* a library bug, not a user's: say so rather than overflow */
        nbi_error(NB_ERR_STATE, "%s: %d saved tensors, more than NBI_MAX_SAVED (%d)", op->name, nsaved, NBI_MAX_SAVED);
        for (int i = 0; i < nsaved; i++) nbi_release(saved[i]);
        nbi_release(out);
        return NULL;
    }
    if (out && ctx_size > 0 && nbi_should_record(in, n)) { /* the copy is made only for a node */
        copy = nbi_alloc_should_fail() ? NULL : malloc(ctx_size); /* tests can force failures */
        if (!copy) {
            nbi_error(NB_ERR_NOMEM, "%s: out of memory", op->name);
            nbi_release(out);
            out = NULL;
        } else {
            memcpy(copy, ctx, ctx_size);
        }
    }
    return finish(out, op, in, n, copy, saved, nsaved);
}

nb_status nbi_alloc_grads(const nbi_node *node, nb_tensor **gin) {
    for (int i = 0; i < node->ninputs; i++) {
        const nb_tensor *t = node->inputs[i];
        if (!nbi_node_needs_grad(node, i)) continue;
        if (!(gin[i] = nbi_empty(t->dtype, t->ndim, t->shape))) {
            for (int k = 0; k < i; k++) {
                nbi_release(gin[k]);
                gin[k] = NULL;
            }
            return nb_last_status();
        }
    }
    return NB_OK;
}

/* ---- leaf API ---- */
nb_status nb_requires_grad_(nb_tensor *t, bool requires_grad) {
    if (!nbi_check_tensor("requires_grad_", "t", t)) return nb_last_status();
    if (t->dtype == NB_I64 && requires_grad)
        return nbi_error(NB_ERR_DTYPE, "requires_grad_: only float32 and float64 tensors can require gradients, not int64");
    if (t->grad_fn && !requires_grad)
        return nbi_error(NB_ERR_STATE, "requires_grad_: you can only change requires_grad flags of leaf variables");
    t->requires_grad = requires_grad || t->grad_fn;
    return NB_OK;
}
bool nb_tensor_requires_grad(const nb_tensor *t) { return t && t->requires_grad; }
bool nb_tensor_is_leaf(const nb_tensor *t) { return t && !t->grad_fn; }
nb_tensor *nb_tensor_grad(const nb_tensor *t) { return t ? t->grad : NULL; }
const char *nb_tensor_grad_fn_name(const nb_tensor *t) { return t && t->grad_fn ? nbi_node_name(t->grad_fn) : NULL; }
void nb_zero_grad(nb_tensor *t) {
    if (!t) return;
    nbi_release(t->grad);
    t->grad = NULL;
}

/* ---- gradient accumulation ---- */
/* *acc += g, where *acc is a library-owned reference (or NULL) and g is a
 * library-owned reference that this call consumes. Adds in place only when
 * nothing else can see *acc's memory. */
static nb_status accumulate(nb_tensor **acc, nb_tensor *g) {
    if (!*acc) {
        if (g->refcount == 1 && g->storage->refcount == 1 && nbi_is_contiguous(g)) {
            *acc = g;
            return NB_OK;
        }
        nb_tensor *c = nbi_empty_like(g);
        if (!c) {
            nbi_release(g);
            return nb_last_status();
        }
        nb_tensor_copy_(c, g);
        nbi_release(g);
        *acc = c;
        return NB_OK;
    }
    nb_tensor *a = *acc;
    if (!(a->refcount == 1 && a->storage->refcount == 1 && nbi_is_contiguous(a))) {
        nb_tensor *c = nbi_empty_like(a);
        if (!c) {
            nbi_release(g);
            return nb_last_status();
        }
        nb_tensor_copy_(c, a);
        nbi_release(a);
        *acc = a = c;
    }
    nb_tensor *gc = g;
    if (!nbi_is_contiguous(g)) {
        gc = nbi_own(nb_contiguous(g));
        nbi_release(g);
        if (!gc) return nb_last_status();
    }
    int64_t n = a->numel;
    NBI_DISPATCH_FLOAT(a->dtype, {
        T *pa = nbi_data(a);
        const T *pg = nbi_data(gc);
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t i = 0; i < n; i++) pa[i] += pg[i];
    });
    nbi_release(gc);
    return NB_OK;
}

/* ---- the backward walk ---- */
/* One thing the walk visits: a node, or a leaf that requires grad. */
typedef struct item {
    nbi_node *node;
    nb_tensor *leaf;
} item;
typedef struct { item *v; int64_t n, cap; } item_list;

static bool items_push(item_list *l, item it) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 64;
        item *v = nbi_alloc_should_fail() ? NULL : realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = it;
    return true;
}

/* What a walk does with gradients: nb_backward adds them to leaves' .grad;
 * nb_autograd_grad (capture) takes those of its targets and nothing else. */
typedef struct walk {
    const char *op;               /* "backward" or "autograd_grad", for messages */
    bool capture;
    nb_tensor *const *targets;
    int ntargets;
    nb_tensor **captured;         /* ntargets library references, NULL until reached */
    bool met_released;            /* a node whose saved state (and edges) an earlier backward freed */
} walk;

static bool is_target(const walk *w, const nb_tensor *t) {
    for (int j = 0; j < w->ntargets; j++)
        if (w->targets[j] == t) return true;
    return false;
}

/* Post-order of what roots reach (a tensor after everything it feeds... in
 * reverse: the walk goes from the end of the list to its start). */
static nb_status topo_sort(const walk *w, nb_tensor *const *roots, int nroots, item_list *order) {
    typedef struct { nbi_node *node; int next; } frame;
    frame *frames = NULL;
    int64_t nframes = 0, cap = 0;
    nb_status st = NB_OK;
    uint64_t e = ++epoch;
    #define PUSH(nd)                                                             \
        do {                                                                     \
            if (nframes == cap) {                                                \
                cap = cap ? cap * 2 : 64;                                        \
                frame *f_ = nbi_alloc_should_fail() ? NULL                       \
                            : realloc(frames, (size_t)cap * sizeof *f_);         \
                if (!f_) { st = NB_ERR_NOMEM; goto done; }                       \
                frames = f_;                                                     \
            }                                                                    \
            (nd)->visit_epoch = e;                                               \
            frames[nframes++] = (frame){(nd), 0};                                \
        } while (0)
    for (int r = 0; r < nroots; r++) {
        nb_tensor *root = roots[r];
        if (!root->grad_fn) {
            if (root->visit_epoch != e) {
                root->visit_epoch = e;
                if (!items_push(order, (item){NULL, root})) { st = NB_ERR_NOMEM; goto done; }
            }
            continue;
        }
        if (root->grad_fn->visit_epoch == e) continue;
        PUSH(root->grad_fn);
        while (nframes > 0) {
            frame *f = &frames[nframes - 1];
            nbi_node *node = f->node;
            if (f->next < node->ninputs) {
                int i = f->next++;
                nb_tensor *in = node->inputs[i]; /* NULL once released: checked if the node must run */
                if (!in || !node->needs_grad[i]) continue;
                if (in->grad_fn) {
                    if (in->grad_fn->visit_epoch != e) PUSH(in->grad_fn);
                } else if (in->requires_grad && in->visit_epoch != e) {
                    in->visit_epoch = e;
                    if (!items_push(order, (item){NULL, in})) { st = NB_ERR_NOMEM; goto done; }
                }
                continue;
            }
            if (!items_push(order, (item){node, NULL})) { st = NB_ERR_NOMEM; goto done; }
            nframes--;
        }
    }
    #undef PUSH
done:
    free(frames);
    if (st == NB_ERR_NOMEM) nbi_error(st, "%s: out of memory sorting the graph", w->op);
    return st;
}

/* Which nodes run (node->exec), and whether they can: a node that must run
 * has its saved tensors (not freed by an earlier backward) and inputs of
 * the dtypes it recorded. nb_backward runs every node; nb_autograd_grad those
 * from which a target can be reached. */
static nb_status plan(walk *w, const item_list *order) {
    for (int64_t k = 0; k < order->n; k++) { /* post-order: a node's inputs come first */
        nbi_node *node = order->v[k].node;
        if (!node) continue;
        w->met_released = w->met_released || node->released;
        node->exec = !w->capture;
        for (int i = 0; i < node->ninputs && !node->exec; i++) {
            nb_tensor *in = node->inputs[i];
            if (in && node->needs_grad[i] && (is_target(w, in) || (in->grad_fn && in->grad_fn->exec))) node->exec = true;
        }
        if (!node->exec) continue;
        if (node->released)
            return nbi_error(NB_ERR_STATE,
                             "%s: trying to backward through the graph a second time (the saved tensors of '%s' were "
                             "freed by the first backward); pass retain_graph=true to the first nb_backward_ex",
                             w->op, nbi_node_name(node));
        for (int i = 0; i < node->ninputs; i++) {
            const nb_tensor *in = node->inputs[i];
            if (in && in->dtype != node->in_dtype[i])
                return nbi_error(NB_ERR_STATE,
                                 "%s: input %d of '%s' was converted from %s to %s after the graph was recorded "
                                 "(nb_module_to_dtype?); run the forward again",
                                 w->op, i, nbi_node_name(node), nb_dtype_name(node->in_dtype[i]), nb_dtype_name(in->dtype));
        }
    }
    return NB_OK;
}

/* Add g (a library reference, consumed) to what input `in` of a node receives. */
static nb_status deliver(const walk *w, nb_tensor *in, nb_tensor *g) {
    if (in->grad_fn) {
        if (!(in->grad_fn->exec || (w->capture && is_target(w, in)))) { /* no one will read it */
            nbi_release(g);
            return NB_OK;
        }
        return accumulate(&in->grad_fn->bgrads[in->output_nr], g);
    }
    if (!in->requires_grad || (w->capture && !is_target(w, in))) {
        nbi_release(g);
        return NB_OK;
    }
    return accumulate(&in->bgrad, g);
}

/* Capture mode: the targets that are t get t's gradient g (retained). */
static void capture(const walk *w, const nb_tensor *t, nb_tensor *g) {
    for (int j = 0; j < w->ntargets; j++)
        if (w->targets[j] == t && !w->captured[j]) w->captured[j] = nbi_retain(g);
}

/* Run one node: its outputs' hooks, its backward, and the delivery of what
 * that returns. Its gradient slots are emptied. */
static nb_status run_node(const walk *w, nbi_node *node) {
    nb_status st = NB_OK;
    bool any = false;
    for (int k = 0; k < node->noutputs; k++) any = any || node->bgrads[k];
    if (!any) return NB_OK; /* nothing arrived: every gradient it would give is zero */
    if (w->capture)         /* targets' gradients before their hooks, as PyTorch 1.13 takes them */
        for (int j = 0; j < w->ntargets; j++)
            if (w->targets[j]->grad_fn == node && node->bgrads[w->targets[j]->output_nr])
                capture(w, w->targets[j], node->bgrads[w->targets[j]->output_nr]);
    if (!node->exec) return NB_OK;
    for (int k = 0; k < node->noutputs && st == NB_OK && node->hooks; k++) {
        if (!node->bgrads[k]) continue;
        char what[96];
        snprintf(what, sizeof what, "output %d of '%s'", k, nbi_node_name(node));
        st = nbi_hooks_run(node->hooks, k, &node->bgrads[k], what);
    }
    if (st != NB_OK) return st;
    nb_tensor *gin[NBI_MAX_INPUTS] = {0};
    nb_tensor *gout = node->noutputs == 1 ? node->bgrads[0] : NULL;
    st = node->op->backward(node, node->bgrads[0], gin);
    for (int i = 0; nb_detect_anomaly_enabled() && st == NB_OK && i < node->ninputs; i++)
        if (gin[i] && node->needs_grad[i]) st = check_backward(node, i, gout, gin[i]);
    for (int k = 0; k < node->noutputs; k++) {
        nbi_release(node->bgrads[k]);
        node->bgrads[k] = NULL;
    }
    for (int i = 0; i < node->ninputs; i++) {
        if (!gin[i]) continue;
        nbi_own(gin[i]); /* library references already; a caller's one is taken over */
        if (st != NB_OK || !node->needs_grad[i] || !node->inputs[i]) {
            nbi_release(gin[i]);
            continue;
        }
        nb_status s2 = deliver(w, node->inputs[i], gin[i]);
        if (s2 != NB_OK) st = s2;
    }
    if (st != NB_OK && nb_last_status() == NB_OK) nbi_error(st, "%s: %s's backward failed", w->op, nbi_node_name(node));
    return st;
}

/* A leaf's turn: all of this pass's contributions are in its bgrad. */
static nb_status run_leaf(const walk *w, nb_tensor *leaf) {
    nb_tensor *g = leaf->bgrad;
    leaf->bgrad = NULL;
    if (!g) return NB_OK;
    if (w->capture) { /* leaves' hooks belong to .grad's accumulation, which autograd.grad skips */
        capture(w, leaf, g);
        nbi_release(g);
        return NB_OK;
    }
    if (leaf->hooks) {
        char what[160], s[128];
        snprintf(what, sizeof what, "a leaf tensor of shape %s", nb_shape_str(leaf->ndim, leaf->shape, s, sizeof s));
        nb_status st = nbi_hooks_run(leaf->hooks, leaf->output_nr, &g, what);
        if (st != NB_OK) {
            nbi_release(g);
            return st;
        }
    }
    return accumulate(&leaf->grad, g);
}

/* The walk from roots[0 .. n-1], whose gradients seeds[k] (library
 * references) it consumes. */
static nb_status run_walk(walk *w, nb_tensor *const *roots, nb_tensor **seeds, int n, bool retain_graph) {
    item_list order = {0};
    nb_status st = topo_sort(w, roots, n, &order);
    if (st == NB_OK) st = plan(w, &order);
    for (int r = 0; r < n; r++) {
        nb_tensor *root = roots[r];
        if (st != NB_OK) {
            nbi_release(seeds[r]);
        } else if (root->grad_fn && !root->grad_fn->bgrads[root->output_nr]) {
            /* taken as it is, maybe sharing the caller's memory (seed):
             * backward functions only read their incoming gradients, and
             * accumulate copies a shared one before adding to it */
            root->grad_fn->bgrads[root->output_nr] = seeds[r];
        } else if (root->grad_fn) {
            st = accumulate(&root->grad_fn->bgrads[root->output_nr], seeds[r]);
        } else {
            st = accumulate(&root->bgrad, seeds[r]);
        }
        seeds[r] = NULL;
    }
    nb_no_grad_begin();
    in_backward++;
    for (int64_t k = order.n - 1; k >= 0 && st == NB_OK; k--)
        st = order.v[k].node ? run_node(w, order.v[k].node) : run_leaf(w, order.v[k].leaf);
    in_backward--;
    nb_no_grad_end();
    for (int64_t k = 0; k < order.n; k++) { /* what an error left behind */
        nbi_node *node = order.v[k].node;
        if (!node) {
            nbi_release(order.v[k].leaf->bgrad);
            order.v[k].leaf->bgrad = NULL;
            continue;
        }
        for (int j = 0; j < node->noutputs; j++) {
            nbi_release(node->bgrads[j]);
            node->bgrads[j] = NULL;
        }
        if ((!retain_graph || st != NB_OK) && node->exec) node_release_saved(node);
    }
    free(order.v);
    return st;
}

/* The gradient that starts a walk at root: grad_output, or ones for a
 * one-element root when grad_output is NULL. Library reference, or NULL.
 * With share, a contiguous grad_output itself (PyTorch's backward does not
 * copy it either: a copy is one more pass over an activation-sized tensor);
 * else a copy (autograd.grad may hand the root's gradient back to the caller). */
static nb_tensor *seed(const char *op, int k, const nb_tensor *root, const nb_tensor *grad_output, bool share) {
    char a[128], b[128];
    if (!grad_output) {
        if (root->numel != 1) {
            nbi_error(NB_ERR_SHAPE, "%s: grad can be implicitly created only for scalar outputs (output %d has %lld elements)",
                      op, k, (long long)root->numel);
            return NULL;
        }
        return nbi_own(nb_ones_like(root));
    }
    if (grad_output->ndim != root->ndim ||
        memcmp(grad_output->shape, root->shape, sizeof(int64_t) * (size_t)root->ndim) != 0) {
        nbi_error(NB_ERR_SHAPE, "%s: mismatch in shape: grad_output[%d] has a shape of %s and output[%d] has a shape of %s",
                  op, k, nb_shape_str(grad_output->ndim, grad_output->shape, a, sizeof a), k,
                  nb_shape_str(root->ndim, root->shape, b, sizeof b));
        return NULL;
    }
    if (grad_output->dtype != root->dtype) {
        nbi_error(NB_ERR_DTYPE, "%s: expected grad_output[%d] of dtype %s, but got %s", op, k, nb_dtype_name(root->dtype),
                  nb_dtype_name(grad_output->dtype));
        return NULL;
    }
    nb_tensor *g;
    if (share && grad_output->storage && nbi_is_contiguous(grad_output)) {
        /* a view of it, not the caller's tensor itself: a backward may hand
         * its incoming gradient on as an input's (run_node takes those over
         * as library references), and the shared storage makes accumulate
         * copy before adding (read only otherwise: see run_walk) */
        g = nbi_make_view(grad_output, grad_output->ndim, grad_output->shape, grad_output->strides,
                          grad_output->offset);
    } else {
        in_backward++; /* a copy, not an op's output: checked below as a root gradient */
        nb_no_grad_begin();
        g = nbi_own(nb_clone(grad_output));
        nb_no_grad_end();
        in_backward--;
    }
    double v;
    int64_t at;
    if (g && nb_detect_anomaly_enabled() && (at = first_nonfinite(g, &v)) >= 0) {
        nbi_error(NB_ERR_ANOMALY, "detect_anomaly: the gradient passed to %s has %s at index %lld, value %g (shape %s)", op,
                  isnan(v) ? "NaN" : "Inf", (long long)at, v, nb_shape_str(root->ndim, root->shape, a, sizeof a));
        nbi_release(g);
        return NULL;
    }
    return g;
}

nb_status nb_backward(nb_tensor *root) { return nb_backward_ex(root, NULL, false); }

nb_status nb_backward_ex(nb_tensor *root, const nb_tensor *grad_output, bool retain_graph) {
    if (!nbi_check_tensor("backward", "root", root)) return nb_last_status();
    if (!root->requires_grad)
        return nbi_error(NB_ERR_STATE, "backward: element 0 of tensors does not require grad and does not have a grad_fn");
    nb_tensor *g0 = seed("backward", 0, root, grad_output, true);
    if (!g0) return nb_last_status();
    walk w = {.op = "backward"};
    return run_walk(&w, &root, &g0, 1, retain_graph);
}

nb_status nb_autograd_grad(nb_tensor *const *outputs, int noutputs, const nb_tensor *const *grad_outputs,
                           nb_tensor *const *inputs, int ninputs, nb_tensor **grads, const nb_grad_options *opts) {
    const char *op = "autograd_grad";
    nb_grad_options o = opts ? *opts : (nb_grad_options){0};
    if (!grads) return nbi_error(NB_ERR_ARG, "%s: grads (the output array) is NULL", op);
    for (int i = 0; i < ninputs; i++) grads[i] = NULL;
    if (!outputs || noutputs < 1) return nbi_error(NB_ERR_ARG, "%s: expected at least one output, but got %d", op, outputs ? noutputs : 0);
    if (!inputs || ninputs < 1) return nbi_error(NB_ERR_ARG, "%s: expected at least one input, but got %d", op, inputs ? ninputs : 0);
    if (o.create_graph)
        return nbi_error(NB_ERR_ARG,
                         "%s: create_graph=true is not supported: nabla does not record the backward pass (backward "
                         "functions run with grad mode off), so there is no double backward", op);
    for (int k = 0; k < noutputs; k++) {
        char arg[32];
        snprintf(arg, sizeof arg, "outputs[%d]", k);
        if (!nbi_check_tensor(op, arg, outputs[k])) return nb_last_status();
        if (!outputs[k]->requires_grad)
            return nbi_error(NB_ERR_STATE, "%s: element %d of tensors does not require grad and does not have a grad_fn", op, k);
    }
    for (int i = 0; i < ninputs; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "inputs[%d]", i);
        if (!nbi_check_tensor(op, arg, inputs[i])) return nb_last_status();
        if (!inputs[i]->requires_grad)
            return nbi_error(NB_ERR_STATE, "%s: One of the differentiated Tensors does not require grad (inputs[%d])", op, i);
    }
    nb_tensor **seeds = nbi_alloc_should_fail() ? NULL : calloc((size_t)noutputs, sizeof *seeds);
    nb_tensor **captured = seeds && !nbi_alloc_should_fail() ? calloc((size_t)ninputs, sizeof *captured) : NULL;
    if (!seeds || !captured) {
        free(seeds);
        return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    }
    nb_status st = NB_OK;
    bool released_seen = false;
    for (int k = 0; k < noutputs && st == NB_OK; k++)
        if (!(seeds[k] = seed(op, k, outputs[k], grad_outputs ? grad_outputs[k] : NULL, false))) st = nb_last_status();
    if (st == NB_OK) {
        walk w = {.op = op, .capture = true, .targets = inputs, .ntargets = ninputs, .captured = captured};
        st = run_walk(&w, outputs, seeds, noutputs, o.retain_graph);
        released_seen = w.met_released;
    }
    for (int k = 0; k < noutputs; k++) nbi_release(seeds[k]); /* those a failure left */
    for (int i = 0; i < ninputs && st == NB_OK; i++)
        if (!captured[i] && released_seen)
            /* a freed node no longer knows its inputs: the path to this one may have gone through it */
            st = nbi_error(NB_ERR_STATE,
                           "%s: trying to backward through the graph a second time (or inputs[%d] is not used): "
                           "its saved tensors were freed by an earlier backward; pass retain_graph=true to it", op, i);
        else if (!captured[i] && !o.allow_unused)
            st = nbi_error(NB_ERR_STATE,
                           "%s: One of the differentiated Tensors appears to not have been used in the graph "
                           "(inputs[%d]). Set allow_unused=True if this is the desired behavior.", op, i);
    /* New tensor objects over the gradients (a captured one may be another's,
     * or a grad_output's copy), handed out only once all exist. */
    for (int i = 0; i < ninputs && st == NB_OK; i++) {
        nb_tensor *c = captured[i];
        if (c && !(grads[i] = nbi_make_view(c, c->ndim, c->shape, c->strides, c->offset))) st = nb_last_status();
    }
    for (int i = 0; i < ninputs; i++) {
        nbi_release(captured[i]);
        if (st != NB_OK) {
            nbi_release(grads[i]);
            grads[i] = NULL;
        }
        grads[i] = nbi_give(grads[i]);
    }
    free(captured);
    free(seeds);
    return st;
}
