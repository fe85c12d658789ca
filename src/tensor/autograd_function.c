/* Custom autograd functions (nabla/autograd.h: nb_function), like
 * torch.autograd.Function: the user's forward runs with grad mode off, and
 * its outputs are recorded as one node whose backward is the user's. The
 * node's context keeps what forward saved (tensors, user data) until the
 * node's saved state is freed. The work here is PyTorch's bookkeeping around
 * the two callbacks: which outputs are differentiable, fresh tensor objects
 * for outputs that are not (an input returned as is), saved outputs that
 * must not keep themselves alive, zero gradients for outputs that got none,
 * and the checks and conversions of the gradients backward returns. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(NB_FUNCTION_MAX_INPUTS <= NBI_MAX_INPUTS && NB_FUNCTION_MAX_OUTPUTS <= NBI_MAX_OUTPUTS,
               "a function's node holds all its inputs and outputs");

typedef struct out_meta {
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
} out_meta;

struct nb_function_ctx {
    nb_function fn;                             /* a copy; fn.name is not used after apply */
    int ninputs, noutputs;
    bool needs_input_grad[NBI_MAX_INPUTS];
    bool in_forward;
    nb_tensor **saved;                          /* nsaved library references (NULL entries allowed) */
    int nsaved;
    void *data;
    void (*free_data)(void *data);
    const nb_tensor *non_diff[NBI_MAX_OUTPUTS]; /* marked during forward */
    int nnon_diff;
    out_meta out[NBI_MAX_OUTPUTS];              /* for the zero gradients of outputs that get none */
};

static void *alloc_or_fail(size_t n) { return nbi_alloc_should_fail() ? NULL : calloc(1, n); }

static void ctx_free(void *p) {
    nb_function_ctx *ctx = p;
    if (!ctx) return;
    for (int i = 0; i < ctx->nsaved; i++) nbi_release(ctx->saved[i]);
    free(ctx->saved);
    if (ctx->free_data) ctx->free_data(ctx->data);
    free(ctx);
}

/* ---- the context, from inside forward and backward ---- */

nb_status nb_function_save_for_backward(nb_function_ctx *ctx, nb_tensor *const *tensors, int n) {
    const char *op = "save_for_backward";
    if (!ctx) return nbi_error(NB_ERR_ARG, "%s: ctx is NULL", op);
    if (!ctx->in_forward) return nbi_error(NB_ERR_STATE, "%s: tensors can only be saved during forward", op);
    if (n < 0 || (n > 0 && !tensors)) return nbi_error(NB_ERR_ARG, "%s: expected an array of n >= 0 tensors, got n = %d%s", op, n, tensors ? "" : " and NULL");
    nb_tensor **saved = n ? alloc_or_fail((size_t)n * sizeof *saved) : NULL;
    if (n && !saved) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", op);
    for (int i = 0; i < n; i++) saved[i] = nbi_retain(tensors[i]);
    for (int i = 0; i < ctx->nsaved; i++) nbi_release(ctx->saved[i]);
    free(ctx->saved);
    ctx->saved = saved;
    ctx->nsaved = n;
    return NB_OK;
}

nb_tensor *nb_function_saved_tensor(const nb_function_ctx *ctx, int i) {
    if (!ctx) {
        nbi_error(NB_ERR_ARG, "saved_tensor: ctx is NULL");
        return NULL;
    }
    if (i < 0 || i >= ctx->nsaved) {
        nbi_error(NB_ERR_ARG, "saved_tensor: index %d is out of range for %d saved tensors", i, ctx->nsaved);
        return NULL;
    }
    return ctx->saved[i];
}

int nb_function_num_saved(const nb_function_ctx *ctx) { return ctx ? ctx->nsaved : -1; }

nb_status nb_function_set_data(nb_function_ctx *ctx, void *data, void (*free_data)(void *data)) {
    if (!ctx) return nbi_error(NB_ERR_ARG, "set_data: ctx is NULL");
    if (ctx->free_data && ctx->data != data) ctx->free_data(ctx->data);
    ctx->data = data;
    ctx->free_data = free_data;
    return NB_OK;
}

