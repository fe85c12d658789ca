/* The autograd engine: recording nodes, and the reverse walk of nb_backward.
 *
 * Each non-leaf tensor owns the node of the op that made it; the node holds
 * references to the op's inputs, so a graph lives exactly as long as the
 * tensors at its outputs. Backward sorts the graph topologically (iterative
 * DFS, so deep graphs do not overflow the stack), then visits nodes from the
 * root down, handing each op the gradient of its output and adding what it
 * returns into its inputs' gradients.
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

/* Forward check of op's output (anomaly mode on): NB_OK or an error naming the op. */
static nb_status check_forward(const nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n) {
    double v;
    int64_t at = first_nonfinite(out, &v);
    if (at < 0) return NB_OK;
    char os[128], is[512];
    shapes_str(inputs, n, is, sizeof is);
    return nbi_error(NB_ERR_ANOMALY, "detect_anomaly: %s produced %s in forward at index %lld, value %g (output %s, inputs %s)",
                     op->name, isnan(v) ? "NaN" : "Inf", (long long)at, v, nb_shape_str(out->ndim, out->shape, os, sizeof os),
                     is);
}

/* Backward check of the gradient an op returned for its input i. */
static nb_status check_backward(const nbi_node *node, int i, const nb_tensor *gout, const nb_tensor *g) {
    double v;
    int64_t at = first_nonfinite(g, &v);
    if (at < 0) return NB_OK;
    char gs[128], os[128], is[512];
    shapes_str(node->inputs, node->ninputs, is, sizeof is);
    return nbi_error(NB_ERR_ANOMALY,
                     "detect_anomaly: function '%s' returned %s in its %d%s gradient in backward at index %lld, value %g "
                     "(gradient %s, output %s, inputs %s)",
                     node->op->name, isnan(v) ? "NaN" : "Inf", i + 1, ordinal_suffix(i + 1), (long long)at, v,
                     nb_shape_str(g->ndim, g->shape, gs, sizeof gs), nb_shape_str(gout->ndim, gout->shape, os, sizeof os), is);
}

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

void nbi_graph_release(nbi_node *node) {
    node_release_saved(node);
    free(node);
}

nb_status nbi_record(nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n, void *ctx) {
    nbi_node *node = n <= NBI_MAX_INPUTS && !nbi_alloc_should_fail() ? calloc(1, sizeof *node) : NULL;
    if (!node) {
        nbi_node tmp = {.op = op, .ctx = ctx};
        free_ctx(&tmp);
        return nbi_error(NB_ERR_NOMEM, "%s: out of memory recording the autograd node", op->name);
    }
    node->op = op;
    node->ninputs = n;
    node->ctx = ctx;
    node->out = out;
    for (int i = 0; i < n; i++) {
        node->inputs[i] = nbi_retain(inputs[i]);
        node->needs_grad[i] = inputs[i] && inputs[i]->requires_grad;
    }
    out->grad_fn = node;
    out->requires_grad = true;
    return NB_OK;
}

/* nbi_finish and nbi_finish_op: check out (anomaly mode), record it when
 * autograd needs it (taking over ctx and the saved tensors), hand it out. */