void *nb_function_data(const nb_function_ctx *ctx) { return ctx ? ctx->data : NULL; }

nb_status nb_function_mark_non_differentiable(nb_function_ctx *ctx, const nb_tensor *output) {
    const char *op = "mark_non_differentiable";
    if (!ctx) return nbi_error(NB_ERR_ARG, "%s: ctx is NULL", op);
    if (!nbi_check_tensor(op, "output", output)) return nb_last_status();
    if (!ctx->in_forward) return nbi_error(NB_ERR_STATE, "%s: outputs can only be marked during forward", op);
    for (int k = 0; k < ctx->nnon_diff; k++)
        if (ctx->non_diff[k] == output) return NB_OK;
    if (ctx->nnon_diff == ctx->noutputs)
        return nbi_error(NB_ERR_ARG, "%s: more tensors marked than the %d outputs", op, ctx->noutputs);
    ctx->non_diff[ctx->nnon_diff++] = output;
    return NB_OK;
}

bool nb_function_needs_input_grad(const nb_function_ctx *ctx, int i) {
    return ctx && i >= 0 && i < ctx->ninputs && ctx->needs_input_grad[i];
}

/* ---- backward ---- */

/* The gradient backward returned for input `in` (a library reference, taken
 * over) as the engine wants it: in's dtype, in's shape (summed down from a
 * shape in broadcasts to), no history. NULL with an error naming fn. */
static nb_tensor *conform(nb_tensor *g, const nb_tensor *in, int i, const char *fn) {
    if (g->dtype != in->dtype) {
        nb_tensor *c = nbi_own(nb_to_dtype(g, in->dtype));
        nbi_release(g);
        if (!(g = c)) return NULL;
    }
    bool same = g->ndim == in->ndim && memcmp(g->shape, in->shape, sizeof(int64_t) * (size_t)g->ndim) == 0;
    if (!same) {
        bool expandable = in->ndim <= g->ndim; /* in broadcasts to g's shape */
        for (int d = 0; d < in->ndim && expandable; d++) {
            int64_t a = in->shape[in->ndim - 1 - d], b = g->shape[g->ndim - 1 - d];
            expandable = a == b || a == 1;
        }
        if (!expandable) {
            char a[128], b[128];
            nbi_error(NB_ERR_SHAPE, "%s: backward returned an invalid gradient at index %d - got %s but expected shape "
                      "compatible with %s", fn, i, nb_shape_str(g->ndim, g->shape, a, sizeof a),
                      nb_shape_str(in->ndim, in->shape, b, sizeof b));
            nbi_release(g);
            return NULL;
        }
        nb_tensor *r = nbi_sum_to_shape(g, in->ndim, in->shape);
        nbi_release(g);
        if (!(g = r)) return NULL;
    }
    if (g->grad_fn) { /* a tensor with history made before backward: only its values are the gradient */
        nb_tensor *d = nbi_make_view(g, g->ndim, g->shape, g->strides, g->offset);
        nbi_release(g);
        g = d;
    }
    return g;
}

static nb_status function_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    (void)gout; /* the gradients of all outputs are in node->bgrads */
    nb_function_ctx *ctx = node->ctx;
    const char *name = nbi_node_name(node);
    nb_tensor *gouts[NBI_MAX_OUTPUTS] = {0};
    bool made[NBI_MAX_OUTPUTS] = {0};
    nb_status st = NB_OK;
    for (int k = 0; k < ctx->noutputs && st == NB_OK; k++) {
        gouts[k] = node->bgrads[k];
        if (gouts[k]) continue;
        /* PyTorch's materialize_grads: zeros for an output that got no gradient */
        gouts[k] = nbi_own(nb_zeros(ctx->out[k].dtype, ctx->out[k].ndim, ctx->out[k].shape));
        made[k] = true;
        if (!gouts[k]) st = nb_last_status();
    }
    nb_tensor *user[NBI_MAX_INPUTS] = {0};
    if (st == NB_OK) {
        st = ctx->fn.backward(ctx, gouts, ctx->noutputs, user, ctx->ninputs);
        if (st != NB_OK && nb_last_status() == NB_OK)
            nbi_error(st, "%s: backward failed (status %d) without an error message", name, (int)st);
    }
    for (int k = 0; k < ctx->noutputs; k++)
        if (made[k]) nbi_release(gouts[k]);
    for (int i = 0; i < ctx->ninputs; i++) {
        nb_tensor *g = nbi_own(user[i]);                      /* the user's reference, now ours */
        if (!g) continue;                                     /* None */
        if (st != NB_OK || !nbi_node_needs_grad(node, i)) { /* ignored, as PyTorch does */
            nbi_release(g);
            continue;
        }
        if (!(gin[i] = conform(g, node->inputs[i], i, name))) st = nb_last_status();
    }
    return st;
}

static const nbi_op function_op = {"function", function_backward, ctx_free};

/* ---- apply ---- */

/* True when out cannot carry this call's node itself: an input or an earlier
 * output returned as is, or a tensor with a history or a leaf requiring grad. */
static bool needs_fresh_object(const nb_tensor *out, nb_tensor *const *inputs, int ninputs, nb_tensor *const *outputs, int k) {
    if (out->grad_fn || out->requires_grad) return true;
    for (int i = 0; i < ninputs; i++)
        if (inputs[i] == out) return true;
    for (int j = 0; j < k; j++)
        if (outputs[j] == out) return true;
    return false;
}

/* A new tensor object over t's data (a library reference). */
static nb_tensor *fresh_view(const nb_tensor *t) { return nbi_make_view(t, t->ndim, t->shape, t->strides, t->offset); }