static nb_tensor *finish(nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n, void *ctx,
                         nb_tensor *const *saved, int nsaved) {
    if (out && !in_backward && nb_detect_anomaly_enabled() && check_forward(out, op, inputs, n) != NB_OK) {
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
const char *nb_tensor_grad_fn_name(const nb_tensor *t) { return t && t->grad_fn ? t->grad_fn->op->name : NULL; }
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

/* ---- backward ---- */
typedef struct { nb_tensor **v; int64_t n, cap; } tensor_list;

static bool list_push(tensor_list *l, nb_tensor *t) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 64;
        nb_tensor **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = t;
    return true;
}

/* Post-order of the non-leaf tensors reachable from root (root last). */
static nb_status topo_sort(nb_tensor *root, tensor_list *order) {
    typedef struct { nb_tensor *t; int next; } frame;
    frame *frames = NULL;
    int64_t nframes = 0, cap = 0;
    nb_status st = NB_OK;
    uint64_t e = ++epoch;
    #define PUSH(tt)                                                             \
        do {                                                                     \
            if (nframes == cap) {                                                \
                cap = cap ? cap * 2 : 64;                                        \
                frame *f_ = realloc(frames, (size_t)cap * sizeof *f_);           \
                if (!f_) { st = NB_ERR_NOMEM; goto done; }                       \
                frames = f_;                                                     \
            }                                                                    \
            (tt)->visit_epoch = e;                                               \
            frames[nframes++] = (frame){(tt), 0};                                \
        } while (0)
    PUSH(root);
    while (nframes > 0) {
        frame *f = &frames[nframes - 1];
        nbi_node *node = f->t->grad_fn;
        if (node->released) {
            st = nbi_error(NB_ERR_STATE,
                           "backward: trying to backward through the graph a second time (its saved tensors were "
                           "freed by the first backward); pass retain_graph=true to the first nb_backward_ex");
            goto done;
        }
        if (f->next < node->ninputs) {
            nb_tensor *in = node->inputs[f->next++];
            if (in && in->grad_fn && in->requires_grad && in->visit_epoch != e) PUSH(in);
            continue;
        }
        if (!list_push(order, f->t)) {
            st = NB_ERR_NOMEM;
            goto done;
        }
        nframes--;
    }
    #undef PUSH
done:
    free(frames);
    if (st == NB_ERR_NOMEM) nbi_error(st, "backward: out of memory sorting the graph");
    return st;
}

nb_status nb_backward(nb_tensor *root) { return nb_backward_ex(root, NULL, false); }

nb_status nb_backward_ex(nb_tensor *root, const nb_tensor *grad_output, bool retain_graph) {
    if (!nbi_check_tensor("backward", "root", root)) return nb_last_status();
    if (!root->requires_grad)
        return nbi_error(NB_ERR_STATE, "backward: element 0 of tensors does not require grad and does not have a grad_fn");
    nb_tensor *g0;
    if (!grad_output) {
        if (root->numel != 1)
            return nbi_error(NB_ERR_SHAPE, "backward: grad can be implicitly created only for scalar outputs (got %lld elements)",
                             (long long)root->numel);
        g0 = nbi_own(nb_ones_like(root));
    } else {
        char a[128], b[128];
        if (grad_output->ndim != root->ndim ||
            memcmp(grad_output->shape, root->shape, sizeof(int64_t) * (size_t)root->ndim) != 0)
            return nbi_error(NB_ERR_SHAPE, "backward: mismatch in shape: grad_output has a shape of %s and output has a shape of %s",
                             nb_shape_str(grad_output->ndim, grad_output->shape, a, sizeof a),
                             nb_shape_str(root->ndim, root->shape, b, sizeof b));
        if (grad_output->dtype != root->dtype)
            return nbi_error(NB_ERR_DTYPE, "backward: expected grad_output of dtype %s, but got %s",
                             nb_dtype_name(root->dtype), nb_dtype_name(grad_output->dtype));
        in_backward++; /* a copy, not an op's output: checked below as the root gradient */
        g0 = nbi_own(nb_clone(grad_output));
        in_backward--;
        if (g0 && g0->grad_fn) { /* a clone of a grad-requiring tensor: drop its history */
            nb_tensor *d = nbi_own(nb_detach(g0));
            nbi_release(g0);
            g0 = d;
        }
    }
    if (!g0) return nb_last_status();
    double v;
    int64_t at;
    if (nb_detect_anomaly_enabled() && (at = first_nonfinite(g0, &v)) >= 0) {
        char gs[128];
        nbi_release(g0);
        return nbi_error(NB_ERR_ANOMALY, "detect_anomaly: the gradient passed to backward has %s at index %lld, value %g (shape %s)",
                         isnan(v) ? "NaN" : "Inf", (long long)at, v, nb_shape_str(root->ndim, root->shape, gs, sizeof gs));
    }
    if (!root->grad_fn) { /* backward on a leaf: its gradient is grad_output itself */
        return accumulate(&root->grad, g0);
    }

    tensor_list order = {0};
    nb_status st = topo_sort(root, &order);
    if (st != NB_OK) {
        nbi_release(g0);
        free(order.v);
        return st;
    }
    root->bgrad = g0;
    const bool anomaly = nb_detect_anomaly_enabled();
    nb_no_grad_begin();
    in_backward++;
    for (int64_t k = order.n - 1; k >= 0; k--) {
        nb_tensor *t = order.v[k];
        nb_tensor *g = t->bgrad;
        t->bgrad = NULL;
        if (!g || st != NB_OK) {
            nbi_release(g);
            continue;
        }
        nbi_node *node = t->grad_fn;
        nb_tensor *gin[NBI_MAX_INPUTS] = {0};
        st = node->op->backward(node, g, gin);
        for (int i = 0; anomaly && st == NB_OK && i < node->ninputs; i++)
            if (gin[i] && node->needs_grad[i]) st = check_backward(node, i, g, gin[i]);
        nbi_release(g);
        for (int i = 0; i < node->ninputs; i++) {
            if (!gin[i]) continue;
            nbi_own(gin[i]); /* library references already; a caller's one is taken over */
            nb_tensor *in = node->inputs[i];
            if (st != NB_OK || !node->needs_grad[i]) {
                nbi_release(gin[i]);
                continue;
            }
            nb_status s2 = accumulate(in->grad_fn ? &in->bgrad : &in->grad, gin[i]);
            if (s2 != NB_OK) st = s2;
        }
        if (st != NB_OK && nb_last_status() == NB_OK)
            nbi_error(st, "backward: %s's backward failed", node->op->name);
    }
    in_backward--;
    nb_no_grad_end();
    if (!retain_graph || st != NB_OK)
        for (int64_t k = 0; k < order.n; k++) node_release_saved(order.v[k]->grad_fn);
    free(order.v);
    return st;
}