nb_status nb_function_apply(const nb_function *fn, nb_tensor *const *inputs, int ninputs, nb_tensor **outputs,
                            int noutputs, void *arg) {
    const char *op = "function_apply";
    if (!outputs) return nbi_error(NB_ERR_ARG, "%s: outputs (the array to fill) is NULL", op);
    if (noutputs < 1 || noutputs > NB_FUNCTION_MAX_OUTPUTS)
        return nbi_error(NB_ERR_ARG, "%s: expected 1 to %d outputs, but got %d", op, NB_FUNCTION_MAX_OUTPUTS, noutputs);
    for (int k = 0; k < noutputs; k++) outputs[k] = NULL;
    if (!fn) return nbi_error(NB_ERR_ARG, "%s: function is NULL", op);
    const char *name = fn->name ? fn->name : "Function";
    if (!fn->forward || !fn->backward) return nbi_error(NB_ERR_ARG, "%s: %s has no %s", op, name, fn->forward ? "backward" : "forward");
    if (ninputs < 0 || ninputs > NB_FUNCTION_MAX_INPUTS || (ninputs > 0 && !inputs))
        return nbi_error(NB_ERR_ARG, "%s: %s expected 0 to %d inputs in an array, but got %d%s", op, name,
                         NB_FUNCTION_MAX_INPUTS, ninputs, inputs ? "" : " and NULL");
    for (int i = 0; i < ninputs; i++) {
        char arg_name[32];
        snprintf(arg_name, sizeof arg_name, "inputs[%d]", i);
        if (!nbi_check_tensor(name, arg_name, inputs[i])) return nb_last_status();
    }
    nb_function_ctx *ctx = alloc_or_fail(sizeof *ctx);
    if (!ctx) return nbi_error(NB_ERR_NOMEM, "%s: out of memory", name);
    ctx->fn = *fn;
    ctx->ninputs = ninputs;
    ctx->noutputs = noutputs;
    for (int i = 0; i < ninputs; i++) ctx->needs_input_grad[i] = inputs[i]->requires_grad;

    ctx->in_forward = true;
    nb_no_grad_begin();
    nb_status st = fn->forward(ctx, inputs, ninputs, outputs, noutputs, arg);
    nb_no_grad_end();
    ctx->in_forward = false;
    for (int k = 0; k < noutputs; k++) outputs[k] = nbi_own(outputs[k]); /* ours until handed out at the end */
    if (st != NB_OK) {
        if (nb_last_status() == NB_OK) nbi_error(st, "%s: forward failed (status %d) without an error message", name, (int)st);
        goto fail;
    }
    for (int k = 0; k < noutputs; k++)
        if (!outputs[k]) {
            st = nbi_error(NB_ERR_STATE, "%s: forward returned NULL for output %d without an error", name, k);
            goto fail;
        }

    /* Differentiable outputs: float ones not marked (matched before any is replaced). */
    bool diff[NBI_MAX_OUTPUTS];
    for (int k = 0; k < noutputs; k++) diff[k] = outputs[k]->dtype != NB_I64;
    for (int m = 0; m < ctx->nnon_diff; m++) {
        bool found = false;
        for (int k = 0; k < noutputs; k++)
            if (outputs[k] == ctx->non_diff[m]) diff[k] = false, found = true;
        if (!found) {
            st = nbi_error(NB_ERR_ARG, "%s: mark_non_differentiable was given a tensor that forward did not return", name);
            goto fail;
        }
    }
    for (int k = 0; k < noutputs; k++) {
        if (!needs_fresh_object(outputs[k], inputs, ninputs, outputs, k)) continue;
        nb_tensor *v = fresh_view(outputs[k]);
        if (!v) {
            st = nb_last_status();
            goto fail;
        }
        nbi_release(outputs[k]);
        outputs[k] = v;
    }
    if (nb_detect_anomaly_enabled() && !nbi_in_backward())
        for (int k = 0; k < noutputs; k++)
            if ((st = nbi_check_forward_output(outputs[k], name, inputs, ninputs)) != NB_OK) goto fail;

    bool any_diff = false;
    for (int k = 0; k < noutputs; k++) any_diff = any_diff || diff[k];
    if (!any_diff || !nbi_should_record(inputs, ninputs)) { /* nothing to record: forward's savings go now */
        ctx_free(ctx);
        for (int k = 0; k < noutputs; k++) outputs[k] = nbi_give(outputs[k]);
        return NB_OK;
    }
    for (int k = 0; k < noutputs; k++) {
        ctx->out[k].dtype = outputs[k]->dtype;
        ctx->out[k].ndim = outputs[k]->ndim;
        memcpy(ctx->out[k].shape, outputs[k]->shape, sizeof(int64_t) * (size_t)outputs[k]->ndim);
    }
    /* An output saved for backward would own the node that owns it: keep a
     * view of its data instead (what backward reads is the same). */
    for (int s = 0; s < ctx->nsaved; s++)
        for (int k = 0; k < noutputs; k++) {
            if (ctx->saved[s] != outputs[k]) continue;
            nb_tensor *v = fresh_view(outputs[k]);
            if (!v) {
                st = nb_last_status();
                goto fail;
            }
            nbi_release(ctx->saved[s]);
            ctx->saved[s] = v;
            break;
        }
    nb_tensor *recorded[NBI_MAX_OUTPUTS];
    for (int k = 0; k < noutputs; k++) recorded[k] = diff[k] ? outputs[k] : NULL;
    st = nbi_record_outputs(recorded, noutputs, &function_op, inputs, ninputs, ctx, name);
    ctx = NULL; /* the node's now, or freed */
    if (st != NB_OK) goto fail;
    for (int k = 0; k < noutputs; k++) outputs[k] = nbi_give(outputs[k]);
    return NB_OK;
fail:
    ctx_free(ctx);
    for (int k = 0; k < noutputs; k++) {
        nbi_release(outputs[k]);
        outputs[k] = NULL;
    }
    return st;
}
